//! Every refusal `screen` builds must encode at every version Weir advertises:
//! a field set outside its versions would fail the encoder and close the
//! connection, which a refusal must never do.

use std::rc::Rc;

use bytes::BytesMut;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

use super::screen::{screen, Screened};
use super::{Access, Authorizer};
use crate::metadata::Catalog;

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

fn requests() -> Vec<RequestKind> {
    [
        topic_requests(),
        group_requests(),
        group_admin_requests(),
        admin_requests(),
    ]
    .concat()
}

fn topic() -> TopicName {
    TopicName(s("t"))
}

fn group() -> GroupId {
    GroupId(s("g"))
}

fn txn() -> TransactionalId {
    TransactionalId(s("x"))
}

fn topic_requests() -> Vec<RequestKind> {
    vec![
        MetadataRequest::default()
            .with_topics(Some(vec![
                metadata_request::MetadataRequestTopic::default().with_name(Some(topic()))
            ]))
            .into(),
        ListOffsetsRequest::default()
            .with_topics(vec![list_offsets_request::ListOffsetsTopic::default()
                .with_name(topic())
                .with_partitions(vec![Default::default()])])
            .into(),
        OffsetForLeaderEpochRequest::default()
            .with_topics(vec![
                offset_for_leader_epoch_request::OffsetForLeaderTopic::default()
                    .with_topic(topic())
                    .with_partitions(vec![Default::default()]),
            ])
            .into(),
    ]
}

fn group_requests() -> Vec<RequestKind> {
    vec![
        JoinGroupRequest::default().with_group_id(group()).into(),
        SyncGroupRequest::default().with_group_id(group()).into(),
        HeartbeatRequest::default().with_group_id(group()).into(),
        LeaveGroupRequest::default().with_group_id(group()).into(),
        ConsumerGroupHeartbeatRequest::default()
            .with_group_id(group())
            .into(),
        OffsetCommitRequest::default()
            .with_group_id(group())
            .with_topics(vec![offset_commit_request::OffsetCommitRequestTopic::default()
                .with_name(topic())
                .with_partitions(vec![Default::default()])])
            .into(),
        OffsetFetchRequest::default()
            .with_group_id(group())
            .with_topics(Some(vec![
                offset_fetch_request::OffsetFetchRequestTopic::default()
                    .with_name(topic())
                    .with_partition_indexes(vec![0]),
            ]))
            .with_groups(vec![
                offset_fetch_request::OffsetFetchRequestGroup::default().with_group_id(group())
            ])
            .into(),
        FindCoordinatorRequest::default()
            .with_key(s("g"))
            .with_coordinator_keys(vec![s("g")])
            .into(),
        InitProducerIdRequest::default()
            .with_transactional_id(Some(txn()))
            .into(),
        EndTxnRequest::default().with_transactional_id(txn()).into(),
        AddOffsetsToTxnRequest::default()
            .with_transactional_id(txn())
            .into(),
        AddPartitionsToTxnRequest::default()
            .with_v3_and_below_transactional_id(txn())
            .with_v3_and_below_topics(vec![
                add_partitions_to_txn_request::AddPartitionsToTxnTopic::default()
                    .with_name(topic())
                    .with_partitions(vec![0]),
            ])
            .into(),
        TxnOffsetCommitRequest::default()
            .with_transactional_id(txn())
            .with_topics(vec![
                txn_offset_commit_request::TxnOffsetCommitRequestTopic::default()
                    .with_name(topic())
                    .with_partitions(vec![Default::default()]),
            ])
            .into(),
    ]
}

fn group_admin_requests() -> Vec<RequestKind> {
    vec![
        DescribeGroupsRequest::default().with_groups(vec![group()]).into(),
        ConsumerGroupDescribeRequest::default()
            .with_group_ids(vec![group()])
            .into(),
        DeleteGroupsRequest::default()
            .with_groups_names(vec![group()])
            .into(),
        DescribeTransactionsRequest::default()
            .with_transactional_ids(vec![txn()])
            .into(),
        OffsetDeleteRequest::default().with_group_id(group()).into(),
    ]
}

