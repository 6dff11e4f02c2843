//! The main thread during a run: start the workers, wait until every
//! connection is up, start the clock, merge measurements and print progress
//! once per second, then stop in the order the scenario needs:
//!
//! - produce: at the end of the measurement producers stop scheduling; what
//!   is due is still sent and acknowledged (bounded by `--drain-timeout-s`).
//! - consume: consumers stop at the end, or earlier once caught up with
//!   the end offsets taken at the start (`--from earliest`).
//! - e2e: producers stop first; once every acknowledgement is in, the end
//!   offsets are read (ListOffsets) and consumers run until they reach them
//!   (bounded by `--drain-timeout-s`), so every produced record can be
//!   checked off as consumed.
//!
//! Whatever happens, workers are told to abort after the drain timeout, and
//! the main thread waits a bounded time for them.

use std::{
    sync::{atomic::Ordering, mpsc, Arc},
    thread,
    time::{Duration, Instant},
};

use super::{
    plan::Plan,
    worker::{self, ActorTotals, Control, Shared, WorkerHandle},
};
use crate::{
    cli::{Acks, Params, Scenario},
    client::cluster::{Cluster, OFFSET_LATEST},
    clock::RunClock,
    payload::Payloads,
    stats::{aggregate::Aggregate, Flow, Interval},
};

/// How long every connection may take to come up before the run fails.
const SETUP_TIMEOUT_SLACK: Duration = Duration::from_secs(5);
/// The main loop's wake-up period while waiting (progress is per second).
const POLL: Duration = Duration::from_millis(50);
/// Progress for a second is printed this long after it ended (workers hand
/// seconds over every 200 ms).
const PROGRESS_LAG: Duration = Duration::from_millis(300);
/// Extra time workers get to exit after they were told to abort.
const ABORT_GRACE: Duration = Duration::from_secs(10);
/// acks=0 gives no signal of when the broker appended: wait this long
/// before reading end offsets.
const ACKS_NONE_SETTLE: Duration = Duration::from_millis(500);
/// Seed of the payload generator (fixed: runs are comparable).
const PAYLOAD_SEED: u64 = 0x5745_4952; // "WEIR"

/// What a run measured.
pub struct RunResult {
    pub aggregate: Aggregate,
    pub totals: ActorTotals,
    /// Run-clock times (ns): end of warm-up, end of the measurement.
    pub warmup_end_ns: u64,
    pub measure_end_ns: u64,
    /// Per partition: where consumers started, and the end offsets they
    /// had to reach (when known).
    pub start_offsets: Option<Vec<i64>>,
    pub targets: Option<Vec<i64>>,
    /// Whether every consumer reached its target.
    pub caught_up: Option<bool>,
    pub threads: usize,
    pub cpus: Vec<Option<usize>>,
    pub notes: Vec<String>,
}

struct MainLoop {
    receiver: mpsc::Receiver<Interval>,
    aggregate: Aggregate,
    shared: Arc<Shared>,
    start_ns: u64,
    printed_seconds: u64,
    progress: bool,
    /// Warm-up plus duration: no progress lines after it.
    run_seconds: u64,
    /// Every worker dropped its sender (they are all finishing).
    disconnected: bool,
}

impl MainLoop {
    fn control(&self) -> &Control {
        &self.shared.control
    }

    /// Whole seconds since the start, counted `PROGRESS_LAG` late so that
    /// every thread has handed over the second that just ended.
    fn elapsed_s(&self) -> u64 {
        let lag_ns = PROGRESS_LAG.as_nanos() as u64;
        self.shared.clock.now_ns().saturating_sub(self.start_ns + lag_ns) / 1_000_000_000
    }

