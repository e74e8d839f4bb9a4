//! Reuse of large Direct-I/O buffers: how much freed buffer memory each shard
//! thread keeps for the next reads and writes (glommio's per-thread cache,
//! `third_party/glommio/README.weir.md`), set once at start-up before any
//! shard runs.
//!
//! Why: a segment-file read larger than glommio's small registered arena gets
//! its buffer (4 KiB aligned, as large as the read: up to a fetch's
//! `partition_max_bytes` plus a margin, 8 MiB for weir-loadgen) from the
//! global allocator. glibc hands such blocks back to the kernel when they are
//! freed, and the next read faults in, zero-fills and memcg-charges fresh
//! pages inside io_uring's submission, then unmaps them on free: a quarter of
//! the broker's samples in a catch-up with 8 MiB fetches (docs/benchmarks.md,
//! "Catch-up reads: CPU per GB"). Fixing glibc's thresholds instead kept the
//! pages but let the heap fragment: RSS rose 19% while a backlog grew from 1 to
//! 20 GB, against 2% without them (docs/benchmarks.md, "Read buffers: a
//! bounded cache instead of the allocator thresholds").
//!
//! What is kept: blocks larger than the appender's 1 MiB chunk (segment reads),
//! up to the shard's read-ahead budget, which already bounds the reads a shard
//! has in flight. The 1 MiB chunks are left to the allocator: glibc's heap
//! reuses blocks of that size once one has been freed, and caching them too kept
//! 16 MB more RSS in a produce-only backlog for no measured gain.
//!
//! Invariant: each shard thread keeps at most the read-ahead budget of freed
//! buffers; everything beyond goes back to the allocator at once.

/// Freed blocks of at least this size are kept: above the appender's 1 MiB chunk
/// (asserted in `log/appender.rs`), so only segment reads are cached.
pub const CACHE_BLOCK_MIN_BYTES: usize = (1 << 20) + 1;

/// Turn the cache on, `total_bytes` per thread, for every thread that allocates
/// DMA buffers from now on.
pub fn keep_freed_buffers(total_bytes: usize) {
    glommio::set_dma_buffer_cache(CACHE_BLOCK_MIN_BYTES, total_bytes);
}

#[cfg(test)]
mod tests {
    use super::*;

    const BLOCK: usize = 16 << 20;
    const BOUND: usize = 2 * BLOCK;

    /// Runs `f` on a fresh executor thread: the cache is per thread.
    fn on_executor(f: impl FnOnce() + Send + 'static) {
        std::thread::spawn(move || {
            glommio::LocalExecutorBuilder::default()
                .make()
                .expect("executor")
                .run(async move { f() })
        })
        .join()
        .expect("executor thread");
    }

    #[test]
    fn given_the_cache_when_a_large_buffer_is_freed_should_give_its_memory_to_the_next_read_of_its_class() {
        keep_freed_buffers(BOUND);
        on_executor(|| {
            // Larger than the executor's registered arena, so from the allocator.
            let mut first = glommio::allocate_dma_buffer(BLOCK);
            first.as_bytes_mut().fill(0xA5);
            drop(first);
            assert_eq!(glommio::dma_buffer_cache_bytes(), BLOCK);
            // A slightly smaller read shares the 1 MiB size class.
            let second = glommio::allocate_dma_buffer(BLOCK - 4096);
            assert!(
                second.as_bytes().iter().all(|&b| b == 0xA5),
                "the freed block's pages come back, not fresh zeroed ones"
            );
            assert_eq!(glommio::dma_buffer_cache_bytes(), 0);
        });
    }

    #[test]
    fn given_more_freed_than_the_bound_when_buffers_return_should_keep_at_most_the_bound() {
        keep_freed_buffers(BOUND);
        on_executor(|| {
            let held: Vec<_> = (0..3).map(|_| glommio::allocate_dma_buffer(BLOCK)).collect();
            drop(held);
            assert_eq!(glommio::dma_buffer_cache_bytes(), BOUND);
        });
    }

    #[test]
    fn given_the_cache_when_an_appender_chunk_is_freed_should_leave_it_to_the_allocator() {
        keep_freed_buffers(BOUND);
        on_executor(|| {
            // More chunks than the registered arena holds, so some come from the allocator.
            let chunks: Vec<_> = (0..16).map(|_| glommio::allocate_dma_buffer(1 << 20)).collect();
            drop(chunks);
            assert_eq!(glommio::dma_buffer_cache_bytes(), 0);
        });
    }
}
