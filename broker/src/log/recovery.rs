//! Opening a partition directory: list segments, load or rebuild indexes, scan the tail
//! of the last segment, cut it at the first torn, zeroed or CRC-failing batch.
//!
//! Runs once per partition on its owning shard, before the appender starts: at start-up,
//! and on a serving executor when a topic is created or a failed partition reopens. So
//! the blocking `std::fs` calls (directory listing, stat, index-file reads) run on
//! glommio's blocking-thread pool, never on the executor thread. Invariant: every byte
//! before the cut is a chain of valid batches with contiguous offsets, so a batch that
//! was durable (fully written and synced) is never cut.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use glommio::io::DmaFile;
use weir_protocol::record_batch::{peek_size_bytes, validate};

use super::index::{OffsetIndex, TimeIndex};
use super::segment::{
    index_path, log_path, now_ms, open_log_file, parse_log_name, sync_dir, time_index_path,
    write_index_files, Segment, BLOCK_BYTES,
};
use super::shutdown_state;
use super::{io_err, probe, std_io_err, IndexEntry, LogConfig, LogError, Offset, Position, BATCH_BYTES_MAX};

/// Bytes read per step of a recovery scan: one large sequential DMA read.
const RECOVERY_WINDOW_BYTES: u64 = 1024 * 1024;

pub(crate) struct Recovered {
    pub segments: VecDeque<Segment>,
    pub active_file: Rc<DmaFile>,
    /// The partial last block of the active segment, rewritten by the next write.
    pub carry: Vec<u8>,
    /// DeleteRecords' saved floor (`start_offset.rs`); zero when none.
    pub start_floor: Offset,
    /// What the shutdown state said; while it says clean, the appender marks the
    /// directory not clean before its first write (`shutdown_state.rs`).
    pub shutdown: shutdown_state::Found,
}

pub(crate) async fn recover(dir: &Path, config: &LogConfig) -> Result<Recovered, LogError> {
    tracing::debug!(dir = %dir.display(), "recovery: start");
    let DirListing {
        existed,
        shutdown,
        bases,
    } = off_executor(dir.to_path_buf(), list_dir).await?;
    let clean = shutdown.clean();
    probe::ensure_probed(dir).await?;
    if let Some(parent) = dir.parent().filter(|_| !existed) {
        // The new directory's own entry must survive a power cut too.
        sync_dir(parent).await?;
    }
    let mut segments = VecDeque::with_capacity(bases.len().max(1));
    if bases.is_empty() {
        let file = open_log_file(dir, Offset(0), true).await?;
        sync_dir(dir).await?;
        let mut segment = Segment::new(Offset(0), now_ms());
        segment.file = Some(file);
        segments.push_back(segment);
    }
    for (i, &base) in bases.iter().enumerate() {
        tracing::debug!(dir = %dir.display(), base = base.0, "recovery: segment");
        let segment = match bases.get(i + 1) {
            Some(_) => load_closed(dir, base, config).await?,
            None => recover_active(dir, base, clean, config).await?,
        };
        segments.push_back(segment);
    }
    let active = segments.back().expect("at least one segment");
    let active_file = active.file.clone().expect("recovered segments have files");
    let carry = read_carry(&active_file, active.end).await?;
    if config.preallocate {
        let bytes = config.segment_bytes;
        active_file
            .pre_allocate(bytes, true)
            .await
            .map_err(io_err("preallocating segment"))?;
    }
    let start_floor = off_executor(dir.to_path_buf(), super::start_offset::read_blocking)
        .await?
        .unwrap_or(Offset(0));
    Ok(Recovered {
        segments,
        active_file,
        carry,
        start_floor,
        shutdown,
    })
}

/// Run blocking `std::fs` work on glommio's blocking-thread pool: a slow directory
/// listing or index read must not stall every connection of a serving shard.
async fn off_executor<T: Send + 'static>(dir: PathBuf, work: impl FnOnce(&Path) -> T + Send + 'static) -> T {
    glommio::executor().spawn_blocking(move || work(&dir)).await
}

/// What recovery learns from the partition directory before opening segments.
struct DirListing {
    /// The directory existed already (else its entry in the parent needs a sync).
    existed: bool,
    /// Whether the last close was clean: the active segment's index files are good.
    shutdown: shutdown_state::Found,
    /// Base offsets of the `.log` files, ascending.
    bases: Vec<Offset>,
}

/// Blocking: create the directory if needed, look for the marker, list the segments.
fn list_dir(dir: &Path) -> Result<DirListing, LogError> {
    let existed = dir.is_dir();
    std::fs::create_dir_all(dir).map_err(std_io_err("creating partition dir"))?;
    let shutdown = shutdown_state::read_blocking(dir);
    let mut bases = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(std_io_err("listing partition dir"))? {
        let entry = entry.map_err(std_io_err("listing partition dir"))?;
        if let Some(base) = entry.file_name().to_str().and_then(parse_log_name) {
            bases.push(base);
        }
    }
    bases.sort_unstable();
    Ok(DirListing {
        existed,
        shutdown,
        bases,
    })
}

