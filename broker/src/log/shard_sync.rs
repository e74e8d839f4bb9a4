//! The shard-wide interval sync: one `syncfs(2)` per filesystem each time the oldest
//! unsynced write on the shard reaches its topic's `flush.ms`, instead of one fdatasync
//! per written partition (with 10,000 quiet partitions that was 10,000 fdatasyncs a
//! second, each handed to an io-wq worker: docs/benchmarks.md, "10,000 partitions").
//!
//! Owns each shard's list of partitions holding written-but-not-durable data under
//! the interval policy, and the task that syncs them. One `Syncer` per executor thread
//! (shard): only that shard's appenders register and only its task syncs, so all of it
//! is `Rc`/`Cell`. Acks=all (`wait_durable`), `flush.messages=1` and the 64 MiB byte
//! bound keep the appender's own group-commit fdatasync (`appender.rs`), which restarts
//! the partition's flush.ms clock here (`own_sync_done`).
//!
//! Invariants: a partition is listed at most once (`Slot::registered`), so the list
//! is bounded by the shard's partitions; a partition's durable offset advances only to
//! the `written_end_offset` read right before its syncfs was handed to the blocking
//! pool, i.e. to writes whose completion the appender had already seen; one syncfs
//! round at a time per shard; a failed syncfs (or a partition whose filesystem cannot
//! be found) stops the appender of every partition it was to cover with the error, as
//! a failed fdatasync does, and the partition is fenced. syncfs runs on glommio's
//! blocking pool, never on the executor thread (there is no io_uring syncfs); that
//! pool (8 threads per shard, `server.rs`) is shared with recovery and snapshot
//! writes, so a slow syncfs takes one of its threads, never the executor.
//!
//! Why syncfs covers what fdatasync did, on ext4 (fs/sync.c, fs/ext4/super.c): the
//! segment data went to the device by O_DIRECT writes that completed; what those
//! writes changed besides the data (the file size of an extending write, the
//! allocation, unwritten-extent conversion) is logged in the running jbd2 transaction
//! by the time the write completes. `syncfs` runs `sync_filesystem`, which calls
//! `ext4_sync_fs(sb, wait=1)`: it commits the running transaction and waits for the
//! commit, whose commit block goes with a cache flush (or, when no commit sends one, it
//! issues `blkdev_issue_flush` itself). Since Linux 5.8 syncfs also returns writeback
//! errors of the filesystem (`sb->s_wb_err`). The cost: it also writes back any other
//! dirty data on that filesystem (a dedicated data filesystem avoids that).

use std::cell::{Cell, RefCell};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;
use std::rc::{Rc, Weak};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_lite::future;

use super::partition::Shared;
use super::wait::WaitList;
use super::{Offset, Position};

/// Longer flush intervals mean "never" (Kafka's unlimited flush.ms is `Long.MAX_VALUE`).
const INTERVAL_MS_MAX: u64 = 365 * 24 * 60 * 60 * 1000;

/// A partition's part in the shard-wide sync (a field of `Shared`).
#[derive(Default)]
pub(crate) struct Slot {
    /// In the shard's list (cleared when a round takes it).
    registered: Cell<bool>,
    /// When its oldest write not yet synced reaches flush.ms; `None` once synced (by
    /// a round or by the partition's own fdatasync), until the next write completes.
    due: Cell<Option<Instant>>,
    /// Filesystem (`st_dev`) of the partition directory, learned on its first round.
    dev: Cell<Option<u64>>,
    /// Where the last whole batch written ends: (segment base, position after it).
    batch_end: Cell<Option<(Offset, Position)>>,
    /// Set after a syncfs covered the partition up to there (same form as
    /// `batch_end`); the appender takes it to checkpoint the segment's indexes.
    synced_to: Cell<Option<(Offset, Position)>>,
    /// A syncfs that was to cover this partition failed; the appender stops with it.
    failure: RefCell<Option<std::io::Error>>,
}

impl Slot {
    /// The appender saw a write complete that ends the batch ending at `end`.
    pub(crate) fn batch_written(&self, segment_base: Offset, end: Position) {
        self.batch_end.set(Some((segment_base, end)));
    }

    /// A shard sync made the partition durable up to here since the last call.
    pub(crate) fn take_synced(&self) -> Option<(Offset, Position)> {
        self.synced_to.take()
    }

    pub(crate) fn take_failure(&self) -> Option<std::io::Error> {
        self.failure.borrow_mut().take()
    }

    /// Something for the appender to act on (its wait condition).
    pub(crate) fn has_news(&self) -> bool {
        self.synced_to.get().is_some() || self.failure.borrow().is_some()
    }
}

struct Syncer {
    executor: usize,
    /// Partitions with unsynced writes; dropped ones are skipped.
    dirty: RefCell<Vec<Weak<Shared>>>,
    /// When the oldest write in `dirty` reaches its flush.ms, if any is listed.
    next_due: Cell<Option<Instant>>,
    wake: WaitList,
    /// An open directory on each filesystem seen: syncfs needs an fd there, and a
    /// held fd keeps working when its partition is deleted. Bounded by the number of
    /// filesystems holding data directories.
    fds: RefCell<Vec<(u64, Arc<OwnedFd>)>>,
}