fn admin_requests() -> Vec<RequestKind> {
    vec![
        CreateTopicsRequest::default()
            .with_topics(vec![
                create_topics_request::CreatableTopic::default().with_name(topic())
            ])
            .into(),
        DeleteTopicsRequest::default()
            .with_topic_names(vec![topic()])
            .with_topics(vec![
                delete_topics_request::DeleteTopicState::default().with_name(Some(topic()))
            ])
            .into(),
        CreatePartitionsRequest::default()
            .with_topics(vec![
                create_partitions_request::CreatePartitionsTopic::default().with_name(topic())
            ])
            .into(),
        DeleteRecordsRequest::default()
            .with_topics(vec![delete_records_request::DeleteRecordsTopic::default()
                .with_name(topic())
                .with_partitions(vec![Default::default()])])
            .into(),
        DescribeProducersRequest::default()
            .with_topics(vec![describe_producers_request::TopicRequest::default()
                .with_name(topic())
                .with_partition_indexes(vec![0])])
            .into(),
        DescribeTopicPartitionsRequest::default()
            .with_topics(vec![
                describe_topic_partitions_request::TopicRequest::default().with_name(topic())
            ])
            .into(),
        DescribeConfigsRequest::default()
            .with_resources(vec![describe_configs_request::DescribeConfigsResource::default()
                .with_resource_type(2)
                .with_resource_name(s("t"))])
            .into(),
        AlterConfigsRequest::default()
            .with_resources(vec![alter_configs_request::AlterConfigsResource::default()
                .with_resource_type(4)
                .with_resource_name(s("0"))])
            .into(),
        IncrementalAlterConfigsRequest::default()
            .with_resources(vec![
                incremental_alter_configs_request::AlterConfigsResource::default()
                    .with_resource_type(2)
                    .with_resource_name(s("t")),
            ])
            .into(),
        CreateAclsRequest::default()
            .with_creations(vec![Default::default()])
            .into(),
        DeleteAclsRequest::default()
            .with_filters(vec![Default::default()])
            .into(),
        DescribeAclsRequest::default().into(),
        AlterUserScramCredentialsRequest::default()
            .with_deletions(vec![Default::default()])
            .into(),
        DescribeUserScramCredentialsRequest::default().into(),
        ElectLeadersRequest::default()
            .with_topic_partitions(Some(vec![elect_leaders_request::TopicPartitions::default()
                .with_topic(topic())
                .with_partitions(vec![0])]))
            .into(),
        DescribeLogDirsRequest::default().into(),
    ]
}

/// `Some(XResponse::default())` for the listed APIs.
macro_rules! empty_of {
    ($key:expr, $($k:ident => $t:ident),*) => {
        match $key {
            $(ApiKey::$k => Some(ResponseKind::$k($t::default())),)*
            _ => None,
        }
    };
}

/// The handler's answer to a request it was left nothing of.
fn empty(key: ApiKey) -> ResponseKind {
    empty_topics(key)
        .or_else(|| empty_others(key))
        .unwrap_or_else(|| panic!("no empty response for {key:?}"))
}

fn empty_topics(key: ApiKey) -> Option<ResponseKind> {
    empty_of!(key, Metadata => MetadataResponse, ListOffsets => ListOffsetsResponse,
        OffsetForLeaderEpoch => OffsetForLeaderEpochResponse, CreateTopics => CreateTopicsResponse,
        DeleteTopics => DeleteTopicsResponse, CreatePartitions => CreatePartitionsResponse,
        DeleteRecords => DeleteRecordsResponse, DescribeProducers => DescribeProducersResponse,
        DescribeTopicPartitions => DescribeTopicPartitionsResponse,
        DescribeConfigs => DescribeConfigsResponse, AlterConfigs => AlterConfigsResponse,
        IncrementalAlterConfigs => IncrementalAlterConfigsResponse)
}

fn empty_others(key: ApiKey) -> Option<ResponseKind> {
    empty_of!(key, OffsetCommit => OffsetCommitResponse, OffsetFetch => OffsetFetchResponse,
        FindCoordinator => FindCoordinatorResponse, TxnOffsetCommit => TxnOffsetCommitResponse,
        DescribeGroups => DescribeGroupsResponse, ConsumerGroupDescribe => ConsumerGroupDescribeResponse,
        DeleteGroups => DeleteGroupsResponse, DescribeTransactions => DescribeTransactionsResponse)
}

fn key_of(r: &RequestKind) -> ApiKey {
    let name = format!("{r:?}");
    let name = name.split('(').next().unwrap_or_default().to_string();
    weir_protocol::api::SUPPORTED_APIS
        .iter()
        .map(|a| a.key)
        .find(|k| format!("{k:?}") == name)
        .unwrap_or_else(|| panic!("{name} is not supported"))
}

#[test]
fn given_a_principal_without_acls_when_every_api_is_refused_should_encode_at_every_version() {
    let access = Access {
        authz: Rc::new(Authorizer::default()),
        principal: Some("User:nobody".into()),
        peer: "127.0.0.1:1".parse().unwrap(),
    };
    let catalog = Catalog::new("c".into());
    for request in requests() {
        let key = key_of(&request);
        let range = weir_protocol::api::supported(key).unwrap();
        for version in range.decodable_min_version()..=range.max_version {
            let response = match screen(&access, &catalog, request.clone(), version) {
                Screened::Deny(r) => r,
                Screened::Pass(_, patch) => {
                    let mut r = empty(key);
                    if let Some(p) = patch {
                        p(&mut r);
                    }
                    r
                }
            };
            let mut out = BytesMut::new();
            let encoded = weir_protocol::frame::encode_response(&mut out, key, version, 1, &response);
            assert!(encoded.is_ok(), "{key:?} v{version}: {encoded:?}\n{response:?}");
        }
    }
}
