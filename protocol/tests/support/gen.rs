//! Messages for every supported API at a given version, filled from a
//! proptest-generated `Palette`: names, ids, arrays and record bytes vary, and a
//! field is set only at the versions whose schema carries it (a field absent at
//! a version must keep its default or the encoder refuses it).

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use proptest::prelude::*;
use uuid::Uuid;
use weir_protocol::builder::BatchBuilder;
use weir_protocol::record_batch::Compression;

#[path = "gen_share.rs"]
mod share;
use share::*;

/// The generated values a message is built from.
#[derive(Debug, Clone)]
pub struct Palette {
    names: Vec<String>,
    ints: Vec<i32>,
    longs: Vec<i64>,
    blob: Vec<u8>,
    flags: u8,
    width: usize,
}

pub fn palette() -> impl Strategy<Value = Palette> {
    (
        proptest::collection::vec("[a-zA-Z0-9._-]{0,24}", 1..4),
        proptest::collection::vec(any::<i32>(), 4),
        proptest::collection::vec(any::<i64>(), 4),
        proptest::collection::vec(any::<u8>(), 0..96),
        any::<u8>(),
        1usize..4,
    )
        .prop_map(|(names, ints, longs, blob, flags, width)| Palette {
            names,
            ints,
            longs,
            blob,
            flags,
            width,
        })
}

impl Palette {
    fn s(&self, i: usize) -> StrBytes {
        StrBytes::from_string(self.names[i % self.names.len()].clone())
    }
    fn topic(&self, i: usize) -> TopicName {
        TopicName(self.s(i))
    }
    fn group(&self, i: usize) -> GroupId {
        GroupId(self.s(i + 1))
    }
    fn i32(&self, i: usize) -> i32 {
        self.ints[i % self.ints.len()]
    }
    fn i64(&self, i: usize) -> i64 {
        self.longs[i % self.longs.len()]
    }
    fn i16(&self, i: usize) -> i16 {
        self.i32(i) as i16
    }
    fn i8(&self, i: usize) -> i8 {
        self.i32(i) as i8
    }
    fn broker(&self, i: usize) -> BrokerId {
        BrokerId(self.i32(i))
    }
    fn flag(&self, i: usize) -> bool {
        self.flags & (1 << (i % 8)) != 0
    }
    fn opt(&self, i: usize) -> Option<StrBytes> {
        self.flag(i).then(|| self.s(i))
    }
    fn bytes(&self, i: usize) -> Bytes {
        Bytes::copy_from_slice(&self.blob[(i % 7).min(self.blob.len())..])
    }
    fn uuid(&self, i: usize) -> Uuid {
        Uuid::from_u64_pair(self.i64(i) as u64, self.i64(i + 1) as u64)
    }
    /// How many elements array number `i` gets (0..=3).
    fn n(&self, i: usize) -> usize {
        (self.width + i) % 4
    }
    /// A real RecordBatch whose value is the blob: what Produce/Fetch carry.
    fn records(&self) -> Bytes {
        let mut builder = BatchBuilder::new(Compression::None);
        builder.push(
            self.i64(0).rem_euclid(1 << 41),
            Some(b"k"),
            Some(&self.blob),
            &[(b"h", None)],
        );
        let mut out = BytesMut::new();
        builder.finish_into(&mut out).expect("one record");
        out.freeze()
    }
}

/// A message type that can be filled from a palette at a version.
pub trait Generate: Sized {
    fn generate(v: i16, p: &Palette) -> Self;
}

macro_rules! generators {
    ($($t:ty => $f:ident),* $(,)?) => {
        $(impl Generate for $t {
            fn generate(v: i16, p: &Palette) -> Self {
                $f(v, p)
            }
        })*
    };
}

generators! {
    ProduceRequest => produce_request, ProduceResponse => produce_response,
    FetchRequest => fetch_request, FetchResponse => fetch_response,
    ListOffsetsRequest => list_offsets_request, ListOffsetsResponse => list_offsets_response,
    MetadataRequest => metadata_request, MetadataResponse => metadata_response,
    OffsetCommitRequest => offset_commit_request, OffsetCommitResponse => offset_commit_response,
    OffsetFetchRequest => offset_fetch_request, OffsetFetchResponse => offset_fetch_response,
    FindCoordinatorRequest => find_coordinator_request, FindCoordinatorResponse => find_coordinator_response,
    JoinGroupRequest => join_group_request, JoinGroupResponse => join_group_response,
    HeartbeatRequest => heartbeat_request, HeartbeatResponse => heartbeat_response,
    LeaveGroupRequest => leave_group_request, LeaveGroupResponse => leave_group_response,
    SyncGroupRequest => sync_group_request, SyncGroupResponse => sync_group_response,
    DescribeGroupsRequest => describe_groups_request, DescribeGroupsResponse => describe_groups_response,
    ListGroupsRequest => list_groups_request, ListGroupsResponse => list_groups_response,
    ApiVersionsRequest => api_versions_request, ApiVersionsResponse => api_versions_response,
    CreateTopicsRequest => create_topics_request, CreateTopicsResponse => create_topics_response,
    DeleteTopicsRequest => delete_topics_request, DeleteTopicsResponse => delete_topics_response,
    DescribeConfigsRequest => describe_configs_request, DescribeConfigsResponse => describe_configs_response,
    CreatePartitionsRequest => create_partitions_request, CreatePartitionsResponse => create_partitions_response,
    DeleteRecordsRequest => delete_records_request, DeleteRecordsResponse => delete_records_response,
    AlterConfigsRequest => alter_configs_request, AlterConfigsResponse => alter_configs_response,
    IncrementalAlterConfigsRequest => incremental_alter_configs_request,
    IncrementalAlterConfigsResponse => incremental_alter_configs_response,
    OffsetDeleteRequest => offset_delete_request, OffsetDeleteResponse => offset_delete_response,
    OffsetForLeaderEpochRequest => offset_for_leader_epoch_request,
    OffsetForLeaderEpochResponse => offset_for_leader_epoch_response,
    InitProducerIdRequest => init_producer_id_request, InitProducerIdResponse => init_producer_id_response,
    DescribeProducersRequest => describe_producers_request, DescribeProducersResponse => describe_producers_response,
    AddPartitionsToTxnRequest => add_partitions_to_txn_request, AddPartitionsToTxnResponse => add_partitions_to_txn_response,
    AddOffsetsToTxnRequest => add_offsets_to_txn_request, AddOffsetsToTxnResponse => add_offsets_to_txn_response,
    EndTxnRequest => end_txn_request, EndTxnResponse => end_txn_response,
    TxnOffsetCommitRequest => txn_offset_commit_request, TxnOffsetCommitResponse => txn_offset_commit_response,
    ListTransactionsRequest => list_transactions_request, ListTransactionsResponse => list_transactions_response,
    DescribeTransactionsRequest => describe_transactions_request, DescribeTransactionsResponse => describe_transactions_response,
    DeleteGroupsRequest => delete_groups_request, DeleteGroupsResponse => delete_groups_response,
    DescribeClusterRequest => describe_cluster_request, DescribeClusterResponse => describe_cluster_response,
    ElectLeadersRequest => elect_leaders_request, ElectLeadersResponse => elect_leaders_response,
    DescribeLogDirsRequest => describe_log_dirs_request, DescribeLogDirsResponse => describe_log_dirs_response,
    ConsumerGroupHeartbeatRequest => consumer_group_heartbeat_request,
    ConsumerGroupHeartbeatResponse => consumer_group_heartbeat_response,
    ConsumerGroupDescribeRequest => consumer_group_describe_request,
    ConsumerGroupDescribeResponse => consumer_group_describe_response,
    DescribeTopicPartitionsRequest => describe_topic_partitions_request,
    DescribeTopicPartitionsResponse => describe_topic_partitions_response,
    SaslHandshakeRequest => sasl_handshake_request, SaslHandshakeResponse => sasl_handshake_response,
    SaslAuthenticateRequest => sasl_authenticate_request, SaslAuthenticateResponse => sasl_authenticate_response,
    DescribeUserScramCredentialsRequest => describe_user_scram_credentials_request,
    DescribeUserScramCredentialsResponse => describe_user_scram_credentials_response,
    AlterUserScramCredentialsRequest => alter_user_scram_credentials_request,
    AlterUserScramCredentialsResponse => alter_user_scram_credentials_response,
    DescribeClientQuotasRequest => describe_client_quotas_request,
    DescribeClientQuotasResponse => describe_client_quotas_response,
    AlterClientQuotasRequest => alter_client_quotas_request,
    AlterClientQuotasResponse => alter_client_quotas_response,
    ShareGroupHeartbeatRequest => share_group_heartbeat_request,
    ShareGroupHeartbeatResponse => share_group_heartbeat_response,
    ShareGroupDescribeRequest => share_group_describe_request,
    ShareGroupDescribeResponse => share_group_describe_response,
    ShareFetchRequest => share_fetch_request, ShareFetchResponse => share_fetch_response,
    ShareAcknowledgeRequest => share_acknowledge_request, ShareAcknowledgeResponse => share_acknowledge_response,
    DescribeShareGroupOffsetsRequest => describe_share_group_offsets_request,
    DescribeShareGroupOffsetsResponse => describe_share_group_offsets_response,
    AlterShareGroupOffsetsRequest => alter_share_group_offsets_request,
    AlterShareGroupOffsetsResponse => alter_share_group_offsets_response,
    DeleteShareGroupOffsetsRequest => delete_share_group_offsets_request,
    DeleteShareGroupOffsetsResponse => delete_share_group_offsets_response,
    DescribeAclsRequest => describe_acls_request, DescribeAclsResponse => describe_acls_response,
    CreateAclsRequest => create_acls_request, CreateAclsResponse => create_acls_response,
    DeleteAclsRequest => delete_acls_request, DeleteAclsResponse => delete_acls_response,
}

fn produce_request(_v: i16, p: &Palette) -> ProduceRequest {
    use produce_request::{PartitionProduceData, TopicProduceData};
    let mut m = ProduceRequest::default();
    m.transactional_id = p.flag(0).then(|| TransactionalId(p.s(2)));
    m.acks = p.i16(0);
    m.timeout_ms = p.i32(1);
    m.topic_data = (0..p.n(0))
        .map(|t| {
            let mut topic = TopicProduceData::default();
            topic.name = p.topic(t);
            topic.partition_data = (0..p.n(t + 1))
                .map(|i| {
                    let mut part = PartitionProduceData::default();
                    part.index = p.i32(i);
                    part.records = Some(p.records());
                    part
                })
                .collect();
            topic
        })
        .collect();
    m
}

