//! Dead-letter moves of share groups (here, beside the ShareFetch that drives them, because
//! a move appends on other shards through `ShardContext`): records a share-partition
//! archived by REJECT, by the delivery-count limit or by their TTL are copied (key, value,
//! headers, plus `weir-dlq-*` headers) to the source topic's
//! `errors.deadletterqueue.topic.name`, partition = source partition modulo the dead-letter
//! topic's partition count, then archived. Runs on the share-partition's owner shard
//! (started by its ShareFetches, and by the shard's background mover, `background`, so that
//! dead letters move even when nobody fetches); the copy is appended and fdatasync'd on the
//! dead-letter partition's owner (`Probe`, `AppendCopies` tasks). Invariants: exactly one
//! copy per dead letter, across crashes. A record is logged in its DeadLetter state before
//! any copy of it is appended (the move commits to the share-state log first, and that log
//! is FIFO) and archived only after its copy is durable; before the first copy of a move
//! the dead-letter partition's end is logged as the floor, so after a crash (or a failed
//! append) the move first scans the partition from the floor and skips the records whose
//! copies are there. One move per share-partition at a time, at most `MOVE_RECORDS_MAX`
//! records and `MOVE_READ_BYTES_MAX` bytes read from the source log.

use std::collections::BTreeSet;
use std::rc::Rc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use weir_protocol::builder::BatchBuilder;
use weir_protocol::record_batch::{header, Compression};
use weir_protocol::records::for_each_record;

use super::ShardContext;
use crate::log::{Offset, PartitionLog};
use crate::shard::fanout::run_on;
use crate::shard::Task;
use crate::share::partition::ArchiveReason;
use crate::share::store::{Key, ShareRecord};
use crate::share::{DeadLetterWork, ShareState};

/// Records one move copies at most.
pub const MOVE_RECORDS_MAX: usize = 500;
/// Source-log bytes one move reads at most (and dead-letter bytes one scan read asks for).
const MOVE_READ_BYTES_MAX: usize = 1024 * 1024;
/// Bytes one dead-letter batch holds at most (well under the default max.message.bytes).
const COPY_BATCH_BYTES_MAX: usize = 512 * 1024;
const DECOMPRESSED_BYTES_MAX: usize = 64 << 20;

pub const H_GROUP: &[u8] = b"weir-dlq-group";
pub const H_TOPIC: &[u8] = b"weir-dlq-topic";
pub const H_PARTITION: &[u8] = b"weir-dlq-partition";
pub const H_OFFSET: &[u8] = b"weir-dlq-offset";
pub const H_REASON: &[u8] = b"weir-dlq-reason";
pub const H_DELIVERY_COUNT: &[u8] = b"weir-dlq-delivery-count";
pub const H_TIME: &[u8] = b"weir-dlq-time-ms";

/// Runs one dead-letter move of `key` if records wait for one; the share-partition's
/// ShareFetch calls it before acquiring, the background mover when woken. Failures are
/// logged and retried. Returns whether records were settled.
pub async fn drive(shard: &Rc<ShardContext>, share: &ShareState, key: &Key, log: &PartitionLog) -> bool {
    let Some(work) = share.begin_dead_letters(key, MOVE_RECORDS_MAX) else {
        return false;
    };
    let (done, failed) = match move_records(shard, share, key, log, &work).await {
        Ok(done) => (done, false),
        Err(e) => {
            tracing::warn!(group = %key.0, topic = %key.1, partition = key.2, error = %e,
                "dead-letter move failed; retried");
            (Vec::new(), true)
        }
    };
    let records = share.end_dead_letters(key, &done, failed);
    if let Err(e) = share.commit(records).await {
        // Archived in memory; a restart finds them DeadLetter again and scans for copies.
        tracing::error!(error = %e, "share state: dead-letter archive not durable");
    }
    !done.is_empty()
}

/// Pause of the background mover after a round that left moves it could not make (a fetch
/// was running one, or it failed).
const RETRY: Duration = Duration::from_secs(1);
/// Longest sleep of an idle background mover (a new dead letter wakes it at once).
const IDLE: Duration = Duration::from_secs(5);

