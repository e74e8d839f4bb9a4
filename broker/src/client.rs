//! A small blocking Kafka client on `std::net`, for the `weir` admin commands
//! and the integration tests. Never used on an executor thread. It negotiates
//! versions with ApiVersions (min of ours and the broker's per API) and speaks
//! only through `weir_protocol::frame`, so it exercises the same codecs.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{
    list_offsets_request, ApiKey, ApiVersionsRequest, BrokerId, CreateTopicsRequest, FetchRequest,
    ListOffsetsRequest, MetadataRequest, MetadataResponse, ProduceRequest, RequestHeader, RequestKind,
    ResponseKind, TopicName,
};
use weir_protocol::api::SUPPORTED_APIS;
use weir_protocol::frame;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("connection to the broker failed")]
    Io(#[from] std::io::Error),
    #[error("protocol error")]
    Frame(#[from] frame::FrameError),
    #[error("the broker does not support {0:?}")]
    Unsupported(ApiKey),
    #[error("broker answered with error code {code} ({name})")]
    Kafka { code: i16, name: String },
}

/// Name of a Kafka error code, for messages.
pub fn error_name(code: i16) -> String {
    use kafka_protocol::error::ParseResponseErrorCode;
    match code.err() {
        Some(e) => format!("{e:?}"),
        None => "NONE".to_string(),
    }
}

pub fn check(code: i16) -> Result<(), ClientError> {
    if code == 0 {
        Ok(())
    } else {
        Err(ClientError::Kafka {
            code,
            name: error_name(code),
        })
    }
}

pub struct Client {
    stream: TcpStream,
    next_correlation_id: i32,
    versions: HashMap<i16, i16>,
}

impl Client {
    pub fn connect(addr: impl ToSocketAddrs, timeout: Duration) -> Result<Self, ClientError> {
        let addr = addr
            .to_socket_addrs()?
            .next()
            .ok_or_else(|| std::io::Error::other("no address"))?;
        let stream = TcpStream::connect_timeout(&addr, timeout)?;
        stream.set_read_timeout(Some(timeout.max(Duration::from_secs(30))))?;
        stream.set_nodelay(true)?;
        let mut client = Self {
            stream,
            next_correlation_id: 1,
            versions: HashMap::new(),
        };
        let ResponseKind::ApiVersions(v) = client.call_at(
            ApiKey::ApiVersions,
            3,
            RequestKind::ApiVersions(ApiVersionsRequest::default()),
        )?
        else {
            unreachable!("ApiVersions answers ApiVersions")
        };
        check(v.error_code)?;
        for ours in SUPPORTED_APIS {
            if let Some(theirs) = v.api_keys.iter().find(|k| k.api_key == ours.key as i16) {
                let version = ours.max_version.min(theirs.max_version);
                if version >= ours.min_version.max(theirs.min_version) {
                    client.versions.insert(ours.key as i16, version);
                }
            }
        }
        Ok(client)
    }

    pub fn version(&self, key: ApiKey) -> Result<i16, ClientError> {
        self.versions
            .get(&(key as i16))
            .copied()
            .ok_or(ClientError::Unsupported(key))
    }

    /// Send at the negotiated version and wait for the answer.
    pub fn call(&mut self, key: ApiKey, body: RequestKind) -> Result<ResponseKind, ClientError> {
        let version = self.version(key)?;
        self.call_at(key, version, body)
    }

    pub fn call_at(
        &mut self,
        key: ApiKey,
        version: i16,
        body: RequestKind,
    ) -> Result<ResponseKind, ClientError> {
        self.send_at(key, version, &body)?;
        self.receive(key, version)
    }

    /// Send without reading the answer (acks=0 Produce).
    pub fn send_at(&mut self, key: ApiKey, version: i16, body: &RequestKind) -> Result<i32, ClientError> {
        let correlation_id = self.next_correlation_id;
        self.next_correlation_id += 1;
        let header = RequestHeader::default()
            .with_request_api_key(key as i16)
            .with_request_api_version(version)
            .with_correlation_id(correlation_id)
            .with_client_id(Some("weir-client".into()));
        let mut out = BytesMut::new();
        frame::encode_request(&mut out, &header, body)?;
        self.stream.write_all(&out)?;
        Ok(correlation_id)
    }

    fn receive(&mut self, key: ApiKey, version: i16) -> Result<ResponseKind, ClientError> {
        let mut prefix = [0u8; 4];
        self.stream.read_exact(&mut prefix)?;
        let size = u32::from_be_bytes(prefix) as usize;
        let mut body = vec![0u8; size];
        self.stream.read_exact(&mut body)?;
        let (_, response) = frame::decode_response(Bytes::from(body), key, version)?;
        Ok(response)
    }

    pub fn metadata(&mut self, topics: Option<&[&str]>) -> Result<MetadataResponse, ClientError> {
        let topics = topics.map(|t| {
            t.iter()
                .map(|n| {
                    kafka_protocol::messages::metadata_request::MetadataRequestTopic::default()
                        .with_name(Some(TopicName((*n).to_string().into())))
                })
                .collect()
        });
        let req = MetadataRequest::default()
            .with_topics(topics)
            .with_allow_auto_topic_creation(false);
        match self.call(ApiKey::Metadata, RequestKind::Metadata(req))? {
            ResponseKind::Metadata(m) => Ok(m),
            _ => unreachable!("Metadata answers Metadata"),
        }
    }

    pub fn create_topic(
        &mut self,
        name: &str,
        partitions: i32,
        configs: &[(&str, &str)],
    ) -> Result<(), ClientError> {
        use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
        let topic = CreatableTopic::default()
            .with_name(TopicName(name.to_string().into()))
            .with_num_partitions(partitions)
            .with_replication_factor(1)
            .with_configs(
                configs
                    .iter()
                    .map(|(k, v)| {
                        CreatableTopicConfig::default()
                            .with_name((*k).to_string().into())
                            .with_value(Some((*v).to_string().into()))
                    })
                    .collect(),
            );
        let req = CreateTopicsRequest::default()
            .with_topics(vec![topic])
            .with_timeout_ms(30_000);
        match self.call(ApiKey::CreateTopics, RequestKind::CreateTopics(req))? {
            ResponseKind::CreateTopics(r) => r.topics.iter().try_for_each(|t| check(t.error_code)),
            _ => unreachable!("CreateTopics answers CreateTopics"),
        }
    }

    /// Produce one batch to one partition; returns the base offset.
    pub fn produce(
        &mut self,
        topic: &str,
        partition: i32,
        batch: Bytes,
        acks: i16,
    ) -> Result<i64, ClientError> {
        self.send_produce(topic, partition, batch, acks)?;
        self.receive_produce()
    }

    /// Write a Produce request for one batch without waiting for its answer, so a caller
    /// can pipeline many (then read each answer, in order, with `receive_produce`; with
    /// acks=0 none comes). Returns the correlation id.
    pub fn send_produce(
        &mut self,
        topic: &str,
        partition: i32,
        batch: Bytes,
        acks: i16,
    ) -> Result<i32, ClientError> {
        use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
        let data = TopicProduceData::default()
            .with_name(TopicName(topic.to_string().into()))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(partition)
                .with_records(Some(batch))]);
        let req = ProduceRequest::default()
            .with_acks(acks)
            .with_timeout_ms(30_000)
            .with_topic_data(vec![data]);
        let version = self.version(ApiKey::Produce)?;
        self.send_at(ApiKey::Produce, version, &RequestKind::Produce(req))
    }

    /// The answer to the oldest Produce sent with `send_produce` and not yet read: the
    /// base offset of its (one) batch.
    pub fn receive_produce(&mut self) -> Result<i64, ClientError> {
        let version = self.version(ApiKey::Produce)?;
        match self.receive(ApiKey::Produce, version)? {
            ResponseKind::Produce(r) => {
                let p = &r.responses[0].partition_responses[0];
                check(p.error_code)?;
                Ok(p.base_offset)
            }
            _ => unreachable!("Produce answers Produce"),
        }
    }

    /// Fetch from one partition by name (the client stays at Fetch v12 so it
    /// can name topics without their ids); returns (high watermark, records).
    pub fn fetch(
        &mut self,
        topic: &str,
        partition: i32,
        offset: i64,
        max_bytes: i32,
        max_wait_ms: i32,
    ) -> Result<(i64, Bytes), ClientError> {
        use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
        let version = self.version(ApiKey::Fetch)?.min(12);
        let part = FetchPartition::default()
            .with_partition(partition)
            .with_fetch_offset(offset)
            .with_partition_max_bytes(max_bytes);
        let req = FetchRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_max_wait_ms(max_wait_ms)
            .with_min_bytes(1)
            .with_max_bytes(max_bytes)
            .with_topics(vec![FetchTopic::default()
                .with_topic(TopicName(topic.to_string().into()))
                .with_partitions(vec![part])]);
        match self.call_at(ApiKey::Fetch, version, RequestKind::Fetch(req))? {
            ResponseKind::Fetch(r) => {
                check(r.error_code)?;
                let p = &r.responses[0].partitions[0];
                check(p.error_code)?;
                Ok((p.high_watermark, p.records.clone().unwrap_or_default()))
            }
            _ => unreachable!("Fetch answers Fetch"),
        }
    }

    /// ListOffsets for one partition: -2 earliest, -1 latest, or a timestamp.
    /// Returns (offset, timestamp).
    pub fn list_offset(
        &mut self,
        topic: &str,
        partition: i32,
        timestamp: i64,
    ) -> Result<(i64, i64), ClientError> {
        let req = ListOffsetsRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_topics(vec![list_offsets_request::ListOffsetsTopic::default()
                .with_name(TopicName(topic.to_string().into()))
                .with_partitions(vec![
                    list_offsets_request::ListOffsetsPartition::default()
                        .with_partition_index(partition)
                        .with_timestamp(timestamp),
                ])]);
        match self.call(ApiKey::ListOffsets, RequestKind::ListOffsets(req))? {
            ResponseKind::ListOffsets(r) => {
                let p = &r.topics[0].partitions[0];
                check(p.error_code)?;
                Ok((p.offset, p.timestamp))
            }
            _ => unreachable!("ListOffsets answers ListOffsets"),
        }
    }
}

