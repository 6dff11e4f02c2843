//! Consumer groups (the classic protocol: FindCoordinator, JoinGroup,
//! SyncGroup, Heartbeat, LeaveGroup, OffsetCommit, OffsetFetch,
//! DescribeGroups, ListGroups, DeleteGroups, OffsetDelete) driven by a real
//! client, librdkafka through `rdkafka`, and by hand-built frames where a real
//! client cannot misbehave on purpose (a member that joins and then goes
//! silent, bad requests).
//!
//! What the scenarios prove:
//! - members of a group split a topic's partitions: at every moment no
//!   partition is owned by two members, and at every stable point each is
//!   owned by exactly one, while members join and leave;
//! - with synchronous commits after processing, every record is consumed and
//!   no record below a committed offset is ever delivered to the group again;
//! - committed offsets survive a clean restart and a SIGKILL, and a new member
//!   resumes exactly at them;
//! - a member that stops heartbeating is expired after its session timeout
//!   and its partitions move to the live member;
//! - a static member (`group.instance.id`), leader or follower, that comes
//!   back within its session timeout gets its partitions back without a
//!   rebalance of the others;
//! - with cooperative-sticky, partitions that stay with a member are never
//!   revoked from it, and with the KIP-848 consumer protocol
//!   (ConsumerGroupHeartbeat) a joining member takes its share without the
//!   first member losing anything else;
//! - bad requests get Kafka's error codes, and the broker keeps serving other
//!   groups.
//!
//! Every broker here runs with `group_initial_rebalance_delay_ms = 0` so that
//! groups form without Kafka's 3 s initial delay. Waits are deadlines with
//! polling; nothing asserts how long anything took.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::ErrorKind;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::consumer_protocol_assignment::TopicPartition as AssignedTopicPartition;
use kafka_protocol::messages::delete_groups_request::DeleteGroupsRequest;
use kafka_protocol::messages::describe_groups_request::DescribeGroupsRequest;
use kafka_protocol::messages::describe_groups_response::DescribedGroup;
use kafka_protocol::messages::find_coordinator_request::FindCoordinatorRequest;
use kafka_protocol::messages::heartbeat_request::HeartbeatRequest;
use kafka_protocol::messages::join_group_request::{JoinGroupRequest, JoinGroupRequestProtocol};
use kafka_protocol::messages::join_group_response::JoinGroupResponse;
use kafka_protocol::messages::leave_group_request::{LeaveGroupRequest, MemberIdentity};
use kafka_protocol::messages::list_groups_request::ListGroupsRequest;
use kafka_protocol::messages::list_groups_response::ListGroupsResponse;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequest, OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_delete_request::{
    OffsetDeleteRequest, OffsetDeleteRequestPartition, OffsetDeleteRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::{
    OffsetFetchRequest, OffsetFetchRequestGroup, OffsetFetchRequestTopic, OffsetFetchRequestTopics,
};
use kafka_protocol::messages::sync_group_request::{SyncGroupRequest, SyncGroupRequestAssignment};
use kafka_protocol::messages::sync_group_response::SyncGroupResponse;
use kafka_protocol::messages::{
    ApiKey, ConsumerProtocolAssignment, ConsumerProtocolSubscription, GroupId, ResponseHeader,
};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, StrBytes};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, RebalanceProtocol};
use rdkafka::message::Message;
use rdkafka::{ClientContext, Offset, TopicPartitionList};

use common::wire::{self, Connection};
use common::{
    client_config, create_topic, produce_all_acked, produce_and_flush, producer_config, recording_producer,
    Broker, BrokerOptions, DeliveryLog, RecordingProducer, TestMessage,
};

// ---------------------------------------------------------------------------
// Limits and Kafka constants
// ---------------------------------------------------------------------------

/// Upper bound for a group to reach a state the test waits for (formed,
/// rebalanced, drained). Generous: the machine is small and shared.
const GROUP_TIMEOUT: Duration = Duration::from_secs(60);
/// How long one member poll may block while the test round-robins members.
const MEMBER_POLL_WAIT: Duration = Duration::from_millis(20);
/// Most records one member processes before its offsets are committed.
const BATCH_RECORDS_MAX: usize = 50;
/// The broker's minimum session timeout (`group_min_session_timeout_ms`).
const SESSION_TIMEOUT_MIN_MS: i32 = 6_000;
/// The broker's maximum session timeout (`group_max_session_timeout_ms`).
const SESSION_TIMEOUT_MAX_MS: i32 = 1_800_000;
/// Session timeout of raw members that must stay members for a whole test.
const RAW_SESSION_TIMEOUT_MS: i32 = 30_000;
const RAW_REBALANCE_TIMEOUT_MS: i32 = 30_000;
/// Client id of every raw connection (`tests/common/wire.rs`).
const RAW_CLIENT_ID: &str = "weir-wire-test";

const ERROR_NONE: i16 = 0;
const ERROR_COORDINATOR_LOAD_IN_PROGRESS: i16 = 14;
const ERROR_COORDINATOR_NOT_AVAILABLE: i16 = 15;
const ERROR_NOT_COORDINATOR: i16 = 16;
const ERROR_ILLEGAL_GENERATION: i16 = 22;
const ERROR_INCONSISTENT_GROUP_PROTOCOL: i16 = 23;
const ERROR_UNKNOWN_MEMBER_ID: i16 = 25;
const ERROR_INVALID_SESSION_TIMEOUT: i16 = 26;
const ERROR_NON_EMPTY_GROUP: i16 = 68;
const ERROR_GROUP_ID_NOT_FOUND: i16 = 69;
const ERROR_MEMBER_ID_REQUIRED: i16 = 79;
const ERROR_GROUP_SUBSCRIBED_TO_TOPIC: i16 = 86;

/// Errors a coordinator may answer while it is starting or loading offsets:
/// clients retry them.
const COORDINATOR_STARTING_ERRORS: [i16; 3] = [
    ERROR_COORDINATOR_LOAD_IN_PROGRESS,
    ERROR_COORDINATOR_NOT_AVAILABLE,
    ERROR_NOT_COORDINATOR,
];

/// Broker settings for every test: groups form without the initial
/// rebalance delay, and a small offsets topic keeps the broker lean.
const GROUP_BROKER_CONFIG: &str = "group_initial_rebalance_delay_ms = 0\noffsets_topic_partitions = 4\n";

fn start_broker() -> Broker {
    Broker::start_with(BrokerOptions {
        config_toml: Some(GROUP_BROKER_CONFIG.to_string()),
        ..BrokerOptions::default()
    })
}

// ---------------------------------------------------------------------------
// rdkafka group members
// ---------------------------------------------------------------------------

/// A group consumer: manual commits, starts at the earliest offset when the
/// group has none, heartbeats every second, and assigns with `range` unless a
/// test overrides `partition.assignment.strategy`.
fn group_consumer_config(bootstrap: &str, group: &str, client_id: &str) -> ClientConfig {
    let mut config = client_config(bootstrap);
    config
        .set("group.id", group)
        .set("client.id", client_id)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("enable.partition.eof", "false")
        .set("fetch.wait.max.ms", "100")
        .set("allow.auto.create.topics", "false")
        .set("session.timeout.ms", "10000")
        .set("heartbeat.interval.ms", "1000")
        .set("max.poll.interval.ms", "120000")
        .set("partition.assignment.strategy", "range");
    config
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum RebalanceEvent {
    Assign(BTreeSet<i32>),
    Revoke(BTreeSet<i32>),
    Error(String),
}

/// What one member's rebalance callbacks said, in order.
#[derive(Debug, Default)]
struct MemberState {
    /// Partitions of the test topic this member owns right now: added by
    /// assign callbacks, removed by revoke callbacks (for the eager protocol
    /// these carry the whole assignment, for cooperative ones the change).
    owned: BTreeSet<i32>,
    events: Vec<RebalanceEvent>,
    /// Bumped by every callback: records polled under an older epoch belong
    /// to an assignment the member no longer has.
    epoch: u64,
}

/// Records every rebalance callback. It must not panic: it runs inside
/// librdkafka's C callback.
struct GroupContext {
    topic: String,
    state: Arc<Mutex<MemberState>>,
}

impl ClientContext for GroupContext {}

impl ConsumerContext for GroupContext {
    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        state.epoch += 1;
        let partitions = |tpl: &TopicPartitionList| -> Result<BTreeSet<i32>, String> {
            tpl.elements()
                .iter()
                .map(|element| {
                    if element.topic() == self.topic {
                        Ok(element.partition())
                    } else {
                        Err(format!("callback for foreign topic {}", element.topic()))
                    }
                })
                .collect()
        };
        match rebalance {
            Rebalance::Assign(tpl) => match partitions(tpl) {
                Ok(set) => {
                    state.owned.extend(set.iter().copied());
                    state.events.push(RebalanceEvent::Assign(set));
                }
                Err(error) => state.events.push(RebalanceEvent::Error(error)),
            },
            Rebalance::Revoke(tpl) => match partitions(tpl) {
                Ok(set) => {
                    for partition in &set {
                        state.owned.remove(partition);
                    }
                    state.events.push(RebalanceEvent::Revoke(set));
                }
                Err(error) => state.events.push(RebalanceEvent::Error(error)),
            },
            Rebalance::Error(error) => state.events.push(RebalanceEvent::Error(error.to_string())),
        }
    }
}

struct Member {
    name: String,
    consumer: BaseConsumer<GroupContext>,
    state: Arc<Mutex<MemberState>>,
}

impl Member {
    /// Creates the consumer and subscribes it to `topic`.
    fn subscribe(config: &ClientConfig, name: &str, topic: &str) -> Member {
        let state = Arc::new(Mutex::new(MemberState::default()));
        let context = GroupContext {
            topic: topic.to_string(),
            state: Arc::clone(&state),
        };
        let consumer: BaseConsumer<GroupContext> = config
            .create_with_context(context)
            .unwrap_or_else(|error| panic!("create group consumer {name}: {error}"));
        consumer
            .subscribe(&[topic])
            .unwrap_or_else(|error| panic!("{name}: subscribe to {topic}: {error}"));
        Member {
            name: name.to_string(),
            consumer,
            state,
        }
    }

    fn owned(&self) -> BTreeSet<i32> {
        self.state.lock().expect("member state lock").owned.clone()
    }

    fn events(&self) -> Vec<RebalanceEvent> {
        self.state.lock().expect("member state lock").events.clone()
    }

    fn epoch(&self) -> u64 {
        self.state.lock().expect("member state lock").epoch
    }

    fn describe(&self) -> String {
        let state = self.state.lock().expect("member state lock");
        format!(
            "{}: owns {:?}, callbacks {:?}",
            self.name, state.owned, state.events
        )
    }
}

fn describe_members(members: &[&Member]) -> String {
    members
        .iter()
        .map(|member| member.describe())
        .collect::<Vec<_>>()
        .join("\n  ")
}

/// Panics if any partition is owned by two members at this moment.
fn assert_no_partition_owned_twice(members: &[&Member], what: &str) {
    let mut owner: BTreeMap<i32, &str> = BTreeMap::new();
    for member in members {
        for partition in member.owned() {
            if let Some(previous) = owner.insert(partition, &member.name) {
                panic!(
                    "{what}: partition {partition} is owned by both {previous} and {} at once\n  {}",
                    member.name,
                    describe_members(members)
                );
            }
        }
    }
}

