//! Record timestamps where the batch header is not enough: the real maximum of
//! a batch whose header says -1 (old clients such as sarama write that), and the
//! first record at or after a time inside one batch (ListOffsets by timestamp
//! answers a record, not a batch). Pure functions over one batch's bytes; any
//! shard. Both decode records, so both stay off the common paths: the first runs
//! only for a header max of -1, the second only for a time lookup.

use weir_protocol::records::for_each_record;

/// Decompressed bytes one lookup may produce: a batch is at most
/// `LogConfig::max_batch_bytes` compressed; this bounds a decompression bomb.
const DECOMPRESSED_BYTES_MAX: usize = 64 << 20;

/// The batch's max timestamp for the indexes: the header's, or, when the header
/// says -1, the largest record timestamp (-1 if the records cannot be read).
pub fn effective_max_timestamp(batch: &[u8], header_max_ms: i64) -> i64 {
    if header_max_ms >= 0 {
        return header_max_ms;
    }
    let mut scratch = Vec::new();
    let mut max = -1;
    match for_each_record(batch, &mut scratch, DECOMPRESSED_BYTES_MAX, |r| {
        max = max.max(r.timestamp_ms)
    }) {
        Ok(_) => max,
        Err(e) => {
            tracing::debug!(error = %e, "records of a batch without max timestamp unreadable");
            -1
        }
    }
}

/// The first record of `batch` whose timestamp is at least `ts_ms`: (offset,
/// timestamp). `None` if none is, or the records cannot be read.
pub fn first_record_at_or_after(batch: &[u8], ts_ms: i64) -> Option<(i64, i64)> {
    let mut scratch = Vec::new();
    let mut found = None;
    let read = for_each_record(batch, &mut scratch, DECOMPRESSED_BYTES_MAX, |r| {
        if found.is_none() && r.timestamp_ms >= ts_ms {
            found = Some((r.offset, r.timestamp_ms));
        }
    });
    if let Err(e) = read {
        tracing::debug!(error = %e, "records of a batch unreadable for a time lookup");
        return None;
    }
    found
}

#[cfg(test)]
mod tests {
    use bytes::BytesMut;
    use weir_protocol::builder::BatchBuilder;
    use weir_protocol::record_batch::{validate, Compression};

    use super::*;

    fn batch(timestamps: &[i64], compression: Compression) -> bytes::Bytes {
        let mut b = BatchBuilder::new(compression);
        for (i, ts) in timestamps.iter().enumerate() {
            b.push(*ts, None, Some(format!("v{i}").as_bytes()), &[]);
        }
        let mut out = BytesMut::new();
        b.finish_into(&mut out).unwrap();
        out.freeze()
    }

    #[test]
    fn given_ten_records_when_looking_up_a_time_between_the_fifth_and_sixth_should_answer_the_sixth() {
        for compression in [Compression::None, Compression::Lz4] {
            let ts: Vec<i64> = (0..10).map(|i| 1_000 + 10 * i).collect();
            let b = batch(&ts, compression);
            assert_eq!(
                first_record_at_or_after(&b, 1_045),
                Some((5, 1_050)),
                "{compression:?}"
            );
            assert_eq!(first_record_at_or_after(&b, 0), Some((0, 1_000)));
            assert_eq!(first_record_at_or_after(&b, 1_091), None);
        }
    }

    #[test]
    fn given_a_header_max_timestamp_of_minus_one_should_index_the_records_real_maximum() {
        let b = batch(&[5_000, 7_000, 6_000], Compression::None);
        let info = validate(&b).unwrap();
        assert_eq!(
            effective_max_timestamp(&b, info.max_timestamp),
            7_000,
            "the header's value"
        );
        assert_eq!(effective_max_timestamp(&b, -1), 7_000, "from the records");
    }
}
