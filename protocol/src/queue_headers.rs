//! Weir's queue headers: the record headers a producer sets to ask for delayed
//! delivery (`weir-deliver-at-ms`, `weir-delay-ms`) or a time to live
//! (`weir-ttl-ms`). Pure; any shard.
//!
//! Invariants: a value is plain decimal ASCII milliseconds (what `kcat -H
//! weir-delay-ms=5000` sends), at most 19 digits, no sign, no spaces; anything
//! else is a `QueueHeaderError` the produce path turns into INVALID_RECORD with
//! this error's text. A header named twice in one record is an error too, since
//! either reading would be a guess. Nothing is allocated.
//!
//! `might_carry` is the produce path's cheap pre-check: it walks the record
//! framing of an uncompressed batch (a few varints per record) and looks only
//! at header keys, never at keys' or values' payload bytes; it answers `true`
//! whenever it cannot be sure, so a `false` is a proof that no record names a
//! queue header.

use crate::records::{self, Headers};

/// Absolute delivery time, milliseconds since the Unix epoch.
pub const DELIVER_AT_MS: &[u8] = b"weir-deliver-at-ms";
/// Delivery delay, milliseconds after the record's timestamp.
pub const DELAY_MS: &[u8] = b"weir-delay-ms";
/// Time to live, milliseconds after the record's timestamp.
pub const TTL_MS: &[u8] = b"weir-ttl-ms";

/// What every queue header's name starts with; a key without it is not one.
pub const PREFIX: &[u8] = b"weir-";

/// Whether `batch` may carry a queue header, decided without decompressing,
/// validating the CRC or allocating. `false` only for an uncompressed batch
/// whose records all frame cleanly and none of whose header keys starts with
/// `weir-`; a compressed batch, an unknown codec, a short header or malformed
/// framing answer `true`, so the caller reads the records properly (and
/// refuses what is malformed, as `records::records` does).
pub fn might_carry(batch: &[u8]) -> bool {
    records::any_header_key(batch, |key| key.starts_with(PREFIX)).unwrap_or(true)
}

