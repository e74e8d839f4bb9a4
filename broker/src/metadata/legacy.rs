//! Earlier catalog formats, kept so a data directory written by an older Weir
//! still opens: each layout as it was stored, and its conversion to the
//! current `Catalog`. Read-only; `store.rs` always writes the current format.

use std::collections::BTreeMap;

use rkyv::{Archive, Deserialize, Serialize};

use super::acl::AclBinding;
use super::catalog::{ScramCredential, TopicMeta};
use super::client_quotas::ClientQuota;
use super::topic_config::{CompressionType, QueueConfig};
use super::{Catalog, TopicConfig};

/// Format 4 (`WEIRCAT4`): topics without the queue settings.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct CatalogV4 {
    pub cluster_id: String,
    pub version: u64,
    pub topics: BTreeMap<String, TopicMetaV4>,
    pub users: BTreeMap<String, Vec<ScramCredential>>,
    pub quotas: Vec<ClientQuota>,
    pub acls: Vec<AclBinding>,
}

/// A topic as formats 2 to 4 stored it.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct TopicMetaV4 {
    pub name: String,
    pub id: [u8; 16],
    pub partition_shards: Vec<u32>,
    pub partition_replicas: Vec<Vec<u32>>,
    pub config: TopicConfigV4,
}

#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct TopicConfigV4 {
    pub segment_bytes: u64,
    pub segment_ms: i64,
    pub retention_ms: i64,
    pub retention_bytes: i64,
    pub flush_messages: i64,
    pub flush_ms: i64,
    pub max_message_bytes: i32,
    pub compression_type: CompressionType,
}

impl From<TopicMetaV4> for TopicMeta {
    fn from(t: TopicMetaV4) -> Self {
        let c = t.config;
        TopicMeta {
            name: t.name,
            id: t.id,
            partition_shards: t.partition_shards,
            partition_replicas: t.partition_replicas,
            config: TopicConfig {
                segment_bytes: c.segment_bytes,
                segment_ms: c.segment_ms,
                retention_ms: c.retention_ms,
                retention_bytes: c.retention_bytes,
                flush_messages: c.flush_messages,
                flush_ms: c.flush_ms,
                max_message_bytes: c.max_message_bytes,
                compression_type: c.compression_type,
                queue: QueueConfig::unset(),
            },
        }
    }
}

fn upgrade_topics(topics: BTreeMap<String, TopicMetaV4>) -> BTreeMap<String, TopicMeta> {
    topics.into_iter().map(|(n, t)| (n, t.into())).collect()
}

impl From<CatalogV4> for Catalog {
    fn from(v4: CatalogV4) -> Self {
        Catalog {
            cluster_id: v4.cluster_id,
            version: v4.version,
            topics: upgrade_topics(v4.topics),
            users: v4.users,
            quotas: v4.quotas,
            acls: v4.acls,
        }
    }
}

/// Format 3 (`WEIRCAT3`): topics and SASL users, no client quotas, no ACLs.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct CatalogV3 {
    pub cluster_id: String,
    pub version: u64,
    pub topics: BTreeMap<String, TopicMetaV4>,
    pub users: BTreeMap<String, Vec<ScramCredential>>,
}

impl From<CatalogV3> for Catalog {
    fn from(v3: CatalogV3) -> Self {
        Catalog {
            cluster_id: v3.cluster_id,
            version: v3.version,
            topics: upgrade_topics(v3.topics),
            users: v3.users,
            quotas: Vec::new(),
            acls: Vec::new(),
        }
    }
}

/// Format 2 (`WEIRCAT2`): the topics, no SASL users.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct CatalogV2 {
    pub cluster_id: String,
    pub version: u64,
    pub topics: BTreeMap<String, TopicMetaV4>,
}

impl From<CatalogV2> for Catalog {
    fn from(v2: CatalogV2) -> Self {
        Catalog {
            cluster_id: v2.cluster_id,
            version: v2.version,
            topics: upgrade_topics(v2.topics),
            users: BTreeMap::new(),
            quotas: Vec::new(),
            acls: Vec::new(),
        }
    }
}

/// Format 1 (`WEIRCAT1`): no replica lists, no `compression.type`.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct CatalogV1 {
    pub cluster_id: String,
    pub version: u64,
    pub topics: BTreeMap<String, TopicMetaV1>,
}

#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct TopicMetaV1 {
    pub name: String,
    pub id: [u8; 16],
    pub partition_shards: Vec<u32>,
    pub config: TopicConfigV1,
}

#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct TopicConfigV1 {
    pub segment_bytes: u64,
    pub segment_ms: i64,
    pub retention_ms: i64,
    pub retention_bytes: i64,
    pub flush_messages: i64,
    pub flush_ms: i64,
    pub max_message_bytes: i32,
}

impl From<CatalogV1> for Catalog {
    /// Format 1 only had replication factor 1 and never stored compression.type,
    /// which then meant what `producer` means.
    fn from(v1: CatalogV1) -> Self {
        let topics = v1
            .topics
            .into_iter()
            .map(|(name, t)| {
                let c = t.config;
                let meta = TopicMeta {
                    name: t.name,
                    id: t.id,
                    partition_replicas: t.partition_shards.iter().map(|s| vec![*s]).collect(),
                    partition_shards: t.partition_shards,
                    config: TopicConfig {
                        segment_bytes: c.segment_bytes,
                        segment_ms: c.segment_ms,
                        retention_ms: c.retention_ms,
                        retention_bytes: c.retention_bytes,
                        flush_messages: c.flush_messages,
                        flush_ms: c.flush_ms,
                        max_message_bytes: c.max_message_bytes,
                        compression_type: CompressionType::Producer,
                        queue: QueueConfig::unset(),
                    },
                };
                (name, meta)
            })
            .collect();
        Catalog {
            cluster_id: v1.cluster_id,
            version: v1.version,
            topics,
            users: BTreeMap::new(),
            quotas: Vec::new(),
            acls: Vec::new(),
        }
    }
}
