//! Version negotiation: the versions this client speaks (`CLIENT_APIS`, the
//! one table every Weir client and the loadgen's null broker use) and, per
//! API, min(our max, the broker's max), refusing an API whose ranges do not
//! overlap. `Negotiation` drives the ApiVersions exchange sans-IO, including
//! the KIP-511 fallback: a broker that cannot parse our ApiVersions version
//! answers UNSUPPORTED_VERSION in v0 listing its own range, and we retry once
//! at its maximum.
//!
//! Pure; any thread. The transport sends `Negotiation::request` framed at
//! `Negotiation::version` and feeds the answer's body to `on_response`.

use bytes::Bytes;
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, ApiVersionsResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use crate::error::ProtocolError;
use crate::wire::decode_body;

/// A range of versions of one API, both ends included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiRange {
    pub key: ApiKey,
    pub min: i16,
    pub max: i16,
}

const fn range(key: ApiKey, min: i16, max: i16) -> ApiRange {
    ApiRange { key, min, max }
}

/// The versions this client speaks: within what kafka-protocol encodes, raised
/// where older versions lack what the builders need (RecordBatch v2 needs
/// Produce v3+ and Fetch v4+; OffsetCommit v2+ carries generation and member),
/// and capped where newer ones change the request's shape (FindCoordinator v4+
/// and OffsetFetch v8+ batch several groups, which the builders do not).
pub const CLIENT_APIS: &[ApiRange] = &[
    range(ApiKey::Produce, 3, 13),
    range(ApiKey::Fetch, 4, 18),
    range(ApiKey::ListOffsets, 1, 10),
    range(ApiKey::Metadata, 1, 13),
    range(ApiKey::OffsetCommit, 2, 9),
    range(ApiKey::OffsetFetch, 1, 7),
    range(ApiKey::FindCoordinator, 0, 3),
    range(ApiKey::JoinGroup, 0, 9),
    range(ApiKey::Heartbeat, 0, 4),
    range(ApiKey::LeaveGroup, 0, 5),
    range(ApiKey::SyncGroup, 0, 5),
    range(ApiKey::DescribeGroups, 0, 5),
    range(ApiKey::ListGroups, 0, 5),
    range(ApiKey::DeleteGroups, 0, 2),
    range(ApiKey::ApiVersions, 0, 4),
    range(ApiKey::CreateTopics, 2, 7),
    range(ApiKey::DeleteTopics, 1, 6),
    range(ApiKey::DescribeConfigs, 1, 4),
    range(ApiKey::CreatePartitions, 0, 3),
    range(ApiKey::DeleteRecords, 0, 2),
    range(ApiKey::DescribeLogDirs, 1, 4),
    range(ApiKey::IncrementalAlterConfigs, 0, 1),
    range(ApiKey::InitProducerId, 0, 5),
    range(ApiKey::DescribeProducers, 0, 0),
    // The client forms of the transaction APIs: AddPartitionsToTxn v4+ is
    // broker to broker, and EndTxn v5 / TxnOffsetCommit v4+ belong to KIP-890's
    // second transaction version, which needs Produce v12.
    range(ApiKey::AddPartitionsToTxn, 0, 3),
    range(ApiKey::AddOffsetsToTxn, 0, 3),
    range(ApiKey::TxnOffsetCommit, 0, 3),
    range(ApiKey::EndTxn, 0, 4),
    range(ApiKey::ListTransactions, 0, 1),
    range(ApiKey::DescribeTransactions, 0, 0),
    // SASL: the v1 handshake only (tokens framed in SaslAuthenticate).
    range(ApiKey::SaslHandshake, 1, 1),
    range(ApiKey::SaslAuthenticate, 0, 2),
    range(ApiKey::DescribeUserScramCredentials, 0, 0),
    range(ApiKey::AlterUserScramCredentials, 0, 0),
    range(ApiKey::DescribeClientQuotas, 0, 1),
    range(ApiKey::AlterClientQuotas, 0, 1),
    range(ApiKey::DescribeAcls, 1, 3),
    range(ApiKey::CreateAcls, 1, 3),
    range(ApiKey::DeleteAcls, 1, 3),
];

/// Our range for `key`, if this client speaks it.
pub fn client_range(key: ApiKey) -> Option<ApiRange> {
    CLIENT_APIS.iter().copied().find(|r| r.key == key)
}

/// The chosen version per API, or both sides' ranges when there is none.
#[derive(Debug, Clone, Default)]
pub struct VersionTable {
    chosen: Vec<(ApiKey, Result<i16, String>)>,
}

