//! RecordBatch v2 (magic 2): a zero-copy view of the 61-byte header and the
//! checks the broker runs before a batch may touch the log.
//!
//! Invariant: a batch that passed `validate` has a correct CRC-32C over
//! `attributes..end`, `batch_length == bytes.len() - 12`, magic 2, and a record
//! count consistent with `last_offset_delta`. `base_offset` and
//! `partition_leader_epoch` lie outside the CRC, so the broker may rewrite
//! them without re-encoding anything.

use zerocopy::byteorder::big_endian::{I16, I32, I64, U32};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

/// Bytes of the fixed RecordBatch v2 header.
pub const HEADER_BYTES: usize = 61;
/// `base_offset` (8) + `batch_length` (4): the part of the header that
/// `batch_length` does not count.
pub const LOG_OVERHEAD_BYTES: usize = 12;
/// Where the CRC-covered region starts (`attributes`).
pub const CRC_START: usize = 21;
/// The only magic Weir stores. v0/v1 message sets are refused.
pub const MAGIC_V2: i8 = 2;

const _: () = assert!(core::mem::size_of::<BatchHeader>() == HEADER_BYTES);

/// The fixed header, big-endian, in wire order.
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned, Debug, Clone, Copy)]
#[repr(C)]
pub struct BatchHeader {
    pub base_offset: I64,
    pub batch_length: I32,
    pub partition_leader_epoch: I32,
    pub magic: i8,
    pub crc: U32,
    pub attributes: I16,
    pub last_offset_delta: I32,
    pub base_timestamp: I64,
    pub max_timestamp: I64,
    pub producer_id: I64,
    pub producer_epoch: I16,
    pub base_sequence: I32,
    pub records_count: I32,
}

/// Compression codec in attribute bits 0..2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

impl Compression {
    pub fn from_attributes(attributes: i16) -> Result<Self, BatchError> {
        match attributes & 0x7 {
            0 => Ok(Self::None),
            1 => Ok(Self::Gzip),
            2 => Ok(Self::Snappy),
            3 => Ok(Self::Lz4),
            4 => Ok(Self::Zstd),
            other => Err(BatchError::UnknownCompression(other as u8)),
        }
    }

    pub fn attribute_bits(self) -> i16 {
        match self {
            Self::None => 0,
            Self::Gzip => 1,
            Self::Snappy => 2,
            Self::Lz4 => 3,
            Self::Zstd => 4,
        }
    }
}

/// Attribute bit 3: the timestamps are LogAppendTime.
pub const ATTR_TIMESTAMP_LOG_APPEND: i16 = 1 << 3;
/// Attribute bit 4: the batch belongs to a transaction.
pub const ATTR_TRANSACTIONAL: i16 = 1 << 4;
/// Attribute bit 5: the batch is a control batch (commit/abort markers).
pub const ATTR_CONTROL: i16 = 1 << 5;

/// Why a batch was refused. Each variant maps to a Kafka error code in the
/// broker (`CORRUPT_MESSAGE` for all but `TooLarge`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    #[error("batch truncated: {available_bytes} bytes, need {needed_bytes}")]
    Truncated {
        available_bytes: usize,
        needed_bytes: usize,
    },
    #[error("batch length {batch_length} is inconsistent with {available_bytes} bytes")]
    BadLength {
        batch_length: i32,
        available_bytes: usize,
    },
    #[error("unsupported magic {0} (only RecordBatch v2 is accepted)")]
    BadMagic(i8),
    #[error("crc mismatch: header says {expected:#010x}, bytes give {actual:#010x}")]
    BadCrc { expected: u32, actual: u32 },
    #[error("records_count {records_count} does not fit last_offset_delta {last_offset_delta}")]
    BadCount {
        records_count: i32,
        last_offset_delta: i32,
    },
    #[error("unknown compression codec {0}")]
    UnknownCompression(u8),
    #[error("max_timestamp {max_timestamp} is before base_timestamp {base_timestamp}")]
    BadTimestamps { base_timestamp: i64, max_timestamp: i64 },
    #[error("batch of {batch_bytes} bytes exceeds the limit of {limit_bytes}")]
    TooLarge { batch_bytes: usize, limit_bytes: usize },
}

/// What the log needs to know about a validated batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchInfo {
    /// Whole batch bytes, `LOG_OVERHEAD_BYTES + batch_length`.
    pub size_bytes: usize,
    pub base_offset: i64,
    pub last_offset_delta: i32,
    pub records_count: i32,
    pub base_timestamp: i64,
    pub max_timestamp: i64,
    pub attributes: i16,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
}

impl BatchInfo {
    pub fn last_offset(&self) -> i64 {
        self.base_offset + i64::from(self.last_offset_delta)
    }

    pub fn compression(&self) -> Result<Compression, BatchError> {
        Compression::from_attributes(self.attributes)
    }

    pub fn is_control(&self) -> bool {
        self.attributes & ATTR_CONTROL != 0
    }
}

/// The header view of the batch at the start of `bytes`, if there are at least
/// `HEADER_BYTES`. Does not check anything else.
pub fn header(bytes: &[u8]) -> Result<&BatchHeader, BatchError> {
    let (header, _) = BatchHeader::ref_from_prefix(bytes).map_err(|_| BatchError::Truncated {
        available_bytes: bytes.len(),
        needed_bytes: HEADER_BYTES,
    })?;
    Ok(header)
}