    /// Merges intervals and prints progress until `done()` or `deadline`.
    /// Returns whether `done()` became true.
    fn pump_until(&mut self, deadline: Instant, done: impl Fn(&Control) -> bool) -> bool {
        loop {
            if done(self.control()) {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            if self.disconnected {
                thread::sleep(Duration::from_millis(1).min(deadline - now));
                continue;
            }
            match self.receiver.recv_timeout(POLL.min(deadline - now)) {
                Ok(interval) => self.aggregate.add(interval),
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => self.disconnected = true,
            }
            let elapsed_s = self.elapsed_s();
            if elapsed_s > self.printed_seconds {
                self.printed_seconds = elapsed_s;
                self.aggregate.finalize_before(elapsed_s.saturating_sub(2));
                if self.progress && elapsed_s <= self.run_seconds {
                    eprintln!("{}", self.aggregate.progress_line(elapsed_s));
                }
            }
        }
    }
}

pub fn execute(
    params: &Params,
    cluster: &Cluster,
    plan: Plan,
    start_offsets: Option<Vec<i64>>,
) -> Result<RunResult, String> {
    let clock = RunClock::new();
    let control = Control::new(cluster.partitions());
    let mut notes = Vec::new();
    let catch_up = params.scenario == Scenario::Consume && params.catches_up_to_end();
    if catch_up {
        let ends = cluster.list_offsets(OFFSET_LATEST)?;
        for (target, end) in control.targets.iter().zip(&ends) {
            target.store(*end, Ordering::Release);
        }
        control.targets_final.store(true, Ordering::Release);
    }
    let shared = Arc::new(Shared {
        params: params.clone(),
        topic: cluster.topic.clone(),
        payloads: Payloads::new(
            params.payload,
            params.message_bytes_min,
            params.message_bytes_max,
            PAYLOAD_SEED,
        ),
        clock,
        control,
    });
    let (sender, receiver) = mpsc::channel();
    let actors: usize = plan.threads.iter().map(|t| t.actors.len()).sum();
    let threads = plan.threads.len();
    let cpus = plan.cpus.clone();
    worker::raise_memlock_limit();
    let mut handles: Vec<WorkerHandle> = Vec::new();
    for (index, thread) in plan.threads.into_iter().enumerate() {
        match worker::spawn(index, thread, shared.clone(), sender.clone()) {
            Ok(handle) => handles.push(handle),
            Err(message) => {
                shared.control.abort.store(true, Ordering::Release);
                join(handles, &shared, Duration::from_secs(5));
                return Err(message);
            }
        }
    }
    drop(sender);

    // Every connection up, or fail before anything is measured.
    let setup_deadline =
        Instant::now() + Duration::from_millis(u64::from(params.request_timeout_ms)) + SETUP_TIMEOUT_SLACK;
    loop {
        let failures = shared
            .control
            .setup_failures
            .lock()
            .map(|f| f.clone())
            .unwrap_or_default();
        if !failures.is_empty() || Instant::now() > setup_deadline {
            shared.control.abort.store(true, Ordering::Release);
            join(handles, &shared, ABORT_GRACE);
            return Err(if failures.is_empty() {
                "connections did not come up in time".to_string()
            } else {
                failures.join("; ")
            });
        }
        if shared.control.actors_ready.load(Ordering::Acquire) == actors {
            break;
        }
        thread::sleep(Duration::from_millis(2));
    }
    let start_ns = clock.now_ns();
    shared.control.start_ns.store(start_ns, Ordering::Release);
    let warmup_end_ns = start_ns + params.warmup_s * 1_000_000_000;
    let run_end = Instant::now() + Duration::from_secs(params.warmup_s + params.duration_s);

    let mut active = Vec::new();
    if params.scenario.produces() {
        active.push(Flow::Produce);
    }
    if params.scenario.consumes() {
        active.push(Flow::Consume);
    }
    let mut main = MainLoop {
        receiver,
        aggregate: Aggregate::new(&active, params.warmup_s, params.duration_s),
        shared: shared.clone(),
        start_ns,
        printed_seconds: 0,
        progress: params.progress,
        disconnected: false,
        run_seconds: params.warmup_s + params.duration_s,
    };
    // The measurement: ends at the deadline, or when every actor is done
    // (a catch-up consumer reached the end offsets).
    let finished_early = main.pump_until(run_end, |control| {
        control.producers_running.load(Ordering::Acquire) == 0
            && control.consumers_running.load(Ordering::Acquire) == 0
    });
    let measure_end_ns = clock
        .now_ns()
        .min(start_ns + (params.warmup_s + params.duration_s) * 1_000_000_000);
    if finished_early && catch_up {
        notes.push("consumers caught up with the end offsets before the duration ended".to_string());
    }
    shared.control.stop_ns.store(measure_end_ns, Ordering::Release);
    let drain_deadline = Instant::now() + Duration::from_secs(params.drain_timeout_s);
    let mut targets = None;
    let mut caught_up = None;
    match params.scenario {
        Scenario::Produce => {
            if !main.pump_until(drain_deadline, |c| {
                c.producers_running.load(Ordering::Acquire) == 0
            }) {
                notes.push("producers did not drain within --drain-timeout-s".to_string());
            }
        }
        Scenario::Consume => {
            shared.control.stop_consumers.store(true, Ordering::Release);
            if catch_up {
                let reached =
                    (0..cluster.partitions()).map(|p| shared.control.targets[p].load(Ordering::Acquire));
                targets = Some(reached.collect());
            }
        }
        Scenario::E2e => {
            let drained = main.pump_until(drain_deadline, |c| {
                c.producers_running.load(Ordering::Acquire) == 0
            });
            if !drained {
                notes.push("producers did not drain within --drain-timeout-s".to_string());
            }
            if params.acks == Acks::None {
                main.pump_until(Instant::now() + ACKS_NONE_SETTLE, |_| false);
            }
            match cluster.list_offsets(OFFSET_LATEST) {
                Ok(ends) => {
                    for (target, end) in shared.control.targets.iter().zip(&ends) {
                        target.store(*end, Ordering::Release);
                    }
                    shared.control.targets_final.store(true, Ordering::Release);
                    targets = Some(ends);
                    let done = main.pump_until(drain_deadline, |c| {
                        c.consumers_running.load(Ordering::Acquire) == 0
                    });
                    if !done {
                        notes.push(
                            "consumers did not reach the end offsets within --drain-timeout-s".to_string(),
                        );
                    }
                }
                Err(message) => notes.push(format!("could not read end offsets after producing: {message}")),
            }
            shared.control.stop_consumers.store(true, Ordering::Release);
        }
    }
    if Instant::now() >= drain_deadline {
        shared.control.abort.store(true, Ordering::Release);
    }
    // Let the workers finish, merging what they still send.
    let exit_deadline = Instant::now().max(drain_deadline) + ABORT_GRACE;
    if !main.pump_until(exit_deadline, |c| c.threads_running.load(Ordering::Acquire) == 0) {
        shared.control.abort.store(true, Ordering::Release);
        notes.push("workers did not exit in time; their last measurements are missing".to_string());
        return Err("workers did not exit in time after the run".to_string());
    }
    let totals = join(handles, &shared, ABORT_GRACE);
    for interval in main.receiver.try_iter() {
        main.aggregate.add(interval);
    }
    main.aggregate.finish();
    if let Some(targets) = &targets {
        let reached = targets.iter().enumerate().all(|(partition, &target)| {
            totals
                .consumer_offsets
                .get(&(partition as i32))
                .is_some_and(|&offset| offset >= target)
        });
        caught_up = Some(reached);
    }
    Ok(RunResult {
        aggregate: main.aggregate,
        totals,
        warmup_end_ns,
        measure_end_ns,
        start_offsets,
        targets,
        caught_up,
        threads,
        cpus,
        notes,
    })
}

/// Joins every worker whose thread has finished (they all have, unless
/// `grace` ran out) and merges their totals.
fn join(handles: Vec<WorkerHandle>, shared: &Shared, grace: Duration) -> ActorTotals {
    let deadline = Instant::now() + grace;
    while shared.control.threads_running.load(Ordering::Acquire) > 0 && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(5));
    }
    let mut totals = ActorTotals::default();
    if shared.control.threads_running.load(Ordering::Acquire) > 0 {
        return totals; // never block on a stuck executor
    }
    for handle in handles {
        match handle.join() {
            Ok(worker_totals) => totals.merge(worker_totals),
            Err(e) => log::error!("a worker thread failed: {e}"),
        }
    }
    totals
}
