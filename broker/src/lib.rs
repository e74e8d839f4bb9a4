//! weir-broker: the shard-per-core Kafka-compatible broker.
pub mod groups;
