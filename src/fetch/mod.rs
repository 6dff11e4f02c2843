//! The fetch path's per-shard machinery that is not storage.
//!
//! - `session`: incremental fetch sessions (KIP-227), per shard.
//! - `splice`: moving a file region to a socket with splice(2) on the
//!   blocking pool. Tested, but not on the fetch path yet: on loopback it
//!   measured slower than read + write (1.9-2.0 vs 2.4 GB/s warm, 0.50-0.54
//!   vs 0.44 sender CPU s/GiB; see its module doc). Cold reads today are
//!   either O_DIRECT reads copied into the response (default) or page-cache
//!   regions read inline (`cold_reads_from_page_cache`); the writer is where
//!   splice plugs in once it pays (real NICs). splice still runs on glommio's
//!   blocking pool, whose completions were seen to get lost (see
//!   `crate::log::blocking`): it needs an io_uring variant before use.
//!
//! The tail cache and read plans live in `log/` (the appender feeds them);
//! the Fetch handler in `handlers/fetch.rs` ties these together.

pub mod session;
pub mod splice;
