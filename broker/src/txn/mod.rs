//! Transactions, coordinator side (Kafka's TransactionCoordinator): per shard,
//! the metadata of the transactional ids that hash to it, their state machine
//! (`state`) and a durable transaction log (`record`, `store`). Owned by one
//! shard each (`!Send`, behind `Rc`); other shards forward to the owner. The
//! flows that touch partitions (markers) and groups (transactional offsets) live
//! in `handlers::txn`, which drives this module. Invariants: every answer that
//! depends on a state change is sent after that state is fdatasync'd; every
//! table here is bounded by a `_MAX` constant below.

pub mod coordinator;
pub mod record;
pub mod state;
pub mod store;
#[cfg(test)]
mod tests;

pub use coordinator::{Claim, TxnCoordinator};
pub use state::{TxnError, TxnMetadata, TxnState};

/// Transactional ids one shard coordinates; a new id past it gets
/// COORDINATOR_NOT_AVAILABLE until expiry frees room.
pub const TXN_IDS_PER_SHARD_MAX: usize = 100_000;
/// Partitions in one transaction (each costs a marker write at its end).
pub const PARTITIONS_PER_TXN_MAX: usize = 10_000;
/// Groups one transaction commits offsets to.
pub const GROUPS_PER_TXN_MAX: usize = 1_000;
/// Transactional ids, topic and group names longer than this are refused (u16 prefixes).
pub const NAME_BYTES_MAX: usize = 4096;
/// Kafka's transaction.max.timeout.ms default: a longer timeout gets INVALID_TRANSACTION_TIMEOUT.
pub const TRANSACTION_MAX_TIMEOUT_MS: i32 = 900_000;
/// Kafka's transactional.id.expiration.ms default: an id idle this long is forgotten.
pub const TRANSACTIONAL_ID_EXPIRATION_MS: i64 = 7 * 24 * 60 * 60 * 1000;
/// Period of the timer that aborts timed-out transactions and expires ids.
pub const TIMER_TICK_MS: u64 = 200;
/// Timed-out transactions one tick aborts at most: bounds one tick's work.
pub const ABORTS_PER_TICK_MAX: usize = 64;
/// The log is compacted once it is past this size (and twice its last compacted size).
pub const LOG_COMPACT_BYTES: u64 = 16 * 1024 * 1024;

const _: () = assert!(NAME_BYTES_MAX <= u16::MAX as usize);

/// Which shard coordinates `txn_id`: the same CRC-32C scheme as `groups::group_to_shard`,
/// stable across restarts because each shard's log holds its own ids.
pub fn txn_to_shard(txn_id: &str, shard_count: usize) -> usize {
    crate::groups::group_to_shard(txn_id, shard_count)
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
