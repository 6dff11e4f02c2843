//! KIP-848 consumer groups: membership by ConsumerGroupHeartbeat, with the
//! assignment computed here (server-side assignors) and handed to each
//! member incrementally, so that a member joining or leaving does not stop
//! the whole group.
//!
//! # Epochs and reconciliation
//!
//! - The **group epoch** grows whenever membership, a subscription or a
//!   subscribed topic's partition count changes; the **target assignment**
//!   is then recomputed (assignment epoch = group epoch).
//! - A member converges to its target one step per heartbeat: first it is
//!   told to give up the partitions it must lose (its assignment shrinks;
//!   those partitions are pending revocation until a heartbeat shows it no
//!   longer owns them); then it moves to the new epoch and receives the
//!   partitions of its target that no other member still holds. A
//!   partition is never owned by two members; a member keeps the
//!   partitions that stay with it throughout.
//!
//! Lives inside [`super::state::Group`] on the coordinator shard; all of it
//! is synchronous. Every change is stored as one snapshot record
//! ([`ConsumerGroup::to_snapshot`]) in `__consumer_offsets` before the
//! heartbeat that caused it is answered, and restored on start: members
//! resume with their epochs and assignments after a broker restart.

use std::{
    collections::{BTreeMap, BTreeSet},
    time::{Duration, Instant},
};

use bytes::{BufMut, Bytes, BytesMut};

use super::records::{get_i32, get_nullable_string, get_string, put_nullable_string, put_string};
use crate::metadata::ClusterMetadata;

/// Partitions by topic name.
pub type Assignment = BTreeMap<String, BTreeSet<i32>>;

/// Assignors a member may name; the first is the default.
pub const ASSIGNORS: [&str; 2] = ["uniform", "range"];

pub struct ConsumerMember {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub epoch: i32,
    pub previous_epoch: i32,
    pub subscribed_topics: BTreeSet<String>,
    pub server_assignor: Option<String>,
    pub rebalance_timeout_ms: i32,
    /// What the member owns, as last told to it.
    pub assigned: Assignment,
    /// Taken away, not yet confirmed released by a heartbeat.
    pub pending_revocation: Assignment,
    /// The member is removed if it has not released them by then.
    pub revocation_deadline: Option<Instant>,
    pub session_deadline: Instant,
    /// The assignment last sent, to answer null when nothing changed.
    pub last_sent: Option<Assignment>,
}

#[derive(Default)]
pub struct ConsumerGroup {
    pub group_epoch: i32,
    pub assignment_epoch: i32,
    pub assignor: String,
    pub members: BTreeMap<String, ConsumerMember>,
    pub target: BTreeMap<String, Assignment>,
    /// Partition counts of the subscribed topics the target was built on.
    pub partition_counts: BTreeMap<String, i32>,
    /// The last snapshot written (or restored): a heartbeat that leaves the
    /// snapshot equal to it stores nothing.
    pub stored_snapshot: Bytes,
}

/// A heartbeat, decoded to names (topic ids already resolved).
pub struct Heartbeat {
    pub member_id: String,
    pub member_epoch: i32,
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    pub rebalance_timeout_ms: i32,
    pub subscribed_topics: Option<BTreeSet<String>>,
    pub server_assignor: Option<String>,
    pub owned: Option<Assignment>,
    pub client_id: String,
    pub client_host: String,
}

/// What the member is told.
pub struct HeartbeatAnswer {
    pub member_id: String,
    pub member_epoch: i32,
    /// None: unchanged since the last answer.
    pub assignment: Option<Assignment>,
}

pub const LEAVE_EPOCH: i32 = -1;
pub const STATIC_LEAVE_EPOCH: i32 = -2;

const SNAPSHOT_VERSION: i32 = 0;

fn put_assignment(out: &mut BytesMut, assignment: &Assignment) {
    out.put_i32(assignment.len() as i32);
    for (topic, partitions) in assignment {
        put_string(out, topic);
        out.put_i32(partitions.len() as i32);
        for p in partitions {
            out.put_i32(*p);
        }
    }
}

fn get_count(buffer: &mut Bytes) -> Result<usize, String> {
    let count = get_i32(buffer)?;
    if count < 0 || count as usize > buffer.len() {
        return Err(format!("count {count}"));
    }
    Ok(count as usize)
}

