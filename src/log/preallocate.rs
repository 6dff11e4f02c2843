//! Active segments written with zeros ahead of the appends
//! (`segment_preallocate_bytes`).
//!
//! ext4 runs an O_DIRECT write that extends a file synchronously in an
//! io_uring worker thread, and the fdatasync after it commits the journal
//! (the new size and blocks). A write into blocks already written is an
//! overwrite: it completes inline, and its fdatasync is a device cache flush
//! (`weir-tune disk`: ~44 µs against ~85 µs quiet, and milliseconds less
//! while the host writes back). So a task on the shard's bulk queue keeps
//! each written-to active segment zeroed ahead of its append position: a
//! stretch (one 1 MiB zero write), then an fdatasync that makes the new
//! size and blocks durable before any append lands there. One stretch at a
//! time per shard: while a stretch is written and synced, the appends'
//! fdatasyncs on that file commit the journal and wait for the zeros, so
//! stretches are kept short and apart (see ARCHITECTURE.md for what longer
//! and concurrent ones did to the tail).
//!
//! How far ahead grows with the segment: as many bytes as were appended to
//! it, at least `AHEAD_BYTES_MIN`, at most the configured window. A partition
//! that takes a few small writes costs a few hundred KiB of disk, a busy one
//! the whole window.
//!
//! Lives on the partition's shard, one per `PartitionLog`. Invariants:
//! - zeros are written only at or after `writer_end` (the end of every write
//!   the log started in this file) as it was when the stretch was reserved;
//!   an append that would reach a stretch in flight waits for it first
//!   (`PartitionLog::write_through`), so zeros never land on data;
//! - `quiesce` (sealing, reopening) returns once no stretch is in flight and
//!   none will start in that file: truncating the file after it is safe;
//! - the zeros are never data: `Segment::size_bytes` bounds every read,
//!   sealing truncates the file to it, and recovery trims zero padding.

use std::{
    cell::{Cell, RefCell},
    path::{Path, PathBuf},
    rc::Rc,
};

use glommio::{
    io::{DmaBuffer, DmaFile},
    sync::Semaphore,
    TaskQueueHandle,
};

use super::partition::align_up;

/// Bytes of one zero write (one shared buffer per shard).
const ZERO_WRITE_BYTES: usize = 1 << 20;
/// Stretches start at multiples of this (a multiple of every O_DIRECT
/// alignment).
const START_ALIGNMENT: u64 = 4096;
/// Least distance kept zeroed ahead of a segment's appends.
const AHEAD_BYTES_MIN: u64 = 256 << 10;
/// Most bytes zeroed before one fdatasync. Longer stretches are bursts the
/// appends queue behind (8 MiB, partitions zeroing at once: acks=all p99 at
/// 10k msgs/s 13-22 ms against 2.2-5.9 ms without zeroing); shorter ones,
/// more journal commits.
const STRETCH_BYTES_MAX: u64 = ZERO_WRITE_BYTES as u64;

thread_local! {
    /// The shard's zero buffer, shared by every stretch in flight.
    static ZEROS: RefCell<Option<Rc<DmaBuffer>>> = const { RefCell::new(None) };
    /// One stretch in flight per shard: partitions that fill at the same
    /// pace would otherwise zero at the same moments, a burst of writes the
    /// appends queue behind.
    static ONE_AT_A_TIME: Rc<Semaphore> = Rc::new(Semaphore::new(1));
}

fn zeros(file: &DmaFile) -> Rc<DmaBuffer> {
    ZEROS.with(|slot| {
        slot.borrow_mut()
            .get_or_insert_with(|| {
                let mut buffer = file.alloc_dma_buffer(ZERO_WRITE_BYTES);
                buffer.as_bytes_mut().fill(0);
                Rc::new(buffer)
            })
            .clone()
    })
}

/// What an append must do before its write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reservation {
    /// Write now.
    Granted,
    /// A stretch of zeros is in flight where the write would land: wait
    /// (`ZeroAhead::wait_idle`) and plan again.
    Wait,
}

#[derive(Default)]
struct State {
    /// The active segment being zeroed ahead, and its size limit.
    file: Option<Rc<DmaFile>>,
    path: PathBuf,
    limit: u64,
    /// Bytes of `file` known written (data or zeros) and synced.
    prepared_end: u64,
    /// End of the furthest write the log started in `file`.
    writer_end: u64,
    /// Start of the stretch being zeroed.
    in_flight: Option<u64>,
    task_running: bool,
    /// A zero write failed (a full disk, say): no more zeroing of this
    /// segment; the next one tries again.
    failed: bool,
    /// The log is being replaced: no more zeroing at all.
    retired: bool,
}

pub struct ZeroAhead {
    /// Window (0: off) and the queue the zeroing runs on.
    config: Cell<Option<(u64, TaskQueueHandle)>>,
    state: RefCell<State>,
    /// Held while a stretch is in flight.
    idle: Semaphore,
}