/// Size of the batch at the start of `bytes` from its length field alone, or
/// `None` if fewer than `LOG_OVERHEAD_BYTES` are present or the length is
/// nonsensical. Used to walk a log or a Produce `records` field batch by batch.
pub fn peek_size_bytes(bytes: &[u8]) -> Option<usize> {
    let length_field: [u8; 4] = bytes.get(8..12)?.try_into().ok()?;
    let batch_length = i32::from_be_bytes(length_field);
    let header_rest = (HEADER_BYTES - LOG_OVERHEAD_BYTES) as i32;
    if batch_length < header_rest {
        return None;
    }
    Some(LOG_OVERHEAD_BYTES + batch_length as usize)
}

/// Validate exactly one batch occupying all of `bytes`: length, magic, CRC-32C,
/// count and timestamps. Cost is one CRC pass over the batch; no allocation.
pub fn validate(bytes: &[u8]) -> Result<BatchInfo, BatchError> {
    let h = header(bytes)?;
    let batch_length = h.batch_length.get();
    let expected_size = peek_size_bytes(bytes).ok_or(BatchError::BadLength {
        batch_length,
        available_bytes: bytes.len(),
    })?;
    if expected_size != bytes.len() {
        return Err(BatchError::BadLength {
            batch_length,
            available_bytes: bytes.len(),
        });
    }
    if h.magic != MAGIC_V2 {
        return Err(BatchError::BadMagic(h.magic));
    }
    let actual = crc32c::crc32c(&bytes[CRC_START..]);
    if actual != h.crc.get() {
        return Err(BatchError::BadCrc {
            expected: h.crc.get(),
            actual,
        });
    }
    let info = info_of(h, bytes.len());
    check_fields(&info)?;
    Ok(info)
}

fn info_of(h: &BatchHeader, size_bytes: usize) -> BatchInfo {
    BatchInfo {
        size_bytes,
        base_offset: h.base_offset.get(),
        last_offset_delta: h.last_offset_delta.get(),
        records_count: h.records_count.get(),
        base_timestamp: h.base_timestamp.get(),
        max_timestamp: h.max_timestamp.get(),
        attributes: h.attributes.get(),
        producer_id: h.producer_id.get(),
        producer_epoch: h.producer_epoch.get(),
        base_sequence: h.base_sequence.get(),
    }
}

fn check_fields(info: &BatchInfo) -> Result<(), BatchError> {
    Compression::from_attributes(info.attributes)?;
    // A compacted batch may hold fewer records than its offset span, never more,
    // and never a negative count. An empty batch (count 0) only arises from
    // compaction and is still well-formed.
    let count_ok = info.records_count >= 0
        && info.last_offset_delta >= 0
        && i64::from(info.records_count) <= i64::from(info.last_offset_delta) + 1;
    if !count_ok {
        return Err(BatchError::BadCount {
            records_count: info.records_count,
            last_offset_delta: info.last_offset_delta,
        });
    }
    // -1 means "no timestamp" for both; otherwise max must not precede base.
    if info.max_timestamp != -1 && info.base_timestamp != -1 && info.max_timestamp < info.base_timestamp {
        return Err(BatchError::BadTimestamps {
            base_timestamp: info.base_timestamp,
            max_timestamp: info.max_timestamp,
        });
    }
    Ok(())
}

/// Assign the batch's base offset in place. Touches only bytes 0..8, which the
/// CRC does not cover, so the batch stays valid and is never re-encoded.
pub fn set_base_offset(bytes: &mut [u8], base_offset: i64) {
    assert!(bytes.len() >= HEADER_BYTES, "set_base_offset on a short batch");
    bytes[0..8].copy_from_slice(&base_offset.to_be_bytes());
}

/// Set the partition leader epoch in place (bytes 12..16, outside the CRC).
pub fn set_partition_leader_epoch(bytes: &mut [u8], epoch: i32) {
    assert!(
        bytes.len() >= HEADER_BYTES,
        "set_partition_leader_epoch on a short batch"
    );
    bytes[12..16].copy_from_slice(&epoch.to_be_bytes());
}

/// Walk a byte string holding zero or more whole batches back to back (a
/// Produce `records` field, or a region of a segment file), yielding each
/// batch's byte range. Stops at the first incomplete or nonsensical header; the
/// caller compares the consumed length with the input length to detect that.
pub struct BatchWalker<'a> {
    bytes: &'a [u8],
    position: usize,
}

impl<'a> BatchWalker<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, position: 0 }
    }

    /// Bytes consumed by the batches yielded so far.
    pub fn position(&self) -> usize {
        self.position
    }
}

impl Iterator for BatchWalker<'_> {
    type Item = core::ops::Range<usize>;

    fn next(&mut self) -> Option<Self::Item> {
        let rest = &self.bytes[self.position..];
        let size = peek_size_bytes(rest)?;
        if size > rest.len() {
            return None;
        }
        let range = self.position..self.position + size;
        self.position += size;
        Some(range)
    }
}
