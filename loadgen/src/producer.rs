//! A producer task: fills one batch per partition (to --batch-bytes or
//! --linger-ms), sends each as a Produce request, and settles its answer in a
//! spawned task that records latency from the INTENDED send time.
//!
//! Shard-local. The hot loop reuses its value buffer and batch builders: no
//! allocation per record. Backpressure: a full in-flight window makes the loop
//! wait, while the fixed-rate schedule keeps advancing (coordinated omission).
//! With --transactional-id the loop ends a transaction every --txn-records
//! records: it sends the open batches, and `txn::TxnDriver` waits for their
//! acks and sends EndTxn (see txn.rs).

use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use glommio::sync::{Semaphore, StaticPermit};
use kafka_protocol::messages::{ApiKey, ProduceResponse};
use weir_client::produce::{encode_produce, ProduceTarget};
use weir_client::{error_name, is_retriable, responses, wire, ProtocolError};
use weir_protocol::builder::BatchBuilder;

use crate::cli::Keys;
use crate::client::conn::Connection;
use crate::client::{ClientError, CLIENT_ID};
use crate::schedule::{RecordSizes, Schedule};
use crate::shard::{now_ns, ShardCtx, TaskPlan};
use crate::stats::record_us;
use crate::txn::{self, ProducerIdentity, TxnDriver};

/// Pause before resending a batch after a retriable error (Kafka's
/// retry.backoff.ms default).
const RETRY_BACKOFF_MS: u64 = 100;
/// Fixed-rate pacing wakes at most once per tick and then generates every
/// record that has come due, stamped with its exact intended time, so a record
/// is generated up to one tick late and that lateness is in its latency. The
/// tick is half the linger, or a quarter of the time the rate takes to fill one
/// batch if that is shorter (within these bounds): a batch that fills before its
/// linger leaves when it fills, and a tick of half the linger held every record
/// up to 0.5 ms more at 100k rec/s of 1 KiB (64 KiB batches fill in 0.64 ms).
/// Shorter ticks would cost the generator's core: 100k timer wake-ups per
/// second would take most of it.
const PACE_TICK_NS_MIN: u64 = 50_000;
const PACE_TICK_NS_MAX: u64 = 1_000_000;

/// Cheap deterministic PRNG: keys and payload must not cost real randomness.
pub struct XorShift(u64);

