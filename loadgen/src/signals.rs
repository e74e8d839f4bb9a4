//! SIGINT and SIGTERM end a run cleanly: the handler only stores the signal
//! number in an atomic; the main thread polls it (every 200 ms, while it
//! aggregates intervals) and asks the shards to stop, so the hot paths pay
//! nothing beyond the stop flag they already check per batch.
//!
//! The handlers are installed with SA_RESETHAND: a second signal kills the
//! process the default way, for a run that does not stop.

use std::sync::atomic::{AtomicI32, Ordering};

/// 0: no signal yet; otherwise the signal number received first.
static RECEIVED: AtomicI32 = AtomicI32::new(0);

extern "C" fn on_signal(signo: libc::c_int) {
    // Async-signal-safe: one atomic store.
    let _ = RECEIVED.compare_exchange(0, signo, Ordering::SeqCst, Ordering::SeqCst);
}

/// Install the handlers for SIGINT and SIGTERM (idempotent).
pub fn install() -> std::io::Result<()> {
    for signo in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: a zeroed sigaction is a valid value to fill in; the handler
        // only touches an atomic, which is async-signal-safe.
        let rc = unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as usize;
            action.sa_flags = libc::SA_RESETHAND | libc::SA_RESTART;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(signo, &action, std::ptr::null_mut())
        };
        if rc != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// The signal that asked the run to stop, by name, if any came.
pub fn received() -> Option<&'static str> {
    match RECEIVED.load(Ordering::SeqCst) {
        0 => None,
        libc::SIGINT => Some("SIGINT"),
        libc::SIGTERM => Some("SIGTERM"),
        _ => Some("a signal"),
    }
}

/// The exit status of a process ended by the signal (128 + its number), as
/// shells report it.
pub fn exit_status() -> u8 {
    (128 + RECEIVED.load(Ordering::SeqCst)).clamp(0, 255) as u8
}
