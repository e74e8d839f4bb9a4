//! One module per Kafka API (or family). Each handler runs on the shard that
//! accepted the connection, splits partition work by owning shard
//! (`shard::router`), sends each owner a task (`shard::Task`: run directly on
//! this shard, over the mesh on the others) and merges the answers back into
//! the client's order. The owner side of an API is the `Task` impl in the
//! API's own file. Handlers never block and never panic on input.

pub mod acls;
pub mod admin;
pub mod alter_configs;
pub mod api_versions;
pub mod backlog;
pub mod broker_configs;
pub mod client_quotas;
pub mod consumer_groups;
pub mod context;
pub mod create_partitions;
pub mod delete_records;
pub mod describe_cluster;
pub mod describe_log_dirs;
pub mod describe_producers;
pub mod describe_topic_partitions;
pub mod elect_leaders;
pub mod fetch;
mod fetch_budget;
mod fetch_owners;
pub mod group_offsets;
pub mod groups;
pub mod list_offsets;
pub mod metadata;
pub mod offset_for_leader_epoch;
pub mod produce;
pub mod produce_delay;
pub mod produce_txn;
pub mod producer_id;
pub mod share_acknowledge;
pub mod share_acquire;
pub mod share_admin;
pub mod share_dead_letter;
pub mod share_fetch;
pub mod share_groups;
pub mod share_wait;
pub mod timer_fire;
pub mod topics;
pub mod txn;
pub mod txn_api;
pub mod txn_markers;
pub mod txn_offsets;
pub mod txn_timer;
pub mod users;

use kafka_protocol::ResponseError;

pub use context::ShardContext;

use crate::log::Offset;
use crate::partitions::Ownership;

/// Why an owner did not serve a part: a Kafka error code and, where useful, a
/// message for the client.
#[derive(Debug, Clone)]
pub struct Refused {
    pub code: i16,
    pub message: Option<String>,
}

pub fn refusal(error: ResponseError) -> Refused {
    Refused {
        code: error.code(),
        message: None,
    }
}

/// The error for a part sent to a shard that does not have it: the topic is
/// gone, or the client routed on a catalog that changed since (it refreshes
/// its metadata on NOT_LEADER_OR_FOLLOWER and retries).
pub fn ownership_error(o: Ownership) -> ResponseError {
    match o {
        Ownership::Unknown => ResponseError::UnknownTopicOrPartition,
        Ownership::Elsewhere(_) => ResponseError::NotLeaderOrFollower,
    }
}

/// An offset as the wire carries it: -1 for none.
pub fn wire_offset(offset: Option<Offset>) -> i64 {
    offset.map_or(-1, |o| o.0)
}