thread_local! {
    static SYNCER: RefCell<Option<Rc<Syncer>>> = const { RefCell::new(None) };
}

/// This shard's syncer, started on first use. Tests run executors one after another
/// on one thread: a syncer left from an earlier executor (its task gone) is replaced.
fn syncer() -> Rc<Syncer> {
    let executor = glommio::executor().id();
    let current = SYNCER.with(|slot| slot.borrow().clone());
    if let Some(syncer) = current.filter(|s| s.executor == executor) {
        return syncer;
    }
    let syncer = Rc::new(Syncer {
        executor,
        dirty: RefCell::new(Vec::new()),
        next_due: Cell::new(None),
        wake: WaitList::default(),
        fds: RefCell::new(Vec::new()),
    });
    SYNCER.with(|slot| *slot.borrow_mut() = Some(syncer.clone()));
    // After the borrow ends: glommio may run a spawned task right away.
    glommio::spawn_local(run(syncer.clone())).detach();
    syncer
}

/// The partition has written data that is not durable; sync it within `interval_ms`.
/// Called by its appender when a write completes; costs two `Cell` reads when listed
/// with a clock running. Listed but synced by its own fdatasync (`due` cleared): the
/// clock starts again here, or this write would wait for somebody else's round.
pub(crate) fn register(shared: &Rc<Shared>, interval_ms: u64) {
    let slot = &shared.shard_sync;
    if slot.registered.get() && slot.due.get().is_some() {
        return;
    }
    // flush.ms "unlimited" (or beyond a year): no interval sync wanted, and no timer
    // that far out.
    if interval_ms > INTERVAL_MS_MAX {
        return;
    }
    let syncer = syncer();
    if !slot.registered.replace(true) {
        syncer.dirty.borrow_mut().push(Rc::downgrade(shared));
    }
    if slot.due.get().is_none() {
        let due = Instant::now() + Duration::from_millis(interval_ms);
        slot.due.set(Some(due));
        if syncer.next_due.get().is_none_or(|next| due < next) {
            syncer.next_due.set(Some(due));
            syncer.wake.notify_all();
        }
    }
}

/// The partition's own fdatasync (started at `started`) covered what it had written:
/// restart its flush.ms clock, as the per-partition timer did, so a partition that
/// syncs every 64 MiB on its own does not also cost a syncfs every flush.ms.
pub(crate) fn own_sync_done(shared: &Shared, started: Instant, interval_ms: Option<u64>) {
    let slot = &shared.shard_sync;
    if slot.due.get().is_none() {
        return; // nothing listed as unsynced
    }
    let unsynced = {
        let st = shared.state.borrow();
        st.written_end_offset > st.durable_end_offset
    };
    // Writes completed after `started` are at most as old as it.
    let due = match interval_ms {
        Some(ms) if unsynced && ms <= INTERVAL_MS_MAX => Some(started + Duration::from_millis(ms)),
        _ => None,
    };
    slot.due.set(due);
}

/// The earliest flush.ms deadline among the listed partitions.
fn earliest_due(syncer: &Syncer) -> Option<Instant> {
    let dirty = syncer.dirty.borrow();
    dirty
        .iter()
        .filter_map(|entry| entry.upgrade().and_then(|shared| shared.shard_sync.due.get()))
        .min()
}

async fn run(syncer: Rc<Syncer>) {
    loop {
        let Some(due) = syncer.next_due.get() else {
            syncer.wake.wait_until(|| syncer.next_due.get().is_some()).await;
            continue;
        };
        let now = Instant::now();
        if due > now {
            // Woken early when a partition with a shorter flush.ms registers.
            let changed = syncer.wake.wait_until(|| syncer.next_due.get() != Some(due));
            future::or(changed, glommio::timer::sleep(due - now)).await;
            continue;
        }
        // `next_due` is a hint: an own fdatasync may have restarted a clock since.
        match earliest_due(&syncer) {
            Some(due) if due <= now => round(&syncer).await,
            later => syncer.next_due.set(later),
        }
    }
}

/// What one partition is to get from this round.
struct Target {
    shared: Rc<Shared>,
    written: Offset,
    batch_end: Option<(Offset, Position)>,
}

