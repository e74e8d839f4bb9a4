//! DeleteRecords: move partitions' log start offsets. Each part goes to its owning
//! shard, which moves the start durably (`PartitionLog::delete_records_before`);
//! the answer is the new low watermark (log start offset) per partition. Offset -1
//! means the high watermark; one beyond it, or negative, OFFSET_OUT_OF_RANGE with
//! nothing changed, as Kafka's `ReplicaManager.deleteRecordsOnLocalLog`.

use std::rc::Rc;

use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse};
use kafka_protocol::ResponseError;

use super::{ownership_error, ShardContext};
use crate::error::log_error_code;
use crate::log::Offset;
use crate::shard::router::{owner_of, split_by_owner};
use crate::shard::{fan_out, place, Slotted, Task};

/// Kafka's `DeleteRecordsRequest.HIGH_WATERMARK`.
const HIGH_WATERMARK: i64 = -1;

/// One partition whose start moves, for its owner.
pub struct DeleteRecordsPart {
    pub index: usize,
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
}

#[derive(Debug, Clone)]
pub struct DeleteRecordsPartResult {
    pub index: usize,
    pub error_code: i16,
    /// The log start offset afterwards; -1 on error.
    pub low_watermark: i64,
}

impl Slotted for DeleteRecordsPartResult {
    fn slot(&self) -> usize {
        self.index
    }
}

/// Parts owned by one shard.
pub struct DeleteRecords(pub Vec<DeleteRecordsPart>);

pub async fn handle(shard: &Rc<ShardContext>, req: DeleteRecordsRequest) -> DeleteRecordsResponse {
    let catalog = shard.catalog();
    let mut results = Vec::new();
    let mut work = Vec::new();
    let mut shape = Vec::new();
    for topic in req.topics {
        let name = topic.name.0.to_string();
        let meta = catalog.topic(&name);
        let mut indexes = Vec::new();
        for p in topic.partitions {
            let index = results.len();
            // Pre-filled: a shard that cannot be reached leaves this answer.
            results.push(DeleteRecordsPartResult {
                index,
                error_code: ResponseError::RequestTimedOut.code(),
                low_watermark: -1,
            });
            indexes.push((p.partition_index, index));
            match owner_of(meta, p.partition_index, shard.count) {
                Some(owner) => work.push((
                    owner,
                    DeleteRecordsPart {
                        index,
                        topic: name.clone(),
                        partition: p.partition_index,
                        offset: p.offset,
                    },
                )),
                None => results[index].error_code = ResponseError::UnknownTopicOrPartition.code(),
            }
        }
        shape.push((topic.name, indexes));
    }
    let answers = fan_out(shard, split_by_owner(work, shard.count), DeleteRecords).await;
    place(&mut results, answers, "delete-records");
    let topics = shape
        .into_iter()
        .map(|(name, indexes)| {
            let partitions = indexes
                .into_iter()
                .map(|(partition, i)| {
                    DeleteRecordsPartitionResult::default()
                        .with_partition_index(partition)
                        .with_error_code(results[i].error_code)
                        .with_low_watermark(results[i].low_watermark)
                })
                .collect();
            DeleteRecordsTopicResult::default()
                .with_name(name)
                .with_partitions(partitions)
        })
        .collect();
    DeleteRecordsResponse::default().with_topics(topics)
}

impl Task<ShardContext> for DeleteRecords {
    type Output = Vec<DeleteRecordsPartResult>;

    async fn run(self, shard: Rc<ShardContext>) -> Vec<DeleteRecordsPartResult> {
        let mut out = Vec::with_capacity(self.0.len());
        for p in self.0 {
            let mut r = DeleteRecordsPartResult {
                index: p.index,
                error_code: 0,
                low_watermark: -1,
            };
            match shard.partitions.owned(&p.topic, p.partition) {
                Ok(log) => {
                    let target = (p.offset != HIGH_WATERMARK).then_some(Offset(p.offset));
                    match log.delete_records_before(target).await {
                        Ok(start) => r.low_watermark = start.0,
                        Err(e) => r.error_code = log_error_code(&e),
                    }
                }
                Err(o) => r.error_code = ownership_error(o).code(),
            }
            out.push(r);
        }
        out
    }
}
