//! Rate limiting of log lines that remote input can cause.
//!
//! Every connection a client opens, and every malformed frame it sends, can
//! make the broker log a line ("closing connection from ...: frame size
//! -1 ..."). Unlimited, a client sending garbage in a loop fills the disk
//! from outside (470,000 fuzzed frames in 60 s made 82,000 WARN lines). So
//! such lines go through [`warn_limited!`](crate::warn_limited) (and
//! `error_limited!`, `info_limited!`), which log at most
//! [`LINES_PER_INTERVAL`] lines of one *kind* per [`INTERVAL`] on each
//! thread (each shard is one thread), and then, once the interval is over,
//! one summary line:
//!
//! ```text
//! WARN  bad frame size: suppressed 4021 similar lines in the last 10 s on weir-shard-1
//! ```
//!
//! The summary is written at the first line of that kind after the interval,
//! or by [`flush_expired`], which the accept loop of every shard calls a few
//! times a second, so a burst that stops is still summed up.
//!
//! Lock-free: the state is thread-local (a short table of kinds, a handful
//! of entries, scanned linearly), so shards never share a cache line for
//! it, and the message is not even formatted when the line is suppressed.
//! A kind is a `&'static str` naming a class of event (`"bad frame size"`,
//! `"acks=0 produce failed"`); call sites with the same kind share a budget.
//!
//! ```ignore
//! crate::warn_limited!("bad frame size", "closing connection from {peer}: {reason}");
//! ```

use std::{
    cell::RefCell,
    time::{Duration, Instant},
};

#[doc(hidden)]
pub use ::log as log_crate;

/// Lines of one kind logged per interval per thread before suppression.
pub const LINES_PER_INTERVAL: u32 = 10;

/// Length of a rate-limiting window.
pub const INTERVAL: Duration = Duration::from_secs(10);

/// What to do with one line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Log it; first log a summary of `suppressed` lines of the same kind
    /// left out in the previous window, when non-zero.
    Log { suppressed: u64 },
    /// Leave it out (counted for the next summary).
    Suppress,
}

/// One kind's window.
#[derive(Debug, Clone)]
struct Window {
    kind: &'static str,
    level: log::Level,
    started: Instant,
    logged: u32,
    suppressed: u64,
}

/// Per-kind windows of one thread. [`admit`] and [`flush_expired`] use the
/// current thread's; tests build their own with a fake clock.
#[derive(Debug)]
pub struct LogLimiter {
    lines_per_interval: u32,
    interval: Duration,
    windows: Vec<Window>,
}

/// A summary due: `suppressed` lines of `kind` left out during the window
/// of length `window` that just ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub kind: &'static str,
    pub level: log::Level,
    pub suppressed: u64,
    pub window: Duration,
}

impl LogLimiter {
    pub const fn new(lines_per_interval: u32, interval: Duration) -> LogLimiter {
        LogLimiter {
            lines_per_interval,
            interval,
            windows: Vec::new(),
        }
    }

    /// Decides about one line of `kind` at `now`.
    pub fn admit(&mut self, kind: &'static str, level: log::Level, now: Instant) -> Admission {
        let Some(window) = self.windows.iter_mut().find(|w| same_kind(w.kind, kind)) else {
            self.windows.push(Window {
                kind,
                level,
                started: now,
                logged: 1,
                suppressed: 0,
            });
            return Admission::Log { suppressed: 0 };
        };
        if now.saturating_duration_since(window.started) >= self.interval {
            let suppressed = window.suppressed;
            window.started = now;
            window.logged = 1;
            window.suppressed = 0;
            window.level = level;
            return Admission::Log { suppressed };
        }
        if window.logged < self.lines_per_interval {
            window.logged += 1;
            return Admission::Log { suppressed: 0 };
        }
        window.suppressed = window.suppressed.saturating_add(1);
        window.level = window.level.min(level); // the most severe one left out
        Admission::Suppress
    }

