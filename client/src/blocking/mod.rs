//! A small blocking Kafka client on `std::net`, for the `weir` admin commands
//! and the broker's integration tests. Blocking sockets with timeouts: use it
//! on an ordinary thread, never on an executor.
//!
//! One request at a time, except Produce, which may be pipelined
//! (`send_produce`, then `receive_produce` per request, in order). Invariants:
//! every answer is matched with the oldest unanswered request by correlation
//! id; a size prefix is checked against `RESPONSE_BYTES_MAX` before the
//! buffer is allocated; a short or malformed answer is an error, not a panic.
//! After an I/O or protocol error the connection is out of step: drop it.

mod acls;
mod groups;
mod quotas;
mod txn;
mod users;

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::{ApiKey, MetadataResponse, ProduceResponse, RequestKind};
use kafka_protocol::protocol::Request;

use crate::error::{check, ProtocolError};
use crate::requests::{self, FetchLimits, TopicRef, TOPIC_NAMES_VERSION_MAX};
use crate::responses;
use crate::versions::{Negotiation, Step, VersionTable};
use crate::wire::{self, RESPONSE_BYTES_MAX};

pub use crate::consumer_protocol::{
    decode_assignment, decode_subscription, encode_assignment, encode_subscription,
};
pub use acls::{names as acl_names, Acl, AclError};
pub use groups::{CommittedOffset, GroupDescription, GroupListing, GroupMember, Joined};
pub use quotas::{QuotaAltered, QuotaEntry};
pub use txn::{TxnDescription, TxnListing};
pub use users::{UserAltered, UserCredentials};

