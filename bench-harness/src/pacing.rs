//! When each message is sent, and which messages go into the next request.
//!
//! **Open loop** (`--rate`): message `k` of a producer connection is
//! *scheduled* at `start + phase + k / rate`, whatever happened before. Its
//! latency is measured from that scheduled time, not from when it actually
//! left: if the broker (or the generator) stalls, messages due during the
//! stall wait, and their waiting counts. Measuring from the actual send time
//! instead would let a stalled system slow down its own load generator and
//! hide the stall (coordinated omission, as Gil Tene named it).
//!
//! **Closed loop**: every message is due at once; the in-flight limit is the
//! only pacing, and latency is measured from when the request was built.
//!
//! The [`Batcher`] turns due messages into one request: consecutive
//! messages go round-robin over the connection's partitions, and a
//! partition's batch closes before its values would exceed `--batch-bytes`
//! (it always takes at least one message). With `--linger-ms`, a request
//! waits until its oldest message has lingered that long or a batch is full.
//! All of this is pure arithmetic on nanoseconds, tested below.

use crate::payload::Payloads;

/// The schedule of one producer connection.
#[derive(Clone, Debug)]
pub struct Schedule {
    start_ns: u64,
    /// `None`: closed loop (everything is due now).
    interval_ns: Option<f64>,
    /// Messages after this many are never due (set by `--messages`, and
    /// when the run stops).
    end_count: Option<u64>,
}

impl Schedule {
    pub fn closed_loop() -> Schedule {
        Schedule {
            start_ns: 0,
            interval_ns: None,
            end_count: None,
        }
    }

    /// `rate_msgs_per_s` for this connection; `phase` in [0, 1) shifts the
    /// first message by a fraction of an interval so connections do not
    /// send in lockstep.
    pub fn open_loop(start_ns: u64, rate_msgs_per_s: f64, phase: f64) -> Schedule {
        assert!(rate_msgs_per_s > 0.0 && (0.0..1.0).contains(&phase));
        let interval_ns = 1e9 / rate_msgs_per_s;
        Schedule {
            start_ns: start_ns + (phase * interval_ns) as u64,
            interval_ns: Some(interval_ns),
            end_count: None,
        }
    }

    /// At most `messages` messages in all (`--messages`): the schedule is
    /// exhausted once they were taken, whether or not the run has stopped.
    pub fn limit(&mut self, messages: u64) {
        self.end_count = Some(self.end_count.map_or(messages, |end| end.min(messages)));
    }

    pub fn is_open_loop(&self) -> bool {
        self.interval_ns.is_some()
    }

    /// When message `index` is due (closed loop: `None`, i.e. now).
    pub fn due_at_ns(&self, index: u64) -> Option<u64> {
        self.interval_ns
            .map(|interval| self.start_ns + (index as f64 * interval) as u64)
    }

    /// How many messages are due at `now_ns` (capped by the end).
    pub fn due_count(&self, now_ns: u64) -> u64 {
        let due = match self.interval_ns {
            None => u64::MAX,
            Some(_) if now_ns < self.start_ns => 0,
            Some(interval) => ((now_ns - self.start_ns) as f64 / interval) as u64 + 1,
        };
        self.end_count.map_or(due, |end| due.min(end))
    }

    /// No message scheduled after `stop_ns` will be sent (nor after a
    /// `limit`). Closed loop: nothing more at all. Calling it again with the
    /// same `stop_ns` changes nothing.
    pub fn stop_at(&mut self, stop_ns: u64) {
        self.end_count = Some(if self.is_open_loop() {
            // Already capped by a limit or an earlier stop.
            self.due_count(stop_ns)
        } else {
            0
        });
    }

    /// How many messages will ever be due, once the run stopped (or a
    /// limit was set).
    pub fn end_count(&self) -> Option<u64> {
        self.end_count
    }

    /// Whether every message that will ever be due has been taken.
    pub fn exhausted(&self, next_index: u64) -> bool {
        self.end_count.is_some_and(|end| next_index >= end)
    }
}

/// Latency in µs (at least 1) of a message scheduled at `scheduled_ns` and
/// completed at `completed_ns`: the coordinated-omission-corrected latency
/// in open loop, where `scheduled_ns` is the slot in the schedule.
pub fn latency_us(scheduled_ns: u64, completed_ns: u64) -> u64 {
    (completed_ns.saturating_sub(scheduled_ns) / 1_000).max(1)
}

/// What the writer should do next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Next {
    /// `Batcher::slots` holds the next request's messages.
    Send,
    /// Nothing to send before this time (ns).
    WaitUntil(u64),
    /// The schedule is exhausted and everything has been sent.
    Done,
}