/// Every member owns at least one partition, no partition has two owners,
/// and together they own exactly `0..partition_count`.
fn is_complete_split(members: &[&Member], partition_count: i32) -> bool {
    let mut union = BTreeSet::new();
    for member in members {
        let owned = member.owned();
        if owned.is_empty() || !owned.is_disjoint(&union) {
            return false;
        }
        union.extend(owned);
    }
    union == (0..partition_count).collect()
}

/// State a test carries through [`drive_until`], summarised when it times out.
trait Progress {
    fn summary(&self) -> String;
}

impl Progress for () {
    fn summary(&self) -> String {
        String::new()
    }
}

/// Round-robins `poll_one` over `members` (all on this thread, as librdkafka
/// serves rebalance callbacks only inside poll) until `done`, checking after
/// every poll that no partition is owned twice. Panics after `timeout`.
fn drive_until<S: Progress>(
    progress: &mut S,
    members: &[&Member],
    what: &str,
    timeout: Duration,
    mut poll_one: impl FnMut(&mut S, &Member),
    mut done: impl FnMut(&S, &[&Member]) -> bool,
) {
    let deadline = Instant::now() + timeout;
    loop {
        for member in members {
            poll_one(progress, member);
            assert_no_partition_owned_twice(members, what);
        }
        if done(progress, members) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: not reached within {timeout:?}\n  {}\n{}",
            describe_members(members),
            progress.summary()
        );
    }
}

/// One poll that serves callbacks; records are dropped unprocessed (tests
/// that use it have nothing to consume or do not commit).
fn poll_discarding(_: &mut (), member: &Member) {
    if let Some(Ok(message)) = member.consumer.poll(MEMBER_POLL_WAIT) {
        let _ = message.offset();
    }
}

/// Polls `members` for `duration` (no condition): lets pending rebalances,
/// if any were wrongly started, reach the members.
fn drive_for(members: &[&Member], what: &str, duration: Duration) {
    let until = Instant::now() + duration;
    drive_until(
        &mut (),
        members,
        what,
        duration + GROUP_TIMEOUT,
        poll_discarding,
        |_, _| Instant::now() >= until,
    );
}

fn commit_one(
    consumer: &BaseConsumer<GroupContext>,
    topic: &str,
    partition: i32,
    offset: i64,
) -> Result<(), String> {
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, partition, Offset::Offset(offset))
        .map_err(|error| error.to_string())?;
    consumer
        .commit(&tpl, CommitMode::Sync)
        .map_err(|error| error.to_string())
}

// ---------------------------------------------------------------------------
// Exactly-once bookkeeping for scenario 1
// ---------------------------------------------------------------------------

/// Everything the group consumed and committed, checked as it happens.
///
/// Commits are synchronous, one partition per OffsetCommit (so librdkafka's
/// result is that partition's result), and only for records polled under the
/// member's current assignment (same rebalance epoch, partition still owned).
/// A successful commit of `offset` for a partition means the group must never
/// again deliver a record of that partition below `offset`; records above
/// the last successful commit may be delivered again after a rebalance.
struct GroupLedger {
    topic: String,
    partition_count: i32,
    /// (partition, offset) → id of the record the producer put there.
    produced: BTreeMap<(i32, i64), usize>,
    /// Highest successfully committed offset per partition.
    committed: BTreeMap<i32, i64>,
    /// How often each (partition, offset) was delivered to any member.
    delivered: BTreeMap<(i32, i64), usize>,
    violations: Vec<String>,
    commit_failures: Vec<String>,
    client_errors: Vec<String>,
}

impl Progress for GroupLedger {
    fn summary(&self) -> String {
        let consumed = self.delivered.len();
        format!(
            "  ledger: {consumed} of {} records consumed, committed {:?}, end offsets {:?}, \
             {} violations (first {:?}), {} failed commits (first {:?}), client errors {:?}",
            self.produced.len(),
            self.committed,
            self.end_offsets(),
            self.violations.len(),
            self.violations.first(),
            self.commit_failures.len(),
            self.commit_failures.first(),
            self.client_errors.iter().take(5).collect::<Vec<_>>()
        )
    }
}

impl GroupLedger {
    fn new(topic: &str, partition_count: i32) -> GroupLedger {
        GroupLedger {
            topic: topic.to_string(),
            partition_count,
            produced: BTreeMap::new(),
            committed: BTreeMap::new(),
            delivered: BTreeMap::new(),
            violations: Vec::new(),
            commit_failures: Vec::new(),
            client_errors: Vec::new(),
        }
    }

    fn record_key(id: usize) -> String {
        format!("record-{id:05}")
    }

    /// Produces records `ids` (record `id` to partition `id % partitions`),
    /// acks=all, and remembers where each landed.
    fn produce(
        &mut self,
        producer: &RecordingProducer,
        deliveries: &DeliveryLog,
        ids: std::ops::Range<usize>,
    ) {
        let messages: Vec<TestMessage> = ids
            .clone()
            .map(|id| {
                TestMessage::keyed(
                    (id % self.partition_count as usize) as i32,
                    GroupLedger::record_key(id),
                    format!("value-{id}"),
                )
            })
            .collect();
        let reports = produce_and_flush(producer, deliveries, &self.topic, &messages);
        for report in reports {
            let id = ids.start + report.id;
            let (partition, offset) = report
                .outcome
                .unwrap_or_else(|error| panic!("record {id} was not acknowledged: {error}"));
            assert_eq!(partition, (id % self.partition_count as usize) as i32);
            assert!(
                self.produced.insert((partition, offset), id).is_none(),
                "two records acknowledged at {partition}/{offset}"
            );
        }
    }

    fn end_offsets(&self) -> BTreeMap<i32, i64> {
        let mut end: BTreeMap<i32, i64> = (0..self.partition_count).map(|p| (p, 0)).collect();
        for &(partition, offset) in self.produced.keys() {
            let entry = end.entry(partition).or_default();
            *entry = (*entry).max(offset + 1);
        }
        end
    }

    /// Every produced record consumed and every partition committed at its
    /// end offset.
    fn finished(&self) -> bool {
        self.produced.keys().all(|key| self.delivered.contains_key(key))
            && self
                .end_offsets()
                .iter()
                .all(|(partition, end)| self.committed.get(partition).copied().unwrap_or(0) == *end)
    }

    /// Processes up to [`BATCH_RECORDS_MAX`] records of `member`, then commits
    /// what it may (see the type's doc).
    fn poll_member(&mut self, member: &Member) {
        let mut batch: Vec<(i32, i64, u64)> = Vec::new();
        while batch.len() < BATCH_RECORDS_MAX {
            let wait = if batch.is_empty() {
                MEMBER_POLL_WAIT
            } else {
                Duration::ZERO
            };
            let (partition, offset, key) = match member.consumer.poll(wait) {
                None => break,
                Some(Err(error)) => {
                    if self.client_errors.len() < 50 {
                        self.client_errors.push(format!("{}: {error}", member.name));
                    }
                    break;
                }
                Some(Ok(message)) => {
                    assert_eq!(message.topic(), self.topic, "record of a foreign topic");
                    (
                        message.partition(),
                        message.offset(),
                        message.key().map(<[u8]>::to_vec),
                    )
                }
            };
            let epoch = member.epoch();
            self.check_delivery(&member.name, partition, offset, key);
            batch.push((partition, offset, epoch));
        }
        let (epoch, owned) = {
            let state = member.state.lock().expect("member state lock");
            (state.epoch, state.owned.clone())
        };
        let mut next_offsets: BTreeMap<i32, i64> = BTreeMap::new();
        for &(partition, offset, polled_epoch) in &batch {
            if polled_epoch == epoch && owned.contains(&partition) {
                let next = next_offsets.entry(partition).or_default();
                *next = (*next).max(offset + 1);
            }
        }
        for (partition, offset) in next_offsets {
            match commit_one(&member.consumer, &self.topic, partition, offset) {
                Ok(()) => {
                    let committed = self.committed.entry(partition).or_insert(0);
                    *committed = (*committed).max(offset);
                }
                Err(error) => self.commit_failures.push(format!(
                    "{}: commit {}/{partition} at {offset}: {error}",
                    member.name, self.topic
                )),
            }
        }
    }

    fn check_delivery(&mut self, member: &str, partition: i32, offset: i64, key: Option<Vec<u8>>) {
        let committed = self.committed.get(&partition).copied().unwrap_or(0);
        if offset < committed {
            self.violations.push(format!(
                "{member} got {}/{partition} offset {offset}, below the committed offset {committed}",
                self.topic
            ));
        }
        match self.produced.get(&(partition, offset)) {
            None => self.violations.push(format!(
                "{member} got {}/{partition} offset {offset}, which the producer never wrote",
                self.topic
            )),
            Some(&id) => {
                let expected = GroupLedger::record_key(id).into_bytes();
                if key.as_deref() != Some(expected.as_slice()) {
                    self.violations.push(format!(
                        "{member} got {}/{partition} offset {offset} with key {:?}, expected {:?}",
                        self.topic,
                        key.map(|k| String::from_utf8_lossy(&k).into_owned()),
                        GroupLedger::record_key(id)
                    ));
                }
            }
        }
        *self.delivered.entry((partition, offset)).or_default() += 1;
    }
}

// ---------------------------------------------------------------------------
// Scenario 1: members join and leave, no loss, no redelivery after commits
// ---------------------------------------------------------------------------

