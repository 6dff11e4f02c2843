//! The group coordinator of one shard: every group whose
//! `__consumer_offsets` partition this shard owns.
//!
//! Each operation changes state synchronously inside one borrow of the
//! groups map and returns; what must wait (a JoinGroup until the rebalance
//! completes, a SyncGroup until the leader's assignment is stored, a
//! commit until its records are durable) waits after the borrow is
//! released, on a channel or on the log append. An expiry task per shard
//! (every [`EXPIRY_TICK_MS`]) removes members whose session ran out, ends
//! rebalances whose timeout passed and expires offsets of empty groups.
//!
//! Invariants:
//! - a member id is in at most one of `members` and `pending_members`;
//! - `static_members` maps each instance id to a member in `members`;
//! - a group in CompletingRebalance or Stable has a leader among its members;
//! - committed offsets in memory were durable in the log first.

use std::{
    cell::{Cell, RefCell},
    collections::HashMap,
    rc::Rc,
    time::{Duration, Instant},
};

use bytes::Bytes;
use glommio::channels::local_channel::{self, LocalReceiver};
use kafka_protocol::{
    messages::{
        consumer_group_describe_response, consumer_group_heartbeat_response,
        join_group_response::JoinGroupResponseMember,
        leave_group_response::MemberResponse,
        offset_commit_response::{OffsetCommitResponsePartition, OffsetCommitResponseTopic},
        txn_offset_commit_response::{TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic},
        ApiKey, ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse, HeartbeatResponse,
        JoinGroupRequest, JoinGroupResponse, LeaveGroupRequest, LeaveGroupResponse, OffsetCommitRequest,
        OffsetCommitResponse, SyncGroupRequest, SyncGroupResponse, TxnOffsetCommitRequest,
        TxnOffsetCommitResponse,
    },
    protocol::StrBytes,
};

use super::{
    partition_for,
    records::{encode_batch_as, CommittedOffset, GroupRecord},
    state::{Group, GroupState, Member},
    DescribedGroup, DescribedMember, GroupCall, GroupReply, ListedGroup, GROUP_MEMBERS_MAX,
    MEMBER_METADATA_BYTES_MAX, OFFSETS_TOPIC, OFFSET_METADATA_BYTES_MAX,
};
use crate::{log::now_ms, protocol::error_code as error, shard::Shard};

/// What replaying `__consumer_offsets` found, in log order.
enum Replayed {
    /// A record, and the producer id when it belongs to a transaction.
    Record(GroupRecord, Option<i64>),
    Marker {
        producer_id: i64,
        commit: bool,
    },
}

/// How often the expiry task looks at sessions and rebalance deadlines.
pub const EXPIRY_TICK_MS: u64 = 100;

/// The topics of an OffsetCommit or TxnOffsetCommit request (the same
/// field names in both) as `(topic, [OffsetToCommit])`.
macro_rules! offsets_to_commit {
    ($topics:expr) => {
        $topics
            .iter()
            .map(|topic| {
                let partitions = topic
                    .partitions
                    .iter()
                    .map(|p| OffsetToCommit {
                        partition: p.partition_index,
                        offset: p.committed_offset,
                        leader_epoch: p.committed_leader_epoch,
                        metadata: p.committed_metadata.as_ref().map(|m| m.to_string()),
                    })
                    .collect();
                (topic.name.0.clone(), partitions)
            })
            .collect()
    };
}

/// An OffsetCommit or TxnOffsetCommit response (same shapes) from
/// `(topic, [(partition, error code)])`.
#[macro_export]
macro_rules! commit_response {
    ($response:ty, $topic:ty, $partition:ty, $results:expr) => {{
        let mut response = <$response>::default();
        response.topics = $results
            .into_iter()
            .map(|(name, partitions)| {
                let mut topic = <$topic>::default();
                topic.name = name.into();
                topic.partitions = partitions
                    .into_iter()
                    .map(|(index, code)| {
                        let mut partition = <$partition>::default();
                        partition.partition_index = index;
                        partition.error_code = code;
                        partition
                    })
                    .collect();
                topic
            })
            .collect();
        response
    }};
}
pub use commit_response;

/// One partition's offset in an OffsetCommit or TxnOffsetCommit.
struct OffsetToCommit {
    partition: i32,
    offset: i64,
    leader_epoch: i32,
    metadata: Option<String>,
}

/// What OffsetCommit and TxnOffsetCommit ask, in one shape.
struct CommitInput {
    group_id: String,
    generation: i32,
    identity: Identity,
    topics: Vec<(StrBytes, Vec<OffsetToCommit>)>,
    /// (producer id, epoch) of a transactional commit.
    producer: Option<(i64, i16)>,
}

#[derive(Default)]
pub struct GroupCoordinator {
    /// Transactional offset commits waiting for their marker, by
    /// (offsets partition, producer id), in log order.
    pending_txn_offsets: RefCell<HashMap<(i32, i64), Vec<GroupRecord>>>,
    groups: RefCell<HashMap<String, Group>>,
    /// Initial-delay deadlines of groups rebalancing from Empty.
    initial_delay_until: RefCell<HashMap<String, Instant>>,
    member_sequence: Cell<u64>,
}

impl GroupCoordinator {
    /// Every committed offset of the groups here: (group, topic,
    /// partition, offset), for the admin listener's lag.
    pub fn committed_offsets(&self) -> Vec<(String, String, i32, i64)> {
        self.groups
            .borrow()
            .iter()
            .flat_map(|(name, group)| {
                group.offsets.iter().map(move |((topic, partition), committed)| {
                    (name.clone(), topic.clone(), *partition, committed.offset)
                })
            })
            .collect()
    }
}

fn str_bytes(text: &str) -> StrBytes {
    StrBytes::from_string(text.to_string())
}

/// A JoinGroup either waits for the rebalance or is answered at once.
type JoinStep = Result<LocalReceiver<JoinGroupResponse>, Box<JoinGroupResponse>>;

fn join_error(code: i16, member_id: &str) -> JoinGroupResponse {
    let mut response = JoinGroupResponse::default();
    response.error_code = code;
    response.generation_id = -1;
    response.member_id = str_bytes(member_id);
    response
}

fn sync_error(code: i16) -> SyncGroupResponse {
    let mut response = SyncGroupResponse::default();
    response.error_code = code;
    response
}

/// Who a request says it is: member id and optional static instance id.
struct Identity {
    member_id: String,
    instance: Option<String>,
}

impl Identity {
    fn new(member_id: &StrBytes, instance: &Option<StrBytes>) -> Identity {
        Identity {
            member_id: member_id.to_string(),
            instance: instance.as_ref().map(|i| i.to_string()).filter(|i| !i.is_empty()),
        }
    }
}

/// Checks a request's identity against the group: the member exists and,
/// for a static member, the instance id still maps to this member id.
fn check_member(group: &Group, identity: &Identity) -> Result<(), i16> {
    if let Some(instance) = &identity.instance {
        if let Some(current) = group.static_members.get(instance) {
            if *current != identity.member_id {
                return Err(error::FENCED_INSTANCE_ID);
            }
        }
    }
    if group.members.contains_key(&identity.member_id) {
        Ok(())
    } else {
        Err(error::UNKNOWN_MEMBER_ID)
    }
}

impl GroupCoordinator {
    fn limits(shard: &Shard) -> (i32, i32, u64, i64) {
        let config = &shard.config;
        (
            config.group_min_session_timeout_ms,
            config.group_max_session_timeout_ms,
            config.group_initial_rebalance_delay_ms,
            i64::try_from(config.offsets_retention_minutes.saturating_mul(60_000)).unwrap_or(i64::MAX),
        )
    }

    fn new_member_id(&self, prefix: &str) -> String {
        let sequence = self.member_sequence.get() + 1;
        self.member_sequence.set(sequence);
        format!("{prefix}-{}", crate::metadata::new_topic_id())
    }

