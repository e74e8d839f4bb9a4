//! Resetting a share group's start offsets: AlterShareGroupOffsets (91) sets the SPSO of
//! named share-partitions, DeleteShareGroupOffsets (92) forgets a group's state for whole
//! topics. Both need a group without members (NON_EMPTY_GROUP otherwise, as Kafka), run on
//! each partition's owner shard (`crate::share`), and are durable before the answer.

use std::rc::Rc;

use kafka_protocol::messages::alter_share_group_offsets_response::{
    AlterShareGroupOffsetsResponsePartition as AltPart, AlterShareGroupOffsetsResponseTopic as AltTopic,
};
use kafka_protocol::messages::delete_share_group_offsets_response::DeleteShareGroupOffsetsResponseTopic as DelTopic;
use kafka_protocol::messages::{
    AlterShareGroupOffsetsRequest, AlterShareGroupOffsetsResponse, DeleteShareGroupOffsetsRequest,
    DeleteShareGroupOffsetsResponse,
};
use kafka_protocol::ResponseError;

use super::groups::call;
use super::{ownership_error, ShardContext};
use crate::groups::call::{GroupAnswer, GroupCall};
use crate::shard::router::{owner_of, split_by_owner};
use crate::shard::{fan_out, Task};

/// Partitions one AlterShareGroupOffsets may name.
const PARTITIONS_MAX: usize = 100_000;

/// Refuses a group with members: NON_EMPTY_GROUP.
async fn require_empty(shard: &Rc<ShardContext>, group: &str) -> Result<(), ResponseError> {
    let ask = GroupCall::ShareDescribe {
        group_id: group.to_owned(),
    };
    match call(shard, group, ask).await {
        Ok(GroupAnswer::ShareDescribe(d)) if d.members.is_empty() => Ok(()),
        Ok(_) => Err(ResponseError::NonEmptyGroup),
        Err(_) => Err(ResponseError::CoordinatorNotAvailable),
    }
}

/// Sets share-partition start offsets on one owner: (slot, topic, partition, offset).
pub struct ResetTask {
    group: String,
    parts: Vec<(usize, String, i32, i64)>,
}

impl Task<ShardContext> for ResetTask {
    type Output = Vec<(usize, i16)>;

    async fn run(self, shard: Rc<ShardContext>) -> Self::Output {
        let mut out = Vec::with_capacity(self.parts.len());
        let Some(share) = shard.share() else {
            return self
                .parts
                .iter()
                .map(|p| (p.0, ResponseError::CoordinatorNotAvailable.code()))
                .collect();
        };
        for (i, topic, partition, offset) in self.parts {
            let log = match shard.partitions.owned(&topic, partition) {
                Ok(log) => log,
                Err(o) => {
                    out.push((i, ownership_error(o).code()));
                    continue;
                }
            };
            if !(log.log_start_offset().0..=log.log_end_offset().0).contains(&offset) {
                out.push((i, ResponseError::OffsetOutOfRange.code()));
                continue;
            }
            let code = match share.reset((self.group.clone(), topic, partition), offset).await {
                Ok(()) => 0,
                Err(e) => {
                    tracing::error!(error = %e, "share state: reset not durable");
                    ResponseError::KafkaStorageError.code()
                }
            };
            out.push((i, code));
        }
        out
    }
}

