//! DeleteRecords: moving the log start offset inside a segment, durably.
//!
//! Runs on the partition's shard. Without a DeleteRecords the log start offset is the
//! first segment's base offset; DeleteRecords raises a floor above it, kept in
//! `log-start-offset` in the partition directory (docs/format.md) and read back by
//! recovery, so the new start survives a crash. The file is replaced atomically
//! (temp file, fdatasync, rename, directory fsync; glommio's rename runs on its
//! blocking pool) before the floor changes in memory: a client told "deleted" never
//! sees the records again. Moves are serialized (`Shared::start_lock`) so saves
//! cannot land out of order. Retention deletes whole sealed segments below the floor.

use std::path::Path;

use super::partition::PartitionLog;
use super::{io_err, LogError, Offset};

pub(crate) const START_OFFSET_FILE: &str = "log-start-offset";
const TEMP_FILE: &str = "log-start-offset.tmp";
/// Layout: magic, i64 offset (big-endian), CRC-32C of the previous 16 bytes.
const MAGIC: &[u8; 8] = b"WEIRLSO1";
const FILE_BYTES: usize = 20;

fn encode(offset: Offset) -> Vec<u8> {
    let mut out = Vec::with_capacity(FILE_BYTES);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&offset.0.to_be_bytes());
    let crc = crc32c::crc32c(&out);
    out.extend_from_slice(&crc.to_be_bytes());
    out
}

fn decode(bytes: &[u8]) -> Option<Offset> {
    if bytes.len() != FILE_BYTES || &bytes[..8] != MAGIC {
        return None;
    }
    let crc = u32::from_be_bytes(bytes[16..20].try_into().ok()?);
    if crc32c::crc32c(&bytes[..16]) != crc {
        return None;
    }
    let offset = i64::from_be_bytes(bytes[8..16].try_into().ok()?);
    (offset >= 0).then_some(Offset(offset))
}

/// Blocking (recovery calls it on glommio's blocking pool): the saved floor, if any.
/// A damaged file cannot come from a crash (it is renamed into place whole); it is
/// logged and ignored, which shows deleted records again rather than lose others.
pub(crate) fn read_blocking(dir: &Path) -> Result<Option<Offset>, LogError> {
    match std::fs::read(dir.join(START_OFFSET_FILE)) {
        Ok(bytes) => {
            let floor = decode(&bytes);
            if floor.is_none() {
                tracing::warn!(dir = %dir.display(), "ignoring a damaged log-start-offset file");
            }
            Ok(floor)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(LogError::Io {
            op: "reading log-start-offset",
            source,
        }),
    }
}

async fn save(dir: &Path, offset: Offset) -> Result<(), LogError> {
    let temp = dir.join(TEMP_FILE);
    let file = glommio::io::BufferedFile::create(&temp)
        .await
        .map_err(io_err("creating log-start-offset"))?;
    let bytes = encode(offset);
    let written = file
        .write_at(bytes, 0)
        .await
        .map_err(io_err("writing log-start-offset"))?;
    if written != FILE_BYTES {
        return Err(LogError::Io {
            op: "writing log-start-offset",
            source: std::io::Error::other("short write"),
        });
    }
    file.fdatasync()
        .await
        .map_err(io_err("syncing log-start-offset"))?;
    file.close().await.map_err(io_err("closing log-start-offset"))?;
    glommio::io::rename(&temp, dir.join(START_OFFSET_FILE))
        .await
        .map_err(io_err("renaming log-start-offset"))?;
    super::segment::sync_dir(dir).await
}

impl PartitionLog {
    /// DeleteRecords: make `offset` the log start offset (`None`: the high watermark).
    /// Returns the log start offset afterwards (unchanged when `offset` is not above
    /// it). Beyond the high watermark or negative: OffsetOutOfRange, nothing changes.
    pub async fn delete_records_before(&self, offset: Option<Offset>) -> Result<Offset, LogError> {
        let _permit = self
            .shared
            .start_lock
            .acquire_permit(1)
            .await
            .map_err(|_| LogError::Closed)?;
        let (target, start) = {
            let st = self.shared.state.borrow();
            st.check_usable()?;
            let (start, end) = (st.log_start_offset(), st.next_offset);
            let target = offset.unwrap_or(end);
            if target.0 < 0 || target > end {
                return Err(LogError::OffsetOutOfRange {
                    offset: target.0,
                    log_start_offset: start.0,
                    log_end_offset: end.0,
                });
            }
            (target, start)
        };
        if target <= start {
            return Ok(start);
        }
        // The floor must not lie beyond what recovery will find after a crash.
        self.wait_durable(Offset(target.0 - 1)).await?;
        save(&self.shared.dir, target).await?;
        let mut st = self.shared.state.borrow_mut();
        st.start_floor = st.start_floor.max(target);
        let start = st.log_start_offset();
        st.cache.drop_before(start);
        Ok(start)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_a_start_offset_file_when_decoded_should_round_trip_and_refuse_damage() {
        assert_eq!(decode(&encode(Offset(42))), Some(Offset(42)));
        let mut bad = encode(Offset(42));
        bad[10] ^= 1;
        assert_eq!(decode(&bad), None);
        assert_eq!(decode(&bad[..19]), None);
    }
}

#[cfg(test)]
mod log_tests {
    use super::super::test_support::{batch, data_dir, run, small_config};
    use super::*;

    #[test]
    fn given_deleted_records_when_reopened_and_retention_runs_should_keep_the_start_and_drop_old_segments() {
        let dir = data_dir();
        let path = dir.path().join("t-0");
        run(async move {
            let log = PartitionLog::open(path.clone(), small_config()).await.unwrap();
            for i in 0..40 {
                log.append(batch(1, 1000, i, 1)).await.unwrap();
            }
            let end = log.log_end_offset();
            assert!(log.segment_count() > 2);
            let beyond = log.delete_records_before(Some(end.next())).await;
            assert!(matches!(beyond, Err(LogError::OffsetOutOfRange { .. })));
            assert!(log.delete_records_before(Some(Offset(-5))).await.is_err());
            assert_eq!(log.log_start_offset(), Offset(0));
            assert_eq!(
                log.delete_records_before(Some(Offset(30))).await.unwrap(),
                Offset(30)
            );
            assert_eq!(
                log.delete_records_before(Some(Offset(3))).await.unwrap(),
                Offset(30)
            );
            assert!(matches!(
                log.read(Offset(29), 1 << 20).await,
                Err(LogError::OffsetOutOfRange { .. })
            ));
            assert!(log.read(Offset(30), 1 << 20).await.is_ok());
            let segments = log.segment_count();
            assert!(log.enforce_retention(0).await.unwrap() > 0);
            assert!(log.segment_count() < segments);
            assert_eq!(log.log_start_offset(), Offset(30));
            log.close().await.unwrap();
            let log = PartitionLog::open(path, small_config()).await.unwrap();
            assert_eq!(log.log_start_offset(), Offset(30));
            assert_eq!(log.delete_records_before(None).await.unwrap(), end);
            log.close().await.unwrap();
        });
    }
}