    /// Executes a routed group call.
    pub async fn handle(&self, shard: &Rc<Shard>, call: GroupCall) -> GroupReply {
        match call {
            GroupCall::Join {
                version,
                request,
                client_id,
                client_host,
            } => GroupReply::Join(self.join(shard, version, request, client_id, client_host).await),
            GroupCall::Sync { version, request } => {
                GroupReply::Sync(self.sync(shard, version, request).await)
            }
            GroupCall::Heartbeat { request } => {
                let mut response = HeartbeatResponse::default();
                response.error_code = self.heartbeat(
                    &request.group_id.0,
                    request.generation_id,
                    &Identity::new(&request.member_id, &request.group_instance_id),
                );
                GroupReply::Heartbeat(response)
            }
            GroupCall::Leave { version, request } => GroupReply::Leave(self.leave(shard, version, request)),
            GroupCall::Commit { request } => GroupReply::Commit(self.commit(shard, request).await),
            GroupCall::TxnCommit { request } => GroupReply::TxnCommit(self.txn_commit(shard, request).await),
            GroupCall::FetchOffsets { group, topics } => {
                GroupReply::Offsets(self.fetch_offsets(&group, topics))
            }
            GroupCall::Describe { group } => GroupReply::Describe(self.describe(&group)),
            GroupCall::List => GroupReply::List(self.list()),
            GroupCall::Delete { group } => GroupReply::Deleted(self.delete(shard, &group).await),
            GroupCall::DeleteOffsets { group, topics } => {
                GroupReply::OffsetsDeleted(self.delete_offsets(shard, &group, topics).await)
            }
            GroupCall::ConsumerHeartbeat {
                request,
                client_id,
                client_host,
            } => GroupReply::ConsumerHeartbeat(
                self.consumer_heartbeat(shard, request, client_id, client_host)
                    .await,
            ),
            GroupCall::ConsumerDescribe { group } => {
                GroupReply::ConsumerDescribe(Box::new(self.consumer_describe(shard, &group)))
            }
        }
    }

    // ----------------------------------------------------------------- join

    async fn join(
        &self,
        shard: &Rc<Shard>,
        version: i16,
        request: JoinGroupRequest,
        client_id: String,
        client_host: String,
    ) -> JoinGroupResponse {
        let member_id = request.member_id.to_string();
        let receiver = {
            let mut groups = self.groups.borrow_mut();
            match self.join_now(shard, &mut groups, version, &request, client_id, client_host) {
                Ok(receiver) => receiver,
                Err(response) => return *response,
            }
        };
        match receiver.recv().await {
            Some(response) => response,
            None => join_error(error::UNKNOWN_MEMBER_ID, &member_id),
        }
    }

    fn join_now(
        &self,
        shard: &Rc<Shard>,
        groups: &mut HashMap<String, Group>,
        version: i16,
        request: &JoinGroupRequest,
        client_id: String,
        client_host: String,
    ) -> JoinStep {
        let (session_min_ms, session_max_ms, initial_delay_ms, _) = Self::limits(shard);
        let group_id = request.group_id.0.to_string();
        let identity = Identity::new(&request.member_id, &request.group_instance_id);
        let fail = |code: i16| Err(Box::new(join_error(code, &identity.member_id)));
        if group_id.is_empty() {
            return fail(error::INVALID_GROUP_ID);
        }
        if request.session_timeout_ms < session_min_ms || request.session_timeout_ms > session_max_ms {
            return fail(error::INVALID_SESSION_TIMEOUT);
        }
        let protocols: Vec<(String, Bytes)> = request
            .protocols
            .iter()
            .map(|p| (p.name.to_string(), p.metadata.clone()))
            .collect();
        let metadata_bytes: usize = protocols.iter().map(|(name, m)| name.len() + m.len()).sum();
        if metadata_bytes > MEMBER_METADATA_BYTES_MAX {
            return fail(error::INVALID_REQUEST);
        }
        let protocol_type = request.protocol_type.to_string();
        let rebalance_timeout_ms = if version == 0 || request.rebalance_timeout_ms <= 0 {
            request.session_timeout_ms
        } else {
            request.rebalance_timeout_ms
        };
        let now = Instant::now();
        if !groups.contains_key(&group_id) {
            if !identity.member_id.is_empty() {
                return fail(error::UNKNOWN_MEMBER_ID);
            }
            let partition = partition_for(&group_id, offsets_partitions(shard));
            groups.insert(
                group_id.clone(),
                Group::new(group_id.clone(), partition, now_ms()),
            );
        }
        let group = groups.get_mut(&group_id).expect("inserted above");
        if group.state == GroupState::Dead {
            return fail(error::COORDINATOR_NOT_AVAILABLE);
        }
        if group.consumer_members() > 0 {
            // A KIP-848 group with members: classic members cannot mix in.
            return fail(error::INCONSISTENT_GROUP_PROTOCOL);
        }
        if !group.accepts_protocols(&protocol_type, &protocols) {
            return fail(error::INCONSISTENT_GROUP_PROTOCOL);
        }
        if group.members.is_empty() {
            group.protocol_type = Some(protocol_type.clone());
        }
        let new_member = |member_id: String, sender| Member {
            member_id,
            group_instance_id: identity.instance.clone(),
            client_id: client_id.clone(),
            client_host: client_host.clone(),
            session_timeout_ms: request.session_timeout_ms,
            rebalance_timeout_ms,
            protocols: protocols.clone(),
            assignment: Bytes::new(),
            join_waiter: Some(sender),
            sync_waiter: None,
            session_deadline: now + Duration::from_millis(request.session_timeout_ms as u64),
        };

        if identity.member_id.is_empty() {
            if let Some(instance) = &identity.instance {
                if let Some(old_id) = group.static_members.get(instance).cloned() {
                    return self.replace_static_member(group, &old_id, version, new_member, now);
                }
            }
            if group.members.len() + group.pending_members.len() >= GROUP_MEMBERS_MAX {
                return fail(error::GROUP_MAX_SIZE_REACHED);
            }
            let prefix = identity.instance.as_deref().unwrap_or(&client_id);
            let member_id = self.new_member_id(if prefix.is_empty() { "member" } else { prefix });
            if version >= 4 && identity.instance.is_none() {
                // KIP-394: the client must come back with this id.
                let deadline = now + Duration::from_millis(request.session_timeout_ms as u64);
                group.pending_members.insert(member_id.clone(), deadline);
                return Err(Box::new(join_error(error::MEMBER_ID_REQUIRED, &member_id)));
            }
            let (sender, receiver) = local_channel::new_bounded(1);
            self.add_member(group, new_member(member_id, sender), now, initial_delay_ms);
            return Ok(receiver);
        }

        if let Some(instance) = &identity.instance {
            if let Some(current) = group.static_members.get(instance) {
                if *current != identity.member_id {
                    return fail(error::FENCED_INSTANCE_ID);
                }
            }
        }
        let (sender, receiver) = local_channel::new_bounded(1);
        if group.pending_members.remove(&identity.member_id).is_some() {
            self.add_member(
                group,
                new_member(identity.member_id.clone(), sender),
                now,
                initial_delay_ms,
            );
            return Ok(receiver);
        }
        let is_leader = group.leader.as_deref() == Some(identity.member_id.as_str());
        let state = group.state;
        let unchanged = {
            let Some(member) = group.members.get_mut(&identity.member_id) else {
                return fail(error::UNKNOWN_MEMBER_ID);
            };
            member.session_deadline = now + Duration::from_millis(request.session_timeout_ms as u64);
            member.session_timeout_ms = request.session_timeout_ms;
            member.rebalance_timeout_ms = rebalance_timeout_ms;
            member.same_protocols(&protocols)
        };
        let rebalances = !unchanged || (is_leader && state == GroupState::Stable);
        match state {
            GroupState::Empty | GroupState::Dead => fail(error::UNKNOWN_MEMBER_ID),
            GroupState::CompletingRebalance | GroupState::Stable if !rebalances => {
                // A repeated JoinGroup with nothing new: the current generation.
                Err(Box::new(self.join_response(group, &identity.member_id, version)))
            }
            _ => {
                let member = group.members.get_mut(&identity.member_id).expect("checked above");
                member.protocols = protocols;
                if let Some(previous) = member.join_waiter.replace(sender) {
                    let _ = previous.try_send(join_error(error::REBALANCE_IN_PROGRESS, &identity.member_id));
                }
                if state == GroupState::PreparingRebalance {
                    self.try_complete_join(group, now);
                } else {
                    self.prepare_rebalance(group, now, initial_delay_ms);
                    self.try_complete_join(group, now);
                }
                Ok(receiver)
            }
        }
    }

