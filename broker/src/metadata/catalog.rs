//! The topic catalog: every topic's name, id, partition-to-shard assignment
//! and config. A value type: shard 0 derives a new catalog for each admin
//! change and broadcasts it; other shards only read their `Arc` snapshot.
//! Invariant: topic names are unique and valid, each topic has >= 1 partition,
//! and `version` increases with every change.

use std::collections::BTreeMap;

use rkyv::{Archive, Deserialize, Serialize};

use super::TopicConfig;
use crate::limits;

#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct TopicMeta {
    pub name: String,
    /// Kafka topic id (KIP-516), random, never zero.
    pub id: [u8; 16],
    /// The shard each partition was assigned to at creation. Read through
    /// `owner`, which folds it onto the current shard count.
    pub partition_shards: Vec<u32>,
    pub config: TopicConfig,
}

impl TopicMeta {
    pub fn partition_count(&self) -> i32 {
        self.partition_shards.len() as i32
    }

    /// The shard that owns `partition`, if the partition exists. If the broker
    /// restarted with fewer shards, assignments fold modulo the shard count so
    /// every partition keeps exactly one owner.
    pub fn owner(&self, partition: i32, shard_count: usize) -> Option<usize> {
        let index = usize::try_from(partition).ok()?;
        self.partition_shards
            .get(index)
            .map(|s| *s as usize % shard_count)
    }

    pub fn uuid(&self) -> uuid::Uuid {
        uuid::Uuid::from_bytes(self.id)
    }
}

#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq, Default)]
pub struct Catalog {
    pub cluster_id: String,
    pub version: u64,
    pub topics: BTreeMap<String, TopicMeta>,
}

impl Catalog {
    pub fn new(cluster_id: String) -> Self {
        Self {
            cluster_id,
            version: 0,
            topics: BTreeMap::new(),
        }
    }

    pub fn topic(&self, name: &str) -> Option<&TopicMeta> {
        self.topics.get(name)
    }

    pub fn topic_by_id(&self, id: uuid::Uuid) -> Option<&TopicMeta> {
        self.topics.values().find(|t| t.id == *id.as_bytes())
    }

    /// Partitions owned by each shard now: the load that new partitions balance.
    fn load_per_shard(&self, shard_count: usize) -> Vec<usize> {
        let mut load = vec![0usize; shard_count];
        for topic in self.topics.values() {
            for p in 0..topic.partition_count() {
                if let Some(s) = topic.owner(p, shard_count) {
                    load[s] += 1;
                }
            }
        }
        load
    }

    /// A new catalog with `name` added: its partitions go to the least loaded
    /// shards (ties to the lowest id), so partition counts stay balanced.
    pub fn with_topic(
        &self,
        name: &str,
        id: [u8; 16],
        partitions: i32,
        config: TopicConfig,
        shard_count: usize,
    ) -> Self {
        assert!(!self.topics.contains_key(name), "topic {name} exists");
        assert!((1..=limits::PARTITIONS_PER_TOPIC_MAX).contains(&partitions));
        let mut load = self.load_per_shard(shard_count);
        let partition_shards = (0..partitions)
            .map(|_| {
                let (shard, _) = load
                    .iter()
                    .enumerate()
                    .min_by_key(|(i, l)| (**l, *i))
                    .expect("shards > 0");
                load[shard] += 1;
                shard as u32
            })
            .collect();
        let mut next = self.clone();
        next.version += 1;
        next.topics.insert(
            name.to_string(),
            TopicMeta {
                name: name.to_string(),
                id,
                partition_shards,
                config,
            },
        );
        next
    }

    pub fn without_topic(&self, name: &str) -> Self {
        let mut next = self.clone();
        next.version += 1;
        next.topics.remove(name);
        next
    }
}

/// Kafka's rule: 1..=249 chars of [a-zA-Z0-9._-], not "." or "..".
pub fn validate_topic_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > limits::TOPIC_NAME_BYTES_MAX {
        return Err(format!(
            "topic name must be 1..={} characters",
            limits::TOPIC_NAME_BYTES_MAX
        ));
    }
    if name == "." || name == ".." {
        return Err("topic name cannot be '.' or '..'".into());
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
    {
        return Err(format!(
            "topic name '{name}' has characters outside [a-zA-Z0-9._-]"
        ));
    }
    Ok(())
}

/// A random, non-zero 16-byte id (topic ids, cluster id).
pub fn random_id() -> [u8; 16] {
    let mut id = [0u8; 16];
    loop {
        // SAFETY: getrandom writes at most id.len() bytes into the buffer we own.
        let n = unsafe { libc::getrandom(id.as_mut_ptr().cast(), id.len(), 0) };
        if n == id.len() as isize && id != [0u8; 16] {
            return id;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> TopicConfig {
        TopicConfig {
            segment_bytes: 1 << 20,
            segment_ms: -1,
            retention_ms: -1,
            retention_bytes: -1,
            flush_messages: i64::MAX,
            flush_ms: 1000,
            max_message_bytes: 1 << 20,
        }
    }

    #[test]
    fn given_two_shards_when_topics_are_added_should_balance_partition_counts() {
        let c = Catalog::new("c".into()).with_topic("a", random_id(), 3, config(), 2);
        let c = c.with_topic("b", random_id(), 3, config(), 2);
        let load = c.load_per_shard(2);
        assert_eq!(load, vec![3, 3]);
        assert_eq!(c.version, 2);
        assert_eq!(c.topic("a").unwrap().owner(0, 2), Some(0));
        assert_eq!(c.topic("a").unwrap().owner(1, 2), Some(1));
        assert_eq!(c.topic("a").unwrap().owner(3, 2), None);
    }

    #[test]
    fn given_fewer_shards_after_restart_when_owner_asked_should_fold_assignment() {
        let c = Catalog::new("c".into()).with_topic("a", random_id(), 4, config(), 4);
        let t = c.topic("a").unwrap();
        assert!((0..4).all(|p| t.owner(p, 1) == Some(0)));
        assert_eq!(t.owner(3, 2), Some(1));
    }

    #[test]
    fn given_bad_names_when_validated_should_refuse() {
        assert!(validate_topic_name("orders.v1_x-2").is_ok());
        for bad in ["", ".", "..", "a b", "a/b", &"x".repeat(250)] {
            assert!(validate_topic_name(bad).is_err(), "{bad}");
        }
    }
}
