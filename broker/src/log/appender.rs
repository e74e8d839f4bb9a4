//! The appender task: copies queued batches into aligned DMA chunks, keeps a few writes
//! in flight, rewrites the partial last block as it fills, rolls files and fdatasyncs.
//! The `flush.ms` interval sync is shard-wide (`shard_sync.rs`): the appender lists its
//! partition there when a write completes and checkpoints when that sync covered it.
//!
//! Runs as one `spawn_local` task on the partition's shard; the only code that writes
//! segment files. Invariants (asserted): every DMA write starts and ends on a 4 KiB
//! boundary; a chunk that rewrites a partial block is issued only when no write is in
//! flight (overlapping O_DIRECT writes have no defined order); writes complete in
//! order, so appended >= written >= durable. Allocates per chunk (1 MiB, smaller for a
//! partition with small writes), not per record.
//! Input that runs dry leaves a partly filled chunk in memory for up to the write hold
//! (`write_hold.rs`) before it is written, unless a sync is due.
//! A partition with small writes pads a write that extends the file with zeros
//! (`zero_ahead.rs`), so its next writes overwrite written blocks and stay off io-wq.

use std::collections::VecDeque;
use std::rc::Rc;

use glommio::io::{DmaBuffer, DmaFile};
use glommio::Task;

use super::partition::Shared;
use super::segment::{open_log_file, short_write, sync_dir, write_index_files, BLOCK_BYTES};
use super::txn_index;
use super::write_hold::WriteHold;
use super::zero_ahead::ZeroAhead;
use super::{io_err, FlushPolicy, LogError, Offset, Position};

/// Size of one DMA write: O_DIRECT sequential writes peaked (~1,880 MB/s) at 1 MiB
/// blocks on this machine class (docs/architecture.md, "Speed of light"). Also the unit
/// of staging memory.
pub(crate) const CHUNK_BYTES: usize = 1024 * 1024;
/// DMA writes in flight at once: 4 in flight came near the disk ceiling on this machine
/// class (docs/architecture.md, "Speed of light").
pub(crate) const WRITES_IN_FLIGHT_MAX: usize = 4;
const _: () = assert!(CHUNK_BYTES.is_multiple_of(BLOCK_BYTES as usize));
// Freed chunks go back to the allocator, not to the shard's read-buffer cache.
const _: () = assert!(crate::buffer_reuse::CACHE_BLOCK_MIN_BYTES > CHUNK_BYTES);
/// Bytes made durable in the active segment between two writes of its index files
/// (a checkpoint): a sixteenth of `segment.bytes`, at most this. Recovery after a
/// crash then scans about that much of the segment instead of all of it (up to
/// `segment.bytes`, 1 GiB by default). A checkpoint is two small file writes and two
/// fdatasyncs, run beside the appender; at 64 MiB it is one per ~50 ms at the disk's
/// full write speed.
pub(crate) const INDEX_CHECKPOINT_BYTES: u64 = 64 * 1024 * 1024;

/// The checkpoint interval of a log with this config.
pub(crate) fn checkpoint_bytes(config: &super::LogConfig) -> u64 {
    (config.segment_bytes / 16).min(INDEX_CHECKPOINT_BYTES)
}

struct InFlight {
    task: Task<glommio::Result<Written, ()>>,
    /// Bytes handed to the kernel: the block-padded data, and any zero-ahead.
    write_bytes: usize,
    /// File position after the last byte written (zeros included).
    write_end: Position,
    end_position: Position,
    new_bytes: u64,
    /// The last offset whose batch ends in this write, if one does, and the file
    /// position where that batch ends.
    last_offset: Option<(Offset, Position)>,
    /// When it was handed to the kernel (the stall diagnosis reports slow writes).
    issued: std::time::Instant,
}

/// A completed chunk write: bytes the kernel took, of the bytes last asked for.
struct Written {
    bytes: usize,
    asked: usize,
}

