//! The fetch path: reads by offset (tail cache first, else the segment file) and
//! lookup by timestamp.
//!
//! Runs on the partition's shard. Returns whole batches only, at least one even if it
//! exceeds max_bytes (KIP-74). File reads: one DMA read of the region (or the read
//! started ahead by the previous read, `read_ahead.rs`), handed out as one `Bytes`
//! shared by the returned batches: the DMA buffer itself or one copy of it
//! (`FileReadPath`, `dma_bytes.rs`). Each batch read from a file has its CRC-32C
//! checked again unless `--fetch-verify-crc false` (set once at start-up, the same
//! on every shard): the check catches disk corruption on the broker, at about a
//! tenth of a CPU-second per GB read; Kafka leaves it to the consumer
//! (`check.crcs`). Without it a batch read from a file still has its length chain
//! and magic checked. Never reads past the written position of a segment (later
//! bytes are in the cache).

use std::cell::Cell;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use glommio::io::DmaFile;
use weir_protocol::record_batch::{
    header, peek_size_bytes, validate, BatchError, BatchWalker, HEADER_BYTES, MAGIC_V2,
};

use super::dma_bytes::{region, FileReadPath};
use super::partition::PartitionLog;
use super::read_ahead::ReadAheads;
use super::{io_err, LogError, Offset, Position, ReadResult};

/// Smallest file read: a few index intervals, so a lookup plus scan is one read.
const READ_WINDOW_BYTES_MIN: usize = 64 * 1024;
/// Bytes read per step while searching batches by timestamp.
const TIME_SCAN_BYTES: usize = 256 * 1024;

/// What one read may return, and how far it reads ahead.
#[derive(Clone, Copy)]
struct ReadBound {
    max_bytes: usize,
    /// Bytes each next read is expected to take (at least `max_bytes`).
    ahead_bytes: usize,
    /// Return the first batch even when it is over `max_bytes` (KIP-74).
    at_least_one: bool,
}

impl ReadBound {
    fn new(max_bytes: usize, ahead_bytes: usize, at_least_one: bool) -> Self {
        Self {
            max_bytes,
            ahead_bytes: ahead_bytes.max(max_bytes),
            at_least_one,
        }
    }
}

/// How far one read ahead goes: up to the last batch start within `target`
/// bytes, or `fallback` bytes when the index knows none there.
#[derive(Clone, Copy)]
struct AheadSpan {
    target: usize,
    fallback: usize,
}

/// Whether batches read from segment files have their CRC checked again
/// (`--fetch-verify-crc`), set once before the shards start.
static VERIFY_CRC: AtomicBool = AtomicBool::new(true);

thread_local! {
    /// This shard's copy (tests set their own thread's).
    static SHARD_VERIFY_CRC: Cell<bool> = Cell::new(VERIFY_CRC.load(Ordering::Relaxed));
}

/// Set `--fetch-verify-crc` before the shards start.
pub fn set_verify_crc(on: bool) {
    VERIFY_CRC.store(on, Ordering::Relaxed);
}

/// This thread's setting, for a test (other tests' threads keep theirs).
#[cfg(test)]
pub fn set_thread_verify_crc(on: bool) {
    SHARD_VERIFY_CRC.with(|v| v.set(on));
}

struct FilePlan {
    file: Rc<DmaFile>,
    segment_base_offset: Offset,
    start_position: Position,
    end_position: Position,
}

/// A `FilePlan` before its file is known: `None` for a sealed segment, whose
/// descriptor comes from the shard's bounded cache (`file_cache.rs`).
struct PlanDraft {
    file: Option<Rc<DmaFile>>,
    segment_base_offset: Offset,
    start_position: Position,
    end_position: Position,
}

enum Scan {
    /// Batches found: this byte range of the buffer.
    Found(core::ops::Range<usize>),
    /// Target not in the buffer: continue at buffer position `skip`, reading at
    /// least `window` bytes.
    Continue { skip: u64, window: usize },
}

impl PartitionLog {
    /// Whole batches from the one holding `offset`, up to `max_bytes` (at least one).
    /// Reading at the log end offset returns no batches. File reads are copied
    /// (the answer may go to any shard).
    pub async fn read(&self, offset: Offset, max_bytes: usize) -> Result<ReadResult, LogError> {
        self.read_with(offset, max_bytes, FileReadPath::Copy).await
    }