#[test]
fn members_joining_and_leaving_split_partitions_and_committed_records_are_never_redelivered() {
    const TOPIC: &str = "group-orders";
    const GROUP: &str = "order-processors";
    const PARTITIONS: i32 = 4;
    const PHASE_RECORDS: usize = 300;
    let broker = start_broker();
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, TOPIC, PARTITIONS, &[]);
    let (producer, deliveries) = recording_producer(&producer_config(&bootstrap, "all"));
    let mut ledger = GroupLedger::new(TOPIC, PARTITIONS);
    let poll = |ledger: &mut GroupLedger, member: &Member| ledger.poll_member(member);

    ledger.produce(&producer, &deliveries, 0..PHASE_RECORDS);
    let a = Member::subscribe(&group_consumer_config(&bootstrap, GROUP, "member-a"), "a", TOPIC);
    let b = Member::subscribe(&group_consumer_config(&bootstrap, GROUP, "member-b"), "b", TOPIC);
    drive_until(
        &mut ledger,
        &[&a, &b],
        "two members split the partitions",
        GROUP_TIMEOUT,
        poll,
        |_, members| is_complete_split(members, PARTITIONS),
    );

    // A third member joins while records keep arriving.
    ledger.produce(&producer, &deliveries, PHASE_RECORDS..2 * PHASE_RECORDS);
    let c = Member::subscribe(&group_consumer_config(&bootstrap, GROUP, "member-c"), "c", TOPIC);
    drive_until(
        &mut ledger,
        &[&a, &b, &c],
        "three members split the partitions",
        GROUP_TIMEOUT,
        poll,
        |_, members| is_complete_split(members, PARTITIONS),
    );

    // b leaves (close: revoke, LeaveGroup) while records keep arriving.
    ledger.produce(&producer, &deliveries, 2 * PHASE_RECORDS..3 * PHASE_RECORDS);
    drop(b);
    drive_until(
        &mut ledger,
        &[&a, &c],
        "the two remaining members split the partitions after b left",
        GROUP_TIMEOUT,
        poll,
        |_, members| is_complete_split(members, PARTITIONS),
    );

    ledger.produce(&producer, &deliveries, 3 * PHASE_RECORDS..4 * PHASE_RECORDS);
    drive_until(
        &mut ledger,
        &[&a, &c],
        "every record consumed and committed",
        GROUP_TIMEOUT,
        poll,
        |ledger, members| is_complete_split(members, PARTITIONS) && ledger.finished(),
    );

    assert!(
        ledger.violations.is_empty(),
        "{} deliveries broke the commit contract:\n{}",
        ledger.violations.len(),
        ledger.violations.join("\n")
    );
    let missing: Vec<_> = ledger
        .produced
        .keys()
        .filter(|key| !ledger.delivered.contains_key(key))
        .collect();
    assert!(missing.is_empty(), "records never consumed: {missing:?}");
    let end_offsets = ledger.end_offsets();
    assert_eq!(
        end_offsets.values().sum::<i64>(),
        4 * PHASE_RECORDS as i64,
        "end offsets {end_offsets:?}"
    );
    // What the broker holds, read independently of librdkafka.
    let mut connection = Connection::open(broker.socket_addr());
    let partitions: Vec<i32> = (0..PARTITIONS).collect();
    let fetched = offset_fetch(&mut connection, GROUP, TOPIC, &partitions);
    let fetched_offsets: BTreeMap<i32, i64> = fetched.iter().map(|f| (f.partition, f.offset)).collect();
    assert_eq!(
        fetched_offsets, end_offsets,
        "OffsetFetch after the run must show every partition committed at its end: {fetched:?}"
    );
    let redelivered = ledger.delivered.values().filter(|&&count| count > 1).count();
    eprintln!(
        "group run: {} records, {redelivered} delivered more than once (never below a commit), {} commits refused during rebalances",
        ledger.produced.len(),
        ledger.commit_failures.len()
    );
}

// ---------------------------------------------------------------------------
// Scenario 2: committed offsets survive restarts
// ---------------------------------------------------------------------------

/// Produces 100 records to partition 0 and 37 to partition 1, lets a group
/// member process at least the first 40 / 17 and commit exactly 40 / 17,
/// closes it, runs `interrupt` on the broker, and checks that a new member
/// of the group starts at exactly 40 / 17 and reads everything after.
fn committed_offsets_resume_after(interrupt: impl FnOnce(&mut Broker)) {
    const TOPIC: &str = "resume-topic";
    const GROUP: &str = "resume-group";
    let totals: BTreeMap<i32, i64> = BTreeMap::from([(0, 100), (1, 37)]);
    let commits: BTreeMap<i32, i64> = BTreeMap::from([(0, 40), (1, 17)]);
    let mut broker = start_broker();
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, TOPIC, 2, &[]);
    let messages: Vec<TestMessage> = totals
        .iter()
        .flat_map(|(&partition, &count)| {
            (0..count)
                .map(move |i| TestMessage::keyed(partition, format!("{partition}-{i}"), format!("v{i}")))
        })
        .collect();
    produce_all_acked(&bootstrap, "all", TOPIC, &messages);

    let first = Member::subscribe(&group_consumer_config(&bootstrap, GROUP, "first"), "first", TOPIC);
    let mut next_offset: BTreeMap<i32, i64> = BTreeMap::new();
    let mut errors = Vec::new();
    let deadline = Instant::now() + GROUP_TIMEOUT;
    while commits
        .iter()
        .any(|(partition, commit)| next_offset.get(partition).copied().unwrap_or(0) < *commit)
    {
        assert!(
            Instant::now() < deadline,
            "first member did not reach offsets {commits:?} within {GROUP_TIMEOUT:?}: at {next_offset:?}, errors {errors:?}\n  {}",
            first.describe()
        );
        match first.consumer.poll(Duration::from_millis(100)) {
            None => {}
            Some(Err(error)) => errors.push(error.to_string()),
            Some(Ok(message)) => {
                let next = next_offset.entry(message.partition()).or_insert(0);
                assert_eq!(
                    message.offset(),
                    *next,
                    "a new group must start at the earliest offset and read in order"
                );
                *next += 1;
            }
        }
    }
    let mut tpl = TopicPartitionList::new();
    for (&partition, &offset) in &commits {
        tpl.add_partition_offset(TOPIC, partition, Offset::Offset(offset))
            .expect("add partition");
    }
    first
        .consumer
        .commit(&tpl, CommitMode::Sync)
        .expect("synchronous commit of 40 / 17");
    let mut connection = Connection::open(broker.socket_addr());
    assert_committed(&mut connection, GROUP, TOPIC, &commits, "right after the commit");
    drop(first);

    interrupt(&mut broker);

    let mut connection = Connection::open(broker.socket_addr());
    assert_committed(
        &mut connection,
        GROUP,
        TOPIC,
        &commits,
        "after the broker came back",
    );
    let second = Member::subscribe(
        &group_consumer_config(&bootstrap, GROUP, "second"),
        "second",
        TOPIC,
    );
    let mut received: BTreeMap<i32, Vec<i64>> = BTreeMap::new();
    let expected_count: i64 = totals.iter().map(|(p, total)| total - commits[p]).sum();
    let deadline = Instant::now() + GROUP_TIMEOUT;
    let mut errors = Vec::new();
    while (received.values().map(Vec::len).sum::<usize>() as i64) < expected_count {
        assert!(
            Instant::now() < deadline,
            "second member received {received:?}, expected offsets from {commits:?} to {totals:?}; errors {errors:?}\n  {}",
            second.describe()
        );
        match second.consumer.poll(Duration::from_millis(100)) {
            None => {}
            Some(Err(error)) => errors.push(error.to_string()),
            Some(Ok(message)) => {
                let partition = message.partition();
                let offsets = received.entry(partition).or_default();
                let expected = commits[&partition] + offsets.len() as i64;
                assert_eq!(
                    message.offset(),
                    expected,
                    "partition {partition}: the new member must resume at the committed offset {} and read in order (received so far {offsets:?})",
                    commits[&partition]
                );
                let key = format!("{partition}-{expected}");
                assert_eq!(
                    message.key(),
                    Some(key.as_bytes()),
                    "record at {partition}/{expected}"
                );
                offsets.push(message.offset());
            }
        }
    }
    let drain_until = Instant::now() + Duration::from_millis(500);
    while Instant::now() < drain_until {
        if let Some(Ok(message)) = second.consumer.poll(Duration::from_millis(50)) {
            panic!(
                "unexpected record {}/{} after everything was read",
                message.partition(),
                message.offset()
            );
        }
    }
}

#[test]
fn new_member_resumes_exactly_at_offsets_committed_before_a_restart() {
    committed_offsets_resume_after(|broker| broker.restart());
}

#[test]
fn new_member_resumes_exactly_at_offsets_committed_before_a_sigkill() {
    committed_offsets_resume_after(|broker| {
        broker.kill9();
        broker.restart();
    });
}

fn assert_committed(
    connection: &mut Connection,
    group: &str,
    topic: &str,
    expected: &BTreeMap<i32, i64>,
    when: &str,
) {
    let partitions: Vec<i32> = expected.keys().copied().collect();
    let fetched = offset_fetch(connection, group, topic, &partitions);
    let offsets: BTreeMap<i32, i64> = fetched.iter().map(|f| (f.partition, f.offset)).collect();
    assert_eq!(&offsets, expected, "committed offsets {when}: {fetched:?}");
}

// ---------------------------------------------------------------------------
// Scenario 3: a silent member is expired after its session timeout
// ---------------------------------------------------------------------------

#[test]
fn member_that_stops_heartbeating_is_expired_and_its_partitions_move() {
    const TOPIC: &str = "expiry-topic";
    const GROUP: &str = "expiry-group";
    const PARTITIONS: i32 = 4;
    let broker = start_broker();
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, TOPIC, PARTITIONS, &[]);
    let all: BTreeSet<i32> = (0..PARTITIONS).collect();

    let live = Member::subscribe(
        &group_consumer_config(&bootstrap, GROUP, "live-member"),
        "live",
        TOPIC,
    );
    drive_until(
        &mut (),
        &[&live],
        "the live member owns every partition",
        GROUP_TIMEOUT,
        poll_discarding,
        |_, _| live.owned() == all,
    );

    // A raw member joins (its JoinGroup is answered only once the live member
    // has rejoined, so it runs on its own thread while this one polls) and
    // takes part in one generation with the minimum session timeout.
    let addr = broker.socket_addr();
    let joiner = thread::spawn(move || {
        let mut connection = Connection::open(addr);
        connection.set_read_timeout(GROUP_TIMEOUT);
        let spec = JoinSpec::new(GROUP, vec![("range", subscription_metadata(&[TOPIC]))])
            .session_timeout_ms(SESSION_TIMEOUT_MIN_MS);
        let joined = join_group(&mut connection, &spec);
        assert_eq!(joined.error_code, ERROR_NONE, "raw member JoinGroup: {joined:?}");
        let assignments = if joined.leader == joined.member_id {
            leader_range_assignments(&joined, TOPIC, PARTITIONS)
        } else {
            Vec::new()
        };
        let synced = sync_group(&mut connection, GROUP, &joined, assignments);
        assert_eq!(synced.error_code, ERROR_NONE, "raw member SyncGroup: {synced:?}");
        (connection, joined, decode_assignment(&synced.assignment))
    });
    let deadline = Instant::now() + GROUP_TIMEOUT;
    while !joiner.is_finished() {
        assert!(
            Instant::now() < deadline,
            "raw member's join did not complete within {GROUP_TIMEOUT:?}\n  {}",
            live.describe()
        );
        poll_discarding(&mut (), &live);
    }
    let (mut silent, joined, silent_assignment) = match joiner.join() {
        Ok(result) => result,
        Err(panic) => std::panic::resume_unwind(panic),
    };
    let silent_partitions = silent_assignment.get(TOPIC).cloned().unwrap_or_default();
    assert!(
        !silent_partitions.is_empty() && silent_partitions.len() < all.len(),
        "range over {PARTITIONS} partitions and two members must give the raw member some, not all: {silent_assignment:?}"
    );
    let live_share: BTreeSet<i32> = all.difference(&silent_partitions).copied().collect();
    drive_until(
        &mut (),
        &[&live],
        "the live member owns exactly the partitions the raw member does not",
        GROUP_TIMEOUT,
        poll_discarding,
        |_, _| live.owned() == live_share,
    );

    // While it heartbeats, the raw member stays a member well past its
    // session timeout, and nothing moves.
    let heartbeats_until = Instant::now() + Duration::from_millis(2 * SESSION_TIMEOUT_MIN_MS as u64);
    while Instant::now() < heartbeats_until {
        let error = heartbeat(
            &mut silent,
            GROUP,
            &joined.member_id.to_string(),
            joined.generation_id,
        );
        assert_eq!(error, ERROR_NONE, "heartbeat of a live raw member");
        drive_for(&[&live], "raw member heartbeating", Duration::from_secs(1));
        assert_eq!(
            live.owned(),
            live_share,
            "nothing moves while both members heartbeat"
        );
    }

    // Now it goes silent (connection open, nothing sent): after the session
    // timeout the coordinator must expire it and give everything to the live
    // member.
    drive_until(
        &mut (),
        &[&live],
        "the live member owns every partition after the silent member expired",
        GROUP_TIMEOUT,
        poll_discarding,
        |_, _| live.owned() == all,
    );
    let error = heartbeat(
        &mut silent,
        GROUP,
        &joined.member_id.to_string(),
        joined.generation_id,
    );
    assert_eq!(
        error, ERROR_UNKNOWN_MEMBER_ID,
        "a heartbeat of the expired member must be refused as UNKNOWN_MEMBER_ID"
    );
    let mut observer = Connection::open(broker.socket_addr());
    let (_, described) = describe_group(&mut observer, GROUP);
    assert_eq!(described.group_state.as_str(), "Stable", "{described:?}");
    let member_clients: Vec<&str> = described.members.iter().map(|m| m.client_id.as_str()).collect();
    assert_eq!(
        member_clients,
        vec!["live-member"],
        "only the live member remains: {described:?}"
    );
}

