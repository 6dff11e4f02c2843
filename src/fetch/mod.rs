//! The fetch path's per-shard machinery that is not storage: incremental
//! fetch sessions (KIP-227). The tail cache and read plans live in `log/`
//! (the appender feeds them); the Fetch handler in `handlers/fetch.rs` ties
//! these together.

pub mod session;
