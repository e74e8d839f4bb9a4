// Unless explicitly stated otherwise all files in this repository are licensed
// under the MIT/Apache-2.0 License, at your convenience
//
// This product includes software developed at Datadog (https://www.datadoghq.com/). Copyright 2020 Datadog, Inc.
//
// Buffers that are friendly to be used with O_DIRECT files.
// For the time being they are really only properly aligned,
// but in the near future they can be coming from memory-areas
// that are pre-registered for I/O uring.

use std::ptr;

use crate::sys::uring::UringBuffer;
use alloc::alloc::Layout;

#[derive(Debug)]
pub(crate) struct SysAlloc {
    data: ptr::NonNull<u8>,
    layout: Layout,
}

// Weir patch: a bounded per-thread cache of freed large buffers.
//
// A Direct-I/O read larger than the registered arena allocates its buffer from the
// global allocator and frees it when the caller drops the data; glibc hands such
// blocks back to the kernel, so the next read faults in, zero-fills and
// memcg-charges fresh pages inside io_uring's submission. Keeping a few freed
// blocks per thread, reused by size class, avoids that without changing the C
// allocator's policy for everything else. Off (0 bytes) unless the application
// sets a bound with `set_dma_buffer_cache`.
static CACHE_BYTES_MAX: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
static CACHE_BLOCK_MIN: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(usize::MAX);
/// Below this, blocks are not size-classed (the allocator's heap reuses small
/// blocks itself: glibc's default mmap threshold is 128 KiB).
const CLASS_MIN_BYTES: usize = 128 << 10;

/// Up to `total_bytes` of freed DMA buffers of at least `min_block_bytes` stay
/// cached on each thread for reuse (`total_bytes` 0 turns the cache off; blocks
/// beyond the bound are freed as they return).
pub fn set_dma_buffer_cache(min_block_bytes: usize, total_bytes: usize) {
    CACHE_BLOCK_MIN.store(min_block_bytes, std::sync::atomic::Ordering::Relaxed);
    CACHE_BYTES_MAX.store(total_bytes, std::sync::atomic::Ordering::Relaxed);
}

/// Bytes of freed buffers the calling thread keeps now.
pub fn dma_buffer_cache_bytes() -> usize {
    FREE_BLOCKS.try_with(|f| f.borrow().bytes).unwrap_or(0)
}

/// The allocation size of a buffer of `size` bytes: rounded up to 64 KiB below
/// 1 MiB and to 1 MiB above, so reads of slightly different sizes share blocks.
fn size_class(size: usize) -> usize {
    if size < CLASS_MIN_BYTES {
        size
    } else if size < 1 << 20 {
        size.next_multiple_of(64 << 10)
    } else {
        size.next_multiple_of(1 << 20)
    }
}

#[derive(Default)]
struct FreeBlocks {
    blocks: Vec<(ptr::NonNull<u8>, Layout)>,
    bytes: usize,
}

impl FreeBlocks {
    fn take(&mut self, layout: Layout) -> Option<ptr::NonNull<u8>> {
        let i = self.blocks.iter().rposition(|(_, l)| *l == layout)?;
        let (data, _) = self.blocks.swap_remove(i);
        self.bytes -= layout.size();
        Some(data)
    }

    /// Keeps the block if it fits the bound; otherwise hands it back.
    fn put(&mut self, data: ptr::NonNull<u8>, layout: Layout) -> Option<ptr::NonNull<u8>> {
        let max = CACHE_BYTES_MAX.load(std::sync::atomic::Ordering::Relaxed);
        let min = CACHE_BLOCK_MIN.load(std::sync::atomic::Ordering::Relaxed);
        if layout.size() < min || self.bytes + layout.size() > max {
            return Some(data);
        }
        self.bytes += layout.size();
        self.blocks.push((data, layout));
        None
    }
}

impl Drop for FreeBlocks {
    fn drop(&mut self) {
        for (data, layout) in self.blocks.drain(..) {
            unsafe { alloc::alloc::dealloc(data.as_ptr(), layout) };
        }
    }
}

thread_local! {
    static FREE_BLOCKS: std::cell::RefCell<FreeBlocks> = std::cell::RefCell::default();
}

impl SysAlloc {
    fn new(size: usize) -> Option<Self> {
        if size == 0 {
            None
        } else {
            let layout = Layout::from_size_align(size_class(size), 4096).unwrap();
            let cached = FREE_BLOCKS
                .try_with(|f| f.borrow_mut().take(layout))
                .ok()
                .flatten();
            let data = match cached {
                Some(data) => data,
                None => ptr::NonNull::new(unsafe { alloc::alloc::alloc(layout) })?,
            };
            Some(SysAlloc { data, layout })
        }
    }

