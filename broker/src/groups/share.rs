//! Share groups' membership (KIP-932, "share" group type): ShareGroupHeartbeat and
//! ShareGroupDescribe on the coordinator, and the session timer. A `ShareGroup` hangs off the
//! shard's `Group` entry of the same id (one namespace with classic and consumer groups).
//! The assignor gives every member every partition of the topics it subscribes to: records,
//! not partitions, are what members share, and the share-partition hands each record to one
//! member at a time. Owned by the coordinator's shard; in memory only (members rejoin after a
//! restart; the record state is durable on the partitions' shards, in the top-level `share` module).
//! Invariants: member epoch = group epoch after each heartbeat; members <= GROUP_MEMBERS_MAX.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use kafka_protocol::messages::share_group_describe_response as describe;
use kafka_protocol::messages::share_group_heartbeat_response::{Assignment, TopicPartitions};
use kafka_protocol::messages::{GroupId, ShareGroupHeartbeatRequest, ShareGroupHeartbeatResponse, TopicName};
use kafka_protocol::ResponseError;
use uuid::Uuid;

use super::consumer::{Caller, SUBSCRIBED_TOPICS_MAX};
use super::coordinator::{sb, truncate_utf8, wall_ms, GroupCoordinator};
use super::group::Group;
use super::{GROUPS_PER_SHARD_MAX, GROUP_MEMBERS_MAX, NAME_BYTES_MAX};
use crate::metadata::Catalog;

pub(crate) struct ShareMember {
    pub member_id: String,
    pub rack_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub topics: BTreeSet<String>,
    pub epoch: i32,
    pub session_deadline: Instant,
}

#[derive(Default)]
pub(crate) struct ShareGroup {
    pub group_epoch: i32,
    pub members: BTreeMap<String, ShareMember>,
    /// Subscribed topics as of the last heartbeat: name -> (id, partitions).
    pub topics: BTreeMap<String, (Uuid, i32)>,
}

impl ShareGroup {
    pub fn state_name(&self) -> &'static str {
        if self.members.is_empty() {
            "Empty"
        } else {
            "Stable"
        }
    }

    fn assignment(&self, member: &ShareMember) -> BTreeMap<Uuid, (String, i32)> {
        member
            .topics
            .iter()
            .filter_map(|n| self.topics.get(n).map(|(id, count)| (*id, (n.clone(), *count))))
            .collect()
    }

    /// Admits or finds the member, checks its epoch and applies its subscription; the group
    /// epoch moves when membership or the subscribed topics change.
    fn beat(
        &mut self,
        req: &ShareGroupHeartbeatRequest,
        caller: &Caller<'_>,
        catalog: &Catalog,
        session: Duration,
    ) -> Result<(), Refusal> {
        let (group_id, member_id) = (req.group_id.as_str(), req.member_id.as_str());
        let sg = self;
        let now = Instant::now();
        let mut changed = false;
        if req.member_epoch == 0 {
            if !sg.members.contains_key(member_id) && sg.members.len() >= GROUP_MEMBERS_MAX {
                return Err((
                    ResponseError::GroupMaxSizeReached,
                    "The share group is full.".into(),
                ));
            }
            sg.members.insert(
                member_id.to_owned(),
                ShareMember {
                    member_id: member_id.to_owned(),
                    rack_id: None,
                    client_id: truncate_utf8(caller.client_id, NAME_BYTES_MAX).to_owned(),
                    client_host: truncate_utf8(caller.client_host, NAME_BYTES_MAX).to_owned(),
                    topics: BTreeSet::new(),
                    epoch: 0,
                    session_deadline: now + session,
                },
            );
            changed = true;
        }
        let Some(member) = sg.members.get_mut(member_id) else {
            return Err((
                ResponseError::UnknownMemberId,
                format!("Member {member_id} is not a member of group {group_id}."),
            ));
        };
        if req.member_epoch > 0 && req.member_epoch != member.epoch {
            return Err((
                ResponseError::FencedMemberEpoch,
                format!(
                    "Member epoch {} is not the current {}.",
                    req.member_epoch, member.epoch
                ),
            ));
        }
        member.session_deadline = now + session;
        if let Some(rack) = req.rack_id.as_deref() {
            member.rack_id = Some(rack.to_owned());
        }
        if let Some(names) = &req.subscribed_topic_names {
            let names: BTreeSet<String> = names.iter().map(|n| n.as_str().to_owned()).collect();
            changed |= names != member.topics;
            member.topics = names;
        }
        let wanted: BTreeSet<&str> = sg
            .members
            .values()
            .flat_map(|m| m.topics.iter().map(String::as_str))
            .collect();
        let topics: BTreeMap<String, (Uuid, i32)> = wanted
            .iter()
            .filter_map(|n| catalog.topic(n))
            .map(|t| (t.name.clone(), (t.uuid(), t.partition_count())))
            .collect();
        if changed || topics != sg.topics {
            sg.topics = topics;
            sg.group_epoch += 1;
        }
        Ok(())
    }

    fn expire(&mut self, now: Instant, group_id: &str) -> bool {
        let before = self.members.len();
        self.members.retain(|id, m| {
            let live = m.session_deadline > now;
            if !live {
                tracing::info!(group = %group_id, member = %id, "share group member expired");
            }
            live
        });
        let changed = before != self.members.len();
        if changed {
            self.group_epoch += 1;
        }
        changed
    }
}