/// Chooses the messages of the next request for one producer connection.
pub struct Batcher {
    partitions: usize,
    batch_bytes: usize,
    linger_ns: u64,
    /// The next message index not yet in a request.
    pub next_index: u64,
    /// Message indexes of the next request, per partition slot.
    pub slots: Vec<Vec<u64>>,
}

impl Batcher {
    pub fn new(partitions: usize, batch_bytes: usize, linger_ms: u32) -> Batcher {
        assert!(partitions > 0, "a producer connection needs a partition");
        Batcher {
            partitions,
            batch_bytes,
            linger_ns: u64::from(linger_ms) * 1_000_000,
            next_index: 0,
            slots: vec![Vec::new(); partitions],
        }
    }

    /// Plans the next request at `now_ns`.
    pub fn plan(&mut self, now_ns: u64, schedule: &Schedule, payloads: &Payloads) -> Next {
        for slot in &mut self.slots {
            slot.clear();
        }
        let due = schedule.due_count(now_ns);
        if due <= self.next_index {
            if schedule.exhausted(self.next_index) {
                return Next::Done;
            }
            // Open loop (closed loop always has messages due).
            return Next::WaitUntil(schedule.due_at_ns(self.next_index).unwrap_or(now_ns));
        }
        let mut slot_bytes = vec![0usize; self.partitions];
        let mut index = self.next_index;
        let mut full = false;
        while index < due {
            let slot = (index % self.partitions as u64) as usize;
            let bytes = payloads.message_bytes(index);
            if !self.slots[slot].is_empty() && slot_bytes[slot] + bytes > self.batch_bytes {
                full = true;
                break;
            }
            slot_bytes[slot] += bytes;
            self.slots[slot].push(index);
            index += 1;
        }
        if self.linger_ns > 0 && !full && !schedule.exhausted(index) {
            if let Some(oldest_ns) = schedule.due_at_ns(self.next_index) {
                let send_at_ns = oldest_ns + self.linger_ns;
                if now_ns < send_at_ns {
                    for slot in &mut self.slots {
                        slot.clear();
                    }
                    return Next::WaitUntil(send_at_ns);
                }
            }
        }
        self.next_index = index;
        Next::Send
    }

    /// Messages planned by the last `plan` returning `Send`.
    #[cfg(test)]
    pub fn planned(&self) -> usize {
        self.slots.iter().map(Vec::len).sum()
    }
}

#[cfg(test)]
mod tests {
    use hdrhistogram::Histogram;

    use super::*;
    use crate::cli::PayloadKind;

    const MS: u64 = 1_000_000;

    fn payloads(bytes: u32) -> Payloads {
        Payloads::new(PayloadKind::Zeros, bytes, bytes, 1)
    }

    #[test]
    fn open_loop_schedule_counts_due_messages() {
        let mut schedule = Schedule::open_loop(1_000 * MS, 1_000.0, 0.0);
        assert_eq!(schedule.due_count(999 * MS), 0);
        assert_eq!(schedule.due_count(1_000 * MS), 1);
        assert_eq!(schedule.due_count(1_999 * MS), 1_000);
        assert_eq!(schedule.due_at_ns(10), Some(1_010 * MS));
        schedule.stop_at(1_500 * MS);
        assert_eq!(schedule.due_count(9_000 * MS), 501);
        assert!(schedule.exhausted(501) && !schedule.exhausted(500));
    }

    #[test]
    fn a_message_limit_ends_the_schedule_before_or_at_the_stop() {
        let payloads = payloads(1_000);
        // Closed loop, 4 partitions, 10 messages per batch: 100 in all.
        let mut schedule = Schedule::closed_loop();
        schedule.limit(100);
        let mut batcher = Batcher::new(4, 10_000, 0);
        assert_eq!(batcher.plan(0, &schedule, &payloads), Next::Send);
        assert_eq!(batcher.planned(), 40);
        assert_eq!(batcher.plan(0, &schedule, &payloads), Next::Send);
        assert_eq!(batcher.plan(0, &schedule, &payloads), Next::Send);
        assert_eq!(batcher.planned(), 20);
        assert_eq!(batcher.next_index, 100);
        assert_eq!(batcher.plan(0, &schedule, &payloads), Next::Done);
        // Stopped before the limit: nothing more, as without one.
        let mut stopped = Schedule::closed_loop();
        stopped.limit(100);
        stopped.stop_at(5);
        assert_eq!(
            Batcher::new(4, 10_000, 0).plan(0, &stopped, &payloads),
            Next::Done
        );
        // Open loop: whichever comes first, the limit or the stop.
        let mut open = Schedule::open_loop(0, 1_000.0, 0.0);
        open.limit(300);
        assert_eq!(open.due_count(10_000 * MS), 300);
        open.stop_at(100 * MS);
        assert_eq!(open.end_count(), Some(101));
        open.stop_at(100 * MS);
        assert_eq!(open.end_count(), Some(101));
        let mut late_stop = Schedule::open_loop(0, 1_000.0, 0.0);
        late_stop.limit(300);
        late_stop.stop_at(900 * MS);
        assert_eq!(late_stop.end_count(), Some(300));
    }

