//! The null broker's answers to idempotent and transactional producers:
//! InitProducerId hands out a fresh producer id (epoch 0), FindCoordinator
//! names this null broker, AddPartitionsToTxn and EndTxn succeed. So the
//! generator's own ceiling can be measured in the transactional mode too.
//!
//! Keeps no transaction state and checks nothing (ids, epochs, sequences):
//! it answers what a healthy coordinator would, as fast as it can.

use std::sync::atomic::{AtomicI64, Ordering};

use bytes::Bytes;
use kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnTopicResult,
};
use kafka_protocol::messages::{
    AddPartitionsToTxnRequest, AddPartitionsToTxnResponse, ApiKey, BrokerId, EndTxnResponse,
    FindCoordinatorResponse, InitProducerIdResponse, ProducerId,
};
use kafka_protocol::protocol::{Decodable, StrBytes};

use super::{respond, State};

/// The APIs answered here (advertised with the client's ranges).
pub(super) const SERVED: [ApiKey; 4] = [
    ApiKey::InitProducerId,
    ApiKey::FindCoordinator,
    ApiKey::AddPartitionsToTxn,
    ApiKey::EndTxn,
];

/// Producer ids handed out, process-wide: unique across null brokers too.
static NEXT_PRODUCER_ID: AtomicI64 = AtomicI64::new(1_000);

/// The framed answer to one request of `SERVED`.
pub(super) fn handle(
    state: &State,
    key: ApiKey,
    version: i16,
    corr: i32,
    header_version: i16,
    frame: &mut Bytes,
) -> Result<Option<Bytes>, String> {
    match key {
        ApiKey::InitProducerId => {
            let id = NEXT_PRODUCER_ID.fetch_add(1, Ordering::Relaxed);
            let body = InitProducerIdResponse::default()
                .with_producer_id(ProducerId(id))
                .with_producer_epoch(0);
            respond(corr, header_version, &body, version)
        }
        ApiKey::FindCoordinator => {
            let body = FindCoordinatorResponse::default()
                .with_node_id(BrokerId(0))
                .with_host(StrBytes::from_string(state.addr.ip().to_string()))
                .with_port(i32::from(state.addr.port()));
            respond(corr, header_version, &body, version)
        }
        ApiKey::AddPartitionsToTxn => {
            let req = AddPartitionsToTxnRequest::decode(frame, version).map_err(|e| e.to_string())?;
            respond(corr, header_version, &added(&req), version)
        }
        ApiKey::EndTxn => respond(corr, header_version, &EndTxnResponse::default(), version),
        other => Err(format!("unsupported api {other:?}")),
    }
}

/// Every partition of a v0-3 AddPartitionsToTxn, added without error.
fn added(req: &AddPartitionsToTxnRequest) -> AddPartitionsToTxnResponse {
    let topics = req
        .v3_and_below_topics
        .iter()
        .map(|t| {
            AddPartitionsToTxnTopicResult::default()
                .with_name(t.name.clone())
                .with_results_by_partition(
                    t.partitions
                        .iter()
                        .map(|&p| AddPartitionsToTxnPartitionResult::default().with_partition_index(p))
                        .collect(),
                )
        })
        .collect();
    AddPartitionsToTxnResponse::default().with_results_by_topic_v3_and_below(topics)
}
