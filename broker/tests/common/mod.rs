//! Test harness: start the real `weir` binary on free ports with a temp data
//! directory, restart it, stop it with a signal or kill it.
#![allow(dead_code, reason = "each test binary uses a different subset")]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use weir_client::blocking::Client;

pub mod loop_disk;
pub mod sasl;

/// How long a test may hold one broker (its whole life, restarts included) before the
/// deadline prints stacks and fails the run. `WEIR_TEST_DEADLINE_SECS` overrides it
/// (`make crash-test` runs hundreds of cycles under one broker).
pub fn test_deadline() -> Duration {
    let secs = std::env::var("WEIR_TEST_DEADLINE_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(600);
    Duration::from_secs(secs)
}

/// Arm the current test's deadline.
pub fn arm_deadline() -> weir_broker::deadline::Deadline {
    weir_broker::deadline::arm(weir_broker::deadline::this_test(), test_deadline())
}

pub struct Broker {
    child: Option<Child>,
    /// The test's deadline: on expiry, stacks of the test and this broker, then exit 124.
    deadline: weir_broker::deadline::Deadline,
    pub dir: tempfile::TempDir,
    pub port: u16,
    pub shard_port_base: u16,
    pub extra: Vec<String>,
    /// Extra environment for the broker process (fault injection).
    pub env: Vec<(String, String)>,
    pub log_path: PathBuf,
    /// (user, password) to authenticate with (SCRAM-SHA-512) while waiting for
    /// readiness, for a broker whose plaintext listener requires SASL.
    pub sasl_login: Option<(String, String)>,
}

/// The metrics page (headers included) of the endpoint at `addr` (the broker's
/// `--metrics-listen`).
pub fn metrics_page(addr: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).expect("metrics endpoint accepts");
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut page = String::new();
    stream.read_to_string(&mut page).unwrap();
    page
}

/// The sum over shards of metric `name`'s samples (a counter, a gauge or a histogram's
/// `_count`) whose labels contain `label` ("" for every sample), from `metrics_page`.
pub fn metric_sum(addr: &str, name: &str, label: &str) -> f64 {
    let series = format!("{name}{{");
    metrics_page(addr)
        .lines()
        .filter(|l| l.starts_with(&series) && l.contains(label))
        .map(|l| l.rsplit_once(' ').unwrap().1.parse::<f64>().unwrap())
        .sum()
}

/// Find `n` consecutive free ports (bootstrap + one per shard), reserved for this
/// test process against every other (`weir_broker::test_ports`).
pub fn free_ports(n: u16) -> u16 {
    weir_broker::test_ports::reserve(n)
}

impl Broker {
    pub fn start(extra: &[&str]) -> Self {
        let mut b = Self::new_stopped(extra);
        b.spawn();
        b
    }

    /// Like `start`, with extra environment variables for the broker process.
    pub fn start_with_env(extra: &[&str], env: &[(&str, &str)]) -> Self {
        let mut b = Self::new_stopped(extra);
        b.env = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        b.spawn();
        b
    }