    /// The coordinated-omission test: a sender at 1,000 msgs/s stalls for
    /// one second, then catches up. Measured from the schedule, the stall
    /// shows in ~1,000 samples spread up to 1 s; measured from the actual
    /// send, it would vanish (every message "took" 1 ms).
    #[test]
    fn a_stall_shows_in_corrected_latencies_and_not_in_naive_ones() {
        let schedule = Schedule::open_loop(0, 1_000.0, 0.0);
        let service_ns = MS; // each message takes 1 ms once sent
        let stall = (2_000 * MS, 3_000 * MS); // the sender is stuck in here
        let mut corrected = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
        let mut naive = corrected.clone();
        let mut now_ns = 0;
        for index in 0..5_000u64 {
            let due_ns = schedule.due_at_ns(index).unwrap();
            now_ns = now_ns.max(due_ns);
            if now_ns >= stall.0 && now_ns < stall.1 {
                now_ns = stall.1;
            }
            let completed_ns = now_ns + service_ns;
            corrected.record(latency_us(due_ns, completed_ns)).unwrap();
            naive.record(latency_us(now_ns, completed_ns)).unwrap();
        }
        assert_eq!(naive.max(), naive.min(), "naive latencies hide the stall");
        assert!(corrected.max() >= 1_000_000, "max {} µs", corrected.max());
        let stalled = corrected.count_between(100_000, 2_000_000);
        assert!((850..=1_000).contains(&stalled), "{stalled} samples above 100 ms");
        assert!(corrected.value_at_quantile(0.9) > 200_000);
    }

    #[test]
    fn closed_loop_fills_each_partition_batch() {
        let payloads = payloads(1_000);
        let mut batcher = Batcher::new(4, 10_000, 0);
        let schedule = Schedule::closed_loop();
        assert_eq!(batcher.plan(0, &schedule, &payloads), Next::Send);
        assert!(batcher.slots.iter().all(|slot| slot.len() == 10));
        assert_eq!(batcher.slots[1][..3], [1, 5, 9]);
        assert_eq!(batcher.next_index, 40);
        let mut stopped = schedule.clone();
        stopped.stop_at(5);
        assert_eq!(batcher.plan(0, &stopped, &payloads), Next::Done);
    }

    #[test]
    fn open_loop_sends_what_is_due_and_waits_for_the_rest() {
        let payloads = payloads(100);
        let schedule = Schedule::open_loop(0, 1_000.0, 0.0);
        let mut batcher = Batcher::new(2, 1 << 20, 0);
        assert_eq!(batcher.plan(3 * MS + 10, &schedule, &payloads), Next::Send);
        assert_eq!(batcher.planned(), 4);
        assert_eq!(
            batcher.plan(3 * MS + 20, &schedule, &payloads),
            Next::WaitUntil(4 * MS)
        );
        // A backlog larger than a batch is split over several requests.
        let mut small = Batcher::new(2, 300, 0);
        assert_eq!(small.plan(99 * MS, &schedule, &payloads), Next::Send);
        assert_eq!(small.planned(), 6);
    }

    #[test]
    fn linger_holds_a_request_until_the_oldest_message_waited_long_enough() {
        let payloads = payloads(100);
        let schedule = Schedule::open_loop(0, 1_000.0, 0.0);
        let mut batcher = Batcher::new(1, 1 << 20, 5);
        assert_eq!(
            batcher.plan(2 * MS, &schedule, &payloads),
            Next::WaitUntil(5 * MS)
        );
        assert_eq!(batcher.next_index, 0);
        assert_eq!(batcher.plan(5 * MS, &schedule, &payloads), Next::Send);
        assert_eq!(batcher.planned(), 6);
        // A full batch goes at once.
        let mut small = Batcher::new(1, 250, 5);
        assert_eq!(small.plan(2 * MS, &schedule, &payloads), Next::Send);
        assert_eq!(small.planned(), 2);
    }
}
