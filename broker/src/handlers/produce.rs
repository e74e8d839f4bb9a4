//! Produce: validate and append each partition's batch on its owning shard,
//! then answer per the acks level: 0 never, 1 once appended (readable),
//! -1 (all) once the group-commit fdatasync covering the batch has completed.
//! The record bytes are appended as received (only base_offset is rewritten).
//! Two phases, two tasks: `Append` runs on the connection's turn
//! (shard/order.rs), so one connection's batches reach each partition in
//! request order; `AwaitDurable` (acks=all) runs after the turn has passed on,
//! so pipelined requests share syncs.

use std::rc::Rc;

use bytes::Bytes;
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse, TopicName};
use kafka_protocol::ResponseError;
use weir_protocol::record_batch::{self, BatchWalker};

use super::{refusal, wire_offset, Refused, ShardContext};
use crate::error::log_error_code;
use crate::log::{Offset, PartitionLog};
use crate::shard::order::Ticket;
use crate::shard::router::{owner_of, split_by_owner};
use crate::shard::{fan_out, place, Slotted, Task};

/// One partition's batches, for its owner.
pub struct ProducePart {
    /// Slot in the client's response.
    pub index: usize,
    pub topic: String,
    pub partition: i32,
    pub records: Option<Bytes>,
}

/// Where an appended part landed.
#[derive(Debug, Clone, Copy)]
pub struct Appended {
    pub base_offset: Offset,
    /// Offset of the part's last record: what an acks=all request waits on.
    pub last_offset: Offset,
    pub log_start_offset: Offset,
    /// Past the topic's backlog bound with `backlog.policy=throttle`: how long
    /// the producer is asked to wait (backlog.rs); 0 otherwise.
    pub throttle_ms: i32,
    /// A delayed part: in the timer store, durable once its journal is synced
    /// to this point (`TimerStore::wait_durable`), not in the log yet.
    pub timer_end: Option<u64>,
}

/// The owner's answer for one part: appended (offsets assigned, readable, not
/// yet durable) or refused.
#[derive(Debug, Clone)]
pub struct PartAnswer {
    pub index: usize,
    pub outcome: Result<Appended, Refused>,
}

impl Slotted for PartAnswer {
    fn slot(&self) -> usize {
        self.index
    }
}

/// Append parts owned by one shard, in order; answers once each is in its
/// partition's queue (not durable yet).
pub struct Append(pub Vec<ProducePart>);

/// acks=all, after `Append` answered: wait until each part is durable.
pub struct AwaitDurable(pub Vec<DurablePart>);

/// One appended part an acks=all request waits on.
pub struct DurablePart {
    pub index: usize,
    pub topic: String,
    pub partition: i32,
    pub last_offset: Offset,
    pub timer_end: Option<u64>,
}

/// Where each slot's batch went, for the acks=all wait.
#[derive(Clone)]
struct Target {
    owner: usize,
    topic: String,
    partition: i32,
}

/// A request split by owner: the answer slots (pre-filled with errors), where
/// each slot's batch goes, the work per owner, and the response's shape.
struct Routed {
    results: Vec<PartAnswer>,
    targets: Vec<Option<Target>>,
    work: Vec<(usize, ProducePart)>,
    shape: Shape,
}

/// The request's partitions in the client's order, with their slots: the
/// response is built in this shape.
type Shape = Vec<(String, Vec<(i32, usize)>)>;

pub async fn handle(
    shard: &Rc<ShardContext>,
    req: ProduceRequest,
    ticket: Option<Ticket>,
) -> Option<ProduceResponse> {
    let acks = req.acks;
    let txn_id = req.transactional_id.as_ref().map(|t| t.0.to_string());
    let Routed {
        mut results,
        targets,
        work,
        shape,
    } = route(shard, req);
    if let Some(ticket) = &ticket {
        ticket.wait_turn().await;
    }
    // Inside the turn: a transaction's check and its append are not reordered
    // with the connection's other requests.
    let work = match &txn_id {
        Some(id) => super::produce_txn::verify(shard, id, work, &mut results).await,
        None => super::produce_txn::refuse_unexpected(work, &mut results),
    };
    let answers = fan_out(shard, split_by_owner(work, shard.count), Append).await;
    // Every batch of this request now sits in its partition's queue, offsets
    // assigned: the connection's next Produce may append. The durability wait
    // below overlaps with later requests, so group commit still batches them.
    drop(ticket);
    place(&mut results, answers, "produce");
    if acks == -1 {
        await_durable(shard, &mut results, &targets).await;
    }
    (acks != 0).then(|| response(shape, &results))
}

