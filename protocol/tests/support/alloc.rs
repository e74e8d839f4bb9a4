//! A counting global allocator for test binaries: per-thread live bytes and
//! their peak, so a test can measure what one call allocates while other tests
//! run on other threads. Include with `mod support { pub mod alloc; }`; the fuzz
//! targets (fuzz/src/lib.rs) include this same file by path.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

thread_local! {
    static CURRENT_BYTES: Cell<usize> = const { Cell::new(0) };
    static PEAK_BYTES: Cell<usize> = const { Cell::new(0) };
    static ALLOCATION_COUNT: Cell<usize> = const { Cell::new(0) };
}

/// Counts this thread's live heap bytes and their peak; tests run on several
/// threads, so the counters are per thread (const-initialised, no destructor,
/// hence safe to touch from inside the allocator).
struct CountingAllocator;

unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        grow(layout.size());
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        shrink(layout.size());
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        grow(layout.size());
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        grow(new_size);
        shrink(layout.size());
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

fn grow(bytes: usize) {
    let _ = ALLOCATION_COUNT.try_with(|n| n.set(n.get() + 1));
    let _ = CURRENT_BYTES.try_with(|c| {
        let now = c.get() + bytes;
        c.set(now);
        let _ = PEAK_BYTES.try_with(|p| p.set(p.get().max(now)));
    });
}

fn shrink(bytes: usize) {
    let _ = CURRENT_BYTES.try_with(|c| c.set(c.get().saturating_sub(bytes)));
}

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

/// Run `f` and return the peak heap growth it caused on this thread.
pub fn peak_growth_bytes(f: impl FnOnce()) -> usize {
    let base = CURRENT_BYTES.with(Cell::get);
    PEAK_BYTES.with(|p| p.set(base));
    f();
    PEAK_BYTES.with(Cell::get) - base
}

/// Run `f` and return how many allocations (and reallocations) it made on
/// this thread, freed or not.
pub fn allocation_count(f: impl FnOnce()) -> usize {
    let before = ALLOCATION_COUNT.with(Cell::get);
    f();
    ALLOCATION_COUNT.with(Cell::get) - before
}
