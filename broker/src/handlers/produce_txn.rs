//! Produce's transactional checks (Kafka 3.6+ KIP-890 part 1 verification):
//! before a transactional request appends, inside its connection's turn, one
//! task on the transactional id's coordinator shard checks that the batches'
//! (producer id, epoch) is the id's current one and that each partition was
//! added to the ongoing transaction. A request without a transactional id pays
//! one header read per partition: its batches must not claim to be transactional.

use std::rc::Rc;

use kafka_protocol::ResponseError;
use weir_protocol::record_batch::{self, ATTR_TRANSACTIONAL};

use super::produce::{PartAnswer, ProducePart};
use super::txn::{on_owner, VerifyProduce};
use super::{refusal, ShardContext};

/// (producer id, epoch) of the part's first batch if it is transactional.
fn transactional_producer(part: &ProducePart) -> Option<(i64, i16)> {
    let header = record_batch::header(part.records.as_deref()?).ok()?;
    (header.attributes.get() & ATTR_TRANSACTIONAL != 0)
        .then(|| (header.producer_id.get(), header.producer_epoch.get()))
}

/// Without a transactional id: refuse transactional batches (INVALID_REQUEST,
/// as Kafka's produce validation does), keep the rest.
pub fn refuse_unexpected(
    work: Vec<(usize, ProducePart)>,
    results: &mut [PartAnswer],
) -> Vec<(usize, ProducePart)> {
    work.into_iter()
        .filter(|(_, part)| {
            let transactional = transactional_producer(part).is_some();
            if transactional {
                results[part.index].outcome = Err(refusal(ResponseError::InvalidRequest));
            }
            !transactional
        })
        .collect()
}

/// With a transactional id: the parts that may append; the others get their
/// error in `results`.
pub async fn verify(
    shard: &Rc<ShardContext>,
    txn_id: &str,
    work: Vec<(usize, ProducePart)>,
    results: &mut [PartAnswer],
) -> Vec<(usize, ProducePart)> {
    let producers: Vec<Option<(i64, i16)>> = work.iter().map(|(_, p)| transactional_producer(p)).collect();
    let Some((producer_id, epoch)) = producers.iter().flatten().next().copied() else {
        return work;
    };
    let mut partitions = Vec::new();
    for ((_, part), producer) in work.iter().zip(&producers) {
        if *producer == Some((producer_id, epoch)) {
            partitions.push((part.topic.clone(), part.partition));
        }
    }
    let task = VerifyProduce {
        txn_id: txn_id.to_string(),
        producer_id,
        epoch,
        partitions,
    };
    let verdict = on_owner(shard, txn_id, task).await;
    let mut codes = match &verdict {
        Ok(codes) => codes.iter(),
        Err(_) => [].iter(),
    };
    let mut kept = Vec::with_capacity(work.len());
    for ((owner, part), producer) in work.into_iter().zip(producers) {
        let code = match producer {
            None => 0,
            Some(p) if p != (producer_id, epoch) => ResponseError::InvalidRequest.code(),
            Some(_) => match &verdict {
                Ok(_) => codes
                    .next()
                    .copied()
                    .unwrap_or(ResponseError::InvalidTxnState.code()),
                // Produce knows no PRODUCER_FENCED: a stale epoch is INVALID_PRODUCER_EPOCH.
                Err(e) => e.code(false),
            },
        };
        if code == 0 {
            kept.push((owner, part));
        } else {
            results[part.index].outcome = Err(super::Refused { code, message: None });
        }
    }
    kept
}
