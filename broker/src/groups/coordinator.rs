//! GroupCoordinator: one shard's groups, the classic rebalance protocol (JoinGroup, SyncGroup,
//! Heartbeat, LeaveGroup) and the timer that expires sessions and ends rebalances.
//! Owned by one shard (`Rc`, `!Send`). Never holds a RefCell borrow across an `.await`:
//! waiting JoinGroup/SyncGroup calls park on a one-slot local channel that the state machine
//! fills when the rebalance step completes, or drops when the member is removed.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::path::PathBuf;
use std::rc::{Rc, Weak};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use glommio::channels::local_channel::{self, LocalReceiver};
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::{
    HeartbeatRequest, HeartbeatResponse, JoinGroupRequest, JoinGroupResponse, LeaveGroupRequest,
    LeaveGroupResponse, SyncGroupRequest, SyncGroupResponse,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::group::{Group, GroupState, Member};
use super::store::{OffsetStore, StoreRecord};
use super::{GroupConfig, GroupError, GROUPS_PER_SHARD_MAX, GROUP_MEMBERS_MAX, MEMBER_BLOB_BYTES_MAX};
use super::{MEMBER_PROTOCOLS_MAX, NAME_BYTES_MAX, PENDING_MEMBERS_MAX};

/// See [`GroupCoordinator::offsets_file_stats`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OffsetsFileStats {
    pub file_bytes: u64,
    /// fdatasync calls for appends (group commit makes this smaller than the commit count).
    pub flush_count: u64,
    pub compaction_count: u64,
}

/// One shard's group coordinator. Create with [`GroupCoordinator::open`].
pub struct GroupCoordinator {
    pub(super) config: GroupConfig,
    pub(super) store: Rc<OffsetStore>,
    pub(super) groups: RefCell<HashMap<String, Group>>,
    pub(super) closed: Cell<bool>,
    member_counter: Cell<u64>,
}

pub(super) enum Step<T> {
    Done(T),
    Wait(LocalReceiver<T>),
}

/// A JoinGroup after validation, with owned fields.
struct Joiner {
    member_id: String,
    instance_id: Option<String>,
    client_id: String,
    client_host: String,
    session_timeout_ms: i32,
    rebalance_timeout_ms: i32,
    protocol_type: String,
    protocols: Vec<(String, Bytes)>,
    version: i16,
}

pub(super) fn wall_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

pub(super) fn sb(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_owned())
}

fn join_error(error: ResponseError, member_id: &str) -> JoinGroupResponse {
    let mut r = JoinGroupResponse::default();
    r.error_code = error.code();
    r.member_id = sb(member_id);
    r.generation_id = -1;
    r
}

fn sync_error(error: ResponseError) -> SyncGroupResponse {
    let mut r = SyncGroupResponse::default();
    r.error_code = error.code();
    r
}

fn join_success(group: &Group, member_id: &str, members: Vec<JoinGroupResponseMember>) -> JoinGroupResponse {
    let mut r = JoinGroupResponse::default();
    r.generation_id = group.generation_id;
    r.protocol_type = group.protocol_type.as_deref().map(sb);
    r.protocol_name = group.protocol_name.as_deref().map(sb);
    r.leader = sb(group.leader_id.as_deref().unwrap_or(""));
    r.member_id = sb(member_id);
    r.members = members;
    r
}

fn member_list(group: &Group) -> Vec<JoinGroupResponseMember> {
    let protocol = group.protocol_name.as_deref().unwrap_or("");
    let list = group.members.iter().map(|m| {
        let mut e = JoinGroupResponseMember::default();
        e.member_id = sb(&m.member_id);
        e.group_instance_id = m.group_instance_id.as_deref().map(sb);
        e.metadata = m.metadata_for(protocol).cloned().unwrap_or_default();
        e
    });
    list.collect()
}

