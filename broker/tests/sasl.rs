//! SASL (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512) and TLS listeners as real clients see them:
//! confluent-kafka (`tests/clients/sasl_client.py`) over SASL_PLAINTEXT and SASL_SSL,
//! kafkajs (`tests/clients/sasl_client.js`) and kcat over SASL_SSL with SCRAM-SHA-512, with a
//! test CA and certificate made here with the `openssl` CLI; plus what no client sends, on the
//! wire: an unknown mechanism, requests before authentication, a truncated SCRAM exchange, a
//! client-final with a foreign nonce, a TLS handshake of garbage. Each bad input gets a clear
//! error and a log line with the peer, the broker keeps serving, and no password reaches the log.
//! Credentials are salted in the catalog and survive a restart; `weir user add|list|remove`
//! round-trips.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use bytes::Bytes;
use common::sasl::{admin_client, json, start_with_admin, weir_user, ADMIN};
use common::Broker;
use kafka_protocol::messages::{
    ApiKey, MetadataRequest, RequestKind, SaslAuthenticateRequest, SaslHandshakeRequest,
};
use serde_json::Value;
use weir_protocol::scram::{ClientExchange, Mechanism};

const CLIENTS_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients");
const ALICE: (&str, &str) = ("alice", "al1ce-Secret-pw");
const WRONG: &str = "wr0ng-Secret-pw";
const MECHANISMS: &str = "SCRAM-SHA-512,SCRAM-SHA-256,PLAIN";
/// These tests are about authentication: both users pass every ACL check (tests/acl.rs).
const SUPER_USERS: &str = "--super-users=User:admin;User:alice";

fn py(b: &Broker, args: &[&str]) -> Value {
    let out = Command::new(common::venv_python("confluent_kafka"))
        .arg(format!("{CLIENTS_DIR}/sasl_client.py"))
        .args(args)
        .output()
        .expect("python runs");
    json(&format!("sasl_client.py {args:?}"), &out, b)
}

/// The values `n` records produced round-robin over `partitions` give, per partition, in order.
fn expected(n: usize, partitions: usize) -> Value {
    let mut per: serde_json::Map<String, Value> = serde_json::Map::new();
    for i in 0..n {
        let list = per
            .entry((i % partitions).to_string())
            .or_insert_with(|| Value::Array(Vec::new()));
        list.as_array_mut().unwrap().push(Value::String(format!("v{i}")));
    }
    Value::Object(per)
}

fn assert_no_secrets(b: &Broker) {
    let log = b.log();
    for secret in [ADMIN.1, ALICE.1, WRONG] {
        assert!(
            !log.contains(secret),
            "the broker log contains a password ({secret})"
        );
    }
}

/// Raw frames, for what no client sends.
struct Raw(TcpStream, i32);

impl Raw {
    fn connect(addr: &str) -> Self {
        let s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        Raw(s, 1)
    }

    fn send(&mut self, api: ApiKey, version: i16, body: RequestKind) {
        let frame = weir_client::wire::encode_request(api, version, self.1, "raw", &body).unwrap();
        self.1 += 1;
        self.0.write_all(&frame).unwrap();
    }

    /// The next response body, or `None` when the broker closed the connection.
    fn receive<R: kafka_protocol::protocol::Decodable>(&mut self, api: ApiKey, version: i16) -> Option<R> {
        let mut prefix = [0u8; 4];
        if self.0.read_exact(&mut prefix).is_err() {
            return None;
        }
        let mut frame = vec![0u8; u32::from_be_bytes(prefix) as usize];
        self.0.read_exact(&mut frame).ok()?;
        let body = weir_client::wire::response_body(frame.into(), self.1 - 1, api, version).ok()?;
        Some(weir_client::wire::decode_body(body, api, version).unwrap())
    }

    fn closed(&mut self) -> bool {
        let mut b = [0u8; 1];
        matches!(self.0.read(&mut b), Ok(0) | Err(_))
    }

    fn handshake(&mut self, mechanism: &str) -> kafka_protocol::messages::SaslHandshakeResponse {
        let req = SaslHandshakeRequest::default().with_mechanism(mechanism.to_string().into());
        self.send(ApiKey::SaslHandshake, 1, req.into());
        self.receive(ApiKey::SaslHandshake, 1)
            .expect("a handshake answer")
    }