/// Write one chunk at `position`. A chunk padded with zero-ahead zeros (longer than
/// its block-padded data, `aligned`) that the disk cannot take whole (ENOSPC, or a short
/// write: Direct I/O writes what it could allocate) counts as written when its data
/// made it, and is written again without the zeros when it did not: the zeros are an
/// optimisation, and a full disk must refuse data only when the data does not fit.
async fn write_chunk(
    file: Rc<DmaFile>,
    buf: DmaBuffer,
    position: u64,
    aligned: usize,
) -> glommio::Result<Written, ()> {
    let asked = buf.len();
    if asked == aligned {
        let bytes = file.write_at(buf, position).await?;
        return Ok(Written { bytes, asked });
    }
    let buf = Rc::new(buf);
    match file.write_rc_at(buf.clone(), position).await {
        Ok(bytes) if bytes == asked => return Ok(Written { bytes, asked }),
        Ok(bytes) if bytes >= aligned => {
            return Ok(Written {
                bytes,
                asked: aligned,
            })
        }
        Ok(_) => {}
        Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => {}
        Err(e) => return Err(e),
    }
    // The write's source is gone, so this is the only reference left.
    let Ok(mut buf) = Rc::try_unwrap(buf) else {
        return Ok(Written { bytes: 0, asked });
    };
    buf.trim_to_size(aligned);
    let bytes = file.write_at(buf, position).await?;
    Ok(Written {
        bytes,
        asked: aligned,
    })
}

pub(crate) struct Appender {
    shared: Rc<Shared>,
    segment_base: Offset,
    file: Rc<DmaFile>,
    chunk: Option<DmaBuffer>,
    /// File position of the chunk's first byte (block aligned).
    chunk_position: Position,
    /// Bytes filled in the chunk, carry included.
    chunk_len: usize,
    chunk_new_bytes: u64,
    chunk_last_offset: Option<(Offset, Position)>,
    hold: WriteHold,
    /// The partial last block already on the file; the next chunk starts with it.
    carry: Vec<u8>,
    in_flight: VecDeque<InFlight>,
    bytes_since_sync: u64,
    /// Position of the active segment covered by its last index checkpoint.
    checkpointed: Position,
    /// The checkpoint being written, if any: one at a time, awaited before the
    /// segment's final index files are written (they share the file names).
    checkpoint: Option<Task<()>>,
    zero_ahead: ZeroAhead,
}

impl Appender {
    /// `file` is the active segment's file, `carry` the bytes of its partial last block.
    pub fn new(shared: Rc<Shared>, file: Rc<DmaFile>, carry: Vec<u8>) -> Self {
        let (segment_base, end) = {
            let st = shared.state.borrow();
            let active = st.segments.back().expect("a log always has a segment");
            (active.base_offset, active.end)
        };
        assert_eq!(
            end.0 % BLOCK_BYTES,
            carry.len() as u64,
            "carry is the partial block"
        );
        let mut own_carry = Vec::with_capacity(BLOCK_BYTES as usize);
        own_carry.extend_from_slice(&carry);
        Self {
            shared,
            segment_base,
            file,
            chunk: None,
            chunk_position: Position(end.0 - carry.len() as u64),
            chunk_len: 0,
            chunk_new_bytes: 0,
            chunk_last_offset: None,
            hold: WriteHold::default(),
            carry: own_carry,
            in_flight: VecDeque::with_capacity(WRITES_IN_FLIGHT_MAX),
            bytes_since_sync: 0,
            checkpointed: Position(end.0 - carry.len() as u64),
            checkpoint: None,
            // Recovery and sealing leave the file exactly `end` long.
            zero_ahead: ZeroAhead::new(end.0),
        }
    }

