//! TEMPORARY in-memory stand-in of the partition log, replaced by the real module from
//! the `log` branch. Lets the network layer compile against the agreed API.
#![allow(dead_code, unused_variables, clippy::unused_async)]

use bytes::Bytes;
use std::path::{Path, PathBuf};
use std::rc::Rc;

#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Offset(pub i64);

#[derive(Debug, Clone)]
pub struct LogConfig {
    pub segment_bytes: u64,
    pub segment_ms: Option<u64>,
    pub index_interval_bytes: u32,
    pub retention_bytes: Option<u64>,
    pub retention_ms: Option<u64>,
    pub flush: FlushPolicy,
    pub tail_cache_bytes: usize,
    pub max_batch_bytes: usize,
}
impl Default for LogConfig {
    fn default() -> Self {
        Self {
            segment_bytes: 1 << 30,
            segment_ms: None,
            index_interval_bytes: 4096,
            retention_bytes: None,
            retention_ms: None,
            flush: FlushPolicy::Interval {
                ms: 1000,
                bytes: 1 << 20,
            },
            tail_cache_bytes: 16 << 20,
            max_batch_bytes: 1_048_588,
        }
    }
}
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlushPolicy {
    EveryAppend,
    Interval { ms: u64, bytes: u64 },
}
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error(transparent)]
    Batch(#[from] weir_protocol::record_batch::BatchError),
    #[error("too large")]
    TooLarge { size_bytes: usize, limit_bytes: usize },
    #[error("out of range")]
    OffsetOutOfRange {
        requested: Offset,
        log_start_offset: Offset,
        log_end_offset: Offset,
    },
    #[error("io")]
    Io(#[source] std::io::Error),
    #[error("closed")]
    Closed,
}
pub struct AppendResult {
    pub base_offset: Offset,
    pub last_offset: Offset,
    pub log_start_offset: Offset,
}
pub struct ReadResult {
    pub batches: Vec<Bytes>,
    pub high_watermark: Offset,
    pub log_start_offset: Offset,
    pub from_cache: bool,
}
pub struct PartitionLog {
    batches: std::cell::RefCell<Vec<(i64, Bytes)>>,
    next: std::cell::Cell<i64>,
    config: LogConfig,
}
impl PartitionLog {
    pub async fn open(dir: PathBuf, config: LogConfig) -> Result<Rc<PartitionLog>, LogError> {
        Ok(Rc::new(PartitionLog {
            batches: Default::default(),
            next: std::cell::Cell::new(0),
            config,
        }))
    }
    pub async fn append(&self, batch: Bytes) -> Result<AppendResult, LogError> {
        if batch.len() > self.config.max_batch_bytes {
            return Err(LogError::TooLarge {
                size_bytes: batch.len(),
                limit_bytes: self.config.max_batch_bytes,
            });
        }
        let info = weir_protocol::record_batch::validate(&batch)?;
        let base = self.next.get();
        let mut m = bytes::BytesMut::from(&batch[..]);
        weir_protocol::record_batch::set_base_offset(&mut m, base);
        self.batches.borrow_mut().push((base, m.freeze()));
        self.next.set(base + i64::from(info.last_offset_delta) + 1);
        Ok(AppendResult {
            base_offset: Offset(base),
            last_offset: Offset(self.next.get() - 1),
            log_start_offset: Offset(0),
        })
    }
    pub async fn wait_durable(&self, offset: Offset) -> Result<(), LogError> {
        Ok(())
    }
    pub fn log_end_offset(&self) -> Offset {
        Offset(self.next.get())
    }
    pub fn log_start_offset(&self) -> Offset {
        Offset(0)
    }
    pub fn durable_end_offset(&self) -> Offset {
        Offset(self.next.get())
    }
    pub async fn read(&self, offset: Offset, max_bytes: usize) -> Result<ReadResult, LogError> {
        if offset.0 < 0 || offset.0 > self.next.get() {
            return Err(LogError::OffsetOutOfRange {
                requested: offset,
                log_start_offset: Offset(0),
                log_end_offset: Offset(self.next.get()),
            });
        }
        let b = self.batches.borrow();
        let mut out = Vec::new();
        let mut used = 0;
        for (base, bytes) in b.iter() {
            let last = base
                + i64::from(
                    weir_protocol::record_batch::header(bytes)
                        .unwrap()
                        .last_offset_delta
                        .get(),
                );
            if last < offset.0 {
                continue;
            }
            if used > 0 && used + bytes.len() > max_bytes {
                break;
            }
            used += bytes.len();
            out.push(bytes.clone());
        }
        Ok(ReadResult {
            batches: out,
            high_watermark: Offset(self.next.get()),
            log_start_offset: Offset(0),
            from_cache: true,
        })
    }
    pub async fn offset_for_timestamp(&self, ts_ms: i64) -> Result<Option<(Offset, i64)>, LogError> {
        for (base, bytes) in self.batches.borrow().iter() {
            let h = weir_protocol::record_batch::header(bytes).unwrap();
            if h.max_timestamp.get() >= ts_ms {
                return Ok(Some((Offset(*base), h.max_timestamp.get())));
            }
        }
        Ok(None)
    }
    pub async fn flush(&self) -> Result<(), LogError> {
        Ok(())
    }
    pub async fn enforce_retention(&self, now_ms: i64) -> Result<u64, LogError> {
        Ok(0)
    }
    pub async fn close(&self) -> Result<(), LogError> {
        Ok(())
    }
    pub async fn delete(&self) -> Result<(), LogError> {
        Ok(())
    }
    pub fn size_bytes(&self) -> u64 {
        0
    }
}
pub async fn direct_io_probe(data_dir: &Path) -> Result<(), LogError> {
    Ok(())
}