    fn authenticate(&mut self, token: &str) -> Option<kafka_protocol::messages::SaslAuthenticateResponse> {
        let req = SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from(token.to_string()));
        self.send(ApiKey::SaslAuthenticate, 2, req.into());
        self.receive(ApiKey::SaslAuthenticate, 2)
    }
}

#[test]
fn given_sasl_on_plaintext_when_clients_authenticate_should_serve_the_right_password_and_refuse_others() {
    let b = start_with_admin(
        &["--shards", "2", "--sasl-mechanisms", MECHANISMS, SUPER_USERS],
        true,
    );
    let mut admin = admin_client(&b);
    admin.create_topic("t", 4, &[]).unwrap();
    let added = weir_user(&b, &["add", ALICE.0, "--password", ALICE.1]);
    assert!(
        added.status.success(),
        "{}",
        String::from_utf8_lossy(&added.stderr)
    );
    for (i, mechanism) in ["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"]
        .into_iter()
        .enumerate()
    {
        let topic = format!("t{i}");
        admin.create_topic(&topic, 2, &[]).unwrap();
        let user = if mechanism == "SCRAM-SHA-256" {
            ADMIN
        } else {
            ALICE
        };
        let got = roundtrip(&b, &Via::plaintext(&b.addr(), mechanism), user, &topic, 20);
        assert_eq!(got["delivered"], 20, "{mechanism}: {got}");
        assert_eq!(
            got["consumed"],
            expected(20, 2),
            "{mechanism}: order per partition"
        );
        assert_bad_login(&b, &Via::plaintext(&b.addr(), mechanism));
    }
    let log = b.log();
    assert!(
        log.contains("SASL authentication failed"),
        "no failure line:\n{log}"
    );
    assert!(log.contains("SASL authenticated"), "no success line");
    assert_no_secrets(&b);
}

/// How sasl_client.py connects.
struct Via<'a> {
    bootstrap: &'a str,
    protocol: &'a str,
    mechanism: &'a str,
    ca: Option<&'a str>,
}

impl<'a> Via<'a> {
    fn plaintext(bootstrap: &'a str, mechanism: &'a str) -> Self {
        Via {
            bootstrap,
            protocol: "SASL_PLAINTEXT",
            mechanism,
            ca: None,
        }
    }

    fn ssl(bootstrap: &'a str, ca: &'a str) -> Self {
        Via {
            bootstrap,
            protocol: "SASL_SSL",
            mechanism: "SCRAM-SHA-512",
            ca: Some(ca),
        }
    }