impl GroupCoordinator {
    /// Opens the shard's offsets file in `dir` (replaying it, truncating a torn tail),
    /// restores the groups it describes and starts the group timer.
    pub async fn open(dir: PathBuf, config: GroupConfig) -> Result<Rc<Self>, GroupError> {
        assert!(
            config.min_session_timeout_ms <= config.max_session_timeout_ms,
            "session bounds"
        );
        assert!(config.timer_tick_ms > 0, "timer_tick_ms must be positive");
        let store = OffsetStore::open(&dir, config.offsets_file_compact_bytes).await?;
        let now = Instant::now();
        let mut groups = HashMap::new();
        {
            let state = store.state();
            for (id, stored) in &state.groups {
                groups.insert(id.clone(), Group::from_stored(id.clone(), stored, now));
            }
            for (id, offsets) in &state.offsets {
                let newest_ms = offsets.values().map(|o| o.commit_timestamp_ms).max().unwrap_or(0);
                groups
                    .entry(id.clone())
                    .or_insert_with(|| Group::new(id.clone(), newest_ms));
            }
        }
        let this = Rc::new(Self {
            config,
            store,
            groups: RefCell::new(groups),
            closed: Cell::new(false),
            member_counter: Cell::new(0),
        });
        Self::spawn_timer(Rc::downgrade(&this), this.config.clone());
        Ok(this)
    }

    fn spawn_timer(weak: Weak<Self>, config: GroupConfig) {
        let tick = Duration::from_millis(config.timer_tick_ms);
        let retention_every = Duration::from_millis(config.offsets_retention_check_interval_ms);
        glommio::spawn_local(async move {
            let mut last_retention = Instant::now();
            loop {
                glommio::timer::sleep(tick).await;
                let Some(this) = weak.upgrade() else { break };
                if this.closed.get() {
                    break;
                }
                let now = Instant::now();
                this.on_tick(now);
                if now.duration_since(last_retention) >= retention_every {
                    last_retention = now;
                    this.expire_groups(wall_ms());
                }
            }
        })
        .detach();
    }

    /// Expires sessions and pending member ids, ends rebalances whose time is up.
    pub(super) fn on_tick(&self, now: Instant) {
        let mut persist = Vec::new();
        let mut groups = self.groups.borrow_mut();
        for group in groups.values_mut() {
            if group.members.is_empty()
                && group.pending_members.is_empty()
                && group.state == GroupState::Empty
            {
                continue;
            }
            group.pending_members.retain(|(_, deadline)| *deadline > now);
            let expired: Vec<String> = group
                .members
                .iter()
                .filter(|m| m.heartbeat_deadline <= now && m.join_waiter.is_none() && m.sync_waiter.is_none())
                .map(|m| m.member_id.clone())
                .collect();
            for member_id in expired {
                tracing::info!(group = %group.group_id, member = %member_id, "session expired");
                self.remove_member(group, &member_id, now, &mut persist);
            }
            self.try_complete_join(group, now, &mut persist);
        }
        self.drop_dead_groups(&mut groups, &mut persist);
        drop(groups);
        self.persist(persist);
    }

    /// Queues group-metadata records; their durability is not awaited (only offset commits
    /// are acknowledged after fdatasync).
    pub(super) fn persist(&self, records: Vec<StoreRecord>) {
        if records.is_empty() {
            return;
        }
        if let Err(e) = self.store.append_nowait(records) {
            tracing::warn!(error = %e, "group metadata not persisted");
        }
    }

    /// Forgets Empty groups that have no members, no pending joins and no offsets left.
    pub(super) fn drop_dead_groups(
        &self,
        groups: &mut HashMap<String, Group>,
        persist: &mut Vec<StoreRecord>,
    ) {
        let state = self.store.state();
        groups.retain(|id, g| {
            let dead = g.state == GroupState::Empty
                && g.members.is_empty()
                && g.pending_members.is_empty()
                && !state.offsets.contains_key(id);
            if dead && state.groups.contains_key(id) {
                persist.push(StoreRecord::GroupDelete { group: id.clone() });
            }
            !dead
        });
    }

    fn new_member_id(&self, client_id: &str) -> String {
        let n = self.member_counter.get() + 1;
        self.member_counter.set(n);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let prefix = if client_id.is_empty() {
            "consumer"
        } else {
            client_id
        };
        let prefix = &prefix[..prefix.floor_char_boundary(NAME_BYTES_MAX - 40)];
        format!("{prefix}-{nanos:016x}-{n:08x}")
    }

    // ------------------------------------------------------------ JoinGroup

