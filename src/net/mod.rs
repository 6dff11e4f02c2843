//! The socket side: every shard accepts on the same port (SO_REUSEPORT, so
//! the kernel spreads connections over shards), or with `advertise_shards`
//! on a port of its own (`advertise`), and serves each connection on the
//! shard that accepted it.

pub mod advertise;
pub mod connection;
pub mod frame;
pub mod frame_buffers;
pub mod listener;
pub mod log_limit;
pub mod rx_timestamp;
pub mod writer;
