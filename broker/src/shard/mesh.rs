//! Cross-shard calls over a full mesh of bounded channels: a request carries a
//! call id and a task (`task.rs`), the owner runs the task and answers with its
//! output under the same id, and the caller's pending call is completed through
//! a local one-slot channel. Each shard owns its `Mesh`; payloads move as
//! `Bytes`/`Arc`, never copied. `serve_inbound` is the receive loop.
//! Invariant: a shard never sends itself a request (local work is called
//! directly), and every pending call is completed or dropped with the shard.
//!
//! The channels are flume channels made on the main thread before any executor
//! starts (`build`); a waiting receiver is woken through glommio's foreign-waker
//! path. glommio's own shared channels (and `MeshBuilder`, built on them) were
//! dropped: each end must `connect`, and a shard that connected before its peer's
//! executor was running busy-polled, then sometimes stayed parked for good with
//! the connection complete. Beside a concurrent kill -9 and restart load that
//! left a shard short of `shard ready` in about one start in eight with
//! `MeshBuilder` (docs/reliability.md has the measurements). A bounded flume
//! channel needs no handshake.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

use glommio::channels::local_channel::{self, LocalSender};

use super::task::{ErasedTask, Task};
use super::Runtime;

/// A task's output, type-erased for the trip back.
type Answer = Box<dyn Any + Send>;

pub enum Envelope<C> {
    Request {
        from: usize,
        call_id: u64,
        body: Box<dyn ErasedTask<C>>,
    },
    Response {
        call_id: u64,
        body: Answer,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum MeshError {
    #[error("shard {0} is gone (shutting down)")]
    PeerGone(usize),
}

/// One shard's ends of the mesh: a sender to and a receiver from every other
/// shard (`None` at its own index). Made by `build`, moved into the shard's
/// executor.
pub struct MeshEnds<C> {
    me: usize,
    senders: Vec<Option<flume::Sender<Envelope<C>>>>,
    receivers: Vec<Option<flume::Receiver<Envelope<C>>>>,
}

/// The channels of a full mesh of `shards` shards, `capacity` envelopes each:
/// element k holds shard k's ends.
pub fn build<C>(shards: usize, capacity: usize) -> Vec<MeshEnds<C>> {
    let mut ends: Vec<MeshEnds<C>> = (0..shards)
        .map(|me| MeshEnds {
            me,
            senders: (0..shards).map(|_| None).collect(),
            receivers: (0..shards).map(|_| None).collect(),
        })
        .collect();
    for from in 0..shards {
        for to in (0..shards).filter(|&to| to != from) {
            let (tx, rx) = flume::bounded(capacity);
            ends[from].senders[to] = Some(tx);
            ends[to].receivers[from] = Some(rx);
        }
    }
    ends
}

/// Receivers from each peer: (peer shard, channel).
pub type Inbound<C> = Vec<(usize, flume::Receiver<Envelope<C>>)>;

impl<C: 'static> MeshEnds<C> {
    pub fn me(&self) -> usize {
        self.me
    }

    /// This shard's sending side and its inbound channels.
    pub fn split(self) -> (Mesh<C>, Inbound<C>) {
        let inbound = self
            .receivers
            .into_iter()
            .enumerate()
            .filter_map(|(peer, r)| r.map(|r| (peer, r)))
            .collect();
        (Mesh::new(self.me, self.senders), inbound)
    }
}

pub struct Mesh<C> {
    me: usize,
    /// Indexed by peer shard; `None` at `me`, and everywhere after `close`.
    senders: RefCell<Vec<Option<flume::Sender<Envelope<C>>>>>,
    pending: RefCell<HashMap<u64, LocalSender<Answer>>>,
    next_call_id: Cell<u64>,
}

impl<C: 'static> Mesh<C> {
    fn new(me: usize, senders: Vec<Option<flume::Sender<Envelope<C>>>>) -> Self {
        Self {
            me,
            senders: RefCell::new(senders),
            pending: RefCell::new(HashMap::new()),
            next_call_id: Cell::new(0),
        }
    }

    /// Err when the peer is gone or this shard closed its side.
    async fn send_to(&self, to: usize, envelope: Envelope<C>) -> Result<(), ()> {
        // A clone (one atomic increment) so no RefCell borrow lives across the await.
        let sender = self.senders.borrow()[to].clone().ok_or(())?;
        sender.send_async(envelope).await.map_err(|_| ())
    }

    pub fn me(&self) -> usize {
        self.me
    }

    /// Run `task` on shard `to` and await its output. Awaits when the channel
    /// is full: backpressure, never an unbounded queue.
    pub async fn call<T: Task<C>>(&self, to: usize, task: T) -> Result<T::Output, MeshError> {
        assert_ne!(to, self.me, "a shard calls its own handlers directly");
        let call_id = self.next_call_id.get();
        self.next_call_id.set(call_id + 1);
        let (tx, rx) = local_channel::new_bounded(1);
        self.pending.borrow_mut().insert(call_id, tx);
        let envelope = Envelope::Request {
            from: self.me,
            call_id,
            body: Box::new(task),
        };
        if self.send_to(to, envelope).await.is_err() {
            self.pending.borrow_mut().remove(&call_id);
            return Err(MeshError::PeerGone(to));
        }
        let answer = rx.recv().await.ok_or(MeshError::PeerGone(to))?;
        Ok(*answer
            .downcast::<T::Output>()
            .expect("a reply carries the output of the task its call sent"))
    }

