//! The group side of transactions, as seen from the handlers: TxnOffsetCommit (checked
//! against the transaction coordinator, then stored pending under the producer id by the
//! group's coordinator) and, when a transaction ends, the completion of its offsets in
//! each group (commit: they become the committed offsets; abort: dropped), each run on the
//! group's coordinator shard and durable before it returns.

use std::rc::Rc;

use kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use kafka_protocol::messages::{TxnOffsetCommitRequest, TxnOffsetCommitResponse};
use kafka_protocol::ResponseError;

use super::groups::call;
use super::txn::{on_owner, VerifyOffsets};
use super::ShardContext;
use crate::groups::call::{GroupAnswer, GroupCall};
use crate::shard::router::owner_of;
use crate::txn::{TxnError, NAME_BYTES_MAX};

/// The request's partitions in order: the response is built in this shape.
type Shape = Vec<(kafka_protocol::messages::TopicName, Vec<i32>)>;

/// Complete `producer_id`'s pending offsets in `group`: durable before it returns.
pub async fn complete_group(
    shard: &Rc<ShardContext>,
    group: &str,
    producer_id: i64,
    producer_epoch: i16,
    commit: bool,
) -> Result<(), TxnError> {
    let complete = GroupCall::CompleteTxn {
        group_id: group.to_string(),
        producer_id,
        producer_epoch,
        commit,
    };
    match call(shard, group, complete).await {
        Ok(GroupAnswer::CompleteTxn(Ok(()))) => Ok(()),
        other => {
            let code = match other {
                Ok(GroupAnswer::CompleteTxn(Err(code))) | Err(code) => code,
                _ => -1,
            };
            tracing::warn!(
                group,
                producer_id,
                code,
                "completing transactional offsets failed"
            );
            Err(TxnError::Unavailable)
        }
    }
}

/// TxnOffsetCommit. The transaction must be the producer's current one, Ongoing, with the
/// group added (AddOffsetsToTxn): a zombie's offsets are never stored pending, where the
/// next commit of the same producer id would make them visible.
pub async fn txn_offset_commit(
    shard: &Rc<ShardContext>,
    req: TxnOffsetCommitRequest,
    version: i16,
) -> TxnOffsetCommitResponse {
    let txn_id = req.transactional_id.0.to_string();
    let group = req.group_id.0.to_string();
    let verdict = if txn_id.is_empty() || txn_id.len() > NAME_BYTES_MAX {
        Err(ResponseError::InvalidRequest.code())
    } else if group.is_empty() || group.len() > NAME_BYTES_MAX {
        Err(ResponseError::InvalidGroupId.code())
    } else {
        let verify = VerifyOffsets {
            txn_id: txn_id.clone(),
            producer_id: req.producer_id.0,
            epoch: req.producer_epoch,
            group: group.clone(),
        };
        // KIP-588: PRODUCER_FENCED from TxnOffsetCommit v3.
        on_owner(shard, &txn_id, verify)
            .await
            .map_err(|e| e.code(version >= 3))
    };
    let shape: Shape = req
        .topics
        .iter()
        .map(|t| {
            (
                t.name.clone(),
                t.partitions.iter().map(|p| p.partition_index).collect(),
            )
        })
        .collect();
    let answered = match verdict {
        Ok(()) => commit_on_group(shard, &group, req, &shape).await,
        Err(_) => Vec::new(),
    };
    let code_of = |topic: &str, p: i32| -> i16 {
        match verdict {
            Err(code) => code,
            Ok(()) => answered
                .iter()
                .find(|(t, q, _)| t == topic && *q == p)
                .map_or(ResponseError::UnknownServerError.code(), |a| a.2),
        }
    };
    let topics = shape
        .into_iter()
        .map(|(name, parts)| {
            let partitions = parts
                .into_iter()
                .map(|p| {
                    TxnOffsetCommitResponsePartition::default()
                        .with_partition_index(p)
                        .with_error_code(code_of(name.0.as_str(), p))
                })
                .collect();
            TxnOffsetCommitResponseTopic::default()
                .with_name(name)
                .with_partitions(partitions)
        })
        .collect();
    TxnOffsetCommitResponse::default().with_topics(topics)
}

/// Store the known partitions' offsets pending in `group`; unknown partitions get
/// UNKNOWN_TOPIC_OR_PARTITION. (topic, partition, code) for every partition.
async fn commit_on_group(
    shard: &Rc<ShardContext>,
    group: &str,
    mut req: TxnOffsetCommitRequest,
    shape: &Shape,
) -> Vec<(String, i32, i16)> {
    let mut answered: Vec<(String, i32, i16)> = Vec::new();
    let catalog = shard.catalog();
    for topic in &mut req.topics {
        let meta = catalog.topic(topic.name.0.as_str());
        topic.partitions.retain(|p| {
            let known = owner_of(meta, p.partition_index, shard.count).is_some();
            if !known {
                let unknown = ResponseError::UnknownTopicOrPartition.code();
                answered.push((topic.name.0.to_string(), p.partition_index, unknown));
            }
            known
        });
    }
    match call(shard, group, GroupCall::TxnCommit(req)).await {
        Ok(GroupAnswer::TxnCommit(r)) => {
            for t in r.topics {
                for p in t.partitions {
                    answered.push((t.name.0.to_string(), p.partition_index, p.error_code));
                }
            }
        }
        Ok(_) => unreachable!("TxnCommit answers TxnCommit"),
        Err(code) => {
            for (name, parts) in shape {
                answered.extend(parts.iter().map(|&p| (name.0.to_string(), p, code)));
            }
        }
    }
    answered
}
