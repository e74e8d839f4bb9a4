//! The null broker: a minimal Kafka-protocol endpoint (ApiVersions, Metadata,
//! CreateTopics, Produce acknowledged without storing, Fetch always empty,
//! ListOffsets at 0) so the generator's own ceiling can be measured, with an
//! optional periodic stall for the coordinated-omission test. For the tests of
//! `--check-order` it can instead keep what it is sent in memory and serve it
//! back (`store`), optionally storing every Nth batch of a partition before
//! the one it received just before it (`reorder_every`), as a broker that
//! reorders would. InitProducerId and the transaction calls: `txn`. For the
//! consume ceiling it answers every Fetch with pre-built batches (`served`).
//!
//! Plain std threads, one per connection (not glommio: it must be trivially
//! correct, and blocking is fine here). Counts what it acknowledged; never
//! panics on bad input: a bad frame closes that connection only.

use std::collections::HashMap;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::create_topics_response::CreatableTopicResult;
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{decode_request_header_from_buffer, Decodable, Encodable, StrBytes};
use kafka_protocol::ResponseError;
use weir_client::versions::CLIENT_APIS;
use weir_protocol::record_batch::{self, BatchWalker};

mod served;
mod store;
mod txn;

pub use served::SERVED_RECORD_BYTES;

use store::{read, store, wait_for_data, StoredLog};

/// Requests larger than this are refused (Kafka's socket.request.max.bytes).
const REQUEST_BYTES_MAX: usize = 100 << 20;
/// A Fetch waits at most this long before its (empty) answer.
const FETCH_WAIT_MS_MAX: u64 = 500;
/// The end offset ListOffsets gives with `serve_fetch_bytes`: out of reach.
const SERVED_END_OFFSET: i64 = 1 << 50;
/// UNSUPPORTED_VERSION, for the KIP-511 ApiVersions fallback.
const UNSUPPORTED_VERSION: i16 = ResponseError::UnsupportedVersion.code();
const TOPIC_ALREADY_EXISTS: i16 = ResponseError::TopicAlreadyExists.code();
const UNKNOWN_TOPIC_OR_PARTITION: i16 = ResponseError::UnknownTopicOrPartition.code();

#[derive(Debug, Clone)]
pub struct NullBrokerConfig {
    pub listen: String,
    pub stall_ms: u64,
    pub stall_every_ms: u64,
    pub default_partitions: i32,
    /// Whether any topic exists (true) or only those created (false).
    pub auto_topics: bool,
    /// Highest ApiVersions version understood; lower it to play an old broker
    /// and exercise the client's KIP-511 fallback.
    pub api_versions_max: i16,
    /// Answer the first `produce_error_count` partition writes with
    /// `produce_error_code` (without counting them), to exercise retries and
    /// error reporting.
    pub produce_error_code: i16,
    pub produce_error_count: u64,
    /// Keep produced batches in memory (the last 256 MiB per partition) and
    /// serve them to Fetch, which waits for data like a broker's long poll, and
    /// to ListOffsets.
    pub store: bool,
    /// With `store`: every Nth batch of a partition is stored before the
    /// previous one (0: never).
    pub reorder_every: u64,
    /// Answer every Fetch with about this many bytes per partition of
    /// pre-built batches of 1 KiB records, at the offset asked for (0: empty
    /// answers after the wait).
    pub serve_fetch_bytes: usize,
}

/// What the null broker acknowledged so far.
#[derive(Debug, Default)]
pub struct NullBrokerStats {
    pub produce_requests: AtomicU64,
    pub acked_records: AtomicU64,
    pub acked_batch_bytes: AtomicU64,
    pub fetch_requests: AtomicU64,
    /// Partition writes answered with the configured error so far.
    pub errors_injected: AtomicU64,
}

struct State {
    cfg: NullBrokerConfig,
    addr: SocketAddr,
    started: Instant,
    topics: Mutex<HashMap<String, i32>>,
    /// With `store`: per (topic id, partition).
    logs: Mutex<HashMap<(u128, i32), StoredLog>>,
    /// Signalled whenever `logs` grows: a waiting Fetch looks again.
    grown: Condvar,
    stats: Arc<NullBrokerStats>,
    stop: AtomicBool,
    served: Option<served::Served>,
}

/// A running null broker; `stop` (or dropping it) ends the accept loop.
pub struct NullBroker {
    state: Arc<State>,
    accept: Option<JoinHandle<()>>,
}

