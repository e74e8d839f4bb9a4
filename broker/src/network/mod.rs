//! The network side of a shard: accepting connections, framing, pipelining
//! and dispatching requests to the API handlers. Everything here runs on the
//! shard that accepted the connection; partition work is forwarded by the
//! handlers, never by the network layer. `metrics` is the HTTP endpoint that
//! exposes the shards' counters.

pub mod connection;
pub mod dispatch;
pub mod frame_read;
pub mod frame_write;
pub mod listener;
pub mod metrics;
pub mod sasl;
pub mod tls;

/// Who is on the other end of a connection, and which node it addressed.
#[derive(Debug, Clone)]
pub struct Peer {
    pub addr: std::net::SocketAddr,
    /// The shard whose advertised port the client connected to (zero-hop mode): the
    /// client takes this connection for that one node. `None` on the bootstrap
    /// address, and in single-address mode, where the whole broker is one node.
    pub node: Option<usize>,
    /// The connection came in on the TLS listener: Metadata, FindCoordinator
    /// and DescribeCluster advertise the TLS ports to it.
    pub tls: bool,
    /// `User:name` once SASL authentication succeeded (`None` when the listener
    /// needs none). Where an authorization check reads who is asking.
    pub principal: Option<std::rc::Rc<str>>,
}
