//! The durable transaction log of one shard: `transactions.log` in the shard's
//! directory, appended one write + fdatasync at a time, replayed on open (torn
//! tail truncated) and compacted (the live ids rewritten to a temp file, synced,
//! renamed over the log, directory synced) when it grew past a bound. Owned by
//! one shard's `TxnCoordinator`. Invariant: `append` returns Ok only once its
//! records are durable; after a failed write the store refuses all writes.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use glommio::io::{BufferedFile, Directory, OpenOptions};
use glommio::sync::Semaphore;

use super::record::{encode_record, scan, TxnRecord, FILE_MAGIC};
use super::state::TxnMetadata;

pub const FILE_NAME: &str = "transactions.log";
const COMPACT_FILE_NAME: &str = "transactions.log.compact";

#[derive(Debug, thiserror::Error)]
pub enum TxnStoreError {
    #[error("transaction log I/O failed: {context}: {source}")]
    Io {
        context: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("transaction log {path}: {reason}")]
    Corrupt { path: PathBuf, reason: String },
    #[error("transaction log failed earlier and refuses writes until restart")]
    Failed,
}

fn glommio_io(context: &'static str, e: glommio::GlommioError<()>) -> TxnStoreError {
    TxnStoreError::Io {
        context,
        source: e.into(),
    }
}

pub struct TxnStore {
    dir: PathBuf,
    file: RefCell<Option<Rc<BufferedFile>>>,
    position: Cell<u64>,
    compact_at: Cell<u64>,
    compact_min: u64,
    /// One write + fdatasync at a time, so positions never overlap.
    lock: Semaphore,
    failed: Cell<bool>,
}

