//! The durable half of a shard's groups: committed offsets and group metadata in one
//! append-only file, `group-offsets.log`, plus its materialized in-memory state.
//! Owned by one shard's `GroupCoordinator`; never shared. Invariants: the in-memory state is
//! exactly what the file holds up to its durable length (records apply only after their
//! fdatasync); appends are group-committed by one detached flush task at a time; a torn tail
//! is truncated on open; compaction swaps in a snapshot atomically (temp, sync, rename, sync dir).

use std::cell::{Cell, RefCell};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::task::{Poll, Waker};

use glommio::io::{BufferedFile, Directory, OpenOptions};

pub(crate) use super::record::{encode_record, scan, StoreRecord, StoreState, FILE_MAGIC};
use super::{glommio_io, GroupError};

pub(crate) const FILE_NAME: &str = "group-offsets.log";
const COMPACT_FILE_NAME: &str = "group-offsets.log.compact";
/// Bytes handed to one write_at: bounds the buffer one flush builds.
const WRITE_CHUNK_BYTES_MAX: usize = 8 * 1024 * 1024;

// ---------------------------------------------------------------- notification

/// Wakes every waiter on each `notify_all`. Waiters are request futures, bounded by the
/// connections' in-flight limits; each wait registers its waker once.
#[derive(Default)]
pub(crate) struct Notify {
    epoch: Cell<u64>,
    wakers: RefCell<Vec<Waker>>,
}

impl Notify {
    pub fn notify_all(&self) {
        self.epoch.set(self.epoch.get() + 1);
        let wakers = std::mem::take(&mut *self.wakers.borrow_mut());
        wakers.into_iter().for_each(Waker::wake);
    }

    pub async fn wait(&self) {
        let start = self.epoch.get();
        // A glommio task keeps one waker, so registering once per wait is enough; scanning the
        // list for duplicates instead would cost O(waiters) per registration.
        let mut registered = false;
        std::future::poll_fn(|cx| {
            if self.epoch.get() != start {
                return Poll::Ready(());
            }
            if !registered {
                self.wakers.borrow_mut().push(cx.waker().clone());
                registered = true;
            }
            Poll::Pending
        })
        .await
    }
}

// ---------------------------------------------------------------- the store

#[derive(Default)]
struct Pending {
    bytes: Vec<u8>,
    records: Vec<StoreRecord>,
}

pub(crate) struct OffsetStore {
    dir: PathBuf,
    state: RefCell<StoreState>,
    file: RefCell<Option<Rc<BufferedFile>>>,
    position_bytes: Cell<u64>,
    compact_at_bytes: Cell<u64>,
    compact_bytes_min: u64,
    pending: RefCell<Pending>,
    /// The batch now accumulating in `pending`; batches below it are flushing or durable.
    accumulating_batch: Cell<u64>,
    durable_batch: Cell<u64>,
    flushing: Cell<bool>,
    failed: Cell<bool>,
    closed: Cell<bool>,
    notify: Notify,
    compactions: Cell<u64>,
    flushes: Cell<u64>,
}

