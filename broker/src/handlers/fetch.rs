//! Fetch: read whole batches from each partition's owner, long-polling until
//! min_bytes arrive or max_wait passes. A caught-up consumer is served from the
//! log's tail cache (the appended `Bytes`, no copy); a lagging one from the
//! segment file. Fetch v13+ names topics by id. Sessions (KIP-227) are not
//! kept: session_id 0 tells clients to send full fetches, which all accept.
//! read_committed (isolation level 1) stops at the last stable offset and
//! lists the aborted transactions in the range returned; read_uncommitted
//! does no per-batch work beyond what it always did.
//! A fetch quota (`quota`) caps max_bytes at what the quota window allows and
//! meters the answer's record bytes; an answer over the quota is dropped for an
//! empty one carrying throttle_time_ms, as Kafka's (the bytes are taken back).

use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use futures_lite::future;
use kafka_protocol::messages::fetch_response::{AbortedTransaction, FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::{ApiKey, FetchRequest, FetchResponse, ProducerId, TopicName};
use kafka_protocol::ResponseError;
use weir_protocol::record_batch::header;

use super::{ownership_error, wire_offset, ShardContext};
use crate::error::log_error_code;
use crate::limits;
use crate::log::producers::AbortedTxn;
use crate::log::{FileReadPath, Offset, PartitionLog};
use crate::quota::{ConnectionQuota, QuotaKind};
use crate::shard::router::{owner_of, split_by_owner};
use crate::shard::Task;

use super::fetch_budget::trim_to_max_bytes;
use super::fetch_owners::fetch_everywhere;

#[derive(Debug, Clone, Copy)]
pub struct FetchWait {
    pub max_wait_ms: u64,
    pub min_bytes: usize,
    pub max_bytes: usize,
}

/// One partition to read, for its owner.
#[derive(Clone)]
pub struct FetchPart {
    /// Slot in the client's response.
    pub index: usize,
    pub topic: String,
    pub partition: i32,
    pub offset: Offset,
    pub max_bytes: usize,
    /// Isolation level 1: return only batches below the last stable offset.
    pub read_committed: bool,
}

/// What the owner read for one part. The offsets are `None` when the owner
/// does not have the partition.
#[derive(Debug, Clone, Default)]
pub struct FetchPartResult {
    pub index: usize,
    pub error_code: i16,
    pub high_watermark: Option<Offset>,
    pub log_start_offset: Option<Offset>,
    pub last_stable_offset: Option<Offset>,
    /// read_committed: the aborted transactions overlapping the batches.
    pub aborted: Vec<AbortedTxn>,
    pub batches: Vec<Bytes>,
    /// `batches` as one buffer when the log read them back to back (file
    /// reads): sent as is, no concatenation.
    pub contiguous: Option<Bytes>,
    /// Records were there, but the first batch was over the bytes this owner
    /// had left, so none came back (see `Fetch::may_lead`).
    pub unfit: bool,
}

impl FetchPartResult {
    pub fn bytes(&self) -> usize {
        self.batches.iter().map(Bytes::len).sum()
    }
}

/// Read parts owned by one shard, waiting on its appends until `wait` is met.
pub struct Fetch {
    pub wait: FetchWait,
    pub parts: Vec<FetchPart>,
    /// The shard that asked: the DMA read path only for its own answers, since
    /// a DMA read buffer must be dropped on the shard that read it.
    pub origin: usize,
    /// This shard owns the request's first partition: its first partition with
    /// data may return a batch over its bytes (KIP-74). Other owners return
    /// only batches that fit their share, so nothing read is cut from the answer.
    pub may_lead: bool,
}

/// The request's topics in the client's order (name, id, partitions with
/// their slots): the response is built in this shape.
type Shape = Vec<(TopicName, uuid::Uuid, Vec<(i32, usize)>)>;

/// The connection's fetch quota and the client id it is matched with.
pub struct Metered<'a> {
    pub quota: &'a ConnectionQuota,
    pub client_id: &'a str,
}