impl VersionTable {
    /// Intersect `CLIENT_APIS` with the broker's advertised `(key, min, max)`.
    pub fn from_broker(broker: &[(i16, i16, i16)]) -> Self {
        let chosen = CLIENT_APIS
            .iter()
            .map(|ours| {
                let pick = match broker.iter().find(|b| b.0 == ours.key as i16) {
                    None => Err("none".to_string()),
                    Some(&(_, min, max)) => {
                        let v = ours.max.min(max);
                        if v >= ours.min.max(min) {
                            Ok(v)
                        } else {
                            Err(format!("{min}..={max}"))
                        }
                    }
                };
                (ours.key, pick)
            })
            .collect();
        Self { chosen }
    }

    /// The negotiated version of `api`, or an error naming both ranges.
    pub fn version(&self, api: ApiKey) -> Result<i16, ProtocolError> {
        let theirs = match self.chosen.iter().find(|(k, _)| *k == api) {
            Some((_, Ok(v))) => return Ok(*v),
            Some((_, Err(theirs))) => theirs.clone(),
            None => "not negotiated".to_string(),
        };
        let ours = client_range(api).map_or("none".to_string(), |r| format!("{}..={}", r.min, r.max));
        Err(ProtocolError::NoCommonVersion { api, ours, theirs })
    }

    /// Lower the chosen version of `api` to at most `max` (if one was chosen).
    pub fn cap(&mut self, api: ApiKey, max: i16) {
        for (key, pick) in &mut self.chosen {
            if let (true, Ok(v)) = (*key == api, pick) {
                *v = (*v).min(max);
            }
        }
    }
}

/// What to do after an ApiVersions answer.
#[derive(Debug)]
pub enum Step {
    Done(VersionTable),
    /// Send the request again, at the (lowered) `Negotiation::version`.
    Retry,
}

/// The ApiVersions exchange: at most two rounds (ours, then the broker's max).
#[derive(Debug, Clone)]
pub struct Negotiation {
    version: i16,
    retried: bool,
    software_name: &'static str,
}

impl Negotiation {
    /// `software_name` is reported to the broker (KIP-511 client metrics).
    pub fn new(software_name: &'static str) -> Self {
        let ours = client_range(ApiKey::ApiVersions).expect("the client speaks ApiVersions");
        Self {
            version: ours.max,
            retried: false,
            software_name,
        }
    }

    /// The ApiVersions version to send next.
    pub fn version(&self) -> i16 {
        self.version
    }

    pub fn request(&self) -> ApiVersionsRequest {
        ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str(self.software_name))
            .with_client_software_version(StrBytes::from_static_str(env!("CARGO_PKG_VERSION")))
    }

    /// Consume the body (after the response header) of the answer to the
    /// request sent at `version()`.
    pub fn on_response(&mut self, body: &Bytes) -> Result<Step, ProtocolError> {
        match parse_api_versions(body, self.version)? {
            Parsed::Table(table) => Ok(Step::Done(table)),
            Parsed::Retry(broker_max) => {
                let next = broker_max.min(self.version - 1);
                if self.retried || next < 0 {
                    let detail = ": no ApiVersions version both sides speak";
                    return Err(ProtocolError::broker(ApiKey::ApiVersions, unsupported(), detail));
                }
                self.retried = true;
                self.version = next;
                Ok(Step::Retry)
            }
        }
    }
}

fn unsupported() -> i16 {
    ResponseError::UnsupportedVersion.code()
}

/// What an ApiVersions answer says.
#[derive(Debug)]
enum Parsed {
    Table(VersionTable),
    /// The broker rejected our version; it speaks up to this one.
    Retry(i16),
}

