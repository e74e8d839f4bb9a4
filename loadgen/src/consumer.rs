//! A consumer task: long-poll Fetch from each partition leader, walk the
//! returned batches, count records and bytes, and (in e2e mode) read each
//! record's 8-byte send stamp to record end-to-end latency. With
//! --check-order it also reads each record's order stamp (producer id and
//! per-partition sequence number, see `producer::ORDER_STAMP`) and counts the
//! records that arrive after a higher sequence number of the same producer
//! (inversions) and the sequence numbers skipped (gaps).
//!
//! Shard-local; one fetch loop per leader broker. Parsing reuses one scratch
//! buffer for decompression: no allocation per record. Stops on the run's
//! deadline, record limit, --to-end offsets, or (e2e) once producers are done
//! and everything acknowledged was consumed. With --isolation read-committed
//! Fetch and ListOffsets ask for read_committed and `committed::BatchFilter`
//! drops the batches of aborted transactions; control batches (markers) are
//! skipped in both modes and never counted as records.

use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::{ApiKey, FetchRequest, FetchResponse};
use kafka_protocol::ResponseError;
use weir_client::requests::{self, FetchLimits, TopicRef};
use weir_client::{error_name, is_retriable, ProtocolError};
use weir_protocol::record_batch::{self, BatchWalker};
use weir_protocol::records;

use crate::cli::{Isolation, Mode};
use crate::client::cluster::{list_offsets, EARLIEST};
use crate::client::conn::Connection;
use crate::client::ClientError;
use crate::committed::{BatchFilter, Verdict};
use crate::producer::order_stamp;
use crate::shard::{connect_all, now_ns, ShardCtx, TaskPlan};
use crate::stats::record_us;

/// Long-poll wait per Fetch: short enough to notice the end of a run quickly.
const FETCH_WAIT_MS: i32 = 200;
/// Bytes per Fetch response; kept under the connection's RESPONSE_BYTES_MAX.
pub const FETCH_BYTES_MAX: i32 = 64 << 20;
/// Bytes per partition per Fetch (Kafka's max.partition.fetch.bytes is 1 MiB;
/// more lets one catch-up fetch move more data per round trip).
const PARTITION_FETCH_BYTES_MAX: i32 = 8 << 20;
/// Decompressed records of one batch may not exceed this (bounds scratch).
const DECOMPRESSED_BYTES_MAX: usize = 64 << 20;
/// After producers finish, e2e consumers drain at most this long...
const DRAIN_MS_MAX: u64 = 10_000;
/// ...and give up earlier when nothing new arrived for this long.
const DRAIN_IDLE_MS_MAX: u64 = 2_000;
/// A consume run without --duration ends after this long without new records.
const CONSUME_IDLE_MS_MAX: u64 = 10_000;

struct PartitionCursor {
    partition: i32,
    /// The next record to count.
    next_offset: i64,
    /// The next offset to fetch: ahead of `next_offset` while a prefetched
    /// Fetch is in flight.
    fetch_offset: i64,
    end_offset: i64,
    /// The last answer held records for this partition (see `advance_fetch_offsets`).
    served: bool,
    /// --check-order: the highest sequence number seen per producer id (few
    /// producers write to one partition, so a short list).
    last_seq: Vec<(u32, u64)>,
}

/// What --check-order found in one fetched chunk.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct OrderCounts {
    pub checked: u64,
    pub inversions: u64,
    pub gaps: u64,
    pub unstamped: u64,
}

/// Check one record's value against the sequence numbers seen so far in its
/// partition. The first record of a producer starts its sequence (a consumer
/// may start mid-stream); then each must be exactly one more than the highest
/// seen: lower or equal is an inversion (out of send order, or a duplicate),
/// higher skips a gap.
fn check_order(last_seq: &mut Vec<(u32, u64)>, value: Option<&[u8]>, counts: &mut OrderCounts) {
    let Some((producer, seq)) = value.and_then(order_stamp) else {
        counts.unstamped += 1;
        return;
    };
    counts.checked += 1;
    match last_seq.iter_mut().find(|(p, _)| *p == producer) {
        None => last_seq.push((producer, seq)),
        Some((_, last)) => {
            if seq <= *last {
                counts.inversions += 1;
            } else {
                if seq > *last + 1 {
                    counts.gaps += 1;
                }
                *last = seq;
            }
        }
    }
}

