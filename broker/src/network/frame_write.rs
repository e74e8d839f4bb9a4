//! Writing one answer's parts to a connection in as few system calls as the socket
//! takes them.
//!
//! Owned by the connection's writer task (`connection.rs`). An answer is a list of
//! `Bytes` (a header, then the record batches as the log holds them, never copied
//! together). Written part by part, each part cost a `send(2)`, and on loopback each
//! send also runs the receiver's side of TCP: at eight partitions, 287,391 sends for
//! 143,674 answers, with `__send` 22% of the broker's samples (docs/benchmarks.md,
//! "Gathered answers"). On plain TCP the parts now go out together with one
//! non-blocking `sendmsg(2)` (an iovec per part); only when the socket's buffer is full
//! does one write go through the stream, to reuse its wait for room. TLS writes part
//! by part through the stream, which frames and encrypts them itself.
//! Invariant: bytes leave in order and exactly once: the stream is unbuffered (glommio's
//! `TcpStream`), so a write through it never leaves bytes behind that a later
//! `sendmsg` could overtake.

use std::os::fd::RawFd;

use bytes::Bytes;
use futures_lite::{AsyncWrite, AsyncWriteExt};

use super::frame_read::BodyRead;

/// Parts per `sendmsg`: Linux takes at most 1,024 (`UIO_MAXIOV`); a fetch answer of
/// more batches is sent in several calls.
const PARTS_PER_CALL_MAX: usize = 1024;

/// The writer task's iovec array, reused for every answer: no allocation per answer
/// once it has grown to the largest answer's part count.
#[derive(Default)]
pub struct Gather {
    iov: Vec<libc::iovec>,
}

/// Write all of `parts`, in order.
pub async fn write_parts<W: AsyncWrite + Unpin>(
    writer: &mut W,
    how: BodyRead,
    parts: &[Bytes],
    gather: &mut Gather,
) -> std::io::Result<()> {
    let BodyRead::Direct(fd) = how else {
        for part in parts {
            writer.write_all(part).await?;
        }
        return Ok(());
    };
    // The first part not wholly sent, and how much of it was.
    let (mut at, mut sent_of_part) = (0usize, 0usize);
    loop {
        while at < parts.len() && sent_of_part == parts[at].len() {
            at += 1;
            sent_of_part = 0;
        }
        if at == parts.len() {
            return Ok(());
        }
        let sent = match gather.send(fd, &parts[at..], sent_of_part)? {
            Some(sent) => sent,
            // The socket's buffer is full: one write through the stream waits for room.
            None => match writer.write(&parts[at][sent_of_part..]).await? {
                0 => return Err(std::io::ErrorKind::WriteZero.into()),
                n => n,
            },
        };
        advance(parts, &mut at, &mut sent_of_part, sent);
    }
}

/// Move the cursor (`at`, `sent_of_part`) past `sent` more bytes.
fn advance(parts: &[Bytes], at: &mut usize, sent_of_part: &mut usize, mut sent: usize) {
    while sent > 0 {
        let left = parts[*at].len() - *sent_of_part;
        if sent < left {
            *sent_of_part += sent;
            return;
        }
        sent -= left;
        *at += 1;
        *sent_of_part = 0;
    }
}

impl Gather {
    /// One non-blocking `sendmsg` of `parts` (the first from `skip` on).
    /// `Ok(None)`: the socket takes nothing now.
    fn send(&mut self, fd: RawFd, parts: &[Bytes], skip: usize) -> std::io::Result<Option<usize>> {
        self.iov.clear();
        for (i, part) in parts.iter().take(PARTS_PER_CALL_MAX).enumerate() {
            let bytes = if i == 0 { &part[skip..] } else { &part[..] };
            if !bytes.is_empty() {
                self.iov.push(libc::iovec {
                    iov_base: bytes.as_ptr().cast_mut().cast(),
                    iov_len: bytes.len(),
                });
            }
        }
        // SAFETY: a zeroed msghdr is valid (no address, no control data).
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = self.iov.as_mut_ptr();
        msg.msg_iovlen = self.iov.len();
        loop {
            // SAFETY: every iovec points into a `Bytes` of `parts`, alive and unchanged
            // for the call; `sendmsg` only reads them. The pointers are not used again
            // after this call (the next one rebuilds the array).
            let sent = unsafe { libc::sendmsg(fd, &msg, libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL) };
            if sent >= 0 {
                return Ok(Some(sent as usize));
            }
            let error = std::io::Error::last_os_error();
            match error.kind() {
                std::io::ErrorKind::WouldBlock => return Ok(None),
                std::io::ErrorKind::Interrupted => continue,
                _ => return Err(error),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;
    use std::os::fd::AsRawFd;

    use bytes::Bytes;
    use glommio::net::TcpStream;

    use super::{write_parts, Gather, PARTS_PER_CALL_MAX};
    use crate::network::frame_read::BodyRead;

    /// Empty parts, more parts than one call takes, and a part larger than the socket
    /// buffer (so the stream's wait for room runs) arrive whole and in order, for the
    /// gathered path and the part-by-part one.
    #[test]
    fn given_many_parts_and_a_full_socket_when_writing_should_deliver_every_byte_in_order() {
        for direct in [true, false] {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            let addr = listener.local_addr().expect("addr");
            let mut parts = vec![Bytes::new()];
            for i in 0..PARTS_PER_CALL_MAX + 300 {
                parts.push(Bytes::from(vec![(i % 251) as u8; 1 + i % 97]));
                if i % 200 == 0 {
                    parts.push(Bytes::new());
                }
            }
            parts.push(Bytes::from(
                (0..16 * 1024 * 1024).map(|i| (i % 253) as u8).collect::<Vec<_>>(),
            ));
            parts.push(Bytes::from_static(b"end"));
            let expected: Vec<u8> = parts.iter().flat_map(|p| p.iter().copied()).collect();
            let total = expected.len();
            // The reader starts late and reads slowly, so the socket's buffer fills.
            let reader = std::thread::spawn(move || {
                let (mut socket, _) = listener.accept().expect("accept");
                std::thread::sleep(std::time::Duration::from_millis(100));
                let mut got = Vec::with_capacity(total);
                let mut buf = vec![0u8; 64 * 1024];
                while got.len() < total {
                    let n = socket.read(&mut buf).expect("read");
                    assert!(n > 0, "closed early");
                    got.extend_from_slice(&buf[..n]);
                }
                got
            });
            crate::log::test_support::run(async move {
                let mut stream = TcpStream::connect(addr).await.expect("connect");
                let how = if direct {
                    BodyRead::Direct(stream.as_raw_fd())
                } else {
                    BodyRead::Stream
                };
                let mut gather = Gather::default();
                write_parts(&mut stream, how, &parts, &mut gather)
                    .await
                    .expect("write");
            });
            let got = reader.join().expect("reader");
            assert!(got == expected, "bytes differ (direct: {direct})");
        }
    }
}