impl NullBroker {
    /// Bind (port 0 picks a free one) and serve in background threads.
    pub fn start(cfg: NullBrokerConfig) -> io::Result<Self> {
        let listener = TcpListener::bind(&cfg.listen)?;
        let addr = listener.local_addr()?;
        let cfg_serve = cfg.serve_fetch_bytes;
        let state = Arc::new(State {
            cfg,
            addr,
            started: Instant::now(),
            topics: Mutex::new(HashMap::new()),
            logs: Mutex::new(HashMap::new()),
            grown: Condvar::new(),
            stats: Arc::new(NullBrokerStats::default()),
            stop: AtomicBool::new(false),
            served: (cfg_serve > 0).then(|| served::Served::build(cfg_serve)),
        });
        let st = state.clone();
        let accept = std::thread::Builder::new()
            .name("null-broker-accept".into())
            .spawn(move || accept_loop(&st, &listener))?;
        Ok(Self {
            state,
            accept: Some(accept),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.state.addr
    }

    pub fn stats(&self) -> Arc<NullBrokerStats> {
        self.state.stats.clone()
    }

    /// Serve until the process ends (the CLI's mode).
    pub fn wait(mut self) {
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
    }

    pub fn stop(&mut self) {
        self.state.stop.store(true, Ordering::Release);
        // Wake the blocking accept with a throwaway connection.
        let _ = TcpStream::connect(self.state.addr);
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
    }
}

impl Drop for NullBroker {
    fn drop(&mut self) {
        if self.accept.is_some() {
            self.stop();
        }
    }
}

fn accept_loop(state: &Arc<State>, listener: &TcpListener) {
    for stream in listener.incoming() {
        if state.stop.load(Ordering::Acquire) {
            return;
        }
        let Ok(stream) = stream else { continue };
        let st = state.clone();
        let _ = std::thread::Builder::new()
            .name("null-broker-conn".into())
            .spawn(move || {
                let _ = serve(&st, stream);
            });
    }
}

fn serve(state: &State, stream: TcpStream) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let mut reader = BufReader::with_capacity(256 << 10, stream.try_clone()?);
    let mut writer = BufWriter::with_capacity(64 << 10, stream);
    let mut conn = served::ServedConn::default();
    loop {
        let mut size = [0u8; 4];
        if let Err(e) = reader.read_exact(&mut size) {
            return if e.kind() == io::ErrorKind::UnexpectedEof {
                Ok(())
            } else {
                Err(e)
            };
        }
        let size = i32::from_be_bytes(size);
        if size < 8 || size as usize > REQUEST_BYTES_MAX {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("bad frame size {size}"),
            ));
        }
        let mut frame = vec![0u8; size as usize];
        reader.read_exact(&mut frame)?;
        if let (Some(served), true) = (&state.served, is_fetch(&frame)) {
            writer.flush()?;
            served_fetch(state, served, &mut conn, Bytes::from(frame), writer.get_mut())?;
            continue;
        }
        let response =
            handle(state, Bytes::from(frame)).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        if let Some(bytes) = response {
            writer.write_all(&bytes)?;
        }
        // Flush only when no pipelined request is already waiting.
        if reader.buffer().is_empty() {
            writer.flush()?;
        }
    }
}

fn is_fetch(frame: &[u8]) -> bool {
    frame.get(..2) == Some(&(ApiKey::Fetch as i16).to_be_bytes()[..])
}

/// A Fetch of the consume ceiling: the served batches, written without a copy.
fn served_fetch(
    state: &State,
    served: &served::Served,
    conn: &mut served::ServedConn,
    mut frame: Bytes,
    out: &mut TcpStream,
) -> io::Result<()> {
    let invalid = |e: String| io::Error::new(io::ErrorKind::InvalidData, e);
    let header = decode_request_header_from_buffer(&mut frame).map_err(|e| invalid(e.to_string()))?;
    let version = header.request_api_version;
    let req = FetchRequest::decode(&mut frame, version).map_err(|e| invalid(e.to_string()))?;
    state.stats.fetch_requests.fetch_add(1, Ordering::Relaxed);
    let hv = ApiKey::Fetch.response_header_version(version);
    conn.respond(served, &req, header.correlation_id, hv, version, out)
}

