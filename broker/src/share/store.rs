//! The durable half of a shard's share-partitions: one append-only file per shard,
//! `__share/shard-N/share-state.log`, of CRC'd records (format in docs/format.md).
//! Owned by that shard's `ShareState`; never shared. Invariants: a caller of `commit` is
//! answered only after its bytes are fdatasync'd (group commit: one flush task at a time
//! writes everything queued); a torn or corrupt tail is truncated on open; compaction swaps in
//! a snapshot atomically (temp, sync, rename, sync dir). Records are absolute ("offset o is in
//! state s with delivery count c"), so replaying one twice, or after a snapshot that already
//! holds it, changes nothing.

use std::cell::{Cell, RefCell};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use glommio::io::{BufferedFile, Directory, OpenOptions};

use super::partition::{Change, RecordState};
use crate::groups::store::Notify;

pub const FILE_NAME: &str = "share-state.log";
const COMPACT_FILE_NAME: &str = "share-state.log.compact";
pub const FILE_MAGIC: &[u8; 8] = b"WEIRSHS1";
/// A record larger than this is corrupt (a snapshot of a full window is ~40 KiB).
const RECORD_BYTES_MAX: usize = 4 * 1024 * 1024;

const KIND_STATES: u8 = 1;
const KIND_RESET: u8 = 2;
const KIND_FORGET: u8 = 3;
const KIND_DEAD_LETTER_FLOOR: u8 = 4;

/// Which share-partition: (group, topic, partition).
pub type Key = (String, String, i32);

/// One decoded record.
#[derive(Debug, PartialEq, Eq)]
pub enum ShareRecord {
    /// The SPSO was at least `spso`, and these records have these states.
    States {
        key: Key,
        spso: i64,
        changes: Vec<Change>,
    },
    /// An admin reset: the window starts over at `spso`.
    Reset { key: Key, spso: i64 },
    /// The share-partition is gone (topic deleted, offsets deleted).
    Forget { key: Key },
    /// Copies of the open dead-letter moves are at or past `floor` in the dead-letter
    /// partition (-1: no move open).
    DeadLetterFloor { key: Key, floor: i64 },
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    let len = s.len().min(u16::MAX as usize);
    out.extend_from_slice(&(len as u16).to_be_bytes());
    out.extend_from_slice(&s.as_bytes()[..len]);
}

fn put_key(out: &mut Vec<u8>, key: &Key) {
    put_str(out, &key.0);
    put_str(out, &key.1);
    out.extend_from_slice(&key.2.to_be_bytes());
}

/// Appends one framed record: u32 payload length, u32 CRC-32C of the payload, payload.
pub fn encode(record: &ShareRecord, out: &mut Vec<u8>) {
    let mut p = Vec::with_capacity(64);
    match record {
        ShareRecord::States { key, spso, changes } => {
            p.push(KIND_STATES);
            put_key(&mut p, key);
            p.extend_from_slice(&spso.to_be_bytes());
            let runs = runs(changes);
            p.extend_from_slice(&(runs.len() as u32).to_be_bytes());
            for (first, last, state, count) in runs {
                p.extend_from_slice(&first.to_be_bytes());
                p.extend_from_slice(&last.to_be_bytes());
                p.push(state as u8);
                p.extend_from_slice(&count.to_be_bytes());
            }
        }
        ShareRecord::Reset { key, spso } => {
            p.push(KIND_RESET);
            put_key(&mut p, key);
            p.extend_from_slice(&spso.to_be_bytes());
        }
        ShareRecord::Forget { key } => {
            p.push(KIND_FORGET);
            put_key(&mut p, key);
        }
        ShareRecord::DeadLetterFloor { key, floor } => {
            p.push(KIND_DEAD_LETTER_FLOOR);
            put_key(&mut p, key);
            p.extend_from_slice(&floor.to_be_bytes());
        }
    }
    out.extend_from_slice(&(p.len() as u32).to_be_bytes());
    out.extend_from_slice(&crc32c::crc32c(&p).to_be_bytes());
    out.extend_from_slice(&p);
}

