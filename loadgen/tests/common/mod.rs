//! Helpers of the loadgen's acceptance tests: the in-process null broker, and
//! running the binary with a deadline and reading its JSON report.

#![allow(dead_code)] // each test binary uses some of the helpers

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use weir_loadgen::null_broker::{NullBroker, NullBrokerConfig};

pub const BIN: &str = env!("CARGO_BIN_EXE_weir-loadgen");

pub fn null_broker(stall_ms: u64, stall_every_ms: u64, auto_topics: bool) -> NullBroker {
    null_broker_with(NullBrokerConfig {
        listen: "127.0.0.1:0".to_string(),
        stall_ms,
        stall_every_ms,
        default_partitions: 4,
        auto_topics,
        api_versions_max: 4,
        produce_error_code: 0,
        produce_error_count: 0,
        store: false,
        reorder_every: 0,
        serve_fetch_bytes: 0,
    })
}

pub fn null_broker_with(cfg: NullBrokerConfig) -> NullBroker {
    NullBroker::start(cfg).expect("null broker binds an ephemeral port")
}

/// No run here takes more than seconds; a hung loadgen (or null broker) fails its
/// test with stacks instead of holding CI until its own limit.
pub const RUN_DEADLINE: Duration = Duration::from_secs(180);

/// `cmd.output()`, but past `limit` the child's stacks (gdb) are printed, the child is
/// killed and the test fails.
pub fn output_within(cmd: &mut Command, limit: Duration) -> Output {
    use std::io::Read;
    use std::process::Stdio;
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the loadgen binary runs");
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut buf);
            }
            buf
        })
    };
    let out = drain(child.stdout.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
    let err = drain(child.stderr.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait on the loadgen child") {
            break status;
        }
        if started.elapsed() > limit {
            let stacks = Command::new("gdb")
                .args([
                    "-p",
                    &child.id().to_string(),
                    "-batch",
                    "-ex",
                    "thread apply all bt 30",
                ])
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                .unwrap_or_else(|e| format!("gdb unavailable: {e}"));
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "DEADLINE EXPIRED: weir-loadgen ran past {} s; its stacks:\n{stacks}",
                limit.as_secs()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: out.join().expect("stdout reader"),
        stderr: err.join().expect("stderr reader"),
    }
}

/// Run the binary with `args` against `bootstrap`, writing the JSON report
/// into `dir`; returns the process output and the parsed report, if any.
pub fn run_loadgen(bootstrap: &str, args: &[&str], dir: &Path) -> (Output, Option<serde_json::Value>) {
    let json = dir.join("report.json");
    let html = dir.join("report.html");
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .args(["--bootstrap", bootstrap, "--quiet"])
        .arg("--report-json")
        .arg(&json)
        .arg("--report-html")
        .arg(&html);
    let output = output_within(&mut cmd, RUN_DEADLINE);
    let report = std::fs::read_to_string(&json)
        .ok()
        .map(|text| serde_json::from_str(&text).expect("the JSON report parses"));
    (output, report)
}

pub fn dir() -> tempfile::TempDir {
    tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("temp dir on the target filesystem")
}

pub fn u64_at(report: &serde_json::Value, pointer: &str) -> u64 {
    report
        .pointer(pointer)
        .and_then(serde_json::Value::as_u64)
        .unwrap_or_else(|| panic!("report lacks {pointer}"))
}