/// A queue header that cannot be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum QueueHeaderError {
    #[error("header {name} is not decimal milliseconds")]
    NotMilliseconds { name: &'static str },
    #[error("header {name} has no value")]
    Null { name: &'static str },
    #[error("header {name} appears more than once")]
    Repeated { name: &'static str },
    #[error("a record cannot carry both weir-deliver-at-ms and weir-delay-ms")]
    BothDelays,
}

/// The queue headers of one record, read in one pass over its headers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueHeaders {
    pub deliver_at_ms: Option<i64>,
    pub delay_ms: Option<i64>,
    pub ttl_ms: Option<i64>,
}

impl QueueHeaders {
    /// Read Weir's queue headers from `headers`; other headers are ignored.
    pub fn parse(headers: Headers<'_>) -> Result<Self, QueueHeaderError> {
        let mut out = Self::default();
        for (key, value) in headers {
            let (slot, name) = match key {
                DELIVER_AT_MS => (&mut out.deliver_at_ms, "weir-deliver-at-ms"),
                DELAY_MS => (&mut out.delay_ms, "weir-delay-ms"),
                TTL_MS => (&mut out.ttl_ms, "weir-ttl-ms"),
                _ => continue,
            };
            if slot.is_some() {
                return Err(QueueHeaderError::Repeated { name });
            }
            let value = value.ok_or(QueueHeaderError::Null { name })?;
            *slot = Some(parse_millis(value).ok_or(QueueHeaderError::NotMilliseconds { name })?);
        }
        if out.deliver_at_ms.is_some() && out.delay_ms.is_some() {
            return Err(QueueHeaderError::BothDelays);
        }
        Ok(out)
    }

    /// When the record is due, given its timestamp: `deliver-at` as written,
    /// or `timestamp + delay`, or `None` for a record without a delay header.
    pub fn due_ms(&self, record_timestamp_ms: i64) -> Option<i64> {
        self.deliver_at_ms
            .or_else(|| self.delay_ms.map(|d| record_timestamp_ms.saturating_add(d)))
    }

    /// When the record expires, given its timestamp, or `None` without a TTL
    /// header.
    pub fn expires_ms(&self, record_timestamp_ms: i64) -> Option<i64> {
        self.ttl_ms.map(|t| record_timestamp_ms.saturating_add(t))
    }

    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// Decimal ASCII digits, 1 to 19 of them, that fit an `i64`.
fn parse_millis(value: &[u8]) -> Option<i64> {
    if value.is_empty() || value.len() > 19 {
        return None;
    }
    let mut n: i64 = 0;
    for &b in value {
        if !b.is_ascii_digit() {
            return None;
        }
        n = n.checked_mul(10)?.checked_add(i64::from(b - b'0'))?;
    }
    Some(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builder::BatchBuilder;
    use crate::record_batch::Compression;
    use crate::records::records;
    use bytes::BytesMut;

    fn parse_one(headers: &[(&str, Option<&[u8]>)]) -> Result<QueueHeaders, QueueHeaderError> {
        let headers: Vec<(&[u8], Option<&[u8]>)> = headers.iter().map(|(k, v)| (k.as_bytes(), *v)).collect();
        let mut builder = BatchBuilder::new(Compression::None);
        builder.push(1_000, None, Some(b"v"), &headers);
        let mut batch = BytesMut::new();
        builder.finish_into(&mut batch).expect("batch");
        let mut scratch = Vec::new();
        let record = records(&batch, &mut scratch, 1 << 20)
            .expect("batch")
            .next()
            .expect("one record")
            .expect("valid record");
        QueueHeaders::parse(record.headers)
    }

    #[test]
    fn reads_each_header_and_ignores_others() {
        let parsed = parse_one(&[
            ("trace", Some(b"x")),
            ("weir-delay-ms", Some(b"5000")),
            ("weir-ttl-ms", Some(b"60000")),
        ])
        .unwrap();
        assert_eq!(parsed.delay_ms, Some(5000));
        assert_eq!(parsed.ttl_ms, Some(60000));
        assert_eq!(parsed.due_ms(1_000), Some(6_000));
        assert_eq!(parsed.expires_ms(1_000), Some(61_000));
        let at = parse_one(&[("weir-deliver-at-ms", Some(b"1700000000000"))]).unwrap();
        assert_eq!(at.due_ms(5), Some(1_700_000_000_000));
        assert!(parse_one(&[]).unwrap().is_empty());
    }

    /// A record value and its headers (key, value).
    type Rec<'a> = (&'a [u8], &'a [(&'a [u8], &'a [u8])]);

    fn batch_of(codec: Compression, records: &[Rec<'_>]) -> Vec<u8> {
        let mut builder = BatchBuilder::new(codec);
        builder.set_compress_only_if_smaller(false);
        for (value, headers) in records {
            let headers: Vec<(&[u8], Option<&[u8]>)> = headers.iter().map(|(k, v)| (*k, Some(*v))).collect();
            builder.push(1_000, Some(b"key"), Some(*value), &headers);
        }
        let mut batch = BytesMut::new();
        builder.finish_into(&mut batch).expect("batch");
        batch.to_vec()
    }

    const PLAIN: &[Rec<'static>] = &[(b"a", &[]), (b"b", &[]), (b"c", &[])];

    #[test]
    fn might_carry_is_false_for_records_without_headers() {
        assert!(!might_carry(&batch_of(Compression::None, PLAIN)));
        // A batch emptied by compaction: a header and no records.
        let mut empty = batch_of(Compression::None, PLAIN);
        empty.truncate(crate::record_batch::HEADER_BYTES);
        empty[8..12].copy_from_slice(&49i32.to_be_bytes()); // batch_length
        empty[57..61].copy_from_slice(&0i32.to_be_bytes()); // records_count
        assert!(!might_carry(&empty), "an empty batch");
    }

    #[test]
    fn might_carry_finds_a_weir_header_on_the_last_record() {
        let records: &[Rec<'_>] = &[
            (b"a", &[]),
            (b"b", &[(b"trace", b"1")]),
            (b"c", &[(b"trace", b"2"), (b"weir-delay-ms", b"5000")]),
        ];
        assert!(might_carry(&batch_of(Compression::None, records)));
        // Any `weir-` key counts, even one `QueueHeaders::parse` would ignore:
        // the pre-check only has to be conservative.
        let unknown: &[Rec<'_>] = &[(b"a", &[(b"weir-", b"")])];
        assert!(might_carry(&batch_of(Compression::None, unknown)));
    }

    #[test]
    fn might_carry_ignores_weir_bytes_outside_header_keys() {
        // A value, a header value and a key with `weir-` inside but not as its
        // prefix: the old byte search said `true` to each, the framing says no.
        let records: &[Rec<'_>] = &[
            (b"payload weir-delay-ms=5", &[]),
            (b"b", &[(b"x", b"weir-delay-ms")]),
            (b"c", &[(b"x-weir-delay-ms", b"1")]),
        ];
        assert!(!might_carry(&batch_of(Compression::None, records)));
    }

    #[test]
    fn might_carry_is_true_for_compressed_batches() {
        for codec in [
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ] {
            assert!(might_carry(&batch_of(codec, PLAIN)), "{codec:?}");
        }
        let mut unknown = batch_of(Compression::None, PLAIN);
        unknown[22] |= 0x7; // attributes' codec bits: 7 names no codec
        assert!(might_carry(&unknown));
    }

    #[test]
    fn might_carry_is_true_for_truncated_or_garbage_framing() {
        let batch = batch_of(Compression::None, PLAIN);
        for cut in 0..batch.len() {
            assert!(might_carry(&batch[..cut]), "cut at {cut}");
        }
        let mut longer = batch.clone();
        longer.push(0);
        assert!(might_carry(&longer), "a trailing byte");
        let mut lying = batch.clone();
        lying[57..61].copy_from_slice(&4i32.to_be_bytes()); // records_count 3 -> 4
        assert!(might_carry(&lying), "a records_count beyond the records");
        lying[57..61].copy_from_slice(&(-1i32).to_be_bytes());
        assert!(might_carry(&lying), "a negative records_count");
        for fill in [0x00, 0x7f, 0x80, 0xff] {
            let mut garbage = batch.clone();
            garbage[crate::record_batch::HEADER_BYTES..].fill(fill);
            assert!(might_carry(&garbage), "records filled with {fill:#x}");
        }
    }

    #[test]
    fn refuses_malformed_values() {
        for bad in [
            &b""[..],
            b"-5",
            b"+5",
            b" 5",
            b"5s",
            b"1e3",
            b"99999999999999999999",
        ] {
            assert_eq!(
                parse_one(&[("weir-delay-ms", Some(bad))]),
                Err(QueueHeaderError::NotMilliseconds {
                    name: "weir-delay-ms"
                }),
                "{bad:?}"
            );
        }
        assert_eq!(
            parse_one(&[("weir-ttl-ms", None)]),
            Err(QueueHeaderError::Null { name: "weir-ttl-ms" })
        );
        assert_eq!(
            parse_one(&[("weir-ttl-ms", Some(b"1")), ("weir-ttl-ms", Some(b"2"))]),
            Err(QueueHeaderError::Repeated { name: "weir-ttl-ms" })
        );
        assert_eq!(
            parse_one(&[("weir-delay-ms", Some(b"1")), ("weir-deliver-at-ms", Some(b"2"))]),
            Err(QueueHeaderError::BothDelays)
        );
    }
}
