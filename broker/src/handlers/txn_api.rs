//! The client-facing transaction APIs: InitProducerId (with a transactional id),
//! AddPartitionsToTxn (v0-3, the client form), AddOffsetsToTxn, EndTxn,
//! ListTransactions and DescribeTransactions. Each request is checked here (on
//! the shard that received it) and run on the id's coordinator shard
//! (`txn::on_owner`). PRODUCER_FENCED exists from the versions KIP-588 added
//! (InitProducerId 4, AddPartitions/AddOffsets/EndTxn 2); older versions get
//! INVALID_PRODUCER_EPOCH, as Kafka converts it.

use std::rc::Rc;

use kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnTopicResult,
};
use kafka_protocol::messages::describe_transactions_response::{self as dtr, TopicData};
use kafka_protocol::messages::list_transactions_response::TransactionState as ListedTxn;
use kafka_protocol::messages::{
    AddOffsetsToTxnRequest, AddOffsetsToTxnResponse, AddPartitionsToTxnRequest, AddPartitionsToTxnResponse,
    DescribeTransactionsRequest, DescribeTransactionsResponse, EndTxnRequest, EndTxnResponse,
    InitProducerIdRequest, InitProducerIdResponse, ListTransactionsRequest, ListTransactionsResponse,
    ProducerId, TopicName, TransactionalId,
};
use kafka_protocol::ResponseError;

use super::txn::{on_owner, AddToTxn, DescribeTxn, EndTxn, InitTxn, ListTxns};
use super::ShardContext;
use crate::txn::{TxnState, NAME_BYTES_MAX, TRANSACTION_MAX_TIMEOUT_MS};

const STATE_NAMES: [&str; 6] = [
    "Empty",
    "Ongoing",
    "PrepareCommit",
    "PrepareAbort",
    "CompleteCommit",
    "CompleteAbort",
];

fn valid_id(txn_id: &str) -> bool {
    !txn_id.is_empty() && txn_id.len() <= NAME_BYTES_MAX
}

/// InitProducerId for a transactional id.
pub async fn init_producer_id(
    shard: &Rc<ShardContext>,
    req: &InitProducerIdRequest,
    txn_id: &str,
    version: i16,
) -> InitProducerIdResponse {
    let failed = |code: i16| {
        InitProducerIdResponse::default()
            .with_error_code(code)
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1)
    };
    if !valid_id(txn_id) {
        return failed(ResponseError::InvalidRequest.code());
    }
    if req.transaction_timeout_ms <= 0 || req.transaction_timeout_ms > TRANSACTION_MAX_TIMEOUT_MS {
        return failed(ResponseError::InvalidTransactionTimeout.code());
    }
    let known = (version >= 3 && req.producer_id.0 != -1).then_some((req.producer_id.0, req.producer_epoch));
    let task = InitTxn {
        txn_id: txn_id.to_string(),
        timeout_ms: req.transaction_timeout_ms,
        known,
    };
    match on_owner(shard, txn_id, task).await {
        Ok((pid, epoch)) => InitProducerIdResponse::default()
            .with_producer_id(ProducerId(pid))
            .with_producer_epoch(epoch),
        Err(e) => failed(e.code(version >= 4)),
    }
}

/// AddPartitionsToTxn v0-3. Partitions that do not exist get
/// UNKNOWN_TOPIC_OR_PARTITION and the others OPERATION_NOT_ATTEMPTED, as Kafka
/// answers before asking the coordinator.
pub async fn add_partitions(
    shard: &Rc<ShardContext>,
    req: AddPartitionsToTxnRequest,
    version: i16,
) -> AddPartitionsToTxnResponse {
    let txn_id = req.v3_and_below_transactional_id.0.to_string();
    let catalog = shard.catalog();
    let mut partitions = Vec::new();
    let mut unknown = Vec::new();
    for topic in &req.v3_and_below_topics {
        let name = topic.name.0.to_string();
        let meta = catalog.topic(&name);
        for &p in &topic.partitions {
            let exists = crate::shard::router::owner_of(meta, p, shard.count).is_some();
            if exists {
                partitions.push((name.clone(), p));
            } else {
                unknown.push((name.clone(), p));
            }
        }
    }
    let code_of = |p: &(String, i32)| -> i16 {
        if unknown.contains(p) {
            ResponseError::UnknownTopicOrPartition.code()
        } else {
            ResponseError::OperationNotAttempted.code()
        }
    };
    let outcome: Result<(), i16> = if !valid_id(&txn_id) {
        Err(ResponseError::InvalidRequest.code())
    } else if !unknown.is_empty() {
        Err(-1)
    } else {
        let task = AddToTxn {
            txn_id: txn_id.clone(),
            producer_id: req.v3_and_below_producer_id.0,
            epoch: req.v3_and_below_producer_epoch,
            partitions,
            groups: Vec::new(),
        };
        on_owner(shard, &txn_id, task)
            .await
            .map_err(|e| e.code(version >= 2))
    };
    let topic_results = req
        .v3_and_below_topics
        .iter()
        .map(|topic| {
            let name = topic.name.0.to_string();
            let results = topic
                .partitions
                .iter()
                .map(|&p| {
                    let code = match outcome {
                        Ok(()) => 0,
                        Err(-1) => code_of(&(name.clone(), p)),
                        Err(code) => code,
                    };
                    AddPartitionsToTxnPartitionResult::default()
                        .with_partition_index(p)
                        .with_partition_error_code(code)
                })
                .collect();
            AddPartitionsToTxnTopicResult::default()
                .with_name(topic.name.clone())
                .with_results_by_partition(results)
        })
        .collect();
    AddPartitionsToTxnResponse::default().with_results_by_topic_v3_and_below(topic_results)
}

