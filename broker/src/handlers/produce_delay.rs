//! Produce's side of delayed delivery (docs/queues.md): validate Weir's queue
//! headers (`weir-deliver-at-ms`, `weir-delay-ms`, `weir-ttl-ms`) and divert a
//! batch with a record not yet due to the shard's timer store instead of the
//! partition. Runs on the partition's owner.
//!
//! Cost on plain produce: a walk of an uncompressed batch's record framing (a
//! few varints per record, header keys only where a record has headers, no
//! CRC pass, no allocation) to see whether any header key starts with `weir-`;
//! the records are read properly only when one does, or the topic has a
//! default delay, or the batch is compressed or its framing is malformed (then
//! the read refuses it as CORRUPT_MESSAGE). Invariants: a malformed queue header
//! refuses the whole part (INVALID_RECORD, nothing stored); a diverted part is
//! stored whole, written to the timer store's journal inside the connection's
//! turn and, with acks=all, fdatasync'd before the answer (after the turn, so
//! pipelined requests share syncs); a part that would take the shard's timer
//! store past `--timers-pending-max` records is refused whole (POLICY_VIOLATION).

use std::ops::Range;
use std::rc::Rc;

use bytes::Bytes;
use kafka_protocol::ResponseError;
use weir_protocol::queue_headers::{self, QueueHeaders};
use weir_protocol::record_batch::{self, ATTR_TRANSACTIONAL};
use weir_protocol::records::records;

use super::produce::Appended;
use super::{Refused, ShardContext};
use crate::log::{Offset, PartitionLog};

const DECOMPRESSED_MAX_BYTES: usize = 64 << 20;

fn invalid(message: String) -> Refused {
    Refused {
        code: ResponseError::InvalidRecord.code(),
        message: Some(message),
    }
}

/// Whether `batch` needs its records read: a topic default delay, or what
/// `queue_headers::might_carry` cannot rule out (compressed bytes, malformed
/// framing, a header key starting with `weir-`).
fn might_carry_headers(batch: &[u8], default_delay: bool) -> bool {
    default_delay || queue_headers::might_carry(batch)
}

/// The due time of each record of `batch` (a record without a delay gets
/// `now`), or `None` when no record is due after `now`.
fn dues(
    batch: &[u8],
    default_delay: Option<i64>,
    now: i64,
    scratch: &mut Vec<u8>,
) -> Result<Option<Vec<i64>>, Refused> {
    let corrupt = |e: weir_protocol::records::RecordError| Refused {
        code: ResponseError::CorruptMessage.code(),
        message: Some(e.to_string()),
    };
    let iter = records(batch, scratch, DECOMPRESSED_MAX_BYTES).map_err(corrupt)?;
    let mut dues = Vec::new();
    let mut later = false;
    for record in iter {
        let record = record.map_err(corrupt)?;
        let headers = QueueHeaders::parse(record.headers).map_err(|e| invalid(e.to_string()))?;
        let due = headers
            .due_ms(record.timestamp_ms)
            .or_else(|| default_delay.map(|d| record.timestamp_ms.saturating_add(d)))
            .unwrap_or(now);
        later |= due > now;
        dues.push(due.max(now));
    }
    Ok(later.then_some(dues))
}

/// Check a part's batches for queue headers; `None` sends it on to the log
/// unchanged, `Some` is its answer (refused, or stored in the timer store).
pub async fn divert(
    shard: &Rc<ShardContext>,
    topic: &str,
    partition: i32,
    log: &PartitionLog,
    records: &Bytes,
    ranges: &[Range<usize>],
) -> Option<Result<Appended, Refused>> {
    let default_delay = shard
        .catalog()
        .topic(topic)
        .and_then(|t| t.config.queue.delay_ms());
    if !ranges
        .iter()
        .any(|r| might_carry_headers(&records[r.clone()], default_delay.is_some()))
    {
        return None;
    }
    let now = crate::txn::now_ms();
    let mut scratch = Vec::new();
    let mut delayed = Vec::with_capacity(ranges.len());
    for r in ranges {
        let batch = &records[r.clone()];
        match dues(batch, default_delay, now, &mut scratch) {
            Err(refused) => return Some(Err(refused)),
            Ok(d) => delayed.push(d),
        }
    }
    if delayed.iter().all(Option::is_none) {
        return None;
    }
    Some(store(shard, topic, partition, log, records, ranges, delayed).await)
}