    /// KIP-345: a static member restarted and joins without its member id.
    /// It takes over the old member's place under a new id; the group does
    /// not rebalance unless it must (leader, or changed protocols).
    fn replace_static_member(
        &self,
        group: &mut Group,
        old_id: &str,
        version: i16,
        new_member: impl FnOnce(String, local_channel::LocalSender<JoinGroupResponse>) -> Member,
        now: Instant,
    ) -> JoinStep {
        let (sender, receiver) = local_channel::new_bounded(1);
        let Some(mut old) = group.members.shift_remove(old_id) else {
            return Err(Box::new(join_error(error::UNKNOWN_MEMBER_ID, "")));
        };
        let instance = old.group_instance_id.clone().unwrap_or_default();
        let member_id = self.new_member_id(&instance);
        let mut member = new_member(member_id.clone(), sender);
        let unchanged = member.same_protocols(&old.protocols);
        member.assignment = std::mem::take(&mut old.assignment);
        if let Some(waiter) = old.join_waiter.take() {
            let _ = waiter.try_send(join_error(error::FENCED_INSTANCE_ID, old_id));
        }
        if let Some(waiter) = old.sync_waiter.take() {
            let _ = waiter.try_send(sync_error(error::FENCED_INSTANCE_ID));
        }
        let was_leader = group.leader.as_deref() == Some(old_id);
        if was_leader {
            group.leader = Some(member_id.clone());
        }
        group.static_members.insert(instance, member_id.clone());
        group.members.insert(member_id.clone(), member);
        if group.state == GroupState::Stable && unchanged {
            // No rebalance. A returning leader is answered as a follower
            // (leader = its old id, no member list, as Kafka does), so it
            // only syncs and gets its stored assignment; the group records
            // its new id as the leader.
            let member = group.members.get_mut(&member_id).expect("inserted above");
            member.join_waiter = None;
            let mut response = self.join_response(group, &member_id, version);
            if was_leader {
                response.leader = str_bytes(old_id);
                response.members.clear();
            }
            return Err(Box::new(response));
        }
        match group.state {
            GroupState::PreparingRebalance => self.try_complete_join(group, now),
            _ => {
                self.prepare_rebalance(group, now, 0);
                self.try_complete_join(group, now);
            }
        }
        Ok(receiver)
    }

    fn add_member(&self, group: &mut Group, member: Member, now: Instant, initial_delay_ms: u64) {
        if let Some(instance) = &member.group_instance_id {
            group
                .static_members
                .insert(instance.clone(), member.member_id.clone());
        }
        group.members.insert(member.member_id.clone(), member);
        match group.state {
            GroupState::PreparingRebalance => {
                // A new member during the initial delay extends it, up to
                // the rebalance timeout.
                let mut delays = self.initial_delay_until.borrow_mut();
                if let (Some(until), Some(deadline)) = (delays.get_mut(&group.id), group.rebalance_deadline) {
                    *until = (now + Duration::from_millis(initial_delay_ms)).min(deadline);
                }
                drop(delays);
                self.try_complete_join(group, now);
            }
            _ => {
                self.prepare_rebalance(group, now, initial_delay_ms);
                self.try_complete_join(group, now);
            }
        }
    }

    /// Starts a rebalance: members must rejoin within the rebalance timeout.
    fn prepare_rebalance(&self, group: &mut Group, now: Instant, initial_delay_ms: u64) {
        if group.state == GroupState::CompletingRebalance {
            for member in group.members.values_mut() {
                if let Some(waiter) = member.sync_waiter.take() {
                    let _ = waiter.try_send(sync_error(error::REBALANCE_IN_PROGRESS));
                }
            }
        }
        let from_empty = group.state == GroupState::Empty;
        group.state = GroupState::PreparingRebalance;
        let timeout_ms = group.rebalance_timeout_ms_max().max(0) as u64;
        group.rebalance_deadline = Some(now + Duration::from_millis(timeout_ms));
        if from_empty && initial_delay_ms > 0 {
            let until =
                (now + Duration::from_millis(initial_delay_ms)).min(now + Duration::from_millis(timeout_ms));
            self.initial_delay_until
                .borrow_mut()
                .insert(group.id.clone(), until);
        }
    }

    fn try_complete_join(&self, group: &mut Group, now: Instant) {
        if group.state != GroupState::PreparingRebalance {
            return;
        }
        if let Some(until) = self.initial_delay_until.borrow().get(&group.id) {
            if *until > now {
                return;
            }
        }
        if group.all_members_joined() {
            self.complete_join(group, now);
        }
    }

    /// Ends the join phase: a new generation, the protocol, the leader, and
    /// a JoinGroup response to every waiting member.
    fn complete_join(&self, group: &mut Group, now: Instant) {
        self.initial_delay_until.borrow_mut().remove(&group.id);
        group.rebalance_deadline = None;
        group.pending_members.clear();
        group.generation += 1;
        if group.members.is_empty() {
            group.state = GroupState::Empty;
            group.protocol = None;
            group.leader = None;
            group.state_timestamp_ms = now_ms();
            return;
        }
        group.protocol = group.select_protocol();
        if group
            .leader
            .as_ref()
            .is_none_or(|leader| !group.members.contains_key(leader))
        {
            group.leader = group.members.keys().next().cloned();
        }
        group.state = GroupState::CompletingRebalance;
        let ids: Vec<String> = group.members.keys().cloned().collect();
        for id in ids {
            let response = self.join_response(group, &id, 9);
            let member = group.members.get_mut(&id).expect("listed above");
            member.session_deadline = now + Duration::from_millis(member.session_timeout_ms as u64);
            if let Some(waiter) = member.join_waiter.take() {
                let _ = waiter.try_send(response);
            }
        }
    }

    /// The JoinGroup answer of the current generation for `member_id`: the
    /// leader gets every member's metadata for the chosen protocol.
    fn join_response(&self, group: &Group, member_id: &str, _version: i16) -> JoinGroupResponse {
        let mut response = JoinGroupResponse::default();
        response.generation_id = group.generation;
        response.protocol_type = group.protocol_type.as_deref().map(str_bytes);
        response.protocol_name = group.protocol.as_deref().map(str_bytes);
        response.leader = str_bytes(group.leader.as_deref().unwrap_or(""));
        response.member_id = str_bytes(member_id);
        if group.leader.as_deref() == Some(member_id) {
            let protocol = group.protocol.clone().unwrap_or_default();
            response.members = group
                .members
                .values()
                .map(|m| {
                    let mut entry = JoinGroupResponseMember::default();
                    entry.member_id = str_bytes(&m.member_id);
                    entry.group_instance_id = m.group_instance_id.as_deref().map(str_bytes);
                    entry.metadata = m.metadata_for(&protocol);
                    entry
                })
                .collect();
        }
        response
    }

    // ----------------------------------------------------------------- sync