pub async fn run_consumer(ctx: Rc<ShardCtx>, plan: TaskPlan) {
    let conns = match connect_all(&ctx.cfg, &ctx.cluster, std::slice::from_ref(&plan)).await {
        Ok(c) => c,
        Err(e) => {
            ctx.shared.fail(format!("consumer {}: {e}", plan.index));
            return;
        }
    };
    let mut by_leader: Vec<(i32, Vec<PartitionCursor>)> = Vec::new();
    for (i, &partition) in plan.partitions.iter().enumerate() {
        let leader = ctx.cluster.leader(partition);
        let cursor = PartitionCursor {
            partition,
            next_offset: plan.start_offsets[i],
            fetch_offset: plan.start_offsets[i],
            end_offset: plan.end_offsets.get(i).copied().unwrap_or(i64::MAX),
            served: false,
            last_seq: Vec::new(),
        };
        match by_leader.iter_mut().find(|(l, _)| *l == leader) {
            Some((_, list)) => list.push(cursor),
            None => by_leader.push((leader, vec![cursor])),
        }
    }
    let loops: Vec<_> = by_leader
        .into_iter()
        .map(|(leader, cursors)| {
            let ctx = ctx.clone();
            let conn = conns[&leader].clone();
            glommio::spawn_local(async move {
                if let Err(e) = fetch_loop(&ctx, &conn, cursors).await {
                    ctx.shared.fail(format!("consumer {}: {e}", plan.index));
                }
            })
        })
        .collect();
    for l in loops {
        l.await;
    }
    ctx.shared.consume_end_ns.fetch_max(now_ns(), Ordering::AcqRel);
}

/// Progress of the e2e drain: when it started, and the last count seen.
#[derive(Default)]
struct Drain {
    started_ns: u64,
    last_count: u64,
    last_progress_ns: u64,
}

fn should_stop(ctx: &ShardCtx, cursors: &[PartitionCursor], drain: &mut Option<Drain>) -> bool {
    let cfg = &ctx.cfg;
    let now = now_ns();
    if ctx.shared.stopped() {
        return true;
    }
    if cfg.to_end && cursors.iter().all(|c| c.next_offset >= c.end_offset) {
        return true;
    }
    if cfg.mode == Mode::Consume {
        let consumed = ctx.shared.consumed_records.load(Ordering::Relaxed);
        let by_time = ctx.end_ns().is_some_and(|end| now >= end);
        let by_count = cfg.records_max.is_some_and(|n| consumed >= n);
        // Without --duration, a topic holding fewer records than asked
        // would otherwise keep us polling forever.
        let d = drain.get_or_insert(Drain {
            started_ns: now,
            last_count: consumed,
            last_progress_ns: now,
        });
        if consumed > d.last_count {
            d.last_count = consumed;
            d.last_progress_ns = now;
        }
        let idle = cfg.duration_ms.is_none() && now >= d.last_progress_ns + CONSUME_IDLE_MS_MAX * 1_000_000;
        return by_time || by_count || idle;
    }
    // e2e: run while producers run, then drain what they got acknowledged.
    if ctx.shared.producers_running.load(Ordering::Acquire) > 0 {
        return false;
    }
    let consumed = ctx.shared.consumed_records.load(Ordering::Relaxed);
    let d = drain.get_or_insert(Drain {
        started_ns: now,
        last_count: consumed,
        last_progress_ns: now,
    });
    if consumed > d.last_count {
        d.last_count = consumed;
        d.last_progress_ns = now;
    }
    consumed >= ctx.shared.acked_records.load(Ordering::Relaxed)
        || now >= d.started_ns + DRAIN_MS_MAX * 1_000_000
        || now >= d.last_progress_ns + DRAIN_IDLE_MS_MAX * 1_000_000
}

