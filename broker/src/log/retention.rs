//! Retention: delete whole sealed segments by time, by size, and wholly below the
//! DeleteRecords floor, advancing the log start offset.
//!
//! Runs on the partition's shard. Never touches the active segment or one the appender
//! has not sealed yet (its bytes may not be durable). Segments leave the in-memory
//! list first, so readers see OffsetOutOfRange at once; open file handles keep the
//! bytes readable for a read already in progress. The unlinks are blocking syscalls:
//! glommio runs them on its blocking-thread pool, off the executor thread. Segment
//! files are removed only here (and with the whole directory by `PartitionLog::delete`).

use std::path::Path;

use super::partition::{PartitionLog, State};
use super::producers::PRODUCER_ID_EXPIRATION_MS;
use super::segment::Segment;
use super::segment::{index_path, log_path, time_index_path};
use super::{io_err, LogConfig, LogError, Offset};

impl PartitionLog {
    /// Delete expired sealed segments; returns how many were deleted.
    /// Also forgets idempotent producers idle for `producer.id.expiration.ms`.
    pub async fn enforce_retention(&self, now_ms: i64) -> Result<u64, LogError> {
        let victims = {
            let mut st = self.shared.state.borrow_mut();
            st.producers.expire(now_ms, PRODUCER_ID_EXPIRATION_MS);
            let count = expired_count(&st, &self.shared.config(), now_ms);
            let victims: Vec<Offset> = st.segments.drain(..count).map(|s| s.base_offset).collect();
            let log_start_offset = st.log_start_offset();
            st.cache.drop_before(log_start_offset);
            victims
        };
        if !victims.is_empty() {
            // A read ahead in a deleted segment would keep its file open.
            self.read_aheads.clear();
        }
        for &base in &victims {
            super::file_cache::forget(self.shared.log_id, base);
            remove_segment_files(&self.shared.dir, base).await?;
        }
        Ok(victims.len() as u64)
    }
}

/// How many leading segments may go. Kafka's size rule: drop the oldest while the log
/// stays at or above retention_bytes without it.
fn expired_count(st: &State, config: &LogConfig, now_ms: i64) -> usize {
    let mut total_bytes: u64 = st.segments.iter().map(Segment::size_bytes).sum();
    let closed = st.segments.len() - 1;
    let mut count = 0;
    for segment in st.segments.iter().take(closed) {
        if !segment.sealed {
            break;
        }
        let newest_ms = if segment.max_timestamp >= 0 {
            segment.max_timestamp
        } else {
            segment.created_ms
        };
        let by_time = config
            .retention_ms
            .is_some_and(|ms| newest_ms < now_ms.saturating_sub(ms as i64));
        // Wholly below DeleteRecords' floor (`start_offset.rs`).
        let deleted = segment.next_offset <= st.start_floor;
        let by_size = config
            .retention_bytes
            .is_some_and(|limit| total_bytes - segment.size_bytes() >= limit);
        if !(by_time || by_size || deleted) {
            break;
        }
        total_bytes -= segment.size_bytes();
        count += 1;
    }
    count
}

async fn remove_segment_files(dir: &Path, base: Offset) -> Result<(), LogError> {
    glommio::io::remove(log_path(dir, base))
        .await
        .map_err(io_err("removing segment"))?;
    let txn_index = super::txn_index::txn_index_path(dir, base);
    for path in [index_path(dir, base), time_index_path(dir, base), txn_index] {
        // Index files may be missing (never written or rebuilt on open): not an error.
        if let Err(error) = glommio::io::remove(&path).await {
            let error: std::io::Error = error.into();
            if error.kind() != std::io::ErrorKind::NotFound {
                return Err(LogError::Io {
                    op: "removing index file",
                    source: error,
                });
            }
        }
    }
    Ok(())
}
