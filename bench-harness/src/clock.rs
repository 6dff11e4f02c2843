//! One clock for every thread of a run.
//!
//! Schedules, samples and per-second buckets are all nanoseconds since one
//! monotonic instant taken before any worker starts ([`RunClock::now_ns`]),
//! so numbers from different threads compare directly. Message values carry
//! wall-clock microseconds (so that a consumer in another process can read
//! them too), derived from the same monotonic reading plus the wall time at
//! that instant: within one process the two never disagree, whatever NTP does
//! to the wall clock during a run.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

#[derive(Clone, Copy, Debug)]
pub struct RunClock {
    base: Instant,
    wall_base_us: u64,
}

impl RunClock {
    pub fn new() -> RunClock {
        let base = Instant::now();
        let wall_base_us = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
        RunClock { base, wall_base_us }
    }

    /// Nanoseconds since the clock was created.
    pub fn now_ns(&self) -> u64 {
        u64::try_from(self.base.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// Wall-clock microseconds since the UNIX epoch at run time `ns`.
    pub fn wall_us_at(&self, ns: u64) -> u64 {
        self.wall_base_us + ns / 1_000
    }

    /// The run time (ns) of a wall-clock microsecond reading, saturating at 0.
    pub fn ns_of_wall_us(&self, wall_us: u64) -> u64 {
        wall_us.saturating_sub(self.wall_base_us).saturating_mul(1_000)
    }

    /// Milliseconds since the UNIX epoch when the clock was created.
    pub fn wall_base_ms(&self) -> u64 {
        self.wall_base_us / 1_000
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wall_and_run_time_convert_both_ways() {
        let clock = RunClock::new();
        let ns = 5_000_000_000;
        let wall_us = clock.wall_us_at(ns);
        assert_eq!(clock.ns_of_wall_us(wall_us), ns);
        assert!(clock.now_ns() < 60_000_000_000);
    }
}
