//! SCRAM credentials managed by a third-party client: confluent-kafka's
//! `alter_user_scram_credentials` and `describe_user_scram_credentials`
//! (`tests/clients/scram_admin.py`) against a broker with SASL on its
//! plaintext listener. A credential the admin creates over the wire logs its
//! user in (and not with a wrong password), too few iterations are refused
//! with UNACCEPTABLE_CREDENTIAL and store nothing, and a deleted credential
//! logs nobody in. The catalog then holds no trace of the passwords.

mod common;

use std::process::Command;

use common::sasl::{start_with_admin, ADMIN};
use serde_json::{json, Value};

const BOB_PASSWORD: &str = "b0b-Secret-pw";
const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients/scram_admin.py");

#[test]
fn given_confluent_kafka_admin_when_managing_scram_credentials_should_log_users_in_and_out() {
    // The admin is a super user: with SASL on, ACLs deny what no binding allows.
    let flags = [
        "--sasl-mechanisms",
        "SCRAM-SHA-512,SCRAM-SHA-256",
        "--super-users",
        "User:admin",
    ];
    let b = start_with_admin(&flags, true);
    let out = Command::new(common::venv_python("confluent_kafka"))
        .arg(SCRIPT)
        .args(["--bootstrap", &b.addr(), "--admin", ADMIN.0])
        .args(["--admin-password", ADMIN.1, "--bob-password", BOB_PASSWORD])
        .output()
        .expect("python runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "scram_admin.py failed: {}\n{stdout}\n{}\nbroker log:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        b.log()
    );
    let seen: Value = serde_json::from_str(stdout.trim()).expect("one JSON line");
    assert_eq!(seen["upsert"], Value::Null, "{seen}");
    assert_eq!(
        seen["described"],
        json!({"bob": [["SCRAM_SHA_256", 8192]]}),
        "{seen}"
    );
    assert_eq!(seen["login"]["ok"], true, "{seen}");
    assert_eq!(seen["wrong_login"]["ok"], false, "{seen}");
    assert_eq!(seen["too_few_iterations"], "UNACCEPTABLE_CREDENTIAL", "{seen}");
    assert_eq!(
        seen["carol"],
        json!({"carol": "RESOURCE_NOT_FOUND"}),
        "nothing stored: {seen}"
    );
    assert_eq!(seen["delete"], Value::Null, "{seen}");
    assert_eq!(
        seen["after_delete"],
        json!({"bob": "RESOURCE_NOT_FOUND"}),
        "{seen}"
    );
    assert_eq!(seen["login_after_delete"]["ok"], false, "{seen}");
    // Only salted credentials reach the disk and the log.
    let catalog = std::fs::read(b.data_dir().join("catalog.rkyv")).expect("catalog");
    let log = b.log();
    for secret in [BOB_PASSWORD, ADMIN.1] {
        let needle = secret.as_bytes();
        assert!(
            !catalog.windows(needle.len()).any(|w| w == needle),
            "a password in the catalog"
        );
        assert!(!log.contains(secret), "a password in the log");
    }
}