fn produce_response(v: i16, p: &Palette) -> ProduceResponse {
    use produce_response::*;
    let mut m = ProduceResponse::default();
    m.throttle_time_ms = p.i32(0);
    m.responses = (0..p.n(0))
        .map(|t| {
            let mut topic = TopicProduceResponse::default();
            topic.name = p.topic(t);
            topic.partition_responses = (0..p.n(t + 1))
                .map(|i| {
                    let mut r = PartitionProduceResponse::default();
                    r.index = p.i32(i);
                    r.error_code = p.i16(i + 1);
                    r.base_offset = p.i64(i);
                    r.log_append_time_ms = p.i64(i + 1);
                    if v >= 5 {
                        r.log_start_offset = p.i64(i + 2);
                    }
                    if v >= 8 {
                        r.error_message = p.opt(i);
                        let mut e = BatchIndexAndErrorMessage::default();
                        e.batch_index = p.i32(2);
                        e.batch_index_error_message = p.opt(3);
                        r.record_errors = vec![e; p.n(i)];
                    }
                    if v >= 10 {
                        r.current_leader.leader_id = p.broker(3);
                        r.current_leader.leader_epoch = p.i32(2);
                    }
                    r
                })
                .collect();
            topic
        })
        .collect();
    if v >= 10 {
        m.node_endpoints = (0..p.n(2)).map(|i| node_endpoint_produce(p, i)).collect();
    }
    m
}

fn node_endpoint_produce(p: &Palette, i: usize) -> produce_response::NodeEndpoint {
    let mut e = produce_response::NodeEndpoint::default();
    e.node_id = p.broker(i);
    e.host = p.s(i);
    e.port = p.i32(i + 1);
    e.rack = p.opt(i + 1);
    e
}

fn fetch_request(v: i16, p: &Palette) -> FetchRequest {
    use fetch_request::*;
    let mut m = FetchRequest::default();
    if v >= 12 {
        m.cluster_id = p.opt(0);
    }
    if v <= 14 {
        m.replica_id = p.broker(0);
    } else {
        m.replica_state.replica_id = p.broker(0);
        m.replica_state.replica_epoch = p.i64(0);
    }
    m.max_wait_ms = p.i32(1);
    m.min_bytes = p.i32(2);
    m.max_bytes = p.i32(3);
    m.isolation_level = p.i8(0);
    if v >= 7 {
        m.session_id = p.i32(0);
        m.session_epoch = p.i32(1);
        m.forgotten_topics_data = (0..p.n(1))
            .map(|t| {
                let mut f = ForgottenTopic::default();
                if v <= 12 {
                    f.topic = p.topic(t);
                } else {
                    f.topic_id = p.uuid(t);
                }
                f.partitions = (0..p.n(t)).map(|i| p.i32(i)).collect();
                f
            })
            .collect();
    }
    if v >= 11 {
        m.rack_id = p.s(1);
    }
    m.topics = (0..p.n(0))
        .map(|t| {
            let mut topic = FetchTopic::default();
            if v <= 12 {
                topic.topic = p.topic(t);
            } else {
                topic.topic_id = p.uuid(t);
            }
            topic.partitions = (0..p.n(t + 2)).map(|i| fetch_partition(v, p, i)).collect();
            topic
        })
        .collect();
    m
}

fn fetch_partition(v: i16, p: &Palette, i: usize) -> fetch_request::FetchPartition {
    let mut part = fetch_request::FetchPartition::default();
    part.partition = p.i32(i);
    part.fetch_offset = p.i64(i);
    part.partition_max_bytes = p.i32(i + 1);
    if v >= 5 {
        part.log_start_offset = p.i64(i + 1);
    }
    if v >= 9 {
        part.current_leader_epoch = p.i32(i + 2);
    }
    if v >= 12 {
        part.last_fetched_epoch = p.i32(i + 3);
    }
    part
}

fn fetch_response(v: i16, p: &Palette) -> FetchResponse {
    use fetch_response::*;
    let mut m = FetchResponse::default();
    m.throttle_time_ms = p.i32(0);
    if v >= 7 {
        m.error_code = p.i16(1);
        m.session_id = p.i32(2);
    }
    m.responses = (0..p.n(0))
        .map(|t| {
            let mut topic = FetchableTopicResponse::default();
            if v <= 12 {
                topic.topic = p.topic(t);
            } else {
                topic.topic_id = p.uuid(t);
            }
            topic.partitions = (0..p.n(t + 1)).map(|i| fetch_partition_data(v, p, i)).collect();
            topic
        })
        .collect();
    if v >= 16 {
        m.node_endpoints = (0..p.n(3))
            .map(|i| {
                let mut e = NodeEndpoint::default();
                e.node_id = p.broker(i);
                e.host = p.s(i);
                e.port = p.i32(i);
                e.rack = p.opt(i);
                e
            })
            .collect();
    }
    m
}

fn fetch_partition_data(v: i16, p: &Palette, i: usize) -> fetch_response::PartitionData {
    use fetch_response::*;
    let mut d = PartitionData::default();
    d.partition_index = p.i32(i);
    d.error_code = p.i16(i + 1);
    d.high_watermark = p.i64(i);
    d.last_stable_offset = p.i64(i + 1);
    if v >= 5 {
        d.log_start_offset = p.i64(i + 2);
    }
    if v >= 11 {
        d.preferred_read_replica = p.broker(i + 2);
    }
    if v >= 12 {
        d.diverging_epoch.epoch = p.i32(1);
        d.diverging_epoch.end_offset = p.i64(3);
        d.current_leader.leader_id = p.broker(0);
        d.current_leader.leader_epoch = p.i32(3);
        d.snapshot_id.end_offset = p.i64(2);
        d.snapshot_id.epoch = p.i32(2);
    }
    d.aborted_transactions = p.flag(i).then(|| {
        let mut a = AbortedTransaction::default();
        a.producer_id = ProducerId(p.i64(0));
        a.first_offset = p.i64(1);
        vec![a; p.n(i)]
    });
    d.records = Some(p.records());
    d
}

fn list_offsets_request(v: i16, p: &Palette) -> ListOffsetsRequest {
    use list_offsets_request::*;
    let mut m = ListOffsetsRequest::default();
    m.replica_id = p.broker(0);
    if v >= 2 {
        m.isolation_level = p.i8(1);
    }
    m.topics = (0..p.n(0))
        .map(|t| {
            let mut topic = ListOffsetsTopic::default();
            topic.name = p.topic(t);
            topic.partitions = (0..p.n(t + 1))
                .map(|i| {
                    let mut part = ListOffsetsPartition::default();
                    part.partition_index = p.i32(i);
                    part.timestamp = p.i64(i);
                    if v >= 4 {
                        part.current_leader_epoch = p.i32(i + 1);
                    }
                    part
                })
                .collect();
            topic
        })
        .collect();
    m
}

fn list_offsets_response(v: i16, p: &Palette) -> ListOffsetsResponse {
    use list_offsets_response::*;
    let mut m = ListOffsetsResponse::default();
    if v >= 2 {
        m.throttle_time_ms = p.i32(0);
    }
    m.topics = (0..p.n(0))
        .map(|t| {
            let mut topic = ListOffsetsTopicResponse::default();
            topic.name = p.topic(t);
            topic.partitions = (0..p.n(t + 1))
                .map(|i| {
                    let mut r = ListOffsetsPartitionResponse::default();
                    r.partition_index = p.i32(i);
                    r.error_code = p.i16(i);
                    r.timestamp = p.i64(i);
                    r.offset = p.i64(i + 1);
                    if v >= 4 {
                        r.leader_epoch = p.i32(i + 1);
                    }
                    r
                })
                .collect();
            topic
        })
        .collect();
    m
}

fn metadata_request(v: i16, p: &Palette) -> MetadataRequest {
    use metadata_request::MetadataRequestTopic;
    let mut m = MetadataRequest::default();
    let topics = (0..p.n(0))
        .map(|t| {
            let mut topic = MetadataRequestTopic::default();
            topic.name = Some(p.topic(t));
            if v >= 10 {
                topic.topic_id = p.uuid(t);
            }
            topic
        })
        .collect();
    // v0 has no null ("all topics" is the empty array there).
    m.topics = (v == 0 || p.flag(0)).then_some(topics);
    if v >= 4 {
        m.allow_auto_topic_creation = p.flag(1);
    }
    if (8..=10).contains(&v) {
        m.include_cluster_authorized_operations = p.flag(2);
    }
    if v >= 8 {
        m.include_topic_authorized_operations = p.flag(3);
    }
    m
}

fn metadata_response(v: i16, p: &Palette) -> MetadataResponse {
    use metadata_response::*;
    let mut m = MetadataResponse::default();
    if v >= 3 {
        m.throttle_time_ms = p.i32(0);
    }
    if v >= 2 {
        m.cluster_id = p.opt(0);
    }
    if v >= 1 {
        m.controller_id = p.broker(1);
    }
    if (8..=10).contains(&v) {
        m.cluster_authorized_operations = p.i32(2);
    }
    m.brokers = (0..p.n(0))
        .map(|i| {
            let mut b = MetadataResponseBroker::default();
            b.node_id = p.broker(i);
            b.host = p.s(i);
            b.port = p.i32(i + 1);
            if v >= 1 {
                b.rack = p.opt(i);
            }
            b
        })
        .collect();
    m.topics = (0..p.n(1)).map(|t| metadata_topic(v, p, t)).collect();
    m
}

fn metadata_topic(v: i16, p: &Palette, t: usize) -> metadata_response::MetadataResponseTopic {
    use metadata_response::*;
    let mut topic = MetadataResponseTopic::default();
    topic.error_code = p.i16(t);
    topic.name = Some(p.topic(t));
    if v >= 10 {
        topic.topic_id = p.uuid(t);
    }
    if v >= 1 {
        topic.is_internal = p.flag(t);
    }
    if v >= 8 {
        topic.topic_authorized_operations = p.i32(t + 1);
    }
    topic.partitions = (0..p.n(t + 2))
        .map(|i| {
            let mut part = MetadataResponsePartition::default();
            part.error_code = p.i16(i);
            part.partition_index = p.i32(i);
            part.leader_id = p.broker(i + 1);
            if v >= 7 {
                part.leader_epoch = p.i32(i + 2);
            }
            part.replica_nodes = (0..p.n(i)).map(|r| p.broker(r)).collect();
            part.isr_nodes = (0..p.n(i + 1)).map(|r| p.broker(r)).collect();
            if v >= 5 {
                part.offline_replicas = (0..p.n(i + 2)).map(|r| p.broker(r)).collect();
            }
            part
        })
        .collect();
    topic
}