type Refusal = (ResponseError, String);

fn validate(req: &ShareGroupHeartbeatRequest) -> Result<(), Refusal> {
    let too_long = |s: &str| s.len() > NAME_BYTES_MAX;
    if req.group_id.is_empty() || too_long(&req.group_id) {
        return Err((ResponseError::InvalidRequest, "GroupId can't be empty.".into()));
    }
    if req.member_id.is_empty() || too_long(&req.member_id) {
        return Err((ResponseError::InvalidRequest, "MemberId can't be empty.".into()));
    }
    if req.member_epoch < -1 {
        return Err((
            ResponseError::InvalidRequest,
            format!("Invalid MemberEpoch {}.", req.member_epoch),
        ));
    }
    let names = req.subscribed_topic_names.as_deref().unwrap_or_default();
    if req.member_epoch == 0 && req.subscribed_topic_names.is_none() {
        return Err((
            ResponseError::InvalidRequest,
            "SubscribedTopicNames must be set in first request.".into(),
        ));
    }
    if names.len() > SUBSCRIBED_TOPICS_MAX || names.iter().any(|n| too_long(n)) {
        return Err((
            ResponseError::InvalidRequest,
            "SubscribedTopicNames too large.".into(),
        ));
    }
    Ok(())
}

impl GroupCoordinator {
    /// ShareGroupHeartbeat (v1): join (epoch 0), heartbeat, or leave (epoch -1).
    pub fn share_heartbeat(
        &self,
        req: &ShareGroupHeartbeatRequest,
        catalog: &Catalog,
        caller: &Caller<'_>,
    ) -> ShareGroupHeartbeatResponse {
        let mut r = ShareGroupHeartbeatResponse::default();
        let result = if self.closed.get() {
            Err((ResponseError::CoordinatorNotAvailable, "closed".to_owned()))
        } else {
            validate(req).and_then(|()| self.share_heartbeat_validated(req, catalog, caller, &mut r))
        };
        if let Err((error, message)) = result {
            tracing::debug!(group = %req.group_id.as_str(), member = %req.member_id.as_str(), ?error, %message, "ShareGroupHeartbeat refused");
            r = ShareGroupHeartbeatResponse::default();
            r.error_code = error.code();
            r.error_message = Some(sb(&message));
            r.member_epoch = -1;
        }
        r
    }

