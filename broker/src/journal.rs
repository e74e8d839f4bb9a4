//! A durable append-only journal in numbered segment files: CRC-framed
//! records, group-commit fdatasync, torn-tail truncation on open, segment roll
//! and deletion of a prefix of segments. One journal belongs to one shard and
//! is touched only on that shard's executor. Used by the timer store
//! (timer/); the share, group and transaction stores keep their own
//! single-file logs for now.
//!
//! File: `<id:010>.journal` = magic `WEIRJNL1`, then frames
//! `[len u32 BE][crc32c(payload) u32 BE][payload]` (docs/format.md).
//! Invariants: appends are written one at a time (positions never overlap);
//! `append(.., true)` returns only once its frames are fdatasync'd, and also
//! makes every earlier frame durable (a roll syncs the sealed segment before
//! the next one gets any write); after a failed write or sync every further
//! append fails.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use event_listener::Event;
use glommio::io::{BufferedFile, OpenOptions};
use glommio::sync::Semaphore;

pub const MAGIC: &[u8; 8] = b"WEIRJNL1";
const FRAME_HEADER_BYTES: usize = 8;
/// A frame larger than this is corruption, not data.
pub const FRAME_MAX_BYTES: usize = 256 << 20;

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("journal I/O failed: {context}: {source}")]
    Io {
        context: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("journal {path}: {reason}")]
    Corrupt { path: PathBuf, reason: String },
    #[error("journal failed earlier and refuses writes until restart")]
    Failed,
}

fn io_err(context: &'static str) -> impl Fn(std::io::Error) -> JournalError {
    move |source| JournalError::Io { context, source }
}

fn gio(context: &'static str) -> impl Fn(glommio::GlommioError<()>) -> JournalError {
    move |e| JournalError::Io {
        context,
        source: e.into(),
    }
}

/// Where a frame's payload lies: its segment and byte range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Location {
    pub segment: u32,
    pub offset: u64,
    pub len: u32,
}

struct Active {
    id: u32,
    file: Rc<BufferedFile>,
    position: u64,
}

pub struct Journal {
    dir: PathBuf,
    segment_bytes: u64,
    active: RefCell<Active>,
    /// Sealed segments still on disk, opened for reads on first use.
    sealed: RefCell<BTreeMap<u32, Option<Rc<BufferedFile>>>>,
    lock: Semaphore,
    failed: Cell<bool>,
    /// Bytes ever written and ever made durable since open.
    written: Cell<u64>,
    durable: Cell<u64>,
    syncing: Cell<bool>,
    changed: Event,
}

/// Clears the running-sync mark when the sync ends or is cancelled.
struct Syncing<'a>(&'a Journal);

impl Drop for Syncing<'_> {
    fn drop(&mut self) {
        self.0.syncing.set(false);
        self.0.changed.notify(usize::MAX);
    }
}

fn segment_path(dir: &Path, id: u32) -> PathBuf {
    dir.join(format!("{id:010}.journal"))
}

/// Segment ids in `dir`, ascending.
fn list_segments(dir: &Path) -> Result<Vec<u32>, JournalError> {
    let mut ids = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io_err("listing the journal"))? {
        let name = entry.map_err(io_err("listing the journal"))?.file_name();
        let name = name.to_string_lossy();
        if let Some(id) = name.strip_suffix(".journal").and_then(|s| s.parse().ok()) {
            ids.push(id);
        }
    }
    ids.sort_unstable();
    Ok(ids)
}

/// The valid frames of one segment image: calls `visit` for each and returns
/// the length of the valid prefix (less than the image when its tail is torn).
fn scan(id: u32, image: &[u8], visit: &mut impl FnMut(Location, &[u8])) -> Option<usize> {
    if image.len() < MAGIC.len() || &image[..MAGIC.len()] != MAGIC {
        return None;
    }
    let mut at = MAGIC.len();
    while let Some(header) = image.get(at..at + FRAME_HEADER_BYTES) {
        let len = u32::from_be_bytes(header[..4].try_into().expect("4 bytes")) as usize;
        let crc = u32::from_be_bytes(header[4..].try_into().expect("4 bytes"));
        let start = at + FRAME_HEADER_BYTES;
        let Some(payload) = image.get(start..start + len).filter(|_| len <= FRAME_MAX_BYTES) else {
            break;
        };
        if crc32c::crc32c(payload) != crc {
            break;
        }
        let loc = Location {
            segment: id,
            offset: start as u64,
            len: len as u32,
        };
        visit(loc, payload);
        at = start + len;
    }
    Some(at)
}

