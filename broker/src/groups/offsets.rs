//! Committed offsets and the read-only group APIs: OffsetCommit, OffsetFetch, OffsetDelete,
//! reset, topic removal, retention expiry, ListGroups and DescribeGroups.
//! Runs on the coordinator's shard; state changes go through `OffsetStore` so the in-memory
//! offsets are always the durable ones. An OffsetCommit is answered only after its fdatasync.

use std::time::Instant;

use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use kafka_protocol::messages::{
    GroupId, OffsetCommitRequest, OffsetCommitResponse, OffsetDeleteRequest, OffsetDeleteResponse,
};
use kafka_protocol::ResponseError;

use super::coordinator::{sb, wall_ms, GroupCoordinator};
use super::group::{Group, GroupState};
use super::record::{CommittedOffset, StoreRecord};
use super::{
    GroupError, GROUPS_PER_SHARD_MAX, NAME_BYTES_MAX, OFFSETS_PER_SHARD_MAX, OFFSET_METADATA_BYTES_MAX,
};

/// One partition's committed offset as OffsetFetch reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FetchedOffset {
    pub topic: String,
    pub partition: i32,
    /// -1 when the group has no committed offset for this partition.
    pub offset: i64,
    /// -1 when unknown.
    pub leader_epoch: i32,
    pub metadata: String,
    /// UNSTABLE_OFFSET_COMMIT for a partition with a pending transactional offset (when
    /// the fetch required stable offsets), else 0.
    pub error_code: i16,
}

/// One committed partition's own checks, the same for OffsetCommit and
/// TxnOffsetCommit: a name and index that can be a partition, and metadata
/// within its bound.
pub(super) fn check_partition(topic: &str, partition: i32, metadata: &str) -> Result<(), ResponseError> {
    if topic.is_empty() || topic.len() > NAME_BYTES_MAX || partition < 0 {
        Err(ResponseError::UnknownTopicOrPartition)
    } else if metadata.len() > OFFSET_METADATA_BYTES_MAX {
        Err(ResponseError::OffsetMetadataTooLarge)
    } else {
        Ok(())
    }
}

impl GroupCoordinator {
    /// OffsetCommit (v2-9): validated like Kafka's classic coordinator, then written and
    /// fdatasync'd before the response is built.
    pub async fn offset_commit(&self, req: OffsetCommitRequest, version: i16) -> OffsetCommitResponse {
        let group_result = self.validate_commit(&req, version);
        let now_ms = wall_ms();
        let group_id = req.group_id.as_str().to_owned();
        let mut response = OffsetCommitResponse::default();
        let mut records = Vec::new();
        let mut accepted = Vec::new();
        for (t, topic) in req.topics.iter().enumerate() {
            let mut out = OffsetCommitResponseTopic::default();
            out.name = topic.name.clone();
            for (p, partition) in topic.partitions.iter().enumerate() {
                let metadata = partition.committed_metadata.as_deref().unwrap_or("");
                let result = group_result
                    .and_then(|()| check_partition(topic.name.as_str(), partition.partition_index, metadata));
                let mut po = OffsetCommitResponsePartition::default();
                po.partition_index = partition.partition_index;
                po.error_code = result.err().map_or(0, |e| e.code());
                if result.is_ok() {
                    accepted.push((t, p));
                    records.push(StoreRecord::Commit {
                        group: group_id.clone(),
                        topic: topic.name.as_str().to_owned(),
                        partition: partition.partition_index,
                        value: CommittedOffset {
                            offset: partition.committed_offset,
                            leader_epoch: partition.committed_leader_epoch,
                            metadata: metadata.to_owned(),
                            commit_timestamp_ms: now_ms,
                        },
                    });
                }
                out.partitions.push(po);
            }
            response.topics.push(out);
        }
        if let Err(e) = self.commit_records(&group_id, records).await {
            for (t, p) in accepted {
                response.topics[t].partitions[p].error_code = e.code();
            }
        }
        response
    }

    /// Makes `records` durable, then makes sure the group is listed (a timer tick may have
    /// dropped a just-created group whose offsets were not yet durable).
    pub(super) async fn commit_records(
        &self,
        group_id: &str,
        records: Vec<StoreRecord>,
    ) -> Result<(), ResponseError> {
        if records.is_empty() {
            return Ok(());
        }
        if self.store.state().offset_count + records.len() > OFFSETS_PER_SHARD_MAX {
            return Err(ResponseError::CoordinatorNotAvailable);
        }
        self.store
            .append(records)
            .await
            .map_err(|e| e.to_response_error())?;
        let mut groups = self.groups.borrow_mut();
        if !groups.contains_key(group_id) && groups.len() < GROUPS_PER_SHARD_MAX {
            groups.insert(group_id.to_owned(), Group::new(group_id.to_owned(), wall_ms()));
        }
        Ok(())
    }

