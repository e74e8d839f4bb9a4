//! The consume ceiling's Fetch answers (`serve_fetch_bytes`): every Fetch gets,
//! per partition, the same pre-built batches of 1 KiB records, renumbered to
//! start at the offset asked for, so a consumer reads forever without the
//! null broker storing or building anything per request beyond one copy.
//!
//! Built once at start; read-only after (shared by connection threads).

use bytes::{Bytes, BytesMut};
use weir_protocol::builder::BatchBuilder;
use weir_protocol::record_batch::Compression;

/// Value bytes of each served record (the self-check's record size).
pub const SERVED_RECORD_BYTES: usize = 1024;
/// Bytes of each served batch (the generator's default --batch-bytes).
const SERVED_BATCH_BYTES: usize = 64 << 10;

/// `copies` identical batches of `records_per_batch` records each.
pub(super) struct Served {
    batch: Bytes,
    records_per_batch: i64,
    copies: usize,
}

impl Served {
    /// Batches adding up to about `bytes` (at least one).
    pub(super) fn build(bytes: usize) -> Self {
        let value: Vec<u8> = (0..SERVED_RECORD_BYTES)
            .map(|i| b'a' + (i * 7 % 26) as u8)
            .collect();
        let mut builder = BatchBuilder::new(Compression::None);
        let mut records = 0i64;
        while builder.estimated_size_bytes() + SERVED_RECORD_BYTES < SERVED_BATCH_BYTES {
            builder.push(0, None, Some(&value), &[]);
            records += 1;
        }
        let mut out = BytesMut::new();
        builder
            .finish_into(&mut out)
            .expect("a non-empty batch of 1 KiB records encodes");
        let batch = out.freeze();
        let copies = (bytes / batch.len()).max(1);
        Self {
            batch,
            records_per_batch: records,
            copies,
        }
    }

    /// The batches for a fetch at `offset`, at most `max_bytes` (at least one
    /// batch), and the high watermark just past them.
    pub(super) fn read(&self, offset: i64, max_bytes: i32) -> (Bytes, i64) {
        let fit = (max_bytes.max(0) as usize / self.batch.len()).clamp(1, self.copies);
        let mut out = BytesMut::with_capacity(fit * self.batch.len());
        for i in 0..fit {
            let start = out.len();
            out.extend_from_slice(&self.batch);
            // The base offset is outside the CRC: renumbering keeps batches valid.
            let base = offset + i as i64 * self.records_per_batch;
            out[start..start + 8].copy_from_slice(&base.to_be_bytes());
        }
        (out.freeze(), offset + fit as i64 * self.records_per_batch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use weir_protocol::record_batch::{self, BatchWalker};

    #[test]
    fn given_an_offset_when_reading_served_batches_should_number_them_from_it_with_valid_crcs() {
        let served = Served::build(256 << 10);
        let (bytes, hw) = served.read(1_000, 1 << 20);
        let mut next = 1_000;
        let mut batches = 0;
        for range in BatchWalker::new(&bytes) {
            let batch = &bytes[range];
            record_batch::validate(batch).expect("CRC holds after renumbering");
            let h = record_batch::header(batch).expect("a batch header");
            assert_eq!(h.base_offset.get(), next);
            next += i64::from(h.last_offset_delta.get()) + 1;
            batches += 1;
        }
        assert_eq!((batches, hw), (4, next));
    }
}
