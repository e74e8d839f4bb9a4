//! Deadlines for anything that runs an executor or a broker under test: a
//! plain thread waits for the guard to drop; if it does not within the limit,
//! the thread prints why, gdb stacks of every thread of this process and of
//! the brokers it watches, kills those brokers, and exits the process with
//! status 124. A hang then fails its test run in minutes, with the evidence,
//! instead of holding CI until its own limit.
//!
//! Used by the test helpers (`log::test_support::run`, the group tests'
//! executor, the integration harness's `Broker`); the loadgen tests keep their own
//! copy (that crate stands alone).

use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// Exit status of a process whose deadline expired (`timeout(1)`'s).
pub const EXPIRED_EXIT_CODE: i32 = 124;

struct Inner {
    what: String,
    limit: Duration,
    state: Mutex<State>,
    done: Condvar,
}

struct State {
    finished: bool,
    children: Vec<u32>,
}

/// Dropping the guard disarms the deadline.
pub struct Deadline {
    inner: Arc<Inner>,
}

/// Arm a deadline of `limit` for `what` (a test name, say).
pub fn arm(what: impl Into<String>, limit: Duration) -> Deadline {
    let inner = Arc::new(Inner {
        what: what.into(),
        limit,
        state: Mutex::new(State {
            finished: false,
            children: Vec::new(),
        }),
        done: Condvar::new(),
    });
    let watcher = inner.clone();
    std::thread::Builder::new()
        .name("weir-deadline".into())
        .spawn(move || watch(&watcher))
        .expect("spawn the deadline thread");
    Deadline { inner }
}

/// The current thread's name: libtest names each test's thread after the test.
pub fn this_test() -> String {
    std::thread::current()
        .name()
        .unwrap_or("unnamed thread")
        .to_string()
}

impl Deadline {
    /// Also dump and kill process `pid` (a broker this test started) on expiry.
    pub fn watch_child(&self, pid: u32) {
        self.inner
            .state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .children
            .push(pid);
    }

    /// `pid` is gone (stopped or killed by the test itself).
    pub fn forget_child(&self, pid: u32) {
        self.inner
            .state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .children
            .retain(|p| *p != pid);
    }
}

impl Drop for Deadline {
    fn drop(&mut self) {
        self.inner
            .state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .finished = true;
        self.inner.done.notify_all();
    }
}

fn watch(inner: &Inner) {
    let state = inner.state.lock().unwrap_or_else(|e| e.into_inner());
    let (state, _) = inner
        .done
        .wait_timeout_while(state, inner.limit, |s| !s.finished)
        .unwrap_or_else(|e| e.into_inner());
    if state.finished {
        return;
    }
    let children = state.children.clone();
    drop(state);
    eprintln!(
        "DEADLINE EXPIRED: {} ran past {} s; stacks of this process and {} watched process(es) follow",
        inner.what,
        inner.limit.as_secs(),
        children.len()
    );
    eprintln!("{}", stacks(std::process::id()));
    for pid in children {
        eprintln!("--- watched process {pid}");
        eprintln!("{}", stacks(pid));
        // SAFETY: kill(2) on a pid this test started; at worst ESRCH.
        unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    }
    std::process::exit(EXPIRED_EXIT_CODE);
}

/// gdb's backtrace of every thread of `pid`, or each thread's kernel wait
/// channel when gdb is missing.
pub fn stacks(pid: u32) -> String {
    let gdb = std::process::Command::new("gdb")
        .args(["-p", &pid.to_string(), "-batch", "-ex", "thread apply all bt 40"])
        .stdin(std::process::Stdio::null())
        .output();
    match gdb {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| l.starts_with("Thread") || l.starts_with('#'))
            .collect::<Vec<_>>()
            .join("\n"),
        _ => {
            let mut out = String::from("(no gdb) threads and kernel wait channels:\n");
            if let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) {
                for t in tasks.flatten() {
                    let read = |f: &str| std::fs::read_to_string(t.path().join(f)).unwrap_or_default();
                    out += &format!(
                        "{} {} wchan={}\n",
                        t.file_name().to_string_lossy(),
                        read("comm").trim(),
                        read("wchan")
                    );
                }
            }
            out
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn given_a_guard_dropped_in_time_when_the_limit_passes_should_not_fire() {
        let guard = super::arm(super::this_test(), std::time::Duration::from_millis(200));
        drop(guard);
        std::thread::sleep(std::time::Duration::from_millis(400));
        // Still here: the process did not exit.
    }
}
