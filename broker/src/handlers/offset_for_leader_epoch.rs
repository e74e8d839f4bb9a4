//! OffsetForLeaderEpoch: the end offset of a leader epoch, which clients ask
//! after a leader change or to validate a position (KIP-320). Weir is one node
//! whose partitions have had one leader since creation, at epoch 0 (what
//! Metadata and ListOffsets report), so Kafka's epoch cache reduces to one
//! entry: epoch 0 ends at the log end offset (asked on the owner shard, through
//! ListOffsets' task), a later epoch is unknown (-1, -1), and a
//! `current_leader_epoch` other than 0 (or -1, "don't check") is fenced (older)
//! or unknown (newer), as Kafka's leader answers.

use std::rc::Rc;

use kafka_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderTopicResult,
};
use kafka_protocol::messages::{OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse};
use kafka_protocol::ResponseError;

use super::list_offsets::{ListOffsets, ListOffsetsPart, ListOffsetsPartResult};
use super::{wire_offset, ShardContext};
use crate::shard::router::{owner_of, split_by_owner};
use crate::shard::{fan_out, place};

/// The only leader epoch a Weir partition has.
const LEADER_EPOCH: i32 = 0;
const LATEST: i64 = -1;

/// What the epoch checks alone decide, before any log is asked.
fn epoch_verdict(current_leader_epoch: i32, leader_epoch: i32) -> Result<bool, ResponseError> {
    match current_leader_epoch {
        -1 | LEADER_EPOCH => {}
        c if c < LEADER_EPOCH => return Err(ResponseError::FencedLeaderEpoch),
        _ => return Err(ResponseError::UnknownLeaderEpoch),
    }
    // true: epoch 0, whose end is the log end offset; false: undefined (-1, -1).
    Ok(leader_epoch == LEADER_EPOCH)
}

pub async fn handle(
    shard: &Rc<ShardContext>,
    req: OffsetForLeaderEpochRequest,
) -> OffsetForLeaderEpochResponse {
    let catalog = shard.catalog();
    let mut results: Vec<ListOffsetsPartResult> = Vec::new();
    // Per result slot: whether its log was asked (epoch 0 on an existing partition).
    let mut asked: Vec<bool> = Vec::new();
    let mut work = Vec::new();
    let mut shape = Vec::with_capacity(req.topics.len());
    for topic in req.topics {
        let name = topic.topic.0.to_string();
        let meta = catalog.topic(&name);
        let mut indexes = Vec::with_capacity(topic.partitions.len());
        for p in topic.partitions {
            let index = results.len();
            results.push(ListOffsetsPartResult {
                index,
                ..Default::default()
            });
            asked.push(false);
            let owner = owner_of(meta, p.partition, shard.count);
            let verdict = epoch_verdict(p.current_leader_epoch, p.leader_epoch);
            match (owner, verdict) {
                (None, _) => results[index].error_code = ResponseError::UnknownTopicOrPartition.code(),
                (_, Err(e)) => results[index].error_code = e.code(),
                (Some(_), Ok(false)) => {}
                (Some(owner), Ok(true)) => {
                    asked[index] = true;
                    work.push((
                        owner,
                        ListOffsetsPart {
                            index,
                            topic: name.clone(),
                            partition: p.partition,
                            timestamp: LATEST,
                            read_committed: false,
                        },
                    ));
                }
            }
            indexes.push((p.partition, index));
        }
        shape.push((topic.topic, indexes));
    }
    let answers = fan_out(shard, split_by_owner(work, shard.count), ListOffsets).await;
    place(&mut results, answers, "offset-for-leader-epoch");
    let topics = shape
        .into_iter()
        .map(|(name, indexes)| {
            let partitions = indexes
                .into_iter()
                .map(|(partition, i)| {
                    let r = &results[i];
                    let known = asked[i] && r.error_code == 0;
                    EpochEndOffset::default()
                        .with_partition(partition)
                        .with_error_code(r.error_code)
                        .with_leader_epoch(if known { LEADER_EPOCH } else { -1 })
                        .with_end_offset(if known {
                            wire_offset(r.found.map(|(o, _)| o))
                        } else {
                            -1
                        })
                })
                .collect();
            OffsetForLeaderTopicResult::default()
                .with_topic(name)
                .with_partitions(partitions)
        })
        .collect();
    OffsetForLeaderEpochResponse::default().with_topics(topics)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_epochs_when_checked_should_answer_as_a_leader_with_one_epoch() {
        assert_eq!(epoch_verdict(-1, 0), Ok(true), "no current-epoch check, epoch 0");
        assert_eq!(epoch_verdict(0, 0), Ok(true));
        assert_eq!(epoch_verdict(0, 3), Ok(false), "a later epoch is undefined");
        assert_eq!(epoch_verdict(0, -1), Ok(false));
        assert_eq!(epoch_verdict(2, 0), Err(ResponseError::UnknownLeaderEpoch));
        assert_eq!(epoch_verdict(-5, 0), Err(ResponseError::FencedLeaderEpoch));
    }
}
