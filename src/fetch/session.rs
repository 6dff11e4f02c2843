//! Incremental fetch sessions (KIP-227): one shard's session cache and the
//! rules that turn a Fetch request (v7+) into what to read and what to send.
//!
//! A [`FetchSessionCache`] belongs to one shard and is only touched from that
//! shard's thread. A client's connection stays on the shard that accepted it,
//! so the cache holds the sessions created on that shard's connections; a
//! client that reconnects to another shard gets FETCH_SESSION_ID_NOT_FOUND
//! and starts a new session there, as it would after a broker restart. The
//! methods take `&mut self` and do no I/O and no clock reads (time comes in
//! as `now_ms`), so the shard keeps the cache in its own cell and never holds
//! a borrow of it across an `.await`.
//!
//! One fetch is a synchronous step on each side of its reads:
//! 1. [`FetchSessionCache::plan`] checks `session_id`/`session_epoch`,
//!    applies the request to the session and returns a [`FetchPlan`]: the
//!    session id to answer with, whether the answer is incremental, and every
//!    partition to read with its fetch offset and byte limits, in response
//!    order. An `Err` is a Kafka error code for the response's top level
//!    (answer it with session_id 0 and no partitions).
//! 2. The handler reads the partitions, as many times as its long poll needs.
//! 3. [`FetchSessionCache::complete`] tells which planned partitions go into
//!    the response and records, per partition, what the response carries.
//!
//! Rules, as Kafka's FetchManager applies them:
//! - epoch -1 (FINAL): sessionless full fetch. A non-zero `session_id` is
//!   removed first. The answer has session_id 0 and every partition.
//! - epoch 0 (INITIAL): full fetch that creates a session (a non-zero
//!   `session_id` is removed first) holding the requested partitions in
//!   request order. When the cache is full, the least recently used session
//!   is evicted if it has been idle for more than `eviction_idle_ms_min`;
//!   otherwise, or when the request names more than
//!   `partitions_per_session_max` partitions, no session is created and the
//!   answer has session_id 0. Every partition is answered.
//! - epoch > 0 (or < -1): incremental. Unknown `session_id` (0 included):
//!   FETCH_SESSION_ID_NOT_FOUND. Epoch other than the session's expected one:
//!   INVALID_FETCH_SESSION_EPOCH. A request that would grow the session past
//!   `partitions_per_session_max`: INVALID_REQUEST (the client then starts
//!   over with a full fetch, which stays sessionless). Errors leave the
//!   session untouched. Otherwise requested partitions are added (appended)
//!   or updated, then forgotten ones removed (a partition in both lists is
//!   removed), and the fetch covers every partition of the session, with the
//!   cached offsets of those not named in the request. If no partition is
//!   left, the session is removed and the answer is sessionless and empty.
//! - A partition name repeated in one request counts once: the first
//!   occurrence gives its position, the last one its offsets (Kafka keeps
//!   them in a linked hash map). `forgotten_topics_data` of a full fetch is
//!   ignored, as Kafka ignores it.
//! - An incremental answer carries the partitions that have records or an
//!   error, whose high watermark, last stable offset or log start offset
//!   differs from the one last sent in this session, or that this request
//!   named. A full answer carries all. Each carried partition's three offsets
//!   are remembered as sent. The last stable offset counts on its own so a
//!   read_committed consumer learns when a transaction ended even if the
//!   high watermark it was last sent is unchanged (Kafka compares only the
//!   high watermark and log start; its markers always move the former).
//! - Fairness, as Kafka: a partition that returned records in an incremental
//!   answer moves to the back of the session's order, so partitions behind
//!   it are read first next time when `max_bytes` runs out.
//!
//! The expected epoch advances (i32::MAX wraps to 1) when `plan` succeeds,
//! not when the answer is sent, as in Kafka. A client that disconnects
//! between `plan` and `complete` never saw the answer, so its next request
//! carries the old epoch and gets INVALID_FETCH_SESSION_EPOCH, after which it
//! opens a new session (epoch 0, closing this one). Nothing was recorded as
//! sent for the lost answer, so the session stays consistent: it can only
//! answer more partitions than needed, never fewer. A plan is *current* while
//! it is the last one made for its session; `complete` with a stale plan (the
//! session was removed, evicted, replaced or planned again since) carries
//! every partition and records nothing.
//!
//! Invariants: session ids are in 1..=i32::MAX and unique in the cache;
//! `sessions.len() <= sessions_max`; a session holds each partition once and
//! at most `partitions_per_session_max` of them; its expected epoch is in
//! 1..=i32::MAX; `lru` has exactly one entry per session, in order of last
//! successful `plan`. Nothing panics on request data.
//!
//! Bounds: memory is at most `sessions_max * partitions_per_session_max`
//! cached partitions of roughly 150 bytes plus twice the topic name each
//! (about 200 MB per shard at the defaults in the worst case; tune both down
//! on small hosts). `plan` and `complete` are O(partitions in the session +
//! partitions in the request); creating a session may evict one, O(log n).

use std::{
    collections::{hash_map::RandomState, BTreeMap, HashMap, HashSet},
    hash::{BuildHasher, Hasher},
};

/// Kafka error codes this module answers with.
pub use crate::protocol::error_code::{
    FETCH_SESSION_ID_NOT_FOUND, INVALID_FETCH_SESSION_EPOCH, INVALID_REQUEST,
};

/// `session_id` meaning "no session", in requests and responses.
pub const SESSION_ID_NONE: i32 = 0;
/// `session_epoch` of a full fetch that creates a session.
pub const EPOCH_INITIAL: i32 = 0;
/// `session_epoch` of a sessionless full fetch (closes `session_id` if any).
pub const EPOCH_FINAL: i32 = -1;

/// Default for `sessions_max` (Kafka's `max.incremental.fetch.session.cache.slots`).
pub const SESSIONS_MAX_DEFAULT: usize = 1000;
/// Default for `partitions_per_session_max`.
pub const SESSION_PARTITIONS_MAX_DEFAULT: usize = 1000;
/// Default for `eviction_idle_ms_min` (Kafka's
/// `min.incremental.fetch.session.eviction.ms`).
pub const SESSION_EVICTION_IDLE_MS_MIN_DEFAULT: u64 = 120_000;
/// Random session ids drawn before giving up on creating a session (the id
/// space has 2^31 - 1 ids and at most `sessions_max` are taken).
const SESSION_ID_DRAWS_MAX: usize = 64;