/// A JoinGroup answer: the generation, this member's id, the leader's id, the chosen protocol,
/// and (for the leader only) every member's id and protocol metadata.
#[derive(Debug, Clone)]
pub struct Joined {
    pub generation_id: i32,
    pub member_id: String,
    pub leader_id: String,
    pub protocol_name: String,
    pub members: Vec<(String, Bytes)>,
}

impl Joined {
    pub fn is_leader(&self) -> bool {
        self.member_id == self.leader_id
    }
}

/// One ListGroups entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupListing {
    pub group_id: String,
    pub protocol_type: String,
    pub state: String,
}

/// One DescribeGroups member; `assignment` is decoded when the group is a Stable `consumer` group.
#[derive(Debug, Clone)]
pub struct GroupMember {
    pub member_id: String,
    pub client_id: String,
    pub client_host: String,
    pub assignment: Vec<(String, Vec<i32>)>,
}

#[derive(Debug, Clone)]
pub struct GroupDescription {
    pub state: String,
    pub protocol_type: String,
    pub protocol: String,
    pub members: Vec<GroupMember>,
}

/// (topic, partition, committed offset) as OffsetFetch reports it; -1 means none.
pub type CommittedOffset = (String, i32, i64);

/// Versions whose layout the group calls below assume (newer ones batch several groups or
/// keys per request, which these one-group helpers do not need).
const FIND_COORDINATOR_VERSION_MAX: i16 = 3;
const OFFSET_FETCH_VERSION_MAX: i16 = 7;