    /// JoinGroup; `client_id`/`client_host` default to empty (see `join_group_from`).
    pub async fn join_group(&self, req: JoinGroupRequest, version: i16) -> JoinGroupResponse {
        self.join_group_from(req, version, "", "").await
    }

    /// JoinGroup with the request header's client id and the peer's host, which Kafka uses
    /// to build member ids and shows in DescribeGroups.
    pub async fn join_group_from(
        &self,
        req: JoinGroupRequest,
        version: i16,
        client_id: &str,
        client_host: &str,
    ) -> JoinGroupResponse {
        let member_id = req.member_id.as_str().to_owned();
        match self.join_now(req, version, client_id, client_host) {
            Step::Done(response) => response,
            Step::Wait(rx) => rx
                .recv()
                .await
                .unwrap_or_else(|| join_error(ResponseError::UnknownMemberId, &member_id)),
        }
    }

    fn validate_join(&self, req: &JoinGroupRequest, version: i16) -> Result<(), ResponseError> {
        let c = &self.config;
        if self.closed.get() {
            return Err(ResponseError::CoordinatorNotAvailable);
        }
        if req.group_id.is_empty() || req.group_id.len() > NAME_BYTES_MAX {
            return Err(ResponseError::InvalidGroupId);
        }
        if !(c.min_session_timeout_ms..=c.max_session_timeout_ms).contains(&req.session_timeout_ms) {
            return Err(ResponseError::InvalidSessionTimeout);
        }
        let too_long = |s: &str| s.len() > NAME_BYTES_MAX;
        let bad_protocol = |p: &kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol| {
            too_long(&p.name) || p.metadata.len() > MEMBER_BLOB_BYTES_MAX
        };
        if too_long(&req.member_id)
            || req.group_instance_id.as_deref().is_some_and(&too_long)
            || too_long(&req.protocol_type)
            || req.protocols.len() > MEMBER_PROTOCOLS_MAX
            || req.protocols.iter().any(bad_protocol)
            || (version >= 5 && req.group_instance_id.as_deref() == Some(""))
        {
            return Err(ResponseError::InvalidRequest);
        }
        if req.protocol_type.is_empty() || req.protocols.is_empty() {
            return Err(ResponseError::InconsistentGroupProtocol);
        }
        Ok(())
    }

    fn join_now(
        &self,
        req: JoinGroupRequest,
        version: i16,
        client_id: &str,
        host: &str,
    ) -> Step<JoinGroupResponse> {
        if let Err(e) = self.validate_join(&req, version) {
            return Step::Done(join_error(e, &req.member_id));
        }
        let rebalance_timeout_ms = if version == 0 || req.rebalance_timeout_ms <= 0 {
            req.session_timeout_ms
        } else {
            req.rebalance_timeout_ms
        };
        let joiner = Joiner {
            member_id: req.member_id.as_str().to_owned(),
            instance_id: req.group_instance_id.as_deref().map(str::to_owned),
            client_id: client_id.to_owned(),
            client_host: host.to_owned(),
            session_timeout_ms: req.session_timeout_ms,
            rebalance_timeout_ms,
            protocol_type: req.protocol_type.as_str().to_owned(),
            protocols: req
                .protocols
                .iter()
                .map(|p| (p.name.as_str().to_owned(), p.metadata.clone()))
                .collect(),
            version,
        };
        let now = Instant::now();
        let mut persist = Vec::new();
        let mut groups = self.groups.borrow_mut();
        let group_id = req.group_id.as_str();
        if !groups.contains_key(group_id) {
            if !joiner.member_id.is_empty() {
                return Step::Done(join_error(ResponseError::UnknownMemberId, &joiner.member_id));
            }
            if groups.len() >= GROUPS_PER_SHARD_MAX {
                return Step::Done(join_error(ResponseError::CoordinatorNotAvailable, ""));
            }
            groups.insert(group_id.to_owned(), Group::new(group_id.to_owned(), wall_ms()));
        }
        let group = groups.get_mut(group_id).expect("inserted above");
        let step = if !group.supports_protocols(&joiner.protocol_type, &joiner.protocols) {
            Step::Done(join_error(
                ResponseError::InconsistentGroupProtocol,
                &joiner.member_id,
            ))
        } else if joiner.member_id.is_empty() {
            self.join_unknown_member(group, joiner, now, &mut persist)
        } else {
            self.join_known_member(group, joiner, now, &mut persist)
        };
        self.drop_dead_groups(&mut groups, &mut persist);
        drop(groups);
        self.persist(persist);
        step
    }