async fn fetch_loop(
    ctx: &ShardCtx,
    conn: &Connection,
    mut cursors: Vec<PartitionCursor>,
) -> Result<(), ClientError> {
    let version = conn.version(ApiKey::Fetch)?;
    let mut scratch = Vec::new();
    let mut filter = BatchFilter::new(ctx.cfg.isolation == Isolation::ReadCommitted);
    let mut drain = None;
    let mut prefetched = None;
    while !should_stop(ctx, &cursors, &mut drain) {
        let response = match prefetched.take() {
            Some(in_flight) => conn.finish(in_flight).await?,
            None => {
                for c in &mut cursors {
                    c.fetch_offset = c.next_offset;
                }
                conn.request(fetch_request(ctx, &cursors, version), version)
                    .await?
            }
        };
        ctx.stats.borrow_mut().fetch_requests += 1;
        if response.error_code != 0 {
            return Err(fetch_error(conn, response.error_code));
        }
        // Ask for what follows before reading this answer, as Kafka's clients
        // keep fetching while the application works: the answer's batch
        // headers give the next offsets. Only when every partition is fine
        // (an error changes positions) and the run goes on.
        if advance_fetch_offsets(&response, &mut cursors)
            && cursors.iter().any(|c| c.fetch_offset < c.end_offset)
            && !should_stop(ctx, &cursors, &mut drain)
        {
            prefetched = Some(conn.begin(fetch_request(ctx, &cursors, version), version).await?);
        }
        for topic in response.responses {
            for p in topic.partitions {
                let Some(cursor) = cursors.iter_mut().find(|c| c.partition == p.partition_index) else {
                    continue;
                };
                match p.error_code {
                    0 => {
                        if let Some(records) = p.records {
                            filter.reset(p.aborted_transactions.as_deref());
                            consume_records(ctx, cursor, &records, &mut scratch, &mut filter)?;
                        }
                    }
                    code if code == ResponseError::OffsetOutOfRange.code() => {
                        count_error(ctx, p.error_code);
                        let (topic, isolation) = (&ctx.cluster.topic().name, ctx.cfg.isolation.wire());
                        let earliest =
                            list_offsets(conn, topic, &[cursor.partition], EARLIEST, isolation).await?;
                        if let Some(&(_, offset)) = earliest.first() {
                            cursor.next_offset = offset;
                        }
                    }
                    code if is_retriable(code) => {
                        count_error(ctx, code);
                        glommio::timer::sleep(Duration::from_millis(100)).await;
                    }
                    code => return Err(fetch_error(conn, code)),
                }
            }
        }
    }
    Ok(())
}

/// Move each cursor's fetch position past the batches `response` holds for
/// it, then the partitions that got records to the end of the next request;
/// false (nothing moved) when any partition has an error.
fn advance_fetch_offsets(response: &FetchResponse, cursors: &mut [PartitionCursor]) -> bool {
    let parts = || response.responses.iter().flat_map(|t| t.partitions.iter());
    if parts().any(|p| p.error_code != 0) {
        return false;
    }
    for c in cursors.iter_mut() {
        c.served = false;
    }
    for p in parts() {
        let Some(cursor) = cursors.iter_mut().find(|c| c.partition == p.partition_index) else {
            continue;
        };
        let Some(records) = &p.records else { continue };
        for range in BatchWalker::new(records) {
            if let Ok(h) = record_batch::header(&records[range]) {
                let last = h.base_offset.get() + i64::from(h.last_offset_delta.get());
                cursor.fetch_offset = cursor.fetch_offset.max(last + 1);
                cursor.served = true;
            }
        }
    }
    rotate_served_to_end(cursors);
    true
}

/// A broker fills a Fetch answer in request order until the request's max_bytes
/// (Kafka's broker caps it at 55 MiB, and so does Weir): with a fixed order the
/// partitions at the end get nothing while the ones before them have data, and
/// are read only once those run dry. As Kafka's Java consumer and librdkafka do
/// (KIP-74), the partitions that got records go to the end of the next request,
/// in their order; those left empty go first. Measured: 8 partitions asking 8 MiB
/// each, one shard: the last partition got nothing for 45 answers in a row.
fn rotate_served_to_end(cursors: &mut [PartitionCursor]) {
    // Stable: each group keeps its order.
    cursors.sort_by_key(|c| c.served);
}