impl XorShift {
    pub fn new(seed: u64) -> Self {
        Self(seed | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
}

/// Where a record value carries its order stamp (after the 8-byte send stamp):
/// the producer's id (u32) and the record's sequence number in its partition
/// (u64), both big-endian. `consume --check-order` reads them back.
pub const ORDER_STAMP: std::ops::Range<usize> = 8..20;

/// The order stamp of a value, if it is long enough to carry one:
/// (producer id, per-partition sequence number).
pub fn order_stamp(value: &[u8]) -> Option<(u32, u64)> {
    let stamp = value.get(ORDER_STAMP)?;
    let producer = u32::from_be_bytes(stamp[..4].try_into().expect("4 bytes"));
    let seq = u64::from_be_bytes(stamp[4..].try_into().expect("8 bytes"));
    Some((producer, seq))
}

/// A producer id unique to this run and task: two runs writing to one topic
/// (or one run's producers sharing a partition) keep separate sequences.
pub fn producer_id(run_start_ns: u64, index: usize) -> u32 {
    let mixed = (run_start_ns ^ (index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15))
        .wrapping_mul(0xBF58_476D_1CE4_E5B9);
    (mixed >> 32) as u32
}

/// A record value: alphanumeric noise (compressible roughly like text), whose
/// first 8 bytes are overwritten with the big-endian send stamp (ns) and the
/// next 12 (when the record is that long) with the order stamp.
pub fn value_template(record_bytes: usize, seed: u64) -> Vec<u8> {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut rng = XorShift::new(seed);
    (0..record_bytes)
        .map(|_| ALPHABET[(rng.next_u64() % ALPHABET.len() as u64) as usize])
        .collect()
}

/// Which slot (index into the task's partitions) a key goes to: a fixed
/// multiplicative hash, so one key always lands in one partition.
pub fn slot_for_key(key: u64, slots: usize) -> usize {
    (key.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32) as usize % slots
}

struct OpenBatch {
    partition: i32,
    /// A transactional producer's id: its Produce requests carry it.
    transactional_id: Option<Rc<str>>,
    builder: BatchBuilder,
    /// Sequence number of the next record this producer puts in this partition.
    next_seq: u64,
    first_intended_ns: u64,
    payload_bytes: u64,
    /// Intended send time of each record, for per-record produce latency.
    intended_ns: Vec<u64>,
}

impl OpenBatch {
    fn new(
        partition: i32,
        compression: weir_protocol::record_batch::Compression,
        transactional_id: Option<Rc<str>>,
    ) -> Self {
        let mut builder = BatchBuilder::new(compression);
        builder.set_transactional(transactional_id.is_some());
        Self {
            partition,
            transactional_id,
            builder,
            next_seq: 0,
            first_intended_ns: 0,
            payload_bytes: 0,
            intended_ns: Vec::new(),
        }
    }

    /// Add one record whose value already carries its stamp.
    fn append(&mut self, intended: u64, key: Option<&[u8]>, value: &[u8]) {
        if self.builder.record_count() == 0 {
            self.first_intended_ns = intended;
        }
        let ts_ms = (intended / 1_000_000) as i64;
        self.builder.push(ts_ms, key, Some(value), &[]);
        self.payload_bytes += (value.len() + key.map_or(0, <[u8]>::len)) as u64;
        self.intended_ns.push(intended);
    }
}

/// One sealed batch on its way to the broker.
struct Sealed {
    partition: i32,
    transactional_id: Option<Rc<str>>,
    batch: Bytes,
    records: u64,
    payload_bytes: u64,
    first_intended_ns: u64,
    intended_ns: Vec<u64>,
}

pub async fn run_producer(ctx: Rc<ShardCtx>, plan: TaskPlan) {
    let start = ctx.run_start_ns;
    let now = now_ns();
    if start > now {
        glommio::timer::sleep(Duration::from_nanos(start - now)).await;
    }
    if let Err(e) = produce_loop(&ctx, &plan).await {
        ctx.shared.fail(format!("producer {}: {e}", plan.index));
    }
    wait_outstanding(&ctx).await;
    ctx.shared.produce_end_ns.fetch_max(now_ns(), Ordering::AcqRel);
    ctx.shared.producers_running.fetch_sub(1, Ordering::AcqRel);
}

async fn wait_outstanding(ctx: &ShardCtx) {
    while ctx.outstanding.get() > 0 {
        glommio::timer::sleep(Duration::from_millis(1)).await;
    }
}

async fn produce_loop(ctx: &Rc<ShardCtx>, plan: &TaskPlan) -> Result<(), ClientError> {
    let cfg = &ctx.cfg;
    let schedule = Schedule::for_task(ctx, plan.index);
    let end_ns = ctx.end_ns().unwrap_or(u64::MAX);
    let (linger_ns, tick_ns) = (cfg.linger_ms * 1_000_000, pace_tick_for(cfg, &schedule));
    let (mut value, stamped) = stamped_value(ctx, plan);
    let mut rng = XorShift::new(0x5EED + plan.index as u64);
    let sizes = RecordSizes::of(cfg);
    let txn_id: Option<Rc<str>> =
        (cfg.transactional_id.as_deref()).map(|p| txn::transactional_id(p, plan.index).into());
    let mut open: Vec<OpenBatch> = (plan.partitions.iter())
        .map(|&partition| OpenBatch::new(partition, cfg.compression, txn_id.clone()))
        .collect();
    // In-flight window per producer (like one Kafka producer's connection):
    // producers sharing a shard's connection cannot starve each other.
    let window = Rc::new(Semaphore::new(cfg.max_in_flight as u64));
    let (idempotent, mut txn) = txn::identity(ctx, plan).await?;
    let mut out = BytesMut::new();
    let mut sticky = 0usize;
    let mut seq = 0u64;
    while !ctx.shared.stopped() && seq < schedule.records_max {
        let now = now_ns();
        if now >= end_ns {
            break;
        }
        let due = schedule.due(now, seq);
        while seq < due {
            let intended = if schedule.rate_per_s == 0 {
                now
            } else {
                schedule.intended_ns(seq)
            };
            let key = match cfg.keys {
                Keys::None => None,
                Keys::Uniform(n) => Some(rng.next_u64() % n),
            };
            let slot = key.map_or(sticky, |k| slot_for_key(k, open.len()));
            let key_bytes = key.map(u64::to_be_bytes);
            if let Some(t) = txn.as_mut().filter(|t| !t.is_open()) {
                t.begin(ctx).await?;
            }
            value[..8].copy_from_slice(&intended.to_be_bytes());
            let batch = &mut open[slot];
            if stamped {
                value[ORDER_STAMP.start + 4..ORDER_STAMP.end].copy_from_slice(&batch.next_seq.to_be_bytes());
            }
            batch.next_seq += 1;
            let len = sizes.pick(&mut rng);
            batch.append(intended, key_bytes.as_ref().map(|k| &k[..]), &value[..len]);
            seq += 1;
            if batch.builder.estimated_size_bytes() >= cfg.batch_bytes {
                let sealed = seal(batch, idempotent, &mut out);
                send_batch(ctx, &window, sealed).await?;
                sticky = (sticky + 1) % open.len();
            }
            if let Some(t) = txn.as_mut() {
                if t.record_added() {
                    end_txn(ctx, &window, &mut open, idempotent, &mut out, t).await?;
                }
            }
        }
        flush_lingering(ctx, &window, &mut open, idempotent, &mut out, now_ns(), linger_ns).await?;
        if open[sticky].builder.record_count() == 0 {
            // Like Kafka's sticky partitioner: once the current batch is gone
            // (full or lingered out), the next records go to the next
            // partition, so a slow fixed rate still spreads over all of them.
            sticky = (sticky + 1) % open.len();
        }
        pace(&schedule, seq, &open, linger_ns, tick_ns).await;
    }
    match txn.as_mut() {
        // The last transaction ends with whatever the run produced into it.
        Some(t) => end_txn(ctx, &window, &mut open, idempotent, &mut out, t).await,
        None => flush_lingering(ctx, &window, &mut open, idempotent, &mut out, u64::MAX, 0).await,
    }
}

/// The task's value buffer, with its producer id in the order stamp when the
/// records are long enough to carry one (then `true`).
fn stamped_value(ctx: &ShardCtx, plan: &TaskPlan) -> (Vec<u8>, bool) {
    let mut value = value_template(ctx.cfg.record_bytes_max, plan.index as u64 + 1);
    let stamped = ctx.cfg.record_bytes >= ORDER_STAMP.end;
    if stamped {
        let producer = producer_id(ctx.run_start_ns, plan.index).to_be_bytes();
        value[ORDER_STAMP.start..ORDER_STAMP.start + 4].copy_from_slice(&producer);
    }
    (value, stamped)
}

/// Send every open batch of the transaction, then end it (the driver waits
/// until all of them are answered).
async fn end_txn(
    ctx: &Rc<ShardCtx>,
    window: &Rc<Semaphore>,
    open: &mut [OpenBatch],
    idempotent: ProducerIdentity,
    out: &mut BytesMut,
    txn: &mut TxnDriver,
) -> Result<(), ClientError> {
    flush_lingering(ctx, window, open, idempotent, out, u64::MAX, 0).await?;
    txn.end(ctx, window).await
}

/// Sleep until the next record is due or a batch's linger expires; in
/// unthrottled mode only yield.
async fn pace(schedule: &Schedule, seq: u64, open: &[OpenBatch], linger_ns: u64, tick_ns: u64) {
    if schedule.rate_per_s == 0 || seq >= schedule.records_max {
        glommio::yield_if_needed().await;
        return;
    }
    let mut wake = schedule.intended_ns(seq);
    for b in open.iter().filter(|b| b.builder.record_count() > 0) {
        wake = wake.min(b.first_intended_ns + linger_ns);
    }
    let now = now_ns();
    if wake > now {
        let nap_ns = (wake - now).max(tick_ns);
        glommio::timer::sleep(Duration::from_nanos(nap_ns)).await;
    } else {
        glommio::yield_if_needed().await;
    }
}

fn pace_tick_for(cfg: &crate::cli::RunConfig, schedule: &Schedule) -> u64 {
    pace_tick_ns(
        cfg.linger_ms * 1_000_000,
        schedule.rate_per_s,
        cfg.batch_bytes,
        cfg.record_bytes,
    )
}

/// The pacing tick for this rate, linger and batch (see `PACE_TICK_NS_MIN`).
pub fn pace_tick_ns(linger_ns: u64, rate_per_s: u64, batch_bytes: usize, record_bytes: usize) -> u64 {
    let records_per_batch = (batch_bytes / record_bytes.max(1)).max(1) as u64;
    let fill_ns = records_per_batch.saturating_mul(1_000_000_000) / rate_per_s.max(1);
    (linger_ns / 2)
        .min(fill_ns / 4)
        .clamp(PACE_TICK_NS_MIN, PACE_TICK_NS_MAX)
}

/// Send every open batch whose first record has waited `linger_ns` by `now`.
async fn flush_lingering(
    ctx: &Rc<ShardCtx>,
    window: &Rc<Semaphore>,
    open: &mut [OpenBatch],
    idempotent: Option<(i64, i16)>,
    out: &mut BytesMut,
    now: u64,
    linger_ns: u64,
) -> Result<(), ClientError> {
    for batch in open.iter_mut() {
        if batch.builder.record_count() > 0 && batch.first_intended_ns.saturating_add(linger_ns) <= now {
            let sealed = seal(batch, idempotent, out);
            send_batch(ctx, window, sealed).await?;
        }
    }
    Ok(())
}

/// Close the open batch into `out`. An idempotent producer's batch carries its
/// id, epoch and the partition's sequence number of its first record (Kafka's
/// sequences are i32 and wrap to 0 after i32::MAX).
fn seal(batch: &mut OpenBatch, idempotent: ProducerIdentity, out: &mut BytesMut) -> Sealed {
    let records = batch.builder.record_count() as u64;
    assert!(records > 0, "sealing an empty batch");
    if let Some((producer_id, epoch)) = idempotent {
        let first_seq = (batch.next_seq - records) % (i32::MAX as u64 + 1);
        batch.builder.set_producer(producer_id, epoch, first_seq as i32);
    }
    batch
        .builder
        .finish_into(out)
        .expect("a non-empty batch under BATCH_BYTES_MAX always encodes");
    // The times travel with the batch to its settling task; the next batch
    // starts a vector of the same capacity (one allocation per batch).
    let capacity = batch.intended_ns.len();
    let sealed = Sealed {
        partition: batch.partition,
        transactional_id: batch.transactional_id.clone(),
        batch: out.split().freeze(),
        records,
        payload_bytes: batch.payload_bytes,
        first_intended_ns: batch.first_intended_ns,
        intended_ns: std::mem::replace(&mut batch.intended_ns, Vec::with_capacity(capacity)),
    };
    batch.payload_bytes = 0;
    sealed
}

/// Queue the batch (waiting for an in-flight slot) and settle it in a task.
async fn send_batch(ctx: &Rc<ShardCtx>, window: &Rc<Semaphore>, sealed: Sealed) -> Result<(), ClientError> {
    let conn = ctx.conn_for(sealed.partition).clone();
    let acks = ctx.cfg.acks;
    let permit = if acks == 0 {
        // No answer will come back: bound the unwritten bytes instead.
        conn.wait_queued_below(ctx.cfg.max_in_flight * ctx.cfg.batch_bytes)
            .await;
        None
    } else {
        let permit = window.acquire_static_permit(1).await;
        Some(permit.expect("the producer's own window is never closed"))
    };
    let future = transmit(ctx, &conn, &sealed)?;
    {
        let mut s = ctx.stats.borrow_mut();
        s.sent_records += sealed.records;
        s.sent_payload_bytes += sealed.payload_bytes;
        s.sent_batch_bytes += sealed.batch.len() as u64;
        s.produce_requests += 1;
    }
    match (future, permit) {
        (Some(future), Some(permit)) => {
            ctx.outstanding.set(ctx.outstanding.get() + 1);
            glommio::spawn_local(settle(ctx.clone(), conn, sealed, future, permit)).detach();
        }
        _ => acknowledge(ctx, &sealed, None),
    }
    Ok(())
}

/// Write one Produce request for the batch; the future resolves to its answer.
fn transmit(
    ctx: &ShardCtx,
    conn: &Connection,
    sealed: &Sealed,
) -> Result<Option<crate::client::conn::ResponseFuture>, ClientError> {
    let version = conn.version(ApiKey::Produce)?;
    let (topic, partition) = ctx.cluster.target(sealed.partition);
    let target = ProduceTarget {
        client_id: CLIENT_ID,
        topic: &topic.name,
        topic_id: topic.topic_id_bytes(),
        partition,
        acks: ctx.cfg.acks,
        timeout_ms: ctx.cfg.request_timeout_ms as i32,
        transactional_id: sealed.transactional_id.as_deref(),
    };
    let correlation_id = conn.next_correlation_id();
    let frame = encode_produce(&target, version, correlation_id, sealed.batch.len());
    let parts = [
        frame.prefix.freeze(),
        sealed.batch.clone(),
        Bytes::from_static(frame.suffix),
    ];
    conn.send(
        &parts,
        ApiKey::Produce,
        version,
        correlation_id,
        ctx.cfg.acks != 0,
    )
}

/// Count an acknowledged batch; with `acked_ns` (not for acks=0) record its
/// latency per batch and per record, each from the intended send time.
fn acknowledge(ctx: &ShardCtx, sealed: &Sealed, acked_ns: Option<u64>) {
    let mut s = ctx.stats.borrow_mut();
    s.acked_records += sealed.records;
    s.acked_payload_bytes += sealed.payload_bytes;
    s.acked_batch_bytes += sealed.batch.len() as u64;
    if let Some(acked) = acked_ns {
        record_us(
            &mut s.produce_us,
            acked.saturating_sub(sealed.first_intended_ns) / 1_000,
        );
        for &intended in &sealed.intended_ns {
            record_us(&mut s.produce_record_us, acked.saturating_sub(intended) / 1_000);
        }
    }
    ctx.shared
        .acked_records
        .fetch_add(sealed.records, Ordering::Relaxed);
}

/// Await the answer, retry retriable errors, record latency or failure.
async fn settle(
    ctx: Rc<ShardCtx>,
    conn: Connection,
    sealed: Sealed,
    first: crate::client::conn::ResponseFuture,
    _permit: StaticPermit,
) {
    let mut future = first;
    let mut attempt = 0u32;
    loop {
        let outcome = match conn.wait(ApiKey::Produce, future).await {
            Ok(body) => partition_error(&conn, body, ctx.cluster.target(sealed.partition).1),
            Err(e) => Err(e),
        };
        match outcome {
            Ok(0) => {
                acknowledge(&ctx, &sealed, Some(now_ns()));
                break;
            }
            Ok(code) => {
                ctx.stats
                    .borrow_mut()
                    .count_error(format!("{}({code})", error_name(code)));
                if !is_retriable(code) || attempt >= ctx.cfg.retries || ctx.shared.stopped() {
                    ctx.stats.borrow_mut().failed_records += sealed.records;
                    // A benchmark that loses records is void: end it now (the
                    // report is still written, and the exit status says so),
                    // unless rejections are what the scenario measures.
                    if !ctx.cfg.keep_going {
                        ctx.shared.request_stop();
                    }
                    break;
                }
            }
            Err(e) => {
                ctx.stats
                    .borrow_mut()
                    .count_error(client_error_kind(&e).to_string());
                ctx.stats.borrow_mut().failed_records += sealed.records;
                let (topic, partition) = ctx.cluster.target(sealed.partition);
                let name = &topic.name;
                ctx.shared.fail(format!("produce to {name}-{partition}: {e}"));
                break;
            }
        }
        attempt += 1;
        glommio::timer::sleep(Duration::from_millis(RETRY_BACKOFF_MS)).await;
        match transmit(&ctx, &conn, &sealed) {
            Ok(Some(f)) => future = f,
            Ok(None) => break,
            Err(e) => {
                ctx.shared.fail(format!("produce retry: {e}"));
                break;
            }
        }
    }
    ctx.outstanding.set(ctx.outstanding.get() - 1);
}

pub fn client_error_kind(e: &ClientError) -> &'static str {
    match e {
        ClientError::Timeout { .. } => "timeout",
        ClientError::Protocol {
            source: ProtocolError::Broker { .. } | ProtocolError::NoCommonVersion { .. },
            ..
        } => "broker-error",
        ClientError::Protocol { .. } | ClientError::BadRecords { .. } => "bad-response",
        _ => "connection",
    }
}

/// The error code of `partition` in a Produce response body.
fn partition_error(conn: &Connection, body: Bytes, partition: i32) -> Result<i16, ClientError> {
    let version = conn.version(ApiKey::Produce)?;
    let response: ProduceResponse =
        wire::decode_body(body, ApiKey::Produce, version).map_err(|e| conn.protocol(e))?;
    let p = responses::produce_partition(&response, partition).map_err(|e| conn.protocol(e))?;
    Ok(p.error_code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_a_batch_that_fills_before_its_linger_when_pacing_should_tick_at_a_quarter_of_the_fill() {
        // 100k rec/s of 1 KiB into 64 KiB batches: one fills in 640 us, before a 1 ms linger.
        assert_eq!(pace_tick_ns(1_000_000, 100_000, 64 << 10, 1024), 160_000);
        // A slow rate: the linger decides.
        assert_eq!(pace_tick_ns(1_000_000, 1_000, 64 << 10, 1024), 500_000);
        // Bounds: never under 50 us (the generator's core), never over 1 ms.
        assert_eq!(
            pace_tick_ns(1_000_000, 10_000_000, 64 << 10, 1024),
            PACE_TICK_NS_MIN
        );
        assert_eq!(pace_tick_ns(10_000_000, 1, 64 << 10, 1024), PACE_TICK_NS_MAX);
        assert_eq!(pace_tick_ns(0, 0, 0, 0), PACE_TICK_NS_MIN);
    }

    #[test]
    fn given_keys_when_hashing_should_be_stable_and_in_range() {
        for key in 0..1000 {
            let slot = slot_for_key(key, 7);
            assert!(slot < 7);
            assert_eq!(slot, slot_for_key(key, 7));
        }
        let t = value_template(64, 1);
        assert_eq!(t.len(), 64);
        assert!(t.iter().all(u8::is_ascii_alphanumeric));
    }

    #[test]
    fn given_a_stamped_value_when_reading_the_order_stamp_should_return_producer_and_sequence() {
        let mut v = value_template(32, 1);
        v[8..12].copy_from_slice(&7u32.to_be_bytes());
        v[12..20].copy_from_slice(&123_456u64.to_be_bytes());
        assert_eq!(order_stamp(&v), Some((7, 123_456)));
        assert_eq!(order_stamp(&v[..19]), None, "too short to carry a stamp");
        assert_ne!(producer_id(1_000, 0), producer_id(1_000, 1));
        assert_ne!(producer_id(1_000, 0), producer_id(2_000, 0));
    }
}
