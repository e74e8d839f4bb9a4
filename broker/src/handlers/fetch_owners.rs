//! A fetch across the shards that own its partitions, run on the shard serving
//! the connection: each owner reads its own parts (over the mesh unless they
//! are this shard's) within its share of the fetch's bytes, and with several
//! owners the long poll is one wait per owner, answered when the first has
//! data. Invariant: an answer is empty only when no owner has a batch to give
//! at the fetch's offsets (`read_everywhere_now`).

use std::rc::Rc;

use super::fetch::{Fetch, FetchPart, FetchPartResult, FetchWait};
use super::fetch_budget::owner_budget;
use super::ShardContext;
use crate::shard::fan_out;

/// Every owner's answers for its parts, in no particular order (the caller
/// puts them back by slot index).
pub(super) async fn fetch_everywhere(
    shard: &Rc<ShardContext>,
    wait: FetchWait,
    work: Vec<Vec<FetchPart>>,
) -> Vec<FetchPartResult> {
    let owners: Vec<usize> = work
        .iter()
        .enumerate()
        .filter(|(_, w)| !w.is_empty())
        .map(|(s, _)| s)
        .collect();
    if owners.len() <= 1 {
        // The common case (zero-hop routing): one owner waits for its own data.
        return call_owners(shard, wait, work, Lead::First).await;
    }
    // Several owners: first read everywhere without waiting; if that is not
    // enough, let each owner wait, and answer when the first one has data,
    // re-reading the others without waiting.
    let now = FetchWait {
        max_wait_ms: 0,
        ..wait
    };
    let first = read_everywhere_now(shard, now, &work).await;
    let total: usize = first.iter().map(FetchPartResult::bytes).sum();
    if total >= wait.min_bytes || wait.max_wait_ms == 0 {
        return first;
    }
    let waited = wait_for_any(shard, wait, work.clone()).await;
    if waited.iter().map(FetchPartResult::bytes).sum::<usize>() == 0 {
        return waited;
    }
    read_everywhere_now(shard, now, &work).await
}

/// Which owners' first partition with data may return a batch over the bytes
/// the owner has left.
#[derive(Clone, Copy)]
enum Lead {
    /// Only the owner of the request's first partition (KIP-74): nothing read is
    /// cut from the answer.
    First,
    /// Every owner: the answer is then cut to the fetch's max in request order.
    Every,
}

/// Every owner's parts, read without waiting, each within its share. When that
/// answers nothing only because batches were over the shares (the leading
/// owner had no data, the others' first batches did not fit), read again with
/// every owner leading, as before shares: an answer with data must not come
/// back empty, or a client would fetch the same offsets for ever.
async fn read_everywhere_now(
    shard: &Rc<ShardContext>,
    now: FetchWait,
    work: &[Vec<FetchPart>],
) -> Vec<FetchPartResult> {
    // Borrowed, and copied for each call: the second call is rare.
    let first = call_owners(shard, now, work.to_vec(), Lead::First).await;
    if first.iter().all(|r| r.bytes() == 0) && first.iter().any(|r| r.unfit) {
        return call_owners(shard, now, work.to_vec(), Lead::Every).await;
    }
    first
}

/// Long-poll every owner and return as soon as any returns data (or all time out).
async fn wait_for_any(
    shard: &Rc<ShardContext>,
    wait: FetchWait,
    work: Vec<Vec<FetchPart>>,
) -> Vec<FetchPartResult> {
    let (tx, rx) = glommio::channels::local_channel::new_bounded(work.len().max(1));
    let tx = Rc::new(tx);
    let mut tasks = Vec::new();
    let mut expected = 0;
    for (owner, parts) in work.into_iter().enumerate().filter(|(_, p)| !p.is_empty()) {
        let mut one: Vec<Vec<FetchPart>> = (0..shard.count).map(|_| Vec::new()).collect();
        one[owner] = parts;
        let (shard, tx) = (shard.clone(), tx.clone());
        expected += 1;
        tasks.push(glommio::spawn_local(async move {
            let r = call_owners(&shard, wait, one, Lead::First).await;
            let _ = tx.send(r).await;
        }));
    }
    drop(tx);
    let mut merged = Vec::new();
    for _ in 0..expected {
        let Some(r) = rx.recv().await else { break };
        let has_data = r.iter().any(|p| p.bytes() > 0);
        merged.extend(r);
        if has_data {
            break; // dropping `tasks` cancels the other waits
        }
    }
    drop(tasks);
    merged
}

async fn call_owners(
    shard: &Rc<ShardContext>,
    wait: FetchWait,
    work: Vec<Vec<FetchPart>>,
    lead: Lead,
) -> Vec<FetchPartResult> {
    let origin = shard.id;
    let asked = |parts: &[FetchPart]| {
        parts
            .iter()
            .map(|p| p.max_bytes.min(wait.max_bytes))
            .sum::<usize>()
    };
    let all_asked: usize = work.iter().map(|parts| asked(parts)).sum();
    let first = work.iter().flatten().map(|p| p.index).min();
    let answers = fan_out(shard, work, |parts| {
        let max_bytes = owner_budget(asked(&parts), all_asked, wait.max_bytes);
        let may_lead = match lead {
            Lead::First => parts.iter().any(|p| Some(p.index) == first),
            Lead::Every => true,
        };
        Fetch {
            wait: FetchWait { max_bytes, ..wait },
            parts,
            origin,
            may_lead,
        }
    })
    .await;
    let mut out = Vec::new();
    for (owner, answer) in answers {
        match answer {
            Ok(parts) => out.extend(parts),
            Err(e) => tracing::warn!(owner, error = %e, "fetch forward failed"),
        }
    }
    out
}