    pub async fn run(mut self) -> Result<(), LogError> {
        loop {
            self.wait_for_work(self.held_until()).await;
            self.shard_synced().await?;
            self.write_round().await?;
            // Out of input: reap one write at a time, so input arriving meanwhile joins
            // the pipeline instead of waiting for every write in flight to drain.
            while self.shared.state.borrow().pending.is_empty()
                && !self.in_flight.is_empty()
                && !self.sync_due()
            {
                self.complete_oldest().await?;
            }
            let (idle, closing) = {
                let st = self.shared.state.borrow();
                (st.pending.is_empty(), st.closing)
            };
            // Write the partial chunk out when no more input is ready (after the hold)
            // or a sync is due: group commit syncs as soon as the input is drained.
            if idle || self.sync_due() || closing {
                if idle && !closing && !self.sync_due() && self.held_until().is_some() {
                    continue;
                }
                self.flush_chunk().await?;
            }
            if self.sync_due() || (closing && idle) {
                self.sync().await?;
            }
            if closing && idle {
                return self.finish().await;
            }
        }
    }

    /// Wait for input, a sync wanted, a close or shard-sync news; or, holding a chunk,
    /// for its hold to end.
    async fn wait_for_work(&self, held_until: Option<std::time::Instant>) {
        let ready = || {
            let st = self.shared.state.borrow();
            !st.pending.is_empty()
                || st.closing
                || st.sync_wanted_offset > st.durable_end_offset
                || self.shared.shard_sync.has_news()
        };
        let woken = self.shared.writer_wake.wait_until(ready);
        match held_until {
            None => woken.await,
            Some(due) => {
                let left = due.saturating_duration_since(std::time::Instant::now());
                futures_lite::future::or(woken, glommio::timer::sleep(left)).await;
            }
        }
    }

    /// Until when the partial chunk may stay in memory (`write_hold.rs`).
    fn held_until(&self) -> Option<std::time::Instant> {
        if self.chunk_new_bytes == 0 {
            return None;
        }
        self.hold.until()
    }

    /// Act on the shard-wide interval sync: stop on its failure (the partition is then
    /// fenced, as after a failed fdatasync), checkpoint after it covered this segment.
    async fn shard_synced(&mut self) -> Result<(), LogError> {
        if let Some(source) = self.shared.shard_sync.take_failure() {
            return Err(LogError::Io {
                op: "syncing the filesystem (flush.ms)",
                source,
            });
        }
        if let Some((base, durable)) = self.shared.shard_sync.take_synced() {
            if base == self.segment_base {
                self.maybe_checkpoint(durable).await;
            }
        }
        Ok(())
    }

    fn sync_due(&self) -> bool {
        let st = self.shared.state.borrow();
        let unsynced = st.written_end_offset > st.durable_end_offset
            || (self.chunk_new_bytes > 0 || !self.in_flight.is_empty());
        if !unsynced {
            return false;
        }
        if st.sync_wanted_offset > st.durable_end_offset {
            return true;
        }
        match self.shared.config().flush {
            FlushPolicy::EveryAppend => true,
            // Time is the shard-wide sync's (`shard_sync.rs`); bytes stay per partition.
            FlushPolicy::Interval { bytes, .. } => self.bytes_since_sync >= bytes,
        }
    }

    /// Copy the batches queued when the round started; bounded so a sync is never
    /// starved by a producer that keeps the queue non-empty.
    async fn write_round(&mut self) -> Result<(), LogError> {
        let count = self.shared.state.borrow().pending.len();
        if count > 0 {
            self.mark_not_clean().await?;
        }
        for _ in 0..count {
            let next = self.shared.state.borrow_mut().pending.pop_front();
            let pending = next.expect("only the appender pops pending batches");
            if pending.segment_base != self.segment_base {
                self.roll(pending.segment_base).await?;
            }
            self.copy_batch(&pending.bytes, pending.last_offset).await?;
        }
        Ok(())
    }

