//! The durable half of a shard's groups: committed offsets and group metadata in one
//! append-only file, `group-offsets.log`, plus its materialized in-memory state.
//! Owned by one shard's `GroupCoordinator`; never shared. Invariants: the in-memory state is
//! exactly what the file holds up to its durable length (records apply only after their
//! fdatasync); appends are group-committed by one detached flush task at a time; a torn tail
//! is truncated on open; compaction swaps in a snapshot atomically (temp, sync, rename, sync dir).

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::task::{Poll, Waker};

use bytes::Bytes;
use glommio::io::{BufferedFile, Directory, OpenOptions};

use super::{glommio_io, GroupError};

pub(crate) const FILE_NAME: &str = "group-offsets.log";
const COMPACT_FILE_NAME: &str = "group-offsets.log.compact";
/// File magic and format version: a file without it is not ours and is never truncated.
const FILE_MAGIC: &[u8; 8] = b"WEIRGRP1";
/// Frame header: u32 body length, u32 CRC-32C of the body.
const FRAME_HEADER_BYTES: usize = 8;
/// Largest record body: a group-metadata record of a full group with large subscriptions.
/// A length past it on reload means a torn or corrupt frame, not a huge allocation.
const RECORD_BYTES_MAX: usize = 256 * 1024 * 1024;
/// Bytes handed to one write_at: bounds the buffer one flush builds.
const WRITE_CHUNK_BYTES_MAX: usize = 8 * 1024 * 1024;

