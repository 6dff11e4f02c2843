//! Who does what: producer and consumer connections ("actors"), their
//! partitions and rates, and which pinned thread runs each.
//!
//! - A producer sends to every partition; per leader broker it opens
//!   `--connections` connections and splits that leader's partitions among
//!   them. The total `--rate` is split in proportion to partitions, so
//!   every partition receives the same rate; so is `--messages` (exactly:
//!   the shares add up to it).
//! - Consumer `i` owns partitions `p % consumers == i` (a fixed assignment,
//!   no group protocol) and, per leader, splits them over `--connections`.
//! - Actors are dealt round-robin to the threads, producers first; there are
//!   never more threads than actors.

use super::{consume::ConsumerSpec, produce::ProducerSpec};
use crate::{
    cli::Params,
    client::{cluster::Cluster, versions},
};
use kafka_protocol::messages::ApiKey;

pub enum ActorSpec {
    Producer(ProducerSpec),
    Consumer(ConsumerSpec),
}

pub struct ThreadPlan {
    /// CPU to pin to (`None`: not pinned, when the affinity mask is unknown).
    pub cpu: Option<usize>,
    pub actors: Vec<ActorSpec>,
}

pub struct Plan {
    pub threads: Vec<ThreadPlan>,
    pub producers: usize,
    pub consumers: usize,
    /// The CPUs the threads are pinned to, in thread order.
    pub cpus: Vec<Option<usize>>,
}

/// Splits `partitions` over `connections` (round-robin), dropping empty shares.
fn split(partitions: &[usize], connections: usize) -> Vec<Vec<usize>> {
    (0..connections)
        .map(|c| {
            partitions
                .iter()
                .copied()
                .skip(c)
                .step_by(connections)
                .collect::<Vec<_>>()
        })
        .filter(|share| !share.is_empty())
        .collect()
}

/// The part of `total` messages that goes to the partition shares
/// `before..after` of `all`: consecutive shares get consecutive slices, so
/// the parts add up to `total` exactly.
fn message_share(total: u64, before: u64, after: u64, all: u64) -> u64 {
    let cut = |shares: u64| (u128::from(total) * u128::from(shares) / u128::from(all.max(1))) as u64;
    cut(after) - cut(before)
}

/// `start_offsets`: where consumers begin, per partition (consume and e2e).
pub fn build(params: &Params, cluster: &Cluster, start_offsets: Option<&[i64]>) -> Result<Plan, String> {
    let partitions_total = cluster.partitions();
    let mut actors = Vec::new();
    let connections = params.connections as usize;
    let mut producers = 0;
    // Partition shares handed out so far, over `producers * partitions`.
    let mut shares_before = 0u64;
    let shares_total = u64::from(params.producers) * partitions_total as u64;
    if params.scenario.produces() {
        for _producer in 0..params.producers {
            for (node_id, partitions) in cluster.partitions_by_leader() {
                let broker = &cluster.brokers[&node_id];
                let version = versions::require(&broker.versions, &broker.api_versions, ApiKey::Produce)
                    .map_err(|e| format!("broker {node_id} ({}): {e}", broker.address))?;
                for share in split(&partitions, connections) {
                    let rate_msgs_per_s = params.rate_msgs_per_s.map(|rate| {
                        rate * share.len() as f64 / (params.producers as f64 * partitions_total as f64)
                    });
                    let shares_after = shares_before + share.len() as u64;
                    let messages = params
                        .messages
                        .map(|total| message_share(total, shares_before, shares_after, shares_total));
                    shares_before = shares_after;
                    let actor = actors.len();
                    actors.push(ActorSpec::Producer(ProducerSpec {
                        actor,
                        address: broker.address.clone(),
                        partitions: share.iter().map(|&p| p as i32).collect(),
                        rate_msgs_per_s,
                        messages,
                        // Golden-ratio phases spread connections over the interval.
                        phase: (actor as f64 * 0.618_033_988_75).fract(),
                        version,
                    }));
                    producers += 1;
                }
            }
        }
    }
    let mut consumers = 0;
    if params.scenario.consumes() {
        let start_offsets = start_offsets.ok_or("consumers need start offsets")?;
        let consumer_count = params.consumers as usize;
        let leaders = cluster.partitions_by_leader();
        for consumer in 0..consumer_count {
            for (node_id, partitions) in &leaders {
                let broker = &cluster.brokers[node_id];
                let version = versions::require(&broker.versions, &broker.api_versions, ApiKey::Fetch)
                    .map_err(|e| format!("broker {node_id} ({}): {e}", broker.address))?;
                let owned: Vec<usize> = partitions
                    .iter()
                    .copied()
                    .filter(|p| p % consumer_count == consumer)
                    .collect();
                for share in split(&owned, connections) {
                    let actor = actors.len();
                    actors.push(ActorSpec::Consumer(ConsumerSpec {
                        actor,
                        address: broker.address.clone(),
                        start_offsets: share.iter().map(|&p| start_offsets[p]).collect(),
                        partitions: share.iter().map(|&p| p as i32).collect(),
                        version,
                        end_to_end: params.scenario == crate::cli::Scenario::E2e,
                    }));
                    consumers += 1;
                }
            }
        }
    }
    if actors.is_empty() {
        return Err("nothing to run: no producer or consumer has a partition".into());
    }
    let cores: Vec<usize> = core_affinity::get_core_ids()
        .unwrap_or_default()
        .into_iter()
        .map(|c| c.id)
        .collect();
    let wanted = if params.threads == 0 {
        cores.len().max(1)
    } else {
        params.threads as usize
    };
    let thread_count = wanted.min(actors.len());
    let cpus: Vec<Option<usize>> = (0..thread_count)
        .map(|t| {
            if cores.is_empty() {
                None
            } else {
                Some(cores[t % cores.len()])
            }
        })
        .collect();
    let mut threads: Vec<ThreadPlan> = cpus
        .iter()
        .map(|&cpu| ThreadPlan {
            cpu,
            actors: Vec::new(),
        })
        .collect();
    for (index, actor) in actors.into_iter().enumerate() {
        threads[index % thread_count].actors.push(actor);
    }
    Ok(Plan {
        threads,
        producers,
        consumers,
        cpus,
    })
}

#[cfg(test)]
mod tests {
    use super::{message_share, split};

    #[test]
    fn message_limits_are_split_by_partitions_and_add_up() {
        // 10 messages over 3 connections owning 3, 3 and 2 of 8 partitions.
        let parts = [
            message_share(10, 0, 3, 8),
            message_share(10, 3, 6, 8),
            message_share(10, 6, 8, 8),
        ];
        assert_eq!(parts, [3, 4, 3]);
        assert_eq!(message_share(7, 0, 8, 8), 7);
    }

    #[test]
    fn partitions_split_round_robin_without_empty_connections() {
        assert_eq!(split(&[0, 1, 2, 3, 4], 2), vec![vec![0, 2, 4], vec![1, 3]]);
        assert_eq!(split(&[7], 3), vec![vec![7]]);
    }
}