/// The shard's background mover: moves the dead letters of every share-partition that may
/// hold some (`ShareState::take_pending_dead_letters`), without waiting for a fetch of it,
/// one move at a time. One task per shard, from start-up to shutdown.
pub async fn background(shard: Rc<ShardContext>) {
    let Some(share) = shard.share() else {
        return;
    };
    while !shard.stopping.get() {
        // Listen before taking the list: a dead letter noted in between wakes the next wait.
        let woken = share.dead_letter.listen();
        let stop = shard.stop_event.listen();
        let (mut busy, mut progressed) = (false, false);
        for key in share.take_pending_dead_letters() {
            if shard.stopping.get() {
                return;
            }
            let Ok(log) = shard.partitions.owned(&key.1, key.2) else {
                continue; // the partition is gone (or not this shard's): nothing to move
            };
            let moved = drive(&shard, &share, &key, &log).await;
            if share.still_pending(&key) {
                busy |= !moved;
                progressed |= moved;
            }
        }
        if progressed && !busy {
            continue; // more than one move's worth: go on at once
        }
        let wait = if busy || progressed { RETRY } else { IDLE };
        futures_lite::future::or(futures_lite::future::or(woken, stop), async {
            glommio::timer::sleep(wait).await;
        })
        .await;
    }
}

/// Where copies go: the dead-letter topic's partition and its owner shard.
struct Target {
    topic: String,
    partition: i32,
    owner: usize,
    /// The largest copy batch the dead-letter partition accepts (max.message.bytes).
    batch_bytes_max: usize,
}

fn target_of(shard: &ShardContext, key: &Key) -> Result<Option<Target>, String> {
    let catalog = shard.catalog();
    let Some(name) = catalog
        .topic(&key.1)
        .and_then(|t| t.config.queue.dead_letter_topic().map(str::to_owned))
    else {
        return Ok(None);
    };
    let Some(dlq) = catalog.topic(&name) else {
        tracing::warn!(topic = %key.1, dead_letter_topic = %name,
            "dead-letter topic does not exist: records archived without a copy");
        return Ok(None);
    };
    let count = dlq.partition_count().max(1);
    let partition = key.2.rem_euclid(count);
    let owner = dlq
        .owner(partition, shard.count)
        .ok_or_else(|| format!("no owner for {name}/{partition}"))?;
    let batch_bytes_max = usize::try_from(dlq.config.max_message_bytes)
        .unwrap_or(0)
        .min(COPY_BATCH_BYTES_MAX);
    Ok(Some(Target {
        topic: name,
        partition,
        owner,
        batch_bytes_max,
    }))
}

/// The move itself; returns the offsets now settled (copied, found copied, or gone).
async fn move_records(
    shard: &Rc<ShardContext>,
    share: &ShareState,
    key: &Key,
    log: &PartitionLog,
    work: &DeadLetterWork,
) -> Result<Vec<i64>, String> {
    let all: Vec<i64> = work.records.iter().map(|r| r.0).collect();
    let Some(target) = target_of(shard, key)? else {
        // No dead-letter topic: archiving is the whole move. The commit in `drive` follows
        // the DeadLetter states' own, so nothing is lost by skipping the floor.
        return Ok(all);
    };
    let mut found = BTreeSet::new();
    let floor = match work.floor {
        None => probe(shard, &target, None, key).await?.0,
        Some(floor) if work.scan => {
            found = probe(shard, &target, Some(floor), key).await?.1;
            floor
        }
        Some(floor) => floor,
    };
    share.set_dead_letter_floor(key, floor);
    // Durable floor, and durable DeadLetter states (FIFO log), before any copy is appended.
    share
        .commit(vec![ShareRecord::DeadLetterFloor {
            key: key.clone(),
            floor,
        }])
        .await
        .map_err(|e| e.to_string())?;
    let (batch, settled) = copies(log, key, work, &found, target.batch_bytes_max).await?;
    if let Some(batch) = batch {
        let task = AppendCopies {
            topic: target.topic.clone(),
            partition: target.partition,
            batch,
        };
        run_on(shard, target.owner, task)
            .await
            .map_err(|e| e.to_string())??;
        crash_for_tests();
    }
    Ok(settled)
}