// ---------------------------------------------------------------------------
// Scenario 4: static membership
// ---------------------------------------------------------------------------

/// A static member and a dynamic one share a group; the static member closes
/// without LeaveGroup and a new consumer with its `group.instance.id` starts
/// within the session timeout. As in Kafka (KIP-345: a static member joining
/// a Stable group with unchanged protocols "will not trigger rebalance",
/// leader or not), it gets the same partitions and the other member sees no
/// revoke or assign. The first member to join a group leads it, so
/// `static_joins_first` decides whether the static member is the leader.
fn static_member_returns_without_rebalance(static_joins_first: bool) {
    const TOPIC: &str = "static-topic";
    const GROUP: &str = "static-group";
    const PARTITIONS: i32 = 4;
    const INSTANCE: &str = "static-instance-1";
    let broker = start_broker();
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, TOPIC, PARTITIONS, &[]);
    let mut static_config = group_consumer_config(&bootstrap, GROUP, "static-member");
    static_config
        .set("group.instance.id", INSTANCE)
        .set("session.timeout.ms", "30000");
    let dynamic_config = group_consumer_config(&bootstrap, GROUP, "other-member");
    let all: BTreeSet<i32> = (0..PARTITIONS).collect();

    let (first_config, first_name, second_config, second_name) = if static_joins_first {
        (&static_config, "static (first run)", &dynamic_config, "other")
    } else {
        (&dynamic_config, "other", &static_config, "static (first run)")
    };
    let leader = Member::subscribe(first_config, first_name, TOPIC);
    drive_until(
        &mut (),
        &[&leader],
        "the first member (the leader) owns every partition",
        GROUP_TIMEOUT,
        poll_discarding,
        |_, _| leader.owned() == all,
    );
    let follower = Member::subscribe(second_config, second_name, TOPIC);
    drive_until(
        &mut (),
        &[&leader, &follower],
        "the dynamic and the static member split the partitions",
        GROUP_TIMEOUT,
        poll_discarding,
        |_, members| is_complete_split(members, PARTITIONS),
    );
    // Let any follow-up rebalance settle before taking the snapshot.
    drive_for(&[&leader, &follower], "settling", Duration::from_secs(3));
    assert!(is_complete_split(&[&leader, &follower], PARTITIONS));
    let (first, other) = if static_joins_first {
        (leader, follower)
    } else {
        (follower, leader)
    };
    let static_partitions = first.owned();
    let other_partitions = other.owned();
    let other_events = other.events();

    // Close without LeaveGroup (librdkafka does not send it for static
    // members), then come back with the same group.instance.id.
    drop(first);
    let second = Member::subscribe(&static_config, "static (second run)", TOPIC);
    drive_until(
        &mut (),
        &[&other, &second],
        "the restarted static member owns its partitions again",
        GROUP_TIMEOUT,
        poll_discarding,
        |_, _| second.owned() == static_partitions,
    );
    // Several heartbeat intervals: a rebalance, had one started, would reach
    // the other member now.
    drive_for(
        &[&other, &second],
        "after the static member returned",
        Duration::from_secs(5),
    );
    assert_eq!(
        second.owned(),
        static_partitions,
        "the static member's partitions"
    );
    assert_eq!(
        second.events(),
        vec![RebalanceEvent::Assign(static_partitions.clone())],
        "the returning static member is assigned once, its old partitions"
    );
    assert_eq!(other.owned(), other_partitions, "the other member's partitions");
    assert_eq!(
        other.events(),
        other_events,
        "the other member must see no revoke or assign: a static member's return is not a rebalance"
    );

    let mut observer = Connection::open(broker.socket_addr());
    let (version, described) = describe_group(&mut observer, GROUP);
    assert_eq!(described.group_state.as_str(), "Stable", "{described:?}");
    assert_eq!(
        described.members.len(),
        2,
        "two members, the old static id replaced: {described:?}"
    );
    if version >= 4 {
        let instances: Vec<Option<&str>> = described
            .members
            .iter()
            .map(|m| m.group_instance_id.as_ref().map(|id| id.as_str()))
            .collect();
        assert!(
            instances.contains(&Some(INSTANCE)) && instances.contains(&None),
            "one static and one dynamic member: {described:?}"
        );
    }
}

#[test]
fn static_follower_restarting_within_session_timeout_keeps_its_partitions_without_rebalance() {
    static_member_returns_without_rebalance(false);
}

#[test]
fn static_leader_restarting_within_session_timeout_keeps_its_partitions_without_rebalance() {
    static_member_returns_without_rebalance(true);
}

// ---------------------------------------------------------------------------
// Scenario 5: cooperative-sticky
// ---------------------------------------------------------------------------

fn revoked_since(events: &[RebalanceEvent], from: usize) -> BTreeSet<i32> {
    events[from..]
        .iter()
        .filter_map(|event| match event {
            RebalanceEvent::Revoke(set) => Some(set.clone()),
            _ => None,
        })
        .flatten()
        .collect()
}

/// Asserts the incremental-rebalance contract for `member` since callback
/// number `events_before`: what it kept was never revoked, and it lost only
/// what it no longer owns.
fn assert_kept_partitions_never_revoked(member: &Member, before: &BTreeSet<i32>, events_before: usize) {
    let after = member.owned();
    let kept: BTreeSet<i32> = before.intersection(&after).copied().collect();
    let revoked = revoked_since(&member.events(), events_before);
    assert!(
        !kept.is_empty(),
        "{}: kept nothing of {before:?} (now {after:?}): the scenario needs a member that keeps partitions",
        member.name
    );
    assert!(
        kept.is_disjoint(&revoked),
        "{}: partitions {:?} stayed with it but were revoked in between (revoked {revoked:?}, before {before:?}, after {after:?})\n  {}",
        member.name,
        kept.intersection(&revoked).collect::<Vec<_>>(),
        member.describe()
    );
    let lost: BTreeSet<i32> = before.difference(&after).copied().collect();
    assert_eq!(revoked, lost, "{}: revoked exactly what it lost", member.name);
}

#[test]
fn cooperative_sticky_rebalance_never_revokes_partitions_that_stay() {
    const TOPIC: &str = "cooperative-topic";
    const GROUP: &str = "cooperative-group";
    const PARTITIONS: i32 = 6;
    let broker = start_broker();
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, TOPIC, PARTITIONS, &[]);
    let config = |client_id: &str| {
        let mut config = group_consumer_config(&bootstrap, GROUP, client_id);
        config.set("partition.assignment.strategy", "cooperative-sticky");
        config
    };
    let a = Member::subscribe(&config("coop-a"), "a", TOPIC);
    let b = Member::subscribe(&config("coop-b"), "b", TOPIC);
    drive_until(
        &mut (),
        &[&a, &b],
        "two cooperative members split the partitions",
        GROUP_TIMEOUT,
        poll_discarding,
        |_, members| is_complete_split(members, PARTITIONS),
    );
    drive_for(&[&a, &b], "settling", Duration::from_secs(3));
    assert!(
        is_complete_split(&[&a, &b], PARTITIONS),
        "\n  {}",
        describe_members(&[&a, &b])
    );
    assert!(
        matches!(a.consumer.rebalance_protocol(), RebalanceProtocol::Cooperative),
        "librdkafka must be running the cooperative protocol"
    );
    let (a_before, a_events) = (a.owned(), a.events().len());
    let (b_before, b_events) = (b.owned(), b.events().len());

    let c = Member::subscribe(&config("coop-c"), "c", TOPIC);
    drive_until(
        &mut (),
        &[&a, &b, &c],
        "three cooperative members split the partitions",
        GROUP_TIMEOUT,
        poll_discarding,
        |_, members| is_complete_split(members, PARTITIONS),
    );
    drive_for(&[&a, &b, &c], "settling", Duration::from_secs(3));
    assert!(
        is_complete_split(&[&a, &b, &c], PARTITIONS),
        "\n  {}",
        describe_members(&[&a, &b, &c])
    );

    assert_kept_partitions_never_revoked(&a, &a_before, a_events);
    assert_kept_partitions_never_revoked(&b, &b_before, b_events);
    let moved: BTreeSet<i32> = revoked_since(&a.events(), a_events)
        .union(&revoked_since(&b.events(), b_events))
        .copied()
        .collect();
    assert_eq!(
        c.owned(),
        moved,
        "the new member got exactly the partitions revoked from the others"
    );
    assert!(
        revoked_since(&c.events(), 0).is_empty(),
        "the new member lost nothing: {}",
        c.describe()
    );
}

// ---------------------------------------------------------------------------
// Scenario 7: KIP-848 (the consumer group protocol, ConsumerGroupHeartbeat)
// ---------------------------------------------------------------------------