fn offset_commit_request(v: i16, p: &Palette) -> OffsetCommitRequest {
    use offset_commit_request::*;
    let mut m = OffsetCommitRequest::default();
    m.group_id = p.group(0);
    m.generation_id_or_member_epoch = p.i32(0);
    m.member_id = p.s(1);
    if v >= 7 {
        m.group_instance_id = p.opt(2);
    }
    if v <= 4 {
        m.retention_time_ms = p.i64(0);
    }
    m.topics = (0..p.n(0))
        .map(|t| {
            let mut topic = OffsetCommitRequestTopic::default();
            topic.name = p.topic(t);
            topic.partitions = (0..p.n(t + 1))
                .map(|i| {
                    let mut part = OffsetCommitRequestPartition::default();
                    part.partition_index = p.i32(i);
                    part.committed_offset = p.i64(i);
                    if v >= 6 {
                        part.committed_leader_epoch = p.i32(i + 1);
                    }
                    part.committed_metadata = p.opt(i);
                    part
                })
                .collect();
            topic
        })
        .collect();
    m
}

fn offset_commit_response(v: i16, p: &Palette) -> OffsetCommitResponse {
    use offset_commit_response::*;
    let mut m = OffsetCommitResponse::default();
    if v >= 3 {
        m.throttle_time_ms = p.i32(0);
    }
    m.topics = (0..p.n(0))
        .map(|t| {
            let mut topic = OffsetCommitResponseTopic::default();
            topic.name = p.topic(t);
            topic.partitions = (0..p.n(t + 1))
                .map(|i| {
                    let mut r = OffsetCommitResponsePartition::default();
                    r.partition_index = p.i32(i);
                    r.error_code = p.i16(i + 1);
                    r
                })
                .collect();
            topic
        })
        .collect();
    m
}

fn offset_fetch_request(v: i16, p: &Palette) -> OffsetFetchRequest {
    use offset_fetch_request::*;
    let mut m = OffsetFetchRequest::default();
    if v >= 7 {
        m.require_stable = p.flag(0);
    }
    if v <= 7 {
        m.group_id = p.group(0);
        let topics = (0..p.n(0))
            .map(|t| {
                let mut topic = OffsetFetchRequestTopic::default();
                topic.name = p.topic(t);
                topic.partition_indexes = (0..p.n(t)).map(|i| p.i32(i)).collect();
                topic
            })
            .collect();
        // Null ("all partitions") exists from v2.
        m.topics = (v < 2 || p.flag(1)).then_some(topics);
        return m;
    }
    m.groups = (0..p.n(0))
        .map(|g| {
            let mut group = OffsetFetchRequestGroup::default();
            group.group_id = p.group(g);
            if v >= 9 {
                group.member_id = p.opt(g);
                group.member_epoch = p.i32(g);
            }
            group.topics = p.flag(g + 1).then(|| {
                (0..p.n(g))
                    .map(|t| {
                        let mut topic = OffsetFetchRequestTopics::default();
                        topic.name = p.topic(t);
                        topic.partition_indexes = (0..p.n(t)).map(|i| p.i32(i)).collect();
                        topic
                    })
                    .collect()
            });
            group
        })
        .collect();
    m
}

