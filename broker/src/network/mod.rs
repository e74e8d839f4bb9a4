//! The network side of a shard: accepting connections, framing, pipelining
//! and dispatching requests to the API handlers. Everything here runs on the
//! shard that accepted the connection; partition work is forwarded by the
//! handlers, never by the network layer.

pub mod connection;
pub mod dispatch;
pub mod listener;
