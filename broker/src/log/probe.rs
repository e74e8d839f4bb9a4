//! The glommio 0.9 empty-file Direct-I/O probe workaround (docs/architecture.md,
//! "Platform notes").
//!
//! glommio decides once per device and per executor thread whether polled I/O works,
//! by reading the first DMA file opened there. On a new, empty file that read succeeds
//! trivially, glommio concludes "pollable", and later DMA reads fail with EOPNOTSUPP.
//! Opening a 4 KiB file first makes the probe read real data and conclude correctly.
//! Every shard must run it before opening any segment; `open` does it once per thread.

use std::cell::Cell;
use std::path::Path;

use glommio::io::DmaFile;

use super::{io_err, std_io_err, LogError};

/// The probe reads one block, so the probe file must hold at least one.
const PROBE_BYTES: usize = 4096;
const PROBE_FILE: &str = ".weir-direct-io-probe";

thread_local! {
    /// glommio's probe result is per thread (its device map is thread-local).
    static PROBED: Cell<bool> = const { Cell::new(false) };
}

/// Write a 4 KiB file in `data_dir`, open it with `DmaFile::open` (this triggers
/// glommio's probe on real data), check a DMA read of it, remove it. Call before any
/// segment is opened on this thread. The probe file is written with a plain (blocking)
/// `std::fs::write` on glommio's blocking-thread pool: a DMA write would need the very
/// DmaFile open the probe must see first.
pub async fn direct_io_probe(data_dir: &Path) -> Result<(), LogError> {
    // One file per thread: shards probe concurrently and must not remove each
    // other's file mid-read.
    let path =
        data_dir.join(format!("{PROBE_FILE}-{:?}", std::thread::current().id()).replace(['(', ')'], ""));
    let pattern: Vec<u8> = (0..PROBE_BYTES).map(|i| (i % 251) as u8).collect();
    let (write_path, write_bytes) = (path.clone(), pattern.clone());
    glommio::executor()
        .spawn_blocking(move || std::fs::write(write_path, write_bytes))
        .await
        .map_err(std_io_err("writing probe file"))?;
    let file = DmaFile::open(&path).await.map_err(io_err("opening probe file"))?;
    let read = file.read_at_aligned(0, PROBE_BYTES).await;
    let matches = read.as_ref().is_ok_and(|r| r[..] == pattern[..]);
    file.close().await.map_err(io_err("closing probe file"))?;
    glommio::io::remove(&path)
        .await
        .map_err(io_err("removing probe file"))?;
    read.map_err(io_err("reading probe file"))?;
    if !matches {
        return Err(LogError::Probe {
            reason: "probe file read back different bytes",
        });
    }
    PROBED.with(|p| p.set(true));
    Ok(())
}

/// Run the probe unless this thread already did (segments may be opened later, at
/// runtime, without paying for it again).
pub(crate) async fn ensure_probed(dir: &Path) -> Result<(), LogError> {
    if PROBED.with(Cell::get) {
        return Ok(());
    }
    direct_io_probe(dir).await
}
