//! ListOffsets: earliest (-2, and -4 "earliest local", the same here), latest
//! (-1; the last stable offset for isolation level 1), or the first offset whose batch has a timestamp >= t (time index).

use std::rc::Rc;

use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};
use kafka_protocol::ResponseError;

use super::{ownership_error, wire_offset, ShardContext};
use crate::error::log_error_code;
use crate::log::{Offset, PartitionLog};
use crate::shard::router::{owner_of, split_by_owner};
use crate::shard::{fan_out, place, Slotted, Task};

/// One partition to look up, for its owner.
pub struct ListOffsetsPart {
    /// Slot in the client's response.
    pub index: usize,
    pub topic: String,
    pub partition: i32,
    /// A timestamp in ms, or one of the LATEST/EARLIEST/... sentinels.
    pub timestamp: i64,
    /// Isolation level 1: LATEST is the last stable offset.
    pub read_committed: bool,
}

#[derive(Debug, Clone, Default)]
pub struct ListOffsetsPartResult {
    pub index: usize,
    pub error_code: i16,
    /// The offset found and its record's timestamp (`None`: no such record).
    pub found: Option<(Offset, i64)>,
}

impl Slotted for ListOffsetsPartResult {
    fn slot(&self) -> usize {
        self.index
    }
}

/// Look up parts owned by one shard.
pub struct ListOffsets(pub Vec<ListOffsetsPart>);

const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;
const EARLIEST_LOCAL: i64 = -4;

pub async fn handle(shard: &Rc<ShardContext>, req: ListOffsetsRequest, version: i16) -> ListOffsetsResponse {
    let catalog = shard.catalog();
    let read_committed = req.isolation_level == 1;
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
                ..Default::default()
            });
            indexes.push((p.partition_index, index));
            match owner_of(meta, p.partition_index, shard.count) {
                Some(owner) => work.push((
                    owner,
                    ListOffsetsPart {
                        index,
                        topic: name.clone(),
                        partition: p.partition_index,
                        timestamp: p.timestamp,
                        read_committed,
                    },
                )),
                None => results[index].error_code = ResponseError::UnknownTopicOrPartition.code(),
            }
        }
        shape.push((topic.name, indexes));
    }
    let answers = fan_out(shard, split_by_owner(work, shard.count), ListOffsets).await;
    place(&mut results, answers, "list-offsets");
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
                        .with_offset(wire_offset(r.found.map(|(offset, _)| offset)))
                        .with_timestamp(r.found.map_or(-1, |(_, timestamp)| timestamp))
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

impl Task<ShardContext> for ListOffsets {
    type Output = Vec<ListOffsetsPartResult>;

    async fn run(self, shard: Rc<ShardContext>) -> Vec<ListOffsetsPartResult> {
        let mut out = Vec::with_capacity(self.0.len());
        for p in self.0 {
            let mut r = ListOffsetsPartResult {
                index: p.index,
                ..Default::default()
            };
            match shard.partitions.owned(&p.topic, p.partition) {
                Ok(log) => match lookup(&log, p.timestamp, p.read_committed).await {
                    Ok(found) => r.found = found,
                    Err(code) => r.error_code = code,
                },
                Err(o) => r.error_code = ownership_error(o).code(),
            }
            out.push(r);
        }
        out
    }
}

/// The offset ListOffsets answers for `timestamp` (or a sentinel), with the
/// timestamp it reports (-1 for the sentinels, as Kafka does).
async fn lookup(
    log: &PartitionLog,
    timestamp: i64,
    read_committed: bool,
) -> Result<Option<(Offset, i64)>, i16> {
    match timestamp {
        LATEST if read_committed => Ok(Some((log.last_stable_offset(), -1))),
        LATEST => Ok(Some((log.log_end_offset(), -1))),
        EARLIEST | EARLIEST_LOCAL => Ok(Some((log.log_start_offset(), -1))),
        MAX_TIMESTAMP => Err(ResponseError::UnsupportedVersion.code()),
        t if t >= 0 => log.offset_for_timestamp(t).await.map_err(|e| log_error_code(&e)),
        _ => Err(ResponseError::InvalidRequest.code()),
    }
}
