//! Per-connection order of appends. Kafka: "on a single TCP connection, requests
//! will be processed in the order they are sent". A connection runs up to
//! `in_flight_max` requests at once (decode, validation and the acks=all wait
//! overlap), so the order is kept where it matters: each Produce takes a ticket
//! in the reader loop, in frame order, and may start appending only on its
//! turn; it passes the turn on once every batch it carries sits in its
//! partition's queue with offsets assigned (before any durability wait).
//! Without this, an append that waited on a partition's unwritten-bytes bound
//! was overtaken by a later request's, and one producer's records landed out
//! of order.
//!
//! Owned by the connection's shard; tickets never cross shards. Bounded: at most
//! one ticket per in-flight request.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::rc::Rc;

/// Hands out tickets in request order and lets them through one at a time.
#[derive(Default)]
pub struct Turnstile {
    state: RefCell<State>,
    turn: event_listener::Event,
}

#[derive(Default)]
struct State {
    /// The next ticket to hand out.
    issued: u64,
    /// The ticket whose turn it is.
    serving: u64,
    /// Tickets dropped before their turn (a request that failed early): skipped
    /// when the turn reaches them. At most `in_flight_max` entries.
    abandoned: BTreeSet<u64>,
}

/// One request's place in its connection's order. Dropping it passes the turn on
/// (or, before its turn, marks it to be skipped), so an error path cannot stall
/// the connection.
pub struct Ticket {
    turnstile: Rc<Turnstile>,
    seq: u64,
}

impl Turnstile {
    pub fn new() -> Rc<Self> {
        Rc::new(Self::default())
    }

    /// Called in request order (the connection's reader loop).
    pub fn ticket(self: &Rc<Self>) -> Ticket {
        let mut st = self.state.borrow_mut();
        let seq = st.issued;
        st.issued += 1;
        Ticket {
            turnstile: self.clone(),
            seq,
        }
    }
}

impl Ticket {
    /// Wait until every earlier ticket of the connection has passed.
    pub async fn wait_turn(&self) {
        loop {
            if self.turnstile.state.borrow().serving == self.seq {
                return;
            }
            let listener = self.turnstile.turn.listen();
            // Re-check after registering, or a pass between the two is missed.
            if self.turnstile.state.borrow().serving == self.seq {
                return;
            }
            listener.await;
        }
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut st = self.turnstile.state.borrow_mut();
        if st.serving != self.seq {
            debug_assert!(st.serving < self.seq, "a ticket passes once");
            st.abandoned.insert(self.seq);
            return;
        }
        let mut next = self.seq + 1;
        while st.abandoned.remove(&next) {
            next += 1;
        }
        st.serving = next;
        debug_assert!(st.serving <= st.issued);
        drop(st);
        self.turnstile.turn.notify(usize::MAX);
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::rc::Rc;
    use std::time::Duration;

    use super::Turnstile;

    /// One executor for one test, under a deadline (a hang fails with stacks).
    fn run(test: impl std::future::Future<Output = ()> + 'static) {
        let _deadline = crate::deadline::arm(crate::deadline::this_test(), Duration::from_secs(60));
        glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
            .make()
            .expect("executor")
            .run(test);
    }

    #[test]
    fn given_tickets_taken_in_order_when_later_ones_are_ready_first_should_pass_in_ticket_order() {
        run(async {
            let gate = Turnstile::new();
            let seen = Rc::new(RefCell::new(Vec::new()));
            let tickets: Vec<_> = (0..4).map(|_| gate.ticket()).collect();
            let mut tasks = Vec::new();
            // Spawn in reverse, the first with the longest head start of work: the
            // order of arrival must not matter, only the ticket.
            for (i, ticket) in tickets.into_iter().enumerate().rev() {
                let seen = seen.clone();
                tasks.push(glommio::spawn_local(async move {
                    glommio::timer::sleep(Duration::from_millis(5 * (4 - i as u64))).await;
                    ticket.wait_turn().await;
                    seen.borrow_mut().push(i);
                    // Work after the turn (a yield) must not let the next one in early.
                    glommio::yield_if_needed().await;
                    glommio::timer::sleep(Duration::from_millis(1)).await;
                    seen.borrow_mut().push(i + 100);
                }));
            }
            for t in tasks {
                t.await;
            }
            assert_eq!(*seen.borrow(), vec![0, 100, 1, 101, 2, 102, 3, 103]);
        });
    }

    #[test]
    fn given_a_ticket_dropped_before_its_turn_when_the_turn_reaches_it_should_skip_it() {
        run(async {
            let gate = Turnstile::new();
            let first = gate.ticket();
            let second = gate.ticket();
            let third = gate.ticket();
            drop(second);
            let waiter = glommio::spawn_local(async move {
                third.wait_turn().await;
            });
            glommio::timer::sleep(Duration::from_millis(5)).await;
            drop(first);
            waiter.await;
            assert!(gate.state.borrow().abandoned.is_empty());
            assert_eq!(gate.state.borrow().serving, 3);
        });
    }
}