    /// A broker with its directories and ports chosen but not running yet
    /// (`start_again` starts it): lets a test mount something at `data_dir()` first.
    pub fn new_stopped(extra: &[&str]) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("weir-test-")
            .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
            .unwrap();
        let port = free_ports(4);
        let log_path = dir.path().join("broker.log");
        Broker {
            child: None,
            deadline: arm_deadline(),
            dir,
            port,
            shard_port_base: port + 1,
            extra: extra.iter().map(|s| s.to_string()).collect(),
            env: Vec::new(),
            log_path,
            sasl_login: None,
        }
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
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
        let child = Command::new(env!("CARGO_BIN_EXE_weir"))
            .args(["serve", "--listen", &self.addr(), "--data-dir"])
            .arg(self.data_dir())
            .args(["--shard-port-base", &self.shard_port_base.to_string()])
            .args(&self.extra)
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("weir binary starts");
        self.deadline.watch_child(child.id());
        self.child = Some(child);
        self.wait_ready();
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("weir exited early with {status}; log:\n{}", self.log());
            }
            let login = |mut c: Client| match &self.sasl_login {
                None => Some(c),
                Some((u, p)) => c.sasl_authenticate("SCRAM-SHA-512", u, p).ok().map(|()| c),
            };
            let connected = Client::connect(self.addr(), Duration::from_millis(500))
                .ok()
                .and_then(login);
            if let Some(mut c) = connected {
                // Every advertised shard port must answer too (zero-hop mode).
                if let Ok(m) = c.metadata(None) {
                    let all_up = m.brokers.iter().all(|b| {
                        let a: SocketAddr = format!("{}:{}", b.host, b.port).parse().unwrap();
                        Client::connect(a, Duration::from_millis(500)).is_ok()
                    });
                    if all_up {
                        return;
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("weir did not become ready; log:\n{}", self.log());
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// The JSON a client script printed; on failure, its output and this broker's log.
    pub fn json_from(&self, what: &str, out: &std::process::Output) -> serde_json::Value {
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{what} failed: {}\nstdout: {stdout}\nstderr: {}\nbroker log:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
        serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("bad JSON from {what}: {e}: {stdout}"))
    }

    /// Run the `weir` admin CLI against this broker.
    pub fn weir(&self, args: &[&str]) -> std::process::Output {
        Command::new(env!("CARGO_BIN_EXE_weir"))
            .args(args)
            .args(["--bootstrap", &self.addr()])
            .output()
            .expect("weir runs")
    }

    /// Run the `weir` admin CLI, which must succeed; its standard output.
    pub fn weir_ok(&self, args: &[&str]) -> String {
        let out = self.weir(args);
        assert!(
            out.status.success(),
            "weir {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).to_string()
    }

    pub fn client(&self) -> Client {
        Client::connect(self.addr(), Duration::from_secs(5)).expect("client connects")
    }

    /// SIGTERM and wait for a clean exit (status 0).
    pub fn stop(&mut self) {
        let Some(child) = &self.child else {
            return;
        };
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let status = self.wait_exit(Duration::from_secs(30));
        let status = status.unwrap_or_else(|| panic!("weir did not stop on SIGTERM; log:\n{}", self.log()));
        assert!(
            status.success(),
            "weir exited with {status}; log:\n{}",
            self.log()
        );
    }

    /// Wait up to `within` for the broker to exit by itself; its status, or `None`
    /// if it is still running.
    pub fn wait_exit(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + within;
        loop {
            let child = self.child.as_mut()?;
            if let Some(status) = child.try_wait().unwrap() {
                self.deadline.forget_child(child.id());
                self.child = None;
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL: no chance to flush.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            self.deadline.forget_child(child.id());
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    pub fn start_again(&mut self) {
        assert!(self.child.is_none());
        self.spawn();
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        // A failing test shows the broker's last words (CI keeps only the
        // test's output; the log's directory goes with the test).
        if std::thread::panicking() {
            print_log_tail(&self.log_path);
        }
    }
}

/// Print the last 40 lines of a broker log (each cut at 400 characters) to stderr.
pub fn print_log_tail(path: &Path) {
    let log = std::fs::read_to_string(path).unwrap_or_default();
    let tail: Vec<&str> = log.lines().rev().take(40).collect();
    eprintln!("--- broker log, last {} lines ---", tail.len());
    for line in tail.iter().rev() {
        eprintln!("{}", line.chars().take(400).collect::<String>());
    }
}

/// kcat must be installed (`make test` installs it); fail loudly otherwise.
pub fn kcat() -> Command {
    let found = Command::new("kcat")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        found,
        "kcat not found: run `make test` (it installs kcat) or apt-get install kcat"
    );
    Command::new("kcat")
}

/// `node SCRIPT` for a kafkajs script in tests/clients, run from there; kafkajs must be
/// installed (`make test-deps` installs it); fail loudly otherwise.
pub fn kafkajs_script(script: &str) -> Command {
    let clients = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients");
    let modules = clients.join("node_modules/kafkajs");
    assert!(
        modules.is_dir(),
        "{} is missing: run `make test-deps` (or `make test`)",
        modules.display()
    );
    let mut cmd = Command::new("node");
    cmd.arg(clients.join(script)).current_dir(clients);
    cmd
}

pub fn run(cmd: &mut Command, stdin: Option<&Path>) -> String {
    if let Some(p) = stdin {
        cmd.stdin(std::fs::File::open(p).unwrap());
    } else {
        cmd.stdin(Stdio::null());
    }
    let out = cmd.output().expect("command runs");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

/// One batch of `count` records `key-{first+i}` / `value-{first+i}` with a header.
pub fn batch(
    first: usize,
    count: usize,
    compression: weir_protocol::record_batch::Compression,
) -> bytes::Bytes {
    let mut b = weir_protocol::builder::BatchBuilder::new(compression);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    for i in first..first + count {
        let (k, v) = (format!("key-{i}"), format!("value-{i}"));
        b.push(
            now,
            Some(k.as_bytes()),
            Some(v.as_bytes()),
            &[(b"h".as_slice(), Some(b"1".as_slice()))],
        );
    }
    let mut out = bytes::BytesMut::new();
    b.finish_into(&mut out).unwrap();
    out.freeze()
}

/// (offset, key, value) of every record in `records` (whole batches).
pub fn decode(records: &[u8]) -> Vec<(i64, String, String)> {
    let mut out = Vec::new();
    let mut scratch = Vec::new();
    for range in weir_protocol::record_batch::BatchWalker::new(records) {
        weir_protocol::records::for_each_record(&records[range], &mut scratch, 64 << 20, |r| {
            out.push((
                r.offset,
                String::from_utf8(r.key.unwrap().to_vec()).unwrap(),
                String::from_utf8(r.value.unwrap().to_vec()).unwrap(),
            ));
        })
        .unwrap();
    }
    out
}

/// The test venv's python (made by `make test-deps`), checked to import `modules`
/// (comma-separated, e.g. "confluent_kafka, kafka, crc32c").
pub fn venv_python(modules: &str) -> PathBuf {
    let python = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.venv/bin/python"));
    let ok = Command::new(&python)
        .args(["-c", &format!("import {modules}")])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "{} with {modules} is missing: run `make test-deps` (or `make test`)",
        python.display()
    );
    python
}
