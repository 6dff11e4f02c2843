//! Fuzz target: record-batch parsing and validation
//! (`protocol::record_batch`): header, lengths, CRC32C, magic, records,
//! scanning of concatenated batches, and what the broker does to a produced
//! batch before appending it (see `weir_fuzz::check_batch_bytes`). Each
//! input is also tried with its CRC made valid, so that mutations reach the
//! record decoding behind the CRC check.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[global_allocator]
static ALLOCATOR: weir::alloc_guard::GuardedAllocator = weir::alloc_guard::GuardedAllocator;

fuzz_target!(|data: &[u8]| {
    weir_fuzz::check_batch_bytes(data);
    if let Some(fixed) = weir_fuzz::with_valid_crc(data) {
        weir_fuzz::check_batch_bytes(&fixed);
    }
});