    /// Answer a call that arrived from `to`.
    async fn reply(&self, to: usize, call_id: u64, body: Answer) {
        // A peer that is gone no longer waits for the answer: dropping it is right.
        let _ = self.send_to(to, Envelope::Response { call_id, body }).await;
    }

    /// Complete a pending call with the answer that came back.
    fn complete(&self, call_id: u64, body: Answer) {
        let sender = self.pending.borrow_mut().remove(&call_id);
        if let Some(tx) = sender {
            // The caller may have been cancelled (connection closed): ignore.
            let _ = tx.try_send(body);
        } else {
            tracing::warn!(call_id, "mesh answer for an unknown call");
        }
    }

    /// Envelopes queued towards each peer (`None` for this shard and closed
    /// ends), and this shard's calls awaiting an answer: for the metrics.
    pub fn depths(&self) -> (Vec<Option<usize>>, usize) {
        let queued = self
            .senders
            .borrow()
            .iter()
            .map(|s| s.as_ref().map(flume::Sender::len))
            .collect();
        (queued, self.pending.borrow().len())
    }

    pub fn close(&self) {
        self.senders.borrow_mut().iter_mut().for_each(|s| *s = None);
        self.pending.borrow_mut().clear();
    }
}

/// The receive loop of one shard: run each task that arrives from a peer on
/// this executor (concurrently, each in its own local task) and send its output
/// back; complete this shard's own calls as their answers return. Runs until
/// the peers close their ends.
pub fn serve_inbound<C: Runtime>(on: Rc<C>, inbound: Inbound<C>) {
    for (peer, rx) in inbound {
        let on = on.clone();
        glommio::spawn_local(async move {
            while let Ok(envelope) = rx.recv_async().await {
                match envelope {
                    Envelope::Request { from, call_id, body } => {
                        debug_assert_eq!(from, peer);
                        let on = on.clone();
                        glommio::spawn_local(async move {
                            let answer = body.run_erased(on.clone()).await;
                            on.mesh().reply(from, call_id, answer).await;
                        })
                        .detach();
                    }
                    Envelope::Response { call_id, body } => on.mesh().complete(call_id, body),
                }
            }
        })
        .detach();
    }
}

#[cfg(test)]
mod tests {
    use std::rc::Rc;

    use glommio::{LocalExecutorBuilder, Placement};

    use super::*;
    use crate::shard::{fan_out, Runtime, Task};

    /// A context with nothing but the runtime's needs: the mesh works without
    /// knowing any API.
    struct Bare {
        mesh: Mesh<Bare>,
        count: usize,
    }

    impl Runtime for Bare {
        fn shard_id(&self) -> usize {
            self.mesh.me()
        }
        fn shard_count(&self) -> usize {
            self.count
        }
        fn mesh(&self) -> &Mesh<Self> {
            &self.mesh
        }
    }

    /// Answers which shard ran it, with its input.
    struct WhoRuns(Vec<u32>);

    impl Task<Bare> for WhoRuns {
        type Output = (usize, Vec<u32>);

        async fn run(self, on: Rc<Bare>) -> (usize, Vec<u32>) {
            (on.shard_id(), self.0)
        }
    }

    #[test]
    fn given_work_for_every_shard_when_fanned_out_should_run_each_part_on_its_owner_and_keep_order() {
        const SHARDS: usize = 3;
        let _deadline = crate::deadline::arm("mesh fan-out test", std::time::Duration::from_secs(60));
        let mut threads = Vec::new();
        for ends in build::<Bare>(SHARDS, 4) {
            threads.push(
                LocalExecutorBuilder::new(Placement::Unbound)
                    .spawn(move || async move {
                        let (mesh, inbound) = ends.split();
                        let me = mesh.me();
                        let on = Rc::new(Bare { mesh, count: SHARDS });
                        serve_inbound(on.clone(), inbound);
                        // Shard 0 calls everyone (itself directly); the others serve.
                        let answers = if me == 0 {
                            let work = (0..SHARDS)
                                .map(|s| vec![s as u32 * 10, s as u32 * 10 + 1])
                                .collect();
                            fan_out(&on, work, WhoRuns).await
                        } else {
                            Vec::new()
                        };
                        // Stay up until shard 0 is done with everyone.
                        glommio::timer::sleep(std::time::Duration::from_millis(500)).await;
                        on.mesh.close();
                        answers
                            .into_iter()
                            .map(|(owner, a)| (owner, a.expect("every shard answers")))
                            .collect::<Vec<_>>()
                    })
                    .expect("executor"),
            );
        }
        let answers: Vec<_> = threads.into_iter().map(|t| t.join().expect("join")).collect();
        let expected: Vec<(usize, (usize, Vec<u32>))> = (0..SHARDS)
            .map(|s| (s, (s, vec![s as u32 * 10, s as u32 * 10 + 1])))
            .collect();
        assert_eq!(answers[0], expected);
    }
}
