//! ConsumerGroupHeartbeat and ConsumerGroupDescribe on the coordinator, and the consumer-group
//! part of the group timer. Runs on the coordinator's shard; never awaits while it holds the
//! groups borrow: the records of what a heartbeat changed are made durable after the borrow
//! is dropped, and only then is the heartbeat answered (`consumer/persist.rs`).
//! Bad input gets Kafka's codes: INVALID_REQUEST for malformed fields, UNSUPPORTED_ASSIGNOR,
//! INVALID_REGULAR_EXPRESSION, UNKNOWN_MEMBER_ID, FENCED_MEMBER_EPOCH, GROUP_MAX_SIZE_REACHED,
//! and GROUP_ID_NOT_FOUND for a classic group with members that cannot be upgraded online
//! (`classic.rs`).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use kafka_protocol::messages::consumer_group_describe_response as describe;
use kafka_protocol::messages::consumer_group_heartbeat_response::{
    Assignment as WireAssignment, TopicPartitions,
};
use kafka_protocol::messages::{ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse};
use kafka_protocol::ResponseError;

use super::assignor::Assignment;
use super::reconcile::{reconcile, MemberState, Reconciled};
use super::{ConsumerGroup, ConsumerMember};
use crate::groups::coordinator::{sb, truncate_utf8, wall_ms, GroupCoordinator};
use crate::groups::group::Group;
use crate::groups::record::StoreRecord;
use crate::groups::{GROUPS_PER_SHARD_MAX, GROUP_MEMBERS_MAX, NAME_BYTES_MAX};
use crate::metadata::Catalog;

use super::validate::{refuse, validate, Refusal, LEAVE_STATIC_EPOCH};

/// Who sent the heartbeat (from the request header and the connection).
pub struct Caller<'a> {
    pub client_id: &'a str,
    pub client_host: &'a str,
}

fn owned_partitions(req: &ConsumerGroupHeartbeatRequest) -> Option<Assignment> {
    let topics = req.topic_partitions.as_ref()?;
    let mut out = Assignment::new();
    for t in topics {
        out.entry(t.topic_id)
            .or_default()
            .extend(t.partitions.iter().copied());
    }
    Some(out)
}

fn wire_assignment(a: &Assignment) -> WireAssignment {
    let mut w = WireAssignment::default();
    for (topic, partitions) in a {
        let mut tp = TopicPartitions::default();
        tp.topic_id = *topic;
        tp.partitions = partitions.iter().copied().collect();
        w.topic_partitions.push(tp);
    }
    w
}

/// The subscribed topics of every member, resolved against `catalog`: the union of names is
/// looked up, and only with regexes is the catalog scanned, once per distinct regex.
pub(super) fn resolve_topics(
    group: &ConsumerGroup,
    catalog: &Catalog,
) -> BTreeMap<String, (uuid::Uuid, i32)> {
    let names: BTreeSet<&str> = group
        .members
        .values()
        .flat_map(|m| m.topic_names.iter().map(String::as_str))
        .collect();
    let mut regexes: BTreeMap<&str, &regex::Regex> = BTreeMap::new();
    for (src, re) in group.members.values().filter_map(|m| m.regex.as_ref()) {
        regexes.insert(src, re);
    }
    let entry = |t: &crate::metadata::TopicMeta| (t.name.clone(), (t.uuid(), t.partition_count()));
    let mut out: BTreeMap<String, (uuid::Uuid, i32)> =
        names.iter().filter_map(|n| catalog.topic(n)).map(entry).collect();
    for re in regexes.values() {
        out.extend(
            catalog
                .topics
                .values()
                .filter(|t| re.is_match(&t.name))
                .map(entry),
        );
    }
    out
}

