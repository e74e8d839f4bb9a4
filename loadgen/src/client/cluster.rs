//! Bootstrap: topic creation, Metadata (brokers and partition leaders) and
//! ListOffsets. Runs on whichever shard calls it; the result is plain data
//! (`Cluster`, `Send`) that the runner hands to every shard.
//!
//! Invariant: every partition in a `Cluster` has a leader that is listed in
//! `brokers`, so shards can route without further checks.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use kafka_protocol::messages::metadata_response::MetadataResponseTopic;
use kafka_protocol::messages::ApiKey;
use kafka_protocol::ResponseError;
use weir_client::{requests, responses, ProtocolError};

use super::conn::Connection;
use super::ClientError;

pub use weir_client::requests::{EARLIEST, LATEST};
/// How long to wait for a just-created topic to get leaders everywhere.
const LEADER_WAIT_MS_MAX: u64 = 10_000;
/// Pause between Metadata polls while leaders are elected.
const METADATA_RETRY_MS: u64 = 100;
/// ListOffsets carries an isolation level from v2 on.
const ISOLATION_VERSION_MIN: i16 = 2;

/// One partition and the broker leading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionMeta {
    pub index: i32,
    pub leader: i32,
}

/// The topic as Metadata described it; `raw` keeps the topic id in the
/// protocol crate's own type for Fetch/Produce v13+.
#[derive(Debug, Clone)]
pub struct TopicMeta {
    pub name: String,
    pub raw: MetadataResponseTopic,
    pub partitions: Vec<PartitionMeta>,
}

impl TopicMeta {
    pub fn has_topic_id(&self) -> bool {
        !self.raw.topic_id.is_nil()
    }

    pub fn topic_id_bytes(&self) -> [u8; 16] {
        *self.raw.topic_id.as_bytes()
    }
}

/// Brokers by id (host:port) and the topics under load.
///
/// Tasks address a partition by its slot: an index into `slots`, which lists every
/// partition of every topic, topic by topic. With one topic a slot is the partition.
#[derive(Debug, Clone)]
pub struct Cluster {
    pub brokers: BTreeMap<i32, String>,
    /// Every topic under load (at least one), in `topic_names` order.
    pub topics: Vec<TopicMeta>,
    /// Slot -> (index into `topics`, partition).
    pub slots: Vec<(usize, i32)>,
}

impl Cluster {
    fn of(brokers: BTreeMap<i32, String>, topics: Vec<TopicMeta>) -> Self {
        let slots = (topics.iter().enumerate())
            .flat_map(|(t, meta)| meta.partitions.iter().map(move |p| (t, p.index)))
            .collect();
        Cluster {
            brokers,
            topics,
            slots,
        }
    }

    /// The first topic (the only one unless --topics says more): consumers and
    /// transactions use it.
    pub fn topic(&self) -> &TopicMeta {
        &self.topics[0]
    }

    pub fn leader_addr(&self, slot: i32) -> &str {
        &self.brokers[&self.leader(slot)]
    }

    /// The broker leading the partition of `slot`.
    pub fn leader(&self, slot: i32) -> i32 {
        let (topic, partition) = self.slots[slot as usize];
        self.topics[topic].partitions[partition as usize].leader
    }

    /// The topic and partition of `slot`.
    pub fn target(&self, slot: i32) -> (&TopicMeta, i32) {
        let (topic, partition) = self.slots[slot as usize];
        (&self.topics[topic], partition)
    }
}

/// The topics of a run: `topic` itself, or `topic-0` .. `topic-(n-1)`.
pub fn topic_names(topic: &str, n: usize) -> Vec<String> {
    if n <= 1 {
        return vec![topic.to_string()];
    }
    (0..n).map(|i| format!("{topic}-{i}")).collect()
}

/// `bootstrap` for each of `topics` in turn (creating each if asked), as one cluster.
pub async fn bootstrap_all(
    conn: &Connection,
    topics: &[String],
    create_partitions: Option<i32>,
) -> Result<Cluster, ClientError> {
    let mut metas = Vec::with_capacity(topics.len());
    let mut brokers = BTreeMap::new();
    for topic in topics {
        let one = bootstrap(conn, topic, create_partitions).await?;
        brokers = one.brokers;
        metas.extend(one.topics);
    }
    Ok(Cluster::of(brokers, metas))
}

/// Create the topic if asked, then wait until Metadata shows a leader for every
/// partition. Errors name the topic and the broker's error code.
pub async fn bootstrap(
    conn: &Connection,
    topic: &str,
    create_partitions: Option<i32>,
) -> Result<Cluster, ClientError> {
    if let Some(partitions) = create_partitions {
        create_topic(conn, topic, partitions).await?;
    }
    let started = Instant::now();
    loop {
        let found = metadata(conn, topic).await?;
        let waited_ms = started.elapsed().as_millis() as u64;
        match found {
            MetadataOutcome::Ready(cluster) => return Ok(cluster),
            MetadataOutcome::UnknownTopic if create_partitions.is_none() => {
                return Err(ClientError::UnknownTopic {
                    topic: topic.to_string(),
                })
            }
            MetadataOutcome::UnknownTopic | MetadataOutcome::NoLeader(_)
                if waited_ms < LEADER_WAIT_MS_MAX =>
            {
                glommio::timer::sleep(Duration::from_millis(METADATA_RETRY_MS)).await;
            }
            MetadataOutcome::UnknownTopic => {
                return Err(ClientError::UnknownTopic {
                    topic: topic.to_string(),
                })
            }
            MetadataOutcome::NoLeader(partition) => {
                return Err(ClientError::NoLeader {
                    topic: topic.to_string(),
                    partition,
                    waited_ms,
                })
            }
            MetadataOutcome::Failed(e) => return Err(e),
        }
    }
}