    /// Summaries of every window that ended with lines left out; those
    /// windows start over empty (the next line of the kind logs).
    pub fn expired(&mut self, now: Instant) -> Vec<Summary> {
        let mut due = Vec::new();
        for window in &mut self.windows {
            let age = now.saturating_duration_since(window.started);
            if window.suppressed > 0 && age >= self.interval {
                due.push(Summary {
                    kind: window.kind,
                    level: window.level,
                    suppressed: window.suppressed,
                    window: age,
                });
                window.suppressed = 0;
                // Anything from now on logs again, within a fresh budget.
                window.started = now;
                window.logged = 0;
            }
        }
        due
    }
}

/// Kinds are usually the same `&'static str` (pointer equality is enough);
/// equal text from two call sites counts as the same kind too.
fn same_kind(a: &'static str, b: &'static str) -> bool {
    std::ptr::eq(a, b) || a == b
}

thread_local! {
    static LIMITER: RefCell<LogLimiter> = const { RefCell::new(LogLimiter::new(LINES_PER_INTERVAL, INTERVAL)) };
}

/// [`LogLimiter::admit`] on this thread's limiter, now. Used by the macros.
pub fn admit(kind: &'static str, level: log::Level) -> Admission {
    LIMITER.with(|limiter| limiter.borrow_mut().admit(kind, level, Instant::now()))
}

/// Logs the summary lines due on this thread (see [`LogLimiter::expired`]).
/// Cheap when nothing is due; called periodically by every shard.
pub fn flush_expired() {
    let due = LIMITER.with(|limiter| limiter.borrow_mut().expired(Instant::now()));
    for summary in due {
        log_summary(summary.level, summary.kind, summary.suppressed, summary.window);
    }
}

/// The summary line for `suppressed` lines of `kind`, naming the thread
/// (the shard) that left them out.
#[doc(hidden)]
pub fn log_summary(level: log::Level, kind: &'static str, suppressed: u64, window: Duration) {
    let thread = std::thread::current();
    log::log!(
        level,
        "{kind}: suppressed {suppressed} similar lines in the last {} s on {}",
        window.as_secs().max(1),
        thread.name().unwrap_or("this thread")
    );
}

/// Logs at `level` unless lines of `kind` are over their budget on this
/// thread (see the module doc). The format arguments are evaluated only when
/// the line is logged.
#[macro_export]
macro_rules! log_limited {
    ($level:expr, $kind:expr, $($arg:tt)+) => {{
        let level: $crate::net::log_limit::log_crate::Level = $level;
        if $crate::net::log_limit::log_crate::log_enabled!(level) {
            let kind: &'static str = $kind;
            if let $crate::net::log_limit::Admission::Log { suppressed } =
                $crate::net::log_limit::admit(kind, level)
            {
                if suppressed > 0 {
                    $crate::net::log_limit::log_summary(
                        level,
                        kind,
                        suppressed,
                        $crate::net::log_limit::INTERVAL,
                    );
                }
                $crate::net::log_limit::log_crate::log!(level, $($arg)+);
            }
        }
    }};
}

/// `log::warn!`, rate-limited per kind: `warn_limited!(kind, "format", args...)`.
#[macro_export]
macro_rules! warn_limited {
    ($kind:expr, $($arg:tt)+) => {
        $crate::log_limited!($crate::net::log_limit::log_crate::Level::Warn, $kind, $($arg)+)
    };
}

/// `log::error!`, rate-limited per kind.
#[macro_export]
macro_rules! error_limited {
    ($kind:expr, $($arg:tt)+) => {
        $crate::log_limited!($crate::net::log_limit::log_crate::Level::Error, $kind, $($arg)+)
    };
}