    fn join_unknown_member(
        &self,
        group: &mut Group,
        joiner: Joiner,
        now: Instant,
        persist: &mut Vec<StoreRecord>,
    ) -> Step<JoinGroupResponse> {
        let new_id = self.new_member_id(&joiner.client_id);
        if let Some(instance) = joiner.instance_id.as_deref() {
            if let Some(old) = group.member_by_instance(instance) {
                let old_id = old.member_id.clone();
                return self.replace_static_member(group, &old_id, new_id, joiner, now, persist);
            }
        }
        if group.members.len() >= GROUP_MEMBERS_MAX {
            return Step::Done(join_error(ResponseError::GroupMaxSizeReached, ""));
        }
        if joiner.instance_id.is_none() && joiner.version >= 4 {
            // KIP-394: hand out the id first, so a client that never comes back costs no rebalance.
            if group.pending_members.len() >= PENDING_MEMBERS_MAX {
                return Step::Done(join_error(ResponseError::GroupMaxSizeReached, ""));
            }
            let deadline = now + Duration::from_millis(joiner.session_timeout_ms as u64);
            group.pending_members.push((new_id.clone(), deadline));
            return Step::Done(join_error(ResponseError::MemberIdRequired, &new_id));
        }
        self.add_member_and_rebalance(group, joiner, new_id, now, persist)
    }

    fn join_known_member(
        &self,
        group: &mut Group,
        joiner: Joiner,
        now: Instant,
        persist: &mut Vec<StoreRecord>,
    ) -> Step<JoinGroupResponse> {
        let member_id = joiner.member_id.clone();
        if let Some(index) = group.pending_members.iter().position(|(id, _)| *id == member_id) {
            group.pending_members.swap_remove(index);
            if group.members.len() >= GROUP_MEMBERS_MAX {
                return Step::Done(join_error(ResponseError::GroupMaxSizeReached, &member_id));
            }
            return self.add_member_and_rebalance(group, joiner, member_id, now, persist);
        }
        if group.is_fenced(&member_id, joiner.instance_id.as_deref()) {
            return Step::Done(join_error(ResponseError::FencedInstanceId, &member_id));
        }
        let Some(member) = group.member(&member_id) else {
            return Step::Done(join_error(ResponseError::UnknownMemberId, &member_id));
        };
        let unchanged = member.same_protocols(&joiner.protocols);
        match group.state {
            GroupState::Empty | GroupState::Dead => {
                Step::Done(join_error(ResponseError::UnknownMemberId, &member_id))
            }
            GroupState::CompletingRebalance if unchanged => {
                // A retried JoinGroup: answer again with what this generation already said.
                let members = if group.is_leader(&member_id) {
                    member_list(group)
                } else {
                    Vec::new()
                };
                Step::Done(join_success(group, &member_id, members))
            }
            GroupState::Stable if unchanged && !group.is_leader(&member_id) => {
                group.member_mut(&member_id).expect("checked").touch(now);
                Step::Done(join_success(group, &member_id, Vec::new()))
            }
            _ => self.update_member_and_rebalance(group, joiner, now, persist),
        }
    }

    fn add_member_and_rebalance(
        &self,
        group: &mut Group,
        joiner: Joiner,
        member_id: String,
        now: Instant,
        persist: &mut Vec<StoreRecord>,
    ) -> Step<JoinGroupResponse> {
        let (tx, rx) = local_channel::new_bounded(1);
        let mut member = Member {
            member_id,
            group_instance_id: joiner.instance_id,
            client_id: joiner.client_id,
            client_host: joiner.client_host,
            session_timeout_ms: joiner.session_timeout_ms,
            rebalance_timeout_ms: joiner.rebalance_timeout_ms,
            protocols: joiner.protocols,
            assignment: Bytes::new(),
            heartbeat_deadline: now,
            join_waiter: Some(tx),
            sync_waiter: None,
        };
        member.touch(now);
        if group.members.is_empty() {
            group.protocol_type = Some(joiner.protocol_type);
        }
        group.members.push(member);
        if group.state == GroupState::PreparingRebalance {
            self.extend_initial_delay(group, now);
        } else {
            self.prepare_rebalance(group, now);
        }
        self.try_complete_join(group, now, persist);
        Step::Wait(rx)
    }

