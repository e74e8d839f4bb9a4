//! The partition log: segments of Kafka RecordBatch v2 bytes on Direct-I/O files.
//!
//! Owns one partition directory per `PartitionLog`; only the shard that opened it may
//! touch it (`PartitionLog` is `!Send`, shared through `Rc` on that shard).
//! Invariants: offsets strictly increase, bytes are stored exactly as validated,
//! appended >= written >= durable (offsets and positions), and nothing reported durable
//! is ever lost by recovery. This file holds the public types, config and errors.

mod appender;
mod cache;
mod dma_bytes;
mod file_cache;
mod index;
mod partition;
mod probe;
mod producer_snapshot;
pub mod producers;
mod read_ahead;
mod reader;
mod recovery;
mod retention;
mod segment;
mod shard_sync;
mod shutdown_state;
mod start_offset;
mod stream_copy;
mod timestamps;
mod txn;
mod txn_index;
mod wait;
mod write_hold;
mod zero_ahead;

#[cfg(test)]
mod dma_tests;
#[cfg(test)]
mod model_tests;
#[cfg(test)]
mod producer_tests;
#[cfg(test)]
mod segment_files_tests;
#[cfg(test)]
pub(crate) mod test_support;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod txn_tests;
#[cfg(test)]
mod verify_tests;
#[cfg(test)]
mod write_hold_tests;
#[cfg(test)]
mod zero_ahead_tests;

use std::sync::Arc;

pub use dma_bytes::FileReadPath;
pub use file_cache::{
    limit_per_shard as open_segment_files_limit, open_files as open_segment_files,
    set_limit_per_shard as set_open_segment_files_limit, DEFAULT_LIMIT as OPEN_SEGMENT_FILES_DEFAULT,
};
pub use index::{IndexEntry, OffsetIndex, TimeIndex, TimeIndexEntry};
pub use partition::{
    set_unwritten_bytes_max, PartitionLog, UNWRITTEN_BYTES_DEFAULT, UNWRITTEN_BYTES_LIMIT,
    UNWRITTEN_BYTES_MIN,
};
pub use probe::direct_io_probe;
pub use read_ahead::{
    set_budget_bytes as set_read_ahead_budget, DEFAULT_BUDGET_BYTES as READ_AHEAD_BYTES_DEFAULT,
};
pub use reader::set_verify_crc as set_fetch_verify_crc;
pub use txn::TxnMarker;
use weir_protocol::record_batch::BatchError;
pub use write_hold::{
    set_hold_ms as set_write_hold_ms, DEFAULT_MS as WRITE_HOLD_MS_DEFAULT, LIMIT_MS as WRITE_HOLD_MS_LIMIT,
};
pub use zero_ahead::set_enabled as set_zero_ahead;

/// A Kafka record offset. Never a byte position: those are `Position`s.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Offset(pub i64);

impl Offset {
    /// The offset right after this one (a batch's last offset + 1 is where the next
    /// batch starts).
    #[must_use]
    pub fn next(self) -> Offset {
        Offset(self.0 + 1)
    }

    /// `self + delta`: a batch's base plus its `last_offset_delta`, or a segment's base
    /// plus an index entry's relative offset.
    #[must_use]
    pub fn plus(self, delta: impl Into<i64>) -> Offset {
        Offset(self.0 + delta.into())
    }
}

/// A byte position in a segment file, from its start. Never a record offset. On disk
/// (the `.index` entries) positions are `u32`; in memory they are this.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Position(pub u64);

impl Position {
    pub const ZERO: Position = Position(0);
}

/// The position `len` bytes further on.
impl std::ops::Add<u64> for Position {
    type Output = Position;

    fn add(self, len: u64) -> Position {
        Position(self.0 + len)
    }
}

impl std::ops::AddAssign<u64> for Position {
    fn add_assign(&mut self, len: u64) {
        self.0 += len;
    }
}

/// Bytes from `earlier` to `self`; panics (debug) if `earlier` is further on.
impl std::ops::Sub for Position {
    type Output = u64;

    fn sub(self, earlier: Position) -> u64 {
        self.0 - earlier.0
    }
}

/// Stall diagnosis (issue 13): with `WEIR_STALL_MS` set (the variable the shard's
/// stall probe reads, `shard/stall_probe.rs`), the log reports any append that waited
/// for staging room, fdatasync or roll longer than that. Read once per process.
pub(crate) fn slow_threshold() -> Option<std::time::Duration> {
    static THRESHOLD: std::sync::OnceLock<Option<std::time::Duration>> = std::sync::OnceLock::new();
    *THRESHOLD.get_or_init(|| {
        let ms: u64 = std::env::var("WEIR_STALL_MS").ok()?.trim().parse().ok()?;
        (ms > 0).then(|| std::time::Duration::from_millis(ms))
    })
}

/// Log `what` if it took longer than the diagnosis threshold.
pub(crate) fn report_slow(what: &'static str, dir: &std::path::Path, started: std::time::Instant) {
    if let Some(threshold) = slow_threshold() {
        let took = started.elapsed();
        if took > threshold {
            tracing::warn!(dir = %dir.display(), took_us = took.as_micros() as u64, what, "slow log step");
        }
    }
}

