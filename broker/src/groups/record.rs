//! The offsets file's records: commit, delete, group metadata, group delete, transactional
//! commit and transaction end (pending offsets per producer id, made visible or dropped by
//! the end record); their framing
//! (u32 length, u32 CRC-32C, body) and the replay of a file image into `StoreState`.
//! Pure code, no I/O: used by `store` on the owning shard and by tests.
//! Invariants: a frame is accepted only whole and with a matching CRC; a CRC-valid frame that
//! does not decode is corruption and refuses the file; encoded records stay below RECORD_BYTES_MAX.

use std::collections::HashMap;
use std::path::Path;

use bytes::Bytes;

use super::consumer::persist::{
    self as cpersist, ConsumerGroupImage, StoredConsumerGroup, StoredConsumerMember,
};
use super::GroupError;

/// File magic and format version: a file without it is not ours and is never truncated.
pub(crate) const FILE_MAGIC: &[u8; 8] = b"WEIRGRP1";
/// Frame header: u32 body length, u32 CRC-32C of the body.
const FRAME_HEADER_BYTES: usize = 8;
/// Largest record body: a group-metadata record of a full group with large subscriptions.
/// A length past it on reload means a torn or corrupt frame, not a huge allocation.
const RECORD_BYTES_MAX: usize = 512 * 1024 * 1024;
// A full group's metadata record must fit: members × (two blobs + five names + fixed fields).
const _: () = assert!(
    super::GROUP_MEMBERS_MAX * (2 * super::MEMBER_BLOB_BYTES_MAX + 5 * (super::NAME_BYTES_MAX + 3) + 64)
        < RECORD_BYTES_MAX
);