fn get_assignment(buffer: &mut Bytes) -> Result<Assignment, String> {
    let mut assignment = Assignment::new();
    for _ in 0..get_count(buffer)? {
        let topic = get_string(buffer)?;
        let mut partitions = BTreeSet::new();
        for _ in 0..get_count(buffer)? {
            partitions.insert(get_i32(buffer)?);
        }
        assignment.insert(topic, partitions);
    }
    Ok(assignment)
}

impl ConsumerGroup {
    /// The snapshot to store when the group changed since the last one
    /// (which it then becomes), else None.
    pub fn changed_snapshot(&mut self) -> Option<Bytes> {
        let snapshot = self.to_snapshot();
        if snapshot == self.stored_snapshot {
            return None;
        }
        self.stored_snapshot = snapshot.clone();
        Some(snapshot)
    }

    /// The group as one record value (see `super::records`).
    pub fn to_snapshot(&self) -> Bytes {
        let mut out = BytesMut::new();
        out.put_i32(SNAPSHOT_VERSION);
        out.put_i32(self.group_epoch);
        out.put_i32(self.assignment_epoch);
        put_string(&mut out, &self.assignor);
        out.put_i32(self.members.len() as i32);
        for m in self.members.values() {
            put_string(&mut out, &m.member_id);
            put_nullable_string(&mut out, m.instance_id.as_deref());
            put_nullable_string(&mut out, m.rack_id.as_deref());
            put_string(&mut out, &m.client_id);
            put_string(&mut out, &m.client_host);
            out.put_i32(m.epoch);
            out.put_i32(m.previous_epoch);
            put_nullable_string(&mut out, m.server_assignor.as_deref());
            out.put_i32(m.rebalance_timeout_ms);
            out.put_i32(m.subscribed_topics.len() as i32);
            for topic in &m.subscribed_topics {
                put_string(&mut out, topic);
            }
            put_assignment(&mut out, &m.assigned);
            put_assignment(&mut out, &m.pending_revocation);
            put_assignment(
                &mut out,
                self.target.get(&m.member_id).unwrap_or(&Assignment::new()),
            );
        }
        out.freeze()
    }

    /// Restores a snapshot; members' sessions start at `now`.
    pub fn from_snapshot(
        mut value: Bytes,
        now: Instant,
        session_timeout_ms: u64,
    ) -> Result<ConsumerGroup, String> {
        let stored_snapshot = value.clone();
        let buffer = &mut value;
        let version = get_i32(buffer)?;
        if version != SNAPSHOT_VERSION {
            return Err(format!("unknown consumer group snapshot version {version}"));
        }
        let mut group = ConsumerGroup {
            group_epoch: get_i32(buffer)?,
            assignment_epoch: get_i32(buffer)?,
            assignor: get_string(buffer)?,
            stored_snapshot,
            ..Default::default()
        };
        for _ in 0..get_count(buffer)? {
            let member_id = get_string(buffer)?;
            let instance_id = get_nullable_string(buffer)?;
            let rack_id = get_nullable_string(buffer)?;
            let client_id = get_string(buffer)?;
            let client_host = get_string(buffer)?;
            let epoch = get_i32(buffer)?;
            let previous_epoch = get_i32(buffer)?;
            let server_assignor = get_nullable_string(buffer)?;
            let rebalance_timeout_ms = get_i32(buffer)?;
            let mut subscribed_topics = BTreeSet::new();
            for _ in 0..get_count(buffer)? {
                subscribed_topics.insert(get_string(buffer)?);
            }
            let assigned = get_assignment(buffer)?;
            let pending_revocation = get_assignment(buffer)?;
            let target = get_assignment(buffer)?;
            group.target.insert(member_id.clone(), target);
            group.members.insert(
                member_id.clone(),
                ConsumerMember {
                    member_id,
                    instance_id,
                    rack_id,
                    client_id,
                    client_host,
                    epoch,
                    previous_epoch,
                    subscribed_topics,
                    server_assignor,
                    rebalance_timeout_ms,
                    assigned,
                    revocation_deadline: (!pending_revocation.is_empty())
                        .then(|| now + Duration::from_millis(rebalance_timeout_ms.max(1) as u64)),
                    pending_revocation,
                    session_deadline: now + Duration::from_millis(session_timeout_ms),
                    last_sent: None,
                },
            );
        }
        Ok(group)
    }
}

fn count(assignment: &Assignment) -> usize {
    assignment.values().map(BTreeSet::len).sum()
}