impl OffsetStore {
    /// Opens (or creates) `dir/group-offsets.log`, replays it and truncates a torn tail.
    /// Start-up only: reads, truncates and syncs with blocking std::fs calls before serving.
    pub async fn open(dir: &Path, compact_bytes_min: u64) -> Result<Rc<Self>, GroupError> {
        let io = |context| move |source| GroupError::Io { context, source };
        std::fs::create_dir_all(dir).map_err(io("creating the groups directory"))?;
        let path = dir.join(FILE_NAME);
        // A compaction that crashed before its rename left only garbage in the temp file.
        let _ = std::fs::remove_file(dir.join(COMPACT_FILE_NAME));
        let image = match std::fs::read(&path) {
            Ok(image) => image,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(io("reading the offsets file")(e)),
        };
        let scan = scan(&image, &path)?;
        let mut valid_bytes = scan.valid_bytes as u64;
        // A missing or empty file is new, not torn: do not warn about it.
        let fresh = image.is_empty();
        if valid_bytes == 0 {
            std::fs::write(&path, FILE_MAGIC).map_err(io("creating the offsets file"))?;
            valid_bytes = FILE_MAGIC.len() as u64;
        }
        if scan.torn || (!fresh && valid_bytes as usize != image.len()) {
            tracing::warn!(path = %path.display(), valid_bytes, file_bytes = image.len(), "truncating torn tail");
        }
        let std_file = std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .map_err(io("opening for truncate"))?;
        std_file
            .set_len(valid_bytes)
            .map_err(io("truncating the torn tail"))?;
        std_file.sync_all().map_err(io("syncing the truncation"))?;
        sync_dir_blocking(dir).map_err(io("syncing the groups directory"))?;
        let file = open_for_append(&path).await?;
        Ok(Rc::new(Self {
            dir: dir.to_path_buf(),
            state: RefCell::new(scan.state),
            file: RefCell::new(Some(Rc::new(file))),
            position_bytes: Cell::new(valid_bytes),
            compact_at_bytes: Cell::new(compact_bytes_min.max(2 * valid_bytes)),
            compact_bytes_min,
            pending: RefCell::new(Pending::default()),
            accumulating_batch: Cell::new(1),
            durable_batch: Cell::new(0),
            flushing: Cell::new(false),
            failed: Cell::new(false),
            closed: Cell::new(false),
            notify: Notify::default(),
            compactions: Cell::new(0),
            flushes: Cell::new(0),
        }))
    }

