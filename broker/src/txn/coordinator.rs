//! One shard's transaction coordinator: the metadata of the transactional ids
//! that hash to this shard (`txn_to_shard`), the ids with an operation in
//! flight, and the transaction log. It offers primitives (read, claim, log and
//! install); the request flows that also write markers and complete group
//! offsets drive them from `handlers::txn`. Only the owning shard touches it.
//! Invariants: a state is installed only after its record is durable; at most
//! one operation per id is in flight (a second one gets CONCURRENT_TRANSACTIONS,
//! Kafka's pendingState); the id table is bounded by `TXN_IDS_PER_SHARD_MAX`.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::rc::Rc;

use super::record::TxnRecord;
use super::state::{TxnError, TxnMetadata, TxnState};
use super::store::{Sync, TxnStore, TxnStoreError};
use super::TXN_IDS_PER_SHARD_MAX;

pub struct TxnCoordinator {
    txns: RefCell<HashMap<String, TxnMetadata>>,
    in_flight: RefCell<HashSet<String>>,
    store: Rc<TxnStore>,
}

/// The claim on one id's next operation; released on drop, so a cancelled
/// request cannot leave its id stuck.
pub struct Claim {
    coordinator: Rc<TxnCoordinator>,
    txn_id: String,
}

impl Claim {
    pub fn txn_id(&self) -> &str {
        &self.txn_id
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        self.coordinator.in_flight.borrow_mut().remove(&self.txn_id);
    }
}

impl TxnCoordinator {
    pub async fn open(dir: &Path, compact_min_bytes: u64) -> Result<Rc<Self>, TxnStoreError> {
        let (store, txns) = TxnStore::open(dir, compact_min_bytes).await?;
        Ok(Rc::new(Self {
            txns: RefCell::new(txns),
            in_flight: RefCell::new(HashSet::new()),
            store,
        }))
    }

    pub fn get(&self, txn_id: &str) -> Option<TxnMetadata> {
        self.txns.borrow().get(txn_id).cloned()
    }

    pub fn is_in_flight(&self, txn_id: &str) -> bool {
        self.in_flight.borrow().contains(txn_id)
    }

    /// Visit every id (for the admin views and the timer): read-only, no awaits.
    pub fn for_each(&self, mut f: impl FnMut(&str, &TxnMetadata)) {
        self.txns.borrow().iter().for_each(|(id, m)| f(id, m));
    }

    pub fn len(&self) -> usize {
        self.txns.borrow().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Claim `txn_id` for one operation; CONCURRENT_TRANSACTIONS while another runs.
    pub fn claim(self: &Rc<Self>, txn_id: &str) -> Result<Claim, TxnError> {
        if !self.in_flight.borrow_mut().insert(txn_id.to_string()) {
            return Err(TxnError::Concurrent);
        }
        Ok(Claim {
            coordinator: self.clone(),
            txn_id: txn_id.to_string(),
        })
    }

    /// Whether one more id fits in this shard's table.
    pub fn has_room(&self) -> bool {
        self.len() < TXN_IDS_PER_SHARD_MAX
    }

    /// Log `meta` for the claimed id, and install it once durable. A Complete*
    /// state is installed once written, without waiting for a sync: lost in a
    /// crash, it leaves the Prepare* before it, which recovery completes again
    /// (markers and group offsets are idempotent). That takes one of EndTxn's
    /// three serial syncs off its answer, as Kafka writes CompleteCommit after
    /// answering.
    pub async fn put(&self, claim: &Claim, meta: TxnMetadata) -> Result<(), TxnError> {
        let sync = match meta.state {
            TxnState::CompleteCommit | TxnState::CompleteAbort => Sync::Lazy,
            _ => Sync::Durable,
        };
        let record = TxnRecord::State {
            txn_id: claim.txn_id.clone(),
            meta: meta.clone(),
        };
        self.store.append(&[record], sync).await.map_err(|e| {
            tracing::error!(error = %e, "transaction log append failed");
            TxnError::Unavailable
        })?;
        self.txns.borrow_mut().insert(claim.txn_id.clone(), meta);
        Ok(())
    }

    /// Forget the claimed id durably (transactional.id.expiration.ms).
    pub async fn remove(&self, claim: &Claim) -> Result<(), TxnError> {
        let record = TxnRecord::Remove {
            txn_id: claim.txn_id.clone(),
        };
        self.store
            .append(&[record], Sync::Durable)
            .await
            .map_err(|_| TxnError::Unavailable)?;
        self.txns.borrow_mut().remove(&claim.txn_id);
        Ok(())
    }

    /// Compact the log if it grew past its bound.
    pub async fn maybe_compact(&self) {
        if !self.store.wants_compaction() {
            return;
        }
        if let Err(e) = self.store.compact(|| self.txns.borrow().clone()).await {
            tracing::error!(error = %e, "transaction log compaction failed");
        }
    }

    pub fn log_bytes(&self) -> u64 {
        self.store.file_bytes()
    }

    pub async fn close(&self) {
        self.store.close().await;
    }
}