    async fn copy_batch(&mut self, bytes: &[u8], last_offset: Offset) -> Result<(), LogError> {
        self.hold.batch_taken();
        let mut rest = bytes;
        while !rest.is_empty() {
            if self.chunk.is_none() {
                self.start_chunk();
            }
            let chunk = self.chunk.as_mut().expect("started above");
            let capacity = chunk.len();
            let copy_bytes = (capacity - self.chunk_len).min(rest.len());
            self.hold.bytes_added();
            let to = &mut chunk.as_bytes_mut()[self.chunk_len..self.chunk_len + copy_bytes];
            super::stream_copy::copy(to, &rest[..copy_bytes]);
            self.chunk_len += copy_bytes;
            self.chunk_new_bytes += copy_bytes as u64;
            rest = &rest[copy_bytes..];
            if rest.is_empty() {
                let end = self.chunk_position + self.chunk_len as u64;
                self.chunk_last_offset = Some((last_offset, end));
            }
            if self.chunk_len == capacity {
                self.issue_chunk().await?;
            }
        }
        Ok(())
    }

    fn start_chunk(&mut self) {
        let mut chunk = self.file.alloc_dma_buffer(self.chunk_bytes());
        chunk.as_bytes_mut()[..self.carry.len()].copy_from_slice(&self.carry);
        self.chunk_len = self.carry.len();
        self.chunk = Some(chunk);
    }

    /// The size of the next chunk. A busy partition's is `CHUNK_BYTES`. A partition whose
    /// writes are small (a one-record batch now and then) gets room for its carry, what
    /// is queued and its next zero-ahead pad, rounded to blocks: a 1 MiB chunk per
    /// one-record write overflowed glommio's 10 MiB registered arena with thousands of
    /// such partitions, and each chunk past it was a fresh malloc, page faults and an
    /// unmap. Busy partitions keep full chunks: sizing every chunk by the queue cost one
    /// partition's produce 8% more CPU (smaller writes when batches queue behind).
    fn chunk_bytes(&self) -> usize {
        if !self.zero_ahead.small_writes() {
            return CHUNK_BYTES;
        }
        let queued = self.shared.state.borrow().unwritten_bytes as usize;
        (self.carry.len() + queued + self.zero_ahead.next_pad() as usize)
            .next_multiple_of(BLOCK_BYTES as usize)
            .min(CHUNK_BYTES)
    }

    /// Hand the chunk to the kernel. DMA contract: the buffer comes from
    /// `alloc_dma_buffer` (aligned), position and length are block multiples, glommio
    /// owns the buffer until the write completes; a short write is an error.
    async fn issue_chunk(&mut self) -> Result<(), LogError> {
        let mut buf = self.chunk.take().expect("issue_chunk needs a chunk");
        let len = self.chunk_len;
        let aligned = len.next_multiple_of(BLOCK_BYTES as usize);
        let position = self.chunk_position;
        assert!(position.0.is_multiple_of(BLOCK_BYTES) && aligned.is_multiple_of(BLOCK_BYTES as usize));
        let write_bytes = self
            .zero_ahead
            .write_bytes(position.0, aligned, self.chunk_new_bytes, buf.len());
        // Padding and zero-ahead must be zeros: recovery stops at a zeroed header.
        buf.as_bytes_mut()[len..write_bytes].fill(0);
        buf.trim_to_size(write_bytes);
        let tail = len % BLOCK_BYTES as usize;
        self.carry.clear();
        self.carry.extend_from_slice(&buf.as_bytes()[len - tail..len]);
        // A chunk that rewrites a partial block, or starts inside the previous write's
        // zeros, is issued only after that write completed (`flush_chunk` waits).
        assert!(
            self.in_flight.back().is_none_or(|w| w.write_end <= position),
            "overlapping DMA writes"
        );
        let file = self.file.clone();
        let task = glommio::spawn_local(write_chunk(file, buf, position.0, aligned));
        self.in_flight.push_back(InFlight {
            task,
            write_bytes,
            write_end: position + write_bytes as u64,
            end_position: position + len as u64,
            new_bytes: self.chunk_new_bytes,
            last_offset: self.chunk_last_offset.take(),
            issued: std::time::Instant::now(),
        });
        self.chunk_position = position + (len - tail) as u64;
        self.chunk_len = 0;
        self.chunk_new_bytes = 0;
        self.hold.written();
        if self.in_flight.len() >= WRITES_IN_FLIGHT_MAX {
            self.complete_oldest().await?;
        }
        Ok(())
    }

