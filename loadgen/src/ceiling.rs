//! The loopback TCP ceiling: 64 KiB writes through a loopback socket to a
//! reader thread, for a few seconds. The baseline the generator is judged by
//! (it must reach a stated fraction of this against the null broker).
//! Plain std threads; runs alone, never alongside shards.

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

/// The write size the requirement names: one typical batch.
pub const WRITE_BYTES: usize = 64 << 10;

/// Bytes per second (10^6 B = 1 MB) moved over loopback in `duration`.
pub fn tcp_ceiling(duration: Duration) -> io::Result<f64> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let reader = std::thread::spawn(move || -> io::Result<u64> {
        let (mut s, _) = listener.accept()?;
        let mut buf = vec![0u8; 256 << 10];
        let mut total = 0u64;
        loop {
            let n = s.read(&mut buf)?;
            if n == 0 {
                return Ok(total);
            }
            total += n as u64;
        }
    });
    let mut out = TcpStream::connect(addr)?;
    out.set_nodelay(true)?;
    let chunk = vec![0x5Au8; WRITE_BYTES];
    let started = Instant::now();
    let mut written = 0u64;
    while started.elapsed() < duration {
        out.write_all(&chunk)?;
        written += chunk.len() as u64;
    }
    out.shutdown(std::net::Shutdown::Write)?;
    let read = reader
        .join()
        .map_err(|_| io::Error::other("reader thread panicked"))??;
    let elapsed = started.elapsed().as_secs_f64();
    assert_eq!(read, written, "loopback lost bytes");
    Ok(read as f64 / elapsed)
}