impl GroupCoordinator {
    /// ConsumerGroupHeartbeat (v0-v1): join, heartbeat, reconcile or leave. Answered once
    /// what it changed is durable (as Kafka answers after its records are committed), so a
    /// member never holds an epoch or assignment a restart would forget.
    pub async fn consumer_heartbeat(
        &self,
        req: &ConsumerGroupHeartbeatRequest,
        version: i16,
        catalog: &Catalog,
        caller: &Caller<'_>,
    ) -> ConsumerGroupHeartbeatResponse {
        let mut r = ConsumerGroupHeartbeatResponse::default();
        let mut records = Vec::new();
        let mut result = if self.closed.get() {
            refuse(ResponseError::CoordinatorNotAvailable, "closed")
        } else {
            validate(req, version)
                .and_then(|re| self.heartbeat_validated(req, re, catalog, caller, &mut r, &mut records))
        };
        if !records.is_empty() {
            if let Err(e) = self.store.append(records).await {
                tracing::warn!(error = %e, group = %req.group_id.as_str(), "consumer group change not persisted");
                result = refuse(ResponseError::CoordinatorNotAvailable, "group store failed");
            }
        }
        if let Err((error, message)) = result {
            // Fencing and unknown members make a client drop its partitions and rejoin:
            // worth a line at info; the rest (a closing coordinator, bad fields) at debug.
            if matches!(
                error,
                ResponseError::FencedMemberEpoch | ResponseError::UnknownMemberId
            ) {
                tracing::info!(group = %req.group_id.as_str(), member = %req.member_id.as_str(), ?error, %message, "ConsumerGroupHeartbeat refused");
            } else {
                tracing::debug!(group = %req.group_id.as_str(), member = %req.member_id.as_str(), ?error, %message, "ConsumerGroupHeartbeat refused");
            }
            r = ConsumerGroupHeartbeatResponse::default();
            r.error_code = error.code();
            r.error_message = Some(sb(&message));
            r.member_epoch = -1;
        }
        r
    }

    fn heartbeat_validated(
        &self,
        req: &ConsumerGroupHeartbeatRequest,
        regex: Option<regex::Regex>,
        catalog: &Catalog,
        caller: &Caller<'_>,
        r: &mut ConsumerGroupHeartbeatResponse,
        records: &mut Vec<StoreRecord>,
    ) -> Result<(), Refusal> {
        let group_id = req.group_id.as_str();
        let mut groups = self.groups.borrow_mut();
        if req.member_epoch < 0 {
            let cg = groups.get_mut(group_id).and_then(|g| g.consumer.as_deref_mut());
            let Some(cg) = cg else {
                return refuse(
                    ResponseError::GroupIdNotFound,
                    format!("Group {group_id} not found."),
                );
            };
            let policy = self.config.consumer_migration_policy;
            let leaving = [req.member_id.as_str().to_owned()];
            if req.member_epoch == -1
                && req.instance_id.is_none()
                && super::classic::downgrades_without(cg, &leaving, policy)
            {
                // The last consumer-protocol member leaves classic members behind.
                cg.remove_member_for_downgrade(&leaving[0]);
                records.extend(cg.take_records(group_id));
                let group = groups.get_mut(group_id).expect("found above");
                self.maybe_downgrade(group, Instant::now(), records);
            } else {
                leave(cg, req)?;
                tracing::info!(group = %group_id, member = %req.member_id.as_str(), epoch = req.member_epoch, "consumer group member left");
                records.extend(cg.take_records(group_id));
            }
            r.member_id = Some(req.member_id.clone());
            r.member_epoch = req.member_epoch;
            // The last member gone: a group without offsets is forgotten now, not at some
            // later event, so groups left behind by departed consumers do not accumulate.
            self.drop_dead_groups(&mut groups, records);
            return Ok(());
        }
        let created = !groups.contains_key(group_id);
        if created {
            if req.member_epoch != 0 {
                // Membership is durable, so an unknown group has no such member (it was
                // deleted or expired); UNKNOWN_MEMBER_ID makes the member rejoin.
                return refuse(
                    ResponseError::UnknownMemberId,
                    format!("Group {group_id} has no member {}.", req.member_id.as_str()),
                );
            }
            if groups.len() >= GROUPS_PER_SHARD_MAX {
                return refuse(ResponseError::CoordinatorNotAvailable, "too many groups");
            }
            groups.insert(group_id.to_owned(), Group::new(group_id.to_owned(), wall_ms()));
        }
        let group = groups.get_mut(group_id).expect("present");
        let result = self.heartbeat_in_group(group, req, regex, catalog, caller, r);
        if let Some(cg) = group.consumer.as_deref_mut() {
            // Also after a refusal: a static member's rejoin may have changed the group first.
            records.extend(cg.take_records(group_id));
        }
        if result.is_err() && created {
            groups.remove(group_id);
            records.clear();
        }
        result
    }

