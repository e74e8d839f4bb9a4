//! `PartitionLog`: offsets, the append path, durability waits, close and delete.
//!
//! Owned by one shard (`!Send`, held in an `Rc`). All state sits in one `RefCell` that
//! is never borrowed across an `.await`. Invariants: offsets are assigned in the same
//! synchronous step that queues the bytes, so concurrent appends stay strictly ordered;
//! next_offset >= written_end_offset >= durable_end_offset; unwritten bytes are bounded
//! (appends await room). The background appender task does all writes and syncs.

use std::cell::{Cell, RefCell, RefMut};
use std::collections::VecDeque;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use glommio::Task;
use weir_protocol::record_batch::{
    header, set_base_offset, validate, BatchHeader, BatchInfo, ATTR_CONTROL, ATTR_TRANSACTIONAL,
};

use super::appender::Appender;
use super::cache::TailCache;
use super::producers::{ProducerBatch, ProducerStates, Verdict};
use super::segment::{now_ms, Segment};
use super::wait::WaitList;
use super::{producer_snapshot, recovery, AppendResult, LogConfig, LogError, Offset};

/// Appended bytes not yet on the file, beyond which appends wait (`--unwritten-bytes-max`).
/// Bounds staging memory (the tail cache cannot evict them) while leaving the writer a
/// runway: at least one 1 MiB DMA chunk; by default 8 MiB, eight chunks, enough to keep
/// four writes in flight. That is 80 ms at 100 MB/s, shorter than the write stalls of a
/// virtual disk (up to 455 ms measured), but 32 MiB made a producer-bound backlog's RSS
/// grow 55-83% instead of 5% (docs/benchmarks.md, "Disk write stalls, and the staging
/// runway"): a setting for a disk known to stall, not the default.
pub const UNWRITTEN_BYTES_DEFAULT: u64 = 8 * 1024 * 1024;
pub const UNWRITTEN_BYTES_MIN: u64 = super::appender::CHUNK_BYTES as u64;
pub const UNWRITTEN_BYTES_LIMIT: u64 = 1024 * 1024 * 1024;
static UNWRITTEN_BYTES_MAX: AtomicU64 = AtomicU64::new(UNWRITTEN_BYTES_DEFAULT);

/// Set `--unwritten-bytes-max` before the shards start.
pub fn set_unwritten_bytes_max(bytes: u64) {
    UNWRITTEN_BYTES_MAX.store(
        bytes.clamp(UNWRITTEN_BYTES_MIN, UNWRITTEN_BYTES_LIMIT),
        Ordering::Relaxed,
    );
}

pub(crate) struct Pending {
    pub bytes: Bytes,
    pub segment_base: Offset,
    pub last_offset: Offset,
}

pub(crate) struct State {
    /// Oldest first; the last one is the active segment (appends go there).
    pub segments: VecDeque<Segment>,
    pub next_offset: Offset,
    /// Every offset below is on the file (DMA write completed).
    pub written_end_offset: Offset,
    /// Every offset below is on the file and fdatasync'd.
    pub durable_end_offset: Offset,
    /// Callers of `wait_durable` want everything below this durable.
    pub sync_wanted_offset: Offset,
    pub pending: VecDeque<Pending>,
    pub cache: TailCache,
    pub unwritten_bytes: u64,
    /// Idempotent producers' last batches, checked and updated in the same
    /// synchronous step that assigns offsets.
    pub producers: ProducerStates,
    /// DeleteRecords' floor (`start_offset.rs`): the log starts at the greater of
    /// this and the first segment's base offset.
    pub start_floor: Offset,
    /// The producer state at an offset of the active segment, captured every index
    /// checkpoint interval; the appender writes it as a snapshot once that offset is
    /// durable (`appender.rs`), so a crash rescans the segment from there, not its base.
    pub producer_checkpoint: Option<(Offset, ProducerStates)>,
    /// Position in the active segment of the last capture (0 after a roll).
    pub producers_captured_at: super::Position,
    /// `Some` while the directory still says it was closed cleanly and nothing was
    /// written since the open: the appender takes it and marks the directory not clean
    /// before its first write; a close that finds it still here has nothing to write.
    pub clean_on_disk: Option<super::shutdown_state::Found>,
    pub closing: bool,
    pub closed: bool,
    pub failure: Option<Arc<std::io::Error>>,
}

