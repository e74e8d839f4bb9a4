//! Generators for the share-group APIs (KIP-932): ShareGroupHeartbeat, ShareGroupDescribe,
//! ShareFetch, ShareAcknowledge, DescribeShareGroupOffsets, AlterShareGroupOffsets and
//! DeleteShareGroupOffsets.

use kafka_protocol::messages::*;

use super::Palette;

pub(super) fn share_group_heartbeat_request(_v: i16, p: &Palette) -> ShareGroupHeartbeatRequest {
    let mut m = ShareGroupHeartbeatRequest::default();
    m.group_id = p.group(0);
    m.member_id = p.s(1);
    m.member_epoch = p.i32(0);
    m.rack_id = p.opt(1);
    m.subscribed_topic_names = p.flag(2).then(|| (0..p.n(0)).map(|i| p.topic(i)).collect());
    m
}

pub(super) fn share_group_heartbeat_response(_v: i16, p: &Palette) -> ShareGroupHeartbeatResponse {
    use share_group_heartbeat_response::{Assignment, TopicPartitions};
    let mut m = ShareGroupHeartbeatResponse::default();
    m.throttle_time_ms = p.i32(0);
    m.error_code = p.i16(1);
    m.error_message = p.opt(0);
    m.member_id = p.opt(1);
    m.member_epoch = p.i32(2);
    m.heartbeat_interval_ms = p.i32(3);
    m.assignment = p.flag(2).then(|| {
        let mut a = Assignment::default();
        a.topic_partitions = (0..p.n(0))
            .map(|i| {
                let mut tp = TopicPartitions::default();
                tp.topic_id = p.uuid(i);
                tp.partitions = (0..p.n(i + 1)).map(|j| p.i32(j)).collect();
                tp
            })
            .collect();
        a
    });
    m
}

pub(super) fn share_group_describe_request(_v: i16, p: &Palette) -> ShareGroupDescribeRequest {
    let mut m = ShareGroupDescribeRequest::default();
    m.group_ids = (0..p.n(0)).map(|i| p.group(i)).collect();
    m.include_authorized_operations = p.flag(0);
    m
}

pub(super) fn share_group_describe_response(_v: i16, p: &Palette) -> ShareGroupDescribeResponse {
    use share_group_describe_response::{DescribedGroup, Member, TopicPartitions};
    let mut m = ShareGroupDescribeResponse::default();
    m.throttle_time_ms = p.i32(0);
    m.groups = (0..p.n(0))
        .map(|g| {
            let mut d = DescribedGroup::default();
            d.error_code = p.i16(g);
            d.error_message = p.opt(g);
            d.group_id = p.group(g);
            d.group_state = p.s(g + 1);
            d.group_epoch = p.i32(g + 1);
            d.assignment_epoch = p.i32(g + 2);
            d.assignor_name = p.s(g + 2);
            d.authorized_operations = p.i32(g + 3);
            d.members = (0..p.n(g + 1))
                .map(|i| {
                    let mut mm = Member::default();
                    mm.member_id = p.s(i);
                    mm.rack_id = p.opt(i + 1);
                    mm.member_epoch = p.i32(i);
                    mm.client_id = p.s(i + 1);
                    mm.client_host = p.s(i + 2);
                    mm.subscribed_topic_names = (0..p.n(i)).map(|j| p.topic(j)).collect();
                    mm.assignment.topic_partitions = (0..p.n(i + 2))
                        .map(|j| {
                            let mut tp = TopicPartitions::default();
                            tp.topic_id = p.uuid(j);
                            tp.topic_name = p.topic(j);
                            tp.partitions = (0..p.n(j)).map(|k| p.i32(k)).collect();
                            tp
                        })
                        .collect();
                    mm
                })
                .collect();
            d
        })
        .collect();
    m
}

pub(super) fn share_fetch_request(_v: i16, p: &Palette) -> ShareFetchRequest {
    use share_fetch_request::{AcknowledgementBatch, FetchPartition, FetchTopic, ForgottenTopic};
    let mut m = ShareFetchRequest::default();
    m.group_id = p.flag(0).then(|| p.group(0));
    m.member_id = p.opt(1);
    m.share_session_epoch = p.i32(0);
    m.max_wait_ms = p.i32(1);
    m.min_bytes = p.i32(2);
    m.max_bytes = p.i32(3);
    m.max_records = p.i32(0);
    m.batch_size = p.i32(1);
    m.topics = (0..p.n(0))
        .map(|t| {
            let mut topic = FetchTopic::default();
            topic.topic_id = p.uuid(t);
            topic.partitions = (0..p.n(t + 1))
                .map(|i| {
                    let mut part = FetchPartition::default();
                    part.partition_index = p.i32(i);
                    // PartitionMaxBytes is v0 only (KIP-1105 dropped it in v1).
                    part.acknowledgement_batches = (0..p.n(i))
                        .map(|j| {
                            let mut b = AcknowledgementBatch::default();
                            b.first_offset = p.i64(j);
                            b.last_offset = p.i64(j + 1);
                            b.acknowledge_types = (0..p.n(j)).map(|k| p.i8(k)).collect();
                            b
                        })
                        .collect();
                    part
                })
                .collect();
            topic
        })
        .collect();
    m.forgotten_topics_data = (0..p.n(1))
        .map(|t| {
            let mut f = ForgottenTopic::default();
            f.topic_id = p.uuid(t + 1);
            f.partitions = (0..p.n(t)).map(|i| p.i32(i)).collect();
            f
        })
        .collect();
    m
}

