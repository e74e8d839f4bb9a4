//! Bootstrap: topic creation, Metadata (brokers and partition leaders) and
//! ListOffsets. Runs on whichever shard calls it; the result is plain data
//! (`Cluster`, `Send`) that the runner hands to every shard.
//!
//! Invariant: every partition in a `Cluster` has a leader that is listed in
//! `brokers`, so shards can route without further checks.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::metadata_response::MetadataResponseTopic;
use kafka_protocol::messages::{
    ApiKey, BrokerId, CreateTopicsRequest, ListOffsetsRequest, MetadataRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use super::conn::Connection;
use super::{error_name, ClientError};

/// TOPIC_ALREADY_EXISTS: fine for --create.
const TOPIC_ALREADY_EXISTS: i16 = 36;
/// How long to wait for a just-created topic to get leaders everywhere.
const LEADER_WAIT_MS_MAX: u64 = 10_000;
/// Pause between Metadata polls while leaders are elected.
const METADATA_RETRY_MS: u64 = 100;

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

/// Brokers by id (host:port) and the topic under load.
#[derive(Debug, Clone)]
pub struct Cluster {
    pub brokers: BTreeMap<i32, String>,
    pub topic: TopicMeta,
}

impl Cluster {
    pub fn leader_addr(&self, partition: i32) -> &str {
        let meta = &self.topic.partitions[partition as usize];
        &self.brokers[&meta.leader]
    }
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
    let request = CreateTopicsRequest::default()
        .with_timeout_ms(conn.timeout().as_millis() as i32)
        .with_topics(vec![CreatableTopic::default()
            .with_name(TopicName(StrBytes::from_string(topic.to_string())))
            .with_num_partitions(partitions)
            .with_replication_factor(1)]);
    let response = conn.request(&request, version).await?;
    for t in &response.topics {
        if t.error_code != 0 && t.error_code != TOPIC_ALREADY_EXISTS {
            let message = t.error_message.as_ref().map(|m| m.as_str().to_string());
            return Err(ClientError::Broker {
                api: "CreateTopics",
                code: t.error_code,
                name: error_name(t.error_code),
                detail: format!(" for topic '{topic}': {}", message.unwrap_or_default()),
            });
        }
    }
    Ok(())
}

enum MetadataOutcome {
    Ready(Cluster),
    UnknownTopic,
    NoLeader(i32),
    Failed(ClientError),
}

async fn metadata(conn: &Connection, topic: &str) -> Result<MetadataOutcome, ClientError> {
    let version = conn.version(ApiKey::Metadata)?;
    let request = MetadataRequest::default()
        .with_topics(Some(vec![MetadataRequestTopic::default()
            .with_name(Some(TopicName(StrBytes::from_string(topic.to_string()))))]))
        .with_allow_auto_topic_creation(false);
    let response = conn.request(&request, version).await?;
    if response.error_code != 0 {
        return Ok(MetadataOutcome::Failed(broker_error(
            "Metadata",
            response.error_code,
            topic,
        )));
    }
    let brokers: BTreeMap<i32, String> = response
        .brokers
        .iter()
        .map(|b| (b.node_id.0, format!("{}:{}", b.host.as_str(), b.port)))
        .collect();
    let Some(raw) = response
        .topics
        .into_iter()
        .find(|t| t.name.as_ref().is_some_and(|n| n.0.as_str() == topic))
    else {
        return Ok(MetadataOutcome::UnknownTopic);
    };
    match raw.error_code {
        0 => {}
        3 | 100 => return Ok(MetadataOutcome::UnknownTopic),
        5 => return Ok(MetadataOutcome::NoLeader(-1)),
        code => return Ok(MetadataOutcome::Failed(broker_error("Metadata", code, topic))),
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
            return Ok(MetadataOutcome::Failed(ClientError::Decode {
                api: "Metadata",
                addr: String::new(),
                message: format!("partitions of '{topic}' are not 0..n (found {})", p.index),
            }));
        }
        if p.leader < 0 {
            return Ok(MetadataOutcome::NoLeader(p.index));
        }
        if !brokers.contains_key(&p.leader) {
            return Err(ClientError::UnknownBroker { broker_id: p.leader });
        }
    }
    raw.partitions.clear();
    Ok(MetadataOutcome::Ready(Cluster {
        brokers,
        topic: TopicMeta {
            name: topic.to_string(),
            raw,
            partitions,
        },
    }))
}

fn broker_error(api: &'static str, code: i16, topic: &str) -> ClientError {
    ClientError::Broker {
        api,
        code,
        name: error_name(code),
        detail: format!(" for topic '{topic}'"),
    }
}

/// Kafka's ListOffsets timestamps: the next offset to be written / the first kept.
pub const LATEST: i64 = -1;
pub const EARLIEST: i64 = -2;

/// Offsets of `partitions` at `timestamp` (LATEST or EARLIEST), from their
/// leader `conn`. Returns (partition, offset) pairs.
pub async fn list_offsets(
    conn: &Connection,
    topic: &str,
    partitions: &[i32],
    timestamp: i64,
) -> Result<Vec<(i32, i64)>, ClientError> {
    let version = conn.version(ApiKey::ListOffsets)?;
    let request = ListOffsetsRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_topics(vec![ListOffsetsTopic::default()
            .with_name(TopicName(StrBytes::from_string(topic.to_string())))
            .with_partitions(
                partitions
                    .iter()
                    .map(|&p| {
                        ListOffsetsPartition::default()
                            .with_partition_index(p)
                            .with_current_leader_epoch(-1)
                            .with_timestamp(timestamp)
                    })
                    .collect(),
            )]);
    let response = conn.request(&request, version).await?;
    let mut out = Vec::with_capacity(partitions.len());
    for t in &response.topics {
        for p in &t.partitions {
            if p.error_code != 0 {
                return Err(broker_error("ListOffsets", p.error_code, topic));
            }
            out.push((p.partition_index, p.offset));
        }
    }
    if out.len() != partitions.len() {
        return Err(ClientError::Decode {
            api: "ListOffsets",
            addr: conn.addr().to_string(),
            message: format!("asked for {} partitions, got {}", partitions.len(), out.len()),
        });
    }
    Ok(out)
}