/// Tunable bounds of one shard's cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionCacheConfig {
    /// Sessions held at once; 0 disables sessions (every fetch is full).
    pub sessions_max: usize,
    /// Partitions one session may hold.
    pub partitions_per_session_max: usize,
    /// A full cache evicts its least recently used session only when that
    /// session has been idle for strictly more than this, in ms.
    pub eviction_idle_ms_min: u64,
}

impl Default for SessionCacheConfig {
    fn default() -> Self {
        SessionCacheConfig {
            sessions_max: SESSIONS_MAX_DEFAULT,
            partitions_per_session_max: SESSION_PARTITIONS_MAX_DEFAULT,
            eviction_idle_ms_min: SESSION_EVICTION_IDLE_MS_MIN_DEFAULT,
        }
    }
}

/// A partition by topic name (Fetch up to v12 names topics).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PartitionKey {
    pub topic: String,
    pub partition: i32,
}

/// What a request asks of one partition; cached by the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestedPartition {
    pub fetch_offset: i64,
    pub partition_max_bytes: i32,
    pub log_start_offset: i64,
}

/// What to read for one Fetch request and how to answer it. Only `plan`
/// builds one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchPlan {
    /// Session id for the response; 0 when the answer is sessionless.
    pub session_id: i32,
    /// True when the response may leave out partitions (see `complete`).
    pub incremental: bool,
    /// Every partition to read, in response order. Pass this plan back to
    /// `complete` unchanged.
    pub partitions: Vec<(PartitionKey, RequestedPartition)>,
    /// The cache's sequence number of this plan; 0 when sessionless.
    plan_seq: u64,
}

/// What the read of one planned partition found, as the response carries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionResult {
    pub high_watermark: i64,
    pub last_stable_offset: i64,
    pub log_start_offset: i64,
    /// The response carries at least one record batch for this partition.
    pub has_records: bool,
    pub error_code: i16,
}

/// Offsets of a partition as last sent in this session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Sent {
    high_watermark: i64,
    last_stable_offset: i64,
    log_start_offset: i64,
}

#[derive(Debug, Clone)]
struct CachedPartition {
    key: PartitionKey,
    requested: RequestedPartition,
    /// None until a completed response carried this partition.
    sent: Option<Sent>,
    /// `plan_seq` of the last plan whose request named this partition.
    named_in_plan: u64,
}

/// Partitions in session order, each once, with an index by key.
#[derive(Debug, Clone, Default)]
struct PartitionSet {
    entries: Vec<CachedPartition>,
    index: HashMap<PartitionKey, usize>,
}

impl PartitionSet {
    /// Builds a set from request order; repeated keys keep their first
    /// position and their last offsets.
    fn from_requested(requested: Vec<(PartitionKey, RequestedPartition)>, plan_seq: u64) -> Self {
        let mut set = PartitionSet {
            entries: Vec::with_capacity(requested.len()),
            index: HashMap::with_capacity(requested.len()),
        };
        for (key, wanted) in requested {
            set.upsert(key, wanted, plan_seq);
        }
        set
    }

    fn len(&self) -> usize {
        self.entries.len()
    }

    fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn upsert(&mut self, key: PartitionKey, wanted: RequestedPartition, plan_seq: u64) {
        if let Some(&i) = self.index.get(&key) {
            if let Some(entry) = self.entries.get_mut(i) {
                entry.requested = wanted;
                entry.named_in_plan = plan_seq;
                return;
            }
        }
        self.index.insert(key.clone(), self.entries.len());
        self.entries.push(CachedPartition {
            key,
            requested: wanted,
            sent: None,
            named_in_plan: plan_seq,
        });
    }

    /// Size after adding `requested` and then removing `forgotten`.
    fn len_after(
        &self,
        requested: &[(PartitionKey, RequestedPartition)],
        forgotten: &[PartitionKey],
    ) -> usize {
        let added: HashSet<&PartitionKey> = requested
            .iter()
            .map(|(key, _)| key)
            .filter(|key| !self.index.contains_key(*key))
            .collect();
        let removed: HashSet<&PartitionKey> = forgotten
            .iter()
            .filter(|key| self.index.contains_key(*key) || added.contains(key))
            .collect();
        (self.len() + added.len()).saturating_sub(removed.len())
    }

    fn remove_all(&mut self, forgotten: &[PartitionKey]) {
        let mut drop = vec![false; self.entries.len()];
        let mut any = false;
        for key in forgotten {
            if let Some(slot) = self.index.remove(key).and_then(|i| drop.get_mut(i)) {
                *slot = true;
                any = true;
            }
        }
        if any {
            let entries = std::mem::take(&mut self.entries);
            self.entries = entries
                .into_iter()
                .zip(drop)
                .filter(|(_, d)| !d)
                .map(|(e, _)| e)
                .collect();
            self.rebuild_index();
        }
    }

    /// Moves the entries at `positions` to the back, keeping their order.
    fn move_to_back(&mut self, positions: &[usize]) {
        let mut moving = vec![false; self.entries.len()];
        let mut any = false;
        for &i in positions {
            if let Some(slot) = moving.get_mut(i) {
                *slot = true;
                any = true;
            }
        }
        if any {
            let entries = std::mem::take(&mut self.entries);
            let (front, back): (Vec<_>, Vec<_>) = entries.into_iter().zip(moving).partition(|(_, m)| !m);
            self.entries = front.into_iter().chain(back).map(|(e, _)| e).collect();
            self.rebuild_index();
        }
    }

    /// Brings the index's positions in step with `entries` after a reorder
    /// or a removal (removed keys are already out of the index).
    fn rebuild_index(&mut self) {
        for (i, entry) in self.entries.iter().enumerate() {
            match self.index.get_mut(&entry.key) {
                Some(position) => *position = i,
                None => {
                    self.index.insert(entry.key.clone(), i);
                }
            }
        }
    }

    fn planned(&self) -> Vec<(PartitionKey, RequestedPartition)> {
        self.entries
            .iter()
            .map(|e| (e.key.clone(), e.requested))
            .collect()
    }

    fn into_planned(self) -> Vec<(PartitionKey, RequestedPartition)> {
        self.entries.into_iter().map(|e| (e.key, e.requested)).collect()
    }
}

#[derive(Debug)]
struct Session {
    /// The epoch the next incremental request must carry.
    next_epoch: i32,
    partitions: PartitionSet,
    last_used_ms: u64,
    /// This session's key in `FetchSessionCache::lru`.
    lru_seq: u64,
    /// `plan_seq` of the last plan made for this session.
    last_plan: u64,
}