impl TxnStore {
    /// Opens (or creates) `dir/transactions.log`, replays it and truncates a torn
    /// tail; rewrites it when most records are superseded. Start-up only: blocking
    /// std calls before the shard serves.
    pub async fn open(
        dir: &Path,
        compact_min: u64,
    ) -> Result<(Rc<Self>, HashMap<String, TxnMetadata>), TxnStoreError> {
        let io = |context| move |source| TxnStoreError::Io { context, source };
        std::fs::create_dir_all(dir).map_err(io("creating the transactions directory"))?;
        let path = dir.join(FILE_NAME);
        let _ = std::fs::remove_file(dir.join(COMPACT_FILE_NAME));
        let image = match std::fs::read(&path) {
            Ok(image) => image,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(io("reading the transaction log")(e)),
        };
        let scanned = scan(&image).map_err(|reason| TxnStoreError::Corrupt {
            path: path.clone(),
            reason,
        })?;
        if scanned.torn {
            tracing::warn!(path = %path.display(), valid_bytes = scanned.valid_bytes, "truncating torn tail");
        }
        // Superseded records dominate (each state change rewrites the whole id):
        // start from a snapshot of the live ids.
        let rewrite = scanned.valid_bytes == 0 || scanned.records > 2 * scanned.txns.len() + 64;
        let length = if rewrite {
            let image = snapshot(&scanned.txns);
            let temp = dir.join(COMPACT_FILE_NAME);
            std::fs::write(&temp, &image).map_err(io("writing the compacted log"))?;
            std::fs::File::open(&temp)
                .and_then(|f| f.sync_all())
                .map_err(io("syncing the compacted log"))?;
            std::fs::rename(&temp, &path).map_err(io("renaming the compacted log"))?;
            image.len() as u64
        } else {
            let f = std::fs::OpenOptions::new()
                .write(true)
                .open(&path)
                .map_err(io("opening for truncate"))?;
            f.set_len(scanned.valid_bytes as u64)
                .map_err(io("truncating the torn tail"))?;
            f.sync_all().map_err(io("syncing the truncation"))?;
            scanned.valid_bytes as u64
        };
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io("syncing the transactions directory"))?;
        let file = open_for_append(&path).await?;
        let store = Rc::new(Self {
            dir: dir.to_path_buf(),
            file: RefCell::new(Some(Rc::new(file))),
            position: Cell::new(length),
            compact_at: Cell::new(compact_min.max(2 * length)),
            compact_min,
            lock: Semaphore::new(1),
            failed: Cell::new(false),
        });
        Ok((store, scanned.txns))
    }

    pub fn file_bytes(&self) -> u64 {
        self.position.get()
    }

    /// Whether the log grew past its bound: the caller then hands `compact` the live ids.
    pub fn wants_compaction(&self) -> bool {
        self.position.get() >= self.compact_at.get()
    }

    /// Append `records` and return once they are fdatasync'd.
    pub async fn append(&self, records: &[TxnRecord]) -> Result<(), TxnStoreError> {
        let _turn = self
            .lock
            .acquire_permit(1)
            .await
            .map_err(|_| TxnStoreError::Failed)?;
        if self.failed.get() {
            return Err(TxnStoreError::Failed);
        }
        let mut bytes = Vec::new();
        records.iter().for_each(|r| encode_record(r, &mut bytes));
        let result = self.write_durably(bytes).await;
        if let Err(e) = &result {
            tracing::error!(error = %e, "transaction log write failed; refusing further writes");
            self.failed.set(true);
        }
        result
    }

    async fn write_durably(&self, bytes: Vec<u8>) -> Result<(), TxnStoreError> {
        let file = self.file.borrow().clone().ok_or(TxnStoreError::Failed)?;
        let len = bytes.len() as u64;
        write_all(&file, bytes, self.position.get()).await?;
        file.fdatasync()
            .await
            .map_err(|e| glommio_io("fdatasync of the transaction log", e))?;
        self.position.set(self.position.get() + len);
        Ok(())
    }

    /// Rewrite the log as `live` (the coordinator's current ids), atomically.
    pub async fn compact(&self, live: &HashMap<String, TxnMetadata>) -> Result<(), TxnStoreError> {
        let _turn = self
            .lock
            .acquire_permit(1)
            .await
            .map_err(|_| TxnStoreError::Failed)?;
        let image = snapshot(live);
        let length = image.len() as u64;
        let temp_path = self.dir.join(COMPACT_FILE_NAME);
        let mut temp = BufferedFile::create(&temp_path)
            .await
            .map_err(|e| glommio_io("creating the compact file", e))?;
        write_all(&temp, image, 0).await?;
        temp.fdatasync()
            .await
            .map_err(|e| glommio_io("fdatasync of the compact file", e))?;
        temp.rename(self.dir.join(FILE_NAME))
            .await
            .map_err(|e| glommio_io("renaming the compact file", e))?;
        let dir = Directory::open(&self.dir)
            .await
            .map_err(|e| glommio_io("opening the transactions dir", e))?;
        dir.sync()
            .await
            .map_err(|e| glommio_io("syncing the transactions dir", e))?;
        let _ = dir.close().await;
        let _ = temp.close().await;
        let file = open_for_append(&self.dir.join(FILE_NAME)).await?;
        if let Some(old) = self.file.replace(Some(Rc::new(file))) {
            if let Ok(old) = Rc::try_unwrap(old) {
                let _ = old.close().await;
            }
        }
        self.position.set(length);
        self.compact_at.set(self.compact_min.max(2 * length));
        Ok(())
    }

    pub async fn close(&self) {
        let _turn = self.lock.acquire_permit(1).await;
        if let Some(file) = self.file.replace(None) {
            if let Ok(file) = Rc::try_unwrap(file) {
                let _ = file.close().await;
            }
        }
    }
}

/// The file image holding exactly `live`.
pub fn snapshot(live: &HashMap<String, TxnMetadata>) -> Vec<u8> {
    let mut image = FILE_MAGIC.to_vec();
    for (txn_id, meta) in live {
        let record = TxnRecord::State {
            txn_id: txn_id.clone(),
            meta: meta.clone(),
        };
        encode_record(&record, &mut image);
    }
    image
}

async fn open_for_append(path: &Path) -> Result<BufferedFile, TxnStoreError> {
    OpenOptions::new()
        .write(true)
        .buffered_open(path)
        .await
        .map_err(|e| glommio_io("opening the transaction log for append", e))
}

async fn write_all(file: &BufferedFile, bytes: Vec<u8>, position: u64) -> Result<(), TxnStoreError> {
    let mut done = 0usize;
    while done < bytes.len() {
        let n = file
            .write_at(bytes[done..].to_vec(), position + done as u64)
            .await
            .map_err(|e| glommio_io("writing the transaction log", e))?;
        if n == 0 {
            let source = std::io::Error::new(std::io::ErrorKind::WriteZero, "write_at wrote 0 bytes");
            return Err(TxnStoreError::Io {
                context: "writing the transaction log",
                source,
            });
        }
        done += n;
    }
    Ok(())
}
