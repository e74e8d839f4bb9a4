//! The Kafka side's reads: topic metadata, one connection per partition
//! leader, and multi-partition fetches.
//!
//! Owned by the drain's main thread. Invariants: a connection that failed
//! is dropped (the blocking client is out of step after an error) and the
//! metadata is refreshed before the next fetch; every fetch is bounded in
//! bytes (`max_bytes`) and in wait (`max_wait_ms`).

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use weir_client::blocking::{Client, ClientError, Fetched};
use weir_client::requests::FetchLimits;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// ListOffsets timestamps.
pub const EARLIEST: i64 = -2;
pub const LATEST: i64 = -1;
/// Kafka error codes the fetch loop handles.
pub const OFFSET_OUT_OF_RANGE: i16 = 1;

pub struct Source {
    bootstrap: String,
    pub topic: String,
    /// partition -> leader node id.
    leaders: BTreeMap<i32, i32>,
    /// node id -> host:port.
    nodes: HashMap<i32, String>,
    conns: HashMap<i32, Client>,
    fresh: bool,
}

impl Source {
    pub fn new(bootstrap: &str, topic: &str) -> Self {
        Self {
            bootstrap: bootstrap.to_string(),
            topic: topic.to_string(),
            leaders: BTreeMap::new(),
            nodes: HashMap::new(),
            conns: HashMap::new(),
            fresh: false,
        }
    }

    pub fn bootstrap(&self) -> Result<Client, ClientError> {
        Client::connect(self.bootstrap.as_str(), CONNECT_TIMEOUT)
    }

    /// Re-read the topic's partitions and leaders. A missing topic is an
    /// error with a clear message.
    pub fn refresh(&mut self) -> Result<(), String> {
        let mut c = self
            .bootstrap()
            .map_err(|e| format!("cannot reach the broker at {}: {}", self.bootstrap, chain(&e)))?;
        let m = c
            .metadata(Some(&[self.topic.as_str()]))
            .map_err(|e| format!("metadata: {}", chain(&e)))?;
        self.nodes = m
            .brokers
            .iter()
            .map(|b| (b.node_id.0, format!("{}:{}", b.host, b.port)))
            .collect();
        let t = m
            .topics
            .iter()
            .find(|t| t.name.as_ref().is_some_and(|n| n.0.as_str() == self.topic))
            .ok_or_else(|| format!("topic {} is missing from the metadata", self.topic))?;
        if t.error_code != 0 || t.partitions.is_empty() {
            return Err(format!(
                "topic {} is not available ({})",
                self.topic,
                weir_client::error_name(t.error_code)
            ));
        }
        self.leaders = t
            .partitions
            .iter()
            .map(|p| (p.partition_index, p.leader_id.0))
            .collect();
        self.conns.clear();
        self.fresh = true;
        Ok(())
    }

    pub fn partition_count(&self) -> usize {
        self.leaders.len()
    }

    /// Forget connections and metadata after an error.
    pub fn reset(&mut self) {
        self.conns.clear();
        self.fresh = false;
    }

    fn conn(&mut self, node: i32) -> Result<&mut Client, String> {
        if !self.conns.contains_key(&node) {
            let addr = self
                .nodes
                .get(&node)
                .cloned()
                .unwrap_or_else(|| self.bootstrap.clone());
            let c = Client::connect(addr.as_str(), CONNECT_TIMEOUT)
                .map_err(|e| format!("connect {addr}: {}", chain(&e)))?;
            self.conns.insert(node, c);
        }
        Ok(self.conns.get_mut(&node).expect("inserted above"))
    }

    /// Fetch `positions` (partition, offset), grouped by leader. The wait is
    /// split between leaders so one poll stays near `max_wait_ms`.
    pub fn fetch(
        &mut self,
        positions: &[(i32, i64)],
        max_wait_ms: i32,
        max_bytes: i32,
    ) -> Result<Vec<Fetched>, String> {
        if !self.fresh {
            self.refresh()?;
        }
        let mut by_node: BTreeMap<i32, Vec<(i32, i64)>> = BTreeMap::new();
        for &(p, offset) in positions {
            let node = self.leaders.get(&p).copied().unwrap_or(-1);
            by_node.entry(node).or_default().push((p, offset));
        }
        let nodes = i32::try_from(by_node.len().max(1)).unwrap_or(1);
        let mut out = Vec::with_capacity(positions.len());
        for (node, parts) in by_node {
            let limits = FetchLimits {
                max_wait_ms: max_wait_ms / nodes,
                max_bytes,
                partition_max_bytes: max_bytes,
            };
            let topic = self.topic.clone();
            let result = self.conn(node)?.fetch_many(&topic, &parts, limits);
            match result {
                Ok(f) => out.extend(f),
                Err(e) => {
                    self.reset();
                    return Err(format!("fetch: {}", chain(&e)));
                }
            }
        }
        Ok(out)
    }

    /// ListOffsets for `partition` at `EARLIEST` or `LATEST`.
    pub fn list_offset(&mut self, partition: i32, at: i64) -> Result<i64, String> {
        if !self.fresh {
            self.refresh()?;
        }
        let node = self.leaders.get(&partition).copied().unwrap_or(-1);
        let topic = self.topic.clone();
        let result = self.conn(node)?.list_offset(&topic, partition, at);
        result.map(|(offset, _)| offset).map_err(|e| {
            self.reset();
            format!("list offsets: {}", chain(&e))
        })
    }
}

/// An error and its sources on one line.
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(inner) = source {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        source = inner.source();
    }
    s
}