/// Consecutive offsets with one state and delivery count, as (first, last, state, count).
fn runs(changes: &[Change]) -> Vec<(i64, i64, RecordState, u16)> {
    let mut sorted: Vec<Change> = changes.to_vec();
    sorted.sort_by_key(|c| c.0);
    let mut out: Vec<(i64, i64, RecordState, u16)> = Vec::new();
    for (o, s, c) in sorted {
        match out.last_mut() {
            Some(r) if r.1 == o && r.2 == s && r.3 == c => {}
            Some(r) if r.1 + 1 == o && r.2 == s && r.3 == c => r.1 = o,
            Some(r) if r.1 == o => *r = (o, o, s, c),
            _ => out.push((o, o, s, c)),
        }
    }
    out
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Option<&[u8]> {
        if self.0.len() < n {
            return None;
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Some(a)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_be_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Option<u32> {
        self.take(4).map(|b| u32::from_be_bytes(b.try_into().expect("4")))
    }
    fn i64(&mut self) -> Option<i64> {
        self.take(8).map(|b| i64::from_be_bytes(b.try_into().expect("8")))
    }
    fn string(&mut self) -> Option<String> {
        let n = self.u16()? as usize;
        String::from_utf8(self.take(n)?.to_vec()).ok()
    }
    fn key(&mut self) -> Option<Key> {
        Some((self.string()?, self.string()?, self.u32()? as i32))
    }
}

fn decode_payload(p: &[u8]) -> Option<ShareRecord> {
    let mut r = Reader(p);
    let kind = r.u8()?;
    let key = r.key()?;
    let record = match kind {
        KIND_STATES => {
            let spso = r.i64()?;
            let n = r.u32()? as usize;
            let mut changes = Vec::new();
            for _ in 0..n {
                let (first, last) = (r.i64()?, r.i64()?);
                let state = RecordState::from_u8(r.u8()?)?;
                let count = r.u16()?;
                if last < first || last - first > RECORD_BYTES_MAX as i64 {
                    return None;
                }
                changes.extend((first..=last).map(|o| (o, state, count)));
            }
            ShareRecord::States { key, spso, changes }
        }
        KIND_RESET => ShareRecord::Reset { key, spso: r.i64()? },
        KIND_FORGET => ShareRecord::Forget { key },
        KIND_DEAD_LETTER_FLOOR => ShareRecord::DeadLetterFloor { key, floor: r.i64()? },
        _ => return None,
    };
    r.0.is_empty().then_some(record)
}

/// Decodes a whole file image: the records and the length of the valid prefix (a torn or
/// corrupt tail ends the scan; everything after it is dropped).
pub fn scan(image: &[u8]) -> (Vec<ShareRecord>, usize) {
    if image.len() < FILE_MAGIC.len() || &image[..FILE_MAGIC.len()] != FILE_MAGIC {
        return (Vec::new(), 0);
    }
    let mut at = FILE_MAGIC.len();
    let mut out = Vec::new();
    while image.len() >= at + 8 {
        let len = u32::from_be_bytes(image[at..at + 4].try_into().expect("4")) as usize;
        let crc = u32::from_be_bytes(image[at + 4..at + 8].try_into().expect("4"));
        if len > RECORD_BYTES_MAX || image.len() < at + 8 + len {
            break;
        }
        let payload = &image[at + 8..at + 8 + len];
        if crc32c::crc32c(payload) != crc {
            break;
        }
        let Some(record) = decode_payload(payload) else {
            break;
        };
        out.push(record);
        at += 8 + len;
    }
    (out, at)
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("share-state file I/O failed: {0}")]
    Io(String),
    #[error("share-state store failed earlier and refuses writes until restart")]
    Failed,
}

fn gio(context: &str, e: glommio::GlommioError<()>) -> StoreError {
    StoreError::Io(format!("{context}: {e}"))
}

pub struct ShareStore {
    dir: PathBuf,
    file: RefCell<Option<Rc<BufferedFile>>>,
    position: Cell<u64>,
    pending: RefCell<Vec<u8>>,
    accumulating: Cell<u64>,
    durable: Cell<u64>,
    flushing: Cell<bool>,
    failed: Cell<bool>,
    notify: Notify,
    compact_at: Cell<u64>,
    compact_min: u64,
    syncs: Cell<u64>,
}

impl ShareStore {
    /// Opens (or creates) the file and returns its records. Start-up only: blocking std::fs.
    pub async fn open(dir: &Path, compact_min: u64) -> Result<(Rc<Self>, Vec<ShareRecord>), StoreError> {
        let io = |c: &'static str| move |e: std::io::Error| StoreError::Io(format!("{c}: {e}"));
        std::fs::create_dir_all(dir).map_err(io("creating the share directory"))?;
        let path = dir.join(FILE_NAME);
        let _ = std::fs::remove_file(dir.join(COMPACT_FILE_NAME));
        let image = match std::fs::read(&path) {
            Ok(i) => i,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(io("reading the share-state file")(e)),
        };
        let (records, mut valid) = scan(&image);
        if valid == 0 {
            std::fs::write(&path, FILE_MAGIC).map_err(io("creating the share-state file"))?;
            valid = FILE_MAGIC.len();
        } else if valid < image.len() {
            tracing::warn!(path = %path.display(), valid, file_bytes = image.len(), "share state: truncating torn tail");
        }
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .map_err(io("opening the share-state file"))?;
        f.set_len(valid as u64).map_err(io("truncating the torn tail"))?;
        f.sync_all().map_err(io("syncing the truncation"))?;
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io("syncing the share directory"))?;
        let file = open_for_append(&path).await?;
        let store = Rc::new(Self {
            dir: dir.to_path_buf(),
            file: RefCell::new(Some(Rc::new(file))),
            position: Cell::new(valid as u64),
            pending: RefCell::new(Vec::new()),
            accumulating: Cell::new(1),
            durable: Cell::new(0),
            flushing: Cell::new(false),
            failed: Cell::new(false),
            notify: Notify::default(),
            compact_at: Cell::new(compact_min.max(2 * valid as u64)),
            compact_min,
            syncs: Cell::new(0),
        });
        Ok((store, records))
    }

    /// fdatasync calls since open (fewer than commits when group commit works).
    pub fn syncs(&self) -> u64 {
        self.syncs.get()
    }

    pub fn wants_compaction(&self) -> bool {
        self.position.get() >= self.compact_at.get()
    }

    /// Queues `records`; resolves once they are on disk.
    pub async fn commit(self: &Rc<Self>, records: &[ShareRecord]) -> Result<(), StoreError> {
        match self.stage(records)? {
            Some(ticket) => self.wait(ticket).await,
            None => Ok(()),
        }
    }

    /// Queues `records` in order with every other commit, without starting a write: the
    /// next `wait` (this caller's or anyone's) writes them. The ticket to `wait` on.
    pub fn stage(&self, records: &[ShareRecord]) -> Result<Option<u64>, StoreError> {
        if self.failed.get() {
            return Err(StoreError::Failed);
        }
        if records.is_empty() {
            return Ok(None);
        }
        let mut p = self.pending.borrow_mut();
        records.iter().for_each(|r| encode(r, &mut p));
        Ok(Some(self.accumulating.get()))
    }

    /// Resolves once the records staged with `batch` are on disk.
    pub async fn wait(self: &Rc<Self>, batch: u64) -> Result<(), StoreError> {
        if !self.flushing.get() && self.durable.get() < batch {
            self.flushing.set(true);
            // Detached: a cancelled request must not stop a flush half way.
            glommio::spawn_local(Rc::clone(self).flush_loop()).detach();
        }
        loop {
            if self.durable.get() >= batch {
                return Ok(());
            }
            if self.failed.get() {
                return Err(StoreError::Failed);
            }
            self.notify.wait().await;
        }
    }

    async fn flush_loop(self: Rc<Self>) {
        loop {
            let bytes = std::mem::take(&mut *self.pending.borrow_mut());
            if bytes.is_empty() {
                break;
            }
            let batch = self.accumulating.get();
            self.accumulating.set(batch + 1);
            match self.write_durably(bytes).await {
                Ok(()) => self.durable.set(batch),
                Err(e) => {
                    tracing::error!(error = %e, "share-state store failed; refusing further writes");
                    self.failed.set(true);
                    self.pending.borrow_mut().clear();
                    break;
                }
            }
            self.notify.notify_all();
        }
        self.flushing.set(false);
        self.notify.notify_all();
    }

    async fn write_durably(&self, bytes: Vec<u8>) -> Result<(), StoreError> {
        let file = self.file.borrow().clone().ok_or(StoreError::Failed)?;
        let n = bytes.len() as u64;
        write_all(&file, bytes, self.position.get()).await?;
        file.fdatasync().await.map_err(|e| gio("fdatasync", e))?;
        self.position.set(self.position.get() + n);
        self.syncs.set(self.syncs.get() + 1);
        Ok(())
    }

    /// Replaces the file with `snapshot` (records of the whole live state). Waits for the
    /// running flush; appends queued meanwhile go to the new file after the snapshot, which
    /// is harmless because records are absolute.
    pub async fn compact(self: &Rc<Self>, snapshot: Vec<ShareRecord>) -> Result<(), StoreError> {
        while self.flushing.get() {
            self.notify.wait().await;
        }
        self.flushing.set(true);
        let result = self.compact_now(snapshot).await;
        self.flushing.set(false);
        if result.is_err() {
            self.failed.set(true);
        }
        if !self.pending.borrow().is_empty() {
            self.flushing.set(true);
            glommio::spawn_local(Rc::clone(self).flush_loop()).detach();
        }
        self.notify.notify_all();
        result
    }

    async fn compact_now(&self, snapshot: Vec<ShareRecord>) -> Result<(), StoreError> {
        let mut image = FILE_MAGIC.to_vec();
        snapshot.iter().for_each(|r| encode(r, &mut image));
        let size = image.len() as u64;
        let temp_path = self.dir.join(COMPACT_FILE_NAME);
        let mut temp = BufferedFile::create(&temp_path)
            .await
            .map_err(|e| gio("creating the compact file", e))?;
        write_all(&temp, image, 0).await?;
        temp.fdatasync().await.map_err(|e| gio("fdatasync compact", e))?;
        temp.rename(self.dir.join(FILE_NAME))
            .await
            .map_err(|e| gio("renaming the compact file", e))?;
        let dir = Directory::open(&self.dir)
            .await
            .map_err(|e| gio("opening the share dir", e))?;
        dir.sync().await.map_err(|e| gio("syncing the share dir", e))?;
        let _ = dir.close().await;
        let _ = temp.close().await;
        let file = open_for_append(&self.dir.join(FILE_NAME)).await?;
        if let Some(old) = self.file.replace(Some(Rc::new(file))) {
            if let Ok(old) = Rc::try_unwrap(old) {
                let _ = old.close().await;
            }
        }
        self.position.set(size);
        self.compact_at.set(self.compact_min.max(2 * size));
        Ok(())
    }

    /// Waits for queued records, then closes the file.
    pub async fn close(&self) {
        while self.flushing.get() {
            self.notify.wait().await;
        }
        if let Some(file) = self.file.replace(None) {
            if let Ok(file) = Rc::try_unwrap(file) {
                let _ = file.close().await;
            }
        }
    }
}