fn fetch_error(conn: &Connection, code: i16) -> ClientError {
    conn.protocol(ProtocolError::broker(ApiKey::Fetch, code, ""))
}

fn count_error(ctx: &ShardCtx, code: i16) {
    ctx.stats
        .borrow_mut()
        .count_error(format!("{}({code})", error_name(code)));
}

fn fetch_request(ctx: &ShardCtx, cursors: &[PartitionCursor], version: i16) -> FetchRequest {
    let topic = ctx.cluster.topic();
    let partitions: Vec<(i32, i64)> = cursors
        .iter()
        .filter(|c| c.fetch_offset < c.end_offset)
        .map(|c| (c.partition, c.fetch_offset))
        .collect();
    let limits = FetchLimits {
        max_wait_ms: FETCH_WAIT_MS,
        max_bytes: FETCH_BYTES_MAX,
        partition_max_bytes: PARTITION_FETCH_BYTES_MAX,
    };
    let at = TopicRef {
        name: &topic.name,
        id: topic.raw.topic_id,
    };
    let mut request = requests::fetch(at, version, &partitions, limits);
    request.isolation_level = ctx.cfg.isolation.wire();
    request
}

/// What one partition's fetched records added up to.
#[derive(Default)]
struct Chunk {
    records: u64,
    /// Key + value bytes of the records counted.
    payload_bytes: u64,
    /// Batch bytes as fetched (wire).
    bytes: u64,
    aborted_records: u64,
    control_batches: u64,
    order: OrderCounts,
}

/// Count the batches of one partition's records and advance its cursor.
fn consume_records(
    ctx: &ShardCtx,
    cursor: &mut PartitionCursor,
    records: &Bytes,
    scratch: &mut Vec<u8>,
    filter: &mut BatchFilter,
) -> Result<(), ClientError> {
    let mut walker = BatchWalker::new(records);
    let mut chunk = Chunk::default();
    for range in walker.by_ref() {
        let batch = &records[range];
        let header = record_batch::header(batch).map_err(|e| bad_batch(cursor.partition, e))?;
        let last = header.base_offset.get() + i64::from(header.last_offset_delta.get());
        // Before the position check: the filter's state follows the whole log.
        let verdict = filter.verdict(batch, header);
        if last < cursor.next_offset {
            continue; // a batch before our position (fetch returns whole batches)
        }
        if ctx.cfg.check_crc && ctx.cfg.mode != Mode::E2e {
            record_batch::validate(batch).map_err(|e| bad_batch(cursor.partition, e))?;
        }
        match verdict {
            Verdict::Keep => {
                let (records, payload) = count_batch(ctx, cursor, batch, scratch, &mut chunk.order)?;
                chunk.records += records;
                chunk.payload_bytes += payload;
            }
            Verdict::Aborted => chunk.aborted_records += header.records_count.get().max(0) as u64,
            Verdict::Control => chunk.control_batches += 1,
        }
        chunk.bytes += batch.len() as u64;
        cursor.next_offset = last + 1;
    }
    let mut stats = ctx.stats.borrow_mut();
    stats.consumed_records += chunk.records;
    stats.consumed_payload_bytes += chunk.payload_bytes;
    stats.consumed_batch_bytes += chunk.bytes;
    stats.aborted_records_skipped += chunk.aborted_records;
    stats.control_batches += chunk.control_batches;
    stats.order_checked_records += chunk.order.checked;
    stats.order_inversions += chunk.order.inversions;
    stats.order_gaps += chunk.order.gaps;
    stats.order_unstamped_records += chunk.order.unstamped;
    ctx.shared
        .consumed_records
        .fetch_add(chunk.records, Ordering::Relaxed);
    Ok(())
}