/// A `consumer` protocol subscription (version 0..=3 of ConsumerProtocolSubscription):
/// the i16 version prefix then the struct, as the Java client and librdkafka write it.
pub fn encode_subscription(topics: &[&str]) -> Bytes {
    use kafka_protocol::messages::ConsumerProtocolSubscription;
    let s = ConsumerProtocolSubscription::default().with_topics(
        topics
            .iter()
            .map(|t| kafka_protocol::protocol::StrBytes::from_string((*t).to_string()))
            .collect(),
    );
    encode_versioned(&s, 1)
}

/// A `consumer` protocol assignment: topic -> partitions.
pub fn encode_assignment(assignment: &[(String, Vec<i32>)]) -> Bytes {
    use kafka_protocol::messages::consumer_protocol_assignment::TopicPartition;
    use kafka_protocol::messages::ConsumerProtocolAssignment;
    let a = ConsumerProtocolAssignment::default().with_assigned_partitions(
        assignment
            .iter()
            .map(|(t, ps)| {
                TopicPartition::default()
                    .with_topic(TopicName(t.clone().into()))
                    .with_partitions(ps.clone())
            })
            .collect(),
    );
    encode_versioned(&a, 1)
}

fn encode_versioned<M: kafka_protocol::protocol::Encodable>(m: &M, version: i16) -> Bytes {
    let mut out = BytesMut::new();
    out.extend_from_slice(&version.to_be_bytes());
    m.encode(&mut out, version)
        .expect("a consumer protocol struct built here always encodes");
    out.freeze()
}

