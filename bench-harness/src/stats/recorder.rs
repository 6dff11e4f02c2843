//! The worker side: one recorder per flow per thread, cheap to call per
//! message (a histogram increment and a few additions).

use std::sync::mpsc::Sender;

use super::{Flow, Interval, LATENCY_US_MAX};

pub struct Recorder {
    flow: Flow,
    sender: Sender<Interval>,
    start_ns: u64,
    current: Interval,
}

impl Recorder {
    pub fn new(flow: Flow, sender: Sender<Interval>) -> Recorder {
        Recorder {
            flow,
            sender,
            start_ns: 0,
            current: Interval::new(flow, 0),
        }
    }

    /// Seconds are counted from `start_ns` (the run start) from now on.
    pub fn set_start(&mut self, start_ns: u64) {
        self.start_ns = start_ns;
    }

    fn second_of(&self, now_ns: u64) -> u64 {
        now_ns.saturating_sub(self.start_ns) / 1_000_000_000
    }

    /// Sends the current interval if `now_ns` is in a later second.
    pub fn roll(&mut self, now_ns: u64) {
        let second = self.second_of(now_ns);
        if second != self.current.second {
            let finished = std::mem::replace(&mut self.current, Interval::new(self.flow, second));
            self.send(finished);
        }
    }

    fn send(&self, interval: Interval) {
        if !interval.is_empty() {
            // The main thread only goes away after every worker finished.
            let _ = self.sender.send(interval);
        }
    }

    /// `count` samples of `latency_us` completed at `now_ns`.
    pub fn record_latency(&mut self, now_ns: u64, latency_us: u64, count: u64) {
        self.roll(now_ns);
        let _ = self
            .current
            .histogram
            .record_n(latency_us.clamp(1, LATENCY_US_MAX), count);
    }

    /// A request left `lag_us` after its oldest message was due.
    pub fn record_send_lag(&mut self, now_ns: u64, lag_us: u64) {
        self.roll(now_ns);
        let _ = self.current.send_lag.record(lag_us.min(LATENCY_US_MAX));
    }

    /// Messages completed at `now_ns`.
    pub fn add_completed(&mut self, now_ns: u64, messages: u64, bytes: u64, wire_bytes: u64) {
        self.roll(now_ns);
        self.current.messages += messages;
        self.current.bytes += bytes;
        self.current.wire_bytes += wire_bytes;
        if messages > 0 {
            self.current.last_completion_ns = self.current.last_completion_ns.max(now_ns);
        }
    }

    pub fn add_request(&mut self, now_ns: u64) {
        self.roll(now_ns);
        self.current.requests += 1;
    }

    /// One error event of `kind`, which cost `messages_failed` messages.
    pub fn add_error(&mut self, now_ns: u64, kind: &str, messages_failed: u64) {
        self.roll(now_ns);
        self.current.messages_failed += messages_failed;
        *self.current.errors.entry(kind.to_string()).or_default() += 1;
    }

    /// Sends whatever the current interval holds.
    pub fn flush(&mut self) {
        let second = self.current.second;
        let finished = std::mem::replace(&mut self.current, Interval::new(self.flow, second));
        self.send(finished);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;

    use super::*;

    #[test]
    fn samples_land_in_the_second_they_completed_in() {
        let (sender, receiver) = mpsc::channel();
        let mut recorder = Recorder::new(Flow::Produce, sender);
        recorder.set_start(10_000_000_000);
        recorder.add_completed(10_500_000_000, 5, 500, 600);
        recorder.record_latency(10_500_000_000, 42, 5);
        recorder.add_completed(11_000_000_001, 1, 100, 120);
        recorder.add_error(12_100_000_000, "TIMEOUT", 3);
        recorder.flush();
        let intervals: Vec<Interval> = receiver.try_iter().collect();
        assert_eq!(intervals.iter().map(|i| i.second).collect::<Vec<_>>(), [0, 1, 2]);
        assert_eq!((intervals[0].messages, intervals[0].histogram.len()), (5, 5));
        assert_eq!(intervals[2].messages_failed, 3);
        assert_eq!(intervals[2].errors["TIMEOUT"], 1);
    }
}