    fn args(&self, command: &'a str, user: &'a str, password: &'a str) -> Vec<&'a str> {
        let mut a = vec![
            command,
            "--bootstrap",
            self.bootstrap,
            "--protocol",
            self.protocol,
        ];
        a.extend([
            "--mechanism",
            self.mechanism,
            "--user",
            user,
            "--password",
            password,
        ]);
        if let Some(ca) = self.ca {
            a.extend(["--ca", ca]);
        }
        a
    }
}

/// confluent-kafka produces `count` records round-robin to `topic` and reads them back.
fn roundtrip(b: &Broker, via: &Via, (user, password): (&str, &str), topic: &str, count: usize) -> Value {
    let count = count.to_string();
    let mut args = via.args("roundtrip", user, password);
    args.extend(["--topic", topic, "--count", &count]);
    py(b, &args)
}

/// A wrong password: confluent-kafka gets no metadata and an _AUTHENTICATION error.
fn assert_bad_login(b: &Broker, via: &Via) {
    let bad = py(b, &via.args("badlogin", ALICE.0, WRONG));
    assert_ne!(bad["list_topics"], "ok", "{}: {bad}", via.mechanism);
    let errors = bad["errors"].as_array().unwrap();
    assert!(
        errors.contains(&"_AUTHENTICATION".into()),
        "{}: {bad}",
        via.mechanism
    );
}

#[test]
fn given_bad_sasl_exchanges_on_the_wire_should_answer_kafkas_errors_close_and_keep_serving() {
    let b = start_with_admin(&["--sasl-mechanisms", "SCRAM-SHA-512", SUPER_USERS], true);
    // An unknown (and a disabled) mechanism: UNSUPPORTED_SASL_MECHANISM listing the enabled ones, closed.
    for m in ["GSSAPI", "PLAIN"] {
        let mut raw = Raw::connect(&b.addr());
        let r = raw.handshake(m);
        assert_eq!(r.error_code, 33, "{m}");
        assert_eq!(
            r.mechanisms.iter().map(|m| m.to_string()).collect::<Vec<_>>(),
            ["SCRAM-SHA-512"]
        );
        assert!(raw.closed(), "{m}: still open");
    }
    // A request before authentication: closed without an answer.
    let mut raw = Raw::connect(&b.addr());
    raw.send(ApiKey::Metadata, 12, MetadataRequest::default().into());
    assert!(raw
        .receive::<kafka_protocol::messages::MetadataResponse>(ApiKey::Metadata, 12)
        .is_none());
    // SaslAuthenticate before SaslHandshake: ILLEGAL_SASL_STATE.
    let mut raw = Raw::connect(&b.addr());
    assert_eq!(raw.authenticate("n,,n=admin,r=abc").unwrap().error_code, 34);
    // Truncated: client-first, then hang up.
    let mut raw = Raw::connect(&b.addr());
    assert_eq!(raw.handshake("SCRAM-SHA-512").error_code, 0);
    let first = raw.authenticate("n,,n=admin,r=clientnonce").unwrap();
    assert_eq!(first.error_code, 0);
    assert!(String::from_utf8_lossy(&first.auth_bytes).starts_with("r=clientnonce"));
    drop(raw);
    // A client-final with a nonce the server never sent: SASL_AUTHENTICATION_FAILED, closed.
    let mut raw = Raw::connect(&b.addr());
    raw.handshake("SCRAM-SHA-512");
    let (mut exchange, first) = ClientExchange::start(Mechanism::Sha512, ADMIN.0, "clientnonce");
    let server_first = raw.authenticate(&first).unwrap().auth_bytes;
    let fin = exchange.finish(&server_first, ADMIN.1.as_bytes()).unwrap();
    let forged = fin.replacen("r=clientnonce", "r=clientnonceFORGED", 1);
    let r = raw.authenticate(&forged).unwrap();
    assert_eq!(r.error_code, 58);
    assert!(r.error_message.unwrap().contains("SCRAM-SHA-512"));
    assert!(raw.closed());
    // Unknown user: refused at the first message.
    let mut raw = Raw::connect(&b.addr());
    raw.handshake("SCRAM-SHA-512");
    assert_eq!(raw.authenticate("n,,n=nobody,r=abc").unwrap().error_code, 58);
    // Garbage SCRAM: refused.
    let mut raw = Raw::connect(&b.addr());
    raw.handshake("SCRAM-SHA-512");
    assert_eq!(raw.authenticate("\u{1}\u{2}garbage").unwrap().error_code, 58);
    // The broker still serves a proper login, which gets ILLEGAL_SASL_STATE for a second handshake.
    let mut c = admin_client(&b);
    assert!(c.metadata(None).is_ok());
    let again = c
        .call(SaslHandshakeRequest::default().with_mechanism("SCRAM-SHA-512".into()))
        .unwrap();
    assert_eq!(again.error_code, 34);
    let log = b.log();
    for line in [
        "unsupported SASL mechanism",
        "request before SASL authentication",
        "connection closed before SASL authentication completed",
        "nonce does not match",
        "no such user",
    ] {
        let found = log
            .lines()
            .find(|l| l.contains(line))
            .unwrap_or_else(|| panic!("no {line:?} in:\n{log}"));
        assert!(found.contains("peer=127.0.0.1:"), "{found}");
    }
    assert!(!log.contains("panicked"), "{log}");
    assert_no_secrets(&b);
}

#[test]
fn given_users_managed_with_the_cli_should_round_trip_survive_a_restart_and_store_no_password() {
    let mut b = start_with_admin(&["--sasl-mechanisms", MECHANISMS, SUPER_USERS], true);
    let out = weir_user(
        &b,
        &[
            "add",
            ALICE.0,
            "--password",
            ALICE.1,
            "--mechanism",
            "SCRAM-SHA-256",
            "--iterations",
            "4096",
        ],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let listed = String::from_utf8(weir_user(&b, &["list"]).stdout).unwrap();
    let rows: Vec<Vec<&str>> = listed
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        rows,
        [
            vec!["admin", "SCRAM-SHA-256", "8192"],
            vec!["admin", "SCRAM-SHA-512", "8192"],
            vec!["alice", "SCRAM-SHA-256", "4096"]
        ],
        "{listed}"
    );
    // Out of Kafka's iteration range: refused by the CLI; on the wire UNACCEPTABLE_CREDENTIAL.
    assert!(
        !weir_user(&b, &["add", "bob", "--password", "x", "--iterations", "100"])
            .status
            .success()
    );
    let mut admin = admin_client(&b);
    let r = admin.upsert_user("bob", Mechanism::Sha512, 100, "x").unwrap();
    assert_eq!(r.error_code, 93, "{r:?}");
    // Describe: unknown user RESOURCE_NOT_FOUND, the same user twice DUPLICATE_RESOURCE.
    let d = admin
        .describe_users(Some(&["alice", "nobody", "admin", "admin"]))
        .unwrap();
    let codes: Vec<(&str, i16)> = d.iter().map(|u| (u.user.as_str(), u.error_code)).collect();
    assert_eq!(codes, [("alice", 0), ("nobody", 91), ("admin", 92)]);
    // The catalog holds no password.
    let catalog = std::fs::read(b.data_dir().join("catalog.rkyv")).unwrap();
    assert!(!catalog.windows(ALICE.1.len()).any(|w| w == ALICE.1.as_bytes()));
    b.restart();
    let mut alice = b.client();
    alice
        .sasl_authenticate("SCRAM-SHA-256", ALICE.0, ALICE.1)
        .expect("alice after a restart");
    let mut wrong = b.client();
    assert!(wrong.sasl_authenticate("SCRAM-SHA-256", ALICE.0, WRONG).is_err());
    let out = weir_user(&b, &["remove", ALICE.0]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut gone = b.client();
    assert!(gone.sasl_authenticate("SCRAM-SHA-256", ALICE.0, ALICE.1).is_err());
    let listed = String::from_utf8(weir_user(&b, &["list"]).stdout).unwrap();
    assert!(!listed.contains("alice"), "{listed}");
    assert!(
        !weir_user(&b, &["remove", ALICE.0]).status.success(),
        "removing twice"
    );
    assert_no_secrets(&b);
}

/// A test CA-signed certificate for 127.0.0.1 / localhost: (ca.pem, cert.pem, key.pem).
fn make_certs(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let run = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl runs");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=weir-test-ca",
    ]);
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "key.pem",
        "-out",
        "server.csr",
        "-subj",
        "/CN=localhost",
    ]);
    std::fs::write(dir.join("ext.cnf"), "subjectAltName=IP:127.0.0.1,DNS:localhost\n").unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "cert.pem",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
    ]);
    (dir.join("ca.pem"), dir.join("cert.pem"), dir.join("key.pem"))
}