impl State {
    pub fn check_usable(&self) -> Result<(), LogError> {
        if let Some(failure) = &self.failure {
            return Err(LogError::WriterFailed(failure.clone()));
        }
        if self.closing || self.closed {
            return Err(LogError::Closed);
        }
        Ok(())
    }

    pub fn log_start_offset(&self) -> Offset {
        let first = self
            .segments
            .front()
            .expect("a log always has a segment")
            .base_offset;
        first.max(self.start_floor)
    }

    pub fn active(&mut self) -> &mut Segment {
        self.segments.back_mut().expect("a log always has a segment")
    }
}

pub(crate) struct Shared {
    pub dir: PathBuf,
    /// This open's key in the shard's sealed-segment descriptor cache (`file_cache.rs`).
    pub log_id: u64,
    /// Replaced whole by `set_config` (AlterConfigs); read through `config()`.
    config: RefCell<LogConfig>,
    pub state: RefCell<State>,
    /// The appender waits here for input, sync requests or close.
    pub writer_wake: WaitList,
    /// Appenders (staging room) and durability waiters wait here for writer progress.
    pub progress: WaitList,
    /// Serializes log start offset moves (`start_offset.rs`).
    pub start_lock: glommio::sync::Semaphore,
    /// Long-polling fetches of this partition wait here; notified when its
    /// data changes (an append, a marker, a failure), so an append wakes only
    /// the fetches that read this partition. An `Event` because a fetch that
    /// times out must leave no waker behind on an idle partition.
    pub readers: event_listener::Event,
    /// The shard-wide interval sync's view of this partition (`shard_sync.rs`).
    pub shard_sync: super::shard_sync::Slot,
}

impl Shared {
    /// The config now (a copy: callers never hold a borrow across an await).
    pub fn config(&self) -> LogConfig {
        self.config.borrow().clone()
    }

    pub fn fail(&self, error: LogError) {
        let source = match error {
            LogError::Io { source, .. } => source,
            other => std::io::Error::other(other),
        };
        tracing::error!(dir = %self.dir.display(), error = %source, "partition writer failed");
        self.state.borrow_mut().failure = Some(Arc::new(source));
        self.progress.notify_all();
        self.readers.notify(usize::MAX);
    }
}

/// One partition's log. Create with `open`, stop with `close` (or `delete`).
pub struct PartitionLog {
    pub(crate) shared: Rc<Shared>,
    writer: RefCell<Option<Task<()>>>,
    /// What producers appended here since open, for the metrics endpoint.
    pub stats: PartitionStats,
    pub(super) read_aheads: super::read_ahead::ReadAheads,
}

/// A partition's appends since its log was opened (shard-local, `Cell`s).
#[derive(Default)]
pub struct PartitionStats {
    pub bytes_in: Cell<u64>,
    pub records_in: Cell<u64>,
}

impl PartitionStats {
    fn appended(&self, bytes: u64, records: u64) {
        self.bytes_in.set(self.bytes_in.get() + bytes);
        self.records_in.set(self.records_in.get() + records);
    }
}

