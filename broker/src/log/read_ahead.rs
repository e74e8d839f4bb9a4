//! Read-ahead for consumers reading a segment file in order. Direct I/O has no
//! kernel readahead, and a Kafka consumer keeps one fetch in flight per
//! broker, so without this every fetch of a lagging consumer waits for a disk
//! read that could have started while the previous answer was on its way.
//! After a file read returns batches ending at offset N, the bytes that follow
//! are read in the background; the next read at N takes them if they are there.
//! A read ahead ends on the last batch start the offset index knows within the
//! bytes the next read is expected to take, so that read takes all of it; a
//! read that takes less (its fetch gave it a smaller share) leaves the rest as
//! a ready slot for the read after it, instead of dropping bytes the disk
//! already delivered. One read ahead per reader: two (each read taking one and
//! starting the one after the next) measured slower, docs/benchmarks.md
//! ("Two reads ahead: tried").
//!
//! Owned by one partition's log, on its shard. Invariants: a partition keeps at
//! most `SLOTS` reads ahead (two readers in different places both gain; a
//! third only wastes a read); the bytes in flight or held per shard stay under
//! the budget set by `--read-ahead-bytes` (0 turns read-ahead off), counted
//! when a slot is made and given back when it is dropped. A slot covers bytes
//! below the segment's written end, which never change, so what it holds is
//! what a direct read would return. On the DMA read path (`dma_bytes.rs`) a
//! slot's buffer goes to the socket as it is, and its reservation goes with it:
//! the budget counts the buffer until the answer has been written and dropped.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};

use glommio::io::{DmaFile, ReadResult};
use glommio::task::JoinHandle;

use super::{Offset, Position};

/// Reads ahead kept per partition.
const SLOTS: usize = 2;

/// Per-shard budget in bytes, set once at start-up (`--read-ahead-bytes`).
static BUDGET_BYTES: AtomicUsize = AtomicUsize::new(DEFAULT_BUDGET_BYTES);
/// 128 MiB: a read ahead for each of eight partitions read 8 MiB at a time
/// (64 MiB) plus the answer still holding the reads it took (up to 64 MiB on
/// one shard), or for 64 partitions read 1 MiB at a time. At 64 MiB the reads
/// ahead of a one-shard catch-up were refused: 583-764 MB/s against
/// 1,067-1,543 at 128 MiB (docs/benchmarks.md, "Read-ahead budget").
pub const DEFAULT_BUDGET_BYTES: usize = 128 << 20;

thread_local! {
    static USED_BYTES: Cell<usize> = const { Cell::new(0) };
    /// This shard's copy of the budget (tests set their own thread's).
    static SHARD_BUDGET_BYTES: Cell<usize> = Cell::new(BUDGET_BYTES.load(Ordering::Relaxed));
}

/// Set the per-shard budget before the shards start.
pub fn set_budget_bytes(bytes: usize) {
    BUDGET_BYTES.store(bytes, Ordering::Relaxed);
}

/// A read of one segment from `start`, the position of the batch holding
/// `next_offset`.
pub(super) struct Slot {
    pub segment_base_offset: Offset,
    pub next_offset: Offset,
    pub start: Position,
    task: Option<JoinHandle<glommio::Result<ReadResult, ()>>>,
    reserved: Reservation,
}

/// Where a taken slot was, to put it (or what a read left of it) back.
#[derive(Clone, Copy)]
pub(super) struct Taken {
    segment_base_offset: Offset,
    pub next_offset: Offset,
    pub start: Position,
}

impl Slot {
    /// The bytes and their share of the budget, or `None` if the read failed
    /// (the caller reads directly; the reservation is given back).
    pub async fn bytes(mut self) -> Option<(ReadResult, Reservation)> {
        let task = self.task.take()?;
        let buf = task.await.and_then(Result::ok)?;
        Some((buf, std::mem::take(&mut self.reserved)))
    }

    pub fn taken(&self) -> Taken {
        Taken {
            segment_base_offset: self.segment_base_offset,
            next_offset: self.next_offset,
            start: self.start,
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.cancel();
        }
    }
}

/// Bytes of this shard's budget, given back when dropped. Must be dropped on
/// the shard that made it (the count is thread-local); `dma_bytes.rs` leaks
/// one that ends up elsewhere rather than touch another shard's count.
#[derive(Default)]
pub(super) struct Reservation(usize);

impl Reservation {
    /// Move `bytes` of this reservation into a new one (a buffer split between
    /// an answer and the slot keeping its rest: each counts its own part).
    pub fn split_off(&mut self, bytes: usize) -> Reservation {
        let moved = bytes.min(self.0);
        self.0 -= moved;
        Reservation(moved)
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        USED_BYTES.with(|u| u.set(u.get() - self.0));
    }
}

#[derive(Default)]
pub(super) struct ReadAheads {
    slots: RefCell<Vec<Slot>>,
    /// Reads answered from a slot since open (the shard metric sums them).
    hits: Cell<u64>,
    /// Reads started ahead since open.
    started: Cell<u64>,
}

impl ReadAheads {
    /// The read ahead of `offset` in this segment, if one was started.
    pub fn take(&self, segment_base_offset: Offset, offset: Offset) -> Option<Slot> {
        let mut slots = self.slots.borrow_mut();
        let at = slots
            .iter()
            .position(|s| s.segment_base_offset == segment_base_offset && s.next_offset == offset)?;
        Some(slots.remove(at))
    }

