//! Whether a partition directory was closed cleanly: one small file, `.shutdown-state`,
//! overwritten in place with CLEAN at a clean close and DIRTY before the first write
//! after an open (the appender's first round: `appender.rs`, `mark_not_clean`).
//!
//! Runs on the partition's shard (the read on glommio's blocking pool, the writes as DMA
//! I/O). Invariant: the file says CLEAN only while the active segment, its index files
//! and the producer snapshot are as a clean close left them, synced before the CLEAN
//! write; DIRTY is durable before any of them changes. A partition opened cleanly and
//! closed without a write in between therefore writes nothing at either end. A missing,
//! torn or foreign file reads as DIRTY, which only costs a scan of the active segment.
//!
//! Why in place rather than a marker created at close and removed at open: creating a
//! file walks ext4's inode bitmap, and on an ext4 without a journal (this project's test
//! machines) every recently freed inode it meets costs an inode-table lookup. A stop of
//! 10,000 partitions that created one marker and one snapshot temp file each spent
//! 7.5-53 s, nearly all of it in `__ext4_new_inode` (docs/benchmarks.md, "A clean stop of
//! 10,000 partitions"). An overwrite allocates nothing.
//!
//! Directories from before this file carry the empty `.clean-shutdown` marker instead; it
//! still counts as clean and is removed, like a CLEAN state is overwritten, before the
//! first write after the open that reads it.

use std::path::Path;

use glommio::io::{DmaFile, OpenOptions};

use super::segment::{sync_dir, BLOCK_BYTES};
use super::{io_err, LogError};

pub(crate) const STATE_FILE: &str = ".shutdown-state";
/// The marker of earlier versions: present means clean.
pub(crate) const LEGACY_MARKER: &str = ".clean-shutdown";

/// Layout: magic, one state byte, CRC-32C (big-endian) of the nine bytes before it; the
/// rest of the block is zero. It fits one 512-byte sector, so a torn write cannot mix an
/// old and a new state without failing the CRC.
const MAGIC: &[u8; 8] = b"WEIRSHUT";
const CLEAN: u8 = 1;
const DIRTY: u8 = 0;
const ENCODED_BYTES: usize = 8 + 1 + 4;

/// What an open finds in the directory.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Found {
    /// `.shutdown-state` says CLEAN.
    pub state_clean: bool,
    /// The legacy `.clean-shutdown` marker is there.
    pub legacy_marker: bool,
}

impl Found {
    /// The active segment's index files may be trusted.
    pub fn clean(self) -> bool {
        self.state_clean || self.legacy_marker
    }
}

fn encode(state: u8, out: &mut [u8]) {
    out[..8].copy_from_slice(MAGIC);
    out[8] = state;
    let crc = crc32c::crc32c(&out[..9]);
    out[9..ENCODED_BYTES].copy_from_slice(&crc.to_be_bytes());
}

/// The state byte, or `None` for anything torn or foreign.
fn decode(bytes: &[u8]) -> Option<u8> {
    let bytes = bytes.get(..ENCODED_BYTES)?;
    let crc = u32::from_be_bytes(bytes[9..].try_into().ok()?);
    (&bytes[..8] == MAGIC && crc32c::crc32c(&bytes[..9]) == crc).then_some(bytes[8])
}

/// Blocking (glommio's blocking pool): read what the directory says.
pub(crate) fn read_blocking(dir: &Path) -> Found {
    let state_clean = match std::fs::read(dir.join(STATE_FILE)) {
        Ok(bytes) => decode(&bytes) == Some(CLEAN),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        Err(e) => {
            tracing::warn!(dir = %dir.display(), error = %e, "reading the shutdown state; treating the partition as not cleanly closed");
            false
        }
    };
    let legacy_marker = dir.join(LEGACY_MARKER).exists();
    Found {
        state_clean,
        legacy_marker,
    }
}

/// Before the first write after a clean open: make "not cleanly closed" durable.
pub(crate) async fn mark_open(dir: &Path, found: Found) -> Result<(), LogError> {
    if found.state_clean {
        write_state(dir, DIRTY).await?;
    }
    if found.legacy_marker {
        glommio::io::remove(dir.join(LEGACY_MARKER))
            .await
            .map_err(io_err("removing the legacy clean-shutdown marker"))?;
        sync_dir(dir).await?;
    }
    Ok(())
}

/// At the end of a clean close, after everything else in the directory is synced.
pub(crate) async fn mark_clean(dir: &Path) -> Result<(), LogError> {
    write_state(dir, CLEAN).await
}

/// Overwrite the state block and fdatasync it; create the file (and sync the directory)
/// only the first time.
async fn write_state(dir: &Path, state: u8) -> Result<(), LogError> {
    let path = dir.join(STATE_FILE);
    let (file, created) = match OpenOptions::new().write(true).dma_open(&path).await {
        Ok(file) => (file, false),
        Err(e) => {
            let e = std::io::Error::from(e);
            if e.kind() != std::io::ErrorKind::NotFound {
                return Err(LogError::Io {
                    op: "opening the shutdown state",
                    source: e,
                });
            }
            let file = DmaFile::create(&path)
                .await
                .map_err(io_err("creating the shutdown state"))?;
            (file, true)
        }
    };
    let mut buf = file.alloc_dma_buffer(BLOCK_BYTES as usize);
    let bytes = buf.as_bytes_mut();
    bytes.fill(0);
    encode(state, bytes);
    let written = file
        .write_at(buf, 0)
        .await
        .map_err(io_err("writing the shutdown state"))?;
    if written < BLOCK_BYTES as usize {
        return Err(super::segment::short_write());
    }
    file.fdatasync()
        .await
        .map_err(io_err("syncing the shutdown state"))?;
    file.close().await.map_err(io_err("closing the shutdown state"))?;
    if created {
        sync_dir(dir).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_each_state_when_encoded_should_decode_and_refuse_damage() {
        for state in [CLEAN, DIRTY] {
            let mut block = vec![0u8; BLOCK_BYTES as usize];
            encode(state, &mut block);
            assert_eq!(decode(&block), Some(state));
            for at in 0..ENCODED_BYTES {
                let mut flipped = block.clone();
                flipped[at] ^= 0x10;
                assert_ne!(decode(&flipped), Some(state), "flip at {at}");
            }
            assert_eq!(decode(&block[..ENCODED_BYTES - 1]), None, "torn");
        }
        assert_eq!(decode(&[]), None, "empty (a file created, never written)");
    }
}
