//! Request admission and routing to handlers. Admission is synchronous and
//! pure (decode, version check) so a malformed frame is refused before any
//! task is spawned; handling is async. Unknown APIs, unsupported versions and
//! undecodable bodies close the connection with one log line, except
//! ApiVersions, which always answers (KIP-511).

use std::rc::Rc;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestKind, ResponseKind};
use weir_protocol::api::{is_decodable, is_supported};
use weir_protocol::frame::{self, FrameError, Request};

use crate::handlers;
use crate::shard::Shard;

/// What to do with one frame.
pub enum Admission {
    /// Answer at once with these bytes (KIP-511 ApiVersions fallback).
    Immediate(BytesMut),
    /// Hand to a handler.
    Handle(Box<Request>, i16),
}

#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    #[error("unknown api key {0}")]
    UnknownApi(i16),
    #[error("unsupported {api_key:?} version {api_version}")]
    UnsupportedVersion { api_key: ApiKey, api_version: i16 },
    #[error("malformed request")]
    Malformed(#[from] FrameError),
}

pub fn admit(frame: Bytes) -> Result<Admission, Refusal> {
    let prefix = frame::header_prefix(&frame).ok_or(FrameError::TooSmall {
        size_bytes: frame.len() as i64,
    })?;
    let api_key = ApiKey::try_from(prefix.api_key).map_err(|()| Refusal::UnknownApi(prefix.api_key))?;
    if !is_supported(api_key, prefix.api_version) {
        if api_key == ApiKey::ApiVersions {
            let body = ResponseKind::ApiVersions(handlers::api_versions::unsupported());
            let mut out = BytesMut::new();
            frame::encode_response(&mut out, api_key, 0, prefix.correlation_id, &body)?;
            return Ok(Admission::Immediate(out));
        }
        return Err(Refusal::UnsupportedVersion {
            api_key,
            api_version: prefix.api_version,
        });
    }
    if !is_decodable(api_key, prefix.api_version) {
        // Advertised for librdkafka 2.0's feature detection only (see api.rs).
        return Err(Refusal::UnsupportedVersion {
            api_key,
            api_version: prefix.api_version,
        });
    }
    let request = frame::decode_request(frame, api_key, prefix.api_version)?;
    Ok(Admission::Handle(Box::new(request), prefix.api_version))
}

/// Run the handler and encode its answer; `None` for acks=0 Produce.
pub async fn handle(
    shard: Rc<Shard>,
    request: Request,
    version: i16,
) -> Result<Option<BytesMut>, FrameError> {
    let correlation_id = request.header.correlation_id;
    let api_key = request.api_key;
    let body = match request.body {
        RequestKind::ApiVersions(_) => ResponseKind::ApiVersions(handlers::api_versions::response(0)),
        RequestKind::Metadata(r) => {
            ResponseKind::Metadata(handlers::metadata::handle(&shard, r, version).await)
        }
        RequestKind::Produce(r) => match handlers::produce::handle(&shard, r).await {
            Some(resp) => ResponseKind::Produce(resp),
            None => return Ok(None),
        },
        RequestKind::Fetch(r) => ResponseKind::Fetch(handlers::fetch::handle(&shard, r, version).await),
        RequestKind::ListOffsets(r) => {
            ResponseKind::ListOffsets(handlers::list_offsets::handle(&shard, r, version).await)
        }
        RequestKind::CreateTopics(r) => {
            ResponseKind::CreateTopics(handlers::topics::create_topics(&shard, r).await)
        }
        RequestKind::DeleteTopics(r) => {
            ResponseKind::DeleteTopics(handlers::topics::delete_topics(&shard, r, version).await)
        }
        RequestKind::DescribeConfigs(r) => {
            ResponseKind::DescribeConfigs(handlers::topics::describe_configs(&shard, &r))
        }
        other => {
            let name = format!("{other:?}");
            let name = name.split('(').next().unwrap_or("?").to_string();
            return Err(FrameError::Encode(frame::anyhow_error::AnyError(format!(
                "no handler for {name}"
            ))));
        }
    };
    let mut out = BytesMut::new();
    frame::encode_response(&mut out, api_key, version, correlation_id, &body)?;
    Ok(Some(out))
}