    async fn sync(&self, shard: &Rc<Shard>, version: i16, request: SyncGroupRequest) -> SyncGroupResponse {
        let group_id = request.group_id.0.to_string();
        let identity = Identity::new(&request.member_id, &request.group_instance_id);
        let (receiver, store) = {
            let mut groups = self.groups.borrow_mut();
            let Some(group) = groups.get_mut(&group_id) else {
                return sync_error(error::UNKNOWN_MEMBER_ID);
            };
            if let Err(code) = check_member(group, &identity) {
                return sync_error(code);
            }
            if request.generation_id != group.generation {
                return sync_error(error::ILLEGAL_GENERATION);
            }
            if version >= 5 {
                let mismatched = |asked: &Option<StrBytes>, actual: &Option<String>| {
                    asked
                        .as_ref()
                        .is_some_and(|a| Some(a.as_str()) != actual.as_deref())
                };
                if mismatched(&request.protocol_type, &group.protocol_type)
                    || mismatched(&request.protocol_name, &group.protocol)
                {
                    return sync_error(error::INCONSISTENT_GROUP_PROTOCOL);
                }
            }
            match group.state {
                GroupState::Empty | GroupState::Dead => return sync_error(error::UNKNOWN_MEMBER_ID),
                GroupState::PreparingRebalance => return sync_error(error::REBALANCE_IN_PROGRESS),
                GroupState::Stable => {
                    let member = &group.members[&identity.member_id];
                    return self.sync_response(group, member.assignment.clone());
                }
                GroupState::CompletingRebalance => {}
            }
            let (sender, receiver) = local_channel::new_bounded(1);
            let is_leader = group.leader.as_deref() == Some(identity.member_id.as_str());
            let member = group.members.get_mut(&identity.member_id).expect("checked above");
            member.sync_waiter = Some(sender);
            member.session_deadline =
                Instant::now() + Duration::from_millis(member.session_timeout_ms as u64);
            let mut store = None;
            if is_leader {
                let mut assignments: HashMap<String, Bytes> = request
                    .assignments
                    .iter()
                    .map(|a| (a.member_id.to_string(), a.assignment.clone()))
                    .collect();
                for member in group.members.values_mut() {
                    member.assignment = assignments.remove(&member.member_id).unwrap_or_default();
                }
                let record = GroupRecord::Group {
                    group: group_id.clone(),
                    value: Some(group.to_stored()),
                };
                store = Some((group.partition, group.generation, record));
            }
            (receiver, store)
        };
        if let Some((partition, generation, record)) = store {
            let stored = persist(shard, Some(ApiKey::SyncGroup), partition, vec![record]).await;
            let mut groups = self.groups.borrow_mut();
            if let Some(group) = groups.get_mut(&group_id) {
                if group.generation == generation && group.state == GroupState::CompletingRebalance {
                    match stored {
                        Ok(()) => {
                            group.state = GroupState::Stable;
                            let responses: Vec<(String, SyncGroupResponse)> = group
                                .members
                                .values()
                                .map(|m| {
                                    (
                                        m.member_id.clone(),
                                        self.sync_response(group, m.assignment.clone()),
                                    )
                                })
                                .collect();
                            for (id, response) in responses {
                                if let Some(waiter) = group.members[&id].sync_waiter.as_ref() {
                                    let _ = waiter.try_send(response);
                                }
                                group.members[&id].sync_waiter = None;
                            }
                        }
                        Err(code) => {
                            for member in group.members.values_mut() {
                                member.assignment = Bytes::new();
                                if let Some(waiter) = member.sync_waiter.take() {
                                    let _ = waiter.try_send(sync_error(code));
                                }
                            }
                            self.prepare_rebalance(group, Instant::now(), 0);
                        }
                    }
                }
            }
        }
        receiver
            .recv()
            .await
            .unwrap_or_else(|| sync_error(error::REBALANCE_IN_PROGRESS))
    }

    fn sync_response(&self, group: &Group, assignment: Bytes) -> SyncGroupResponse {
        let mut response = SyncGroupResponse::default();
        response.protocol_type = group.protocol_type.as_deref().map(str_bytes);
        response.protocol_name = group.protocol.as_deref().map(str_bytes);
        response.assignment = assignment;
        response
    }

    // ------------------------------------------------------ heartbeat, leave

    fn heartbeat(&self, group_id: &str, generation: i32, identity: &Identity) -> i16 {
        let mut groups = self.groups.borrow_mut();
        let Some(group) = groups.get_mut(group_id) else {
            return error::UNKNOWN_MEMBER_ID;
        };
        match group.state {
            GroupState::Dead => return error::COORDINATOR_NOT_AVAILABLE,
            GroupState::Empty => return error::UNKNOWN_MEMBER_ID,
            _ => {}
        }
        if let Err(code) = check_member(group, identity) {
            return code;
        }
        if generation != group.generation {
            return error::ILLEGAL_GENERATION;
        }
        let member = group.members.get_mut(&identity.member_id).expect("checked above");
        member.session_deadline = Instant::now() + Duration::from_millis(member.session_timeout_ms as u64);
        if group.state == GroupState::PreparingRebalance {
            error::REBALANCE_IN_PROGRESS
        } else {
            error::NONE
        }
    }

    fn leave(&self, shard: &Rc<Shard>, version: i16, request: LeaveGroupRequest) -> LeaveGroupResponse {
        let mut response = LeaveGroupResponse::default();
        let identities: Vec<Identity> = if version >= 3 {
            request
                .members
                .iter()
                .map(|m| Identity::new(&m.member_id, &m.group_instance_id))
                .collect()
        } else {
            vec![Identity::new(&request.member_id, &None)]
        };
        let mut groups = self.groups.borrow_mut();
        let group = groups.get_mut(&request.group_id.0.to_string());
        let mut results = Vec::new();
        match group {
            None => results.extend(identities.iter().map(|i| (i, error::UNKNOWN_MEMBER_ID))),
            Some(group) => {
                let now = Instant::now();
                for identity in &identities {
                    let member_id = match (&identity.instance, identity.member_id.is_empty()) {
                        (Some(instance), true) => {
                            group.static_members.get(instance).cloned().unwrap_or_default()
                        }
                        _ => identity.member_id.clone(),
                    };
                    let resolved = Identity {
                        member_id: member_id.clone(),
                        instance: identity.instance.clone(),
                    };
                    let code = if group.pending_members.remove(&member_id).is_some() {
                        error::NONE
                    } else {
                        match check_member(group, &resolved) {
                            Ok(()) => {
                                self.remove_member(group, &member_id, now, error::UNKNOWN_MEMBER_ID);
                                error::NONE
                            }
                            Err(code) => code,
                        }
                    };
                    results.push((identity, code));
                }
                self.after_removal(shard, group, now);
            }
        }
        if version >= 3 {
            response.members = results
                .into_iter()
                .map(|(identity, code)| {
                    let mut member = MemberResponse::default();
                    member.member_id = str_bytes(&identity.member_id);
                    member.group_instance_id = identity.instance.as_deref().map(str_bytes);
                    member.error_code = code;
                    member
                })
                .collect();
        } else {
            response.error_code = results.first().map(|(_, code)| *code).unwrap_or(error::NONE);
        }
        response
    }

    /// Removes a member; its waiting requests get `code`. The caller then
    /// calls [`Self::after_removal`] once.
    fn remove_member(&self, group: &mut Group, member_id: &str, _now: Instant, code: i16) {
        let Some(member) = group.members.shift_remove(member_id) else {
            return;
        };
        if let Some(instance) = &member.group_instance_id {
            if group.static_members.get(instance).map(String::as_str) == Some(member_id) {
                group.static_members.remove(instance);
            }
        }
        if let Some(waiter) = member.join_waiter {
            let _ = waiter.try_send(join_error(code, member_id));
        }
        if let Some(waiter) = member.sync_waiter {
            let _ = waiter.try_send(sync_error(code));
        }
        if group.leader.as_deref() == Some(member_id) {
            group.leader = None;
        }
    }

    /// After members left: rebalance the rest (or finish the rebalance in
    /// progress); an empty group's new state is stored.
    fn after_removal(&self, shard: &Rc<Shard>, group: &mut Group, now: Instant) {
        match group.state {
            GroupState::Stable | GroupState::CompletingRebalance => {
                self.prepare_rebalance(group, now, 0);
                self.try_complete_join(group, now);
            }
            GroupState::PreparingRebalance => self.try_complete_join(group, now),
            GroupState::Empty | GroupState::Dead => {}
        }
        if group.state == GroupState::Empty {
            persist_later(shard, group);
        }
    }