    pub fn state(&self) -> std::cell::Ref<'_, StoreState> {
        self.state.borrow()
    }

    pub fn file_bytes(&self) -> u64 {
        self.position_bytes.get()
    }

    pub fn compactions(&self) -> u64 {
        self.compactions.get()
    }

    /// fdatasync calls of appends since open: fewer than appends when group commit works.
    pub fn flushes(&self) -> u64 {
        self.flushes.get()
    }

    /// Queues records and starts a flush if none runs; returns the batch that will hold them.
    pub fn append_nowait(self: &Rc<Self>, records: Vec<StoreRecord>) -> Result<u64, GroupError> {
        if self.failed.get() {
            return Err(GroupError::StoreFailed);
        }
        if self.closed.get() {
            return Err(GroupError::Closed);
        }
        {
            let mut pending = self.pending.borrow_mut();
            for record in &records {
                encode_record(record, &mut pending.bytes);
            }
            pending.records.extend(records);
        }
        // Read before spawning: the id must be the batch these records are in.
        let batch = self.accumulating_batch.get();
        if !self.flushing.get() {
            self.flushing.set(true);
            // Detached so a cancelled request cannot stop a flush half way.
            glommio::spawn_local(Rc::clone(self).flush_loop()).detach();
        }
        Ok(batch)
    }

    /// Queues records and resolves once they are fdatasync'd and applied to the state.
    pub async fn append(self: &Rc<Self>, records: Vec<StoreRecord>) -> Result<(), GroupError> {
        let batch = self.append_nowait(records)?;
        loop {
            if self.durable_batch.get() >= batch {
                return Ok(());
            }
            if self.failed.get() {
                return Err(GroupError::StoreFailed);
            }
            self.notify.wait().await;
        }
    }

    async fn flush_loop(self: Rc<Self>) {
        loop {
            let (bytes, records) = {
                let mut pending = self.pending.borrow_mut();
                (
                    std::mem::take(&mut pending.bytes),
                    std::mem::take(&mut pending.records),
                )
            };
            if records.is_empty() {
                break;
            }
            let batch = self.accumulating_batch.get();
            self.accumulating_batch.set(batch + 1);
            let result = self.write_durably(bytes).await;
            let result = match result {
                Ok(()) => {
                    {
                        let mut state = self.state.borrow_mut();
                        records.into_iter().for_each(|r| state.apply(r));
                    }
                    self.durable_batch.set(batch);
                    self.maybe_compact().await
                }
                Err(e) => Err(e),
            };
            if let Err(e) = result {
                tracing::error!(error = %e, "group offsets store failed; refusing further writes");
                self.failed.set(true);
                self.pending.replace(Pending::default());
                break;
            }
            self.notify.notify_all();
        }
        self.flushing.set(false);
        self.notify.notify_all();
    }

    async fn write_durably(&self, bytes: Vec<u8>) -> Result<(), GroupError> {
        let file = self.file.borrow().clone().ok_or(GroupError::Closed)?;
        let written = write_all(&file, bytes, self.position_bytes.get()).await?;
        file.fdatasync()
            .await
            .map_err(|e| glommio_io("fdatasync of the offsets file", e))?;
        self.position_bytes.set(self.position_bytes.get() + written);
        self.flushes.set(self.flushes.get() + 1);
        Ok(())
    }

    /// Rewrites the live state into a fresh file once the log has grown past the bound.
    async fn maybe_compact(&self) -> Result<(), GroupError> {
        if self.position_bytes.get() < self.compact_at_bytes.get() {
            return Ok(());
        }
        let mut image = FILE_MAGIC.to_vec();
        for record in self.state.borrow().snapshot_records() {
            encode_record(&record, &mut image);
        }
        let image_bytes = image.len() as u64;
        let temp_path = self.dir.join(COMPACT_FILE_NAME);
        let mut temp = BufferedFile::create(&temp_path)
            .await
            .map_err(|e| glommio_io("creating compact file", e))?;
        write_all(&temp, image, 0).await?;
        temp.fdatasync()
            .await
            .map_err(|e| glommio_io("fdatasync of the compact file", e))?;
        temp.rename(self.dir.join(FILE_NAME))
            .await
            .map_err(|e| glommio_io("renaming the compact file", e))?;
        let dir = Directory::open(&self.dir)
            .await
            .map_err(|e| glommio_io("opening the groups dir", e))?;
        dir.sync()
            .await
            .map_err(|e| glommio_io("syncing the groups dir", e))?;
        let _ = dir.close().await;
        let _ = temp.close().await;
        let file = open_for_append(&self.dir.join(FILE_NAME)).await?;
        if let Some(old) = self.file.replace(Some(Rc::new(file))) {
            if let Ok(old) = Rc::try_unwrap(old) {
                let _ = old.close().await;
            }
        }
        self.position_bytes.set(image_bytes);
        self.compact_at_bytes
            .set(self.compact_bytes_min.max(2 * image_bytes));
        self.compactions.set(self.compactions.get() + 1);
        Ok(())
    }

    /// Waits for queued records to become durable, then closes the file; later appends fail.
    pub async fn close(&self) -> Result<(), GroupError> {
        self.closed.set(true);
        while self.flushing.get() {
            self.notify.wait().await;
        }
        if let Some(file) = self.file.replace(None) {
            if let Ok(file) = Rc::try_unwrap(file) {
                file.close()
                    .await
                    .map_err(|e| glommio_io("closing the offsets file", e))?;
            }
        }
        if self.failed.get() {
            return Err(GroupError::StoreFailed);
        }
        Ok(())
    }
}

async fn open_for_append(path: &Path) -> Result<BufferedFile, GroupError> {
    OpenOptions::new()
        .write(true)
        .buffered_open(path)
        .await
        .map_err(|e| glommio_io("opening the offsets file for append", e))
}

/// Writes all of `bytes` at `position`, in bounded chunks, retrying short writes.
async fn write_all(file: &BufferedFile, bytes: Vec<u8>, position: u64) -> Result<u64, GroupError> {
    let total = bytes.len() as u64;
    let mut done = 0usize;
    while done < bytes.len() {
        let end = bytes.len().min(done + WRITE_CHUNK_BYTES_MAX);
        let chunk = bytes[done..end].to_vec();
        let n = file
            .write_at(chunk, position + done as u64)
            .await
            .map_err(|e| glommio_io("writing the offsets file", e))?;
        if n == 0 {
            let source = std::io::Error::new(std::io::ErrorKind::WriteZero, "write_at wrote 0 bytes");
            return Err(GroupError::Io {
                context: "writing the offsets file",
                source,
            });
        }
        done += n;
    }
    Ok(total)
}

/// Start-up only (blocking): makes a created or truncated file's directory entry durable.
fn sync_dir_blocking(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}
