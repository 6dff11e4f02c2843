//! Catch-up pacing: a lagging consumer must not take the CPU producers need.
//!
//! On a machine where the broker and its clients share few cores, a consumer
//! reading history as fast as it can keeps every core busy (the broker
//! reading and sending, the consumer parsing), and producers' latency
//! follows. Fetches of the tail (served from the tail cache) are what
//! tailing consumers do and are never paced. Bytes read below the tail
//! cache (page cache or disk) are charged to a per-shard token bucket that
//! refills at `catch_up_fetch_bytes_per_s_max`, but only while some producer
//! wrote in the last [`PRODUCE_RECENT_MS`]; a response that overdraws the
//! bucket is held (parked: no CPU) for the time the rate implies before it
//! is sent. Without producers, catch-up reads run at full speed.
//!
//! Lives on each shard (the bucket); the "a producer wrote recently" clock is
//! one process-wide atomic, because the cores are shared whichever shard the
//! producer's connection landed on. Invariant: tokens never exceed the
//! bucket's capacity ([`BURST_MS`] worth of the rate).

use std::{
    cell::Cell,
    sync::atomic::{AtomicI64, Ordering},
    time::{Duration, Instant},
};

/// A produce within this many ms counts as "producers are active".
pub const PRODUCE_RECENT_MS: i64 = 1_000;
/// Bucket capacity, as ms of the configured rate.
pub const BURST_MS: u64 = 100;
/// Longest a single response is held.
pub const DELAY_MS_MAX: u64 = 1_000;
/// Largest fetch response while pacing is on and producers are active:
/// the work of one response (reads, the copy into the socket) is done in
/// one go on the shard, so it is kept small; consumers fetch more often.
pub const PACED_RESPONSE_BYTES_MAX: usize = 1024 * 1024;

/// Wall-clock ms of the latest produce request seen by any shard.
static LAST_PRODUCE_MS: AtomicI64 = AtomicI64::new(i64::MIN);

/// Called by the Produce handler. Stores at most every 10 ms (a shared cache
/// line written by every produce request would cost more than it tells).
pub fn note_produce(now_ms: i64) {
    if now_ms.saturating_sub(LAST_PRODUCE_MS.load(Ordering::Relaxed)) >= 10 {
        LAST_PRODUCE_MS.store(now_ms, Ordering::Relaxed);
    }
}

fn producing(now_ms: i64) -> bool {
    now_ms.saturating_sub(LAST_PRODUCE_MS.load(Ordering::Relaxed)) < PRODUCE_RECENT_MS
}

/// One shard's token bucket of catch-up bytes.
pub struct CatchUpPacer {
    bytes_per_s: u64,
    tokens: Cell<f64>,
    refilled_at: Cell<Instant>,
}

impl CatchUpPacer {
    /// `bytes_per_s == 0`: no pacing.
    pub fn new(bytes_per_s: u64) -> CatchUpPacer {
        CatchUpPacer {
            bytes_per_s,
            tokens: Cell::new(capacity(bytes_per_s)),
            refilled_at: Cell::new(Instant::now()),
        }
    }

    /// The response size to allow a fetch asking for `max_bytes` now.
    pub fn response_bytes_max(&self, max_bytes: usize, now_ms: i64) -> usize {
        if self.bytes_per_s > 0 && producing(now_ms) {
            max_bytes.min(PACED_RESPONSE_BYTES_MAX)
        } else {
            max_bytes
        }
    }

    /// How long to hold a response that read `cold_bytes` below the tail
    /// cache (charging them to the bucket).
    pub fn delay_for(&self, cold_bytes: usize, now: Instant, now_ms: i64) -> Duration {
        if self.bytes_per_s == 0 || cold_bytes == 0 {
            return Duration::ZERO;
        }
        let rate = self.bytes_per_s as f64;
        let elapsed = now
            .saturating_duration_since(self.refilled_at.get())
            .as_secs_f64();
        self.refilled_at.set(now);
        let full = capacity(self.bytes_per_s);
        if !producing(now_ms) {
            self.tokens.set(full);
            return Duration::ZERO;
        }
        let tokens = (self.tokens.get() + elapsed * rate).min(full) - cold_bytes as f64;
        self.tokens.set(tokens);
        debug_assert!(self.tokens.get() <= full);
        if tokens >= 0.0 {
            return Duration::ZERO;
        }
        Duration::from_secs_f64(-tokens / rate).min(Duration::from_millis(DELAY_MS_MAX))
    }
}

fn capacity(bytes_per_s: u64) -> f64 {
    bytes_per_s as f64 * BURST_MS as f64 / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paces_only_while_producing_and_only_beyond_the_burst() {
        let pacer = CatchUpPacer::new(100 * 1024 * 1024);
        let now = Instant::now();
        // No producer: never held.
        assert_eq!(pacer.delay_for(64 << 20, now, 1_000_000), Duration::ZERO);
        note_produce(2_000_000);
        // Producing: the 10 MiB burst passes, the next 10 MiB waits ~100 ms.
        assert_eq!(pacer.delay_for(10 << 20, now, 2_000_100), Duration::ZERO);
        let held = pacer.delay_for(10 << 20, now, 2_000_100);
        assert!((95..=105).contains(&held.as_millis()), "{held:?}");
        // Time refills the bucket.
        let later = now + Duration::from_secs(1);
        assert_eq!(pacer.delay_for(1 << 20, later, 2_000_900), Duration::ZERO);
        // Unpaced when disabled.
        assert_eq!(
            CatchUpPacer::new(0).delay_for(1 << 30, now, 2_000_100),
            Duration::ZERO
        );
        // Responses are capped while producing, not otherwise or when off.
        assert_eq!(
            pacer.response_bytes_max(50 << 20, 2_000_100),
            PACED_RESPONSE_BYTES_MAX
        );
        assert_eq!(pacer.response_bytes_max(50 << 20, 9_000_000), 50 << 20);
        assert_eq!(
            CatchUpPacer::new(0).response_bytes_max(50 << 20, 2_000_100),
            50 << 20
        );
    }
}