#[test]
fn kip848_consumer_protocol_second_member_does_not_revoke_partitions_it_does_not_take() {
    const TOPIC: &str = "kip848-topic";
    const GROUP: &str = "kip848-group";
    const PARTITIONS: i32 = 4;
    let broker = start_broker();
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, TOPIC, PARTITIONS, &[]);
    // The consumer protocol (librdkafka >= 2.4; the bundled one is 2.12):
    // the broker assigns; session, heartbeat and assignor settings are the
    // broker's and must not be set on the client.
    let config = |client_id: &str| {
        let mut config = client_config(&bootstrap);
        config
            .set("group.id", GROUP)
            .set("group.protocol", "consumer")
            .set("client.id", client_id)
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest")
            .set("enable.partition.eof", "false")
            .set("fetch.wait.max.ms", "100")
            .set("allow.auto.create.topics", "false");
        config
    };
    let all: BTreeSet<i32> = (0..PARTITIONS).collect();
    let a = Member::subscribe(&config("kip848-a"), "a", TOPIC);
    drive_until(
        &mut (),
        &[&a],
        "the first member owns every partition",
        GROUP_TIMEOUT,
        poll_discarding,
        |_, _| a.owned() == all,
    );
    let a_events = a.events().len();
    let b = Member::subscribe(&config("kip848-b"), "b", TOPIC);
    drive_until(
        &mut (),
        &[&a, &b],
        "two members split the partitions",
        GROUP_TIMEOUT,
        poll_discarding,
        |_, members| is_complete_split(members, PARTITIONS),
    );
    drive_for(&[&a, &b], "settling", Duration::from_secs(3));
    assert!(
        is_complete_split(&[&a, &b], PARTITIONS),
        "\n  {}",
        describe_members(&[&a, &b])
    );
    assert_kept_partitions_never_revoked(&a, &all, a_events);
    assert_eq!(
        b.owned(),
        revoked_since(&a.events(), a_events),
        "the second member got exactly what the first gave up"
    );

    // ConsumerGroupDescribe (raw): the broker's view matches the clients'.
    let mut connection = Connection::open(broker.socket_addr());
    let request = kafka_protocol::messages::ConsumerGroupDescribeRequest::default()
        .with_group_ids(vec![group_id(GROUP), group_id("no-such-kip848-group")]);
    let response = connection.call(0, &request);
    let described = &response.groups[0];
    assert_eq!(described.error_code, 0);
    assert_eq!(described.group_state.as_str(), "Stable");
    assert_eq!(described.assignor_name.as_str(), "uniform");
    assert_eq!(described.members.len(), 2);
    let mut owners = BTreeMap::new();
    for member in &described.members {
        assert_eq!(
            member.member_epoch, described.assignment_epoch,
            "every member reconciled"
        );
        for topic in &member.assignment.topic_partitions {
            assert_eq!(topic.topic_name.0.as_str(), TOPIC);
            for partition in &topic.partitions {
                assert!(owners.insert(*partition, member.member_id.to_string()).is_none());
            }
        }
    }
    assert_eq!(owners.keys().copied().collect::<BTreeSet<i32>>(), all);
    assert_eq!(
        response.groups[1].error_code, 69,
        "unknown group: GROUP_ID_NOT_FOUND"
    );
}

/// KIP-848 group state is stored: a member keeps its partitions across a
/// broker restart, without a revocation or a new assignment round.
#[test]
fn kip848_member_keeps_its_partitions_across_a_broker_restart() {
    const TOPIC: &str = "kip848-restart-topic";
    const GROUP: &str = "kip848-restart-group";
    const PARTITIONS: i32 = 4;
    let mut broker = start_broker();
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, TOPIC, PARTITIONS, &[]);
    let mut config = client_config(&bootstrap);
    config
        .set("group.id", GROUP)
        .set("group.protocol", "consumer")
        .set("client.id", "kip848-restart")
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("allow.auto.create.topics", "false");
    let all: BTreeSet<i32> = (0..PARTITIONS).collect();
    let a = Member::subscribe(&config, "a", TOPIC);
    drive_until(
        &mut (),
        &[&a],
        "the member owns every partition",
        GROUP_TIMEOUT,
        poll_discarding,
        |_, _| a.owned() == all,
    );
    let events_before = a.events().len();
    broker.restart();
    // Heartbeats (every 5 s by default) reach the restarted broker.
    drive_for(&[&a], "heartbeating across the restart", Duration::from_secs(12));
    assert_eq!(a.owned(), all, "\n  {}", describe_members(&[&a]));
    assert_eq!(
        &a.events()[events_before..],
        &[],
        "no revocation or reassignment after the restart"
    );
}

// ---------------------------------------------------------------------------
// Scenario 6: bad input, raw protocol
// ---------------------------------------------------------------------------

#[test]
fn offset_commit_from_unknown_member_or_stale_generation_is_refused() {
    const TOPIC: &str = "commit-checks";
    const GROUP: &str = "commit-checks-group";
    let broker = start_broker();
    create_topic(&broker.bootstrap(), TOPIC, 2, &[]);
    let mut connection = Connection::open(broker.socket_addr());
    wait_for_coordinator(&mut connection, GROUP, broker.port());
    let first = form_single_member_group(&mut connection, GROUP, TOPIC, &[0, 1]);

    let refused = offset_commit(
        &mut connection,
        GROUP,
        first.generation_id,
        "no-such-member",
        TOPIC,
        &[(0, 1, "")],
    );
    assert_eq!(
        refused,
        vec![(0, ERROR_UNKNOWN_MEMBER_ID)],
        "commit from an unknown member id"
    );

    // The (only, hence leader) member rejoins: a new generation starts.
    let spec =
        JoinSpec::new(GROUP, vec![("range", subscription_metadata(&[TOPIC]))]).member_id(&first.member_id);
    let rejoined = join_group(&mut connection, &spec);
    assert_eq!(rejoined.error_code, ERROR_NONE, "rejoin: {rejoined:?}");
    assert_eq!(
        rejoined.member_id.as_str(),
        first.member_id.as_str(),
        "rejoin keeps the member id"
    );
    assert_eq!(
        rejoined.generation_id,
        first.generation_id + 1,
        "the leader rejoining a stable group starts the next generation"
    );
    let assignment = assignment_bytes(TOPIC, &[0, 1]);
    let synced = sync_group(
        &mut connection,
        GROUP,
        &rejoined,
        vec![(rejoined.member_id.to_string(), assignment)],
    );
    assert_eq!(
        synced.error_code, ERROR_NONE,
        "sync of generation {}",
        rejoined.generation_id
    );

    let member = first.member_id.as_str();
    let stale = offset_commit(
        &mut connection,
        GROUP,
        first.generation_id,
        member,
        TOPIC,
        &[(0, 1, ""), (1, 1, "")],
    );
    assert_eq!(
        stale,
        vec![(0, ERROR_ILLEGAL_GENERATION), (1, ERROR_ILLEGAL_GENERATION)],
        "commit with the previous generation"
    );
    let ahead = offset_commit(
        &mut connection,
        GROUP,
        rejoined.generation_id + 1,
        member,
        TOPIC,
        &[(0, 1, "")],
    );
    assert_eq!(
        ahead,
        vec![(0, ERROR_ILLEGAL_GENERATION)],
        "commit with a future generation"
    );
    let anonymous = offset_commit(&mut connection, GROUP, -1, "", TOPIC, &[(0, 1, "")]);
    assert_eq!(
        anonymous,
        vec![(0, ERROR_UNKNOWN_MEMBER_ID)],
        "a non-member commit (generation -1, no member id) to a non-empty group"
    );
    let fetched = offset_fetch(&mut connection, GROUP, TOPIC, &[0, 1]);
    assert!(
        fetched.iter().all(|f| f.offset == -1),
        "refused commits stored nothing: {fetched:?}"
    );

    let accepted = offset_commit(
        &mut connection,
        GROUP,
        rejoined.generation_id,
        member,
        TOPIC,
        &[(0, 5, "weir-meta-0"), (1, 7, "weir-meta-1")],
    );
    assert_eq!(
        accepted,
        vec![(0, ERROR_NONE), (1, ERROR_NONE)],
        "commit of the current generation"
    );
    let fetched = offset_fetch(&mut connection, GROUP, TOPIC, &[0, 1]);
    let summary: Vec<(i32, i64, Option<&str>, i16)> = fetched
        .iter()
        .map(|f| (f.partition, f.offset, f.metadata.as_deref(), f.error_code))
        .collect();
    assert_eq!(
        summary,
        vec![
            (0, 5, Some("weir-meta-0"), ERROR_NONE),
            (1, 7, Some("weir-meta-1"), ERROR_NONE)
        ],
        "OffsetFetch returns offsets and metadata as committed"
    );
}

#[test]
fn join_group_without_protocols_or_with_out_of_range_session_timeout_is_refused() {
    const TOPIC: &str = "join-checks";
    const GROUP: &str = "join-checks-group";
    let broker = start_broker();
    create_topic(&broker.bootstrap(), TOPIC, 1, &[]);
    let mut connection = Connection::open(broker.socket_addr());
    wait_for_coordinator(&mut connection, GROUP, broker.port());
    let protocols = || vec![("range", subscription_metadata(&[TOPIC]))];

    let no_protocols = join_group_once(&mut connection, &JoinSpec::new(GROUP, Vec::new()));
    assert_eq!(
        no_protocols.error_code, ERROR_INCONSISTENT_GROUP_PROTOCOL,
        "JoinGroup with an empty protocol list (Kafka checks this before asking for a member id): {no_protocols:?}"
    );
    let mut no_type = JoinSpec::new(GROUP, protocols());
    no_type.protocol_type = String::new();
    let no_type = join_group_once(&mut connection, &no_type);
    assert_eq!(
        no_type.error_code, ERROR_INCONSISTENT_GROUP_PROTOCOL,
        "JoinGroup with an empty protocol type: {no_type:?}"
    );
    for session_timeout_ms in [0, SESSION_TIMEOUT_MIN_MS - 1, SESSION_TIMEOUT_MAX_MS + 1] {
        let spec = JoinSpec::new(GROUP, protocols()).session_timeout_ms(session_timeout_ms);
        let refused = join_group_once(&mut connection, &spec);
        assert_eq!(
            refused.error_code, ERROR_INVALID_SESSION_TIMEOUT,
            "JoinGroup with session timeout {session_timeout_ms} ms (allowed {SESSION_TIMEOUT_MIN_MS}..={SESSION_TIMEOUT_MAX_MS}): {refused:?}"
        );
    }

    // None of that left anything behind: a proper member forms the group,
    // at both ends of the allowed session timeouts.
    for (group, session_timeout_ms) in [
        (GROUP, SESSION_TIMEOUT_MIN_MS),
        ("join-checks-max", SESSION_TIMEOUT_MAX_MS),
    ] {
        let spec = JoinSpec::new(group, protocols()).session_timeout_ms(session_timeout_ms);
        let joined = join_group(&mut connection, &spec);
        assert_eq!(
            joined.error_code, ERROR_NONE,
            "{group}: valid JoinGroup: {joined:?}"
        );
        assert_eq!(joined.leader, joined.member_id, "{group}: the only member leads");
        let assignment = vec![(joined.member_id.to_string(), assignment_bytes(TOPIC, &[0]))];
        let synced = sync_group(&mut connection, group, &joined, assignment);
        assert_eq!(synced.error_code, ERROR_NONE, "{group}: SyncGroup: {synced:?}");
        assert_eq!(
            decode_assignment(&synced.assignment),
            topic_assignment(TOPIC, &[0])
        );
        let error = heartbeat(
            &mut connection,
            group,
            &joined.member_id.to_string(),
            joined.generation_id,
        );
        assert_eq!(error, ERROR_NONE, "{group}: heartbeat");
    }
}

#[test]
fn heartbeats_from_unknown_groups_members_or_generations_are_refused() {
    const TOPIC: &str = "heartbeat-checks";
    const GROUP: &str = "heartbeat-checks-group";
    let broker = start_broker();
    create_topic(&broker.bootstrap(), TOPIC, 1, &[]);
    let mut connection = Connection::open(broker.socket_addr());
    wait_for_coordinator(&mut connection, GROUP, broker.port());

    // Kafka's coordinator answers a heartbeat for a group it does not know
    // with UNKNOWN_MEMBER_ID (GroupMetadataManager.classicGroupHeartbeat
    // maps GroupIdNotFoundException to UnknownMemberIdException).
    let error = heartbeat(&mut connection, "group-that-never-existed", "ghost-member", 1);
    assert_eq!(error, ERROR_UNKNOWN_MEMBER_ID, "heartbeat to an unknown group");

    let member = form_single_member_group(&mut connection, GROUP, TOPIC, &[0]);
    let error = heartbeat(&mut connection, GROUP, "ghost-member", member.generation_id);
    assert_eq!(error, ERROR_UNKNOWN_MEMBER_ID, "heartbeat of an unknown member");
    let error = heartbeat(
        &mut connection,
        GROUP,
        &member.member_id,
        member.generation_id + 1,
    );
    assert_eq!(
        error, ERROR_ILLEGAL_GENERATION,
        "heartbeat with a wrong generation"
    );
    let error = heartbeat(&mut connection, GROUP, &member.member_id, member.generation_id);
    assert_eq!(error, ERROR_NONE, "the real member's heartbeat");
}

