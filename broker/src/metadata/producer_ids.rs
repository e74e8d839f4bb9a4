//! Producer ids for idempotent producers, unique across restarts. Shard 0 is
//! the only allocator. It reserves ids in blocks of `BLOCK`: the end of the
//! reserved range is made durable (temp file, fdatasync, rename, directory
//! fsync) before any id of the block is handed out, and a restart starts at
//! that end. So a crash skips at most one block, and an id is never given twice.
//!
//! `load` runs at start-up, before any executor (blocking is fine there); the
//! reservation's file writes run on glommio's blocking pool.

use std::cell::Cell;
use std::path::{Path, PathBuf};

use super::store::StoreError;

const FILE_NAME: &str = "producer-ids";
const TEMP_NAME: &str = "producer-ids.tmp";
/// magic, u64 end of the reserved range, u32 CRC-32C of the u64.
const MAGIC: &[u8; 8] = b"WEIRPID1";
const FILE_BYTES: usize = 20;
/// Ids reserved per durable write: one fdatasync per thousand producers.
pub const BLOCK: i64 = 1000;

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The first id a new run may hand out: the end of the last reserved block.
pub fn load(data_dir: &Path) -> Result<i64, StoreError> {
    let path = data_dir.join(FILE_NAME);
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(io(&path)(e)),
    };
    decode(&bytes).ok_or_else(|| StoreError::Corrupt {
        path,
        reason: "bad producer-id reservation".into(),
    })
}

fn encode(end: i64) -> [u8; FILE_BYTES] {
    let mut out = [0u8; FILE_BYTES];
    out[..8].copy_from_slice(MAGIC);
    out[8..16].copy_from_slice(&end.to_be_bytes());
    let crc = crc32c::crc32c(&out[8..16]);
    out[16..].copy_from_slice(&crc.to_be_bytes());
    out
}

fn decode(bytes: &[u8]) -> Option<i64> {
    if bytes.len() != FILE_BYTES || &bytes[..8] != MAGIC {
        return None;
    }
    let crc = u32::from_be_bytes(bytes[16..].try_into().ok()?);
    let end = i64::from_be_bytes(bytes[8..16].try_into().ok()?);
    (crc32c::crc32c(&bytes[8..16]) == crc && end >= 0).then_some(end)
}

fn save(data_dir: &Path, end: i64) -> Result<(), StoreError> {
    use std::io::Write;
    let temp = data_dir.join(TEMP_NAME);
    let mut f = std::fs::File::create(&temp).map_err(io(&temp))?;
    f.write_all(&encode(end)).map_err(io(&temp))?;
    f.sync_data().map_err(io(&temp))?;
    std::fs::rename(&temp, data_dir.join(FILE_NAME)).map_err(io(&temp))?;
    std::fs::File::open(data_dir)
        .and_then(|d| d.sync_all())
        .map_err(io(data_dir))
}

/// Shard 0's allocator. Not `Send`: it lives on shard 0's executor only.
pub struct ProducerIds {
    data_dir: PathBuf,
    next: Cell<i64>,
    reserved_end: Cell<i64>,
    /// One reservation at a time, across its await.
    reserving: glommio::sync::Semaphore,
}

impl ProducerIds {
    /// Start at `first` (from `load`), with nothing reserved yet.
    pub fn new(data_dir: PathBuf, first: i64) -> Self {
        Self {
            data_dir,
            next: Cell::new(first),
            reserved_end: Cell::new(first),
            reserving: glommio::sync::Semaphore::new(1),
        }
    }

    /// A fresh producer id, durable before it is returned.
    pub async fn allocate(&self) -> Result<i64, StoreError> {
        let _permit = self.reserving.acquire_permit(1).await.expect("never closed");
        if self.next.get() >= self.reserved_end.get() {
            let end = self.next.get() + BLOCK;
            let dir = self.data_dir.clone();
            glommio::executor()
                .spawn_blocking(move || save(&dir, end))
                .await?;
            self.reserved_end.set(end);
        }
        let id = self.next.get();
        self.next.set(id + 1);
        Ok(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_a_restart_when_allocating_should_never_repeat_an_id() {
        let dir = crate::log::test_support::data_dir();
        let path = dir.path().to_path_buf();
        let first_run = crate::log::test_support::run({
            let path = path.clone();
            async move {
                let ids = ProducerIds::new(path.clone(), load(&path).unwrap());
                let mut got = Vec::new();
                for _ in 0..BLOCK + 5 {
                    got.push(ids.allocate().await.unwrap());
                }
                got
            }
        });
        assert_eq!(first_run, (0..BLOCK + 5).collect::<Vec<_>>());
        // The second block was reserved: a restart starts after it.
        assert_eq!(load(&path).unwrap(), 2 * BLOCK);
        let second = crate::log::test_support::run(async move {
            ProducerIds::new(path.clone(), load(&path).unwrap())
                .allocate()
                .await
                .unwrap()
        });
        assert_eq!(second, 2 * BLOCK);
    }

    #[test]
    fn given_a_damaged_file_when_loading_should_refuse_it() {
        let mut bytes = encode(5000);
        assert_eq!(decode(&bytes), Some(5000));
        bytes[12] ^= 1;
        assert_eq!(decode(&bytes), None);
        assert_eq!(decode(&bytes[..10]), None);
    }
}