/// Decode one request and build its framed response (None for acks=0).
fn handle(state: &State, mut frame: Bytes) -> Result<Option<Bytes>, String> {
    let header = decode_request_header_from_buffer(&mut frame).map_err(|e| e.to_string())?;
    let version = header.request_api_version;
    let key = ApiKey::try_from(header.request_api_key).map_err(|()| "unknown api key".to_string())?;
    let corr = header.correlation_id;
    let hv = key.response_header_version(version);
    match key {
        ApiKey::ApiVersions => api_versions(corr, version, state.cfg.api_versions_max),
        ApiKey::Metadata => {
            let req = MetadataRequest::decode(&mut frame, version).map_err(|e| e.to_string())?;
            respond(corr, hv, &metadata(state, &req), version)
        }
        ApiKey::CreateTopics => {
            let req = CreateTopicsRequest::decode(&mut frame, version).map_err(|e| e.to_string())?;
            respond(corr, hv, &create_topics(state, &req), version)
        }
        ApiKey::Produce => {
            let req = ProduceRequest::decode(&mut frame, version).map_err(|e| e.to_string())?;
            let response = produce(state, &req);
            if req.acks == 0 {
                return Ok(None);
            }
            stall(&state.cfg, state.started);
            respond(corr, hv, &response, version)
        }
        ApiKey::Fetch => {
            let req = FetchRequest::decode(&mut frame, version).map_err(|e| e.to_string())?;
            state.stats.fetch_requests.fetch_add(1, Ordering::Relaxed);
            let wait_ms = (req.max_wait_ms.max(0) as u64).min(FETCH_WAIT_MS_MAX);
            if state.cfg.store {
                wait_for_data(state, &req, Duration::from_millis(wait_ms));
            } else {
                std::thread::sleep(Duration::from_millis(wait_ms));
            }
            let response = fetch(state, &req);
            // Room for every record set up front: growing a MiB-sized buffer
            // by doubling would copy it again and again (the consume ceiling).
            let records: usize = (response.responses.iter())
                .flat_map(|t| t.partitions.iter())
                .map(|p| p.records.as_ref().map_or(0, Bytes::len))
                .sum();
            respond_sized(corr, hv, &response, version, records + 1024)
        }
        ApiKey::ListOffsets => {
            let req = ListOffsetsRequest::decode(&mut frame, version).map_err(|e| e.to_string())?;
            respond(corr, hv, &list_offsets(state, &req), version)
        }
        key if txn::SERVED.contains(&key) => txn::handle(state, key, version, corr, hv, &mut frame),
        other => Err(format!("unsupported api {other:?}")),
    }
}

/// Withhold the answer while inside a stall window: [k*every, k*every+stall).
fn stall(cfg: &NullBrokerConfig, started: Instant) {
    if cfg.stall_ms == 0 || cfg.stall_every_ms == 0 {
        return;
    }
    let phase_ms = started.elapsed().as_millis() as u64 % cfg.stall_every_ms;
    if phase_ms < cfg.stall_ms {
        std::thread::sleep(Duration::from_millis(cfg.stall_ms - phase_ms));
    }
}

fn respond<R: Encodable>(
    corr: i32,
    header_version: i16,
    body: &R,
    version: i16,
) -> Result<Option<Bytes>, String> {
    respond_sized(corr, header_version, body, version, 128)
}

fn respond_sized<R: Encodable>(
    corr: i32,
    header_version: i16,
    body: &R,
    version: i16,
    capacity: usize,
) -> Result<Option<Bytes>, String> {
    let mut buf = BytesMut::with_capacity(capacity);
    buf.put_i32(0);
    ResponseHeader::default()
        .with_correlation_id(corr)
        .encode(&mut buf, header_version)
        .map_err(|e| e.to_string())?;
    body.encode(&mut buf, version).map_err(|e| e.to_string())?;
    let size = (buf.len() - 4) as i32;
    buf[0..4].copy_from_slice(&size.to_be_bytes());
    Ok(Some(buf.freeze()))
}

/// The APIs served here; each is advertised with the range the Weir client
/// speaks (`CLIENT_APIS`), so whatever the client negotiates is served.
const SERVED: [ApiKey; 6] = [
    ApiKey::Produce,
    ApiKey::Fetch,
    ApiKey::ListOffsets,
    ApiKey::Metadata,
    ApiKey::ApiVersions,
    ApiKey::CreateTopics,
];

