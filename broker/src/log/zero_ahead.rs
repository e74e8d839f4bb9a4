//! Zero-ahead: a partition whose writes are small writes real zeros past the end of
//! its data, so that the writes after it overwrite blocks the file already has.
//!
//! Why: on ext4 an O_DIRECT write that extends the file (or fills a hole) cannot be
//! issued without blocking, so io_uring hands it to an io-wq worker thread; a write
//! that overwrites written blocks inside the file size completes inline. Preallocating
//! (`fallocate`) instead of writing zeros does not do: a write wholly inside an
//! unwritten extent stays inline, but one that spans written and unwritten blocks goes
//! to a worker, and every write here starts in the partly written last block. A
//! partition that gets a one-record batch every few hundred ms otherwise pays a worker
//! hand-off (and two context switches) for each of them (docs/benchmarks.md,
//! "Zero-ahead"). The zeros ride in the same DMA write as the data, after it, so no
//! second write and no ordering between writes is needed.
//!
//! Owned by the partition's appender (one per partition, on its shard). Invariants:
//! the zeros are never part of the log: every size, position and read bound stays
//! `Segment::end` / `written_end`; recovery stops at a zeroed batch header; a padded
//! write refused for want of space is written again without its zeros, and the shard
//! then pads nothing for a minute, so a full disk refuses data only when it does not
//! fit (the zeros never cost a client a KAFKA_STORAGE_ERROR); a sealed
//! segment (roll, clean close) is truncated to its exact end. Zeros past the data are
//! at most `ZERO_AHEAD_MIN_BYTES` plus the bytes appended since the file was opened
//! (each pad at most doubles the last), and at most `ZERO_AHEAD_MAX_BYTES`.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::segment::BLOCK_BYTES;

/// The first pad after a file is opened: a few one-record batches.
pub(crate) const ZERO_AHEAD_MIN_BYTES: u64 = 16 * 1024;
/// The largest pad: one worker hand-off per MiB of a slow partition's data.
pub(crate) const ZERO_AHEAD_MAX_BYTES: u64 = 1024 * 1024;
/// Writes averaging fewer appended bytes than this are small. A busy partition writes
/// 1 MiB chunks: its extending writes are few, and padding them would double its disk
/// bytes.
pub(crate) const SMALL_WRITE_BYTES: u64 = 64 * 1024;
const _: () = assert!(ZERO_AHEAD_MIN_BYTES.is_multiple_of(BLOCK_BYTES));
const _: () = assert!(ZERO_AHEAD_MAX_BYTES.is_multiple_of(BLOCK_BYTES));

/// `--zero-ahead`, set once before the shards start.
static ENABLED: AtomicBool = AtomicBool::new(true);

/// How long a shard stops padding after a padded write found the disk full.
pub(crate) const DISK_FULL_PAUSE: Duration = Duration::from_secs(60);

thread_local! {
    /// This shard's copy (tests set their own thread's).
    static SHARD_ENABLED: Cell<bool> = Cell::new(ENABLED.load(Ordering::Relaxed));
    /// No pads before this instant: a write found the disk full (`disk_full`).
    static PAUSED_UNTIL: Cell<Option<Instant>> = const { Cell::new(None) };
}

fn paused() -> bool {
    PAUSED_UNTIL.with(|p| p.get().is_some_and(|until| Instant::now() < until))
}

/// Set `--zero-ahead` before the shards start.
pub fn set_enabled(on: bool) {
    ENABLED.store(on, Ordering::Relaxed);
}

/// This thread's setting, for a test (other tests' threads keep theirs).
#[cfg(test)]
pub fn set_thread_enabled(on: bool) {
    SHARD_ENABLED.with(|v| v.set(on));
}

/// One segment file's zero-ahead state.
pub(crate) struct ZeroAhead {
    /// File bytes that DMA writes issued so far cover (data or zeros): writes ending
    /// at or below it overwrite written blocks inside the file size.
    file_end: u64,
    /// Zeros the next pad adds past the data.
    next_pad: u64,
    /// Moving average (1/8 weight) of the appended bytes per write.
    average_write_bytes: u64,
}

impl ZeroAhead {
    /// `file_end`: the file's size when the appender takes it over (the segment's end:
    /// recovery and sealing truncate the file to it).
    pub fn new(file_end: u64) -> Self {
        Self {
            file_end,
            next_pad: ZERO_AHEAD_MIN_BYTES,
            average_write_bytes: 0,
        }
    }

    /// Whether this partition's writes average under `SMALL_WRITE_BYTES` of new data.
    pub fn small_writes(&self) -> bool {
        self.average_write_bytes < SMALL_WRITE_BYTES
    }

    /// Zeros the next padded write would add (before the buffer's room caps them).
    pub fn next_pad(&self) -> u64 {
        self.next_pad
    }

