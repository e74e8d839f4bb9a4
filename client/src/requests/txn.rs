//! Transaction requests, as a transactional producer and the `weir txn`
//! commands send them: FindCoordinator for a transactional id, InitProducerId
//! with one, AddPartitionsToTxn (the v0-3 client form), AddOffsetsToTxn,
//! TxnOffsetCommit, EndTxn, ListTransactions and DescribeTransactions.
//!
//! Pure; any thread. The transaction's identity (id, producer id, epoch) is
//! passed as one `TxnId` so a request cannot pair one id with another's epoch.

use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use kafka_protocol::messages::txn_offset_commit_request::{
    TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic,
};
use kafka_protocol::messages::{
    AddOffsetsToTxnRequest, AddPartitionsToTxnRequest, DescribeTransactionsRequest, EndTxnRequest,
    FindCoordinatorRequest, GroupId, InitProducerIdRequest, ListTransactionsRequest, ProducerId,
    TransactionalId, TxnOffsetCommitRequest,
};

use super::{sb, topic_name};

/// FindCoordinator's key type for a transactional id.
pub const KEY_TYPE_TRANSACTION: i8 = 1;

/// A transactional producer as the coordinator knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxnId<'a> {
    pub transactional_id: &'a str,
    pub producer_id: i64,
    pub producer_epoch: i16,
}

fn txn_id(id: &str) -> TransactionalId {
    TransactionalId(sb(id))
}

/// FindCoordinator for one transactional id (v0-3 form: one key).
pub fn find_coordinator(transactional_id: &str) -> FindCoordinatorRequest {
    FindCoordinatorRequest::default()
        .with_key(sb(transactional_id))
        .with_key_type(KEY_TYPE_TRANSACTION)
}

/// InitProducerId for `transactional_id`: a new producer, or the current one
/// with its epoch bumped (which fences any older instance).
pub fn init_producer_id(transactional_id: &str, transaction_timeout_ms: i32) -> InitProducerIdRequest {
    InitProducerIdRequest::default()
        .with_transactional_id(Some(txn_id(transactional_id)))
        .with_transaction_timeout_ms(transaction_timeout_ms)
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1)
}

/// AddPartitionsToTxn in the client form (v0-3): `partitions` as (topic, partition).
pub fn add_partitions(txn: TxnId<'_>, partitions: &[(&str, i32)]) -> AddPartitionsToTxnRequest {
    let mut topics: Vec<AddPartitionsToTxnTopic> = Vec::new();
    for &(topic, partition) in partitions {
        match topics.iter_mut().find(|t| t.name.0.as_str() == topic) {
            Some(t) => t.partitions.push(partition),
            None => topics.push(
                AddPartitionsToTxnTopic::default()
                    .with_name(topic_name(topic))
                    .with_partitions(vec![partition]),
            ),
        }
    }
    AddPartitionsToTxnRequest::default()
        .with_v3_and_below_transactional_id(txn_id(txn.transactional_id))
        .with_v3_and_below_producer_id(ProducerId(txn.producer_id))
        .with_v3_and_below_producer_epoch(txn.producer_epoch)
        .with_v3_and_below_topics(topics)
}

pub fn add_offsets(txn: TxnId<'_>, group_id: &str) -> AddOffsetsToTxnRequest {
    AddOffsetsToTxnRequest::default()
        .with_transactional_id(txn_id(txn.transactional_id))
        .with_producer_id(ProducerId(txn.producer_id))
        .with_producer_epoch(txn.producer_epoch)
        .with_group_id(GroupId(sb(group_id)))
}

/// TxnOffsetCommit of `offsets` as (topic, partition, next offset to read),
/// outside any generation (a producer that is not a group member, as
/// `sendOffsetsToTransaction(offsets, groupId)` sends it).
pub fn txn_offset_commit(
    txn: TxnId<'_>,
    group_id: &str,
    offsets: &[(&str, i32, i64)],
) -> TxnOffsetCommitRequest {
    let mut topics: Vec<TxnOffsetCommitRequestTopic> = Vec::new();
    for &(topic, partition, offset) in offsets {
        let p = TxnOffsetCommitRequestPartition::default()
            .with_partition_index(partition)
            .with_committed_offset(offset)
            .with_committed_leader_epoch(-1);
        match topics.iter_mut().find(|t| t.name.0.as_str() == topic) {
            Some(t) => t.partitions.push(p),
            None => topics.push(
                TxnOffsetCommitRequestTopic::default()
                    .with_name(topic_name(topic))
                    .with_partitions(vec![p]),
            ),
        }
    }
    TxnOffsetCommitRequest::default()
        .with_transactional_id(txn_id(txn.transactional_id))
        .with_group_id(GroupId(sb(group_id)))
        .with_producer_id(ProducerId(txn.producer_id))
        .with_producer_epoch(txn.producer_epoch)
        .with_generation_id(-1)
        .with_topics(topics)
}

pub fn end_txn(txn: TxnId<'_>, commit: bool) -> EndTxnRequest {
    EndTxnRequest::default()
        .with_transactional_id(txn_id(txn.transactional_id))
        .with_producer_id(ProducerId(txn.producer_id))
        .with_producer_epoch(txn.producer_epoch)
        .with_committed(commit)
}

/// ListTransactions, optionally only those in `states` (Kafka's names, e.g.
/// "Ongoing") or of `producer_ids`; empty filters match everything.
pub fn list_transactions(states: &[&str], producer_ids: &[i64]) -> ListTransactionsRequest {
    ListTransactionsRequest::default()
        .with_state_filters(states.iter().map(|s| sb(s)).collect())
        .with_producer_id_filters(producer_ids.iter().map(|&p| ProducerId(p)).collect())
        .with_duration_filter(-1)
}

pub fn describe_transactions(transactional_ids: &[&str]) -> DescribeTransactionsRequest {
    DescribeTransactionsRequest::default()
        .with_transactional_ids(transactional_ids.iter().map(|id| txn_id(id)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_partitions_of_two_topics_when_added_should_group_them_by_topic_in_order() {
        let txn = TxnId {
            transactional_id: "t",
            producer_id: 7,
            producer_epoch: 2,
        };
        let r = add_partitions(txn, &[("a", 1), ("b", 0), ("a", 0)]);
        let topics: Vec<(&str, Vec<i32>)> = r
            .v3_and_below_topics
            .iter()
            .map(|t| (t.name.0.as_str(), t.partitions.clone()))
            .collect();
        assert_eq!(topics, vec![("a", vec![1, 0]), ("b", vec![0])]);
        assert_eq!(r.v3_and_below_producer_id, ProducerId(7));
        assert_eq!(r.v3_and_below_producer_epoch, 2);
    }

    #[test]
    fn given_no_filters_when_listing_should_send_empty_filters_and_no_duration_limit() {
        let r = list_transactions(&[], &[]);
        assert!(r.state_filters.is_empty() && r.producer_id_filters.is_empty());
        assert_eq!(r.duration_filter, -1);
    }
}