/// ApiVersions always answers with response header v0; an unknown version
/// gets UNSUPPORTED_VERSION in v0 format (KIP-511).
fn api_versions(corr: i32, version: i16, max: i16) -> Result<Option<Bytes>, String> {
    let advertised: Vec<ApiVersion> = CLIENT_APIS
        .iter()
        .filter(|r| SERVED.contains(&r.key) || txn::SERVED.contains(&r.key))
        .map(|r| {
            let hi = if r.key == ApiKey::ApiVersions {
                max.min(r.max)
            } else {
                r.max
            };
            ApiVersion::default()
                .with_api_key(r.key as i16)
                .with_min_version(r.min)
                .with_max_version(hi)
        })
        .collect();
    let own = advertised
        .iter()
        .find(|a| a.api_key == ApiKey::ApiVersions as i16);
    let supported = own.is_some_and(|a| (a.min_version..=a.max_version).contains(&version));
    let body = ApiVersionsResponse::default()
        .with_error_code(if supported { 0 } else { UNSUPPORTED_VERSION })
        .with_api_keys(advertised);
    respond(corr, 0, &body, if supported { version } else { 0 })
}

/// A stable topic id derived from the name (the null broker keeps no state
/// worth persisting, but clients may address topics by id).
fn topic_id_text(name: &str) -> String {
    let hex = format!("{:032x}", topic_id_u128(name));
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

fn topic_id_u128(name: &str) -> u128 {
    let h = crc32c::crc32c(name.as_bytes()) as u128;
    h.wrapping_mul(0x9E37_79B9_7F4A_7C15_F39C_C060_5CED_C835) | 1
}

/// The key of a topic's logs, whether a request names it or gives its id.
fn topic_key(name: &str, id: u128) -> u128 {
    if name.is_empty() {
        id
    } else {
        topic_id_u128(name)
    }
}

/// Partitions of `name`, or None if it does not exist.
fn partitions_of(state: &State, name: &str) -> Option<i32> {
    let topics = state.topics.lock().unwrap_or_else(|p| p.into_inner());
    match topics.get(name) {
        Some(&n) => Some(n),
        None => state.cfg.auto_topics.then_some(state.cfg.default_partitions),
    }
}

fn metadata(state: &State, req: &MetadataRequest) -> MetadataResponse {
    let names: Vec<String> = match &req.topics {
        Some(list) => list
            .iter()
            .filter_map(|t| t.name.as_ref().map(|n| n.0.to_string()))
            .collect(),
        None => state
            .topics
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .keys()
            .cloned()
            .collect(),
    };
    let topics = names
        .iter()
        .map(|name| {
            let topic_name = Some(TopicName(StrBytes::from_string(name.clone())));
            let Some(count) = partitions_of(state, name) else {
                return MetadataResponseTopic::default()
                    .with_name(topic_name)
                    .with_error_code(UNKNOWN_TOPIC_OR_PARTITION);
            };
            let mut t = MetadataResponseTopic::default()
                .with_name(topic_name)
                .with_partitions(
                    (0..count)
                        .map(|i| {
                            MetadataResponsePartition::default()
                                .with_partition_index(i)
                                .with_leader_id(BrokerId(0))
                                .with_replica_nodes(vec![BrokerId(0)])
                                .with_isr_nodes(vec![BrokerId(0)])
                        })
                        .collect(),
                );
            t.topic_id = topic_id_text(name).parse().expect("well-formed uuid text");
            t
        })
        .collect();
    MetadataResponse::default()
        .with_brokers(vec![MetadataResponseBroker::default()
            .with_node_id(BrokerId(0))
            .with_host(StrBytes::from_string(state.addr.ip().to_string()))
            .with_port(i32::from(state.addr.port()))])
        .with_controller_id(BrokerId(0))
        .with_cluster_id(Some(StrBytes::from_static_str("weir-null-broker")))
        .with_topics(topics)
}

fn create_topics(state: &State, req: &CreateTopicsRequest) -> CreateTopicsResponse {
    let mut topics = state.topics.lock().unwrap_or_else(|p| p.into_inner());
    let results = req
        .topics
        .iter()
        .map(|t| {
            let name = t.name.0.to_string();
            let partitions = if t.num_partitions > 0 {
                t.num_partitions
            } else {
                state.cfg.default_partitions
            };
            let code = if topics.contains_key(&name) {
                TOPIC_ALREADY_EXISTS
            } else {
                0
            };
            topics.entry(name.clone()).or_insert(partitions);
            let mut r = CreatableTopicResult::default()
                .with_name(t.name.clone())
                .with_error_code(code)
                .with_num_partitions(partitions)
                .with_replication_factor(1);
            r.topic_id = topic_id_text(&name).parse().expect("well-formed uuid text");
            r
        })
        .collect();
    CreateTopicsResponse::default().with_topics(results)
}

fn produce(state: &State, req: &ProduceRequest) -> ProduceResponse {
    state.stats.produce_requests.fetch_add(1, Ordering::Relaxed);
    let responses = req
        .topic_data
        .iter()
        .map(|t| {
            let partitions = t
                .partition_data
                .iter()
                .map(|p| {
                    let records = p.records.as_deref().unwrap_or_default();
                    let code = match inject_error(state) {
                        Some(code) => code,
                        None => count_batches(state, records),
                    };
                    if code == 0 && state.cfg.store {
                        store(
                            state,
                            (topic_key(&t.name.0, t.topic_id.as_u128()), p.index),
                            records,
                        );
                    }
                    PartitionProduceResponse::default()
                        .with_index(p.index)
                        .with_error_code(code)
                        .with_base_offset(0)
                })
                .collect();
            let mut r = TopicProduceResponse::default()
                .with_name(t.name.clone())
                .with_partition_responses(partitions);
            r.topic_id = t.topic_id;
            r
        })
        .collect();
    ProduceResponse::default().with_responses(responses)
}

/// The configured error while the injection budget lasts.
fn inject_error(state: &State) -> Option<i16> {
    let cfg = &state.cfg;
    if cfg.produce_error_count == 0 {
        return None;
    }
    let taken = state.stats.errors_injected.fetch_add(1, Ordering::Relaxed);
    if taken < cfg.produce_error_count {
        Some(cfg.produce_error_code)
    } else {
        state.stats.errors_injected.fetch_sub(1, Ordering::Relaxed);
        None
    }
}

/// Count the records of well-formed batches; CORRUPT_MESSAGE (2) otherwise.
fn count_batches(state: &State, records: &[u8]) -> i16 {
    let mut walker = BatchWalker::new(records);
    let mut count = 0u64;
    for range in walker.by_ref() {
        match record_batch::header(&records[range]) {
            Ok(h) => count += h.records_count.get().max(0) as u64,
            Err(_) => return 2,
        }
    }
    if walker.position() != records.len() {
        return 2;
    }
    state.stats.acked_records.fetch_add(count, Ordering::Relaxed);
    state
        .stats
        .acked_batch_bytes
        .fetch_add(records.len() as u64, Ordering::Relaxed);
    0
}

fn fetch(state: &State, req: &FetchRequest) -> FetchResponse {
    let logs = state.logs.lock().unwrap_or_else(|p| p.into_inner());
    let responses = req
        .topics
        .iter()
        .map(|t| {
            let topic = topic_key(&t.topic.0, t.topic_id.as_u128());
            let mut r = FetchableTopicResponse::default()
                .with_topic(t.topic.clone())
                .with_partitions(
                    t.partitions
                        .iter()
                        .map(|p| {
                            let (hw, records) = match logs.get(&(topic, p.partition)) {
                                Some(log) => {
                                    (log.next_offset, read(log, p.fetch_offset, p.partition_max_bytes))
                                }
                                None => (0, Bytes::new()),
                            };
                            PartitionData::default()
                                .with_partition_index(p.partition)
                                .with_high_watermark(hw)
                                .with_last_stable_offset(hw)
                                .with_log_start_offset(0)
                                .with_records(Some(records))
                        })
                        .collect(),
                );
            r.topic_id = t.topic_id;
            r
        })
        .collect();
    FetchResponse::default().with_responses(responses)
}

fn list_offsets(state: &State, req: &ListOffsetsRequest) -> ListOffsetsResponse {
    let logs = state.logs.lock().unwrap_or_else(|p| p.into_inner());
    let topics = req
        .topics
        .iter()
        .map(|t| {
            let topic = topic_key(&t.name.0, 0);
            ListOffsetsTopicResponse::default()
                .with_name(t.name.clone())
                .with_partitions(
                    t.partitions
                        .iter()
                        .map(|p| {
                            ListOffsetsPartitionResponse::default()
                                .with_partition_index(p.partition_index)
                                .with_offset(match logs.get(&(topic, p.partition_index)) {
                                    // LATEST (-1) is the end; EARLIEST and timestamps 0.
                                    Some(log) if p.timestamp == -1 => log.next_offset,
                                    // Served batches never end (for --to-end runs).
                                    _ if p.timestamp == -1 && state.served.is_some() => SERVED_END_OFFSET,
                                    _ => 0,
                                })
                                .with_timestamp(-1)
                        })
                        .collect(),
                )
        })
        .collect();
    ListOffsetsResponse::default().with_topics(topics)
}
