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

use super::order::Ticket;
use crate::groups_glue::{GroupAnswer, GroupCall};
use crate::handlers;
use crate::shard::Shard;

/// What to do with one frame.
pub enum Admission {
    /// Answer at once with these bytes (KIP-511 ApiVersions fallback).
    Immediate(Bytes),
    /// Hand to a handler.
    Handle(Box<Request>, i16),
}

#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    #[error("unknown api key {0}")]
    UnknownApi(i16),
    #[error("unsupported {api_key:?} version {api_version}")]
    UnsupportedVersion { api_key: ApiKey, api_version: i16 },
    #[error(
        "{api_key:?} frame of {size_bytes} bytes exceeds the {} byte limit for non-Produce requests",
        crate::limits::CONTROL_FRAME_BYTES_MAX
    )]
    ControlFrameTooLarge { api_key: ApiKey, size_bytes: usize },
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
            return Ok(Admission::Immediate(out.freeze()));
        }
        return Err(Refusal::UnsupportedVersion {
            api_key,
            api_version: prefix.api_version,
        });
    }
    if api_key != ApiKey::Produce && frame.len() > crate::limits::CONTROL_FRAME_BYTES_MAX {
        return Err(Refusal::ControlFrameTooLarge {
            api_key,
            size_bytes: frame.len(),
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

/// The coordinator's answer as a response, or the request's own error
/// response when the coordinator shard could not be reached.
fn group_answer(
    answer: Result<GroupAnswer, i16>,
    api_key: ApiKey,
    version: i16,
) -> Result<ResponseKind, FrameError> {
    use kafka_protocol::messages as m;
    Ok(match answer {
        Ok(GroupAnswer::Join(r)) => ResponseKind::JoinGroup(r),
        Ok(GroupAnswer::Sync(r)) => ResponseKind::SyncGroup(r),
        Ok(GroupAnswer::Heartbeat(r)) => ResponseKind::Heartbeat(r),
        Ok(GroupAnswer::Leave(r)) => ResponseKind::LeaveGroup(r),
        Ok(GroupAnswer::Commit(r)) => ResponseKind::OffsetCommit(r),
        Ok(GroupAnswer::DeleteOffsets(r)) => ResponseKind::OffsetDelete(r),
        Err(code) => match api_key {
            ApiKey::JoinGroup => {
                ResponseKind::JoinGroup(m::JoinGroupResponse::default().with_error_code(code))
            }
            ApiKey::SyncGroup => {
                ResponseKind::SyncGroup(m::SyncGroupResponse::default().with_error_code(code))
            }
            ApiKey::Heartbeat => {
                ResponseKind::Heartbeat(m::HeartbeatResponse::default().with_error_code(code))
            }
            ApiKey::LeaveGroup => {
                ResponseKind::LeaveGroup(m::LeaveGroupResponse::default().with_error_code(code))
            }
            ApiKey::OffsetDelete => {
                ResponseKind::OffsetDelete(m::OffsetDeleteResponse::default().with_error_code(code))
            }
            _ => {
                let reason = format!("{api_key:?} v{version}: coordinator unreachable (error {code})");
                return Err(FrameError::Encode(frame::anyhow_error::AnyError(reason)));
            }
        },
        Ok(_) => unreachable!("each group call answers its own kind"),
    })
}

/// Run the handler and encode its answer; `None` for acks=0 Produce.
pub async fn handle(
    shard: Rc<Shard>,
    request: Request,
    version: i16,
    peer: std::net::SocketAddr,
    ticket: Option<Ticket>,
) -> Result<Option<Vec<Bytes>>, FrameError> {
    // Drop the header (its client id is a slice of the frame) before handling,
    // so the Produce records can be the frame's only remaining reference.
    let Request {
        api_key,
        header,
        body,
        ..
    } = request;
    let correlation_id = header.correlation_id;
    let client_id = header
        .client_id
        .as_ref()
        .map(ToString::to_string)
        .unwrap_or_default();
    drop(header);
    let body = match body {
        RequestKind::ApiVersions(_) => ResponseKind::ApiVersions(handlers::api_versions::response(0)),
        RequestKind::Metadata(r) => {
            ResponseKind::Metadata(handlers::metadata::handle(&shard, r, version).await)
        }
        RequestKind::Produce(r) => match handlers::produce::handle(&shard, r, ticket).await {
            Some(resp) => ResponseKind::Produce(resp),
            None => return Ok(None),
        },
        RequestKind::Fetch(r) => {
            // Records go out by reference (tail cache or file read buffer), not copied.
            let response = handlers::fetch::handle(&shard, r, version).await;
            return frame::encode_response_parts(api_key, version, correlation_id, &response).map(Some);
        }
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
        RequestKind::FindCoordinator(r) => {
            ResponseKind::FindCoordinator(handlers::groups::find_coordinator(&shard, &r, version))
        }
        RequestKind::JoinGroup(req) => {
            let group_id = req.group_id.0.to_string();
            let client_host = handlers::groups::client_host(peer);
            let call = GroupCall::Join {
                req,
                version,
                client_id,
                client_host,
            };
            group_answer(
                handlers::groups::call(&shard, &group_id, call).await,
                api_key,
                version,
            )?
        }
        RequestKind::SyncGroup(req) => {
            let group_id = req.group_id.0.to_string();
            let answer = handlers::groups::call(&shard, &group_id, GroupCall::Sync(req, version)).await;
            group_answer(answer, api_key, version)?
        }
        RequestKind::Heartbeat(req) => {
            let group_id = req.group_id.0.to_string();
            let answer = handlers::groups::call(&shard, &group_id, GroupCall::Heartbeat(req, version)).await;
            group_answer(answer, api_key, version)?
        }
        RequestKind::LeaveGroup(req) => {
            let group_id = req.group_id.0.to_string();
            let answer = handlers::groups::call(&shard, &group_id, GroupCall::Leave(req, version)).await;
            group_answer(answer, api_key, version)?
        }
        RequestKind::OffsetCommit(req) => {
            let group_id = req.group_id.0.to_string();
            let answer = handlers::groups::call(&shard, &group_id, GroupCall::Commit(req, version)).await;
            group_answer(answer, api_key, version)?
        }
        RequestKind::OffsetDelete(req) => {
            let group_id = req.group_id.0.to_string();
            let answer = handlers::groups::call(&shard, &group_id, GroupCall::DeleteOffsets(req)).await;
            group_answer(answer, api_key, version)?
        }
        RequestKind::OffsetFetch(r) => {
            ResponseKind::OffsetFetch(handlers::groups::offset_fetch(&shard, r, version).await)
        }
        RequestKind::ListGroups(r) => {
            ResponseKind::ListGroups(handlers::groups::list_groups(&shard, r).await)
        }
        RequestKind::DescribeGroups(r) => {
            ResponseKind::DescribeGroups(handlers::groups::describe_groups(&shard, r).await)
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
    Ok(Some(vec![out.freeze()]))
}