/// Decodes a `consumer` protocol assignment; `None` when the bytes are not one (another
/// protocol type, or empty because the group is rebalancing).
pub fn decode_assignment(bytes: &Bytes) -> Option<Vec<(String, Vec<i32>)>> {
    use kafka_protocol::messages::ConsumerProtocolAssignment;
    use kafka_protocol::protocol::Decodable;
    let mut buf = bytes.clone();
    if buf.len() < 2 {
        return None;
    }
    let version = i16::from_be_bytes([buf[0], buf[1]]);
    let _ = bytes::Buf::get_i16(&mut buf);
    // Newer versions only append fields: decode them as the newest we know.
    let a = ConsumerProtocolAssignment::decode(&mut buf, version.clamp(0, 3)).ok()?;
    Some(
        a.assigned_partitions
            .into_iter()
            .map(|tp| (tp.topic.0.to_string(), tp.partitions))
            .collect(),
    )
}

/// Decodes the topic list of a `consumer` protocol subscription.
pub fn decode_subscription(bytes: &Bytes) -> Option<Vec<String>> {
    use kafka_protocol::messages::ConsumerProtocolSubscription;
    use kafka_protocol::protocol::Decodable;
    let mut buf = bytes.clone();
    if buf.len() < 2 {
        return None;
    }
    let version = bytes::Buf::get_i16(&mut buf);
    let s = ConsumerProtocolSubscription::decode(&mut buf, version.clamp(0, 3)).ok()?;
    Some(s.topics.into_iter().map(|t| t.to_string()).collect())
}

fn sb(s: &str) -> kafka_protocol::protocol::StrBytes {
    kafka_protocol::protocol::StrBytes::from_string(s.to_string())
}

impl Client {
    /// FindCoordinator for a group: (node id, host, port).
    pub fn find_coordinator(&mut self, group_id: &str) -> Result<(i32, String, i32), ClientError> {
        use kafka_protocol::messages::FindCoordinatorRequest;
        let version = self
            .version(ApiKey::FindCoordinator)?
            .min(FIND_COORDINATOR_VERSION_MAX);
        let req = FindCoordinatorRequest::default().with_key(sb(group_id));
        match self.call_at(
            ApiKey::FindCoordinator,
            version,
            RequestKind::FindCoordinator(req),
        )? {
            ResponseKind::FindCoordinator(r) => {
                check(r.error_code)?;
                Ok((r.node_id.0, r.host.to_string(), r.port))
            }
            _ => unreachable!("FindCoordinator answers FindCoordinator"),
        }
    }