impl ZeroAhead {
    pub fn new() -> Rc<ZeroAhead> {
        Rc::new(ZeroAhead {
            config: Cell::new(None),
            state: RefCell::new(State::default()),
            idle: Semaphore::new(1),
        })
    }

    /// Zero up to `window_bytes` ahead (0: off) on `queue`.
    pub fn configure(&self, window_bytes: u64, queue: TaskQueueHandle) {
        self.config
            .set((window_bytes > 0).then_some((window_bytes, queue)));
    }

    /// An append is about to write `[.., end)` of the active segment `file`
    /// (whose size is limited to `limit` bytes).
    pub fn reserve(&self, file: &Rc<DmaFile>, path: &Path, limit: u64, end: u64) -> Reservation {
        let mut state = self.state.borrow_mut();
        let same_file = state.file.as_ref().is_some_and(|f| Rc::ptr_eq(f, file));
        if !same_file {
            // A new active segment (a roll or a reopen): nothing of it is
            // zeroed yet; `quiesce` ended the previous file's stretches.
            debug_assert!(state.in_flight.is_none(), "quiesced before the segment changed");
            state.file = Some(file.clone());
            state.path = path.to_path_buf();
            state.prepared_end = 0;
            state.writer_end = 0;
            state.failed = false;
        }
        state.limit = limit;
        if state.in_flight.is_some_and(|start| end > start) {
            return Reservation::Wait;
        }
        state.writer_end = state.writer_end.max(end);
        Reservation::Granted
    }

    /// Waits until no stretch is in flight.
    pub async fn wait_idle(&self) {
        // Never closed, so acquiring only fails if it is: then not waiting
        // is right too.
        let _idle = self.idle.acquire_permit(1).await;
    }

    /// After an append's write: starts the zeroing task if the segment is
    /// not zeroed far enough ahead.
    pub fn wrote(self: &Rc<Self>) {
        let Some((window, queue)) = self.config.get() else {
            return;
        };
        {
            let mut state = self.state.borrow_mut();
            if state.file.is_none()
                || state.task_running
                || state.failed
                || state.retired
                || next_stretch(&state, window, true).is_none()
            {
                return;
            }
            state.task_running = true;
        }
        let this = self.clone();
        let spawned = glommio::spawn_local_into(async move { this.run(window).await }, queue);
        if let Ok(task) = spawned {
            task.detach();
        } else {
            self.state.borrow_mut().task_running = false;
        }
    }

    /// Stops zeroing `file`'s current segment and waits for a stretch in
    /// flight; `retire` also stops it for good (the log is being replaced).
    pub async fn quiesce(&self, retire: bool) {
        {
            let mut state = self.state.borrow_mut();
            state.file = None;
            state.retired |= retire;
        }
        self.wait_idle().await;
    }

    /// The zeroing task: stretch after stretch until far enough ahead,
    /// whichever segment is active when its turn comes, until a write fails.
    async fn run(self: Rc<Self>, window: u64) {
        loop {
            // Chosen once it is this log's turn, so the stretch is not
            // reserved while the appends go on.
            let shard_turn = ONE_AT_A_TIME.with(Rc::clone);
            let _turn = shard_turn.acquire_permit(1).await;
            let (file, start, end, path) = {
                let mut state = self.state.borrow_mut();
                let stretch = next_stretch(&state, window, false).filter(|_| !state.failed && !state.retired);
                let (Some(file), Some((start, end))) = (state.file.clone(), stretch) else {
                    state.task_running = false;
                    return;
                };
                state.in_flight = Some(start);
                (file, start, end, state.path.clone())
            };
            let idle = self.idle.try_acquire_permit(1);
            debug_assert!(idle.is_ok(), "one zeroing task per log");
            let result = zero(&file, start, end).await;
            let mut state = self.state.borrow_mut();
            state.in_flight = None;
            drop(idle);
            match result {
                Ok(()) => {
                    // Not if the segment was sealed meanwhile.
                    if state.file.as_ref().is_some_and(|f| Rc::ptr_eq(f, &file)) {
                        state.prepared_end = state.prepared_end.max(end);
                    }
                }
                Err(e) => {
                    crate::warn_limited!(
                        "segment zeroing failed",
                        "{}: zeroing ahead of appends stopped for this segment: {e}",
                        path.display()
                    );
                    // Only if it is still the active segment: a new one
                    // tries again.
                    if state.file.as_ref().is_some_and(|f| Rc::ptr_eq(f, &file)) {
                        state.failed = true;
                    }
                }
            }
        }
    }
}