#[test]
fn oversized_protocol_metadata_is_refused_and_other_groups_keep_working() {
    const TOPIC: &str = "oversized-checks";
    const HUGE_GROUP: &str = "huge-metadata-group";
    const GROUP: &str = "ordinary-group";
    const HUGE_BYTES: usize = 2 * 1024 * 1024;
    let broker = start_broker();
    create_topic(&broker.bootstrap(), TOPIC, 2, &[]);
    let mut connection = Connection::open(broker.socket_addr());
    wait_for_coordinator(&mut connection, HUGE_GROUP, broker.port());
    connection.set_read_timeout(GROUP_TIMEOUT);

    // A well-formed subscription whose user data is 2 MiB.
    let huge = subscription_metadata_with_user_data(&[TOPIC], Bytes::from(vec![0x5a; HUGE_BYTES]));
    let mut spec = JoinSpec::new(HUGE_GROUP, vec![("range", huge)]);
    let outcome = loop {
        let version = connection.negotiate(ApiKey::JoinGroup, 1..=9);
        let (correlation_id, frame) = connection.encode_request(version, &spec.request());
        if connection.write_raw(&frame).is_err() {
            break "connection closed while sending JoinGroup".to_string();
        }
        let Some(joined) =
            read_response_or_closed::<JoinGroupResponse>(&mut connection, correlation_id, version)
        else {
            break "connection closed instead of a JoinGroup answer".to_string();
        };
        if joined.error_code == ERROR_MEMBER_ID_REQUIRED && spec.member_id.is_empty() {
            spec.member_id = joined.member_id.to_string();
            continue;
        }
        if joined.error_code != ERROR_NONE {
            break format!("JoinGroup error {}", joined.error_code);
        }
        // Accepted at join (as Kafka does); Kafka refuses at SyncGroup, when
        // the group record would exceed the offsets topic's message size.
        let assignments = vec![(joined.member_id.to_string(), assignment_bytes(TOPIC, &[0, 1]))];
        let sync_version = connection.negotiate(ApiKey::SyncGroup, 0..=5);
        let request = sync_request(HUGE_GROUP, &joined, assignments, sync_version);
        let (correlation_id, frame) = connection.encode_request(sync_version, &request);
        if connection.write_raw(&frame).is_err() {
            break "connection closed while sending SyncGroup".to_string();
        }
        let Some(synced) =
            read_response_or_closed::<SyncGroupResponse>(&mut connection, correlation_id, sync_version)
        else {
            break "connection closed instead of a SyncGroup answer".to_string();
        };
        assert_ne!(
            synced.error_code, ERROR_NONE,
            "the broker accepted a member with {HUGE_BYTES} bytes of protocol metadata: Kafka refuses it \
             (SyncGroup fails: the group record exceeds the offsets topic's max.message.bytes)"
        );
        break format!("SyncGroup error {}", synced.error_code);
    };
    eprintln!("oversized protocol metadata: {outcome}");

    // Another group on the same broker, on a fresh connection, works.
    let mut other = Connection::open(broker.socket_addr());
    other.ping();
    let member = form_single_member_group(&mut other, GROUP, TOPIC, &[0, 1]);
    let committed = offset_commit(
        &mut other,
        GROUP,
        member.generation_id,
        &member.member_id,
        TOPIC,
        &[(0, 3, ""), (1, 4, "")],
    );
    assert_eq!(committed, vec![(0, ERROR_NONE), (1, ERROR_NONE)]);
    let fetched = offset_fetch(&mut other, GROUP, TOPIC, &[0, 1]);
    assert_eq!(
        fetched
            .iter()
            .map(|f| (f.partition, f.offset))
            .collect::<Vec<_>>(),
        vec![(0, 3), (1, 4)]
    );
    assert_eq!(
        heartbeat(&mut other, GROUP, &member.member_id, member.generation_id),
        ERROR_NONE
    );
    let (_, described) = describe_group(&mut other, GROUP);
    assert_eq!(described.group_state.as_str(), "Stable");
    // Describing the oversized group is answered too (whatever it holds).
    let _ = describe_group(&mut other, HUGE_GROUP);
}

#[test]
fn offset_fetch_without_commits_returns_minus_one_per_partition() {
    const TOPIC: &str = "fetch-checks";
    const GROUP: &str = "fetch-checks-group";
    let broker = start_broker();
    create_topic(&broker.bootstrap(), TOPIC, 4, &[]);
    let mut connection = Connection::open(broker.socket_addr());
    wait_for_coordinator(&mut connection, GROUP, broker.port());
    let partitions = [0, 1, 2, 3];

    let never_seen = offset_fetch(&mut connection, "group-without-anything", TOPIC, &partitions);
    let _member = form_single_member_group(&mut connection, GROUP, TOPIC, &partitions);
    let no_commits = offset_fetch(&mut connection, GROUP, TOPIC, &partitions);
    for (what, fetched) in [
        ("unknown group", never_seen),
        ("group without commits", no_commits),
    ] {
        let summary: Vec<(i32, i64, i16)> = fetched
            .iter()
            .map(|f| (f.partition, f.offset, f.error_code))
            .collect();
        assert_eq!(
            summary,
            vec![
                (0, -1, ERROR_NONE),
                (1, -1, ERROR_NONE),
                (2, -1, ERROR_NONE),
                (3, -1, ERROR_NONE)
            ],
            "{what}"
        );
    }
}

#[test]
fn describe_and_list_groups_show_state_protocol_and_members() {
    const TOPIC: &str = "describe-checks";
    const GROUP: &str = "describe-checks-group";
    let broker = start_broker();
    create_topic(&broker.bootstrap(), TOPIC, 2, &[]);
    let mut connection = Connection::open(broker.socket_addr());
    wait_for_coordinator(&mut connection, GROUP, broker.port());
    let member = form_single_member_group(&mut connection, GROUP, TOPIC, &[0, 1]);

    let (_, described) = describe_group(&mut connection, GROUP);
    assert_eq!(described.error_code, ERROR_NONE, "{described:?}");
    assert_eq!(described.group_id.0.as_str(), GROUP);
    assert_eq!(described.group_state.as_str(), "Stable");
    assert_eq!(described.protocol_type.as_str(), "consumer");
    assert_eq!(described.protocol_data.as_str(), "range", "the chosen protocol");
    assert_eq!(described.members.len(), 1, "{described:?}");
    let described_member = &described.members[0];
    assert_eq!(described_member.member_id.as_str(), member.member_id.as_str());
    assert_eq!(described_member.client_id.as_str(), RAW_CLIENT_ID);
    assert!(
        described_member.client_host.contains("127.0.0.1"),
        "client host {:?}",
        described_member.client_host
    );
    assert_eq!(
        described_member.member_metadata, member.metadata,
        "the subscription as sent"
    );
    assert_eq!(
        described_member.member_assignment, member.assignment,
        "the assignment as synced"
    );

    let (version, listed) = list_groups(&mut connection, &[]);
    assert_eq!(listed.error_code, ERROR_NONE);
    let entry = listed
        .groups
        .iter()
        .find(|g| g.group_id.0.as_str() == GROUP)
        .unwrap_or_else(|| panic!("ListGroups does not show {GROUP}: {listed:?}"));
    assert_eq!(entry.protocol_type.as_str(), "consumer");
    if version >= 4 {
        assert_eq!(entry.group_state.as_str(), "Stable");
        let (_, only_empty) = list_groups(&mut connection, &["Empty"]);
        assert!(
            only_empty.groups.iter().all(|g| g.group_id.0.as_str() != GROUP),
            "a Stable group listed under the Empty filter: {only_empty:?}"
        );
    }

    leave_group(&mut connection, GROUP, &member.member_id);
    let (_, described) = describe_group(&mut connection, GROUP);
    assert_eq!(described.error_code, ERROR_NONE);
    assert_eq!(
        described.group_state.as_str(),
        "Empty",
        "after the only member left: {described:?}"
    );
    assert!(described.members.is_empty(), "{described:?}");
    if version >= 4 {
        let (_, only_empty) = list_groups(&mut connection, &["Empty"]);
        assert!(
            only_empty.groups.iter().any(|g| g.group_id.0.as_str() == GROUP),
            "the empty group under the Empty filter: {only_empty:?}"
        );
    }

    // Kafka describes a group it does not know as Dead (and, from v6, with
    // GROUP_ID_NOT_FOUND).
    let (version, unknown) = describe_group(&mut connection, "group-that-never-existed");
    assert_eq!(unknown.group_state.as_str(), "Dead", "{unknown:?}");
    assert!(unknown.members.is_empty());
    let expected_error = if version >= 6 {
        ERROR_GROUP_ID_NOT_FOUND
    } else {
        ERROR_NONE
    };
    assert_eq!(
        unknown.error_code, expected_error,
        "DescribeGroups v{version} of an unknown group"
    );
}

