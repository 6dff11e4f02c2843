//! One consumer group's state, as the classic rebalance protocol defines
//! it: members, generation, chosen protocol, leader, committed offsets.
//!
//! Lives on the coordinator shard of the group (see `super`), inside the
//! coordinator's `RefCell`: everything here is synchronous; waiting for a
//! rebalance is done through the one-slot channels stored in members.
//!
//! States (Kafka's): Empty → PreparingRebalance (members join) →
//! CompletingRebalance (joined; the leader computes the assignment) →
//! Stable (assignment delivered by SyncGroup); Dead once deleted.

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    time::Instant,
};

use bytes::{Buf, Bytes};
use glommio::channels::local_channel::LocalSender;
use indexmap::IndexMap;
use kafka_protocol::messages::{JoinGroupResponse, SyncGroupResponse};

use super::records::{CommittedOffset, StoredGroup, StoredMember};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupState {
    Empty,
    PreparingRebalance,
    CompletingRebalance,
    Stable,
    Dead,
}

impl GroupState {
    /// The name DescribeGroups and ListGroups report.
    pub fn name(self) -> &'static str {
        match self {
            GroupState::Empty => "Empty",
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Stable => "Stable",
            GroupState::Dead => "Dead",
        }
    }
}

pub struct Member {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout_ms: i32,
    pub rebalance_timeout_ms: i32,
    /// (protocol name, metadata) in the member's order of preference.
    pub protocols: Vec<(String, Bytes)>,
    pub assignment: Bytes,
    /// Set while the member's JoinGroup waits for the rebalance to finish.
    pub join_waiter: Option<LocalSender<JoinGroupResponse>>,
    /// Set while the member's SyncGroup waits for the leader's assignment.
    pub sync_waiter: Option<LocalSender<SyncGroupResponse>>,
    /// Expired (removed) when no heartbeat, join or sync came before this.
    pub session_deadline: Instant,
}

impl Member {
    pub fn metadata_for(&self, protocol: &str) -> Bytes {
        self.protocols
            .iter()
            .find(|(name, _)| name == protocol)
            .map(|(_, metadata)| metadata.clone())
            .unwrap_or_default()
    }

    pub fn same_protocols(&self, protocols: &[(String, Bytes)]) -> bool {
        self.protocols == protocols
    }
}

pub struct Group {
    pub id: String,
    /// The `__consumer_offsets` partition that stores this group.
    pub partition: i32,
    pub state: GroupState,
    pub protocol_type: Option<String>,
    pub protocol: Option<String>,
    pub generation: i32,
    pub leader: Option<String>,
    pub members: IndexMap<String, Member>,
    /// KIP-394: member ids handed out with MEMBER_ID_REQUIRED, not yet
    /// joined, with the deadline after which they are forgotten.
    pub pending_members: HashMap<String, Instant>,
    /// group.instance.id → member id (KIP-345 static membership).
    pub static_members: HashMap<String, String>,
    /// PreparingRebalance: when members that did not rejoin are removed.
    pub rebalance_deadline: Option<Instant>,
    pub offsets: BTreeMap<(String, i32), CommittedOffset>,
    /// When the group last became Empty (offsets retention counts from it).
    pub state_timestamp_ms: i64,
    /// KIP-848 membership, when the group is a consumer group.
    pub consumer: Option<super::consumer::ConsumerGroup>,
}

impl Group {
    pub fn new(id: String, partition: i32, now_ms: i64) -> Group {
        Group {
            id,
            partition,
            state: GroupState::Empty,
            protocol_type: None,
            protocol: None,
            generation: 0,
            leader: None,
            members: IndexMap::new(),
            pending_members: HashMap::new(),
            static_members: HashMap::new(),
            rebalance_deadline: None,
            offsets: BTreeMap::new(),
            state_timestamp_ms: now_ms,
            consumer: None,
        }
    }

    /// Whether a joining member's protocols fit the group: same protocol
    /// type, and at least one protocol every member supports.
    pub fn accepts_protocols(&self, protocol_type: &str, protocols: &[(String, Bytes)]) -> bool {
        if protocols.is_empty() || protocol_type.is_empty() {
            return false;
        }
        if self.members.is_empty() {
            return true;
        }
        if self.protocol_type.as_deref() != Some(protocol_type) {
            return false;
        }
        self.candidate_protocols()
            .iter()
            .any(|candidate| protocols.iter().any(|(name, _)| name == candidate))
    }

