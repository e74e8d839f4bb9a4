//! weir-broker: the shard-per-core Kafka-compatible broker.
//!
//! `shard` (per-core state, routing, mesh), `network` (listeners, framing,
//! dispatch), `handlers` (one module per Kafka API), `log` (the partition log),
//! `metadata` (the topic catalog), `quota` (client quotas, per shard), `metrics` (counters and the Prometheus
//! endpoint), `server` (start-up and shutdown), `config`
//! (the `weir serve` flags). The `weir` binary (`src/bin/weir/`) adds the
//! command line and the admin commands, which talk to a running broker through
//! `weir-client`; the library itself holds no Kafka client.

pub mod acl;
pub mod buffer_reuse;
pub mod config;
pub mod deadline;
pub mod error;
pub mod groups;
pub mod handlers;
pub mod journal;
pub mod limits;
pub mod log;
pub mod metadata;
pub mod metrics;
pub mod network;
pub mod partitions;
pub mod quota;
pub mod server;
pub mod shard;
pub mod share;
pub mod test_ports;
pub mod timer;
pub mod txn;