impl Journal {
    /// Open (or create) the journal in `dir`, calling `visit` for every valid
    /// frame in order, and truncate a torn tail of the last segment. A torn or
    /// unreadable earlier segment is corruption. Start-up only: blocking std
    /// calls before the shard serves; one segment image in memory at a time.
    pub async fn open(
        dir: &Path,
        segment_bytes: u64,
        mut visit: impl FnMut(Location, &[u8]),
    ) -> Result<Rc<Self>, JournalError> {
        std::fs::create_dir_all(dir).map_err(io_err("creating the journal directory"))?;
        let ids = list_segments(dir)?;
        let mut sealed = BTreeMap::new();
        let mut last = None;
        for (n, &id) in ids.iter().enumerate() {
            let path = segment_path(dir, id);
            let image = std::fs::read(&path).map_err(io_err("reading a journal segment"))?;
            let is_last = n + 1 == ids.len();
            let valid = scan(id, &image, &mut visit);
            match valid {
                Some(v) if v == image.len() => {}
                Some(v) if is_last => {
                    tracing::warn!(path = %path.display(), valid_bytes = v, "truncating the journal's torn tail");
                    let f = std::fs::OpenOptions::new()
                        .write(true)
                        .open(&path)
                        .map_err(io_err("opening for truncate"))?;
                    f.set_len(v as u64).map_err(io_err("truncating the torn tail"))?;
                    f.sync_all().map_err(io_err("syncing the truncation"))?;
                }
                None if is_last && image.len() < MAGIC.len() => {
                    // Torn while being created: start it again.
                    std::fs::write(&path, MAGIC).map_err(io_err("rewriting a new segment"))?;
                }
                _ => {
                    return Err(JournalError::Corrupt {
                        path,
                        reason: format!("bad magic or torn frame at byte {}", valid.unwrap_or(0)),
                    })
                }
            }
            if is_last {
                last = Some((id, valid.unwrap_or(MAGIC.len()) as u64));
            } else {
                sealed.insert(id, None);
            }
        }
        let (id, position) = match last {
            Some(last) => last,
            None => {
                std::fs::write(segment_path(dir, 0), MAGIC).map_err(io_err("creating a segment"))?;
                (0, MAGIC.len() as u64)
            }
        };
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io_err("syncing the journal directory"))?;
        let file = open_rw(&segment_path(dir, id)).await?;
        Ok(Rc::new(Self {
            dir: dir.to_path_buf(),
            segment_bytes,
            active: RefCell::new(Active {
                id,
                file: Rc::new(file),
                position,
            }),
            sealed: RefCell::new(sealed),
            lock: Semaphore::new(1),
            failed: Cell::new(false),
            written: Cell::new(0),
            durable: Cell::new(0),
            syncing: Cell::new(false),
            changed: Event::new(),
        }))
    }

    /// The active segment's id: segments below it are sealed.
    pub fn active_segment(&self) -> u32 {
        self.active.borrow().id
    }

    /// Append one frame per payload, in order, in one write; with `durable`,
    /// return once they are fdatasync'd (sharing syncs with concurrent appends).
    pub async fn append(&self, payloads: &[&[u8]], durable: bool) -> Result<Vec<Location>, JournalError> {
        let (locations, end) = self.write(payloads).await.inspect_err(|e| self.fail(e))?;
        if durable {
            self.sync_to(end).await.inspect_err(|e| self.fail(e))?;
        }
        Ok(locations)
    }

    /// Append without waiting for a sync; returns the locations and the
    /// point `sync_to` takes to make them durable.
    pub async fn append_unsynced(&self, payloads: &[&[u8]]) -> Result<(Vec<Location>, u64), JournalError> {
        self.write(payloads).await.inspect_err(|e| self.fail(e))
    }

    fn fail(&self, e: &JournalError) {
        if !self.failed.replace(true) {
            tracing::error!(error = %e, dir = %self.dir.display(), "journal write failed; refusing further writes");
        }
    }

    async fn write(&self, payloads: &[&[u8]]) -> Result<(Vec<Location>, u64), JournalError> {
        let _turn = self
            .lock
            .acquire_permit(1)
            .await
            .map_err(|_| JournalError::Failed)?;
        if self.failed.get() {
            return Err(JournalError::Failed);
        }
        if self.active.borrow().position >= self.segment_bytes {
            self.roll().await?;
        }
        let size: usize = payloads.iter().map(|p| p.len() + FRAME_HEADER_BYTES).sum();
        let mut buf = Vec::with_capacity(size);
        let (id, file, position) = {
            let a = self.active.borrow();
            (a.id, a.file.clone(), a.position)
        };
        let mut locations = Vec::with_capacity(payloads.len());
        for p in payloads {
            buf.extend_from_slice(&(p.len() as u32).to_be_bytes());
            buf.extend_from_slice(&crc32c::crc32c(p).to_be_bytes());
            locations.push(Location {
                segment: id,
                offset: position + buf.len() as u64,
                len: p.len() as u32,
            });
            buf.extend_from_slice(p);
        }
        let len = buf.len() as u64;
        write_all(&file, buf, position).await?;
        self.active.borrow_mut().position = position + len;
        self.written.set(self.written.get() + len);
        Ok((locations, self.written.get()))
    }

    /// Seal the active segment (synced, so the ordering "earlier frames are
    /// durable first" holds across files) and start the next one.
    async fn roll(&self) -> Result<(), JournalError> {
        let (id, file) = {
            let a = self.active.borrow();
            (a.id, a.file.clone())
        };
        file.fdatasync().await.map_err(gio("syncing a sealed segment"))?;
        self.durable.set(self.written.get());
        let next = id + 1;
        let path = segment_path(&self.dir, next);
        // Read and write: the active segment is also read back (fire time).
        let new = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .buffered_open(&path)
            .await
            .map_err(gio("creating a segment"))?;
        write_all(&new, MAGIC.to_vec(), 0).await?;
        new.fdatasync().await.map_err(gio("syncing a new segment"))?;
        sync_dir(&self.dir).await?;
        self.sealed.borrow_mut().insert(id, Some(file));
        *self.active.borrow_mut() = Active {
            id: next,
            file: Rc::new(new),
            position: MAGIC.len() as u64,
        };
        Ok(())
    }

    /// Return once everything up to `end` (a `written` count) is durable.
    pub async fn sync_to(&self, end: u64) -> Result<(), JournalError> {
        loop {
            if self.durable.get() >= end {
                return Ok(());
            }
            if self.failed.get() {
                return Err(JournalError::Failed);
            }
            if self.syncing.get() {
                let listener = self.changed.listen();
                if self.syncing.get() {
                    listener.await;
                }
                continue;
            }
            let file = self.active.borrow().file.clone();
            let target = self.written.get();
            self.syncing.set(true);
            let _syncing = Syncing(self);
            file.fdatasync().await.map_err(gio("fdatasync of the journal"))?;
            self.durable.set(self.durable.get().max(target));
        }
    }

    /// Read a payload back (a frame written earlier, in any live segment).
    pub async fn read(&self, loc: Location) -> Result<Vec<u8>, JournalError> {
        let file = self.file_for(loc.segment).await?;
        let read = file
            .read_at(loc.offset, loc.len as usize)
            .await
            .map_err(gio("reading the journal"))?;
        if read.len() != loc.len as usize {
            return Err(JournalError::Corrupt {
                path: segment_path(&self.dir, loc.segment),
                reason: format!("short read at {}", loc.offset),
            });
        }
        Ok(read.to_vec())
    }

    async fn file_for(&self, segment: u32) -> Result<Rc<BufferedFile>, JournalError> {
        {
            let a = self.active.borrow();
            if a.id == segment {
                return Ok(a.file.clone());
            }
        }
        if let Some(Some(f)) = self.sealed.borrow().get(&segment) {
            return Ok(f.clone());
        }
        let f = Rc::new(
            BufferedFile::open(segment_path(&self.dir, segment))
                .await
                .map_err(gio("opening a journal segment"))?,
        );
        if let Some(slot) = self.sealed.borrow_mut().get_mut(&segment) {
            *slot = Some(f.clone());
        }
        Ok(f)
    }

    /// Delete every sealed segment below `segment` (the caller knows none of
    /// their frames is needed any more).
    pub async fn delete_below(&self, segment: u32) -> Result<(), JournalError> {
        let doomed: Vec<u32> = self.sealed.borrow().range(..segment).map(|(id, _)| *id).collect();
        for id in doomed {
            let file = self.sealed.borrow_mut().remove(&id).flatten();
            if let Some(f) = file {
                if let Ok(f) = Rc::try_unwrap(f) {
                    let _ = f.close().await;
                }
            }
            glommio::io::remove(segment_path(&self.dir, id))
                .await
                .map_err(gio("deleting a journal segment"))?;
        }
        Ok(())
    }

    /// Sync what is written (a clean stop leaves nothing to replay twice).
    pub async fn close(&self) {
        let _turn = self.lock.acquire_permit(1).await;
        if !self.failed.get() && self.durable.get() < self.written.get() {
            let file = self.active.borrow().file.clone();
            let _ = file.fdatasync().await;
        }
    }
}

