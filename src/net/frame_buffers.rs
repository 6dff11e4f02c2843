//! Buffers that large request frames are read into, reused.
//!
//! A frame is read into an initialized `Vec<u8>`; a fresh one would be
//! zero-filled first (a memset of every produced byte: 2% of the broker's
//! CPU at 1 GB/s of 512 KiB Produce requests) and, at these sizes, mapped
//! and unmapped by the allocator. Frames of at least
//! [`POOLED_FRAME_BYTES_MIN`] are read into a buffer from this shard's pool
//! instead, and handed on as a [`Bytes`] whose owner returns the buffer to
//! the pool of the thread that drops it (handlers drop frames on their own
//! shard; a batch sent to its owning shard is dropped there, so buffers
//! migrate but are never lost or shared).
//!
//! Invariants: a pooled buffer is always fully initialized (its length is
//! its size class); a frame exposes only the bytes the read filled; each
//! thread keeps at most [`POOLED_BYTES_MAX`] bytes of idle buffers.

use std::cell::RefCell;

use bytes::Bytes;

/// Smaller frames are read into a fresh buffer: zeroing them is cheap and
/// the allocator serves them from its bins.
pub const POOLED_FRAME_BYTES_MIN: usize = 64 << 10;
/// Idle buffers kept per thread, all size classes together.
pub const POOLED_BYTES_MAX: usize = 16 << 20;

thread_local! {
    /// Idle buffers by size class (powers of two from the minimum).
    static POOL: RefCell<Pool> = const { RefCell::new(Pool { classes: Vec::new(), idle_bytes: 0 }) };
}

struct Pool {
    classes: Vec<Vec<Vec<u8>>>,
    idle_bytes: usize,
}

/// The size class of a frame of `size` bytes: the power of two that holds it.
fn class_of(size: usize) -> (usize, usize) {
    let bytes = size.max(POOLED_FRAME_BYTES_MIN).next_power_of_two();
    let index = (bytes.trailing_zeros() - POOLED_FRAME_BYTES_MIN.trailing_zeros()) as usize;
    (index, bytes)
}

/// An initialized buffer of at least `size` bytes to read a frame into.
pub fn take(size: usize) -> Vec<u8> {
    if size < POOLED_FRAME_BYTES_MIN {
        return vec![0u8; size];
    }
    let (index, bytes) = class_of(size);
    let reused = POOL.with(|pool| {
        let mut pool = pool.borrow_mut();
        let buffer = pool.classes.get_mut(index).and_then(Vec::pop);
        if let Some(buffer) = &buffer {
            pool.idle_bytes -= buffer.len();
        }
        buffer
    });
    reused.unwrap_or_else(|| vec![0u8; bytes])
}

/// The first `size` bytes of `buffer` (from [`take`]) as a frame.
pub fn freeze(buffer: Vec<u8>, size: usize) -> Bytes {
    debug_assert!(size <= buffer.len());
    if size < POOLED_FRAME_BYTES_MIN {
        let mut buffer = buffer;
        buffer.truncate(size);
        return Bytes::from(buffer);
    }
    Bytes::from_owner(Pooled { buffer, size })
}

/// A frame's buffer; dropped, it goes back to the dropping thread's pool.
struct Pooled {
    buffer: Vec<u8>,
    size: usize,
}

impl AsRef<[u8]> for Pooled {
    fn as_ref(&self) -> &[u8] {
        &self.buffer[..self.size]
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        let buffer = std::mem::take(&mut self.buffer);
        let (index, bytes) = class_of(buffer.len());
        if bytes != buffer.len() {
            return; // not a pooled size: freed
        }
        // A thread being torn down has no pool any more: then it is freed.
        let _ = POOL.try_with(|pool| {
            let mut pool = pool.borrow_mut();
            if pool.idle_bytes + bytes > POOLED_BYTES_MAX {
                return;
            }
            if pool.classes.len() <= index {
                pool.classes.resize_with(index + 1, Vec::new);
            }
            pool.idle_bytes += bytes;
            pool.classes[index].push(buffer);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn idle_bytes() -> usize {
        POOL.with(|pool| pool.borrow().idle_bytes)
    }

    #[test]
    fn small_frames_are_plain_buffers() {
        let mut buffer = take(100);
        assert_eq!(buffer.len(), 100);
        buffer.fill(7);
        let frame = freeze(buffer, 100);
        assert_eq!(&frame[..], &[7u8; 100][..]);
        drop(frame);
        assert_eq!(idle_bytes(), 0);
    }

    #[test]
    fn large_buffers_come_back_and_expose_only_the_frame() {
        let size = 300 << 10;
        let mut buffer = take(size);
        assert_eq!(buffer.len(), 512 << 10, "rounded up to its class");
        buffer[..size].fill(1);
        let pointer = buffer.as_ptr();
        let frame = freeze(buffer, size);
        assert_eq!(frame.len(), size);
        let slice = frame.slice(10..20);
        drop(frame);
        assert_eq!(idle_bytes(), 0, "a slice still holds the buffer");
        assert_eq!(&slice[..], &[1u8; 10][..]);
        drop(slice);
        assert_eq!(idle_bytes(), 512 << 10);
        // The next frame of that class reuses it, old bytes and all: only
        // what the read fills is exposed.
        let again = take(400 << 10);
        assert_eq!(again.as_ptr(), pointer);
        assert_eq!(idle_bytes(), 0);
        drop(freeze(again, 1 << 16));
        assert_eq!(idle_bytes(), 512 << 10);
    }

    #[test]
    fn idle_buffers_are_bounded() {
        let frames: Vec<Bytes> = (0..(POOLED_BYTES_MAX >> 20) + 4)
            .map(|_| freeze(take(1 << 20), 1 << 20))
            .collect();
        drop(frames);
        assert!(idle_bytes() <= POOLED_BYTES_MAX);
        assert!(idle_bytes() >= POOLED_BYTES_MAX - (1 << 20));
    }
}
