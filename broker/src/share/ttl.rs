//! Per-record time to live for share groups: which records of a ShareFetch's log read are
//! past their expiry (`weir-ttl-ms` header, else the topic's `message.ttl.ms`, counted from
//! the record's timestamp). Pure; runs on the share-partition's owner shard at acquire time.
//! Invariants: the record walk is paid only when a TTL can apply (the topic has a default,
//! or a batch may hold the header: a walk of the record framing that reads only header keys
//! in uncompressed batches, a few varints per record; compressed batches are decompressed
//! into one reused scratch buffer, bounded per batch); a batch that cannot be read expires
//! nothing (the consumer sees it as Kafka would).

use std::ops::Range;

use bytes::Bytes;
use weir_protocol::queue_headers::{QueueHeaders, TTL_MS};
use weir_protocol::record_batch::header;
use weir_protocol::records::{self, for_each_record};

/// Decompressed bytes one batch may expand to for the TTL walk.
const DECOMPRESSED_BYTES_MAX: usize = 64 << 20;

/// The offsets in `range` of `batches` whose TTL has passed at `now_ms`, sorted.
pub fn expired_offsets(
    batches: &[Bytes],
    range: Range<i64>,
    topic_ttl_ms: Option<i64>,
    now_ms: i64,
) -> Vec<i64> {
    let mut out = Vec::new();
    let mut scratch = Vec::new();
    for b in batches {
        let Ok(h) = header(b) else { continue };
        let base = h.base_offset.get();
        let last = base + i64::from(h.last_offset_delta.get());
        if last < range.start || base >= range.end {
            continue;
        }
        // Clients write records in time order (the base timestamp is the first record's):
        // under the topic default nothing of the batch expires before base + ttl; a record
        // stamped earlier than its batch's first is checked once the batch is.
        // A compressed batch (or an unknown codec, or unreadable framing) answers `None`:
        // walk the records, which decompresses and skips what it cannot read.
        let may_have_header = records::any_header_key(b, |key| key == TTL_MS).unwrap_or(true);
        let oldest = h.base_timestamp.get().min(h.max_timestamp.get());
        let default_due = topic_ttl_ms.is_some_and(|t| oldest.saturating_add(t) <= now_ms);
        if !may_have_header && !default_due {
            continue;
        }
        let _ = for_each_record(b, &mut scratch, DECOMPRESSED_BYTES_MAX, |r| {
            if !range.contains(&r.offset) {
                return;
            }
            let ttl = QueueHeaders::parse(r.headers)
                .ok()
                .and_then(|q| q.ttl_ms)
                .or(topic_ttl_ms);
            if ttl.is_some_and(|t| r.timestamp_ms.saturating_add(t) <= now_ms) {
                out.push(r.offset);
            }
        });
    }
    out.sort_unstable();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use bytes::BytesMut;
    use weir_protocol::builder::BatchBuilder;
    use weir_protocol::record_batch::{set_base_offset, Compression};

    use super::expired_offsets;

    fn batch(base: i64, compression: Compression, records: &[(i64, Option<&[u8]>)]) -> bytes::Bytes {
        let mut b = BatchBuilder::new(compression);
        for (ts, ttl) in records {
            let h: Vec<(&[u8], Option<&[u8]>)> =
                ttl.iter().map(|v| (&b"weir-ttl-ms"[..], Some(*v))).collect();
            b.push(*ts, None, Some(b"v"), &h);
        }
        let mut out = BytesMut::new();
        b.finish_into(&mut out).expect("batch");
        set_base_offset(&mut out, base);
        out.freeze()
    }

    #[test]
    fn given_header_and_topic_ttls_should_expire_by_the_header_first() {
        let a = batch(
            10,
            Compression::None,
            &[(1000, Some(b"50")), (1000, None), (1000, Some(b"100000"))],
        );
        assert_eq!(
            expired_offsets(std::slice::from_ref(&a), 0..100, None, 2000),
            vec![10]
        );
        assert_eq!(
            expired_offsets(std::slice::from_ref(&a), 0..100, Some(500), 2000),
            vec![10, 11]
        );
        assert_eq!(expired_offsets(&[a], 11..100, Some(500), 2000), vec![11]);
        let z = batch(0, Compression::Gzip, &[(1000, Some(b"5")), (1000, None)]);
        assert_eq!(expired_offsets(&[z], 0..100, None, 2000), vec![0]);
    }
}