    /// `read`, with file reads handed out as `path` says. `FileReadPath::Dma`
    /// answers must be dropped on this shard (`dma_bytes.rs`).
    pub async fn read_with(
        &self,
        offset: Offset,
        max_bytes: usize,
        path: FileReadPath,
    ) -> Result<ReadResult, LogError> {
        let bound = ReadBound::new(max_bytes, max_bytes, true);
        self.read_bounded(offset, bound, path).await
    }

    /// `read_with`, but no batches at all when the first one is larger than
    /// `max_bytes`, and then the read ahead it came from stays for the next
    /// read. For a fetch's later partitions, whose batch would be cut from the
    /// answer anyway (Kafka returns an oversized batch only in the first
    /// partition with data): taking the read ahead for it would leave the next
    /// fetch at that offset to read the disk again.
    pub async fn read_fitting(
        &self,
        offset: Offset,
        max_bytes: usize,
        path: FileReadPath,
    ) -> Result<ReadResult, LogError> {
        let bound = ReadBound::new(max_bytes, max_bytes, false);
        self.read_bounded(offset, bound, path).await
    }

    /// A fetch's read of this partition: `read_fitting` when `fitting`, else
    /// `read_with`; reads ahead are sized as if each next fetch took
    /// `ahead_bytes` (the partition's own max: `max_bytes` may be a small share
    /// of a fetch's bytes, and reads ahead sized to it would keep the next
    /// fetches' answers as small).
    pub async fn read_for_fetch(
        &self,
        offset: Offset,
        max_bytes: usize,
        ahead_bytes: usize,
        path: FileReadPath,
        fitting: bool,
    ) -> Result<ReadResult, LogError> {
        let bound = ReadBound::new(max_bytes, ahead_bytes, !fitting);
        self.read_bounded(offset, bound, path).await
    }

    async fn read_bounded(
        &self,
        offset: Offset,
        bound: ReadBound,
        path: FileReadPath,
    ) -> Result<ReadResult, LogError> {
        let ReadBound {
            max_bytes,
            at_least_one,
            ..
        } = bound;
        let (plan, mut result) = {
            let st = self.shared.state.borrow();
            let (start, end) = (st.log_start_offset(), st.next_offset);
            if offset < start || offset > end {
                return Err(LogError::OffsetOutOfRange {
                    offset: offset.0,
                    log_start_offset: start.0,
                    log_end_offset: end.0,
                });
            }
            let mut result = ReadResult {
                batches: Vec::new(),
                high_watermark: end,
                log_start_offset: start,
                from_cache: true,
                contiguous: None,
            };
            if offset == end {
                return Ok(result);
            }
            if let Some(batches) = st.cache.read(offset, max_bytes) {
                if !at_least_one && batches.first().is_some_and(|b| b.len() > max_bytes) {
                    return Ok(result);
                }
                result.batches = batches;
                crate::metrics::with(|m| m.read_served(true));
                return Ok(result);
            }
            let index = st.segments.partition_point(|s| s.base_offset <= offset) - 1;
            let segment = &st.segments[index];
            let file = match (&segment.file, segment.sealed) {
                (Some(file), _) => Some(file.clone()),
                (None, true) => None,
                // Rolled in memory, file not created yet: its bytes are in the cache.
                (None, false) => return Ok(result),
            };
            let entry = segment.index.lookup(segment.relative(offset));
            let plan = PlanDraft {
                file,
                segment_base_offset: segment.base_offset,
                start_position: entry.file_position(),
                end_position: segment.written_end,
            };
            (plan, result)
        };
        let plan = self.plan_file(plan, offset).await?;
        result.from_cache = false;
        crate::metrics::with(|m| m.read_served(false));
        if let Some(read) = self.read_segment(&plan, offset, bound, path).await? {
            result.batches = read.batches;
            result.contiguous = read.contiguous;
        }
        Ok(result)
    }