fn remove_all(from: &mut Assignment, what: &Assignment) {
    for (topic, partitions) in what {
        if let Some(owned) = from.get_mut(topic) {
            owned.retain(|p| !partitions.contains(p));
        }
    }
    from.retain(|_, partitions| !partitions.is_empty());
}

fn difference(a: &Assignment, b: &Assignment) -> Assignment {
    let mut out = a.clone();
    remove_all(&mut out, b);
    out
}

impl ConsumerGroup {
    /// "Empty", "Assigning", "Reconciling" or "Stable" (Kafka's names).
    pub fn state_name(&self) -> &'static str {
        if self.members.is_empty() {
            "Empty"
        } else if self.assignment_epoch < self.group_epoch {
            "Assigning"
        } else if self.members.values().any(|m| m.epoch != self.assignment_epoch) {
            "Reconciling"
        } else {
            "Stable"
        }
    }

    /// Handles one heartbeat; Err is (error code, message).
    pub fn heartbeat(
        &mut self,
        request: Heartbeat,
        metadata: &ClusterMetadata,
        now: Instant,
        session_timeout_ms: u64,
        new_member_id: impl FnOnce() -> String,
    ) -> Result<HeartbeatAnswer, (i16, String)> {
        use crate::protocol::error_code as error;
        if let Some(assignor) = &request.server_assignor {
            if !ASSIGNORS.contains(&assignor.as_str()) {
                return Err((
                    error::UNSUPPORTED_ASSIGNOR,
                    format!("assignor '{assignor}' is not one of {ASSIGNORS:?}"),
                ));
            }
        }
        if request.member_epoch == LEAVE_EPOCH || request.member_epoch == STATIC_LEAVE_EPOCH {
            if self.members.remove(&request.member_id).is_none() {
                return Err((error::UNKNOWN_MEMBER_ID, "unknown member".into()));
            }
            self.target.remove(&request.member_id);
            self.group_epoch += 1;
            return Ok(HeartbeatAnswer {
                member_id: request.member_id,
                member_epoch: request.member_epoch,
                assignment: None,
            });
        }
        let member_id = if request.member_epoch == 0 {
            let Some(subscribed) = &request.subscribed_topics else {
                return Err((error::INVALID_REQUEST, "a joining member must subscribe".into()));
            };
            let member_id = if request.member_id.is_empty() {
                new_member_id()
            } else {
                request.member_id.clone()
            };
            // A member rejoining with epoch 0 lost its state: start over.
            let mut inherited = None;
            if let Some(instance) = &request.instance_id {
                let previous = self
                    .members
                    .values()
                    .find(|m| m.instance_id.as_deref() == Some(instance) && m.member_id != member_id)
                    .map(|m| m.member_id.clone());
                if let Some(previous) = previous {
                    // KIP-848 static membership: the new instance takes over.
                    inherited = self.members.remove(&previous);
                    if let Some(target) = self.target.remove(&previous) {
                        self.target.insert(member_id.clone(), target);
                    }
                }
            }
            self.members.remove(&member_id);
            let mut member = ConsumerMember {
                member_id: member_id.clone(),
                instance_id: request.instance_id.clone(),
                rack_id: request.rack_id.clone(),
                client_id: request.client_id.clone(),
                client_host: request.client_host.clone(),
                epoch: 0,
                previous_epoch: -1,
                subscribed_topics: subscribed.clone(),
                server_assignor: request.server_assignor.clone(),
                rebalance_timeout_ms: request.rebalance_timeout_ms,
                assigned: Assignment::new(),
                pending_revocation: Assignment::new(),
                revocation_deadline: None,
                session_deadline: now,
                last_sent: None,
            };
            match inherited {
                Some(old) if old.subscribed_topics == *subscribed => {
                    member.epoch = old.epoch;
                    member.previous_epoch = old.previous_epoch;
                    member.assigned = old.assigned;
                    member.pending_revocation = old.pending_revocation;
                }
                _ => self.group_epoch += 1,
            }
            self.members.insert(member_id.clone(), member);
            member_id
        } else {
            let Some(member) = self.members.get(&request.member_id) else {
                return Err((error::UNKNOWN_MEMBER_ID, "unknown member".into()));
            };
            let owned_within = request
                .owned
                .as_ref()
                .is_none_or(|owned| is_subset(owned, &member.assigned));
            if request.member_epoch != member.epoch
                && !(request.member_epoch == member.previous_epoch && owned_within)
            {
                return Err((
                    error::FENCED_MEMBER_EPOCH,
                    format!(
                        "member epoch {} is not the current {}",
                        request.member_epoch, member.epoch
                    ),
                ));
            }
            request.member_id.clone()
        };

        let member = self.members.get_mut(&member_id).expect("present above");
        member.session_deadline = now + Duration::from_millis(session_timeout_ms);
        if request.rebalance_timeout_ms > 0 {
            member.rebalance_timeout_ms = request.rebalance_timeout_ms;
        }
        if let Some(assignor) = request.server_assignor {
            member.server_assignor = Some(assignor);
        }
        let mut membership_changed = false;
        if let Some(subscribed) = request.subscribed_topics {
            if subscribed != member.subscribed_topics {
                member.subscribed_topics = subscribed;
                membership_changed = true;
            }
        }
        if let Some(owned) = &request.owned {
            // Revocations the member confirmed: no longer in what it owns.
            let confirmed: Assignment = member
                .pending_revocation
                .iter()
                .map(|(topic, partitions)| {
                    let still = owned.get(topic);
                    let released: BTreeSet<i32> = partitions
                        .iter()
                        .filter(|p| still.is_none_or(|s| !s.contains(p)))
                        .copied()
                        .collect();
                    (topic.clone(), released)
                })
                .collect();
            remove_all(&mut member.pending_revocation, &confirmed);
            if member.pending_revocation.is_empty() {
                member.revocation_deadline = None;
            }
        }
        if membership_changed {
            self.group_epoch += 1;
        }
        let counts = self.subscribed_partition_counts(metadata);
        if counts != self.partition_counts {
            self.partition_counts = counts;
            self.group_epoch += 1;
        }
        if self.assignment_epoch < self.group_epoch {
            self.compute_target();
            self.assignment_epoch = self.group_epoch;
        }
        self.reconcile(&member_id, now);
        let member = self.members.get_mut(&member_id).expect("present above");
        log::debug!(
            "heartbeat {member_id} epoch {} (asked {}) owned {:?} assigned {:?} pending {:?} target {:?}",
            member.epoch,
            request.member_epoch,
            request.owned,
            member.assigned,
            member.pending_revocation,
            self.target.get(&member_id)
        );
        let assignment =
            (member.last_sent.as_ref() != Some(&member.assigned)).then(|| member.assigned.clone());
        if assignment.is_some() {
            member.last_sent = Some(member.assigned.clone());
        }
        Ok(HeartbeatAnswer {
            member_id,
            member_epoch: member.epoch,
            assignment,
        })
    }

    fn subscribed_partition_counts(&self, metadata: &ClusterMetadata) -> BTreeMap<String, i32> {
        self.members
            .values()
            .flat_map(|m| m.subscribed_topics.iter())
            .filter_map(|topic| {
                metadata
                    .topic(topic)
                    .map(|t| (topic.clone(), t.partition_count()))
            })
            .collect()
    }

    /// One reconciliation step of `member_id` toward its target.
    fn reconcile(&mut self, member_id: &str, now: Instant) {
        let target = self.target.get(member_id).cloned().unwrap_or_default();
        let unavailable: Assignment = {
            let mut held = Assignment::new();
            for (id, other) in &self.members {
                if id == member_id {
                    continue;
                }
                for source in [&other.assigned, &other.pending_revocation] {
                    for (topic, partitions) in source {
                        held.entry(topic.clone()).or_default().extend(partitions);
                    }
                }
            }
            held
        };
        let assignment_epoch = self.assignment_epoch;
        let member = self.members.get_mut(member_id).expect("reconciled members exist");
        let revoke = difference(&member.assigned, &target);
        if !revoke.is_empty() {
            remove_all(&mut member.assigned, &revoke);
            for (topic, partitions) in revoke {
                member
                    .pending_revocation
                    .entry(topic)
                    .or_default()
                    .extend(partitions);
            }
            member.revocation_deadline =
                Some(now + Duration::from_millis(member.rebalance_timeout_ms.max(1) as u64));
            return;
        }
        if !member.pending_revocation.is_empty() {
            return; // waits for the member to confirm
        }
        if member.epoch != assignment_epoch {
            member.previous_epoch = member.epoch;
            member.epoch = assignment_epoch;
        }
        let wanted = difference(&target, &member.assigned);
        let available = difference(&wanted, &unavailable);
        for (topic, partitions) in available {
            member.assigned.entry(topic).or_default().extend(partitions);
        }
    }

    /// Recomputes every member's target with the group's assignor (the
    /// one most members name; "uniform" by default).
    fn compute_target(&mut self) {
        let mut votes: BTreeMap<&str, usize> = BTreeMap::new();
        for member in self.members.values() {
            *votes
                .entry(member.server_assignor.as_deref().unwrap_or(ASSIGNORS[0]))
                .or_default() += 1;
        }
        self.assignor = votes
            .iter()
            .max_by_key(|(name, count)| {
                (
                    **count,
                    ASSIGNORS.iter().position(|a| a == *name).map(|p| -(p as i64)),
                )
            })
            .map(|(name, _)| name.to_string())
            .unwrap_or_else(|| ASSIGNORS[0].to_string());
        let subscriptions: BTreeMap<String, BTreeSet<String>> = self
            .members
            .iter()
            .map(|(id, m)| (id.clone(), m.subscribed_topics.clone()))
            .collect();
        self.target = if self.assignor == "range" {
            assign_range(&subscriptions, &self.partition_counts)
        } else {
            assign_uniform(&subscriptions, &self.partition_counts, &self.target)
        };
    }

    /// Removes members whose session ended or who did not release revoked
    /// partitions in time; returns their ids.
    pub fn expire(&mut self, now: Instant) -> Vec<String> {
        let expired: Vec<String> = self
            .members
            .values()
            .filter(|m| m.session_deadline <= now || m.revocation_deadline.is_some_and(|d| d <= now))
            .map(|m| m.member_id.clone())
            .collect();
        for id in &expired {
            self.members.remove(id);
            self.target.remove(id);
        }
        if !expired.is_empty() {
            self.group_epoch += 1;
        }
        expired
    }
}