/// Split the request by owning shard. Every slot starts refused: a part whose
/// owner never answers keeps REQUEST_TIMED_OUT, so the client retries rather
/// than taking silence for success.
fn route(shard: &ShardContext, req: ProduceRequest) -> Routed {
    let acks = req.acks;
    // Drop the transactional id now for the same reason as the topic names below.
    let topic_data = req.topic_data;
    let catalog = shard.catalog();
    let mut results = Vec::new();
    let mut targets = Vec::new();
    let mut work = Vec::new();
    let mut shape = Vec::with_capacity(topic_data.len());
    for topic in topic_data {
        let name = topic.name.0.to_string();
        let meta = catalog.topic(&name);
        let mut indexes = Vec::with_capacity(topic.partition_data.len());
        for part in topic.partition_data {
            let index = results.len();
            indexes.push((part.index, index));
            let owner = owner_of(meta, part.index, shard.count);
            let (code, target) = match owner {
                _ if !(-1..=1).contains(&acks) => (ResponseError::InvalidRequiredAcks, None),
                None => (ResponseError::UnknownTopicOrPartition, None),
                Some(owner) => {
                    let (topic, partition) = (name.clone(), part.index);
                    work.push((
                        owner,
                        ProducePart {
                            index,
                            topic,
                            partition,
                            records: part.records,
                        },
                    ));
                    let target = Target {
                        owner,
                        topic: name.clone(),
                        partition: part.index,
                    };
                    (ResponseError::RequestTimedOut, Some(target))
                }
            };
            results.push(PartAnswer {
                index,
                outcome: Err(refusal(code)),
            });
            targets.push(target);
        }
        // Keep the owned name, not the request's `StrBytes`: that is a slice of
        // the frame, and any live slice stops the log patching base_offset in
        // place (it must copy a shared buffer).
        shape.push((name, indexes));
    }
    Routed {
        results,
        targets,
        work,
        shape,
    }
}

/// The response in the request's shape; its throttle time is the longest any
/// partition's backlog bound asked for (dispatch adds the client quota's).
fn response(shape: Shape, results: &[PartAnswer]) -> ProduceResponse {
    let throttle_ms = results
        .iter()
        .filter_map(|r| r.outcome.as_ref().ok().map(|a| a.throttle_ms))
        .max()
        .unwrap_or(0);
    let responses = shape
        .into_iter()
        .map(|(name, indexes)| {
            let partition_responses = indexes
                .into_iter()
                .map(|(partition, i)| {
                    let (code, message, appended) = match &results[i].outcome {
                        Ok(a) => (0, None, Some(*a)),
                        Err(r) => (r.code, r.message.clone(), None),
                    };
                    PartitionProduceResponse::default()
                        .with_index(partition)
                        .with_error_code(code)
                        .with_base_offset(wire_offset(appended.map(|a| a.base_offset)))
                        .with_log_append_time_ms(-1)
                        .with_log_start_offset(wire_offset(appended.map(|a| a.log_start_offset)))
                        .with_error_message(message.map(Into::into))
                })
                .collect();
            TopicProduceResponse::default()
                .with_name(TopicName(name.into()))
                .with_partition_responses(partition_responses)
        })
        .collect();
    ProduceResponse::default()
        .with_responses(responses)
        .with_throttle_time_ms(throttle_ms)
}

/// acks=all: wait on each appended part's owner until it is durable. A part whose
/// wait fails, or whose owner cannot be reached, gets an error: never a success
/// that was not fdatasync'd.
async fn await_durable(shard: &Rc<ShardContext>, results: &mut [PartAnswer], targets: &[Option<Target>]) {
    let mut work = Vec::new();
    for (r, target) in results.iter().zip(targets) {
        if let (Ok(appended), Some(t)) = (&r.outcome, target) {
            let part = DurablePart {
                index: r.index,
                topic: t.topic.clone(),
                partition: t.partition,
                last_offset: appended.last_offset,
                timer_end: appended.timer_end,
            };
            work.push((t.owner, part));
        }
    }
    if work.is_empty() {
        return;
    }
    let answers = fan_out(shard, split_by_owner(work, shard.count), AwaitDurable).await;
    for (owner, answer) in answers {
        match answer {
            Ok(failed) => {
                for (index, refused) in failed {
                    results[index].outcome = Err(refused);
                }
            }
            Err(e) => {
                tracing::warn!(owner, error = %e, "acks=all wait forward failed");
                for (r, target) in results.iter_mut().zip(targets) {
                    if matches!(target, Some(t) if t.owner == owner) && r.outcome.is_ok() {
                        r.outcome = Err(refusal(ResponseError::RequestTimedOut));
                    }
                }
            }
        }
    }
}

