//! ApiVersions negotiation: per API, min(our max, broker max), refusing APIs
//! with no overlap; KIP-511 fallback when the broker rejects our ApiVersions
//! version (it answers in v0 format listing the versions it does speak).
//!
//! Pure table logic plus one async exchange on a fresh connection (its shard).

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, ApiVersionsResponse};
use kafka_protocol::protocol::{Decodable, StrBytes};

use super::conn::Connection;
use super::frame::{api_name, encode_request};
use super::ClientError;

/// UNSUPPORTED_VERSION: the broker could not parse our ApiVersions version.
const UNSUPPORTED_VERSION: i16 = 35;

/// The versions this client can speak, per API (the range kafka-protocol 0.18
/// encodes, raised where older versions lack what we need: RecordBatch v2
/// needs Produce v3+ and Fetch v4+).
pub const OURS: [(ApiKey, i16, i16); 6] = [
    (ApiKey::Produce, 3, 13),
    (ApiKey::Fetch, 4, 18),
    (ApiKey::ListOffsets, 1, 10),
    (ApiKey::Metadata, 1, 13),
    (ApiKey::ApiVersions, 0, 4),
    (ApiKey::CreateTopics, 2, 7),
];

/// The chosen version per API, or why there is none.
#[derive(Debug, Clone, Default)]
pub struct VersionTable {
    chosen: Vec<(ApiKey, Result<i16, String>)>,
}

impl VersionTable {
    /// Intersect our ranges with the broker's advertised `(key, min, max)` list.
    pub fn from_broker(broker: &[(i16, i16, i16)]) -> Self {
        let chosen = OURS
            .iter()
            .map(|&(key, our_min, our_max)| {
                let theirs = broker.iter().find(|b| b.0 == key as i16);
                let pick = match theirs {
                    None => Err("not advertised".to_string()),
                    Some(&(_, min, max)) => {
                        let v = our_max.min(max);
                        if v >= our_min.max(min) {
                            Ok(v)
                        } else {
                            Err(format!("{min}..={max}"))
                        }
                    }
                };
                (
                    key,
                    pick.map_err(|theirs| format!("ours {our_min}..={our_max}|{theirs}")),
                )
            })
            .collect();
        Self { chosen }
    }

    pub fn version(&self, api: ApiKey, addr: &str) -> Result<i16, ClientError> {
        let entry = self.chosen.iter().find(|(k, _)| *k == api);
        match entry {
            Some((_, Ok(v))) => Ok(*v),
            Some((_, Err(why))) => {
                let (ours, theirs) = why.split_once('|').unwrap_or((why.as_str(), "?"));
                Err(ClientError::NoCommonVersion {
                    api: api_name(api),
                    addr: addr.to_string(),
                    ours: ours.to_string(),
                    theirs: theirs.to_string(),
                })
            }
            None => Err(ClientError::NoCommonVersion {
                api: api_name(api),
                addr: addr.to_string(),
                ours: "none".to_string(),
                theirs: "?".to_string(),
            }),
        }
    }

    /// Lower the chosen version of `api` to at most `max` (if one was chosen).
    pub fn cap(&mut self, api: ApiKey, max: i16) {
        for (key, pick) in &mut self.chosen {
            if *key == api {
                if let Ok(v) = pick {
                    *v = (*v).min(max);
                }
            }
        }
    }
}

/// Ask the broker which versions it speaks; retry once at the broker's own
/// ApiVersions maximum if it rejected ours (KIP-511).
pub async fn negotiate(conn: &Connection) -> Result<VersionTable, ClientError> {
    let mut version = OURS[4].2;
    for _attempt in 0..2 {
        let correlation_id = conn.next_correlation_id();
        let request = ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str("weir-loadgen"))
            .with_client_software_version(StrBytes::from_static_str(env!("CARGO_PKG_VERSION")));
        let frame = encode_request(ApiKey::ApiVersions, version, correlation_id, &request)?;
        let body = conn
            .request_raw(ApiKey::ApiVersions, version, frame, correlation_id)
            .await?;
        match parse_api_versions(&body, version, conn.addr())? {
            Parsed::Table(table) => return Ok(table),
            Parsed::Retry(broker_max) => version = broker_max.min(version - 1),
        }
        if version < 0 {
            break;
        }
    }
    Err(ClientError::Broker {
        api: "ApiVersions",
        code: UNSUPPORTED_VERSION,
        name: "UNSUPPORTED_VERSION",
        detail: format!(" from {}: no ApiVersions version both sides speak", conn.addr()),
    })
}

