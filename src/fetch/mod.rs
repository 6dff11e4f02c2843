//! The fetch path's per-shard machinery that is not storage.
//!
//! - `pacing`: while producers are active, holds catch-up responses (read
//!   below the tail cache) to an allowance that a controller on shard 0
//!   moves with the produce latency it causes.
//! - `session`: incremental fetch sessions (KIP-227), per shard.
//! - `splice`: sending a file region planned by the log (cold data whose
//!   pages are in the page cache) file → pipe → socket with splice(2), so
//!   those record bytes never enter user space.
//!
//! The tail cache and read plans live in `log/` (the appender feeds the
//! cache; `log::region` decides between a spliced region and an O_DIRECT
//! read); the Fetch handler in `handlers/fetch.rs` ties these together.

pub mod pacing;
pub mod session;
pub mod splice;
