//! Which version of each API to speak with a broker.
//!
//! weir-bench implements a range per API ([`IMPLEMENTED`]); a broker
//! advertises its ranges in ApiVersions. For each API the highest version in
//! both ranges is used. An API the broker lacks, or whose ranges do not
//! overlap, is `None`; a scenario that needs it fails with a message naming
//! both ranges rather than sending something the broker cannot read.
//!
//! The upper bounds stop where topic ids replace topic names (Produce v13,
//! Fetch v13) and where ListOffsets gains timestamp types weir-bench does not
//! use (v8+); every broker that serves those still serves the versions here.

use kafka_protocol::messages::ApiKey;
use serde::Serialize;

/// (API, lowest, highest) version weir-bench can encode and decode.
pub const IMPLEMENTED: &[(ApiKey, i16, i16)] = &[
    (ApiKey::ApiVersions, 0, 3),
    (ApiKey::Metadata, 1, 12),
    (ApiKey::CreateTopics, 2, 7),
    (ApiKey::ListOffsets, 1, 7),
    (ApiKey::Produce, 3, 12),
    (ApiKey::Fetch, 4, 12),
];

/// One API's range as a broker advertises it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct ApiRange {
    pub api_key: i16,
    pub min_version: i16,
    pub max_version: i16,
}

/// The versions chosen for one broker.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Versions {
    pub api_versions: Option<i16>,
    pub metadata: Option<i16>,
    pub create_topics: Option<i16>,
    pub list_offsets: Option<i16>,
    pub produce: Option<i16>,
    pub fetch: Option<i16>,
}

impl Versions {
    fn slot(&mut self, api_key: ApiKey) -> &mut Option<i16> {
        match api_key {
            ApiKey::ApiVersions => &mut self.api_versions,
            ApiKey::Metadata => &mut self.metadata,
            ApiKey::CreateTopics => &mut self.create_topics,
            ApiKey::ListOffsets => &mut self.list_offsets,
            ApiKey::Produce => &mut self.produce,
            ApiKey::Fetch => &mut self.fetch,
            other => panic!("{other:?} is not in IMPLEMENTED"),
        }
    }

    pub fn get(&self, api_key: ApiKey) -> Option<i16> {
        let mut copy = *self;
        *copy.slot(api_key)
    }
}

/// The version of `api_key` to use, or why there is none.
pub fn require(versions: &Versions, ranges: &[ApiRange], api_key: ApiKey) -> Result<i16, String> {
    versions.get(api_key).ok_or_else(|| {
        let ours = IMPLEMENTED.iter().find(|(key, _, _)| *key == api_key);
        let theirs = ranges.iter().find(|range| range.api_key == api_key as i16);
        match (ours, theirs) {
            (Some((_, min, max)), Some(range)) => format!(
                "{api_key:?}: the broker serves versions {}..={}, weir-bench speaks {min}..={max}",
                range.min_version, range.max_version
            ),
            _ => format!("{api_key:?}: the broker does not advertise it in ApiVersions"),
        }
    })
}

/// The highest common version of every implemented API.
pub fn negotiate(ranges: &[ApiRange]) -> Versions {
    let mut versions = Versions::default();
    for &(api_key, min, max) in IMPLEMENTED {
        let Some(range) = ranges.iter().find(|range| range.api_key == api_key as i16) else {
            continue;
        };
        let high = max.min(range.max_version);
        if high >= min.max(range.min_version) {
            *versions.slot(api_key) = Some(high);
        }
    }
    versions
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(api_key: ApiKey, min: i16, max: i16) -> ApiRange {
        ApiRange {
            api_key: api_key as i16,
            min_version: min,
            max_version: max,
        }
    }

    #[test]
    fn picks_the_highest_common_version() {
        // weir's table: Produce advertised from 0, Fetch 4..12, ListOffsets 1..7.
        let weir = [
            range(ApiKey::Produce, 0, 12),
            range(ApiKey::Fetch, 4, 12),
            range(ApiKey::ListOffsets, 1, 7),
            range(ApiKey::Metadata, 0, 12),
            range(ApiKey::ApiVersions, 0, 3),
            range(ApiKey::CreateTopics, 2, 7),
        ];
        let versions = negotiate(&weir);
        assert_eq!(versions.produce, Some(12));
        assert_eq!(versions.fetch, Some(12));
        assert_eq!(versions.list_offsets, Some(7));
        assert_eq!(versions.api_versions, Some(3));
        // A newer broker: capped at what weir-bench implements.
        let kafka = [range(ApiKey::Produce, 3, 13), range(ApiKey::Fetch, 4, 17)];
        let versions = negotiate(&kafka);
        assert_eq!((versions.produce, versions.fetch), (Some(12), Some(12)));
        assert_eq!(versions.metadata, None);
    }

    #[test]
    fn disjoint_or_missing_ranges_explain_themselves() {
        let old = [range(ApiKey::Produce, 0, 2)];
        let versions = negotiate(&old);
        assert_eq!(versions.produce, None);
        let message = require(&versions, &old, ApiKey::Produce).unwrap_err();
        assert!(
            message.contains("0..=2") && message.contains("3..=12"),
            "{message}"
        );
        assert!(require(&versions, &old, ApiKey::Fetch)
            .unwrap_err()
            .contains("does not advertise"));
    }
}