const KIND_COMMIT: u8 = 1;
const KIND_DELETE: u8 = 2;
const KIND_GROUP: u8 = 3;
const KIND_GROUP_DELETE: u8 = 4;
const KIND_TXN_COMMIT: u8 = 5;
const KIND_TXN_END: u8 = 6;
// 7 and 8: KIP-848 groups, in `consumer::persist`.
// A consumer member record must fit: its subscribed names dominate (assignments are bounded
// by the catalog's partitions, a few bytes each).
const _: () =
    assert!(super::consumer::SUBSCRIBED_TOPICS_MAX * (super::NAME_BYTES_MAX + 2) < RECORD_BYTES_MAX / 4);

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct CommittedOffset {
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: String,
    pub commit_timestamp_ms: i64,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct StoredMember {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout_ms: i32,
    pub rebalance_timeout_ms: i32,
    /// The member's metadata for the group's selected protocol.
    pub subscription: Bytes,
    pub assignment: Bytes,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct StoredGroup {
    pub protocol_type: String,
    pub protocol_name: Option<String>,
    pub generation_id: i32,
    /// Written at Stable (every member's assignment is known) rather than at the end of the
    /// join phase: a group restored without assignments must rebalance.
    pub assignments_complete: bool,
    pub leader_id: Option<String>,
    /// Wall clock (ms) of the last state change; for an Empty group, when it became empty.
    pub state_timestamp_ms: i64,
    pub members: Vec<StoredMember>,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum StoreRecord {
    Commit {
        group: String,
        topic: String,
        partition: i32,
        value: CommittedOffset,
    },
    Delete {
        group: String,
        topic: String,
        partition: i32,
    },
    Group {
        group: String,
        value: StoredGroup,
    },
    /// Removes the group's metadata and every offset it has.
    GroupDelete {
        group: String,
    },
    /// An offset committed inside `producer_id`'s transaction: pending, invisible to
    /// OffsetFetch, until a `TxnEnd` commits it.
    TxnCommit {
        group: String,
        producer_id: i64,
        producer_epoch: i16,
        topic: String,
        partition: i32,
        value: CommittedOffset,
    },
    /// The end of `producer_id`'s transaction in `group`: commit makes its pending
    /// offsets of `producer_epoch` the committed ones (a fenced zombie's, of an older
    /// epoch, are dropped), abort drops them all.
    TxnEnd {
        group: String,
        producer_id: i64,
        producer_epoch: i16,
        commit: bool,
    },
    /// A KIP-848 group's epochs and subscribed topics; `None` forgets the consumer group
    /// (its members too) when it turns classic. Replaces a classic `Group` record.
    ConsumerGroup {
        group: String,
        value: Option<StoredConsumerGroup>,
    },
    /// One KIP-848 member; `None` removes it.
    ConsumerMember {
        group: String,
        member_id: String,
        value: Option<Box<StoredConsumerMember>>,
    },
}

pub(crate) type GroupOffsets = HashMap<(String, i32), CommittedOffset>;
/// One producer's pending offsets in a group, each with the producer epoch that sent it.
pub(crate) type PendingOffsets = HashMap<(String, i32), (i16, CommittedOffset)>;

/// What the file says, materialized.
#[derive(Default, Debug)]
pub(crate) struct StoreState {
    pub offsets: HashMap<String, GroupOffsets>,
    pub groups: HashMap<String, StoredGroup>,
    /// Counts committed and pending offsets: both are bounded by OFFSETS_PER_SHARD_MAX.
    pub offset_count: usize,
    /// Pending transactional offsets per group, per producer id.
    pub pending: HashMap<String, HashMap<i64, PendingOffsets>>,
    /// KIP-848 groups' membership (a group is here or in `groups`, never both).
    pub consumer: HashMap<String, ConsumerGroupImage>,
}

impl StoreState {
    pub fn apply(&mut self, record: StoreRecord) {
        match record {
            StoreRecord::Commit {
                group,
                topic,
                partition,
                value,
            } => {
                let previous = self
                    .offsets
                    .entry(group)
                    .or_default()
                    .insert((topic, partition), value);
                self.offset_count += usize::from(previous.is_none());
            }
            StoreRecord::Delete {
                group,
                topic,
                partition,
            } => {
                if let Some(offsets) = self.offsets.get_mut(&group) {
                    self.offset_count -= usize::from(offsets.remove(&(topic, partition)).is_some());
                    if offsets.is_empty() {
                        self.offsets.remove(&group);
                    }
                }
            }
            StoreRecord::Group { group, value } => {
                self.consumer.remove(&group);
                self.groups.insert(group, value);
            }
            StoreRecord::GroupDelete { group } => self.delete_group(&group),
            StoreRecord::TxnCommit {
                group,
                producer_id,
                producer_epoch,
                topic,
                partition,
                value,
            } => {
                let offsets = self
                    .pending
                    .entry(group)
                    .or_default()
                    .entry(producer_id)
                    .or_default();
                match offsets.get_mut(&(topic.clone(), partition)) {
                    // A zombie's late write never replaces its successor's offset.
                    Some((epoch, _)) if *epoch > producer_epoch => {}
                    Some(slot) => *slot = (producer_epoch, value),
                    None => {
                        offsets.insert((topic, partition), (producer_epoch, value));
                        self.offset_count += 1;
                    }
                }
            }
            StoreRecord::TxnEnd {
                group,
                producer_id,
                producer_epoch,
                commit,
            } => self.end_txn(group, producer_id, producer_epoch, commit),
            record @ (StoreRecord::ConsumerGroup { .. } | StoreRecord::ConsumerMember { .. }) => {
                self.apply_consumer(record)
            }
        }
    }

    fn delete_group(&mut self, group: &str) {
        self.groups.remove(group);
        self.consumer.remove(group);
        if let Some(offsets) = self.offsets.remove(group) {
            self.offset_count -= offsets.len();
        }
        if let Some(pending) = self.pending.remove(group) {
            self.offset_count -= pending.values().map(HashMap::len).sum::<usize>();
        }
    }

    fn end_txn(&mut self, group: String, producer_id: i64, producer_epoch: i16, commit: bool) {
        let Some(by_producer) = self.pending.get_mut(&group) else {
            return;
        };
        let Some(offsets) = by_producer.remove(&producer_id) else {
            return;
        };
        if by_producer.is_empty() {
            self.pending.remove(&group);
        }
        self.offset_count -= offsets.len();
        if commit {
            let current = offsets
                .into_iter()
                .filter(|(_, (epoch, _))| *epoch == producer_epoch);
            for ((topic, partition), (_, value)) in current {
                self.apply(StoreRecord::Commit {
                    group: group.clone(),
                    topic,
                    partition,
                    value,
                });
            }
        }
    }

    /// Whether some transaction has a pending offset for this partition of `group`.
    pub fn has_pending(&self, group: &str, topic: &str, partition: i32) -> bool {
        self.pending.get(group).is_some_and(|by_producer| {
            by_producer
                .values()
                .any(|o| o.contains_key(&(topic.to_owned(), partition)))
        })
    }

    /// Every record needed to rebuild this state: the body of a compacted file.
    pub fn snapshot_records(&self) -> impl Iterator<Item = StoreRecord> + '_ {
        let groups = self.groups.iter().map(|(group, value)| StoreRecord::Group {
            group: group.clone(),
            value: value.clone(),
        });
        let offsets = self.offsets.iter().flat_map(|(group, offsets)| {
            offsets
                .iter()
                .map(move |((topic, partition), value)| StoreRecord::Commit {
                    group: group.clone(),
                    topic: topic.clone(),
                    partition: *partition,
                    value: value.clone(),
                })
        });
        let pending = self.pending.iter().flat_map(|(group, by_producer)| {
            by_producer.iter().flat_map(move |(producer_id, offsets)| {
                offsets.iter().map(
                    move |((topic, partition), (epoch, value))| StoreRecord::TxnCommit {
                        group: group.clone(),
                        producer_id: *producer_id,
                        producer_epoch: *epoch,
                        topic: topic.clone(),
                        partition: *partition,
                        value: value.clone(),
                    },
                )
            })
        });
        let consumer = self
            .consumer
            .iter()
            .flat_map(|(group, image)| image.records(group));
        groups.chain(consumer).chain(offsets).chain(pending)
    }
}

// ---------------------------------------------------------------- codec

pub(super) fn put_str(out: &mut Vec<u8>, s: &str) {
    assert!(
        s.len() <= u16::MAX as usize,
        "names are bounded by NAME_BYTES_MAX at entry"
    );
    out.extend_from_slice(&(s.len() as u16).to_be_bytes());
    out.extend_from_slice(s.as_bytes());
}

pub(super) fn put_opt_str(out: &mut Vec<u8>, s: Option<&str>) {
    out.push(u8::from(s.is_some()));
    put_str(out, s.unwrap_or(""));
}

fn put_blob(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as u32).to_be_bytes());
    out.extend_from_slice(b);
}