    fn heartbeat_in_group(
        &self,
        group: &mut Group,
        req: &ConsumerGroupHeartbeatRequest,
        regex: Option<regex::Regex>,
        catalog: &Catalog,
        caller: &Caller<'_>,
        r: &mut ConsumerGroupHeartbeatResponse,
    ) -> Result<(), Refusal> {
        let group_id = group.group_id.clone();
        if group.consumer.is_none() {
            let classic_empty = group.members.is_empty() && group.pending_members.is_empty();
            if !classic_empty {
                if req.member_epoch != 0 {
                    return refuse(
                        ResponseError::GroupIdNotFound,
                        format!("Group {group_id} is not a consumer group."),
                    );
                }
                // Kafka 4's online upgrade: the classic members stay, as classic members.
                let policy = self.config.consumer_migration_policy;
                super::classic::upgrade(group, catalog, policy, Instant::now()).map_err(|why| {
                    (
                        ResponseError::GroupIdNotFound,
                        format!("Group {group_id} is not a consumer group: {why}."),
                    )
                })?;
                tracing::info!(group = %group_id, "classic group upgraded to a consumer group");
            } else if req.member_epoch != 0 {
                return refuse(
                    ResponseError::UnknownMemberId,
                    format!("Group {group_id} has no member {}.", req.member_id.as_str()),
                );
            }
            if group.consumer.is_none() {
                // An empty classic group (offsets only) becomes a consumer group; offsets stay.
                group.protocol_type = None;
                group.protocol_name = None;
                group.consumer = Some(Box::default());
            }
        }
        let cg = group.consumer.as_deref_mut().expect("set above");
        let member_id = if req.member_id.is_empty() {
            self.new_member_id(caller.client_id)
        } else {
            req.member_id.as_str().to_owned()
        };
        let now = Instant::now();
        let bump = self.admit_member(cg, req, &member_id, now, caller)?;
        let target_before = cg.assignment_epoch;
        self.update_member(cg, &member_id, req, regex, catalog, bump, now);
        let before = cg.members[&member_id].r.clone();
        reconcile_member(cg, &member_id, owned_partitions(req).as_ref(), now);
        log_changes(&group_id, &member_id, cg, target_before, &before);
        let member = &cg.members[&member_id];
        let full = req.member_epoch == 0
            || (req.rebalance_timeout_ms != -1
                && (req.subscribed_topic_names.is_some() || req.subscribed_topic_regex.is_some())
                && req.topic_partitions.is_some());
        if full || member.r.assigned != before.assigned {
            r.assignment = Some(wire_assignment(&member.r.assigned));
        }
        r.member_id = Some(sb(&member_id));
        r.member_epoch = member.r.epoch;
        r.heartbeat_interval_ms = self.config.consumer_heartbeat_interval_ms;
        Ok(())
    }

    /// Applies the heartbeat's member fields, moves the group epoch if the subscriptions (or
    /// the topics they resolve to) changed, and recomputes the target when it is behind.
    #[allow(clippy::too_many_arguments)]
    fn update_member(
        &self,
        cg: &mut ConsumerGroup,
        member_id: &str,
        req: &ConsumerGroupHeartbeatRequest,
        regex: Option<regex::Regex>,
        catalog: &Catalog,
        mut bump: bool,
        now: Instant,
    ) {
        let member = cg.members.get_mut(member_id).expect("admitted");
        let subscription_changed = update_subscription(member, req, regex);
        bump |= subscription_changed;
        let mut changed = subscription_changed;
        if let Some(rack) = req.rack_id.as_deref() {
            changed |= member.rack_id.as_deref() != Some(rack);
            member.rack_id = Some(rack.to_owned());
        }
        if req.rebalance_timeout_ms >= 0 {
            changed |= member.rebalance_timeout_ms != req.rebalance_timeout_ms;
            member.rebalance_timeout_ms = req.rebalance_timeout_ms;
        }
        member.touch(now, self.config.consumer_session_timeout_ms);
        if changed {
            cg.dirty_members.insert(member_id.to_owned());
        }
        let topics = resolve_topics(cg, catalog);
        if bump || topics != cg.topics {
            cg.topics = topics;
            cg.bump_epoch();
        }
        if cg.group_epoch > cg.assignment_epoch {
            cg.compute_target();
        }
    }