    /// The file part of a read: from the read ahead at `offset` if there is one,
    /// else directly; then the next read ahead. `None`: a fitting read's first
    /// batch was over `max_bytes`.
    async fn read_segment(
        &self,
        plan: &FilePlan,
        offset: Offset,
        bound: ReadBound,
        path: FileReadPath,
    ) -> Result<Option<FileRead>, LogError> {
        let ReadBound {
            max_bytes,
            ahead_bytes,
            at_least_one,
        } = bound;
        let interval = self.shared.config().index_interval_bytes as usize;
        let window = READ_WINDOW_BYTES_MIN.max(max_bytes.saturating_add(2 * interval));
        let ahead = match self.read_aheads.take(plan.segment_base_offset, offset) {
            Some(slot) => {
                let aheads = &self.read_aheads;
                from_read_ahead(slot, plan, offset, max_bytes, path, aheads, !at_least_one).await?
            }
            None => None,
        };
        let read = match ahead {
            Some(Ahead::Kept) => return Ok(None),
            Some(Ahead::Read(read)) => {
                self.read_aheads.hit();
                read
            }
            None => read_file(plan, offset, max_bytes, window, path).await?,
        };
        let returned: usize = read.batches.iter().map(Bytes::len).sum();
        if !at_least_one && returned > max_bytes {
            // One batch, over the bound: not returned, and nothing read ahead past it.
            return Ok(None);
        }
        if let Some(last) = read.batches.last() {
            let h = header(last)?;
            let next = Offset(h.base_offset.get()).plus(h.last_offset_delta.get()).next();
            // At least what this read returned: a read held to a small share of a
            // fetch's bytes still returns a whole batch, and a read ahead smaller
            // than the next batch would be no use.
            let target = ahead_bytes.max(returned);
            let span = AheadSpan {
                target,
                fallback: READ_WINDOW_BYTES_MIN.max(target.saturating_add(2 * interval)),
            };
            self.read_ahead_from(plan, next, read.end, span);
        }
        Ok(Some(read))
    }

    /// Read ahead for a reader now at `next` (file position `at`), unless a
    /// read ahead there was left by this read (the rest of the one it took).
    fn read_ahead_from(&self, plan: &FilePlan, next: Offset, at: Position, span: AheadSpan) {
        let base = plan.segment_base_offset;
        if self.read_aheads.has(base, next) {
            return;
        }
        let len = self.ahead_len(plan, at, span);
        self.read_aheads.start(plan.file.clone(), base, next, at, len);
    }

    /// Bytes to read ahead from `start`: to the last batch start the index
    /// knows within `span.target` bytes (the next read takes all of it, and
    /// nothing after it is read twice), else `span.fallback` bytes, at most to
    /// the written end.
    fn ahead_len(&self, plan: &FilePlan, start: Position, span: AheadSpan) -> usize {
        let left = plan.end_position - start;
        if left <= span.target as u64 {
            return left as usize;
        }
        let st = self.shared.state.borrow();
        let at = st
            .segments
            .partition_point(|s| s.base_offset <= plan.segment_base_offset);
        let boundary = at
            .checked_sub(1)
            .map(|i| &st.segments[i])
            .filter(|s| s.base_offset == plan.segment_base_offset)
            .and_then(|s| s.index.last_between(start.0, start.0 + span.target as u64));
        match boundary {
            Some(e) => (e.file_position() - start) as usize,
            None => left.min(span.fallback as u64) as usize,
        }
    }

    /// Give the plan its file: a sealed segment's from the shard's cache, opened on a
    /// miss. Retention may delete the segment during the open: that read is then
    /// out of range, as it would have been a moment later.
    async fn plan_file(&self, draft: PlanDraft, offset: Offset) -> Result<FilePlan, LogError> {
        let file = match draft.file {
            Some(file) => file,
            None => {
                let (log_id, base) = (self.shared.log_id, draft.segment_base_offset);
                let opened = super::file_cache::sealed_file(log_id, &self.shared.dir, base).await;
                let st = self.shared.state.borrow();
                if st.closed {
                    // A close forgot this log's descriptors already: do not leave one behind.
                    super::file_cache::forget(log_id, base);
                }
                let gone = st.segments.front().is_none_or(|s| s.base_offset > base);
                match opened {
                    Ok(file) if !gone => file,
                    Err(e) if !gone => return Err(e),
                    _ => {
                        super::file_cache::forget(log_id, base);
                        return Err(LogError::OffsetOutOfRange {
                            offset: offset.0,
                            log_start_offset: st.log_start_offset().0,
                            log_end_offset: st.next_offset.0,
                        });
                    }
                }
            }
        };
        Ok(FilePlan {
            file,
            segment_base_offset: draft.segment_base_offset,
            start_position: draft.start_position,
            end_position: draft.end_position,
        })
    }

