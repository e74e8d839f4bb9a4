//! Metadata: brokers, topics, partition leaders. In zero-hop mode every shard
//! is advertised as its own broker (node id = shard id, its own port) and a
//! partition's leader is its owning shard, so clients connect straight to the
//! owner. In single-address mode there is one broker, node 0, and shards
//! forward. Unknown topics are auto-created when allowed.

use std::rc::Rc;

use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse, TopicName};
use kafka_protocol::ResponseError;

use super::topics::admin;
use crate::metadata::catalog::validate_topic_name;
use crate::metadata::TopicMeta;
use crate::shard::messages::{AdminRequest, NewTopic};
use crate::shard::Shard;

pub async fn handle(shard: &Rc<Shard>, req: MetadataRequest, version: i16) -> MetadataResponse {
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
    let allow_create = shard.args.auto_create_topics && (version < 4 || req.allow_auto_topic_creation);
    if let (Some(list), true) = (&requested, allow_create) {
        auto_create(shard, list).await;
    }
    let catalog = shard.catalog();
    let topics: Vec<MetadataResponseTopic> = match requested {
        None => catalog.topics.values().map(|t| topic_entry(shard, t)).collect(),
        Some(list) => list
            .into_iter()
            .map(|(name, id)| {
                let found = match &name {
                    Some(n) => catalog.topic(n),
                    None => catalog.topic_by_id(id),
                };
                match found {
                    Some(t) => topic_entry(shard, t),
                    None => unknown_topic(name, id),
                }
            })
            .collect(),
    };
    MetadataResponse::default()
        .with_brokers(brokers(shard))
        .with_cluster_id(Some(catalog.cluster_id.clone().into()))
        .with_controller_id(BrokerId(0))
        .with_topics(topics)
}

async fn auto_create(shard: &Rc<Shard>, list: &[(Option<String>, uuid::Uuid)]) {
    let catalog = shard.catalog();
    let missing: Vec<NewTopic> = list
        .iter()
        .filter_map(|(name, _)| name.as_ref())
        .filter(|n| catalog.topic(n).is_none() && validate_topic_name(n).is_ok())
        .map(|n| NewTopic {
            name: n.clone(),
            partitions: -1,
            replication_factor: -1,
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

fn brokers(shard: &Shard) -> Vec<MetadataResponseBroker> {
    let host = shard.args.advertised_host();
    if shard.args.single_address {
        let port = i32::from(shard.args.listen.port());
        return vec![MetadataResponseBroker::default()
            .with_node_id(BrokerId(0))
            .with_host(host.into())
            .with_port(port)];
    }
    (0..shard.count)
        .map(|s| {
            MetadataResponseBroker::default()
                .with_node_id(BrokerId(s as i32))
                .with_host(host.clone().into())
                .with_port(i32::from(shard.args.shard_port(s)))
        })
        .collect()
}

fn topic_entry(shard: &Shard, t: &TopicMeta) -> MetadataResponseTopic {
    let partitions = (0..t.partition_count())
        .map(|p| {
            let leader = if shard.args.single_address {
                0
            } else {
                t.owner(p, shard.count).unwrap_or(0) as i32
            };
            MetadataResponsePartition::default()
                .with_partition_index(p)
                .with_leader_id(BrokerId(leader))
                .with_leader_epoch(0)
                .with_replica_nodes(vec![BrokerId(leader)])
                .with_isr_nodes(vec![BrokerId(leader)])
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