    fn validate_commit(&self, req: &OffsetCommitRequest, version: i16) -> Result<(), ResponseError> {
        if self.closed.get() {
            return Err(ResponseError::CoordinatorNotAvailable);
        }
        let group_id = req.group_id.as_str();
        if group_id.is_empty() || group_id.len() > NAME_BYTES_MAX {
            return Err(ResponseError::InvalidGroupId);
        }
        let mut groups = self.groups.borrow_mut();
        let Some(group) = groups.get_mut(group_id) else {
            // Simple consumers and admin tools commit without a generation: that creates the group.
            if req.generation_id_or_member_epoch >= 0 {
                return Err(ResponseError::IllegalGeneration);
            }
            if groups.len() >= GROUPS_PER_SHARD_MAX {
                return Err(ResponseError::CoordinatorNotAvailable);
            }
            groups.insert(group_id.to_owned(), Group::new(group_id.to_owned(), wall_ms()));
            return Ok(());
        };
        let member_id = req.member_id.as_str();
        if let Some(cg) = group.consumer.as_deref() {
            return cg.validate_offset_commit(member_id, req.generation_id_or_member_epoch, version);
        }
        if group.is_fenced(member_id, req.group_instance_id.as_deref()) {
            return Err(ResponseError::FencedInstanceId);
        }
        if req.generation_id_or_member_epoch < 0 && group.state == GroupState::Empty {
            return Ok(());
        }
        if group.state == GroupState::CompletingRebalance {
            return Err(ResponseError::RebalanceInProgress);
        }
        let member = group
            .member_mut(member_id)
            .ok_or(ResponseError::UnknownMemberId)?;
        member.touch(Instant::now());
        if req.generation_id_or_member_epoch != group.generation_id {
            return Err(ResponseError::IllegalGeneration);
        }
        Ok(())
    }

    /// OffsetFetch for one group. `topics: None` means every partition the group committed.
    /// Partitions without a committed offset report offset -1 (no error), as Kafka does.
    /// With `require_stable` (OffsetFetch v7+), a partition with a pending transactional
    /// offset answers UNSTABLE_OFFSET_COMMIT and the client retries, as Kafka does.
    pub async fn offset_fetch_group(
        &self,
        group_id: &str,
        topics: Option<Vec<(String, Vec<i32>)>>,
        require_stable: bool,
        member: Option<(String, i32)>,
    ) -> Result<Vec<FetchedOffset>, ResponseError> {
        if self.closed.get() {
            return Err(ResponseError::CoordinatorNotAvailable);
        }
        if group_id.is_empty() || group_id.len() > NAME_BYTES_MAX {
            return Err(ResponseError::InvalidGroupId);
        }
        if let Some((member_id, epoch)) = member {
            let groups = self.groups.borrow();
            if let Some(cg) = groups.get(group_id).and_then(|g| g.consumer.as_deref()) {
                cg.validate_offset_fetch(&member_id, epoch)?;
            }
        }
        let state = self.store.state();
        let offsets = state.offsets.get(group_id);
        let fetched = |topic: &str, partition: i32, found: Option<&CommittedOffset>| {
            let unstable = require_stable && state.has_pending(group_id, topic, partition);
            let found = found.filter(|_| !unstable);
            FetchedOffset {
                topic: topic.to_owned(),
                partition,
                offset: found.map_or(-1, |o| o.offset),
                leader_epoch: found.map_or(-1, |o| o.leader_epoch),
                metadata: found.map(|o| o.metadata.clone()).unwrap_or_default(),
                error_code: if unstable {
                    ResponseError::UnstableOffsetCommit.code()
                } else {
                    0
                },
            }
        };
        let mut out = Vec::new();
        match topics {
            None => {
                for ((topic, partition), value) in offsets.into_iter().flatten() {
                    out.push(fetched(topic, *partition, Some(value)));
                }
                out.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
            }
            Some(topics) => {
                for (topic, partitions) in &topics {
                    for &partition in partitions {
                        let found = offsets.and_then(|o| o.get(&(topic.clone(), partition)));
                        out.push(fetched(topic, partition, found));
                    }
                }
            }
        }
        Ok(out)
    }