fn encode_body(record: &StoreRecord, out: &mut Vec<u8>) {
    match record {
        StoreRecord::Commit {
            group,
            topic,
            partition,
            value,
        } => {
            out.push(KIND_COMMIT);
            put_str(out, group);
            put_str(out, topic);
            out.extend_from_slice(&partition.to_be_bytes());
            out.extend_from_slice(&value.offset.to_be_bytes());
            out.extend_from_slice(&value.leader_epoch.to_be_bytes());
            put_str(out, &value.metadata);
            out.extend_from_slice(&value.commit_timestamp_ms.to_be_bytes());
        }
        StoreRecord::Delete {
            group,
            topic,
            partition,
        } => {
            out.push(KIND_DELETE);
            put_str(out, group);
            put_str(out, topic);
            out.extend_from_slice(&partition.to_be_bytes());
        }
        StoreRecord::Group { group, value } => encode_group(group, value, out),
        StoreRecord::GroupDelete { group } => {
            out.push(KIND_GROUP_DELETE);
            put_str(out, group);
        }
        StoreRecord::TxnCommit {
            group,
            producer_id,
            producer_epoch,
            topic,
            partition,
            value,
        } => {
            out.push(KIND_TXN_COMMIT);
            put_str(out, group);
            out.extend_from_slice(&producer_id.to_be_bytes());
            out.extend_from_slice(&producer_epoch.to_be_bytes());
            put_str(out, topic);
            out.extend_from_slice(&partition.to_be_bytes());
            out.extend_from_slice(&value.offset.to_be_bytes());
            out.extend_from_slice(&value.leader_epoch.to_be_bytes());
            put_str(out, &value.metadata);
            out.extend_from_slice(&value.commit_timestamp_ms.to_be_bytes());
        }
        StoreRecord::TxnEnd {
            group,
            producer_id,
            producer_epoch,
            commit,
        } => {
            out.push(KIND_TXN_END);
            put_str(out, group);
            out.extend_from_slice(&producer_id.to_be_bytes());
            out.extend_from_slice(&producer_epoch.to_be_bytes());
            out.push(u8::from(*commit));
        }
        record @ (StoreRecord::ConsumerGroup { .. } | StoreRecord::ConsumerMember { .. }) => {
            cpersist::encode_record(record, out)
        }
    }
}

