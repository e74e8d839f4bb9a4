//! The descriptors of sealed segment files, per shard, in a bounded LRU cache.
//!
//! A partition keeps only its active segment's file open (the appender holds it);
//! a read of a sealed segment takes that segment's file from here, opening it on a
//! miss and closing the least recently used one beyond the limit. So a shard holds
//! at most `limit` sealed-segment descriptors however many segments its partitions
//! have (before, every segment kept one open: 10,000 one-segment partitions held
//! 10,025 descriptors, and a partition with 1,000 segments 1,000).
//!
//! Shard-local (`thread_local!`: a shard is one executor thread); nothing is shared
//! between shards. Keys are (log id, segment base offset): a log id is fresh for
//! every `PartitionLog::open`, so a topic deleted and re-created under the same
//! directory never reads a stale descriptor; a closing log and retention drop their
//! entries at once so an unlinked file's space is given back. Invariant:
//! `files.len() == order.len() <= limit`. A descriptor evicted while a read still
//! holds its `Rc` closes when that read ends, so the bound is the limit plus the
//! reads in flight on the shard.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};

use glommio::io::{DmaFile, OpenOptions};

use super::segment::log_path;
use super::{io_err, LogError, Offset};

/// Sealed-segment descriptors per broker by default (`--max-open-segment-files`),
/// split evenly among the shards. A miss costs one `openat` through io_uring (tens
/// of microseconds) beside a read of at least 64 KiB, so a small cache is enough;
/// 1,024 keeps a broker with 10,000 partitions far below a 20,000-descriptor limit.
pub const DEFAULT_LIMIT: usize = 1024;

/// Per-shard limit, set once at start-up before the shards run.
static LIMIT_PER_SHARD: AtomicUsize = AtomicUsize::new(DEFAULT_LIMIT);

type Key = (u64, i64);

#[derive(Default)]
struct FileCache {
    files: HashMap<Key, (Rc<DmaFile>, u64)>,
    /// Last use -> key, oldest first.
    order: BTreeMap<u64, Key>,
    clock: u64,
    next_log_id: u64,
    /// Tests set their own limit on their executor thread (the static is per process).
    #[cfg(test)]
    limit: Option<usize>,
}

thread_local! {
    static CACHE: RefCell<FileCache> = RefCell::new(FileCache::default());
}

/// Set the per-shard limit (at least 1) before the shards start.
pub fn set_limit_per_shard(limit: usize) {
    LIMIT_PER_SHARD.store(limit.max(1), Ordering::Relaxed);
}

pub fn limit_per_shard() -> usize {
    LIMIT_PER_SHARD.load(Ordering::Relaxed)
}

/// Sealed-segment descriptors this shard's cache holds now.
pub fn open_files() -> usize {
    CACHE.with(|c| c.borrow().files.len())
}

/// A fresh id for a log being opened on this shard.
pub(super) fn new_log_id() -> u64 {
    CACHE.with(|c| {
        let mut c = c.borrow_mut();
        c.next_log_id += 1;
        c.publish();
        c.next_log_id
    })
}

/// The sealed segment `base` of log `log_id` (directory `dir`), opened read-only on
/// a miss. Two readers missing at once both open it; the later insert replaces the
/// earlier, whose descriptor closes when its reader is done.
pub(super) async fn sealed_file(log_id: u64, dir: &Path, base: Offset) -> Result<Rc<DmaFile>, LogError> {
    let key = (log_id, base.0);
    if let Some(file) = CACHE.with(|c| c.borrow_mut().touch(key)) {
        return Ok(file);
    }
    let file = OpenOptions::new()
        .read(true)
        .dma_open(log_path(dir, base))
        .await
        .map_err(io_err("opening sealed segment"))?;
    let file = Rc::new(file);
    let evicted = CACHE.with(|c| {
        let mut c = c.borrow_mut();
        let limit = c.limit();
        let gone = c.insert(key, file.clone(), limit);
        c.publish();
        gone
    });
    // Dropped outside the borrow: glommio queues an asynchronous close.
    drop(evicted);
    Ok(file)
}

/// Forget one segment's descriptor (retention deleted it).
pub(super) fn forget(log_id: u64, base: Offset) {
    let removed = CACHE.with(|c| {
        let mut c = c.borrow_mut();
        let removed = c.remove((log_id, base.0));
        c.publish();
        removed
    });
    drop(removed);
}

/// Forget every descriptor of a log (it is closing or being deleted).
pub(super) fn forget_log(log_id: u64) {
    let removed: Vec<Rc<DmaFile>> = CACHE.with(|c| {
        let mut c = c.borrow_mut();
        let keys: Vec<Key> = c.files.keys().filter(|k| k.0 == log_id).copied().collect();
        let removed = keys.into_iter().filter_map(|k| c.remove(k)).collect();
        c.publish();
        removed
    });
    drop(removed);
}

/// This thread's limit from now on (tests: the static is shared by parallel tests).
#[cfg(test)]
pub(super) fn set_limit_for_this_thread(limit: usize) {
    CACHE.with(|c| c.borrow_mut().limit = Some(limit.max(1)));
}

impl FileCache {
    /// The shard's gauges (`weir_open_segment_files`).
    fn publish(&self) {
        let (open, limit) = (self.files.len(), self.limit());
        crate::metrics::with(|m| m.segment_files(open, limit));
    }

    fn limit(&self) -> usize {
        #[cfg(test)]
        if let Some(limit) = self.limit {
            return limit;
        }
        limit_per_shard()
    }

    fn touch(&mut self, key: Key) -> Option<Rc<DmaFile>> {
        self.clock += 1;
        let clock = self.clock;
        let (file, used) = self.files.get_mut(&key)?;
        self.order.remove(used);
        *used = clock;
        self.order.insert(clock, key);
        Some(file.clone())
    }

    /// Insert and return what had to go (the replaced entry and the evicted ones).
    fn insert(&mut self, key: Key, file: Rc<DmaFile>, limit: usize) -> Vec<Rc<DmaFile>> {
        let mut gone: Vec<Rc<DmaFile>> = self.remove(key).into_iter().collect();
        while self.files.len() >= limit {
            let Some((_, oldest)) = self.order.pop_first() else {
                break;
            };
            gone.extend(self.files.remove(&oldest).map(|(f, _)| f));
        }
        self.clock += 1;
        self.order.insert(self.clock, key);
        self.files.insert(key, (file, self.clock));
        gone
    }

    fn remove(&mut self, key: Key) -> Option<Rc<DmaFile>> {
        let (file, used) = self.files.remove(&key)?;
        self.order.remove(&used);
        Some(file)
    }
}
