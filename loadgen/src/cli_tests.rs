//! Tests of the command line: flags into `RunConfig`, and what is refused.

use super::*;

fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
    Cli::try_parse_from(std::iter::once("weir-loadgen").chain(args.iter().copied()))
}

fn config(args: &[&str]) -> Result<RunConfig, String> {
    match parse(args).map_err(|e| e.to_string())?.command {
        Command::Produce(a) => a.into_config(Mode::Produce, 2).map_err(|e| e.to_string()),
        Command::E2e(a) => a.into_config(Mode::E2e, 2).map_err(|e| e.to_string()),
        Command::Consume(a) => a.into_config(Mode::Consume, 2).map_err(|e| e.to_string()),
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn given_full_flag_set_when_parsing_should_build_config() {
    let c = config(&[
        "e2e",
        "--bootstrap",
        "127.0.0.1:9",
        "--topic",
        "t",
        "--partitions",
        "8",
        "--create",
        "--producers",
        "4",
        "--consumers",
        "4",
        "--record-size",
        "1024",
        "--batch-bytes",
        "65536",
        "--linger-ms",
        "1",
        "--acks",
        "all",
        "--compression",
        "zstd",
        "--rate",
        "200000",
        "--duration",
        "30s",
        "--warmup",
        "5s",
        "--keys",
        "uniform:100",
    ])
    .unwrap();
    assert_eq!(c.acks, -1);
    assert_eq!(c.compression, Compression::Zstd);
    assert_eq!(c.duration_ms, Some(30_000));
    assert_eq!(c.warmup_ms, 5_000);
    assert_eq!(c.keys, Keys::Uniform(100));
    assert_eq!(c.from, StartFrom::Latest);
    assert_eq!(c.threads, 2);
}

#[test]
fn given_bad_values_when_parsing_should_reject_with_clear_message() {
    let cases: &[(&[&str], &str)] = &[
        (
            &["produce", "--duration", "1s", "--acks", "2"],
            "invalid value '2'",
        ),
        (
            &["produce", "--duration", "1s", "--compression", "brotli"],
            "brotli",
        ),
        (&["produce", "--duration", "x"], "not a duration"),
        (&["produce", "--duration", "3 parsecs"], "duration"),
        (
            &["produce", "--duration", "1s", "--keys", "uniform:0"],
            "positive integer",
        ),
        (
            &["produce", "--duration", "1s", "--keys", "zipf:3"],
            "expected none or uniform:N",
        ),
        (
            &["produce", "--duration", "1s", "--record-size", "4"],
            "--record-size",
        ),
        (
            &["produce", "--duration", "1s", "--partitions", "0"],
            "--partitions",
        ),
        (&["produce", "--duration", "1s", "--threads", "3"], "--threads"),
        (
            &["produce", "--duration", "1s", "--max-in-flight", "0"],
            "--max-in-flight",
        ),
        (&["produce"], "--duration or --records"),
        (&["produce", "--duration", "1s", "--bogus"], "--bogus"),
        (
            &["produce", "--duration", "1s", "--check-order"],
            "use it with consume or e2e",
        ),
        (&["produce", "--duration", "1s", "--idempotent"], "--acks all"),
        (
            &["produce", "--duration", "1s", "--idempotent", "--acks", "all"],
            "--max-in-flight of at most 5",
        ),
    ];
    for (args, needle) in cases {
        let err = config(args).expect_err(&format!("{args:?} must be rejected"));
        assert!(err.contains(needle), "{args:?}: '{err}' lacks '{needle}'");
    }
}

#[test]
fn given_duration_texts_when_parsing_should_convert_units() {
    assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
    assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
    assert_eq!(parse_duration("1.5").unwrap(), Duration::from_millis(1500));
    assert!(parse_duration("-1s").is_err());
}

#[test]
fn given_transaction_flags_when_parsing_should_imply_idempotence_and_keep_the_prefix() {
    let c = config(&[
        "produce",
        "--duration",
        "1s",
        "--acks",
        "all",
        "--max-in-flight",
        "5",
        "--transactional-id",
        "bench",
        "--txn-records",
        "1000",
        "--txn-abort-every",
        "4",
    ])
    .unwrap();
    assert!(c.idempotent, "a transactional producer is idempotent");
    assert_eq!(c.transactional_id.as_deref(), Some("bench"));
    assert_eq!((c.txn_records, c.txn_abort_every), (1000, 4));
    let c = config(&["consume", "--to-end", "--isolation", "read-committed"]).unwrap();
    assert_eq!(c.isolation, Isolation::ReadCommitted);
    assert_eq!(c.isolation.wire(), 1);
    let c = config(&["consume", "--to-end"]).unwrap();
    assert_eq!(
        c.isolation,
        Isolation::ReadUncommitted,
        "the default stays read_uncommitted"
    );
}

#[test]
fn given_bad_transaction_flags_when_parsing_should_reject_with_clear_message() {
    let txn = ["produce", "--duration", "1s", "--transactional-id", "t"];
    let with = |extra: &[&'static str]| -> Vec<&'static str> { txn.iter().chain(extra).copied().collect() };
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (with(&[]), "--acks all"),
        (with(&["--acks", "1"]), "--acks all"),
        (with(&["--acks", "all"]), "--max-in-flight of at most 5"),
        (
            with(&["--acks", "all", "--max-in-flight", "5", "--txn-records", "0"]),
            "--txn-records",
        ),
        (
            vec!["produce", "--duration", "1s", "--txn-abort-every", "2"],
            "needs --transactional-id",
        ),
        (
            vec!["consume", "--to-end", "--transactional-id", "t"],
            "use it with produce or e2e",
        ),
        (
            vec!["produce", "--duration", "1s", "--isolation", "read-committed"],
            "use it with consume or e2e",
        ),
        (
            vec!["consume", "--to-end", "--isolation", "serializable"],
            "invalid value 'serializable'",
        ),
    ];
    for (args, needle) in cases {
        let err = config(&args).expect_err(&format!("{args:?} must be rejected"));
        assert!(err.contains(needle), "{args:?}: '{err}' lacks '{needle}'");
    }
    let long = "x".repeat(TXN_PREFIX_BYTES_MAX + 1);
    let err = config(&[
        "produce",
        "--duration",
        "1s",
        "--acks",
        "all",
        "--max-in-flight",
        "5",
        "--transactional-id",
        &long,
    ])
    .unwrap_err();
    assert!(err.contains("--transactional-id must be"), "{err}");
    let err = config(&[
        "produce",
        "--duration",
        "1s",
        "--acks",
        "all",
        "--max-in-flight",
        "5",
        "--transactional-id",
        "",
    ])
    .unwrap_err();
    assert!(err.contains("--transactional-id must be"), "{err}");
}