async fn open_for_append(path: &Path) -> Result<BufferedFile, StoreError> {
    OpenOptions::new()
        .write(true)
        .buffered_open(path)
        .await
        .map_err(|e| gio("opening the share-state file", e))
}

async fn write_all(file: &BufferedFile, bytes: Vec<u8>, position: u64) -> Result<(), StoreError> {
    const CHUNK: usize = 8 * 1024 * 1024;
    let mut done = 0usize;
    while done < bytes.len() {
        let end = bytes.len().min(done + CHUNK);
        let n = file
            .write_at(bytes[done..end].to_vec(), position + done as u64)
            .await
            .map_err(|e| gio("writing the share-state file", e))?;
        if n == 0 {
            return Err(StoreError::Io("write_at wrote 0 bytes".into()));
        }
        done += n;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_records_when_encoded_and_scanned_should_round_trip_and_stop_at_a_torn_tail() {
        let key: Key = ("g".into(), "t".into(), 1);
        let recs = vec![
            ShareRecord::States {
                key: key.clone(),
                spso: 5,
                changes: vec![
                    (5, RecordState::Acquired, 1),
                    (6, RecordState::Acquired, 1),
                    (7, RecordState::Acknowledged, 2),
                    (8, RecordState::DeadLetterExpired, 0),
                ],
            },
            ShareRecord::Reset {
                key: key.clone(),
                spso: 9,
            },
            ShareRecord::DeadLetterFloor {
                key: key.clone(),
                floor: 42,
            },
            ShareRecord::Forget { key },
        ];
        let mut image = FILE_MAGIC.to_vec();
        recs.iter().for_each(|r| encode(r, &mut image));
        let (back, valid) = scan(&image);
        assert_eq!(back, recs);
        assert_eq!(valid, image.len());
        let torn = &image[..image.len() - 3];
        let (back, valid) = scan(torn);
        assert_eq!(back.len(), 3, "the torn last record is dropped");
        assert!(valid < torn.len());
        let mut corrupt = image.clone();
        let at = FILE_MAGIC.len() + 10;
        corrupt[at] ^= 0xff;
        assert!(scan(&corrupt).0.is_empty(), "a bad CRC ends the scan");
    }
}
