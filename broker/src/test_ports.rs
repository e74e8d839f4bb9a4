//! Port ranges for brokers started by tests, reserved across processes.
//!
//! Brokers bind with SO_REUSEPORT, so a port another test's broker holds does not
//! look taken: two brokers on one port would split each other's connections. A
//! bind probe alone therefore cannot reserve a range. Each reserved port is also
//! an exclusive `flock` on a file named after it in the temp directory, held until
//! this process exits (the kernel drops it then, even after kill -9), so test
//! processes run side by side (cargo-nextest, several checkouts) never share a
//! port. Locks are per open file, so two threads of one process exclude each other
//! too. Used by the integration harnesses (broker and drain tests), never by the
//! broker itself.

use std::fs::File;
use std::net::TcpListener;
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::sync::Mutex;

/// The lock files of every port this process reserved: dropping one would free it.
static HELD: Mutex<Vec<File>> = Mutex::new(Vec::new());

fn lock_dir() -> PathBuf {
    let dir = std::env::temp_dir().join("weir-test-ports");
    std::fs::create_dir_all(&dir).expect("create the port lock directory");
    dir
}

/// An exclusive lock on `port`'s file, or `None` if another process (or another
/// reservation of this one) holds it.
fn lock(dir: &std::path::Path, port: u16) -> Option<File> {
    let file = File::create(dir.join(port.to_string())).ok()?;
    // SAFETY: flock on a descriptor this function owns; no memory is shared.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    (rc == 0).then_some(file)
}

/// Reserve `n` consecutive free ports on 127.0.0.1, between 20,000 and 32,000, for the
/// rest of this process and return the first.
pub fn reserve(n: u16) -> u16 {
    let dir = lock_dir();
    let mut held = HELD.lock().unwrap_or_else(|e| e.into_inner());
    // Below the kernel's ephemeral range (32768 and up by default): a port that an
    // ephemeral bind or an outgoing connection could take while its broker restarts
    // would make the restart fail with EADDRINUSE.
    let mut next = std::process::id().wrapping_mul(2_654_435_761)
        ^ std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
    for _ in 0..500 {
        next = next.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        let base = 20_000 + (next >> 8) as u16 % 12_000;
        let mut locks = Vec::with_capacity(usize::from(n));
        for port in base..base + n {
            match lock(&dir, port) {
                Some(l) if TcpListener::bind(("127.0.0.1", port)).is_ok() => locks.push(l),
                _ => break,
            }
        }
        if locks.len() == usize::from(n) {
            held.extend(locks);
            return base;
        }
    }
    panic!("no free range of {n} ports");
}