    fn as_ptr(&self) -> *const u8 {
        self.data.as_ptr()
    }

    fn as_mut_ptr(&mut self) -> *mut u8 {
        self.data.as_ptr()
    }
}

impl Drop for SysAlloc {
    fn drop(&mut self) {
        let (data, layout) = (self.data, self.layout);
        // During thread exit the cache may be gone: free the block directly.
        let rest = FREE_BLOCKS
            .try_with(|f| f.borrow_mut().put(data, layout))
            .unwrap_or(Some(data));
        if let Some(data) = rest {
            unsafe {
                alloc::alloc::dealloc(data.as_ptr(), layout);
            }
        }
    }
}

#[derive(Debug)]
pub(crate) enum BufferStorage {
    Sys(SysAlloc),
    Uring(UringBuffer),
    EventFd(*mut u8),
}

impl BufferStorage {
    fn as_ptr(&self) -> *const u8 {
        match self {
            BufferStorage::Sys(x) => x.as_ptr(),
            BufferStorage::Uring(x) => x.as_ptr(),
            BufferStorage::EventFd(x) => *x as *const u8,
        }
    }

    fn as_mut_ptr(&mut self) -> *mut u8 {
        match self {
            BufferStorage::Sys(x) => x.as_mut_ptr(),
            BufferStorage::Uring(x) => x.as_mut_ptr(),
            BufferStorage::EventFd(x) => *x,
        }
    }
}

#[derive(Debug)]
/// A buffer suitable for Direct I/O over io_uring
///
/// Direct I/O has strict requirements about alignment. On top of that, io_uring
/// places additional restrictions on memory placement if we are to use advanced
/// features like registered buffers.
///
/// The `DmaBuffer` is a buffer that adheres to those properties making it
/// suitable for io_uring's Direct I/O.
pub struct DmaBuffer {
    storage: BufferStorage,
    // Invariant: trim + size are at most one byte past the original allocation.
    trim: usize,
    size: usize,
}

impl DmaBuffer {
    pub(crate) fn new(size: usize) -> Option<DmaBuffer> {
        Some(DmaBuffer {
            storage: BufferStorage::Sys(SysAlloc::new(size)?),
            size,
            trim: 0,
        })
    }

    pub(crate) fn with_storage(size: usize, storage: BufferStorage) -> DmaBuffer {
        DmaBuffer {
            storage,
            size,
            trim: 0,
        }
    }

    pub(crate) fn uring_buffer_id(&self) -> Option<u32> {
        match &self.storage {
            BufferStorage::Uring(x) => x.uring_buffer_id(),
            _ => None,
        }
    }

    /// Reduce the length of this buffer to be `newsize`. This value must be <= the current
    /// [`len`](#method.len) and is a destructive operation (length cannot be increased).
    /// NOTE: When using this with DmaFile, you have to make sure that `newsize` is properly
    /// aligned or the write will fail due to O_DIRECT requirements.
    pub fn trim_to_size(&mut self, newsize: usize) {
        assert!(newsize <= self.size);
        self.size = newsize;
    }

    /// Returns a representation of the current addressable contents of this
    /// `DmaBuffer` as a byte slice
    pub fn as_bytes(&self) -> &[u8] {
        unsafe { std::slice::from_raw_parts(self.as_ptr(), self.size) }
    }

    /// Returns a representation of the current addressable contents of this
    /// `DmaBuffer` as a mutable byte slice
    pub fn as_bytes_mut(&mut self) -> &mut [u8] {
        unsafe { std::slice::from_raw_parts_mut(self.as_mut_ptr(), self.size) }
    }

    /// Returns the current number of bytes present in the addressable contents
    /// of this `DmaBuffer`
    pub fn len(&self) -> usize {
        self.size
    }

    /// Indicates whether this buffer is empty. An empty buffer can be,
    /// for instance, the result of a read past the end of a file.
    pub fn is_empty(&self) -> bool {
        self.size == 0
    }

    /// Returns a representation of the current addressable contents of this
    /// `DmaBuffer` as mutable pointer
    pub fn as_mut_ptr(&mut self) -> *mut u8 {
        unsafe { self.storage.as_mut_ptr().add(self.trim) }
    }

    /// Returns a representation of the current addressable contents of this
    /// `DmaBuffer` as pointer
    pub fn as_ptr(&self) -> *const u8 {
        unsafe { self.storage.as_ptr().add(self.trim) }
    }
}

impl AsRef<[u8]> for DmaBuffer {
    #[inline(always)]
    fn as_ref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl AsMut<[u8]> for DmaBuffer {
    #[inline(always)]
    fn as_mut(&mut self) -> &mut [u8] {
        self.as_bytes_mut()
    }
}
