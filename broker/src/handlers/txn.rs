//! Transaction coordinator flows (Kafka's TransactionCoordinator): each runs on
//! the shard that owns the transactional id (`txn::txn_to_shard`) as a `Task`,
//! holding the id's claim (`txn::Claim`) from its first read to its last write,
//! so a second operation on the id meanwhile gets CONCURRENT_TRANSACTIONS.
//! Ending a transaction logs Prepare*, writes the markers into every partition
//! (`txn_markers`), completes the groups' transactional offsets, logs Complete*,
//! and only then answers. The same completion serves EndTxn, the fencing of an
//! InitProducerId, the timeout timer and recovery at start-up (`txn_timer`).

use std::rc::Rc;
use std::time::Duration;

use kafka_protocol::ResponseError;

use super::producer_id::AllocateProducerId;
use super::txn_markers::{write_markers, Marker};
use super::ShardContext;
use crate::shard::{run_on, Task};
use crate::txn::{now_ms, txn_to_shard, Claim, TxnCoordinator, TxnError, TxnMetadata, TxnState};

/// Attempts at writing one transaction's markers before it is left in Prepare*
/// for the timer to finish later (Kafka retries them forever).
const MARKER_ATTEMPTS: usize = 5;
const MARKER_RETRY_MS: u64 = 100;

fn coordinator(shard: &ShardContext) -> Result<Rc<TxnCoordinator>, TxnError> {
    shard.txns().ok_or(TxnError::Unavailable)
}

/// Run `task` on the coordinator shard of `txn_id`; an unreachable shard is
/// COORDINATOR_NOT_AVAILABLE, which clients retry.
pub async fn on_owner<T, R>(shard: &Rc<ShardContext>, txn_id: &str, task: T) -> Result<R, TxnError>
where
    T: Task<ShardContext, Output = Result<R, TxnError>>,
{
    let owner = txn_to_shard(txn_id, shard.count);
    run_on(shard, owner, task).await.unwrap_or_else(|e| {
        tracing::warn!(owner, error = %e, "transaction forward failed");
        Err(TxnError::Unavailable)
    })
}

/// InitProducerId with a transactional id.
pub struct InitTxn {
    pub txn_id: String,
    pub timeout_ms: i32,
    /// KIP-360: the producer id and epoch the client had, if any.
    pub known: Option<(i64, i16)>,
}

impl Task<ShardContext> for InitTxn {
    type Output = Result<(i64, i16), TxnError>;

    async fn run(self, shard: Rc<ShardContext>) -> Result<(i64, i16), TxnError> {
        let coordinator = coordinator(&shard)?;
        let claim = coordinator.claim(&self.txn_id)?;
        let next = match coordinator.get(&self.txn_id) {
            // A new id, even with a producer id given (KIP-360: a producer recovering
            // from UNKNOWN_PRODUCER_ID after its id expired), as Kafka does.
            None if !coordinator.has_room() => return Err(TxnError::Unavailable),
            None => TxnMetadata::new(allocate(&shard).await?, self.timeout_ms, now_ms()),
            Some(meta) => {
                if let Some((pid, epoch)) = self.known {
                    // KIP-360: only the current producer may bump its own epoch.
                    meta.check_producer(pid, epoch).map_err(|_| TxnError::Fenced)?;
                }
                let settled = settle(&shard, &coordinator, &claim, meta).await?;
                match settled.bump(self.timeout_ms, now_ms()) {
                    Some(next) => next,
                    None => TxnMetadata::new(allocate(&shard).await?, self.timeout_ms, now_ms()),
                }
            }
        };
        let answer = (next.producer_id, next.epoch);
        coordinator.put(&claim, next).await?;
        Ok(answer)
    }
}

/// Bring an id to a settled state before its epoch is bumped: a Prepare* is
/// completed, an Ongoing transaction is aborted at a fenced epoch.
async fn settle(
    shard: &Rc<ShardContext>,
    coordinator: &Rc<TxnCoordinator>,
    claim: &Claim,
    meta: TxnMetadata,
) -> Result<TxnMetadata, TxnError> {
    match meta.state {
        TxnState::PrepareCommit | TxnState::PrepareAbort => complete(shard, coordinator, claim, meta).await,
        TxnState::Ongoing => abort_fenced(shard, coordinator, claim, meta).await,
        _ => Ok(meta),
    }
}

async fn allocate(shard: &Rc<ShardContext>) -> Result<i64, TxnError> {
    let allocated = run_on(shard, 0, AllocateProducerId)
        .await
        .unwrap_or(Err(ResponseError::CoordinatorNotAvailable));
    allocated.map_err(|_| TxnError::Unavailable)
}