pub async fn handle(
    shard: &Rc<ShardContext>,
    req: FetchRequest,
    version: i16,
    metered: Metered<'_>,
) -> FetchResponse {
    let quota_max = metered
        .quota
        .max_bytes_in_window(&shard.quotas, QuotaKind::Fetch, metered.client_id);
    let wait = FetchWait {
        max_wait_ms: u64::try_from(req.max_wait_ms.clamp(0, limits::FETCH_WAIT_MS_MAX)).unwrap_or(0),
        min_bytes: usize::try_from(req.min_bytes).unwrap_or(0),
        max_bytes: usize::try_from(req.max_bytes)
            .ok()
            .filter(|b| *b > 0)
            .map_or(limits::FETCH_BYTES_MAX, |b| b.min(limits::FETCH_BYTES_MAX))
            .min(quota_max.unwrap_or(usize::MAX).max(1)),
    };
    let read_committed = req.isolation_level == 1;
    let (mut results, work, shape) = route(shard, req, version);
    for r in fetch_everywhere(shard, wait, split_by_owner(work, shard.count)).await {
        let i = r.index;
        results[i] = r;
    }
    trim_to_max_bytes(&mut results, wait.max_bytes);
    if quota_max.is_some() {
        let bytes = results.iter().map(FetchPartResult::bytes).sum();
        let (q, id) = (metered.quota, metered.client_id);
        let throttle_ms = q.record(&shard.quotas, QuotaKind::Fetch, id, bytes);
        if throttle_ms > 0 {
            q.unrecord(&shard.quotas, QuotaKind::Fetch, id, bytes);
            return FetchResponse::default().with_throttle_time_ms(throttle_ms);
        }
    }
    let catalog = shard.catalog();
    let responses = shape
        .into_iter()
        .map(|(name, id, indexes)| {
            // v13+ names topics by id only: the metrics want the name.
            let label = if name.is_empty() {
                catalog.topic_by_id(id).map_or("", |t| t.name.as_str())
            } else {
                name.as_str()
            };
            let partitions = indexes
                .into_iter()
                .map(|(partition, i)| {
                    count_out(label, partition, &results[i]);
                    partition_data(partition, std::mem::take(&mut results[i]), read_committed)
                })
                .collect();
            FetchableTopicResponse::default()
                .with_topic(name)
                .with_topic_id(id)
                .with_partitions(partitions)
        })
        .collect();
    FetchResponse::default().with_responses(responses)
}

/// Split the request by owning shard; parts nobody owns are answered here.
fn route(
    shard: &ShardContext,
    req: FetchRequest,
    version: i16,
) -> (Vec<FetchPartResult>, Vec<(usize, FetchPart)>, Shape) {
    let catalog = shard.catalog();
    let read_committed = req.isolation_level == 1;
    let mut results: Vec<FetchPartResult> = Vec::new();
    let mut work = Vec::new();
    let mut shape = Vec::with_capacity(req.topics.len());
    for topic in req.topics {
        // Fetch v13+ names topics by id.
        let (meta, unknown) = if version >= 13 {
            (catalog.topic_by_id(topic.topic_id), ResponseError::UnknownTopicId)
        } else {
            (
                catalog.topic(&topic.topic),
                ResponseError::UnknownTopicOrPartition,
            )
        };
        let mut indexes = Vec::with_capacity(topic.partitions.len());
        for p in topic.partitions {
            let index = results.len();
            indexes.push((p.partition, index));
            let mut result = FetchPartResult {
                index,
                ..Default::default()
            };
            match (meta, owner_of(meta, p.partition, shard.count)) {
                (Some(meta), Some(owner)) => work.push((
                    owner,
                    FetchPart {
                        index,
                        topic: meta.name.clone(),
                        partition: p.partition,
                        offset: Offset(p.fetch_offset),
                        max_bytes: usize::try_from(p.partition_max_bytes).unwrap_or(0),
                        read_committed,
                    },
                )),
                (Some(_), None) => result.error_code = ResponseError::UnknownTopicOrPartition.code(),
                _ => result.error_code = unknown.code(),
            }
            results.push(result);
        }
        shape.push((topic.topic, topic.topic_id, indexes));
    }
    (results, work, shape)
}