impl PartitionLog {
    /// Open (recovering if needed) or create the partition directory `dir`.
    pub async fn open(dir: PathBuf, config: LogConfig) -> Result<Rc<PartitionLog>, LogError> {
        config.check()?;
        let recovered = recovery::recover(&dir, &config).await?;
        let next_offset = recovered
            .segments
            .back()
            .expect("recovery yields a segment")
            .next_offset;
        let state = State {
            segments: recovered.segments,
            next_offset,
            written_end_offset: next_offset,
            durable_end_offset: next_offset,
            sync_wanted_offset: next_offset,
            pending: VecDeque::new(),
            cache: TailCache::default(),
            unwritten_bytes: 0,
            producers: ProducerStates::default(),
            // Set after the producer rebuild below, whose scan may start below it.
            start_floor: Offset(0),
            producer_checkpoint: None,
            producers_captured_at: super::Position::ZERO,
            clean_on_disk: recovered.shutdown.clean().then_some(recovered.shutdown),
            closing: false,
            closed: false,
            failure: None,
        };
        let shared = Rc::new(Shared {
            dir,
            log_id: super::file_cache::new_log_id(),
            config: RefCell::new(config),
            state: RefCell::new(state),
            writer_wake: WaitList::default(),
            progress: WaitList::default(),
            start_lock: glommio::sync::Semaphore::new(1),
            readers: event_listener::Event::new(),
            shard_sync: Default::default(),
        });
        let appender = Appender::new(shared.clone(), recovered.active_file, recovered.carry);
        let task_shared = shared.clone();
        let task = glommio::spawn_local(async move {
            if let Err(error) = appender.run().await {
                task_shared.fail(error);
            }
        });
        let log = Rc::new(PartitionLog {
            shared,
            writer: RefCell::new(Some(task)),
            stats: PartitionStats::default(),
            read_aheads: Default::default(),
        });
        log.rebuild_producers().await?;
        // A floor beyond the recovered end cannot be (it is saved only once the
        // records below it are durable); `min` keeps the invariant regardless.
        let floor = recovered.start_floor.min(next_offset);
        log.shared.state.borrow_mut().start_floor = floor;
        Ok(log)
    }

    /// Validate exactly one batch, assign its offsets, make it readable and queue it for
    /// the writer. Awaits only for staging room (backpressure).
    pub async fn append(&self, batch: Bytes) -> Result<AppendResult, LogError> {
        let info = self.admit(&batch).await?;
        let st = self.shared.state.borrow_mut();
        st.check_usable()?;
        if info.is_control() {
            return Err(LogError::ControlBatch);
        }
        let producer = producer_batch(header(&batch)?);
        if let Some(p) = &producer {
            if let Verdict::Duplicate(stored) = st.producers.check(p)? {
                // A retry of a batch already stored: its first answer, nothing stored.
                return Ok(AppendResult {
                    base_offset: stored.base_offset,
                    last_offset: stored.last_offset,
                    log_start_offset: st.log_start_offset(),
                });
            }
        }
        let (batch_bytes, records) = (batch.len() as u64, crate::metrics::batch_records(&batch));
        let appended = self.commit(st, batch, &info, |st, base, last| {
            if let Some(p) = &producer {
                st.producers.record(p, base, last);
            }
        });
        // Producers' batches only (not retried duplicates, not markers).
        self.stats.appended(batch_bytes, records);
        crate::metrics::with(|m| m.appended(batch_bytes, records));
        Ok(appended)
    }

    /// Check a batch's size and bytes, then wait for staging room.
    pub(super) async fn admit(&self, batch: &Bytes) -> Result<BatchInfo, LogError> {
        let limit_bytes = self.shared.config().max_batch_bytes;
        if batch.len() > limit_bytes {
            return Err(LogError::TooLarge {
                batch_bytes: batch.len(),
                limit_bytes,
            });
        }
        let mut info = validate(batch)?;
        info.max_timestamp = super::timestamps::effective_max_timestamp(batch, info.max_timestamp);
        let batch_bytes = batch.len() as u64;
        let unwritten_max = UNWRITTEN_BYTES_MAX.load(Ordering::Relaxed);
        let room = || {
            let st = self.shared.state.borrow();
            st.check_usable().is_err()
                || st.unwritten_bytes == 0
                || st.unwritten_bytes + batch_bytes <= unwritten_max
        };
        if !room() {
            // Back-pressure: the writer is that far behind (a slow sync, roll or disk); the
            // producer, and every consumer waiting for these records, waits too.
            let started = std::time::Instant::now();
            self.shared.progress.wait_until(room).await;
            super::report_slow("append waited for staging room", &self.shared.dir, started);
        }
        Ok(info)
    }

