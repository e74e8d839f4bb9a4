//! The Kafka APIs Weir speaks and the version range of each: the single table
//! behind the ApiVersions response, request admission and the round-trip tests.
//!
//! Invariant: every range lies within what the `kafka-protocol` schemas can
//! encode and decode, checked by the tests below. An API absent from this table
//! is absent from ApiVersions and a request for it gets UNSUPPORTED_VERSION.

use kafka_protocol::messages::ApiKey;

/// One supported API and its inclusive version range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SupportedApi {
    pub key: ApiKey,
    pub min_version: i16,
    pub max_version: i16,
}

impl SupportedApi {
    /// The lowest version Weir decodes (Produce/Fetch advertise lower, see below).
    pub fn decodable_min_version(&self) -> i16 {
        self.min_version.max(self.key.valid_versions().min)
    }
}

const fn api(key: ApiKey, min_version: i16, max_version: i16) -> SupportedApi {
    SupportedApi {
        key,
        min_version,
        max_version,
    }
}

/// Produce and Fetch are advertised from v0 although only v3/v4 and up are
/// decoded (message format v2 only): librdkafka 2.0.2 (Debian's kcat) enables
/// gzip, snappy and lz4 only when the broker's Produce/Fetch ranges include the
/// old versions, and otherwise silently sends uncompressed batches (measured
/// with `kcat -d msg`: "Broker does not support compression type gzip").
/// A request below the decodable minimum is refused by `is_decodable`.
///
/// Versions librdkafka 2.x (Debian's 2.0.2 through 2.16) and the Java client
/// 3.x/4.x negotiate, capped by the schemas of kafka-protocol 0.18. Produce stops
/// at 11 and Fetch at 16 because Produce 13 and Fetch 17+ (KIP-516/KIP-1102)
/// change topic addressing in ways no client here exercises yet.
pub const SUPPORTED_APIS: &[SupportedApi] = &[
    api(ApiKey::Produce, 0, 11),
    api(ApiKey::Fetch, 0, 16),
    api(ApiKey::ListOffsets, 1, 9),
    api(ApiKey::Metadata, 0, 12),
    api(ApiKey::OffsetCommit, 2, 9),
    api(ApiKey::OffsetFetch, 1, 9),
    api(ApiKey::FindCoordinator, 0, 6),
    api(ApiKey::JoinGroup, 0, 9),
    api(ApiKey::Heartbeat, 0, 4),
    api(ApiKey::LeaveGroup, 0, 5),
    api(ApiKey::SyncGroup, 0, 5),
    api(ApiKey::DescribeGroups, 0, 5),
    api(ApiKey::ListGroups, 0, 5),
    api(ApiKey::ApiVersions, 0, 4),
    api(ApiKey::CreateTopics, 2, 7),
    api(ApiKey::DeleteTopics, 1, 6),
    api(ApiKey::DescribeConfigs, 1, 4),
    api(ApiKey::CreatePartitions, 0, 3),
    api(ApiKey::DeleteRecords, 0, 2),
    api(ApiKey::AlterConfigs, 0, 2),
    api(ApiKey::IncrementalAlterConfigs, 0, 1),
    api(ApiKey::OffsetDelete, 0, 0),
    api(ApiKey::OffsetForLeaderEpoch, 2, 4),
    api(ApiKey::InitProducerId, 0, 5),
    api(ApiKey::DescribeProducers, 0, 0),
    // Transactions: the versions before KIP-890's transaction version 2 (which
    // needs Produce 12+, capped above) and before TRANSACTION_ABORTABLE (KIP-890
    // part 1 errors in AddOffsets/EndTxn/TxnOffsetCommit v4). AddPartitionsToTxn
    // v4+ is the broker-to-broker form.
    api(ApiKey::AddPartitionsToTxn, 0, 3),
    api(ApiKey::AddOffsetsToTxn, 0, 3),
    api(ApiKey::EndTxn, 0, 3),
    api(ApiKey::TxnOffsetCommit, 0, 3),
    api(ApiKey::ListTransactions, 0, 1),
    api(ApiKey::DescribeTransactions, 0, 0),
    api(ApiKey::DeleteGroups, 0, 2),
    api(ApiKey::DescribeCluster, 0, 2),
    api(ApiKey::ElectLeaders, 0, 2),
    api(ApiKey::DescribeLogDirs, 1, 4),
    api(ApiKey::ConsumerGroupHeartbeat, 0, 1),
    api(ApiKey::ConsumerGroupDescribe, 0, 1),
    api(ApiKey::DescribeTopicPartitions, 0, 0),
    // Share groups (KIP-932, Kafka 4.1's v1; v0 was the early-access form).
    api(ApiKey::ShareGroupHeartbeat, 1, 1),
    api(ApiKey::ShareGroupDescribe, 1, 1),
    api(ApiKey::ShareFetch, 1, 1),
    api(ApiKey::ShareAcknowledge, 1, 1),
    api(ApiKey::DescribeShareGroupOffsets, 0, 0),
    api(ApiKey::AlterShareGroupOffsets, 0, 0),
    api(ApiKey::DeleteShareGroupOffsets, 0, 0),
    // SASL (broker/src/network/sasl.rs). SaslHandshake v0 is advertised because
    // librdkafka 2.0.2 (Debian's kcat) enables SASL handshakes only when the
    // range includes 0 (measured: "SASL Handshake not supported by broker");
    // it then uses v1. A v0 request (raw tokens after it) is answered
    // UNSUPPORTED_VERSION and the connection closed.
    api(ApiKey::SaslHandshake, 0, 1),
    api(ApiKey::SaslAuthenticate, 0, 2),
    api(ApiKey::DescribeUserScramCredentials, 0, 0),
    api(ApiKey::AlterUserScramCredentials, 0, 0),
    // Client quotas (broker/src/handlers/client_quotas.rs).
    api(ApiKey::DescribeClientQuotas, 0, 1),
    api(ApiKey::AlterClientQuotas, 0, 1),
    // ACLs (broker/src/handlers/acls.rs); v0 is below the schemas' range.
    api(ApiKey::DescribeAcls, 1, 3),
    api(ApiKey::CreateAcls, 1, 3),
    api(ApiKey::DeleteAcls, 1, 3),
];

