//! The socket side: every shard accepts on the same port (glommio binds
//! with SO_REUSEPORT, so the kernel spreads connections over shards) and
//! serves each connection on the shard that accepted it.

pub mod connection;
pub mod frame;
pub mod listener;
pub mod log_limit;
pub mod rx_timestamp;
pub mod writer;
