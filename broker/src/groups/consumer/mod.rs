//! KIP-848 consumer groups ("consumer" group type): members, the group epoch, the target
//! assignment and its epoch. The server assigns (`assignor`), each member moves to its target
//! one safe step at a time (`reconcile`); the ConsumerGroupHeartbeat/Describe handling and the
//! session timer live in `heartbeat`. A `ConsumerGroup` hangs off the shard's `Group` entry of
//! the same id, so classic and consumer groups share one namespace and one offsets store.
//! Owned by the coordinator's shard; made durable by `persist` (what changed is marked dirty
//! and written after each call). Invariants: group_epoch >= assignment_epoch >= every member
//! epoch; the target covers exactly the current members; members <= GROUP_MEMBERS_MAX.

pub mod assignor;
pub(crate) mod classic;
mod heartbeat;
pub(crate) mod persist;
pub mod reconcile;
mod validate;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Instant;

use uuid::Uuid;

use assignor::{Assignment, AssignorMember, DEFAULT_ASSIGNOR};
pub use heartbeat::Caller;
use reconcile::{MemberState, Reconciled};

/// Subscribed topic names one heartbeat may carry (a real consumer sends its own list).
pub const SUBSCRIBED_TOPICS_MAX: usize = 10_000;
/// Owned partitions one heartbeat may report.
pub const OWNED_PARTITIONS_MAX: usize = 100_000;

pub(crate) struct ConsumerMember {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub rebalance_timeout_ms: i32,
    pub topic_names: BTreeSet<String>,
    pub regex: Option<(String, regex::Regex)>,
    pub assignor: Option<String>,
    pub r: Reconciled,
    pub session_deadline: Instant,
    /// Set while UnrevokedPartitions: the member is removed if it has not revoked by then.
    pub revocation_deadline: Option<Instant>,
    /// Set for a member using the classic protocol (JoinGroup/SyncGroup/Heartbeat) inside
    /// this consumer group, after an online upgrade.
    pub classic: Option<classic::ClassicMember>,
}

impl ConsumerMember {
    pub fn subscribes_to(&self, topic: &str) -> bool {
        self.topic_names.contains(topic) || self.regex.as_ref().is_some_and(|(_, re)| re.is_match(topic))
    }

    /// Restarts the session: `session_timeout_ms` for a consumer-protocol member, the
    /// member's own JoinGroup session timeout for a classic one.
    pub fn touch(&mut self, now: Instant, session_timeout_ms: i32) {
        self.session_deadline = now + classic::session_timeout(self, session_timeout_ms);
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConsumerGroupState {
    Empty,
    Assigning,
    Reconciling,
    Stable,
}

impl ConsumerGroupState {
    /// The names Kafka uses in ListGroups and ConsumerGroupDescribe.
    pub fn name(self) -> &'static str {
        match self {
            Self::Empty => "Empty",
            Self::Assigning => "Assigning",
            Self::Reconciling => "Reconciling",
            Self::Stable => "Stable",
        }
    }
}

#[derive(Default)]
pub(crate) struct ConsumerGroup {
    pub group_epoch: i32,
    pub assignment_epoch: i32,
    pub members: BTreeMap<String, ConsumerMember>,
    /// Target assignment per member, at `assignment_epoch`.
    pub target: BTreeMap<String, Assignment>,
    /// Topics some member subscribes to, as of the last heartbeat: name -> (id, partitions).
    /// A change (topic created, deleted, grown, regex matching more) bumps the group epoch.
    pub topics: BTreeMap<String, (Uuid, i32)>,
    /// Members whose durable record is stale: rewritten (or removed, if gone) by
    /// `take_records`.
    pub dirty_members: BTreeSet<String>,
    /// The group record (epochs, topics) is stale.
    pub dirty_group: bool,
}

impl ConsumerGroup {
    pub fn state(&self) -> ConsumerGroupState {
        if self.members.is_empty() {
            ConsumerGroupState::Empty
        } else if self.group_epoch > self.assignment_epoch {
            ConsumerGroupState::Assigning
        } else if self
            .members
            .values()
            .any(|m| m.r.epoch != self.assignment_epoch || m.r.state != MemberState::Stable)
        {
            ConsumerGroupState::Reconciling
        } else {
            ConsumerGroupState::Stable
        }
    }

