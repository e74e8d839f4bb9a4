//! The write hold (`--write-hold-ms`): how long a partition's writer keeps a partly
//! filled DMA chunk in memory, once its input has run dry, before writing it out.
//!
//! Owned by one partition's appender (`appender.rs`), on the partition's shard; the
//! setting is one per broker, set before the shards start. Why: without it, a
//! partition fed a batch every millisecond or so wrote each one as it came, each write
//! extending the file, so each went to an io-wq worker thread (ext4 takes the inode
//! lock for an extending O_DIRECT write): at eight partitions and 415,000 records/s,
//! about 5,500 writes and worker wake-ups a second on two CPUs (docs/benchmarks.md,
//! "The write hold"). Held for up to 10 ms, the same bytes go in about a sixth as
//! many writes.
//!
//! Only a partition whose last two batches came less than a hold apart holds: one fed
//! now and then writes each batch at once, as without a hold.
//!
//! Invariants: a held chunk is never more than one chunk (`CHUNK_BYTES`): a full
//! chunk is written at once. A sync that is due (an acks=all request waiting,
//! `flush.messages`, the bytes bound), a roll and a close write the chunk at once, so
//! acks=all latency never includes the hold. What it adds is to acks=1's kill -9
//! window: at most the hold's time and one chunk per partition, inside the
//! `--unwritten-bytes-max` bound that window already had (docs/reliability.md).

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The default hold: measured against 5 and 20 ms and none (docs/benchmarks.md).
pub const DEFAULT_MS: u64 = 10;
/// The longest hold a broker accepts: beyond it the acks=1 window reads as a delay.
pub const LIMIT_MS: u64 = 1_000;

static HOLD_MS: AtomicU64 = AtomicU64::new(DEFAULT_MS);

thread_local! {
    /// This shard's copy (tests set their own thread's).
    static SHARD_HOLD: Cell<Duration> =
        Cell::new(Duration::from_millis(HOLD_MS.load(Ordering::Relaxed)));
}

/// Set `--write-hold-ms` before the shards start (0: write as soon as input runs dry).
pub fn set_hold_ms(ms: u64) {
    HOLD_MS.store(ms.min(LIMIT_MS), Ordering::Relaxed);
}

/// This thread's hold, for a test (other tests' threads keep theirs).
#[cfg(test)]
pub fn set_thread_hold(hold: Duration) {
    SHARD_HOLD.with(|h| h.set(hold));
}

/// One appender's hold: since when its chunk has held new bytes, and whether its input
/// comes often enough for a hold to gather more of it.
#[derive(Default)]
pub(crate) struct WriteHold {
    since: Option<Instant>,
    /// When the appender last took a batch.
    last_batch: Option<Instant>,
    /// The last two batches came less than a hold apart. A partition fed a batch every
    /// few seconds (10,000 partitions at 20,000 records/s) would only wait out each hold
    /// alone, and each wait is a timer and a wake-up of an idle shard: holding there
    /// cost 15% more broker CPU per GB (docs/benchmarks.md, "The write hold").
    busy: bool,
}

impl WriteHold {
    /// The appender took a batch.
    pub fn batch_taken(&mut self) {
        let now = Instant::now();
        let hold = SHARD_HOLD.with(Cell::get);
        self.busy = self
            .last_batch
            .is_some_and(|last| now.duration_since(last) < hold);
        self.last_batch = Some(now);
    }

    /// New bytes went into a chunk that had none: the hold starts.
    pub fn bytes_added(&mut self) {
        if self.since.is_none() {
            self.since = Some(Instant::now());
        }
    }

    /// The chunk was handed to the kernel.
    pub fn written(&mut self) {
        self.since = None;
    }

    /// Until when the chunk may stay in memory, if it may still.
    pub fn until(&self) -> Option<Instant> {
        if !self.busy {
            return None;
        }
        let hold = SHARD_HOLD.with(Cell::get);
        let due = self.since? + hold;
        (due > Instant::now()).then_some(due)
    }
}
