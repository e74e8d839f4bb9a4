//! The shard runtime: what thread-per-core needs and nothing about Kafka.
//! It owns the mesh between shards (`mesh`), work that runs on a named shard
//! (`task`), splitting work by owner and running it everywhere at once
//! (`fanout`, `router`), the stall watchdog (`watchdog`) and the opt-in stall
//! diagnosis (`stall_probe`, `WEIR_STALL_MS`).
//!
//! The runtime is generic over the per-shard context `C` (the broker's is
//! `handlers::ShardContext`): a task carries its own code, so the runtime runs
//! it on the owner without knowing what it does. Arrows point one way: the
//! handlers use the runtime; the runtime uses no handler, log or group.

pub mod fanout;
pub mod mesh;
pub mod order;
pub mod router;
pub mod stall_probe;
pub mod task;
pub mod watchdog;

pub use fanout::{fan_out, place, run_on, Slotted};
pub use mesh::{Mesh, MeshError};
pub use task::Task;

/// What the runtime needs of a shard's context: which shard it is, how many
/// there are, and its end of the mesh.
pub trait Runtime: Sized + 'static {
    fn shard_id(&self) -> usize;
    fn shard_count(&self) -> usize;
    fn mesh(&self) -> &Mesh<Self>;
}
