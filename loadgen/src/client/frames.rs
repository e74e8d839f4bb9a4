//! Recycled buffers for large response frames (Fetch answers of a MiB or
//! more), so the read loop can receive straight into initialised memory:
//! reading through a small chunk costs a memmove of every byte, and a fresh
//! zeroed buffer costs a memset of every byte. On the consume ceiling (8
//! consumers, 1 MiB fetches, 2 vCPUs) the memmove was 22% of the generator's
//! CPU and the memset 16%; a recycled buffer costs neither.
//!
//! Owned by one connection's read loop; a buffer comes back when the last
//! `Bytes` slice of its frame is dropped, wherever that is. The pool keeps at
//! most `POOLED_MAX` buffers; beyond that they are freed.

use std::sync::{Arc, Mutex};

use bytes::Bytes;

/// Buffers kept for reuse per connection (a consumer has one fetch in
/// flight per connection, so a few cover pipelining).
const POOLED_MAX: usize = 4;

#[derive(Clone, Default)]
pub(super) struct FramePool {
    free: Arc<Mutex<Vec<Vec<u8>>>>,
}

/// A frame's buffer; returns itself to the pool on drop.
struct Pooled {
    buf: Vec<u8>,
    len: usize,
    pool: Arc<Mutex<Vec<Vec<u8>>>>,
}

impl AsRef<[u8]> for Pooled {
    fn as_ref(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        let buf = std::mem::take(&mut self.buf);
        if let Ok(mut free) = self.pool.lock() {
            if free.len() < POOLED_MAX {
                free.push(buf);
            }
        }
    }
}

impl FramePool {
    /// An initialised buffer of at least `len` bytes (contents arbitrary).
    pub(super) fn take(&self, len: usize) -> Vec<u8> {
        let reused = self.free.lock().ok().and_then(|mut free| {
            let i = free.iter().position(|b| b.len() >= len)?;
            Some(free.swap_remove(i))
        });
        // Round up so frames of slightly different sizes share buffers.
        reused.unwrap_or_else(|| vec![0u8; len.next_power_of_two()])
    }

    /// The first `len` bytes of `buf` as `Bytes`; `buf` returns on the last drop.
    pub(super) fn freeze(&self, buf: Vec<u8>, len: usize) -> Bytes {
        debug_assert!(len <= buf.len());
        Bytes::from_owner(Pooled {
            buf,
            len,
            pool: self.free.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_a_dropped_frame_when_taking_again_should_reuse_its_buffer() {
        let pool = FramePool::default();
        let mut buf = pool.take(100_000);
        buf[..3].copy_from_slice(b"abc");
        let ptr = buf.as_ptr();
        let frame = pool.freeze(buf, 3);
        assert_eq!(&frame[..], b"abc");
        let slice = frame.slice(1..);
        drop(frame);
        assert!(pool.free.lock().unwrap().is_empty(), "a slice still holds it");
        drop(slice);
        let again = pool.take(70_000);
        assert_eq!(again.as_ptr(), ptr);
        assert!(pool.take(200_000).len() >= 200_000);
    }
}