/// What an ApiVersions response says.
#[derive(Debug)]
pub enum Parsed {
    Table(VersionTable),
    /// The broker rejected our version; retry at this one.
    Retry(i16),
}

/// Decode an ApiVersions response body sent for request `version`.
pub fn parse_api_versions(body: &Bytes, version: i16, addr: &str) -> Result<Parsed, ClientError> {
    let error_code = body.get(0..2).map_or(-1, |b| i16::from_be_bytes([b[0], b[1]]));
    // KIP-511: an UNSUPPORTED_VERSION answer is encoded as v0 whatever we sent.
    let decode_version = if error_code == UNSUPPORTED_VERSION {
        0
    } else {
        version
    };
    let mut bytes = body.clone();
    let response =
        ApiVersionsResponse::decode(&mut bytes, decode_version).map_err(|e| ClientError::Decode {
            api: "ApiVersions",
            addr: addr.to_string(),
            message: e.to_string(),
        })?;
    let ranges: Vec<(i16, i16, i16)> = response
        .api_keys
        .iter()
        .map(|k| (k.api_key, k.min_version, k.max_version))
        .collect();
    if error_code == UNSUPPORTED_VERSION {
        let own = ranges.iter().find(|r| r.0 == ApiKey::ApiVersions as i16);
        return Ok(Parsed::Retry(own.map_or(0, |r| r.2)));
    }
    if error_code != 0 {
        return Err(ClientError::Broker {
            api: "ApiVersions",
            code: error_code,
            name: super::error_name(error_code),
            detail: format!(" from {addr}"),
        });
    }
    Ok(Parsed::Table(VersionTable::from_broker(&ranges)))
}

/// Encode an ApiVersions response body (used by the null broker and tests).
pub fn encode_api_versions_response(response: &ApiVersionsResponse, version: i16) -> BytesMut {
    use kafka_protocol::protocol::Encodable;
    let mut buf = BytesMut::new();
    response
        .encode(&mut buf, version)
        .expect("an ApiVersions response built from plain fields always encodes");
    buf
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::api_versions_response::ApiVersion;

    fn response(code: i16, ranges: &[(i16, i16, i16)]) -> ApiVersionsResponse {
        ApiVersionsResponse::default()
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
            )
    }

    #[test]
    fn given_broker_ranges_when_negotiating_should_pick_min_of_maxima_and_refuse_gaps() {
        let table = VersionTable::from_broker(&[(0, 0, 9), (1, 0, 20), (3, 0, 4), (18, 0, 3), (2, 0, 0)]);
        assert_eq!(table.version(ApiKey::Produce, "b").unwrap(), 9);
        assert_eq!(table.version(ApiKey::Fetch, "b").unwrap(), 18);
        assert_eq!(table.version(ApiKey::Metadata, "b").unwrap(), 4);
        let err = table.version(ApiKey::ListOffsets, "b").unwrap_err().to_string();
        assert!(err.contains("ListOffsets") && err.contains("0..=0"), "{err}");
        assert!(table.version(ApiKey::CreateTopics, "b").is_err());
    }

    #[test]
    fn given_unsupported_version_reply_in_v0_when_parsing_should_retry_at_broker_max() {
        let body = encode_api_versions_response(&response(35, &[(18, 0, 2)]), 0).freeze();
        match parse_api_versions(&body, 4, "b").unwrap() {
            Parsed::Retry(v) => assert_eq!(v, 2),
            other => panic!("expected retry, got {other:?}"),
        }
    }

    #[test]
    fn given_v3_reply_when_parsing_should_build_table() {
        let body = encode_api_versions_response(&response(0, &[(0, 3, 11), (18, 0, 3)]), 3).freeze();
        match parse_api_versions(&body, 3, "b").unwrap() {
            Parsed::Table(t) => assert_eq!(t.version(ApiKey::Produce, "b").unwrap(), 11),
            other => panic!("expected table, got {other:?}"),
        }
    }
}