/// Sync every listed partition, due or not (one syncfs costs the same for all).
async fn round(syncer: &Syncer) {
    let targets = take_targets(syncer);
    if targets.is_empty() {
        return;
    }
    let unknown: Vec<PathBuf> = targets
        .iter()
        .filter(|t| t.shared.shard_sync.dev.get().is_none())
        .map(|t| t.shared.dir.clone())
        .collect();
    let mut devs: Vec<u64> = targets
        .iter()
        .filter_map(|t| t.shared.shard_sync.dev.get())
        .collect();
    devs.sort_unstable();
    devs.dedup();
    let known = syncer.fds.borrow().clone();
    let started = Instant::now();
    let done = glommio::executor()
        .spawn_blocking(move || sync_filesystems(unknown, devs, known))
        .await;
    let micros = started.elapsed().as_micros() as u64;
    crate::metrics::with(|m| {
        for _ in 0..done.synced.len() {
            m.fs_synced(micros);
        }
    });
    syncer
        .fds
        .borrow_mut()
        .extend(done.opened.into_iter().map(|(dev, fd)| (dev, Arc::new(fd))));
    let mut found = done.found.into_iter();
    for target in targets {
        let slot = &target.shared.shard_sync;
        let dev = match slot.dev.get() {
            Some(dev) => Ok(dev),
            None => found.next().expect("one answer per unknown directory"),
        };
        let outcome = dev.and_then(|dev| {
            slot.dev.set(Some(dev));
            match done.synced.iter().find(|(d, _)| *d == dev) {
                Some((_, Ok(()))) => Ok(()),
                Some((_, Err(e))) => Err(std::io::Error::new(e.kind(), format!("syncfs: {e}"))),
                None => Err(std::io::Error::other(
                    "syncfs: no directory open on the filesystem",
                )),
            }
        });
        apply(&target, outcome);
    }
}

/// Empty the list and read what each partition had written, in one synchronous step
/// before the syncfs starts: writes completing from here on register again.
fn take_targets(syncer: &Syncer) -> Vec<Target> {
    let entries = std::mem::take(&mut *syncer.dirty.borrow_mut());
    syncer.next_due.set(None);
    let mut targets = Vec::with_capacity(entries.len());
    for entry in entries {
        let Some(shared) = entry.upgrade() else {
            continue; // dropped: closed (and synced by its close) long ago
        };
        shared.shard_sync.registered.set(false);
        shared.shard_sync.due.set(None);
        let written = {
            let st = shared.state.borrow();
            let idle = st.written_end_offset <= st.durable_end_offset;
            if st.closing || st.closed || st.failure.is_some() || idle {
                continue; // close syncs on its own; a failed writer is fenced
            }
            st.written_end_offset
        };
        let batch_end = shared.shard_sync.batch_end.get();
        targets.push(Target {
            shared,
            written,
            batch_end,
        });
    }
    targets
}

fn apply(target: &Target, outcome: std::io::Result<()>) {
    let shared = &target.shared;
    let slot = &shared.shard_sync;
    match outcome {
        Ok(()) => {
            let mut st = shared.state.borrow_mut();
            st.durable_end_offset = st.durable_end_offset.max(target.written);
            drop(st);
            // Only a batch boundary at or below the synced offset may be checkpointed;
            // `batch_end` was read with `written`, so it is that boundary.
            slot.synced_to.set(target.batch_end);
            shared.progress.notify_all();
        }
        Err(error) => {
            let st = shared.state.borrow();
            if st.closing || st.closed {
                return; // its close syncs (and reports) on its own
            }
            drop(st);
            *slot.failure.borrow_mut() = Some(error);
        }
    }
    shared.writer_wake.notify_all();
}

struct Done {
    /// `st_dev` of each unknown directory, in order.
    found: Vec<std::io::Result<u64>>,
    /// Directories opened on filesystems not seen before.
    opened: Vec<(u64, OwnedFd)>,
    /// One syncfs result per filesystem.
    synced: Vec<(u64, std::io::Result<()>)>,
}

/// On the blocking pool: learn the filesystems of new partition directories, then one
/// syncfs per filesystem in `devs` or theirs. `known`: the fds held so far.
fn sync_filesystems(unknown: Vec<PathBuf>, mut devs: Vec<u64>, known: Vec<(u64, Arc<OwnedFd>)>) -> Done {
    use std::os::unix::fs::MetadataExt;
    let mut opened: Vec<(u64, OwnedFd)> = Vec::new();
    let mut found = Vec::with_capacity(unknown.len());
    for dir in &unknown {
        let dev = std::fs::metadata(dir).map(|m| m.dev());
        if let Ok(dev) = dev {
            let seen = known.iter().any(|(d, _)| *d == dev) || opened.iter().any(|(d, _)| *d == dev);
            if !seen {
                // A directory opens read-only; its fd names the filesystem for syncfs.
                match std::fs::File::open(dir) {
                    Ok(file) => opened.push((dev, file.into())),
                    Err(error) => {
                        found.push(Err(error));
                        continue;
                    }
                }
            }
        }
        found.push(dev);
    }
    devs.extend(found.iter().filter_map(|dev| dev.as_ref().ok().copied()));
    devs.sort_unstable();
    devs.dedup();
    let fds = known
        .iter()
        .map(|(dev, fd)| (*dev, fd.as_raw_fd()))
        .chain(opened.iter().map(|(dev, fd)| (*dev, fd.as_raw_fd())))
        .filter(|(dev, _)| devs.binary_search(dev).is_ok());
    let synced = fds
        .map(|(dev, fd)| {
            // SAFETY: `fd` is an open descriptor owned by `known` or `opened`, both
            // alive until this function returns.
            let rc = unsafe { libc::syncfs(fd) };
            (
                dev,
                if rc == 0 {
                    Ok(())
                } else {
                    Err(std::io::Error::last_os_error())
                },
            )
        })
        .collect();
    Done {
        found,
        opened,
        synced,
    }
}
