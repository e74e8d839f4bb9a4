//! The coordinator's background work on each shard: recovery at start-up
//! (every Prepare* is completed, every Ongoing transaction aborted at a fenced
//! epoch: its producer is gone or will re-initialize) and a periodic sweep that
//! aborts transactions past their timeout, finishes Prepare* left behind by a
//! failed marker write, expires ids idle past transactional.id.expiration.ms and
//! compacts the log. Runs on the owning shard; each id is claimed while it is
//! worked on, so requests racing with it get CONCURRENT_TRANSACTIONS. Bounded:
//! at most `ABORTS_PER_TICK_MAX` completions per tick.

use std::rc::Rc;
use std::time::Duration;

use super::txn::{abort_fenced, complete};
use super::ShardContext;
use crate::txn::{
    now_ms, TxnCoordinator, TxnMetadata, TxnState, ABORTS_PER_TICK_MAX, TIMER_TICK_MS,
    TRANSACTIONAL_ID_EXPIRATION_MS,
};

/// A Prepare* untouched this long is one whose completion failed: retry it.
const STUCK_PREPARE_MS: i64 = 5_000;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Work {
    Abort,
    Complete,
    Expire,
}

fn work_for(meta: &TxnMetadata, now: i64, recovering: bool) -> Option<Work> {
    match meta.state {
        TxnState::Ongoing if recovering || now - meta.start_ms > i64::from(meta.timeout_ms) => {
            Some(Work::Abort)
        }
        TxnState::PrepareCommit | TxnState::PrepareAbort
            if recovering || now - meta.update_ms > STUCK_PREPARE_MS =>
        {
            Some(Work::Complete)
        }
        TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort
            if now - meta.update_ms > TRANSACTIONAL_ID_EXPIRATION_MS =>
        {
            Some(Work::Expire)
        }
        _ => None,
    }
}

/// Recover, then sweep every `TIMER_TICK_MS` until the shard stops.
pub async fn run(shard: Rc<ShardContext>) {
    let Some(coordinator) = shard.txns() else {
        return;
    };
    // Recovery goes through the whole table (not `ABORTS_PER_TICK_MAX` at a time)
    // before the periodic sweeps.
    // Bounded even if some completions keep failing (the periodic sweep retries them).
    for _ in 0..=crate::txn::TXN_IDS_PER_SHARD_MAX / ABORTS_PER_TICK_MAX {
        if sweep(&shard, &coordinator, true).await < ABORTS_PER_TICK_MAX {
            break;
        }
    }
    loop {
        glommio::timer::sleep(Duration::from_millis(TIMER_TICK_MS)).await;
        if shard.stopping.get() {
            return;
        }
        sweep(&shard, &coordinator, false).await;
        coordinator.maybe_compact().await;
    }
}

/// One pass: returns how many ids it worked on.
async fn sweep(shard: &Rc<ShardContext>, coordinator: &Rc<TxnCoordinator>, recovering: bool) -> usize {
    let now = now_ms();
    let mut due = Vec::new();
    coordinator.for_each(|id, meta| {
        if due.len() < ABORTS_PER_TICK_MAX && !coordinator.is_in_flight(id) {
            if let Some(work) = work_for(meta, now, recovering) {
                due.push((id.to_string(), work));
            }
        }
    });
    let n = due.len();
    for (txn_id, work) in due {
        if let Err(e) = run_one(shard, coordinator, &txn_id, work, recovering).await {
            tracing::warn!(shard = shard.id, txn_id, ?work, error = ?e, "transaction timer work failed");
        }
    }
    if recovering && n < ABORTS_PER_TICK_MAX {
        tracing::debug!(shard = shard.id, "transaction recovery done");
    }
    n
}

async fn run_one(
    shard: &Rc<ShardContext>,
    coordinator: &Rc<TxnCoordinator>,
    txn_id: &str,
    work: Work,
    recovering: bool,
) -> Result<(), crate::txn::TxnError> {
    let claim = coordinator.claim(txn_id)?;
    // Re-read under the claim: a request may have changed it since the scan.
    let Some(meta) = coordinator.get(txn_id) else {
        return Ok(());
    };
    if work_for(&meta, now_ms(), recovering) != Some(work) {
        return Ok(());
    }
    match work {
        Work::Abort => {
            tracing::info!(
                shard = shard.id,
                txn_id,
                "aborting a timed-out or orphaned transaction"
            );
            abort_fenced(shard, coordinator, &claim, meta).await.map(|_| ())
        }
        Work::Complete => complete(shard, coordinator, &claim, meta).await.map(|_| ()),
        Work::Expire => coordinator.remove(&claim).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(state: TxnState, start_ms: i64, update_ms: i64) -> TxnMetadata {
        let mut m = TxnMetadata::new(1, 1_000, update_ms);
        m.state = state;
        m.start_ms = start_ms;
        m
    }

    #[test]
    fn given_ids_when_the_timer_looks_should_abort_complete_or_expire_as_due() {
        let ongoing = meta(TxnState::Ongoing, 10_000, 10_000);
        assert_eq!(work_for(&ongoing, 10_500, false), None, "within its timeout");
        assert_eq!(work_for(&ongoing, 11_001, false), Some(Work::Abort));
        assert_eq!(
            work_for(&ongoing, 10_500, true),
            Some(Work::Abort),
            "recovery aborts all"
        );
        let prepared = meta(TxnState::PrepareCommit, 10_000, 10_000);
        assert_eq!(
            work_for(&prepared, 10_500, false),
            None,
            "its EndTxn is still running"
        );
        assert_eq!(
            work_for(&prepared, 10_000 + STUCK_PREPARE_MS + 1, false),
            Some(Work::Complete)
        );
        assert_eq!(work_for(&prepared, 10_000, true), Some(Work::Complete));
        let done = meta(TxnState::CompleteCommit, -1, 10_000);
        assert_eq!(
            work_for(&done, 10_000 + TRANSACTIONAL_ID_EXPIRATION_MS, false),
            None
        );
        assert_eq!(
            work_for(&done, 10_001 + TRANSACTIONAL_ID_EXPIRATION_MS, false),
            Some(Work::Expire)
        );
    }
}
