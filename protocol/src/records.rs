//! Iteration over the records of one RecordBatch v2: offsets, timestamps, keys,
//! values and headers as zero-copy slices of the batch (or, for a compressed
//! batch, of a caller-owned scratch buffer that is reused batch after batch).
//! Pure; any shard. Invariants: nothing is allocated per record; decompression
//! is bounded by the caller's limit; every length is checked against the bytes
//! present, so hostile input yields a `RecordError`, never a panic. For an
//! uncompressed batch held in `bytes::Bytes`, `Bytes::slice_ref(record.value)`
//! turns a slice into a shared handle without a copy.

use crate::compression::{self, CompressionError};
use crate::record_batch::{
    self, BatchError, BatchInfo, Compression, ATTR_TIMESTAMP_LOG_APPEND, HEADER_BYTES,
};
use crate::varint::{read_varint, read_varlong};

/// Why the records of a batch could not be read.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("invalid batch")]
    Batch(#[from] BatchError),
    #[error("cannot decompress the records")]
    Compression(#[from] CompressionError),
    #[error("record {record_index} is malformed at payload byte {position}: {reason}")]
    Malformed {
        record_index: usize,
        position: usize,
        reason: &'static str,
    },
    #[error("{trailing_bytes} bytes follow the last of {records_count} records")]
    TrailingBytes {
        records_count: usize,
        trailing_bytes: usize,
    },
}

/// One record, borrowed from the batch or the scratch buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record<'a> {
    /// `base_offset + offset_delta`.
    pub offset: i64,
    /// `base_timestamp + timestamp_delta`, or the batch's `max_timestamp` for
    /// LogAppendTime batches (Kafka's rule).
    pub timestamp_ms: i64,
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
    pub headers: Headers<'a>,
}

/// The headers of one record, already bounds-checked; iterate them as
/// `(key, value)` pairs without allocating.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Headers<'a> {
    bytes: &'a [u8],
    count: usize,
}

impl<'a> Headers<'a> {
    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    pub fn iter(&self) -> HeaderIter<'a> {
        HeaderIter {
            bytes: self.bytes,
            position: 0,
            remaining: self.count,
        }
    }
}

impl<'a> IntoIterator for Headers<'a> {
    type Item = (&'a [u8], Option<&'a [u8]>);
    type IntoIter = HeaderIter<'a>;

    fn into_iter(self) -> HeaderIter<'a> {
        self.iter()
    }
}

/// Iterator over validated header bytes (see `parse_headers`).
pub struct HeaderIter<'a> {
    bytes: &'a [u8],
    position: usize,
    remaining: usize,
}

impl<'a> Iterator for HeaderIter<'a> {
    type Item = (&'a [u8], Option<&'a [u8]>);

    fn next(&mut self) -> Option<Self::Item> {
        if self.remaining == 0 {
            return None;
        }
        self.remaining -= 1;
        let mut cursor = Cursor {
            bytes: self.bytes,
            position: self.position,
        };
        let key = cursor.bytes_field().ok().flatten();
        let value = cursor.bytes_field().ok()?;
        debug_assert!(key.is_some(), "headers were validated when the record was parsed");
        self.position = cursor.position;
        Some((key.unwrap_or_default(), value))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

/// Records of one batch, in order. Yields an error (then stops) on the first
/// malformed record, and checks that the count matches and nothing trails.
pub struct RecordIter<'a> {
    payload: &'a [u8],
    position: usize,
    record_index: usize,
    records_count: usize,
    base_offset: i64,
    base_timestamp: i64,
    log_append_time_ms: Option<i64>,
    done: bool,
}

/// Validate `batch` (length, magic, CRC, fields), decompress its records into
/// `scratch` if needed, and return an iterator over them. `scratch` keeps its
/// capacity for the next call; no allocation happens per record.
pub fn records<'a>(
    batch: &'a [u8],
    scratch: &'a mut Vec<u8>,
    decompressed_max_bytes: usize,
) -> Result<RecordIter<'a>, RecordError> {
    let info = record_batch::validate(batch)?;
    let compressed = &batch[HEADER_BYTES..];
    let payload: &'a [u8] = match info.compression()? {
        Compression::None => compressed,
        codec => {
            compression::decompress(codec, compressed, scratch, decompressed_max_bytes)?;
            scratch.as_slice()
        }
    };
    Ok(RecordIter::new(&info, payload))
}

