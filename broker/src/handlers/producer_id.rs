//! InitProducerId for idempotent producers: a fresh producer id at epoch 0,
//! from shard 0's durable allocator (`metadata::producer_ids`), as Kafka's
//! coordinator answers a request without a transactional id. A transactional
//! id goes to its transaction coordinator (`txn_api::init_producer_id`).

use std::rc::Rc;

use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};
use kafka_protocol::ResponseError;

use super::ShardContext;
use crate::shard::{run_on, Task};

/// Allocate one producer id, on shard 0.
pub struct AllocateProducerId;

impl Task<ShardContext> for AllocateProducerId {
    type Output = Result<i64, ResponseError>;

    async fn run(self, shard: Rc<ShardContext>) -> Result<i64, ResponseError> {
        let Some(ids) = shard.producer_ids() else {
            return Err(ResponseError::CoordinatorNotAvailable);
        };
        ids.allocate().await.map_err(|e| {
            tracing::error!(error = %crate::error::chain(&e), "reserving producer ids failed");
            ResponseError::CoordinatorNotAvailable
        })
    }
}

pub async fn handle(
    shard: &Rc<ShardContext>,
    req: InitProducerIdRequest,
    version: i16,
) -> InitProducerIdResponse {
    let failed = |e: ResponseError| {
        InitProducerIdResponse::default()
            .with_error_code(e.code())
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1)
    };
    if let Some(txn_id) = &req.transactional_id {
        let txn_id = txn_id.0.to_string();
        return super::txn_api::init_producer_id(shard, &req, &txn_id, version).await;
    }
    let allocated = run_on(shard, 0, AllocateProducerId).await.unwrap_or_else(|e| {
        tracing::warn!(error = %e, "producer id forward failed");
        Err(ResponseError::CoordinatorNotAvailable)
    });
    match allocated {
        Ok(id) => InitProducerIdResponse::default()
            .with_producer_id(ProducerId(id))
            .with_producer_epoch(0),
        Err(e) => failed(e),
    }
}
