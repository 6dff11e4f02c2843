//! Producer ids for InitProducerId, on every shard.
//!
//! Shard 0 hands out blocks of [`crate::limits::PRODUCER_ID_BLOCK_SIZE`] ids and records
//! the end of each block in the cluster metadata (fsync + rename) before
//! replying, so an id is never given twice, across restarts and crashes
//! included: ids of a block not used up before a restart are skipped.
//! Each shard takes ids from its own block without crossing cores and asks
//! shard 0 for a new block when it is used up.
//!
//! Invariant: `next <= end`; every id in `[next, end)` is persisted as
//! allocated and was never returned.

use std::{cell::Cell, rc::Rc};

use super::{
    messages::{ShardCall, ShardReply},
    Shard,
};

#[derive(Default)]
pub struct ProducerIdBlock {
    /// `(next, end)`: the ids this shard may still hand out.
    range: Cell<(i64, i64)>,
}

impl ProducerIdBlock {
    fn is_used_up(&self) -> bool {
        let (next, end) = self.range.get();
        next >= end
    }

    fn take(&self) -> Option<i64> {
        let (next, end) = self.range.get();
        debug_assert!(next <= end);
        (next < end).then(|| {
            self.range.set((next + 1, end));
            next
        })
    }
}

/// Every `producer_id_expiration_check_interval_ms`, forgets on each log of
/// this shard the producers idle for `producer_id_expiration_ms`.
pub async fn run_producer_expiry(shard: Rc<Shard>) {
    let interval = std::time::Duration::from_millis(shard.config.producer_id_expiration_check_interval_ms);
    let expiration_ms = i64::try_from(shard.config.producer_id_expiration_ms).unwrap_or(i64::MAX);
    while !shard.stopping.get() {
        glommio::timer::sleep(interval).await;
        let now_ms = crate::log::now_ms();
        for log in shard.logs() {
            let expired = log.expire_producers(now_ms, expiration_ms);
            if expired > 0 {
                log::debug!(
                    "{}-{}: {expired} producer id(s) expired",
                    log.topic,
                    log.partition
                );
            }
        }
    }
}

/// A producer id never handed out before. Err: shard 0 could not persist
/// a new block (the caller answers COORDINATOR_NOT_AVAILABLE or similar).
pub async fn next_producer_id(shard: &Rc<Shard>) -> Result<i64, String> {
    loop {
        if let Some(id) = shard.producer_ids.take() {
            return Ok(id);
        }
        match shard.call(0, ShardCall::AllocateProducerIds).await {
            ShardReply::ProducerIds(Ok((start, end))) => {
                assert!(start < end, "shard 0 allocates non-empty blocks");
                // Another request of this shard may have refilled it while
                // this one waited: then this block is simply never used.
                if shard.producer_ids.is_used_up() {
                    shard.producer_ids.range.set((start, end));
                }
            }
            ShardReply::ProducerIds(Err(message)) => return Err(message),
            _ => return Err("shard 0 did not allocate producer ids".into()),
        }
    }
}