    async fn complete_oldest(&mut self) -> Result<(), LogError> {
        let done = self.in_flight.pop_front().expect("a write in flight");
        let written = done.task.await.map_err(io_err("writing segment"))?;
        // Issue to completion, queueing behind earlier writes included: a disk that stalls
        // shows here before appends wait for staging room.
        super::report_slow("DMA write", &self.shared.dir, done.issued);
        if written.bytes < written.asked {
            return Err(short_write());
        }
        if written.asked < done.write_bytes {
            let data_end = done.write_end.0 - (done.write_bytes - written.asked) as u64;
            self.zero_ahead.disk_full(data_end);
            tracing::warn!(
                dir = %self.shared.dir.display(),
                "the disk had no room for a zero-ahead pad: written without it; this shard pads \
                 nothing for {} s",
                super::zero_ahead::DISK_FULL_PAUSE.as_secs()
            );
        }
        self.bytes_since_sync += done.new_bytes;
        let mut st = self.shared.state.borrow_mut();
        st.unwritten_bytes -= done.new_bytes;
        let base = self.segment_base;
        if let Some((last, end)) = done.last_offset {
            assert!(last >= st.written_end_offset && last < st.next_offset);
            st.written_end_offset = last.next();
            self.shared.shard_sync.batch_written(base, end);
        }
        let segment = st.segments.iter_mut().rev().find(|s| s.base_offset == base);
        let segment = segment.expect("the writer's segment is never deleted while written");
        assert!(done.end_position >= segment.written_end && done.end_position <= segment.end);
        segment.written_end = done.end_position;
        let (limit, written_end) = (self.shared.config().tail_cache_bytes, st.written_end_offset);
        st.cache.evict(limit, written_end);
        drop(st);
        if let (Some(_), FlushPolicy::Interval { ms, .. }) = (done.last_offset, self.shared.config().flush) {
            super::shard_sync::register(&self.shared, ms);
        }
        self.shared.progress.notify_all();
        Ok(())
    }

    /// Write out the partial chunk (if any) and wait for every write in flight.
    async fn flush_chunk(&mut self) -> Result<(), LogError> {
        if self.chunk.is_some() && self.chunk_new_bytes > 0 {
            self.issue_chunk().await?;
        }
        while !self.in_flight.is_empty() {
            self.complete_oldest().await?;
        }
        Ok(())
    }

    async fn sync(&mut self) -> Result<(), LogError> {
        self.flush_chunk().await?;
        let target = self.shared.state.borrow().written_end_offset;
        let started = std::time::Instant::now();
        self.file.fdatasync().await.map_err(io_err("syncing segment"))?;
        super::report_slow("fdatasync", &self.shared.dir, started);
        let micros = started.elapsed().as_micros() as u64;
        crate::metrics::with(|m| m.synced(micros, self.bytes_since_sync));
        self.bytes_since_sync = 0;
        let durable = {
            let mut st = self.shared.state.borrow_mut();
            // `max`: a shard-wide sync may have moved it past `target` meanwhile.
            st.durable_end_offset = st.durable_end_offset.max(target);
            let base = self.segment_base;
            let segment = st.segments.iter().rev().find(|s| s.base_offset == base);
            segment.map(|s| s.written_end)
        };
        let interval_ms = match self.shared.config().flush {
            FlushPolicy::Interval { ms, .. } => Some(ms),
            FlushPolicy::EveryAppend => None,
        };
        super::shard_sync::own_sync_done(&self.shared, started, interval_ms);
        self.shared.progress.notify_all();
        if let Some(durable) = durable {
            self.maybe_checkpoint(durable).await;
        }
        Ok(())
    }