    /// Protocols every current member supports.
    fn candidate_protocols(&self) -> Vec<String> {
        let mut members = self.members.values();
        let Some(first) = members.next() else {
            return Vec::new();
        };
        let mut candidates: Vec<String> = first.protocols.iter().map(|(name, _)| name.clone()).collect();
        for member in members {
            candidates.retain(|c| member.protocols.iter().any(|(name, _)| name == c));
        }
        candidates
    }

    /// The protocol for the next generation: among those every member
    /// supports, the one most members prefer (each votes for its first
    /// candidate), ties going to the earliest candidate.
    pub fn select_protocol(&self) -> Option<String> {
        let candidates = self.candidate_protocols();
        let mut votes: HashMap<&str, usize> = HashMap::new();
        for member in self.members.values() {
            if let Some((name, _)) = member
                .protocols
                .iter()
                .find(|(name, _)| candidates.contains(name))
            {
                *votes.entry(name.as_str()).or_default() += 1;
            }
        }
        candidates
            .iter()
            .max_by(|a, b| {
                let (va, vb) = (votes.get(a.as_str()), votes.get(b.as_str()));
                va.cmp(&vb).then_with(|| {
                    let position = |n: &str| candidates.iter().position(|c| c == n);
                    position(b).cmp(&position(a))
                })
            })
            .cloned()
    }

    /// Every member is waiting in JoinGroup and no KIP-394 id is pending.
    pub fn all_members_joined(&self) -> bool {
        self.pending_members.is_empty() && self.members.values().all(|m| m.join_waiter.is_some())
    }

    /// Members of the KIP-848 protocol (0 for classic groups).
    pub fn consumer_members(&self) -> usize {
        self.consumer.as_ref().map_or(0, |c| c.members.len())
    }

    pub fn rebalance_timeout_ms_max(&self) -> i32 {
        self.members
            .values()
            .map(|m| m.rebalance_timeout_ms)
            .max()
            .unwrap_or(0)
    }

    /// Topics the members subscribe to, when the group uses the consumer
    /// protocol (its subscription metadata lists them); None otherwise.
    pub fn subscribed_topics(&self) -> Option<HashSet<String>> {
        if self.protocol_type.as_deref() != Some("consumer") {
            return None;
        }
        let protocol = self.protocol.as_deref()?;
        let mut topics = HashSet::new();
        for member in self.members.values() {
            topics.extend(parse_subscription_topics(&member.metadata_for(protocol))?);
        }
        Some(topics)
    }

    pub fn to_stored(&self) -> StoredGroup {
        let protocol = self.protocol.clone().unwrap_or_default();
        StoredGroup {
            protocol_type: self.protocol_type.clone().unwrap_or_default(),
            generation: self.generation,
            protocol: self.protocol.clone(),
            leader: self.leader.clone(),
            state_timestamp_ms: self.state_timestamp_ms,
            members: self
                .members
                .values()
                .map(|m| StoredMember {
                    member_id: m.member_id.clone(),
                    group_instance_id: m.group_instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    rebalance_timeout_ms: m.rebalance_timeout_ms,
                    session_timeout_ms: m.session_timeout_ms,
                    subscription: m.metadata_for(&protocol),
                    assignment: m.assignment.clone(),
                })
                .collect(),
        }
    }

