//! Tail cache: the most recent batches of a partition, as the very `Bytes` appended.
//!
//! Owned by the partition's shard. Invariants: batches are contiguous in offsets and
//! end at the log end offset; total bytes stay <= the configured limit except for
//! batches not yet written to the file, which are never evicted (they exist nowhere
//! else). Reads clone `Bytes` handles: no copy of the data.

use std::collections::VecDeque;

use bytes::Bytes;

use super::Offset;

struct CachedBatch {
    base_offset: Offset,
    last_offset: Offset,
    bytes: Bytes,
}

#[derive(Default)]
pub(crate) struct TailCache {
    batches: VecDeque<CachedBatch>,
    total_bytes: usize,
}

impl TailCache {
    pub fn push(&mut self, base_offset: Offset, last_offset: Offset, bytes: Bytes) {
        if let Some(back) = self.batches.back() {
            assert_eq!(
                back.last_offset.next(),
                base_offset,
                "tail cache must stay contiguous"
            );
        }
        self.total_bytes += bytes.len();
        self.batches.push_back(CachedBatch {
            base_offset,
            last_offset,
            bytes,
        });
    }

    /// Evict oldest batches above `limit_bytes`, but only those wholly below
    /// `written_end_offset` (already on the file).
    pub fn evict(&mut self, limit_bytes: usize, written_end_offset: Offset) {
        while self.total_bytes > limit_bytes {
            match self.batches.front() {
                Some(front) if front.last_offset < written_end_offset => {
                    self.total_bytes -= front.bytes.len();
                    self.batches.pop_front();
                }
                _ => break,
            }
        }
    }

    /// Drop batches below `offset` (retention moved the log start).
    pub fn drop_before(&mut self, offset: Offset) {
        while let Some(front) = self.batches.front() {
            if front.last_offset >= offset {
                break;
            }
            self.total_bytes -= front.bytes.len();
            self.batches.pop_front();
        }
    }

    /// Whole batches from the one holding `offset`, up to `max_bytes` (at least one),
    /// or `None` if the cache does not reach back to `offset`.
    pub fn read(&self, offset: Offset, max_bytes: usize) -> Option<Vec<Bytes>> {
        let first = self.batches.front()?;
        if first.base_offset > offset {
            return None;
        }
        let start = self.batches.partition_point(|b| b.last_offset < offset);
        let mut out = Vec::new();
        let mut total_bytes = 0usize;
        for batch in self.batches.range(start..) {
            if !out.is_empty() && total_bytes + batch.bytes.len() > max_bytes {
                break;
            }
            total_bytes += batch.bytes.len();
            out.push(batch.bytes.clone());
        }
        Some(out)
    }

    #[cfg(test)]
    pub fn total_bytes(&self) -> usize {
        self.total_bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_unwritten_batches_when_evicting_should_keep_them_above_the_limit() {
        let mut cache = TailCache::default();
        for i in 0..4 {
            cache.push(Offset(i), Offset(i), Bytes::from(vec![0u8; 100]));
        }
        cache.evict(100, Offset(2));
        assert_eq!(cache.total_bytes(), 200, "offsets 2 and 3 are not written yet");
        assert!(cache.read(Offset(1), 1000).is_none());
        assert_eq!(
            cache.read(Offset(2), 150).expect("cached").len(),
            1,
            "the second batch would exceed"
        );
        assert_eq!(cache.read(Offset(2), 200).expect("cached").len(), 2);
        assert_eq!(
            cache.read(Offset(3), 1).expect("cached").len(),
            1,
            "at least one batch"
        );
    }
}
