//! The consume ceiling's Fetch answers (`serve_fetch_bytes`): every Fetch gets,
//! per partition, the same pre-built batches of 1 KiB records, renumbered to
//! start at the offset asked for, so a consumer reads forever without the
//! null broker storing or building anything per request.
//!
//! `Served` is built once at start and read-only after (shared by connection
//! threads). Each connection keeps its own copy of the batches per partition
//! (`ServedConn`, bounded by partitions × `serve_fetch_bytes`), renumbers
//! them in place (the base offset is outside the CRC) and writes the answer
//! with one vectored write: the records are never copied per request. The
//! earlier design copied them twice (into the answer's records, then into
//! the encoded frame), which cost the consume ceiling about as much CPU as
//! the generator's own CRC checks.

use std::collections::HashMap;
use std::io::{self, IoSlice, Write};
use std::net::TcpStream;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::{FetchRequest, FetchResponse, ResponseHeader};
use kafka_protocol::protocol::Encodable;
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

    /// How many batches a fetch of at most `max_bytes` gets (at least one).
    fn fit(&self, max_bytes: i32) -> usize {
        (max_bytes.max(0) as usize / self.batch.len()).clamp(1, self.copies)
    }

    /// Number `fit` batches of `blob` from `offset`; the high watermark just
    /// past them. The base offset is outside the CRC: the batches stay valid.
    fn renumber(&self, blob: &mut [u8], offset: i64, fit: usize) -> i64 {
        for i in 0..fit {
            let at = i * self.batch.len();
            let base = offset + i as i64 * self.records_per_batch;
            blob[at..at + 8].copy_from_slice(&base.to_be_bytes());
        }
        offset + fit as i64 * self.records_per_batch
    }

    fn blob(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.copies * self.batch.len());
        for _ in 0..self.copies {
            out.extend_from_slice(&self.batch);
        }
        out
    }
}

/// One connection's copies of the served batches, per (topic id, partition).
#[derive(Default)]
pub(super) struct ServedConn {
    blobs: HashMap<(u128, i32), Vec<u8>>,
}

/// Partitions one connection may be served (bounds `ServedConn`).
const SERVED_PARTITIONS_MAX: usize = 1024;

/// Marks one partition's records in the encoded answer until they are spliced in.
const MARKER: [u8; 12] = *b"WEIR-SERVED-";

impl ServedConn {
    /// Answer `req` with served batches: encode the answer with a marker in
    /// place of each partition's records, then write the encoded parts and
    /// the renumbered batches in one vectored write.
    pub(super) fn respond(
        &mut self,
        served: &Served,
        req: &FetchRequest,
        corr: i32,
        header_version: i16,
        version: i16,
        out: &mut TcpStream,
    ) -> io::Result<()> {
        let mut slices: Vec<(u128, i32, usize)> = Vec::new();
        let responses = (req.topics.iter())
            .map(|t| {
                let key = t.topic_id.as_u128() ^ fxhash(&t.topic.0);
                let partitions = (t.partitions.iter())
                    .take(SERVED_PARTITIONS_MAX)
                    .map(|p| {
                        let blob = self
                            .blobs
                            .entry((key, p.partition))
                            .or_insert_with(|| served.blob());
                        let fit = served.fit(p.partition_max_bytes);
                        let hw = served.renumber(blob, p.fetch_offset, fit);
                        slices.push((key, p.partition, fit * served.batch.len()));
                        PartitionData::default()
                            .with_partition_index(p.partition)
                            .with_high_watermark(hw)
                            .with_last_stable_offset(hw)
                            .with_log_start_offset(0)
                            .with_records(Some(Bytes::from_static(&MARKER)))
                    })
                    .collect();
                let mut r = FetchableTopicResponse::default()
                    .with_topic(t.topic.clone())
                    .with_partitions(partitions);
                r.topic_id = t.topic_id;
                r
            })
            .collect();
        let response = FetchResponse::default().with_responses(responses);
        let mut head = BytesMut::with_capacity(1024);
        head.put_i32(0);
        ResponseHeader::default()
            .with_correlation_id(corr)
            .encode(&mut head, header_version)
            .and_then(|()| response.encode(&mut head, version))
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
        let lens: Vec<usize> = slices.iter().map(|s| s.2).collect();
        let parts = splice(&head, &lens, version >= 12)?;
        let mut iov: Vec<IoSlice<'_>> = Vec::with_capacity(parts.len() * 2);
        for (i, part) in parts.iter().enumerate() {
            iov.push(IoSlice::new(part));
            if let Some(&(key, partition, len)) = slices.get(i) {
                iov.push(IoSlice::new(&self.blobs[&(key, partition)][..len]));
            }
        }
        write_all_vectored(out, &mut iov)
    }
}

