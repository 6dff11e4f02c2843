//! The socket side: every shard accepts on the same port (glommio binds
//! with SO_REUSEPORT, so the kernel spreads connections over shards) and
//! serves each connection on the shard that accepted it.

pub mod connection;
pub mod listener;
pub mod writer;