async fn store(
    shard: &Rc<ShardContext>,
    topic: &str,
    partition: i32,
    log: &PartitionLog,
    records: &Bytes,
    ranges: &[Range<usize>],
    delayed: Vec<Option<Vec<i64>>>,
) -> Result<Appended, Refused> {
    for r in ranges {
        let Ok(h) = record_batch::header(&records[r.clone()]) else {
            continue;
        };
        if h.attributes.get() & ATTR_TRANSACTIONAL != 0 {
            return Err(invalid(
                "delayed delivery is not supported inside a transaction".into(),
            ));
        }
        if h.producer_id.get() >= 0 {
            return Err(invalid(
                "delayed delivery is not supported for idempotent producers (set enable.idempotence=false)"
                    .into(),
            ));
        }
    }
    let Some(timers) = shard.timers() else {
        return Err(super::refusal(ResponseError::NotLeaderOrFollower));
    };
    let count: usize = ranges
        .iter()
        .zip(&delayed)
        .map(|(r, d)| match d {
            Some(d) => d.len(),
            None => {
                record_batch::header(&records[r.clone()]).map_or(0, |h| h.records_count.get().max(0) as usize)
            }
        })
        .sum();
    let pending_max = shard.args.timers_pending_max;
    if timers.pending().saturating_add(count) > pending_max {
        crate::metrics::with(|m| m.timers_refused());
        return Err(Refused {
            code: TIMERS_FULL_ERROR.code(),
            message: Some(format!(
                "the timer store of shard {} holds {} delayed records; {count} more would pass --timers-pending-max {pending_max}",
                shard.id,
                timers.pending()
            )),
        });
    }
    let now = crate::txn::now_ms();
    let mut end = 0;
    for (r, dues) in ranges.iter().zip(delayed) {
        let batch = &records[r.clone()];
        let dues = match dues {
            Some(d) => d,
            None => {
                vec![now; record_batch::header(batch).map_or(0, |h| h.records_count.get().max(0) as usize)]
            }
        };
        end = timers
            .add(topic, partition, &dues, batch)
            .await
            .map_err(storage_error)?;
    }
    // No offset yet: the records get theirs when they are due.
    Ok(Appended {
        base_offset: Offset(-1),
        last_offset: Offset(-1),
        log_start_offset: log.log_start_offset(),
        throttle_ms: 0,
        timer_end: Some(end),
    })
}

/// What a full timer store answers. Not retriable, like a backlog bound's
/// reject (handlers/backlog.rs): pending timers leave only as they fall due,
/// possibly hours later, so a client's automatic retries (librdkafka: for up to
/// message.timeout.ms, silently) would mostly end in a timeout with no reason;
/// POLICY_VIOLATION fails the send at once and the message names the bound.
pub const TIMERS_FULL_ERROR: ResponseError = ResponseError::PolicyViolation;

fn storage_error(e: crate::journal::JournalError) -> Refused {
    Refused {
        code: ResponseError::KafkaStorageError.code(),
        message: Some(e.to_string()),
    }
}

/// acks=all on a delayed part: wait until the timer store holds it durably
/// (group commit with the shard's other delayed parts).
pub async fn wait_durable(shard: &ShardContext, end: u64) -> Result<(), Refused> {
    let Some(timers) = shard.timers() else {
        return Err(super::refusal(ResponseError::NotLeaderOrFollower));
    };
    timers.wait_durable(end).await.map_err(storage_error)
}