/// A stable stand-in for topic ids in requests that name topics (Fetch < 13).
fn fxhash(name: &str) -> u128 {
    name.bytes().fold(0u128, |h, b| h.rotate_left(5) ^ u128::from(b))
}

/// The encoded answer cut at each marker, with each records length prefix
/// rewritten to the real length (`lens`, in order) and the frame size fixed:
/// the parts between which the batches go.
fn splice(encoded: &[u8], lens: &[usize], compact: bool) -> io::Result<Vec<Vec<u8>>> {
    let bad = || io::Error::new(io::ErrorKind::InvalidData, "served marker not found");
    // The marker's own length prefix: varint(len + 1) when compact, else i32.
    let prefix: Vec<u8> = if compact {
        vec![MARKER.len() as u8 + 1]
    } else {
        (MARKER.len() as i32).to_be_bytes().to_vec()
    };
    let mut parts = Vec::with_capacity(lens.len() + 1);
    let mut rest = encoded;
    for &len in lens {
        let at = find(rest, &MARKER).ok_or_else(bad)?;
        let cut = at
            .checked_sub(prefix.len())
            .filter(|&c| rest[c..at] == prefix[..])
            .ok_or_else(bad)?;
        let mut part = rest[..cut].to_vec();
        if compact {
            put_uvarint(&mut part, len as u64 + 1);
        } else {
            part.extend_from_slice(&(len as i32).to_be_bytes());
        }
        parts.push(part);
        rest = &rest[at + MARKER.len()..];
    }
    parts.push(rest.to_vec());
    let total: usize = parts.iter().map(Vec::len).sum::<usize>() + lens.iter().sum::<usize>();
    let size = i32::try_from(total - 4).map_err(|_| bad())?;
    parts[0][..4].copy_from_slice(&size.to_be_bytes());
    Ok(parts)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn put_uvarint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn write_all_vectored(out: &mut TcpStream, mut iov: &mut [IoSlice<'_>]) -> io::Result<()> {
    while !iov.is_empty() {
        let n = out.write_vectored(iov)?;
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        IoSlice::advance_slices(&mut iov, n);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::net::TcpListener;

    use bytes::Buf;
    use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
    use kafka_protocol::messages::TopicName;
    use kafka_protocol::protocol::{Decodable, StrBytes};
    use weir_protocol::record_batch::{self, BatchWalker};

    /// The answer as a client reads it: frame, header, decoded body.
    fn answer(version: i16, offsets: &[i64]) -> FetchResponse {
        let served = Served::build(256 << 10);
        let partitions = (offsets.iter().enumerate())
            .map(|(i, &o)| {
                FetchPartition::default()
                    .with_partition(i as i32)
                    .with_fetch_offset(o)
                    .with_partition_max_bytes(1 << 20)
            })
            .collect();
        let topic = FetchTopic::default()
            .with_topic(TopicName(StrBytes::from_static_str("t")))
            .with_partitions(partitions);
        let req = FetchRequest::default().with_topics(vec![topic]);
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let mut out = TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
        let (mut inp, _) = listener.accept().expect("accept");
        let hv = kafka_protocol::messages::ApiKey::Fetch.response_header_version(version);
        let mut conn = ServedConn::default();
        conn.respond(&served, &req, 7, hv, version, &mut out)
            .expect("respond");
        let mut size = [0u8; 4];
        inp.read_exact(&mut size).expect("size");
        let mut frame = vec![0u8; i32::from_be_bytes(size) as usize];
        inp.read_exact(&mut frame).expect("frame");
        let mut frame = Bytes::from(frame);
        let header = ResponseHeader::decode(&mut frame, hv).expect("header");
        assert_eq!(header.correlation_id, 7);
        let body = FetchResponse::decode(&mut frame, version).expect("body");
        assert!(!frame.has_remaining(), "nothing after the body");
        body
    }

    #[test]
    fn given_fetches_at_offsets_when_served_should_number_batches_from_them_with_valid_crcs() {
        for version in [4, 11, 12, 16] {
            let body = answer(version, &[1_000, 5]);
            let parts = &body.responses[0].partitions;
            for (p, start) in parts.iter().zip([1_000, 5]) {
                let bytes = p.records.as_ref().expect("records");
                let mut next = start;
                let mut batches = 0;
                for range in BatchWalker::new(bytes) {
                    let batch = &bytes[range];
                    record_batch::validate(batch).expect("CRC holds after renumbering");
                    let h = record_batch::header(batch).expect("a batch header");
                    assert_eq!(h.base_offset.get(), next, "v{version}");
                    next += i64::from(h.last_offset_delta.get()) + 1;
                    batches += 1;
                }
                assert_eq!((batches, p.high_watermark), (4, next), "v{version}");
            }
        }
    }
}
