//! Cross-shard calls over glommio's bounded channel mesh: a request carries a
//! call id, the owner answers with a response carrying the same id, and the
//! caller's pending call is completed through a local one-slot channel.
//! Each shard owns its `Mesh`; payloads move as `Bytes`/`Arc`, never copied.
//! Invariant: a shard never sends itself a request (local work is called
//! directly), and every pending call is completed or dropped with the shard.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;

use glommio::channels::channel_mesh::Senders;
use glommio::channels::local_channel::{self, LocalSender};

use super::messages::{ShardRequest, ShardResponse};

pub enum Envelope {
    Request {
        from: usize,
        call_id: u64,
        body: ShardRequest,
    },
    Response {
        call_id: u64,
        body: ShardResponse,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum MeshError {
    #[error("shard {0} is gone (shutting down)")]
    PeerGone(usize),
}

pub struct Mesh {
    me: usize,
    senders: Senders<Envelope>,
    pending: RefCell<HashMap<u64, LocalSender<ShardResponse>>>,
    next_call_id: Cell<u64>,
}

impl Mesh {
    pub fn new(senders: Senders<Envelope>) -> Self {
        Self {
            me: senders.peer_id(),
            senders,
            pending: RefCell::new(HashMap::new()),
            next_call_id: Cell::new(0),
        }
    }

    pub fn me(&self) -> usize {
        self.me
    }

    /// Send `body` to shard `to` and await its answer. Awaits when the channel
    /// is full: backpressure, never an unbounded queue.
    pub async fn call(&self, to: usize, body: ShardRequest) -> Result<ShardResponse, MeshError> {
        assert_ne!(to, self.me, "a shard calls its own handlers directly");
        let call_id = self.next_call_id.get();
        self.next_call_id.set(call_id + 1);
        let (tx, rx) = local_channel::new_bounded(1);
        self.pending.borrow_mut().insert(call_id, tx);
        let envelope = Envelope::Request {
            from: self.me,
            call_id,
            body,
        };
        if self.senders.send_to(to, envelope).await.is_err() {
            self.pending.borrow_mut().remove(&call_id);
            return Err(MeshError::PeerGone(to));
        }
        let answer = rx.recv().await;
        answer.ok_or(MeshError::PeerGone(to))
    }

    /// Answer a call that arrived from `to`.
    pub async fn reply(&self, to: usize, call_id: u64, body: ShardResponse) {
        // A peer that is gone no longer waits for the answer: dropping it is right.
        let _ = self
            .senders
            .send_to(to, Envelope::Response { call_id, body })
            .await;
    }

    /// Complete a pending call with the answer that came back.
    pub fn complete(&self, call_id: u64, body: ShardResponse) {
        let sender = self.pending.borrow_mut().remove(&call_id);
        if let Some(tx) = sender {
            // The caller may have been cancelled (connection closed): ignore.
            let _ = tx.try_send(body);
        } else {
            tracing::warn!(call_id, "mesh answer for an unknown call");
        }
    }

    pub fn close(&self) {
        self.senders.close();
        self.pending.borrow_mut().clear();
    }
}