    /// A fresh, empty file (a roll). The write-size average carries over.
    pub fn rolled(&mut self) {
        self.file_end = 0;
        self.next_pad = ZERO_AHEAD_MIN_BYTES;
    }

    /// A padded write found no room for its zeros and was written without them, its
    /// data ending at `data_end`: the zeros it counted on are not in the file, and on a
    /// disk this full every pad would take space the data may need, so this shard pads
    /// nothing for `DISK_FULL_PAUSE`.
    pub fn disk_full(&mut self, data_end: u64) {
        self.file_end = self.file_end.min(data_end);
        PAUSED_UNTIL.with(|p| p.set(Some(Instant::now() + DISK_FULL_PAUSE)));
    }

    /// How many bytes to write at `position` for a write whose data (block-padded)
    /// is `aligned` bytes, `new_bytes` of them newly appended, from a buffer of `room`
    /// bytes: `aligned`, or more when this write would extend the file and the
    /// partition's writes are small; the caller fills the extra bytes with zeros.
    pub fn write_bytes(&mut self, position: u64, aligned: usize, new_bytes: u64, room: usize) -> usize {
        assert!(position.is_multiple_of(BLOCK_BYTES) && aligned <= room);
        let small = self.small_writes();
        self.average_write_bytes = self.average_write_bytes - self.average_write_bytes / 8 + new_bytes / 8;
        let data_end = position + aligned as u64;
        let mut bytes = aligned;
        if data_end > self.file_end && small && SHARD_ENABLED.with(Cell::get) && !paused() {
            bytes = (aligned + self.next_pad as usize).min(room);
            if bytes > aligned {
                self.next_pad = (self.next_pad * 2).min(ZERO_AHEAD_MAX_BYTES);
            }
        }
        self.file_end = self.file_end.max(position + bytes as u64);
        bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KIB: usize = 1024;
    const ROOM: usize = 1024 * KIB;

    #[test]
    fn given_small_writes_when_extending_should_pad_doubling_up_to_the_max_and_not_when_overwriting() {
        set_thread_enabled(true);
        let mut z = ZeroAhead::new(0);
        assert_eq!(
            z.write_bytes(0, 4 * KIB, 1000, ROOM),
            20 * KIB,
            "first pad: 16 KiB"
        );
        assert_eq!(z.write_bytes(0, 4 * KIB, 1000, ROOM), 4 * KIB, "inside: no pad");
        assert_eq!(z.write_bytes(16 * KIB as u64, 4 * KIB, 1000, ROOM), 4 * KIB);
        assert_eq!(
            z.write_bytes(20 * KIB as u64, 4 * KIB, 1000, ROOM),
            36 * KIB,
            "second: 32 KiB"
        );
        let mut pads = Vec::new();
        let mut position = 56 * KIB as u64;
        for _ in 0..8 {
            let bytes = z.write_bytes(position, 4 * KIB, 1000, ROOM);
            pads.push((bytes - 4 * KIB) / KIB);
            position += bytes as u64;
        }
        assert_eq!(
            pads,
            [64, 128, 256, 512, 1020, 1020, 1020, 1020],
            "capped by the buffer"
        );
    }

    #[test]
    fn given_large_writes_when_extending_should_not_pad() {
        set_thread_enabled(true);
        let mut z = ZeroAhead::new(0);
        let mut position = 0;
        let mut padded = 0;
        for _ in 0..20 {
            let bytes = z.write_bytes(position, 512 * KIB, 512 * KIB as u64, ROOM);
            padded += bytes - 512 * KIB;
            position += bytes as u64;
        }
        // Only the first write, before the average knows the partition is busy.
        assert_eq!(padded, 16 * KIB);
    }

    #[test]
    fn given_a_full_disk_when_a_pad_was_refused_should_pad_nothing_on_this_shard_for_a_while() {
        set_thread_enabled(true);
        let mut z = ZeroAhead::new(0);
        assert_eq!(z.write_bytes(0, 4 * KIB, 1000, ROOM), 20 * KIB);
        z.disk_full(4 * KIB as u64);
        assert_eq!(
            z.write_bytes(4 * KIB as u64, 4 * KIB, 1000, ROOM),
            4 * KIB,
            "this file"
        );
        let mut other = ZeroAhead::new(0);
        assert_eq!(
            other.write_bytes(0, 4 * KIB, 1000, ROOM),
            4 * KIB,
            "another partition"
        );
        PAUSED_UNTIL.with(|p| p.set(None));
        assert_eq!(
            other.write_bytes(4 * KIB as u64, 4 * KIB, 1000, ROOM),
            20 * KIB,
            "after"
        );
    }

    #[test]
    fn given_zero_ahead_off_when_extending_should_not_pad() {
        set_thread_enabled(false);
        let mut z = ZeroAhead::new(8 * KIB as u64);
        assert_eq!(z.write_bytes(8 * KIB as u64, 4 * KIB, 100, ROOM), 4 * KIB);
        set_thread_enabled(true);
    }
}