fn parse_api_versions(body: &Bytes, version: i16) -> Result<Parsed, ProtocolError> {
    let error_code = body.get(0..2).map(|b| i16::from_be_bytes([b[0], b[1]]));
    // KIP-511: an UNSUPPORTED_VERSION answer is encoded as v0 whatever we sent.
    let kip511 = error_code == Some(unsupported());
    let decode_version = if kip511 { 0 } else { version };
    let response: ApiVersionsResponse = decode_body(body.clone(), ApiKey::ApiVersions, decode_version)?;
    let ranges: Vec<(i16, i16, i16)> = response
        .api_keys
        .iter()
        .map(|k| (k.api_key, k.min_version, k.max_version))
        .collect();
    if kip511 {
        let own = ranges.iter().find(|r| r.0 == ApiKey::ApiVersions as i16);
        return Ok(Parsed::Retry(own.map_or(0, |r| r.2)));
    }
    crate::error::check(ApiKey::ApiVersions, response.error_code)?;
    Ok(Parsed::Table(VersionTable::from_broker(&ranges)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;
    use kafka_protocol::messages::api_versions_response::ApiVersion;
    use kafka_protocol::protocol::Encodable;

    fn answer(code: i16, ranges: &[(i16, i16, i16)], version: i16) -> Bytes {
        let response = ApiVersionsResponse::default()
            .with_error_code(code)
            .with_api_keys(
                ranges
                    .iter()
                    .map(|&(k, min, max)| {
                        ApiVersion::default()
                            .with_api_key(k)
                            .with_min_version(min)
                            .with_max_version(max)
                    })
                    .collect(),
            );
        let mut buf = BytesMut::new();
        response.encode(&mut buf, version).unwrap();
        buf.freeze()
    }

    #[test]
    fn given_the_table_when_compared_with_the_schemas_should_lie_within_them() {
        for r in CLIENT_APIS {
            let schema = r.key.valid_versions();
            assert!(
                schema.min <= r.min && r.min <= r.max && r.max <= schema.max,
                "{r:?}"
            );
        }
    }

    #[test]
    fn given_broker_ranges_when_negotiating_should_pick_min_of_maxima_and_refuse_gaps() {
        let table = VersionTable::from_broker(&[(0, 0, 9), (1, 0, 20), (3, 0, 4), (2, 0, 0), (19, 8, 9)]);
        assert_eq!(table.version(ApiKey::Produce).unwrap(), 9);
        assert_eq!(table.version(ApiKey::Fetch).unwrap(), 18);
        assert_eq!(table.version(ApiKey::Metadata).unwrap(), 4);
        let gap = table.version(ApiKey::ListOffsets).unwrap_err().to_string();
        assert!(
            gap.contains("ListOffsets") && gap.contains("0..=0") && gap.contains("1..=10"),
            "{gap}"
        );
        assert!(table.version(ApiKey::CreateTopics).is_err(), "above our 7");
        let absent = table.version(ApiKey::JoinGroup).unwrap_err();
        assert!(
            matches!(absent, ProtocolError::NoCommonVersion { .. }),
            "{absent}"
        );
    }

    #[test]
    fn given_a_cap_when_applied_should_lower_only_that_api() {
        let mut table = VersionTable::from_broker(&[(0, 0, 11), (1, 0, 16)]);
        table.cap(ApiKey::Produce, 7);
        assert_eq!(table.version(ApiKey::Produce).unwrap(), 7);
        assert_eq!(table.version(ApiKey::Fetch).unwrap(), 16);
    }

    #[test]
    fn given_unsupported_version_in_v0_when_negotiating_should_retry_once_at_the_brokers_max() {
        let mut n = Negotiation::new("test");
        assert_eq!(n.version(), 4);
        let rejected = answer(35, &[(18, 0, 2)], 0);
        assert!(matches!(n.on_response(&rejected).unwrap(), Step::Retry));
        assert_eq!(n.version(), 2);
        let table = answer(0, &[(0, 3, 11), (18, 0, 2)], 2);
        match n.on_response(&table).unwrap() {
            Step::Done(t) => assert_eq!(t.version(ApiKey::Produce).unwrap(), 11),
            other => panic!("expected a table, got {other:?}"),
        }
    }

    #[test]
    fn given_a_second_rejection_when_negotiating_should_give_up() {
        let mut n = Negotiation::new("test");
        let rejected = answer(35, &[(18, 0, 3)], 0);
        assert!(matches!(n.on_response(&rejected).unwrap(), Step::Retry));
        let e = n.on_response(&rejected).unwrap_err();
        assert_eq!(e.code(), Some(35), "{e}");
    }

    #[test]
    fn given_another_error_code_when_negotiating_should_report_it() {
        let mut n = Negotiation::new("test");
        let e = n.on_response(&answer(-1, &[], 4)).unwrap_err();
        assert_eq!(e.code(), Some(-1), "{e}");
    }

    #[test]
    fn given_truncated_answers_when_negotiating_should_fail_without_panicking() {
        let whole = answer(0, &[(0, 3, 11), (1, 4, 16), (18, 0, 4)], 4);
        for len in 0..whole.len() {
            let mut n = Negotiation::new("test");
            assert!(n.on_response(&whole.slice(..len)).is_err(), "{len} bytes");
        }
    }
}
