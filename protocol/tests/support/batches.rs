//! Hand-made RecordBatch v2 bytes for the batch tests (`record_batches.rs`,
//! `queue_header_scan.rs`): the client fixtures' directory, an envelope around
//! arbitrary record bytes, and a CRC recomputed after an edit. Include with
//! `mod support { pub mod batches; }`.

#![allow(dead_code)] // each test binary uses its own part

use std::path::PathBuf;

use bytes::BytesMut;
use weir_protocol::builder::BatchBuilder;
use weir_protocol::record_batch::{Compression, CRC_START, HEADER_BYTES};

/// Batches captured from real clients, each `.bin` with its `.json` sidecar.
pub fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/record-batches")
}

/// A valid uncompressed batch header around `payload` as its record bytes,
/// claiming `count` records (last offset delta `count - 1`, at least 0). The
/// CRC is stale: `reseal` it if the test needs one that holds.
pub fn envelope(payload: &[u8], count: i32) -> BytesMut {
    let mut builder = BatchBuilder::new(Compression::None);
    builder.push(0, None, None, &[]);
    let mut out = BytesMut::new();
    builder.finish_into(&mut out).unwrap();
    out.truncate(HEADER_BYTES);
    out.extend_from_slice(payload);
    let batch_length = (out.len() - 12) as i32;
    out[8..12].copy_from_slice(&batch_length.to_be_bytes());
    out[23..27].copy_from_slice(&(count - 1).max(0).to_be_bytes());
    out[57..61].copy_from_slice(&count.to_be_bytes());
    out
}

/// Recompute the CRC-32C of a batch edited in place.
pub fn reseal(batch: &mut [u8]) {
    let crc = crc32c::crc32c(&batch[CRC_START..]);
    batch[CRC_START - 4..CRC_START].copy_from_slice(&crc.to_be_bytes());
}
