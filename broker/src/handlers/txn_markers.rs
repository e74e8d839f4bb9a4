//! Transaction markers for the transaction coordinator: write one commit or
//! abort marker into each partition of a transaction, on each partition's
//! owning shard, and answer once every written marker is durable.
//!
//! Called by the coordinator (not a Kafka API of its own). The owner side is
//! `WriteMarkers`; each owner appends its markers first and then waits for
//! durability, so the markers of one call share a group-commit fdatasync.
//! Invariants: one answer per input partition, in input order; a success is
//! never reported for a marker that was written but not fdatasync'd; a marker
//! that ends a transaction wakes long-polling fetches (`appended`), since the
//! last stable offset may have moved.

use std::rc::Rc;

use kafka_protocol::ResponseError;

use super::{ownership_error, ShardContext};
use crate::error::log_error_code;
use crate::log::{LogError, Offset, PartitionLog, TxnMarker};
use crate::partitions::Ownership;
use crate::shard::router::{owner_of, split_by_owner};
use crate::shard::{fan_out, Task};

#[derive(Debug, Clone, Copy)]
pub struct Marker {
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub commit: bool,
    pub coordinator_epoch: i32,
}

/// One partition to mark, for its owner.
pub struct MarkerPart {
    /// Slot in the caller's answer.
    pub index: usize,
    pub topic: String,
    pub partition: i32,
}

/// Write `marker` into the parts one shard owns; answers per slot.
pub struct WriteMarkers {
    pub marker: Marker,
    pub parts: Vec<MarkerPart>,
}

type Answer = Result<(), ResponseError>;

/// Writes `marker` into each partition on its owning shard and returns once each written marker is durable (fdatasync'd, whatever the topic's flush policy). One result per input partition, same order. A partition with no ongoing transaction of the producer: Ok, nothing written. A deleted/unknown topic or partition: Ok with a debug log (nothing can become visible there).
pub async fn write_markers(
    shard: &Rc<ShardContext>,
    marker: Marker,
    partitions: &[(String, i32)],
) -> Vec<Result<(), kafka_protocol::ResponseError>> {
    let catalog = shard.catalog();
    // Until the owner answers: an unreachable owner leaves a retriable error.
    let mut results: Vec<Answer> = vec![Err(ResponseError::RequestTimedOut); partitions.len()];
    let mut work = Vec::with_capacity(partitions.len());
    for (index, (topic, partition)) in partitions.iter().enumerate() {
        match owner_of(catalog.topic(topic), *partition, shard.count) {
            Some(owner) => {
                let (topic, partition) = (topic.clone(), *partition);
                work.push((
                    owner,
                    MarkerPart {
                        index,
                        topic,
                        partition,
                    },
                ));
            }
            None => {
                tracing::debug!(topic = %topic, partition, "transaction marker for an unknown partition: skipped");
                results[index] = Ok(());
            }
        }
    }
    let answers = fan_out(shard, split_by_owner(work, shard.count), |parts| WriteMarkers {
        marker,
        parts,
    })
    .await;
    for (owner, answer) in answers {
        match answer {
            Ok(parts) => parts.into_iter().for_each(|(i, r)| results[i] = r),
            Err(e) => tracing::warn!(owner, error = %e, "transaction marker forward failed"),
        }
    }
    results
}

impl Task<ShardContext> for WriteMarkers {
    type Output = Vec<(usize, Answer)>;

    async fn run(self, shard: Rc<ShardContext>) -> Vec<(usize, Answer)> {
        let marker = TxnMarker {
            producer_id: self.marker.producer_id,
            producer_epoch: self.marker.producer_epoch,
            commit: self.marker.commit,
            coordinator_epoch: self.marker.coordinator_epoch,
        };
        let mut out = Vec::with_capacity(self.parts.len());
        let mut written: Vec<(usize, Rc<PartitionLog>, Offset)> = Vec::new();
        for part in &self.parts {
            let log = match shard.partitions.owned(&part.topic, part.partition) {
                Ok(log) => log,
                Err(Ownership::Unknown) => {
                    tracing::debug!(topic = %part.topic, partition = part.partition, "transaction marker for a deleted partition: skipped");
                    out.push((part.index, Ok(())));
                    continue;
                }
                Err(o) => {
                    out.push((part.index, Err(ownership_error(o))));
                    continue;
                }
            };
            match log.append_marker(marker).await {
                Ok(Some(appended)) => written.push((part.index, log, appended.last_offset)),
                Ok(None) => out.push((part.index, Ok(()))),
                Err(e) => out.push((part.index, Err(refused(&shard, &log, part, &e)))),
            }
        }
        // A marker's append wakes its partition's long-polling fetches (the
        // LSO may have moved), as any append does.
        for (index, log, last_offset) in written {
            let answer = match log.wait_durable(last_offset).await {
                Ok(()) => Ok(()),
                Err(e) => {
                    let part = &self
                        .parts
                        .iter()
                        .find(|p| p.index == index)
                        .expect("a written part");
                    Err(refused(&shard, &log, part, &e))
                }
            };
            out.push((index, answer));
        }
        out
    }
}

/// The error for a marker the log refused; a fenced log is reopened in the
/// background (as produce does), so the coordinator's retry can succeed.
fn refused(shard: &ShardContext, log: &PartitionLog, part: &MarkerPart, e: &LogError) -> ResponseError {
    if !matches!(e, LogError::Sequence(_)) {
        tracing::error!(shard = shard.id, topic = %part.topic, partition = part.partition, error = %crate::error::chain(e), "writing a transaction marker failed");
    }
    if log.failure().is_some() {
        let reopen = shard
            .partitions
            .clone()
            .reopen_if_failed(part.topic.clone(), part.partition);
        glommio::spawn_local(reopen).detach();
    }
    ResponseError::try_from_code(log_error_code(e)).unwrap_or(ResponseError::KafkaStorageError)
}
