//! What the transaction coordinator writes to `__transaction_state`, in
//! Kafka's formats: key version 0 (the transactional id) and value version
//! 0 (producer id and epoch, timeout, status, partitions, timestamps). A
//! null value is a tombstone: the transactional id expired.
//!
//! Pure encoding; no I/O.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::state::{TxnMetadata, TxnState};
use crate::group::records::{encode_key_values, get_i16, get_i32, get_i64, get_string, put_string};

const KEY_VERSION: i16 = 0;
const VALUE_VERSION: i16 = 0;

/// Partitions of one transaction, at most: bounds what a record can carry.
pub const TXN_PARTITIONS_MAX: usize = 100_000;

/// One record of `__transaction_state`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnRecord {
    pub transactional_id: String,
    /// None: the transactional id was removed (tombstone).
    pub value: Option<TxnMetadata>,
}

impl TxnRecord {
    pub fn encode(&self) -> (Bytes, Option<Bytes>) {
        let mut key = BytesMut::new();
        key.put_i16(KEY_VERSION);
        put_string(&mut key, &self.transactional_id);
        let value = self.value.as_ref().map(|meta| {
            let mut value = BytesMut::new();
            value.put_i16(VALUE_VERSION);
            value.put_i64(meta.producer_id);
            value.put_i16(meta.producer_epoch);
            value.put_i32(meta.timeout_ms);
            value.put_i8(meta.state.code());
            // Grouped by topic, as Kafka stores them.
            let mut topics: Vec<(&str, Vec<i32>)> = Vec::new();
            for (topic, partition) in &meta.partitions {
                match topics.last_mut() {
                    Some((name, partitions)) if name == topic => partitions.push(*partition),
                    _ => topics.push((topic, vec![*partition])),
                }
            }
            value.put_i32(topics.len() as i32);
            for (topic, partitions) in topics {
                put_string(&mut value, topic);
                value.put_i32(partitions.len() as i32);
                for partition in partitions {
                    value.put_i32(partition);
                }
            }
            value.put_i64(meta.last_update_ms);
            value.put_i64(meta.start_ms);
            value.freeze()
        });
        (key.freeze(), value)
    }

    pub fn decode(key: Option<&Bytes>, value: Option<&Bytes>) -> Result<TxnRecord, String> {
        let mut key = key.cloned().ok_or("record without a key")?;
        let version = get_i16(&mut key)?;
        if version != KEY_VERSION {
            return Err(format!("unknown transaction key version {version}"));
        }
        let transactional_id = get_string(&mut key)?;
        let Some(value) = value else {
            return Ok(TxnRecord {
                transactional_id,
                value: None,
            });
        };
        let mut value = value.clone();
        let version = get_i16(&mut value)?;
        if !(0..=1).contains(&version) {
            return Err(format!("unknown transaction value version {version}"));
        }
        let producer_id = get_i64(&mut value)?;
        let producer_epoch = get_i16(&mut value)?;
        let timeout_ms = get_i32(&mut value)?;
        if value.is_empty() {
            return Err("truncated transaction value".into());
        }
        let code = value.get_i8();
        let state = TxnState::from_code(code).ok_or_else(|| format!("unknown transaction state {code}"))?;
        let topics = get_i32(&mut value)?;
        let mut partitions = std::collections::BTreeSet::new();
        for _ in 0..topics.max(0) {
            let topic = get_string(&mut value)?;
            let count = get_i32(&mut value)?;
            for _ in 0..count.max(0) {
                if partitions.len() >= TXN_PARTITIONS_MAX {
                    return Err("too many partitions in a transaction".into());
                }
                partitions.insert((topic.clone(), get_i32(&mut value)?));
            }
        }
        let last_update_ms = get_i64(&mut value)?;
        let start_ms = get_i64(&mut value)?;
        Ok(TxnRecord {
            transactional_id,
            value: Some(TxnMetadata {
                producer_id,
                producer_epoch,
                timeout_ms,
                state,
                partitions,
                last_update_ms,
                start_ms,
            }),
        })
    }
}

/// One uncompressed v2 batch of `records` (offsets from 0), stamped `now_ms`.
pub fn encode_batch(records: &[TxnRecord], now_ms: i64) -> Bytes {
    encode_key_values(records.iter().map(TxnRecord::encode), now_ms, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_reject_garbage() {
        let meta = TxnMetadata {
            producer_id: 4001,
            producer_epoch: 7,
            timeout_ms: 60_000,
            state: TxnState::Ongoing,
            partitions: [("a".to_string(), 0), ("a".to_string(), 3), ("b".to_string(), 1)]
                .into_iter()
                .collect(),
            last_update_ms: 1_700_000_000_500,
            start_ms: 1_700_000_000_000,
        };
        for value in [Some(meta), None] {
            let record = TxnRecord {
                transactional_id: "tx-1".into(),
                value,
            };
            let (key, value) = record.encode();
            assert_eq!(TxnRecord::decode(Some(&key), value.as_ref()), Ok(record.clone()));
            if let Some(value) = value {
                for cut in [0, 3, 10, value.len() - 1] {
                    let cut = value.slice(..cut);
                    assert!(TxnRecord::decode(Some(&key), Some(&cut)).is_err());
                }
            }
        }
        assert!(TxnRecord::decode(None, None).is_err());
        assert!(TxnRecord::decode(Some(&Bytes::from_static(&[0, 9])), None).is_err());
    }
}