    // -------------------------------------------------------------- offsets

    async fn commit(&self, shard: &Rc<Shard>, request: OffsetCommitRequest) -> OffsetCommitResponse {
        let commit = CommitInput {
            group_id: request.group_id.0.to_string(),
            generation: request.generation_id_or_member_epoch,
            identity: Identity::new(&request.member_id, &request.group_instance_id),
            topics: offsets_to_commit!(request.topics),
            producer: None,
        };
        let results = self.commit_offsets(shard, commit).await;
        commit_response!(
            OffsetCommitResponse,
            OffsetCommitResponseTopic,
            OffsetCommitResponsePartition,
            results
        )
    }

    /// TxnOffsetCommit: the offsets are stored as part of the producer's
    /// transaction and take effect at its COMMIT marker (dropped at ABORT).
    async fn txn_commit(
        &self,
        shard: &Rc<Shard>,
        request: TxnOffsetCommitRequest,
    ) -> TxnOffsetCommitResponse {
        let commit = CommitInput {
            group_id: request.group_id.0.to_string(),
            generation: request.generation_id,
            identity: Identity::new(&request.member_id, &request.group_instance_id),
            topics: offsets_to_commit!(request.topics),
            producer: Some((request.producer_id.0, request.producer_epoch)),
        };
        let results = self.commit_offsets(shard, commit).await;
        commit_response!(
            TxnOffsetCommitResponse,
            TxnOffsetCommitResponseTopic,
            TxnOffsetCommitResponsePartition,
            results
        )
    }

    /// OffsetCommit and TxnOffsetCommit: group checks, per-partition
    /// validation, durable append; returns (topic, [(partition, error)]).
    async fn commit_offsets(
        &self,
        shard: &Rc<Shard>,
        input: CommitInput,
    ) -> Vec<(StrBytes, Vec<(i32, i16)>)> {
        let CommitInput {
            group_id,
            generation,
            identity,
            topics,
            producer,
        } = input;
        // A transactional commit without member information (generation
        // -1, empty member id) is not checked against the group, as Kafka.
        let unchecked_txn = producer.is_some() && generation < 0 && identity.member_id.is_empty();
        let metadata = shard.metadata();
        let now = now_ms();
        // Group-level checks, then per-partition validation.
        let checked: Result<i32, i16> = {
            let mut groups = self.groups.borrow_mut();
            if !groups.contains_key(&group_id) && generation < 0 && !group_id.is_empty() {
                let partition = partition_for(&group_id, offsets_partitions(shard));
                groups.insert(group_id.clone(), Group::new(group_id.clone(), partition, now));
            }
            match groups.get_mut(&group_id) {
                None if group_id.is_empty() => Err(error::INVALID_GROUP_ID),
                None => Err(error::ILLEGAL_GENERATION),
                Some(group) => {
                    if group.state == GroupState::Dead {
                        Err(error::COORDINATOR_NOT_AVAILABLE)
                    } else if unchecked_txn {
                        Ok(group.partition)
                    } else if identity.instance.as_ref().is_some_and(|i| {
                        group
                            .static_members
                            .get(i)
                            .is_some_and(|m| *m != identity.member_id)
                    }) {
                        Err(error::FENCED_INSTANCE_ID)
                    } else if let Some(consumer) = group.consumer.as_ref().filter(|c| !c.members.is_empty()) {
                        // KIP-848 member: the generation field is its epoch.
                        match consumer.members.get(&identity.member_id) {
                            None => Err(error::UNKNOWN_MEMBER_ID),
                            Some(member) if member.epoch != generation => Err(error::STALE_MEMBER_EPOCH),
                            Some(_) => Ok(group.partition),
                        }
                    } else if generation < 0 && group.state == GroupState::Empty {
                        Ok(group.partition)
                    } else if group.state == GroupState::CompletingRebalance {
                        Err(error::REBALANCE_IN_PROGRESS)
                    } else if !group.members.contains_key(&identity.member_id) {
                        Err(error::UNKNOWN_MEMBER_ID)
                    } else if generation != group.generation {
                        Err(error::ILLEGAL_GENERATION)
                    } else {
                        let member = group.members.get_mut(&identity.member_id).expect("checked above");
                        member.session_deadline =
                            Instant::now() + Duration::from_millis(member.session_timeout_ms as u64);
                        Ok(group.partition)
                    }
                }
            }
        };
        let mut results: Vec<(StrBytes, Vec<(i32, i16)>)> = Vec::new();
        let mut records = Vec::new();
        for (topic_name, offsets) in topics {
            let name = topic_name.to_string();
            let known = metadata.topic(&name);
            let mut partitions = Vec::new();
            for p in offsets {
                let code = match checked {
                    Err(code) => code,
                    Ok(_) if known.is_none_or(|t| p.partition < 0 || p.partition >= t.partition_count()) => {
                        error::UNKNOWN_TOPIC_OR_PARTITION
                    }
                    Ok(_) if p.metadata.as_ref().map_or(0, |m| m.len()) > OFFSET_METADATA_BYTES_MAX => {
                        error::OFFSET_METADATA_TOO_LARGE
                    }
                    Ok(_) => {
                        records.push(GroupRecord::Offset {
                            group: group_id.clone(),
                            topic: name.clone(),
                            partition: p.partition,
                            value: Some(CommittedOffset {
                                offset: p.offset,
                                leader_epoch: p.leader_epoch,
                                metadata: p.metadata.unwrap_or_default(),
                                commit_timestamp_ms: now,
                            }),
                        });
                        error::NONE
                    }
                };
                partitions.push((p.partition, code));
            }
            results.push((topic_name, partitions));
        }
        if let (Ok(partition), false) = (checked, records.is_empty()) {
            let api = match producer {
                None => ApiKey::OffsetCommit,
                Some(_) => ApiKey::TxnOffsetCommit,
            };
            let stored = persist_as(shard, Some(api), partition, records.clone(), producer).await;
            match stored {
                Ok(()) => match producer {
                    None => self.apply_offsets(&group_id, records),
                    Some((producer_id, _)) => {
                        for record in records {
                            self.add_pending_txn_offset(partition, producer_id, record);
                        }
                    }
                },
                Err(code) => {
                    for (_, partitions) in &mut results {
                        for (_, result) in partitions.iter_mut() {
                            if *result == error::NONE {
                                *result = code;
                            }
                        }
                    }
                }
            }
        }
        results
    }

    /// Remembers a transactional offset commit until its marker.
    fn add_pending_txn_offset(&self, partition: i32, producer_id: i64, record: GroupRecord) {
        self.pending_txn_offsets
            .borrow_mut()
            .entry((partition, producer_id))
            .or_default()
            .push(record);
    }

    /// A transaction marker of `producer_id` was appended to (or replayed
    /// from) offsets partition `partition`: its offset commits take effect
    /// (COMMIT) or are dropped (ABORT).
    pub fn complete_txn_offsets(&self, partition: i32, producer_id: i64, commit: bool) {
        let Some(records) = self
            .pending_txn_offsets
            .borrow_mut()
            .remove(&(partition, producer_id))
        else {
            return;
        };
        if !commit {
            return;
        }
        let now = now_ms();
        for record in records {
            let group_id = record.group().to_string();
            self.groups
                .borrow_mut()
                .entry(group_id.clone())
                .or_insert_with(|| Group::new(group_id.clone(), partition, now));
            self.apply_offsets(&group_id, vec![record]);
        }
    }

    fn apply_offsets(&self, group_id: &str, records: Vec<GroupRecord>) {
        let mut groups = self.groups.borrow_mut();
        let Some(group) = groups.get_mut(group_id) else {
            return;
        };
        for record in records {
            if let GroupRecord::Offset {
                topic,
                partition,
                value,
                ..
            } = record
            {
                match value {
                    Some(value) => {
                        group.offsets.insert((topic, partition), value);
                    }
                    None => {
                        group.offsets.remove(&(topic, partition));
                    }
                }
            }
        }
    }

