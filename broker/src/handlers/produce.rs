//! Produce: validate and append each partition's batch on its owning shard,
//! then answer per the acks level: 0 never, 1 once appended (readable),
//! -1 (all) once the group-commit fdatasync covering the batch has completed.
//! The record bytes are appended as received (only base_offset is rewritten).

use std::rc::Rc;

use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse, TopicName};
use kafka_protocol::ResponseError;
use weir_protocol::record_batch::{self, BatchWalker};

use super::fan_out;
use crate::error::log_error_code;
use crate::log::Offset;
use crate::shard::messages::{ProducePart, ProducePartResult, ShardRequest, ShardResponse};
use crate::shard::router::split_by_owner;
use crate::shard::Shard;

pub async fn handle(shard: &Rc<Shard>, req: ProduceRequest) -> Option<ProduceResponse> {
    let acks = req.acks;
    // Drop the transactional id now for the same reason as the topic names below.
    let topic_data = req.topic_data;
    let catalog = shard.catalog();
    let mut results: Vec<ProducePartResult> = Vec::new();
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
                log_start_offset: -1,
                ..Default::default()
            });
            indexes.push((part.index, index));
            if !(-1..=1).contains(&acks) {
                results[index].error_code = ResponseError::InvalidRequiredAcks.code();
                continue;
            }
            match meta.and_then(|m| m.owner(part.index, shard.count)) {
                Some(owner) => work.push((
                    owner,
                    ProducePart {
                        index,
                        topic: name.clone(),
                        partition: part.index,
                        records: part.records,
                    },
                )),
                None => results[index].error_code = ResponseError::UnknownTopicOrPartition.code(),
            }
        }
        // Keep the owned name, not the request's `StrBytes`: that is a slice of
        // the frame, and any live slice stops the log patching base_offset in
        // place (it must copy a shared buffer).
        shape.push((name, indexes));
    }
    let answers = fan_out(
        shard,
        split_by_owner(work, shard.count),
        move |s, parts| Box::pin(async move { produce_local(&s, acks, parts).await }),
        move |parts| ShardRequest::Produce { acks, parts },
        |answer| match answer {
            ShardResponse::Produce(r) => Some(r),
            _ => None,
        },
    )
    .await;
    super::place(&mut results, answers, "produce");
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

/// Append parts owned by this shard. Each part's batches are validated before
/// any is appended, so a bad batch stores nothing.
pub async fn produce_local(shard: &Rc<Shard>, acks: i16, parts: Vec<ProducePart>) -> Vec<ProducePartResult> {
    let mut out = Vec::with_capacity(parts.len());
    let mut durable_waits = Vec::new();
    for part in parts {
        let mut result = ProducePartResult {
            index: 0,
            base_offset: -1,
            log_start_offset: -1,
            ..Default::default()
        };
        let index = part.index;
        result.index = index;
        let (topic, partition) = (part.topic.clone(), part.partition);
        match append_part(shard, part).await {
            Ok((base, last, start, log)) => {
                result.base_offset = base;
                result.log_start_offset = start;
                if acks == -1 {
                    durable_waits.push((out.len(), log, last, topic, partition));
                }
            }
            Err((code, message)) => {
                result.error_code = code;
                result.error_message = message;
            }
        }
        out.push(result);
    }
    if !durable_waits.is_empty() {
        shard.appended.notify(usize::MAX);
    }
    for (i, log, last, topic, partition) in durable_waits {
        if let Err(e) = log.wait_durable(Offset(last)).await {
            tracing::error!(shard = shard.id, error = %e, "fdatasync failed");
            out[i].error_code = log_error_code(&e);
            out[i].error_message = Some(e.to_string());
            reopen_if_failed(shard, &log, topic, partition);
        }
    }
    out
}

type AppendOutcome = Result<(i64, i64, i64, Rc<crate::log::PartitionLog>), (i16, Option<String>)>;

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
    Ok((base, last, start, log))
}

/// A fenced log answers KAFKA_STORAGE_ERROR; reopen it in the background so it takes
/// appends again once the cause (a full disk) clears. The client retries meanwhile.
fn reopen_if_failed(shard: &Rc<Shard>, log: &crate::log::PartitionLog, topic: String, partition: i32) {
    if log.failure().is_some() {
        glommio::spawn_local(shard.clone().reopen_if_failed(topic, partition)).detach();
    }
}
