//! The durable image of a KIP-848 consumer group in the shard's offsets file (Kafka keeps the
//! same facts in __consumer_offsets): one group record (group epoch, assignment epoch, the
//! resolved subscribed topics) and one record per member (subscription, member epoch, current
//! and target assignment). Records are written for what changed (`ConsumerGroup::dirty_*`),
//! replayed by `record::StoreState`, and turned back into a live group on open.
//! Runs on the coordinator's shard. Invariants: a member record's absence is its removal;
//! session and revocation deadlines are not stored (they restart counting at load).

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use uuid::Uuid;

use super::assignor::Assignment;
use super::classic::ClassicMember;
use super::reconcile::{MemberState, Reconciled};
use super::{ConsumerGroup, ConsumerMember};
use crate::groups::record::{put_opt_str, put_str, Reader, StoreRecord, StoreState};

/// The group part: epochs and the topics its members' subscriptions resolved to.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct StoredConsumerGroup {
    pub group_epoch: i32,
    pub assignment_epoch: i32,
    /// (name, topic id, partition count) of every subscribed topic.
    pub topics: Vec<(String, Uuid, i32)>,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct StoredConsumerMember {
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub rebalance_timeout_ms: i32,
    pub topic_names: Vec<String>,
    pub regex: Option<String>,
    pub assignor: Option<String>,
    pub r: Reconciled,
    pub target: Assignment,
    /// A classic member's session timeout and protocols (after an online upgrade).
    pub classic: Option<ClassicMember>,
}

/// Everything the file says about one consumer group.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct ConsumerGroupImage {
    pub group: StoredConsumerGroup,
    pub members: BTreeMap<String, Box<StoredConsumerMember>>,
}

impl ConsumerGroupImage {
    /// The records that rebuild this image (a compacted file's share of it).
    pub fn records(&self, group: &str) -> Vec<StoreRecord> {
        let mut out = vec![StoreRecord::ConsumerGroup {
            group: group.to_owned(),
            value: Some(self.group.clone()),
        }];
        out.extend(self.members.iter().map(|(id, m)| StoreRecord::ConsumerMember {
            group: group.to_owned(),
            member_id: id.clone(),
            value: Some(m.clone()),
        }));
        out
    }
}

// ---------------------------------------------------------------- live <-> stored

impl ConsumerGroup {
    fn stored_group(&self) -> StoredConsumerGroup {
        StoredConsumerGroup {
            group_epoch: self.group_epoch,
            assignment_epoch: self.assignment_epoch,
            topics: self
                .topics
                .iter()
                .map(|(name, (id, n))| (name.clone(), *id, *n))
                .collect(),
        }
    }

    fn stored_member(&self, m: &ConsumerMember) -> StoredConsumerMember {
        StoredConsumerMember {
            instance_id: m.instance_id.clone(),
            rack_id: m.rack_id.clone(),
            client_id: m.client_id.clone(),
            client_host: m.client_host.clone(),
            rebalance_timeout_ms: m.rebalance_timeout_ms,
            topic_names: m.topic_names.iter().cloned().collect(),
            regex: m.regex.as_ref().map(|(src, _)| src.clone()),
            assignor: m.assignor.clone(),
            r: m.r.clone(),
            target: self.target.get(&m.member_id).cloned().unwrap_or_default(),
            classic: m.classic.clone(),
        }
    }

    /// The records for what changed since the last call: changed or removed members, then the
    /// group record. Empty when nothing durable changed (a plain heartbeat).
    pub fn take_records(&mut self, group_id: &str) -> Vec<StoreRecord> {
        let mut out = Vec::new();
        for id in std::mem::take(&mut self.dirty_members) {
            let value = self.members.get(&id).map(|m| Box::new(self.stored_member(m)));
            out.push(StoreRecord::ConsumerMember {
                group: group_id.to_owned(),
                member_id: id,
                value,
            });
        }
        if std::mem::take(&mut self.dirty_group) {
            out.push(StoreRecord::ConsumerGroup {
                group: group_id.to_owned(),
                value: Some(self.stored_group()),
            });
        }
        out
    }