    /// The first record whose timestamp >= `ts_ms`: (its offset, its timestamp).
    /// The indexes find the batch (the first whose max_timestamp >= `ts_ms`);
    /// its records locate the record, as Kafka answers. A batch whose records
    /// cannot be read answers its base offset and max timestamp.
    pub async fn offset_for_timestamp(&self, ts_ms: i64) -> Result<Option<(Offset, i64)>, LogError> {
        let mut offset = {
            let st = self.shared.state.borrow();
            let Some(segment) = st.segments.iter().find(|s| s.max_timestamp >= ts_ms) else {
                return Ok(None);
            };
            let relative = segment.time_index.lookup(ts_ms).map_or(0, |e| e.relative_offset);
            segment.base_offset.plus(relative).max(st.log_start_offset())
        };
        // Bounded: `offset` strictly increases up to the log end offset.
        loop {
            let result = self.read(offset, TIME_SCAN_BYTES).await?;
            if result.batches.is_empty() {
                return Ok(None);
            }
            for batch in &result.batches {
                let h = header(batch)?;
                let max_ms = super::timestamps::effective_max_timestamp(batch, h.max_timestamp.get());
                if max_ms >= ts_ms {
                    let record = super::timestamps::first_record_at_or_after(batch, ts_ms);
                    let (offset, ts) = record.unwrap_or((h.base_offset.get(), max_ms));
                    return Ok(Some((Offset(offset), ts)));
                }
                offset = Offset(h.base_offset.get()).plus(h.last_offset_delta.get()).next();
            }
        }
    }
}

/// What a file read returns: the batches, the buffer they are slices of, and
/// the file position right after the last one.
struct FileRead {
    batches: Vec<Bytes>,
    contiguous: Option<Bytes>,
    end: Position,
}

/// What a read ahead gave a read.
enum Ahead {
    Read(FileRead),
    /// Its first batch is over a fitting read's bound: given back to `keep`.
    Kept,
}

/// The batches for `offset` from a read started ahead, or `None` when it
/// failed or holds no whole batch for them (a direct read then decides). A
/// fitting read (`fitting`) whose first batch is over `max_bytes` gives the read
/// ahead back to `aheads`, ready, for the next read at `offset`; a read that
/// returns less than the read ahead holds gives back the rest, ready for the
/// read after it (else those bytes would be read from the disk again).
async fn from_read_ahead(
    slot: super::read_ahead::Slot,
    plan: &FilePlan,
    offset: Offset,
    max_bytes: usize,
    path: FileReadPath,
    aheads: &ReadAheads,
    fitting: bool,
) -> Result<Option<Ahead>, LogError> {
    let taken = slot.taken();
    let start = taken.start;
    let Some((buf, mut reserved)) = slot.bytes().await else {
        return Ok(None);
    };
    let Ok(Scan::Found(range)) = scan(&buf, offset, max_bytes) else {
        return Ok(None);
    };
    if fitting && range.len() > max_bytes {
        aheads.put_back(taken, taken.next_offset, start, buf, reserved);
        return Ok(Some(Ahead::Kept));
    }
    let rest = buf.len() - range.end;
    if rest >= HEADER_BYTES && whole_batches(&buf[range.end..]) {
        // The scan stopped at a batch start; a rest ending inside a batch (a
        // read ahead not ending on a boundary) is left for a direct read.
        let next_offset = Offset(
            header(&buf[range.end..])
                .map_err(|source| LogError::Corrupt {
                    segment_base_offset: plan.segment_base_offset.0,
                    position: (start + range.end as u64).0,
                    source,
                })?
                .base_offset
                .get(),
        );
        if let Some(rest_buf) = glommio::io::ReadResult::slice(&buf, range.end, rest) {
            let rest_reserved = reserved.split_off(rest);
            aheads.put_back(
                taken,
                next_offset,
                start + range.end as u64,
                rest_buf,
                rest_reserved,
            );
        }
    }
    let region_start = start + range.start as u64;
    let end = start + range.end as u64;
    let whole = region(buf, Some(reserved), range, path);
    let (batches, contiguous) = split_batches(whole, plan, region_start)?;
    Ok(Some(Ahead::Read(FileRead {
        batches,
        contiguous,
        end,
    })))
}

