//! weir-loadgen: a thread-per-core Kafka-protocol load generator.
//!
//! One glommio executor per core (a shard) runs producer and consumer tasks
//! over its own broker connections; the main thread only aggregates
//! per-second intervals and writes reports. Latency is measured from intended
//! send times (coordinated omission corrected). See docs/loadgen.md.

pub mod ceiling;
pub mod cli;
pub mod client;
pub mod committed;
pub mod consumer;
pub mod hiccup;
pub mod machine;
pub mod null_broker;
pub mod producer;
pub mod report;
pub mod runner;
pub mod schedule;
pub mod shard;
pub mod signals;
pub mod stats;
pub mod txn;
pub mod workload;