/// A segment's offset and time index, loaded from their files.
struct Indexes {
    index: OffsetIndex,
    time_index: TimeIndex,
}

/// What a segment's files say besides its batches.
struct SegmentFiles {
    /// The `.log` file's mtime, standing in for its creation time (segment.ms, retention).
    modified_ms: i64,
    /// Its index files, when asked for and both present and valid.
    indexes: Option<Indexes>,
}

/// Read a segment's mtime and (if `want_indexes`) its index files, on the blocking pool.
async fn read_segment_files(
    dir: &Path,
    base: Offset,
    file_end: Position,
    want_indexes: bool,
) -> SegmentFiles {
    off_executor(dir.to_path_buf(), move |dir| SegmentFiles {
        modified_ms: modified_ms(&log_path(dir, base)),
        indexes: want_indexes.then(|| load_indexes(dir, base, file_end)).flatten(),
    })
    .await
}

/// Blocking: a file's mtime in ms (now if unknown).
fn modified_ms(path: &Path) -> i64 {
    let modified = std::fs::metadata(path).and_then(|m| m.modified());
    let since = modified
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok());
    since.map_or_else(now_ms, |d| d.as_millis() as i64)
}

/// Blocking: read and decode both index files; `None` if either is missing or invalid.
fn load_indexes(dir: &Path, base: Offset, file_end: Position) -> Option<Indexes> {
    let index_bytes = std::fs::read(index_path(dir, base)).ok()?;
    let time_bytes = std::fs::read(time_index_path(dir, base)).ok()?;
    let index = OffsetIndex::decode(&index_bytes, file_end.0.max(1)).ok()?;
    let time_index = TimeIndex::decode(&time_bytes).ok()?;
    Some(Indexes { index, time_index })
}

/// A sealed segment: trust its index files if they parse, else rebuild them by a scan.
async fn load_closed(dir: &Path, base: Offset, config: &LogConfig) -> Result<Segment, LogError> {
    let file = open_log_file(dir, base, false).await?;
    let file_end = Position(file.file_size().await.map_err(io_err("sizing segment"))?);
    let files = read_segment_files(dir, base, file_end, true).await;
    let mut segment = Segment::new(base, files.modified_ms);
    match files.indexes {
        Some(Indexes { index, time_index }) => {
            segment.max_timestamp = time_index.last().map_or(-1, |e| e.timestamp);
            segment.index = index;
            segment.time_index = time_index;
            // A short scan (one index interval) re-derives the next offset and size.
            scan_from_last_entry(&file, &mut segment, file_end, config).await?;
        }
        None => {
            tracing::warn!(segment = %log_path(dir, base).display(), "index files missing or corrupt; rebuilding them by a scan");
            scan_tail(&file, &mut segment, file_end, config).await?;
            segment.finish_time_index();
            write_index_files(dir, base, &segment.index, &segment.time_index).await?;
        }
    }
    if segment.end < file_end {
        // Sealed data was synced before the roll: damage here is corruption, not a torn
        // write. Keep the file for inspection; reads of the damaged range return nothing.
        tracing::error!(
            segment = %log_path(dir, base).display(),
            bad_bytes = file_end - segment.end,
            "corrupt batch inside a sealed segment"
        );
    }
    segment.written_end = segment.end;
    segment.sealed = true;
    // Reads reopen it through the shard's bounded cache (`file_cache.rs`): a partition
    // holds only its active segment's descriptor.
    close_file(file).await?;
    Ok(segment)
}

async fn scan_from_last_entry(
    file: &DmaFile,
    segment: &mut Segment,
    file_end: Position,
    config: &LogConfig,
) -> Result<(), LogError> {
    let entry = segment.index.last().unwrap_or(IndexEntry {
        relative_offset: 0,
        position: 0,
    });
    let next_offset = segment.base_offset.plus(entry.relative_offset);
    segment.resume_at(entry.file_position(), next_offset);
    scan_tail(file, segment, file_end, config).await
}