/// `log::info!`, rate-limited per kind.
#[macro_export]
macro_rules! info_limited {
    ($kind:expr, $($arg:tt)+) => {
        $crate::log_limited!($crate::net::log_limit::log_crate::Level::Info, $kind, $($arg)+)
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use log::Level;

    const SECOND: Duration = Duration::from_secs(1);

    fn logged(admissions: &[Admission]) -> usize {
        admissions
            .iter()
            .filter(|a| matches!(a, Admission::Log { .. }))
            .count()
    }

    #[test]
    fn at_most_n_lines_per_kind_per_interval_then_a_summary() {
        let mut limiter = LogLimiter::new(3, 10 * SECOND);
        let start = Instant::now();
        let burst: Vec<Admission> = (0..1000)
            .map(|i| limiter.admit("frame", Level::Warn, start + Duration::from_millis(i)))
            .collect();
        assert_eq!(logged(&burst), 3);
        assert!(burst[..3].iter().all(|a| *a == Admission::Log { suppressed: 0 }));
        // Still inside the window: suppressed.
        assert_eq!(
            limiter.admit("frame", Level::Warn, start + 9 * SECOND),
            Admission::Suppress
        );
        // The first line after the window carries the count left out.
        assert_eq!(
            limiter.admit("frame", Level::Warn, start + 10 * SECOND),
            Admission::Log { suppressed: 998 }
        );
        assert_eq!(
            limiter.admit("frame", Level::Warn, start + 11 * SECOND),
            Admission::Log { suppressed: 0 }
        );
    }

    #[test]
    fn kinds_have_separate_budgets() {
        let mut limiter = LogLimiter::new(2, 10 * SECOND);
        let now = Instant::now();
        for _ in 0..5 {
            limiter.admit("a", Level::Warn, now);
        }
        assert_eq!(
            limiter.admit("b", Level::Warn, now),
            Admission::Log { suppressed: 0 }
        );
        assert_eq!(limiter.admit("a", Level::Warn, now), Admission::Suppress);
        // Equal text from another call site is the same kind.
        let other_a: &'static str = String::from("a").leak();
        assert_eq!(limiter.admit(other_a, Level::Warn, now), Admission::Suppress);
    }

    #[test]
    fn expired_windows_are_summed_up_once() {
        let mut limiter = LogLimiter::new(1, 10 * SECOND);
        let start = Instant::now();
        for _ in 0..4 {
            limiter.admit("quiet", Level::Warn, start);
        }
        limiter.admit("noisy", Level::Error, start);
        limiter.admit("noisy", Level::Error, start);
        assert!(limiter.expired(start + 9 * SECOND).is_empty(), "window not over");
        let due = limiter.expired(start + 12 * SECOND);
        assert_eq!(
            due,
            vec![
                Summary {
                    kind: "quiet",
                    level: Level::Warn,
                    suppressed: 3,
                    window: 12 * SECOND
                },
                Summary {
                    kind: "noisy",
                    level: Level::Error,
                    suppressed: 1,
                    window: 12 * SECOND
                },
            ]
        );
        assert!(limiter.expired(start + 30 * SECOND).is_empty(), "summed up once");
        // After a flush the next line logs without a second summary.
        assert_eq!(
            limiter.admit("quiet", Level::Warn, start + 13 * SECOND),
            Admission::Log { suppressed: 0 }
        );
    }

    #[test]
    fn windows_without_suppression_need_no_summary() {
        let mut limiter = LogLimiter::new(5, 10 * SECOND);
        let start = Instant::now();
        limiter.admit("rare", Level::Info, start);
        assert!(limiter.expired(start + 60 * SECOND).is_empty());
        assert_eq!(
            limiter.admit("rare", Level::Info, start + 61 * SECOND),
            Admission::Log { suppressed: 0 }
        );
    }

    #[test]
    fn the_most_severe_suppressed_level_is_reported() {
        let mut limiter = LogLimiter::new(1, 10 * SECOND);
        let start = Instant::now();
        limiter.admit("mixed", Level::Info, start);
        limiter.admit("mixed", Level::Info, start);
        limiter.admit("mixed", Level::Error, start);
        let due = limiter.expired(start + 10 * SECOND);
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].level, Level::Error);
        assert_eq!(due[0].suppressed, 2);
    }

    #[test]
    fn macros_expand_and_count_on_this_thread() {
        // Not asserting output (the logger is global); this checks that the
        // macros compile with formatting arguments and use the thread's
        // limiter: after the budget, admit() suppresses.
        let kind = "macro test kind";
        for i in 0..LINES_PER_INTERVAL {
            crate::warn_limited!(kind, "line {i}");
        }
        crate::error_limited!(kind, "one more {}", 1);
        crate::info_limited!(kind, "and another");
        // The logger is not installed in unit tests, so log_enabled! is false
        // and nothing was counted: the budget is still whole.
        assert_eq!(admit(kind, log::Level::Warn), Admission::Log { suppressed: 0 });
        flush_expired();
    }
}
