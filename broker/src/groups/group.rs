//! One consumer group's membership state machine (Kafka's classic GroupMetadata):
//! members, generation, leader, selected protocol, and the waiters of JoinGroup/SyncGroup.
//! Owned by its shard's coordinator; pure logic over a caller-supplied `now`, no I/O.
//! Invariants: Empty ⇔ no members (outside a rebalance); CompletingRebalance and Stable always
//! have a leader and a selected protocol that every member supports; members ≤ GROUP_MEMBERS_MAX.

use std::time::{Duration, Instant};

use bytes::Bytes;
use glommio::channels::local_channel::LocalSender;
use kafka_protocol::messages::{JoinGroupResponse, SyncGroupResponse};

use super::record::{StoredGroup, StoredMember};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GroupState {
    Empty,
    PreparingRebalance,
    CompletingRebalance,
    Stable,
    Dead,
}

impl GroupState {
    /// The names Kafka uses in ListGroups and DescribeGroups.
    pub fn name(self) -> &'static str {
        match self {
            GroupState::Empty => "Empty",
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Stable => "Stable",
            GroupState::Dead => "Dead",
        }
    }
}

pub(crate) struct Member {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout_ms: i32,
    pub rebalance_timeout_ms: i32,
    /// (protocol name, metadata), in the member's order of preference.
    pub protocols: Vec<(String, Bytes)>,
    pub assignment: Bytes,
    pub heartbeat_deadline: Instant,
    pub join_waiter: Option<LocalSender<JoinGroupResponse>>,
    pub sync_waiter: Option<LocalSender<SyncGroupResponse>>,
}

impl Member {
    pub fn metadata_for(&self, protocol: &str) -> Option<&Bytes> {
        self.protocols
            .iter()
            .find(|(name, _)| name == protocol)
            .map(|(_, m)| m)
    }

    pub fn same_protocols(&self, protocols: &[(String, Bytes)]) -> bool {
        self.protocols == protocols
    }

    pub fn touch(&mut self, now: Instant) {
        self.heartbeat_deadline = now + Duration::from_millis(self.session_timeout_ms.max(0) as u64);
    }
}

pub(crate) struct Group {
    pub group_id: String,
    pub state: GroupState,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub generation_id: i32,
    pub leader_id: Option<String>,
    /// In join order: the first member becomes leader when there is none.
    pub members: Vec<Member>,
    /// Member ids handed out with MEMBER_ID_REQUIRED, valid until their deadline.
    pub pending_members: Vec<(String, Instant)>,
    /// PreparingRebalance ends at this instant even if some members never rejoined.
    pub rebalance_deadline: Option<Instant>,
    /// PreparingRebalance does not end before this (initial rebalance delay).
    pub join_not_before: Option<Instant>,
    /// Stable only: the timer need not look at this group before this instant. Cleared on
    /// entering Stable; never later than the earliest member deadline.
    pub scan_after: Option<Instant>,
    /// Wall clock (ms) of the last state change; for Empty, since when it is empty.
    pub state_timestamp_ms: i64,
    /// CompletingRebalance: the generation whose leader assignments are being written.
    /// Nobody is answered, and a retried leader SyncGroup only waits, until that write
    /// is durable (then the group goes Stable) or fails.
    pub assignments_persisting: Option<i32>,
    /// Set when the group is a KIP-848 consumer group; the classic fields above then stay
    /// Empty (no classic member can join until it is empty again).
    pub consumer: Option<Box<super::consumer::ConsumerGroup>>,
    /// Set when the group is a share group (KIP-932); the classic fields stay Empty.
    pub share: Option<Box<super::share::ShareGroup>>,
}

impl Group {
    pub fn new(group_id: String, now_ms: i64) -> Self {
        Self {
            group_id,
            state: GroupState::Empty,
            protocol_type: None,
            protocol_name: None,
            generation_id: 0,
            leader_id: None,
            members: Vec::new(),
            pending_members: Vec::new(),
            rebalance_deadline: None,
            join_not_before: None,
            scan_after: None,
            state_timestamp_ms: now_ms,
            assignments_persisting: None,
            consumer: None,
            share: None,
        }
    }