    fn fetch_offsets(
        &self,
        group_id: &str,
        topics: Option<Vec<(String, Vec<i32>)>>,
    ) -> Vec<(String, i32, Option<CommittedOffset>)> {
        let groups = self.groups.borrow();
        let group = groups.get(group_id);
        match topics {
            None => group
                .map(|g| {
                    g.offsets
                        .iter()
                        .map(|((topic, partition), committed)| {
                            (topic.clone(), *partition, Some(committed.clone()))
                        })
                        .collect()
                })
                .unwrap_or_default(),
            Some(topics) => topics
                .into_iter()
                .flat_map(|(topic, partitions)| {
                    partitions.into_iter().map(move |p| {
                        let committed = group.and_then(|g| g.offsets.get(&(topic.clone(), p)).cloned());
                        (topic.clone(), p, committed)
                    })
                })
                .collect(),
        }
    }

    // ------------------------------------------------ describe, list, delete

    fn describe(&self, group_id: &str) -> DescribedGroup {
        let groups = self.groups.borrow();
        let Some(group) = groups.get(group_id) else {
            return DescribedGroup {
                state: GroupState::Dead.name().into(),
                ..Default::default()
            };
        };
        if let Some(consumer) = group.consumer.as_ref().filter(|c| !c.members.is_empty()) {
            return DescribedGroup {
                state: consumer.state_name().into(),
                protocol_type: "consumer".into(),
                protocol: consumer.assignor.clone(),
                members: consumer
                    .members
                    .values()
                    .map(|m| DescribedMember {
                        member_id: m.member_id.clone(),
                        group_instance_id: m.instance_id.clone(),
                        client_id: m.client_id.clone(),
                        client_host: m.client_host.clone(),
                        metadata: Bytes::new(),
                        assignment: Bytes::new(),
                    })
                    .collect(),
            };
        }
        let protocol = group.protocol.clone().unwrap_or_default();
        DescribedGroup {
            state: group.state.name().into(),
            protocol_type: group.protocol_type.clone().unwrap_or_default(),
            protocol: protocol.clone(),
            members: group
                .members
                .values()
                .map(|m| DescribedMember {
                    member_id: m.member_id.clone(),
                    group_instance_id: m.group_instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    metadata: if group.state == GroupState::Stable {
                        m.metadata_for(&protocol)
                    } else {
                        Bytes::new()
                    },
                    assignment: if group.state == GroupState::Stable {
                        m.assignment.clone()
                    } else {
                        Bytes::new()
                    },
                })
                .collect(),
        }
    }

    fn list(&self) -> Vec<ListedGroup> {
        self.groups
            .borrow()
            .values()
            .filter(|g| g.state != GroupState::Dead)
            .map(|g| match g.consumer.as_ref() {
                Some(consumer) => ListedGroup {
                    group_id: g.id.clone(),
                    protocol_type: "consumer".into(),
                    state: consumer.state_name().into(),
                    group_type: "consumer",
                },
                None => ListedGroup {
                    group_id: g.id.clone(),
                    protocol_type: g.protocol_type.clone().unwrap_or_default(),
                    state: g.state.name().into(),
                    group_type: "classic",
                },
            })
            .collect()
    }

    async fn delete(&self, shard: &Rc<Shard>, group_id: &str) -> i16 {
        let (partition, records) = {
            let mut groups = self.groups.borrow_mut();
            let Some(group) = groups.get_mut(group_id) else {
                return error::GROUP_ID_NOT_FOUND;
            };
            match group.state {
                GroupState::Dead => return error::GROUP_ID_NOT_FOUND,
                GroupState::Empty if group.consumer_members() == 0 => {}
                _ => return error::NON_EMPTY_GROUP,
            }
            group.state = GroupState::Dead;
            (group.partition, tombstones(group))
        };
        let stored = persist(shard, Some(ApiKey::DeleteGroups), partition, records).await;
        let mut groups = self.groups.borrow_mut();
        match stored {
            Ok(()) => {
                groups.remove(group_id);
                error::NONE
            }
            Err(code) => {
                if let Some(group) = groups.get_mut(group_id) {
                    group.state = GroupState::Empty;
                }
                code
            }
        }
    }

    async fn delete_offsets(
        &self,
        shard: &Rc<Shard>,
        group_id: &str,
        topics: Vec<(String, Vec<i32>)>,
    ) -> Result<Vec<(String, i32, i16)>, i16> {
        let (partition, results, records) = {
            let groups = self.groups.borrow();
            let group = groups.get(group_id).ok_or(error::GROUP_ID_NOT_FOUND)?;
            if group.state == GroupState::Dead {
                return Err(error::GROUP_ID_NOT_FOUND);
            }
            let subscribed = match group.consumer.as_ref() {
                Some(consumer) => consumer
                    .members
                    .values()
                    .flat_map(|m| m.subscribed_topics.iter().cloned())
                    .collect(),
                None if group.members.is_empty() => Default::default(),
                None => group.subscribed_topics().unwrap_or_default(),
            };
            let mut results = Vec::new();
            let mut records = Vec::new();
            for (topic, partitions) in topics {
                for p in partitions {
                    if subscribed.contains(&topic) {
                        results.push((topic.clone(), p, error::GROUP_SUBSCRIBED_TO_TOPIC));
                        continue;
                    }
                    if group.offsets.contains_key(&(topic.clone(), p)) {
                        records.push(GroupRecord::Offset {
                            group: group_id.to_string(),
                            topic: topic.clone(),
                            partition: p,
                            value: None,
                        });
                    }
                    results.push((topic.clone(), p, error::NONE));
                }
            }
            (group.partition, results, records)
        };
        if !records.is_empty() {
            persist(shard, Some(ApiKey::OffsetDelete), partition, records.clone()).await?;
            self.apply_offsets(group_id, records);
        }
        Ok(results)
    }

    // --------------------------------------------------- expiry and replay

    /// Expires sessions, ends timed-out rebalances and initial delays, and
    /// drops offsets of groups empty for longer than the retention.
    pub fn expire(&self, shard: &Rc<Shard>, now: Instant) {
        let (_, _, _, retention_ms) = Self::limits(shard);
        let now_wall_ms = now_ms();
        let mut groups = self.groups.borrow_mut();
        let mut emptied = Vec::new();
        for group in groups.values_mut() {
            if group.state == GroupState::Dead {
                continue;
            }
            if let Some(consumer) = group.consumer.as_mut() {
                let had_members = !consumer.members.is_empty();
                let expired = consumer.expire(now);
                for member_id in &expired {
                    crate::info_limited!(
                        "group member expired",
                        "group {}: member {member_id} expired (KIP-848 session or revocation timeout)",
                        group.id
                    );
                }
                if had_members && consumer.members.is_empty() {
                    group.state_timestamp_ms = now_wall_ms;
                }
                if let Some(snapshot) = consumer.changed_snapshot() {
                    let record = GroupRecord::ConsumerGroup {
                        group: group.id.clone(),
                        value: Some(snapshot),
                    };
                    spawn_persist(shard, group.partition, vec![record]);
                }
            }
            let before = group.pending_members.len();
            group.pending_members.retain(|_, deadline| *deadline > now);
            let pending_expired = group.pending_members.len() < before;
            // Members waiting in JoinGroup or SyncGroup are alive.
            let expired: Vec<String> = group
                .members
                .values()
                .filter(|m| m.session_deadline <= now && m.join_waiter.is_none() && m.sync_waiter.is_none())
                .map(|m| m.member_id.clone())
                .collect();
            for member_id in &expired {
                crate::info_limited!(
                    "group member expired",
                    "group {}: member {member_id} expired (no heartbeat within its session timeout)",
                    group.id
                );
                self.remove_member(group, member_id, now, error::UNKNOWN_MEMBER_ID);
            }
            if !expired.is_empty() {
                self.after_removal(shard, group, now);
            } else if group.state == GroupState::PreparingRebalance {
                if group.rebalance_deadline.is_some_and(|d| d <= now) {
                    let late: Vec<String> = group
                        .members
                        .values()
                        .filter(|m| m.join_waiter.is_none())
                        .map(|m| m.member_id.clone())
                        .collect();
                    for member_id in &late {
                        self.remove_member(group, member_id, now, error::UNKNOWN_MEMBER_ID);
                    }
                    self.complete_join(group, now);
                    if group.state == GroupState::Empty {
                        persist_later(shard, group);
                    }
                } else if pending_expired || self.initial_delay_until.borrow().contains_key(&group.id) {
                    self.try_complete_join(group, now);
                }
            }
            if group.state == GroupState::Empty
                && group.consumer_members() == 0
                && group.pending_members.is_empty()
                && now_wall_ms.saturating_sub(group.state_timestamp_ms) > retention_ms
            {
                emptied.push(group.id.clone());
            }
        }
        for group_id in emptied {
            if let Some(group) = groups.remove(&group_id) {
                crate::info_limited!(
                    "group offsets expired",
                    "group {group_id}: offsets expired (empty for longer than offsets_retention_minutes)"
                );
                spawn_persist(shard, group.partition, tombstones(&group));
            }
        }
    }