pub async fn add_offsets(
    shard: &Rc<ShardContext>,
    req: AddOffsetsToTxnRequest,
    version: i16,
) -> AddOffsetsToTxnResponse {
    let txn_id = req.transactional_id.0.to_string();
    let group = req.group_id.0.to_string();
    let code = if !valid_id(&txn_id) || group.is_empty() || group.len() > NAME_BYTES_MAX {
        ResponseError::InvalidRequest.code()
    } else {
        let task = AddToTxn {
            txn_id: txn_id.clone(),
            producer_id: req.producer_id.0,
            epoch: req.producer_epoch,
            partitions: Vec::new(),
            groups: vec![group],
        };
        on_owner(shard, &txn_id, task)
            .await
            .map_or_else(|e| e.code(version >= 2), |()| 0)
    };
    AddOffsetsToTxnResponse::default().with_error_code(code)
}

pub async fn end_txn(shard: &Rc<ShardContext>, req: EndTxnRequest, version: i16) -> EndTxnResponse {
    let txn_id = req.transactional_id.0.to_string();
    let code = if valid_id(&txn_id) {
        let task = EndTxn {
            txn_id: txn_id.clone(),
            producer_id: req.producer_id.0,
            epoch: req.producer_epoch,
            commit: req.committed,
        };
        on_owner(shard, &txn_id, task)
            .await
            .map_or_else(|e| e.code(version >= 2), |()| 0)
    } else {
        ResponseError::InvalidRequest.code()
    };
    EndTxnResponse::default().with_error_code(code)
}

/// ListTransactions: every shard's ids that pass the filters. Unknown state
/// names are echoed in unknown_state_filters (and match nothing), as Kafka does;
/// v1's duration filter keeps transactions running longer than it.
pub async fn list_transactions(
    shard: &Rc<ShardContext>,
    req: ListTransactionsRequest,
) -> ListTransactionsResponse {
    let (known, unknown): (Vec<String>, Vec<String>) = req
        .state_filters
        .iter()
        .map(ToString::to_string)
        .partition(|s| STATE_NAMES.contains(&s.as_str()));
    let mut response = ListTransactionsResponse::default()
        .with_unknown_state_filters(unknown.iter().map(|s| s.clone().into()).collect());
    if !unknown.is_empty() && known.is_empty() {
        return response;
    }
    let producer_ids: Vec<i64> = req.producer_id_filters.iter().map(|p| p.0).collect();
    let mut listed = Vec::new();
    for owner in 0..shard.count {
        let task = ListTxns {
            states: known.clone(),
            producer_ids: producer_ids.clone(),
            min_duration_ms: req.duration_filter,
        };
        match crate::shard::run_on(shard, owner, task).await {
            Ok(Ok(txns)) => listed.extend(txns),
            _ => response.error_code = ResponseError::CoordinatorNotAvailable.code(),
        }
    }
    listed.sort();
    response.transaction_states = listed
        .into_iter()
        .map(|(id, pid, state)| {
            ListedTxn::default()
                .with_transactional_id(TransactionalId(id.into()))
                .with_producer_id(ProducerId(pid))
                .with_transaction_state(state.into())
        })
        .collect();
    response
}

/// DescribeTransactions: each id on its owner. An unknown id gets
/// TRANSACTIONAL_ID_NOT_FOUND, an empty one INVALID_REQUEST (as Kafka).
pub async fn describe_transactions(
    shard: &Rc<ShardContext>,
    req: DescribeTransactionsRequest,
) -> DescribeTransactionsResponse {
    let mut states = Vec::with_capacity(req.transactional_ids.len());
    for id in req.transactional_ids {
        let txn_id = id.0.to_string();
        let described = dtr::TransactionState::default()
            .with_transactional_id(id)
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1)
            .with_transaction_start_time_ms(-1);
        if !valid_id(&txn_id) {
            states.push(described.with_error_code(ResponseError::InvalidRequest.code()));
            continue;
        }
        let answer = on_owner(shard, &txn_id, DescribeTxn(txn_id.clone())).await;
        states.push(match answer {
            Ok(Some(meta)) => {
                let mut topics: Vec<TopicData> = Vec::new();
                for (topic, p) in &meta.partitions {
                    match topics.last_mut() {
                        Some(t) if t.topic.0.as_str() == topic => t.partitions.push(*p),
                        _ => topics.push(
                            TopicData::default()
                                .with_topic(TopicName(topic.clone().into()))
                                .with_partitions(vec![*p]),
                        ),
                    }
                }
                let start = if meta.state == TxnState::Empty {
                    -1
                } else {
                    meta.start_ms
                };
                described
                    .with_transaction_state(meta.state.name().into())
                    .with_transaction_timeout_ms(meta.timeout_ms)
                    .with_transaction_start_time_ms(start)
                    .with_producer_id(ProducerId(meta.producer_id))
                    .with_producer_epoch(meta.epoch)
                    .with_topics(topics)
            }
            Ok(None) => described.with_error_code(ResponseError::TransactionalIdNotFound.code()),
            Err(e) => described.with_error_code(e.code(true)),
        });
    }
    DescribeTransactionsResponse::default().with_transaction_states(states)
}