fn encode_group(group: &str, value: &StoredGroup, out: &mut Vec<u8>) {
    out.push(KIND_GROUP);
    put_str(out, group);
    put_str(out, &value.protocol_type);
    put_opt_str(out, value.protocol_name.as_deref());
    out.extend_from_slice(&value.generation_id.to_be_bytes());
    out.push(u8::from(value.assignments_complete));
    put_opt_str(out, value.leader_id.as_deref());
    out.extend_from_slice(&value.state_timestamp_ms.to_be_bytes());
    out.extend_from_slice(&(value.members.len() as u32).to_be_bytes());
    for m in &value.members {
        put_str(out, &m.member_id);
        put_opt_str(out, m.group_instance_id.as_deref());
        put_str(out, &m.client_id);
        put_str(out, &m.client_host);
        out.extend_from_slice(&m.session_timeout_ms.to_be_bytes());
        out.extend_from_slice(&m.rebalance_timeout_ms.to_be_bytes());
        put_blob(out, &m.subscription);
        put_blob(out, &m.assignment);
    }
}

/// Appends one framed record (length, CRC-32C, body) to `out`.
pub(crate) fn encode_record(record: &StoreRecord, out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(&[0; FRAME_HEADER_BYTES]);
    encode_body(record, out);
    let body_bytes = out.len() - start - FRAME_HEADER_BYTES;
    assert!(
        body_bytes <= RECORD_BYTES_MAX,
        "record bounded by the member and name limits"
    );
    let crc = crc32c::crc32c(&out[start + FRAME_HEADER_BYTES..]);
    out[start..start + 4].copy_from_slice(&(body_bytes as u32).to_be_bytes());
    out[start + 4..start + 8].copy_from_slice(&crc.to_be_bytes());
}

pub(super) struct Reader<'a> {
    pub buf: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.buf.len() < n {
            return None;
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Some(head)
    }
    pub fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    pub fn i16(&mut self) -> Option<i16> {
        self.take(2)
            .map(|b| i16::from_be_bytes(b.try_into().expect("2 bytes")))
    }
    pub fn i32(&mut self) -> Option<i32> {
        self.take(4)
            .map(|b| i32::from_be_bytes(b.try_into().expect("4 bytes")))
    }
    pub fn i64(&mut self) -> Option<i64> {
        self.take(8)
            .map(|b| i64::from_be_bytes(b.try_into().expect("8 bytes")))
    }
    pub fn string(&mut self) -> Option<String> {
        let len = u16::from_be_bytes(self.take(2)?.try_into().expect("2 bytes")) as usize;
        String::from_utf8(self.take(len)?.to_vec()).ok()
    }
    pub fn opt_string(&mut self) -> Option<Option<String>> {
        let present = self.u8()?;
        let s = self.string()?;
        Some((present == 1).then_some(s))
    }
    pub fn blob(&mut self) -> Option<Bytes> {
        let len = self.i32()? as u32 as usize;
        Some(Bytes::copy_from_slice(self.take(len)?))
    }
}