pub async fn alter_offsets(
    shard: &Rc<ShardContext>,
    req: AlterShareGroupOffsetsRequest,
) -> AlterShareGroupOffsetsResponse {
    let group = req.group_id.0.to_string();
    let count: usize = req.topics.iter().map(|t| t.partitions.len()).sum();
    let refused = if count > PARTITIONS_MAX {
        Err(ResponseError::InvalidRequest)
    } else {
        require_empty(shard, &group).await
    };
    if let Err(e) = refused {
        return AlterShareGroupOffsetsResponse::default().with_error_code(e.code());
    }
    let catalog = shard.catalog();
    let mut topics: Vec<AltTopic> = Vec::new();
    let mut slots: Vec<(usize, usize)> = Vec::new();
    let mut work = Vec::new();
    for (ti, t) in req.topics.into_iter().enumerate() {
        let meta = catalog.topic(&t.topic_name);
        let mut topic = AltTopic::default()
            .with_topic_name(t.topic_name.clone())
            .with_topic_id(meta.map(|m| m.uuid()).unwrap_or_default());
        for (pi, p) in t.partitions.iter().enumerate() {
            let mut part = AltPart::default().with_partition_index(p.partition_index);
            match (meta, owner_of(meta, p.partition_index, shard.count)) {
                (Some(m), Some(owner)) => {
                    work.push((
                        owner,
                        (slots.len(), m.name.clone(), p.partition_index, p.start_offset),
                    ));
                    slots.push((ti, pi));
                }
                _ => part = part.with_error_code(ResponseError::UnknownTopicOrPartition.code()),
            }
            topic.partitions.push(part);
        }
        topics.push(topic);
    }
    let answers = fan_out(shard, split_by_owner(work, shard.count), |parts| ResetTask {
        group: group.clone(),
        parts,
    })
    .await;
    for (owner, answer) in answers {
        match answer {
            Ok(codes) => codes.into_iter().for_each(|(i, code)| {
                let (ti, pi) = slots[i];
                topics[ti].partitions[pi].error_code = code;
            }),
            Err(e) => tracing::warn!(owner, error = %e, "share reset forward failed"),
        }
    }
    AlterShareGroupOffsetsResponse::default().with_responses(topics)
}

/// Forgets a group's share-partitions of some topics on one shard.
pub struct ForgetTask {
    group: String,
    topics: Vec<String>,
}

impl Task<ShardContext> for ForgetTask {
    type Output = i16;

    async fn run(self, shard: Rc<ShardContext>) -> i16 {
        let Some(share) = shard.share() else {
            return ResponseError::CoordinatorNotAvailable.code();
        };
        match share
            .forget(|k| k.0 == self.group && self.topics.contains(&k.1))
            .await
        {
            Ok(()) => 0,
            Err(e) => {
                tracing::error!(error = %e, "share state: delete not durable");
                ResponseError::KafkaStorageError.code()
            }
        }
    }
}

pub async fn delete_offsets(
    shard: &Rc<ShardContext>,
    req: DeleteShareGroupOffsetsRequest,
) -> DeleteShareGroupOffsetsResponse {
    let group = req.group_id.0.to_string();
    if let Err(e) = require_empty(shard, &group).await {
        return DeleteShareGroupOffsetsResponse::default().with_error_code(e.code());
    }
    let catalog = shard.catalog();
    let names: Vec<String> = req
        .topics
        .iter()
        .take(PARTITIONS_MAX)
        .map(|t| t.topic_name.to_string())
        .collect();
    let work: Vec<Vec<()>> = (0..shard.count).map(|_| vec![()]).collect();
    let answers = fan_out(shard, work, |_| ForgetTask {
        group: group.clone(),
        topics: names.clone(),
    })
    .await;
    let failed = answers
        .iter()
        .find_map(|(_, a)| match a {
            Ok(0) => None,
            Ok(code) => Some(*code),
            Err(_) => Some(ResponseError::CoordinatorNotAvailable.code()),
        })
        .unwrap_or(0);
    let responses = req
        .topics
        .into_iter()
        .map(|t| {
            let meta = catalog.topic(&t.topic_name);
            let code = if meta.is_none() {
                ResponseError::UnknownTopicOrPartition.code()
            } else {
                failed
            };
            DelTopic::default()
                .with_topic_id(meta.map(|m| m.uuid()).unwrap_or_default())
                .with_topic_name(t.topic_name)
                .with_error_code(code)
        })
        .collect();
    DeleteShareGroupOffsetsResponse::default().with_responses(responses)
}
