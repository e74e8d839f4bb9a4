//! Read-ahead for consumers reading a segment file in order. Direct I/O has no
//! kernel readahead, and a Kafka consumer keeps one fetch in flight per
//! broker, so without this every fetch of a lagging consumer waits for a disk
//! read that could have started while the previous answer was on its way.
//! After a file read returns batches ending at offset N, the bytes that follow
//! are read in the background; the next read at N takes them if they are there.
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
/// 64 MiB: 32 partitions' worth of 1 MiB fetches plus their margins, read
/// ahead twice each, with room to spare on a shard.
pub const DEFAULT_BUDGET_BYTES: usize = 64 << 20;

thread_local! {
    static USED_BYTES: Cell<usize> = const { Cell::new(0) };
    /// This shard's copy of the budget (tests set their own thread's).
    static SHARD_BUDGET_BYTES: Cell<usize> = Cell::new(BUDGET_BYTES.load(Ordering::Relaxed));
}

/// Set the per-shard budget before the shards start.
pub fn set_budget_bytes(bytes: usize) {
    BUDGET_BYTES.store(bytes, Ordering::Relaxed);
}

/// A read of `len` bytes of one segment from `start`, the position of the
/// batch holding `next_offset`.
pub(super) struct Slot {
    pub segment_base_offset: Offset,
    pub next_offset: Offset,
    pub start: Position,
    task: Option<JoinHandle<glommio::Result<ReadResult, ()>>>,
    reserved: Reservation,
}

impl Slot {
    /// The bytes and their share of the budget, or `None` if the read failed
    /// (the caller reads directly; the reservation is given back).
    pub async fn bytes(mut self) -> Option<(ReadResult, Reservation)> {
        let task = self.task.take()?;
        let buf = task.await.and_then(Result::ok)?;
        Some((buf, std::mem::take(&mut self.reserved)))
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

    /// Start reading `len` bytes at `start` (where `next_offset`'s batch
    /// begins) unless the shard's budget is spent; the oldest slot makes room.
    pub fn start(
        &self,
        file: Rc<DmaFile>,
        segment_base_offset: Offset,
        next_offset: Offset,
        start: Position,
        len: usize,
    ) {
        let budget = SHARD_BUDGET_BYTES.with(Cell::get);
        let mut slots = self.slots.borrow_mut();
        if len == 0 || budget == 0 {
            return;
        }
        // The oldest slot makes room only for a read that then fits: its bytes
        // come back to the budget when it goes, and a read the budget refuses
        // anyway must not cost the slot another reader may still take.
        let full = slots.len() >= SLOTS;
        let freed = if full { slots[0].reserved.0 } else { 0 };
        if USED_BYTES.with(Cell::get) - freed + len > budget {
            return;
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
        crate::metrics::with(|m| m.read_ahead_started());
    }

    /// A read taken and not used (a fitting read found its first batch too
    /// large): back as a ready slot, with its share of the budget, for the next
    /// read at `next_offset`. Dropped instead if the partition's slots filled
    /// up meanwhile.
    pub fn put_back(
        &self,
        segment_base_offset: Offset,
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
            segment_base_offset,
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

    use super::{set_thread_budget_bytes, used_bytes, ReadAheads};
    use crate::log::test_support::{data_dir, run};
    use crate::log::{Offset, Position};

    #[test]
    fn given_full_slots_when_a_read_exceeds_the_budget_should_keep_the_oldest_slot() {
        let dir = data_dir();
        let path = dir.path().join("f");
        std::fs::write(&path, vec![7u8; 64 * 1024]).expect("file");
        run(async move {
            const BLOCK: usize = 4096;
            set_thread_budget_bytes(3 * BLOCK);
            let file = Rc::new(DmaFile::open(&path).await.expect("open"));
            let aheads = ReadAheads::default();
            aheads.start(file.clone(), Offset(0), Offset(10), Position(0), BLOCK);
            aheads.start(file.clone(), Offset(0), Offset(20), Position(BLOCK as u64), BLOCK);
            assert_eq!((aheads.len(), used_bytes()), (2, 2 * BLOCK));
            // 2 blocks held; evicting the oldest would leave 1 + 3 > 3: refused,
            // and both slots stay.
            aheads.start(
                file.clone(),
                Offset(0),
                Offset(30),
                Position(2 * BLOCK as u64),
                3 * BLOCK,
            );
            assert_eq!((aheads.len(), used_bytes()), (2, 2 * BLOCK));
            assert!(
                aheads.take(Offset(0), Offset(10)).is_some(),
                "the oldest slot was dropped"
            );
            // A read that fits once the oldest goes replaces it.
            aheads.start(
                file.clone(),
                Offset(0),
                Offset(30),
                Position(2 * BLOCK as u64),
                BLOCK,
            );
            aheads.start(
                file.clone(),
                Offset(0),
                Offset(40),
                Position(3 * BLOCK as u64),
                2 * BLOCK,
            );
            assert_eq!((aheads.len(), used_bytes()), (2, 3 * BLOCK));
            assert!(
                aheads.take(Offset(0), Offset(20)).is_none(),
                "the oldest slot stayed"
            );
            aheads.clear();
            assert_eq!(used_bytes(), 0);
        });
    }
}