fn decode_body(body: &[u8]) -> Option<StoreRecord> {
    let mut r = Reader { buf: body };
    let record = match r.u8()? {
        KIND_COMMIT => StoreRecord::Commit {
            group: r.string()?,
            topic: r.string()?,
            partition: r.i32()?,
            value: CommittedOffset {
                offset: r.i64()?,
                leader_epoch: r.i32()?,
                metadata: r.string()?,
                commit_timestamp_ms: r.i64()?,
            },
        },
        KIND_DELETE => StoreRecord::Delete {
            group: r.string()?,
            topic: r.string()?,
            partition: r.i32()?,
        },
        KIND_GROUP => decode_group(&mut r)?,
        KIND_GROUP_DELETE => StoreRecord::GroupDelete { group: r.string()? },
        KIND_TXN_COMMIT => StoreRecord::TxnCommit {
            group: r.string()?,
            producer_id: r.i64()?,
            producer_epoch: r.i16()?,
            topic: r.string()?,
            partition: r.i32()?,
            value: CommittedOffset {
                offset: r.i64()?,
                leader_epoch: r.i32()?,
                metadata: r.string()?,
                commit_timestamp_ms: r.i64()?,
            },
        },
        KIND_TXN_END => StoreRecord::TxnEnd {
            group: r.string()?,
            producer_id: r.i64()?,
            producer_epoch: r.i16()?,
            commit: r.u8()? == 1,
        },
        kind @ (cpersist::KIND_CONSUMER_GROUP | cpersist::KIND_CONSUMER_MEMBER) => {
            cpersist::decode_record(kind, &mut r)?
        }
        _ => return None,
    };
    r.buf.is_empty().then_some(record)
}

fn decode_group(r: &mut Reader<'_>) -> Option<StoreRecord> {
    let group = r.string()?;
    let protocol_type = r.string()?;
    let protocol_name = r.opt_string()?;
    let generation_id = r.i32()?;
    let assignments_complete = r.u8()? == 1;
    let leader_id = r.opt_string()?;
    let state_timestamp_ms = r.i64()?;
    let member_count = r.i32()? as u32 as usize;
    if member_count > super::GROUP_MEMBERS_MAX {
        return None;
    }
    let mut members = Vec::with_capacity(member_count);
    for _ in 0..member_count {
        members.push(StoredMember {
            member_id: r.string()?,
            group_instance_id: r.opt_string()?,
            client_id: r.string()?,
            client_host: r.string()?,
            session_timeout_ms: r.i32()?,
            rebalance_timeout_ms: r.i32()?,
            subscription: r.blob()?,
            assignment: r.blob()?,
        });
    }
    let value = StoredGroup {
        protocol_type,
        protocol_name,
        generation_id,
        assignments_complete,
        leader_id,
        state_timestamp_ms,
        members,
    };
    Some(StoreRecord::Group { group, value })
}

/// Outcome of scanning a file image: the state and the length of its valid prefix.
#[derive(Debug)]
pub(crate) struct Scan {
    pub state: StoreState,
    pub valid_bytes: usize,
    pub torn: bool,
}

/// Replays `image`, stopping at the first short or CRC-failing frame (a torn tail). A frame
/// whose CRC holds but whose body does not decode is corruption we cannot explain: refuse.
pub(crate) fn scan(image: &[u8], path: &Path) -> Result<Scan, GroupError> {
    let corrupt = |reason: String| GroupError::Corrupt {
        path: path.to_path_buf(),
        reason,
    };
    if image.len() < FILE_MAGIC.len() {
        // A crash while creating the file; nothing was ever acknowledged from it.
        return Ok(Scan {
            state: StoreState::default(),
            valid_bytes: 0,
            torn: !image.is_empty(),
        });
    }
    if &image[..FILE_MAGIC.len()] != FILE_MAGIC {
        return Err(corrupt("bad magic: not a Weir group offsets file".into()));
    }
    let mut state = StoreState::default();
    let mut position = FILE_MAGIC.len();
    loop {
        let rest = &image[position..];
        if rest.len() < FRAME_HEADER_BYTES {
            break;
        }
        let body_bytes = u32::from_be_bytes(rest[..4].try_into().expect("4 bytes")) as usize;
        let crc = u32::from_be_bytes(rest[4..8].try_into().expect("4 bytes"));
        if body_bytes > RECORD_BYTES_MAX || rest.len() < FRAME_HEADER_BYTES + body_bytes {
            break;
        }
        let body = &rest[FRAME_HEADER_BYTES..FRAME_HEADER_BYTES + body_bytes];
        if crc32c::crc32c(body) != crc {
            break;
        }
        let record =
            decode_body(body).ok_or_else(|| corrupt(format!("undecodable record at byte {position}")))?;
        state.apply(record);
        position += FRAME_HEADER_BYTES + body_bytes;
    }
    Ok(Scan {
        state,
        valid_bytes: position,
        torn: position != image.len(),
    })
}