    /// Rebuilds a group after a restart. Every member's session starts now, as Kafka's
    /// coordinator restarts its timers when it loads a group; a member still revoking gets
    /// a fresh rebalance timeout.
    pub fn from_image(image: &ConsumerGroupImage, now: Instant, session_timeout_ms: i32) -> Self {
        let mut cg = ConsumerGroup {
            group_epoch: image.group.group_epoch,
            assignment_epoch: image.group.assignment_epoch,
            topics: image
                .group
                .topics
                .iter()
                .map(|(name, id, n)| (name.clone(), (*id, *n)))
                .collect(),
            ..ConsumerGroup::default()
        };
        for (id, m) in &image.members {
            // Stored regexes compiled when they were accepted; one that no longer does (a
            // newer regex crate) subscribes to nothing rather than failing the load.
            let regex = m.regex.as_ref().and_then(|src| {
                regex::Regex::new(&format!("^(?:{src})$"))
                    .ok()
                    .map(|re| (src.clone(), re))
            });
            let revocation_deadline = (m.r.state == MemberState::UnrevokedPartitions)
                .then(|| now + Duration::from_millis(m.rebalance_timeout_ms.max(0) as u64));
            let mut member = ConsumerMember {
                member_id: id.clone(),
                instance_id: m.instance_id.clone(),
                rack_id: m.rack_id.clone(),
                client_id: m.client_id.clone(),
                client_host: m.client_host.clone(),
                rebalance_timeout_ms: m.rebalance_timeout_ms,
                topic_names: m.topic_names.iter().cloned().collect(),
                regex,
                assignor: m.assignor.clone(),
                r: m.r.clone(),
                session_deadline: now,
                revocation_deadline,
                classic: m.classic.clone(),
            };
            member.touch(now, session_timeout_ms);
            cg.target.insert(id.clone(), m.target.clone());
            cg.members.insert(id.clone(), member);
        }
        cg
    }
}

// ---------------------------------------------------------------- replay

impl StoreState {
    /// Replays a consumer-group record (the classic `Group` record of the id goes: a group is
    /// one or the other).
    pub(in crate::groups) fn apply_consumer(&mut self, record: StoreRecord) {
        match record {
            StoreRecord::ConsumerGroup {
                group,
                value: Some(value),
            } => {
                self.groups.remove(&group);
                self.consumer.entry(group).or_default().group = value;
            }
            StoreRecord::ConsumerGroup { group, value: None } => {
                self.consumer.remove(&group);
            }
            StoreRecord::ConsumerMember {
                group,
                member_id,
                value: Some(value),
            } => {
                self.groups.remove(&group);
                let image = self.consumer.entry(group).or_default();
                image.members.insert(member_id, value);
            }
            StoreRecord::ConsumerMember {
                group,
                member_id,
                value: None,
            } => {
                if let Some(image) = self.consumer.get_mut(&group) {
                    image.members.remove(&member_id);
                }
            }
            _ => unreachable!("only consumer-group records come here"),
        }
    }
}

// ---------------------------------------------------------------- codec

pub(in crate::groups) const KIND_CONSUMER_GROUP: u8 = 7;
pub(in crate::groups) const KIND_CONSUMER_MEMBER: u8 = 8;

/// The body of a consumer-group record: kind, group, (member id,) presence, value.
pub(in crate::groups) fn encode_record(record: &StoreRecord, out: &mut Vec<u8>) {
    match record {
        StoreRecord::ConsumerGroup { group, value } => {
            out.push(KIND_CONSUMER_GROUP);
            put_str(out, group);
            out.push(u8::from(value.is_some()));
            if let Some(value) = value {
                encode_group(value, out);
            }
        }
        StoreRecord::ConsumerMember {
            group,
            member_id,
            value,
        } => {
            out.push(KIND_CONSUMER_MEMBER);
            put_str(out, group);
            put_str(out, member_id);
            out.push(u8::from(value.is_some()));
            if let Some(value) = value {
                encode_member(value, out);
            }
        }
        _ => unreachable!("only consumer-group records come here"),
    }
}

/// Decodes a consumer-group record body after its kind byte.
pub(in crate::groups) fn decode_record(kind: u8, r: &mut Reader<'_>) -> Option<StoreRecord> {
    let group = r.string()?;
    if kind == KIND_CONSUMER_GROUP {
        let value = match r.u8()? {
            0 => None,
            _ => Some(decode_group(r)?),
        };
        return Some(StoreRecord::ConsumerGroup { group, value });
    }
    let member_id = r.string()?;
    let value = match r.u8()? {
        0 => None,
        _ => Some(Box::new(decode_member(r)?)),
    };
    Some(StoreRecord::ConsumerMember {
        group,
        member_id,
        value,
    })
}

fn put_i32(out: &mut Vec<u8>, v: i32) {
    out.extend_from_slice(&v.to_be_bytes());
}

fn put_assignment(out: &mut Vec<u8>, a: &Assignment) {
    put_i32(out, a.len() as i32);
    for (topic, partitions) in a {
        out.extend_from_slice(topic.as_bytes());
        put_i32(out, partitions.len() as i32);
        for p in partitions {
            put_i32(out, *p);
        }
    }
}

