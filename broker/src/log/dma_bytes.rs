//! The DMA read path (`--fetch-read-path dma`): a segment read's Direct-I/O
//! buffer (glommio's `ReadResult`) handed out as `Bytes` as it is, so a fetch
//! answer goes from the read buffer to the socket without the copy into a new
//! `Bytes` the copy path makes.
//!
//! Runs on the partition's shard. Invariants: the buffer (an `Rc` inside
//! glommio, from the shard's own DMA allocator) is dropped on the shard that
//! read it. Fetch answers that travel to another shard take the copy path
//! (`handlers/fetch.rs`), so this holds by construction; should one still be
//! dropped elsewhere, the buffer and its reservation are leaked rather than
//! touch another thread's `Rc` or budget count. A buffer read ahead keeps its
//! read-ahead reservation until dropped, so held answers count in the budget.

use std::thread::{self, ThreadId};

use bytes::Bytes;
use glommio::io::ReadResult;

use super::read_ahead::Reservation;

/// How a fetch from the segment file turns the read buffer into batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum FileReadPath {
    /// One copy of the region into a new `Bytes` (the baseline; shareable
    /// with other shards).
    Copy,
    /// The DMA read buffer itself, no copy (default; measured in
    /// docs/benchmarks.md, "Zero-copy read path").
    #[default]
    Dma,
}

struct DmaOwner {
    buf: Option<ReadResult>,
    reserved: Option<Reservation>,
    shard_thread: ThreadId,
}

// SAFETY: `Bytes::from_owner` needs `Send`. The owner is only read through
// `as_ref` (plain memory, kept alive by the `Rc` this owner holds) from any
// thread; the `Rc` count and the thread-local reservation are touched only in
// `drop`, which does nothing to them off the shard that made the owner.
unsafe impl Send for DmaOwner {}

impl AsRef<[u8]> for DmaOwner {
    fn as_ref(&self) -> &[u8] {
        self.buf.as_deref().unwrap_or(&[])
    }
}

impl Drop for DmaOwner {
    fn drop(&mut self) {
        if thread::current().id() != self.shard_thread {
            tracing::error!(
                bytes = self.as_ref().len(),
                "DMA read buffer dropped off its shard; leaked"
            );
            std::mem::forget(self.buf.take());
            std::mem::forget(self.reserved.take());
        }
    }
}

/// `range` of `buf` as `Bytes`: the buffer itself on the DMA path, a copy on
/// the copy path (the buffer and its reservation are then dropped at once).
pub(super) fn region(
    buf: ReadResult,
    reserved: Option<Reservation>,
    range: core::ops::Range<usize>,
    path: FileReadPath,
) -> Bytes {
    match path {
        FileReadPath::Copy => Bytes::copy_from_slice(&buf[range]),
        FileReadPath::Dma => {
            let owner = DmaOwner {
                buf: Some(buf),
                reserved,
                shard_thread: thread::current().id(),
            };
            Bytes::from_owner(owner).slice(range)
        }
    }
}
