//! The records a group coordinator writes to `__consumer_offsets`, in
//! Kafka's own formats, so the topic reads the same with Kafka's tools:
//!
//! - offset commit: key v1 (group, topic, partition), value v3 (offset,
//!   leader epoch, metadata, commit timestamp); a null value deletes;
//! - group metadata: key v2 (group), value v3 (protocol type, generation,
//!   protocol, leader, state timestamp, members with their subscription
//!   and assignment); a null value deletes the group;
//! - KIP-848 group snapshot: weir's own key version
//!   [`CONSUMER_GROUP_SNAPSHOT_KEY_VERSION`] (group), value: the whole
//!   consumer group (epochs, members, assignments; `super::consumer`).
//!   Kafka stores KIP-848 state as many small records instead; weir writes
//!   one snapshot per change, which replay replaces as a whole.
//!
//! Pure encode/decode: no I/O, no shard state. Decoding is defensive (the
//! log could hold anything a client produced to the topic): a record that
//! does not parse is skipped by the caller and reported.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::records::{Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType};

const OFFSET_COMMIT_KEY_VERSION: i16 = 1;
const GROUP_METADATA_KEY_VERSION: i16 = 2;
const OFFSET_COMMIT_VALUE_VERSION: i16 = 3;
/// Far from Kafka's key versions (0-2 classic, 3+ for its newer group
/// types), so the two never collide.
pub const CONSUMER_GROUP_SNAPSHOT_KEY_VERSION: i16 = 0x7765;
const GROUP_METADATA_VALUE_VERSION: i16 = 3;

/// A committed offset as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedOffset {
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: String,
    pub commit_timestamp_ms: i64,
}

/// A member as stored in group metadata.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StoredMember {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub rebalance_timeout_ms: i32,
    pub session_timeout_ms: i32,
    pub subscription: Bytes,
    pub assignment: Bytes,
}

/// A group's metadata as stored after each completed rebalance.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StoredGroup {
    pub protocol_type: String,
    pub generation: i32,
    pub protocol: Option<String>,
    pub leader: Option<String>,
    pub state_timestamp_ms: i64,
    pub members: Vec<StoredMember>,
}

/// One decoded record of `__consumer_offsets`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupRecord {
    Offset {
        group: String,
        topic: String,
        partition: i32,
        /// None: the offset was deleted (tombstone).
        value: Option<CommittedOffset>,
    },
    Group {
        group: String,
        /// None: the group was deleted (tombstone).
        value: Option<StoredGroup>,
    },
    /// A KIP-848 group's state, encoded by `super::consumer`.
    ConsumerGroup {
        group: String,
        /// None: no KIP-848 state any more.
        value: Option<Bytes>,
    },
}

impl GroupRecord {
    pub fn group(&self) -> &str {
        match self {
            GroupRecord::Offset { group, .. }
            | GroupRecord::Group { group, .. }
            | GroupRecord::ConsumerGroup { group, .. } => group,
        }
    }

    /// (key, value) bytes as Kafka writes them.
    pub fn encode(&self) -> (Bytes, Option<Bytes>) {
        let mut key = BytesMut::new();
        match self {
            GroupRecord::Offset {
                group,
                topic,
                partition,
                value,
            } => {
                key.put_i16(OFFSET_COMMIT_KEY_VERSION);
                put_string(&mut key, group);
                put_string(&mut key, topic);
                key.put_i32(*partition);
                let value = value.as_ref().map(|v| {
                    let mut out = BytesMut::new();
                    out.put_i16(OFFSET_COMMIT_VALUE_VERSION);
                    out.put_i64(v.offset);
                    out.put_i32(v.leader_epoch);
                    put_string(&mut out, &v.metadata);
                    out.put_i64(v.commit_timestamp_ms);
                    out.freeze()
                });
                (key.freeze(), value)
            }
            GroupRecord::Group { group, value } => {
                key.put_i16(GROUP_METADATA_KEY_VERSION);
                put_string(&mut key, group);
                let value = value.as_ref().map(|g| {
                    let mut out = BytesMut::new();
                    out.put_i16(GROUP_METADATA_VALUE_VERSION);
                    put_string(&mut out, &g.protocol_type);
                    out.put_i32(g.generation);
                    put_nullable_string(&mut out, g.protocol.as_deref());
                    put_nullable_string(&mut out, g.leader.as_deref());
                    out.put_i64(g.state_timestamp_ms);
                    out.put_i32(g.members.len() as i32);
                    for m in &g.members {
                        put_string(&mut out, &m.member_id);
                        put_nullable_string(&mut out, m.group_instance_id.as_deref());
                        put_string(&mut out, &m.client_id);
                        put_string(&mut out, &m.client_host);
                        out.put_i32(m.rebalance_timeout_ms);
                        out.put_i32(m.session_timeout_ms);
                        put_bytes(&mut out, &m.subscription);
                        put_bytes(&mut out, &m.assignment);
                    }
                    out.freeze()
                });
                (key.freeze(), value)
            }
            GroupRecord::ConsumerGroup { group, value } => {
                key.put_i16(CONSUMER_GROUP_SNAPSHOT_KEY_VERSION);
                put_string(&mut key, group);
                (key.freeze(), value.clone())
            }
        }
    }

