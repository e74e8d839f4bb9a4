//! Transactional offsets (Kafka's GroupCoordinator txn handling): TxnOffsetCommit stores
//! offsets pending under the producer id (durable, invisible to OffsetFetch), and the end of
//! the transaction, sent by the transaction coordinator, commits (makes them the group's
//! committed offsets) or aborts (drops) them, durably. Runs on the group's coordinator shard.

use kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use kafka_protocol::messages::{TxnOffsetCommitRequest, TxnOffsetCommitResponse};
use kafka_protocol::ResponseError;

use super::coordinator::{wall_ms, GroupCoordinator};
use super::group::Group;
use super::offsets::check_partition;
use super::record::{CommittedOffset, StoreRecord};
use super::{GROUPS_PER_SHARD_MAX, NAME_BYTES_MAX};

impl GroupCoordinator {
    /// TxnOffsetCommit: validated as Kafka's doTxnCommitOffsets (a member id, when given,
    /// must be known; a generation, when given, current), then fdatasync'd before answering.
    pub async fn txn_offset_commit(&self, req: TxnOffsetCommitRequest) -> TxnOffsetCommitResponse {
        let group_id = req.group_id.as_str().to_owned();
        let group_result = self.validate_txn_commit(&req);
        let now_ms = wall_ms();
        let mut response = TxnOffsetCommitResponse::default();
        let mut records = Vec::new();
        let mut accepted = Vec::new();
        for (t, topic) in req.topics.iter().enumerate() {
            let mut out = TxnOffsetCommitResponseTopic::default();
            out.name = topic.name.clone();
            for (p, partition) in topic.partitions.iter().enumerate() {
                let metadata = partition.committed_metadata.as_deref().unwrap_or("");
                let result = group_result
                    .and_then(|()| check_partition(topic.name.as_str(), partition.partition_index, metadata));
                let mut po = TxnOffsetCommitResponsePartition::default();
                po.partition_index = partition.partition_index;
                po.error_code = result.err().map_or(0, |e| e.code());
                if result.is_ok() {
                    accepted.push((t, p));
                    records.push(StoreRecord::TxnCommit {
                        group: group_id.clone(),
                        producer_id: req.producer_id.0,
                        producer_epoch: req.producer_epoch,
                        topic: topic.name.as_str().to_owned(),
                        partition: partition.partition_index,
                        value: CommittedOffset {
                            offset: partition.committed_offset,
                            leader_epoch: partition.committed_leader_epoch,
                            metadata: metadata.to_owned(),
                            commit_timestamp_ms: now_ms,
                        },
                    });
                }
                out.partitions.push(po);
            }
            response.topics.push(out);
        }
        if let Err(e) = self.commit_records(&group_id, records).await {
            for (t, p) in accepted {
                response.topics[t].partitions[p].error_code = e.code();
            }
        }
        response
    }

    fn validate_txn_commit(&self, req: &TxnOffsetCommitRequest) -> Result<(), ResponseError> {
        if self.closed.get() {
            return Err(ResponseError::CoordinatorNotAvailable);
        }
        let group_id = req.group_id.as_str();
        if group_id.is_empty() || group_id.len() > NAME_BYTES_MAX {
            return Err(ResponseError::InvalidGroupId);
        }
        let mut groups = self.groups.borrow_mut();
        let Some(group) = groups.get_mut(group_id) else {
            if groups.len() >= GROUPS_PER_SHARD_MAX {
                return Err(ResponseError::CoordinatorNotAvailable);
            }
            groups.insert(group_id.to_owned(), Group::new(group_id.to_owned(), wall_ms()));
            return Ok(());
        };
        let member_id = req.member_id.as_str();
        if group.is_fenced(member_id, req.group_instance_id.as_deref()) {
            return Err(ResponseError::FencedInstanceId);
        }
        if !member_id.is_empty() && group.member_mut(member_id).is_none() {
            return Err(ResponseError::UnknownMemberId);
        }
        if req.generation_id >= 0 && req.generation_id != group.generation_id {
            return Err(ResponseError::IllegalGeneration);
        }
        Ok(())
    }

    /// The end of `producer_id`'s transaction at `producer_epoch` in `group_id`: durable
    /// before it returns.
    /// Nothing pending (a retry after a crash, or no offsets were sent): nothing written.
    pub async fn complete_txn(
        &self,
        group_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        commit: bool,
    ) -> Result<(), ResponseError> {
        let pending = self
            .store
            .state()
            .pending
            .get(group_id)
            .is_some_and(|p| p.contains_key(&producer_id));
        if !pending {
            return Ok(());
        }
        let record = StoreRecord::TxnEnd {
            group: group_id.to_owned(),
            producer_id,
            producer_epoch,
            commit,
        };
        self.store
            .append(vec![record])
            .await
            .map_err(|e| e.to_response_error())
    }
}