    /// The critical section's second half, after the checks passed: assign the
    /// offsets, roll if due, let `record` update producer state (after the roll,
    /// so the roll's snapshot excludes this batch), cache and queue the bytes.
    pub(super) fn commit(
        &self,
        mut st: RefMut<'_, State>,
        batch: Bytes,
        info: &BatchInfo,
        record: impl FnOnce(&mut State, Offset, Offset),
    ) -> AppendResult {
        let batch_bytes = batch.len() as u64;
        let base = st.next_offset;
        let last = base.plus(info.last_offset_delta);
        let bytes = assign_base_offset(batch, base);
        // The state of every batch below the new segment, before this one.
        let roll_snapshot = self
            .maybe_roll(&mut st, batch_bytes, last)
            .then(|| st.producers.clone());
        let config = self.shared.config();
        if roll_snapshot.is_some() {
            st.producer_checkpoint = None;
            st.producers_captured_at = super::Position::ZERO;
        } else {
            let end = st.active().end;
            if end - st.producers_captured_at >= super::appender::checkpoint_bytes(&config) {
                // Before this batch is recorded: the state of every batch below `base`.
                let snapshot = st.producers.clone();
                st.producers_captured_at = end;
                st.producer_checkpoint = Some((base, snapshot));
            }
        }
        let active = st.active();
        active.record_batch(
            base,
            last,
            batch_bytes,
            info.max_timestamp,
            config.index_interval_bytes,
        );
        let segment_base = active.base_offset;
        st.next_offset = last.next();
        st.unwritten_bytes += batch_bytes;
        record(&mut st, base, last);
        st.cache.push(base, last, bytes.clone());
        let written_end_offset = st.written_end_offset;
        st.cache.evict(config.tail_cache_bytes, written_end_offset);
        st.pending.push_back(Pending {
            bytes,
            segment_base,
            last_offset: last,
        });
        let log_start_offset = st.log_start_offset();
        drop(st);
        if let Some(snapshot) = roll_snapshot {
            // After the borrow ends: glommio may run a spawned task right away.
            self.snapshot_producers_in_background(base, snapshot);
        }
        self.shared.writer_wake.notify_all();
        self.shared.readers.notify(usize::MAX);
        AppendResult {
            base_offset: base,
            last_offset: last,
            log_start_offset,
        }
    }

    /// Write the roll's producer snapshot once the segment below `at` is sealed:
    /// its `.txnindex` must be durable first, since an open that starts from this
    /// snapshot takes that segment's aborted transactions from the file.
    fn snapshot_producers_in_background(&self, at: Offset, snapshot: ProducerStates) {
        let shared = self.shared.clone();
        glommio::spawn_local(async move {
            let sealed = || {
                let st = shared.state.borrow();
                let below = st.segments.iter().rev().find(|s| s.base_offset < at);
                let sealed = below.is_none_or(|s| s.sealed);
                (sealed, st.failure.is_some() || st.closed)
            };
            shared.progress.wait_until(|| sealed().0 || sealed().1).await;
            if !sealed().0 {
                return; // failed or closed first: close writes its own snapshot
            }
            if let Err(e) = producer_snapshot::write(shared.dir.clone(), at, &snapshot).await {
                tracing::warn!(error = %e, "producer snapshot at roll failed; the next open scans further");
            }
        })
        .detach();
    }

    /// Start a new segment (in memory; the appender creates its file) when the active
    /// one is non-empty and would pass segment.bytes, is older than segment.ms, or the
    /// batch's offsets would not fit the u32 relative offsets of the index.
    fn maybe_roll(&self, st: &mut State, batch_bytes: u64, last: Offset) -> bool {
        let config = self.shared.config();
        let next_offset = st.next_offset;
        let now = now_ms();
        let active = st.active();
        if active.is_empty() {
            return false;
        }
        let full = active.size_bytes() + batch_bytes > config.segment_bytes;
        let old = config
            .segment_ms
            .is_some_and(|ms| now - active.created_ms >= ms as i64);
        let offsets_overflow = last.0 - active.base_offset.0 > i64::from(u32::MAX);
        let roll = full || old || offsets_overflow;
        if roll {
            st.segments.push_back(Segment::new(next_offset, now));
        }
        roll
    }