    /// Finds or adds the member and checks its epoch; whether the group epoch must move.
    fn admit_member(
        &self,
        cg: &mut ConsumerGroup,
        req: &ConsumerGroupHeartbeatRequest,
        member_id: &str,
        now: Instant,
        caller: &Caller<'_>,
    ) -> Result<bool, Refusal> {
        let epoch = req.member_epoch;
        let instance_id = req.instance_id.as_deref();
        let holder = instance_id
            .and_then(|i| cg.static_member(i))
            .map(|m| (m.member_id.clone(), m.r.epoch));
        if epoch == 0 {
            if let Some((old_id, old_epoch)) = holder {
                // A static member comes back: it takes over its predecessor's place only if
                // that one left with epoch -2 (KIP-848 static membership, as Kafka).
                if old_epoch != LEAVE_STATIC_EPOCH {
                    return refuse(ResponseError::UnreleasedInstanceId, format!("Static member {member_id} with instance id {} cannot join the group because the instance id is owned by {old_id} member.", instance_id.unwrap_or_default()));
                }
                cg.replace_static_member(&old_id, member_id);
                return Ok(false);
            }
            self.join_member(cg, req, member_id, now, caller)?;
            return Ok(true);
        }
        if let Some(instance) = instance_id {
            match holder {
                None => {
                    return refuse(
                        ResponseError::UnknownMemberId,
                        format!("Instance id {instance} is unknown."),
                    )
                }
                Some((holder_id, _)) if holder_id != member_id => {
                    return refuse(ResponseError::FencedInstanceId, format!("Static member {member_id} with instance id {instance} was fenced by member {holder_id}."));
                }
                Some(_) => {}
            }
        }
        let Some(member) = cg.members.get(member_id) else {
            return refuse(
                ResponseError::UnknownMemberId,
                format!("Member {member_id} is not a member of the group."),
            );
        };
        let owned = owned_partitions(req);
        let acceptable_previous = epoch == member.r.previous_epoch
            && owned.as_ref().is_some_and(|o| {
                o.iter()
                    .all(|(t, ps)| member.r.assigned.get(t).is_some_and(|a| ps.is_subset(a)))
            });
        if epoch > member.r.epoch || (epoch < member.r.epoch && !acceptable_previous) {
            return refuse(ResponseError::FencedMemberEpoch, format!("The consumer group member has a smaller member epoch ({epoch}) than the one known by the group coordinator ({}). The member must abandon all its partitions and rejoin.", member.r.epoch));
        }
        Ok(false)
    }

    /// A new member (epoch 0); one rejoining with epoch 0 starts over, releasing what it held.
    fn join_member(
        &self,
        cg: &mut ConsumerGroup,
        req: &ConsumerGroupHeartbeatRequest,
        member_id: &str,
        now: Instant,
        caller: &Caller<'_>,
    ) -> Result<(), Refusal> {
        let rejoin = cg.members.contains_key(member_id);
        if !rejoin && cg.members.len() >= GROUP_MEMBERS_MAX {
            return refuse(
                ResponseError::GroupMaxSizeReached,
                "The consumer group has reached its maximum capacity.",
            );
        }
        cg.members.remove(member_id);
        cg.target.remove(member_id);
        cg.dirty_members.insert(member_id.to_owned());
        cg.members.insert(
            member_id.to_owned(),
            ConsumerMember {
                member_id: member_id.to_owned(),
                instance_id: req.instance_id.as_deref().map(str::to_owned),
                rack_id: None,
                client_id: truncate_utf8(caller.client_id, NAME_BYTES_MAX).to_owned(),
                client_host: truncate_utf8(caller.client_host, NAME_BYTES_MAX).to_owned(),
                rebalance_timeout_ms: req.rebalance_timeout_ms,
                topic_names: BTreeSet::new(),
                regex: None,
                assignor: None,
                r: Reconciled::joining(),
                session_deadline: now,
                revocation_deadline: None,
                classic: None,
            },
        );
        Ok(())
    }

