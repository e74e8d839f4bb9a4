//! Sparse offset index and time index of one segment, in memory and in their file form.
//!
//! Owned by the partition's shard, inside its `Segment`. Invariants: offset-index entries
//! strictly increase in both relative offset and position; time-index entries strictly
//! increase in timestamp and do not decrease in relative offset. A time entry
//! `(ts, rel)` means every batch of the segment before offset `base + rel` has
//! max_timestamp <= ts. Files are big-endian, Kafka-style: 8-byte and 12-byte entries.

use super::Position;

/// Bytes of one `.index` entry: relative offset u32 + position u32.
pub const INDEX_ENTRY_BYTES: usize = 8;
/// Bytes of one `.timeindex` entry: timestamp i64 + relative offset u32.
pub const TIME_INDEX_ENTRY_BYTES: usize = 12;

/// One `.index` entry in its file form: offset relative to the segment's base and
/// byte position, both `u32` (a segment is at most 2 GiB and 2^32 offsets).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IndexEntry {
    pub relative_offset: u32,
    pub position: u32,
}

impl IndexEntry {
    /// The entry's byte position in the segment file.
    pub fn file_position(self) -> Position {
        Position(u64::from(self.position))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimeIndexEntry {
    pub timestamp: i64,
    pub relative_offset: u32,
}

/// Why an index file was not usable; the caller rebuilds the index from the segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct IndexCorrupt;

#[derive(Clone, Debug, Default)]
pub struct OffsetIndex {
    entries: Vec<IndexEntry>,
}

impl OffsetIndex {
    pub fn push(&mut self, entry: IndexEntry) {
        if let Some(last) = self.entries.last() {
            assert!(entry.relative_offset > last.relative_offset && entry.position > last.position);
        }
        self.entries.push(entry);
    }

    /// The last entry at or before `relative_offset`, or the segment start.
    pub fn lookup(&self, relative_offset: u32) -> IndexEntry {
        let count = self
            .entries
            .partition_point(|e| e.relative_offset <= relative_offset);
        match count {
            0 => IndexEntry {
                relative_offset: 0,
                position: 0,
            },
            n => self.entries[n - 1],
        }
    }

    pub fn last(&self) -> Option<IndexEntry> {
        self.entries.last().copied()
    }

    /// The last entry whose position is over `after` and at most `at_most`: the
    /// furthest batch start the index knows in that range.
    pub fn last_between(&self, after: u64, at_most: u64) -> Option<IndexEntry> {
        let count = self.entries.partition_point(|e| u64::from(e.position) <= at_most);
        let e = *self.entries.get(count.checked_sub(1)?)?;
        (u64::from(e.position) > after).then_some(e)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Drop entries pointing at or past `position` (recovery truncation).
    pub fn truncate_to_position(&mut self, position: Position) {
        let keep = self.entries.partition_point(|e| e.file_position() < position);
        self.entries.truncate(keep);
    }

    pub fn encoded_bytes(&self) -> usize {
        self.entries.len() * INDEX_ENTRY_BYTES
    }

    pub fn encode_into(&self, out: &mut [u8]) {
        assert!(out.len() >= self.encoded_bytes());
        for (chunk, e) in out.chunks_exact_mut(INDEX_ENTRY_BYTES).zip(&self.entries) {
            chunk[..4].copy_from_slice(&e.relative_offset.to_be_bytes());
            chunk[4..].copy_from_slice(&e.position.to_be_bytes());
        }
    }

    /// Parse an index file, refusing anything torn or pointing past `segment_bytes`.
    pub(crate) fn decode(bytes: &[u8], segment_bytes: u64) -> Result<Self, IndexCorrupt> {
        if !bytes.len().is_multiple_of(INDEX_ENTRY_BYTES) {
            return Err(IndexCorrupt);
        }
        let mut index = Self {
            entries: Vec::with_capacity(bytes.len() / INDEX_ENTRY_BYTES),
        };
        for chunk in bytes.chunks_exact(INDEX_ENTRY_BYTES) {
            let entry = IndexEntry {
                relative_offset: u32::from_be_bytes(chunk[..4].try_into().expect("4 bytes")),
                position: u32::from_be_bytes(chunk[4..].try_into().expect("4 bytes")),
            };
            let ordered = index
                .last()
                .is_none_or(|l| entry.relative_offset > l.relative_offset && entry.position > l.position);
            if !ordered || u64::from(entry.position) >= segment_bytes {
                return Err(IndexCorrupt);
            }
            index.entries.push(entry);
        }
        Ok(index)
    }
}

#[derive(Clone, Debug, Default)]
pub struct TimeIndex {
    entries: Vec<TimeIndexEntry>,
}

impl TimeIndex {
    /// Record `entry` if it raises the timestamp; otherwise it adds no information.
    pub fn maybe_push(&mut self, entry: TimeIndexEntry) {
        if entry.timestamp < 0 {
            return;
        }
        if let Some(last) = self.entries.last() {
            if entry.timestamp <= last.timestamp {
                return;
            }
            assert!(entry.relative_offset >= last.relative_offset);
        }
        self.entries.push(entry);
    }

    /// The last entry whose timestamp is below `timestamp`: every batch before its
    /// offset is too old, so a search for `timestamp` may start there.
    pub fn lookup(&self, timestamp: i64) -> Option<TimeIndexEntry> {
        let count = self.entries.partition_point(|e| e.timestamp < timestamp);
        count.checked_sub(1).map(|i| self.entries[i])
    }

    pub fn last(&self) -> Option<TimeIndexEntry> {
        self.entries.last().copied()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Drop entries that refer to offsets at or past `relative_offset`.
    pub fn truncate_to_relative_offset(&mut self, relative_offset: u32) {
        let keep = self
            .entries
            .partition_point(|e| e.relative_offset < relative_offset);
        self.entries.truncate(keep);
    }

    pub fn encoded_bytes(&self) -> usize {
        self.entries.len() * TIME_INDEX_ENTRY_BYTES
    }

    pub fn encode_into(&self, out: &mut [u8]) {
        assert!(out.len() >= self.encoded_bytes());
        for (chunk, e) in out.chunks_exact_mut(TIME_INDEX_ENTRY_BYTES).zip(&self.entries) {
            chunk[..8].copy_from_slice(&e.timestamp.to_be_bytes());
            chunk[8..].copy_from_slice(&e.relative_offset.to_be_bytes());
        }
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<Self, IndexCorrupt> {
        if !bytes.len().is_multiple_of(TIME_INDEX_ENTRY_BYTES) {
            return Err(IndexCorrupt);
        }
        let mut index = Self::default();
        for chunk in bytes.chunks_exact(TIME_INDEX_ENTRY_BYTES) {
            let entry = TimeIndexEntry {
                timestamp: i64::from_be_bytes(chunk[..8].try_into().expect("8 bytes")),
                relative_offset: u32::from_be_bytes(chunk[8..].try_into().expect("4 bytes")),
            };
            let ordered = index
                .last()
                .is_none_or(|l| entry.timestamp > l.timestamp && entry.relative_offset >= l.relative_offset);
            if !ordered || entry.timestamp < 0 {
                return Err(IndexCorrupt);
            }
            index.entries.push(entry);
        }
        Ok(index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index_of(pairs: &[(u32, u32)]) -> OffsetIndex {
        let mut index = OffsetIndex::default();
        for &(relative_offset, position) in pairs {
            index.push(IndexEntry {
                relative_offset,
                position,
            });
        }
        index
    }

    #[test]
    fn given_sparse_entries_when_looking_up_should_return_floor_entry() {
        let index = index_of(&[(10, 4100), (20, 8300)]);
        assert_eq!(index.lookup(5).position, 0);
        assert_eq!(index.lookup(10).position, 4100);
        assert_eq!(index.lookup(19).position, 4100);
        assert_eq!(index.lookup(1000).position, 8300);
    }

    #[test]
    fn given_sparse_entries_when_asking_for_the_last_batch_start_in_a_range_should_return_it_or_none() {
        let index = index_of(&[(10, 4100), (20, 8300), (30, 12400)]);
        assert_eq!(index.last_between(0, 9000).map(|e| e.relative_offset), Some(20));
        assert_eq!(index.last_between(0, 8300).map(|e| e.relative_offset), Some(20));
        assert_eq!(
            index.last_between(4100, 8299),
            None,
            "nothing past 4100 up to 8299"
        );
        assert_eq!(index.last_between(0, 4099), None);
        assert_eq!(
            index.last_between(8300, 1 << 40).map(|e| e.relative_offset),
            Some(30)
        );
        assert_eq!(index.last_between(12400, 1 << 40), None);
    }

    #[test]
    fn given_encoded_index_when_decoding_should_round_trip_and_refuse_torn_files() {
        let index = index_of(&[(1, 10), (2, 20), (7, 4000)]);
        let mut bytes = vec![0u8; index.encoded_bytes()];
        index.encode_into(&mut bytes);
        let back = OffsetIndex::decode(&bytes, 1 << 20).expect("valid");
        assert_eq!(back.entries, index.entries);
        assert_eq!(
            OffsetIndex::decode(&bytes[..7], 1 << 20).err(),
            Some(IndexCorrupt)
        );
        assert_eq!(OffsetIndex::decode(&bytes, 4000).err(), Some(IndexCorrupt));
        let zeroed = vec![0u8; 16];
        assert_eq!(OffsetIndex::decode(&zeroed, 1 << 20).err(), Some(IndexCorrupt));
    }

    #[test]
    fn given_time_entries_when_looking_up_should_return_last_entry_below_timestamp() {
        let mut index = TimeIndex::default();
        for (timestamp, relative_offset) in [(100, 0), (100, 3), (200, 5), (300, 9)] {
            index.maybe_push(TimeIndexEntry {
                timestamp,
                relative_offset,
            });
        }
        assert_eq!(index.len(), 3, "a non-increasing timestamp adds nothing");
        assert_eq!(index.lookup(100), None);
        assert_eq!(index.lookup(150).map(|e| e.relative_offset), Some(0));
        assert_eq!(index.lookup(1000).map(|e| e.relative_offset), Some(9));
        let mut bytes = vec![0u8; index.encoded_bytes()];
        index.encode_into(&mut bytes);
        assert_eq!(TimeIndex::decode(&bytes).expect("valid").entries, index.entries);
    }
}
