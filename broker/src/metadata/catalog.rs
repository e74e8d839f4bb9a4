//! The topic catalog: every topic's name, id, partition-to-shard assignment
//! and config. A value type: shard 0 derives a new catalog for each admin
//! change and broadcasts it; other shards only read their `Arc` snapshot.
//! Invariant: topic names are unique and valid, each topic has >= 1 partition,
//! every partition has >= 1 reported replica, and `version` increases with
//! every change. Stored durably (`store.rs`): a layout change needs a new
//! catalog format and a reader for the old one (`legacy.rs`).

use std::collections::BTreeMap;

use rkyv::{Archive, Deserialize, Serialize};

use super::client_quotas::ClientQuota;
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
    /// Per partition, the broker ids reported as its replicas, preferred
    /// leader first; all the same length (the replication factor). There is
    /// one copy on disk whatever the length (docs/protocol.md, "Brokers,
    /// replicas and replica assignments"). Read through `replicas`.
    pub partition_replicas: Vec<Vec<u32>>,
    pub config: TopicConfig,
}

/// Where a new topic's partitions go (`Catalog::with_topic`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placement {
    /// Partitions on the least-loaded shards; each reports `replication_factor`
    /// replicas: its owner, then the next shard ids in turn.
    Balanced {
        partitions: i32,
        replication_factor: usize,
    },
    /// A validated explicit assignment: per partition, broker ids. With
    /// `owner_is_first_id` (zero-hop: broker id = shard id) the first id owns
    /// the partition; otherwise owners are balanced as above.
    Assigned {
        replicas: Vec<Vec<u32>>,
        owner_is_first_id: bool,
    },
}

impl Placement {
    pub fn partitions(&self) -> i32 {
        match self {
            Self::Balanced { partitions, .. } => *partitions,
            Self::Assigned { replicas, .. } => replicas.len() as i32,
        }
    }

    pub fn replication_factor(&self) -> usize {
        match self {
            Self::Balanced {
                replication_factor, ..
            } => *replication_factor,
            Self::Assigned { replicas, .. } => replicas.first().map_or(1, Vec::len),
        }
    }
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

    /// The broker ids reported as `partition`'s replicas when every shard is
    /// a broker: its owner first, then the stored ids folded onto
    /// `shard_count` without repeats (a restart with fewer shards shrinks the
    /// list rather than report a broker that is not advertised).
    pub fn replicas(&self, partition: i32, shard_count: usize) -> Option<Vec<u32>> {
        let owner = self.owner(partition, shard_count)? as u32;
        let stored = self.partition_replicas.get(partition as usize)?;
        let mut out = vec![owner];
        for id in stored.iter().map(|r| *r % shard_count as u32) {
            if out.len() < stored.len() && !out.contains(&id) {
                out.push(id);
            }
        }
        Some(out)
    }

    /// Replicas per partition as CreateTopics and Metadata report it.
    pub fn replication_factor(&self) -> usize {
        self.partition_replicas.first().map_or(1, Vec::len)
    }

    pub fn uuid(&self) -> uuid::Uuid {
        uuid::Uuid::from_bytes(self.id)
    }
}

/// One user's salted SCRAM credential for one mechanism (never the password
/// nor the salted password: RFC 5802's StoredKey and ServerKey).
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct ScramCredential {
    /// Kafka's ScramMechanism type: 1 = SCRAM-SHA-256, 2 = SCRAM-SHA-512.
    pub mechanism: i8,
    pub salt: Vec<u8>,
    pub iterations: i32,
    pub stored_key: Vec<u8>,
    pub server_key: Vec<u8>,
}

impl ScramCredential {
    pub fn credential(&self) -> weir_protocol::scram::Credential {
        weir_protocol::scram::Credential {
            salt: self.salt.clone(),
            iterations: self.iterations,
            stored_key: self.stored_key.clone(),
            server_key: self.server_key.clone(),
        }
    }
}

#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq, Default)]
pub struct Catalog {
    pub cluster_id: String,
    pub version: u64,
    pub topics: BTreeMap<String, TopicMeta>,
    /// SASL users: per user name, at most one credential per mechanism,
    /// ordered by mechanism type (`with_credential`).
    pub users: BTreeMap<String, Vec<ScramCredential>>,
    /// Client quotas (format 4), one entry per entity (`client_quotas.rs`).
    pub quotas: Vec<ClientQuota>,
    /// ACL bindings (`acl.rs`), sorted and without duplicates.
    pub acls: Vec<super::acl::AclBinding>,
}

impl Catalog {
    pub fn new(cluster_id: String) -> Self {
        Self {
            cluster_id,
            version: 0,
            topics: BTreeMap::new(),
            users: BTreeMap::new(),
            quotas: Vec::new(),
            acls: Vec::new(),
        }
    }

    /// A new catalog with `acls` as its bindings (sorted, deduplicated).
    pub fn with_acls(&self, mut acls: Vec<super::acl::AclBinding>) -> Self {
        acls.sort();
        acls.dedup();
        let mut next = self.clone();
        next.acls = acls;
        next.version += 1;
        next
    }

