//! The rebalance half of the coordinator: JoinGroup and SyncGroup, and the transitions
//! PreparingRebalance → CompletingRebalance → Stable of Kafka's classic GroupCoordinator.
//! Runs on the owning shard. Functions here only mutate state and fill waiters' one-slot
//! channels; they never await, so no RefCell borrow spans a suspension point. Metadata records
//! they produce are pushed to `persist` and queued by the caller after the borrow ends.

use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use glommio::channels::local_channel::{self, LocalReceiver};
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::{JoinGroupRequest, JoinGroupResponse, SyncGroupRequest, SyncGroupResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::coordinator::{sb, truncate_utf8, wall_ms, GroupCoordinator};
use super::group::{Group, GroupState, Member};
use super::store::StoreRecord;
use super::GroupError;
use super::{GROUPS_PER_SHARD_MAX, GROUP_MEMBERS_MAX, MEMBER_BLOB_BYTES_MAX, MEMBER_PROTOCOLS_MAX};
use super::{NAME_BYTES_MAX, PENDING_MEMBERS_MAX};

pub(super) enum Step<T> {
    Done(T),
    Wait(LocalReceiver<T>),
}

/// SyncGroup's next step: answer (now or when the rebalance completes), or, for the
/// leader's assignments, write them and answer once they are durable.
enum SyncStep {
    Answer(Step<SyncGroupResponse>),
    Persist {
        generation: i32,
        record: StoreRecord,
        rx: LocalReceiver<SyncGroupResponse>,
    },
}

/// A JoinGroup after validation, with owned fields.
pub(super) struct Joiner {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout_ms: i32,
    pub rebalance_timeout_ms: i32,
    pub protocol_type: String,
    pub protocols: Vec<(String, Bytes)>,
    pub version: i16,
}

pub(super) fn join_error(error: ResponseError, member_id: &str) -> JoinGroupResponse {
    let mut r = JoinGroupResponse::default();
    r.error_code = error.code();
    r.member_id = sb(member_id);
    r.generation_id = -1;
    r
}

pub(super) fn sync_error(error: ResponseError) -> SyncGroupResponse {
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
            // Header fields, not checked by validate_join: bounded here so records stay encodable.
            client_id: truncate_utf8(client_id, NAME_BYTES_MAX).to_owned(),
            client_host: truncate_utf8(host, NAME_BYTES_MAX).to_owned(),
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
        if group.has_consumer_members() {
            // A classic member of a consumer group (after an online upgrade).
            let response = self.classic_join_in_consumer_group(group, &req, version, &joiner, now);
            let cg = group.consumer.as_deref_mut().expect("has consumer members");
            persist.extend(cg.take_records(group_id));
            drop(groups);
            self.persist(persist);
            return Step::Done(response);
        }
        // An empty consumer group becomes classic; its offsets stay.
        if group.consumer.take().is_some() {
            persist.push(StoreRecord::ConsumerGroup {
                group: group_id.to_owned(),
                value: None,
            });
        }
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
        // Durable generation numbers: a restart must not hand out this generation again.
        persist.push(StoreRecord::Group {
            group: group.group_id.clone(),
            value: group.to_stored(),
        });
    }

    // ------------------------------------------------------------ SyncGroup

    pub async fn sync_group(self: &Rc<Self>, req: SyncGroupRequest, version: i16) -> SyncGroupResponse {
        let rx = match self.sync_now(&req, version) {
            SyncStep::Answer(Step::Done(response)) => return response,
            SyncStep::Answer(Step::Wait(rx)) => rx,
            SyncStep::Persist {
                generation,
                record,
                rx,
            } => {
                // Kafka's rule: no member learns the assignment before it is durable. A
                // detached task, so a leader that hangs up cannot leave the group waiting.
                let this = Rc::clone(self);
                let group_id = req.group_id.to_string();
                glommio::spawn_local(async move {
                    let stored = this.store.append(vec![record]).await;
                    this.finish_sync(&group_id, generation, stored);
                })
                .detach();
                rx
            }
        };
        rx.recv()
            .await
            .unwrap_or_else(|| sync_error(ResponseError::UnknownMemberId))
    }

    fn sync_now(&self, req: &SyncGroupRequest, version: i16) -> SyncStep {
        let done = |e: ResponseError| SyncStep::Answer(Step::Done(sync_error(e)));
        if self.closed.get() {
            return done(ResponseError::CoordinatorNotAvailable);
        }
        let now = Instant::now();
        let mut groups = self.groups.borrow_mut();
        let Some(group) = groups.get_mut(req.group_id.as_str()) else {
            return done(ResponseError::UnknownMemberId);
        };
        let member_id = req.member_id.as_str();
        if let Some(cg) = group.consumer.as_deref_mut() {
            let response = crate::groups::consumer::classic::sync(cg, req, now);
            return SyncStep::Answer(Step::Done(response));
        }
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
                SyncStep::Answer(Step::Done(self.sync_success(group, assignment)))
            }
            GroupState::CompletingRebalance => {
                let (tx, rx) = local_channel::new_bounded(1);
                let member = group.member_mut(member_id).expect("checked");
                member.touch(now);
                member.sync_waiter = Some(tx);
                let persisting = group.assignments_persisting == Some(group.generation_id);
                if group.is_leader(member_id) && !persisting {
                    if req
                        .assignments
                        .iter()
                        .any(|a| a.assignment.len() > MEMBER_BLOB_BYTES_MAX)
                    {
                        group.member_mut(member_id).expect("checked").sync_waiter = None;
                        return done(ResponseError::InvalidRequest);
                    }
                    let record = self.store_assignments(group, req);
                    return SyncStep::Persist {
                        generation: group.generation_id,
                        record,
                        rx,
                    };
                }
                SyncStep::Answer(Step::Wait(rx))
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

    /// The leader's assignments: kept on the members and returned as the record to
    /// write; the group stays CompletingRebalance until `finish_sync`.
    fn store_assignments(&self, group: &mut Group, req: &SyncGroupRequest) -> StoreRecord {
        for member in &mut group.members {
            let given = req
                .assignments
                .iter()
                .find(|a| a.member_id.as_str() == member.member_id);
            member.assignment = given.map(|a| a.assignment.clone()).unwrap_or_default();
        }
        group.assignments_persisting = Some(group.generation_id);
        let mut value = group.to_stored();
        value.assignments_complete = true;
        StoreRecord::Group {
            group: group.group_id.clone(),
            value,
        }
    }

    /// The assignments of `generation` are durable (or failed to be): go Stable and
    /// answer every member waiting in SyncGroup (later ones are answered from the stored
    /// copy). Nothing to do if the group moved on meanwhile: whatever moved it (a member
    /// leaving or expiring, a new join) already answered the waiters.
    fn finish_sync(&self, group_id: &str, generation: i32, stored: Result<(), GroupError>) {
        let mut groups = self.groups.borrow_mut();
        let Some(group) = groups.get_mut(group_id) else {
            return;
        };
        if group.state != GroupState::CompletingRebalance
            || group.generation_id != generation
            || group.assignments_persisting != Some(generation)
        {
            return;
        }
        group.assignments_persisting = None;
        if let Err(e) = stored {
            tracing::warn!(group = group_id, generation, error = %e, "group assignments not persisted; members must rejoin");
            for member in &mut group.members {
                member.assignment = Bytes::new();
                if let Some(tx) = member.sync_waiter.take() {
                    let _ = tx.try_send(sync_error(ResponseError::CoordinatorNotAvailable));
                }
            }
            return;
        }
        group.state = GroupState::Stable;
        group.scan_after = None;
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
    }
}