/// What the client gets for one partition, after the trim, into this shard's counters.
fn count_out(topic: &str, partition: i32, r: &FetchPartResult) {
    crate::metrics::with(|m| {
        m.error(ApiKey::Fetch as i16, r.error_code);
        if !r.batches.is_empty() {
            let records = r.batches.iter().map(|b| crate::metrics::batch_records(b)).sum();
            m.fetched(topic, partition, r.bytes() as u64, records);
        }
    });
}

/// `aborted_transactions` is null for read_uncommitted, a list (maybe empty)
/// for read_committed, as Kafka answers.
fn partition_data(partition: i32, r: FetchPartResult, read_committed: bool) -> PartitionData {
    let records = match (r.contiguous, r.batches.len()) {
        (Some(all), _) => all,
        (None, n) => concat(r.batches, n),
    };
    let aborted = read_committed.then(|| {
        r.aborted
            .iter()
            .map(|a| {
                AbortedTransaction::default()
                    .with_producer_id(ProducerId(a.producer_id))
                    .with_first_offset(a.first_offset.0)
            })
            .collect()
    });
    PartitionData::default()
        .with_partition_index(partition)
        .with_error_code(r.error_code)
        .with_high_watermark(wire_offset(r.high_watermark))
        .with_last_stable_offset(wire_offset(r.last_stable_offset))
        .with_log_start_offset(wire_offset(r.log_start_offset))
        .with_aborted_transactions(aborted)
        .with_preferred_read_replica(kafka_protocol::messages::BrokerId(-1))
        .with_records(Some(records))
}

/// One buffer for a partition's batches: free for zero or one batch (the tail
/// cache's own `Bytes`), one copy for several cached batches.
fn concat(batches: Vec<Bytes>, count: usize) -> Bytes {
    match count {
        0 => Bytes::new(),
        1 => batches.into_iter().next().expect("one batch"),
        _ => {
            let mut all = BytesMut::with_capacity(batches.iter().map(Bytes::len).sum());
            batches.iter().for_each(|b| all.extend_from_slice(b));
            all.freeze()
        }
    }
}

impl Task<ShardContext> for Fetch {
    type Output = Vec<FetchPartResult>;

    /// Read this shard's parts, waiting on their partitions' data events
    /// until min_bytes are available or max_wait passes: an append wakes only
    /// the fetches that read its partition.
    async fn run(self, shard: Rc<ShardContext>) -> Vec<FetchPartResult> {
        let Fetch {
            wait,
            parts,
            origin,
            may_lead,
        } = self;
        let path = if origin == shard.id {
            shard.args.fetch_read_path
        } else {
            FileReadPath::Copy
        };
        let deadline = Instant::now() + Duration::from_millis(wait.max_wait_ms);
        loop {
            // Listen before reading so a change between the read and the wait
            // is not missed.
            let stop = shard.stop_event.listen();
            let data = DataListeners::new(&shard, &parts);
            let results = read_once(&shard, wait.max_bytes, may_lead, &parts, path).await;
            let total: usize = results.iter().map(FetchPartResult::bytes).sum();
            let errored = results.iter().any(|r| r.error_code != 0);
            let now = Instant::now();
            if total >= wait.min_bytes || errored || now >= deadline || shard.stopping.get() {
                return results;
            }
            let data = async {
                data.await;
                true
            };
            let stop = async {
                stop.await;
                false
            };
            let woken = future::or(future::or(data, stop), async {
                glommio::timer::sleep(deadline - now).await;
                false
            })
            .await;
            if woken {
                crate::metrics::with(crate::metrics::ShardCounters::fetch_woken);
            }
        }
    }
}

