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

/// Reserve `n` consecutive free ports on 127.0.0.1 for the rest of this process
/// and return the first.
pub fn reserve(n: u16) -> u16 {
    let dir = lock_dir();
    let mut held = HELD.lock().unwrap_or_else(|e| e.into_inner());
    for _ in 0..500 {
        let base = TcpListener::bind("127.0.0.1:0")
            .expect("bind an ephemeral port")
            .local_addr()
            .expect("its address")
            .port();
        if base > 65000 {
            continue;
        }
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
