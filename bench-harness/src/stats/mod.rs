//! Measurements, from the worker threads to the main thread.
//!
//! Each worker thread has one [`recorder::Recorder`] per flow (produce,
//! consume), shared by the actors on that thread (no locks: one thread).
//! Samples go into the interval of the second they completed in (seconds
//! since the run started); when a sample lands in a new second, or a ticker
//! notices the second changed, the finished [`Interval`] is sent to the main
//! thread over a channel. The main thread's [`aggregate::Aggregate`] merges
//! intervals per second (time series), per phase (warm-up samples are kept
//! apart from the measurement) and for the progress line.
//!
//! Latencies are µs in an HdrHistogram of 1 µs to 1 h at 3 significant
//! digits; larger values are clamped to the top (and still counted).

pub mod aggregate;
pub mod recorder;

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use serde::Serialize;

/// Highest latency a histogram tracks (1 hour).
pub const LATENCY_US_MAX: u64 = 3_600_000_000;
/// Significant digits of every latency histogram.
pub const LATENCY_SIGNIFICANT_DIGITS: u8 = 3;

pub fn latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, LATENCY_US_MAX, LATENCY_SIGNIFICANT_DIGITS)
        .expect("constant histogram bounds are valid")
}

/// A direction of data.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Flow {
    Produce,
    Consume,
}

impl Flow {
    pub const ALL: [Flow; 2] = [Flow::Produce, Flow::Consume];

    pub fn name(self) -> &'static str {
        match self {
            Flow::Produce => "produce",
            Flow::Consume => "consume",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

/// Everything one thread measured for one flow during one second.
#[derive(Clone, Debug)]
pub struct Interval {
    pub flow: Flow,
    /// Seconds since the run started (0 = the first second).
    pub second: u64,
    /// Messages completed: acknowledged (acks=0: written) or consumed.
    pub messages: u64,
    /// Their value bytes.
    pub bytes: u64,
    /// Their record batch bytes as on the wire (compressed, headers).
    pub wire_bytes: u64,
    pub requests: u64,
    /// Messages that were sent but not acknowledged.
    pub messages_failed: u64,
    /// Error events by kind (Kafka error name, `DISCONNECT`, `TIMEOUT`, ...).
    pub errors: BTreeMap<String, u64>,
    /// When the last sample of this interval completed (run ns).
    pub last_completion_ns: u64,
    pub histogram: Histogram<u64>,
    /// Producers in open loop: how late each request left after its oldest
    /// message was due (µs), waiting for an in-flight slot included.
    pub send_lag: Histogram<u64>,
}

impl Interval {
    pub fn new(flow: Flow, second: u64) -> Interval {
        Interval {
            flow,
            second,
            messages: 0,
            bytes: 0,
            wire_bytes: 0,
            requests: 0,
            messages_failed: 0,
            errors: BTreeMap::new(),
            last_completion_ns: 0,
            histogram: latency_histogram(),
            send_lag: latency_histogram(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.messages == 0
            && self.requests == 0
            && self.messages_failed == 0
            && self.errors.is_empty()
            && self.histogram.is_empty()
            && self.send_lag.is_empty()
    }

    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }
}