    /// Resolve once every record with offset <= `offset` is on disk and fdatasync'd.
    /// Many waiters share one fdatasync (group commit).
    pub async fn wait_durable(&self, offset: Offset) -> Result<(), LogError> {
        {
            let mut st = self.shared.state.borrow_mut();
            if let Some(failure) = &st.failure {
                return Err(LogError::WriterFailed(failure.clone()));
            }
            if offset < st.durable_end_offset {
                return Ok(());
            }
            if offset >= st.next_offset {
                return Err(LogError::OffsetOutOfRange {
                    offset: offset.0,
                    log_start_offset: st.log_start_offset().0,
                    log_end_offset: st.next_offset.0,
                });
            }
            if st.closed {
                return Err(LogError::Closed);
            }
            st.sync_wanted_offset = st.sync_wanted_offset.max(offset.next());
        }
        self.shared.writer_wake.notify_all();
        self.shared
            .progress
            .wait_until(|| {
                let st = self.shared.state.borrow();
                st.durable_end_offset > offset || st.failure.is_some() || st.closed
            })
            .await;
        let st = self.shared.state.borrow();
        match &st.failure {
            _ if st.durable_end_offset > offset => Ok(()),
            Some(failure) => Err(LogError::WriterFailed(failure.clone())),
            None => Err(LogError::Closed),
        }
    }

    /// Make everything appended so far durable.
    pub async fn flush(&self) -> Result<(), LogError> {
        let Some(last) = self.last_appended_offset() else {
            return Ok(());
        };
        if last < self.durable_end_offset() {
            return Ok(());
        }
        self.wait_durable(last).await
    }

    /// The offset of the last record appended, if any was.
    fn last_appended_offset(&self) -> Option<Offset> {
        let next = self.shared.state.borrow().next_offset;
        (next.0 > 0).then(|| Offset(next.0 - 1))
    }

    /// The I/O error that stopped the writer, if it failed (the partition is fenced:
    /// appends answer `WriterFailed` until the shard reopens it).
    /// Adopt a topic's altered config (AlterConfigs): segment size and age, retention,
    /// flush policy and batch limit apply from the next append, roll and retention run.
    /// The tail cache and preallocation are the broker's, not the topic's: kept.
    pub fn set_config(&self, next: LogConfig) -> Result<(), LogError> {
        let mut current = self.shared.config.borrow_mut();
        let next = LogConfig {
            tail_cache_bytes: current.tail_cache_bytes,
            preallocate: current.preallocate,
            index_interval_bytes: current.index_interval_bytes,
            ..next
        };
        next.check()?;
        *current = next;
        Ok(())
    }

    pub fn failure(&self) -> Option<Arc<std::io::Error>> {
        self.shared.state.borrow().failure.clone()
    }

    /// The idempotent producers this partition knows (DescribeProducers).
    pub fn producers(&self) -> Vec<super::producers::ProducerView> {
        self.shared.state.borrow().producers.view()
    }

    /// The last sequence stored for `producer_id`, if this partition knows it
    /// (the timer store resolves its fire intents with it).
    pub fn last_sequence(&self, producer_id: i64) -> Option<i32> {
        let st = self.shared.state.borrow();
        let p = st.producers.producers.get(&producer_id)?;
        p.batches.back().map(|b| b.last_sequence)
    }

    /// Wakes when this partition's data changes (`Shared::readers`): take it
    /// before reading, so a change between the read and the wait is not missed.
    pub fn listen_for_data(&self) -> event_listener::EventListener {
        self.shared.readers.listen()
    }

    pub fn log_end_offset(&self) -> Offset {
        self.shared.state.borrow().next_offset
    }

    pub fn log_start_offset(&self) -> Offset {
        self.shared.state.borrow().log_start_offset()
    }

    pub fn durable_end_offset(&self) -> Offset {
        self.shared.state.borrow().durable_end_offset
    }

    pub fn size_bytes(&self) -> u64 {
        self.shared
            .state
            .borrow()
            .segments
            .iter()
            .map(Segment::size_bytes)
            .sum()
    }

