//! Reading one frame body off a connection without zero-filling its buffer first.
//!
//! Owned by the connection's shard (called from its reader loop only). On plain TCP
//! the body is received with `recv(2)` straight into the buffer's unfilled capacity:
//! the kernel's copy is the only write to those bytes, where `BytesMut::resize` used
//! to memset every frame before the socket overwrote it (15-16% of a produce profile,
//! docs/benchmarks.md "Where the CPU and the time go"). Only when the socket has
//! nothing ready does a read go through the stream, into a small zeroed piece, so the
//! stream's own readiness wait is reused. TLS (and anything else without a raw socket)
//! reads through the stream, zero-filling as before.
//! Invariant: the buffer's length only ever covers bytes the kernel or the stream
//! wrote; a frame never grows past the size its prefix announced.

use std::os::fd::RawFd;

use bytes::BytesMut;
use futures_lite::{AsyncRead, AsyncReadExt};

use crate::limits::FRAME_READ_CHUNK_BYTES;

/// At most this much is zero-filled per wait for the socket to become readable: the
/// stream's read needs initialized memory, and one wait is worth one small memset.
const WAIT_PIECE_BYTES: usize = 4096;

/// How a connection's frame bodies reach their buffers.
#[derive(Clone, Copy, Debug)]
pub enum BodyRead {
    /// A plain TCP socket, read with `recv(2)` into unfilled capacity. The stream
    /// must not buffer received bytes itself (glommio's unbuffered `TcpStream`
    /// does not), or bytes would be read out of order.
    Direct(RawFd),
    /// Through the stream (TLS decrypts into the buffer).
    Stream,
}

/// Read exactly `size` bytes of a frame body. The buffer grows with what arrives
/// (`FRAME_READ_CHUNK_BYTES` at a time): a client announcing 100 MiB and sending a
/// trickle pins only what it sent.
pub async fn read_body<R: AsyncRead + Unpin>(
    reader: &mut R,
    how: BodyRead,
    size: usize,
) -> Result<BytesMut, String> {
    let mut body = BytesMut::with_capacity(size.min(FRAME_READ_CHUNK_BYTES));
    while body.len() < size {
        let want = (size - body.len()).min(FRAME_READ_CHUNK_BYTES);
        let piece = match how {
            BodyRead::Direct(fd) => match recv_into_spare(fd, &mut body, want) {
                Ok(Some(0)) => return Err(truncated(body.len(), size, "connection closed")),
                Ok(Some(_)) => continue,
                Ok(None) => want.min(WAIT_PIECE_BYTES),
                Err(e) => return Err(truncated(body.len(), size, &e.to_string())),
            },
            BodyRead::Stream => want,
        };
        let start = body.len();
        body.resize(start + piece, 0);
        let read = reader
            .read(&mut body[start..])
            .await
            .map_err(|e| truncated(start, size, &e.to_string()))?;
        body.truncate(start + read);
        if read == 0 {
            return Err(truncated(start, size, "connection closed"));
        }
    }
    Ok(body)
}

fn truncated(have: usize, size: usize, why: &str) -> String {
    format!("truncated frame ({have} of {size} bytes): {why}")
}

/// One non-blocking `recv` of at most `want` bytes appended to `body`.
/// `Ok(None)`: nothing ready now.
fn recv_into_spare(fd: RawFd, body: &mut BytesMut, want: usize) -> std::io::Result<Option<usize>> {
    body.reserve(want);
    let spare = body.spare_capacity_mut();
    let len = want.min(spare.len());
    loop {
        // SAFETY: `spare` is memory `body` owns and does not yet count as initialized;
        // `recv` writes at most `len` bytes into it and reads none of it.
        let got = unsafe { libc::recv(fd, spare.as_mut_ptr().cast(), len, libc::MSG_DONTWAIT) };
        if got >= 0 {
            let got = got as usize;
            // SAFETY: the kernel initialized the first `got` (<= len) bytes of the
            // spare capacity just above.
            unsafe { body.set_len(body.len() + got) };
            return Ok(Some(got));
        }
        let error = std::io::Error::last_os_error();
        match error.kind() {
            std::io::ErrorKind::WouldBlock => return Ok(None),
            std::io::ErrorKind::Interrupted => continue,
            _ => return Err(error),
        }
    }
}