pub(super) fn share_fetch_response(_v: i16, p: &Palette) -> ShareFetchResponse {
    use share_fetch_response::{AcquiredRecords, NodeEndpoint, PartitionData, ShareFetchableTopicResponse};
    let mut m = ShareFetchResponse::default();
    m.throttle_time_ms = p.i32(0);
    m.error_code = p.i16(1);
    m.error_message = p.opt(0);
    m.acquisition_lock_timeout_ms = p.i32(2);
    m.responses = (0..p.n(0))
        .map(|t| {
            let mut topic = ShareFetchableTopicResponse::default();
            topic.topic_id = p.uuid(t);
            topic.partitions = (0..p.n(t + 1))
                .map(|i| {
                    let mut d = PartitionData::default();
                    d.partition_index = p.i32(i);
                    d.error_code = p.i16(i + 1);
                    d.error_message = p.opt(i);
                    d.acknowledge_error_code = p.i16(i + 2);
                    d.acknowledge_error_message = p.opt(i + 1);
                    d.current_leader.leader_id = p.i32(i + 3);
                    d.current_leader.leader_epoch = p.i32(i);
                    d.records = p.flag(i + 2).then(|| p.records());
                    d.acquired_records = (0..p.n(i))
                        .map(|j| {
                            AcquiredRecords::default()
                                .with_first_offset(p.i64(j))
                                .with_last_offset(p.i64(j + 1))
                                .with_delivery_count(p.i16(j))
                        })
                        .collect();
                    d
                })
                .collect();
            topic
        })
        .collect();
    m.node_endpoints = (0..p.n(1))
        .map(|i| {
            NodeEndpoint::default()
                .with_node_id(p.broker(i))
                .with_host(p.s(i))
                .with_port(p.i32(i + 1))
                .with_rack(p.opt(i + 2))
        })
        .collect();
    m
}

pub(super) fn share_acknowledge_request(_v: i16, p: &Palette) -> ShareAcknowledgeRequest {
    use share_acknowledge_request::{AcknowledgePartition, AcknowledgeTopic, AcknowledgementBatch};
    let mut m = ShareAcknowledgeRequest::default();
    m.group_id = p.flag(0).then(|| p.group(0));
    m.member_id = p.opt(1);
    m.share_session_epoch = p.i32(0);
    m.topics = (0..p.n(0))
        .map(|t| {
            let mut topic = AcknowledgeTopic::default();
            topic.topic_id = p.uuid(t);
            topic.partitions = (0..p.n(t + 1))
                .map(|i| {
                    let mut part = AcknowledgePartition::default();
                    part.partition_index = p.i32(i);
                    part.acknowledgement_batches = (0..p.n(i))
                        .map(|j| {
                            let mut b = AcknowledgementBatch::default();
                            b.first_offset = p.i64(j);
                            b.last_offset = p.i64(j + 1);
                            b.acknowledge_types = (0..p.n(j)).map(|k| p.i8(k)).collect();
                            b
                        })
                        .collect();
                    part
                })
                .collect();
            topic
        })
        .collect();
    m
}

pub(super) fn share_acknowledge_response(_v: i16, p: &Palette) -> ShareAcknowledgeResponse {
    use share_acknowledge_response::{NodeEndpoint, PartitionData, ShareAcknowledgeTopicResponse};
    let mut m = ShareAcknowledgeResponse::default();
    m.throttle_time_ms = p.i32(0);
    m.error_code = p.i16(1);
    m.error_message = p.opt(0);
    m.responses = (0..p.n(0))
        .map(|t| {
            let mut topic = ShareAcknowledgeTopicResponse::default();
            topic.topic_id = p.uuid(t);
            topic.partitions = (0..p.n(t + 1))
                .map(|i| {
                    let mut d = PartitionData::default();
                    d.partition_index = p.i32(i);
                    d.error_code = p.i16(i + 1);
                    d.error_message = p.opt(i);
                    d.current_leader.leader_id = p.i32(i + 2);
                    d.current_leader.leader_epoch = p.i32(i + 3);
                    d
                })
                .collect();
            topic
        })
        .collect();
    m.node_endpoints = (0..p.n(1))
        .map(|i| {
            NodeEndpoint::default()
                .with_node_id(p.broker(i))
                .with_host(p.s(i))
                .with_port(p.i32(i + 1))
                .with_rack(p.opt(i + 2))
        })
        .collect();
    m
}