    /// Bytes from `offset` to the end of the log, for the backlog bound
    /// (handlers/backlog.rs). Counted from the offset index entry at or before `offset`,
    /// so it is never below the exact count and at most one index interval
    /// (`index_interval_bytes`) plus one batch above it. An offset at or below
    /// the log start counts the whole log; one at or past the end counts 0.
    pub fn bytes_from(&self, offset: Offset) -> u64 {
        let state = self.shared.state.borrow();
        if offset >= state.next_offset {
            return 0;
        }
        let mut total = 0;
        for segment in state.segments.iter().rev() {
            if segment.base_offset <= offset {
                let entry = segment.index.lookup(segment.relative(offset));
                return total + segment.size_bytes().saturating_sub(entry.file_position().0);
            }
            total += segment.size_bytes();
        }
        total
    }

    /// Number of segments (closed and active); for tests and metrics.
    pub fn segment_count(&self) -> usize {
        self.shared.state.borrow().segments.len()
    }

    /// Flush, write the active segment's indexes, mark the shutdown clean and
    /// stop the appender. Appends fail with `Closed` afterwards. Idempotent.
    pub async fn close(&self) -> Result<(), LogError> {
        let task = self.writer.borrow_mut().take();
        let Some(task) = task else {
            return Ok(());
        };
        self.read_aheads.clear();
        self.shared.state.borrow_mut().closing = true;
        self.shared.writer_wake.notify_all();
        self.shared.progress.notify_all();
        task.await;
        super::file_cache::forget_log(self.shared.log_id);
        let failure = {
            let mut st = self.shared.state.borrow_mut();
            st.closed = true;
            st.failure.clone()
        };
        self.shared.progress.notify_all();
        if let Some(failure) = failure {
            return Err(LogError::WriterFailed(failure));
        }
        // Nothing written since a clean open: the directory is as the last clean close
        // left it, snapshot and shutdown state included. An idle partition's stop and
        // start then cost no write and no sync.
        if self.shared.state.borrow().clean_on_disk.is_some() {
            return Ok(());
        }
        // Always, even with no producer: the next open then starts from this snapshot
        // at the log end and scans nothing.
        let (end, producers) = {
            let st = self.shared.state.borrow();
            (st.next_offset, st.producers.clone())
        };
        producer_snapshot::write(self.shared.dir.clone(), end, &producers).await?;
        super::shutdown_state::mark_clean(&self.shared.dir).await
    }

    /// Close and remove the partition directory.
    pub async fn delete(&self) -> Result<(), LogError> {
        // A failed writer must not stop the delete: the data is going away anyway.
        if let Err(error) = self.close().await {
            tracing::warn!(dir = %self.shared.dir.display(), %error, "deleting a failed partition");
        }
        // glommio has no async recursive remove; a big partition is thousands of unlinks,
        // so they run on glommio's blocking-thread pool, not on the executor thread.
        let dir = self.shared.dir.clone();
        glommio::executor()
            .spawn_blocking(move || std::fs::remove_dir_all(dir))
            .await
            .map_err(super::std_io_err("removing partition dir"))
    }
}

/// Rewrite base_offset in place when the buffer is uniquely owned, else copy once.
fn assign_base_offset(batch: Bytes, base: Offset) -> Bytes {
    let mut owned = match batch.try_into_mut() {
        Ok(owned) => owned,
        Err(shared) => bytes::BytesMut::from(&shared[..]),
    };
    set_base_offset(&mut owned, base.0);
    owned.freeze()
}

/// The idempotent producer a batch names, if any. Control batches (transaction
/// markers) carry a producer too but no sequence: they are not checked here.
pub(super) fn producer_batch(h: &BatchHeader) -> Option<ProducerBatch> {
    let attributes = h.attributes.get();
    let control = attributes & ATTR_CONTROL != 0;
    (h.producer_id.get() >= 0 && h.base_sequence.get() >= 0 && !control).then_some(ProducerBatch {
        producer_id: h.producer_id.get(),
        epoch: h.producer_epoch.get(),
        first_sequence: h.base_sequence.get(),
        last_offset_delta: h.last_offset_delta.get(),
        timestamp_ms: h.max_timestamp.get(),
        transactional: attributes & ATTR_TRANSACTIONAL != 0,
    })
}