    /// A new member during the initial delay pushes the end of the delay out (Kafka's
    /// InitialDelayedJoin), but never past the rebalance deadline.
    fn extend_initial_delay(&self, group: &mut Group, now: Instant) {
        if let (Some(_), Some(deadline)) = (group.join_not_before, group.rebalance_deadline) {
            let delay = Duration::from_millis(self.config.initial_rebalance_delay_ms);
            group.join_not_before = Some((now + delay).min(deadline));
        }
    }

    fn update_member_and_rebalance(
        &self,
        group: &mut Group,
        joiner: Joiner,
        now: Instant,
        persist: &mut Vec<StoreRecord>,
    ) -> Step<JoinGroupResponse> {
        let (tx, rx) = local_channel::new_bounded(1);
        let member = group
            .member_mut(&joiner.member_id)
            .expect("caller checked membership");
        member.protocols = joiner.protocols;
        member.session_timeout_ms = joiner.session_timeout_ms;
        member.rebalance_timeout_ms = joiner.rebalance_timeout_ms;
        if let Some(old) = member.join_waiter.replace(tx) {
            let _ = old.try_send(join_error(ResponseError::RebalanceInProgress, &joiner.member_id));
        }
        member.touch(now);
        if group.state != GroupState::PreparingRebalance {
            self.prepare_rebalance(group, now);
        }
        self.try_complete_join(group, now, persist);
        Step::Wait(rx)
    }

    /// KIP-345: a static member came back under a new member id. The old id is fenced; if the
    /// group is Stable and the member's protocols did not change, no rebalance happens.
    fn replace_static_member(
        &self,
        group: &mut Group,
        old_id: &str,
        new_id: String,
        joiner: Joiner,
        now: Instant,
        persist: &mut Vec<StoreRecord>,
    ) -> Step<JoinGroupResponse> {
        let was_leader = group.is_leader(old_id);
        let member = group.member_mut(old_id).expect("found by instance id");
        if let Some(tx) = member.join_waiter.take() {
            let _ = tx.try_send(join_error(ResponseError::FencedInstanceId, old_id));
        }
        if let Some(tx) = member.sync_waiter.take() {
            let _ = tx.try_send(sync_error(ResponseError::FencedInstanceId));
        }
        let unchanged = member.same_protocols(&joiner.protocols);
        member.member_id = new_id.clone();
        member.client_id = joiner.client_id.clone();
        member.client_host = joiner.client_host.clone();
        member.touch(now);
        if was_leader {
            group.leader_id = Some(new_id.clone());
        }
        if group.state == GroupState::Stable && unchanged {
            persist.push(StoreRecord::Group {
                group: group.group_id.clone(),
                value: group.to_stored(),
            });
            let skip_assignment = was_leader && joiner.version >= 9;
            let members = if skip_assignment {
                member_list(group)
            } else {
                Vec::new()
            };
            let mut response = join_success(group, &new_id, members);
            response.skip_assignment = skip_assignment;
            return Step::Done(response);
        }
        let joiner = Joiner {
            member_id: new_id,
            ..joiner
        };
        self.update_member_and_rebalance(group, joiner, now, persist)
    }

    pub(super) fn prepare_rebalance(&self, group: &mut Group, now: Instant) {
        if group.state == GroupState::CompletingRebalance {
            for member in &mut group.members {
                member.assignment = Bytes::new();
                if let Some(tx) = member.sync_waiter.take() {
                    let _ = tx.try_send(sync_error(ResponseError::RebalanceInProgress));
                }
            }
        }
        let was_empty = group.state == GroupState::Empty;
        let timeout = Duration::from_millis(group.max_rebalance_timeout_ms().max(0) as u64);
        let delay = Duration::from_millis(self.config.initial_rebalance_delay_ms).min(timeout);
        group.state = GroupState::PreparingRebalance;
        group.rebalance_deadline = Some(now + timeout);
        group.join_not_before = (was_empty && !delay.is_zero()).then(|| now + delay);
        group.state_timestamp_ms = wall_ms();
    }