/// Whether every partition of `owned` is in `of`.
fn is_subset(owned: &Assignment, of: &Assignment) -> bool {
    owned.iter().all(|(topic, partitions)| {
        partitions
            .iter()
            .all(|p| of.get(topic).is_some_and(|o| o.contains(p)))
    })
}

/// Range: per topic, its partitions in contiguous ranges over the members
/// subscribed to it (sorted by member id); the first `n % k` get one more.
pub fn assign_range(
    subscriptions: &BTreeMap<String, BTreeSet<String>>,
    partition_counts: &BTreeMap<String, i32>,
) -> BTreeMap<String, Assignment> {
    let mut target: BTreeMap<String, Assignment> = subscriptions
        .keys()
        .map(|id| (id.clone(), Assignment::new()))
        .collect();
    for (topic, &partitions) in partition_counts {
        let members: Vec<&String> = subscriptions
            .iter()
            .filter(|(_, topics)| topics.contains(topic))
            .map(|(id, _)| id)
            .collect();
        if members.is_empty() {
            continue;
        }
        let (base, extra) = (
            partitions as usize / members.len(),
            partitions as usize % members.len(),
        );
        let mut next = 0i32;
        for (index, member) in members.iter().enumerate() {
            let share = base + usize::from(index < extra);
            let range: BTreeSet<i32> = (next..next + share as i32).collect();
            next += share as i32;
            if !range.is_empty() {
                target
                    .get_mut(*member)
                    .expect("listed")
                    .insert(topic.clone(), range);
            }
        }
    }
    target
}