    /// The assignor in use: the one most members name (ties to the smaller name), else uniform.
    pub fn assignor(&self) -> String {
        let mut votes: BTreeMap<&str, usize> = BTreeMap::new();
        for name in self.members.values().filter_map(|m| m.assignor.as_deref()) {
            *votes.entry(name).or_default() += 1;
        }
        let best = votes.iter().max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)));
        best.map_or(DEFAULT_ASSIGNOR, |(name, _)| name).to_owned()
    }

    pub fn topic_name(&self, id: &Uuid) -> Option<&str> {
        self.topics
            .iter()
            .find(|(_, (tid, _))| tid == id)
            .map(|(name, _)| name.as_str())
    }

    fn subscribed_ids(&self, member: &ConsumerMember) -> BTreeSet<Uuid> {
        self.topics
            .iter()
            .filter(|(name, _)| member.subscribes_to(name))
            .map(|(_, (id, _))| *id)
            .collect()
    }

    /// Recomputes the target assignment for the current members at the group epoch.
    pub fn compute_target(&mut self) {
        let subscribed: Vec<BTreeSet<Uuid>> = self.members.values().map(|m| self.subscribed_ids(m)).collect();
        let empty = Assignment::new();
        let members: Vec<AssignorMember<'_>> = self
            .members
            .values()
            .zip(&subscribed)
            .map(|(m, s)| AssignorMember {
                member_id: &m.member_id,
                instance_id: m.instance_id.as_deref(),
                subscribed: s,
                previous: self.target.get(&m.member_id).unwrap_or(&empty),
            })
            .collect();
        let sizes: BTreeMap<Uuid, i32> = self.topics.values().map(|(id, n)| (*id, *n)).collect();
        let target = assignor::assign(&self.assignor(), &members, &sizes);
        for (id, a) in &target {
            if self.target.get(id) != Some(a) {
                self.dirty_members.insert(id.clone());
            }
        }
        self.target = target;
        self.assignment_epoch = self.group_epoch;
        self.dirty_group = true;
    }

    /// Membership or subscriptions changed: a new target is due.
    pub fn bump_epoch(&mut self) {
        self.group_epoch += 1;
        self.dirty_group = true;
    }

    /// Who holds each partition now (assigned or pending revocation), for reconciliation.
    pub fn holders(&self) -> HashMap<(Uuid, i32), &str> {
        let mut out = HashMap::new();
        for m in self.members.values() {
            for a in [&m.r.assigned, &m.r.pending_revocation] {
                for (t, ps) in a {
                    for p in ps {
                        out.insert((*t, *p), m.member_id.as_str());
                    }
                }
            }
        }
        out
    }

    /// The member with this group instance id, if any (static membership).
    pub fn static_member(&self, instance_id: &str) -> Option<&ConsumerMember> {
        self.members
            .values()
            .find(|m| m.instance_id.as_deref() == Some(instance_id))
    }

    /// A static member rejoining after its leave with epoch -2: `new_id` takes over the old
    /// member's subscription, partitions and target (Kafka's replaceMember), at epoch 0, so it
    /// reconciles straight back to the same partitions and nobody else is moved.
    pub fn replace_static_member(&mut self, old_id: &str, new_id: &str) {
        let Some(mut member) = self.members.remove(old_id) else {
            return;
        };
        let target = self.target.remove(old_id).unwrap_or_default();
        member.member_id = new_id.to_owned();
        member.r.epoch = 0;
        member.r.previous_epoch = 0;
        self.members.insert(new_id.to_owned(), member);
        self.target.insert(new_id.to_owned(), target);
        self.dirty_members.insert(old_id.to_owned());
        self.dirty_members.insert(new_id.to_owned());
    }

    /// Removes a member; its partitions become free and the group epoch moves on.
    pub fn remove_member(&mut self, member_id: &str) -> bool {
        if self.members.remove(member_id).is_none() {
            return false;
        }
        self.target.remove(member_id);
        self.dirty_members.insert(member_id.to_owned());
        self.bump_epoch();
        self.compute_target();
        true
    }

    /// Members whose session or revocation deadline passed.
    pub fn expired(&self, now: Instant) -> Vec<String> {
        self.members
            .values()
            .filter(|m| m.session_deadline <= now || m.revocation_deadline.is_some_and(|d| d <= now))
            .map(|m| m.member_id.clone())
            .collect()
    }

    /// Removes members whose session or revocation deadline passed; whether any was removed.
    pub fn expire(&mut self, now: Instant, group_id: &str) -> bool {
        let expired = self.expired(now);
        for id in &expired {
            tracing::info!(group = %group_id, member = %id, "consumer group member expired");
            self.remove_member(id);
        }
        !expired.is_empty()
    }

    /// Removes a member without moving the group epoch: only before the group turns classic,
    /// whose generation is then the epoch the remaining members hold (as Kafka's downgrade).
    pub fn remove_member_for_downgrade(&mut self, member_id: &str) {
        self.members.remove(member_id);
        self.target.remove(member_id);
        self.dirty_members.insert(member_id.to_owned());
    }
}

impl ConsumerGroup {
    /// OffsetCommit from a group of this type, as Kafka's consumer group checks it: an admin
    /// or simple consumer (epoch < 0) may commit only while the group is empty; a member must
    /// be known, use OffsetCommit v9+ and send its current epoch.
    pub fn validate_offset_commit(
        &self,
        member_id: &str,
        epoch: i32,
        version: i16,
    ) -> Result<(), kafka_protocol::ResponseError> {
        use kafka_protocol::ResponseError;
        if epoch < 0 && self.members.is_empty() {
            return Ok(());
        }
        let member = self
            .members
            .get(member_id)
            .ok_or(ResponseError::UnknownMemberId)?;
        if member.classic.is_some() {
            // A classic member commits with its generation (= member epoch), any version.
            return if epoch == member.r.epoch {
                Ok(())
            } else {
                Err(ResponseError::IllegalGeneration)
            };
        }
        if version < 9 {
            return Err(ResponseError::UnsupportedVersion);
        }
        if epoch != member.r.epoch {
            return Err(ResponseError::StaleMemberEpoch);
        }
        Ok(())
    }

    /// OffsetFetch v9+ naming a member: it must be known and at its current epoch. A fetch
    /// without member (admin tools) is not checked.
    pub fn validate_offset_fetch(
        &self,
        member_id: &str,
        epoch: i32,
    ) -> Result<(), kafka_protocol::ResponseError> {
        use kafka_protocol::ResponseError;
        if member_id.is_empty() && epoch < 0 {
            return Ok(());
        }
        let member = self
            .members
            .get(member_id)
            .ok_or(ResponseError::UnknownMemberId)?;
        if epoch != member.r.epoch {
            return Err(ResponseError::StaleMemberEpoch);
        }
        Ok(())
    }
}
