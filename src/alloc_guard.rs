//! The process-wide allocator: the system allocator, except that very large
//! allocations are mapped with `MAP_NORESERVE`.
//!
//! Why: kafka-protocol sizes a decoded array with `Vec::with_capacity(n)`
//! where `n` is the count the client sent. A 12-byte request can claim two
//! billion elements; the system allocator refuses the ~150 GB reservation
//! (it exceeds RAM + swap) and Rust aborts the whole broker. A
//! `MAP_NORESERVE` mapping reserves address space only, so the allocation
//! succeeds, the decoder touches just the elements it actually decodes (each
//! consumes frame bytes, which `request_size_bytes_max` bounds), fails on
//! the short frame, and the mapping is released. Legitimate buffers never
//! reach `HUGE_ALLOCATION_BYTES_MIN`.
//!
//! Runs on every thread; holds no state.

use std::alloc::{GlobalAlloc, Layout, System};

/// Allocations of at least this size are mapped lazily.
pub const HUGE_ALLOCATION_BYTES_MIN: usize = 1 << 30;

pub struct GuardedAllocator;

fn is_huge(layout: &Layout) -> bool {
    layout.size() >= HUGE_ALLOCATION_BYTES_MIN && layout.align() <= 4096
}

unsafe fn map_huge(size: usize) -> *mut u8 {
    let pointer = libc::mmap(
        std::ptr::null_mut(),
        size,
        libc::PROT_READ | libc::PROT_WRITE,
        libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
        -1,
        0,
    );
    if pointer == libc::MAP_FAILED {
        std::ptr::null_mut()
    } else {
        pointer.cast()
    }
}

// SAFETY: huge blocks come from mmap (page-aligned, zeroed) and go back with
// munmap of the same size; everything else is the system allocator's.
unsafe impl GlobalAlloc for GuardedAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if is_huge(&layout) {
            map_huge(layout.size())
        } else {
            System.alloc(layout)
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if is_huge(&layout) {
            map_huge(layout.size())
        } else {
            System.alloc_zeroed(layout)
        }
    }

    unsafe fn dealloc(&self, pointer: *mut u8, layout: Layout) {
        if is_huge(&layout) {
            libc::munmap(pointer.cast(), layout.size());
        } else {
            System.dealloc(pointer, layout)
        }
    }

    unsafe fn realloc(&self, pointer: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let new_layout = Layout::from_size_align_unchecked(new_size, layout.align());
        if !is_huge(&layout) && !is_huge(&new_layout) {
            return System.realloc(pointer, layout, new_size);
        }
        if is_huge(&layout) && is_huge(&new_layout) {
            // Move the mapping; never copy (or touch) a huge reservation.
            let moved = libc::mremap(pointer.cast(), layout.size(), new_size, libc::MREMAP_MAYMOVE);
            return if moved == libc::MAP_FAILED {
                std::ptr::null_mut()
            } else {
                moved.cast()
            };
        }
        let new_pointer = self.alloc(new_layout);
        if !new_pointer.is_null() {
            std::ptr::copy_nonoverlapping(pointer, new_pointer, layout.size().min(new_size));
            self.dealloc(pointer, layout);
        }
        new_pointer
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huge_reservations_succeed_and_small_ones_round_trip() {
        let allocator = GuardedAllocator;
        // SAFETY: layouts are valid; every block is freed with its layout.
        unsafe {
            let huge = Layout::from_size_align(150 << 30, 8).unwrap();
            let pointer = allocator.alloc(huge);
            assert!(!pointer.is_null(), "address space only, nothing committed");
            *pointer = 7;
            let grown = allocator.realloc(pointer, huge, 151 << 30);
            assert_eq!(*grown, 7);
            allocator.dealloc(grown, Layout::from_size_align(151 << 30, 8).unwrap());

            let small = Layout::from_size_align(64, 8).unwrap();
            let pointer = allocator.alloc(small);
            assert!(!pointer.is_null());
            allocator.dealloc(pointer, small);
        }
    }
}
