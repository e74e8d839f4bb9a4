//! One segment: its base offset, files, in-memory indexes and positions.
//!
//! Owned by the partition's shard. Invariants: `written_end <= end`, batches are
//! contiguous from position 0, index entries point at batch starts. Only the
//! appender creates or writes the `.log` file; index files are written when the segment
//! is sealed (roll) or on clean close, and rebuilt by recovery otherwise.

use std::path::{Path, PathBuf};
use std::rc::Rc;

use glommio::io::{Directory, DmaFile, OpenOptions};

use super::index::{IndexEntry, OffsetIndex, TimeIndex, TimeIndexEntry};
use super::{io_err, LogError, Offset, Position};

/// Digits in a segment file name: Kafka's zero-padded 20-digit base offset.
pub const SEGMENT_NAME_DIGITS: usize = 20;
/// Direct I/O block: positions and lengths of every DMA write are multiples of this.
pub const BLOCK_BYTES: u64 = 4096;

pub(crate) struct Segment {
    pub base_offset: Offset,
    /// Offset after the last batch appended to this segment.
    pub next_offset: Offset,
    /// End of the bytes appended (visible): where the next batch goes, and the
    /// segment's size. The file catches up to this.
    pub end: Position,
    /// End of the bytes on the file from completed DMA writes.
    pub written_end: Position,
    /// The active segment's file, created by the appender on first use; `Rc` so
    /// readers may hold it across awaits. `None` once sealed: readers then take the
    /// file from the shard's bounded descriptor cache (`file_cache.rs`).
    pub file: Option<Rc<DmaFile>>,
    pub index: OffsetIndex,
    pub time_index: TimeIndex,
    pub max_timestamp: i64,
    /// Wall-clock creation time (or file mtime after reopen), for segment.ms and
    /// time retention of segments without timestamps.
    pub created_ms: i64,
    bytes_since_index: u64,
    /// The appender has synced it and written its index files; nothing will change.
    pub sealed: bool,
    /// Aborted transactions whose abort marker is in this segment, in offset
    /// order (its `.txnindex`).
    pub aborted: Vec<super::producers::AbortedTxn>,
}