/// The records of one kept data batch from the cursor's position on, and
/// their key + value bytes: every record is read (decompressed if need be, as
/// any consumer would), so the payload is counted exactly; e2e also records
/// each record's latency, --check-order checks its stamp.
fn count_batch(
    ctx: &ShardCtx,
    cursor: &mut PartitionCursor,
    batch: &[u8],
    scratch: &mut Vec<u8>,
    order: &mut OrderCounts,
) -> Result<(u64, u64), ClientError> {
    let e2e = ctx.cfg.mode == Mode::E2e;
    let check = ctx.cfg.check_order;
    let now = if e2e { now_ns() } else { 0 };
    let mut stats = ctx.stats.borrow_mut();
    let first = cursor.next_offset;
    let last_seq = &mut cursor.last_seq;
    let (mut records, mut payload) = (0u64, 0u64);
    records::for_each_record(batch, scratch, DECOMPRESSED_BYTES_MAX, |r| {
        if r.offset < first {
            return; // before our position: already counted
        }
        records += 1;
        payload += (r.key.map_or(0, <[u8]>::len) + r.value.map_or(0, <[u8]>::len)) as u64;
        if e2e {
            if let Some(stamp) = r.value.and_then(|v| v.get(..8)) {
                let sent_ns = u64::from_be_bytes(stamp.try_into().expect("8 bytes"));
                record_us(&mut stats.e2e_us, now.saturating_sub(sent_ns) / 1_000);
            }
        }
        if check {
            check_order(last_seq, r.value, order);
        }
    })
    .map_err(|e| bad_batch(cursor.partition, e))?;
    Ok((records, payload))
}

fn bad_batch(partition: i32, e: impl std::fmt::Display) -> ClientError {
    ClientError::BadRecords {
        partition,
        message: e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stamped(producer: u32, seq: u64) -> Vec<u8> {
        let mut v = vec![b'x'; 24];
        v[8..12].copy_from_slice(&producer.to_be_bytes());
        v[12..20].copy_from_slice(&seq.to_be_bytes());
        v
    }

    fn run(records: &[(u32, u64)]) -> OrderCounts {
        let mut last = Vec::new();
        let mut counts = OrderCounts::default();
        for &(p, s) in records {
            check_order(&mut last, Some(&stamped(p, s)), &mut counts);
        }
        counts
    }

    fn cursor(partition: i32, served: bool) -> PartitionCursor {
        PartitionCursor {
            partition,
            next_offset: 0,
            fetch_offset: 0,
            end_offset: 100,
            served,
            last_seq: Vec::new(),
        }
    }

    #[test]
    fn given_an_answer_that_left_partitions_empty_when_rotating_should_ask_for_them_first() {
        let mut cursors: Vec<_> = [(0, true), (1, true), (2, false), (3, true), (4, false)]
            .into_iter()
            .map(|(p, s)| cursor(p, s))
            .collect();
        rotate_served_to_end(&mut cursors);
        let order: Vec<i32> = cursors.iter().map(|c| c.partition).collect();
        assert_eq!(order, vec![2, 4, 0, 1, 3]);
    }

    #[test]
    fn given_each_producers_sequence_in_order_when_checking_should_find_nothing() {
        // Two producers interleaved, one starting mid-stream: fine.
        let c = run(&[(1, 0), (2, 40), (1, 1), (2, 41), (1, 2)]);
        assert_eq!((c.checked, c.inversions, c.gaps), (5, 0, 0));
    }

    #[test]
    fn given_records_out_of_order_when_checking_should_count_inversions_and_gaps() {
        // 0 1 4 2 3 5: 4 skips 2 and 3 (a gap), which then come late (two inversions).
        let c = run(&[(1, 0), (1, 1), (1, 4), (1, 2), (1, 3), (1, 5)]);
        assert_eq!((c.checked, c.inversions, c.gaps), (6, 2, 1));
        // A duplicate is an inversion too; a missing record only a gap.
        let c = run(&[(1, 0), (1, 1), (1, 1), (1, 3)]);
        assert_eq!((c.inversions, c.gaps), (1, 1));
        let mut counts = OrderCounts::default();
        check_order(&mut Vec::new(), Some(b"short"), &mut counts);
        check_order(&mut Vec::new(), None, &mut counts);
        assert_eq!((counts.checked, counts.unstamped), (0, 2));
    }
}