/// Whether a header key of some record of the uncompressed `batch` satisfies
/// `wanted`, read in place with no CRC pass, no header checks and no
/// allocation: a few varints per record, plus the keys of records that have
/// headers (values are skipped by their lengths, never read). The produce path
/// runs this on every batch, so it builds no `Record`; its framing rules are
/// `RecordIter`'s. `None` when it cannot tell: a batch shorter than its header,
/// a codec (or an unknown one) in its attributes, a negative record count, or
/// framing `RecordIter` would refuse (a bad or overlong varint, a length past
/// the bytes present, fields that disagree with their record's length, fewer
/// records than counted, trailing bytes). It may answer `Some(true)` before
/// reaching malformed framing further on.
pub fn any_header_key(batch: &[u8], mut wanted: impl FnMut(&[u8]) -> bool) -> Option<bool> {
    let header = record_batch::header(batch).ok()?;
    if Compression::from_attributes(header.attributes.get()).ok()? != Compression::None {
        return None;
    }
    let records_count = usize::try_from(header.records_count.get()).ok()?;
    let payload = &batch[HEADER_BYTES..];
    let mut position = 0;
    for _ in 0..records_count {
        let length = usize::try_from(read_varint(payload, &mut position)?).ok()?;
        let end = position.checked_add(length)?;
        let body = payload.get(position..end)?;
        // attributes (one byte), timestampDelta, offsetDelta, key, value.
        let mut at = 1;
        read_varlong(body, &mut at)?;
        read_varint(body, &mut at)?;
        skip_bytes_field(body, &mut at)?;
        skip_bytes_field(body, &mut at)?;
        let headers = usize::try_from(read_varint(body, &mut at)?).ok()?;
        // Bounded by the body: each header takes at least two bytes.
        for _ in 0..headers {
            let key_length = usize::try_from(read_varint(body, &mut at)?).ok()?;
            let key = body.get(at..at.checked_add(key_length)?)?;
            if wanted(key) {
                return Some(true);
            }
            at += key_length;
            skip_bytes_field(body, &mut at)?;
        }
        if at != body.len() {
            return None;
        }
        position = end;
    }
    (position == payload.len()).then_some(false)
}

/// Step over a varint length and that many bytes (-1, null, has none).
fn skip_bytes_field(bytes: &[u8], at: &mut usize) -> Option<()> {
    let length = read_varint(bytes, at)?;
    if length == -1 {
        return Some(());
    }
    let end = at.checked_add(usize::try_from(length).ok()?)?;
    if end > bytes.len() {
        return None;
    }
    *at = end;
    Some(())
}

