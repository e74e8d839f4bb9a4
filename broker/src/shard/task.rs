//! Work addressed to one shard. A `Task` is a plain `Send` value (parts of a
//! request, with `Bytes` and `Arc` payloads: no record copies) whose `run`
//! executes on the shard it was sent to, with that shard's context. The same
//! task runs directly when the caller owns the data and over the mesh when
//! another shard does, so the owner-side code exists once.
//!
//! Over the mesh a task travels type-erased (`ErasedTask`): one channel carries
//! every kind, and the caller gets its typed output back by a downcast that
//! cannot fail, since each reply answers the call that sent the task.

use std::any::Any;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;

pub type LocalFuture<T> = Pin<Box<dyn Future<Output = T>>>;

/// Work for the shard that owns its data; `C` is that shard's context.
pub trait Task<C>: Send + 'static {
    type Output: Send + 'static;

    /// Runs on the owning shard's executor.
    fn run(self, on: Rc<C>) -> impl Future<Output = Self::Output> + 'static;
}

/// A task with its output type erased, as the mesh carries it.
pub trait ErasedTask<C>: Send {
    fn run_erased(self: Box<Self>, on: Rc<C>) -> LocalFuture<Box<dyn Any + Send>>;
}

impl<C: 'static, T: Task<C>> ErasedTask<C> for T {
    fn run_erased(self: Box<Self>, on: Rc<C>) -> LocalFuture<Box<dyn Any + Send>> {
        let output = (*self).run(on);
        Box::pin(async move { Box::new(output.await) as Box<dyn Any + Send> })
    }
}
