//! Test-only helpers: a minimal RecordBatch v2 encoder (valid CRC-32C), executors on
//! real ext4 directories, and small config presets. Not used outside `cfg(test)`.

use std::future::Future;
use std::path::PathBuf;

use bytes::{BufMut, Bytes, BytesMut};
use glommio::{LocalExecutorBuilder, Placement};
use weir_protocol::record_batch::{CRC_START, HEADER_BYTES};

use super::{FileReadPath, FlushPolicy, LogConfig, Offset, PartitionLog, ReadResult};

fn put_varint(out: &mut BytesMut, value: i64) {
    let mut zigzag = ((value << 1) ^ (value >> 63)) as u64;
    while zigzag >= 0x80 {
        out.put_u8((zigzag as u8 & 0x7f) | 0x80);
        zigzag >>= 7;
    }
    out.put_u8(zigzag as u8);
}

/// A valid uncompressed v2 batch of `records` records, each with a `value_bytes` value
/// filled with `fill`; record i has timestamp `base_ts + i`.
pub fn batch(records: usize, value_bytes: usize, base_ts: i64, fill: u8) -> Bytes {
    assert!(records > 0);
    let mut body = BytesMut::new();
    for i in 0..records {
        let mut record = BytesMut::new();
        record.put_u8(0); // attributes
        put_varint(&mut record, i as i64); // timestamp delta
        put_varint(&mut record, i as i64); // offset delta
        put_varint(&mut record, -1); // null key
        put_varint(&mut record, value_bytes as i64);
        record.put_bytes(fill, value_bytes);
        put_varint(&mut record, 0); // no headers
        put_varint(&mut body, record.len() as i64);
        body.put_slice(&record);
    }
    let mut out = BytesMut::with_capacity(HEADER_BYTES + body.len());
    out.put_i64(0); // base offset: the log assigns it
    out.put_i32((HEADER_BYTES - 12 + body.len()) as i32);
    out.put_i32(0); // partition leader epoch
    out.put_i8(2); // magic
    out.put_u32(0); // crc, patched below
    out.put_i16(0); // attributes
    out.put_i32(records as i32 - 1); // last offset delta
    out.put_i64(base_ts);
    out.put_i64(base_ts + records as i64 - 1);
    out.put_i64(-1); // producer id
    out.put_i16(-1);
    out.put_i32(-1);
    out.put_i32(records as i32);
    out.put_slice(&body);
    let crc = crc32c::crc32c(&out[CRC_START..]);
    out[17..21].copy_from_slice(&crc.to_be_bytes());
    out.freeze()
}

/// A temp dir on the real filesystem (ext4 under the target dir), never tmpfs, so
/// Direct I/O is exercised for real.
pub fn data_dir() -> tempfile::TempDir {
    let base = std::env::var_os("WEIR_TEST_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/test-data"),
        PathBuf::from,
    );
    std::fs::create_dir_all(&base).expect("test data base dir");
    tempfile::tempdir_in(base).expect("temp dir")
}

/// The longest one test's executor may run. The slowest (a model-test case) takes
/// well under a second; a hang shows up in two minutes, not at CI's limit.
pub const EXECUTOR_TEST_DEADLINE: std::time::Duration = std::time::Duration::from_secs(120);

/// Run `fut` on a fresh glommio executor on this thread.
/// Under a deadline: a reactor that never wakes fails the run with stacks.
pub fn run<T: 'static>(fut: impl Future<Output = T> + 'static) -> T {
    let _deadline = crate::deadline::arm(crate::deadline::this_test(), EXECUTOR_TEST_DEADLINE);
    LocalExecutorBuilder::new(Placement::Unbound)
        .make()
        .expect("executor")
        .run(fut)
}

/// Small segments and cache so tests exercise rolls and file reads.
pub fn small_config() -> LogConfig {
    LogConfig {
        segment_bytes: 16 * 1024,
        index_interval_bytes: 512,
        tail_cache_bytes: 2048,
        flush: FlushPolicy::Interval {
            ms: 50,
            bytes: 1 << 20,
        },
        ..LogConfig::default()
    }
}

/// Append `b`; its bytes as the log stores them (the base offset it was given).
pub async fn append_stored(log: &PartitionLog, b: Bytes) -> Bytes {
    let base = log.append(b.clone()).await.expect("append").base_offset;
    let mut stored = b.to_vec();
    stored[..8].copy_from_slice(&base.0.to_be_bytes());
    Bytes::from(stored)
}

/// Append `count` batches of 3 records of `value_bytes` each, 10 ms apart; their
/// bytes as stored, in offset order.
pub async fn append_many(log: &PartitionLog, count: usize, value_bytes: usize) -> Vec<Bytes> {
    let mut out = Vec::with_capacity(count);
    for i in 0..count {
        out.push(append_stored(log, batch(3, value_bytes, 1000 + i as i64 * 10, i as u8)).await);
    }
    out
}

/// Every batch from `from` to the log end, in order, `max_bytes` at a time on `path`.
/// Each answer must hold a batch; `check` sees it (and the offset it was read at)
/// before its batches are taken, for the caller's own bound or origin assertions.
pub async fn read_to_end(
    log: &PartitionLog,
    from: i64,
    max_bytes: usize,
    path: FileReadPath,
    mut check: impl FnMut(i64, &ReadResult),
) -> Vec<Bytes> {
    let mut out = Vec::new();
    let mut offset = from;
    while offset < log.log_end_offset().0 {
        let result = log
            .read_with(Offset(offset), max_bytes, path)
            .await
            .expect("read");
        assert!(!result.batches.is_empty(), "no batch at {offset}");
        check(offset, &result);
        for b in result.batches {
            let h = weir_protocol::record_batch::validate(&b).expect("valid");
            offset = h.last_offset() + 1;
            out.push(b);
        }
    }
    out
}