/// One shard's fetch sessions. See the module documentation for the rules.
#[derive(Debug)]
pub struct FetchSessionCache {
    config: SessionCacheConfig,
    sessions: HashMap<i32, Session>,
    /// Session ids by the order of their last use, oldest first.
    lru: BTreeMap<u64, i32>,
    /// Last value given to a session's `lru_seq`.
    lru_seq: u64,
    /// Last value given to a plan's `plan_seq` (0 is never given).
    plan_seq: u64,
    /// splitmix64 state for session ids.
    id_state: u64,
}

/// Epoch expected after `epoch`: +1, with i32::MAX wrapping to 1.
fn epoch_after(epoch: i32) -> i32 {
    match epoch.checked_add(1) {
        Some(next) if next > 0 => next,
        _ => 1,
    }
}

impl FetchSessionCache {
    /// An empty cache whose session ids are seeded from the process's random
    /// hash keys.
    pub fn new(config: SessionCacheConfig) -> Self {
        let mut hasher = RandomState::new().build_hasher();
        hasher.write_u64(0x7765_6972_6665_7463);
        Self::with_seed(config, hasher.finish())
    }

    /// An empty cache whose session ids follow from `seed` (deterministic,
    /// for tests and reproducible runs).
    pub fn with_seed(config: SessionCacheConfig, seed: u64) -> Self {
        FetchSessionCache {
            config,
            sessions: HashMap::new(),
            lru: BTreeMap::new(),
            lru_seq: 0,
            plan_seq: 0,
            id_state: seed,
        }
    }

    /// Sessions held.
    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }

    /// Partitions held over all sessions (for a gauge; O(sessions)).
    pub fn partitions_cached(&self) -> usize {
        self.sessions.values().map(|s| s.partitions.len()).sum()
    }

    /// Applies one Fetch request's session fields and partitions to the
    /// cache and says what to read. `Err` is a top-level Kafka error code
    /// (70, 71 or 42); the cache is then unchanged.
    pub fn plan(
        &mut self,
        session_id: i32,
        session_epoch: i32,
        requested: Vec<(PartitionKey, RequestedPartition)>,
        forgotten: Vec<PartitionKey>,
        now_ms: u64,
    ) -> Result<FetchPlan, i16> {
        if session_epoch == EPOCH_FINAL || session_epoch == EPOCH_INITIAL {
            if session_id != SESSION_ID_NONE {
                self.remove(session_id);
            }
            self.plan_seq += 1;
            let plan_seq = self.plan_seq;
            let set = PartitionSet::from_requested(requested, plan_seq);
            if session_epoch == EPOCH_INITIAL && set.len() <= self.config.partitions_per_session_max {
                let partitions = set.planned();
                if let Some(id) = self.create(set, plan_seq, now_ms) {
                    return Ok(FetchPlan {
                        session_id: id,
                        incremental: false,
                        partitions,
                        plan_seq,
                    });
                }
                return Ok(sessionless(partitions));
            }
            return Ok(sessionless(set.into_planned()));
        }

        let limit = self.config.partitions_per_session_max;
        let Some(session) = self.sessions.get_mut(&session_id) else {
            return Err(FETCH_SESSION_ID_NOT_FOUND);
        };
        if session.next_epoch != session_epoch {
            return Err(INVALID_FETCH_SESSION_EPOCH);
        }
        let len_after = session.partitions.len_after(&requested, &forgotten);
        if len_after > limit {
            return Err(INVALID_REQUEST);
        }
        self.plan_seq += 1;
        let plan_seq = self.plan_seq;
        for (key, wanted) in requested {
            session.partitions.upsert(key, wanted, plan_seq);
        }
        session.partitions.remove_all(&forgotten);
        if session.partitions.is_empty() {
            self.remove(session_id);
            return Ok(sessionless(Vec::new()));
        }
        session.next_epoch = epoch_after(session.next_epoch);
        session.last_plan = plan_seq;
        let partitions = session.partitions.planned();
        self.touch(session_id, now_ms);
        Ok(FetchPlan {
            session_id,
            incremental: true,
            partitions,
            plan_seq,
        })
    }

    /// After the reads: for each entry of `plan.partitions` (same order,
    /// `results[i]` for `plan.partitions[i]`), whether the response carries
    /// it. Records what was sent when `plan` is still current. A stale plan,
    /// or `results` of another length, carries everything and records
    /// nothing.
    pub fn complete(&mut self, plan: &FetchPlan, results: &[PartitionResult]) -> Vec<bool> {
        let mut carry = vec![true; plan.partitions.len()];
        if plan.session_id == SESSION_ID_NONE || results.len() != plan.partitions.len() {
            return carry;
        }
        let Some(session) = self.sessions.get_mut(&plan.session_id) else {
            return carry;
        };
        if session.last_plan != plan.plan_seq {
            return carry;
        }
        let mut rotate = Vec::new();
        for (((key, _), result), carried) in plan.partitions.iter().zip(results).zip(carry.iter_mut()) {
            let Some(&i) = session.partitions.index.get(key) else {
                continue;
            };
            let Some(entry) = session.partitions.entries.get_mut(i) else {
                continue;
            };
            let sent = Sent {
                high_watermark: result.high_watermark,
                last_stable_offset: result.last_stable_offset,
                log_start_offset: result.log_start_offset,
            };
            *carried = !plan.incremental
                || entry.named_in_plan == plan.plan_seq
                || result.has_records
                || result.error_code != 0
                || entry.sent != Some(sent);
            if *carried {
                entry.sent = Some(sent);
            }
            if plan.incremental && result.has_records {
                rotate.push(i);
            }
        }
        session.partitions.move_to_back(&rotate);
        carry
    }

    /// Creates a session holding `partitions`, evicting the least recently
    /// used one if the cache is full and it has idled long enough. None when
    /// no session can be created.
    fn create(&mut self, partitions: PartitionSet, plan_seq: u64, now_ms: u64) -> Option<i32> {
        while self.sessions.len() >= self.config.sessions_max {
            let (&seq, &oldest) = self.lru.iter().next()?;
            let idle_ms = self
                .sessions
                .get(&oldest)
                .map_or(u64::MAX, |s| now_ms.saturating_sub(s.last_used_ms));
            if idle_ms <= self.config.eviction_idle_ms_min {
                return None;
            }
            self.sessions.remove(&oldest);
            self.lru.remove(&seq);
        }
        let id = self.new_id()?;
        self.sessions.insert(
            id,
            Session {
                next_epoch: epoch_after(EPOCH_INITIAL),
                partitions,
                last_used_ms: now_ms,
                lru_seq: 0,
                last_plan: plan_seq,
            },
        );
        self.touch(id, now_ms);
        Some(id)
    }

    /// A positive id not in use, or None after `SESSION_ID_DRAWS_MAX` draws.
    fn new_id(&mut self) -> Option<i32> {
        for _ in 0..SESSION_ID_DRAWS_MAX {
            // splitmix64
            self.id_state = self.id_state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.id_state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^= z >> 31;
            let id = i32::try_from(z >> 33).unwrap_or(SESSION_ID_NONE);
            if id > 0 && !self.sessions.contains_key(&id) {
                return Some(id);
            }
        }
        None
    }

    /// Marks `id` as used now (most recently used).
    fn touch(&mut self, id: i32, now_ms: u64) {
        let Some(session) = self.sessions.get_mut(&id) else {
            return;
        };
        self.lru.remove(&session.lru_seq);
        self.lru_seq += 1;
        session.lru_seq = self.lru_seq;
        session.last_used_ms = now_ms;
        self.lru.insert(self.lru_seq, id);
    }

    fn remove(&mut self, id: i32) {
        if let Some(session) = self.sessions.remove(&id) {
            self.lru.remove(&session.lru_seq);
        }
    }
}

