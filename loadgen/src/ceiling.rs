//! The machine's own limits, measured without a broker, that the targets table judges
//! Weir by: the loopback TCP ceiling (64 KiB writes through a loopback socket to a
//! reader thread; the generator must reach a stated fraction of it against the null
//! broker), `sync-write` (a raw pwrite + fdatasync loop, acks=all's ceiling) and
//! `read-send` (O_DIRECT reads sent over loopback, the catch-up row's CPU floor).
//! Plain std threads and blocking I/O; each runs alone, never alongside shards.

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use crate::machine::thread_cpu_seconds;

/// The write size the requirement names: one typical batch.
pub const WRITE_BYTES: usize = 64 << 10;

/// Read `s` to its end, discarding the bytes; how many there were.
fn drain(mut s: TcpStream) -> io::Result<u64> {
    let mut buf = vec![0u8; 256 << 10];
    let mut total = 0u64;
    loop {
        let n = s.read(&mut buf)?;
        if n == 0 {
            return Ok(total);
        }
        total += n as u64;
    }
}

/// Bytes per second (10^6 B = 1 MB) moved over loopback in `duration`.
pub fn tcp_ceiling(duration: Duration) -> io::Result<f64> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let reader = std::thread::spawn(move || -> io::Result<u64> { drain(listener.accept()?.0) });
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

/// O_DIRECT's alignment of buffers, sizes and offsets on this machine class.
const ALIGN: usize = 4096;

/// An O_DIRECT buffer: `len` bytes (a positive multiple of `ALIGN`) at an aligned
/// address inside an over-allocated vector.
struct AlignedBuf {
    raw: Vec<u8>,
    skip: usize,
    len: usize,
}

impl AlignedBuf {
    /// `flag` names the option `len` came from, for the refusal.
    fn new(len: usize, fill: u8, flag: &str) -> io::Result<Self> {
        if len == 0 || !len.is_multiple_of(ALIGN) {
            return Err(io::Error::other(format!(
                "{flag} must be a positive multiple of {ALIGN}"
            )));
        }
        let raw = vec![fill; len + ALIGN];
        let skip = raw.as_ptr().align_offset(ALIGN);
        Ok(Self { raw, skip, len })
    }

    fn as_slice(&self) -> &[u8] {
        &self.raw[self.skip..self.skip + self.len]
    }

    fn as_mut_slice(&mut self) -> &mut [u8] {
        &mut self.raw[self.skip..self.skip + self.len]
    }
}

/// `sync-write`: the synced-write ceiling a broker's acks=all path is judged by.
#[derive(clap::Args, Debug, Clone)]
pub struct SyncWriteArgs {
    /// The file to write (created, truncated, removed afterwards); put it on the
    /// broker's disk.
    #[arg(long)]
    pub file: std::path::PathBuf,
    /// Bytes per pwrite, each followed by one fdatasync (a multiple of 4096).
    #[arg(long, default_value_t = 65536)]
    pub block_bytes: usize,
    /// Stop after this many bytes...
    #[arg(long, default_value_t = 1 << 30)]
    pub bytes: u64,
    /// ...or after this long, whichever comes first.
    #[arg(long, value_parser = crate::cli::parse_duration, default_value = "5s")]
    pub duration: Duration,
    /// Buffered writes instead of O_DIRECT (Weir's log uses O_DIRECT).
    #[arg(long)]
    pub buffered: bool,
}

/// What one `sync-write` loop measured.
pub struct SyncWrite {
    pub bytes_per_s: f64,
    pub syncs: u64,
    pub sync_p50_us: u64,
    pub sync_p99_us: u64,
}

/// A raw `pwrite` + `fdatasync` loop of `block_bytes` to a new file: the most
/// an acks=all producer waiting for each batch's sync could get from this disk.
/// Blocking std I/O on the calling thread (a command of its own, no executor).
pub fn sync_write(args: &SyncWriteArgs) -> io::Result<SyncWrite> {
    use std::os::unix::fs::{FileExt, OpenOptionsExt};
    let block = AlignedBuf::new(args.block_bytes, 0x5A, "--block-bytes")?;
    let block = block.as_slice();
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    if !args.buffered {
        opts.custom_flags(libc::O_DIRECT);
    }
    let file = opts.open(&args.file)?;
    let mut syncs = Vec::new();
    let started = Instant::now();
    let mut written = 0u64;
    while written < args.bytes && started.elapsed() < args.duration {
        file.write_all_at(block, written)?;
        let t = Instant::now();
        file.sync_data()?;
        syncs.push(t.elapsed().as_micros() as u64);
        written += block.len() as u64;
    }
    let elapsed = started.elapsed().as_secs_f64();
    drop(file);
    std::fs::remove_file(&args.file)?;
    syncs.sort_unstable();
    let at = |q: f64| {
        syncs
            .get(((syncs.len() as f64 - 1.0) * q) as usize)
            .copied()
            .unwrap_or(0)
    };
    Ok(SyncWrite {
        bytes_per_s: written as f64 / elapsed,
        syncs: syncs.len() as u64,
        sync_p50_us: at(0.5),
        sync_p99_us: at(0.99),
    })
}

/// `read-send`: the least CPU a broker can spend per GB serving a catch-up read from
/// disk. It does only what any broker must: O_DIRECT reads of `chunk_bytes` from the
/// file, each buffer written to a loopback TCP socket; no framing, no checks. A second
/// thread plays the consumer and discards the bytes; its CPU is not counted.
#[derive(clap::Args, Debug, Clone)]
pub struct ReadSendArgs {
    /// The file to read (drop the page cache first: O_DIRECT reads bypass it anyway).
    #[arg(long)]
    pub file: std::path::PathBuf,
    /// Bytes per read (a multiple of 4096).
    #[arg(long, default_value_t = 1 << 20)]
    pub chunk_bytes: usize,
}

/// What one `read-send` pass measured.
pub struct ReadSend {
    pub bytes: u64,
    pub bytes_per_s: f64,
    /// The sending thread's user + system CPU seconds per 10^9 bytes.
    pub cpu_s_per_gb: f64,
}

/// Read the whole file and send it over loopback, one blocking read at a time (no
/// read-ahead: the MB/s is below the disk's; the CPU per GB is the floor).
pub fn read_send(args: &ReadSendArgs) -> io::Result<ReadSend> {
    use std::os::unix::fs::{FileExt, OpenOptionsExt};
    let mut buf = AlignedBuf::new(args.chunk_bytes, 0, "--chunk-bytes")?;
    let buf = buf.as_mut_slice();
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECT)
        .open(&args.file)?;
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let consumer = std::thread::spawn(move || drain(TcpStream::connect(addr)?));
    let (mut out, _) = listener.accept()?;
    let (cpu0, started) = (thread_cpu_seconds(), Instant::now());
    let mut offset = 0u64;
    loop {
        let n = file.read_at(buf, offset)?;
        if n == 0 {
            break;
        }
        out.write_all(&buf[..n])?;
        offset += n as u64;
        // A short read is the end of the file (the next offset may not be aligned).
        if n < buf.len() {
            break;
        }
    }
    let (cpu, elapsed) = (thread_cpu_seconds() - cpu0, started.elapsed().as_secs_f64());
    drop(out);
    let read = consumer
        .join()
        .map_err(|_| io::Error::other("consumer thread panicked"))??;
    assert_eq!(read, offset, "loopback lost bytes");
    Ok(ReadSend {
        bytes: offset,
        bytes_per_s: offset as f64 / elapsed,
        cpu_s_per_gb: cpu / (offset.max(1) as f64 / 1e9),
    })
}