#[test]
fn given_tls_beside_plaintext_in_zero_hop_when_clients_use_sasl_ssl_should_get_tls_ports_and_round_trip() {
    let certs = tempfile::tempdir().unwrap();
    let (ca, cert, key) = make_certs(certs.path());
    let tls_port = common::free_ports(3);
    let tls_listen = format!("127.0.0.1:{tls_port}");
    let (cert, key) = (cert.to_str().unwrap(), key.to_str().unwrap());
    let mut flags = vec!["--shards", "2", "--group-initial-rebalance-delay-ms", "100"];
    flags.extend([
        "--sasl-mechanisms",
        MECHANISMS,
        "--sasl-listeners",
        "tls",
        SUPER_USERS,
    ]);
    flags.extend(["--tls-listen", &tls_listen, "--tls-cert", cert, "--tls-key", key]);
    let b = start_with_admin(&flags, false);
    let ca = ca.to_str().unwrap();
    // Plaintext (no SASL here) is advertised its own ports; TLS its own.
    let mut plain = b.client();
    let ports: Vec<i32> = plain
        .metadata(None)
        .unwrap()
        .brokers
        .iter()
        .map(|x| x.port)
        .collect();
    assert_eq!(
        ports,
        [i32::from(b.shard_port_base), i32::from(b.shard_port_base) + 1]
    );
    for topic in ["s", "k", "j"] {
        plain.create_topic(topic, 4, &[]).unwrap();
    }
    let tls_ports = serde_json::json!([[0, "127.0.0.1", tls_port + 1], [1, "127.0.0.1", tls_port + 2]]);
    let via = Via::ssl(&tls_listen, ca);
    let got = roundtrip(&b, &via, ADMIN, "s", 40);
    assert_eq!(got["brokers"], tls_ports, "{got}");
    assert_eq!(got["delivered"], 40, "{got}");
    assert_eq!(got["consumed"], expected(40, 4), "confluent-kafka SASL_SSL order");
    assert_bad_login(&b, &via);
    kafkajs_round_trip(&b, &tls_listen, ca, &tls_ports);
    kcat_round_trip(&tls_listen, ca, &b);
    garbage_handshake(&tls_listen);
    let again = roundtrip(&b, &via, ADMIN, "s", 4);
    assert_eq!(again["delivered"], 4, "after garbage: {again}");
    let log = b.log();
    let line = log
        .lines()
        .find(|l| l.contains("TLS handshake failed"))
        .expect("a handshake failure line");
    assert!(line.contains("peer=127.0.0.1:"), "{line}");
    assert!(!log.contains("panicked"));
    assert_no_secrets(&b);
}