impl Segment {
    pub fn new(base_offset: Offset, created_ms: i64) -> Self {
        Self {
            base_offset,
            next_offset: base_offset,
            end: Position::ZERO,
            written_end: Position::ZERO,
            file: None,
            index: OffsetIndex::default(),
            time_index: TimeIndex::default(),
            max_timestamp: -1,
            created_ms,
            bytes_since_index: 0,
            sealed: false,
            aborted: Vec::new(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.end == Position::ZERO
    }

    /// Bytes appended to this segment (its size once written).
    pub fn size_bytes(&self) -> u64 {
        self.end.0
    }

    /// `offset` relative to the base, as the `u32` the index files store.
    pub fn relative(&self, offset: Offset) -> u32 {
        let relative = offset.0 - self.base_offset.0;
        assert!(
            (0..=i64::from(u32::MAX)).contains(&relative),
            "offset outside segment"
        );
        relative as u32
    }

    /// Account for one batch placed at `end`; adds index entries every
    /// `index_interval_bytes` (Kafka's rule: before the batch that crosses the interval).
    pub fn record_batch(&mut self, base: Offset, last: Offset, batch_bytes: u64, max_ts: i64, interval: u32) {
        assert_eq!(
            base, self.next_offset,
            "offsets must be contiguous within a segment"
        );
        if self.bytes_since_index >= u64::from(interval) {
            let relative_offset = self.relative(base);
            self.index.push(IndexEntry {
                relative_offset,
                position: u32::try_from(self.end.0).expect("segment fits u32"),
            });
            self.time_index.maybe_push(TimeIndexEntry {
                timestamp: self.max_timestamp,
                relative_offset,
            });
            self.bytes_since_index = 0;
        }
        self.end += batch_bytes;
        self.bytes_since_index += batch_bytes;
        self.next_offset = last.next();
        self.max_timestamp = self.max_timestamp.max(max_ts);
    }

    /// Continue accounting from a known batch boundary (recovery after loading indexes).
    pub fn resume_at(&mut self, position: Position, next_offset: Offset) {
        assert!(next_offset >= self.base_offset);
        self.end = position;
        self.next_offset = next_offset;
        self.bytes_since_index = 0;
    }

    /// Append the closing time entry: all batches of the segment are <= max_timestamp.
    pub fn finish_time_index(&mut self) {
        if self.next_offset > self.base_offset {
            let relative_offset = self.relative(self.next_offset);
            self.time_index.maybe_push(TimeIndexEntry {
                timestamp: self.max_timestamp,
                relative_offset,
            });
        }
    }
}

/// Write `.index` and `.timeindex` (DMA, padded then truncated to the exact length)
/// and fdatasync them. Called on roll and clean close only.
pub(crate) async fn write_index_files(
    dir: &Path,
    base: Offset,
    index: &OffsetIndex,
    time_index: &TimeIndex,
) -> Result<(), LogError> {
    write_exact(&index_path(dir, base), index.encoded_bytes(), |b| {
        index.encode_into(b)
    })
    .await?;
    let time_bytes = time_index.encoded_bytes();
    write_exact(&time_index_path(dir, base), time_bytes, |b| {
        time_index.encode_into(b)
    })
    .await
}

/// fsync a directory so a file created in it survives a power cut.
pub(crate) async fn sync_dir(dir: &Path) -> Result<(), LogError> {
    let handle = Directory::open(dir).await.map_err(io_err("opening dir"))?;
    handle.sync().await.map_err(io_err("syncing dir"))?;
    handle.close().await.map_err(io_err("closing dir"))
}

async fn write_exact(path: &Path, len: usize, fill: impl FnOnce(&mut [u8])) -> Result<(), LogError> {
    let file = DmaFile::create(path)
        .await
        .map_err(io_err("creating index file"))?;
    if len > 0 {
        let aligned = len.next_multiple_of(BLOCK_BYTES as usize);
        let mut buf = file.alloc_dma_buffer(aligned);
        let bytes = buf.as_bytes_mut();
        bytes[len..].fill(0);
        fill(&mut bytes[..len]);
        // DMA contract: buffer from alloc_dma_buffer, position 0, length a block multiple.
        let written = file
            .write_at(buf, 0)
            .await
            .map_err(io_err("writing index file"))?;
        if written < aligned {
            return Err(short_write());
        }
    }
    file.truncate(len as u64)
        .await
        .map_err(io_err("truncating index file"))?;
    file.fdatasync().await.map_err(io_err("syncing index file"))?;
    file.close().await.map_err(io_err("closing index file"))
}

pub(crate) fn short_write() -> LogError {
    LogError::Io {
        op: "writing (short write)",
        source: std::io::Error::new(std::io::ErrorKind::WriteZero, "short DMA write"),
    }
}

pub(crate) fn log_path(dir: &Path, base: Offset) -> PathBuf {
    dir.join(format!("{:0width$}.log", base.0, width = SEGMENT_NAME_DIGITS))
}

pub(crate) fn index_path(dir: &Path, base: Offset) -> PathBuf {
    dir.join(format!("{:0width$}.index", base.0, width = SEGMENT_NAME_DIGITS))
}

pub(crate) fn time_index_path(dir: &Path, base: Offset) -> PathBuf {
    dir.join(format!(
        "{:0width$}.timeindex",
        base.0,
        width = SEGMENT_NAME_DIGITS
    ))
}

/// Parse `00000000000000000042.log` into 42.
pub(crate) fn parse_log_name(name: &str) -> Option<Offset> {
    let digits = name.strip_suffix(".log")?;
    if digits.len() != SEGMENT_NAME_DIGITS || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok().map(Offset)
}

/// Open (or create) a segment's `.log` for DMA reads and writes.
pub(crate) async fn open_log_file(dir: &Path, base: Offset, create: bool) -> Result<Rc<DmaFile>, LogError> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(create)
        .dma_open(log_path(dir, base))
        .await
        .map_err(io_err("opening segment"))?;
    Ok(Rc::new(file))
}

pub(crate) fn now_ms() -> i64 {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    since.map(|d| d.as_millis() as i64).unwrap_or(0)
}