async fn probe(
    shard: &Rc<ShardContext>,
    target: &Target,
    scan_from: Option<i64>,
    key: &Key,
) -> Result<(i64, BTreeSet<i64>), String> {
    let task = Probe {
        topic: target.topic.clone(),
        partition: target.partition,
        scan_from,
        source: key.clone(),
    };
    run_on(shard, target.owner, task)
        .await
        .map_err(|e| e.to_string())?
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Splits a move's records into those settled already (gone from the log by retention or
/// DeleteRecords, or found copied) and those to copy.
fn to_copy(
    log_start: i64,
    work: &DeadLetterWork,
    found: &BTreeSet<i64>,
) -> (Vec<i64>, Vec<(i64, ArchiveReason, u16)>) {
    let (gone, wanted): (Vec<_>, Vec<_>) = work
        .records
        .iter()
        .copied()
        .partition(|r| r.0 < log_start || found.contains(&r.0));
    (gone.into_iter().map(|r| r.0).collect(), wanted)
}

/// At least the bytes `push` adds to a batch for this record (varints at their longest).
fn copy_bytes_max(key: Option<&[u8]>, value: Option<&[u8]>, headers: &[(&[u8], Option<&[u8]>)]) -> usize {
    let len = |b: Option<&[u8]>| b.map_or(0, <[u8]>::len);
    41 + len(key) + len(value) + headers.iter().map(|(k, v)| 10 + k.len() + len(*v)).sum::<usize>()
}

/// Builds the copies of `work`'s records not in `found`, reading the source log from the
/// first, in one batch of at most `batch_bytes_max`. Returns the batch (if any record needs a
/// copy) and every offset it settles; a record too large for any batch is settled uncopied.
async fn copies(
    log: &PartitionLog,
    key: &Key,
    work: &DeadLetterWork,
    found: &BTreeSet<i64>,
    batch_bytes_max: usize,
) -> Result<(Option<Bytes>, Vec<i64>), String> {
    let (mut settled, wanted) = to_copy(log.log_start_offset().0, work, found);
    let Some(first) = wanted.first().map(|r| r.0) else {
        return Ok((None, settled));
    };
    let read = log
        .read(Offset(first), MOVE_READ_BYTES_MAX)
        .await
        .map_err(|e| e.to_string())?;
    let mut builder = BatchBuilder::new(Compression::None);
    let (time, time_ms) = (now_ms(), now_ms().to_string());
    let (group, partition) = (key.0.as_bytes(), key.2.to_string());
    let mut scratch = Vec::new();
    // The batch is full: the records left wait for the next move.
    let mut full = false;
    for b in &read.batches {
        if full || header(b).is_err() {
            break;
        }
        let r = for_each_record(b, &mut scratch, DECOMPRESSED_BYTES_MAX, |r| {
            let Ok(i) = wanted.binary_search_by_key(&r.offset, |w| w.0) else {
                return;
            };
            if full {
                return;
            }
            let (_, why, count) = wanted[i];
            let (offset, count) = (r.offset.to_string(), count.to_string());
            let mut headers: Vec<(&[u8], Option<&[u8]>)> = r.headers.iter().collect();
            headers.extend([
                (H_GROUP, Some(group)),
                (H_TOPIC, Some(key.1.as_bytes())),
                (H_PARTITION, Some(partition.as_bytes())),
                (H_OFFSET, Some(offset.as_bytes())),
                (H_REASON, Some(why.as_str().as_bytes())),
                (H_DELIVERY_COUNT, Some(count.as_bytes())),
                (H_TIME, Some(time_ms.as_bytes())),
            ]);
            if builder.estimated_size_bytes() + copy_bytes_max(r.key, r.value, &headers) > batch_bytes_max {
                if builder.record_count() > 0 {
                    full = true;
                    return;
                }
                let mut alone = BatchBuilder::new(Compression::None);
                alone.push(time, r.key, r.value, &headers);
                if alone.estimated_size_bytes() > batch_bytes_max {
                    tracing::warn!(group = %key.0, topic = %key.1, partition = key.2, offset = r.offset,
                        copy_bytes = alone.estimated_size_bytes(), max_bytes = batch_bytes_max,
                        "dead letter larger than the dead-letter topic accepts: archived without a copy");
                    settled.push(r.offset);
                    return;
                }
            }
            builder.push(time, r.key, r.value, &headers);
            settled.push(r.offset);
        });
        if let Err(e) = r {
            tracing::warn!(topic = %key.1, partition = key.2, error = %e, "dead-letter move: unreadable batch");
        }
    }
    if builder.record_count() == 0 {
        return Ok((None, settled));
    }
    let mut out = BytesMut::new();
    builder.finish_into(&mut out).map_err(|e| e.to_string())?;
    Ok((Some(out.freeze()), settled))
}

/// On the dead-letter partition's owner: its end offset, and with `scan_from` the source
/// offsets of `source`'s copies from there on.
struct Probe {
    topic: String,
    partition: i32,
    scan_from: Option<i64>,
    source: Key,
}

impl Task<ShardContext> for Probe {
    type Output = Result<(i64, BTreeSet<i64>), String>;

    async fn run(self, shard: Rc<ShardContext>) -> Self::Output {
        let log = shard
            .partitions
            .owned(&self.topic, self.partition)
            .map_err(|o| format!("dead-letter partition not here: {o:?}"))?;
        let end = log.log_end_offset().0;
        let mut found = BTreeSet::new();
        let Some(from) = self.scan_from else {
            return Ok((end, found));
        };
        let mut at = from.max(log.log_start_offset().0);
        let mut scratch = Vec::new();
        let (group, topic) = (self.source.0.as_bytes(), self.source.1.as_bytes());
        let partition = self.source.2.to_string();
        while at < end {
            let read = log
                .read(Offset(at), MOVE_READ_BYTES_MAX)
                .await
                .map_err(|e| e.to_string())?;
            let Some(next) = read
                .batches
                .last()
                .and_then(|b| header(b).ok())
                .map(|h| h.base_offset.get() + i64::from(h.last_offset_delta.get()) + 1)
            else {
                break;
            };
            for b in &read.batches {
                let _ = for_each_record(b, &mut scratch, DECOMPRESSED_BYTES_MAX, |r| {
                    let mut id = (false, false, false, None);
                    for (k, v) in r.headers.iter() {
                        match (k, v) {
                            (H_GROUP, Some(v)) => id.0 = v == group,
                            (H_TOPIC, Some(v)) => id.1 = v == topic,
                            (H_PARTITION, Some(v)) => id.2 = v == partition.as_bytes(),
                            (H_OFFSET, Some(v)) => {
                                id.3 = std::str::from_utf8(v).ok().and_then(|s| s.parse::<i64>().ok());
                            }
                            _ => {}
                        }
                    }
                    if let (true, true, true, Some(o)) = id {
                        found.insert(o);
                    }
                });
            }
            if next <= at {
                break;
            }
            at = next;
        }
        tracing::info!(topic = %self.source.1, partition = self.source.2, dead_letter_topic = %self.topic,
            from, end, found = found.len(), "dead-letter scan after an interrupted move");
        Ok((end, found))
    }
}

/// On the dead-letter partition's owner: appends the copies and waits until durable.
struct AppendCopies {
    topic: String,
    partition: i32,
    batch: Bytes,
}

impl Task<ShardContext> for AppendCopies {
    type Output = Result<(), String>;

    async fn run(self, shard: Rc<ShardContext>) -> Self::Output {
        let log = shard
            .partitions
            .owned(&self.topic, self.partition)
            .map_err(|o| format!("dead-letter partition not here: {o:?}"))?;
        let appended = log.append(self.batch).await.map_err(|e| e.to_string())?;
        log.wait_durable(appended.last_offset)
            .await
            .map_err(|e| e.to_string())
    }
}

/// Test hook: with `WEIR_FAULT_DEAD_LETTER_ABORT` naming a file that exists, the broker
/// deletes it and aborts right after a move's copies are durable and before the records are
/// archived: the crash window the floor and scan close (`broker/tests/share_groups.rs`).
/// Without the variable this is one environment lookup per move.
fn crash_for_tests() {
    if let Some(flag) = std::env::var_os("WEIR_FAULT_DEAD_LETTER_ABORT") {
        if std::fs::remove_file(flag).is_ok() {
            tracing::error!(
                "WEIR_FAULT_DEAD_LETTER_ABORT: aborting between a dead-letter copy and its archive"
            );
            std::process::abort();
        }
    }
}