pub(super) fn describe_share_group_offsets_request(_v: i16, p: &Palette) -> DescribeShareGroupOffsetsRequest {
    use describe_share_group_offsets_request::{
        DescribeShareGroupOffsetsRequestGroup as Group, DescribeShareGroupOffsetsRequestTopic as Topic,
    };
    let mut m = DescribeShareGroupOffsetsRequest::default();
    m.groups = (0..p.n(0))
        .map(|g| {
            let mut group = Group::default();
            group.group_id = p.group(g);
            group.topics = p.flag(g).then(|| {
                (0..p.n(g + 1))
                    .map(|t| {
                        let mut topic = Topic::default();
                        topic.topic_name = p.topic(t);
                        topic.partitions = (0..p.n(t)).map(|i| p.i32(i)).collect();
                        topic
                    })
                    .collect()
            });
            group
        })
        .collect();
    m
}

pub(super) fn describe_share_group_offsets_response(
    _v: i16,
    p: &Palette,
) -> DescribeShareGroupOffsetsResponse {
    use describe_share_group_offsets_response::{
        DescribeShareGroupOffsetsResponseGroup as Group, DescribeShareGroupOffsetsResponsePartition as Part,
        DescribeShareGroupOffsetsResponseTopic as Topic,
    };
    let mut m = DescribeShareGroupOffsetsResponse::default();
    m.throttle_time_ms = p.i32(0);
    m.groups = (0..p.n(0))
        .map(|g| {
            let mut group = Group::default();
            group.group_id = p.group(g);
            group.error_code = p.i16(g);
            group.error_message = p.opt(g);
            group.topics = (0..p.n(g + 1))
                .map(|t| {
                    let mut topic = Topic::default();
                    topic.topic_name = p.topic(t);
                    topic.topic_id = p.uuid(t);
                    topic.partitions = (0..p.n(t))
                        .map(|i| {
                            let mut part = Part::default();
                            part.partition_index = p.i32(i);
                            part.start_offset = p.i64(i);
                            part.leader_epoch = p.i32(i + 1);
                            part.error_code = p.i16(i + 2);
                            part.error_message = p.opt(i + 1);
                            part
                        })
                        .collect();
                    topic
                })
                .collect();
            group
        })
        .collect();
    m
}

pub(super) fn alter_share_group_offsets_request(_v: i16, p: &Palette) -> AlterShareGroupOffsetsRequest {
    use alter_share_group_offsets_request::{
        AlterShareGroupOffsetsRequestPartition as Part, AlterShareGroupOffsetsRequestTopic as Topic,
    };
    let mut m = AlterShareGroupOffsetsRequest::default();
    m.group_id = p.group(0);
    m.topics = (0..p.n(0))
        .map(|t| {
            let mut topic = Topic::default();
            topic.topic_name = p.topic(t);
            topic.partitions = (0..p.n(t + 1))
                .map(|i| {
                    Part::default()
                        .with_partition_index(p.i32(i))
                        .with_start_offset(p.i64(i))
                })
                .collect();
            topic
        })
        .collect();
    m
}

pub(super) fn alter_share_group_offsets_response(_v: i16, p: &Palette) -> AlterShareGroupOffsetsResponse {
    use alter_share_group_offsets_response::{
        AlterShareGroupOffsetsResponsePartition as Part, AlterShareGroupOffsetsResponseTopic as Topic,
    };
    let mut m = AlterShareGroupOffsetsResponse::default();
    m.throttle_time_ms = p.i32(0);
    m.error_code = p.i16(1);
    m.error_message = p.opt(0);
    m.responses = (0..p.n(0))
        .map(|t| {
            let mut topic = Topic::default();
            topic.topic_name = p.topic(t);
            topic.topic_id = p.uuid(t);
            topic.partitions = (0..p.n(t + 1))
                .map(|i| {
                    Part::default()
                        .with_partition_index(p.i32(i))
                        .with_error_code(p.i16(i + 1))
                        .with_error_message(p.opt(i))
                })
                .collect();
            topic
        })
        .collect();
    m
}

pub(super) fn delete_share_group_offsets_request(_v: i16, p: &Palette) -> DeleteShareGroupOffsetsRequest {
    use delete_share_group_offsets_request::DeleteShareGroupOffsetsRequestTopic as Topic;
    let mut m = DeleteShareGroupOffsetsRequest::default();
    m.group_id = p.group(0);
    m.topics = (0..p.n(0))
        .map(|t| Topic::default().with_topic_name(p.topic(t)))
        .collect();
    m
}

pub(super) fn delete_share_group_offsets_response(_v: i16, p: &Palette) -> DeleteShareGroupOffsetsResponse {
    use delete_share_group_offsets_response::DeleteShareGroupOffsetsResponseTopic as Topic;
    let mut m = DeleteShareGroupOffsetsResponse::default();
    m.throttle_time_ms = p.i32(0);
    m.error_code = p.i16(1);
    m.error_message = p.opt(0);
    m.responses = (0..p.n(0))
        .map(|t| {
            Topic::default()
                .with_topic_name(p.topic(t))
                .with_topic_id(p.uuid(t))
                .with_error_code(p.i16(t))
                .with_error_message(p.opt(t + 1))
        })
        .collect();
    m
}
