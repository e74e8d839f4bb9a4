//! A producer task's identity and, with --transactional-id, its transactions.
//!
//! Owns the calls a Kafka producer makes besides Produce: InitProducerId for
//! an idempotent producer; for a transactional one FindCoordinator (key type 1)
//! for its id PREFIX-<task>, a connection to that coordinator, InitProducerId
//! with the id, then per transaction AddPartitionsToTxn (the task's partitions,
//! once per transaction, before its first batch) and EndTxn. The producer loop
//! (`producer.rs`) decides when a transaction is full and sends its batches.
//!
//! Shard-local: one `TxnDriver` per producer task, with its own coordinator
//! connection (its calls are sequential: one in flight). Invariants: EndTxn is
//! sent only while holding the task's whole in-flight window, i.e. after every
//! Produce of the transaction was answered, so a commit never overtakes its
//! own data; a transaction is committed only if the run has not stopped on a
//! failure (a batch that failed for good stops the run), otherwise aborted.
//! Every broker error is counted by name in the run's stats; retriable ones
//! are retried up to --retries times, any other fails the task.

use std::time::Duration;

use glommio::sync::Semaphore;
use kafka_protocol::messages::{AddPartitionsToTxnRequest, AddPartitionsToTxnResponse, ApiKey};
use kafka_protocol::protocol::Request;
use kafka_protocol::ResponseError;
use weir_client::requests::txn::{self, TxnId};
use weir_client::{error_name, is_retriable, ProtocolError};

use crate::client::conn::Connection;
use crate::client::ClientError;
use crate::shard::{now_ns, ShardCtx, TaskPlan};
use crate::stats::record_us;

/// Pause before retrying a coordinator call (Kafka's retry.backoff.ms)...
const RETRY_BACKOFF_MS: u64 = 100;
/// ...but only this long after CONCURRENT_TRANSACTIONS, which clears as soon
/// as the previous EndTxn completes (Kafka's TransactionManager uses 20 ms).
const CONCURRENT_BACKOFF_MS: u64 = 20;
/// The transaction timeout asked for (Kafka's transaction.timeout.ms default).
const TXN_TIMEOUT_MS: i32 = 60_000;

/// The producer id and epoch stamped into every batch of an idempotent or
/// transactional producer.
pub type ProducerIdentity = Option<(i64, i16)>;

/// The transactional id of producer task `index`.
pub fn transactional_id(prefix: &str, index: usize) -> String {
    format!("{prefix}-{index}")
}

/// Producer id and epoch for a task (none for a plain producer), and the
/// transaction driver of a transactional one.
pub async fn identity(
    ctx: &ShardCtx,
    plan: &TaskPlan,
) -> Result<(ProducerIdentity, Option<TxnDriver>), ClientError> {
    if let Some(prefix) = &ctx.cfg.transactional_id {
        let driver = TxnDriver::init(ctx, plan, transactional_id(prefix, plan.index)).await?;
        return Ok((Some((driver.producer_id, driver.epoch)), Some(driver)));
    }
    if !ctx.cfg.idempotent {
        return Ok((None, None));
    }
    // An idempotent producer asks the broker of its first partition.
    let conn = ctx.conn_for(plan.partitions[0]);
    let version = conn.version(ApiKey::InitProducerId)?;
    let r = conn
        .request(weir_client::requests::init_producer_id(), version)
        .await?;
    weir_client::error::check(ApiKey::InitProducerId, r.error_code).map_err(|e| conn.protocol(e))?;
    Ok((Some((r.producer_id.0, r.producer_epoch)), None))
}

/// One transactional producer's coordinator side.
pub struct TxnDriver {
    id: String,
    producer_id: i64,
    epoch: i16,
    coordinator: Connection,
    /// The task's partitions, built once: every transaction adds the same set.
    add_partitions: AddPartitionsToTxnRequest,
    records_per_txn: u64,
    abort_every: u64,
    /// Records appended to the open transaction.
    records: u64,
    /// When the open transaction's AddPartitionsToTxn was sent; None: none open.
    begun_ns: Option<u64>,
    /// Transactions ended so far (committed or aborted).
    ended: u64,
}

impl TxnDriver {
    async fn init(ctx: &ShardCtx, plan: &TaskPlan, id: String) -> Result<Self, ClientError> {
        let bootstrap = ctx.conn_for(plan.partitions[0]);
        let found = call(ctx, bootstrap, || txn::find_coordinator(&id), |r| r.error_code).await?;
        let addr = format!("{}:{}", found.host.as_str(), found.port);
        let timeout = Duration::from_millis(ctx.cfg.request_timeout_ms);
        let coordinator = Connection::connect(&addr, timeout, 1).await?;
        let r = call(
            ctx,
            &coordinator,
            || txn::init_producer_id(&id, TXN_TIMEOUT_MS),
            |r| r.error_code,
        )
        .await?;
        let topic = ctx.cluster.topic().name.as_str();
        let partitions: Vec<(&str, i32)> = plan.partitions.iter().map(|&p| (topic, p)).collect();
        let who = TxnId {
            transactional_id: &id,
            producer_id: r.producer_id.0,
            producer_epoch: r.producer_epoch,
        };
        let add_partitions = txn::add_partitions(who, &partitions);
        Ok(Self {
            producer_id: r.producer_id.0,
            epoch: r.producer_epoch,
            id,
            coordinator,
            add_partitions,
            records_per_txn: ctx.cfg.txn_records,
            abort_every: ctx.cfg.txn_abort_every,
            records: 0,
            begun_ns: None,
            ended: 0,
        })
    }

    pub fn is_open(&self) -> bool {
        self.begun_ns.is_some()
    }

