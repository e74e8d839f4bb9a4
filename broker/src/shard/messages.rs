//! What shards say to each other over the mesh. Every payload is `Send` and
//! moves without copying record bytes (`Bytes`, `Arc`). Each part carries the
//! `index` of its slot in the client's response so answers merge back in the
//! client's order.

use std::sync::Arc;

use bytes::Bytes;

use crate::metadata::Catalog;

pub enum ShardRequest {
    /// Append, answering once every batch is in its partition's queue with
    /// offsets assigned (visible: acks=1), not after the fdatasync.
    Produce {
        parts: Vec<ProducePart>,
    },
    /// acks=all, after `Produce` answered: wait until each part is durable.
    /// Answered as `ShardResponse::Produce` with only the error fields meaningful.
    AwaitDurable {
        parts: Vec<DurablePart>,
    },
    Fetch {
        wait: FetchWait,
        parts: Vec<FetchPart>,
    },
    ListOffsets {
        parts: Vec<ListOffsetsPart>,
    },
    /// From shard 0: adopt this catalog (open new partitions, delete removed ones).
    ApplyCatalog(Arc<Catalog>),
    /// To shard 0, the only catalog writer.
    Admin(AdminRequest),
    /// A consumer-group request for the coordinator shard of its group.
    Group(Box<crate::groups_glue::GroupCall>),
}

pub enum ShardResponse {
    Produce(Vec<ProducePartResult>),
    Fetch(Vec<FetchPartResult>),
    ListOffsets(Vec<ListOffsetsPartResult>),
    Applied,
    Admin(AdminResponse),
    Group(Box<crate::groups_glue::GroupAnswer>),
}

pub struct ProducePart {
    pub index: usize,
    pub topic: String,
    pub partition: i32,
    pub records: Option<Bytes>,
}

#[derive(Debug, Clone, Default)]
pub struct ProducePartResult {
    pub index: usize,
    pub error_code: i16,
    pub base_offset: i64,
    /// Offset of the part's last record: what an acks=all request waits on.
    pub last_offset: i64,
    pub log_start_offset: i64,
    pub error_message: Option<String>,
}

/// One appended part an acks=all request waits on.
pub struct DurablePart {
    pub index: usize,
    pub topic: String,
    pub partition: i32,
    pub last_offset: i64,
}

#[derive(Debug, Clone, Copy)]
pub struct FetchWait {
    pub max_wait_ms: u64,
    pub min_bytes: usize,
    pub max_bytes: usize,
}

pub struct FetchPart {
    pub index: usize,
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub max_bytes: usize,
}

#[derive(Debug, Clone, Default)]
pub struct FetchPartResult {
    pub index: usize,
    pub error_code: i16,
    pub high_watermark: i64,
    pub log_start_offset: i64,
    pub batches: Vec<Bytes>,
    /// `batches` as one buffer when the log read them back to back (file
    /// reads): sent as is, no concatenation.
    pub contiguous: Option<Bytes>,
}

impl FetchPartResult {
    pub fn bytes(&self) -> usize {
        self.batches.iter().map(Bytes::len).sum()
    }
}

pub struct ListOffsetsPart {
    pub index: usize,
    pub topic: String,
    pub partition: i32,
    pub timestamp: i64,
}

#[derive(Debug, Clone, Default)]
pub struct ListOffsetsPartResult {
    pub index: usize,
    pub error_code: i16,
    pub offset: i64,
    pub timestamp: i64,
}

pub enum AdminRequest {
    CreateTopics {
        topics: Vec<NewTopic>,
        validate_only: bool,
    },
    DeleteTopics {
        names: Vec<String>,
    },
}

#[derive(Debug, Clone)]
pub struct NewTopic {
    pub name: String,
    /// -1: the broker default.
    pub partitions: i32,
    pub replication_factor: i16,
    /// CreateTopics' explicit replica assignment: (partition index, broker
    /// ids), as the client sent it; empty when none was given.
    pub assignments: Vec<(i32, Vec<i32>)>,
    pub configs: Vec<(String, Option<String>)>,
}

#[derive(Debug, Clone)]
pub struct TopicOutcome {
    pub name: String,
    pub id: [u8; 16],
    pub partitions: i32,
    pub replication_factor: i16,
    pub error_code: i16,
    pub error_message: Option<String>,
}

pub enum AdminResponse {
    Topics(Vec<TopicOutcome>),
}