/// The client id on every request; brokers log it.
pub const CLIENT_ID: &str = "weir-client";
/// How long the broker may take over a request it was given (CreateTopics,
/// DeleteTopics, Produce with acks).
const BROKER_TIMEOUT_MS: i32 = 30_000;
/// Reads wait at least this long: a Fetch may legitimately wait `max_wait_ms`,
/// and a loaded test machine is slow; a connect timeout is usually far shorter.
const READ_TIMEOUT_MIN: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("connection to the broker failed")]
    Io(#[from] std::io::Error),
    #[error("protocol error")]
    Protocol(#[source] ProtocolError),
    #[error("broker answered with error code {code} ({name})")]
    Kafka { code: i16, name: String },
}

impl From<ProtocolError> for ClientError {
    fn from(e: ProtocolError) -> Self {
        match e {
            ProtocolError::Broker { code, name, .. } => Self::Kafka { code, name },
            e => Self::Protocol(e),
        }
    }
}

impl ClientError {
    /// The Kafka error code, when the broker answered with one.
    pub fn code(&self) -> Option<i16> {
        match self {
            Self::Kafka { code, .. } => Some(*code),
            _ => None,
        }
    }
}

/// One partition's part of a `fetch_many` answer.
#[derive(Debug, Clone)]
pub struct Fetched {
    pub partition: i32,
    /// 0, or the partition's Kafka error code.
    pub error_code: i16,
    pub high_watermark: i64,
    /// Whole batches; the last may be cut short by the size limit.
    pub records: Bytes,
}

/// A request this connection is still owed an answer to.
#[derive(Debug, Clone, Copy)]
struct Awaited {
    correlation_id: i32,
    api: ApiKey,
    version: i16,
    /// The partition a pipelined Produce wrote to.
    partition: i32,
}

impl Awaited {
    fn new(api: ApiKey, version: i16) -> Self {
        Self {
            correlation_id: 0,
            api,
            version,
            partition: -1,
        }
    }
}

/// One connection to one broker, with the versions negotiated on it.
pub struct Client {
    stream: TcpStream,
    next_correlation_id: i32,
    awaited: VecDeque<Awaited>,
    versions: VersionTable,
}

impl Client {
    /// Connect within `timeout` and negotiate versions.
    pub fn connect(addr: impl ToSocketAddrs, timeout: Duration) -> Result<Self, ClientError> {
        let addr = addr
            .to_socket_addrs()?
            .next()
            .ok_or_else(|| std::io::Error::other("no address"))?;
        let stream = TcpStream::connect_timeout(&addr, timeout)?;
        stream.set_read_timeout(Some(timeout.max(READ_TIMEOUT_MIN)))?;
        stream.set_write_timeout(Some(timeout.max(READ_TIMEOUT_MIN)))?;
        stream.set_nodelay(true)?;
        let mut client = Self {
            stream,
            next_correlation_id: 1,
            awaited: VecDeque::new(),
            versions: VersionTable::default(),
        };
        client.versions = client.negotiate()?;
        Ok(client)
    }

    fn negotiate(&mut self) -> Result<VersionTable, ClientError> {
        let mut negotiation = Negotiation::new(CLIENT_ID);
        loop {
            let version = negotiation.version();
            let request = negotiation.request().into();
            self.send_at(Awaited::new(ApiKey::ApiVersions, version), request, true)?;
            let (body, _) = self.receive_body()?;
            if let Step::Done(table) = negotiation.on_response(&body)? {
                return Ok(table);
            }
        }
    }

    /// The negotiated version of `key`.
    pub fn version(&self, key: ApiKey) -> Result<i16, ClientError> {
        Ok(self.versions.version(key)?)
    }

    /// Send at the negotiated version and wait for the answer.
    pub fn call<R: Request + Into<RequestKind>>(&mut self, body: R) -> Result<R::Response, ClientError> {
        let version = self.version(api_of::<R>())?;
        self.call_at(version, body)
    }

    /// Send at `version` and wait for the answer.
    pub fn call_at<R: Request + Into<RequestKind>>(
        &mut self,
        version: i16,
        body: R,
    ) -> Result<R::Response, ClientError> {
        self.send_at(Awaited::new(api_of::<R>(), version), body.into(), true)?;
        let (body, _) = self.receive_body()?;
        Ok(wire::decode_body(body, api_of::<R>(), version)?)
    }

    /// Write a request (`request.correlation_id` is assigned here); with
    /// `answered` its answer is awaited in turn.
    fn send_at(
        &mut self,
        mut request: Awaited,
        body: RequestKind,
        answered: bool,
    ) -> Result<(), ClientError> {
        request.correlation_id = self.next_correlation_id;
        self.next_correlation_id = self.next_correlation_id.wrapping_add(1) & i32::MAX;
        let frame = wire::encode_request(
            request.api,
            request.version,
            request.correlation_id,
            CLIENT_ID,
            &body,
        )?;
        self.stream.write_all(&frame)?;
        if answered {
            self.awaited.push_back(request);
        }
        Ok(())
    }

    /// Read the answer to the oldest awaited request: its checked body, and
    /// the request it answers.
    fn receive_body(&mut self) -> Result<(Bytes, Awaited), ClientError> {
        let Some(awaited) = self.awaited.pop_front() else {
            return Err(std::io::Error::other("no request awaits an answer").into());
        };
        let mut prefix = [0u8; wire::SIZE_PREFIX_BYTES];
        self.stream.read_exact(&mut prefix)?;
        let size = wire::response_size(prefix, RESPONSE_BYTES_MAX)?;
        let mut frame = vec![0u8; size];
        self.stream.read_exact(&mut frame)?;
        let body = wire::response_body(frame.into(), awaited.correlation_id, awaited.api, awaited.version)?;
        Ok((body, awaited))
    }

    pub fn metadata(&mut self, topics: Option<&[&str]>) -> Result<MetadataResponse, ClientError> {
        self.call(requests::metadata(topics))
    }

    pub fn create_topic(
        &mut self,
        name: &str,
        partitions: i32,
        configs: &[(&str, &str)],
    ) -> Result<(), ClientError> {
        let r = self.call(requests::create_topic(
            name,
            partitions,
            configs,
            BROKER_TIMEOUT_MS,
        ))?;
        Ok(responses::topics_created(&r, false)?)
    }

    /// A producer id and epoch for an idempotent producer.
    pub fn init_producer_id(&mut self) -> Result<(i64, i16), ClientError> {
        let r = self.call(requests::init_producer_id())?;
        crate::error::check(ApiKey::InitProducerId, r.error_code)?;
        Ok((r.producer_id.0, r.producer_epoch))
    }

    /// Produce one batch to one partition; returns the base offset (-1 with
    /// acks=0, which the broker does not answer).
    pub fn produce(
        &mut self,
        topic: &str,
        partition: i32,
        batch: Bytes,
        acks: i16,
    ) -> Result<i64, ClientError> {
        self.send_produce(topic, partition, batch, acks)?;
        if acks == 0 {
            return Ok(-1);
        }
        self.receive_produce()
    }

    fn produce_version(&self) -> Result<i16, ClientError> {
        Ok(self.version(ApiKey::Produce)?.min(TOPIC_NAMES_VERSION_MAX))
    }

    /// Write a Produce request for one batch without waiting for its answer,
    /// so a caller can pipeline many, then read each answer in order with
    /// `receive_produce` (with acks=0 none comes).
    pub fn send_produce(
        &mut self,
        topic: &str,
        partition: i32,
        batch: Bytes,
        acks: i16,
    ) -> Result<(), ClientError> {
        let req = requests::produce(topic, partition, batch, acks, BROKER_TIMEOUT_MS);
        let request = Awaited {
            partition,
            ..Awaited::new(ApiKey::Produce, self.produce_version()?)
        };
        self.send_at(request, req.into(), acks != 0)
    }

    /// The answer to the oldest Produce sent with `send_produce` and not yet
    /// read: the base offset of its batch.
    pub fn receive_produce(&mut self) -> Result<i64, ClientError> {
        let (body, sent) = self.receive_body()?;
        if sent.api != ApiKey::Produce {
            return Err(
                std::io::Error::other(format!("the oldest request is {:?}, not Produce", sent.api)).into(),
            );
        }
        let r: ProduceResponse = wire::decode_body(body, ApiKey::Produce, sent.version)?;
        let p = responses::produce_partition(&r, sent.partition)?;
        check(ApiKey::Produce, p.error_code)?;
        Ok(p.base_offset)
    }

    /// Fetch from one partition by name; returns (high watermark, records).
    pub fn fetch(
        &mut self,
        topic: &str,
        partition: i32,
        offset: i64,
        max_bytes: i32,
        max_wait_ms: i32,
    ) -> Result<(i64, Bytes), ClientError> {
        let version = self.version(ApiKey::Fetch)?.min(TOPIC_NAMES_VERSION_MAX);
        let topic = TopicRef {
            name: topic,
            id: uuid::Uuid::nil(),
        };
        let limits = FetchLimits {
            max_wait_ms,
            max_bytes,
            partition_max_bytes: max_bytes,
        };
        let r = self.call_at(
            version,
            requests::fetch(topic, version, &[(partition, offset)], limits),
        )?;
        check(ApiKey::Fetch, r.error_code)?;
        let p = responses::fetch_partition(&r, partition)?;
        check(ApiKey::Fetch, p.error_code)?;
        Ok((p.high_watermark, p.records.clone().unwrap_or_default()))
    }

    /// Fetch several partitions of one topic in one request (a consumer's
    /// poll): one `Fetched` per asked partition, in the order asked. A
    /// partition-level error comes back in `Fetched::error_code` (the caller
    /// decides: OFFSET_OUT_OF_RANGE resets, NOT_LEADER refreshes metadata);
    /// a top-level error is an `Err`.
    pub fn fetch_many(
        &mut self,
        topic: &str,
        partitions: &[(i32, i64)],
        limits: FetchLimits,
    ) -> Result<Vec<Fetched>, ClientError> {
        let version = self.version(ApiKey::Fetch)?.min(TOPIC_NAMES_VERSION_MAX);
        let topic = TopicRef {
            name: topic,
            id: uuid::Uuid::nil(),
        };
        let r = self.call_at(version, requests::fetch(topic, version, partitions, limits))?;
        check(ApiKey::Fetch, r.error_code)?;
        partitions
            .iter()
            .map(|&(partition, _)| {
                let p = responses::fetch_partition(&r, partition)?;
                Ok(Fetched {
                    partition,
                    error_code: p.error_code,
                    high_watermark: p.high_watermark,
                    records: p.records.clone().unwrap_or_default(),
                })
            })
            .collect()
    }

    /// ListOffsets for one partition: `EARLIEST` (-2), `LATEST` (-1) or a
    /// timestamp. Returns (offset, timestamp).
    pub fn list_offset(
        &mut self,
        topic: &str,
        partition: i32,
        timestamp: i64,
    ) -> Result<(i64, i64), ClientError> {
        let r = self.call(requests::list_offsets(topic, &[partition], timestamp))?;
        let p = responses::list_offsets_partition(&r, partition)?;
        check(ApiKey::ListOffsets, p.error_code)?;
        Ok((p.offset, p.timestamp))
    }
}

fn api_of<R: Request>() -> ApiKey {
    ApiKey::try_from(R::KEY).expect("kafka-protocol requests have known keys")
}

#[cfg(test)]
mod tests;
