//! Request builders: the kafka-protocol structs both Weir clients send, built
//! in one place so the loadgen and the blocking client ask the same things the
//! same way. A builder that depends on the version (a field renamed or moved
//! between versions) takes the negotiated one.
//!
//! Pure; any thread. Builders never fail: what they are given is the caller's
//! own data, not a peer's.

use bytes::Bytes;
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    BrokerId, CreateTopicsRequest, FetchRequest, InitProducerIdRequest, ListOffsetsRequest, MetadataRequest,
    ProduceRequest, ProducerId, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

pub mod admin;
pub mod groups;
pub mod txn;

/// The last Produce and Fetch versions that name topics; later ones carry the
/// topic id (KIP-516) instead.
pub const TOPIC_NAMES_VERSION_MAX: i16 = 12;
/// ListOffsets timestamps: the next offset to be written, and the first kept.
pub const LATEST: i64 = -1;
pub const EARLIEST: i64 = -2;

pub(crate) fn sb(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

pub(crate) fn topic_name(s: &str) -> TopicName {
    TopicName(sb(s))
}

/// Metadata for the named topics, or every topic (`None`); never creates one.
pub fn metadata(topics: Option<&[&str]>) -> MetadataRequest {
    let topics = topics.map(|t| {
        t.iter()
            .map(|n| MetadataRequestTopic::default().with_name(Some(topic_name(n))))
            .collect()
    });
    MetadataRequest::default()
        .with_topics(topics)
        .with_allow_auto_topic_creation(false)
}

/// CreateTopics for one topic, replication factor 1, with `configs` (key, value).
pub fn create_topic(
    name: &str,
    partitions: i32,
    configs: &[(&str, &str)],
    timeout_ms: i32,
) -> CreateTopicsRequest {
    let configs = configs
        .iter()
        .map(|(k, v)| {
            CreatableTopicConfig::default()
                .with_name(sb(k))
                .with_value(Some(sb(v)))
        })
        .collect();
    let topic = CreatableTopic::default()
        .with_name(topic_name(name))
        .with_num_partitions(partitions)
        .with_replication_factor(1)
        .with_configs(configs);
    CreateTopicsRequest::default()
        .with_topics(vec![topic])
        .with_timeout_ms(timeout_ms)
}

/// Whether a CreateTopics error code means the topic now exists as asked.
pub fn already_exists(code: i16) -> bool {
    code == ResponseError::TopicAlreadyExists.code()
}

/// Produce one batch to one partition of a topic named (not by id: send at
/// most `TOPIC_NAMES_VERSION_MAX`). The zero-copy framing is `produce`.
/// InitProducerId for an idempotent (not transactional) producer.
pub fn init_producer_id() -> InitProducerIdRequest {
    // The schema's default transactional id is "", not null.
    InitProducerIdRequest::default()
        .with_transactional_id(None)
        .with_transaction_timeout_ms(-1)
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1)
}

pub fn produce(topic: &str, partition: i32, batch: Bytes, acks: i16, timeout_ms: i32) -> ProduceRequest {
    let data = TopicProduceData::default()
        .with_name(topic_name(topic))
        .with_partition_data(vec![PartitionProduceData::default()
            .with_index(partition)
            .with_records(Some(batch))]);
    ProduceRequest::default()
        .with_acks(acks)
        .with_timeout_ms(timeout_ms)
        .with_topic_data(vec![data])
}

/// How much a Fetch may wait for and bring back.
#[derive(Debug, Clone, Copy)]
pub struct FetchLimits {
    pub max_wait_ms: i32,
    pub max_bytes: i32,
    pub partition_max_bytes: i32,
}

/// A topic as a request addresses it: by name up to
/// `TOPIC_NAMES_VERSION_MAX`, by id after.
#[derive(Debug, Clone, Copy)]
pub struct TopicRef<'a> {
    pub name: &'a str,
    pub id: uuid::Uuid,
}

/// Fetch `(partition, offset)` pairs of one topic at `version`, as a consumer.
pub fn fetch(
    topic: TopicRef<'_>,
    version: i16,
    partitions: &[(i32, i64)],
    limits: FetchLimits,
) -> FetchRequest {
    let mut t = FetchTopic::default().with_partitions(
        partitions
            .iter()
            .map(|&(partition, offset)| {
                FetchPartition::default()
                    .with_partition(partition)
                    .with_fetch_offset(offset)
                    .with_partition_max_bytes(limits.partition_max_bytes)
            })
            .collect(),
    );
    if version > TOPIC_NAMES_VERSION_MAX {
        t.topic_id = topic.id;
    } else {
        t.topic = topic_name(topic.name);
    }
    FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(limits.max_wait_ms)
        .with_min_bytes(1)
        .with_max_bytes(limits.max_bytes)
        .with_topics(vec![t])
}

/// ListOffsets of `partitions` of one topic at `timestamp` (`LATEST`,
/// `EARLIEST`, or milliseconds), as a consumer.
pub fn list_offsets(topic: &str, partitions: &[i32], timestamp: i64) -> ListOffsetsRequest {
    let partitions = partitions
        .iter()
        .map(|&p| {
            ListOffsetsPartition::default()
                .with_partition_index(p)
                .with_current_leader_epoch(-1)
                .with_timestamp(timestamp)
        })
        .collect();
    ListOffsetsRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_topics(vec![ListOffsetsTopic::default()
            .with_name(topic_name(topic))
            .with_partitions(partitions)])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_a_fetch_version_when_built_should_name_topics_up_to_v12_and_use_ids_after() {
        let id = uuid::Uuid::from_u128(7);
        let limits = FetchLimits {
            max_wait_ms: 1,
            max_bytes: 2,
            partition_max_bytes: 3,
        };
        let topic = TopicRef { name: "t", id };
        let named = fetch(topic, 12, &[(0, 5)], limits);
        assert_eq!(
            (
                named.topics[0].topic.0.as_str(),
                named.topics[0].topic_id.is_nil()
            ),
            ("t", true)
        );
        let by_id = fetch(topic, 13, &[(0, 5)], limits);
        assert_eq!(
            (by_id.topics[0].topic.0.as_str(), by_id.topics[0].topic_id),
            ("", id)
        );
        assert_eq!(by_id.topics[0].partitions[0].fetch_offset, 5);
    }
}