impl Task<ShardContext> for Append {
    type Output = Vec<PartAnswer>;

    /// Each part's batches are validated before any is appended, so a bad batch
    /// stores nothing.
    async fn run(self, shard: Rc<ShardContext>) -> Vec<PartAnswer> {
        let mut out = Vec::with_capacity(self.0.len());
        for part in self.0 {
            let index = part.index;
            out.push(PartAnswer {
                index,
                outcome: append_part(&shard, part).await,
            });
        }
        out
    }
}

impl Task<ShardContext> for AwaitDurable {
    /// The slots that failed, with their error; the others succeeded.
    type Output = Vec<(usize, Refused)>;

    async fn run(self, shard: Rc<ShardContext>) -> Vec<(usize, Refused)> {
        let mut failed = Vec::new();
        for part in self.0 {
            let log = match shard.partitions.owned(&part.topic, part.partition) {
                Ok(log) => log,
                Err(o) => {
                    failed.push((part.index, refusal(super::ownership_error(o))));
                    continue;
                }
            };
            if let Some(end) = part.timer_end {
                if let Err(refused) = super::produce_delay::wait_durable(&shard, end).await {
                    failed.push((part.index, refused));
                }
                continue;
            }
            if let Err(e) = log.wait_durable(part.last_offset).await {
                tracing::error!(shard = shard.id, error = %e, "fdatasync failed");
                let refused = Refused {
                    code: log_error_code(&e),
                    message: Some(e.to_string()),
                };
                failed.push((part.index, refused));
                reopen_if_failed(&shard, &log, part.topic, part.partition);
            }
        }
        failed
    }
}

async fn append_part(shard: &Rc<ShardContext>, part: ProducePart) -> Result<Appended, Refused> {
    let log = shard
        .partitions
        .owned(&part.topic, part.partition)
        .map_err(|o| refusal(super::ownership_error(o)))?;
    let corrupt = |m: String| Refused {
        code: ResponseError::CorruptMessage.code(),
        message: Some(m),
    };
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
    // Delayed records count against the backlog bound as they arrive: the
    // bound is about what producers may leave for consumers, due now or later.
    let throttle_ms = backlog_check(shard, (&part.topic, part.partition), &log, &records, &ranges)?;
    if let Some(answer) =
        super::produce_delay::divert(shard, &part.topic, part.partition, &log, &records, &ranges).await
    {
        return answer.map(|a| Appended { throttle_ms, ..a });
    }
    let mut appended: Option<Appended> = None;
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
                appended = Some(Appended {
                    base_offset: appended.map_or(a.base_offset, |first| first.base_offset),
                    last_offset: a.last_offset,
                    log_start_offset: a.log_start_offset,
                    throttle_ms,
                    timer_end: None,
                });
            }
            Err(e) => {
                reopen_if_failed(shard, &log, part.topic, part.partition);
                return Err(Refused {
                    code: log_error_code(&e),
                    message: Some(e.to_string()),
                });
            }
        }
    }
    Ok(appended.expect("at least one batch was appended"))
}

/// The topic's backlog bound (backlog.rs) for this part's batches: the
/// throttle time, or the refusal. Reads each batch's header, not its records.
fn backlog_check(
    shard: &ShardContext,
    (topic, partition): (&str, i32),
    log: &PartitionLog,
    records: &Bytes,
    ranges: &[std::ops::Range<usize>],
) -> Result<i32, Refused> {
    let catalog = shard.catalog();
    let Some(meta) = catalog.topic(topic) else {
        return Ok(0);
    };
    let batch_records = ranges
        .iter()
        .filter_map(|r| record_batch::header(&records[r.clone()]).ok())
        .map(|h| u64::try_from(h.last_offset_delta.get()).map_or(0, |d| d + 1))
        .sum();
    let batch = (records.len() as u64, batch_records);
    crate::handlers::backlog::check(shard, &meta.config.queue, (topic, partition), log, batch)
}

/// A fenced log answers KAFKA_STORAGE_ERROR; reopen it in the background so it takes
/// appends again once the cause (a full disk) clears. The client retries meanwhile.
fn reopen_if_failed(shard: &ShardContext, log: &PartitionLog, topic: String, partition: i32) {
    if log.failure().is_some() {
        glommio::spawn_local(shard.partitions.clone().reopen_if_failed(topic, partition)).detach();
    }
}