/// The last segment: scan from the last entry of its index files, cut the file at the
/// first bad batch. After a clean shutdown the files cover the whole segment. After a
/// crash they are a checkpoint (`appender.rs` writes them every
/// `INDEX_CHECKPOINT_BYTES` made durable, covering durable batches only), so the scan
/// covers the bytes written since, not the whole segment; if the batch at their last
/// entry does not check out (a torn checkpoint, damaged bytes) the whole segment is
/// scanned as before, and the recovered index is written back as the next checkpoint.
async fn recover_active(
    dir: &Path,
    base: Offset,
    clean: bool,
    config: &LogConfig,
) -> Result<Segment, LogError> {
    let file = open_log_file(dir, base, false).await?;
    let file_end = Position(file.file_size().await.map_err(io_err("sizing segment"))?);
    let files = read_segment_files(dir, base, file_end, true).await;
    let mut segment = Segment::new(base, files.modified_ms);
    let mut from_checkpoint = false;
    if let Some(Indexes { index, time_index }) = files.indexes {
        segment.max_timestamp = time_index.last().map_or(-1, |e| e.timestamp);
        segment.index = index;
        segment.time_index = time_index;
        let resume = segment.index.last().map_or(Position::ZERO, |e| e.file_position());
        scan_from_last_entry(&file, &mut segment, file_end, config).await?;
        // The batch at the entry was durable when the entry was written: it must be
        // there and whole, unless the checkpoint is bad.
        from_checkpoint = clean || resume == Position::ZERO || segment.end > resume;
        if !from_checkpoint {
            tracing::warn!(segment = %log_path(dir, base).display(), "index checkpoint does not match the segment; scanning all of it");
            segment = Segment::new(base, files.modified_ms);
        }
    }
    if !from_checkpoint {
        scan_tail(&file, &mut segment, file_end, config).await?;
    }
    let valid_end = segment.end;
    if valid_end < file_end {
        tracing::debug!(segment = %log_path(dir, base).display(), "recovery: truncating");
        file.truncate(valid_end.0)
            .await
            .map_err(io_err("truncating torn tail"))?;
        file.fdatasync()
            .await
            .map_err(io_err("syncing truncated segment"))?;
        tracing::warn!(
            segment = %log_path(dir, base).display(),
            cut_bytes = file_end - valid_end,
            kept_bytes = valid_end.0,
            "recovery cut a torn, zeroed or corrupt tail"
        );
    }
    if !clean && !from_checkpoint && !segment.index.is_empty() {
        // The next crash starts from here; also replaces a checkpoint that did not match.
        write_index_files(dir, base, &segment.index, &segment.time_index).await?;
    }
    segment.written_end = valid_end;
    segment.file = Some(file);
    Ok(segment)
}

/// Validate batches from `segment.end` on, recording each into the segment
/// (rebuilding its indexes); stop at the first torn, zeroed, corrupt or out-of-order
/// batch. Afterwards `segment.end` is the end of the valid bytes.
async fn scan_tail(
    file: &DmaFile,
    segment: &mut Segment,
    file_end: Position,
    config: &LogConfig,
) -> Result<(), LogError> {
    let mut window = RECOVERY_WINDOW_BYTES;
    // Bounded: each step consumes at least one batch or stops.
    while segment.end < file_end {
        let position = segment.end;
        let read_bytes = (file_end - position).min(window) as usize;
        let buf = file
            .read_at(position.0, read_bytes)
            .await
            .map_err(io_err("reading segment"))?;
        let mut at = 0usize;
        while let Some(size) = peek_size_bytes(&buf[at..]).filter(|&size| size <= buf.len() - at) {
            match validate(&buf[at..at + size]) {
                Ok(info) if Offset(info.base_offset) == segment.next_offset => {
                    let interval = config.index_interval_bytes;
                    segment.record_batch(
                        Offset(info.base_offset),
                        Offset(info.last_offset()),
                        size as u64,
                        super::timestamps::effective_max_timestamp(&buf[at..at + size], info.max_timestamp),
                        interval,
                    );
                    at += size;
                }
                _ => return Ok(()),
            }
        }
        if at > 0 {
            window = RECOVERY_WINDOW_BYTES;
            continue;
        }
        // No whole batch in the window: a larger batch, or a torn or garbage header.
        match peek_size_bytes(&buf) {
            Some(size) if size <= BATCH_BYTES_MAX && (size as u64) <= file_end - position => {
                if size as u64 <= window {
                    return Ok(());
                }
                window = size as u64;
            }
            _ => return Ok(()),
        }
    }
    Ok(())
}

async fn close_file(file: Rc<DmaFile>) -> Result<(), LogError> {
    match Rc::try_unwrap(file) {
        Ok(file) => file.close().await.map_err(io_err("closing segment")),
        Err(_) => Ok(()),
    }
}

async fn read_carry(file: &DmaFile, end: Position) -> Result<Vec<u8>, LogError> {
    let tail_bytes = (end.0 % BLOCK_BYTES) as usize;
    if tail_bytes == 0 {
        return Ok(Vec::new());
    }
    let block_start = end.0 - tail_bytes as u64;
    let block = file.read_at_aligned(block_start, BLOCK_BYTES as usize).await;
    let block = block.map_err(io_err("reading last block"))?;
    assert!(block.len() >= tail_bytes, "the file holds the recovered bytes");
    Ok(block[..tail_bytes].to_vec())
}