    /// JoinGroup as a `consumer` member offering `protocols` (name, metadata). An empty
    /// `member_id` joins as new; MEMBER_ID_REQUIRED is answered by joining again with the
    /// id the broker handed out (KIP-394), so the caller always gets a member id back.
    pub fn join_group(
        &mut self,
        group_id: &str,
        member_id: &str,
        session_timeout_ms: i32,
        protocols: &[(&str, Bytes)],
    ) -> Result<Joined, ClientError> {
        use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
        use kafka_protocol::messages::{GroupId, JoinGroupRequest};
        let mut member_id = member_id.to_string();
        // A broker that hands out a member id answers the second join; two rounds suffice.
        for _ in 0..2 {
            let req = JoinGroupRequest::default()
                .with_group_id(GroupId(sb(group_id)))
                .with_session_timeout_ms(session_timeout_ms)
                .with_rebalance_timeout_ms(session_timeout_ms)
                .with_member_id(sb(&member_id))
                .with_protocol_type(sb("consumer"))
                .with_protocols(
                    protocols
                        .iter()
                        .map(|(name, meta)| {
                            JoinGroupRequestProtocol::default()
                                .with_name(sb(name))
                                .with_metadata(meta.clone())
                        })
                        .collect(),
                );
            let ResponseKind::JoinGroup(r) = self.call(ApiKey::JoinGroup, RequestKind::JoinGroup(req))?
            else {
                unreachable!("JoinGroup answers JoinGroup")
            };
            if r.error_code == kafka_protocol::ResponseError::MemberIdRequired.code() {
                member_id = r.member_id.to_string();
                continue;
            }
            check(r.error_code)?;
            return Ok(Joined {
                generation_id: r.generation_id,
                member_id: r.member_id.to_string(),
                leader_id: r.leader.to_string(),
                protocol_name: r.protocol_name.map(|p| p.to_string()).unwrap_or_default(),
                members: r
                    .members
                    .into_iter()
                    .map(|m| (m.member_id.to_string(), m.metadata))
                    .collect(),
            });
        }
        check(kafka_protocol::ResponseError::MemberIdRequired.code())?;
        unreachable!("check of a non-zero code is an error")
    }

    /// SyncGroup: the leader passes every member's assignment, the others an empty list.
    /// Returns this member's assignment bytes.
    pub fn sync_group(
        &mut self,
        group_id: &str,
        joined: &Joined,
        assignments: &[(String, Bytes)],
    ) -> Result<Bytes, ClientError> {
        use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
        use kafka_protocol::messages::{GroupId, SyncGroupRequest};
        let req = SyncGroupRequest::default()
            .with_group_id(GroupId(sb(group_id)))
            .with_generation_id(joined.generation_id)
            .with_member_id(sb(&joined.member_id))
            .with_protocol_type(Some(sb("consumer")))
            .with_protocol_name(Some(sb(&joined.protocol_name)))
            .with_assignments(
                assignments
                    .iter()
                    .map(|(m, a)| {
                        SyncGroupRequestAssignment::default()
                            .with_member_id(sb(m))
                            .with_assignment(a.clone())
                    })
                    .collect(),
            );
        match self.call(ApiKey::SyncGroup, RequestKind::SyncGroup(req))? {
            ResponseKind::SyncGroup(r) => {
                check(r.error_code)?;
                Ok(r.assignment)
            }
            _ => unreachable!("SyncGroup answers SyncGroup"),
        }
    }

    /// Heartbeat; REBALANCE_IN_PROGRESS comes back as `ClientError::Kafka { code: 27, .. }`.
    pub fn heartbeat(
        &mut self,
        group_id: &str,
        generation_id: i32,
        member_id: &str,
    ) -> Result<(), ClientError> {
        use kafka_protocol::messages::{GroupId, HeartbeatRequest};
        let req = HeartbeatRequest::default()
            .with_group_id(GroupId(sb(group_id)))
            .with_generation_id(generation_id)
            .with_member_id(sb(member_id));
        match self.call(ApiKey::Heartbeat, RequestKind::Heartbeat(req))? {
            ResponseKind::Heartbeat(r) => check(r.error_code),
            _ => unreachable!("Heartbeat answers Heartbeat"),
        }
    }

