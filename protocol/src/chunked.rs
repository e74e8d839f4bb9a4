//! An encode target that keeps large `Bytes` fields (Fetch records) by
//! reference instead of copying them into the response buffer: the encoded
//! frame is a list of parts, written to the socket in order. Pure: no I/O.
//!
//! Invariant: the parts, concatenated, are byte for byte what encoding into one
//! `BytesMut` would give (checked in the tests below). Back-patching (`seek`,
//! `range`) is allowed only within the part still being written.

use bytes::buf::UninitSlice;
use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::protocol::buf::ByteBufMut;

/// Below this a copy costs less than one more part to write.
pub const SHARE_BYTES_MIN: usize = 16 * 1024;

#[derive(Default)]
pub struct ChunkedBuf {
    parts: Vec<Bytes>,
    tail: BytesMut,
    /// Bytes in `parts`: the offset at which `tail` starts.
    sealed_bytes: usize,
}

impl ChunkedBuf {
    pub fn with_capacity(tail_bytes: usize) -> Self {
        Self {
            parts: Vec::new(),
            tail: BytesMut::with_capacity(tail_bytes),
            sealed_bytes: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.sealed_bytes + self.tail.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn into_parts(mut self) -> Vec<Bytes> {
        if !self.tail.is_empty() {
            self.parts.push(self.tail.freeze());
        }
        self.parts
    }
}

// SAFETY: every method delegates to `tail`, a `BytesMut`, which upholds the
// `BufMut` contract itself.
unsafe impl BufMut for ChunkedBuf {
    fn remaining_mut(&self) -> usize {
        self.tail.remaining_mut()
    }

    unsafe fn advance_mut(&mut self, cnt: usize) {
        // SAFETY: the caller initialised `cnt` bytes of `chunk_mut`, which is tail's.
        unsafe { self.tail.advance_mut(cnt) }
    }

    fn chunk_mut(&mut self) -> &mut UninitSlice {
        self.tail.chunk_mut()
    }

    fn put_slice(&mut self, src: &[u8]) {
        self.tail.put_slice(src);
    }
}

impl ByteBufMut for ChunkedBuf {
    fn offset(&self) -> usize {
        self.len()
    }

    fn seek(&mut self, offset: usize) {
        assert!(offset >= self.sealed_bytes, "seek back into a shared part");
        self.tail.resize(offset - self.sealed_bytes, 0);
    }

    fn range(&mut self, r: std::ops::Range<usize>) -> &mut [u8] {
        assert!(r.start >= self.sealed_bytes, "patching a shared part");
        &mut self.tail[r.start - self.sealed_bytes..r.end - self.sealed_bytes]
    }

    fn put_shared(&mut self, bytes: &Bytes) {
        if bytes.len() < SHARE_BYTES_MIN {
            self.tail.put_slice(bytes);
            return;
        }
        let head = self.tail.split().freeze();
        self.sealed_bytes += head.len() + bytes.len();
        if !head.is_empty() {
            self.parts.push(head);
        }
        self.parts.push(bytes.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
    use kafka_protocol::messages::{FetchResponse, TopicName};
    use kafka_protocol::protocol::Encodable;

    fn response(records: &[Bytes]) -> FetchResponse {
        let partitions = records
            .iter()
            .enumerate()
            .map(|(i, r)| {
                PartitionData::default()
                    .with_partition_index(i as i32)
                    .with_records(Some(r.clone()))
            })
            .collect();
        let topic = FetchableTopicResponse::default()
            .with_topic(TopicName("t".to_string().into()))
            .with_partitions(partitions);
        FetchResponse::default().with_responses(vec![topic])
    }

    #[test]
    fn given_large_and_small_records_when_encoded_chunked_should_equal_the_flat_encoding_and_share_large_ones(
    ) {
        let big = Bytes::from(vec![7u8; 100_000]);
        let small = Bytes::from(vec![9u8; 100]);
        let r = response(&[big.clone(), small, big.clone()]);
        for version in [4i16, 11, 12, 16] {
            let mut flat = BytesMut::new();
            r.encode(&mut flat, version).unwrap();
            let mut chunked = ChunkedBuf::default();
            r.encode(&mut chunked, version).unwrap();
            assert_eq!(chunked.len(), flat.len());
            let parts = chunked.into_parts();
            let joined: Vec<u8> = parts.iter().flat_map(|p| p.iter().copied()).collect();
            assert_eq!(joined, flat.to_vec(), "v{version}");
            let shared = parts.iter().filter(|p| p.as_ptr() == big.as_ptr()).count();
            assert_eq!(
                shared, 2,
                "both large records are sent by reference at v{version}"
            );
        }
    }
}