fn offset_fetch_response(v: i16, p: &Palette) -> OffsetFetchResponse {
    use offset_fetch_response::*;
    let mut m = OffsetFetchResponse::default();
    if v >= 3 {
        m.throttle_time_ms = p.i32(0);
    }
    if v <= 7 {
        if v >= 2 {
            m.error_code = p.i16(1);
        }
        m.topics = (0..p.n(0))
            .map(|t| {
                let mut topic = OffsetFetchResponseTopic::default();
                topic.name = p.topic(t);
                topic.partitions = (0..p.n(t + 1))
                    .map(|i| {
                        let mut r = OffsetFetchResponsePartition::default();
                        r.partition_index = p.i32(i);
                        r.committed_offset = p.i64(i);
                        if v >= 5 {
                            r.committed_leader_epoch = p.i32(i + 1);
                        }
                        r.metadata = p.opt(i);
                        r.error_code = p.i16(i + 2);
                        r
                    })
                    .collect();
                topic
            })
            .collect();
        return m;
    }
    m.groups = (0..p.n(0))
        .map(|g| {
            let mut group = OffsetFetchResponseGroup::default();
            group.group_id = p.group(g);
            group.error_code = p.i16(g);
            group.topics = (0..p.n(g + 1))
                .map(|t| {
                    let mut topic = OffsetFetchResponseTopics::default();
                    topic.name = p.topic(t);
                    topic.partitions = (0..p.n(t))
                        .map(|i| {
                            let mut r = OffsetFetchResponsePartitions::default();
                            r.partition_index = p.i32(i);
                            r.committed_offset = p.i64(i);
                            r.committed_leader_epoch = p.i32(i + 1);
                            r.metadata = p.opt(i);
                            r.error_code = p.i16(i + 2);
                            r
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

fn find_coordinator_request(v: i16, p: &Palette) -> FindCoordinatorRequest {
    let mut m = FindCoordinatorRequest::default();
    if v <= 3 {
        m.key = p.s(0);
    } else {
        m.coordinator_keys = (0..p.n(0)).map(|i| p.s(i)).collect();
    }
    if v >= 1 {
        m.key_type = p.i8(0);
    }
    m
}

fn find_coordinator_response(v: i16, p: &Palette) -> FindCoordinatorResponse {
    let mut m = FindCoordinatorResponse::default();
    if v >= 1 {
        m.throttle_time_ms = p.i32(0);
    }
    if v <= 3 {
        m.error_code = p.i16(1);
        m.node_id = p.broker(2);
        m.host = p.s(0);
        m.port = p.i32(3);
        if v >= 1 {
            m.error_message = p.opt(1);
        }
        return m;
    }
    m.coordinators = (0..p.n(0))
        .map(|i| {
            let mut c = find_coordinator_response::Coordinator::default();
            c.key = p.s(i);
            c.node_id = p.broker(i);
            c.host = p.s(i + 1);
            c.port = p.i32(i + 1);
            c.error_code = p.i16(i + 2);
            c.error_message = p.opt(i);
            c
        })
        .collect();
    m
}

fn join_group_request(v: i16, p: &Palette) -> JoinGroupRequest {
    let mut m = JoinGroupRequest::default();
    m.group_id = p.group(0);
    m.session_timeout_ms = p.i32(0);
    if v >= 1 {
        m.rebalance_timeout_ms = p.i32(1);
    }
    m.member_id = p.s(1);
    if v >= 5 {
        m.group_instance_id = p.opt(2);
    }
    if v >= 8 {
        m.reason = p.opt(3);
    }
    m.protocol_type = p.s(2);
    m.protocols = (0..p.n(0))
        .map(|i| {
            let mut proto = join_group_request::JoinGroupRequestProtocol::default();
            proto.name = p.s(i);
            proto.metadata = p.bytes(i);
            proto
        })
        .collect();
    m
}

fn join_group_response(v: i16, p: &Palette) -> JoinGroupResponse {
    let mut m = JoinGroupResponse::default();
    if v >= 2 {
        m.throttle_time_ms = p.i32(0);
    }
    m.error_code = p.i16(1);
    m.generation_id = p.i32(2);
    if v >= 7 {
        m.protocol_type = p.opt(0);
        m.protocol_name = p.opt(1);
    } else {
        m.protocol_name = Some(p.s(1));
    }
    if v >= 9 {
        m.skip_assignment = p.flag(2);
    }
    m.leader = p.s(2);
    m.member_id = p.s(0);
    m.members = (0..p.n(0))
        .map(|i| {
            let mut member = join_group_response::JoinGroupResponseMember::default();
            member.member_id = p.s(i);
            if v >= 5 {
                member.group_instance_id = p.opt(i);
            }
            member.metadata = p.bytes(i);
            member
        })
        .collect();
    m
}

fn heartbeat_request(v: i16, p: &Palette) -> HeartbeatRequest {
    let mut m = HeartbeatRequest::default();
    m.group_id = p.group(0);
    m.generation_id = p.i32(0);
    m.member_id = p.s(1);
    if v >= 3 {
        m.group_instance_id = p.opt(0);
    }
    m
}

fn heartbeat_response(v: i16, p: &Palette) -> HeartbeatResponse {
    let mut m = HeartbeatResponse::default();
    if v >= 1 {
        m.throttle_time_ms = p.i32(0);
    }
    m.error_code = p.i16(1);
    m
}

fn leave_group_request(v: i16, p: &Palette) -> LeaveGroupRequest {
    let mut m = LeaveGroupRequest::default();
    m.group_id = p.group(0);
    if v <= 2 {
        m.member_id = p.s(1);
        return m;
    }
    m.members = (0..p.n(0))
        .map(|i| {
            let mut member = leave_group_request::MemberIdentity::default();
            member.member_id = p.s(i);
            member.group_instance_id = p.opt(i);
            if v >= 5 {
                member.reason = p.opt(i + 1);
            }
            member
        })
        .collect();
    m
}

fn leave_group_response(v: i16, p: &Palette) -> LeaveGroupResponse {
    let mut m = LeaveGroupResponse::default();
    if v >= 1 {
        m.throttle_time_ms = p.i32(0);
    }
    m.error_code = p.i16(1);
    if v >= 3 {
        m.members = (0..p.n(0))
            .map(|i| {
                let mut member = leave_group_response::MemberResponse::default();
                member.member_id = p.s(i);
                member.group_instance_id = p.opt(i);
                member.error_code = p.i16(i);
                member
            })
            .collect();
    }
    m
}

fn sync_group_request(v: i16, p: &Palette) -> SyncGroupRequest {
    let mut m = SyncGroupRequest::default();
    m.group_id = p.group(0);
    m.generation_id = p.i32(0);
    m.member_id = p.s(1);
    if v >= 3 {
        m.group_instance_id = p.opt(0);
    }
    if v >= 5 {
        m.protocol_type = p.opt(1);
        m.protocol_name = p.opt(2);
    }
    m.assignments = (0..p.n(0))
        .map(|i| {
            let mut a = sync_group_request::SyncGroupRequestAssignment::default();
            a.member_id = p.s(i);
            a.assignment = p.bytes(i);
            a
        })
        .collect();
    m
}

fn sync_group_response(v: i16, p: &Palette) -> SyncGroupResponse {
    let mut m = SyncGroupResponse::default();
    if v >= 1 {
        m.throttle_time_ms = p.i32(0);
    }
    m.error_code = p.i16(1);
    if v >= 5 {
        m.protocol_type = p.opt(1);
        m.protocol_name = p.opt(2);
    }
    m.assignment = p.bytes(0);
    m
}

fn describe_groups_request(v: i16, p: &Palette) -> DescribeGroupsRequest {
    let mut m = DescribeGroupsRequest::default();
    m.groups = (0..p.n(0)).map(|i| p.group(i)).collect();
    if v >= 3 {
        m.include_authorized_operations = p.flag(0);
    }
    m
}

fn describe_groups_response(v: i16, p: &Palette) -> DescribeGroupsResponse {
    use describe_groups_response::*;
    let mut m = DescribeGroupsResponse::default();
    if v >= 1 {
        m.throttle_time_ms = p.i32(0);
    }
    m.groups = (0..p.n(0))
        .map(|g| {
            let mut group = DescribedGroup::default();
            group.error_code = p.i16(g);
            group.group_id = p.group(g);
            group.group_state = p.s(g);
            group.protocol_type = p.s(g + 1);
            group.protocol_data = p.s(g + 2);
            if v >= 3 {
                group.authorized_operations = p.i32(g);
            }
            group.members = (0..p.n(g + 1))
                .map(|i| {
                    let mut member = DescribedGroupMember::default();
                    member.member_id = p.s(i);
                    if v >= 4 {
                        member.group_instance_id = p.opt(i);
                    }
                    member.client_id = p.s(i + 1);
                    member.client_host = p.s(i + 2);
                    member.member_metadata = p.bytes(i);
                    member.member_assignment = p.bytes(i + 1);
                    member
                })
                .collect();
            group
        })
        .collect();
    m
}

fn list_groups_request(v: i16, p: &Palette) -> ListGroupsRequest {
    let mut m = ListGroupsRequest::default();
    if v >= 4 {
        m.states_filter = (0..p.n(0)).map(|i| p.s(i)).collect();
    }
    if v >= 5 {
        m.types_filter = (0..p.n(1)).map(|i| p.s(i)).collect();
    }
    m
}

fn list_groups_response(v: i16, p: &Palette) -> ListGroupsResponse {
    let mut m = ListGroupsResponse::default();
    if v >= 1 {
        m.throttle_time_ms = p.i32(0);
    }
    m.error_code = p.i16(1);
    m.groups = (0..p.n(0))
        .map(|i| {
            let mut g = list_groups_response::ListedGroup::default();
            g.group_id = p.group(i);
            g.protocol_type = p.s(i);
            if v >= 4 {
                g.group_state = p.s(i + 1);
            }
            if v >= 5 {
                g.group_type = p.s(i + 2);
            }
            g
        })
        .collect();
    m
}

fn api_versions_request(v: i16, p: &Palette) -> ApiVersionsRequest {
    let mut m = ApiVersionsRequest::default();
    if v >= 3 {
        m.client_software_name = p.s(0);
        m.client_software_version = p.s(1);
    }
    m
}

fn api_versions_response(v: i16, p: &Palette) -> ApiVersionsResponse {
    use api_versions_response::*;
    let mut m = ApiVersionsResponse::default();
    m.error_code = p.i16(0);
    if v >= 1 {
        m.throttle_time_ms = p.i32(1);
    }
    m.api_keys = (0..p.n(0))
        .map(|i| {
            let mut a = ApiVersion::default();
            a.api_key = p.i16(i);
            a.min_version = p.i16(i + 1);
            a.max_version = p.i16(i + 2);
            a
        })
        .collect();
    if v >= 3 {
        m.finalized_features_epoch = p.i64(0);
        m.zk_migration_ready = p.flag(0);
        m.supported_features = (0..p.n(1))
            .map(|i| {
                let mut f = SupportedFeatureKey::default();
                f.name = p.s(i);
                f.min_version = p.i16(i);
                f.max_version = p.i16(i + 1);
                f
            })
            .collect();
        m.finalized_features = (0..p.n(2))
            .map(|i| {
                let mut f = FinalizedFeatureKey::default();
                f.name = p.s(i);
                f.min_version_level = p.i16(i);
                f.max_version_level = p.i16(i + 1);
                f
            })
            .collect();
    }
    m
}

fn create_topics_request(_v: i16, p: &Palette) -> CreateTopicsRequest {
    use create_topics_request::*;
    let mut m = CreateTopicsRequest::default();
    m.timeout_ms = p.i32(0);
    m.validate_only = p.flag(0);
    m.topics = (0..p.n(0))
        .map(|t| {
            let mut topic = CreatableTopic::default();
            topic.name = p.topic(t);
            topic.num_partitions = p.i32(t);
            topic.replication_factor = p.i16(t + 1);
            topic.assignments = (0..p.n(t))
                .map(|i| {
                    let mut a = CreatableReplicaAssignment::default();
                    a.partition_index = p.i32(i);
                    a.broker_ids = (0..p.n(i)).map(|b| p.broker(b)).collect();
                    a
                })
                .collect();
            topic.configs = (0..p.n(t + 1))
                .map(|i| {
                    let mut c = CreatableTopicConfig::default();
                    c.name = p.s(i);
                    c.value = p.opt(i);
                    c
                })
                .collect();
            topic
        })
        .collect();
    m
}

fn create_topics_response(v: i16, p: &Palette) -> CreateTopicsResponse {
    use create_topics_response::*;
    let mut m = CreateTopicsResponse::default();
    m.throttle_time_ms = p.i32(0);
    m.topics = (0..p.n(0))
        .map(|t| {
            let mut r = CreatableTopicResult::default();
            r.name = p.topic(t);
            r.error_code = p.i16(t);
            r.error_message = p.opt(t);
            if v >= 7 {
                r.topic_id = p.uuid(t);
            }
            if v >= 5 {
                r.topic_config_error_code = p.i16(t + 1);
                r.num_partitions = p.i32(t + 1);
                r.replication_factor = p.i16(t + 2);
                r.configs = p.flag(t + 1).then(|| {
                    (0..p.n(t))
                        .map(|i| {
                            let mut c = CreatableTopicConfigs::default();
                            c.name = p.s(i);
                            c.value = p.opt(i);
                            c.read_only = p.flag(i);
                            c.config_source = p.i8(i);
                            c.is_sensitive = p.flag(i + 1);
                            c
                        })
                        .collect()
                });
            }
            r
        })
        .collect();
    m
}

fn delete_topics_request(v: i16, p: &Palette) -> DeleteTopicsRequest {
    let mut m = DeleteTopicsRequest::default();
    m.timeout_ms = p.i32(0);
    if v <= 5 {
        m.topic_names = (0..p.n(0)).map(|i| p.topic(i)).collect();
        return m;
    }
    m.topics = (0..p.n(0))
        .map(|i| {
            let mut t = delete_topics_request::DeleteTopicState::default();
            t.name = p.flag(i).then(|| p.topic(i));
            t.topic_id = p.uuid(i);
            t
        })
        .collect();
    m
}

fn delete_topics_response(v: i16, p: &Palette) -> DeleteTopicsResponse {
    let mut m = DeleteTopicsResponse::default();
    m.throttle_time_ms = p.i32(0);
    m.responses = (0..p.n(0))
        .map(|i| {
            let mut r = delete_topics_response::DeletableTopicResult::default();
            r.name = if v >= 6 {
                p.flag(i).then(|| p.topic(i))
            } else {
                Some(p.topic(i))
            };
            if v >= 6 {
                r.topic_id = p.uuid(i);
            }
            r.error_code = p.i16(i);
            if v >= 5 {
                r.error_message = p.opt(i + 1);
            }
            r
        })
        .collect();
    m
}

fn describe_configs_request(v: i16, p: &Palette) -> DescribeConfigsRequest {
    let mut m = DescribeConfigsRequest::default();
    m.include_synonyms = p.flag(0);
    if v >= 3 {
        m.include_documentation = p.flag(1);
    }
    m.resources = (0..p.n(0))
        .map(|i| {
            let mut r = describe_configs_request::DescribeConfigsResource::default();
            r.resource_type = p.i8(i);
            r.resource_name = p.s(i);
            r.configuration_keys = p.flag(i + 2).then(|| (0..p.n(i)).map(|k| p.s(k)).collect());
            r
        })
        .collect();
    m
}

fn describe_configs_response(v: i16, p: &Palette) -> DescribeConfigsResponse {
    use describe_configs_response::*;
    let mut m = DescribeConfigsResponse::default();
    m.throttle_time_ms = p.i32(0);
    m.results = (0..p.n(0))
        .map(|r| {
            let mut result = DescribeConfigsResult::default();
            result.error_code = p.i16(r);
            result.error_message = p.opt(r);
            result.resource_type = p.i8(r);
            result.resource_name = p.s(r);
            result.configs = (0..p.n(r + 1))
                .map(|i| {
                    let mut c = DescribeConfigsResourceResult::default();
                    c.name = p.s(i);
                    c.value = p.opt(i);
                    c.read_only = p.flag(i);
                    c.config_source = p.i8(i);
                    c.is_sensitive = p.flag(i + 1);
                    if v >= 3 {
                        c.config_type = p.i8(i + 1);
                        c.documentation = p.opt(i + 2);
                    }
                    c.synonyms = (0..p.n(i))
                        .map(|k| {
                            let mut s = DescribeConfigsSynonym::default();
                            s.name = p.s(k);
                            s.value = p.opt(k);
                            s.source = p.i8(k);
                            s
                        })
                        .collect();
                    c
                })
                .collect();
            result
        })
        .collect();
    m
}

fn offset_delete_request(_v: i16, p: &Palette) -> OffsetDeleteRequest {
    use offset_delete_request::*;
    let mut m = OffsetDeleteRequest::default();
    m.group_id = p.group(0);
    m.topics = (0..p.n(0))
        .map(|t| {
            let mut topic = OffsetDeleteRequestTopic::default();
            topic.name = p.topic(t);
            topic.partitions = (0..p.n(t))
                .map(|i| {
                    let mut part = OffsetDeleteRequestPartition::default();
                    part.partition_index = p.i32(i);
                    part
                })
                .collect();
            topic
        })
        .collect();
    m
}

fn offset_delete_response(_v: i16, p: &Palette) -> OffsetDeleteResponse {
    use offset_delete_response::*;
    let mut m = OffsetDeleteResponse::default();
    m.error_code = p.i16(0);
    m.throttle_time_ms = p.i32(1);
    m.topics = (0..p.n(0))
        .map(|t| {
            let mut topic = OffsetDeleteResponseTopic::default();
            topic.name = p.topic(t);
            topic.partitions = (0..p.n(t))
                .map(|i| {
                    let mut part = OffsetDeleteResponsePartition::default();
                    part.partition_index = p.i32(i);
                    part.error_code = p.i16(i);
                    part
                })
                .collect();
            topic
        })
        .collect();
    m
}

fn init_producer_id_request(v: i16, p: &Palette) -> InitProducerIdRequest {
    let mut m = InitProducerIdRequest::default();
    m.transactional_id = p.flag(0).then(|| TransactionalId(p.s(1)));
    m.transaction_timeout_ms = p.i32(0);
    if v >= 3 {
        m.producer_id = ProducerId(p.i64(0));
        m.producer_epoch = p.i16(1);
    }
    m
}

fn init_producer_id_response(_v: i16, p: &Palette) -> InitProducerIdResponse {
    let mut m = InitProducerIdResponse::default();
    m.throttle_time_ms = p.i32(0);
    m.error_code = p.i16(0);
    m.producer_id = ProducerId(p.i64(1));
    m.producer_epoch = p.i16(2);
    m
}

fn describe_producers_request(_v: i16, p: &Palette) -> DescribeProducersRequest {
    use describe_producers_request::TopicRequest;
    let mut m = DescribeProducersRequest::default();
    m.topics = (0..p.n(0))
        .map(|t| {
            let mut topic = TopicRequest::default();
            topic.name = p.topic(t);
            topic.partition_indexes = (0..p.n(t)).map(|i| p.i32(i)).collect();
            topic
        })
        .collect();
    m
}

fn describe_producers_response(_v: i16, p: &Palette) -> DescribeProducersResponse {
    use describe_producers_response::{PartitionResponse, ProducerState, TopicResponse};
    let mut m = DescribeProducersResponse::default();
    m.throttle_time_ms = p.i32(0);
    m.topics = (0..p.n(0))
        .map(|t| {
            let mut topic = TopicResponse::default();
            topic.name = p.topic(t);
            topic.partitions = (0..p.n(t))
                .map(|i| {
                    let mut part = PartitionResponse::default();
                    part.partition_index = p.i32(i);
                    part.error_code = p.i16(i);
                    part.error_message = p.flag(i).then(|| p.s(i));
                    part.active_producers = (0..p.n(i + 1))
                        .map(|k| {
                            let mut s = ProducerState::default();
                            s.producer_id = ProducerId(p.i64(k));
                            s.producer_epoch = p.i32(k + 1);
                            s.last_sequence = p.i32(k + 2);
                            s.last_timestamp = p.i64(k + 1);
                            s.coordinator_epoch = p.i32(k + 3);
                            s.current_txn_start_offset = p.i64(k + 2);
                            s
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

fn add_partitions_to_txn_request(v: i16, p: &Palette) -> AddPartitionsToTxnRequest {
    use add_partitions_to_txn_request::{AddPartitionsToTxnTopic, AddPartitionsToTxnTransaction};
    let topics = (0..p.n(0))
        .map(|t| {
            let mut topic = AddPartitionsToTxnTopic::default();
            topic.name = p.topic(t);
            topic.partitions = (0..p.n(t + 1)).map(|i| p.i32(i)).collect();
            topic
        })
        .collect();
    let mut m = AddPartitionsToTxnRequest::default();
    if v <= 3 {
        m.v3_and_below_transactional_id = TransactionalId(p.s(1));
        m.v3_and_below_producer_id = ProducerId(p.i64(0));
        m.v3_and_below_producer_epoch = p.i16(1);
        m.v3_and_below_topics = topics;
    } else {
        let mut txn = AddPartitionsToTxnTransaction::default();
        txn.transactional_id = TransactionalId(p.s(1));
        txn.producer_id = ProducerId(p.i64(0));
        txn.producer_epoch = p.i16(1);
        txn.verify_only = p.flag(1);
        txn.topics = topics;
        m.transactions = vec![txn];
    }
    m
}

fn add_partitions_to_txn_response(v: i16, p: &Palette) -> AddPartitionsToTxnResponse {
    use add_partitions_to_txn_response::{
        AddPartitionsToTxnPartitionResult, AddPartitionsToTxnResult, AddPartitionsToTxnTopicResult,
    };
    let topics = (0..p.n(0))
        .map(|t| {
            let mut topic = AddPartitionsToTxnTopicResult::default();
            topic.name = p.topic(t);
            topic.results_by_partition = (0..p.n(t + 1))
                .map(|i| {
                    let mut r = AddPartitionsToTxnPartitionResult::default();
                    r.partition_index = p.i32(i);
                    r.partition_error_code = p.i16(i + 1);
                    r
                })
                .collect();
            topic
        })
        .collect();
    let mut m = AddPartitionsToTxnResponse::default();
    m.throttle_time_ms = p.i32(0);
    if v <= 3 {
        m.results_by_topic_v3_and_below = topics;
    } else {
        m.error_code = p.i16(2);
        let mut r = AddPartitionsToTxnResult::default();
        r.transactional_id = TransactionalId(p.s(1));
        r.topic_results = topics;
        m.results_by_transaction = vec![r];
    }
    m
}

fn add_offsets_to_txn_request(_v: i16, p: &Palette) -> AddOffsetsToTxnRequest {
    let mut m = AddOffsetsToTxnRequest::default();
    m.transactional_id = TransactionalId(p.s(0));
    m.producer_id = ProducerId(p.i64(0));
    m.producer_epoch = p.i16(1);
    m.group_id = p.group(2);
    m
}

fn add_offsets_to_txn_response(_v: i16, p: &Palette) -> AddOffsetsToTxnResponse {
    let mut m = AddOffsetsToTxnResponse::default();
    m.throttle_time_ms = p.i32(0);
    m.error_code = p.i16(1);
    m
}

fn end_txn_request(_v: i16, p: &Palette) -> EndTxnRequest {
    let mut m = EndTxnRequest::default();
    m.transactional_id = TransactionalId(p.s(0));
    m.producer_id = ProducerId(p.i64(0));
    m.producer_epoch = p.i16(1);
    m.committed = p.flag(0);
    m
}

fn end_txn_response(v: i16, p: &Palette) -> EndTxnResponse {
    let mut m = EndTxnResponse::default();
    m.throttle_time_ms = p.i32(0);
    m.error_code = p.i16(1);
    if v >= 5 {
        m.producer_id = ProducerId(p.i64(0));
        m.producer_epoch = p.i16(2);
    }
    m
}

fn txn_offset_commit_request(v: i16, p: &Palette) -> TxnOffsetCommitRequest {
    use txn_offset_commit_request::{TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic};
    let mut m = TxnOffsetCommitRequest::default();
    m.transactional_id = TransactionalId(p.s(0));
    m.group_id = p.group(1);
    m.producer_id = ProducerId(p.i64(0));
    m.producer_epoch = p.i16(1);
    if v >= 3 {
        m.generation_id = p.i32(2);
        m.member_id = p.s(3);
        m.group_instance_id = p.opt(4);
    }
    m.topics = (0..p.n(0))
        .map(|t| {
            let mut topic = TxnOffsetCommitRequestTopic::default();
            topic.name = p.topic(t);
            topic.partitions = (0..p.n(t + 1))
                .map(|i| {
                    let mut part = TxnOffsetCommitRequestPartition::default();
                    part.partition_index = p.i32(i);
                    part.committed_offset = p.i64(i);
                    if v >= 2 {
                        part.committed_leader_epoch = p.i32(i + 1);
                    }
                    part.committed_metadata = p.opt(i);
                    part
                })
                .collect();
            topic
        })
        .collect();
    m
}

fn txn_offset_commit_response(_v: i16, p: &Palette) -> TxnOffsetCommitResponse {
    use txn_offset_commit_response::{TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic};
    let mut m = TxnOffsetCommitResponse::default();
    m.throttle_time_ms = p.i32(0);
    m.topics = (0..p.n(0))
        .map(|t| {
            let mut topic = TxnOffsetCommitResponseTopic::default();
            topic.name = p.topic(t);
            topic.partitions = (0..p.n(t + 1))
                .map(|i| {
                    let mut part = TxnOffsetCommitResponsePartition::default();
                    part.partition_index = p.i32(i);
                    part.error_code = p.i16(i + 1);
                    part
                })
                .collect();
            topic
        })
        .collect();
    m
}

fn list_transactions_request(v: i16, p: &Palette) -> ListTransactionsRequest {
    let mut m = ListTransactionsRequest::default();
    m.state_filters = (0..p.n(0)).map(|i| p.s(i)).collect();
    m.producer_id_filters = (0..p.n(1)).map(|i| ProducerId(p.i64(i))).collect();
    if v >= 1 {
        m.duration_filter = p.i64(2);
    }
    if v >= 2 {
        m.transactional_id_pattern = p.opt(3);
    }
    m
}

fn list_transactions_response(_v: i16, p: &Palette) -> ListTransactionsResponse {
    use list_transactions_response::TransactionState;
    let mut m = ListTransactionsResponse::default();
    m.throttle_time_ms = p.i32(0);
    m.error_code = p.i16(1);
    m.unknown_state_filters = (0..p.n(0)).map(|i| p.s(i)).collect();
    m.transaction_states = (0..p.n(1))
        .map(|i| {
            let mut s = TransactionState::default();
            s.transactional_id = TransactionalId(p.s(i));
            s.producer_id = ProducerId(p.i64(i));
            s.transaction_state = p.s(i + 1);
            s
        })
        .collect();
    m
}

fn describe_transactions_request(_v: i16, p: &Palette) -> DescribeTransactionsRequest {
    let mut m = DescribeTransactionsRequest::default();
    m.transactional_ids = (0..p.n(0)).map(|i| TransactionalId(p.s(i))).collect();
    m
}

fn describe_transactions_response(_v: i16, p: &Palette) -> DescribeTransactionsResponse {
    use describe_transactions_response::{TopicData, TransactionState};
    let mut m = DescribeTransactionsResponse::default();
    m.throttle_time_ms = p.i32(0);
    m.transaction_states = (0..p.n(0))
        .map(|i| {
            let mut s = TransactionState::default();
            s.error_code = p.i16(i);
            s.transactional_id = TransactionalId(p.s(i));
            s.transaction_state = p.s(i + 1);
            s.transaction_timeout_ms = p.i32(i + 1);
            s.transaction_start_time_ms = p.i64(i);
            s.producer_id = ProducerId(p.i64(i + 1));
            s.producer_epoch = p.i16(i + 2);
            s.topics = (0..p.n(i + 1))
                .map(|t| {
                    let mut d = TopicData::default();
                    d.topic = p.topic(t);
                    d.partitions = (0..p.n(t)).map(|j| p.i32(j)).collect();
                    d
                })
                .collect();
            s
        })
        .collect();
    m
}

fn delete_groups_request(_v: i16, p: &Palette) -> DeleteGroupsRequest {
    let mut m = DeleteGroupsRequest::default();
    m.groups_names = (0..p.n(0)).map(|i| GroupId(p.s(i))).collect();
    m
}

fn delete_groups_response(_v: i16, p: &Palette) -> DeleteGroupsResponse {
    use delete_groups_response::DeletableGroupResult;
    let mut m = DeleteGroupsResponse::default();
    m.throttle_time_ms = p.i32(0);
    m.results = (0..p.n(0))
        .map(|i| {
            let mut r = DeletableGroupResult::default();
            r.group_id = GroupId(p.s(i));
            r.error_code = p.i16(i);
            r
        })
        .collect();
    m
}

fn describe_cluster_request(v: i16, p: &Palette) -> DescribeClusterRequest {
    let mut m = DescribeClusterRequest::default();
    m.include_cluster_authorized_operations = p.flag(0);
    if v >= 1 {
        m.endpoint_type = p.i8(0);
    }
    if v >= 2 {
        m.include_fenced_brokers = p.flag(1);
    }
    m
}

fn describe_cluster_response(v: i16, p: &Palette) -> DescribeClusterResponse {
    use describe_cluster_response::DescribeClusterBroker;
    let mut m = DescribeClusterResponse::default();
    m.throttle_time_ms = p.i32(0);
    m.error_code = p.i16(0);
    m.error_message = p.flag(0).then(|| p.s(0));
    if v >= 1 {
        m.endpoint_type = p.i8(1);
    }
    m.cluster_id = p.s(1);
    m.controller_id = BrokerId(p.i32(1));
    m.brokers = (0..p.n(0))
        .map(|i| {
            let mut b = DescribeClusterBroker::default();
            b.broker_id = BrokerId(p.i32(i));
            b.host = p.s(i);
            b.port = p.i32(i + 1);
            b.rack = p.flag(i).then(|| p.s(i + 1));
            if v >= 2 {
                b.is_fenced = p.flag(i + 1);
            }
            b
        })
        .collect();
    m.cluster_authorized_operations = p.i32(2);
    m
}

fn elect_leaders_request(v: i16, p: &Palette) -> ElectLeadersRequest {
    use elect_leaders_request::TopicPartitions;
    let mut m = ElectLeadersRequest::default();
    if v >= 1 {
        m.election_type = p.i8(0);
    }
    m.topic_partitions = p.flag(0).then(|| {
        (0..p.n(0))
            .map(|t| {
                let mut tp = TopicPartitions::default();
                tp.topic = p.topic(t);
                tp.partitions = (0..p.n(t + 1)).map(|i| p.i32(i)).collect();
                tp
            })
            .collect()
    });
    m.timeout_ms = p.i32(0);
    m
}

fn elect_leaders_response(v: i16, p: &Palette) -> ElectLeadersResponse {
    use elect_leaders_response::{PartitionResult, ReplicaElectionResult};
    let mut m = ElectLeadersResponse::default();
    m.throttle_time_ms = p.i32(0);
    if v >= 1 {
        m.error_code = p.i16(0);
    }
    m.replica_election_results = (0..p.n(0))
        .map(|t| {
            let mut r = ReplicaElectionResult::default();
            r.topic = p.topic(t);
            r.partition_result = (0..p.n(t + 1))
                .map(|i| {
                    let mut pr = PartitionResult::default();
                    pr.partition_id = p.i32(i);
                    pr.error_code = p.i16(i);
                    pr.error_message = p.flag(i).then(|| p.s(i));
                    pr
                })
                .collect();
            r
        })
        .collect();
    m
}

fn describe_log_dirs_request(_v: i16, p: &Palette) -> DescribeLogDirsRequest {
    use describe_log_dirs_request::DescribableLogDirTopic;
    let mut m = DescribeLogDirsRequest::default();
    m.topics = p.flag(0).then(|| {
        (0..p.n(0))
            .map(|t| {
                let mut d = DescribableLogDirTopic::default();
                d.topic = p.topic(t);
                d.partitions = (0..p.n(t + 1)).map(|i| p.i32(i)).collect();
                d
            })
            .collect()
    });
    m
}

fn describe_log_dirs_response(v: i16, p: &Palette) -> DescribeLogDirsResponse {
    use describe_log_dirs_response::{DescribeLogDirsPartition, DescribeLogDirsResult, DescribeLogDirsTopic};
    let mut m = DescribeLogDirsResponse::default();
    m.throttle_time_ms = p.i32(0);
    if v >= 3 {
        m.error_code = p.i16(0);
    }
    m.results = (0..p.n(0))
        .map(|r| {
            let mut d = DescribeLogDirsResult::default();
            d.error_code = p.i16(r);
            d.log_dir = p.s(r);
            d.topics = (0..p.n(r + 1))
                .map(|t| {
                    let mut topic = DescribeLogDirsTopic::default();
                    topic.name = p.topic(t);
                    topic.partitions = (0..p.n(t))
                        .map(|i| {
                            let mut part = DescribeLogDirsPartition::default();
                            part.partition_index = p.i32(i);
                            part.partition_size = p.i64(i);
                            part.offset_lag = p.i64(i + 1);
                            part.is_future_key = p.flag(i);
                            part
                        })
                        .collect();
                    topic
                })
                .collect();
            if v >= 4 {
                d.total_bytes = p.i64(r);
                d.usable_bytes = p.i64(r + 1);
            }
            d
        })
        .collect();
    m
}

fn describe_topic_partitions_request(_v: i16, p: &Palette) -> DescribeTopicPartitionsRequest {
    use describe_topic_partitions_request::{Cursor, TopicRequest};
    let mut m = DescribeTopicPartitionsRequest::default();
    m.topics = (0..p.n(0))
        .map(|i| TopicRequest::default().with_name(p.topic(i)))
        .collect();
    m.response_partition_limit = p.i32(0);
    m.cursor = p.flag(0).then(|| {
        Cursor::default()
            .with_topic_name(p.topic(1))
            .with_partition_index(p.i32(1))
    });
    m
}

fn describe_topic_partitions_response(_v: i16, p: &Palette) -> DescribeTopicPartitionsResponse {
    use describe_topic_partitions_response::*;
    let ids = |i: usize| (0..p.n(i)).map(|j| BrokerId(p.i32(j))).collect::<Vec<_>>();
    let mut m = DescribeTopicPartitionsResponse::default();
    m.throttle_time_ms = p.i32(0);
    m.topics = (0..p.n(0))
        .map(|t| {
            let mut topic = DescribeTopicPartitionsResponseTopic::default();
            topic.error_code = p.i16(t);
            topic.name = p.flag(t).then(|| p.topic(t));
            topic.topic_id = p.uuid(t);
            topic.is_internal = p.flag(t + 1);
            topic.topic_authorized_operations = p.i32(t);
            topic.partitions = (0..p.n(t + 1))
                .map(|i| {
                    let mut part = DescribeTopicPartitionsResponsePartition::default();
                    part.error_code = p.i16(i);
                    part.partition_index = p.i32(i);
                    part.leader_id = BrokerId(p.i32(i + 1));
                    part.leader_epoch = p.i32(i + 2);
                    part.replica_nodes = ids(i);
                    part.isr_nodes = ids(i + 1);
                    part.eligible_leader_replicas = p.flag(i).then(|| ids(i + 2));
                    part.last_known_elr = p.flag(i + 1).then(|| ids(i));
                    part.offline_replicas = ids(i + 1);
                    part
                })
                .collect();
            topic
        })
        .collect();
    m.next_cursor = p.flag(2).then(|| {
        Cursor::default()
            .with_topic_name(p.topic(2))
            .with_partition_index(p.i32(2))
    });
    m
}

fn create_partitions_request(_v: i16, p: &Palette) -> CreatePartitionsRequest {
    use create_partitions_request::*;
    let mut m = CreatePartitionsRequest::default();
    m.timeout_ms = p.i32(0);
    m.validate_only = p.flag(0);
    m.topics = (0..p.n(0))
        .map(|t| {
            let mut topic = CreatePartitionsTopic::default();
            topic.name = p.topic(t);
            topic.count = p.i32(t);
            topic.assignments = p.flag(t + 1).then(|| {
                (0..p.n(t))
                    .map(|i| {
                        let mut a = CreatePartitionsAssignment::default();
                        a.broker_ids = (0..p.n(i)).map(|b| p.broker(b)).collect();
                        a
                    })
                    .collect()
            });
            topic
        })
        .collect();
    m
}

fn create_partitions_response(_v: i16, p: &Palette) -> CreatePartitionsResponse {
    use create_partitions_response::*;
    let mut m = CreatePartitionsResponse::default();
    m.throttle_time_ms = p.i32(0);
    m.results = (0..p.n(0))
        .map(|t| {
            let mut r = CreatePartitionsTopicResult::default();
            r.name = p.topic(t);
            r.error_code = p.i16(t);
            r.error_message = p.opt(t);
            r
        })
        .collect();
    m
}

fn delete_records_request(_v: i16, p: &Palette) -> DeleteRecordsRequest {
    use delete_records_request::*;
    let mut m = DeleteRecordsRequest::default();
    m.timeout_ms = p.i32(0);
    m.topics = (0..p.n(0))
        .map(|t| {
            let mut topic = DeleteRecordsTopic::default();
            topic.name = p.topic(t);
            topic.partitions = (0..p.n(t + 1))
                .map(|i| {
                    let mut part = DeleteRecordsPartition::default();
                    part.partition_index = p.i32(i);
                    part.offset = p.i64(i);
                    part
                })
                .collect();
            topic
        })
        .collect();
    m
}

fn delete_records_response(_v: i16, p: &Palette) -> DeleteRecordsResponse {
    use delete_records_response::*;
    let mut m = DeleteRecordsResponse::default();
    m.throttle_time_ms = p.i32(0);
    m.topics = (0..p.n(0))
        .map(|t| {
            let mut topic = DeleteRecordsTopicResult::default();
            topic.name = p.topic(t);
            topic.partitions = (0..p.n(t + 1))
                .map(|i| {
                    let mut r = DeleteRecordsPartitionResult::default();
                    r.partition_index = p.i32(i);
                    r.low_watermark = p.i64(i);
                    r.error_code = p.i16(i);
                    r
                })
                .collect();
            topic
        })
        .collect();
    m
}

fn alter_configs_request(_v: i16, p: &Palette) -> AlterConfigsRequest {
    use alter_configs_request::*;
    let mut m = AlterConfigsRequest::default();
    m.validate_only = p.flag(0);
    m.resources = (0..p.n(0))
        .map(|r| {
            let mut res = AlterConfigsResource::default();
            res.resource_type = p.i8(r);
            res.resource_name = p.s(r);
            res.configs = (0..p.n(r + 1))
                .map(|i| {
                    let mut c = AlterableConfig::default();
                    c.name = p.s(i);
                    c.value = p.opt(i);
                    c
                })
                .collect();
            res
        })
        .collect();
    m
}

fn alter_configs_response(_v: i16, p: &Palette) -> AlterConfigsResponse {
    use alter_configs_response::*;
    let mut m = AlterConfigsResponse::default();
    m.throttle_time_ms = p.i32(0);
    m.responses = (0..p.n(0))
        .map(|r| {
            let mut res = AlterConfigsResourceResponse::default();
            res.error_code = p.i16(r);
            res.error_message = p.opt(r);
            res.resource_type = p.i8(r);
            res.resource_name = p.s(r);
            res
        })
        .collect();
    m
}

fn incremental_alter_configs_request(_v: i16, p: &Palette) -> IncrementalAlterConfigsRequest {
    use incremental_alter_configs_request::*;
    let mut m = IncrementalAlterConfigsRequest::default();
    m.validate_only = p.flag(0);
    m.resources = (0..p.n(0))
        .map(|r| {
            let mut res = AlterConfigsResource::default();
            res.resource_type = p.i8(r);
            res.resource_name = p.s(r);
            res.configs = (0..p.n(r + 1))
                .map(|i| {
                    let mut c = AlterableConfig::default();
                    c.name = p.s(i);
                    c.config_operation = p.i8(i);
                    c.value = p.opt(i);
                    c
                })
                .collect();
            res
        })
        .collect();
    m
}

fn incremental_alter_configs_response(_v: i16, p: &Palette) -> IncrementalAlterConfigsResponse {
    use incremental_alter_configs_response::*;
    let mut m = IncrementalAlterConfigsResponse::default();
    m.throttle_time_ms = p.i32(0);
    m.responses = (0..p.n(0))
        .map(|r| {
            let mut res = AlterConfigsResourceResponse::default();
            res.error_code = p.i16(r);
            res.error_message = p.opt(r);
            res.resource_type = p.i8(r);
            res.resource_name = p.s(r);
            res
        })
        .collect();
    m
}

fn offset_for_leader_epoch_request(v: i16, p: &Palette) -> OffsetForLeaderEpochRequest {
    use offset_for_leader_epoch_request::*;
    let mut m = OffsetForLeaderEpochRequest::default();
    if v >= 3 {
        m.replica_id = p.broker(0);
    }
    m.topics = (0..p.n(0))
        .map(|t| {
            let mut topic = OffsetForLeaderTopic::default();
            topic.topic = p.topic(t);
            topic.partitions = (0..p.n(t))
                .map(|i| {
                    let mut part = OffsetForLeaderPartition::default();
                    part.partition = p.i32(i);
                    part.current_leader_epoch = p.i32(i + 1);
                    part.leader_epoch = p.i32(i + 2);
                    part
                })
                .collect();
            topic
        })
        .collect();
    m
}

fn offset_for_leader_epoch_response(_v: i16, p: &Palette) -> OffsetForLeaderEpochResponse {
    use offset_for_leader_epoch_response::*;
    let mut m = OffsetForLeaderEpochResponse::default();
    m.throttle_time_ms = p.i32(0);
    m.topics = (0..p.n(0))
        .map(|t| {
            let mut topic = OffsetForLeaderTopicResult::default();
            topic.topic = p.topic(t);
            topic.partitions = (0..p.n(t))
                .map(|i| {
                    let mut part = EpochEndOffset::default();
                    part.error_code = p.i16(i);
                    part.partition = p.i32(i);
                    part.leader_epoch = p.i32(i + 1);
                    part.end_offset = p.i64(i);
                    part
                })
                .collect();
            topic
        })
        .collect();
    m
}

fn consumer_group_heartbeat_request(v: i16, p: &Palette) -> ConsumerGroupHeartbeatRequest {
    use consumer_group_heartbeat_request::TopicPartitions;
    let mut m = ConsumerGroupHeartbeatRequest::default();
    m.group_id = p.group(0);
    m.member_id = p.s(1);
    m.member_epoch = p.i32(0);
    m.instance_id = p.opt(2);
    m.rack_id = p.opt(3);
    m.rebalance_timeout_ms = p.i32(1);
    m.subscribed_topic_names = p.flag(0).then(|| (0..p.n(0)).map(|i| p.topic(i)).collect());
    if v >= 1 {
        m.subscribed_topic_regex = p.opt(4);
    }
    m.server_assignor = p.opt(5);
    m.topic_partitions = p.flag(1).then(|| {
        (0..p.n(1))
            .map(|t| {
                let mut tp = TopicPartitions::default();
                tp.topic_id = p.uuid(t);
                tp.partitions = (0..p.n(t + 2)).map(|i| p.i32(i)).collect();
                tp
            })
            .collect()
    });
    m
}

fn consumer_group_heartbeat_response(_v: i16, p: &Palette) -> ConsumerGroupHeartbeatResponse {
    use consumer_group_heartbeat_response::{Assignment, TopicPartitions};
    let mut m = ConsumerGroupHeartbeatResponse::default();
    m.throttle_time_ms = p.i32(0);
    m.error_code = p.i16(1);
    m.error_message = p.opt(0);
    m.member_id = p.opt(1);
    m.member_epoch = p.i32(2);
    m.heartbeat_interval_ms = p.i32(3);
    m.assignment = p.flag(0).then(|| {
        let mut a = Assignment::default();
        a.topic_partitions = (0..p.n(0))
            .map(|t| {
                let mut tp = TopicPartitions::default();
                tp.topic_id = p.uuid(t);
                tp.partitions = (0..p.n(t + 1)).map(|i| p.i32(i)).collect();
                tp
            })
            .collect();
        a
    });
    m
}

fn consumer_group_describe_request(_v: i16, p: &Palette) -> ConsumerGroupDescribeRequest {
    let mut m = ConsumerGroupDescribeRequest::default();
    m.group_ids = (0..p.n(0)).map(|i| p.group(i)).collect();
    m.include_authorized_operations = p.flag(0);
    m
}

fn consumer_group_describe_response(v: i16, p: &Palette) -> ConsumerGroupDescribeResponse {
    use consumer_group_describe_response::{Assignment, DescribedGroup, Member, TopicPartitions};
    let assignment = |k: usize| {
        let mut a = Assignment::default();
        a.topic_partitions = (0..p.n(k))
            .map(|t| {
                let mut tp = TopicPartitions::default();
                tp.topic_id = p.uuid(t);
                tp.topic_name = p.topic(t);
                tp.partitions = (0..p.n(t + 1)).map(|i| p.i32(i)).collect();
                tp
            })
            .collect();
        a
    };
    let mut m = ConsumerGroupDescribeResponse::default();
    m.throttle_time_ms = p.i32(0);
    m.groups = (0..p.n(0))
        .map(|g| {
            let mut d = DescribedGroup::default();
            d.error_code = p.i16(g);
            d.error_message = p.opt(g);
            d.group_id = p.group(g);
            d.group_state = p.s(g + 1);
            d.group_epoch = p.i32(g);
            d.assignment_epoch = p.i32(g + 1);
            d.assignor_name = p.s(g + 2);
            d.members = (0..p.n(g + 1))
                .map(|i| {
                    let mut mem = Member::default();
                    mem.member_id = p.s(i);
                    mem.instance_id = p.opt(i + 1);
                    mem.rack_id = p.opt(i + 2);
                    mem.member_epoch = p.i32(i);
                    mem.client_id = p.s(i + 1);
                    mem.client_host = p.s(i + 2);
                    mem.subscribed_topic_names = (0..p.n(i)).map(|t| p.topic(t)).collect();
                    mem.subscribed_topic_regex = p.opt(i + 3);
                    mem.assignment = assignment(i);
                    mem.target_assignment = assignment(i + 1);
                    if v >= 1 {
                        mem.member_type = p.i8(i);
                    }
                    mem
                })
                .collect();
            d.authorized_operations = p.i32(g + 2);
            d
        })
        .collect();
    m
}

fn sasl_handshake_request(_v: i16, p: &Palette) -> SaslHandshakeRequest {
    let mut m = SaslHandshakeRequest::default();
    m.mechanism = p.s(0);
    m
}

fn sasl_handshake_response(_v: i16, p: &Palette) -> SaslHandshakeResponse {
    let mut m = SaslHandshakeResponse::default();
    m.error_code = p.i16(0);
    m.mechanisms = (0..p.n(0)).map(|i| p.s(i)).collect();
    m
}

fn sasl_authenticate_request(_v: i16, p: &Palette) -> SaslAuthenticateRequest {
    let mut m = SaslAuthenticateRequest::default();
    m.auth_bytes = p.bytes(0);
    m
}

fn sasl_authenticate_response(v: i16, p: &Palette) -> SaslAuthenticateResponse {
    let mut m = SaslAuthenticateResponse::default();
    m.error_code = p.i16(0);
    m.error_message = p.opt(0);
    m.auth_bytes = p.bytes(1);
    if v >= 1 {
        m.session_lifetime_ms = p.i64(0);
    }
    m
}

fn describe_user_scram_credentials_request(_v: i16, p: &Palette) -> DescribeUserScramCredentialsRequest {
    use describe_user_scram_credentials_request::UserName;
    let mut m = DescribeUserScramCredentialsRequest::default();
    m.users = p.flag(0).then(|| {
        (0..p.n(0))
            .map(|i| {
                let mut u = UserName::default();
                u.name = p.s(i);
                u
            })
            .collect()
    });
    m
}

fn describe_user_scram_credentials_response(_v: i16, p: &Palette) -> DescribeUserScramCredentialsResponse {
    use describe_user_scram_credentials_response::{CredentialInfo, DescribeUserScramCredentialsResult};
    let mut m = DescribeUserScramCredentialsResponse::default();
    m.throttle_time_ms = p.i32(0);
    m.error_code = p.i16(0);
    m.error_message = p.opt(0);
    m.results = (0..p.n(0))
        .map(|i| {
            let mut r = DescribeUserScramCredentialsResult::default();
            r.user = p.s(i);
            r.error_code = p.i16(i);
            r.error_message = p.opt(i + 1);
            r.credential_infos = (0..p.n(i + 1))
                .map(|j| {
                    let mut c = CredentialInfo::default();
                    c.mechanism = p.i8(j);
                    c.iterations = p.i32(j + 1);
                    c
                })
                .collect();
            r
        })
        .collect();
    m
}

fn alter_user_scram_credentials_request(_v: i16, p: &Palette) -> AlterUserScramCredentialsRequest {
    use alter_user_scram_credentials_request::{ScramCredentialDeletion, ScramCredentialUpsertion};
    let mut m = AlterUserScramCredentialsRequest::default();
    m.deletions = (0..p.n(0))
        .map(|i| {
            let mut d = ScramCredentialDeletion::default();
            d.name = p.s(i);
            d.mechanism = p.i8(i);
            d
        })
        .collect();
    m.upsertions = (0..p.n(1))
        .map(|i| {
            let mut u = ScramCredentialUpsertion::default();
            u.name = p.s(i);
            u.mechanism = p.i8(i);
            u.iterations = p.i32(i);
            u.salt = p.bytes(i);
            u.salted_password = p.bytes(i + 1);
            u
        })
        .collect();
    m
}

fn alter_user_scram_credentials_response(_v: i16, p: &Palette) -> AlterUserScramCredentialsResponse {
    use alter_user_scram_credentials_response::AlterUserScramCredentialsResult;
    let mut m = AlterUserScramCredentialsResponse::default();
    m.throttle_time_ms = p.i32(0);
    m.results = (0..p.n(0))
        .map(|i| {
            let mut r = AlterUserScramCredentialsResult::default();
            r.user = p.s(i);
            r.error_code = p.i16(i);
            r.error_message = p.opt(i);
            r
        })
        .collect();
    m
}

/// A quota value: an integral rate from the palette (f64 round-trips exactly).
fn quota_value(p: &Palette, i: usize) -> f64 {
    f64::from(p.i32(i))
}

fn describe_client_quotas_request(_v: i16, p: &Palette) -> DescribeClientQuotasRequest {
    use describe_client_quotas_request::ComponentData;
    let mut m = DescribeClientQuotasRequest::default();
    m.components = (0..p.n(0))
        .map(|i| {
            let mut c = ComponentData::default();
            c.entity_type = p.s(i);
            c.match_type = p.i8(i);
            c._match = p.opt(i);
            c
        })
        .collect();
    m.strict = p.flag(0);
    m
}

fn describe_client_quotas_response(_v: i16, p: &Palette) -> DescribeClientQuotasResponse {
    use describe_client_quotas_response::{EntityData, EntryData, ValueData};
    let mut m = DescribeClientQuotasResponse::default();
    m.throttle_time_ms = p.i32(0);
    m.error_code = p.i16(0);
    m.error_message = p.opt(0);
    m.entries = p.flag(1).then(|| {
        (0..p.n(0))
            .map(|i| {
                let mut e = EntryData::default();
                e.entity = (0..p.n(i + 1))
                    .map(|j| {
                        let mut d = EntityData::default();
                        d.entity_type = p.s(j);
                        d.entity_name = p.opt(j + 1);
                        d
                    })
                    .collect();
                e.values = (0..p.n(i))
                    .map(|j| {
                        let mut v = ValueData::default();
                        v.key = p.s(j);
                        v.value = quota_value(p, j);
                        v
                    })
                    .collect();
                e
            })
            .collect()
    });
    m
}

fn alter_client_quotas_request(_v: i16, p: &Palette) -> AlterClientQuotasRequest {
    use alter_client_quotas_request::{EntityData, EntryData, OpData};
    let mut m = AlterClientQuotasRequest::default();
    m.entries = (0..p.n(0))
        .map(|i| {
            let mut e = EntryData::default();
            e.entity = (0..p.n(i))
                .map(|j| {
                    let mut d = EntityData::default();
                    d.entity_type = p.s(j);
                    d.entity_name = p.opt(j);
                    d
                })
                .collect();
            e.ops = (0..p.n(i + 1))
                .map(|j| {
                    let mut o = OpData::default();
                    o.key = p.s(j + 1);
                    o.value = quota_value(p, j);
                    o.remove = p.flag(j);
                    o
                })
                .collect();
            e
        })
        .collect();
    m.validate_only = p.flag(0);
    m
}

fn alter_client_quotas_response(_v: i16, p: &Palette) -> AlterClientQuotasResponse {
    use alter_client_quotas_response::{EntityData, EntryData};
    let mut m = AlterClientQuotasResponse::default();
    m.throttle_time_ms = p.i32(0);
    m.entries = (0..p.n(0))
        .map(|i| {
            let mut e = EntryData::default();
            e.error_code = p.i16(i);
            e.error_message = p.opt(i);
            e.entity = (0..p.n(i + 1))
                .map(|j| {
                    let mut d = EntityData::default();
                    d.entity_type = p.s(j);
                    d.entity_name = p.opt(j + 1);
                    d
                })
                .collect();
            e
        })
        .collect();
    m
}

fn describe_acls_request(_v: i16, p: &Palette) -> DescribeAclsRequest {
    let mut m = DescribeAclsRequest::default();
    m.resource_type_filter = p.i8(0);
    m.resource_name_filter = p.opt(0);
    m.pattern_type_filter = p.i8(1);
    m.principal_filter = p.opt(1);
    m.host_filter = p.opt(2);
    m.operation = p.i8(2);
    m.permission_type = p.i8(3);
    m
}

fn describe_acls_response(_v: i16, p: &Palette) -> DescribeAclsResponse {
    use describe_acls_response::{AclDescription, DescribeAclsResource};
    let mut m = DescribeAclsResponse::default();
    m.throttle_time_ms = p.i32(0);
    m.error_code = p.i16(1);
    m.error_message = p.opt(0);
    m.resources = (0..p.n(0))
        .map(|i| {
            let mut r = DescribeAclsResource::default();
            r.resource_type = p.i8(i);
            r.resource_name = p.s(i);
            r.pattern_type = p.i8(i + 1);
            r.acls = (0..p.n(i + 1))
                .map(|j| {
                    let mut a = AclDescription::default();
                    a.principal = p.s(j);
                    a.host = p.s(j + 1);
                    a.operation = p.i8(j);
                    a.permission_type = p.i8(j + 1);
                    a
                })
                .collect();
            r
        })
        .collect();
    m
}

fn create_acls_request(_v: i16, p: &Palette) -> CreateAclsRequest {
    use create_acls_request::AclCreation;
    let mut m = CreateAclsRequest::default();
    m.creations = (0..p.n(0))
        .map(|i| {
            let mut c = AclCreation::default();
            c.resource_type = p.i8(i);
            c.resource_name = p.s(i);
            c.resource_pattern_type = p.i8(i + 1);
            c.principal = p.s(i + 1);
            c.host = p.s(i + 2);
            c.operation = p.i8(i + 2);
            c.permission_type = p.i8(i + 3);
            c
        })
        .collect();
    m
}

fn create_acls_response(_v: i16, p: &Palette) -> CreateAclsResponse {
    use create_acls_response::AclCreationResult;
    let mut m = CreateAclsResponse::default();
    m.throttle_time_ms = p.i32(0);
    m.results = (0..p.n(0))
        .map(|i| {
            let mut r = AclCreationResult::default();
            r.error_code = p.i16(i);
            r.error_message = p.opt(i);
            r
        })
        .collect();
    m
}

fn delete_acls_request(_v: i16, p: &Palette) -> DeleteAclsRequest {
    use delete_acls_request::DeleteAclsFilter;
    let mut m = DeleteAclsRequest::default();
    m.filters = (0..p.n(0))
        .map(|i| {
            let mut f = DeleteAclsFilter::default();
            f.resource_type_filter = p.i8(i);
            f.resource_name_filter = p.opt(i);
            f.pattern_type_filter = p.i8(i + 1);
            f.principal_filter = p.opt(i + 1);
            f.host_filter = p.opt(i + 2);
            f.operation = p.i8(i + 2);
            f.permission_type = p.i8(i + 3);
            f
        })
        .collect();
    m
}

fn delete_acls_response(_v: i16, p: &Palette) -> DeleteAclsResponse {
    use delete_acls_response::{DeleteAclsFilterResult, DeleteAclsMatchingAcl};
    let mut m = DeleteAclsResponse::default();
    m.throttle_time_ms = p.i32(0);
    m.filter_results = (0..p.n(0))
        .map(|i| {
            let mut r = DeleteAclsFilterResult::default();
            r.error_code = p.i16(i);
            r.error_message = p.opt(i);
            r.matching_acls = (0..p.n(i + 1))
                .map(|j| {
                    let mut a = DeleteAclsMatchingAcl::default();
                    a.error_code = p.i16(j);
                    a.error_message = p.opt(j);
                    a.resource_type = p.i8(j);
                    a.resource_name = p.s(j);
                    a.pattern_type = p.i8(j + 1);
                    a.principal = p.s(j + 1);
                    a.host = p.s(j + 2);
                    a.operation = p.i8(j + 2);
                    a.permission_type = p.i8(j + 3);
                    a
                })
                .collect();
            r
        })
        .collect();
    m
}