    /// Decodes a record; Err says why it is not one of ours.
    pub fn decode(key: Option<&Bytes>, value: Option<&Bytes>) -> Result<GroupRecord, String> {
        let mut key = key.ok_or("record without a key")?.clone();
        let version = get_i16(&mut key)?;
        match version {
            0 | 1 => {
                let group = get_string(&mut key)?;
                let topic = get_string(&mut key)?;
                let partition = get_i32(&mut key)?;
                let value = match value {
                    None => None,
                    Some(value) => Some(decode_offset_value(&mut value.clone())?),
                };
                Ok(GroupRecord::Offset {
                    group,
                    topic,
                    partition,
                    value,
                })
            }
            2 => {
                let group = get_string(&mut key)?;
                let value = match value {
                    None => None,
                    Some(value) => Some(decode_group_value(&mut value.clone())?),
                };
                Ok(GroupRecord::Group { group, value })
            }
            CONSUMER_GROUP_SNAPSHOT_KEY_VERSION => Ok(GroupRecord::ConsumerGroup {
                group: get_string(&mut key)?,
                value: value.cloned(),
            }),
            other => Err(format!("unknown key version {other}")),
        }
    }
}

fn decode_offset_value(value: &mut Bytes) -> Result<CommittedOffset, String> {
    let version = get_i16(value)?;
    if !(0..=4).contains(&version) {
        return Err(format!("unknown offset value version {version}"));
    }
    let offset = get_i64(value)?;
    let leader_epoch = if version >= 3 { get_i32(value)? } else { -1 };
    let metadata = get_string(value)?;
    let commit_timestamp_ms = get_i64(value)?;
    Ok(CommittedOffset {
        offset,
        leader_epoch,
        metadata,
        commit_timestamp_ms,
    })
}

fn decode_group_value(value: &mut Bytes) -> Result<StoredGroup, String> {
    let version = get_i16(value)?;
    if !(0..=3).contains(&version) {
        return Err(format!("unknown group value version {version}"));
    }
    let protocol_type = get_string(value)?;
    let generation = get_i32(value)?;
    let protocol = get_nullable_string(value)?;
    let leader = get_nullable_string(value)?;
    let state_timestamp_ms = if version >= 2 { get_i64(value)? } else { -1 };
    let count = get_i32(value)?;
    if count < 0 || count as usize > value.remaining() {
        return Err(format!("member count {count}"));
    }
    let mut members = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let member_id = get_string(value)?;
        let group_instance_id = if version >= 3 {
            get_nullable_string(value)?
        } else {
            None
        };
        let client_id = get_string(value)?;
        let client_host = get_string(value)?;
        let rebalance_timeout_ms = if version >= 1 { get_i32(value)? } else { -1 };
        let session_timeout_ms = get_i32(value)?;
        let subscription = get_bytes(value)?;
        let assignment = get_bytes(value)?;
        members.push(StoredMember {
            member_id,
            group_instance_id,
            client_id,
            client_host,
            rebalance_timeout_ms,
            session_timeout_ms,
            subscription,
            assignment,
        });
    }
    Ok(StoredGroup {
        protocol_type,
        generation,
        protocol,
        leader,
        state_timestamp_ms,
        members,
    })
}

/// One uncompressed v2 batch holding `records` (offsets from 0; the log
/// assigns the real ones), stamped `now_ms`.
pub fn encode_batch(records: &[GroupRecord], now_ms: i64) -> Bytes {
    encode_batch_as(records, now_ms, None)
}

/// As [`encode_batch`]; with a producer (id, epoch) the batch is part of
/// that producer's transaction (TxnOffsetCommit): it takes effect when the
/// transaction's COMMIT marker follows it in the same partition.
pub fn encode_batch_as(records: &[GroupRecord], now_ms: i64, producer: Option<(i64, i16)>) -> Bytes {
    encode_key_values(records.iter().map(GroupRecord::encode), now_ms, producer)
}

/// One uncompressed v2 batch of (key, value) records, offsets from 0 (the
/// log assigns the real ones), stamped `now_ms`; in `producer`'s
/// transaction when given. The records of the internal topics.
pub fn encode_key_values(
    records: impl Iterator<Item = (Bytes, Option<Bytes>)>,
    now_ms: i64,
    producer: Option<(i64, i16)>,
) -> Bytes {
    let (producer_id, producer_epoch) = producer.unwrap_or((-1, -1));
    let records: Vec<Record> = records
        .enumerate()
        .map(|(index, (key, value))| Record {
            transactional: producer.is_some(),
            control: false,
            partition_leader_epoch: 0,
            producer_id,
            producer_epoch,
            timestamp_type: TimestampType::Creation,
            offset: index as i64,
            // The encoder keeps records in one batch while offset -
            // sequence is constant; the batch's base sequence is -1.
            sequence: index as i32 - 1,
            timestamp: now_ms,
            key: Some(key),
            value,
            headers: Default::default(),
            delete_horizon: false,
        })
        .collect();
    let mut buffer = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buffer,
        &records,
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .expect("encoding uncompressed records into memory cannot fail");
    buffer.freeze()
}

