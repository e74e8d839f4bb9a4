//! Test harness for weir-drain: the real `weir` broker on free ports with a
//! temp data directory (a small copy of broker/tests/common's approach), a
//! real PostgreSQL (`postgres.rs`), the drain binary, and a producer on the
//! project's own client.
#![allow(dead_code, reason = "each test binary uses a different subset")]

pub mod postgres;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use weir_client::blocking::Client;

/// `n` consecutive free ports on 127.0.0.1, reserved for this test process against
/// every other (`weir_broker::test_ports`).
pub fn free_ports(n: u16) -> u16 {
    weir_broker::test_ports::reserve(n)
}

/// The directory cargo puts binaries in (the drain's, so the broker's too).
fn bin_dir() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_weir-drain"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The `weir` broker binary, which `cargo test --workspace` builds (alone,
/// run `cargo build -p weir-broker --bin weir` first).
pub fn weir_binary() -> PathBuf {
    let path = bin_dir().join("weir");
    assert!(
        path.exists(),
        "{} is missing: run `cargo build -p weir-broker --bin weir` (or `cargo test --workspace`)",
        path.display()
    );
    path
}

pub struct Broker {
    child: Option<Child>,
    pub dir: tempfile::TempDir,
    pub port: u16,
    log_path: PathBuf,
}

impl Broker {
    pub fn start() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("weir-drain-test-")
            .tempdir()
            .unwrap();
        let log_path = dir.path().join("broker.log");
        let mut b = Broker {
            child: None,
            dir,
            port: free_ports(4),
            log_path,
        };
        b.spawn();
        b
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .unwrap();
        let child = Command::new(weir_binary())
            .args(["serve", "--listen", &self.addr(), "--data-dir"])
            .arg(self.dir.path().join("data"))
            .args(["--shard-port-base", &(self.port + 1).to_string(), "--shards", "2"])
            .args(["--group-initial-rebalance-delay-ms", "0"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("weir binary starts");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(mut c) = Client::connect(self.addr(), Duration::from_millis(500)) {
                if let Ok(m) = c.metadata(None) {
                    let up = m.brokers.iter().all(|b| {
                        Client::connect(format!("{}:{}", b.host, b.port), Duration::from_millis(500)).is_ok()
                    });
                    if up {
                        return;
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "weir did not become ready; log:\n{}",
            std::fs::read_to_string(&self.log_path).unwrap_or_default()
        );
    }

    pub fn client(&self) -> Client {
        Client::connect(self.addr(), Duration::from_secs(5)).expect("client connects")
    }

    /// SIGKILL, then start again on the same data directory and ports.
    pub fn kill_and_restart(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().unwrap();
            c.wait().unwrap();
        }
        self.spawn();
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Produce `count` records to each of `partitions` partitions of a new
/// topic: key `k-{p}-{i}`, value from `value(p, i)`, one header `n` = `i`;
/// batches of 500, acks=all.
pub fn produce(
    broker: &Broker,
    topic: &str,
    partitions: i32,
    count: usize,
    value: impl Fn(i32, usize) -> String,
) {
    let mut c = broker.client();
    c.create_topic(topic, partitions, &[]).unwrap();
    let m = c.metadata(Some(&[topic])).unwrap();
    let t = &m.topics[0];
    for p in 0..partitions {
        let leader = t
            .partitions
            .iter()
            .find(|x| x.partition_index == p)
            .unwrap()
            .leader_id
            .0;
        let b = m.brokers.iter().find(|b| b.node_id.0 == leader).unwrap();
        let mut lc = Client::connect(format!("{}:{}", b.host, b.port), Duration::from_secs(5)).unwrap();
        for first in (0..count).step_by(500) {
            let mut builder =
                weir_protocol::builder::BatchBuilder::new(weir_protocol::record_batch::Compression::None);
            for i in first..(first + 500).min(count) {
                let (k, v, n) = (format!("k-{p}-{i}"), value(p, i), i.to_string());
                builder.push(
                    now_ms(),
                    Some(k.as_bytes()),
                    Some(v.as_bytes()),
                    &[(b"n".as_slice(), Some(n.as_bytes()))],
                );
            }
            let mut out = bytes::BytesMut::new();
            builder.finish_into(&mut out).unwrap();
            lc.produce(topic, p, out.freeze(), -1).unwrap();
        }
    }
}

/// Produce explicit (key, value) records to partition 0 of an existing topic.
pub fn produce_records(broker: &Broker, topic: &str, records: &[(Option<&str>, Option<&str>)]) {
    let mut c = broker.client();
    let mut builder =
        weir_protocol::builder::BatchBuilder::new(weir_protocol::record_batch::Compression::None);
    for (k, v) in records {
        builder.push(now_ms(), k.map(str::as_bytes), v.map(str::as_bytes), &[]);
    }
    let mut out = bytes::BytesMut::new();
    builder.finish_into(&mut out).unwrap();
    let m = c.metadata(Some(&[topic])).unwrap();
    let leader = m.topics[0].partitions[0].leader_id.0;
    let b = m.brokers.iter().find(|b| b.node_id.0 == leader).unwrap();
    let mut lc = Client::connect(format!("{}:{}", b.host, b.port), Duration::from_secs(5)).unwrap();
    lc.produce(topic, 0, out.freeze(), -1).unwrap();
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// The drain binary under test; `WEIR_DRAIN_BIN` points elsewhere (e.g. a
/// release build for `measure_copy_vs_insert`).
pub fn drain_bin() -> PathBuf {
    std::env::var_os("WEIR_DRAIN_BIN")
        .map_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_weir-drain")), PathBuf::from)
}

/// A running weir-drain; killed on drop.
pub struct Drain {
    pub child: Child,
    pub log_path: PathBuf,
}

impl Drain {
    pub fn start(args: &[String], log_path: &Path) -> Self {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log_path)
            .unwrap();
        let child = Command::new(drain_bin())
            .args(args)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("weir-drain starts");
        Drain {
            child,
            log_path: log_path.to_path_buf(),
        }
    }

    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM and wait (at most 30 s) for exit 0.
    pub fn stop(&mut self) {
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let status = self.wait(Duration::from_secs(30));
        assert!(
            status.success(),
            "weir-drain exited with {status}; log:\n{}",
            self.log()
        );
    }

    /// Wait for the drain to exit on its own (e.g. --exit-when-idle).
    pub fn wait(&mut self, timeout: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "weir-drain did not exit; log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }
}

impl Drop for Drain {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Run the drain to completion with `args`: (exit code, stderr).
pub fn run_drain(args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(drain_bin())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