    pub fn leave_group(&mut self, group_id: &str, member_id: &str) -> Result<(), ClientError> {
        use kafka_protocol::messages::leave_group_request::MemberIdentity;
        use kafka_protocol::messages::{GroupId, LeaveGroupRequest};
        let version = self.version(ApiKey::LeaveGroup)?;
        let mut req = LeaveGroupRequest::default().with_group_id(GroupId(sb(group_id)));
        if version >= 3 {
            req = req.with_members(vec![MemberIdentity::default().with_member_id(sb(member_id))]);
        } else {
            req = req.with_member_id(sb(member_id));
        }
        match self.call_at(ApiKey::LeaveGroup, version, RequestKind::LeaveGroup(req))? {
            ResponseKind::LeaveGroup(r) => {
                check(r.error_code)?;
                r.members.iter().try_for_each(|m| check(m.error_code))
            }
            _ => unreachable!("LeaveGroup answers LeaveGroup"),
        }
    }

    /// OffsetCommit of (topic, partition, offset) triples. Generation -1 with an empty member id
    /// is an admin commit, which the coordinator accepts only for a group without members.
    pub fn commit_offsets(
        &mut self,
        group_id: &str,
        generation_id: i32,
        member_id: &str,
        offsets: &[(&str, i32, i64)],
    ) -> Result<(), ClientError> {
        use kafka_protocol::messages::offset_commit_request::{
            OffsetCommitRequestPartition, OffsetCommitRequestTopic,
        };
        use kafka_protocol::messages::{GroupId, OffsetCommitRequest};
        let mut topics: Vec<OffsetCommitRequestTopic> = Vec::new();
        for (topic, partition, offset) in offsets {
            let p = OffsetCommitRequestPartition::default()
                .with_partition_index(*partition)
                .with_committed_offset(*offset);
            match topics.iter_mut().find(|t| t.name.0.as_str() == *topic) {
                Some(t) => t.partitions.push(p),
                None => topics.push(
                    OffsetCommitRequestTopic::default()
                        .with_name(TopicName((*topic).to_string().into()))
                        .with_partitions(vec![p]),
                ),
            }
        }
        let req = OffsetCommitRequest::default()
            .with_group_id(GroupId(sb(group_id)))
            .with_generation_id_or_member_epoch(generation_id)
            .with_member_id(sb(member_id))
            .with_topics(topics);
        match self.call(ApiKey::OffsetCommit, RequestKind::OffsetCommit(req))? {
            ResponseKind::OffsetCommit(r) => r
                .topics
                .iter()
                .flat_map(|t| &t.partitions)
                .try_for_each(|p| check(p.error_code)),
            _ => unreachable!("OffsetCommit answers OffsetCommit"),
        }
    }

    /// OffsetFetch for one group: every committed partition (`topics: None`) or the named ones.
    pub fn fetch_offsets(
        &mut self,
        group_id: &str,
        topics: Option<&[(&str, Vec<i32>)]>,
    ) -> Result<Vec<CommittedOffset>, ClientError> {
        use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
        use kafka_protocol::messages::{GroupId, OffsetFetchRequest};
        let version = self.version(ApiKey::OffsetFetch)?.min(OFFSET_FETCH_VERSION_MAX);
        let topics = topics.map(|ts| {
            ts.iter()
                .map(|(t, ps)| {
                    OffsetFetchRequestTopic::default()
                        .with_name(TopicName((*t).to_string().into()))
                        .with_partition_indexes(ps.clone())
                })
                .collect()
        });
        let req = OffsetFetchRequest::default()
            .with_group_id(GroupId(sb(group_id)))
            .with_topics(topics);
        match self.call_at(ApiKey::OffsetFetch, version, RequestKind::OffsetFetch(req))? {
            ResponseKind::OffsetFetch(r) => {
                check(r.error_code)?;
                let mut out = Vec::new();
                for t in r.topics {
                    for p in t.partitions {
                        check(p.error_code)?;
                        out.push((t.name.0.to_string(), p.partition_index, p.committed_offset));
                    }
                }
                Ok(out)
            }
            _ => unreachable!("OffsetFetch answers OffsetFetch"),
        }
    }

