//! Metadata: brokers, topics, partition leaders. In zero-hop mode every shard
//! is advertised as its own broker (node id = shard id, its own port) and a
//! partition's leader is its owning shard, so clients connect straight to the
//! owner. In single-address mode there is one broker, node 0, and shards
//! forward. Unknown topics are auto-created when allowed. Replicas and ISR
//! are the topic's recorded replica list (one copy on disk, see
//! docs/protocol.md); authorized operations are all of them (no ACLs).

use std::rc::Rc;

use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse, TopicName};
use kafka_protocol::ResponseError;

use super::admin::{admin, AdminRequest, NewTopic};
use super::ShardContext;
use crate::metadata::catalog::validate_topic_name;
use crate::metadata::TopicMeta;

/// `tls`: the client came in on the TLS listener, so the TLS ports are advertised.
pub async fn handle(
    shard: &Rc<ShardContext>,
    req: MetadataRequest,
    version: i16,
    tls: bool,
) -> MetadataResponse {
    let requested: Option<Vec<(Option<String>, uuid::Uuid)>> = match req.topics {
        None => None,
        // v0 has no null: an empty list means every topic.
        Some(t) if t.is_empty() && version == 0 => None,
        Some(t) => Some(
            t.into_iter()
                .map(|t| (t.name.map(|n| n.0.to_string()), t.topic_id))
                .collect(),
        ),
    };
    // The flags exist from v8 (topic) and v8-10 (cluster); older requests decode them false.
    let topic_operations = version >= 8 && req.include_topic_authorized_operations;
    let cluster_operations = (8..=10).contains(&version) && req.include_cluster_authorized_operations;
    let allow_create = shard.args.auto_create_topics && (version < 4 || req.allow_auto_topic_creation);
    if let (Some(list), true) = (&requested, allow_create) {
        auto_create(shard, list).await;
    }
    let catalog = shard.catalog();
    let entry = |t: &TopicMeta| {
        let e = topic_entry(shard, t);
        if topic_operations {
            e.with_topic_authorized_operations(TOPIC_AUTHORIZED_OPERATIONS)
        } else {
            e
        }
    };
    let topics: Vec<MetadataResponseTopic> = match requested {
        None => catalog.topics.values().map(entry).collect(),
        Some(list) => list
            .into_iter()
            .map(|(name, id)| {
                let found = match &name {
                    Some(n) => catalog.topic(n),
                    None => catalog.topic_by_id(id),
                };
                match found {
                    Some(t) => entry(t),
                    None => unknown_topic(name, id),
                }
            })
            .collect(),
    };
    let response = MetadataResponse::default()
        .with_brokers(brokers(shard, tls))
        .with_cluster_id(Some(catalog.cluster_id.clone().into()))
        .with_controller_id(BrokerId(CONTROLLER_ID))
        .with_topics(topics);
    if cluster_operations {
        response.with_cluster_authorized_operations(CLUSTER_AUTHORIZED_OPERATIONS)
    } else {
        response
    }
}

/// The node named controller (Metadata, DescribeCluster): shard 0's, which
/// writes the catalog.
pub const CONTROLLER_ID: i32 = 0;

/// Kafka's AclOperation codes; an authorized-operations bitfield sets bit `code`.
const READ: u8 = 3;
const WRITE: u8 = 4;
const CREATE: u8 = 5;
const DELETE: u8 = 6;
const ALTER: u8 = 7;
const DESCRIBE: u8 = 8;
const CLUSTER_ACTION: u8 = 9;
const DESCRIBE_CONFIGS: u8 = 10;
const ALTER_CONFIGS: u8 = 11;
const IDEMPOTENT_WRITE: u8 = 12;

const fn operation_bits(ops: &[u8]) -> i32 {
    let mut bits = 0;
    let mut i = 0;
    while i < ops.len() {
        bits |= 1 << ops[i];
        i += 1;
    }
    bits
}

/// Weir has no ACLs, so a client may do everything: every operation Kafka
/// defines for a topic (what Kafka answers when no authorizer is configured).
pub const TOPIC_AUTHORIZED_OPERATIONS: i32 = operation_bits(&[
    READ,
    WRITE,
    CREATE,
    DELETE,
    ALTER,
    DESCRIBE,
    DESCRIBE_CONFIGS,
    ALTER_CONFIGS,
]);

/// Likewise every operation Kafka defines for a group.
pub const GROUP_AUTHORIZED_OPERATIONS: i32 = operation_bits(&[READ, DESCRIBE, DELETE]);

/// Likewise every operation Kafka defines for the cluster resource.
pub const CLUSTER_AUTHORIZED_OPERATIONS: i32 = operation_bits(&[
    CREATE,
    CLUSTER_ACTION,
    DESCRIBE_CONFIGS,
    ALTER_CONFIGS,
    IDEMPOTENT_WRITE,
    ALTER,
    DESCRIBE,
]);

