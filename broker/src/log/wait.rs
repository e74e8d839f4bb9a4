//! A tiny single-shard condition variable: tasks wait until a predicate over the
//! partition state holds; whoever changes that state calls `notify_all`.
//! Owned by one shard (uses `RefCell`, never `Send`). Waiters re-check their predicate
//! after every wake, so spurious wakes are harmless; a waker is stored once per task.

use std::cell::RefCell;
use std::future::poll_fn;
use std::task::{Poll, Waker};

#[derive(Default)]
pub(crate) struct WaitList {
    wakers: RefCell<Vec<Waker>>,
}

impl WaitList {
    /// Resolve once `ready()` returns true. `ready` must not hold borrows across calls.
    pub(crate) async fn wait_until(&self, mut ready: impl FnMut() -> bool) {
        poll_fn(|cx| {
            if ready() {
                return Poll::Ready(());
            }
            let mut wakers = self.wakers.borrow_mut();
            // The list holds at most one waker per waiting task: bounded by the tasks alive.
            if !wakers.iter().any(|w| w.will_wake(cx.waker())) {
                wakers.push(cx.waker().clone());
            }
            Poll::Pending
        })
        .await;
    }

    pub(crate) fn notify_all(&self) {
        // Pop one at a time: keeps the Vec's capacity (no allocation per notify) and holds
        // no borrow while waking.
        loop {
            let waker = self.wakers.borrow_mut().pop();
            match waker {
                Some(waker) => waker.wake(),
                None => break,
            }
        }
    }
}