    /// Open a transaction: add the task's partitions to it.
    pub async fn begin(&mut self, ctx: &ShardCtx) -> Result<(), ClientError> {
        let sent = now_ns();
        let request = &self.add_partitions;
        call(ctx, &self.coordinator, || request.clone(), first_partition_error).await?;
        self.begun_ns = Some(sent);
        Ok(())
    }

    /// Count one record appended to the open transaction; true when the
    /// transaction is full and must be ended.
    pub fn record_added(&mut self) -> bool {
        self.records += 1;
        self.records >= self.records_per_txn
    }

    /// End the open transaction (if any) once every batch in `window` was
    /// answered: commit, or abort when asked to (--txn-abort-every) or when
    /// the run stopped on a failure.
    pub async fn end(&mut self, ctx: &ShardCtx, window: &Semaphore) -> Result<(), ClientError> {
        let Some(begun) = self.begun_ns else {
            return Ok(());
        };
        let all = window
            .acquire_permit(ctx.cfg.max_in_flight as u64)
            .await
            .expect("the producer's own window is never closed");
        self.ended += 1;
        let asked_abort = self.abort_every > 0 && self.ended.is_multiple_of(self.abort_every);
        let commit = !asked_abort && !ctx.shared.stopped();
        let who = TxnId {
            transactional_id: &self.id,
            producer_id: self.producer_id,
            producer_epoch: self.epoch,
        };
        let sent = now_ns();
        call(
            ctx,
            &self.coordinator,
            || txn::end_txn(who, commit),
            |r| r.error_code,
        )
        .await?;
        let done = now_ns();
        drop(all);
        self.begun_ns = None;
        self.records = 0;
        let mut s = ctx.stats.borrow_mut();
        if commit {
            s.txn_committed += 1;
            record_us(&mut s.txn_commit_us, done.saturating_sub(sent) / 1_000);
            record_us(&mut s.txn_us, done.saturating_sub(begun) / 1_000);
        } else {
            s.txn_aborted += 1;
        }
        Ok(())
    }
}

/// The first per-partition error of an AddPartitionsToTxn answer (v0-3 have
/// no top-level code), or 0.
fn first_partition_error(r: &AddPartitionsToTxnResponse) -> i16 {
    r.results_by_topic_v3_and_below
        .iter()
        .flat_map(|t| t.results_by_partition.iter())
        .map(|p| p.partition_error_code)
        .find(|&code| code != 0)
        .unwrap_or(0)
}

/// Whether a coordinator call may succeed if sent again. Besides Kafka's
/// retriable errors, CONCURRENT_TRANSACTIONS (the previous EndTxn is still
/// writing its markers), which Kafka's TransactionManager also retries.
fn retry_later(code: i16) -> bool {
    is_retriable(code) || code == ResponseError::ConcurrentTransactions.code()
}

/// Send the request `make` builds (at the negotiated version) until `code`
/// of its answer is 0; count every error, retry the retriable ones.
async fn call<R, M, C>(
    ctx: &ShardCtx,
    conn: &Connection,
    make: M,
    code: C,
) -> Result<R::Response, ClientError>
where
    R: Request + Into<kafka_protocol::messages::RequestKind>,
    M: Fn() -> R,
    C: Fn(&R::Response) -> i16,
{
    let api = ApiKey::try_from(R::KEY).expect("kafka-protocol request has a known key");
    let version = conn.version(api)?;
    let mut attempt = 0u32;
    loop {
        let response = conn.request(make(), version).await?;
        let c = code(&response);
        if c == 0 {
            return Ok(response);
        }
        ctx.stats
            .borrow_mut()
            .count_error(format!("{api:?} {}({c})", error_name(c)));
        if !retry_later(c) || attempt >= ctx.cfg.retries || ctx.shared.stopped() {
            return Err(conn.protocol(ProtocolError::broker(api, c, "")));
        }
        attempt += 1;
        let backoff_ms = if c == ResponseError::ConcurrentTransactions.code() {
            CONCURRENT_BACKOFF_MS
        } else {
            RETRY_BACKOFF_MS
        };
        glommio::timer::sleep(Duration::from_millis(backoff_ms)).await;
    }
}

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::add_partitions_to_txn_response::{
        AddPartitionsToTxnPartitionResult, AddPartitionsToTxnTopicResult,
    };

    use super::*;

    fn answer(codes: &[i16]) -> AddPartitionsToTxnResponse {
        let partitions = codes
            .iter()
            .enumerate()
            .map(|(i, &c)| {
                AddPartitionsToTxnPartitionResult::default()
                    .with_partition_index(i as i32)
                    .with_partition_error_code(c)
            })
            .collect();
        AddPartitionsToTxnResponse::default().with_results_by_topic_v3_and_below(vec![
            AddPartitionsToTxnTopicResult::default().with_results_by_partition(partitions),
        ])
    }

    #[test]
    fn given_add_partitions_answers_when_checking_should_find_the_first_partition_error() {
        assert_eq!(first_partition_error(&answer(&[0, 0, 0])), 0);
        assert_eq!(first_partition_error(&answer(&[0, 51, 3])), 51);
        assert_eq!(first_partition_error(&answer(&[])), 0);
    }

    #[test]
    fn given_coordinator_errors_when_deciding_should_retry_only_transient_ones() {
        assert!(retry_later(ResponseError::ConcurrentTransactions.code()));
        assert!(retry_later(ResponseError::CoordinatorLoadInProgress.code()));
        assert!(!retry_later(ResponseError::ProducerFenced.code()));
        assert!(!retry_later(ResponseError::InvalidProducerEpoch.code()));
    }
}
