//! Transaction markers: the control batch a transaction coordinator writes into
//! each partition of a transaction to commit or abort it, and reading the
//! marker type back from a stored control batch.
//!
//! Pure codec, no I/O. Invariants: an encoded marker is one uncompressed
//! RecordBatch v2 of exactly `MARKER_BATCH_BYTES` bytes that passes
//! `record_batch::validate` (CRC-32C over attributes..end, as every batch);
//! `marker_type` never panics, whatever the bytes.

use zerocopy::byteorder::big_endian::{I16, I32, I64, U32};
use zerocopy::IntoBytes;

use crate::record_batch::{
    BatchHeader, ATTR_CONTROL, ATTR_TRANSACTIONAL, CRC_START, HEADER_BYTES, LOG_OVERHEAD_BYTES, MAGIC_V2,
};
use crate::varint::{read_varint, read_varlong};

/// Kafka's `ControlRecordType` ids carried in a control record's key.
pub const CONTROL_TYPE_ABORT: i16 = 0;
pub const CONTROL_TYPE_COMMIT: i16 = 1;

/// The one record of a marker batch: length 16 (zigzag 0x20), attributes 0,
/// timestamp delta 0, offset delta 0, key length 4 (zigzag 0x08), key =
/// version 0 + type, value length 6 (zigzag 0x0c), value = version 0 +
/// coordinator epoch, no headers (0). Fixed size: the fields are fixed width.
const RECORD_BYTES: usize = 17;
/// Whole marker batch on the wire and on disk.
pub const MARKER_BATCH_BYTES: usize = HEADER_BYTES + RECORD_BYTES;
/// Where the CRC field sits in the header (after magic).
const CRC_AT: usize = 17;

/// The end of a transaction as a control batch: commit or abort.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MarkerFields {
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub commit: bool,
    pub coordinator_epoch: i32,
    pub timestamp_ms: i64,
}

/// Encode `m` as a Kafka control batch: base offset 0 (the log assigns it),
/// partition leader epoch -1, attributes transactional|control, base sequence
/// -1, one record. Allocation-free: the caller owns the array.
pub fn encode_marker(m: &MarkerFields) -> [u8; MARKER_BATCH_BYTES] {
    let header = BatchHeader {
        base_offset: I64::new(0),
        batch_length: I32::new((MARKER_BATCH_BYTES - LOG_OVERHEAD_BYTES) as i32),
        partition_leader_epoch: I32::new(-1),
        magic: MAGIC_V2,
        crc: U32::new(0),
        attributes: I16::new(ATTR_TRANSACTIONAL | ATTR_CONTROL),
        last_offset_delta: I32::new(0),
        base_timestamp: I64::new(m.timestamp_ms),
        max_timestamp: I64::new(m.timestamp_ms),
        producer_id: I64::new(m.producer_id),
        producer_epoch: I16::new(m.producer_epoch),
        base_sequence: I32::new(-1),
        records_count: I32::new(1),
    };
    let kind = if m.commit {
        CONTROL_TYPE_COMMIT
    } else {
        CONTROL_TYPE_ABORT
    };
    let mut out = [0u8; MARKER_BATCH_BYTES];
    out[..HEADER_BYTES].copy_from_slice(header.as_bytes());
    let record = &mut out[HEADER_BYTES..];
    // length, attributes, timestamp delta, offset delta, key length
    record[..5].copy_from_slice(&[0x20, 0, 0, 0, 0x08]);
    record[5..7].copy_from_slice(&0i16.to_be_bytes());
    record[7..9].copy_from_slice(&kind.to_be_bytes());
    record[9] = 0x0c; // value length 6
    record[10..12].copy_from_slice(&0i16.to_be_bytes());
    record[12..16].copy_from_slice(&m.coordinator_epoch.to_be_bytes());
    record[16] = 0; // no headers
    let crc = crc32c::crc32c(&out[CRC_START..]);
    out[CRC_AT..CRC_START].copy_from_slice(&crc.to_be_bytes());
    out
}

