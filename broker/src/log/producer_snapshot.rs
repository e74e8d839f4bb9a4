//! Producer-state snapshots on disk, so a restart rebuilds idempotent
//! producers' state without scanning whole partitions: `<offset>.producers`
//! holds the state of every batch below `offset`. One is written when a segment
//! rolls, one at clean close, and one per checkpoint interval of the active
//! segment once its offset is durable (`appender.rs`); opening loads the newest one at or below the
//! recovered end and scans only the batches after it (Kafka's scheme).
//!
//! Runs on the partition's shard; the file work runs on glommio's blocking
//! pool. A snapshot is written to a temp file, fdatasync'd and renamed, so a
//! crash leaves a whole snapshot or none; a missing or damaged one only makes
//! the next open scan further back (or treat old producers as unknown, which
//! Kafka also does once their state has expired). The file format (version 2
//! adds each producer's ongoing transaction) is at the end of this file.

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};

use super::producers::{Producer, ProducerStates, StoredBatch, BATCHES_KEPT, PRODUCERS_MAX};
use super::{std_io_err, LogError, Offset};

const SUFFIX: &str = ".producers";
/// Snapshots kept per partition: the newest and the one before it.
const KEPT: usize = 2;

fn path(dir: &Path, offset: Offset) -> PathBuf {
    dir.join(format!("{:020}{SUFFIX}", offset.0))
}

/// The offsets of the snapshots in `dir`, newest first.
fn list(dir: &Path) -> std::io::Result<Vec<Offset>> {
    let mut offsets: Vec<Offset> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            name.strip_suffix(SUFFIX)?.parse::<i64>().ok().map(Offset)
        })
        .collect();
    offsets.sort_unstable_by(|a, b| b.cmp(a));
    Ok(offsets)
}

/// Write `state` as the snapshot at `offset` and drop all but the newest `KEPT`.
pub(crate) async fn write(dir: PathBuf, offset: Offset, state: &ProducerStates) -> Result<(), LogError> {
    let bytes = state.encode(offset);
    glommio::executor()
        .spawn_blocking(move || write_blocking(&dir, offset, &bytes))
        .await
        .map_err(std_io_err("writing a producer snapshot"))
}

