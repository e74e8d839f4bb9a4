//! The copy of a producer's batch into a DMA chunk, with non-temporal stores.
//!
//! The appender's copy writes each byte once and never reads it again (the disk reads
//! it by DMA; only the partial last block is read back, for the carry). Ordinary
//! stores first pull every destination line into the cache, then evict it again. On
//! this machine class (AMD EPYC, 2 vCPUs), with glibc 2.36, which uses `rep movsb` for
//! every copy below 240 MiB:
//! - a 64 KiB copy from a hot source into rotating 1 MiB buffers ran at 17-21 GB/s
//!   with `memcpy` and 29-33 GB/s with these stores (a C replica, SSE2 and AVX2 alike);
//! - in the broker (one partition, acks=1, 1 KiB records, 64 KiB batches) the copy
//!   fell from 17.1% to 8.9% of the shard's samples, with glibc's own non-temporal
//!   path forced by `GLIBC_TUNABLES` (docs/benchmarks.md, "The copy into DMA memory").
//!
//! Used by the appender only (any shard); pure memory work, no I/O. SSE2 is part of
//! x86_64, so there is no feature detection; other targets copy normally.

/// Below this the copy is too short for the store kind to matter.
const STREAM_MIN_BYTES: usize = 4096;

/// `dst.copy_from_slice(src)`, with stores that bypass the cache for long copies. The
/// stores are fenced before returning, so the bytes are visible to whatever hands the
/// buffer to the kernel next, as after an ordinary copy.
pub(crate) fn copy(dst: &mut [u8], src: &[u8]) {
    assert_eq!(dst.len(), src.len(), "copy between slices of one length");
    #[cfg(target_arch = "x86_64")]
    if src.len() >= STREAM_MIN_BYTES {
        stream(dst, src);
        return;
    }
    dst.copy_from_slice(src);
}

#[cfg(target_arch = "x86_64")]
fn stream(dst: &mut [u8], src: &[u8]) {
    use std::arch::x86_64::{__m128i, _mm_loadu_si128, _mm_sfence, _mm_stream_si128};
    const LINE: usize = 64;
    let n = src.len();
    // Ordinary stores up to the first cache line boundary of the destination, so every
    // streamed store fills a whole aligned line (write combining sends it as one).
    let head = dst.as_ptr().align_offset(LINE).min(n);
    dst[..head].copy_from_slice(&src[..head]);
    let body = (n - head) / LINE * LINE;
    // SAFETY: `dst[head..head + body]` and `src[head..head + body]` are in bounds (both
    // slices are `n` long and `head + body <= n`); the destination is 64-byte aligned at
    // `head`, so every 16-byte stream store is aligned as `_mm_stream_si128` needs;
    // loads are unaligned; SSE2 is in the x86_64 baseline. The slices cannot overlap
    // (one is `&mut`).
    unsafe {
        let (mut d, mut s) = (dst.as_mut_ptr().add(head), src.as_ptr().add(head));
        let end = d.add(body);
        while d < end {
            let a = _mm_loadu_si128(s.cast::<__m128i>());
            let b = _mm_loadu_si128(s.add(16).cast::<__m128i>());
            let c = _mm_loadu_si128(s.add(32).cast::<__m128i>());
            let e = _mm_loadu_si128(s.add(48).cast::<__m128i>());
            _mm_stream_si128(d.cast::<__m128i>(), a);
            _mm_stream_si128(d.add(16).cast::<__m128i>(), b);
            _mm_stream_si128(d.add(32).cast::<__m128i>(), c);
            _mm_stream_si128(d.add(48).cast::<__m128i>(), e);
            d = d.add(LINE);
            s = s.add(LINE);
        }
        // Non-temporal stores are weakly ordered: order them before later stores (the
        // submission queue entry that hands this buffer to the kernel).
        _mm_sfence();
    }
    dst[head + body..].copy_from_slice(&src[head + body..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_every_alignment_and_length_around_the_threshold_should_copy_exactly() {
        let src: Vec<u8> = (0..3 * STREAM_MIN_BYTES).map(|i| (i * 31 % 251) as u8).collect();
        let mut dst = vec![0u8; 3 * STREAM_MIN_BYTES + 128];
        for at in [0usize, 1, 15, 16, 63, 64, 65, 100] {
            for len in [
                0usize,
                1,
                63,
                64,
                65,
                STREAM_MIN_BYTES - 1,
                STREAM_MIN_BYTES,
                STREAM_MIN_BYTES + 1,
                2 * STREAM_MIN_BYTES + 37,
            ] {
                let from = (at * 7) % 50;
                dst.fill(0xAA);
                copy(&mut dst[at..at + len], &src[from..from + len]);
                assert_eq!(&dst[at..at + len], &src[from..from + len], "at {at} len {len}");
                assert!(dst[..at].iter().all(|&b| b == 0xAA), "before, at {at} len {len}");
                assert!(
                    dst[at + len..].iter().all(|&b| b == 0xAA),
                    "after, at {at} len {len}"
                );
            }
        }
    }
}