/// Abort an Ongoing transaction at a bumped epoch (fencing its producer).
pub async fn abort_fenced(
    shard: &Rc<ShardContext>,
    coordinator: &Rc<TxnCoordinator>,
    claim: &Claim,
    meta: TxnMetadata,
) -> Result<TxnMetadata, TxnError> {
    let prepared = meta.fence_and_abort(now_ms());
    coordinator.put(claim, prepared.clone()).await?;
    complete(shard, coordinator, claim, prepared).await
}

/// Finish a logged Prepare*: markers, group offsets, Complete*.
pub async fn complete(
    shard: &Rc<ShardContext>,
    coordinator: &Rc<TxnCoordinator>,
    claim: &Claim,
    prepared: TxnMetadata,
) -> Result<TxnMetadata, TxnError> {
    let commit = prepared.state == TxnState::PrepareCommit;
    let marker = Marker {
        producer_id: prepared.producer_id,
        producer_epoch: prepared.epoch,
        commit,
        coordinator_epoch: 0,
    };
    let partitions: Vec<(String, i32)> = prepared.partitions.iter().cloned().collect();
    send_markers(shard, claim.txn_id(), marker, partitions).await?;
    for group in &prepared.groups {
        super::txn_offsets::complete_group(shard, group, prepared.producer_id, prepared.epoch, commit)
            .await?;
    }
    let done = prepared.complete(now_ms());
    coordinator.put(claim, done.clone()).await?;
    Ok(done)
}

/// Write `marker` into `partitions`, retrying the failed ones a few times.
async fn send_markers(
    shard: &Rc<ShardContext>,
    txn_id: &str,
    marker: Marker,
    mut partitions: Vec<(String, i32)>,
) -> Result<(), TxnError> {
    for attempt in 0..MARKER_ATTEMPTS {
        if partitions.is_empty() {
            return Ok(());
        }
        let results = write_markers(shard, marker, &partitions).await;
        let mut failed = Vec::new();
        for (partition, result) in partitions.into_iter().zip(results) {
            match result {
                Ok(()) => {}
                // A newer epoch is already there: that producer was fenced past this
                // transaction, and Kafka's coordinator gives up on the marker too.
                Err(ResponseError::InvalidProducerEpoch) => {
                    tracing::warn!(txn_id, ?partition, "marker refused: newer producer epoch")
                }
                Err(e) => {
                    tracing::warn!(txn_id, ?partition, error = ?e, attempt, "marker write failed");
                    failed.push(partition);
                }
            }
        }
        partitions = failed;
        if !partitions.is_empty() {
            glommio::timer::sleep(Duration::from_millis(MARKER_RETRY_MS)).await;
        }
    }
    if partitions.is_empty() {
        Ok(())
    } else {
        Err(TxnError::Unavailable)
    }
}

/// Claim `txn_id` for a request of `producer_id`/`epoch`. The producer is checked first,
/// as Kafka orders its checks: a zombie gets fenced rather than CONCURRENT_TRANSACTIONS
/// while another operation runs. (The caller checks again under the claim.)
fn claim_checked(
    coordinator: &Rc<TxnCoordinator>,
    txn_id: &str,
    producer_id: i64,
    epoch: i16,
) -> Result<Claim, TxnError> {
    coordinator
        .get(txn_id)
        .ok_or(TxnError::UnknownProducer)?
        .check_producer(producer_id, epoch)?;
    coordinator.claim(txn_id)
}

/// AddPartitionsToTxn / AddOffsetsToTxn (groups), after the partitions were
/// checked to exist.
pub struct AddToTxn {
    pub txn_id: String,
    pub producer_id: i64,
    pub epoch: i16,
    pub partitions: Vec<(String, i32)>,
    pub groups: Vec<String>,
}

impl Task<ShardContext> for AddToTxn {
    type Output = Result<(), TxnError>;

    async fn run(self, shard: Rc<ShardContext>) -> Result<(), TxnError> {
        let coordinator = coordinator(&shard)?;
        let claim = claim_checked(&coordinator, &self.txn_id, self.producer_id, self.epoch)?;
        let meta = coordinator.get(&self.txn_id).ok_or(TxnError::UnknownProducer)?;
        meta.check_producer(self.producer_id, self.epoch)?;
        let Some(next) = meta.add(&self.partitions, &self.groups, now_ms())? else {
            return Ok(());
        };
        if next.partitions.len() > crate::txn::PARTITIONS_PER_TXN_MAX
            || next.groups.len() > crate::txn::GROUPS_PER_TXN_MAX
        {
            return Err(TxnError::InvalidState);
        }
        coordinator.put(&claim, next).await
    }
}