    fn share_heartbeat_validated(
        &self,
        req: &ShareGroupHeartbeatRequest,
        catalog: &Catalog,
        caller: &Caller<'_>,
        r: &mut ShareGroupHeartbeatResponse,
    ) -> Result<(), Refusal> {
        let group_id = req.group_id.as_str();
        let member_id = req.member_id.as_str();
        let mut groups = self.groups.borrow_mut();
        if req.member_epoch == -1 {
            let sg = groups.get_mut(group_id).and_then(|g| g.share.as_deref_mut());
            if let Some(sg) = sg {
                if sg.members.remove(member_id).is_some() {
                    sg.group_epoch += 1;
                }
            }
            r.member_id = Some(req.member_id.clone());
            r.member_epoch = -1;
            let mut persist = Vec::new();
            self.drop_dead_groups(&mut groups, &mut persist);
            drop(groups);
            self.persist(persist);
            return Ok(());
        }
        if !groups.contains_key(group_id) {
            if req.member_epoch != 0 {
                return Err((
                    ResponseError::UnknownMemberId,
                    format!("Group {group_id} has no member {member_id}."),
                ));
            }
            if groups.len() >= GROUPS_PER_SHARD_MAX {
                return Err((ResponseError::CoordinatorNotAvailable, "too many groups".into()));
            }
            groups.insert(group_id.to_owned(), Group::new(group_id.to_owned(), wall_ms()));
        }
        let group = groups.get_mut(group_id).expect("present");
        if group.share.is_none() {
            let other = !group.members.is_empty() || group.consumer.is_some();
            if other {
                return Err((
                    ResponseError::InconsistentGroupProtocol,
                    format!("Group {group_id} is not a share group."),
                ));
            }
            group.share = Some(Box::default());
        }
        let sg = group.share.as_deref_mut().expect("set above");
        let session = Duration::from_millis(self.config.share_session_timeout_ms.max(0) as u64);
        sg.beat(req, caller, catalog, session)?;
        let epoch = sg.group_epoch;
        let member = sg.members.get(member_id).expect("present");
        let old_epoch = member.epoch;
        if old_epoch != epoch || req.member_epoch == 0 {
            let mut a = Assignment::default();
            for (id, (_, count)) in sg.assignment(member) {
                let mut tp = TopicPartitions::default();
                tp.topic_id = id;
                tp.partitions = (0..count).collect();
                a.topic_partitions.push(tp);
            }
            r.assignment = Some(a);
        }
        sg.members.get_mut(member_id).expect("present").epoch = epoch;
        r.member_id = Some(req.member_id.clone());
        r.member_epoch = epoch;
        r.heartbeat_interval_ms = self.config.share_heartbeat_interval_ms;
        Ok(())
    }

    /// Whether `member_id` is in share group `group_id` (ShareFetch opening a session).
    pub fn share_member_known(&self, group_id: &str, member_id: &str) -> bool {
        self.groups
            .borrow()
            .get(group_id)
            .and_then(|g| g.share.as_deref())
            .is_some_and(|sg| sg.members.contains_key(member_id))
    }

    /// ShareGroupDescribe for one group: GROUP_ID_NOT_FOUND for an unknown or other group.
    pub fn share_describe(&self, group_id: &str) -> describe::DescribedGroup {
        let mut d = describe::DescribedGroup::default();
        d.group_id = GroupId(sb(group_id));
        d.authorized_operations = i32::MIN;
        let groups = self.groups.borrow();
        let Some(sg) = groups.get(group_id).and_then(|g| g.share.as_deref()) else {
            d.error_code = ResponseError::GroupIdNotFound.code();
            d.error_message = Some(sb(&format!("Group {group_id} not found.")));
            return d;
        };
        d.group_state = sb(sg.state_name());
        d.group_epoch = sg.group_epoch;
        d.assignment_epoch = sg.group_epoch;
        d.assignor_name = sb("simple");
        for m in sg.members.values() {
            let mut dm = describe::Member::default();
            dm.member_id = sb(&m.member_id);
            dm.rack_id = m.rack_id.as_deref().map(sb);
            dm.member_epoch = m.epoch;
            dm.client_id = sb(&m.client_id);
            dm.client_host = sb(&m.client_host);
            dm.subscribed_topic_names = m.topics.iter().map(|n| TopicName(sb(n))).collect();
            for (id, (name, count)) in sg.assignment(m) {
                let mut tp = describe::TopicPartitions::default();
                tp.topic_id = id;
                tp.topic_name = TopicName(sb(&name));
                tp.partitions = (0..count).collect();
                dm.assignment.topic_partitions.push(tp);
            }
            d.members.push(dm);
        }
        d
    }

    /// The share-group part of a timer tick: expires silent members.
    pub(in crate::groups) fn share_tick(group: &mut Group, now: Instant) -> bool {
        let group_id = group.group_id.clone();
        group
            .share
            .as_deref_mut()
            .is_some_and(|sg| sg.expire(now, &group_id))
    }
}