/// The supported range for `key`, if Weir speaks it at all.
pub fn supported(key: ApiKey) -> Option<SupportedApi> {
    SUPPORTED_APIS.iter().copied().find(|a| a.key == key)
}

/// Whether `version` of `key` may be decoded and answered: advertised, and
/// within the schemas' range.
pub fn is_decodable(key: ApiKey, version: i16) -> bool {
    is_supported(key, version) && version >= key.valid_versions().min
}

/// Whether `version` of `key` is advertised in ApiVersions.
pub fn is_supported(key: ApiKey, version: i16) -> bool {
    supported(key).is_some_and(|a| (a.min_version..=a.max_version).contains(&version))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_the_table_when_compared_with_the_schemas_should_lie_within_them() {
        for a in SUPPORTED_APIS {
            let schema = a.key.valid_versions();
            assert!(a.min_version <= a.max_version, "{:?}", a.key);
            assert!(a.max_version <= schema.max, "{:?}", a.key);
            let advertised_below_schema = matches!(a.key, ApiKey::Produce | ApiKey::Fetch);
            assert!(
                advertised_below_schema || schema.min <= a.min_version,
                "{:?}",
                a.key
            );
        }
    }

    #[test]
    fn given_an_unknown_version_when_checked_should_be_unsupported() {
        assert!(is_supported(ApiKey::Produce, 7));
        assert!(is_supported(ApiKey::Produce, 2) && !is_decodable(ApiKey::Produce, 2));
        assert!(is_decodable(ApiKey::Produce, 3));
        assert!(!is_supported(ApiKey::Produce, 12));
        assert!(
            !is_supported(ApiKey::CreateDelegationToken, 0),
            "delegation tokens are not served"
        );
        assert!(!is_supported(ApiKey::CreateAcls, 0) && is_supported(ApiKey::CreateAcls, 1));
    }
}