    /// Ends PreparingRebalance once every member rejoined (after the initial delay) or the
    /// rebalance deadline passed.
    pub(super) fn try_complete_join(&self, group: &mut Group, now: Instant, persist: &mut Vec<StoreRecord>) {
        if group.state != GroupState::PreparingRebalance {
            return;
        }
        let delay_over = group.join_not_before.is_none_or(|t| now >= t);
        let timed_out = group.rebalance_deadline.is_some_and(|t| now >= t);
        if (delay_over && group.all_rejoined()) || timed_out {
            self.complete_join(group, now, persist);
        }
    }

    fn complete_join(&self, group: &mut Group, now: Instant, persist: &mut Vec<StoreRecord>) {
        // Static members keep their place across a missed rebalance; dynamic ones are gone.
        group
            .members
            .retain(|m| m.join_waiter.is_some() || m.group_instance_id.is_some());
        group.rebalance_deadline = None;
        group.join_not_before = None;
        group.generation_id = group.generation_id.wrapping_add(1).max(1);
        group.state_timestamp_ms = wall_ms();
        let protocol = group.select_protocol();
        if group.members.is_empty() || protocol.is_none() {
            for member in group.members.drain(..) {
                if let Some(tx) = member.join_waiter {
                    let _ = tx.try_send(join_error(
                        ResponseError::InconsistentGroupProtocol,
                        &member.member_id,
                    ));
                }
            }
            group.state = GroupState::Empty;
            group.protocol_name = None;
            group.leader_id = None;
            persist.push(StoreRecord::Group {
                group: group.group_id.clone(),
                value: group.to_stored(),
            });
            return;
        }
        group.protocol_name = protocol;
        group.state = GroupState::CompletingRebalance;
        let leader_present = group
            .leader_id
            .as_deref()
            .is_some_and(|l| group.member(l).is_some());
        if !leader_present {
            let first = group
                .members
                .iter()
                .find(|m| m.join_waiter.is_some())
                .unwrap_or(&group.members[0]);
            group.leader_id = Some(first.member_id.clone());
        }
        let all = member_list(group);
        let responses: Vec<JoinGroupResponse> = group
            .members
            .iter()
            .map(|m| {
                let members = if group.is_leader(&m.member_id) {
                    all.clone()
                } else {
                    Vec::new()
                };
                join_success(group, &m.member_id, members)
            })
            .collect();
        for (member, response) in group.members.iter_mut().zip(responses) {
            member.assignment = Bytes::new();
            if let Some(tx) = member.join_waiter.take() {
                member.touch(now);
                let _ = tx.try_send(response);
            }
        }
    }

    // ------------------------------------------------------------ SyncGroup

    pub async fn sync_group(&self, req: SyncGroupRequest, version: i16) -> SyncGroupResponse {
        match self.sync_now(&req, version) {
            Step::Done(response) => response,
            Step::Wait(rx) => rx
                .recv()
                .await
                .unwrap_or_else(|| sync_error(ResponseError::UnknownMemberId)),
        }
    }