fn sessionless(partitions: Vec<(PartitionKey, RequestedPartition)>) -> FetchPlan {
    FetchPlan {
        session_id: SESSION_ID_NONE,
        incremental: false,
        partitions,
        plan_seq: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(topic: &str, partition: i32) -> PartitionKey {
        PartitionKey {
            topic: topic.to_string(),
            partition,
        }
    }

    fn want(fetch_offset: i64) -> RequestedPartition {
        RequestedPartition {
            fetch_offset,
            partition_max_bytes: 1 << 20,
            log_start_offset: -1,
        }
    }

    fn idle(high_watermark: i64) -> PartitionResult {
        PartitionResult {
            high_watermark,
            last_stable_offset: high_watermark,
            log_start_offset: 0,
            has_records: false,
            error_code: 0,
        }
    }

    fn config() -> SessionCacheConfig {
        SessionCacheConfig {
            sessions_max: 3,
            partitions_per_session_max: 4,
            eviction_idle_ms_min: 1000,
        }
    }

    fn cache() -> FetchSessionCache {
        FetchSessionCache::with_seed(config(), 42)
    }

    fn keys(plan: &FetchPlan) -> Vec<PartitionKey> {
        plan.partitions.iter().map(|(k, _)| k.clone()).collect()
    }

    /// Creates a session on a0, a1 (offsets 10, 20) and completes its full
    /// answer with high watermarks 100, 200. Returns the session id.
    fn open(cache: &mut FetchSessionCache, now_ms: u64) -> i32 {
        let plan = cache
            .plan(
                0,
                EPOCH_INITIAL,
                vec![(key("a", 0), want(10)), (key("a", 1), want(20))],
                vec![],
                now_ms,
            )
            .unwrap();
        assert!(plan.session_id > 0);
        assert_eq!(cache.complete(&plan, &[idle(100), idle(200)]), vec![true, true]);
        plan.session_id
    }

    #[test]
    fn final_epoch_is_sessionless_and_full() {
        let mut cache = cache();
        let requested = vec![(key("b", 1), want(5)), (key("a", 0), want(7))];
        let plan = cache.plan(0, EPOCH_FINAL, requested.clone(), vec![], 0).unwrap();
        assert_eq!(plan.session_id, 0);
        assert!(!plan.incremental);
        assert_eq!(plan.partitions, requested);
        assert!(cache.is_empty());
        assert_eq!(cache.complete(&plan, &[idle(1), idle(1)]), vec![true, true]);
        // A repeated full fetch with nothing new still answers everything.
        let plan = cache.plan(0, EPOCH_FINAL, requested, vec![], 0).unwrap();
        assert_eq!(cache.complete(&plan, &[idle(1), idle(1)]), vec![true, true]);
    }

    #[test]
    fn final_epoch_closes_the_named_session() {
        let mut cache = cache();
        let id = open(&mut cache, 0);
        let plan = cache
            .plan(id, EPOCH_FINAL, vec![(key("a", 0), want(10))], vec![], 1)
            .unwrap();
        assert_eq!(plan.session_id, 0);
        assert_eq!(plan.partitions.len(), 1);
        assert!(cache.is_empty());
        assert_eq!(
            cache.plan(id, 1, vec![], vec![], 2),
            Err(FETCH_SESSION_ID_NOT_FOUND)
        );
    }

    #[test]
    fn initial_epoch_creates_a_session_in_request_order() {
        let mut cache = cache();
        let requested = vec![(key("z", 3), want(1)), (key("a", 0), want(2))];
        let plan = cache
            .plan(0, EPOCH_INITIAL, requested.clone(), vec![], 0)
            .unwrap();
        assert!(plan.session_id > 0);
        assert!(!plan.incremental);
        assert_eq!(plan.partitions, requested);
        assert_eq!(cache.len(), 1);
        assert_eq!(cache.partitions_cached(), 2);
        // Full answer: everything is carried, even with no change at all.
        assert_eq!(cache.complete(&plan, &[idle(0), idle(0)]), vec![true, true]);
        // The session expects epoch 1 next and keeps the request order.
        let next = cache.plan(plan.session_id, 1, vec![], vec![], 1).unwrap();
        assert!(next.incremental);
        assert_eq!(next.session_id, plan.session_id);
        assert_eq!(next.partitions, requested);
    }

    #[test]
    fn initial_epoch_replaces_the_named_session() {
        let mut cache = cache();
        let old = open(&mut cache, 0);
        let plan = cache
            .plan(old, EPOCH_INITIAL, vec![(key("c", 0), want(3))], vec![], 1)
            .unwrap();
        assert!(plan.session_id > 0);
        assert_ne!(plan.session_id, old);
        assert_eq!(cache.len(), 1);
        assert_eq!(
            cache.plan(old, 1, vec![], vec![], 2),
            Err(FETCH_SESSION_ID_NOT_FOUND)
        );
        let next = cache.plan(plan.session_id, 1, vec![], vec![], 2).unwrap();
        assert_eq!(keys(&next), vec![key("c", 0)]);
    }

    #[test]
    fn initial_epoch_with_an_unknown_session_id_just_creates() {
        let mut cache = cache();
        let plan = cache
            .plan(12345, EPOCH_INITIAL, vec![(key("c", 0), want(3))], vec![], 0)
            .unwrap();
        assert!(plan.session_id > 0);
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn full_fetches_ignore_forgotten_and_merge_repeated_partitions() {
        let mut cache = cache();
        let requested = vec![
            (key("a", 0), want(1)),
            (key("b", 0), want(2)),
            (key("a", 0), want(3)),
        ];
        for epoch in [EPOCH_FINAL, EPOCH_INITIAL] {
            let plan = cache
                .plan(0, epoch, requested.clone(), vec![key("b", 0)], 0)
                .unwrap();
            assert_eq!(
                plan.partitions,
                vec![(key("a", 0), want(3)), (key("b", 0), want(2))]
            );
        }
        assert_eq!(cache.partitions_cached(), 2);
    }

    #[test]
    fn incremental_with_unknown_session_is_not_found() {
        let mut cache = cache();
        assert_eq!(
            cache.plan(0, 1, vec![], vec![], 0),
            Err(FETCH_SESSION_ID_NOT_FOUND)
        );
        assert_eq!(
            cache.plan(777, 1, vec![], vec![], 0),
            Err(FETCH_SESSION_ID_NOT_FOUND)
        );
        let id = open(&mut cache, 0);
        assert_eq!(
            cache.plan(id ^ 1, 1, vec![], vec![], 0),
            Err(FETCH_SESSION_ID_NOT_FOUND)
        );
    }

    #[test]
    fn wrong_epoch_is_rejected_and_changes_nothing() {
        let mut cache = cache();
        let id = open(&mut cache, 0);
        for epoch in [2, 5, i32::MAX, -2, i32::MIN] {
            let result = cache.plan(id, epoch, vec![(key("x", 0), want(1))], vec![key("a", 0)], 1);
            assert_eq!(result, Err(INVALID_FETCH_SESSION_EPOCH));
        }
        let plan = cache.plan(id, 1, vec![], vec![], 2).unwrap();
        assert_eq!(keys(&plan), vec![key("a", 0), key("a", 1)]);
    }

    #[test]
    fn epoch_advances_only_on_success() {
        let mut cache = cache();
        let id = open(&mut cache, 0);
        assert!(cache.plan(id, 1, vec![], vec![], 1).is_ok());
        assert_eq!(
            cache.plan(id, 1, vec![], vec![], 2),
            Err(INVALID_FETCH_SESSION_EPOCH)
        );
        assert!(cache.plan(id, 2, vec![], vec![], 3).is_ok());
        assert!(cache.plan(id, 3, vec![], vec![], 4).is_ok());
        assert_eq!(cache.sessions[&id].next_epoch, 4);
    }

    #[test]
    fn epoch_wraps_from_max_to_one() {
        assert_eq!(epoch_after(1), 2);
        assert_eq!(epoch_after(i32::MAX), 1);
        let mut cache = cache();
        let id = open(&mut cache, 0);
        if let Some(session) = cache.sessions.get_mut(&id) {
            session.next_epoch = i32::MAX;
        }
        assert!(cache.plan(id, i32::MAX, vec![], vec![], 1).is_ok());
        assert_eq!(
            cache.plan(id, i32::MAX, vec![], vec![], 2),
            Err(INVALID_FETCH_SESSION_EPOCH)
        );
        assert!(cache.plan(id, 1, vec![], vec![], 3).is_ok());
    }

    #[test]
    fn incremental_adds_updates_and_uses_cached_offsets() {
        let mut cache = cache();
        let id = open(&mut cache, 0);
        let updated = RequestedPartition {
            fetch_offset: 25,
            partition_max_bytes: 99,
            log_start_offset: 4,
        };
        let plan = cache
            .plan(
                id,
                1,
                vec![(key("b", 0), want(0)), (key("a", 1), updated)],
                vec![],
                1,
            )
            .unwrap();
        assert!(plan.incremental);
        assert_eq!(plan.session_id, id);
        assert_eq!(
            plan.partitions,
            vec![
                (key("a", 0), want(10)),
                (key("a", 1), updated),
                (key("b", 0), want(0))
            ]
        );
        // The updates stick for the following fetches.
        let plan = cache.plan(id, 2, vec![], vec![], 2).unwrap();
        assert_eq!(
            plan.partitions,
            vec![
                (key("a", 0), want(10)),
                (key("a", 1), updated),
                (key("b", 0), want(0))
            ]
        );
    }

    #[test]
    fn incremental_repeated_partition_counts_once() {
        let mut cache = cache();
        let id = open(&mut cache, 0);
        let plan = cache
            .plan(
                id,
                1,
                vec![(key("b", 0), want(1)), (key("b", 0), want(2))],
                vec![],
                1,
            )
            .unwrap();
        assert_eq!(
            plan.partitions,
            vec![
                (key("a", 0), want(10)),
                (key("a", 1), want(20)),
                (key("b", 0), want(2))
            ]
        );
    }

    #[test]
    fn forgotten_partitions_are_removed() {
        let mut cache = cache();
        let id = open(&mut cache, 0);
        let plan = cache
            .plan(
                id,
                1,
                vec![(key("b", 0), want(1)), (key("c", 0), want(2))],
                vec![key("a", 0), key("c", 0), key("never", 9)],
                1,
            )
            .unwrap();
        // a0 forgotten, c0 both named and forgotten (forgotten wins), the
        // unknown one ignored.
        assert_eq!(keys(&plan), vec![key("a", 1), key("b", 0)]);
        assert_eq!(cache.partitions_cached(), 2);
        let plan = cache.plan(id, 2, vec![], vec![], 2).unwrap();
        assert_eq!(
            plan.partitions,
            vec![(key("a", 1), want(20)), (key("b", 0), want(1))]
        );
    }

    #[test]
    fn forgetting_everything_closes_the_session() {
        let mut cache = cache();
        let id = open(&mut cache, 0);
        let plan = cache
            .plan(id, 1, vec![], vec![key("a", 0), key("a", 1)], 1)
            .unwrap();
        assert_eq!(plan.session_id, 0);
        assert!(!plan.incremental);
        assert!(plan.partitions.is_empty());
        assert!(cache.is_empty());
        assert!(cache.lru.is_empty());
        assert_eq!(
            cache.plan(id, 2, vec![], vec![], 2),
            Err(FETCH_SESSION_ID_NOT_FOUND)
        );
    }

    #[test]
    fn incremental_answer_carries_only_what_changed() {
        let mut cache = cache();
        let parts: Vec<_> = (0..4).map(|p| (key("t", p), want(0))).collect();
        let plan = cache.plan(0, EPOCH_INITIAL, parts, vec![], 0).unwrap();
        let id = plan.session_id;
        let base = idle(50);
        assert_eq!(cache.complete(&plan, &[base; 4]), vec![true; 4]);

        // Nothing changed, nothing named: an empty answer.
        let plan = cache.plan(id, 1, vec![], vec![], 1).unwrap();
        assert_eq!(cache.complete(&plan, &[base; 4]), vec![false; 4]);

        // One change of each kind.
        let plan = cache.plan(id, 2, vec![], vec![], 2).unwrap();
        let results = [
            PartitionResult {
                high_watermark: 51,
                ..base
            },
            PartitionResult {
                last_stable_offset: 49,
                ..base
            },
            PartitionResult {
                log_start_offset: 3,
                ..base
            },
            base,
        ];
        assert_eq!(cache.complete(&plan, &results), vec![true, true, true, false]);

        // What was sent is remembered: the same values are not sent again.
        let plan = cache.plan(id, 3, vec![], vec![], 3).unwrap();
        assert_eq!(cache.complete(&plan, &results), vec![false; 4]);

        // Records and errors are always carried, even with unchanged offsets.
        let plan = cache.plan(id, 4, vec![], vec![], 4).unwrap();
        let again = [
            PartitionResult {
                has_records: true,
                ..results[0]
            },
            PartitionResult {
                error_code: 1,
                ..results[1]
            },
            results[2],
            results[3],
        ];
        let carried = cache.complete(&plan, &again);
        assert_eq!(carried, vec![true, true, false, false]);

        // A partition named in the request is carried though unchanged (t0
        // moved to the back for having had records).
        let plan = cache
            .plan(id, 5, vec![(key("t", 2), want(7))], vec![], 5)
            .unwrap();
        assert_eq!(
            keys(&plan),
            vec![key("t", 1), key("t", 2), key("t", 3), key("t", 0)]
        );
        let unchanged = [results[1], results[2], results[3], results[0]];
        assert_eq!(cache.complete(&plan, &unchanged), vec![false, true, false, false]);
    }

    #[test]
    fn new_partitions_are_carried_in_their_first_incremental_answer() {
        let mut cache = cache();
        let id = open(&mut cache, 0);
        let plan = cache
            .plan(id, 1, vec![(key("b", 0), want(0))], vec![], 1)
            .unwrap();
        let carried = cache.complete(&plan, &[idle(100), idle(200), idle(0)]);
        assert_eq!(carried, vec![false, false, true]);
        let plan = cache.plan(id, 2, vec![], vec![], 2).unwrap();
        assert_eq!(
            cache.complete(&plan, &[idle(100), idle(200), idle(0)]),
            vec![false; 3]
        );
    }

    #[test]
    fn partitions_with_records_move_to_the_back() {
        let mut cache = cache();
        let parts: Vec<_> = (0..4).map(|p| (key("t", p), want(0))).collect();
        let plan = cache.plan(0, EPOCH_INITIAL, parts, vec![], 0).unwrap();
        let id = plan.session_id;
        // A full answer does not reorder, records or not.
        let records = PartitionResult {
            has_records: true,
            ..idle(9)
        };
        cache.complete(&plan, &[records, idle(9), idle(9), idle(9)]);
        let plan = cache.plan(id, 1, vec![], vec![], 1).unwrap();
        assert_eq!(keys(&plan), (0..4).map(|p| key("t", p)).collect::<Vec<_>>());
        cache.complete(&plan, &[records, idle(9), records, idle(9)]);
        let plan = cache.plan(id, 2, vec![], vec![], 2).unwrap();
        assert_eq!(
            keys(&plan),
            vec![key("t", 1), key("t", 3), key("t", 0), key("t", 2)]
        );
        // The moved partitions keep their remembered offsets.
        assert_eq!(cache.complete(&plan, &[idle(9); 4]), vec![false; 4]);
    }

    #[test]
    fn a_change_of_the_last_stable_offset_alone_is_carried() {
        let mut cache = cache();
        let id = open(&mut cache, 0); // sent: high watermarks 100, 200
                                      // A transaction open at 150 on a1: its last stable offset drops
                                      // below the high watermark.
        let behind = PartitionResult {
            last_stable_offset: 150,
            ..idle(200)
        };
        let plan = cache.plan(id, 1, vec![], vec![], 1).unwrap();
        assert_eq!(cache.complete(&plan, &[idle(100), behind]), vec![false, true]);
        let plan = cache.plan(id, 2, vec![], vec![], 2).unwrap();
        assert_eq!(cache.complete(&plan, &[idle(100), behind]), vec![false, false]);
        // It ends: only the last stable offset differs from what was sent.
        let plan = cache.plan(id, 3, vec![], vec![], 3).unwrap();
        assert_eq!(cache.complete(&plan, &[idle(100), idle(200)]), vec![false, true]);
    }

    #[test]
    fn long_poll_plans_once_and_completes_once() {
        let mut cache = cache();
        let id = open(&mut cache, 0);
        let plan = cache.plan(id, 1, vec![], vec![], 1).unwrap();
        // While this fetch waits and re-reads, other clients of the shard use
        // the cache; the plan stays current.
        let other = open(&mut cache, 2);
        assert!(cache
            .plan(other, 1, vec![(key("q", 0), want(1))], vec![], 3)
            .is_ok());
        assert!(cache
            .plan(0, EPOCH_FINAL, vec![(key("a", 0), want(0))], vec![], 4)
            .is_ok());
        // Only the results of the last read are passed to complete.
        assert_eq!(cache.complete(&plan, &[idle(100), idle(201)]), vec![false, true]);
        let plan = cache.plan(id, 2, vec![], vec![], 600).unwrap();
        assert_eq!(cache.complete(&plan, &[idle(100), idle(201)]), vec![false, false]);
    }

    #[test]
    fn abandoned_plan_leaves_the_session_consistent() {
        let mut cache = cache();
        let id = open(&mut cache, 0);
        // Planned, read, but the client went away before the answer.
        let _lost = cache.plan(id, 1, vec![], vec![], 1).unwrap();
        // The epoch moved on at plan time, as in Kafka.
        assert_eq!(
            cache.plan(id, 1, vec![], vec![], 2),
            Err(INVALID_FETCH_SESSION_EPOCH)
        );
        // A client at epoch 2 is still served, and changes the lost answer
        // would have carried are carried now.
        let plan = cache.plan(id, 2, vec![], vec![], 3).unwrap();
        assert_eq!(cache.complete(&plan, &[idle(100), idle(250)]), vec![false, true]);
        // The usual recovery: epoch 0 with the id closes it and opens another.
        let plan = cache
            .plan(id, EPOCH_INITIAL, vec![(key("a", 0), want(0))], vec![], 4)
            .unwrap();
        assert_ne!(plan.session_id, id);
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn stale_plans_carry_everything_and_record_nothing() {
        let mut cache = cache();
        let id = open(&mut cache, 0);
        let older = cache.plan(id, 1, vec![], vec![], 1).unwrap();
        let newer = cache.plan(id, 2, vec![], vec![], 2).unwrap();
        assert_eq!(cache.complete(&older, &[idle(300), idle(300)]), vec![true, true]);
        // The older answer recorded nothing: the newer one still sees changes
        // against the last recorded values (100, 200).
        assert_eq!(cache.complete(&newer, &[idle(100), idle(300)]), vec![false, true]);

        // Session gone (closed by a full fetch).
        let plan = cache.plan(id, 3, vec![], vec![], 3).unwrap();
        cache.plan(id, EPOCH_FINAL, vec![], vec![], 4).unwrap();
        assert_eq!(cache.complete(&plan, &[idle(100), idle(300)]), vec![true, true]);
    }

    #[test]
    fn results_of_another_length_carry_everything() {
        let mut cache = cache();
        let id = open(&mut cache, 0);
        let plan = cache.plan(id, 1, vec![], vec![], 1).unwrap();
        assert_eq!(cache.complete(&plan, &[idle(100)]), vec![true, true]);
        assert_eq!(cache.complete(&plan, &[]), vec![true, true]);
        // Nothing was recorded, the plan is still current.
        assert_eq!(cache.complete(&plan, &[idle(100), idle(200)]), vec![false, false]);
    }

    #[test]
    fn full_cache_evicts_the_least_recently_used_idle_session() {
        let mut cache = cache(); // 3 sessions, 1000 ms idle minimum
        let first = open(&mut cache, 0);
        let second = open(&mut cache, 10);
        let third = open(&mut cache, 20);
        // `first` is used again: `second` is now the least recently used.
        assert!(cache.plan(first, 1, vec![], vec![], 30).is_ok());

        // Idle for exactly the minimum is not enough: no session, full answer.
        let plan = cache
            .plan(0, EPOCH_INITIAL, vec![(key("n", 0), want(0))], vec![], 1010)
            .unwrap();
        assert_eq!(plan.session_id, 0);
        assert_eq!(plan.partitions.len(), 1);
        assert_eq!(cache.len(), 3);
        assert_eq!(cache.complete(&plan, &[idle(0)]), vec![true]);

        let plan = cache
            .plan(0, EPOCH_INITIAL, vec![(key("n", 0), want(0))], vec![], 1011)
            .unwrap();
        assert!(plan.session_id > 0);
        assert_eq!(cache.len(), 3);
        assert_eq!(cache.lru.len(), 3);
        assert_eq!(
            cache.plan(second, 1, vec![], vec![], 1012),
            Err(FETCH_SESSION_ID_NOT_FOUND)
        );
        assert!(cache.plan(first, 2, vec![], vec![], 1012).is_ok());
        assert!(cache.plan(third, 1, vec![], vec![], 1012).is_ok());
    }

    #[test]
    fn failed_requests_do_not_refresh_a_session() {
        let mut cache = cache();
        let first = open(&mut cache, 0);
        let _second = open(&mut cache, 10);
        let _third = open(&mut cache, 20);
        assert_eq!(
            cache.plan(first, 9, vec![], vec![], 5000),
            Err(INVALID_FETCH_SESSION_EPOCH)
        );
        let plan = cache.plan(0, EPOCH_INITIAL, vec![], vec![], 5000).unwrap();
        assert!(plan.session_id > 0);
        assert_eq!(
            cache.plan(first, 1, vec![], vec![], 5000),
            Err(FETCH_SESSION_ID_NOT_FOUND)
        );
    }

    #[test]
    fn zero_sessions_max_disables_sessions() {
        let mut cache = FetchSessionCache::with_seed(
            SessionCacheConfig {
                sessions_max: 0,
                ..config()
            },
            1,
        );
        let plan = cache
            .plan(0, EPOCH_INITIAL, vec![(key("a", 0), want(0))], vec![], u64::MAX)
            .unwrap();
        assert_eq!(plan.session_id, 0);
        assert!(cache.is_empty());
    }

    #[test]
    fn session_ids_are_positive_and_unique() {
        let sessions_max = 5000;
        let mut cache = FetchSessionCache::with_seed(
            SessionCacheConfig {
                sessions_max,
                ..config()
            },
            0xdead_beef,
        );
        let mut seen = HashSet::new();
        for _ in 0..sessions_max {
            let plan = cache
                .plan(0, EPOCH_INITIAL, vec![(key("a", 0), want(0))], vec![], 0)
                .unwrap();
            assert!(plan.session_id > 0);
            assert!(seen.insert(plan.session_id));
        }
        assert_eq!(cache.len(), sessions_max);
        // Full, nothing idle: no more sessions.
        let plan = cache.plan(0, EPOCH_INITIAL, vec![], vec![], 0).unwrap();
        assert_eq!(plan.session_id, 0);
        // `new` seeds differently each time it is called.
        let a = FetchSessionCache::new(config()).new_id();
        let b = FetchSessionCache::new(config()).new_id();
        assert!(a.is_some() && b.is_some());
        assert_ne!(a, b);
    }

    #[test]
    fn an_id_in_use_is_never_given_again() {
        let mut probe = FetchSessionCache::with_seed(config(), 7);
        let first_draw = probe.new_id().unwrap();
        let second_draw = probe.new_id().unwrap();
        let mut cache = FetchSessionCache::with_seed(config(), 7);
        cache.sessions.insert(
            first_draw,
            Session {
                next_epoch: 1,
                partitions: PartitionSet::default(),
                last_used_ms: 0,
                lru_seq: 0,
                last_plan: 0,
            },
        );
        cache.touch(first_draw, 0);
        let plan = cache.plan(0, EPOCH_INITIAL, vec![], vec![], 0).unwrap();
        assert_eq!(plan.session_id, second_draw);
    }

    #[test]
    fn initial_fetch_over_the_partition_limit_stays_sessionless() {
        let mut cache = cache(); // 4 partitions per session
        let five: Vec<_> = (0..5).map(|p| (key("t", p), want(p.into()))).collect();
        let plan = cache.plan(0, EPOCH_INITIAL, five.clone(), vec![], 0).unwrap();
        assert_eq!(plan.session_id, 0);
        assert_eq!(plan.partitions, five);
        assert!(cache.is_empty());
        // Repeats do not count twice: four distinct partitions fit.
        let mut four = five[..4].to_vec();
        four.push(five[0].clone());
        let plan = cache.plan(0, EPOCH_INITIAL, four, vec![], 0).unwrap();
        assert!(plan.session_id > 0);
        assert_eq!(plan.partitions.len(), 4);
        // An existing session named by an oversized initial fetch is closed.
        let plan = cache
            .plan(plan.session_id, EPOCH_INITIAL, five, vec![], 0)
            .unwrap();
        assert_eq!(plan.session_id, 0);
        assert!(cache.is_empty());
    }

    #[test]
    fn incremental_growth_past_the_limit_is_an_invalid_request() {
        let mut cache = cache(); // 4 partitions per session
        let id = open(&mut cache, 0); // a0, a1
        let three = vec![
            (key("b", 0), want(0)),
            (key("b", 1), want(0)),
            (key("b", 2), want(0)),
        ];
        assert_eq!(cache.plan(id, 1, three.clone(), vec![], 1), Err(INVALID_REQUEST));
        // Unchanged: same epoch, same partitions.
        let plan = cache.plan(id, 1, vec![], vec![], 2).unwrap();
        assert_eq!(keys(&plan), vec![key("a", 0), key("a", 1)]);
        // Forgetting a partition the session does not hold makes no room.
        assert_eq!(
            cache.plan(id, 2, three.clone(), vec![key("zz", 0)], 3),
            Err(INVALID_REQUEST)
        );
        // Forgetting one while adding three ends at four: allowed, whether the
        // forgotten one was held or named in the same request.
        let plan = cache.plan(id, 2, three.clone(), vec![key("b", 2)], 3).unwrap();
        assert_eq!(
            keys(&plan),
            vec![key("a", 0), key("a", 1), key("b", 0), key("b", 1)]
        );
        let plan = cache
            .plan(id, 3, three, vec![key("a", 0), key("b", 1)], 4)
            .unwrap();
        assert_eq!(keys(&plan), vec![key("a", 1), key("b", 0), key("b", 2)]);
        // Updating partitions already held does not grow the session.
        let plan = cache
            .plan(
                id,
                4,
                vec![(key("b", 0), want(5)), (key("c", 0), want(0))],
                vec![],
                5,
            )
            .unwrap();
        assert_eq!(plan.partitions.len(), 4);
        assert_eq!(
            cache.plan(id, 5, vec![(key("c", 1), want(0))], vec![], 6),
            Err(INVALID_REQUEST)
        );
        assert!(cache.plan(id, 5, vec![(key("c", 0), want(9))], vec![], 6).is_ok());
    }

    #[test]
    fn partition_set_keeps_its_index_in_step() {
        let mut set = PartitionSet::from_requested((0..6).map(|p| (key("t", p), want(0))).collect(), 1);
        set.remove_all(&[key("t", 1), key("t", 4)]);
        set.move_to_back(&[0, 99]);
        let order: Vec<_> = set.entries.iter().map(|e| e.key.partition).collect();
        assert_eq!(order, vec![2, 3, 5, 0]);
        assert_eq!(set.index.len(), 4);
        for (i, entry) in set.entries.iter().enumerate() {
            assert_eq!(set.index.get(&entry.key), Some(&i));
        }
    }
    fn check_invariants(cache: &FetchSessionCache) {
        assert!(cache.sessions.len() <= cache.config.sessions_max);
        assert_eq!(cache.lru.len(), cache.sessions.len());
        for (&seq, id) in &cache.lru {
            assert_eq!(cache.sessions[id].lru_seq, seq);
        }
        for (&id, session) in &cache.sessions {
            assert!(id > 0);
            assert!(session.next_epoch > 0);
            let set = &session.partitions;
            assert!(set.len() <= cache.config.partitions_per_session_max);
            assert_eq!(set.index.len(), set.entries.len());
            for (i, entry) in set.entries.iter().enumerate() {
                assert_eq!(set.index.get(&entry.key), Some(&i));
            }
        }
    }

    #[test]
    fn random_requests_keep_the_invariants() {
        let config = SessionCacheConfig {
            partitions_per_session_max: 8,
            ..config()
        };
        let mut cache = FetchSessionCache::with_seed(config, 3);
        let mut state = 0x1234_5678_u64;
        let mut draw = |n: u64| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (state >> 33) % n
        };
        let mut incremental = 0;
        let mut known: Vec<(i32, i32)> = Vec::new(); // (session id, next epoch as the client sees it)
        for step in 0..20_000u64 {
            let pick = |d: u64| key(["a", "b"][(d % 2) as usize], (d / 2) as i32);
            let requested: Vec<_> = (0..draw(4))
                .map(|_| (pick(draw(12)), want(draw(100) as i64)))
                .collect();
            let forgotten: Vec<_> = (0..draw(3)).map(|_| pick(draw(12))).collect();
            let (id, epoch) = match draw(10) {
                0 => (0, EPOCH_FINAL),
                1 | 2 => (known.get(draw(8) as usize).map_or(0, |k| k.0), EPOCH_INITIAL),
                3 => (draw(5) as i32, draw(5) as i32 - 2),
                _ => known.get(draw(8) as usize).copied().unwrap_or((0, 1)),
            };
            let now_ms = step * 100;
            if let Ok(plan) = cache.plan(id, epoch, requested, forgotten, now_ms) {
                incremental += usize::from(plan.incremental);
                if plan.session_id != 0 {
                    known.retain(|k| k.0 != plan.session_id);
                    known.insert(0, (plan.session_id, cache.sessions[&plan.session_id].next_epoch));
                    known.truncate(8);
                }
                let results: Vec<_> = plan
                    .partitions
                    .iter()
                    .map(|_| PartitionResult {
                        has_records: draw(3) == 0,
                        error_code: if draw(20) == 0 { 3 } else { 0 },
                        ..idle(draw(3) as i64)
                    })
                    .collect();
                if draw(10) != 0 {
                    let carried = cache.complete(&plan, &results);
                    assert_eq!(carried.len(), plan.partitions.len());
                    if !plan.incremental {
                        assert!(carried.iter().all(|&c| c));
                    }
                }
            }
            check_invariants(&cache);
        }
        // The walk reaches the incremental path often, not only errors.
        assert!(incremental > 2000, "{incremental}");
    }
}
