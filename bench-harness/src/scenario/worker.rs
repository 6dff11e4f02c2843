//! Worker threads: one pinned glommio executor per thread, running the
//! actors (producer and consumer connections) the plan gave it.
//!
//! What crosses threads is only [`Shared`] (read-only parameters, payloads,
//! the clock) and its [`Control`] atomics, through which the main thread
//! starts and stops the run; measurements leave through the intervals
//! channel. Within a thread, actors share a [`ThreadContext`] (the flow
//! recorders) without locks.
//!
//! glommio pitfalls seen on the development machine are avoided: no
//! `spawn_blocking`, no `Directory` operations (their completions were seen
//! never to arrive); only sockets and timers are used here.

use std::{
    cell::{Cell, RefCell},
    collections::BTreeMap,
    rc::Rc,
    sync::{
        atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering},
        mpsc::Sender,
        Arc, Mutex,
    },
    time::Duration,
};

use glommio::{LocalExecutorBuilder, Placement};

use super::{
    consume,
    plan::{ActorSpec, ThreadPlan},
    produce,
};
use crate::{
    cli::Params,
    clock::RunClock,
    payload::Payloads,
    stats::{recorder::Recorder, Flow, Interval},
};

/// io_uring registered buffer memory per executor: weir-bench does no DMA
/// file I/O, so glommio's minimum is plenty (and stays within small
/// RLIMIT_MEMLOCK limits).
const IO_MEMORY_BYTES: usize = 64 << 10;
/// How often a thread hands finished seconds to the main thread.
const TICK: Duration = Duration::from_millis(200);
/// How often an actor waiting for the start looks at the start flag.
const START_POLL: Duration = Duration::from_millis(1);
/// `start_ns` / `stop_ns` before they are set.
pub const NOT_SET: u64 = u64::MAX;

/// How the main thread steers the workers.
pub struct Control {
    /// Run time (ns) at which the run starts; `NOT_SET` until every actor
    /// is connected.
    pub start_ns: AtomicU64,
    /// Producers send no message scheduled after this (ns); `NOT_SET`
    /// while the measurement runs.
    pub stop_ns: AtomicU64,
    /// Consumers stop now.
    pub stop_consumers: AtomicBool,
    /// Everything stops now (drain timeout, failed setup).
    pub abort: AtomicBool,
    /// When set, consumers stop once every partition reached its target.
    pub targets_final: AtomicBool,
    /// Per partition: the end offset consumers must reach.
    pub targets: Vec<AtomicI64>,
    pub actors_ready: AtomicUsize,
    pub setup_failures: Mutex<Vec<String>>,
    pub producers_running: AtomicUsize,
    pub consumers_running: AtomicUsize,
    pub threads_running: AtomicUsize,
}

impl Control {
    pub fn new(partitions: usize) -> Control {
        Control {
            start_ns: AtomicU64::new(NOT_SET),
            stop_ns: AtomicU64::new(NOT_SET),
            stop_consumers: AtomicBool::new(false),
            abort: AtomicBool::new(false),
            targets_final: AtomicBool::new(false),
            targets: (0..partitions).map(|_| AtomicI64::new(i64::MAX)).collect(),
            actors_ready: AtomicUsize::new(0),
            setup_failures: Mutex::new(Vec::new()),
            producers_running: AtomicUsize::new(0),
            consumers_running: AtomicUsize::new(0),
            threads_running: AtomicUsize::new(0),
        }
    }

    pub fn aborted(&self) -> bool {
        self.abort.load(Ordering::Acquire)
    }

    pub fn setup_failed(&self, message: String) {
        if let Ok(mut failures) = self.setup_failures.lock() {
            failures.push(message);
        }
    }
}

/// Read-only state of a run, shared by every thread.
pub struct Shared {
    pub params: Params,
    pub topic: String,
    pub payloads: Payloads,
    pub clock: RunClock,
    pub control: Control,
}

/// Per-thread state shared by the actors on that thread.
pub struct ThreadContext {
    pub shared: Arc<Shared>,
    recorders: [RefCell<Recorder>; 2],
    actors_left: Cell<usize>,
}

impl ThreadContext {
    pub fn recorder(&self, flow: Flow) -> std::cell::RefMut<'_, Recorder> {
        self.recorders[flow.index()].borrow_mut()
    }

    pub fn now_ns(&self) -> u64 {
        self.shared.clock.now_ns()
    }

    pub fn control(&self) -> &Control {
        &self.shared.control
    }

    /// Waits until the main thread starts the run; `None` if it aborted.
    pub async fn wait_for_start(&self) -> Option<u64> {
        loop {
            let start_ns = self.control().start_ns.load(Ordering::Acquire);
            if start_ns != NOT_SET {
                for recorder in &self.recorders {
                    recorder.borrow_mut().set_start(start_ns);
                }
                return Some(start_ns);
            }
            if self.control().aborted() {
                return None;
            }
            glommio::timer::sleep(START_POLL).await;
        }
    }
}

