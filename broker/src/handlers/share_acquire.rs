//! The acquiring half of a ShareFetch, on the share-partition's owner shard: runs a pending
//! dead-letter move first (`share_dead_letter.rs`), reads from the first available offset,
//! leaves out records past their TTL (`share::ttl`: they become dead letters instead) and
//! acquires the rest, durably, before the records are handed back. Errors are Kafka's codes
//! in the partition's answer.

use std::rc::Rc;
use std::time::Instant;

use bytes::Bytes;
use kafka_protocol::ResponseError;
use weir_protocol::record_batch::header;

use super::share_dead_letter as dead_letter;
use super::share_fetch::{SharePart, SharePartOut};
use super::{ownership_error, ShardContext};
use crate::error::log_error_code;
use crate::log::Offset;
use crate::share::store::{Key, ShareRecord};
use crate::share::{ttl, ShareState};

/// Reads from the first available offset and acquires what the read returned; the records
/// are durable-acquired before they are handed back. Returns how many were acquired.
pub(super) async fn acquire_part(
    shard: &Rc<ShardContext>,
    share: &ShareState,
    key: &Key,
    member: &Rc<str>,
    p: &SharePart,
    o: &mut SharePartOut,
    max_records: usize,
) -> usize {
    let log = match shard.partitions.owned(&p.topic, p.partition) {
        Ok(log) => log,
        Err(own) => {
            o.error_code = ownership_error(own).code();
            return 0;
        }
    };
    if !share.admit(key) {
        tracing::warn!(group = %key.0, "share state: too many share-partitions on this shard");
        o.error_code = ResponseError::UnknownServerError.code();
        return 0;
    }
    let end = log.log_end_offset().0;
    let from = share.prepare(key, log.log_start_offset().0, end, Instant::now());
    dead_letter::drive(shard, share, key, &log).await;
    if from >= end || p.max_bytes == 0 {
        return 0;
    }
    let read = match log.read(Offset(from), p.max_bytes).await {
        Ok(r) => r,
        Err(e) => {
            o.error_code = log_error_code(&e);
            return 0;
        }
    };
    let bounds = |b: &Bytes| {
        header(b).ok().map(|h| {
            (
                h.base_offset.get(),
                h.base_offset.get() + i64::from(h.last_offset_delta.get()),
            )
        })
    };
    let Some(hi) = read.batches.last().and_then(bounds).map(|(_, last)| last + 1) else {
        return 0;
    };
    let topic_ttl = shard
        .catalog()
        .topic(&p.topic)
        .and_then(|t| t.config.queue.ttl_ms());
    let expired = ttl::expired_offsets(&read.batches, from..hi, topic_ttl, now_ms());
    let (runs, record) = share.acquire(key, member, from..hi, max_records, Instant::now(), &expired);
    let (Some(first), Some(last)) = (runs.first().map(|r| r.0), runs.last().map(|r| r.1)) else {
        if record.is_some() {
            // Only expired records: their DeadLetter states are logged before any move.
            let _ = share.commit(record.into_iter().collect()).await;
        }
        return 0;
    };
    if let Err(e) = share
        .commit(record.into_iter().collect::<Vec<ShareRecord>>())
        .await
    {
        // The records stay acquired in memory until their lock expires; nobody gets them now.
        tracing::error!(error = %e, "share state: acquisition not durable");
        o.error_code = ResponseError::KafkaStorageError.code();
        return 0;
    }
    o.batches = read
        .batches
        .into_iter()
        .filter(|b| bounds(b).is_some_and(|(base, end)| end >= first && base <= last))
        .collect();
    let n: i64 = runs.iter().map(|r| r.1 - r.0 + 1).sum();
    o.acquired.extend(runs);
    n as usize
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
