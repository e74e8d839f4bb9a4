//! The aborted-transaction index: `<base_offset:020>.txnindex` beside each
//! segment, one 34-byte entry per abort marker stored in that segment
//! (Kafka's TransactionIndex layout, docs/format.md). In memory the entries sit
//! in their `Segment` (`aborted`), in marker order; read_committed fetches
//! collect them from there, never from the file.
//!
//! Owned by the partition's shard. The file is written whole, never appended
//! to: when its segment is sealed at a roll (fsync'd, before the roll's
//! producer snapshot is written), at clean close, and for the active segment
//! before a producer checkpoint's snapshot (its entries below that offset,
//! `appender.rs`). An unsealed segment's file
//! may be stale or missing after a crash; opening keeps only the entries below
//! the producer-state scan start and rebuilds the rest from the scan, so no
//! entry needs an fsync of its own. File work runs on glommio's blocking pool.

use std::path::{Path, PathBuf};

use super::producers::AbortedTxn;
use super::segment::Segment;
use super::{std_io_err, LogError, Offset};

const SUFFIX: &str = ".txnindex";
/// version i16, producer id i64, first offset i64, last offset i64, last stable offset i64.
pub const ENTRY_BYTES: usize = 34;
/// Kafka's entry version.
const ENTRY_VERSION: i16 = 0;

pub(crate) fn txn_index_path(dir: &Path, base: Offset) -> PathBuf {
    dir.join(format!("{:020}{SUFFIX}", base.0))
}

pub fn encode(entries: &[AbortedTxn]) -> Vec<u8> {
    let mut out = Vec::with_capacity(entries.len() * ENTRY_BYTES);
    for e in entries {
        out.extend_from_slice(&ENTRY_VERSION.to_be_bytes());
        out.extend_from_slice(&e.producer_id.to_be_bytes());
        out.extend_from_slice(&e.first_offset.0.to_be_bytes());
        out.extend_from_slice(&e.last_offset.0.to_be_bytes());
        out.extend_from_slice(&e.last_stable_offset.0.to_be_bytes());
    }
    out
}

/// The entries of a file's bytes, up to the first torn or foreign one (a file
/// cut by a crash keeps its whole entries).
pub fn decode(bytes: &[u8]) -> Vec<AbortedTxn> {
    let i64_at = |e: &[u8], at: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&e[at..at + 8]);
        i64::from_be_bytes(b)
    };
    let mut out = Vec::with_capacity(bytes.len() / ENTRY_BYTES);
    for e in bytes.chunks_exact(ENTRY_BYTES) {
        if i16::from_be_bytes([e[0], e[1]]) != ENTRY_VERSION {
            break;
        }
        out.push(AbortedTxn {
            producer_id: i64_at(e, 2),
            first_offset: Offset(i64_at(e, 10)),
            last_offset: Offset(i64_at(e, 18)),
            last_stable_offset: Offset(i64_at(e, 26)),
        });
    }
    out
}

/// Replace the segment's file with `entries` durably (temp file, fsync,
/// rename, directory fsync); with no entries, remove any old file instead.
pub(crate) async fn write(dir: PathBuf, base: Offset, entries: Vec<AbortedTxn>) -> Result<(), LogError> {
    glommio::executor()
        .spawn_blocking(move || -> std::io::Result<()> {
            use std::io::Write;
            let path = txn_index_path(&dir, base);
            if entries.is_empty() {
                return match std::fs::remove_file(&path) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
                    _ => Ok(()),
                };
            }
            let temp = dir.join(format!("{:020}{SUFFIX}.tmp", base.0));
            let mut f = std::fs::File::create(&temp)?;
            f.write_all(&encode(&entries))?;
            f.sync_data()?;
            std::fs::rename(&temp, &path)?;
            std::fs::File::open(&dir)?.sync_all()
        })
        .await
        .map_err(std_io_err("writing a txnindex"))
}

/// Each segment's entries from its file (empty if missing or unreadable).
pub(crate) async fn load_all(dir: PathBuf, bases: Vec<Offset>) -> Vec<Vec<AbortedTxn>> {
    glommio::executor()
        .spawn_blocking(move || {
            bases
                .iter()
                .map(|b| {
                    std::fs::read(txn_index_path(&dir, *b))
                        .map_or_else(|_| Vec::new(), |bytes| decode(&bytes))
                })
                .collect()
        })
        .await
}

/// Kafka's collectAbortedTxns: every aborted transaction overlapping
/// [`from`, `upper`), walking entries from the segment holding `from` on, and
/// stopping at the first entry whose last stable offset reaches `upper` (no
/// transaction after it can have started below `upper`).
pub(crate) fn collect<'a>(
    segments: impl Iterator<Item = &'a Segment>,
    from: Offset,
    upper: Offset,
    out: &mut Vec<AbortedTxn>,
) {
    for segment in segments {
        for e in &segment.aborted {
            if e.last_offset >= from && e.first_offset < upper {
                out.push(*e);
            }
            if e.last_stable_offset >= upper {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(pid: i64, first: i64, last: i64, lso: i64) -> AbortedTxn {
        AbortedTxn {
            producer_id: pid,
            first_offset: Offset(first),
            last_offset: Offset(last),
            last_stable_offset: Offset(lso),
        }
    }

    #[test]
    fn given_entries_when_encoded_should_use_kafkas_34_byte_layout_and_read_back() {
        let entries = vec![entry(7, 10, 20, 21), entry(-2, 0, i64::MAX, 5)];
        let bytes = encode(&entries);
        assert_eq!(bytes.len(), 68);
        assert_eq!(&bytes[..2], &[0, 0], "version 0");
        assert_eq!(&bytes[2..10], &7i64.to_be_bytes());
        assert_eq!(&bytes[26..34], &21i64.to_be_bytes());
        assert_eq!(decode(&bytes), entries);
        assert_eq!(decode(&bytes[..50]), entries[..1], "a torn entry is dropped");
    }

    #[test]
    fn given_aborted_entries_when_collecting_should_keep_overlaps_in_order_and_stop_at_upper() {
        let mut segment = Segment::new(Offset(0), 0);
        segment.aborted = vec![
            entry(1, 0, 5, 3),
            entry(2, 3, 8, 9),
            entry(3, 9, 12, 13),
            entry(4, 20, 30, 31),
        ];
        let mut out = Vec::new();
        collect(std::iter::once(&segment), Offset(6), Offset(10), &mut out);
        assert_eq!(out, vec![entry(2, 3, 8, 9), entry(3, 9, 12, 13)]);
        out.clear();
        collect(std::iter::once(&segment), Offset(0), Offset(3), &mut out);
        assert_eq!(out, vec![entry(1, 0, 5, 3)], "stops once the lso reaches upper");
    }
}