/// The next stretch to zero, `[start, end)`: from where the zeros (or the
/// appends) end up to `ahead` bytes past the appends, in whole zero writes,
/// at most `STRETCH_BYTES_MAX`, not past the segment's limit. None when the
/// segment is zeroed that far already or, for a `refill`, still at least half
/// as far (so a busy segment is zeroed in long stretches, not one per write).
fn next_stretch(state: &State, window: u64, refill: bool) -> Option<(u64, u64)> {
    let ahead = state
        .writer_end
        .clamp(AHEAD_BYTES_MIN, window.max(AHEAD_BYTES_MIN));
    let wanted = if refill { ahead / 2 } else { ahead };
    if state.prepared_end.saturating_sub(state.writer_end) >= wanted {
        return None;
    }
    // Never right at the appends (the first stretch of a segment, or after
    // the zeroing fell behind): the next append rewrites the last block and
    // goes on from there, and would wait for the whole stretch. What the
    // appends write meanwhile goes into fresh blocks, as without zeroing.
    let start = if state.prepared_end >= state.writer_end + ahead / 4 {
        state.prepared_end
    } else {
        align_up(state.writer_end + ahead / 2, START_ALIGNMENT)
    };
    let target = (state.writer_end + ahead).min(state.limit);
    if start >= target {
        return None;
    }
    let length = align_up(target - start, ZERO_WRITE_BYTES as u64).min(STRETCH_BYTES_MAX);
    Some((start, start + length))
}

/// Writes zeros over `[start, end)` of `file` and fdatasyncs it.
async fn zero(file: &DmaFile, start: u64, end: u64) -> Result<(), String> {
    super::fault::check("log::preallocate::write").map_err(|e| format!("write at {start}: {e}"))?;
    let buffer = zeros(file);
    let mut position = start;
    while position < end {
        let written = file
            .write_rc_at(buffer.clone(), position)
            .await
            .map_err(|e| format!("write at {position}: {e}"))?;
        if written != ZERO_WRITE_BYTES {
            return Err(format!("short write at {position}: {written} bytes"));
        }
        position += ZERO_WRITE_BYTES as u64;
    }
    file.fdatasync().await.map_err(|e| format!("fdatasync: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const KIB: u64 = 1 << 10;
    const MIB: u64 = 1 << 20;
    const GIB: u64 = 1 << 30;

    fn stretch(writer_end: u64, prepared_end: u64, limit: u64, refill: bool) -> Option<(u64, u64)> {
        let state = State {
            writer_end,
            prepared_end,
            limit,
            ..Default::default()
        };
        next_stretch(&state, 16 * MIB, refill)
    }

    #[test]
    fn a_fresh_segment_is_zeroed_a_little_ahead_in_whole_zero_writes() {
        // Not right at the appends, which go on meanwhile.
        assert_eq!(stretch(4 * KIB, 0, GIB, true), Some((132 * KIB, 132 * KIB + MIB)));
        assert_eq!(stretch(0, 0, GIB, true), Some((128 * KIB, 128 * KIB + MIB)));
        // At a multiple of 4 KiB, whatever the appends' end.
        assert_eq!(stretch(625_152, 0, MIB, true), Some((937_984, 937_984 + MIB)));
    }

    #[test]
    fn the_distance_ahead_grows_with_the_segment_up_to_the_window() {
        // 4 MiB written: 4 MiB ahead, one zero write per stretch.
        assert_eq!(stretch(4 * MIB, 5 * MIB, GIB, false), Some((5 * MIB, 6 * MIB)));
        // 100 MiB written: the 16 MiB window.
        assert_eq!(
            stretch(100 * MIB, 110 * MIB, GIB, false),
            Some((110 * MIB, 111 * MIB))
        );
        assert_eq!(stretch(100 * MIB, 116 * MIB, GIB, false), None);
    }

    #[test]
    fn a_refill_waits_until_half_the_distance_is_used() {
        assert_eq!(stretch(100 * MIB, 116 * MIB, GIB, true), None);
        assert_eq!(stretch(107 * MIB, 116 * MIB, GIB, true), None);
        assert_eq!(
            stretch(109 * MIB, 116 * MIB, GIB, true),
            Some((116 * MIB, 117 * MIB))
        );
    }

    #[test]
    fn zeroing_stops_at_the_segment_limit() {
        assert_eq!(
            stretch(GIB - 8 * MIB, GIB - MIB, GIB, false),
            Some((GIB - MIB, GIB))
        );
        assert_eq!(stretch(GIB - 4 * KIB, GIB, GIB, false), None);
    }

    #[test]
    fn zeroing_that_fell_behind_resumes_well_past_the_appends() {
        // The appends passed the zeros (or nearly did): half the distance
        // past them, so the next appends do not run into the stretch.
        assert_eq!(
            stretch(50 * MIB, 10 * MIB, GIB, false),
            Some((58 * MIB, 59 * MIB))
        );
        assert_eq!(
            stretch(100 * MIB, 101 * MIB, GIB, false),
            Some((108 * MIB, 109 * MIB))
        );
    }
}
