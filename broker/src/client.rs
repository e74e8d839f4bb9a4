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
        match self.call(ApiKey::Produce, RequestKind::Produce(req))? {
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