async fn sync_dir(dir: &Path) -> Result<(), JournalError> {
    let d = glommio::io::Directory::open(dir)
        .await
        .map_err(gio("opening the journal directory"))?;
    d.sync().await.map_err(gio("syncing the journal directory"))?;
    let _ = d.close().await;
    Ok(())
}

async fn open_rw(path: &Path) -> Result<BufferedFile, JournalError> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .buffered_open(path)
        .await
        .map_err(gio("opening a journal segment"))
}

/// One write of the whole buffer (no copy). A short write (a full disk) fails
/// the journal: what it left is a torn tail, truncated on the next open.
async fn write_all(file: &BufferedFile, bytes: Vec<u8>, position: u64) -> Result<(), JournalError> {
    let len = bytes.len();
    let n = file
        .write_at(bytes, position)
        .await
        .map_err(gio("writing the journal"))?;
    if n < len {
        let source = std::io::Error::new(
            std::io::ErrorKind::WriteZero,
            format!("short write: {n} of {len} bytes"),
        );
        return Err(JournalError::Io {
            context: "writing the journal",
            source,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::test_support::{data_dir, run};

    fn replay(dir: &Path) -> Vec<Vec<u8>> {
        let dir = dir.to_path_buf();
        run(async move {
            let mut seen = Vec::new();
            let j = Journal::open(&dir, 64, |_, p| seen.push(p.to_vec()))
                .await
                .unwrap();
            j.close().await;
            seen
        })
    }

    #[test]
    fn given_frames_when_reopened_should_replay_them_read_them_back_and_drop_a_torn_tail() {
        let tmp = data_dir();
        let dir = tmp.path().join("j");
        let d = dir.clone();
        let (first, last_segment) = run(async move {
            let j = Journal::open(&d, 64, |_, _| {}).await.unwrap();
            let mut locations = Vec::new();
            for i in 0..10u8 {
                // 40-byte payloads (48-byte frames), 64-byte segments: two per segment.
                let loc = j.append(&[&[i; 40]], i % 3 == 0).await.unwrap();
                locations.extend(loc);
            }
            assert_eq!(j.read(locations[0]).await.unwrap(), vec![0u8; 40]);
            assert_eq!(j.read(locations[9]).await.unwrap(), vec![9u8; 40]);
            j.close().await;
            (locations[0], j.active_segment())
        });
        assert!(last_segment >= 4, "segments rolled: {last_segment}");
        assert_eq!(first.segment, 0);
        let frames = replay(&dir);
        assert_eq!(frames.len(), 10);
        assert_eq!(frames[9], vec![9u8; 40]);
        // A torn last frame: half of it written.
        let last = segment_path(&dir, last_segment);
        let mut image = std::fs::read(&last).unwrap();
        image.extend_from_slice(&(40u32).to_be_bytes());
        image.extend_from_slice(&[1, 2, 3]);
        std::fs::write(&last, &image).unwrap();
        assert_eq!(replay(&dir).len(), 10, "the torn frame is dropped");
        assert_eq!(
            std::fs::metadata(&last).unwrap().len() as usize,
            image.len() - 7,
            "and truncated"
        );
        // Deleting the sealed prefix.
        let d = dir.clone();
        run(async move {
            let j = Journal::open(&d, 64, |_, _| {}).await.unwrap();
            j.delete_below(last_segment).await.unwrap();
            j.close().await;
        });
        assert_eq!(list_segments(&dir).unwrap(), vec![last_segment]);
        assert_eq!(replay(&dir).len(), 2, "two 48-byte frames per 64-byte segment");
    }
}