/// What an actor hands back when it finishes.
#[derive(Debug, Default)]
pub struct ActorTotals {
    /// Messages acknowledged (acks=0: written), per partition.
    pub produced: BTreeMap<i32, u64>,
    /// Records consumed, per partition.
    pub consumed: BTreeMap<i32, u64>,
    /// Where each consumed partition's next fetch would start.
    pub consumer_offsets: BTreeMap<i32, i64>,
    pub crc_errors: u64,
    pub corrupt_batches: u64,
}

impl ActorTotals {
    pub fn merge(&mut self, other: ActorTotals) {
        for (partition, count) in other.produced {
            *self.produced.entry(partition).or_default() += count;
        }
        for (partition, count) in other.consumed {
            *self.consumed.entry(partition).or_default() += count;
        }
        for (partition, offset) in other.consumer_offsets {
            let slot = self.consumer_offsets.entry(partition).or_insert(offset);
            *slot = (*slot).max(offset);
        }
        self.crc_errors += other.crc_errors;
        self.corrupt_batches += other.corrupt_batches;
    }
}

pub type WorkerHandle = glommio::ExecutorJoinHandle<ActorTotals>;

/// Raises the RLIMIT_MEMLOCK soft limit to the hard limit: glommio refuses
/// to start an executor below 512 KiB, and non-root shells often default
/// to less. Failing to raise it is not an error (the executor start says
/// what is missing).
pub fn raise_memlock_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max {
            limit.rlim_cur = limit.rlim_max;
            let _ = libc::setrlimit(libc::RLIMIT_MEMLOCK, &limit);
        }
    }
}

/// Starts one executor thread running `thread`'s actors.
pub fn spawn(
    index: usize,
    thread: ThreadPlan,
    shared: Arc<Shared>,
    sender: Sender<Interval>,
) -> Result<WorkerHandle, String> {
    let placement = match thread.cpu {
        Some(cpu) => Placement::Fixed(cpu),
        None => Placement::Unbound,
    };
    shared.control.threads_running.fetch_add(1, Ordering::AcqRel);
    let control_shared = shared.clone();
    LocalExecutorBuilder::new(placement)
        .name(&format!("weir-bench-{index}"))
        .io_memory(IO_MEMORY_BYTES)
        .spawn(move || async move {
            let totals = run_thread(thread.actors, shared.clone(), sender).await;
            shared.control.threads_running.fetch_sub(1, Ordering::AcqRel);
            totals
        })
        .map_err(|e| {
            control_shared
                .control
                .threads_running
                .fetch_sub(1, Ordering::AcqRel);
            format!(
                "starting executor {index} (glommio needs io_uring and RLIMIT_MEMLOCK of at least \
                 512 KiB; try `ulimit -l 1024`): {e}"
            )
        })
}

async fn run_thread(actors: Vec<ActorSpec>, shared: Arc<Shared>, sender: Sender<Interval>) -> ActorTotals {
    let context = Rc::new(ThreadContext {
        shared,
        recorders: Flow::ALL.map(|flow| RefCell::new(Recorder::new(flow, sender.clone()))),
        actors_left: Cell::new(actors.len()),
    });
    let ticker = glommio::spawn_local({
        let context = context.clone();
        async move {
            while context.actors_left.get() > 0 {
                glommio::timer::sleep(TICK).await;
                let now_ns = context.now_ns();
                for flow in Flow::ALL {
                    context.recorder(flow).roll(now_ns);
                }
            }
        }
    });
    let tasks: Vec<_> = actors
        .into_iter()
        .map(|spec| {
            let context = context.clone();
            glommio::spawn_local(async move {
                let totals = match spec {
                    ActorSpec::Producer(spec) => produce::run(spec, context.clone()).await,
                    ActorSpec::Consumer(spec) => consume::run(spec, context.clone()).await,
                };
                context.actors_left.set(context.actors_left.get() - 1);
                totals
            })
        })
        .collect();
    let mut totals = ActorTotals::default();
    for task in tasks {
        totals.merge(task.await);
    }
    ticker.await;
    for flow in Flow::ALL {
        context.recorder(flow).flush();
    }
    totals
}