/// Call `f` for every record of `batch`; returns how many there were.
/// See `records` for validation and the scratch buffer.
pub fn for_each_record(
    batch: &[u8],
    scratch: &mut Vec<u8>,
    decompressed_max_bytes: usize,
    mut f: impl FnMut(Record<'_>),
) -> Result<usize, RecordError> {
    let mut count = 0;
    for record in records(batch, scratch, decompressed_max_bytes)? {
        f(record?);
        count += 1;
    }
    Ok(count)
}

impl<'a> RecordIter<'a> {
    /// Iterate `payload` (the uncompressed records) of the batch described by `info`.
    pub fn new(info: &BatchInfo, payload: &'a [u8]) -> Self {
        let log_append = info.attributes & ATTR_TIMESTAMP_LOG_APPEND != 0;
        Self {
            payload,
            position: 0,
            record_index: 0,
            records_count: usize::try_from(info.records_count).unwrap_or(0),
            base_offset: info.base_offset,
            base_timestamp: info.base_timestamp,
            log_append_time_ms: log_append.then_some(info.max_timestamp),
            done: false,
        }
    }

    fn malformed(&self, position: usize, reason: &'static str) -> RecordError {
        RecordError::Malformed {
            record_index: self.record_index,
            position,
            reason,
        }
    }

    fn parse_one(&mut self) -> Result<Record<'a>, RecordError> {
        let mut cursor = Cursor {
            bytes: self.payload,
            position: self.position,
        };
        let length = cursor
            .varint()
            .map_err(|p| self.malformed(p, "bad record length"))?;
        let body_start = cursor.position;
        let body = usize::try_from(length)
            .ok()
            .and_then(|len| self.payload.get(body_start..body_start.checked_add(len)?))
            .ok_or_else(|| self.malformed(body_start, "record length exceeds the payload"))?;
        let mut body = Cursor {
            bytes: body,
            position: 0,
        };
        let record = self
            .parse_body(&mut body)
            .map_err(|p| self.malformed(body_start + p, "bad field"))?;
        if body.position != body.bytes.len() {
            return Err(self.malformed(
                body_start + body.position,
                "record length disagrees with its fields",
            ));
        }
        self.position = body_start + body.bytes.len();
        Ok(record)
    }

    fn parse_body(&self, body: &mut Cursor<'a>) -> Result<Record<'a>, usize> {
        let _attributes = body.byte()?;
        let timestamp_delta = body.varlong()?;
        let offset_delta = body.varint()?;
        let key = body.bytes_field()?;
        let value = body.bytes_field()?;
        let headers = parse_headers(body)?;
        let timestamp_ms = self
            .log_append_time_ms
            .unwrap_or_else(|| self.base_timestamp.wrapping_add(timestamp_delta));
        Ok(Record {
            offset: self.base_offset.wrapping_add(i64::from(offset_delta)),
            timestamp_ms,
            key,
            value,
            headers,
        })
    }
}

/// Check every header of a record once, so `HeaderIter` can trust the bytes.
fn parse_headers<'a>(body: &mut Cursor<'a>) -> Result<Headers<'a>, usize> {
    let count_at = body.position;
    let count = usize::try_from(body.varint()?).map_err(|_| count_at)?;
    let start = body.position;
    // Each header takes at least two bytes, so the loop is bounded by the body.
    if count > body.bytes.len().saturating_sub(start) / 2 {
        return Err(count_at);
    }
    for _ in 0..count {
        let key_at = body.position;
        body.bytes_field()?.ok_or(key_at)?;
        body.bytes_field()?;
    }
    Ok(Headers {
        bytes: &body.bytes[start..body.position],
        count,
    })
}

impl<'a> Iterator for RecordIter<'a> {
    type Item = Result<Record<'a>, RecordError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        if self.record_index == self.records_count {
            self.done = true;
            let trailing_bytes = self.payload.len() - self.position;
            return (trailing_bytes != 0).then_some(Err(RecordError::TrailingBytes {
                records_count: self.records_count,
                trailing_bytes,
            }));
        }
        let result = self.parse_one();
        self.record_index += 1;
        self.done = result.is_err();
        Some(result)
    }
}

/// A bounds-checked reader; errors carry the position where decoding failed.
struct Cursor<'a> {
    bytes: &'a [u8],
    position: usize,
}

impl<'a> Cursor<'a> {
    fn byte(&mut self) -> Result<u8, usize> {
        let b = *self.bytes.get(self.position).ok_or(self.position)?;
        self.position += 1;
        Ok(b)
    }

    fn varint(&mut self) -> Result<i32, usize> {
        read_varint(self.bytes, &mut self.position).ok_or(self.position)
    }

    fn varlong(&mut self) -> Result<i64, usize> {
        read_varlong(self.bytes, &mut self.position).ok_or(self.position)
    }

    /// A varint length then that many bytes; length -1 means null.
    fn bytes_field(&mut self) -> Result<Option<&'a [u8]>, usize> {
        let at = self.position;
        let length = self.varint()?;
        if length == -1 {
            return Ok(None);
        }
        let length = usize::try_from(length).map_err(|_| at)?;
        let end = self.position.checked_add(length).ok_or(at)?;
        let slice = self.bytes.get(self.position..end).ok_or(at)?;
        self.position = end;
        Ok(Some(slice))
    }
}
