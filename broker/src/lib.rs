//! weir-broker: the shard-per-core Kafka-compatible broker.
//!
//! `shard` (per-core state, routing, mesh), `network` (listeners, framing,
//! dispatch), `handlers` (one module per Kafka API), `log` (the partition log),
//! `metadata` (the topic catalog), `server` (start-up and shutdown).

pub mod cli;
pub mod client;
pub mod config;
pub mod deadline;
pub mod error;
pub mod groups;
pub mod handlers;
pub mod limits;
pub mod log;
pub mod metadata;
pub mod network;
pub mod partitions;
pub mod server;
pub mod shard;