/// Resolves when any of a fetch's partitions on this shard has new data.
pub(crate) struct DataListeners(Vec<event_listener::EventListener>);

impl DataListeners {
    fn new(shard: &ShardContext, parts: &[FetchPart]) -> Self {
        Self::of(shard, parts.iter().map(|p| (p.topic.as_str(), p.partition)))
    }

    /// Listen on each distinct (topic, partition) this shard owns. Once per log, not per
    /// mention: a request may name a partition any number of times, and every listener
    /// holds a clone of the task's waker (a 640 KB fetch naming one partition 40,000
    /// times once overflowed glommio's waker count and aborted the process).
    pub(crate) fn of<'a>(shard: &ShardContext, parts: impl Iterator<Item = (&'a str, i32)>) -> Self {
        let mut seen = std::collections::HashSet::new();
        let logs = parts
            .filter_map(|(topic, partition)| shard.partitions.owned(topic, partition).ok())
            .filter(|log| seen.insert(std::rc::Rc::as_ptr(log)));
        Self(logs.map(|log| log.listen_for_data()).collect())
    }
}

impl std::future::Future for DataListeners {
    type Output = ();

    fn poll(mut self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<()> {
        for listener in &mut self.0 {
            if std::pin::Pin::new(listener).poll(cx).is_ready() {
                return std::task::Poll::Ready(());
            }
        }
        std::task::Poll::Pending
    }
}

async fn read_once(
    shard: &ShardContext,
    max_bytes: usize,
    may_lead: bool,
    parts: &[FetchPart],
    path: FileReadPath,
) -> Vec<FetchPartResult> {
    let mut budget = max_bytes;
    let mut out = Vec::with_capacity(parts.len());
    for p in parts {
        let mut r = FetchPartResult {
            index: p.index,
            ..Default::default()
        };
        let log = match shard.partitions.owned(&p.topic, p.partition) {
            Ok(log) => log,
            Err(o) => {
                r.error_code = ownership_error(o).code();
                out.push(r);
                continue;
            }
        };
        let high_watermark = log.log_end_offset();
        let lso = log.last_stable_offset();
        r.high_watermark = Some(high_watermark);
        r.last_stable_offset = Some(lso);
        r.log_start_offset = Some(log.log_start_offset());
        let limit = p.max_bytes.min(budget);
        // read_committed between the LSO and the high watermark: nothing yet.
        let unstable = p.read_committed && (lso..=high_watermark).contains(&p.offset);
        if p.offset == high_watermark || limit == 0 || unstable {
            out.push(r);
            continue;
        }
        // Only the request's first partition with data may return a batch over
        // what is left of the bytes (KIP-74); any other would be cut from the
        // answer, so a fitting read returns nothing for it and keeps its read
        // ahead for the next fetch.
        let fitting = limit < p.max_bytes && !(may_lead && budget == max_bytes);
        // Reads ahead as if the next fetches give this partition its own max.
        let ahead = p.max_bytes.min(max_bytes);
        let read = log.read_for_fetch(p.offset, limit, ahead, path, fitting).await;
        match read {
            Ok(read) => {
                r.high_watermark = Some(read.high_watermark);
                r.log_start_offset = Some(read.log_start_offset);
                r.unfit = fitting && read.batches.is_empty();
                r.batches = read.batches;
                r.contiguous = read.contiguous;
                if p.read_committed {
                    committed_only(&log, &mut r, p.offset, lso);
                }
                budget = budget.saturating_sub(r.bytes());
            }
            Err(e) => {
                // Out of range is the client's business; a corrupt or unreadable
                // segment is the operator's, so it gets a line.
                if !matches!(e, crate::log::LogError::OffsetOutOfRange { .. }) {
                    tracing::error!(shard = shard.id, topic = %p.topic, partition = p.partition, offset = p.offset.0, error = %crate::error::chain(&e), "fetch failed");
                }
                r.error_code = log_error_code(&e);
            }
        }
        out.push(r);
    }
    out
}

/// read_committed: drop the batches at or past `lso` (whole batches: the LSO is
/// a batch's base offset) and list the aborted transactions overlapping
/// [`from`, end of what is returned).
fn committed_only(log: &PartitionLog, r: &mut FetchPartResult, from: Offset, lso: Offset) {
    let below = |b: &Bytes| header(b).is_ok_and(|h| h.base_offset.get() < lso.0);
    let keep = r.batches.iter().take_while(|b| below(b)).count();
    if keep < r.batches.len() {
        r.batches.truncate(keep);
        let kept_bytes = r.bytes();
        r.contiguous = r.contiguous.take().map(|all| all.slice(..kept_bytes));
    }
    let Some(last) = r.batches.last().and_then(|b| header(b).ok()) else {
        return;
    };
    let upper = Offset(last.base_offset.get())
        .plus(last.last_offset_delta.get())
        .next();
    log.aborted_txns(from, upper, &mut r.aborted);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::test_support::{batch, data_dir, run, small_config};
    use crate::log::TxnMarker;

    /// A transactional batch of two records from producer `pid`, epoch 0, sequence 0.
    fn txn_batch(pid: i64) -> Bytes {
        let mut b = batch(2, 50, 1_000, 1).to_vec();
        b[21..23].copy_from_slice(&0x10i16.to_be_bytes());
        b[43..51].copy_from_slice(&pid.to_be_bytes());
        b[51..53].copy_from_slice(&0i16.to_be_bytes());
        b[53..57].copy_from_slice(&0i32.to_be_bytes());
        let crc = crc32c::crc32c(&b[21..]);
        b[17..21].copy_from_slice(&crc.to_be_bytes());
        Bytes::from(b)
    }

    fn bases(r: &FetchPartResult) -> Vec<i64> {
        r.batches
            .iter()
            .map(|b| header(b).expect("header").base_offset.get())
            .collect()
    }

    #[test]
    fn given_an_open_and_an_aborted_txn_when_reading_committed_should_stop_at_the_lso_and_list_the_abort() {
        let dir = data_dir();
        let path = dir.path().join("p0");
        run(async move {
            let log = PartitionLog::open(path, small_config()).await.expect("open");
            log.append(batch(1, 10, 1_000, 0)).await.expect("0");
            log.append(txn_batch(1)).await.expect("1-2");
            let abort = TxnMarker {
                producer_id: 1,
                producer_epoch: 0,
                commit: false,
                coordinator_epoch: 0,
            };
            log.append_marker(abort).await.expect("3").expect("written");
            log.append(batch(1, 10, 1_000, 0)).await.expect("4");
            log.append(txn_batch(2)).await.expect("5-6, left open");
            log.append(batch(1, 10, 1_000, 0)).await.expect("7");
            let lso = log.last_stable_offset();
            assert_eq!(lso, Offset(5));
            for from in [0, 4] {
                let read = log.read(Offset(from), 1 << 20).await.expect("read");
                let mut r = FetchPartResult {
                    batches: read.batches,
                    contiguous: read.contiguous,
                    ..Default::default()
                };
                committed_only(&log, &mut r, Offset(from), lso);
                let want: Vec<i64> = [0, 1, 3, 4].into_iter().filter(|b| *b >= from).collect();
                assert_eq!(bases(&r), want, "from {from}: in order, below the LSO");
                let aborted: Vec<(i64, i64)> = r
                    .aborted
                    .iter()
                    .map(|a| (a.producer_id, a.first_offset.0))
                    .collect();
                let want_aborted = if from == 0 { vec![(1, 1)] } else { Vec::new() };
                assert_eq!(aborted, want_aborted, "from {from}");
            }
            log.close().await.expect("close");
        });
    }
}