/// kafkajs (ssl + SCRAM-SHA-512) round-trips 12 records in order and is told the TLS ports;
/// a wrong password is a KafkaJSSASLAuthenticationError.
fn kafkajs_round_trip(b: &Broker, tls_listen: &str, ca: &str, tls_ports: &Value) {
    let modules = PathBuf::from(CLIENTS_DIR).join("node_modules/kafkajs");
    assert!(
        modules.is_dir(),
        "{} is missing: run `make test-deps`",
        modules.display()
    );
    let node = |password: &str| {
        let out = Command::new("node")
            .arg(format!("{CLIENTS_DIR}/sasl_client.js"))
            .args([tls_listen, ca, ADMIN.0, password, "j", "12"])
            .current_dir(CLIENTS_DIR)
            .output()
            .expect("node runs");
        json("sasl_client.js", &out, b)
    };
    let got = node(ADMIN.1);
    assert_eq!(got["consumed"], expected(12, 4), "kafkajs order: {got}");
    assert_eq!(&got["brokers"], tls_ports);
    let bad = node(WRONG);
    assert_eq!(bad["error"], "KafkaJSSASLAuthenticationError", "{bad}");
}

/// A TLS handshake of garbage: the broker closes the connection (after an alert, if any).
fn garbage_handshake(tls_listen: &str) {
    let mut g = TcpStream::connect(tls_listen).unwrap();
    g.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    g.write_all(&[0x16, 0x03, 0x01, 0x00, 0x05, 1, 2, 3, 4, 5, 0xff, 0xfe])
        .unwrap();
    let _ = g.write_all(b"GET / HTTP/1.1\r\n\r\n");
    let mut buf = [0u8; 256];
    loop {
        match g.read(&mut buf) {
            Ok(0) => break,
            Ok(_) => continue, // a TLS alert
            Err(e) => {
                let timed_out = matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                );
                assert!(!timed_out, "the broker kept a garbage TLS connection open");
                break;
            }
        }
    }
}

/// kcat produces 10 lines over SASL_SSL and SCRAM-SHA-512 and reads them back in order; a
/// wrong password fails.
fn kcat_round_trip(tls_listen: &str, ca: &str, b: &Broker) {
    let sasl = |password: &str| -> Vec<String> {
        [
            "security.protocol=SASL_SSL",
            "sasl.mechanisms=SCRAM-SHA-512",
            &format!("sasl.username={}", ADMIN.0),
            &format!("sasl.password={password}"),
            &format!("ssl.ca.location={ca}"),
        ]
        .iter()
        .flat_map(|x| ["-X".to_string(), x.to_string()])
        .collect()
    };
    let input: String = (0..10).map(|i| format!("line{i}\n")).collect();
    let mut p = common::kcat()
        .args(["-b", tls_listen, "-P", "-t", "k", "-p", "1"])
        .args(sasl(ADMIN.1))
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    p.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    let out = p.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "kcat -P: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        b.log()
    );
    let out = common::kcat()
        .args([
            "-b",
            tls_listen,
            "-C",
            "-t",
            "k",
            "-p",
            "1",
            "-o",
            "beginning",
            "-e",
            "-f",
            "%s\n",
        ])
        .args(sasl(ADMIN.1))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "kcat -C: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), input);
    let out = common::kcat()
        .args(["-b", tls_listen, "-L", "-m", "10"])
        .args(sasl(WRONG))
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "kcat with a wrong password listed metadata"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("Authentication failed") || stderr.contains("SASL"),
        "{stderr}"
    );
}
