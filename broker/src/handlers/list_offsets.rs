//! ListOffsets: earliest (-2, and -4 "earliest local", the same here), latest
//! (-1), or the first offset whose batch has a timestamp >= t (time index).

use std::rc::Rc;

use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};
use kafka_protocol::ResponseError;

use super::fan_out;
use crate::error::log_error_code;
use crate::shard::messages::{ListOffsetsPart, ListOffsetsPartResult, ShardRequest, ShardResponse};
use crate::shard::router::split_by_owner;
use crate::shard::Shard;

const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;
const EARLIEST_LOCAL: i64 = -4;

pub async fn handle(shard: &Rc<Shard>, req: ListOffsetsRequest, version: i16) -> ListOffsetsResponse {
    let catalog = shard.catalog();
    let mut results: Vec<ListOffsetsPartResult> = Vec::new();
    let mut work = Vec::new();
    let mut shape = Vec::new();
    for topic in req.topics {
        let name = topic.name.0.to_string();
        let meta = catalog.topic(&name);
        let mut indexes = Vec::new();
        for p in topic.partitions {
            let index = results.len();
            results.push(ListOffsetsPartResult {
                index,
                offset: -1,
                timestamp: -1,
                ..Default::default()
            });
            indexes.push((p.partition_index, index));
            match meta.and_then(|m| m.owner(p.partition_index, shard.count)) {
                Some(owner) => work.push((
                    owner,
                    ListOffsetsPart {
                        index,
                        topic: name.clone(),
                        partition: p.partition_index,
                        timestamp: p.timestamp,
                    },
                )),
                None => results[index].error_code = ResponseError::UnknownTopicOrPartition.code(),
            }
        }
        shape.push((topic.name, indexes));
    }
    let answers = fan_out(
        shard,
        split_by_owner(work, shard.count),
        |s, parts| Box::pin(async move { list_local(&s, parts).await }),
        |parts| ShardRequest::ListOffsets { parts },
        |answer| match answer {
            ShardResponse::ListOffsets(r) => Some(r),
            _ => None,
        },
    )
    .await;
    super::place(&mut results, answers, "list-offsets");
    let topics = shape
        .into_iter()
        .map(|(name, indexes)| {
            let partitions = indexes
                .into_iter()
                .map(|(partition, i)| {
                    let r = &results[i];
                    ListOffsetsPartitionResponse::default()
                        .with_partition_index(partition)
                        .with_error_code(r.error_code)
                        .with_offset(r.offset)
                        .with_timestamp(r.timestamp)
                        .with_leader_epoch(if version >= 4 { 0 } else { -1 })
                })
                .collect();
            ListOffsetsTopicResponse::default()
                .with_name(name)
                .with_partitions(partitions)
        })
        .collect();
    ListOffsetsResponse::default().with_topics(topics)
}

pub async fn list_local(shard: &Rc<Shard>, parts: Vec<ListOffsetsPart>) -> Vec<ListOffsetsPartResult> {
    let mut out = Vec::with_capacity(parts.len());
    for p in parts {
        let mut r = ListOffsetsPartResult {
            index: p.index,
            offset: -1,
            timestamp: -1,
            ..Default::default()
        };
        let Some(log) = shard.log(&p.topic, p.partition) else {
            r.error_code = ResponseError::UnknownTopicOrPartition.code();
            out.push(r);
            continue;
        };
        match p.timestamp {
            LATEST => r.offset = log.log_end_offset().0,
            EARLIEST | EARLIEST_LOCAL => r.offset = log.log_start_offset().0,
            MAX_TIMESTAMP => r.error_code = ResponseError::UnsupportedVersion.code(),
            t if t >= 0 => match log.offset_for_timestamp(t).await {
                Ok(Some((offset, ts))) => (r.offset, r.timestamp) = (offset.0, ts),
                Ok(None) => {}
                Err(e) => r.error_code = log_error_code(&e),
            },
            _ => r.error_code = ResponseError::InvalidRequest.code(),
        }
        out.push(r);
    }
    out
}