    /// Whether this is a KIP-848 consumer group with members.
    pub fn has_consumer_members(&self) -> bool {
        self.consumer.as_ref().is_some_and(|c| !c.members.is_empty())
            || self.share.as_ref().is_some_and(|s| !s.members.is_empty())
    }

    pub fn member(&self, member_id: &str) -> Option<&Member> {
        self.members.iter().find(|m| m.member_id == member_id)
    }

    pub fn member_mut(&mut self, member_id: &str) -> Option<&mut Member> {
        self.members.iter_mut().find(|m| m.member_id == member_id)
    }

    pub fn member_by_instance(&self, instance_id: &str) -> Option<&Member> {
        self.members
            .iter()
            .find(|m| m.group_instance_id.as_deref() == Some(instance_id))
    }

    pub fn is_leader(&self, member_id: &str) -> bool {
        self.leader_id.as_deref() == Some(member_id)
    }

    /// Static-membership fencing (KIP-345): an instance id known under another member id is
    /// a zombie of a replaced consumer.
    pub fn is_fenced(&self, member_id: &str, instance_id: Option<&str>) -> bool {
        instance_id
            .and_then(|i| self.member_by_instance(i))
            .is_some_and(|m| m.member_id != member_id)
    }

    /// Protocols every current member supports, in the first member's order.
    fn candidate_protocols(&self) -> Vec<&str> {
        let Some(first) = self.members.first() else {
            return Vec::new();
        };
        first
            .protocols
            .iter()
            .map(|(name, _)| name.as_str())
            .filter(|name| self.members.iter().all(|m| m.metadata_for(name).is_some()))
            .collect()
    }

    /// Whether a joiner with this protocol type and list can be in this group.
    pub fn supports_protocols(&self, protocol_type: &str, protocols: &[(String, Bytes)]) -> bool {
        if protocol_type.is_empty() || protocols.is_empty() {
            return false;
        }
        if self.members.is_empty() {
            return true;
        }
        self.protocol_type.as_deref() == Some(protocol_type)
            && self
                .candidate_protocols()
                .iter()
                .any(|c| protocols.iter().any(|(name, _)| name == c))
    }

