//! Consumer groups (Kafka's classic protocol, and KIP-848's in `consumer`) and their committed offsets.
//! Owns: one `GroupCoordinator` per shard for the groups `group_to_shard` maps to that shard.
//! Only the owning shard touches a coordinator (it is `!Send`, behind an `Rc`); other shards
//! forward group requests to it. Invariants: a group's generation only grows; an OffsetCommit
//! is answered only after its record is fdatasync'd; every map, list and queue here is bounded
//! by a `_MAX` constant below.

pub mod call;
pub mod consumer;
mod coordinator;
mod delete;
mod group;
mod offsets;
mod rebalance;
mod record;
pub mod share;
pub(crate) mod store;
#[cfg(test)]
mod tests;
mod txn_offsets;

use std::path::PathBuf;

pub use coordinator::{GroupCoordinator, OffsetsFileStats};
pub use group::GroupState;
pub use offsets::FetchedOffset;

/// Members per group: a JoinGroup past it gets GROUP_MAX_SIZE_REACHED. Every member's
/// metadata is relayed to the leader in one response, so this also bounds that response.
pub const GROUP_MEMBERS_MAX: usize = 1000;
/// Groups one shard coordinates; a new group past it gets COORDINATOR_NOT_AVAILABLE.
/// Each idle group costs a few hundred bytes, so 100k groups stay well under 100 MiB.
pub const GROUPS_PER_SHARD_MAX: usize = 100_000;
/// Committed offsets one shard keeps in memory (~150 B each): 4 Mi entries ~ 600 MiB.
pub const OFFSETS_PER_SHARD_MAX: usize = 4 * 1024 * 1024;
/// Members that got MEMBER_ID_REQUIRED but have not joined yet, per group: a client looping
/// on first joins must not grow the group without bound.
pub const PENDING_MEMBERS_MAX: usize = GROUP_MEMBERS_MAX;
/// Kafka's offset.metadata.max.bytes default: longer commit metadata gets OFFSET_METADATA_TOO_LARGE.
pub const OFFSET_METADATA_BYTES_MAX: usize = 4096;
/// Group ids, topic names, member and instance ids longer than this are refused: they are
/// stored with a u16 length prefix, and Kafka itself caps topic names at 249 bytes.
pub const NAME_BYTES_MAX: usize = 4096;
/// One protocol's metadata or one assignment per member: both are stored and relayed, and
/// real assignors produce a few KiB at most.
pub const MEMBER_BLOB_BYTES_MAX: usize = 128 * 1024;
/// Protocols one member may offer in a JoinGroup (real clients offer 1-3 assignors).
pub const MEMBER_PROTOCOLS_MAX: usize = 32;

const _: () = assert!(GROUP_MEMBERS_MAX <= u16::MAX as usize);
const _: () = assert!(NAME_BYTES_MAX <= u16::MAX as usize);
const _: () = assert!(OFFSET_METADATA_BYTES_MAX <= NAME_BYTES_MAX);