    /// OffsetDelete (v0). A live consumer group may only lose offsets of topics it does not
    /// subscribe to (GROUP_SUBSCRIBED_TO_TOPIC); a live group of another protocol type, none.
    pub async fn offset_delete(&self, req: OffsetDeleteRequest) -> OffsetDeleteResponse {
        let mut response = OffsetDeleteResponse::default();
        let group_id = req.group_id.as_str().to_owned();
        let subscribed = match self.offset_delete_check(&group_id) {
            Ok(subscribed) => subscribed,
            Err(e) => {
                response.error_code = e.code();
                return response;
            }
        };
        let mut records = Vec::new();
        let mut accepted = Vec::new();
        for (t, topic) in req.topics.iter().enumerate() {
            let mut out = OffsetDeleteResponseTopic::default();
            out.name = topic.name.clone();
            let refused = subscribed
                .as_ref()
                .is_some_and(|s| s.iter().any(|n| n == topic.name.as_str()));
            for (p, partition) in topic.partitions.iter().enumerate() {
                let mut po = OffsetDeleteResponsePartition::default();
                po.partition_index = partition.partition_index;
                if refused {
                    po.error_code = ResponseError::GroupSubscribedToTopic.code();
                } else if topic.name.len() > NAME_BYTES_MAX {
                    po.error_code = ResponseError::UnknownTopicOrPartition.code();
                } else if self.has_offset(&group_id, topic.name.as_str(), partition.partition_index) {
                    accepted.push((t, p));
                    records.push(StoreRecord::Delete {
                        group: group_id.clone(),
                        topic: topic.name.as_str().to_owned(),
                        partition: partition.partition_index,
                    });
                }
                out.partitions.push(po);
            }
            response.topics.push(out);
        }
        if let Err(e) = self.apply_deletes(records).await {
            for (t, p) in accepted {
                response.topics[t].partitions[p].error_code = e.to_response_error().code();
            }
        }
        response
    }

    fn has_offset(&self, group_id: &str, topic: &str, partition: i32) -> bool {
        let state = self.store.state();
        let offsets = state.offsets.get(group_id);
        offsets.is_some_and(|o| o.contains_key(&(topic.to_owned(), partition)))
    }

    /// `Ok(Some(topics))`: a live consumer group subscribed to these; `Ok(None)`: no live members.
    fn offset_delete_check(&self, group_id: &str) -> Result<Option<Vec<String>>, ResponseError> {
        if self.closed.get() {
            return Err(ResponseError::CoordinatorNotAvailable);
        }
        if group_id.is_empty() || group_id.len() > NAME_BYTES_MAX {
            return Err(ResponseError::InvalidGroupId);
        }
        let groups = self.groups.borrow();
        let group = groups.get(group_id).ok_or(ResponseError::GroupIdNotFound)?;
        if group.state == GroupState::Dead {
            return Err(ResponseError::GroupIdNotFound);
        }
        if group.members.is_empty() {
            return Ok(None);
        }
        if group.protocol_type.as_deref() != Some("consumer") {
            return Err(ResponseError::NonEmptyGroup);
        }
        // Undecodable subscriptions: refuse rather than delete offsets a consumer may need.
        group
            .subscribed_topics()
            .map(Some)
            .ok_or(ResponseError::NonEmptyGroup)
    }

    async fn apply_deletes(&self, records: Vec<StoreRecord>) -> Result<(), GroupError> {
        if records.is_empty() {
            return Ok(());
        }
        self.store.append(records).await?;
        self.drop_dead_groups_now();
        Ok(())
    }

    fn drop_dead_groups_now(&self) {
        let mut persist = Vec::new();
        self.drop_dead_groups(&mut self.groups.borrow_mut(), &mut persist);
        self.persist(persist);
    }

    /// For `weir group reset-offsets`: sets offsets of a group with no live members
    /// (NON_EMPTY_GROUP otherwise), durably.
    pub async fn reset_offsets(
        &self,
        group_id: &str,
        offsets: Vec<(String, i32, i64)>,
    ) -> Result<(), ResponseError> {
        if self.closed.get() {
            return Err(ResponseError::CoordinatorNotAvailable);
        }
        if group_id.is_empty() || group_id.len() > NAME_BYTES_MAX {
            return Err(ResponseError::InvalidGroupId);
        }
        if let Some(group) = self.groups.borrow().get(group_id) {
            if group.state != GroupState::Empty || !group.members.is_empty() {
                return Err(ResponseError::NonEmptyGroup);
            }
        }
        let now_ms = wall_ms();
        let mut records = Vec::with_capacity(offsets.len());
        for (topic, partition, offset) in offsets {
            if topic.is_empty() || topic.len() > NAME_BYTES_MAX || partition < 0 {
                return Err(ResponseError::UnknownTopicOrPartition);
            }
            let value = CommittedOffset {
                offset,
                leader_epoch: -1,
                metadata: String::new(),
                commit_timestamp_ms: now_ms,
            };
            records.push(StoreRecord::Commit {
                group: group_id.to_owned(),
                topic,
                partition,
                value,
            });
        }
        self.commit_records(group_id, records).await
    }

