//! DescribeTopicPartitions (KIP-966): topics and their partitions, paged by a
//! cursor, from the catalog of the accepting shard (read-only, any shard).
//! As Kafka's broker: the named topics (or every topic when none is named)
//! from the cursor's topic on, sorted by name, up to ResponsePartitionLimit
//! partitions (clamped to 1..=2000); when the limit cuts a topic or falls
//! between topics, NextCursor names where to go on. Unknown named topics get
//! UNKNOWN_TOPIC_OR_PARTITION (INVALID_TOPIC_EXCEPTION for a bad name); a
//! cursor outside the named topics or with a negative partition makes every
//! topic INVALID_REQUEST. Partitions are described as Metadata does (leader
//! epoch 0, ISR = replicas); eligible leader replicas are empty, as Kafka's
//! when ELR is not enabled.

use std::collections::BTreeSet;

use kafka_protocol::messages::describe_topic_partitions_response::{
    Cursor, DescribeTopicPartitionsResponsePartition, DescribeTopicPartitionsResponseTopic,
};
use kafka_protocol::messages::{DescribeTopicPartitionsRequest, DescribeTopicPartitionsResponse, TopicName};
use kafka_protocol::ResponseError;

use super::metadata::{partition_replicas, TOPIC_AUTHORIZED_OPERATIONS};
use super::ShardContext;
use crate::metadata::catalog::validate_topic_name;
use crate::metadata::TopicMeta;

/// Kafka's `max.request.partition.size.limit` default: the most partitions one answer holds.
const PARTITION_LIMIT_MAX: i32 = 2000;

/// Kafka's internal topics (`Topic.isInternal`).
const INTERNAL_TOPICS: &[&str] = &["__consumer_offsets", "__transaction_state", "__share_group_state"];

pub fn handle(shard: &ShardContext, req: &DescribeTopicPartitionsRequest) -> DescribeTopicPartitionsResponse {
    let catalog = shard.catalog();
    let all = req.topics.is_empty();
    let cursor = req
        .cursor
        .as_ref()
        .map(|c| (c.topic_name.0.to_string(), c.partition_index));
    let from = cursor.as_ref().map_or("", |(t, _)| t.as_str());
    let names: BTreeSet<String> = if all {
        catalog.topics.keys().cloned().collect()
    } else {
        req.topics.iter().map(|t| t.name.0.to_string()).collect()
    };
    let names: Vec<String> = names.into_iter().filter(|n| n.as_str() >= from).collect();
    let bad_cursor = cursor
        .as_ref()
        .is_some_and(|(t, p)| *p < 0 || (!all && !names.contains(t)));
    if bad_cursor {
        return invalid_request(req);
    }
    let mut remaining = req.response_partition_limit.clamp(1, PARTITION_LIMIT_MAX);
    let mut response = DescribeTopicPartitionsResponse::default();
    for name in names {
        if remaining == 0 {
            // The limit fell between topics: go on at this one's start.
            response.next_cursor = Some(cursor_at(&name, 0));
            break;
        }
        let Some(topic) = catalog.topic(&name) else {
            if !all {
                response.topics.push(unknown_topic(name));
            }
            continue;
        };
        let start = match &cursor {
            Some((t, p)) if *t == name => *p,
            _ => 0,
        };
        let end = topic.partition_count().min(start.saturating_add(remaining));
        let partitions: Vec<_> = (start..end).map(|p| partition(shard, topic, p)).collect();
        remaining -= partitions.len() as i32;
        response.topics.push(topic_entry(&name, topic, partitions));
        if end < topic.partition_count() {
            response.next_cursor = Some(cursor_at(&name, end));
            break;
        }
    }
    response
}

fn partition(shard: &ShardContext, topic: &TopicMeta, p: i32) -> DescribeTopicPartitionsResponsePartition {
    let replicas = partition_replicas(shard, topic, p);
    DescribeTopicPartitionsResponsePartition::default()
        .with_partition_index(p)
        .with_leader_id(replicas.first().copied().unwrap_or_default())
        .with_leader_epoch(0)
        .with_isr_nodes(replicas.clone())
        .with_replica_nodes(replicas)
        .with_eligible_leader_replicas(Some(Vec::new()))
        .with_last_known_elr(Some(Vec::new()))
}

fn topic_entry(
    name: &str,
    topic: &TopicMeta,
    partitions: Vec<DescribeTopicPartitionsResponsePartition>,
) -> DescribeTopicPartitionsResponseTopic {
    DescribeTopicPartitionsResponseTopic::default()
        .with_name(Some(TopicName(name.to_string().into())))
        .with_topic_id(topic.uuid())
        .with_is_internal(INTERNAL_TOPICS.contains(&name))
        .with_partitions(partitions)
        .with_topic_authorized_operations(TOPIC_AUTHORIZED_OPERATIONS)
}

fn unknown_topic(name: String) -> DescribeTopicPartitionsResponseTopic {
    let code = if validate_topic_name(&name).is_err() {
        ResponseError::InvalidTopicException.code()
    } else {
        ResponseError::UnknownTopicOrPartition.code()
    };
    DescribeTopicPartitionsResponseTopic::default()
        .with_error_code(code)
        .with_is_internal(INTERNAL_TOPICS.contains(&name.as_str()))
        .with_name(Some(TopicName(name.into())))
}

fn cursor_at(topic: &str, partition: i32) -> Cursor {
    Cursor::default()
        .with_topic_name(TopicName(topic.to_string().into()))
        .with_partition_index(partition)
}

/// Kafka's error response: each named topic with the error, no partitions.
fn invalid_request(req: &DescribeTopicPartitionsRequest) -> DescribeTopicPartitionsResponse {
    let topics = req
        .topics
        .iter()
        .map(|t| {
            DescribeTopicPartitionsResponseTopic::default()
                .with_error_code(ResponseError::InvalidRequest.code())
                .with_name(Some(t.name.clone()))
        })
        .collect();
    DescribeTopicPartitionsResponse::default().with_topics(topics)
}
