//! Encode records into one RecordBatch v2, optionally compressed, as a Kafka
//! producer would: base offset 0, CRC-32C set, producer fields if idempotent.
//! Owned by whoever builds batches (the load generator, tests); not shared.
//! Invariants: a builder is reusable (`clear` keeps every buffer, codec
//! contexts included), so a steady producer loop allocates nothing per record
//! or per batch; every batch it emits passes `record_batch::validate`. Like
//! librdkafka, it sends a batch uncompressed when compressing would not shrink
//! it (an option, on by default).

use bytes::BytesMut;
use zerocopy::byteorder::big_endian::{I16, I32, I64, U32};
use zerocopy::IntoBytes;

use crate::compression::{CompressionError, Compressor};
use crate::record_batch::{
    BatchHeader, Compression, ATTR_TRANSACTIONAL, CRC_START, HEADER_BYTES, LOG_OVERHEAD_BYTES, MAGIC_V2,
};
use crate::varint::{put_varint, put_varlong, varint_len, varlong_len};

/// Kafka's "no producer id / epoch / sequence" value for non-idempotent batches.
pub const NO_PRODUCER_ID: i64 = -1;
/// Java's `NO_PARTITION_LEADER_EPOCH`: the broker sets the real epoch.
const NO_PARTITION_LEADER_EPOCH: i32 = -1;
/// Where the CRC field sits in the header (after magic).
const CRC_AT: usize = 17;
const _: () = assert!(CRC_AT + 4 == CRC_START);

/// Why a batch could not be produced.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("a batch needs at least one record")]
    Empty,
    #[error("batch of {batch_bytes} bytes does not fit the i32 batch length")]
    TooLarge { batch_bytes: usize },
    #[error("cannot compress the batch")]
    Compression(#[from] CompressionError),
}

/// Accumulates records, then writes them as one batch with `finish_into`.
pub struct BatchBuilder {
    compression: Compression,
    compress_only_if_smaller: bool,
    producer_id: i64,
    producer_epoch: i16,
    base_sequence: i32,
    /// Attribute bit 4: the batch belongs to a transaction (a transactional
    /// producer sets it on every batch it writes inside one).
    transactional: bool,
    /// Encoded records, uncompressed, back to back.
    records: Vec<u8>,
    record_count: usize,
    base_timestamp_ms: i64,
    max_timestamp_ms: i64,
    compressed: Vec<u8>,
    compressor: Compressor,
}

impl BatchBuilder {
    pub fn new(compression: Compression) -> Self {
        Self {
            compression,
            compress_only_if_smaller: true,
            producer_id: NO_PRODUCER_ID,
            producer_epoch: -1,
            base_sequence: -1,
            transactional: false,
            records: Vec::new(),
            record_count: 0,
            base_timestamp_ms: -1,
            max_timestamp_ms: -1,
            compressed: Vec::new(),
            compressor: Compressor::new(),
        }
    }

    /// Mark batches as an idempotent producer's (builder style).
    pub fn with_producer(mut self, producer_id: i64, producer_epoch: i16, base_sequence: i32) -> Self {
        self.set_producer(producer_id, producer_epoch, base_sequence);
        self
    }

    /// Set the producer fields for the next batch (an idempotent producer
    /// advances `base_sequence` by the record count after each batch).
    pub fn set_producer(&mut self, producer_id: i64, producer_epoch: i16, base_sequence: i32) {
        self.producer_id = producer_id;
        self.producer_epoch = producer_epoch;
        self.base_sequence = base_sequence;
    }

    /// Mark the next batches as transactional (kept across `clear`, like the
    /// producer fields).
    pub fn set_transactional(&mut self, transactional: bool) {
        self.transactional = transactional;
    }

    /// Whether to fall back to no compression when the codec does not shrink
    /// the records (librdkafka's behaviour). Default: true.
    pub fn set_compress_only_if_smaller(&mut self, enabled: bool) {
        self.compress_only_if_smaller = enabled;
    }

    pub fn compression(&self) -> Compression {
        self.compression
    }

    pub fn set_compression(&mut self, compression: Compression) {
        self.compression = compression;
    }