    /// Restores a group from its stored metadata (offsets are separate):
    /// Stable with its members when it had any (they resume heartbeating
    /// with their member ids and generation), else Empty.
    pub fn restore(&mut self, stored: StoredGroup, now: Instant) {
        self.protocol_type = (!stored.protocol_type.is_empty()).then_some(stored.protocol_type);
        self.generation = stored.generation;
        self.protocol = stored.protocol.clone();
        self.leader = stored.leader;
        self.state_timestamp_ms = stored.state_timestamp_ms;
        self.members.clear();
        self.static_members.clear();
        let protocol = stored.protocol.unwrap_or_default();
        for m in stored.members {
            if let Some(instance) = &m.group_instance_id {
                self.static_members.insert(instance.clone(), m.member_id.clone());
            }
            let session_timeout_ms = m.session_timeout_ms.max(1);
            self.members.insert(
                m.member_id.clone(),
                Member {
                    member_id: m.member_id,
                    group_instance_id: m.group_instance_id,
                    client_id: m.client_id,
                    client_host: m.client_host,
                    session_timeout_ms,
                    rebalance_timeout_ms: m.rebalance_timeout_ms,
                    protocols: vec![(protocol.clone(), m.subscription)],
                    assignment: m.assignment,
                    join_waiter: None,
                    sync_waiter: None,
                    session_deadline: now + std::time::Duration::from_millis(session_timeout_ms as u64),
                },
            );
        }
        self.state = if self.members.is_empty() {
            GroupState::Empty
        } else {
            GroupState::Stable
        };
    }
}

/// The topics of a consumer-protocol subscription (ConsumerProtocol
/// Subscription, any version: i16 version, then an array of strings).
pub fn parse_subscription_topics(metadata: &Bytes) -> Option<Vec<String>> {
    let mut buffer = metadata.clone();
    if buffer.remaining() < 6 {
        return None;
    }
    let _version = buffer.get_i16();
    let count = buffer.get_i32();
    if count < 0 || count as usize > buffer.remaining() / 2 {
        return None;
    }
    let mut topics = Vec::with_capacity(count as usize);
    for _ in 0..count {
        if buffer.remaining() < 2 {
            return None;
        }
        let length = buffer.get_i16();
        if length < 0 || length as usize > buffer.remaining() {
            return None;
        }
        topics.push(String::from_utf8(buffer.split_to(length as usize).to_vec()).ok()?);
    }
    Some(topics)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(id: &str, protocols: &[&str]) -> Member {
        Member {
            member_id: id.into(),
            group_instance_id: None,
            client_id: "c".into(),
            client_host: "h".into(),
            session_timeout_ms: 10_000,
            rebalance_timeout_ms: 10_000,
            protocols: protocols.iter().map(|p| (p.to_string(), Bytes::new())).collect(),
            assignment: Bytes::new(),
            join_waiter: None,
            sync_waiter: None,
            session_deadline: Instant::now(),
        }
    }

    #[test]
    fn protocol_selection_takes_the_common_protocol_most_prefer() {
        let mut group = Group::new("g".into(), 0, 0);
        group.protocol_type = Some("consumer".into());
        group
            .members
            .insert("a".into(), member("a", &["range", "roundrobin"]));
        group
            .members
            .insert("b".into(), member("b", &["roundrobin", "range"]));
        group
            .members
            .insert("c".into(), member("c", &["roundrobin", "sticky"]));
        assert_eq!(group.select_protocol().as_deref(), Some("roundrobin"));
        assert!(group.accepts_protocols("consumer", &[("roundrobin".into(), Bytes::new())]));
        assert!(!group.accepts_protocols("consumer", &[("range".into(), Bytes::new())]));
        assert!(!group.accepts_protocols("connect", &[("roundrobin".into(), Bytes::new())]));
        assert!(!group.accepts_protocols("consumer", &[]));
    }

    #[test]
    fn subscription_topics_parse_and_garbage_does_not() {
        let mut bytes = vec![0u8, 1, 0, 0, 0, 2];
        for topic in ["orders", "t"] {
            bytes.extend_from_slice(&(topic.len() as i16).to_be_bytes());
            bytes.extend_from_slice(topic.as_bytes());
        }
        bytes.extend_from_slice(&[0xff, 0xff, 0xff, 0xff]); // user data: null
        let topics = parse_subscription_topics(&Bytes::from(bytes)).unwrap();
        assert_eq!(topics, vec!["orders".to_string(), "t".to_string()]);
        assert_eq!(
            parse_subscription_topics(&Bytes::from_static(b"\x00\x01\x7f\xff\xff\xff")),
            None
        );
        assert_eq!(parse_subscription_topics(&Bytes::from_static(b"\x00")), None);
    }
}