async fn create_topic(conn: &Connection, topic: &str, partitions: i32) -> Result<(), ClientError> {
    let version = conn.version(ApiKey::CreateTopics)?;
    let timeout_ms = conn.timeout().as_millis() as i32;
    let request = requests::create_topic(topic, partitions, &[], timeout_ms);
    let response = conn.request(request, version).await?;
    // An existing topic is fine for --create: the run uses it as it is.
    responses::topics_created(&response, true).map_err(|e| conn.protocol(e))
}

enum MetadataOutcome {
    Ready(Cluster),
    UnknownTopic,
    NoLeader(i32),
    Failed(ClientError),
}

async fn metadata(conn: &Connection, topic: &str) -> Result<MetadataOutcome, ClientError> {
    let version = conn.version(ApiKey::Metadata)?;
    let response = conn.request(requests::metadata(Some(&[topic])), version).await?;
    if response.error_code != 0 {
        return Ok(MetadataOutcome::Failed(broker_error(
            conn,
            ApiKey::Metadata,
            response.error_code,
            topic,
        )));
    }
    let brokers: BTreeMap<i32, String> = response
        .brokers
        .iter()
        .map(|b| (b.node_id.0, format!("{}:{}", b.host.as_str(), b.port)))
        .collect();
    let Some(raw) = responses::metadata_topic(&response, topic).cloned() else {
        return Ok(MetadataOutcome::UnknownTopic);
    };
    let unknown = [
        ResponseError::UnknownTopicOrPartition.code(),
        ResponseError::UnknownTopicId.code(),
    ];
    match raw.error_code {
        0 => {}
        code if unknown.contains(&code) => return Ok(MetadataOutcome::UnknownTopic),
        code if code == ResponseError::LeaderNotAvailable.code() => return Ok(MetadataOutcome::NoLeader(-1)),
        code => {
            let e = broker_error(conn, ApiKey::Metadata, code, topic);
            return Ok(MetadataOutcome::Failed(e));
        }
    }
    partitions_of(raw, brokers, topic)
}

fn partitions_of(
    mut raw: MetadataResponseTopic,
    brokers: BTreeMap<i32, String>,
    topic: &str,
) -> Result<MetadataOutcome, ClientError> {
    let mut partitions: Vec<PartitionMeta> = raw
        .partitions
        .iter()
        .map(|p| PartitionMeta {
            index: p.partition_index,
            leader: if p.error_code == 0 { p.leader_id.0 } else { -1 },
        })
        .collect();
    partitions.sort_by_key(|p| p.index);
    if partitions.is_empty() {
        return Ok(MetadataOutcome::NoLeader(0));
    }
    for (i, p) in partitions.iter().enumerate() {
        if p.index != i as i32 {
            let what = format!("partition {i} of '{topic}' (partitions are not 0..n)");
            let e = ProtocolError::Missing {
                api: ApiKey::Metadata,
                what,
            };
            return Ok(MetadataOutcome::Failed(ClientError::protocol("", e)));
        }
        if p.leader < 0 {
            return Ok(MetadataOutcome::NoLeader(p.index));
        }
        if !brokers.contains_key(&p.leader) {
            return Err(ClientError::UnknownBroker { broker_id: p.leader });
        }
    }
    raw.partitions.clear();
    let meta = TopicMeta {
        name: topic.to_string(),
        raw,
        partitions,
    };
    Ok(MetadataOutcome::Ready(Cluster::of(brokers, vec![meta])))
}

fn broker_error(conn: &Connection, api: ApiKey, code: i16, topic: &str) -> ClientError {
    conn.protocol(ProtocolError::broker(api, code, format!(" for topic '{topic}'")))
}

/// Offsets of `partitions` at `timestamp` (LATEST or EARLIEST), from their
/// leader `conn`, at `isolation` (1: read_committed, whose LATEST is the last
/// stable offset). Returns (partition, offset) pairs.
pub async fn list_offsets(
    conn: &Connection,
    topic: &str,
    partitions: &[i32],
    timestamp: i64,
    isolation: i8,
) -> Result<Vec<(i32, i64)>, ClientError> {
    let version = conn.version(ApiKey::ListOffsets)?;
    let mut request = requests::list_offsets(topic, partitions, timestamp);
    if version >= ISOLATION_VERSION_MIN {
        request.isolation_level = isolation;
    }
    let response = conn.request(request, version).await?;
    let mut out = Vec::with_capacity(partitions.len());
    for &partition in partitions {
        let p = responses::list_offsets_partition(&response, partition).map_err(|e| conn.protocol(e))?;
        if p.error_code != 0 {
            return Err(broker_error(conn, ApiKey::ListOffsets, p.error_code, topic));
        }
        out.push((partition, p.offset));
    }
    Ok(out)
}
