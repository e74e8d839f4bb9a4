//! The C allocator's thresholds, set once at start-up before any shard runs:
//! freed large buffers stay in the process for the next read instead of going
//! back to the kernel.
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

#[cfg(all(test, target_env = "gnu"))]
mod tests {
    use std::alloc::{alloc, dealloc, Layout};

    use super::keep_freed_buffers;

    /// Minor page faults of this thread so far.
    fn minor_faults() -> i64 {
        // SAFETY: getrusage writes the struct it is given.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        assert_eq!(unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut usage) }, 0);
        usage.ru_minflt
    }

    /// Six 8 MiB, 4 KiB aligned buffers, as six partitions' read buffers:
    /// allocated, every page written, then all freed; the faults it took.
    fn round() -> i64 {
        const BYTES: usize = 8 << 20;
        let layout = Layout::from_size_align(BYTES, 4096).expect("layout");
        let before = minor_faults();
        let buffers: Vec<*mut u8> = (0..6)
            .map(|_| {
                // SAFETY: a non-zero size; freed below with the same layout.
                let p = unsafe { alloc(layout) };
                assert!(!p.is_null());
                for page in (0..BYTES).step_by(4096) {
                    // SAFETY: inside the allocation.
                    unsafe { p.add(page).write_volatile(1) };
                }
                p
            })
            .collect();
        let faults = minor_faults() - before;
        for p in buffers {
            // SAFETY: allocated above with this layout.
            unsafe { dealloc(p, layout) };
        }
        faults
    }

    #[test]
    fn given_the_tuning_when_large_buffers_are_freed_and_allocated_again_should_not_fault_them_in_again() {
        assert!(keep_freed_buffers());
        let first = round();
        let (second, third) = (round(), round());
        let pages = 6 * (8 << 20) / 4096;
        assert!(first > 0, "the first round faults its pages in ({first})");
        // Other tests share the process: allow some noise, not a re-fault of it all.
        assert!(
            second + third < pages / 4,
            "freed buffers went back to the kernel: {second} and {third} faults for {pages} pages"
        );
    }
}
