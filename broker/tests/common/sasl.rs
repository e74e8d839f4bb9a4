//! SASL test helpers shared by `sasl.rs` and `acl.rs`: a broker whose admin user (both
//! SCRAM mechanisms) is written into its catalog before it starts, a client logged in as
//! it, and the `weir` CLI run as it.

use std::process::Command;

use serde_json::Value;
use weir_client::blocking::Client;

use super::Broker;

pub const ADMIN: (&str, &str) = ("admin", "adm1n-Secret-pw");

pub fn weir() -> Command {
    Command::new(env!("CARGO_BIN_EXE_weir"))
}

/// `weir ARGS` must succeed; its stdout.
pub fn weir_ok(args: &[&str]) -> String {
    let out = weir().args(args).output().expect("weir runs");
    assert!(
        out.status.success(),
        "weir {args:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A stopped broker with `extra` flags and the admin user (both SCRAM mechanisms) written
/// into its catalog offline, then started.
pub fn start_with_admin(extra: &[&str], sasl_on_plaintext: bool) -> Broker {
    let mut b = Broker::new_stopped(extra);
    let dir = b.data_dir();
    let dir = dir.to_str().unwrap();
    for m in ["SCRAM-SHA-512", "SCRAM-SHA-256"] {
        weir_ok(&[
            "user",
            "add",
            ADMIN.0,
            "--password",
            ADMIN.1,
            "--mechanism",
            m,
            "--data-dir",
            dir,
        ]);
    }
    if sasl_on_plaintext {
        b.sasl_login = Some((ADMIN.0.into(), ADMIN.1.into()));
    }
    b.start_again();
    b
}

pub fn admin_client(b: &Broker) -> Client {
    let mut c = b.client();
    c.sasl_authenticate("SCRAM-SHA-512", ADMIN.0, ADMIN.1)
        .expect("admin logs in");
    c
}

/// `weir user ...` against `b`, authenticated as the admin.
pub fn weir_user(b: &Broker, args: &[&str]) -> std::process::Output {
    weir_as_admin(b, "user", args)
}

/// `weir COMMAND ...` against `b`, authenticated as the admin.
pub fn weir_as_admin(b: &Broker, command: &str, args: &[&str]) -> std::process::Output {
    weir()
        .arg(command)
        .args(args)
        .args(["--bootstrap", &b.addr(), "--sasl-user", ADMIN.0])
        .env("WEIR_SASL_PASSWORD", ADMIN.1)
        .output()
        .expect("weir runs")
}

pub fn json(what: &str, out: &std::process::Output, b: &Broker) -> Value {
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{what} failed: {}\nstdout: {stdout}\nstderr: {}\nbroker log:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        b.log()
    );
    serde_json::from_str(stdout.lines().last().unwrap_or(""))
        .unwrap_or_else(|e| panic!("{what}: {e}: {stdout}"))
}
