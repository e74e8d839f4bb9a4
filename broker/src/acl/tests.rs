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
        share_requests(),
    ]
    .concat()
}

/// A catalog that knows topic `t`, so share requests naming it by id are screened.
fn catalog() -> Catalog {
    use crate::metadata::catalog::Placement;
    let placement = Placement::Balanced {
        partitions: 1,
        replication_factor: 1,
    };
    Catalog::new("c".into()).with_topic("t", [7; 16], placement, crate::metadata::test_topic_config(), 1)
}

fn topic_id() -> uuid::Uuid {
    uuid::Uuid::from_bytes([7; 16])
}

fn share_requests() -> Vec<RequestKind> {
    let acks = vec![share_fetch_request::AcknowledgementBatch::default()
        .with_first_offset(0)
        .with_last_offset(0)
        .with_acknowledge_types(vec![1])];
    vec![
        ShareGroupHeartbeatRequest::default()
            .with_group_id(group())
            .into(),
        ShareFetchRequest::default()
            .with_group_id(Some(group()))
            .with_topics(vec![share_fetch_request::FetchTopic::default()
                .with_topic_id(topic_id())
                .with_partitions(vec![
                    share_fetch_request::FetchPartition::default().with_acknowledgement_batches(acks)
                ])])
            .into(),
        ShareAcknowledgeRequest::default()
            .with_group_id(Some(group()))
            .with_topics(vec![share_acknowledge_request::AcknowledgeTopic::default()
                .with_topic_id(topic_id())
                .with_partitions(vec![Default::default()])])
            .into(),
        ShareGroupDescribeRequest::default()
            .with_group_ids(vec![group()])
            .with_include_authorized_operations(true)
            .into(),
        DescribeShareGroupOffsetsRequest::default()
            .with_groups(vec![
                describe_share_group_offsets_request::DescribeShareGroupOffsetsRequestGroup::default()
                    .with_group_id(group())
                    .with_topics(Some(vec![
                        describe_share_group_offsets_request::DescribeShareGroupOffsetsRequestTopic::default(
                        )
                        .with_topic_name(topic())
                        .with_partitions(vec![0]),
                    ])),
            ])
            .into(),
        AlterShareGroupOffsetsRequest::default()
            .with_group_id(group())
            .into(),
        DeleteShareGroupOffsetsRequest::default()
            .with_group_id(group())
            .into(),
    ]
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
    .or_else(|| {
        empty_of!(key, ShareFetch => ShareFetchResponse, ShareAcknowledge => ShareAcknowledgeResponse,
            ShareGroupDescribe => ShareGroupDescribeResponse,
            DescribeShareGroupOffsets => DescribeShareGroupOffsetsResponse)
    })
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
    let catalog = catalog();
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

fn access(acls: &[crate::metadata::acl::AclBinding]) -> Access {
    Access {
        authz: Rc::new(Authorizer::new(acls, &[])),
        principal: Some("User:alice".into()),
        peer: "127.0.0.1:1".parse().unwrap(),
    }
}

fn allow(rtype: i8, name: &str, operation: i8) -> crate::metadata::acl::AclBinding {
    use crate::metadata::acl::{pattern, permission};
    crate::metadata::acl::AclBinding {
        resource_type: rtype,
        resource_name: name.into(),
        pattern_type: pattern::LITERAL,
        principal: "User:alice".into(),
        host: "*".into(),
        operation,
        permission: permission::ALLOW,
    }
}

/// Run `request` through the screen and `handler_answer` through its patch.
fn answer(
    a: &Access,
    request: RequestKind,
    handler_answer: ResponseKind,
) -> (Option<RequestKind>, ResponseKind) {
    match screen(a, &catalog(), request, 1) {
        Screened::Deny(r) => (None, r),
        Screened::Pass(left, patch) => {
            let mut r = handler_answer;
            if let Some(p) = patch {
                p(&mut r);
            }
            (Some(left), r)
        }
    }
}

#[test]
fn given_read_on_the_group_only_when_share_fetching_should_refuse_the_topic_and_its_acks() {
    use crate::metadata::acl::{op, resource};
    let a = access(&[allow(resource::GROUP, "g", op::READ)]);
    let fetch = share_requests().swap_remove(1);
    let (left, r) = answer(&a, fetch.clone(), ResponseKind::ShareFetch(Default::default()));
    let Some(RequestKind::ShareFetch(left)) = left else {
        panic!("{left:?}")
    };
    assert!(left.topics.is_empty(), "the unreadable topic reaches the handler");
    let ResponseKind::ShareFetch(r) = r else { panic!() };
    let p = &r.responses[0].partitions[0];
    assert_eq!(
        (r.responses[0].topic_id, p.error_code, p.acknowledge_error_code),
        (topic_id(), 29, 29)
    );
    // With READ on the topic too, the request passes whole.
    let a = access(&[
        allow(resource::GROUP, "g", op::READ),
        allow(resource::TOPIC, "t", op::READ),
    ]);
    let (left, _) = answer(&a, fetch, ResponseKind::ShareFetch(Default::default()));
    let Some(RequestKind::ShareFetch(left)) = left else {
        panic!()
    };
    assert_eq!(left.topics.len(), 1);
    // Without READ on the group: the whole answer is 30.
    let a = access(&[allow(resource::TOPIC, "t", op::READ)]);
    let (left, r) = answer(
        &a,
        share_requests().swap_remove(2),
        ResponseKind::ShareAcknowledge(Default::default()),
    );
    let ResponseKind::ShareAcknowledge(r) = r else {
        panic!()
    };
    assert!(left.is_none());
    assert_eq!(r.error_code, 30);
}

#[test]
fn given_describe_only_when_describing_groups_and_topics_should_report_the_principals_operations() {
    use crate::metadata::acl::{op, resource};
    let a = access(&[
        allow(resource::GROUP, "g", op::DESCRIBE),
        allow(resource::TOPIC, "t", op::READ),
    ]);
    let described = share_group_describe_response::DescribedGroup::default().with_group_id(group());
    let handler = ShareGroupDescribeResponse::default().with_groups(vec![described]);
    let request = share_requests().swap_remove(3);
    let (_, r) = answer(&a, request, ResponseKind::ShareGroupDescribe(handler));
    let ResponseKind::ShareGroupDescribe(r) = r else {
        panic!()
    };
    assert_eq!(r.groups[0].authorized_operations, 1 << op::DESCRIBE);
    // DescribeTopicPartitions of every topic: `t` with READ (implies DESCRIBE), `u` hidden.
    let topics = ["t", "u"].map(|n| {
        describe_topic_partitions_response::DescribeTopicPartitionsResponseTopic::default()
            .with_name(Some(TopicName(s(n))))
    });
    let handler = DescribeTopicPartitionsResponse::default().with_topics(topics.to_vec());
    let (_, r) = answer(
        &a,
        DescribeTopicPartitionsRequest::default().into(),
        ResponseKind::DescribeTopicPartitions(handler),
    );
    let ResponseKind::DescribeTopicPartitions(r) = r else {
        panic!()
    };
    assert_eq!(r.topics.len(), 1, "{:?}", r.topics);
    assert_eq!(
        r.topics[0].topic_authorized_operations,
        (1 << op::READ) | (1 << op::DESCRIBE)
    );
    // DescribeGroups v3+ asking for operations.
    let handler = DescribeGroupsResponse::default().with_groups(vec![
        describe_groups_response::DescribedGroup::default().with_group_id(group()),
    ]);
    let request = DescribeGroupsRequest::default()
        .with_groups(vec![group(), GroupId(s("other"))])
        .with_include_authorized_operations(true);
    let (_, r) = answer(&a, request.into(), ResponseKind::DescribeGroups(handler));
    let ResponseKind::DescribeGroups(r) = r else {
        panic!()
    };
    assert_eq!(r.groups[0].authorized_operations, 1 << op::DESCRIBE);
    assert_eq!(
        (r.groups[1].group_id.0.as_str(), r.groups[1].error_code),
        ("other", 30)
    );
}