    /// Append one record. Header keys are non-null strings in Kafka; values may be null.
    pub fn push(
        &mut self,
        timestamp_ms: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[(&[u8], Option<&[u8]>)],
    ) {
        assert!(
            self.record_count < i32::MAX as usize,
            "offset delta would overflow i32"
        );
        if self.record_count == 0 {
            self.base_timestamp_ms = timestamp_ms;
            self.max_timestamp_ms = timestamp_ms;
        }
        self.max_timestamp_ms = self.max_timestamp_ms.max(timestamp_ms);
        let timestamp_delta = timestamp_ms.wrapping_sub(self.base_timestamp_ms);
        let offset_delta = self.record_count as i32;
        let mut body_bytes = 1 + varlong_len(timestamp_delta) + varint_len(offset_delta);
        body_bytes += field_len(key) + field_len(value) + varint_len(len_i32(headers.len()));
        for (header_key, header_value) in headers {
            body_bytes += field_len(Some(header_key)) + field_len(*header_value);
        }
        let body_len = len_i32(body_bytes);
        self.records.reserve(varint_len(body_len) + body_bytes);
        put_varint(&mut self.records, body_len);
        let body_start = self.records.len();
        self.records.push(0); // record attributes: unused in v2
        put_varlong(&mut self.records, timestamp_delta);
        put_varint(&mut self.records, offset_delta);
        put_field(&mut self.records, key);
        put_field(&mut self.records, value);
        put_varint(&mut self.records, len_i32(headers.len()));
        for (header_key, header_value) in headers {
            put_field(&mut self.records, Some(header_key));
            put_field(&mut self.records, *header_value);
        }
        debug_assert_eq!(self.records.len() - body_start, body_bytes);
        self.record_count += 1;
    }

    pub fn record_count(&self) -> usize {
        self.record_count
    }

    /// Size of the batch if written uncompressed: an upper bound on what
    /// `finish_into` appends whenever compression is skipped when not smaller.
    pub fn estimated_size_bytes(&self) -> usize {
        HEADER_BYTES + self.records.len()
    }

    /// Append one whole batch (base offset 0, CRC set) to `out` and clear the
    /// builder. On error `out` is unchanged and the records are kept.
    pub fn finish_into(&mut self, out: &mut BytesMut) -> Result<(), BuildError> {
        if self.record_count == 0 {
            return Err(BuildError::Empty);
        }
        let codec = self.choose_codec()?;
        let payload: &[u8] = if codec == Compression::None {
            &self.records
        } else {
            &self.compressed
        };
        let batch_bytes = HEADER_BYTES + payload.len();
        let batch_length = i32::try_from(batch_bytes - LOG_OVERHEAD_BYTES)
            .map_err(|_| BuildError::TooLarge { batch_bytes })?;
        let header = BatchHeader {
            base_offset: I64::new(0),
            batch_length: I32::new(batch_length),
            partition_leader_epoch: I32::new(NO_PARTITION_LEADER_EPOCH),
            magic: MAGIC_V2,
            crc: U32::new(0),
            attributes: I16::new(
                codec.attribute_bits() | if self.transactional { ATTR_TRANSACTIONAL } else { 0 },
            ),
            last_offset_delta: I32::new(self.record_count as i32 - 1),
            base_timestamp: I64::new(self.base_timestamp_ms),
            max_timestamp: I64::new(self.max_timestamp_ms),
            producer_id: I64::new(self.producer_id),
            producer_epoch: I16::new(self.producer_epoch),
            base_sequence: I32::new(self.base_sequence),
            records_count: I32::new(self.record_count as i32),
        };
        let start = out.len();
        out.reserve(batch_bytes);
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(payload);
        let crc = crc32c::crc32c(&out[start + CRC_START..]);
        out[start + CRC_AT..start + CRC_START].copy_from_slice(&crc.to_be_bytes());
        assert_eq!(out.len() - start, batch_bytes);
        self.clear();
        Ok(())
    }

    /// Compress into `self.compressed` if a codec is set; returns the codec the
    /// batch will carry (None when compression was skipped).
    fn choose_codec(&mut self) -> Result<Compression, BuildError> {
        if self.compression == Compression::None {
            return Ok(Compression::None);
        }
        self.compressor
            .compress(self.compression, &self.records, &mut self.compressed)?;
        if self.compress_only_if_smaller && self.compressed.len() >= self.records.len() {
            return Ok(Compression::None);
        }
        Ok(self.compression)
    }

    /// Drop the records, keep every buffer and the producer fields.
    pub fn clear(&mut self) {
        self.records.clear();
        self.compressed.clear();
        self.record_count = 0;
        self.base_timestamp_ms = -1;
        self.max_timestamp_ms = -1;
    }
}

