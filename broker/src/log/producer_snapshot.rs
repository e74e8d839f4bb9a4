//! Producer-state snapshots on disk, so a restart rebuilds idempotent
//! producers' state without scanning whole partitions: `<offset>.producers`
//! holds the state of every batch below `offset`. One is written when a segment
//! rolls and one at clean close; opening loads the newest one at or below the
//! recovered end and scans only the batches after it (Kafka's scheme).
//!
//! Runs on the partition's shard; the file work runs on glommio's blocking
//! pool. A snapshot is written to a temp file, fdatasync'd and renamed, so a
//! crash leaves a whole snapshot or none; a missing or damaged one only makes
//! the next open scan further back (or treat old producers as unknown, which
//! Kafka also does once their state has expired).

use std::path::{Path, PathBuf};

use super::producers::ProducerStates;
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
    let bytes = state.encode();
    glommio::executor()
        .spawn_blocking(move || -> std::io::Result<()> {
            use std::io::Write;
            let temp = dir.join(format!("{:020}{SUFFIX}.tmp", offset.0));
            let mut f = std::fs::File::create(&temp)?;
            f.write_all(&bytes)?;
            f.sync_data()?;
            std::fs::rename(&temp, path(&dir, offset))?;
            for old in list(&dir)?.into_iter().skip(KEPT) {
                std::fs::remove_file(path(&dir, old))?;
            }
            Ok(())
        })
        .await
        .map_err(std_io_err("writing a producer snapshot"))
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
                    ProducerStates::decode(&bytes).map(|s| (o, s))
                })
        })
        .await
}