async fn read_file(
    plan: &FilePlan,
    offset: Offset,
    max_bytes: usize,
    window: usize,
    path: FileReadPath,
) -> Result<FileRead, LogError> {
    let mut position = plan.start_position;
    let mut window = window;
    // Bounded: `position` strictly increases towards `end_position`.
    while position < plan.end_position {
        let read_bytes = (plan.end_position - position).min(window as u64) as usize;
        let buf = plan
            .file
            .read_at(position.0, read_bytes)
            .await
            .map_err(io_err("reading segment"))?;
        let corrupt = |source| LogError::Corrupt {
            segment_base_offset: plan.segment_base_offset.0,
            position: position.0,
            source,
        };
        match scan(&buf, offset, max_bytes).map_err(corrupt)? {
            Scan::Found(range) => {
                let end = position + range.end as u64;
                let region_start = position + range.start as u64;
                let whole = region(buf, None, range, path);
                let (batches, contiguous) = split_batches(whole, plan, region_start)?;
                return Ok(FileRead {
                    batches,
                    contiguous,
                    end,
                });
            }
            Scan::Continue { skip, window: w } => {
                let all_read = read_bytes as u64 == plan.end_position - position;
                if skip == 0 && (w <= read_bytes || all_read) {
                    return Err(corrupt(BatchError::Truncated {
                        available_bytes: read_bytes,
                        needed_bytes: w,
                    }));
                }
                position += skip;
                window = window.max(w);
            }
        }
    }
    Ok(FileRead {
        batches: Vec::new(),
        contiguous: None,
        end: position,
    })
}

/// Walk batch headers in `buf` to find the batches to return for `offset`.
fn scan(buf: &[u8], offset: Offset, max_bytes: usize) -> Result<Scan, BatchError> {
    let mut at = 0usize;
    let mut selected: Option<usize> = None;
    loop {
        let rest = &buf[at..];
        if rest.len() < HEADER_BYTES {
            break;
        }
        let size = peek_size_bytes(rest).ok_or(BatchError::BadLength {
            batch_length: -1,
            available_bytes: rest.len(),
        })?;
        let h = header(rest)?;
        let last = Offset(h.base_offset.get()).plus(h.last_offset_delta.get());
        match selected {
            None if last < offset => {}
            None if size > rest.len() => {
                return Ok(Scan::Continue {
                    skip: at as u64,
                    window: size,
                })
            }
            None => selected = Some(at),
            Some(start) if size > rest.len() || at + size - start > max_bytes => break,
            Some(_) => {}
        }
        at += size;
        if at > buf.len() {
            // Skipped a batch that extends past the buffer: continue after it.
            return Ok(Scan::Continue {
                skip: at as u64,
                window: 0,
            });
        }
    }
    Ok(match selected {
        Some(start) => Scan::Found(start..at),
        None => Scan::Continue {
            skip: at as u64,
            window: HEADER_BYTES,
        },
    })
}

/// Whether `buf` is whole batches, the last one ending at its end.
fn whole_batches(buf: &[u8]) -> bool {
    let mut walker = BatchWalker::new(buf);
    walker.by_ref().for_each(drop);
    walker.position() == buf.len()
}

/// Per-batch slices of the selected region (read at file `position`), each
/// validated (CRC included unless `--fetch-verify-crc false`).
fn split_batches(
    whole: Bytes,
    plan: &FilePlan,
    position: Position,
) -> Result<(Vec<Bytes>, Option<Bytes>), LogError> {
    let verify_crc = SHARD_VERIFY_CRC.with(Cell::get);
    let mut batches = Vec::new();
    let mut at = 0usize;
    while at < whole.len() {
        let size = peek_size_bytes(&whole[at..]).expect("scan checked the sizes");
        let batch = whole.slice(at..at + size);
        let checked = if verify_crc {
            validate(&batch).map(drop)
        } else {
            check_magic(&batch)
        };
        checked.map_err(|source| LogError::Corrupt {
            segment_base_offset: plan.segment_base_offset.0,
            position: (position + at as u64).0,
            source,
        })?;
        batches.push(batch);
        at += size;
    }
    Ok((batches, Some(whole)))
}

/// What a batch read without its CRC check still gets: `scan` checked the
/// length chain; this checks the format.
fn check_magic(batch: &[u8]) -> Result<(), BatchError> {
    let h = header(batch)?;
    if h.magic == MAGIC_V2 {
        Ok(())
    } else {
        Err(BatchError::BadMagic(h.magic))
    }
}
