//! Produce: validate and append each partition's batch on its owning shard,
//! then answer per the acks level: 0 never, 1 once appended (readable),
//! -1 (all) once the group-commit fdatasync covering the batch has completed.
//! The record bytes are appended as received (only base_offset is rewritten).
//! Two phases: the appends run on the connection's turn (network/order.rs), so
//! one connection's batches reach each partition in request order; the acks=all
//! wait runs after the turn has passed on, so pipelined requests share syncs.

use std::rc::Rc;

use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse, TopicName};
use kafka_protocol::ResponseError;
use weir_protocol::record_batch::{self, BatchWalker};

use super::fan_out;
use crate::error::log_error_code;
use crate::log::Offset;
use crate::network::order::Ticket;
use crate::shard::messages::{DurablePart, ProducePart, ProducePartResult, ShardRequest, ShardResponse};
use crate::shard::router::split_by_owner;
use crate::shard::Shard;

pub async fn handle(
    shard: &Rc<Shard>,
    req: ProduceRequest,
    ticket: Option<Ticket>,
) -> Option<ProduceResponse> {
    let acks = req.acks;
    // Drop the transactional id now for the same reason as the topic names below.
    let topic_data = req.topic_data;
    let catalog = shard.catalog();
    let mut results: Vec<ProducePartResult> = Vec::new();
    // Per slot: where its batch goes, for the acks=all wait.
    let mut targets: Vec<Option<(usize, String, i32)>> = Vec::new();
    let mut work = Vec::new();
    let mut shape = Vec::with_capacity(topic_data.len());
    for topic in topic_data {
        let name = topic.name.0.to_string();
        let meta = catalog.topic(&name);
        let mut indexes = Vec::with_capacity(topic.partition_data.len());
        for part in topic.partition_data {
            let index = results.len();
            results.push(ProducePartResult {
                index,
                base_offset: -1,
                last_offset: -1,
                log_start_offset: -1,
                ..Default::default()
            });
            targets.push(None);
            indexes.push((part.index, index));
            if !(-1..=1).contains(&acks) {
                results[index].error_code = ResponseError::InvalidRequiredAcks.code();
                continue;
            }
            match meta.and_then(|m| m.owner(part.index, shard.count)) {
                Some(owner) => {
                    // Until the owner answers: an unreachable owner leaves this, and
                    // the client retries rather than taking silence for success.
                    results[index].error_code = ResponseError::RequestTimedOut.code();
                    targets[index] = Some((owner, name.clone(), part.index));
                    work.push((
                        owner,
                        ProducePart {
                            index,
                            topic: name.clone(),
                            partition: part.index,
                            records: part.records,
                        },
                    ))
                }
                None => results[index].error_code = ResponseError::UnknownTopicOrPartition.code(),
            }
        }
        // Keep the owned name, not the request's `StrBytes`: that is a slice of
        // the frame, and any live slice stops the log patching base_offset in
        // place (it must copy a shared buffer).
        shape.push((name, indexes));
    }
    if let Some(ticket) = &ticket {
        ticket.wait_turn().await;
    }
    let answers = fan_out(
        shard,
        split_by_owner(work, shard.count),
        |s, parts| Box::pin(async move { append_local(&s, parts).await }),
        |parts| ShardRequest::Produce { parts },
        |answer| match answer {
            ShardResponse::Produce(r) => Some(r),
            _ => None,
        },
    )
    .await;
    // Every batch of this request now sits in its partition's queue, offsets
    // assigned: the connection's next Produce may append. The durability wait
    // below overlaps with later requests, so group commit still batches them.
    drop(ticket);
    super::place(&mut results, answers, "produce");
    if acks == -1 {
        await_durable(shard, &mut results, &targets).await;
    }
    if acks == 0 {
        return None;
    }
    let responses = shape
        .into_iter()
        .map(|(name, indexes)| {
            let partition_responses = indexes
                .into_iter()
                .map(|(partition, i)| {
                    let r = &results[i];
                    PartitionProduceResponse::default()
                        .with_index(partition)
                        .with_error_code(r.error_code)
                        .with_base_offset(r.base_offset)
                        .with_log_append_time_ms(-1)
                        .with_log_start_offset(r.log_start_offset)
                        .with_error_message(r.error_message.clone().map(Into::into))
                })
                .collect();
            TopicProduceResponse::default()
                .with_name(TopicName(name.into()))
                .with_partition_responses(partition_responses)
        })
        .collect();
    Some(ProduceResponse::default().with_responses(responses))
}

