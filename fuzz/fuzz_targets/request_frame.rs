//! Fuzz target: one request frame, through the checks and decoding weir
//! applies to every frame read from a socket (`net::frame`), and for
//! Produce the validation of each partition's record batch
//! (see `weir_fuzz::check_request_frame`). The input is the frame after its
//! 4-byte size prefix.
#![no_main]

use libfuzzer_sys::fuzz_target;

// The broker's allocator: a decoded array sized by a count from the wire is
// mapped lazily, as in production (see weir::alloc_guard).
#[global_allocator]
static ALLOCATOR: weir::alloc_guard::GuardedAllocator = weir::alloc_guard::GuardedAllocator;

fuzz_target!(|data: &[u8]| {
    weir_fuzz::check_request_frame(data);
});
