//! Cluster metadata: the topic catalog (names, ids, partition-to-shard
//! assignment, topic configs) and its durable store.
//! Shard 0 is the only writer; every shard holds a read-only `Arc` snapshot
//! that shard 0 replaces by broadcasting over the mesh.

pub mod catalog;
pub mod legacy;
pub mod store;
pub mod topic_config;

pub use catalog::{Catalog, TopicMeta};
pub use topic_config::TopicConfig;