/// acks=all: wait on each appended part's owner until it is durable. A part whose
/// wait fails, or whose owner cannot be reached, gets an error: never a success
/// that was not fdatasync'd.
async fn await_durable(
    shard: &Rc<Shard>,
    results: &mut [ProducePartResult],
    targets: &[Option<(usize, String, i32)>],
) {
    let mut work = Vec::new();
    for (r, target) in results.iter_mut().zip(targets) {
        let Some((owner, topic, partition)) = target else {
            continue;
        };
        if r.error_code != 0 {
            continue;
        }
        work.push((
            *owner,
            DurablePart {
                index: r.index,
                topic: topic.clone(),
                partition: *partition,
                last_offset: r.last_offset,
            },
        ));
    }
    if work.is_empty() {
        return;
    }
    let answers = fan_out(
        shard,
        split_by_owner(work, shard.count),
        |s, parts| Box::pin(async move { durable_local(&s, parts).await }),
        |parts| ShardRequest::AwaitDurable { parts },
        |answer| match answer {
            ShardResponse::Produce(r) => Some(r),
            _ => None,
        },
    )
    .await;
    for (owner, answer) in answers {
        match answer {
            Ok(parts) => {
                for p in parts.into_iter().filter(|p| p.error_code != 0) {
                    results[p.index].error_code = p.error_code;
                    results[p.index].error_message = p.error_message;
                }
            }
            Err(e) => {
                tracing::warn!(owner, error = %e, "acks=all wait forward failed");
                for (r, target) in results.iter_mut().zip(targets) {
                    if matches!(target, Some((o, ..)) if *o == owner) && r.error_code == 0 {
                        r.error_code = ResponseError::RequestTimedOut.code();
                    }
                }
            }
        }
    }
}

/// Append parts owned by this shard, in order; answers once each is in its
/// partition's queue (not durable yet). Each part's batches are validated before
/// any is appended, so a bad batch stores nothing.
pub async fn append_local(shard: &Rc<Shard>, parts: Vec<ProducePart>) -> Vec<ProducePartResult> {
    let mut out = Vec::with_capacity(parts.len());
    for part in parts {
        let mut result = ProducePartResult {
            index: part.index,
            base_offset: -1,
            last_offset: -1,
            log_start_offset: -1,
            ..Default::default()
        };
        match append_part(shard, part).await {
            Ok((base, last, start)) => {
                result.base_offset = base;
                result.last_offset = last;
                result.log_start_offset = start;
            }
            Err((code, message)) => {
                result.error_code = code;
                result.error_message = message;
            }
        }
        out.push(result);
    }
    out
}

/// Wait until each part (appended on this shard) is durable. Answers only the
/// parts that failed with their error; the others as successes.
pub async fn durable_local(shard: &Rc<Shard>, parts: Vec<DurablePart>) -> Vec<ProducePartResult> {
    // Group commit syncs once no more input is ready: tell it someone waits.
    shard.appended.notify(usize::MAX);
    let mut out = Vec::with_capacity(parts.len());
    for part in parts {
        let mut result = ProducePartResult {
            index: part.index,
            ..Default::default()
        };
        match shard.log(&part.topic, part.partition) {
            None => result.error_code = ResponseError::UnknownTopicOrPartition.code(),
            Some(log) => {
                if let Err(e) = log.wait_durable(Offset(part.last_offset)).await {
                    tracing::error!(shard = shard.id, error = %e, "fdatasync failed");
                    result.error_code = log_error_code(&e);
                    result.error_message = Some(e.to_string());
                    reopen_if_failed(shard, &log, part.topic, part.partition);
                }
            }
        }
        out.push(result);
    }
    out
}

type AppendOutcome = Result<(i64, i64, i64), (i16, Option<String>)>;

async fn append_part(shard: &Rc<Shard>, part: ProducePart) -> AppendOutcome {
    let Some(log) = shard.log(&part.topic, part.partition) else {
        // The catalog moved under this request (topic deleted): not ours now.
        return Err((ResponseError::UnknownTopicOrPartition.code(), None));
    };
    let corrupt = |m: String| (ResponseError::CorruptMessage.code(), Some(m));
    let Some(records) = part.records.filter(|r| !r.is_empty()) else {
        return Err(corrupt("no record batch".into()));
    };
    let mut walker = BatchWalker::new(&records);
    let ranges: Vec<_> = walker.by_ref().collect();
    if walker.position() != records.len() || ranges.is_empty() {
        return Err(corrupt(format!(
            "records field holds a torn batch at byte {}",
            walker.position()
        )));
    }
    if ranges.len() > 1 {
        // Rare (one batch per partition is the v3+ norm): check all first so a
        // bad batch in the middle stores nothing.
        for r in &ranges {
            if let Err(e) = record_batch::validate(&records[r.clone()]) {
                return Err(corrupt(e.to_string()));
            }
        }
    }
    let (mut base, mut last, mut start) = (-1, -1, -1);
    // The common single-batch case hands over the frame's own `Bytes`, so the
    // log can patch base_offset in place when nothing else references them.
    let batches: Vec<bytes::Bytes> = if ranges.len() == 1 {
        vec![records]
    } else {
        ranges.into_iter().map(|r| records.slice(r)).collect()
    };
    for batch in batches {
        match log.append(batch).await {
            Ok(a) => {
                if base < 0 {
                    base = a.base_offset.0;
                }
                last = a.last_offset.0;
                start = a.log_start_offset.0;
            }
            Err(e) => {
                shard.appended.notify(usize::MAX);
                reopen_if_failed(shard, &log, part.topic, part.partition);
                return Err((log_error_code(&e), Some(e.to_string())));
            }
        }
    }
    shard.appended.notify(usize::MAX);
    Ok((base, last, start))
}

/// A fenced log answers KAFKA_STORAGE_ERROR; reopen it in the background so it takes
/// appends again once the cause (a full disk) clears. The client retries meanwhile.
fn reopen_if_failed(shard: &Rc<Shard>, log: &crate::log::PartitionLog, topic: String, partition: i32) {
    if log.failure().is_some() {
        glommio::spawn_local(shard.clone().reopen_if_failed(topic, partition)).detach();
    }
}
