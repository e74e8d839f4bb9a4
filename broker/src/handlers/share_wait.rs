//! The waiting half of a ShareFetch whose partitions live on several shards
//! (`share_fetch.rs`): each owner waits, without acquiring anything, until one of its
//! share-partitions may have records to hand out (an append, a settle or release, a lock
//! expiry) or the time is up; the first owner to wake ends every wait, and the fetch asks
//! all owners again. Acquiring only after the wait means a wait cancelled half way leaves
//! no record locked to a member that never receives it. Also the probe a fetch that found
//! nothing sends to the shards owning the rest of its topics (`available_elsewhere`). Runs
//! on the owner shards; holds nothing but listeners.

use std::future::Future;
use std::rc::Rc;
use std::time::{Duration, Instant};

use futures_lite::future;

use super::fetch::DataListeners;
use super::share_fetch::SharePart;
use super::ShardContext;
use crate::shard::fanout::run_on;
use crate::shard::{fan_out, Task};
use crate::share::store::Key;
use crate::share::ShareState;

/// Waits on one owner for any of its parts to have records to acquire.
pub struct ShareWait {
    group: String,
    parts: Vec<(String, i32)>,
    wait: Duration,
}

impl Task<ShardContext> for ShareWait {
    type Output = ();

    async fn run(self, shard: Rc<ShardContext>) {
        let Some(share) = shard.share() else {
            return;
        };
        let deadline = Instant::now() + self.wait;
        let keys: Vec<Key> = self
            .parts
            .iter()
            .map(|(t, p)| (self.group.clone(), t.clone(), *p))
            .collect();
        // Listen before looking, so a change in between still wakes this wait.
        let stop = shard.stop_event.listen();
        let data = DataListeners::of(&shard, self.parts.iter().map(|(t, p)| (t.as_str(), *p)));
        let released = share.released.listen();
        let ready = keys.iter().any(|k| {
            shard
                .partitions
                .owned(&k.1, k.2)
                .is_ok_and(|log| share.can_acquire(k, log.log_start_offset().0, log.log_end_offset().0))
        });
        let now = Instant::now();
        if ready || now >= deadline || shard.stopping.get() {
            return;
        }
        sleep_until(
            &share,
            &keys,
            now,
            deadline,
            future::or(future::or(data, stop), released),
        )
        .await;
    }
}

/// Sleep until `woken` completes (data, a release, the shard stopping), the earliest
/// lock on `keys` expires (its records become available again), or `deadline`: the
/// long poll of a ShareFetch, acquiring (`share_fetch`) or not (`ShareWait`).
pub(super) async fn sleep_until(
    share: &ShareState,
    keys: &[Key],
    now: Instant,
    deadline: Instant,
    woken: impl Future<Output = ()>,
) {
    let wake = share
        .next_deadline(keys.iter())
        .map_or(deadline, |d| d.min(deadline))
        .max(now + Duration::from_millis(1));
    future::or(woken, async {
        glommio::timer::sleep(wake - now).await;
    })
    .await;
}

/// Waits on every owner of `work` at once; returns when the first one wakes or `wait`
/// has passed. The other waits are dropped here (a remote one runs out on its own).
pub(super) async fn wait_for_any(
    shard: &Rc<ShardContext>,
    group: &str,
    work: &[Vec<SharePart>],
    wait: Duration,
) {
    let mut waits = Vec::new();
    for (owner, parts) in work.iter().enumerate().filter(|(_, p)| !p.is_empty()) {
        let task = ShareWait {
            group: group.to_owned(),
            parts: parts.iter().map(|p| (p.topic.clone(), p.partition)).collect(),
            wait,
        };
        let shard = shard.clone();
        waits.push(Box::pin(async move {
            let _ = run_on(&shard, owner, task).await;
        }));
    }
    if !waits.is_empty() {
        futures_lite::future::or(
            async {
                // Any one finishing ends the wait: poll them together.
                future::poll_fn(|cx| {
                    for w in waits.iter_mut() {
                        if w.as_mut().poll(cx).is_ready() {
                            return std::task::Poll::Ready(());
                        }
                    }
                    std::task::Poll::Pending
                })
                .await
            },
            async {
                glommio::timer::sleep(wait + Duration::from_millis(50)).await;
            },
        )
        .await;
    }
}

/// Whether any of `parts` of `group` has records to acquire now, on this (their owner) shard.
pub struct ShareProbe {
    group: String,
    parts: Vec<(String, i32)>,
}

impl Task<ShardContext> for ShareProbe {
    type Output = bool;

    async fn run(self, shard: Rc<ShardContext>) -> bool {
        let Some(share) = shard.share() else {
            return false;
        };
        self.parts.into_iter().any(|(topic, partition)| {
            let (log_start, log_end) = match shard.partitions.owned(&topic, partition) {
                Ok(log) => (log.log_start_offset().0, log.log_end_offset().0),
                Err(_) => return false,
            };
            share.can_acquire(&(self.group.clone(), topic, partition), log_start, log_end)
        })
    }
}

/// Whether a share-partition of `group` on the topics of `work`, but not in `work` (the
/// fetch's own), has records to acquire on its shard. Every member of a share group is
/// assigned every partition of its topics (`groups::share`), so those are this member's.
pub(super) async fn available_elsewhere(
    shard: &Rc<ShardContext>,
    group: &str,
    work: &[Vec<SharePart>],
) -> bool {
    let named: Vec<(&str, i32)> = work
        .iter()
        .flatten()
        .map(|p| (p.topic.as_str(), p.partition))
        .collect();
    let mut topics: Vec<&str> = named.iter().map(|n| n.0).collect();
    topics.sort_unstable();
    topics.dedup();
    let mut probes: Vec<Vec<(String, i32)>> = (0..shard.count).map(|_| Vec::new()).collect();
    {
        let catalog = shard.catalog();
        for topic in topics {
            let Some(meta) = catalog.topic(topic) else {
                continue;
            };
            for partition in 0..meta.partition_count() {
                if named.contains(&(topic, partition)) {
                    continue;
                }
                if let Some(owner) = meta.owner(partition, shard.count) {
                    probes[owner].push((topic.to_owned(), partition));
                }
            }
        }
    }
    if probes.iter().all(Vec::is_empty) {
        return false;
    }
    let group = group.to_owned();
    fan_out(shard, probes, |parts| ShareProbe {
        group: group.clone(),
        parts,
    })
    .await
    .into_iter()
    .any(|(_, r)| r.unwrap_or(false))
}
