//! Request admission and routing to handlers. Admission is synchronous and
//! pure (decode, version check) so a malformed frame is refused before any
//! task is spawned; handling is async. Unknown APIs, unsupported versions and
//! undecodable bodies close the connection with one log line, except
//! ApiVersions, which always answers (KIP-511). `handle` and the `respond*`
//! functions it calls have one line per API: adding one means a handler file
//! and a line here.

use std::rc::Rc;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestKind, ResponseKind};
use weir_protocol::api::{is_decodable, is_supported};
use weir_protocol::frame::{self, FrameError, Request};
use weir_protocol::legacy;

use crate::acl::{self, screen::Screened};
use crate::handlers::{self, ShardContext};
use crate::metrics;
use crate::quota::ConnectionQuota;
use crate::shard::order::Ticket;

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
    #[error("malformed old-version request")]
    MalformedLegacy(#[from] weir_protocol::legacy::LegacyError),
    #[error("acks=0 Produce v{0}, a version Weir does not decode: closing so the client notices")]
    LegacyAcksZero(i16),
}

pub fn admit(frame: Bytes) -> Result<Admission, Refusal> {
    let prefix = frame::header_prefix(&frame).ok_or(FrameError::TooSmall {
        size_bytes: frame.len() as i64,
    })?;
    let api_key = ApiKey::try_from(prefix.api_key).map_err(|()| Refusal::UnknownApi(prefix.api_key))?;
    if legacy::covers(prefix.api_key, prefix.api_version) {
        // Versions with message format v0/v1 that Weir does not decode: the API's
        // own response with UNSUPPORTED_VERSION, not a closed connection.
        tracing::info!(
            ?api_key,
            version = prefix.api_version,
            "answering UNSUPPORTED_VERSION to an old request version"
        );
        return match legacy::answer(&frame)? {
            legacy::Answer::Respond(bytes) => Ok(Admission::Immediate(bytes)),
            legacy::Answer::Close => Err(Refusal::LegacyAcksZero(prefix.api_version)),
        };
    }
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
        // Unreachable for the versions `legacy` answers; kept for any other gap
        // between the advertised and the decodable range.
        return Err(Refusal::UnsupportedVersion {
            api_key,
            api_version: prefix.api_version,
        });
    }
    let request = frame::decode_request(frame, api_key, prefix.api_version)?;
    Ok(Admission::Handle(Box::new(request), prefix.api_version))
}

/// The connection a request came in on, as its handler sees it.
pub struct Connection {
    pub peer: super::Peer,
    pub quota: Rc<ConnectionQuota>,
    /// Produce: the quota throttle its frame earned when it was read.
    pub throttle_ms: i32,
}

/// Produce before v6 and Fetch before v8 predate KIP-219: the client does not
/// back off by itself, so a throttled answer is held back for the throttle time.
async fn hold_back_if_old(api_key: ApiKey, version: i16, throttle_ms: i32) {
    let kip219 = if api_key == ApiKey::Produce { 6 } else { 8 };
    if throttle_ms > 0 && version < kip219 {
        glommio::timer::sleep(std::time::Duration::from_millis(throttle_ms as u64)).await;
    }
}