fn read_assignment(r: &mut Reader<'_>) -> Option<Assignment> {
    let topics = r.i32()? as u32 as usize;
    let mut out = Assignment::new();
    for _ in 0..topics {
        let id = Uuid::from_slice(r.take(16)?).ok()?;
        let n = r.i32()? as u32 as usize;
        // Each partition takes 4 bytes: a count past what is left is corruption.
        if n > r.buf.len() / 4 {
            return None;
        }
        let mut ps = BTreeSet::new();
        for _ in 0..n {
            ps.insert(r.i32()?);
        }
        out.insert(id, ps);
    }
    Some(out)
}

fn encode_group(value: &StoredConsumerGroup, out: &mut Vec<u8>) {
    put_i32(out, value.group_epoch);
    put_i32(out, value.assignment_epoch);
    put_i32(out, value.topics.len() as i32);
    for (name, id, n) in &value.topics {
        put_str(out, name);
        out.extend_from_slice(id.as_bytes());
        put_i32(out, *n);
    }
}

fn decode_group(r: &mut Reader<'_>) -> Option<StoredConsumerGroup> {
    let group_epoch = r.i32()?;
    let assignment_epoch = r.i32()?;
    let n = r.i32()? as u32 as usize;
    if n > r.buf.len() / 22 {
        return None;
    }
    let mut topics = Vec::with_capacity(n);
    for _ in 0..n {
        let name = r.string()?;
        let id = Uuid::from_slice(r.take(16)?).ok()?;
        topics.push((name, id, r.i32()?));
    }
    Some(StoredConsumerGroup {
        group_epoch,
        assignment_epoch,
        topics,
    })
}

fn state_code(s: MemberState) -> u8 {
    match s {
        MemberState::Stable => 0,
        MemberState::UnrevokedPartitions => 1,
        MemberState::UnreleasedPartitions => 2,
    }
}

fn encode_member(m: &StoredConsumerMember, out: &mut Vec<u8>) {
    put_opt_str(out, m.instance_id.as_deref());
    put_opt_str(out, m.rack_id.as_deref());
    put_str(out, &m.client_id);
    put_str(out, &m.client_host);
    put_i32(out, m.rebalance_timeout_ms);
    put_i32(out, m.topic_names.len() as i32);
    for name in &m.topic_names {
        put_str(out, name);
    }
    put_opt_str(out, m.regex.as_deref());
    put_opt_str(out, m.assignor.as_deref());
    out.push(state_code(m.r.state));
    put_i32(out, m.r.epoch);
    put_i32(out, m.r.previous_epoch);
    put_assignment(out, &m.r.assigned);
    put_assignment(out, &m.r.pending_revocation);
    put_assignment(out, &m.target);
    out.push(u8::from(m.classic.is_some()));
    if let Some(c) = &m.classic {
        put_i32(out, c.session_timeout_ms);
        put_i32(out, c.protocols.len() as i32);
        for (name, metadata) in &c.protocols {
            put_str(out, name);
            put_i32(out, metadata.len() as i32);
            out.extend_from_slice(metadata);
        }
    }
}

fn decode_member(r: &mut Reader<'_>) -> Option<StoredConsumerMember> {
    let instance_id = r.opt_string()?;
    let rack_id = r.opt_string()?;
    let client_id = r.string()?;
    let client_host = r.string()?;
    let rebalance_timeout_ms = r.i32()?;
    let n = r.i32()? as u32 as usize;
    if n > r.buf.len() / 2 {
        return None;
    }
    let mut topic_names = Vec::with_capacity(n);
    for _ in 0..n {
        topic_names.push(r.string()?);
    }
    let regex = r.opt_string()?;
    let assignor = r.opt_string()?;
    let state = match r.u8()? {
        0 => MemberState::Stable,
        1 => MemberState::UnrevokedPartitions,
        2 => MemberState::UnreleasedPartitions,
        _ => return None,
    };
    let epoch = r.i32()?;
    let previous_epoch = r.i32()?;
    let assigned = read_assignment(r)?;
    let pending_revocation = read_assignment(r)?;
    let target = read_assignment(r)?;
    let classic = match r.u8()? {
        0 => None,
        _ => {
            let session_timeout_ms = r.i32()?;
            let n = r.i32()? as u32 as usize;
            if n > crate::groups::MEMBER_PROTOCOLS_MAX {
                return None;
            }
            let mut protocols = Vec::with_capacity(n);
            for _ in 0..n {
                protocols.push((r.string()?, r.blob()?));
            }
            Some(ClassicMember {
                session_timeout_ms,
                protocols,
            })
        }
    };
    Some(StoredConsumerMember {
        instance_id,
        rack_id,
        client_id,
        client_host,
        rebalance_timeout_ms,
        topic_names,
        regex,
        assignor,
        r: Reconciled {
            state,
            epoch,
            previous_epoch,
            assigned,
            pending_revocation,
        },
        target,
        classic,
    })
}