    /// After a sync: checkpoint the active segment in the background, so a crash
    /// rescans only what came after. Its index files, if `checkpoint_bytes` were made
    /// durable since the last ones: only entries below `durable`, a batch boundary
    /// (an own sync writes every copied batch out first; a shard sync passes the end
    /// of the last whole batch it covered), so each entry's batch is whole on disk.
    /// The producer state captured at an offset of this segment
    /// (`State::producer_checkpoint`) once that offset is durable: the segment's
    /// aborted transactions below it first (`.txnindex`), then the snapshot, as at a
    /// roll (an open that starts from a snapshot takes the aborted transactions below
    /// it from the file).
    async fn maybe_checkpoint(&mut self, durable: Position) {
        let base = self.segment_base;
        let every = checkpoint_bytes(&self.shared.config());
        let (indexes, producers) = {
            let mut st = self.shared.state.borrow_mut();
            let durable_offset = st.durable_end_offset;
            let due = matches!(&st.producer_checkpoint, Some((at, _)) if *at > base && *at <= durable_offset);
            let producers = if due { st.producer_checkpoint.take() } else { None };
            let Some(segment) = st.segments.iter().rev().find(|s| s.base_offset == base) else {
                return;
            };
            let producers = producers.map(|(at, states)| {
                let aborted: Vec<_> = segment
                    .aborted
                    .iter()
                    .filter(|e| e.last_offset < at)
                    .cloned()
                    .collect();
                (at, states, aborted)
            });
            // Saturating: a shard sync's position may trail an own sync's checkpoint.
            let fresh = durable.0.saturating_sub(self.checkpointed.0);
            let indexes = (fresh >= every && !segment.index.is_empty()).then(|| {
                let mut index = segment.index.clone();
                index.truncate_to_position(durable);
                let mut time_index = segment.time_index.clone();
                let last = index.last().map_or(0, |e| e.relative_offset);
                time_index.truncate_to_relative_offset(last.saturating_add(1));
                (durable, index, time_index)
            });
            (indexes, producers)
        };
        if indexes.is_none() && producers.is_none() {
            return;
        }
        if let Some(previous) = self.checkpoint.take() {
            // One at a time (same file names); done long ago at any real write rate.
            previous.await;
        }
        if let Some((durable, _, _)) = &indexes {
            self.checkpointed = *durable;
        }
        let dir = self.shared.dir.clone();
        self.checkpoint = Some(glommio::spawn_local(async move {
            // Only an optimization: a failed or torn checkpoint makes recovery scan
            // further back (recovery.rs checks the batch at the last index entry).
            if let Some((_, index, time_index)) = indexes {
                if let Err(error) = write_index_files(&dir, base, &index, &time_index).await {
                    tracing::warn!(dir = %dir.display(), %error, "index checkpoint failed");
                }
            }
            if let Some((at, states, aborted)) = producers {
                let written = match txn_index::write(dir.clone(), base, aborted).await {
                    Ok(()) => super::producer_snapshot::write(dir.clone(), at, &states).await,
                    Err(error) => Err(error),
                };
                if let Err(error) = written {
                    tracing::warn!(dir = %dir.display(), %error, "producer checkpoint failed");
                }
            }
        }));
    }
}

