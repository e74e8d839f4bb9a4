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

    const BYTES: usize = (8 << 20) + 8192;
    const PAGES: i64 = (8 << 20) / 4096;
    const LIVE: usize = 8;
    const ROUNDS: usize = 200;
    const WARM_UP: usize = 50;

    /// A shard's read buffers: 8 MiB fetch reads (plus their margin), 4 KiB
    /// aligned, each written in full, `LIVE` alive at a time (answers being
    /// written and reads ahead), the oldest freed as each new one comes. The
    /// faults taken after the warm-up, on a fresh thread (its own arena).
    fn sliding_window_faults() -> i64 {
        std::thread::spawn(|| {
            let layout = Layout::from_size_align(BYTES, 4096).expect("layout");
            let mut live: Vec<*mut u8> = Vec::with_capacity(LIVE);
            let mut before = 0;
            for i in 0..ROUNDS {
                if i == WARM_UP {
                    before = minor_faults();
                }
                if live.len() == LIVE {
                    // SAFETY: allocated below with this layout.
                    unsafe { dealloc(live.remove(0), layout) };
                }
                // SAFETY: a non-zero size; freed above or below with the same layout.
                let p = unsafe { alloc(layout) };
                assert!(!p.is_null());
                for page in (0..BYTES).step_by(4096) {
                    // SAFETY: inside the allocation.
                    unsafe { p.add(page).write_volatile(1) };
                }
                live.push(p);
            }
            let faults = minor_faults() - before;
            for p in live {
                // SAFETY: allocated above with this layout.
                unsafe { dealloc(p, layout) };
            }
            faults
        })
        .join()
        .expect("thread")
    }

    #[test]
    fn given_the_tuning_when_read_buffers_come_and_go_should_fault_in_far_fewer_pages() {
        assert!(keep_freed_buffers());
        let faults = sliding_window_faults();
        // glibc's defaults fault in every page of every buffer (307,350 of 307,200
        // in a C replica); tuned, freed buffers are often reused (about 115,000
        // here, 41,000 in the C replica): glibc still returns some, not all.
        let every_page = (ROUNDS - WARM_UP) as i64 * PAGES;
        assert!(
            faults < every_page * 6 / 10,
            "{faults} faults for {every_page} pages allocated: freed buffers went back to the kernel"
        );
    }
}