    /// Rebuilds groups and offsets from partition `partition` of
    /// `__consumer_offsets` (this shard owns it). Run before serving.
    pub async fn load(&self, shard: &Rc<Shard>, partition: i32) -> Result<usize, String> {
        let Some(log) = shard.log(OFFSETS_TOPIC, partition) else {
            return Ok(0);
        };
        let mut applied = 0usize;
        let mut records = Vec::new();
        log.replay(|mut batch, header| {
            let offset = header.base_offset;
            if header.is_control() {
                if let Some(marker) = crate::protocol::control_record::parse_marker(&batch, header) {
                    records.push(Replayed::Marker {
                        producer_id: header.producer_id,
                        commit: marker.commit,
                    });
                }
                return;
            }
            let transactional = header.is_transactional().then_some(header.producer_id);
            match kafka_protocol::records::RecordBatchDecoder::decode(&mut batch) {
                Ok(decoded) => {
                    for record in decoded.records {
                        match GroupRecord::decode(record.key.as_ref(), record.value.as_ref()) {
                            Ok(record) => records.push(Replayed::Record(record, transactional)),
                            Err(e) => log::warn!(
                                "{OFFSETS_TOPIC}-{partition} offset {}: record skipped: {e}",
                                record.offset
                            ),
                        }
                    }
                }
                Err(e) => log::warn!("{OFFSETS_TOPIC}-{partition}: batch at {offset} skipped: {e}"),
            }
        })
        .await
        .map_err(|e| format!("replaying {OFFSETS_TOPIC}-{partition}: {e}"))?;
        for replayed in records {
            match replayed {
                Replayed::Record(record, None) => self.apply_replayed(shard, partition, record),
                Replayed::Record(record, Some(producer_id)) => {
                    self.add_pending_txn_offset(partition, producer_id, record)
                }
                Replayed::Marker { producer_id, commit } => {
                    self.complete_txn_offsets(partition, producer_id, commit)
                }
            }
            applied += 1;
        }
        Ok(applied)
    }

    fn apply_replayed(&self, shard: &Rc<Shard>, partition: i32, record: GroupRecord) {
        let mut groups = self.groups.borrow_mut();
        let group_id = record.group().to_string();
        match record {
            GroupRecord::Offset {
                topic,
                partition: topic_partition,
                value,
                ..
            } => match value {
                Some(value) => {
                    let group = groups
                        .entry(group_id.clone())
                        .or_insert_with(|| Group::new(group_id, partition, now_ms()));
                    group.offsets.insert((topic, topic_partition), value);
                }
                None => {
                    if let Some(group) = groups.get_mut(&group_id) {
                        group.offsets.remove(&(topic, topic_partition));
                    }
                }
            },
            GroupRecord::ConsumerGroup { value, .. } => match value {
                Some(snapshot) => {
                    let session_ms = shard.config.group_consumer_session_timeout_ms;
                    match super::consumer::ConsumerGroup::from_snapshot(snapshot, Instant::now(), session_ms)
                    {
                        Ok(consumer) => {
                            let group = groups
                                .entry(group_id.clone())
                                .or_insert_with(|| Group::new(group_id, partition, now_ms()));
                            group.consumer = Some(consumer);
                        }
                        Err(e) => log::warn!("group {group_id}: KIP-848 snapshot skipped: {e}"),
                    }
                }
                None => {
                    if let Some(group) = groups.get_mut(&group_id) {
                        group.consumer = None;
                    }
                }
            },
            GroupRecord::Group { value, .. } => match value {
                Some(stored) => {
                    let group = groups
                        .entry(group_id.clone())
                        .or_insert_with(|| Group::new(group_id, partition, now_ms()));
                    group.restore(stored, Instant::now());
                }
                None => {
                    groups.remove(&group_id);
                }
            },
        }
    }
}

impl GroupCoordinator {
    /// KIP-848 ConsumerGroupHeartbeat: join, heartbeat, leave. A change
    /// of the group is stored before the member hears of it.
    async fn consumer_heartbeat(
        &self,
        shard: &Rc<Shard>,
        request: ConsumerGroupHeartbeatRequest,
        client_id: String,
        client_host: String,
    ) -> ConsumerGroupHeartbeatResponse {
        let (response, store) = self.consumer_heartbeat_now(shard, request, client_id, client_host);
        if let Some((partition, record)) = store {
            if let Err(code) = persist(
                shard,
                Some(ApiKey::ConsumerGroupHeartbeat),
                partition,
                vec![record],
            )
            .await
            {
                let mut failed = ConsumerGroupHeartbeatResponse::default();
                failed.error_code = code;
                failed.error_message = Some(str_bytes("the group's new state could not be stored"));
                failed.member_epoch = -1;
                failed.heartbeat_interval_ms = response.heartbeat_interval_ms;
                return failed;
            }
        }
        response
    }

    fn consumer_heartbeat_now(
        &self,
        shard: &Rc<Shard>,
        request: ConsumerGroupHeartbeatRequest,
        client_id: String,
        client_host: String,
    ) -> (ConsumerGroupHeartbeatResponse, Option<(i32, GroupRecord)>) {
        let mut response = ConsumerGroupHeartbeatResponse::default();
        response.heartbeat_interval_ms = shard.config.group_consumer_heartbeat_interval_ms;
        let group_id = request.group_id.0.to_string();
        let metadata = shard.metadata();
        let mut fail = |code: i16, message: &str| {
            response.error_code = code;
            response.error_message = Some(str_bytes(message));
            response.member_epoch = -1;
            (response.clone(), None)
        };
        if group_id.is_empty() {
            return fail(error::INVALID_REQUEST, "group id is empty");
        }
        let mut groups = self.groups.borrow_mut();
        if !groups.contains_key(&group_id) {
            if request.member_epoch != 0 {
                return fail(error::UNKNOWN_MEMBER_ID, "unknown group");
            }
            let partition = partition_for(&group_id, offsets_partitions(shard));
            groups.insert(
                group_id.clone(),
                Group::new(group_id.clone(), partition, now_ms()),
            );
        }
        let group = groups.get_mut(&group_id).expect("inserted above");
        if group.state == GroupState::Dead {
            return fail(error::COORDINATOR_NOT_AVAILABLE, "group is being deleted");
        }
        if !group.members.is_empty() || !group.pending_members.is_empty() {
            return fail(
                error::INCONSISTENT_GROUP_PROTOCOL,
                "the group has members of the classic protocol",
            );
        }
        let owned = request.topic_partitions.as_ref().map(|partitions| {
            let mut owned = super::consumer::Assignment::new();
            for topic in partitions {
                if let Some((name, _)) = metadata.topic_by_id(topic.topic_id.as_bytes()) {
                    owned
                        .entry(name.clone())
                        .or_default()
                        .extend(topic.partitions.iter().copied());
                }
            }
            owned
        });
        let heartbeat = super::consumer::Heartbeat {
            member_id: request.member_id.to_string(),
            member_epoch: request.member_epoch,
            instance_id: request.instance_id.as_ref().map(|s| s.to_string()),
            rack_id: request.rack_id.as_ref().map(|s| s.to_string()),
            rebalance_timeout_ms: request.rebalance_timeout_ms,
            subscribed_topics: request
                .subscribed_topic_names
                .as_ref()
                .map(|names| names.iter().map(|n| n.0.to_string()).collect()),
            server_assignor: request.server_assignor.as_ref().map(|s| s.to_string()),
            owned,
            client_id,
            client_host,
        };
        let consumer = group.consumer.get_or_insert_with(Default::default);
        let had_members = !consumer.members.is_empty();
        let answer = consumer.heartbeat(
            heartbeat,
            &metadata,
            Instant::now(),
            shard.config.group_consumer_session_timeout_ms,
            crate::metadata::new_topic_id,
        );
        if had_members && consumer.members.is_empty() {
            group.state_timestamp_ms = now_ms();
        }
        let store = consumer.changed_snapshot().map(|snapshot| {
            let record = GroupRecord::ConsumerGroup {
                group: group_id.clone(),
                value: Some(snapshot),
            };
            (group.partition, record)
        });
        match answer {
            Err((code, message)) => fail(code, &message),
            Ok(answer) => {
                response.member_id = Some(str_bytes(&answer.member_id));
                response.member_epoch = answer.member_epoch;
                response.assignment = answer.assignment.map(|assignment| {
                    let mut out = consumer_group_heartbeat_response::Assignment::default();
                    out.topic_partitions = assignment
                        .into_iter()
                        .filter_map(|(topic, partitions)| {
                            let id = metadata.topic(&topic)?.id_bytes();
                            let mut entry = consumer_group_heartbeat_response::TopicPartitions::default();
                            entry.topic_id = uuid::Uuid::from_bytes(id);
                            entry.partitions = partitions.into_iter().collect();
                            Some(entry)
                        })
                        .collect();
                    out
                });
                (response, store)
            }
        }
    }