    /// Whether a read ahead of `offset` in this segment was started.
    pub fn has(&self, segment_base_offset: Offset, offset: Offset) -> bool {
        let slots = self.slots.borrow();
        slots
            .iter()
            .any(|s| s.segment_base_offset == segment_base_offset && s.next_offset == offset)
    }

    /// Start reading `len` bytes at `start` (where `next_offset`'s batch
    /// begins) unless the shard's budget is spent; the oldest slot makes room.
    /// Returns whether the read started.
    pub fn start(
        &self,
        file: Rc<DmaFile>,
        segment_base_offset: Offset,
        next_offset: Offset,
        start: Position,
        len: usize,
    ) -> bool {
        let budget = SHARD_BUDGET_BYTES.with(Cell::get);
        let mut slots = self.slots.borrow_mut();
        if len == 0 || budget == 0 {
            return false;
        }
        // The oldest slot makes room only for a read that then fits: its bytes
        // come back to the budget when it goes, and a read the budget refuses
        // anyway must not cost the slot another reader may still take.
        let full = slots.len() >= SLOTS;
        let freed = if full { slots[0].reserved.0 } else { 0 };
        if USED_BYTES.with(Cell::get) - freed + len > budget {
            return false;
        }
        if full {
            slots.remove(0);
        }
        USED_BYTES.with(|u| u.set(u.get() + len));
        let task = glommio::spawn_local(async move { file.read_at(start.0, len).await }).detach();
        slots.push(Slot {
            segment_base_offset,
            next_offset,
            start,
            task: Some(task),
            reserved: Reservation(len),
        });
        self.started.set(self.started.get() + 1);
        crate::metrics::with(|m| m.read_ahead_started());
        true
    }

    /// A read taken and not used (a fitting read found its first batch too
    /// large), or the part of it after what a read returned: back as a ready
    /// slot for the next read at `next_offset`, from `start`, with its share of
    /// the budget. Dropped instead if the partition's slots filled up meanwhile.
    pub fn put_back(
        &self,
        taken: Taken,
        next_offset: Offset,
        start: Position,
        buf: ReadResult,
        reserved: Reservation,
    ) {
        let mut slots = self.slots.borrow_mut();
        if slots.len() >= SLOTS {
            return;
        }
        let task = glommio::spawn_local(async move { Ok(buf) }).detach();
        slots.push(Slot {
            segment_base_offset: taken.segment_base_offset,
            next_offset,
            start,
            task: Some(task),
            reserved,
        });
    }

    pub fn hit(&self) {
        self.hits.set(self.hits.get() + 1);
        crate::metrics::with(|m| m.read_ahead_hit());
    }

    #[cfg(test)]
    pub fn hits(&self) -> u64 {
        self.hits.get()
    }

    #[cfg(test)]
    pub fn started(&self) -> u64 {
        self.started.get()
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.slots.borrow().len()
    }

    /// Drop every slot (the log is closing, or a segment went away).
    pub fn clear(&self) {
        self.slots.borrow_mut().clear();
    }
}

/// Bytes read ahead on this shard now, in flight or held.
#[cfg(test)]
pub fn used_bytes() -> usize {
    USED_BYTES.with(Cell::get)
}

/// This thread's budget, for a test (other tests' threads keep theirs).
#[cfg(test)]
pub fn set_thread_budget_bytes(bytes: usize) {
    SHARD_BUDGET_BYTES.with(|b| b.set(bytes));
}

#[cfg(test)]
mod tests {
    use std::rc::Rc;

    use glommio::io::DmaFile;

    use super::{set_thread_budget_bytes, used_bytes, ReadAheads, SLOTS};
    use crate::log::test_support::{data_dir, run};
    use crate::log::{Offset, Position};

    #[test]
    fn given_full_slots_when_a_read_exceeds_the_budget_should_keep_the_oldest_slot() {
        let dir = data_dir();
        let path = dir.path().join("f");
        std::fs::write(&path, vec![7u8; 64 * 1024]).expect("file");
        run(async move {
            const BLOCK: usize = 4096;
            set_thread_budget_bytes((SLOTS + 1) * BLOCK);
            let file = Rc::new(DmaFile::open(&path).await.expect("open"));
            let aheads = ReadAheads::default();
            let key = |i: usize| Offset(10 * (i as i64 + 1));
            let at = |i: usize| Position((i * BLOCK) as u64);
            for i in 0..SLOTS {
                assert!(aheads.start(file.clone(), Offset(0), key(i), at(i), BLOCK));
            }
            assert_eq!((aheads.len(), used_bytes()), (SLOTS, SLOTS * BLOCK));
            // Evicting the oldest would leave SLOTS - 1 + 3 blocks, over the
            // budget: refused, and every slot stays.
            assert!(!aheads.start(file.clone(), Offset(0), key(SLOTS), at(SLOTS), 3 * BLOCK));
            assert_eq!((aheads.len(), used_bytes()), (SLOTS, SLOTS * BLOCK));
            assert!(aheads.has(Offset(0), key(0)), "the oldest slot stayed");
            // A read that fits once the oldest goes replaces it.
            assert!(aheads.start(file.clone(), Offset(0), key(SLOTS), at(SLOTS), 2 * BLOCK));
            assert_eq!((aheads.len(), used_bytes()), (SLOTS, (SLOTS + 1) * BLOCK));
            assert!(!aheads.has(Offset(0), key(0)), "the oldest slot made room");
            assert!(aheads.has(Offset(0), key(SLOTS)));
            aheads.clear();
            assert_eq!(used_bytes(), 0);
        });
    }
}