/// Tunables, with Kafka's broker defaults. Tests shrink the timers.
#[derive(Clone, Debug)]
pub struct GroupConfig {
    /// group.initial.rebalance.delay.ms: an Empty group waits this long (extended by each new
    /// member, up to the rebalance timeout) so consumers starting together get one rebalance.
    pub initial_rebalance_delay_ms: u64,
    /// group.min.session.timeout.ms
    pub min_session_timeout_ms: i32,
    /// group.max.session.timeout.ms
    pub max_session_timeout_ms: i32,
    /// offsets.retention.minutes, in ms: offsets of a group Empty longer than this expire.
    pub offsets_retention_ms: i64,
    /// How often retention expiry runs (Kafka: offsets.retention.check.interval.ms).
    pub offsets_retention_check_interval_ms: u64,
    /// Period of the timer that expires sessions and ends rebalances: the resolution of every
    /// group timeout. Small enough to be invisible next to a 6 s minimum session timeout.
    pub timer_tick_ms: u64,
    /// The offsets file is compacted into a snapshot once it grows past this size (and past
    /// twice the previous snapshot, so a large live state does not compact in a loop).
    pub offsets_file_compact_bytes: u64,
    /// group.consumer.heartbeat.interval.ms: the interval KIP-848 members are told to keep.
    pub consumer_heartbeat_interval_ms: i32,
    /// group.consumer.session.timeout.ms: a KIP-848 member silent this long is removed.
    pub consumer_session_timeout_ms: i32,
    /// group.consumer.migration.policy: online conversion of non-empty groups.
    pub consumer_migration_policy: MigrationPolicy,
    /// group.share.heartbeat.interval.ms
    pub share_heartbeat_interval_ms: i32,
    /// group.share.session.timeout.ms: a share-group member silent this long is removed.
    pub share_session_timeout_ms: i32,
}

/// Kafka's `group.consumer.migration.policy`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MigrationPolicy {
    Bidirectional,
    Upgrade,
    Downgrade,
    Disabled,
}

impl MigrationPolicy {
    /// The flag's value (validated by clap); anything else is Kafka's default.
    pub fn parse(s: &str) -> Self {
        match s {
            "upgrade" => Self::Upgrade,
            "downgrade" => Self::Downgrade,
            "disabled" => Self::Disabled,
            _ => Self::Bidirectional,
        }
    }

    pub fn upgrade(self) -> bool {
        matches!(self, Self::Bidirectional | Self::Upgrade)
    }

    pub fn downgrade(self) -> bool {
        matches!(self, Self::Bidirectional | Self::Downgrade)
    }
}

impl Default for GroupConfig {
    fn default() -> Self {
        Self {
            initial_rebalance_delay_ms: 3_000,
            min_session_timeout_ms: 6_000,
            max_session_timeout_ms: 1_800_000,
            offsets_retention_ms: 7 * 24 * 60 * 60 * 1000,
            offsets_retention_check_interval_ms: 600_000,
            timer_tick_ms: 50,
            offsets_file_compact_bytes: 64 * 1024 * 1024,
            consumer_heartbeat_interval_ms: 5_000,
            consumer_session_timeout_ms: 45_000,
            consumer_migration_policy: MigrationPolicy::Bidirectional,
            share_heartbeat_interval_ms: 5_000,
            share_session_timeout_ms: 45_000,
        }
    }
}

/// Operating errors of the coordinator's storage. Protocol-level refusals are Kafka error codes
/// in the responses, not these.
#[derive(Debug, thiserror::Error)]
pub enum GroupError {
    #[error("group offsets file I/O failed: {context}")]
    Io {
        context: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("group offsets file {path}: {reason}")]
    Corrupt { path: PathBuf, reason: String },
    #[error("group offsets store failed earlier and refuses writes until restart")]
    StoreFailed,
    #[error("group coordinator is closed")]
    Closed,
}

impl GroupError {
    /// The Kafka error a client sees when storage fails under its request: retriable, so the
    /// client rediscovers the coordinator and retries.
    pub fn to_response_error(&self) -> kafka_protocol::ResponseError {
        kafka_protocol::ResponseError::CoordinatorNotAvailable
    }
}

pub(crate) fn glommio_io(context: &'static str, e: glommio::GlommioError<()>) -> GroupError {
    GroupError::Io {
        context,
        source: e.into(),
    }
}

/// Which shard coordinates `group_id`: CRC-32C of the id's bytes, mod `shard_count`.
/// Pure and stable across restarts and versions, because FindCoordinator answers and the
/// per-shard offsets files both depend on it.
pub fn group_to_shard(group_id: &str, shard_count: usize) -> usize {
    assert!(shard_count > 0, "shard_count must be positive");
    crc32c::crc32c(group_id.as_bytes()) as usize % shard_count
}
