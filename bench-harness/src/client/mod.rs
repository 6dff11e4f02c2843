//! The Kafka wire, as weir-bench speaks it.
//!
//! - [`frame`]: size-prefixed frames, request headers, response decoding,
//!   and the incremental frame buffer both clients read through.
//! - [`versions`]: the API versions weir-bench implements and the choice,
//!   per broker, of the highest version both sides speak.
//! - [`errors`]: Kafka error codes by name, for reports.
//! - [`blocking`]: a synchronous client for the control plane, used by the
//!   main thread before and after a run (ApiVersions, Metadata,
//!   CreateTopics, ListOffsets). It is never on the data path.
//! - [`cluster`]: discovery: the brokers, the partition leaders, topic
//!   creation, offsets.
//! - [`connection`]: the async data-plane connection on a glommio executor
//!   (a socket with separate read and write halves, so one task can keep
//!   writing requests while another reads responses).

pub mod blocking;
pub mod cluster;
pub mod connection;
pub mod errors;
pub mod frame;
pub mod versions;
