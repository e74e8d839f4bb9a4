//! The Go clients of the compatibility suite: Debian's packaged Shopify/sarama and
//! segmentio/kafka-go (`make test-deps` installs them), built offline from
//! /usr/share/gocode in GOPATH mode into target/go, then run beside the other clients.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use super::common::Broker;

const GOCODE: &str = "/usr/share/gocode/src/github.com";
/// The Go program's columns.
pub const CLIENTS: &[&str] = &["sarama 1.22 (default)", "sarama 1.22 (V2_1_0_0)", "kafka-go 0.2"];

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"),
        PathBuf::from,
    )
}

/// Builds the Go program; None (with a SKIPPED line) when Go or the packages are missing.
pub fn build() -> Option<PathBuf> {
    let installed = Path::new(&format!("{GOCODE}/Shopify/sarama")).is_dir()
        && Path::new(&format!("{GOCODE}/segmentio/kafka-go")).is_dir()
        && Command::new("go")
            .arg("version")
            .output()
            .is_ok_and(|o| o.status.success());
    if !installed {
        println!(
            "SKIPPED: Go clients: go, golang-github-shopify-sarama-dev or \
             golang-github-segmentio-kafka-go-dev not installed (`make test-deps` installs them)"
        );
        return None;
    }
    let root = target_dir().join("go");
    let src = root.join("src");
    std::fs::create_dir_all(&src).unwrap();
    let link = src.join("weircompat");
    let program = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/clients/go/weircompat");
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(&program, &link).unwrap();
    let binary = root.join("weircompat");
    let out = Command::new("go")
        .args(["build", "-o"])
        .arg(&binary)
        .arg(".")
        .current_dir(&link)
        .env("GOPATH", format!("{}:/usr/share/gocode", root.display()))
        .env("GO111MODULE", "off")
        .env("GOFLAGS", "")
        .env("GOCACHE", root.join("cache"))
        .env("GOPROXY", "off")
        .output()
        .expect("go runs");
    assert!(
        out.status.success(),
        "go build failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(binary)
}

pub fn spawn(binary: &Path, broker: &Broker) -> (String, Child) {
    let child = Command::new(binary)
        .arg(broker.addr())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the Go program runs");
    ("tests/clients/go/weircompat".into(), child)
}

/// The batches sarama wrote to the Go program's topic, as (records, max timestamp):
/// sarama 1.22 leaves every batch's max timestamp at -1, which the time index must see past.
pub fn stored_batches(broker: &Broker) -> Vec<(i32, i64)> {
    let (_, records) = broker.client().fetch("go-ts", 0, 0, 1 << 20, 100).unwrap();
    weir_protocol::record_batch::BatchWalker::new(&records)
        .map(|range| {
            let h = weir_protocol::record_batch::header(&records[range]).unwrap();
            (h.records_count.get(), h.max_timestamp.get())
        })
        .collect()
}
