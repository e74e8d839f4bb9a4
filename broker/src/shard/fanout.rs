//! Running one task per owning shard at once and merging the answers back into
//! the client's order. Local work runs on this executor directly; the rest goes
//! over the mesh. A shard that cannot be reached yields an error for its slots,
//! never a silent success.

use std::rc::Rc;

use super::mesh::MeshError;
use super::task::Task;
use super::Runtime;

/// Run `task(parts)` on every shard whose entry in `work` is not empty (index =
/// shard), concurrently, and collect `(shard, answer)` pairs in shard order.
pub async fn fan_out<C, P, T>(
    on: &Rc<C>,
    work: Vec<Vec<P>>,
    task: impl Fn(Vec<P>) -> T,
) -> Vec<(usize, Result<T::Output, MeshError>)>
where
    C: Runtime,
    T: Task<C>,
{
    let mut running = Vec::new();
    for (owner, parts) in work.into_iter().enumerate() {
        if parts.is_empty() {
            continue;
        }
        let (task, on) = (task(parts), on.clone());
        running.push((
            owner,
            glommio::spawn_local(async move { run_on(&on, owner, task).await }),
        ));
    }
    let mut out = Vec::with_capacity(running.len());
    for (owner, handle) in running {
        out.push((owner, handle.await));
    }
    out
}

/// Run `task` on shard `owner`: directly when that is this shard, over the mesh
/// otherwise.
pub async fn run_on<C: Runtime, T: Task<C>>(
    on: &Rc<C>,
    owner: usize,
    task: T,
) -> Result<T::Output, MeshError> {
    if owner == on.shard_id() {
        Ok(task.run(on.clone()).await)
    } else {
        on.mesh().call(owner, task).await
    }
}

/// A part's answer knows its slot in the client's response.
pub trait Slotted {
    fn slot(&self) -> usize;
}

/// Put each owner's answers into their slots. A shard that could not be
/// reached leaves its slots as they were (the caller pre-fills them with an
/// error) and is logged.
pub fn place<R: Slotted>(results: &mut [R], answers: Vec<(usize, Result<Vec<R>, MeshError>)>, what: &str) {
    for (owner, answer) in answers {
        match answer {
            Ok(parts) => parts.into_iter().for_each(|r| {
                let i = r.slot();
                results[i] = r;
            }),
            Err(e) => tracing::warn!(owner, error = %e, "{what} forward failed"),
        }
    }
}