/// Run the handler and encode its answer; `None` for acks=0 Produce.
pub async fn handle(
    shard: Rc<ShardContext>,
    request: Request,
    version: i16,
    on: Connection,
    ticket: Option<Ticket>,
) -> Result<Option<Vec<Bytes>>, FrameError> {
    let Connection {
        peer,
        quota,
        throttle_ms,
    } = on;
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
    let shard = &shard;
    let started = Instant::now();
    let access = shard.access(peer.principal.clone(), peer.addr);
    let body = match body {
        RequestKind::Produce(mut r) => {
            let denied = screen_produce(&access, &mut r);
            match handlers::produce::handle(shard, r, ticket).await {
                Some(mut resp) => {
                    resp.responses.extend(denied.responses);
                    count_produce_errors(&resp);
                    // A backlog bound's throttle (handlers/backlog.rs) mutes the connection as a
                    // quota's does; the quota's mute began when the frame was read. It also
                    // holds this answer back: a client that pipelined its requests had them
                    // all read and appended before the first throttle was known, so muting
                    // alone would not slow it (measured: 4 MiB from confluent-kafka's default
                    // producer went through a throttled topic no slower than an open one).
                    let backlog_ms = resp.throttle_time_ms;
                    quota.mute_for(backlog_ms);
                    let throttle_ms = throttle_ms.max(backlog_ms);
                    hold_back_if_old(api_key, version, throttle_ms).await;
                    if backlog_ms > 0 && version >= 6 {
                        glommio::timer::sleep(std::time::Duration::from_millis(backlog_ms as u64)).await;
                    }
                    ResponseKind::Produce(resp.with_throttle_time_ms(throttle_ms))
                }
                None => {
                    metrics::with(|m| m.request_done(api_key as i16, elapsed_us(started)));
                    return Ok(None);
                }
            }
        }
        RequestKind::Fetch(r) => {
            let metered = handlers::fetch::Metered {
                quota: &quota,
                client_id: &client_id,
            };
            let response = fetch(shard, &access, r, version, metered).await;
            metrics::with(|m| m.request_done(api_key as i16, elapsed_us(started)));
            // Records go out by reference (tail cache or file read buffer), not copied.
            return frame::encode_response_parts(api_key, version, correlation_id, &response).map(Some);
        }
        other => match screen(&access, shard, other, version) {
            Screened::Pass(body, patch) => {
                let mut out = respond(shard, body, version, client_id, peer).await?;
                if let Some(patch) = patch {
                    patch(&mut out);
                }
                out
            }
            Screened::Deny(out) => out,
        },
    };
    metrics::with(|m| m.request_done(api_key as i16, elapsed_us(started)));
    let mut out = BytesMut::new();
    frame::encode_response(&mut out, api_key, version, correlation_id, &body)?;
    Ok(Some(vec![out.freeze()]))
}

/// Fetch behind its ACL screen and quota: refused topics answered beside the
/// served ones; an old version held back for its throttle time.
async fn fetch(
    shard: &Rc<ShardContext>,
    access: &acl::Access,
    mut r: kafka_protocol::messages::FetchRequest,
    version: i16,
    metered: handlers::fetch::Metered<'_>,
) -> kafka_protocol::messages::FetchResponse {
    let denied = if access.unrestricted() {
        Vec::new()
    } else {
        acl::screen::fetch(access, &shard.catalog(), &mut r)
    };
    // Every topic refused: answered at once, as Kafka, not after max_wait_ms.
    let mut response = if r.topics.is_empty() && !denied.is_empty() {
        kafka_protocol::messages::FetchResponse::default()
    } else {
        handlers::fetch::handle(shard, r, version, metered).await
    };
    response.responses.extend(denied);
    hold_back_if_old(ApiKey::Fetch, version, response.throttle_time_ms).await;
    response
}

/// The ACL checks of Produce: the refused topics' entries to add to the
/// answer. A request refused as a whole is emptied, so the handler still takes
/// its turn (order.rs) and answers nothing for it.
fn screen_produce(
    access: &acl::Access,
    r: &mut kafka_protocol::messages::ProduceRequest,
) -> kafka_protocol::messages::ProduceResponse {
    use kafka_protocol::messages::ProduceResponse;
    if access.unrestricted() {
        return ProduceResponse::default();
    }
    match acl::screen::produce(access, r) {
        Ok(denied) => ProduceResponse::default().with_responses(denied),
        Err(refused) => {
            r.transactional_id = None;
            refused
        }
    }
}

/// The ACL checks of every API but Produce and Fetch.
fn screen(access: &acl::Access, shard: &ShardContext, mut body: RequestKind, version: i16) -> Screened {
    if access.unrestricted() {
        return Screened::Pass(body, None);
    }
    if let RequestKind::Metadata(r) = &mut body {
        // As Kafka: CREATE is checked only when the topic would be created.
        r.allow_auto_topic_creation &= shard.args.auto_create_topics;
    }
    acl::screen::screen(access, &shard.catalog(), body, version)
}

fn elapsed_us(since: Instant) -> u64 {
    u64::try_from(since.elapsed().as_micros()).unwrap_or(u64::MAX)
}

fn count_produce_errors(resp: &kafka_protocol::messages::ProduceResponse) {
    metrics::with(|m| {
        resp.responses
            .iter()
            .flat_map(|t| &t.partition_responses)
            .for_each(|p| m.error(ApiKey::Produce as i16, p.error_code));
    });
}