/// EndTxn.
pub struct EndTxn {
    pub txn_id: String,
    pub producer_id: i64,
    pub epoch: i16,
    pub commit: bool,
}

impl Task<ShardContext> for EndTxn {
    type Output = Result<(), TxnError>;

    async fn run(self, shard: Rc<ShardContext>) -> Result<(), TxnError> {
        let coordinator = coordinator(&shard)?;
        let claim = claim_checked(&coordinator, &self.txn_id, self.producer_id, self.epoch)?;
        let meta = coordinator.get(&self.txn_id).ok_or(TxnError::UnknownProducer)?;
        meta.check_producer(self.producer_id, self.epoch)?;
        let Some(prepared) = meta.end(self.commit, now_ms())? else {
            return Ok(());
        };
        coordinator.put(&claim, prepared.clone()).await?;
        complete(&shard, &coordinator, &claim, prepared).await.map(|_| ())
    }
}

/// Produce with a transactional id (KIP-890 part 1 verification): the error code
/// for each partition, 0 where the batch may be appended.
pub struct VerifyProduce {
    pub txn_id: String,
    pub producer_id: i64,
    pub epoch: i16,
    pub partitions: Vec<(String, i32)>,
}

impl Task<ShardContext> for VerifyProduce {
    type Output = Result<Vec<i16>, TxnError>;

    async fn run(self, shard: Rc<ShardContext>) -> Result<Vec<i16>, TxnError> {
        let coordinator = coordinator(&shard)?;
        let meta = coordinator.get(&self.txn_id).ok_or(TxnError::UnknownProducer)?;
        if self.producer_id != meta.producer_id {
            return Err(TxnError::UnknownProducer);
        }
        if self.epoch != meta.epoch {
            // Produce knows no PRODUCER_FENCED: INVALID_PRODUCER_EPOCH, as Kafka answers.
            return Err(TxnError::Fenced);
        }
        let ongoing = meta.state == TxnState::Ongoing;
        let code = |p: &(String, i32)| {
            if ongoing && meta.partitions.contains(p) {
                0
            } else {
                ResponseError::InvalidTxnState.code()
            }
        };
        Ok(self.partitions.iter().map(code).collect())
    }
}

/// DescribeTransactions / ListTransactions read the owner's table.
pub struct DescribeTxn(pub String);

impl Task<ShardContext> for DescribeTxn {
    type Output = Result<Option<TxnMetadata>, TxnError>;

    async fn run(self, shard: Rc<ShardContext>) -> Result<Option<TxnMetadata>, TxnError> {
        Ok(coordinator(&shard)?.get(&self.0))
    }
}

/// (transactional id, producer id, state name) of this shard's ids that pass the
/// filters (empty filter: all), as ListTransactions lists them.
pub struct ListTxns {
    pub states: Vec<String>,
    pub producer_ids: Vec<i64>,
    /// ListTransactions v1: only transactions started at least this long ago (< 0: all).
    pub min_duration_ms: i64,
}

impl Task<ShardContext> for ListTxns {
    type Output = Result<Vec<(String, i64, &'static str)>, TxnError>;

    async fn run(self, shard: Rc<ShardContext>) -> Result<Vec<(String, i64, &'static str)>, TxnError> {
        let mut out = Vec::new();
        let now = now_ms();
        coordinator(&shard)?.for_each(|id, meta| {
            let name = meta.state.name();
            let state_ok = self.states.is_empty() || self.states.iter().any(|s| s == name);
            let pid_ok = self.producer_ids.is_empty() || self.producer_ids.contains(&meta.producer_id);
            let duration_ok = self.min_duration_ms < 0 || now - meta.start_ms >= self.min_duration_ms;
            if state_ok && pid_ok && duration_ok {
                out.push((id.to_string(), meta.producer_id, name));
            }
        });
        Ok(out)
    }
}

/// TxnOffsetCommit's check: the producer is current, its transaction Ongoing and the
/// group added to it.
pub struct VerifyOffsets {
    pub txn_id: String,
    pub producer_id: i64,
    pub epoch: i16,
    pub group: String,
}

impl Task<ShardContext> for VerifyOffsets {
    type Output = Result<(), TxnError>;

    async fn run(self, shard: Rc<ShardContext>) -> Result<(), TxnError> {
        let meta = coordinator(&shard)?
            .get(&self.txn_id)
            .ok_or(TxnError::UnknownProducer)?;
        meta.check_producer(self.producer_id, self.epoch)?;
        if meta.state != TxnState::Ongoing || !meta.groups.contains(&self.group) {
            return Err(TxnError::InvalidState);
        }
        Ok(())
    }
}
