//! ApiVersions: the table in `weir_protocol::api`, with KIP-511's fallback: a
//! client asking with a version we do not know gets a v0 answer carrying
//! UNSUPPORTED_VERSION and our ranges, so it can retry with one we do.

use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::ApiVersionsResponse;
use kafka_protocol::ResponseError;
use weir_protocol::api::SUPPORTED_APIS;

pub fn response(error_code: i16) -> ApiVersionsResponse {
    let api_keys = SUPPORTED_APIS
        .iter()
        .map(|a| {
            ApiVersion::default()
                .with_api_key(a.key as i16)
                .with_min_version(a.min_version)
                .with_max_version(a.max_version)
        })
        .collect();
    // Features and the ZK-migration flag stay at their defaults, so the
    // encoder omits those tagged fields: librdkafka < 2.2 cannot skip them.
    ApiVersionsResponse::default()
        .with_error_code(error_code)
        .with_api_keys(api_keys)
}

pub fn unsupported() -> ApiVersionsResponse {
    response(ResponseError::UnsupportedVersion.code())
}
