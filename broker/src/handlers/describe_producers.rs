//! DescribeProducers: the idempotent producers each asked partition knows (id,
//! epoch, last sequence, last timestamp, first offset of the ongoing
//! transaction), read on the partition's owner. The partition does not keep
//! the coordinator epoch, so that is -1.

use std::rc::Rc;

use kafka_protocol::messages::describe_producers_response::{
    PartitionResponse, ProducerState, TopicResponse,
};
use kafka_protocol::messages::{DescribeProducersRequest, DescribeProducersResponse, ProducerId};
use kafka_protocol::ResponseError;

use super::{ownership_error, ShardContext};
use crate::log::producers::ProducerView;
use crate::shard::router::{owner_of, split_by_owner};
use crate::shard::{fan_out, place, Slotted, Task};

/// One partition to describe, for its owner.
pub struct ProducersPart {
    /// Slot in the client's response.
    pub index: usize,
    pub topic: String,
    pub partition: i32,
}

/// One slot's answer: its partition's producers, or an error code.
pub struct ProducersAnswer {
    pub index: usize,
    pub producers: Result<Vec<ProducerView>, i16>,
}

impl Slotted for ProducersAnswer {
    fn slot(&self) -> usize {
        self.index
    }
}

/// Describe the parts one shard owns.
pub struct DescribeProducers(pub Vec<ProducersPart>);

impl Task<ShardContext> for DescribeProducers {
    type Output = Vec<ProducersAnswer>;

    async fn run(self, shard: Rc<ShardContext>) -> Self::Output {
        self.0
            .into_iter()
            .map(|p| ProducersAnswer {
                index: p.index,
                producers: shard
                    .partitions
                    .owned(&p.topic, p.partition)
                    .map(|log| log.producers())
                    .map_err(|o| ownership_error(o).code()),
            })
            .collect()
    }
}

pub async fn handle(shard: &Rc<ShardContext>, req: DescribeProducersRequest) -> DescribeProducersResponse {
    let catalog = shard.catalog();
    let unknown = ResponseError::UnknownTopicOrPartition.code();
    let mut results: Vec<ProducersAnswer> = Vec::new();
    let mut work = Vec::new();
    let mut shape = Vec::with_capacity(req.topics.len());
    for topic in req.topics {
        let name = topic.name.to_string();
        let meta = catalog.topic(&name);
        let mut slots = Vec::with_capacity(topic.partition_indexes.len());
        for partition in topic.partition_indexes {
            let index = results.len();
            slots.push((partition, index));
            let mut producers = Err(unknown);
            if let Some(owner) = owner_of(meta, partition, shard.count) {
                // Until the owner answers: an unreachable owner leaves a retriable error.
                producers = Err(ResponseError::RequestTimedOut.code());
                let (topic, index) = (name.clone(), index);
                work.push((
                    owner,
                    ProducersPart {
                        index,
                        topic,
                        partition,
                    },
                ));
            }
            results.push(ProducersAnswer { index, producers });
        }
        shape.push((topic.name, slots));
    }
    let answers = fan_out(shard, split_by_owner(work, shard.count), DescribeProducers).await;
    place(&mut results, answers, "describe-producers");
    let topics = shape
        .into_iter()
        .map(|(name, slots)| {
            let partitions = slots
                .into_iter()
                .map(|(partition, i)| partition_response(partition, &results[i].producers))
                .collect();
            TopicResponse::default()
                .with_name(name)
                .with_partitions(partitions)
        })
        .collect();
    DescribeProducersResponse::default().with_topics(topics)
}

fn partition_response(partition: i32, result: &Result<Vec<ProducerView>, i16>) -> PartitionResponse {
    let out = PartitionResponse::default().with_partition_index(partition);
    match result {
        Err(code) => out.with_error_code(*code),
        Ok(producers) => out.with_active_producers(
            producers
                .iter()
                .map(|p| {
                    ProducerState::default()
                        .with_producer_id(ProducerId(p.producer_id))
                        .with_producer_epoch(i32::from(p.epoch))
                        .with_last_sequence(p.last_sequence)
                        .with_last_timestamp(p.last_timestamp_ms)
                        .with_coordinator_epoch(-1)
                        .with_current_txn_start_offset(p.txn_first_offset.map_or(-1, |o| o.0))
                })
                .collect(),
        ),
    }
}