#[test]
fn delete_groups_refuses_non_empty_group_and_removes_offsets_of_empty_one() {
    const TOPIC: &str = "delete-checks";
    const GROUP: &str = "delete-checks-group";
    let broker = start_broker();
    create_topic(&broker.bootstrap(), TOPIC, 2, &[]);
    let mut connection = Connection::open(broker.socket_addr());
    wait_for_coordinator(&mut connection, GROUP, broker.port());
    let member = form_single_member_group(&mut connection, GROUP, TOPIC, &[0, 1]);
    let committed = offset_commit(
        &mut connection,
        GROUP,
        member.generation_id,
        &member.member_id,
        TOPIC,
        &[(0, 3, ""), (1, 4, "")],
    );
    assert_eq!(committed, vec![(0, ERROR_NONE), (1, ERROR_NONE)]);
    let offsets = |connection: &mut Connection| -> Vec<(i32, i64)> {
        offset_fetch(connection, GROUP, TOPIC, &[0, 1])
            .iter()
            .map(|f| (f.partition, f.offset))
            .collect()
    };

    let (error, partitions) = offset_delete(&mut connection, GROUP, TOPIC, &[0]);
    assert_eq!(error, ERROR_NONE, "OffsetDelete top-level error for a live group");
    assert_eq!(
        partitions,
        vec![(0, ERROR_GROUP_SUBSCRIBED_TO_TOPIC)],
        "OffsetDelete of a topic a member is subscribed to"
    );
    assert_eq!(
        delete_groups(&mut connection, &[GROUP]),
        vec![(GROUP.to_string(), ERROR_NON_EMPTY_GROUP)],
        "DeleteGroups of a group with a member"
    );
    assert_eq!(
        offsets(&mut connection),
        vec![(0, 3), (1, 4)],
        "refused deletes kept the offsets"
    );

    leave_group(&mut connection, GROUP, &member.member_id);
    let (error, partitions) = offset_delete(&mut connection, GROUP, TOPIC, &[0]);
    assert_eq!(
        error, ERROR_NONE,
        "OffsetDelete top-level error for an empty group"
    );
    assert_eq!(
        partitions,
        vec![(0, ERROR_NONE)],
        "OffsetDelete of an empty group"
    );
    assert_eq!(
        offsets(&mut connection),
        vec![(0, -1), (1, 4)],
        "only partition 0's offset is gone"
    );

    assert_eq!(
        delete_groups(&mut connection, &[GROUP]),
        vec![(GROUP.to_string(), ERROR_NONE)],
        "DeleteGroups of an empty group"
    );
    assert_eq!(
        offsets(&mut connection),
        vec![(0, -1), (1, -1)],
        "the deleted group's offsets are gone"
    );
    let (_, described) = describe_group(&mut connection, GROUP);
    assert_eq!(described.group_state.as_str(), "Dead", "{described:?}");
    assert_eq!(
        delete_groups(&mut connection, &[GROUP, "group-that-never-existed"]),
        vec![
            (GROUP.to_string(), ERROR_GROUP_ID_NOT_FOUND),
            ("group-that-never-existed".to_string(), ERROR_GROUP_ID_NOT_FOUND)
        ],
        "DeleteGroups of groups that do not exist (any more)"
    );

    // The deletion is durable: it survives a restart, and the group id can
    // be used afresh.
    drop(connection);
    let mut broker = broker;
    broker.restart();
    let mut connection = Connection::open(broker.socket_addr());
    wait_for_coordinator(&mut connection, GROUP, broker.port());
    assert_eq!(
        offsets(&mut connection),
        vec![(0, -1), (1, -1)],
        "after a restart"
    );
    let again = form_single_member_group(&mut connection, GROUP, TOPIC, &[0, 1]);
    assert!(again.generation_id >= 1, "a fresh group: {}", again.generation_id);
}

// ---------------------------------------------------------------------------
// Raw protocol helpers (on top of tests/common/wire.rs)
// ---------------------------------------------------------------------------

fn group_id(name: &str) -> GroupId {
    GroupId(StrBytes::from_string(name.to_string()))
}

fn str_bytes(text: &str) -> StrBytes {
    StrBytes::from_string(text.to_string())
}

/// ConsumerProtocolSubscription v0 (version prefix included), as a Java or
/// librdkafka consumer sends it in JoinGroup.
fn subscription_metadata(topics: &[&str]) -> Bytes {
    subscription_bytes(topics, None)
}

fn subscription_metadata_with_user_data(topics: &[&str], user_data: Bytes) -> Bytes {
    subscription_bytes(topics, Some(user_data))
}

fn subscription_bytes(topics: &[&str], user_data: Option<Bytes>) -> Bytes {
    let subscription = ConsumerProtocolSubscription::default()
        .with_topics(topics.iter().map(|topic| str_bytes(topic)).collect())
        .with_user_data(user_data);
    let mut buffer = BytesMut::new();
    buffer.put_i16(0);
    subscription
        .encode(&mut buffer, 0)
        .expect("encode consumer subscription");
    buffer.freeze()
}

/// ConsumerProtocolAssignment v0 (version prefix included) of `partitions`.
fn assignment_bytes(topic: &str, partitions: &[i32]) -> Bytes {
    let assignment = ConsumerProtocolAssignment::default().with_assigned_partitions(vec![
        AssignedTopicPartition::default()
            .with_topic(wire::topic_name(topic))
            .with_partitions(partitions.to_vec()),
    ]);
    let mut buffer = BytesMut::new();
    buffer.put_i16(0);
    assignment
        .encode(&mut buffer, 0)
        .expect("encode consumer assignment");
    buffer.freeze()
}

fn topic_assignment(topic: &str, partitions: &[i32]) -> BTreeMap<String, BTreeSet<i32>> {
    BTreeMap::from([(topic.to_string(), partitions.iter().copied().collect())])
}

/// Topic → partitions of a ConsumerProtocolAssignment (empty bytes: none).
fn decode_assignment(bytes: &Bytes) -> BTreeMap<String, BTreeSet<i32>> {
    let mut out: BTreeMap<String, BTreeSet<i32>> = BTreeMap::new();
    if bytes.is_empty() {
        return out;
    }
    let mut buffer = bytes.clone();
    let version = buffer.get_i16();
    assert!(version >= 0, "assignment version {version}");
    // Newer versions only append fields: read them as the newest we know.
    let assignment =
        ConsumerProtocolAssignment::decode(&mut buffer, version.min(3)).expect("decode consumer assignment");
    for topic in assignment.assigned_partitions {
        out.entry(topic.topic.0.to_string())
            .or_default()
            .extend(topic.partitions);
    }
    out
}

/// Kafka's RangeAssignor for one topic: members sorted by id, each gets a
/// contiguous range, the first `partitions % members` one extra.
fn leader_range_assignments(
    joined: &JoinGroupResponse,
    topic: &str,
    partition_count: i32,
) -> Vec<(String, Bytes)> {
    let mut member_ids: Vec<String> = joined.members.iter().map(|m| m.member_id.to_string()).collect();
    member_ids.sort();
    let count = member_ids.len() as i32;
    let (per_member, extra) = (partition_count / count, partition_count % count);
    let mut next = 0;
    member_ids
        .into_iter()
        .enumerate()
        .map(|(index, member_id)| {
            let take = per_member + i32::from((index as i32) < extra);
            let partitions: Vec<i32> = (next..next + take).collect();
            next += take;
            (member_id, assignment_bytes(topic, &partitions))
        })
        .collect()
}

/// One JoinGroup request's contents.
#[derive(Clone, Debug)]
struct JoinSpec {
    group: String,
    member_id: String,
    session_timeout_ms: i32,
    rebalance_timeout_ms: i32,
    protocol_type: String,
    protocols: Vec<(String, Bytes)>,
}

impl JoinSpec {
    fn new(group: &str, protocols: Vec<(&str, Bytes)>) -> JoinSpec {
        JoinSpec {
            group: group.to_string(),
            member_id: String::new(),
            session_timeout_ms: RAW_SESSION_TIMEOUT_MS,
            rebalance_timeout_ms: RAW_REBALANCE_TIMEOUT_MS,
            protocol_type: "consumer".to_string(),
            protocols: protocols
                .into_iter()
                .map(|(name, metadata)| (name.to_string(), metadata))
                .collect(),
        }
    }

    fn member_id(mut self, member_id: &str) -> JoinSpec {
        self.member_id = member_id.to_string();
        self
    }

    fn session_timeout_ms(mut self, session_timeout_ms: i32) -> JoinSpec {
        self.session_timeout_ms = session_timeout_ms;
        self
    }

    fn request(&self) -> JoinGroupRequest {
        JoinGroupRequest::default()
            .with_group_id(group_id(&self.group))
            .with_session_timeout_ms(self.session_timeout_ms)
            .with_rebalance_timeout_ms(self.rebalance_timeout_ms)
            .with_member_id(str_bytes(&self.member_id))
            .with_protocol_type(str_bytes(&self.protocol_type))
            .with_protocols(
                self.protocols
                    .iter()
                    .map(|(name, metadata)| {
                        JoinGroupRequestProtocol::default()
                            .with_name(str_bytes(name))
                            .with_metadata(metadata.clone())
                    })
                    .collect(),
            )
    }
}

/// One JoinGroup round trip, at the highest version both sides know (v1+:
/// it has the rebalance timeout).
fn join_group_once(connection: &mut Connection, spec: &JoinSpec) -> JoinGroupResponse {
    let version = connection.negotiate(ApiKey::JoinGroup, 1..=9);
    connection.call(version, &spec.request())
}

/// JoinGroup as clients do it: a new member answered MEMBER_ID_REQUIRED
/// (KIP-394, v4+) joins again with the member id it was given.
fn join_group(connection: &mut Connection, spec: &JoinSpec) -> JoinGroupResponse {
    let first = join_group_once(connection, spec);
    if first.error_code == ERROR_MEMBER_ID_REQUIRED && spec.member_id.is_empty() {
        let retry = spec.clone().member_id(first.member_id.as_str());
        return join_group_once(connection, &retry);
    }
    first
}

fn sync_request(
    group: &str,
    joined: &JoinGroupResponse,
    assignments: Vec<(String, Bytes)>,
    version: i16,
) -> SyncGroupRequest {
    let mut request = SyncGroupRequest::default()
        .with_group_id(group_id(group))
        .with_generation_id(joined.generation_id)
        .with_member_id(joined.member_id.clone())
        .with_assignments(
            assignments
                .into_iter()
                .map(|(member_id, assignment)| {
                    SyncGroupRequestAssignment::default()
                        .with_member_id(str_bytes(&member_id))
                        .with_assignment(assignment)
                })
                .collect(),
        );
    if version >= 5 {
        request = request
            .with_protocol_type(Some(str_bytes("consumer")))
            .with_protocol_name(joined.protocol_name.clone());
    }
    request
}

fn sync_group(
    connection: &mut Connection,
    group: &str,
    joined: &JoinGroupResponse,
    assignments: Vec<(String, Bytes)>,
) -> SyncGroupResponse {
    let version = connection.negotiate(ApiKey::SyncGroup, 0..=5);
    let request = sync_request(group, joined, assignments, version);
    connection.call(version, &request)
}

fn heartbeat(connection: &mut Connection, group: &str, member_id: &str, generation_id: i32) -> i16 {
    let version = connection.negotiate(ApiKey::Heartbeat, 0..=4);
    let request = HeartbeatRequest::default()
        .with_group_id(group_id(group))
        .with_generation_id(generation_id)
        .with_member_id(str_bytes(member_id));
    connection.call(version, &request).error_code
}

/// LeaveGroup of one dynamic member; asserts it was accepted.
fn leave_group(connection: &mut Connection, group: &str, member_id: &str) {
    let version = connection.negotiate(ApiKey::LeaveGroup, 0..=5);
    let mut request = LeaveGroupRequest::default().with_group_id(group_id(group));
    if version >= 3 {
        request = request.with_members(vec![
            MemberIdentity::default().with_member_id(str_bytes(member_id))
        ]);
    } else {
        request = request.with_member_id(str_bytes(member_id));
    }
    let response = connection.call(version, &request);
    assert_eq!(
        response.error_code, ERROR_NONE,
        "LeaveGroup v{version}: {response:?}"
    );
    for member in &response.members {
        assert_eq!(
            member.error_code, ERROR_NONE,
            "LeaveGroup v{version} member: {response:?}"
        );
    }
}

/// A group's only member, joined and synced with `partitions` assigned to
/// itself.
struct Membership {
    member_id: String,
    generation_id: i32,
    metadata: Bytes,
    assignment: Bytes,
}