/// Blocking (glommio's blocking pool). Reuses the inode of a snapshot that this write
/// makes surplus instead of creating a file: on an ext4 without a journal, creating a
/// file right after many were deleted walks every recently freed inode
/// (`shutdown_state.rs` has the numbers). Writes to one partition may overlap (a roll's
/// background snapshot, a checkpoint, the close), so each step tolerates a file another
/// write took first.
fn write_blocking(dir: &Path, offset: Offset, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let target = path(dir, offset);
    // A stop with nothing appended since the last snapshot: the same bytes again.
    if std::fs::read(&target).is_ok_and(|old| old == bytes) {
        return Ok(());
    }
    let mut all = list(dir)?;
    if !all.contains(&offset) {
        all.push(offset);
        all.sort_unstable_by(|a, b| b.cmp(a));
    }
    if !all[..KEPT.min(all.len())].contains(&offset) {
        return Ok(()); // older than the newest KEPT: the cleanup would delete it anyway
    }
    let surplus = all.split_off(KEPT.min(all.len()));
    let temp = dir.join(format!("{:020}{SUFFIX}.tmp", offset.0));
    let recycled = surplus.first().and_then(|old| {
        std::fs::rename(path(dir, *old), &temp).ok()?;
        std::fs::OpenOptions::new().write(true).open(&temp).ok()
    });
    let mut f = match recycled {
        Some(f) => f,
        None => std::fs::File::create(&temp)?,
    };
    f.write_all(bytes)?;
    f.set_len(bytes.len() as u64)?;
    f.sync_data()?;
    std::fs::rename(&temp, &target)?;
    for old in list(dir)?.into_iter().skip(KEPT) {
        match std::fs::remove_file(path(dir, old)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    Ok(())
}

/// The newest readable snapshot at or below `at_most` (the recovered log end) and
/// not below `at_least` (the log start). Snapshots past the end are deleted: they
/// describe batches a crash took away (a roll's snapshot can reach the disk before
/// the batches below it are synced), and must not describe the offsets that get
/// appended there next.
pub(crate) async fn latest(
    dir: PathBuf,
    at_least: Offset,
    at_most: Offset,
) -> Option<(Offset, ProducerStates)> {
    glommio::executor()
        .spawn_blocking(move || {
            let offsets = list(&dir).ok()?;
            for stale in offsets.iter().filter(|o| **o > at_most) {
                if let Err(e) = std::fs::remove_file(path(&dir, *stale)) {
                    tracing::warn!(dir = %dir.display(), offset = stale.0, error = %e, "removing a producer snapshot past the log end failed");
                }
            }
            offsets
                .into_iter()
                .filter(|o| (at_least..=at_most).contains(o))
                .find_map(|o| {
                    let bytes = std::fs::read(path(&dir, o)).ok()?;
                    ProducerStates::decode(&bytes, o).map(|s| (o, s))
                })
        })
        .await
}

/// Snapshot file layout (docs/format.md): magic, [v3: i64 the snapshot's offset, as
/// in its name], u32 producer count, then per producer: i64 id, i16 epoch, i64 last
/// timestamp, [v2 and v3: i64 first offset of its ongoing transaction, -1 for none],
/// u8 batch count, per batch i32 first and last sequence, i64 base and last offset;
/// last, a u32 CRC-32C of everything before. Versions 1 and 2 are still read.
///
/// The offset inside (version 3) guards the inode reuse of `write_blocking`: without a
/// journal, a power cut can persist a reused file's new bytes but not its renames, and
/// leave a whole, valid snapshot under an older snapshot's name.
const MAGIC_V1: &[u8; 8] = b"WEIRPRS1";
const MAGIC_V2: &[u8; 8] = b"WEIRPRS2";
const MAGIC_V3: &[u8; 8] = b"WEIRPRS3";
const PRODUCER_BYTES: usize = 8 + 2 + 8 + 8 + 1;
const BATCH_BYTES: usize = 4 + 4 + 8 + 8;

impl ProducerStates {
    /// The state as the bytes of the snapshot file at `at` (version 3).
    pub fn encode(&self, at: Offset) -> Vec<u8> {
        let batches: usize = self.producers.values().map(|p| p.batches.len()).sum();
        let mut out =
            Vec::with_capacity(8 + 8 + 4 + self.producers.len() * PRODUCER_BYTES + batches * BATCH_BYTES + 4);
        out.extend_from_slice(MAGIC_V3);
        out.extend_from_slice(&at.0.to_be_bytes());
        out.extend_from_slice(&(self.producers.len() as u32).to_be_bytes());
        for (id, p) in &self.producers {
            out.extend_from_slice(&id.to_be_bytes());
            out.extend_from_slice(&p.epoch.to_be_bytes());
            out.extend_from_slice(&p.last_timestamp_ms.to_be_bytes());
            out.extend_from_slice(&p.txn_first_offset.map_or(-1, |o| o.0).to_be_bytes());
            out.push(p.batches.len() as u8);
            for b in &p.batches {
                out.extend_from_slice(&b.first_sequence.to_be_bytes());
                out.extend_from_slice(&b.last_sequence.to_be_bytes());
                out.extend_from_slice(&b.base_offset.0.to_be_bytes());
                out.extend_from_slice(&b.last_offset.0.to_be_bytes());
            }
        }
        let crc = crc32c::crc32c(&out);
        out.extend_from_slice(&crc.to_be_bytes());
        out
    }

    /// Parse the snapshot file at `at` (version 1, 2 or 3); `None` for anything
    /// damaged (a torn or foreign file) and for a version 3 file written for another
    /// offset.
    pub fn decode(bytes: &[u8], at: Offset) -> Option<Self> {
        let (body, crc) = bytes.split_at_checked(bytes.len().checked_sub(4)?)?;
        if crc32c::crc32c(body) != u32::from_be_bytes(crc.try_into().ok()?) {
            return None;
        }
        let (with_txn, rest) = match body.split_first_chunk::<8>()? {
            (magic, rest) if magic == MAGIC_V3 => (true, rest),
            (magic, rest) if magic == MAGIC_V2 => (true, rest),
            (magic, rest) if magic == MAGIC_V1 => (false, rest),
            _ => return None,
        };
        let mut r = Reader(rest);
        if body.starts_with(MAGIC_V3) && r.i64()? != at.0 {
            return None;
        }
        let count = r.u32()? as usize;
        let mut states = ProducerStates {
            producers: HashMap::with_capacity(count.min(PRODUCERS_MAX)),
            ..ProducerStates::default()
        };
        for _ in 0..count {
            let id = r.i64()?;
            let producer = decode_producer(&mut r, with_txn)?;
            states.producers.insert(id, producer);
        }
        states.index_ongoing();
        r.0.is_empty().then_some(states)
    }
}

fn decode_producer(r: &mut Reader<'_>, with_txn: bool) -> Option<Producer> {
    let epoch = r.i16()?;
    let last_timestamp_ms = r.i64()?;
    let txn_first_offset = if with_txn {
        Some(r.i64()?).filter(|o| *o >= 0).map(Offset)
    } else {
        None
    };
    let kept = usize::from(r.u8()?);
    if kept > BATCHES_KEPT {
        return None;
    }
    let mut batches = VecDeque::with_capacity(kept);
    for _ in 0..kept {
        batches.push_back(StoredBatch {
            first_sequence: r.i32()?,
            last_sequence: r.i32()?,
            base_offset: Offset(r.i64()?),
            last_offset: Offset(r.i64()?),
        });
    }
    Some(Producer {
        epoch,
        batches,
        last_timestamp_ms,
        txn_first_offset,
    })
}

/// Big-endian fields off the front of a slice; `None` past its end.
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (head, rest) = self.0.split_first_chunk::<N>()?;
        self.0 = rest;
        Some(*head)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take::<1>().map(|b| b[0])
    }
    fn i16(&mut self) -> Option<i16> {
        self.take().map(i16::from_be_bytes)
    }
    fn i32(&mut self) -> Option<i32> {
        self.take().map(i32::from_be_bytes)
    }
    fn u32(&mut self) -> Option<u32> {
        self.take().map(u32::from_be_bytes)
    }
    fn i64(&mut self) -> Option<i64> {
        self.take().map(i64::from_be_bytes)
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt;

    use super::*;

    fn inode(dir: &Path, offset: i64) -> u64 {
        std::fs::metadata(path(dir, Offset(offset)))
            .expect("snapshot")
            .ino()
    }

    fn state_at(dir: &Path, offset: i64) -> Option<ProducerStates> {
        let bytes = std::fs::read(path(dir, Offset(offset))).ok()?;
        ProducerStates::decode(&bytes, Offset(offset))
    }

    #[test]
    fn given_snapshots_beyond_the_kept_two_when_writing_should_reuse_the_oldest_file_and_keep_the_newest() {
        let dir = tempfile::tempdir().expect("tempdir");
        let dir = dir.path();
        let state = ProducerStates::default();
        write_blocking(dir, Offset(10), &state.encode(Offset(10))).expect("write");
        write_blocking(dir, Offset(20), &state.encode(Offset(20))).expect("write");
        let oldest = inode(dir, 10);
        write_blocking(dir, Offset(30), &state.encode(Offset(30))).expect("write");
        assert_eq!(list(dir).expect("list"), vec![Offset(30), Offset(20)]);
        assert_eq!(
            inode(dir, 30),
            oldest,
            "the surplus snapshot's file, renamed and rewritten"
        );
        assert!(state_at(dir, 30).is_some() && state_at(dir, 20).is_some());

        // The same bytes again (a stop with nothing appended): nothing written.
        let before = std::fs::metadata(path(dir, Offset(30)))
            .expect("meta")
            .modified()
            .ok();
        write_blocking(dir, Offset(30), &state.encode(Offset(30))).expect("write");
        let after = std::fs::metadata(path(dir, Offset(30)))
            .expect("meta")
            .modified()
            .ok();
        assert_eq!(before, after);

        // Older than both kept: the cleanup would delete it, so it is not written.
        write_blocking(dir, Offset(5), &state.encode(Offset(5))).expect("write");
        assert_eq!(list(dir).expect("list"), vec![Offset(30), Offset(20)]);
        let names: Vec<_> = std::fs::read_dir(dir)
            .expect("dir")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names.len(), 2, "no temporary file left: {names:?}");
    }

    #[test]
    fn given_a_reused_file_left_under_an_older_name_when_reading_should_refuse_it() {
        // A power cut without a journal may keep a reused file's new bytes but lose
        // its renames: the file at 10 then holds the state at 30.
        let dir = tempfile::tempdir().expect("tempdir");
        let dir = dir.path();
        let mut state = ProducerStates::default();
        state.producers.insert(
            7,
            super::super::producers::Producer {
                epoch: 1,
                batches: VecDeque::new(),
                last_timestamp_ms: 0,
                txn_first_offset: None,
            },
        );
        std::fs::write(path(dir, Offset(10)), state.encode(Offset(30))).expect("write");
        assert!(state_at(dir, 10).is_none());
    }
}