    /// Kafka's selection: each member votes for its most preferred candidate; most votes wins,
    /// ties go to the candidate the first member prefers.
    pub fn select_protocol(&self) -> Option<String> {
        let candidates = self.candidate_protocols();
        let mut votes = vec![0usize; candidates.len()];
        for member in &self.members {
            let choice = member
                .protocols
                .iter()
                .find_map(|(name, _)| candidates.iter().position(|c| c == name));
            if let Some(index) = choice {
                votes[index] += 1;
            }
        }
        let best = votes
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(&a.0)))?
            .0;
        Some(candidates[best].to_owned())
    }

    pub fn all_rejoined(&self) -> bool {
        self.members.iter().all(|m| m.join_waiter.is_some())
    }

    pub fn max_rebalance_timeout_ms(&self) -> i32 {
        self.members
            .iter()
            .map(|m| m.rebalance_timeout_ms)
            .max()
            .unwrap_or(0)
    }

    /// The durable image of this group (metadata of the selected protocol only).
    pub fn to_stored(&self) -> StoredGroup {
        let protocol = self.protocol_name.as_deref().unwrap_or("");
        let members = self
            .members
            .iter()
            .map(|m| StoredMember {
                member_id: m.member_id.clone(),
                group_instance_id: m.group_instance_id.clone(),
                client_id: m.client_id.clone(),
                client_host: m.client_host.clone(),
                session_timeout_ms: m.session_timeout_ms,
                rebalance_timeout_ms: m.rebalance_timeout_ms,
                subscription: m.metadata_for(protocol).cloned().unwrap_or_default(),
                assignment: m.assignment.clone(),
            })
            .collect();
        StoredGroup {
            protocol_type: self.protocol_type.clone().unwrap_or_default(),
            protocol_name: self.protocol_name.clone(),
            generation_id: self.generation_id,
            assignments_complete: self.state == GroupState::Stable,
            leader_id: self.leader_id.clone(),
            state_timestamp_ms: self.state_timestamp_ms,
            members,
        }
    }

    /// Rebuilds a group from its durable image after a restart: with members and assignments
    /// it resumes Stable (members keep heartbeating as before); with members but without
    /// assignments it rebalances; without members it is Empty.
    pub fn from_stored(group_id: String, stored: &StoredGroup, now: Instant) -> Self {
        let mut group = Group::new(group_id, stored.state_timestamp_ms);
        group.protocol_type = Some(stored.protocol_type.clone()).filter(|t| !t.is_empty());
        group.protocol_name = stored.protocol_name.clone();
        group.generation_id = stored.generation_id;
        group.leader_id = stored.leader_id.clone();
        let protocol = stored.protocol_name.clone().unwrap_or_default();
        for m in &stored.members {
            let mut member = Member {
                member_id: m.member_id.clone(),
                group_instance_id: m.group_instance_id.clone(),
                client_id: m.client_id.clone(),
                client_host: m.client_host.clone(),
                session_timeout_ms: m.session_timeout_ms,
                rebalance_timeout_ms: m.rebalance_timeout_ms,
                protocols: vec![(protocol.clone(), m.subscription.clone())],
                assignment: m.assignment.clone(),
                heartbeat_deadline: now,
                join_waiter: None,
                sync_waiter: None,
            };
            member.touch(now);
            group.members.push(member);
        }
        let complete =
            !group.members.is_empty() && group.protocol_name.is_some() && group.leader_id.is_some();
        group.state = match (complete, stored.assignments_complete) {
            (true, true) => GroupState::Stable,
            // Stopped between join and sync: the assignments are lost, so rebalance. Members
            // that do not rejoin before the deadline are removed like any straggler.
            (true, false) => {
                let timeout_ms = group.max_rebalance_timeout_ms().max(0) as u64;
                group.rebalance_deadline = Some(now + std::time::Duration::from_millis(timeout_ms));
                GroupState::PreparingRebalance
            }
            (false, _) => GroupState::Empty,
        };
        if !complete {
            group.members.clear();
        }
        group
    }

    /// Topics the members subscribe to, from the consumer protocol's subscription metadata.
    /// `None` means "unknown" (not the consumer protocol, or undecodable): callers treat it as
    /// "possibly subscribed to anything".
    pub fn subscribed_topics(&self) -> Option<Vec<String>> {
        if self.protocol_type.as_deref() != Some("consumer") {
            return None;
        }
        let protocol = self.protocol_name.as_deref()?;
        let mut topics = Vec::new();
        for member in &self.members {
            topics.extend(parse_subscription_topics(member.metadata_for(protocol)?)?);
        }
        Some(topics)
    }
}

/// ConsumerProtocolSubscription (all versions start the same, never flexible):
/// version i16, then an array (i32 count) of topic names (i16 length + UTF-8).
pub(crate) fn parse_subscription_topics(metadata: &[u8]) -> Option<Vec<String>> {
    let mut rest = metadata;
    let mut take = |n: usize| -> Option<&[u8]> {
        let (head, tail) = rest.split_at_checked(n)?;
        rest = tail;
        Some(head)
    };
    let version = i16::from_be_bytes(take(2)?.try_into().ok()?);
    if version < 0 {
        return None;
    }
    let count = i32::from_be_bytes(take(4)?.try_into().ok()?);
    let count = usize::try_from(count).ok()?;
    // Each name needs at least its 2-byte length: a bigger count is garbage, not a huge Vec.
    if count > metadata.len() / 2 {
        return None;
    }
    let mut topics = Vec::with_capacity(count);
    for _ in 0..count {
        let len = usize::try_from(i16::from_be_bytes(take(2)?.try_into().ok()?)).ok()?;
        topics.push(std::str::from_utf8(take(len)?).ok()?.to_owned());
    }
    Some(topics)
}
