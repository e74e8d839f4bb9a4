//! Consumer-group requests, one group per request: FindCoordinator, JoinGroup,
//! SyncGroup, Heartbeat, LeaveGroup, OffsetCommit, OffsetFetch. Members join
//! with protocol type `consumer`.
//!
//! Pure; any thread. The versions these shapes assume are bounded in
//! `versions::CLIENT_APIS`; LeaveGroup's shape changes inside that range and
//! takes the negotiated version.

use bytes::Bytes;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{
    FindCoordinatorRequest, GroupId, HeartbeatRequest, JoinGroupRequest, LeaveGroupRequest,
    OffsetCommitRequest, OffsetFetchRequest, SyncGroupRequest,
};

use super::{sb, topic_name};

/// The first LeaveGroup version that lists members (KIP-345) instead of one id.
const LEAVE_GROUP_MEMBERS_MIN: i16 = 3;
/// The protocol type of Kafka consumers; the only one these helpers join as.
pub const CONSUMER: &str = "consumer";

pub fn find_coordinator(group_id: &str) -> FindCoordinatorRequest {
    FindCoordinatorRequest::default().with_key(sb(group_id))
}

/// Who joins, and how long the coordinator may wait for it.
#[derive(Debug, Clone, Copy)]
pub struct Member<'a> {
    pub group_id: &'a str,
    /// Empty to join as a new member.
    pub member_id: &'a str,
    pub session_timeout_ms: i32,
}

/// JoinGroup as a `consumer` member offering `protocols` (name, metadata).
pub fn join_group(member: Member<'_>, protocols: &[(&str, Bytes)]) -> JoinGroupRequest {
    let protocols = protocols
        .iter()
        .map(|(name, meta)| {
            JoinGroupRequestProtocol::default()
                .with_name(sb(name))
                .with_metadata(meta.clone())
        })
        .collect();
    JoinGroupRequest::default()
        .with_group_id(GroupId(sb(member.group_id)))
        .with_session_timeout_ms(member.session_timeout_ms)
        .with_rebalance_timeout_ms(member.session_timeout_ms)
        .with_member_id(sb(member.member_id))
        .with_protocol_type(sb(CONSUMER))
        .with_protocols(protocols)
}

/// Where a member stands after JoinGroup.
#[derive(Debug, Clone, Copy)]
pub struct Generation<'a> {
    pub group_id: &'a str,
    pub generation_id: i32,
    pub member_id: &'a str,
}

/// SyncGroup: the leader passes every member's assignment, the others none.
pub fn sync_group(
    at: Generation<'_>,
    protocol_name: &str,
    assignments: &[(String, Bytes)],
) -> SyncGroupRequest {
    let assignments = assignments
        .iter()
        .map(|(m, a)| {
            SyncGroupRequestAssignment::default()
                .with_member_id(sb(m))
                .with_assignment(a.clone())
        })
        .collect();
    SyncGroupRequest::default()
        .with_group_id(GroupId(sb(at.group_id)))
        .with_generation_id(at.generation_id)
        .with_member_id(sb(at.member_id))
        .with_protocol_type(Some(sb(CONSUMER)))
        .with_protocol_name(Some(sb(protocol_name)))
        .with_assignments(assignments)
}

pub fn heartbeat(at: Generation<'_>) -> HeartbeatRequest {
    HeartbeatRequest::default()
        .with_group_id(GroupId(sb(at.group_id)))
        .with_generation_id(at.generation_id)
        .with_member_id(sb(at.member_id))
}

/// LeaveGroup for one member at the negotiated `version`.
pub fn leave_group(group_id: &str, member_id: &str, version: i16) -> LeaveGroupRequest {
    let req = LeaveGroupRequest::default().with_group_id(GroupId(sb(group_id)));
    if version >= LEAVE_GROUP_MEMBERS_MIN {
        req.with_members(vec![MemberIdentity::default().with_member_id(sb(member_id))])
    } else {
        req.with_member_id(sb(member_id))
    }
}

/// OffsetCommit of (topic, partition, offset) triples. Generation -1 with an
/// empty member id is an admin commit, accepted only for a group without members.
pub fn offset_commit(at: Generation<'_>, offsets: &[(&str, i32, i64)]) -> OffsetCommitRequest {
    let mut topics: Vec<OffsetCommitRequestTopic> = Vec::new();
    for &(topic, partition, offset) in offsets {
        let p = OffsetCommitRequestPartition::default()
            .with_partition_index(partition)
            .with_committed_offset(offset);
        match topics.iter_mut().find(|t| t.name.0.as_str() == topic) {
            Some(t) => t.partitions.push(p),
            None => topics.push(
                OffsetCommitRequestTopic::default()
                    .with_name(topic_name(topic))
                    .with_partitions(vec![p]),
            ),
        }
    }
    OffsetCommitRequest::default()
        .with_group_id(GroupId(sb(at.group_id)))
        .with_generation_id_or_member_epoch(at.generation_id)
        .with_member_id(sb(at.member_id))
        .with_topics(topics)
}

/// OffsetFetch for one group: every committed partition (`None`) or the named ones.
pub fn offset_fetch(group_id: &str, topics: Option<&[(&str, Vec<i32>)]>) -> OffsetFetchRequest {
    let topics = topics.map(|ts| {
        ts.iter()
            .map(|(t, ps)| {
                OffsetFetchRequestTopic::default()
                    .with_name(topic_name(t))
                    .with_partition_indexes(ps.clone())
            })
            .collect()
    });
    OffsetFetchRequest::default()
        .with_group_id(GroupId(sb(group_id)))
        .with_topics(topics)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_offsets_of_two_topics_when_committed_should_group_partitions_by_topic() {
        let at = Generation {
            group_id: "g",
            generation_id: -1,
            member_id: "",
        };
        let req = offset_commit(at, &[("a", 0, 5), ("b", 1, 6), ("a", 2, 7)]);
        assert_eq!(req.topics.len(), 2);
        assert_eq!(req.topics[0].partitions.len(), 2);
        assert_eq!(req.topics[1].partitions[0].committed_offset, 6);
    }

    #[test]
    fn given_leave_group_versions_when_built_should_switch_to_member_lists_at_v3() {
        assert_eq!(leave_group("g", "m", 2).member_id.as_str(), "m");
        let v3 = leave_group("g", "m", 3);
        assert_eq!(
            (v3.member_id.as_str(), v3.members[0].member_id.as_str()),
            ("", "m")
        );
    }
}