fn form_single_member_group(
    connection: &mut Connection,
    group: &str,
    topic: &str,
    partitions: &[i32],
) -> Membership {
    let metadata = subscription_metadata(&[topic]);
    let joined = join_group(
        connection,
        &JoinSpec::new(group, vec![("range", metadata.clone())]),
    );
    assert_eq!(joined.error_code, ERROR_NONE, "{group}: JoinGroup: {joined:?}");
    assert!(
        joined.generation_id >= 1,
        "{group}: generation {}",
        joined.generation_id
    );
    assert_eq!(joined.leader, joined.member_id, "{group}: the only member leads");
    assert_eq!(joined.protocol_name.as_ref().map(|p| p.as_str()), Some("range"));
    let members: Vec<(&str, &Bytes)> = joined
        .members
        .iter()
        .map(|m| (m.member_id.as_str(), &m.metadata))
        .collect();
    assert_eq!(
        members,
        vec![(joined.member_id.as_str(), &metadata)],
        "{group}: the leader sees itself with its metadata"
    );
    let assignment = assignment_bytes(topic, partitions);
    let synced = sync_group(
        connection,
        group,
        &joined,
        vec![(joined.member_id.to_string(), assignment.clone())],
    );
    assert_eq!(synced.error_code, ERROR_NONE, "{group}: SyncGroup: {synced:?}");
    assert_eq!(
        synced.assignment, assignment,
        "{group}: the assignment comes back as sent"
    );
    Membership {
        member_id: joined.member_id.to_string(),
        generation_id: joined.generation_id,
        metadata,
        assignment,
    }
}

/// OffsetCommit of `(partition, offset, metadata)` entries: (partition,
/// error) per partition, in request order.
fn offset_commit(
    connection: &mut Connection,
    group: &str,
    generation_id: i32,
    member_id: &str,
    topic: &str,
    entries: &[(i32, i64, &str)],
) -> Vec<(i32, i16)> {
    let version = connection.negotiate(ApiKey::OffsetCommit, 2..=9);
    let request = OffsetCommitRequest::default()
        .with_group_id(group_id(group))
        .with_generation_id_or_member_epoch(generation_id)
        .with_member_id(str_bytes(member_id))
        .with_topics(vec![OffsetCommitRequestTopic::default()
            .with_name(wire::topic_name(topic))
            .with_partitions(
                entries
                    .iter()
                    .map(|&(partition, offset, metadata)| {
                        OffsetCommitRequestPartition::default()
                            .with_partition_index(partition)
                            .with_committed_offset(offset)
                            .with_committed_metadata(Some(str_bytes(metadata)))
                    })
                    .collect(),
            )]);
    let response = connection.call(version, &request);
    assert_eq!(response.topics.len(), 1, "OffsetCommit v{version}: {response:?}");
    assert_eq!(response.topics[0].name.0.as_str(), topic);
    response.topics[0]
        .partitions
        .iter()
        .map(|p| (p.partition_index, p.error_code))
        .collect()
}

#[derive(Clone, Debug)]
struct FetchedOffset {
    partition: i32,
    offset: i64,
    metadata: Option<String>,
    error_code: i16,
}

/// OffsetFetch of one topic's partitions (v1..=7 top-level, v8+ batched by
/// group). Retries while the coordinator is starting or loading (after a
/// restart); asserts no group-level error.
fn offset_fetch(
    connection: &mut Connection,
    group: &str,
    topic: &str,
    partitions: &[i32],
) -> Vec<FetchedOffset> {
    let deadline = Instant::now() + GROUP_TIMEOUT;
    loop {
        let (group_error, fetched) = offset_fetch_once(connection, group, topic, partitions);
        let starting = COORDINATOR_STARTING_ERRORS.contains(&group_error)
            || fetched
                .iter()
                .any(|f| COORDINATOR_STARTING_ERRORS.contains(&f.error_code));
        if !starting {
            assert_eq!(group_error, ERROR_NONE, "OffsetFetch of {group}: {fetched:?}");
            let mut sorted = fetched;
            sorted.sort_by_key(|f| f.partition);
            let answered: Vec<i32> = sorted.iter().map(|f| f.partition).collect();
            let mut asked = partitions.to_vec();
            asked.sort_unstable();
            assert_eq!(
                answered, asked,
                "OffsetFetch of {group} answers every partition asked"
            );
            return sorted;
        }
        assert!(
            Instant::now() < deadline,
            "OffsetFetch of {group} kept answering coordinator-not-ready errors: group {group_error}, {fetched:?}"
        );
        thread::sleep(Duration::from_millis(200));
    }
}

fn offset_fetch_once(
    connection: &mut Connection,
    group: &str,
    topic: &str,
    partitions: &[i32],
) -> (i16, Vec<FetchedOffset>) {
    let version = connection.negotiate(ApiKey::OffsetFetch, 1..=9);
    if version <= 7 {
        let request = OffsetFetchRequest::default()
            .with_group_id(group_id(group))
            .with_topics(Some(vec![OffsetFetchRequestTopic::default()
                .with_name(wire::topic_name(topic))
                .with_partition_indexes(partitions.to_vec())]));
        let response = connection.call(version, &request);
        let fetched = response
            .topics
            .iter()
            .filter(|t| t.name.0.as_str() == topic)
            .flat_map(|t| &t.partitions)
            .map(|p| FetchedOffset {
                partition: p.partition_index,
                offset: p.committed_offset,
                metadata: p.metadata.as_ref().map(|m| m.to_string()),
                error_code: p.error_code,
            })
            .collect();
        (response.error_code, fetched)
    } else {
        // `topics` stays at its default, an empty list: kafka-protocol refuses
        // `None` at v8+.
        let request = OffsetFetchRequest::default().with_groups(vec![OffsetFetchRequestGroup::default()
            .with_group_id(group_id(group))
            .with_topics(Some(vec![OffsetFetchRequestTopics::default()
                .with_name(wire::topic_name(topic))
                .with_partition_indexes(partitions.to_vec())]))]);
        let response = connection.call(version, &request);
        assert_eq!(response.groups.len(), 1, "OffsetFetch v{version}: {response:?}");
        let answer = &response.groups[0];
        assert_eq!(answer.group_id.0.as_str(), group);
        let fetched = answer
            .topics
            .iter()
            .filter(|t| t.name.0.as_str() == topic)
            .flat_map(|t| &t.partitions)
            .map(|p| FetchedOffset {
                partition: p.partition_index,
                offset: p.committed_offset,
                metadata: p.metadata.as_ref().map(|m| m.to_string()),
                error_code: p.error_code,
            })
            .collect();
        (answer.error_code, fetched)
    }
}

/// (negotiated version, the group's description).
fn describe_group(connection: &mut Connection, group: &str) -> (i16, DescribedGroup) {
    let version = connection.negotiate(ApiKey::DescribeGroups, 0..=6);
    let request = DescribeGroupsRequest::default().with_groups(vec![group_id(group)]);
    let response = connection.call(version, &request);
    assert_eq!(
        response.groups.len(),
        1,
        "DescribeGroups v{version}: {response:?}"
    );
    let described = response.groups.into_iter().next().expect("one group");
    assert_eq!(described.group_id.0.as_str(), group);
    (version, described)
}

/// (negotiated version, response). `states` filters (v4+ only).
fn list_groups(connection: &mut Connection, states: &[&str]) -> (i16, ListGroupsResponse) {
    let version = connection.negotiate(ApiKey::ListGroups, 0..=5);
    let mut request = ListGroupsRequest::default();
    if !states.is_empty() {
        assert!(version >= 4, "state filters need ListGroups v4");
        request = request.with_states_filter(states.iter().map(|s| str_bytes(s)).collect());
    }
    (version, connection.call(version, &request))
}

fn delete_groups(connection: &mut Connection, groups: &[&str]) -> Vec<(String, i16)> {
    let version = connection.negotiate(ApiKey::DeleteGroups, 0..=2);
    let request =
        DeleteGroupsRequest::default().with_groups_names(groups.iter().map(|g| group_id(g)).collect());
    let response = connection.call(version, &request);
    response
        .results
        .iter()
        .map(|r| (r.group_id.0.to_string(), r.error_code))
        .collect()
}

/// (top-level error, (partition, error) per partition).
fn offset_delete(
    connection: &mut Connection,
    group: &str,
    topic: &str,
    partitions: &[i32],
) -> (i16, Vec<(i32, i16)>) {
    let version = connection.negotiate(ApiKey::OffsetDelete, 0..=0);
    let request = OffsetDeleteRequest::default()
        .with_group_id(group_id(group))
        .with_topics(vec![OffsetDeleteRequestTopic::default()
            .with_name(wire::topic_name(topic))
            .with_partitions(
                partitions
                    .iter()
                    .map(|&p| OffsetDeleteRequestPartition::default().with_partition_index(p))
                    .collect(),
            )]);
    let response = connection.call(version, &request);
    let partitions = response
        .topics
        .iter()
        .filter(|t| t.name.0.as_str() == topic)
        .flat_map(|t| &t.partitions)
        .map(|p| (p.partition_index, p.error_code))
        .collect();
    (response.error_code, partitions)
}

/// FindCoordinator until the broker answers without error, then asserts it
/// names itself (node 0, this port): a single broker coordinates every group.
fn wait_for_coordinator(connection: &mut Connection, group: &str, port: u16) {
    let deadline = Instant::now() + GROUP_TIMEOUT;
    loop {
        let version = connection.negotiate(ApiKey::FindCoordinator, 0..=6);
        let mut request = FindCoordinatorRequest::default();
        if version >= 4 {
            request = request.with_coordinator_keys(vec![str_bytes(group)]);
        } else {
            request = request.with_key(str_bytes(group));
        }
        let response = connection.call(version, &request);
        let (error, node, host, answered_port) = if version >= 4 {
            assert_eq!(
                response.coordinators.len(),
                1,
                "FindCoordinator v{version}: {response:?}"
            );
            let coordinator = &response.coordinators[0];
            assert_eq!(coordinator.key.as_str(), group);
            (
                coordinator.error_code,
                coordinator.node_id.0,
                coordinator.host.to_string(),
                coordinator.port,
            )
        } else {
            (
                response.error_code,
                response.node_id.0,
                response.host.to_string(),
                response.port,
            )
        };
        if error == ERROR_NONE {
            assert_eq!(
                (node, host.as_str(), answered_port),
                (0, "127.0.0.1", i32::from(port)),
                "FindCoordinator v{version} for {group}"
            );
            return;
        }
        assert!(
            COORDINATOR_STARTING_ERRORS.contains(&error),
            "FindCoordinator v{version} for {group}: error {error}: {response:?}"
        );
        assert!(
            Instant::now() < deadline,
            "no coordinator for {group} within {GROUP_TIMEOUT:?}: last error {error}"
        );
        thread::sleep(Duration::from_millis(200));
    }
}

/// The response to `correlation_id`, or `None` if the broker closed (or
/// reset) the connection instead of answering.
fn read_response_or_closed<R: Decodable + HeaderVersion>(
    connection: &mut Connection,
    correlation_id: i32,
    version: i16,
) -> Option<R> {
    let mut frame = match connection.read_frame() {
        Ok(frame) => frame,
        Err(error) if matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
            panic!("no answer to correlation id {correlation_id}: the broker neither answered nor closed")
        }
        Err(_) => return None,
    };
    let header =
        ResponseHeader::decode(&mut frame, R::header_version(version)).expect("decode response header");
    assert_eq!(header.correlation_id, correlation_id, "response correlation id");
    let response = R::decode(&mut frame, version).expect("decode response body");
    assert_eq!(frame.remaining(), 0, "response body has trailing bytes");
    Some(response)
}