/// Every API but Produce and Fetch: one line each; the group and transaction
/// APIs in `respond_groups`, topic administration in `admin_apis`.
async fn respond(
    shard: &Rc<ShardContext>,
    body: RequestKind,
    version: i16,
    client_id: String,
    peer: super::Peer,
) -> Result<ResponseKind, FrameError> {
    use handlers::*;
    use ResponseKind as Out;
    Ok(match body {
        RequestKind::ApiVersions(_) => Out::ApiVersions(api_versions::response(0)),
        RequestKind::Metadata(r) => Out::Metadata(metadata::handle(shard, r, version, peer.tls).await),
        RequestKind::ListOffsets(r) => Out::ListOffsets(list_offsets::handle(shard, r, version).await),
        RequestKind::OffsetForLeaderEpoch(r) => {
            Out::OffsetForLeaderEpoch(offset_for_leader_epoch::handle(shard, r).await)
        }
        RequestKind::CreateTopics(r) => Out::CreateTopics(topics::create_topics(shard, r).await),
        RequestKind::DeleteTopics(r) => Out::DeleteTopics(topics::delete_topics(shard, r, version).await),
        RequestKind::DescribeConfigs(r) => Out::DescribeConfigs(topics::describe_configs(shard, &r)),
        RequestKind::DescribeProducers(r) => {
            Out::DescribeProducers(describe_producers::handle(shard, r).await)
        }
        RequestKind::InitProducerId(r) => Out::InitProducerId(producer_id::handle(shard, r, version).await),
        RequestKind::DescribeCluster(r) => {
            Out::DescribeCluster(describe_cluster::handle(shard, &r, peer.tls))
        }
        RequestKind::ElectLeaders(r) => Out::ElectLeaders(elect_leaders::handle(shard, r, version)),
        RequestKind::DescribeTopicPartitions(r) => {
            Out::DescribeTopicPartitions(describe_topic_partitions::handle(shard, &r))
        }
        RequestKind::DescribeLogDirs(r) => {
            Out::DescribeLogDirs(describe_log_dirs::handle(shard, r, peer.node).await)
        }
        other => return respond_groups(shard, other, version, client_id, peer).await,
    })
}

/// The consumer-group and transaction APIs.
async fn respond_groups(
    shard: &Rc<ShardContext>,
    body: RequestKind,
    version: i16,
    client_id: String,
    peer: super::Peer,
) -> Result<ResponseKind, FrameError> {
    use handlers::*;
    use ResponseKind as Out;
    Ok(match body {
        RequestKind::FindCoordinator(r) => {
            Out::FindCoordinator(groups::find_coordinator(shard, &r, version, peer.tls))
        }
        RequestKind::JoinGroup(r) => {
            Out::JoinGroup(groups::join_group(shard, r, version, client_id, peer.addr).await)
        }
        RequestKind::SyncGroup(r) => Out::SyncGroup(groups::sync_group(shard, r, version).await),
        RequestKind::Heartbeat(r) => Out::Heartbeat(groups::heartbeat(shard, r, version).await),
        RequestKind::LeaveGroup(r) => Out::LeaveGroup(groups::leave_group(shard, r, version).await),
        RequestKind::OffsetCommit(r) => {
            Out::OffsetCommit(group_offsets::offset_commit(shard, r, version).await)
        }
        RequestKind::OffsetFetch(r) => Out::OffsetFetch(group_offsets::offset_fetch(shard, r, version).await),
        RequestKind::OffsetDelete(r) => Out::OffsetDelete(groups::offset_delete(shard, r).await),
        RequestKind::ListGroups(r) => Out::ListGroups(groups::list_groups(shard, r, peer.node).await),
        RequestKind::DescribeGroups(r) => Out::DescribeGroups(groups::describe_groups(shard, r).await),
        RequestKind::DeleteGroups(r) => Out::DeleteGroups(groups::delete_groups(shard, r).await),
        RequestKind::ConsumerGroupHeartbeat(r) => Out::ConsumerGroupHeartbeat(
            consumer_groups::heartbeat(shard, r, version, client_id, peer.addr).await,
        ),
        RequestKind::ConsumerGroupDescribe(r) => {
            Out::ConsumerGroupDescribe(consumer_groups::describe(shard, r).await)
        }
        other => return respond_share(shard, other, version, client_id, peer).await,
    })
}