    fn sync_now(&self, req: &SyncGroupRequest, version: i16) -> Step<SyncGroupResponse> {
        let done = |e: ResponseError| Step::Done(sync_error(e));
        if self.closed.get() {
            return done(ResponseError::CoordinatorNotAvailable);
        }
        let now = Instant::now();
        let mut groups = self.groups.borrow_mut();
        let Some(group) = groups.get_mut(req.group_id.as_str()) else {
            return done(ResponseError::UnknownMemberId);
        };
        let member_id = req.member_id.as_str();
        if group.is_fenced(member_id, req.group_instance_id.as_deref()) {
            return done(ResponseError::FencedInstanceId);
        }
        if group.member(member_id).is_none() {
            return done(ResponseError::UnknownMemberId);
        }
        if req.generation_id != group.generation_id {
            return done(ResponseError::IllegalGeneration);
        }
        let mismatch = |asked: &Option<StrBytes>, have: &Option<String>| {
            version >= 5
                && asked
                    .as_ref()
                    .is_some_and(|a| have.as_deref() != Some(a.as_str()))
        };
        if mismatch(&req.protocol_type, &group.protocol_type)
            || mismatch(&req.protocol_name, &group.protocol_name)
        {
            return done(ResponseError::InconsistentGroupProtocol);
        }
        match group.state {
            GroupState::Empty | GroupState::Dead => done(ResponseError::UnknownMemberId),
            GroupState::PreparingRebalance => done(ResponseError::RebalanceInProgress),
            GroupState::Stable => {
                let member = group.member_mut(member_id).expect("checked");
                member.touch(now);
                let assignment = member.assignment.clone();
                Step::Done(self.sync_success(group, assignment))
            }
            GroupState::CompletingRebalance => {
                let (tx, rx) = local_channel::new_bounded(1);
                let member = group.member_mut(member_id).expect("checked");
                member.touch(now);
                member.sync_waiter = Some(tx);
                if group.is_leader(member_id) {
                    if req
                        .assignments
                        .iter()
                        .any(|a| a.assignment.len() > MEMBER_BLOB_BYTES_MAX)
                    {
                        group.member_mut(member_id).expect("checked").sync_waiter = None;
                        return done(ResponseError::InvalidRequest);
                    }
                    let record = self.complete_sync(group, req);
                    drop(groups);
                    self.persist(vec![record]);
                }
                Step::Wait(rx)
            }
        }
    }

    fn sync_success(&self, group: &Group, assignment: Bytes) -> SyncGroupResponse {
        let mut r = SyncGroupResponse::default();
        r.protocol_type = group.protocol_type.as_deref().map(sb);
        r.protocol_name = group.protocol_name.as_deref().map(sb);
        r.assignment = assignment;
        r
    }

    /// The leader's assignments end the rebalance: store them, go Stable, answer every
    /// member already waiting in SyncGroup (later ones are answered from the stored copy).
    fn complete_sync(&self, group: &mut Group, req: &SyncGroupRequest) -> StoreRecord {
        for member in &mut group.members {
            let given = req
                .assignments
                .iter()
                .find(|a| a.member_id.as_str() == member.member_id);
            member.assignment = given.map(|a| a.assignment.clone()).unwrap_or_default();
        }
        group.state = GroupState::Stable;
        group.state_timestamp_ms = wall_ms();
        let responses: Vec<SyncGroupResponse> = group
            .members
            .iter()
            .map(|m| self.sync_success(group, m.assignment.clone()))
            .collect();
        for (member, response) in group.members.iter_mut().zip(responses) {
            if let Some(tx) = member.sync_waiter.take() {
                let _ = tx.try_send(response);
            }
        }
        StoreRecord::Group {
            group: group.group_id.clone(),
            value: group.to_stored(),
        }
    }

    // ------------------------------------------------------------ Heartbeat, LeaveGroup

    pub async fn heartbeat(&self, req: HeartbeatRequest, _version: i16) -> HeartbeatResponse {
        let mut r = HeartbeatResponse::default();
        if let Err(e) = self.heartbeat_now(&req) {
            r.error_code = e.code();
        }
        r
    }

    fn heartbeat_now(&self, req: &HeartbeatRequest) -> Result<(), ResponseError> {
        if self.closed.get() {
            return Err(ResponseError::CoordinatorNotAvailable);
        }
        let mut groups = self.groups.borrow_mut();
        let group = groups
            .get_mut(req.group_id.as_str())
            .ok_or(ResponseError::UnknownMemberId)?;
        let member_id = req.member_id.as_str();
        if group.is_fenced(member_id, req.group_instance_id.as_deref()) {
            return Err(ResponseError::FencedInstanceId);
        }
        if group.state == GroupState::Empty || group.member(member_id).is_none() {
            return Err(ResponseError::UnknownMemberId);
        }
        if req.generation_id != group.generation_id {
            return Err(ResponseError::IllegalGeneration);
        }
        group
            .member_mut(member_id)
            .expect("checked")
            .touch(Instant::now());
        if group.state == GroupState::PreparingRebalance {
            return Err(ResponseError::RebalanceInProgress);
        }
        Ok(())
    }

