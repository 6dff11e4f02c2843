//! Catch-up pacing: a consumer reading history must not slow producers.
//!
//! A consumer catching up reads below the tail cache (page cache or disk)
//! as fast as the broker can send. That costs CPU (splicing, the loopback or
//! NIC path, the consumer's own copy when it shares the machine) and disk
//! bandwidth, and producers' latency follows: on the development machine a
//! raw reader at ~1 GB/s moved a 10k msgs/s producer's p99 ~10×.
//!
//! # Control: catch-up gets what producers leave over
//!
//! The broker measures the harm directly: the latency of every produce
//! request that waits for its write (acks 1 or all), from the handler's
//! start to the answer. A controller on shard 0 looks at it every
//! [`WINDOW_MS`], in the manner of LEDBAT (RFC 6817, "low extra delay
//! background transport"):
//! - the **base** is the lowest mean of the last [`BASE_HISTORY_S`]
//!   seconds' clean windows (catch-up absent or held at the floor): what
//!   producing costs when catch-up does not interfere. When no window was
//!   clean for [`PROBE_INTERVAL_MS`] (a consumer catching up all along, or
//!   producing just started under one), the controller makes one: a
//!   probe holds catch-up at the floor for [`PROBE_WINDOWS`] windows,
//!   as BBR probes for its minimum round trip;
//! - the **target** is `base × catch_up_produce_latency_target_pct / 100 +`
//!   [`TARGET_SLACK_US`] (the slack keeps microsecond noise on an idle
//!   broker from counting as harm);
//! - while catch-up bytes flow, the per-shard allowance moves in
//!   proportion to how far the window's mean is from the target: up by at
//!   most [`GAIN_UP_PCT`]% per window below it, down to at most half above
//!   it, never below `catch_up_fetch_bytes_per_s_min` (catch-up always
//!   progresses) nor above `catch_up_fetch_bytes_per_s_max` (if set); far
//!   from binding, it is unlimited.
//!
//! Without producers waiting for writes in the last [`PRODUCE_RECENT_MS`],
//! catch-up is never paced. Fetches of the tail (the tail cache) are what
//! tailing consumers do and are never paced either.
//!
//! # Where it acts
//!
//! Each shard charges the bytes its fetches read below the tail cache to a
//! token bucket refilled at the allowance ([`BURST_MS`] deep); a response
//! that overdraws it is held (parked: no CPU) for the time the rate
//! implies, at most [`DELAY_MS_MAX`]. While pacing is possible and
//! producers are active, what one response reads below the tail cache is
//! also capped at [`PACED_RESPONSE_BYTES_MAX`], so it is a bounded piece of
//! work.
//!
//! # Where it lives
//!
//! [`PacingSignals`] is process-wide (atomics, shared by the shards): the
//! cores and the disk are shared whichever shard a producer's connection or
//! a consumer's partitions landed on. Each shard has its own
//! [`CatchUpPacer`] (the bucket). The [`Controller`] runs on shard 0.
//! Invariants: the allowance is within [min, max] or unlimited; tokens never
//! exceed the bucket's depth.

