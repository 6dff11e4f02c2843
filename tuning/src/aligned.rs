//! Page-aligned, heap-allocated I/O buffers for O_DIRECT (the kernel wants
//! memory aligned to the device's DMA alignment: 512 or 4096 here; we always
//! align to [`ALIGNMENT_BYTES`], which satisfies both).

use std::{alloc::Layout, ptr::NonNull};

/// Alignment of every buffer: a page, enough for any O_DIRECT device.
pub const ALIGNMENT_BYTES: usize = 4096;

/// An owned, zero-initialised buffer aligned to `ALIGNMENT_BYTES`.
pub struct AlignedBuffer {
    pointer: NonNull<u8>,
    layout: Layout,
}

// SAFETY: the buffer is uniquely owned heap memory, like a Box<[u8]>.
unsafe impl Send for AlignedBuffer {}

impl AlignedBuffer {
    pub fn zeroed(length_bytes: usize) -> Result<AlignedBuffer, String> {
        if length_bytes == 0 {
            return Err("zero-length aligned buffer".into());
        }
        let layout = Layout::from_size_align(length_bytes, ALIGNMENT_BYTES)
            .map_err(|e| format!("buffer of {length_bytes} bytes: {e}"))?;
        // SAFETY: the layout has a non-zero size.
        let pointer = unsafe { std::alloc::alloc_zeroed(layout) };
        let pointer =
            NonNull::new(pointer).ok_or_else(|| format!("cannot allocate {length_bytes} aligned bytes"))?;
        Ok(AlignedBuffer { pointer, layout })
    }

    /// A buffer filled with pseudo-random bytes (`seed` varies them), so
    /// that no layer (hypervisor zero detection, compressing storage) can
    /// shortcut the writes of a benchmark.
    pub fn patterned(length_bytes: usize, seed: u64) -> Result<AlignedBuffer, String> {
        let mut buffer = AlignedBuffer::zeroed(length_bytes)?;
        let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        for chunk in buffer.as_mut_slice().chunks_mut(8) {
            // xorshift64: fast, good enough to defeat zero/dedup detection.
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let bytes = state.to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
        Ok(buffer)
    }

    pub fn len(&self) -> usize {
        self.layout.size()
    }

    pub fn as_ptr(&self) -> *const u8 {
        self.pointer.as_ptr()
    }

    pub fn as_mut_ptr(&mut self) -> *mut u8 {
        self.pointer.as_ptr()
    }

    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: `pointer` owns `len()` initialised bytes.
        unsafe { std::slice::from_raw_parts_mut(self.pointer.as_ptr(), self.len()) }
    }
}

impl Drop for AlignedBuffer {
    fn drop(&mut self) {
        // SAFETY: allocated in `zeroed` with this layout.
        unsafe { std::alloc::dealloc(self.pointer.as_ptr(), self.layout) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_are_page_aligned_and_patterned_ones_are_not_zero() {
        let mut buffer = AlignedBuffer::patterned(64 * 1024 + 3, 7).unwrap();
        assert_eq!(buffer.as_ptr() as usize % ALIGNMENT_BYTES, 0);
        assert!(buffer.as_mut_slice().iter().any(|&byte| byte != 0));
        let mut zeroed = AlignedBuffer::zeroed(4096).unwrap();
        assert!(zeroed.as_mut_slice().iter().all(|&byte| byte == 0));
        assert!(AlignedBuffer::zeroed(0).is_err());
    }
}