/// Share groups (KIP-932): membership, record delivery, inspection.
async fn respond_share(
    shard: &Rc<ShardContext>,
    body: RequestKind,
    version: i16,
    client_id: String,
    peer: super::Peer,
) -> Result<ResponseKind, FrameError> {
    use handlers::*;
    use ResponseKind as Out;
    Ok(match body {
        RequestKind::ShareGroupHeartbeat(r) => {
            Out::ShareGroupHeartbeat(share_groups::heartbeat(shard, r, client_id, peer.addr).await)
        }
        RequestKind::ShareGroupDescribe(r) => Out::ShareGroupDescribe(share_groups::describe(shard, r).await),
        RequestKind::ShareFetch(r) => Out::ShareFetch(share_fetch::share_fetch(shard, r).await),
        RequestKind::ShareAcknowledge(r) => {
            Out::ShareAcknowledge(share_acknowledge::share_acknowledge(shard, r).await)
        }
        RequestKind::DescribeShareGroupOffsets(r) => {
            Out::DescribeShareGroupOffsets(share_groups::describe_offsets(shard, r).await)
        }
        RequestKind::AlterShareGroupOffsets(r) => {
            Out::AlterShareGroupOffsets(share_admin::alter_offsets(shard, r).await)
        }
        RequestKind::DeleteShareGroupOffsets(r) => {
            Out::DeleteShareGroupOffsets(share_admin::delete_offsets(shard, r).await)
        }
        other => return respond_txn(shard, other, version).await,
    })
}

/// The transaction APIs.
async fn respond_txn(
    shard: &Rc<ShardContext>,
    body: RequestKind,
    version: i16,
) -> Result<ResponseKind, FrameError> {
    use handlers::*;
    use ResponseKind as Out;
    Ok(match body {
        RequestKind::AddPartitionsToTxn(r) => {
            Out::AddPartitionsToTxn(txn_api::add_partitions(shard, r, version).await)
        }
        RequestKind::AddOffsetsToTxn(r) => {
            Out::AddOffsetsToTxn(txn_api::add_offsets(shard, r, version).await)
        }
        RequestKind::EndTxn(r) => Out::EndTxn(txn_api::end_txn(shard, r, version).await),
        RequestKind::TxnOffsetCommit(r) => {
            Out::TxnOffsetCommit(txn_offsets::txn_offset_commit(shard, r, version).await)
        }
        RequestKind::ListTransactions(r) => Out::ListTransactions(txn_api::list_transactions(shard, r).await),
        RequestKind::DescribeTransactions(r) => {
            Out::DescribeTransactions(txn_api::describe_transactions(shard, r).await)
        }
        other => return admin_apis(shard, other).await,
    })
}

/// Topic administration beyond create and delete: one line per API.
async fn admin_apis(shard: &Rc<ShardContext>, body: RequestKind) -> Result<ResponseKind, FrameError> {
    use handlers::*;
    use ResponseKind as Out;
    Ok(match body {
        RequestKind::CreatePartitions(r) => Out::CreatePartitions(create_partitions::handle(shard, r).await),
        RequestKind::DeleteRecords(r) => Out::DeleteRecords(delete_records::handle(shard, r).await),
        RequestKind::AlterConfigs(r) => Out::AlterConfigs(alter_configs::alter(shard, r).await),
        RequestKind::IncrementalAlterConfigs(r) => {
            Out::IncrementalAlterConfigs(alter_configs::incremental(shard, r).await)
        }
        RequestKind::DescribeUserScramCredentials(r) => {
            Out::DescribeUserScramCredentials(users::describe(shard, &r))
        }
        RequestKind::AlterUserScramCredentials(r) => {
            Out::AlterUserScramCredentials(users::alter(shard, r).await)
        }
        RequestKind::DescribeClientQuotas(r) => Out::DescribeClientQuotas(client_quotas::describe(shard, &r)),
        RequestKind::AlterClientQuotas(r) => Out::AlterClientQuotas(client_quotas::alter(shard, r).await),
        RequestKind::CreateAcls(r) => Out::CreateAcls(acls::create(shard, r).await),
        RequestKind::DescribeAcls(r) => Out::DescribeAcls(acls::describe(shard, &r)),
        RequestKind::DeleteAcls(r) => Out::DeleteAcls(acls::delete(shard, r).await),
        // Authentication happens before dispatch (sasl.rs); here the connection
        // is authenticated already or on a listener without SASL: as Kafka's
        // KafkaApis, ILLEGAL_SASL_STATE.
        RequestKind::SaslHandshake(_) => Out::SaslHandshake(crate::network::sasl::illegal_handshake(shard)),
        RequestKind::SaslAuthenticate(_) => {
            Out::SaslAuthenticate(crate::network::sasl::illegal_authenticate())
        }
        other => return Err(no_handler(&other)),
    })
}

/// An API that passed admission but has no handler (advertised for feature
/// detection only): the connection is closed with this error.
fn no_handler(request: &RequestKind) -> FrameError {
    let name = format!("{request:?}");
    let name = name.split('(').next().unwrap_or("?").to_string();
    FrameError::Encode(frame::anyhow_error::AnyError(format!("no handler for {name}")))
}