    /// ConsumerGroupDescribe for one group: GROUP_ID_NOT_FOUND for an unknown or classic group.
    pub fn consumer_describe(&self, group_id: &str) -> describe::DescribedGroup {
        let mut d = describe::DescribedGroup::default();
        d.group_id = kafka_protocol::messages::GroupId(sb(group_id));
        d.authorized_operations = i32::MIN;
        if self.closed.get() {
            d.error_code = ResponseError::CoordinatorNotAvailable.code();
            return d;
        }
        let groups = self.groups.borrow();
        let Some(cg) = groups.get(group_id).and_then(|g| g.consumer.as_deref()) else {
            d.error_code = ResponseError::GroupIdNotFound.code();
            d.error_message = Some(sb(&format!("Group {group_id} not found.")));
            return d;
        };
        d.group_state = sb(cg.state().name());
        d.group_epoch = cg.group_epoch;
        d.assignment_epoch = cg.assignment_epoch;
        d.assignor_name = sb(&cg.assignor());
        let described = |a: &Assignment| {
            let mut out = describe::Assignment::default();
            for (id, ps) in a {
                let mut tp = describe::TopicPartitions::default();
                tp.topic_id = *id;
                tp.topic_name = kafka_protocol::messages::TopicName(sb(cg.topic_name(id).unwrap_or("")));
                tp.partitions = ps.iter().copied().collect();
                out.topic_partitions.push(tp);
            }
            out
        };
        for m in cg.members.values() {
            let mut dm = describe::Member::default();
            dm.member_id = sb(&m.member_id);
            dm.instance_id = m.instance_id.as_deref().map(sb);
            dm.rack_id = m.rack_id.as_deref().map(sb);
            dm.member_epoch = m.r.epoch;
            dm.client_id = sb(&m.client_id);
            dm.client_host = sb(&m.client_host);
            dm.subscribed_topic_names = m
                .topic_names
                .iter()
                .map(|n| kafka_protocol::messages::TopicName(sb(n)))
                .collect();
            dm.subscribed_topic_regex = m.regex.as_ref().map(|(src, _)| sb(src));
            dm.assignment = described(&m.r.assigned);
            dm.target_assignment = described(cg.target.get(&m.member_id).unwrap_or(&Assignment::new()));
            // KIP-1099 member type: 0 classic, 1 consumer.
            dm.member_type = if m.classic.is_some() { 0 } else { 1 };
            d.members.push(dm);
        }
        d
    }

    /// The consumer-group share of a timer tick: expires members (their removal is queued in
    /// `persist`); whether anything changed.
    pub(in crate::groups) fn consumer_tick(
        &self,
        group: &mut Group,
        now: Instant,
        persist: &mut Vec<StoreRecord>,
    ) -> bool {
        let group_id = group.group_id.clone();
        let Some(cg) = group.consumer.as_deref_mut() else {
            return false;
        };
        let expired = cg.expired(now);
        if super::classic::downgrades_without(cg, &expired, self.config.consumer_migration_policy) {
            for id in &expired {
                tracing::info!(group = %group_id, member = %id, "consumer group member expired");
                cg.remove_member_for_downgrade(id);
            }
            persist.extend(cg.take_records(&group_id));
            self.maybe_downgrade(group, now, persist);
            return true;
        }
        let changed = cg.expire(now, &group_id);
        if changed {
            persist.extend(cg.take_records(&group_id));
            self.maybe_downgrade(group, now, persist);
        }
        changed
    }
}