/// Kafka caps `segment.bytes` at `Int.MaxValue`; our index stores positions as `u32`,
/// so 2 GiB is the hard limit a segment may reach.
pub const SEGMENT_BYTES_MAX: u64 = i32::MAX as u64;
/// A segment smaller than one DMA block would roll on nearly every append; the floor
/// keeps tests able to force rolls while keeping files sane.
pub const SEGMENT_BYTES_MIN: u64 = 4096;
/// Kafka's default `max.message.bytes` (1 MiB + record-batch overhead).
pub const BATCH_BYTES_DEFAULT: usize = 1_048_588;
/// Upper bound for `max_batch_bytes`: the writer stages at most this much unwritten data
/// (plus one batch), so a larger batch would defeat the staging bound.
pub const BATCH_BYTES_MAX: usize = 64 * 1024 * 1024;
const DAY_MS: u64 = 24 * 60 * 60 * 1000;

/// When the appender calls fdatasync. `wait_durable` always triggers a sync as soon as
/// the writer has no more input ready, whatever the policy: the policy only adds syncs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlushPolicy {
    /// Sync after every write round (a topic forcing sync flushing).
    EveryAppend,
    /// Sync when `ms` passed or `bytes` were written since the last sync (backstop).
    Interval { ms: u64, bytes: u64 },
}

/// Per-partition log settings. See `docs/format.md` for what each one changes on disk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogConfig {
    pub segment_bytes: u64,
    pub segment_ms: Option<u64>,
    pub index_interval_bytes: u32,
    pub retention_bytes: Option<u64>,
    pub retention_ms: Option<u64>,
    pub flush: FlushPolicy,
    pub tail_cache_bytes: usize,
    pub max_batch_bytes: usize,
    /// fallocate each new segment to `segment_bytes` (keep_size). Off by default: the
    /// log_append bench measured it (docs/benchmarks.md).
    pub preallocate: bool,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            segment_bytes: 1024 * 1024 * 1024,
            segment_ms: Some(7 * DAY_MS),
            index_interval_bytes: 4096,
            retention_bytes: None,
            retention_ms: Some(7 * DAY_MS),
            // Acks=all producers trigger their own syncs; this only bounds how much
            // acks=1 data a power cut may take: at most 1 s or 64 MiB.
            flush: FlushPolicy::Interval {
                ms: 1000,
                bytes: 64 * 1024 * 1024,
            },
            tail_cache_bytes: 16 * 1024 * 1024,
            max_batch_bytes: BATCH_BYTES_DEFAULT,
            preallocate: false,
        }
    }
}

impl LogConfig {
    /// Refuse settings the on-disk format or the bounds cannot honour.
    pub fn check(&self) -> Result<(), LogError> {
        let bad = |reason: &'static str| Err(LogError::BadConfig { reason });
        if !(SEGMENT_BYTES_MIN..=SEGMENT_BYTES_MAX).contains(&self.segment_bytes) {
            return bad("segment_bytes out of range");
        }
        if self.index_interval_bytes == 0 {
            return bad("index_interval_bytes must be > 0");
        }
        if self.max_batch_bytes == 0 || self.max_batch_bytes > BATCH_BYTES_MAX {
            return bad("max_batch_bytes out of range");
        }
        if let FlushPolicy::Interval { ms: 0, .. } = self.flush {
            return bad("flush interval ms must be > 0");
        }
        Ok(())
    }
}

/// Why a log operation failed.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("invalid batch: {0}")]
    Batch(#[from] BatchError),
    #[error("batch of {batch_bytes} bytes exceeds max_batch_bytes {limit_bytes}")]
    TooLarge { batch_bytes: usize, limit_bytes: usize },
    #[error("offset {offset} outside [{log_start_offset}, {log_end_offset}]")]
    OffsetOutOfRange {
        offset: i64,
        log_start_offset: i64,
        log_end_offset: i64,
    },
    #[error("i/o error while {op}")]
    Io {
        op: &'static str,
        #[source]
        source: std::io::Error,
    },
    /// The background writer hit an I/O error; the partition must be fenced.
    #[error("partition writer failed")]
    WriterFailed(#[source] Arc<std::io::Error>),
    #[error("stored batch at position {position} of segment {segment_base_offset} is corrupt")]
    Corrupt {
        segment_base_offset: i64,
        position: u64,
        #[source]
        source: BatchError,
    },
    #[error("bad log config: {reason}")]
    BadConfig { reason: &'static str },
    #[error("direct i/o probe failed: {reason}")]
    Probe { reason: &'static str },
    #[error("log is closed")]
    Closed,
    /// An idempotent producer's batch out of sequence or from a fenced epoch.
    #[error(transparent)]
    Sequence(#[from] producers::SequenceError),
    /// Kafka refuses control batches from clients: only the transaction
    /// coordinator writes markers (`append_marker`).
    #[error("clients may not write control batches")]
    ControlBatch,
}

/// Build a `LogError::Io` from a glommio error, keeping the cause.
pub(crate) fn io_err(op: &'static str) -> impl FnOnce(glommio::GlommioError<()>) -> LogError {
    move |e| LogError::Io { op, source: e.into() }
}

/// Build a `LogError::Io` from a std error, keeping the cause.
pub(crate) fn std_io_err(op: &'static str) -> impl FnOnce(std::io::Error) -> LogError {
    move |source| LogError::Io { op, source }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AppendResult {
    pub base_offset: Offset,
    pub last_offset: Offset,
    pub log_start_offset: Offset,
}

#[derive(Clone, Debug)]
pub struct ReadResult {
    /// Whole batches, in offset order; the first may start before the requested offset.
    pub batches: Vec<bytes::Bytes>,
    pub high_watermark: Offset,
    pub log_start_offset: Offset,
    pub from_cache: bool,
    /// The same batches as one `Bytes` when they sit back to back in one
    /// buffer (reads from the file), so a fetch can send them without
    /// concatenating: `batches` are slices of it.
    pub contiguous: Option<bytes::Bytes>,
}