    pub async fn leave_group(&self, req: LeaveGroupRequest, version: i16) -> LeaveGroupResponse {
        let mut r = LeaveGroupResponse::default();
        if self.closed.get() {
            r.error_code = ResponseError::CoordinatorNotAvailable.code();
            return r;
        }
        let leaving: Vec<(String, Option<String>)> = if version <= 2 {
            vec![(req.member_id.as_str().to_owned(), None)]
        } else {
            req.members
                .iter()
                .map(|m| {
                    (
                        m.member_id.as_str().to_owned(),
                        m.group_instance_id.as_deref().map(str::to_owned),
                    )
                })
                .collect()
        };
        let now = Instant::now();
        let mut persist = Vec::new();
        let mut groups = self.groups.borrow_mut();
        for (member_id, instance_id) in leaving {
            let result = match groups.get_mut(req.group_id.as_str()) {
                None => Err(ResponseError::UnknownMemberId),
                Some(group) => self.leave_one(group, &member_id, instance_id.as_deref(), now, &mut persist),
            };
            let code = result.err().map_or(0, |e| e.code());
            if version <= 2 {
                r.error_code = code;
            } else {
                let mut m = MemberResponse::default();
                m.member_id = sb(&member_id);
                m.group_instance_id = instance_id.as_deref().map(sb);
                m.error_code = code;
                r.members.push(m);
            }
        }
        self.drop_dead_groups(&mut groups, &mut persist);
        drop(groups);
        self.persist(persist);
        r
    }

    fn leave_one(
        &self,
        group: &mut Group,
        member_id: &str,
        instance_id: Option<&str>,
        now: Instant,
        persist: &mut Vec<StoreRecord>,
    ) -> Result<(), ResponseError> {
        let target = match instance_id {
            Some(instance) => {
                let found = group
                    .member_by_instance(instance)
                    .ok_or(ResponseError::UnknownMemberId)?;
                if !member_id.is_empty() && found.member_id != member_id {
                    return Err(ResponseError::FencedInstanceId);
                }
                found.member_id.clone()
            }
            None => {
                if let Some(index) = group.pending_members.iter().position(|(id, _)| id == member_id) {
                    group.pending_members.swap_remove(index);
                    return Ok(());
                }
                group
                    .member(member_id)
                    .ok_or(ResponseError::UnknownMemberId)?
                    .member_id
                    .clone()
            }
        };
        self.remove_member(group, &target, now, persist);
        Ok(())
    }

    /// Removes a member (its waiting calls resolve with UNKNOWN_MEMBER_ID) and rebalances.
    pub(super) fn remove_member(
        &self,
        group: &mut Group,
        member_id: &str,
        now: Instant,
        persist: &mut Vec<StoreRecord>,
    ) {
        group.members.retain(|m| m.member_id != member_id);
        if group.is_leader(member_id) {
            group.leader_id = group.members.first().map(|m| m.member_id.clone());
        }
        if matches!(group.state, GroupState::Stable | GroupState::CompletingRebalance) {
            self.prepare_rebalance(group, now);
        }
        self.try_complete_join(group, now, persist);
    }

    /// Current state of a group, `None` if this shard does not know it.
    pub fn group_state(&self, group_id: &str) -> Option<GroupState> {
        self.groups.borrow().get(group_id).map(|g| g.state)
    }

    /// The offsets file's size and activity since open, for tests and metrics.
    pub fn offsets_file_stats(&self) -> OffsetsFileStats {
        OffsetsFileStats {
            file_bytes: self.store.file_bytes(),
            flush_count: self.store.flushes(),
            compaction_count: self.store.compactions(),
        }
    }

    /// Fails every waiting call with COORDINATOR_NOT_AVAILABLE, waits for queued records to
    /// become durable and closes the offsets file.
    pub async fn close(&self) -> Result<(), GroupError> {
        self.closed.set(true);
        for group in self.groups.borrow_mut().values_mut() {
            for member in &mut group.members {
                if let Some(tx) = member.join_waiter.take() {
                    let _ = tx.try_send(join_error(
                        ResponseError::CoordinatorNotAvailable,
                        &member.member_id,
                    ));
                }
                if let Some(tx) = member.sync_waiter.take() {
                    let _ = tx.try_send(sync_error(ResponseError::CoordinatorNotAvailable));
                }
            }
        }
        self.store.close().await
    }
}