use std::{
    cell::Cell,
    sync::{
        atomic::{AtomicI64, AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use crate::config::Config;

/// A produce within this many ms counts as "producers are active": a
/// producer sending at least a few requests a second. Longer, and a
/// consumer that starts reading history right after a backlog was written
/// was held for a second with nobody left to protect (catch-up of 512 MiB
/// just written, one core: 338 MB/s, against 760 MB/s when started 3 s
/// after the producer).
pub const PRODUCE_RECENT_MS: i64 = 250;
/// How often a shard publishes its produce observations (ms); a window
/// sees them at most this late.
pub const PUBLISH_MS: i64 = 10;
/// The controller's period.
pub const WINDOW_MS: u64 = 100;
/// A window with fewer produce latencies than this tells nothing.
pub const WINDOW_SAMPLES_MIN: u64 = 5;
/// How far back the base (lowest window mean) reaches.
pub const BASE_HISTORY_S: u64 = 30;
/// The base is kept as the minimum of this many slots of
/// `BASE_HISTORY_S / BASE_SLOTS` seconds each.
const BASE_SLOTS: usize = 6;
/// Longest the controller goes without a clean window (catch-up absent
/// or at the floor) before it makes one: a probe.
pub const PROBE_INTERVAL_MS: i64 = 5_000;
/// Windows a probe holds catch-up at the floor (the last one measures).
pub const PROBE_WINDOWS: u32 = 2;
/// Added to the target so that microseconds of noise are not harm.
pub const TARGET_SLACK_US: u64 = 100;
/// Largest increase of the allowance per window, in % (at a mean of 0).
pub const GAIN_UP_PCT: u64 = 25;
/// An allowance above this many bytes/s per shard is no limit at all.
pub const RATE_UNLIMITED_BYTES_PER_S: u64 = 4 << 30;
/// Bucket depth of catch-up fetches, as ms of the allowance.
pub const BURST_MS: u64 = 100;
/// Bucket depth of the log cleaner, as ms of the allowance.
pub const CLEANER_BURST_MS: u64 = 1;
/// Longest a single response is held.
pub const DELAY_MS_MAX: u64 = 1_000;
/// A held response looks at least this often (ms) whether producers are
/// still active.
pub const HOLD_SLICE_MS: u64 = 20;
/// Most bytes one fetch response reads below the tail cache while pacing
/// is possible and producers are active: the work of one response (reads,
/// the copy into the socket) is done in one go on the shard, so it is kept
/// small; consumers fetch more often. Tail reads are not limited.
pub const PACED_RESPONSE_BYTES_MAX: usize = 1024 * 1024;

/// The `catch_up_*` options.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PacingConfig {
    /// Produce latency allowed under catch-up, in % of the base; 0: no
    /// adaptive pacing.
    pub target_pct: u64,
    /// Per shard; the allowance never goes below it.
    pub bytes_per_s_min: u64,
    /// Per shard; 0: no fixed ceiling.
    pub bytes_per_s_max: u64,
}

impl PacingConfig {
    pub fn from_config(config: &Config) -> PacingConfig {
        PacingConfig {
            target_pct: config.catch_up_produce_latency_target_pct,
            bytes_per_s_min: config.catch_up_fetch_bytes_per_s_min,
            bytes_per_s_max: config.catch_up_fetch_bytes_per_s_max,
        }
    }

    /// Whether catch-up reads can be paced at all.
    pub fn enabled(&self) -> bool {
        self.target_pct > 0 || self.bytes_per_s_max > 0
    }

    /// The allowance when producers start: adaptive pacing starts at the
    /// floor (catch-up earns its share window by window: a first window at
    /// full speed would be the producers' worst 100 ms), fixed pacing at
    /// its rate.
    fn initial_rate(&self) -> Option<u64> {
        if self.target_pct > 0 {
            Some(self.bytes_per_s_min)
        } else {
            (self.bytes_per_s_max > 0).then_some(self.bytes_per_s_max)
        }
    }
}

/// What every shard tells the controller, and the allowance it sets.
pub struct PacingSignals {
    last_produce_ms: AtomicI64,
    produce_latency_us_sum: AtomicU64,
    produce_latencies: AtomicU64,
    /// Bytes read below the tail cache, per shard, since the last window.
    catch_up_bytes: Vec<AtomicU64>,
    /// Per-shard allowance in bytes/s; u64::MAX: unlimited.
    rate_bytes_per_s: AtomicU64,
}

impl PacingSignals {
    pub fn new(shards: usize, config: &PacingConfig) -> PacingSignals {
        PacingSignals {
            last_produce_ms: AtomicI64::new(i64::MIN),
            produce_latency_us_sum: AtomicU64::new(0),
            produce_latencies: AtomicU64::new(0),
            catch_up_bytes: (0..shards.max(1)).map(|_| AtomicU64::new(0)).collect(),
            rate_bytes_per_s: AtomicU64::new(config.initial_rate().unwrap_or(u64::MAX)),
        }
    }

    /// One shard's produce requests since its last publication: `now_ms`
    /// marks producers active; the latencies join the current window.
    fn publish_produces(&self, now_ms: i64, latency_us_sum: u64, latencies: u64) {
        self.last_produce_ms.store(now_ms, Ordering::Relaxed);
        if latencies > 0 {
            self.produce_latency_us_sum
                .fetch_add(latency_us_sum, Ordering::Relaxed);
            self.produce_latencies.fetch_add(latencies, Ordering::Relaxed);
        }
    }

    fn producing(&self, now_ms: i64) -> bool {
        now_ms.saturating_sub(self.last_produce_ms.load(Ordering::Relaxed)) < PRODUCE_RECENT_MS
    }

    /// The current per-shard allowance; None: unlimited.
    pub fn rate_bytes_per_s(&self) -> Option<u64> {
        match self.rate_bytes_per_s.load(Ordering::Relaxed) {
            u64::MAX => None,
            rate => Some(rate),
        }
    }

    /// Takes the window's produce latencies and catch-up bytes (resetting
    /// them): (latency sum µs, count, most bytes any one shard read).
    fn take_window(&self) -> (u64, u64, u64) {
        let sum = self.produce_latency_us_sum.swap(0, Ordering::Relaxed);
        let count = self.produce_latencies.swap(0, Ordering::Relaxed);
        let bytes = self
            .catch_up_bytes
            .iter()
            .map(|b| b.swap(0, Ordering::Relaxed))
            .max()
            .unwrap_or(0);
        (sum, count, bytes)
    }
}

/// A token bucket refilled at the allowance, `depth_ms` of it deep.
struct Bucket {
    depth_ms: u64,
    tokens: Cell<f64>,
    refilled_at: Cell<Instant>,
}

impl Bucket {
    fn new(depth_ms: u64) -> Bucket {
        Bucket {
            depth_ms,
            tokens: Cell::new(0.0),
            refilled_at: Cell::new(Instant::now()),
        }
    }

    /// Takes `bytes` at `rate` (None: unlimited, and the bucket empties);
    /// returns how long the taker waits for the deficit.
    fn take(&self, bytes: u64, now: Instant, rate: Option<u64>) -> Duration {
        let elapsed = now
            .saturating_duration_since(self.refilled_at.get())
            .as_secs_f64();
        self.refilled_at.set(now);
        let Some(rate) = rate.map(|r| r as f64) else {
            self.tokens.set(0.0);
            return Duration::ZERO;
        };
        let depth = rate * self.depth_ms as f64 / 1000.0;
        let tokens = (self.tokens.get() + elapsed * rate).min(depth) - bytes as f64;
        self.tokens.set(tokens);
        debug_assert!(self.tokens.get() <= depth);
        if tokens >= 0.0 {
            return Duration::ZERO;
        }
        Duration::from_secs_f64(-tokens / rate).min(Duration::from_millis(DELAY_MS_MAX))
    }
}

/// One shard's token buckets of background bytes: catch-up fetches and
/// the log cleaner.
pub struct CatchUpPacer {
    shard: usize,
    enabled: bool,
    signals: Arc<PacingSignals>,
    fetches: Bucket,
    cleaner: Bucket,
    /// Produce latencies not yet published to `signals` (sum µs, count).
    unpublished: Cell<(u64, u64)>,
    published_at_ms: Cell<i64>,
}

impl CatchUpPacer {
    pub fn new(shard: usize, config: &PacingConfig, signals: Arc<PacingSignals>) -> CatchUpPacer {
        assert!(shard < signals.catch_up_bytes.len(), "a signal slot per shard");
        CatchUpPacer {
            shard,
            enabled: config.enabled(),
            signals,
            fetches: Bucket::new(BURST_MS),
            cleaner: Bucket::new(CLEANER_BURST_MS),
            unpublished: Cell::new((0, 0)),
            published_at_ms: Cell::new(i64::MIN),
        }
    }

    /// Called by the Produce handler when it answers. `latency_us`: the
    /// handler's time for a request that waited for its write (acks 1 or
    /// all); None for acks=0. Gathered here and published to the shared
    /// signals at most every [`PUBLISH_MS`]: shared cache lines written by
    /// every produce request would cost more than they tell.
    pub fn note_produce(&self, now_ms: i64, latency_us: Option<u64>) {
        let (sum, count) = self.unpublished.get();
        let (sum, count) = match latency_us {
            Some(latency_us) => (sum.saturating_add(latency_us), count + 1),
            None => (sum, count),
        };
        if now_ms.saturating_sub(self.published_at_ms.get()) >= PUBLISH_MS {
            self.signals.publish_produces(now_ms, sum, count);
            self.published_at_ms.set(now_ms);
            self.unpublished.set((0, 0));
        } else {
            self.unpublished.set((sum, count));
        }
    }

    /// The allowance now (bytes/s per shard); None: unlimited.
    pub fn allowance_bytes_per_s(&self) -> Option<u64> {
        self.signals.rate_bytes_per_s()
    }

    /// The most bytes a fetch may read below the tail cache now.
    pub fn cold_bytes_max(&self, now_ms: i64) -> usize {
        if self.enabled && self.signals.producing(now_ms) {
            PACED_RESPONSE_BYTES_MAX
        } else {
            usize::MAX
        }
    }

    /// How long to hold a response that read `cold_bytes` below the tail
    /// cache (charging them to the fetch bucket).
    pub fn delay_for(&self, cold_bytes: u64, now: Instant, now_ms: i64) -> Duration {
        self.charge(&self.fetches, cold_bytes, now, now_ms)
    }

    /// Holds a response for `delay` (from `delay_for`), or until producers
    /// stop counting as active, whichever comes first; returns the time it
    /// was held. A response held for a producer that has gone protects
    /// nobody.
    pub async fn hold(&self, delay: Duration) -> Duration {
        let started = Instant::now();
        loop {
            let left = delay.saturating_sub(started.elapsed());
            if left.is_zero() || !self.signals.producing(crate::log::now_ms()) {
                return started.elapsed();
            }
            glommio::timer::sleep(left.min(Duration::from_millis(HOLD_SLICE_MS))).await;
        }
    }

    /// How long the log cleaner rests after going through `bytes` of log
    /// (charged to its own, shallow bucket: a pass is CPU-bound, so what it
    /// may do at once is kept to about a millisecond of the allowance).
    pub fn cleaner_rest(&self, bytes: u64, now: Instant, now_ms: i64) -> Duration {
        self.charge(&self.cleaner, bytes, now, now_ms)
    }

    fn charge(&self, bucket: &Bucket, bytes: u64, now: Instant, now_ms: i64) -> Duration {
        if !self.enabled || bytes == 0 {
            return Duration::ZERO;
        }
        self.signals.catch_up_bytes[self.shard].fetch_add(bytes, Ordering::Relaxed);
        let rate = match self.signals.rate_bytes_per_s() {
            Some(rate) if self.signals.producing(now_ms) => Some(rate),
            _ => None,
        };
        bucket.take(bytes, now, rate)
    }
}

/// The allowance's controller (see the module doc). Plain state: the
/// shard-0 task feeds it one window at a time.
pub struct Controller {
    config: PacingConfig,
    /// Lowest window mean (µs) per slot; u64::MAX: no sample.
    base_slots_us: [u64; BASE_SLOTS],
    slot: usize,
    slot_started_ms: i64,
    /// When the newest clean window (catch-up absent or at the floor) was.
    clean_at_ms: i64,
    probe: Option<Probe>,
    rate_bytes_per_s: Option<u64>,
}

/// One window's observations.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    pub now_ms: i64,
    pub producing: bool,
    pub produce_latency_us_sum: u64,
    pub produce_latencies: u64,
    /// The most bytes one shard read below the tail cache in the window.
    pub catch_up_bytes: u64,
    pub window_ms: u64,
}

impl Controller {
    pub fn new(config: PacingConfig, now_ms: i64) -> Controller {
        Controller {
            config,
            base_slots_us: [u64::MAX; BASE_SLOTS],
            slot: 0,
            slot_started_ms: now_ms,
            clean_at_ms: i64::MIN,
            probe: None,
            rate_bytes_per_s: config.initial_rate(),
        }
    }

    /// The base: lowest window mean of the history; None before any.
    pub fn base_us(&self) -> Option<u64> {
        let base = *self.base_slots_us.iter().min().expect("slots");
        (base != u64::MAX).then_some(base)
    }

    /// Takes one window; returns the allowance (None: unlimited).
    pub fn on_window(&mut self, window: Window) -> Option<u64> {
        if !window.producing || self.config.target_pct == 0 {
            self.rate_bytes_per_s = self.config.initial_rate();
            self.probe = None;
            return self.rate_bytes_per_s;
        }
        self.advance_slots(window.now_ms);
        if window.produce_latencies < WINDOW_SAMPLES_MIN {
            return self.rate_bytes_per_s;
        }
        let mean_us = window.produce_latency_us_sum / window.produce_latencies;
        let min = self.config.bytes_per_s_min as f64;
        let observed = window.catch_up_bytes as f64 * 1000.0 / window.window_ms.max(1) as f64;
        // Catch-up absent or held at the floor: what producing costs anyway.
        let clean = observed <= min * 1.25;
        if let Some(probe) = &mut self.probe {
            probe.windows_left -= 1;
            if probe.windows_left > 0 {
                return self.rate_bytes_per_s;
            }
            // The last window of a probe measures; the earlier ones let
            // reads already granted drain.
            let restored = probe.rate_before;
            self.probe = None;
            if clean {
                self.record_base(window.now_ms, mean_us);
            }
            self.rate_bytes_per_s = restored;
            return self.rate_bytes_per_s;
        }
        if clean {
            self.record_base(window.now_ms, mean_us);
        }
        if window.catch_up_bytes == 0 {
            return self.rate_bytes_per_s;
        }
        let base_us = match self.base_us() {
            Some(base_us) if window.now_ms.saturating_sub(self.clean_at_ms) < PROBE_INTERVAL_MS => base_us,
            // No recent measurement without catch-up: take one.
            _ => return self.start_probe(),
        };
        let target_us = (base_us.saturating_mul(self.config.target_pct) / 100 + TARGET_SLACK_US) as f64;
        // > 0 below the target, < 0 above it.
        let off_target = (target_us - mean_us as f64) / target_us;
        let max = match self.config.bytes_per_s_max {
            0 => RATE_UNLIMITED_BYTES_PER_S as f64,
            max => max as f64,
        };
        let rate = if off_target >= 0.0 {
            // Unlimited stays unlimited while producers are unharmed.
            let rate = self.rate_bytes_per_s?;
            let grown = rate as f64 * (1.0 + GAIN_UP_PCT as f64 / 100.0 * off_target);
            // An allowance the consumer is far from using is not raised:
            // it would let a consumer that speeds up flood the machine.
            grown.min((2.0 * observed).max(rate as f64))
        } else {
            let from = self
                .rate_bytes_per_s
                .map_or(observed, |r| (r as f64).min(observed));
            from * (1.0 + off_target / 2.0).max(0.5)
        };
        let rate = rate.clamp(min.min(max), max);
        self.rate_bytes_per_s =
            if self.config.bytes_per_s_max == 0 && rate >= RATE_UNLIMITED_BYTES_PER_S as f64 {
                None
            } else {
                Some(rate as u64)
            };
        self.rate_bytes_per_s
    }

    /// Holds catch-up at the floor for [`PROBE_WINDOWS`] to measure the base.
    fn start_probe(&mut self) -> Option<u64> {
        self.probe = Some(Probe {
            windows_left: PROBE_WINDOWS,
            rate_before: self.rate_bytes_per_s,
        });
        self.rate_bytes_per_s = Some(self.config.bytes_per_s_min);
        self.rate_bytes_per_s
    }

    /// Whether a probe is holding catch-up at the floor.
    pub fn probing(&self) -> bool {
        self.probe.is_some()
    }

    /// Retires the slots that fell out of the history.
    fn advance_slots(&mut self, now_ms: i64) {
        let slot_ms = (BASE_HISTORY_S * 1000 / BASE_SLOTS as u64) as i64;
        if now_ms.saturating_sub(self.slot_started_ms) >= slot_ms * BASE_SLOTS as i64 {
            // Nothing in the history is recent: start over.
            self.base_slots_us = [u64::MAX; BASE_SLOTS];
            self.slot_started_ms = now_ms;
            return;
        }
        while now_ms.saturating_sub(self.slot_started_ms) >= slot_ms {
            self.slot = (self.slot + 1) % BASE_SLOTS;
            self.base_slots_us[self.slot] = u64::MAX;
            self.slot_started_ms += slot_ms;
        }
    }

    fn record_base(&mut self, now_ms: i64, mean_us: u64) {
        let slot = &mut self.base_slots_us[self.slot];
        *slot = (*slot).min(mean_us);
        self.clean_at_ms = now_ms;
    }
}

/// A measurement of the base in progress.
struct Probe {
    windows_left: u32,
    rate_before: Option<u64>,
}

/// Shard 0's controller task: one window every [`WINDOW_MS`], forever.
pub async fn run_controller(config: PacingConfig, signals: Arc<PacingSignals>) {
    if config.target_pct == 0 {
        return;
    }
    let mut controller = Controller::new(config, crate::log::now_ms());
    let mut window_started = Instant::now();
    loop {
        glommio::timer::sleep(Duration::from_millis(WINDOW_MS)).await;
        let now = Instant::now();
        let now_ms = crate::log::now_ms();
        let (sum, count, bytes) = signals.take_window();
        let rate = controller.on_window(Window {
            now_ms,
            producing: signals.producing(now_ms),
            produce_latency_us_sum: sum,
            produce_latencies: count,
            catch_up_bytes: bytes,
            window_ms: u64::try_from(now.duration_since(window_started).as_millis()).unwrap_or(u64::MAX),
        });
        window_started = now;
        if bytes > 0 && count > 0 {
            log::debug!(
                "catch-up window: produce mean {} µs over {count}, base {:?} µs, {bytes} catch-up bytes; allowance {:?} bytes/s{}",
                sum / count,
                controller.base_us(),
                rate,
                if controller.probing() { " (probing)" } else { "" }
            );
        }
        signals
            .rate_bytes_per_s
            .store(rate.unwrap_or(u64::MAX), Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;
    const FLOOR: u64 = 8 * MIB;

    fn adaptive() -> PacingConfig {
        PacingConfig {
            target_pct: 150,
            bytes_per_s_min: FLOOR,
            bytes_per_s_max: 0,
        }
    }

    /// A window of 100 produce latencies averaging `mean_us`, while the
    /// busiest shard read `catch_up_bytes` below the tail cache.
    fn window(now_ms: i64, mean_us: u64, catch_up_bytes: u64) -> Window {
        Window {
            now_ms,
            producing: true,
            produce_latency_us_sum: mean_us * 100,
            produce_latencies: 100,
            catch_up_bytes,
            window_ms: WINDOW_MS,
        }
    }

    /// Bytes a consumer that uses all of `rate` reads in a window.
    fn used(rate: Option<u64>) -> u64 {
        rate.map_or(1 << 30, |r| r * WINDOW_MS / 1000)
    }

    /// A controller that measured a base of 400 µs at `now_ms` 100.
    fn measured() -> Controller {
        let mut controller = Controller::new(adaptive(), 0);
        assert_eq!(controller.on_window(window(100, 400, 0)), Some(FLOOR));
        assert_eq!(controller.base_us(), Some(400));
        controller
    }

    /// One shard's pacer at a fixed 100 MiB/s while producing.
    fn fixed_100_mib_per_s() -> (Arc<PacingSignals>, CatchUpPacer) {
        let config = PacingConfig {
            target_pct: 0,
            bytes_per_s_min: MIB,
            bytes_per_s_max: 100 * MIB,
        };
        let signals = Arc::new(PacingSignals::new(1, &config));
        let pacer = CatchUpPacer::new(0, &config, signals.clone());
        (signals, pacer)
    }

    #[test]
    fn fixed_rate_paces_only_while_producing_and_only_beyond_the_burst() {
        let (_signals, pacer) = fixed_100_mib_per_s();
        let now = Instant::now();
        // No producer: never held, responses whole.
        assert_eq!(pacer.delay_for(64 << 20, now, 1_000_000), Duration::ZERO);
        assert_eq!(pacer.cold_bytes_max(1_000_000), usize::MAX);
        pacer.note_produce(2_000_000, Some(300));
        // Producing: an empty bucket refills over time; 10 MiB after 100 ms
        // passes, the next 10 MiB waits ~100 ms.
        let later = now + Duration::from_millis(100);
        assert_eq!(pacer.delay_for(10 << 20, later, 2_000_100), Duration::ZERO);
        let held = pacer.delay_for(10 << 20, later, 2_000_100);
        assert!((95..=105).contains(&held.as_millis()), "{held:?}");
        assert_eq!(pacer.cold_bytes_max(2_000_100), PACED_RESPONSE_BYTES_MAX);
        // Producers gone: unpaced again.
        assert_eq!(pacer.delay_for(1 << 30, later, 9_000_000), Duration::ZERO);
        assert_eq!(pacer.cold_bytes_max(9_000_000), usize::MAX);
    }

    #[test]
    fn a_response_is_held_no_longer_than_producers_count_as_active() {
        let (_signals, pacer) = fixed_100_mib_per_s();
        glommio::LocalExecutor::default().run(async move {
            // The producer's last request was PRODUCE_RECENT_MS - 100 ms
            // ago: a hold of a second ends when it no longer counts, about
            // 100 ms later.
            let started = Instant::now();
            pacer.note_produce(crate::log::now_ms() - (PRODUCE_RECENT_MS - 100), Some(300));
            let held = pacer.hold(Duration::from_secs(1)).await;
            assert!(
                held >= Duration::from_millis(80) && held < Duration::from_millis(600),
                "{held:?}"
            );
            // Held in full while the producer keeps producing.
            pacer.note_produce(crate::log::now_ms(), Some(300));
            let held = pacer.hold(Duration::from_millis(50)).await;
            assert!(held >= Duration::from_millis(50), "{held:?}");
            assert!(started.elapsed() < Duration::from_secs(1));
        });
    }

    #[test]
    fn the_cleaner_has_a_shallow_bucket_of_its_own_and_counts_as_catch_up() {
        let (signals, pacer) = fixed_100_mib_per_s();
        let now = Instant::now();
        // No producer: the cleaner never rests.
        assert_eq!(pacer.cleaner_rest(64 << 20, now, 1_000_000), Duration::ZERO);
        pacer.note_produce(2_000_000, Some(300));
        // After a second idle, a fetch may take 100 ms of the allowance at
        // once, the cleaner only 1 ms: 1 MiB at 100 MiB/s costs it ~9 ms.
        let later = now + Duration::from_secs(1);
        let rest = pacer.cleaner_rest(MIB, later, 2_000_000);
        assert!((8..=10).contains(&rest.as_millis()), "{rest:?}");
        assert_eq!(pacer.delay_for(MIB, later, 2_000_000), Duration::ZERO);
        // Both count as catch-up bytes for the controller.
        let (_, _, bytes) = signals.take_window();
        assert_eq!(bytes, (64 << 20) + 2 * MIB);
    }

    #[test]
    fn adaptive_pacing_holds_catch_up_at_the_floor_when_producers_start() {
        let config = adaptive();
        let signals = Arc::new(PacingSignals::new(2, &config));
        let pacer = CatchUpPacer::new(1, &config, signals.clone());
        let now = Instant::now();
        assert_eq!(pacer.delay_for(64 << 20, now, 1_000_000), Duration::ZERO);
        pacer.note_produce(2_000_000, Some(300));
        // Within PUBLISH_MS: gathered on the shard, published with the next.
        pacer.note_produce(2_000_005, Some(500));
        let held = pacer.delay_for(MIB, now, 2_000_000);
        assert!(
            (120..=130).contains(&held.as_millis()),
            "1 MiB at 8 MiB/s: {held:?}"
        );
        // What the shard read is what the controller sees next window.
        assert_eq!(signals.take_window(), (300, 1, (64 << 20) + MIB));
        assert_eq!(signals.take_window(), (0, 0, 0));
        pacer.note_produce(2_000_010, None);
        assert_eq!(signals.take_window(), (500, 1, 0));
    }

    #[test]
    fn disabled_pacing_never_holds_nor_caps() {
        let config = PacingConfig {
            target_pct: 0,
            bytes_per_s_min: MIB,
            bytes_per_s_max: 0,
        };
        let signals = Arc::new(PacingSignals::new(1, &config));
        let pacer = CatchUpPacer::new(0, &config, signals.clone());
        pacer.note_produce(2_000_000, Some(300));
        assert_eq!(
            pacer.delay_for(1 << 30, Instant::now(), 2_000_100),
            Duration::ZERO
        );
        assert_eq!(pacer.cold_bytes_max(2_000_100), usize::MAX);
    }

    #[test]
    fn allowance_grows_while_producers_are_unharmed_and_falls_when_they_are() {
        let mut controller = measured();
        // Calm (target 700 µs): grows by at most a quarter per window, and
        // only while the consumer uses it.
        let mut rate = Some(FLOOR);
        for i in 0..20 {
            let next = controller.on_window(window(200 + i * 100, 450, used(rate)));
            let (before, after) = (rate.expect("paced"), next.expect("paced"));
            assert!(
                after > before && after as f64 <= before as f64 * 1.25,
                "{after} after {before}"
            );
            rate = next;
        }
        let unused = controller.on_window(window(2_200, 400, 1_000));
        assert_eq!(unused, rate, "an unused allowance is not raised");
        // Latency 10× the base: half of what was read, down to the floor.
        let before = rate.expect("paced");
        let after = controller
            .on_window(window(2_300, 4_000, used(rate)))
            .expect("paced");
        assert!(after.abs_diff(before / 2) < 1024, "{after} after {before}");
        let mut rate = Some(after);
        for i in 0..20 {
            rate = controller.on_window(window(2_400 + i * 100, 2_000, used(rate)));
        }
        assert_eq!(rate, Some(FLOOR));
        // Sustained calm lifts the limit entirely (probes come and go).
        let mut lifted = false;
        for i in 0..300 {
            rate = controller.on_window(window(5_000 + i * 100, 400, used(rate)));
            lifted |= rate.is_none();
        }
        assert!(lifted);
    }

    #[test]
    fn without_producers_the_allowance_returns_to_the_floor() {
        let mut controller = measured();
        let mut rate = Some(FLOOR);
        for i in 0..10 {
            rate = controller.on_window(window(200 + i * 100, 400, used(rate)));
        }
        assert!(rate > Some(FLOOR));
        // Too few samples: no verdict.
        let sparse = Window {
            produce_latencies: 2,
            produce_latency_us_sum: 100_000,
            ..window(1_200, 0, used(rate))
        };
        assert_eq!(controller.on_window(sparse), rate);
        let idle = Window {
            producing: false,
            ..window(1_300, 0, 1 << 30)
        };
        assert_eq!(controller.on_window(idle), Some(FLOOR));
    }

    #[test]
    fn the_base_forgets_old_windows() {
        let mut controller = Controller::new(adaptive(), 0);
        controller.on_window(window(100, 300, 0));
        for s in 1..=BASE_HISTORY_S as i64 + 5 {
            controller.on_window(window(s * 1000, 900, 0));
        }
        assert_eq!(controller.base_us(), Some(900));
        // A long idle gap starts the history over.
        controller.on_window(window(10_000_000, 700, 0));
        assert_eq!(controller.base_us(), Some(700));
    }

    #[test]
    fn without_a_clean_base_the_controller_probes_at_the_floor() {
        let mut controller = Controller::new(adaptive(), 0);
        // Producing starts while a consumer catches up: no base yet.
        assert_eq!(controller.on_window(window(100, 3_000, 100_000_000)), Some(FLOOR));
        assert!(controller.probing());
        // The first probe window lets granted reads drain (no verdict)...
        assert_eq!(controller.on_window(window(200, 2_000, 20_000_000)), Some(FLOOR));
        assert_eq!(controller.base_us(), None);
        // ...the second measures.
        assert_eq!(controller.on_window(window(300, 500, 800_000)), Some(FLOOR));
        assert!(!controller.probing());
        assert_eq!(controller.base_us(), Some(500));
        // Windows above the floor are not clean: PROBE_INTERVAL_MS after
        // the last clean one, another probe; then the allowance comes back.
        let mut rate = Some(FLOOR);
        let mut now_ms = 300;
        let mut last_clean_ms = 300;
        while !controller.probing() {
            now_ms += 100;
            if used(rate) as f64 <= FLOOR as f64 * 1.25 * WINDOW_MS as f64 / 1000.0 {
                last_clean_ms = now_ms;
            }
            rate = controller.on_window(window(now_ms, 600, used(rate)));
            assert!(now_ms < 10_000, "no probe");
        }
        assert_eq!(now_ms - last_clean_ms, PROBE_INTERVAL_MS);
        assert_eq!(rate, Some(FLOOR));
        let mut restored = None;
        for i in 1..=PROBE_WINDOWS as i64 {
            restored = controller.on_window(window(now_ms + i * 100, 600, used(Some(FLOOR))));
        }
        assert!(!controller.probing());
        assert!(restored > Some(FLOOR * 2), "{restored:?}");
    }

    #[test]
    fn a_fixed_ceiling_bounds_the_adaptive_allowance() {
        let config = PacingConfig {
            bytes_per_s_max: 64 * MIB,
            ..adaptive()
        };
        let mut controller = Controller::new(config, 0);
        controller.on_window(window(100, 400, 0));
        let mut rate = Some(FLOOR);
        for i in 0..40 {
            rate = controller.on_window(window(200 + i * 100, 400, used(rate)));
            assert!(rate <= Some(64 * MIB));
        }
        assert_eq!(rate, Some(64 * MIB));
    }
}