    /// Deletes every group's offsets for a deleted topic, durably.
    pub async fn remove_topic(&self, topic: &str) -> Result<(), GroupError> {
        let records: Vec<StoreRecord> = {
            let state = self.store.state();
            let keys = state.offsets.iter().flat_map(|(group, offsets)| {
                offsets
                    .keys()
                    .filter(|(t, _)| t == topic)
                    .map(move |(t, p)| StoreRecord::Delete {
                        group: group.clone(),
                        topic: t.clone(),
                        partition: *p,
                    })
            });
            keys.collect()
        };
        self.apply_deletes(records).await
    }

    /// Retention: a group with no members whose newest activity (becoming Empty, or its last
    /// commit) is older than `offsets_retention_ms` loses its offsets and metadata.
    /// Returns how many groups expired.
    pub(super) fn expire_groups(&self, now_ms: i64) -> usize {
        let mut records = Vec::new();
        {
            let state = self.store.state();
            let mut groups = self.groups.borrow_mut();
            groups.retain(|id, group| {
                if group.state != GroupState::Empty
                    || !group.members.is_empty()
                    || !group.pending_members.is_empty()
                {
                    return true;
                }
                let newest_commit = state
                    .offsets
                    .get(id)
                    .and_then(|o| o.values().map(|v| v.commit_timestamp_ms).max());
                let base_ms = newest_commit.unwrap_or(i64::MIN).max(group.state_timestamp_ms);
                let expired = now_ms.saturating_sub(base_ms) >= self.config.offsets_retention_ms;
                if expired {
                    records.push(StoreRecord::GroupDelete { group: id.clone() });
                }
                !expired
            });
        }
        let count = records.len();
        if count > 0 {
            tracing::info!(count, "expired offsets of empty groups");
        }
        self.persist(records);
        count
    }

    /// ListGroups: every group this shard coordinates, optionally filtered by state name
    /// (case-insensitive, as Kafka's ListGroups v4+).
    pub fn list_groups(&self, states_filter: &[String], types_filter: &[String]) -> Vec<ListedGroup> {
        let groups = self.groups.borrow();
        let listed = |g: &Group| -> (&'static str, &'static str, String) {
            if let Some(sg) = g.share.as_deref() {
                return (sg.state_name(), "share", "share".to_owned());
            }
            match g.consumer.as_deref() {
                Some(cg) => (cg.state().name(), "consumer", "consumer".to_owned()),
                None => (
                    g.state.name(),
                    "classic",
                    g.protocol_type.clone().unwrap_or_default(),
                ),
            }
        };
        let mut out: Vec<ListedGroup> = groups
            .values()
            .map(|g| (g, listed(g)))
            .filter(|(_, (state, kind, _))| {
                let pass = |filter: &[String], v: &str| {
                    filter.is_empty() || filter.iter().any(|s| s.eq_ignore_ascii_case(v))
                };
                pass(states_filter, state) && pass(types_filter, kind)
            })
            .map(|(g, (state, kind, protocol_type))| {
                let mut l = ListedGroup::default();
                l.group_id = GroupId(sb(&g.group_id));
                l.protocol_type = sb(&protocol_type);
                l.group_state = sb(state);
                l.group_type = sb(kind);
                l
            })
            .collect();
        out.sort_by(|a, b| a.group_id.as_str().cmp(b.group_id.as_str()));
        out
    }

    /// DescribeGroups for one group. Unknown groups are reported Dead with no error, as Kafka
    /// does up to v5. Member metadata and assignments are shown only when Stable.
    pub fn describe_group(&self, group_id: &str) -> DescribedGroup {
        let mut d = DescribedGroup::default();
        d.group_id = GroupId(sb(group_id));
        if self.closed.get() {
            d.error_code = ResponseError::CoordinatorNotAvailable.code();
            return d;
        }
        let groups = self.groups.borrow();
        // A consumer group is not a classic group: Dead without error, as Kafka up to v5.
        let Some(group) = groups.get(group_id).filter(|g| g.consumer.is_none()) else {
            d.group_state = sb(GroupState::Dead.name());
            return d;
        };
        let stable = group.state == GroupState::Stable;
        d.group_state = sb(group.state.name());
        d.protocol_type = sb(group.protocol_type.as_deref().unwrap_or(""));
        d.protocol_data = sb(if stable {
            group.protocol_name.as_deref().unwrap_or("")
        } else {
            ""
        });
        let protocol = group.protocol_name.as_deref().unwrap_or("");
        for m in &group.members {
            let mut dm = DescribedGroupMember::default();
            dm.member_id = sb(&m.member_id);
            dm.group_instance_id = m.group_instance_id.as_deref().map(sb);
            dm.client_id = sb(&m.client_id);
            dm.client_host = sb(&m.client_host);
            if stable {
                dm.member_metadata = m.metadata_for(protocol).cloned().unwrap_or_default();
                dm.member_assignment = m.assignment.clone();
            }
            d.members.push(dm);
        }
        d
    }
}