/// One line per new target and per step of a member's reconciliation (not per
/// heartbeat): what a stalled rebalance needs to be read from the log.
fn log_changes(group_id: &str, member_id: &str, cg: &ConsumerGroup, target_before: i32, before: &Reconciled) {
    if cg.assignment_epoch != target_before {
        tracing::info!(
            group = %group_id,
            member = %member_id,
            epoch = cg.assignment_epoch,
            members = cg.members.len(),
            "consumer group target assignment computed"
        );
    }
    let r = &cg.members[member_id].r;
    if r.epoch != before.epoch || r.state != before.state {
        tracing::info!(
            group = %group_id,
            member = %member_id,
            epoch = r.epoch,
            target_epoch = cg.assignment_epoch,
            state = r.state.name(),
            assigned = r.assigned.values().map(|ps| ps.len()).sum::<usize>(),
            revoking = r.pending_revocation.values().map(|ps| ps.len()).sum::<usize>(),
            "consumer group member reconciled"
        );
    }
}

/// A leave (epoch -1, or -2 for a static member that will be back): checked as Kafka's
/// consumerGroupLeave. A static member leaving with -2 stays, at epoch -2, keeping its
/// partitions and target until it rejoins or its session expires; any other leave removes.
fn leave(cg: &mut ConsumerGroup, req: &ConsumerGroupHeartbeatRequest) -> Result<(), Refusal> {
    let member_id = req.member_id.as_str();
    let target = match req.instance_id.as_deref() {
        None => member_id.to_owned(),
        Some(instance) => {
            let Some(holder) = cg.static_member(instance) else {
                return refuse(
                    ResponseError::UnknownMemberId,
                    format!("Instance id {instance} is unknown."),
                );
            };
            if holder.member_id != member_id {
                return refuse(
                    ResponseError::FencedInstanceId,
                    format!(
                        "Static member {member_id} with instance id {instance} was fenced by member {}.",
                        holder.member_id
                    ),
                );
            }
            holder.member_id.clone()
        }
    };
    if req.member_epoch == LEAVE_STATIC_EPOCH {
        let member = cg.members.get_mut(&target).expect("found by instance id");
        member.r.epoch = LEAVE_STATIC_EPOCH;
        member.r.pending_revocation.clear();
        member.revocation_deadline = None;
        cg.dirty_members.insert(target);
        return Ok(());
    }
    if !cg.remove_member(&target) {
        return refuse(
            ResponseError::UnknownMemberId,
            format!("Member {member_id} is not a member of the group."),
        );
    }
    Ok(())
}

/// Applies the heartbeat's subscription fields (absent = unchanged); whether they changed.
fn update_subscription(
    member: &mut ConsumerMember,
    req: &ConsumerGroupHeartbeatRequest,
    regex: Option<regex::Regex>,
) -> bool {
    let mut changed = false;
    if let Some(names) = &req.subscribed_topic_names {
        let names: BTreeSet<String> = names.iter().map(|n| n.as_str().to_owned()).collect();
        changed |= names != member.topic_names;
        member.topic_names = names;
    }
    if let (Some(src), Some(re)) = (req.subscribed_topic_regex.as_deref(), regex) {
        if member.regex.as_ref().map(|(s, _)| s.as_str()) != Some(src) {
            member.regex = Some((src.to_owned(), re));
            changed = true;
        }
    }
    if let Some(name) = req.server_assignor.as_deref() {
        changed |= member.assignor.as_deref() != Some(name);
        member.assignor = Some(name.to_owned());
    }
    changed
}

/// One reconciliation step for `member_id` towards its target.
pub(super) fn reconcile_member(
    cg: &mut ConsumerGroup,
    member_id: &str,
    owned: Option<&Assignment>,
    now: Instant,
) {
    let empty = Assignment::new();
    let target = cg.target.get(member_id).unwrap_or(&empty);
    let holders = cg.holders();
    let held_by_other = |t: uuid::Uuid, p: i32| holders.get(&(t, p)).is_some_and(|h| *h != member_id);
    let current = &cg.members[member_id];
    let next = reconcile(&current.r, cg.assignment_epoch, target, owned, &held_by_other);
    let member = cg.members.get_mut(member_id).expect("present");
    if next.state != MemberState::UnrevokedPartitions {
        member.revocation_deadline = None;
    } else if member.revocation_deadline.is_none() {
        let timeout = std::time::Duration::from_millis(member.rebalance_timeout_ms.max(0) as u64);
        member.revocation_deadline = Some(now + timeout);
    }
    if member.r != next {
        member.r = next;
        cg.dirty_members.insert(member_id.to_owned());
    }
}