/// The control type (`CONTROL_TYPE_*`, or another id) of the first record of
/// the control batch `batch`, from its key: `None` when the bytes do not hold
/// a readable key of at least 4 bytes. Control batches are never compressed, so
/// the key sits a few bytes after the header.
pub fn marker_type(batch: &[u8]) -> Option<i16> {
    let mut at = HEADER_BYTES;
    let _length = read_varint(batch, &mut at)?;
    at = at.checked_add(1)?; // attributes
    let _timestamp_delta = read_varlong(batch, &mut at)?;
    let _offset_delta = read_varint(batch, &mut at)?;
    let key_len = read_varint(batch, &mut at)?;
    if key_len < 4 {
        return None;
    }
    let key = batch.get(at..at.checked_add(4)?)?;
    let version = i16::from_be_bytes([key[0], key[1]]);
    (version >= 0).then(|| i16::from_be_bytes([key[2], key[3]]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record_batch::{header, validate};

    fn fields(commit: bool) -> MarkerFields {
        MarkerFields {
            producer_id: 4242,
            producer_epoch: 7,
            commit,
            coordinator_epoch: 3,
            timestamp_ms: 1_700_000_000_000,
        }
    }

    #[test]
    fn given_a_marker_when_encoded_should_validate_and_read_back_its_type() {
        for commit in [true, false] {
            let bytes = encode_marker(&fields(commit));
            let info = validate(&bytes).expect("a valid batch");
            assert!(info.is_control());
            assert_eq!(info.attributes, 0x30, "transactional | control, no codec");
            assert_eq!((info.records_count, info.last_offset_delta), (1, 0));
            assert_eq!(
                (info.producer_id, info.producer_epoch, info.base_sequence),
                (4242, 7, -1)
            );
            let h = header(&bytes).expect("header");
            assert_eq!(h.partition_leader_epoch.get(), -1);
            let want = if commit {
                CONTROL_TYPE_COMMIT
            } else {
                CONTROL_TYPE_ABORT
            };
            assert_eq!(marker_type(&bytes), Some(want));
        }
    }

    /// The record bytes as Kafka's `EndTransactionMarker` + `DefaultRecord`
    /// write them (checked by hand against the Java layout).
    #[test]
    fn given_an_abort_marker_when_encoded_should_match_kafkas_record_layout() {
        let bytes = encode_marker(&fields(false));
        assert_eq!(bytes.len(), 78);
        assert_eq!(&bytes[8..12], &66i32.to_be_bytes(), "batch length = size - 12");
        let record = &bytes[HEADER_BYTES..];
        let want: [u8; 17] = [
            0x20, // length 16
            0x00, // attributes
            0x00, // timestamp delta
            0x00, // offset delta
            0x08, // key length 4
            0x00, 0x00, 0x00, 0x00, // key: version 0, type 0 (abort)
            0x0c, // value length 6
            0x00, 0x00, 0x00, 0x00, 0x00, 0x03, // value: version 0, coordinator epoch 3
            0x00, // headers
        ];
        assert_eq!(record, &want);
    }

    #[test]
    fn given_damaged_or_short_bytes_when_reading_the_type_should_answer_none() {
        let bytes = encode_marker(&fields(true));
        for cut in [0, 10, HEADER_BYTES, HEADER_BYTES + 5, HEADER_BYTES + 8] {
            assert_eq!(marker_type(&bytes[..cut]), None, "cut at {cut}");
        }
        let mut short_key = bytes;
        short_key[HEADER_BYTES + 4] = 0x02; // key length 1
        assert_eq!(marker_type(&short_key), None);
        let mut overlong = bytes;
        overlong[HEADER_BYTES..HEADER_BYTES + 5].fill(0xff);
        assert_eq!(marker_type(&overlong), None);
    }
}