    pub fn list_groups(&mut self) -> Result<Vec<GroupListing>, ClientError> {
        use kafka_protocol::messages::ListGroupsRequest;
        match self.call(
            ApiKey::ListGroups,
            RequestKind::ListGroups(ListGroupsRequest::default()),
        )? {
            ResponseKind::ListGroups(r) => {
                check(r.error_code)?;
                Ok(r.groups
                    .into_iter()
                    .map(|g| GroupListing {
                        group_id: g.group_id.0.to_string(),
                        protocol_type: g.protocol_type.to_string(),
                        state: g.group_state.to_string(),
                    })
                    .collect())
            }
            _ => unreachable!("ListGroups answers ListGroups"),
        }
    }

    /// DescribeGroups for one group. An unknown group is reported with state `Dead`.
    pub fn describe_group(&mut self, group_id: &str) -> Result<GroupDescription, ClientError> {
        use kafka_protocol::messages::{DescribeGroupsRequest, GroupId};
        let req = DescribeGroupsRequest::default().with_groups(vec![GroupId(sb(group_id))]);
        let ResponseKind::DescribeGroups(r) =
            self.call(ApiKey::DescribeGroups, RequestKind::DescribeGroups(req))?
        else {
            unreachable!("DescribeGroups answers DescribeGroups")
        };
        let g = r
            .groups
            .into_iter()
            .next()
            .ok_or_else(|| ClientError::Io(std::io::Error::other("DescribeGroups answered no group")))?;
        check(g.error_code)?;
        let consumer = g.protocol_type.as_str() == "consumer";
        Ok(GroupDescription {
            state: g.group_state.to_string(),
            protocol_type: g.protocol_type.to_string(),
            protocol: g.protocol_data.to_string(),
            members: g
                .members
                .into_iter()
                .map(|m| GroupMember {
                    member_id: m.member_id.to_string(),
                    client_id: m.client_id.to_string(),
                    client_host: m.client_host.to_string(),
                    assignment: if consumer {
                        decode_assignment(&m.member_assignment).unwrap_or_default()
                    } else {
                        Vec::new()
                    },
                })
                .collect(),
        })
    }

    pub fn delete_topic(&mut self, name: &str) -> Result<(), ClientError> {
        use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
        use kafka_protocol::messages::DeleteTopicsRequest;
        let version = self.version(ApiKey::DeleteTopics)?;
        let topic = TopicName(name.to_string().into());
        let mut req = DeleteTopicsRequest::default().with_timeout_ms(30_000);
        if version >= 6 {
            req = req.with_topics(vec![DeleteTopicState::default().with_name(Some(topic))]);
        } else {
            req = req.with_topic_names(vec![topic]);
        }
        match self.call_at(ApiKey::DeleteTopics, version, RequestKind::DeleteTopics(req))? {
            ResponseKind::DeleteTopics(r) => r.responses.iter().try_for_each(|t| check(t.error_code)),
            _ => unreachable!("DeleteTopics answers DeleteTopics"),
        }
    }

    /// DescribeConfigs for one topic: (name, value) pairs.
    pub fn topic_configs(&mut self, name: &str) -> Result<Vec<(String, String)>, ClientError> {
        use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
        use kafka_protocol::messages::DescribeConfigsRequest;
        const RESOURCE_TYPE_TOPIC: i8 = 2;
        let req = DescribeConfigsRequest::default().with_resources(vec![DescribeConfigsResource::default()
            .with_resource_type(RESOURCE_TYPE_TOPIC)
            .with_resource_name(sb(name))
            // None asks for every config; the default (an empty list) asks for none.
            .with_configuration_keys(None)]);
        match self.call(ApiKey::DescribeConfigs, RequestKind::DescribeConfigs(req))? {
            ResponseKind::DescribeConfigs(r) => {
                let mut out = Vec::new();
                for res in r.results {
                    check(res.error_code)?;
                    for c in res.configs {
                        out.push((
                            c.name.to_string(),
                            c.value.map(|v| v.to_string()).unwrap_or_default(),
                        ));
                    }
                }
                Ok(out)
            }
            _ => unreachable!("DescribeConfigs answers DescribeConfigs"),
        }
    }
}
