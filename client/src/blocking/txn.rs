//! Transactions on the blocking `Client`: the calls of a transactional
//! producer (FindCoordinator, InitProducerId, AddPartitionsToTxn,
//! AddOffsetsToTxn, TxnOffsetCommit, EndTxn) for the broker's tests, and the
//! admin views (ListTransactions, DescribeTransactions) for `weir txn`.
//!
//! Blocking thread only, like the rest of `blocking`. Per-partition errors
//! come back as data, whole-request errors as `ClientError::Kafka`.

use kafka_protocol::messages::ApiKey;

use super::{Client, ClientError};
use crate::error::check;
use crate::requests::txn::{self, TxnId};

/// One ListTransactions entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnListing {
    pub transactional_id: String,
    pub producer_id: i64,
    pub state: String,
}

/// One DescribeTransactions entry; `error_code` is per transactional id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnDescription {
    pub error_code: i16,
    pub transactional_id: String,
    pub state: String,
    pub timeout_ms: i32,
    /// -1 when no transaction is open.
    pub start_time_ms: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    /// (topic, partition) in the transaction, by topic then partition.
    pub partitions: Vec<(String, i32)>,
}

impl Client {
    /// FindCoordinator for a transactional id: (node id, host, port).
    pub fn find_txn_coordinator(
        &mut self,
        transactional_id: &str,
    ) -> Result<(i32, String, i32), ClientError> {
        let r = self.call(txn::find_coordinator(transactional_id))?;
        check(ApiKey::FindCoordinator, r.error_code)?;
        Ok((r.node_id.0, r.host.to_string(), r.port))
    }

    /// InitProducerId for a transactional id: its producer id and new epoch.
    pub fn init_txn_producer_id(
        &mut self,
        transactional_id: &str,
        transaction_timeout_ms: i32,
    ) -> Result<(i64, i16), ClientError> {
        let r = self.call(txn::init_producer_id(transactional_id, transaction_timeout_ms))?;
        check(ApiKey::InitProducerId, r.error_code)?;
        Ok((r.producer_id.0, r.producer_epoch))
    }

    /// AddPartitionsToTxn; one (topic, partition, error code) per partition.
    pub fn add_partitions_to_txn(
        &mut self,
        id: TxnId<'_>,
        partitions: &[(&str, i32)],
    ) -> Result<Vec<(String, i32, i16)>, ClientError> {
        let r = self.call(txn::add_partitions(id, partitions))?;
        check(ApiKey::AddPartitionsToTxn, r.error_code)?;
        Ok(r.results_by_topic_v3_and_below
            .iter()
            .flat_map(|t| {
                t.results_by_partition
                    .iter()
                    .map(|p| (t.name.0.to_string(), p.partition_index, p.partition_error_code))
            })
            .collect())
    }

    pub fn add_offsets_to_txn(&mut self, id: TxnId<'_>, group_id: &str) -> Result<(), ClientError> {
        let r = self.call(txn::add_offsets(id, group_id))?;
        Ok(check(ApiKey::AddOffsetsToTxn, r.error_code)?)
    }

    /// TxnOffsetCommit; one (topic, partition, error code) per offset.
    pub fn txn_offset_commit(
        &mut self,
        id: TxnId<'_>,
        group_id: &str,
        offsets: &[(&str, i32, i64)],
    ) -> Result<Vec<(String, i32, i16)>, ClientError> {
        let r = self.call(txn::txn_offset_commit(id, group_id, offsets))?;
        Ok(r.topics
            .iter()
            .flat_map(|t| {
                t.partitions
                    .iter()
                    .map(|p| (t.name.0.to_string(), p.partition_index, p.error_code))
            })
            .collect())
    }

    /// EndTxn: commit or abort the open transaction of `id`.
    pub fn end_txn(&mut self, id: TxnId<'_>, commit: bool) -> Result<(), ClientError> {
        let r = self.call(txn::end_txn(id, commit))?;
        Ok(check(ApiKey::EndTxn, r.error_code)?)
    }

    /// Every transaction the broker knows, filtered by state names and
    /// producer ids (empty: no filter), sorted by transactional id.
    pub fn list_transactions(
        &mut self,
        states: &[&str],
        producer_ids: &[i64],
    ) -> Result<Vec<TxnListing>, ClientError> {
        let r = self.call(txn::list_transactions(states, producer_ids))?;
        check(ApiKey::ListTransactions, r.error_code)?;
        let mut listed: Vec<TxnListing> = r
            .transaction_states
            .iter()
            .map(|t| TxnListing {
                transactional_id: t.transactional_id.0.to_string(),
                producer_id: t.producer_id.0,
                state: t.transaction_state.to_string(),
            })
            .collect();
        listed.sort_by(|a, b| a.transactional_id.cmp(&b.transactional_id));
        Ok(listed)
    }

    pub fn describe_transactions(&mut self, ids: &[&str]) -> Result<Vec<TxnDescription>, ClientError> {
        let r = self.call(txn::describe_transactions(ids))?;
        Ok(r.transaction_states
            .iter()
            .map(|t| {
                let mut partitions: Vec<(String, i32)> = t
                    .topics
                    .iter()
                    .flat_map(|topic| topic.partitions.iter().map(|&p| (topic.topic.0.to_string(), p)))
                    .collect();
                partitions.sort();
                TxnDescription {
                    error_code: t.error_code,
                    transactional_id: t.transactional_id.0.to_string(),
                    state: t.transaction_state.to_string(),
                    timeout_ms: t.transaction_timeout_ms,
                    start_time_ms: t.transaction_start_time_ms,
                    producer_id: t.producer_id.0,
                    producer_epoch: t.producer_epoch,
                    partitions,
                }
            })
            .collect())
    }
}