/// How many brokers Metadata advertises: one per shard in zero-hop mode,
/// one in single-address mode. Their ids are `0..count`.
pub fn advertised_broker_count(shard: &ShardContext) -> usize {
    if shard.args.single_address {
        1
    } else {
        shard.count
    }
}

async fn auto_create(shard: &Rc<ShardContext>, list: &[(Option<String>, uuid::Uuid)]) {
    let catalog = shard.catalog();
    let missing: Vec<NewTopic> = list
        .iter()
        .filter_map(|(name, _)| name.as_ref())
        .filter(|n| catalog.topic(n).is_none() && validate_topic_name(n).is_ok())
        .map(|n| NewTopic {
            name: n.clone(),
            partitions: -1,
            replication_factor: -1,
            assignments: Vec::new(),
            configs: Vec::new(),
        })
        .collect();
    if !missing.is_empty() {
        // Racing creators get TOPIC_ALREADY_EXISTS, which is fine here.
        admin(
            shard,
            AdminRequest::CreateTopics {
                topics: missing,
                validate_only: false,
            },
        )
        .await;
    }
}

/// The brokers clients see, as (node id, host, port): node 0 on the listen
/// port in single-address mode, one node per shard on its own port in zero-hop
/// mode. Metadata and DescribeCluster both advertise exactly these; the ports
/// are the TLS listener's to a client on it (`tls`).
pub fn advertised_nodes(shard: &ShardContext, tls: bool) -> Vec<(i32, String, i32)> {
    let host = shard.args.advertised_host();
    if shard.args.single_address {
        return vec![(0, host, i32::from(shard.args.advertised_port(None, tls)))];
    }
    (0..shard.count)
        .map(|s| {
            (
                s as i32,
                host.clone(),
                i32::from(shard.args.advertised_port(Some(s), tls)),
            )
        })
        .collect()
}

fn brokers(shard: &ShardContext, tls: bool) -> Vec<MetadataResponseBroker> {
    advertised_nodes(shard, tls)
        .into_iter()
        .map(|(id, host, port)| {
            MetadataResponseBroker::default()
                .with_node_id(BrokerId(id))
                .with_host(host.into())
                .with_port(port)
        })
        .collect()
}

/// `p`'s replicas as clients see them, leader first (Metadata,
/// DescribeTopicPartitions). Single-address mode has one broker to name;
/// zero-hop names the owner, then the rest of the recorded replicas.
pub fn partition_replicas(shard: &ShardContext, t: &TopicMeta, p: i32) -> Vec<BrokerId> {
    if shard.args.single_address {
        return vec![BrokerId(0)];
    }
    t.replicas(p, shard.count)
        .unwrap_or_default()
        .into_iter()
        .map(|id| BrokerId(id as i32))
        .collect()
}

fn topic_entry(shard: &ShardContext, t: &TopicMeta) -> MetadataResponseTopic {
    let partitions = (0..t.partition_count())
        .map(|p| {
            let replicas = partition_replicas(shard, t, p);
            let leader = replicas.first().copied().unwrap_or(BrokerId(0));
            // Every replica is the one copy on disk, so none can lag: ISR = replicas.
            MetadataResponsePartition::default()
                .with_partition_index(p)
                .with_leader_id(leader)
                .with_leader_epoch(0)
                .with_isr_nodes(replicas.clone())
                .with_replica_nodes(replicas)
        })
        .collect();
    MetadataResponseTopic::default()
        .with_name(Some(TopicName(t.name.clone().into())))
        .with_topic_id(t.uuid())
        .with_partitions(partitions)
}

fn unknown_topic(name: Option<String>, id: uuid::Uuid) -> MetadataResponseTopic {
    let code = match &name {
        Some(n) if validate_topic_name(n).is_err() => ResponseError::InvalidTopicException.code(),
        Some(_) => ResponseError::UnknownTopicOrPartition.code(),
        None => ResponseError::UnknownTopicId.code(),
    };
    MetadataResponseTopic::default()
        .with_error_code(code)
        .with_name(name.map(|n| TopicName(n.into())))
        .with_topic_id(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorized_operations_bitfields_match_kafkas_operation_codes() {
        // READ..ALTER_CONFIGS without ANY(1), ALL(2), CLUSTER_ACTION(9).
        assert_eq!(TOPIC_AUTHORIZED_OPERATIONS, 0x0df8);
        // CREATE, ALTER, DESCRIBE, CLUSTER_ACTION, DESCRIBE_CONFIGS, ALTER_CONFIGS, IDEMPOTENT_WRITE.
        assert_eq!(CLUSTER_AUTHORIZED_OPERATIONS, 0x1fa0);
    }
}