    /// KIP-848 ConsumerGroupDescribe of one group.
    fn consumer_describe(
        &self,
        shard: &Rc<Shard>,
        group_id: &str,
    ) -> consumer_group_describe_response::DescribedGroup {
        use consumer_group_describe_response::{
            Assignment, DescribedGroup as Described, Member, TopicPartitions,
        };
        let metadata = shard.metadata();
        let mut described = Described::default();
        described.group_id = kafka_protocol::messages::GroupId(str_bytes(group_id));
        described.authorized_operations = i32::MIN;
        let groups = self.groups.borrow();
        let Some(consumer) = groups.get(group_id).and_then(|g| g.consumer.as_ref()) else {
            described.error_code = error::GROUP_ID_NOT_FOUND;
            described.error_message = Some(str_bytes("no consumer group with this id"));
            return described;
        };
        let to_wire = |assignment: &super::consumer::Assignment| {
            let mut out = Assignment::default();
            out.topic_partitions = assignment
                .iter()
                .filter_map(|(topic, partitions)| {
                    let id = metadata.topic(topic)?.id_bytes();
                    let mut entry = TopicPartitions::default();
                    entry.topic_id = uuid::Uuid::from_bytes(id);
                    entry.topic_name = kafka_protocol::messages::TopicName(str_bytes(topic));
                    entry.partitions = partitions.iter().copied().collect();
                    Some(entry)
                })
                .collect();
            out
        };
        described.group_state = str_bytes(consumer.state_name());
        described.group_epoch = consumer.group_epoch;
        described.assignment_epoch = consumer.assignment_epoch;
        described.assignor_name = str_bytes(&consumer.assignor);
        described.members = consumer
            .members
            .values()
            .map(|m| {
                let mut member = Member::default();
                member.member_id = str_bytes(&m.member_id);
                member.instance_id = m.instance_id.as_deref().map(str_bytes);
                member.rack_id = m.rack_id.as_deref().map(str_bytes);
                member.member_epoch = m.epoch;
                member.client_id = str_bytes(&m.client_id);
                member.client_host = str_bytes(&m.client_host);
                member.subscribed_topic_names = m
                    .subscribed_topics
                    .iter()
                    .map(|t| kafka_protocol::messages::TopicName(str_bytes(t)))
                    .collect();
                member.assignment = to_wire(&m.assigned);
                member.target_assignment =
                    to_wire(consumer.target.get(&m.member_id).unwrap_or(&Default::default()));
                member.member_type = 1; // consumer protocol member
                member
            })
            .collect();
        described
    }
}

/// The records that delete a group: its offsets, its metadata and its
/// KIP-848 state.
fn tombstones(group: &Group) -> Vec<GroupRecord> {
    let mut records: Vec<GroupRecord> = group
        .offsets
        .keys()
        .map(|(topic, partition)| GroupRecord::Offset {
            group: group.id.clone(),
            topic: topic.clone(),
            partition: *partition,
            value: None,
        })
        .collect();
    records.push(GroupRecord::Group {
        group: group.id.clone(),
        value: None,
    });
    if group.consumer.is_some() {
        records.push(GroupRecord::ConsumerGroup {
            group: group.id.clone(),
            value: None,
        });
    }
    records
}

/// Partitions of `__consumer_offsets`: as created, else as configured.
pub fn offsets_partitions(shard: &Shard) -> i32 {
    shard
        .metadata()
        .topic(OFFSETS_TOPIC)
        .map(|t| t.partition_count())
        .unwrap_or(shard.config.offsets_topic_partitions)
}

/// Appends `records` to partition `partition` of `__consumer_offsets` on
/// this shard, durably (as acks=all is, per `fsync_policy`), timed under
/// `api` (the request it serves) if any.
pub async fn persist(
    shard: &Rc<Shard>,
    api: Option<ApiKey>,
    partition: i32,
    records: Vec<GroupRecord>,
) -> Result<(), i16> {
    persist_as(shard, api, partition, records, None).await
}

/// As [`persist`], in the transaction of `producer` (id, epoch) if any. A
/// fenced producer (an older epoch than the partition knows) gets
/// INVALID_PRODUCER_EPOCH.
async fn persist_as(
    shard: &Rc<Shard>,
    api: Option<ApiKey>,
    partition: i32,
    records: Vec<GroupRecord>,
    producer: Option<(i64, i16)>,
) -> Result<(), i16> {
    let batch = encode_batch_as(&records, now_ms(), producer);
    shard
        .append_internal(OFFSETS_TOPIC, partition, batch, api)
        .await
        .map_err(|e| match e {
            None => error::NOT_COORDINATOR,
            Some(crate::log::LogError::Producer(_)) => error::INVALID_PRODUCER_EPOCH,
            Some(e) => {
                log::error!("{OFFSETS_TOPIC}-{partition}: append failed: {e}");
                error::COORDINATOR_NOT_AVAILABLE
            }
        })
}

fn spawn_persist(shard: &Rc<Shard>, partition: i32, records: Vec<GroupRecord>) {
    let shard = shard.clone();
    glommio::spawn_local(async move {
        if let Err(code) = persist(&shard, None, partition, records).await {
            crate::warn_limited!(
                "group state not stored",
                "{OFFSETS_TOPIC}-{partition}: group state not stored (error {code})"
            );
        }
    })
    .detach();
}

/// Stores the group's current metadata in the background (state changes
/// that no request waits for: a group that became empty).
fn persist_later(shard: &Rc<Shard>, group: &Group) {
    let record = GroupRecord::Group {
        group: group.id.clone(),
        value: Some(group.to_stored()),
    };
    spawn_persist(shard, group.partition, vec![record]);
}

/// The expiry task of one shard; ends when the shard stops.
pub async fn run_expiry(shard: Rc<Shard>) {
    while !shard.stopping.get() {
        glommio::timer::sleep(Duration::from_millis(EXPIRY_TICK_MS)).await;
        shard.groups.expire(&shard, Instant::now());
    }
}