impl Appender {
    /// Seal the current segment and move to a fresh file. The directory is fsynced
    /// after the create, before anything in the new file can be reported durable.
    /// The writer waits for all of it (5-200 ms measured under load): appends meanwhile
    /// fill the staging bound and then wait too (docs/benchmarks.md, "Tail stalls").
    async fn roll(&mut self, new_base: Offset) -> Result<(), LogError> {
        let started = std::time::Instant::now();
        self.flush_chunk().await?;
        self.seal_current(true).await?;
        super::report_slow("roll: seal the old segment", &self.shared.dir, started);
        let dir = self.shared.dir.clone();
        let file = open_log_file(&dir, new_base, true).await?;
        if self.shared.config().preallocate {
            let bytes = self.shared.config().segment_bytes;
            file.pre_allocate(bytes, true)
                .await
                .map_err(io_err("preallocating segment"))?;
        }
        sync_dir(&dir).await?;
        {
            let mut st = self.shared.state.borrow_mut();
            let segment = st.segments.iter_mut().rev().find(|s| s.base_offset == new_base);
            segment
                .expect("append created the segment before queueing into it")
                .file = Some(file.clone());
        }
        self.file = file;
        self.segment_base = new_base;
        self.checkpointed = Position::ZERO;
        self.chunk_position = Position::ZERO;
        self.carry.clear();
        self.zero_ahead.rolled();
        super::report_slow("roll", &self.shared.dir, started);
        Ok(())
    }

    /// Make the current segment exact and durable: drop the zero padding of its last
    /// block and any zero-ahead (`truncate` runs on glommio's blocking pool), fdatasync, write its index files (the txnindex too). `sealed` marks it immutable (on roll).
    async fn seal_current(&mut self, sealed: bool) -> Result<(), LogError> {
        assert!(self.in_flight.is_empty() && self.chunk_new_bytes == 0);
        if let Some(checkpoint) = self.checkpoint.take() {
            checkpoint.await;
        }
        let base = self.segment_base;
        let (end, index, time_index, aborted) = {
            let mut st = self.shared.state.borrow_mut();
            let segment = st.segments.iter_mut().rev().find(|s| s.base_offset == base);
            let segment = segment.expect("the writer's segment exists");
            assert_eq!(segment.written_end, segment.end, "seal after every write");
            segment.finish_time_index();
            let aborted = segment.aborted.clone();
            (
                segment.end,
                segment.index.clone(),
                segment.time_index.clone(),
                aborted,
            )
        };
        self.file
            .truncate(end.0)
            .await
            .map_err(io_err("truncating segment"))?;
        self.file.fdatasync().await.map_err(io_err("syncing segment"))?;
        write_index_files(&self.shared.dir, base, &index, &time_index).await?;
        // Durable before `sealed` is set: the roll's producer snapshot waits for it.
        txn_index::write(self.shared.dir.clone(), base, aborted).await?;
        let mut st = self.shared.state.borrow_mut();
        st.durable_end_offset = st.written_end_offset;
        if let Some(segment) = st.segments.iter_mut().rev().find(|s| s.base_offset == base) {
            segment.sealed = sealed;
            if sealed {
                // Readers take sealed files from the shard's bounded cache
                // (`file_cache.rs`); the appender's own handle goes at the roll.
                segment.file = None;
            }
        }
        drop(st);
        self.chunk = None;
        self.shared.progress.notify_all();
        Ok(())
    }

    /// Before the first write after a clean open: the directory must stop saying it
    /// was closed cleanly, durably, before any byte of it changes. Later calls are free.
    async fn mark_not_clean(&mut self) -> Result<(), LogError> {
        let clean = self.shared.state.borrow_mut().clean_on_disk.take();
        match clean {
            Some(found) => super::shutdown_state::mark_open(&self.shared.dir, found).await,
            None => Ok(()),
        }
    }

    /// Clean close: everything is written; make the active segment exact and indexed.
    /// Nothing to do when nothing was written since a clean open.
    async fn finish(mut self) -> Result<(), LogError> {
        if self.shared.state.borrow().clean_on_disk.is_some() {
            return Ok(());
        }
        self.flush_chunk().await?;
        self.seal_current(false).await
    }
}