pub(crate) fn put_string(out: &mut BytesMut, text: &str) {
    out.put_i16(text.len().min(i16::MAX as usize) as i16);
    out.put_slice(&text.as_bytes()[..text.len().min(i16::MAX as usize)]);
}

pub(crate) fn put_nullable_string(out: &mut BytesMut, text: Option<&str>) {
    match text {
        Some(text) => put_string(out, text),
        None => out.put_i16(-1),
    }
}

pub(crate) fn put_bytes(out: &mut BytesMut, bytes: &[u8]) {
    out.put_i32(bytes.len() as i32);
    out.put_slice(bytes);
}

fn need(buffer: &Bytes, bytes: usize) -> Result<(), String> {
    if buffer.remaining() < bytes {
        Err(format!(
            "truncated: {bytes} bytes needed, {} left",
            buffer.remaining()
        ))
    } else {
        Ok(())
    }
}

pub(crate) fn get_i16(buffer: &mut Bytes) -> Result<i16, String> {
    need(buffer, 2)?;
    Ok(buffer.get_i16())
}

pub(crate) fn get_i32(buffer: &mut Bytes) -> Result<i32, String> {
    need(buffer, 4)?;
    Ok(buffer.get_i32())
}

pub(crate) fn get_i64(buffer: &mut Bytes) -> Result<i64, String> {
    need(buffer, 8)?;
    Ok(buffer.get_i64())
}

pub(crate) fn get_nullable_string(buffer: &mut Bytes) -> Result<Option<String>, String> {
    let length = get_i16(buffer)?;
    if length < 0 {
        return Ok(None);
    }
    need(buffer, length as usize)?;
    let text = buffer.split_to(length as usize);
    String::from_utf8(text.to_vec())
        .map(Some)
        .map_err(|_| "string is not UTF-8".to_string())
}

pub(crate) fn get_string(buffer: &mut Bytes) -> Result<String, String> {
    get_nullable_string(buffer)?.ok_or_else(|| "null string".to_string())
}

pub(crate) fn get_bytes(buffer: &mut Bytes) -> Result<Bytes, String> {
    let length = get_i32(buffer)?;
    if length < 0 {
        return Ok(Bytes::new());
    }
    need(buffer, length as usize)?;
    Ok(buffer.split_to(length as usize))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_records_round_trip() {
        for value in [
            None,
            Some(CommittedOffset {
                offset: 42,
                leader_epoch: -1,
                metadata: "meta".into(),
                commit_timestamp_ms: 1_700_000_000_000,
            }),
        ] {
            let record = GroupRecord::Offset {
                group: "g".into(),
                topic: "t".into(),
                partition: 3,
                value,
            };
            let (key, value) = record.encode();
            assert_eq!(GroupRecord::decode(Some(&key), value.as_ref()).unwrap(), record);
        }
    }

    #[test]
    fn group_records_round_trip() {
        let record = GroupRecord::Group {
            group: "g".into(),
            value: Some(StoredGroup {
                protocol_type: "consumer".into(),
                generation: 7,
                protocol: Some("range".into()),
                leader: Some("m-1".into()),
                state_timestamp_ms: 5,
                members: vec![StoredMember {
                    member_id: "m-1".into(),
                    group_instance_id: Some("i-1".into()),
                    client_id: "c".into(),
                    client_host: "/127.0.0.1".into(),
                    rebalance_timeout_ms: 300_000,
                    session_timeout_ms: 45_000,
                    subscription: Bytes::from_static(b"sub"),
                    assignment: Bytes::from_static(b"asg"),
                }],
            }),
        };
        let (key, value) = record.encode();
        assert_eq!(GroupRecord::decode(Some(&key), value.as_ref()).unwrap(), record);
    }

    #[test]
    fn several_records_make_one_valid_batch() {
        let records: Vec<GroupRecord> = (0..5)
            .map(|partition| GroupRecord::Offset {
                group: "g".into(),
                topic: "t".into(),
                partition,
                value: None,
            })
            .collect();
        let batch = encode_batch(&records, 1);
        let header = crate::protocol::record_batch::validate_produced_batch(&batch, usize::MAX).unwrap();
        assert_eq!(header.records_count, 5);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for key in [
            &b""[..],
            b"\x00",
            b"\x00\x01\x00\x05ab",
            b"\x00\x09",
            b"\x00\x02\xff\xff",
        ] {
            let key = Bytes::copy_from_slice(key);
            assert!(GroupRecord::decode(Some(&key), None).is_err(), "{key:?}");
        }
        let key = GroupRecord::Group {
            group: "g".into(),
            value: None,
        }
        .encode()
        .0;
        let value = Bytes::from_static(b"\x00\x03\x00\x01c\x00\x00\x00\x01\xff\xff\xff\xff\x7f\xff\xff\xff");
        assert!(GroupRecord::decode(Some(&key), Some(&value)).is_err());
    }
}