const KIND_COMMIT: u8 = 1;
const KIND_DELETE: u8 = 2;
const KIND_GROUP: u8 = 3;
const KIND_GROUP_DELETE: u8 = 4;

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct CommittedOffset {
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: String,
    pub commit_timestamp_ms: i64,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct StoredMember {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout_ms: i32,
    pub rebalance_timeout_ms: i32,
    /// The member's metadata for the group's selected protocol.
    pub subscription: Bytes,
    pub assignment: Bytes,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct StoredGroup {
    pub protocol_type: String,
    pub protocol_name: Option<String>,
    pub generation_id: i32,
    pub leader_id: Option<String>,
    /// Wall clock (ms) of the last state change; for an Empty group, when it became empty.
    pub state_timestamp_ms: i64,
    pub members: Vec<StoredMember>,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum StoreRecord {
    Commit {
        group: String,
        topic: String,
        partition: i32,
        value: CommittedOffset,
    },
    Delete {
        group: String,
        topic: String,
        partition: i32,
    },
    Group {
        group: String,
        value: StoredGroup,
    },
    /// Removes the group's metadata and every offset it has.
    GroupDelete {
        group: String,
    },
}

pub(crate) type GroupOffsets = HashMap<(String, i32), CommittedOffset>;

/// What the file says, materialized.
#[derive(Default, Debug)]
pub(crate) struct StoreState {
    pub offsets: HashMap<String, GroupOffsets>,
    pub groups: HashMap<String, StoredGroup>,
    pub offset_count: usize,
}

impl StoreState {
    pub fn apply(&mut self, record: StoreRecord) {
        match record {
            StoreRecord::Commit {
                group,
                topic,
                partition,
                value,
            } => {
                let previous = self
                    .offsets
                    .entry(group)
                    .or_default()
                    .insert((topic, partition), value);
                self.offset_count += usize::from(previous.is_none());
            }
            StoreRecord::Delete {
                group,
                topic,
                partition,
            } => {
                if let Some(offsets) = self.offsets.get_mut(&group) {
                    self.offset_count -= usize::from(offsets.remove(&(topic, partition)).is_some());
                    if offsets.is_empty() {
                        self.offsets.remove(&group);
                    }
                }
            }
            StoreRecord::Group { group, value } => {
                self.groups.insert(group, value);
            }
            StoreRecord::GroupDelete { group } => {
                self.groups.remove(&group);
                if let Some(offsets) = self.offsets.remove(&group) {
                    self.offset_count -= offsets.len();
                }
            }
        }
    }

    /// Every record needed to rebuild this state: the body of a compacted file.
    fn snapshot_records(&self) -> impl Iterator<Item = StoreRecord> + '_ {
        let groups = self.groups.iter().map(|(group, value)| StoreRecord::Group {
            group: group.clone(),
            value: value.clone(),
        });
        let offsets = self.offsets.iter().flat_map(|(group, offsets)| {
            offsets
                .iter()
                .map(move |((topic, partition), value)| StoreRecord::Commit {
                    group: group.clone(),
                    topic: topic.clone(),
                    partition: *partition,
                    value: value.clone(),
                })
        });
        groups.chain(offsets)
    }
}

// ---------------------------------------------------------------- codec

fn put_str(out: &mut Vec<u8>, s: &str) {
    assert!(
        s.len() <= u16::MAX as usize,
        "names are bounded by NAME_BYTES_MAX at entry"
    );
    out.extend_from_slice(&(s.len() as u16).to_be_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn put_opt_str(out: &mut Vec<u8>, s: Option<&str>) {
    out.push(u8::from(s.is_some()));
    put_str(out, s.unwrap_or(""));
}

fn put_blob(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as u32).to_be_bytes());
    out.extend_from_slice(b);
}

fn encode_body(record: &StoreRecord, out: &mut Vec<u8>) {
    match record {
        StoreRecord::Commit {
            group,
            topic,
            partition,
            value,
        } => {
            out.push(KIND_COMMIT);
            put_str(out, group);
            put_str(out, topic);
            out.extend_from_slice(&partition.to_be_bytes());
            out.extend_from_slice(&value.offset.to_be_bytes());
            out.extend_from_slice(&value.leader_epoch.to_be_bytes());
            put_str(out, &value.metadata);
            out.extend_from_slice(&value.commit_timestamp_ms.to_be_bytes());
        }
        StoreRecord::Delete {
            group,
            topic,
            partition,
        } => {
            out.push(KIND_DELETE);
            put_str(out, group);
            put_str(out, topic);
            out.extend_from_slice(&partition.to_be_bytes());
        }
        StoreRecord::Group { group, value } => encode_group(group, value, out),
        StoreRecord::GroupDelete { group } => {
            out.push(KIND_GROUP_DELETE);
            put_str(out, group);
        }
    }
}

fn encode_group(group: &str, value: &StoredGroup, out: &mut Vec<u8>) {
    out.push(KIND_GROUP);
    put_str(out, group);
    put_str(out, &value.protocol_type);
    put_opt_str(out, value.protocol_name.as_deref());
    out.extend_from_slice(&value.generation_id.to_be_bytes());
    put_opt_str(out, value.leader_id.as_deref());
    out.extend_from_slice(&value.state_timestamp_ms.to_be_bytes());
    out.extend_from_slice(&(value.members.len() as u32).to_be_bytes());
    for m in &value.members {
        put_str(out, &m.member_id);
        put_opt_str(out, m.group_instance_id.as_deref());
        put_str(out, &m.client_id);
        put_str(out, &m.client_host);
        out.extend_from_slice(&m.session_timeout_ms.to_be_bytes());
        out.extend_from_slice(&m.rebalance_timeout_ms.to_be_bytes());
        put_blob(out, &m.subscription);
        put_blob(out, &m.assignment);
    }
}

/// Appends one framed record (length, CRC-32C, body) to `out`.
pub(crate) fn encode_record(record: &StoreRecord, out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(&[0; FRAME_HEADER_BYTES]);
    encode_body(record, out);
    let body_bytes = out.len() - start - FRAME_HEADER_BYTES;
    assert!(
        body_bytes <= RECORD_BYTES_MAX,
        "record bounded by the member and name limits"
    );
    let crc = crc32c::crc32c(&out[start + FRAME_HEADER_BYTES..]);
    out[start..start + 4].copy_from_slice(&(body_bytes as u32).to_be_bytes());
    out[start + 4..start + 8].copy_from_slice(&crc.to_be_bytes());
}

struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.buf.len() < n {
            return None;
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Some(head)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn i32(&mut self) -> Option<i32> {
        self.take(4)
            .map(|b| i32::from_be_bytes(b.try_into().expect("4 bytes")))
    }
    fn i64(&mut self) -> Option<i64> {
        self.take(8)
            .map(|b| i64::from_be_bytes(b.try_into().expect("8 bytes")))
    }
    fn string(&mut self) -> Option<String> {
        let len = u16::from_be_bytes(self.take(2)?.try_into().expect("2 bytes")) as usize;
        String::from_utf8(self.take(len)?.to_vec()).ok()
    }
    fn opt_string(&mut self) -> Option<Option<String>> {
        let present = self.u8()?;
        let s = self.string()?;
        Some((present == 1).then_some(s))
    }
    fn blob(&mut self) -> Option<Bytes> {
        let len = self.i32()? as u32 as usize;
        Some(Bytes::copy_from_slice(self.take(len)?))
    }
}

fn decode_body(body: &[u8]) -> Option<StoreRecord> {
    let mut r = Reader { buf: body };
    let record = match r.u8()? {
        KIND_COMMIT => StoreRecord::Commit {
            group: r.string()?,
            topic: r.string()?,
            partition: r.i32()?,
            value: CommittedOffset {
                offset: r.i64()?,
                leader_epoch: r.i32()?,
                metadata: r.string()?,
                commit_timestamp_ms: r.i64()?,
            },
        },
        KIND_DELETE => StoreRecord::Delete {
            group: r.string()?,
            topic: r.string()?,
            partition: r.i32()?,
        },
        KIND_GROUP => decode_group(&mut r)?,
        KIND_GROUP_DELETE => StoreRecord::GroupDelete { group: r.string()? },
        _ => return None,
    };
    r.buf.is_empty().then_some(record)
}

fn decode_group(r: &mut Reader<'_>) -> Option<StoreRecord> {
    let group = r.string()?;
    let protocol_type = r.string()?;
    let protocol_name = r.opt_string()?;
    let generation_id = r.i32()?;
    let leader_id = r.opt_string()?;
    let state_timestamp_ms = r.i64()?;
    let member_count = r.i32()? as u32 as usize;
    if member_count > super::GROUP_MEMBERS_MAX {
        return None;
    }
    let mut members = Vec::with_capacity(member_count);
    for _ in 0..member_count {
        members.push(StoredMember {
            member_id: r.string()?,
            group_instance_id: r.opt_string()?,
            client_id: r.string()?,
            client_host: r.string()?,
            session_timeout_ms: r.i32()?,
            rebalance_timeout_ms: r.i32()?,
            subscription: r.blob()?,
            assignment: r.blob()?,
        });
    }
    let value = StoredGroup {
        protocol_type,
        protocol_name,
        generation_id,
        leader_id,
        state_timestamp_ms,
        members,
    };
    Some(StoreRecord::Group { group, value })
}

/// Outcome of scanning a file image: the state and the length of its valid prefix.
#[derive(Debug)]
pub(crate) struct Scan {
    pub state: StoreState,
    pub valid_bytes: usize,
    pub torn: bool,
}

/// Replays `image`, stopping at the first short or CRC-failing frame (a torn tail). A frame
/// whose CRC holds but whose body does not decode is corruption we cannot explain: refuse.
pub(crate) fn scan(image: &[u8], path: &Path) -> Result<Scan, GroupError> {
    let corrupt = |reason: String| GroupError::Corrupt {
        path: path.to_path_buf(),
        reason,
    };
    if image.len() < FILE_MAGIC.len() {
        // A crash while creating the file; nothing was ever acknowledged from it.
        return Ok(Scan {
            state: StoreState::default(),
            valid_bytes: 0,
            torn: !image.is_empty(),
        });
    }
    if &image[..FILE_MAGIC.len()] != FILE_MAGIC {
        return Err(corrupt("bad magic: not a Weir group offsets file".into()));
    }
    let mut state = StoreState::default();
    let mut position = FILE_MAGIC.len();
    loop {
        let rest = &image[position..];
        if rest.len() < FRAME_HEADER_BYTES {
            break;
        }
        let body_bytes = u32::from_be_bytes(rest[..4].try_into().expect("4 bytes")) as usize;
        let crc = u32::from_be_bytes(rest[4..8].try_into().expect("4 bytes"));
        if body_bytes > RECORD_BYTES_MAX || rest.len() < FRAME_HEADER_BYTES + body_bytes {
            break;
        }
        let body = &rest[FRAME_HEADER_BYTES..FRAME_HEADER_BYTES + body_bytes];
        if crc32c::crc32c(body) != crc {
            break;
        }
        let record =
            decode_body(body).ok_or_else(|| corrupt(format!("undecodable record at byte {position}")))?;
        state.apply(record);
        position += FRAME_HEADER_BYTES + body_bytes;
    }
    Ok(Scan {
        state,
        valid_bytes: position,
        torn: position != image.len(),
    })
}

// ---------------------------------------------------------------- notification

/// Wakes every waiter on each `notify_all`. Waiters are request futures, bounded by the
/// connections' in-flight limits; a waker already queued is not queued twice.
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
        std::future::poll_fn(|cx| {
            if self.epoch.get() != start {
                return Poll::Ready(());
            }
            let mut wakers = self.wakers.borrow_mut();
            if !wakers.iter().any(|w| w.will_wake(cx.waker())) {
                wakers.push(cx.waker().clone());
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
        if valid_bytes == 0 {
            std::fs::write(&path, FILE_MAGIC).map_err(io("creating the offsets file"))?;
            valid_bytes = FILE_MAGIC.len() as u64;
        }
        if scan.torn || valid_bytes as usize != image.len() {
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
