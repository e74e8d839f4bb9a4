//! Cluster metadata: the topic catalog (names, ids, partition-to-shard
//! assignment, topic configs) and its durable store.
//! Shard 0 is the only writer; every shard holds a read-only `Arc` snapshot
//! that shard 0 replaces by broadcasting over the mesh.

pub mod acl;
pub mod catalog;
pub mod client_quotas;
pub mod legacy;
pub mod producer_ids;
pub mod store;
pub mod topic_config;

pub use catalog::{Catalog, TopicMeta};
pub use topic_config::TopicConfig;

/// A small topic config for unit tests that build catalogs by hand.
#[cfg(test)]
pub fn test_topic_config() -> TopicConfig {
    TopicConfig {
        segment_bytes: 1 << 20,
        segment_ms: -1,
        retention_ms: -1,
        retention_bytes: -1,
        flush_messages: i64::MAX,
        flush_ms: 1000,
        max_message_bytes: 1 << 20,
        compression_type: topic_config::CompressionType::Producer,
        queue: topic_config::QueueConfig::unset(),
    }
}
