//! One module per Kafka API (or family). Each handler runs on the shard that
//! accepted the connection, splits partition work by owning shard, calls the
//! owners (itself directly, others over the mesh) and merges the answers back
//! into the client's order. Handlers never block and never panic on input.

pub mod api_versions;
pub mod fetch;
pub mod groups;
pub mod list_offsets;
pub mod metadata;
pub mod produce;
pub mod topics;

use std::rc::Rc;

use crate::shard::mesh::MeshError;
use crate::shard::messages::{ShardRequest, ShardResponse};
use crate::shard::Shard;

/// Run one call per shard that has work, concurrently, and collect
/// `(shard, answer)` pairs. `local` is run for this shard's own work;
/// `remote` builds the mesh request for the others.
pub async fn fan_out<P, R, FL, FR, FU>(
    shard: &Rc<Shard>,
    work: Vec<Vec<P>>,
    local: FL,
    remote: FR,
    unwrap: FU,
) -> Vec<(usize, Result<Vec<R>, MeshError>)>
where
    P: 'static,
    R: 'static,
    FL: Fn(Rc<Shard>, Vec<P>) -> std::pin::Pin<Box<dyn std::future::Future<Output = Vec<R>>>>,
    FR: Fn(Vec<P>) -> ShardRequest,
    FU: Fn(ShardResponse) -> Option<Vec<R>> + Clone + 'static,
{
    let mut tasks = Vec::new();
    for (owner, parts) in work.into_iter().enumerate() {
        if parts.is_empty() {
            continue;
        }
        if owner == shard.id {
            let fut = local(shard.clone(), parts);
            tasks.push((owner, glommio::spawn_local(async move { Ok(fut.await) })));
        } else {
            let request = remote(parts);
            let shard = shard.clone();
            let unwrap = unwrap.clone();
            tasks.push((
                owner,
                glommio::spawn_local(async move {
                    let answer = shard.mesh.call(owner, request).await?;
                    Ok(unwrap(answer).expect("mesh answer matches its request kind"))
                }),
            ));
        }
    }
    let mut out = Vec::with_capacity(tasks.len());
    for (owner, task) in tasks {
        out.push((owner, task.await));
    }
    out
}

/// A part's answer knows its slot in the client's response.
pub trait Slotted {
    fn slot(&self) -> usize;
}

impl Slotted for crate::shard::messages::ProducePartResult {
    fn slot(&self) -> usize {
        self.index
    }
}

impl Slotted for crate::shard::messages::ListOffsetsPartResult {
    fn slot(&self) -> usize {
        self.index
    }
}

/// Put each owner's answers into their slots. A shard that could not be
/// reached leaves its slots as they were (the caller pre-fills them with an
/// error or the empty answer) and is logged.
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
