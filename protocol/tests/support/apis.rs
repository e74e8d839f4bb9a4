//! Static dispatch from an `ApiKey` to its request and response types, for the
//! APIs in SUPPORTED_APIS (kafka-protocol's `RequestKind` enums sit behind a
//! feature Weir does not enable). An unknown key panics: a new table entry must
//! be added here too.

/// `with_types!(key, Req, Resp => body)`: run `body` with `Req`/`Resp` bound
/// to the request and response types of `key`.
#[macro_export]
macro_rules! with_types {
    ($key:expr, $req:ident, $resp:ident => $body:expr) => {{
        use kafka_protocol::messages::*;
        match $key {
            ApiKey::Produce => {
                type $req = ProduceRequest;
                type $resp = ProduceResponse;
                $body
            }
            ApiKey::Fetch => {
                type $req = FetchRequest;
                type $resp = FetchResponse;
                $body
            }
            ApiKey::ListOffsets => {
                type $req = ListOffsetsRequest;
                type $resp = ListOffsetsResponse;
                $body
            }
            ApiKey::Metadata => {
                type $req = MetadataRequest;
                type $resp = MetadataResponse;
                $body
            }
            ApiKey::OffsetCommit => {
                type $req = OffsetCommitRequest;
                type $resp = OffsetCommitResponse;
                $body
            }
            ApiKey::OffsetFetch => {
                type $req = OffsetFetchRequest;
                type $resp = OffsetFetchResponse;
                $body
            }
            ApiKey::FindCoordinator => {
                type $req = FindCoordinatorRequest;
                type $resp = FindCoordinatorResponse;
                $body
            }
            ApiKey::JoinGroup => {
                type $req = JoinGroupRequest;
                type $resp = JoinGroupResponse;
                $body
            }
            ApiKey::Heartbeat => {
                type $req = HeartbeatRequest;
                type $resp = HeartbeatResponse;
                $body
            }
            ApiKey::LeaveGroup => {
                type $req = LeaveGroupRequest;
                type $resp = LeaveGroupResponse;
                $body
            }
            ApiKey::SyncGroup => {
                type $req = SyncGroupRequest;
                type $resp = SyncGroupResponse;
                $body
            }
            ApiKey::DescribeGroups => {
                type $req = DescribeGroupsRequest;
                type $resp = DescribeGroupsResponse;
                $body
            }
            ApiKey::ListGroups => {
                type $req = ListGroupsRequest;
                type $resp = ListGroupsResponse;
                $body
            }
            ApiKey::ApiVersions => {
                type $req = ApiVersionsRequest;
                type $resp = ApiVersionsResponse;
                $body
            }
            ApiKey::CreateTopics => {
                type $req = CreateTopicsRequest;
                type $resp = CreateTopicsResponse;
                $body
            }
            ApiKey::DeleteTopics => {
                type $req = DeleteTopicsRequest;
                type $resp = DeleteTopicsResponse;
                $body
            }
            ApiKey::DescribeConfigs => {
                type $req = DescribeConfigsRequest;
                type $resp = DescribeConfigsResponse;
                $body
            }
            ApiKey::CreatePartitions => {
                type $req = CreatePartitionsRequest;
                type $resp = CreatePartitionsResponse;
                $body
            }
            ApiKey::DeleteRecords => {
                type $req = DeleteRecordsRequest;
                type $resp = DeleteRecordsResponse;
                $body
            }
            ApiKey::AlterConfigs => {
                type $req = AlterConfigsRequest;
                type $resp = AlterConfigsResponse;
                $body
            }
            ApiKey::IncrementalAlterConfigs => {
                type $req = IncrementalAlterConfigsRequest;
                type $resp = IncrementalAlterConfigsResponse;
                $body
            }
            ApiKey::OffsetForLeaderEpoch => {
                type $req = OffsetForLeaderEpochRequest;
                type $resp = OffsetForLeaderEpochResponse;
                $body
            }
            ApiKey::OffsetDelete => {
                type $req = OffsetDeleteRequest;
                type $resp = OffsetDeleteResponse;
                $body
            }
            ApiKey::DescribeProducers => {
                type $req = DescribeProducersRequest;
                type $resp = DescribeProducersResponse;
                $body
            }
            ApiKey::InitProducerId => {
                type $req = InitProducerIdRequest;
                type $resp = InitProducerIdResponse;
                $body
            }
            ApiKey::AddPartitionsToTxn => {
                type $req = AddPartitionsToTxnRequest;
                type $resp = AddPartitionsToTxnResponse;
                $body
            }
            ApiKey::AddOffsetsToTxn => {
                type $req = AddOffsetsToTxnRequest;
                type $resp = AddOffsetsToTxnResponse;
                $body
            }
            ApiKey::EndTxn => {
                type $req = EndTxnRequest;
                type $resp = EndTxnResponse;
                $body
            }
            ApiKey::TxnOffsetCommit => {
                type $req = TxnOffsetCommitRequest;
                type $resp = TxnOffsetCommitResponse;
                $body
            }
            ApiKey::ListTransactions => {
                type $req = ListTransactionsRequest;
                type $resp = ListTransactionsResponse;
                $body
            }
            ApiKey::DescribeTransactions => {
                type $req = DescribeTransactionsRequest;
                type $resp = DescribeTransactionsResponse;
                $body
            }
            ApiKey::DeleteGroups => {
                type $req = DeleteGroupsRequest;
                type $resp = DeleteGroupsResponse;
                $body
            }
            ApiKey::DescribeCluster => {
                type $req = DescribeClusterRequest;
                type $resp = DescribeClusterResponse;
                $body
            }
            ApiKey::ElectLeaders => {
                type $req = ElectLeadersRequest;
                type $resp = ElectLeadersResponse;
                $body
            }
            ApiKey::DescribeLogDirs => {
                type $req = DescribeLogDirsRequest;
                type $resp = DescribeLogDirsResponse;
                $body
            }
            ApiKey::ConsumerGroupHeartbeat => {
                type $req = ConsumerGroupHeartbeatRequest;
                type $resp = ConsumerGroupHeartbeatResponse;
                $body
            }
            ApiKey::ConsumerGroupDescribe => {
                type $req = ConsumerGroupDescribeRequest;
                type $resp = ConsumerGroupDescribeResponse;
                $body
            }
            ApiKey::ShareGroupHeartbeat => {
                type $req = ShareGroupHeartbeatRequest;
                type $resp = ShareGroupHeartbeatResponse;
                $body
            }
            ApiKey::ShareGroupDescribe => {
                type $req = ShareGroupDescribeRequest;
                type $resp = ShareGroupDescribeResponse;
                $body
            }
            ApiKey::ShareFetch => {
                type $req = ShareFetchRequest;
                type $resp = ShareFetchResponse;
                $body
            }
            ApiKey::ShareAcknowledge => {
                type $req = ShareAcknowledgeRequest;
                type $resp = ShareAcknowledgeResponse;
                $body
            }
            ApiKey::AlterShareGroupOffsets => {
                type $req = AlterShareGroupOffsetsRequest;
                type $resp = AlterShareGroupOffsetsResponse;
                $body
            }
            ApiKey::DeleteShareGroupOffsets => {
                type $req = DeleteShareGroupOffsetsRequest;
                type $resp = DeleteShareGroupOffsetsResponse;
                $body
            }
            ApiKey::DescribeShareGroupOffsets => {
                type $req = DescribeShareGroupOffsetsRequest;
                type $resp = DescribeShareGroupOffsetsResponse;
                $body
            }
            ApiKey::DescribeTopicPartitions => {
                type $req = DescribeTopicPartitionsRequest;
                type $resp = DescribeTopicPartitionsResponse;
                $body
            }
            ApiKey::SaslHandshake => {
                type $req = SaslHandshakeRequest;
                type $resp = SaslHandshakeResponse;
                $body
            }
            ApiKey::SaslAuthenticate => {
                type $req = SaslAuthenticateRequest;
                type $resp = SaslAuthenticateResponse;
                $body
            }
            ApiKey::DescribeUserScramCredentials => {
                type $req = DescribeUserScramCredentialsRequest;
                type $resp = DescribeUserScramCredentialsResponse;
                $body
            }
            ApiKey::AlterUserScramCredentials => {
                type $req = AlterUserScramCredentialsRequest;
                type $resp = AlterUserScramCredentialsResponse;
                $body
            }
            ApiKey::DescribeClientQuotas => {
                type $req = DescribeClientQuotasRequest;
                type $resp = DescribeClientQuotasResponse;
                $body
            }
            ApiKey::AlterClientQuotas => {
                type $req = AlterClientQuotasRequest;
                type $resp = AlterClientQuotasResponse;
                $body
            }
            ApiKey::DescribeAcls => {
                type $req = DescribeAclsRequest;
                type $resp = DescribeAclsResponse;
                $body
            }
            ApiKey::CreateAcls => {
                type $req = CreateAclsRequest;
                type $resp = CreateAclsResponse;
                $body
            }
            ApiKey::DeleteAcls => {
                type $req = DeleteAclsRequest;
                type $resp = DeleteAclsResponse;
                $body
            }
            other => panic!("no types for {other:?}: add it to tests/support/apis.rs"),
        }
    }};
}