/// Programmer error if a length passes i32: no Kafka batch can carry it.
fn len_i32(len: usize) -> i32 {
    i32::try_from(len).expect("record field longer than i32::MAX bytes")
}

fn field_len(field: Option<&[u8]>) -> usize {
    match field {
        None => varint_len(-1),
        Some(bytes) => varint_len(len_i32(bytes.len())) + bytes.len(),
    }
}

fn put_field(out: &mut Vec<u8>, field: Option<&[u8]>) {
    match field {
        None => put_varint(out, -1),
        Some(bytes) => {
            put_varint(out, len_i32(bytes.len()));
            out.extend_from_slice(bytes);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record_batch::validate;
    use crate::records::for_each_record;

    #[test]
    fn given_transactional_builder_when_finishing_should_set_bit_4_and_keep_codec_bits() {
        let mut builder = BatchBuilder::new(Compression::Lz4).with_producer(7, 1, 0);
        builder.set_compress_only_if_smaller(false);
        builder.set_transactional(true);
        for _ in 0..2 {
            builder.push(1, None, Some(b"value"), &[]);
            let mut out = BytesMut::new();
            builder.finish_into(&mut out).unwrap();
            let info = validate(&out).unwrap();
            assert_eq!(info.attributes & ATTR_TRANSACTIONAL, ATTR_TRANSACTIONAL);
            assert_eq!(info.compression().unwrap(), Compression::Lz4);
        }
        builder.set_transactional(false);
        builder.push(1, None, Some(b"value"), &[]);
        let mut out = BytesMut::new();
        builder.finish_into(&mut out).unwrap();
        assert_eq!(validate(&out).unwrap().attributes & ATTR_TRANSACTIONAL, 0);
    }

    #[test]
    fn given_records_when_built_and_iterated_should_round_trip_for_every_codec() {
        for codec in [
            Compression::None,
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ] {
            let mut builder = BatchBuilder::new(codec).with_producer(7, 1, 42);
            let value = vec![b'v'; 300];
            for i in 0..10i64 {
                builder.push(
                    1_000 + i,
                    Some(b"key"),
                    Some(&value),
                    &[(b"h", Some(b"x")), (b"n", None)],
                );
            }
            let mut out = BytesMut::new();
            builder.finish_into(&mut out).unwrap();
            assert_eq!(builder.record_count(), 0);
            let info = validate(&out).unwrap();
            assert_eq!(info.compression().unwrap(), codec);
            assert_eq!(
                (info.records_count, info.producer_id, info.base_sequence),
                (10, 7, 42)
            );
            let mut scratch = Vec::new();
            let mut seen = 0;
            let count = for_each_record(&out, &mut scratch, 1 << 20, |r| {
                assert_eq!((r.offset, r.timestamp_ms), (seen, 1_000 + seen));
                assert_eq!((r.key, r.value), (Some(&b"key"[..]), Some(&value[..])));
                let headers: Vec<_> = r.headers.iter().collect();
                assert_eq!(headers, vec![(&b"h"[..], Some(&b"x"[..])), (&b"n"[..], None)]);
                seen += 1;
            })
            .unwrap();
            assert_eq!(count, 10);
        }
    }

    #[test]
    fn given_incompressible_records_when_finished_should_send_uncompressed_unless_forced() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let noise: Vec<u8> = (0..2000)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 32) as u8
            })
            .collect();
        let mut builder = BatchBuilder::new(Compression::Gzip);
        let mut out = BytesMut::new();
        builder.push(1, None, Some(&noise), &[]);
        builder.finish_into(&mut out).unwrap();
        assert_eq!(validate(&out).unwrap().compression().unwrap(), Compression::None);
        builder.set_compress_only_if_smaller(false);
        builder.push(1, None, Some(&noise), &[]);
        let first_len = out.len();
        builder.finish_into(&mut out).unwrap();
        assert_eq!(
            validate(&out[first_len..]).unwrap().compression().unwrap(),
            Compression::Gzip
        );
    }

    #[test]
    fn given_an_empty_builder_when_finished_should_refuse() {
        let mut out = BytesMut::new();
        assert!(matches!(
            BatchBuilder::new(Compression::None).finish_into(&mut out),
            Err(BuildError::Empty)
        ));
        assert!(out.is_empty());
    }
}