/// Uniform: every subscribed partition to one member, balanced, keeping
/// each partition with its previous owner while that owner is under the
/// quota (sticky), the rest to the least loaded subscribed member.
pub fn assign_uniform(
    subscriptions: &BTreeMap<String, BTreeSet<String>>,
    partition_counts: &BTreeMap<String, i32>,
    previous: &BTreeMap<String, Assignment>,
) -> BTreeMap<String, Assignment> {
    let mut target: BTreeMap<String, Assignment> = subscriptions
        .keys()
        .map(|id| (id.clone(), Assignment::new()))
        .collect();
    let all: Vec<(String, i32)> = partition_counts
        .iter()
        .filter(|(topic, _)| subscriptions.values().any(|t| t.contains(*topic)))
        .flat_map(|(topic, &n)| (0..n).map(move |p| (topic.clone(), p)))
        .collect();
    if subscriptions.is_empty() || all.is_empty() {
        return target;
    }
    // Balanced: every member gets `floor` partitions, `remainder` of them
    // one more. A previous owner keeps a partition while under that.
    let floor = all.len() / subscriptions.len();
    let mut larger_shares_left = all.len() % subscriptions.len();
    let mut unassigned = Vec::new();
    for (topic, partition) in all {
        let keeper = previous.iter().find(|(id, owned)| {
            owned.get(&topic).is_some_and(|p| p.contains(&partition))
                && subscriptions.get(*id).is_some_and(|t| t.contains(&topic))
        });
        let keeps = match keeper {
            Some((id, _)) if count(&target[id]) < floor => true,
            Some((id, _)) if count(&target[id]) == floor && larger_shares_left > 0 => {
                larger_shares_left -= 1;
                true
            }
            _ => false,
        };
        match keeper {
            Some((id, _)) if keeps => {
                target
                    .get_mut(id)
                    .expect("subscribed")
                    .entry(topic)
                    .or_default()
                    .insert(partition);
            }
            _ => unassigned.push((topic, partition)),
        }
    }
    for (topic, partition) in unassigned {
        let least = subscriptions
            .iter()
            .filter(|(_, topics)| topics.contains(&topic))
            .min_by_key(|(id, _)| (count(&target[*id]), (*id).clone()))
            .map(|(id, _)| id.clone());
        if let Some(id) = least {
            target
                .get_mut(&id)
                .expect("subscribed")
                .entry(topic)
                .or_default()
                .insert(partition);
        }
    }
    target
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subs(members: &[(&str, &[&str])]) -> BTreeMap<String, BTreeSet<String>> {
        members
            .iter()
            .map(|(id, topics)| (id.to_string(), topics.iter().map(|t| t.to_string()).collect()))
            .collect()
    }

    fn counts(topics: &[(&str, i32)]) -> BTreeMap<String, i32> {
        topics.iter().map(|(t, n)| (t.to_string(), *n)).collect()
    }

    fn owners(target: &BTreeMap<String, Assignment>) -> BTreeMap<(String, i32), String> {
        let mut out = BTreeMap::new();
        for (id, assignment) in target {
            for (topic, partitions) in assignment {
                for p in partitions {
                    assert!(
                        out.insert((topic.clone(), *p), id.clone()).is_none(),
                        "{topic}-{p} twice"
                    );
                }
            }
        }
        out
    }

    #[test]
    fn range_splits_contiguously() {
        let target = assign_range(&subs(&[("a", &["t"]), ("b", &["t"])]), &counts(&[("t", 5)]));
        assert_eq!(target["a"]["t"], BTreeSet::from([0, 1, 2]));
        assert_eq!(target["b"]["t"], BTreeSet::from([3, 4]));
    }

    #[test]
    fn uniform_is_balanced_complete_and_sticky() {
        let one = assign_uniform(&subs(&[("a", &["t"])]), &counts(&[("t", 4)]), &BTreeMap::new());
        assert_eq!(one["a"]["t"].len(), 4);
        let two = assign_uniform(&subs(&[("a", &["t"]), ("b", &["t"])]), &counts(&[("t", 4)]), &one);
        assert_eq!(owners(&two).len(), 4);
        assert_eq!(count(&two["a"]), 2);
        assert_eq!(count(&two["b"]), 2);
        // a keeps two of its partitions: it only loses what b receives.
        assert!(two["a"]["t"].is_subset(&one["a"]["t"]));
        // 100 partitions over 10, then 11 members: the newcomer gets a share.
        let ten: BTreeMap<String, BTreeSet<String>> = (0..10)
            .map(|i| (format!("m{i:02}"), BTreeSet::from(["t".to_string()])))
            .collect();
        let before = assign_uniform(&ten, &counts(&[("t", 100)]), &BTreeMap::new());
        let mut eleven = ten.clone();
        eleven.insert("m10".into(), BTreeSet::from(["t".to_string()]));
        let after = assign_uniform(&eleven, &counts(&[("t", 100)]), &before);
        assert_eq!(owners(&after).len(), 100);
        for (id, assignment) in &after {
            assert!(
                (9..=10).contains(&count(assignment)),
                "{id}: {}",
                count(assignment)
            );
        }
        let three = assign_uniform(
            &subs(&[("a", &["t"]), ("b", &["t"]), ("c", &["t"])]),
            &counts(&[("t", 4)]),
            &two,
        );
        assert_eq!(owners(&three).len(), 4);
        for id in ["a", "b"] {
            assert!(three[id]
                .get("t")
                .cloned()
                .unwrap_or_default()
                .is_subset(&two[id]["t"]));
        }
    }

    #[test]
    fn snapshot_round_trips_and_garbage_is_an_error() {
        let mut metadata = ClusterMetadata::default();
        metadata.topics.insert(
            "t".into(),
            crate::metadata::TopicMetadata {
                id: crate::metadata::new_topic_id(),
                shards: vec![0; 3],
                configs: Default::default(),
            },
        );
        let now = Instant::now();
        let mut group = ConsumerGroup::default();
        group
            .heartbeat(heartbeat("a", 0, None, true), &metadata, now, 45_000, || {
                "x".into()
            })
            .unwrap();
        group
            .heartbeat(heartbeat("b", 0, None, true), &metadata, now, 45_000, || {
                "x".into()
            })
            .unwrap();
        let snapshot = group.to_snapshot();
        let restored = ConsumerGroup::from_snapshot(snapshot.clone(), now, 45_000).unwrap();
        assert_eq!(restored.to_snapshot(), snapshot);
        let mut restored = restored;
        assert_eq!(
            restored.changed_snapshot(),
            None,
            "a restored group has nothing new to store"
        );
        assert_eq!(restored.members.len(), 2);
        assert_eq!(restored.members["a"].assigned, group.members["a"].assigned);
        for cut in [0, 3, 9, snapshot.len() - 1] {
            assert!(
                ConsumerGroup::from_snapshot(snapshot.slice(..cut), now, 1).is_err(),
                "cut at {cut}"
            );
        }
    }

    fn heartbeat(id: &str, epoch: i32, owned: Option<Assignment>, subscribe: bool) -> Heartbeat {
        Heartbeat {
            member_id: id.into(),
            member_epoch: epoch,
            instance_id: None,
            rack_id: None,
            rebalance_timeout_ms: 30_000,
            subscribed_topics: subscribe.then(|| BTreeSet::from(["t".to_string()])),
            server_assignor: None,
            owned,
            client_id: "c".into(),
            client_host: "/h".into(),
        }
    }

    #[test]
    fn a_joining_member_gets_partitions_only_after_the_owner_released_them() {
        let mut metadata = ClusterMetadata::default();
        metadata.topics.insert(
            "t".into(),
            crate::metadata::TopicMetadata {
                id: crate::metadata::new_topic_id(),
                shards: vec![0; 4],
                configs: Default::default(),
            },
        );
        let now = Instant::now();
        let mut group = ConsumerGroup::default();
        let a = group
            .heartbeat(heartbeat("a", 0, None, true), &metadata, now, 45_000, || {
                "x".into()
            })
            .unwrap();
        let a_all = a.assignment.clone().unwrap();
        assert_eq!(count(&a_all), 4);
        let b = group
            .heartbeat(heartbeat("b", 0, None, true), &metadata, now, 45_000, || {
                "x".into()
            })
            .unwrap();
        assert_eq!(b.assignment.map(|x| count(&x)), Some(0), "nothing free yet");
        // a is told to give up two; it keeps the other two.
        let a2 = group
            .heartbeat(
                heartbeat("a", a.member_epoch, Some(a_all.clone()), false),
                &metadata,
                now,
                45_000,
                || "x".into(),
            )
            .unwrap();
        let kept = a2.assignment.unwrap();
        assert_eq!(count(&kept), 2);
        assert!(kept["t"].is_subset(&a_all["t"]));
        // b still waits: a has not confirmed.
        let b2 = group
            .heartbeat(
                heartbeat("b", b.member_epoch, Some(Assignment::new()), false),
                &metadata,
                now,
                45_000,
                || "x".into(),
            )
            .unwrap();
        assert!(b2.assignment.is_none());
        // a confirms; b then receives the two released partitions.
        let a3 = group
            .heartbeat(
                heartbeat("a", a2.member_epoch, Some(kept.clone()), false),
                &metadata,
                now,
                45_000,
                || "x".into(),
            )
            .unwrap();
        assert_eq!(a3.member_epoch, group.assignment_epoch);
        let b3 = group
            .heartbeat(
                heartbeat("b", b2.member_epoch, Some(Assignment::new()), false),
                &metadata,
                now,
                45_000,
                || "x".into(),
            )
            .unwrap();
        let given = b3.assignment.unwrap();
        assert_eq!(count(&given), 2);
        assert!(given["t"].is_disjoint(&kept["t"]));
        assert_eq!(group.state_name(), "Stable");
    }
}