    /// `user`'s credential for the mechanism of Kafka type `mechanism`.
    pub fn credential(&self, user: &str, mechanism: i8) -> Option<&ScramCredential> {
        self.users.get(user)?.iter().find(|c| c.mechanism == mechanism)
    }

    /// A new catalog where `user` has `credential` (replacing one of the same mechanism).
    pub fn with_credential(&self, user: &str, credential: ScramCredential) -> Self {
        let mut next = self.clone();
        let list = next.users.entry(user.to_string()).or_default();
        list.retain(|c| c.mechanism != credential.mechanism);
        list.push(credential);
        list.sort_by_key(|c| c.mechanism);
        next.version += 1;
        next
    }

    /// A new catalog without `user`'s credential for `mechanism` (the user goes
    /// when its last credential does); `None` when there was none.
    pub fn without_credential(&self, user: &str, mechanism: i8) -> Option<Self> {
        self.credential(user, mechanism)?;
        let mut next = self.clone();
        let list = next.users.get_mut(user)?;
        list.retain(|c| c.mechanism != mechanism);
        if list.is_empty() {
            next.users.remove(user);
        }
        next.version += 1;
        Some(next)
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

    /// A new catalog with `name` added, placed as `placement` says. Balanced
    /// partitions go to the least loaded shards (ties to the lowest id), so
    /// partition counts stay balanced.
    pub fn with_topic(
        &self,
        name: &str,
        id: [u8; 16],
        placement: Placement,
        config: TopicConfig,
        shard_count: usize,
    ) -> Self {
        let partitions = placement.partitions();
        let replication_factor = placement.replication_factor();
        assert!(!self.topics.contains_key(name), "topic {name} exists");
        assert!((1..=limits::PARTITIONS_PER_TOPIC_MAX).contains(&partitions));
        assert!(replication_factor >= 1, "at least one replica");
        let mut load = self.load_per_shard(shard_count);
        let mut least_loaded = || {
            let (shard, _) = load
                .iter()
                .enumerate()
                .min_by_key(|(i, l)| (**l, *i))
                .expect("shards > 0");
            load[shard] += 1;
            shard as u32
        };
        let (partition_shards, partition_replicas): (Vec<u32>, Vec<Vec<u32>>) = match placement {
            Placement::Balanced { partitions, .. } => (0..partitions)
                .map(|_| {
                    let owner = least_loaded();
                    let replicas = (0..replication_factor)
                        .map(|i| ((owner as usize + i) % shard_count) as u32)
                        .collect();
                    (owner, replicas)
                })
                .unzip(),
            Placement::Assigned {
                replicas,
                owner_is_first_id,
            } => replicas
                .into_iter()
                .map(|ids| {
                    assert_eq!(ids.len(), replication_factor, "validated: same length");
                    let owner = if owner_is_first_id {
                        ids[0] % shard_count as u32
                    } else {
                        least_loaded()
                    };
                    (owner, ids)
                })
                .unzip(),
        };
        let mut next = self.clone();
        next.version += 1;
        next.topics.insert(
            name.to_string(),
            TopicMeta {
                name: name.to_string(),
                id,
                partition_shards,
                partition_replicas,
                config,
            },
        );
        next
    }

    /// A new catalog where `name` has `replicas.len()` more partitions, appended
    /// after its existing ones (which keep their owners, so existing keys keep
    /// their partitions). Each new partition reports the broker ids in its
    /// list; its owner is the first id when `owner_is_first_id` (zero-hop:
    /// broker id = shard id), else the least-loaded shard as at creation. An
    /// empty list means "as at creation": least-loaded owner, then the next
    /// shard ids up to the topic's replication factor.
    pub fn with_more_partitions(
        &self,
        name: &str,
        replicas: Vec<Vec<u32>>,
        owner_is_first_id: bool,
        shard_count: usize,
    ) -> Self {
        let mut load = self.load_per_shard(shard_count);
        let mut next = self.clone();
        let topic = next
            .topics
            .get_mut(name)
            .expect("caller checked the topic exists");
        let factor = topic.replication_factor();
        for ids in replicas {
            let owner = if owner_is_first_id && !ids.is_empty() {
                ids[0] % shard_count as u32
            } else {
                let (shard, _) = load
                    .iter()
                    .enumerate()
                    .min_by_key(|(i, l)| (**l, *i))
                    .expect("shards > 0");
                shard as u32
            };
            load[owner as usize] += 1;
            let ids = if ids.is_empty() {
                (0..factor)
                    .map(|i| ((owner as usize + i) % shard_count) as u32)
                    .collect()
            } else {
                ids
            };
            topic.partition_shards.push(owner);
            topic.partition_replicas.push(ids);
        }
        next.version += 1;
        next
    }

    /// A new catalog where `name` has `config` (AlterConfigs).
    pub fn with_topic_config(&self, name: &str, config: TopicConfig) -> Self {
        let mut next = self.clone();
        if let Some(t) = next.topics.get_mut(name) {
            t.config = config;
            next.version += 1;
        }
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
        crate::metadata::test_topic_config()
    }

    fn balanced(partitions: i32) -> Placement {
        Placement::Balanced {
            partitions,
            replication_factor: 1,
        }
    }

    #[test]
    fn given_two_shards_when_topics_are_added_should_balance_partition_counts() {
        let c = Catalog::new("c".into()).with_topic("a", random_id(), balanced(3), config(), 2);
        let c = c.with_topic("b", random_id(), balanced(3), config(), 2);
        let load = c.load_per_shard(2);
        assert_eq!(load, vec![3, 3]);
        assert_eq!(c.version, 2);
        assert_eq!(c.topic("a").unwrap().owner(0, 2), Some(0));
        assert_eq!(c.topic("a").unwrap().owner(1, 2), Some(1));
        assert_eq!(c.topic("a").unwrap().owner(3, 2), None);
    }

    #[test]
    fn given_fewer_shards_after_restart_when_owner_asked_should_fold_assignment() {
        let c = Catalog::new("c".into()).with_topic("a", random_id(), balanced(4), config(), 4);
        let t = c.topic("a").unwrap();
        assert!((0..4).all(|p| t.owner(p, 1) == Some(0)));
        assert_eq!(t.owner(3, 2), Some(1));
    }

    #[test]
    fn given_replication_factor_two_when_placed_should_report_owner_then_next_shard() {
        let placement = Placement::Balanced {
            partitions: 3,
            replication_factor: 2,
        };
        let c = Catalog::new("c".into()).with_topic("a", random_id(), placement, config(), 2);
        let t = c.topic("a").unwrap();
        assert_eq!(t.replication_factor(), 2);
        assert_eq!(t.replicas(0, 2), Some(vec![0, 1]));
        assert_eq!(t.replicas(1, 2), Some(vec![1, 0]));
        assert_eq!(t.replicas(2, 2), Some(vec![0, 1]));
        assert_eq!(t.replicas(3, 2), None);
        // One shard after a restart: one broker left to report.
        assert_eq!(t.replicas(1, 1), Some(vec![0]));
    }

    #[test]
    fn given_an_explicit_assignment_when_placed_should_own_by_first_id_and_keep_the_lists() {
        let placement = Placement::Assigned {
            replicas: vec![vec![1, 0], vec![0, 1], vec![1, 0]],
            owner_is_first_id: true,
        };
        let c = Catalog::new("c".into()).with_topic("a", random_id(), placement, config(), 2);
        let t = c.topic("a").unwrap();
        assert_eq!(t.partition_count(), 3);
        assert_eq!(
            (0..3).map(|p| t.owner(p, 2).unwrap()).collect::<Vec<_>>(),
            vec![1, 0, 1]
        );
        assert_eq!(t.replicas(0, 2), Some(vec![1, 0]));
        assert_eq!(t.replicas(1, 2), Some(vec![0, 1]));

        // Single-address mode: ids are all 0, owners balanced.
        let placement = Placement::Assigned {
            replicas: vec![vec![0], vec![0]],
            owner_is_first_id: false,
        };
        let c = Catalog::new("c".into()).with_topic("b", random_id(), placement, config(), 2);
        let t = c.topic("b").unwrap();
        assert_eq!(
            (0..2).map(|p| t.owner(p, 2).unwrap()).collect::<Vec<_>>(),
            vec![0, 1]
        );
    }

    #[test]
    fn given_a_topic_when_partitions_are_added_should_keep_existing_owners_and_balance_the_new() {
        let c = Catalog::new("c".into()).with_topic("a", random_id(), balanced(3), config(), 2);
        let before: Vec<_> = (0..3).map(|p| c.topic("a").unwrap().owner(p, 2)).collect();
        let c2 = c.with_more_partitions("a", vec![Vec::new(); 3], false, 2);
        let t = c2.topic("a").unwrap();
        assert_eq!(t.partition_count(), 6);
        assert_eq!(c2.version, c.version + 1);
        let after: Vec<_> = (0..3).map(|p| t.owner(p, 2)).collect();
        assert_eq!(before, after);
        assert_eq!(c2.load_per_shard(2), vec![3, 3]);
        assert_eq!(t.replicas(5, 2).unwrap().len(), 1);
        let c3 = c2.with_more_partitions("a", vec![vec![1], vec![1]], true, 2);
        let t = c3.topic("a").unwrap();
        assert_eq!((t.owner(6, 2), t.owner(7, 2)), (Some(1), Some(1)));
    }

    #[test]
    fn given_bad_names_when_validated_should_refuse() {
        assert!(validate_topic_name("orders.v1_x-2").is_ok());
        for bad in ["", ".", "..", "a b", "a/b", &"x".repeat(250)] {
            assert!(validate_topic_name(bad).is_err(), "{bad}");
        }
    }
}
