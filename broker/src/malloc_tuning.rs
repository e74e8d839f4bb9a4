//! The C allocator's thresholds, set once at start-up before any shard runs:
//! freed large buffers mostly stay in the process for the next reads instead of
//! going back to the kernel (glibc 2.36's per-thread arenas still return some).
//!
//! Why: a segment-file read allocates its Direct-I/O buffer (glommio's
//! `DmaBuffer`, 4 KiB aligned, as large as the read: up to a fetch's
//! `partition_max_bytes` plus a margin, 8 MiB for weir-loadgen) from the global
//! allocator whenever glommio's small registered arena is full. glibc's dynamic
//! thresholds then hand several such buffers back to the kernel when they are
//! freed together (a heap top above twice the largest freed block is trimmed),
//! and the next read faults in, zero-fills and memcg-charges fresh pages inside
//! io_uring's submission (it pins the buffer), then unmaps them on free. A
//! profile of a catch-up with 8 MiB fetches put a quarter of the broker's
//! samples there (docs/benchmarks.md, "Catch-up reads: CPU per GB").
//!
//! Invariant: the memory the process keeps is bounded by its own peak, and that
//! peak by the per-shard read-ahead budget and the per-request bounds; nothing
//! here raises what may be allocated. glibc only (`target_env = "gnu"`); other
//! C libraries keep their own policy.

/// Allocations of at least this size are mmapped (and unmapped on free): the
/// largest value glibc accepts on 64-bit, above any read buffer a fetch makes.
pub const MMAP_THRESHOLD_BYTES: usize = 32 << 20;
/// A heap trims its free top only above this. Shard threads allocate from
/// their own arenas, whose heaps are at most 64 MiB: above that, they keep
/// their freed buffers; the main arena keeps up to this much free.
pub const TRIM_THRESHOLD_BYTES: usize = 128 << 20;

/// Fix glibc's mmap and trim thresholds (turning off their dynamic
/// adjustment). Returns false if glibc refused a value.
pub fn keep_freed_buffers() -> bool {
    #[cfg(target_env = "gnu")]
    {
        // SAFETY: mallopt only sets allocator parameters; called before the
        // shard threads start, though glibc locks its parameters anyway.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES as libc::c_int) == 1
                && libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES as libc::c_int) == 1
        }
    }
    #[cfg(not(target_env = "gnu"))]
    {
        true
    }
}
