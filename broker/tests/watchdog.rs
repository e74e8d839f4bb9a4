//! The shard watchdog, end to end: a shard whose executor is blocked (fault
//! injection) is reported by name while the other shard keeps serving, and its
//! recovery is reported too.

mod common;

use std::time::{Duration, Instant};

use common::Broker;

#[test]
fn given_a_shard_blocked_for_two_seconds_when_the_watchdog_looks_should_log_the_stall_and_the_recovery() {
    let broker = Broker::start_with_env(&["--shards", "2"], &[("WEIR_FAULT_STALL_SHARD", "1:2500")]);
    let deadline = Instant::now() + Duration::from_secs(30);
    let (stalled, recovered) = loop {
        let log = broker.log();
        let stalled = log
            .lines()
            .find(|l| l.contains("shard stalled") && l.contains("shard=1"))
            .map(str::to_string);
        let recovered = log.contains("shard ticking again after a stall");
        if (stalled.is_some() && recovered) || Instant::now() > deadline {
            break (stalled, recovered);
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let log = broker.log();
    assert!(
        log.contains("fault injection: blocking this shard's executor"),
        "log:\n{log}"
    );
    let stalled = stalled.unwrap_or_else(|| panic!("no stall reported for shard 1; log:\n{log}"));
    assert!(stalled.contains("ERROR"), "a stall is an error: {stalled}");
    assert!(recovered, "no recovery line; log:\n{log}");
    assert!(
        !log.lines()
            .any(|l| l.contains("shard stalled") && l.contains("shard=0")),
        "shard 0 was never blocked; log:\n{log}"
    );
    // One stall, reported once, however many looks the watchdog took during it.
    assert_eq!(log.matches("shard stalled").count(), 1, "log:\n{log}");
}

/// A panic on one shard ends the whole process (SIGABRT) with a log line naming the
/// thread, instead of leaving the other shard serving beside partitions that have no
/// owner; a restart then serves everything acknowledged before it.
#[test]
fn given_a_shard_that_panics_when_serving_should_abort_the_process_and_serve_again_after_a_restart() {
    use std::os::unix::process::ExitStatusExt;
    let mut broker = Broker::start_with_env(&["--shards", "2"], &[("WEIR_FAULT_PANIC_SHARD", "1:5000")]);
    let mut client = broker.client();
    client.create_topic("before", 2, &[]).unwrap();
    for p in 0..2 {
        client
            .produce(
                "before",
                p,
                common::batch(0, 3, weir_protocol::record_batch::Compression::None),
                -1,
            )
            .unwrap();
    }
    let status = broker.wait_exit(Duration::from_secs(20));
    let log = broker.log();
    let status = status.unwrap_or_else(|| panic!("weir still running after its shard panicked; log:\n{log}"));
    assert_eq!(
        status.signal(),
        Some(libc::SIGABRT),
        "status {status}; log:\n{log}"
    );
    assert!(
        log.lines()
            .any(|l| l.contains("a broker thread panicked; aborting") && l.contains("weir-shard-1")),
        "log:\n{log}"
    );
    broker.env.clear();
    broker.start_again();
    let mut client = broker.client();
    for p in 0..2 {
        let (_, records) = client.fetch("before", p, 0, 1 << 20, 0).unwrap();
        let read = common::decode(&records);
        let offsets: Vec<i64> = read.iter().map(|r| r.0).collect();
        assert_eq!(
            offsets,
            vec![0, 1, 2],
            "partition {p}: the acks=all records, in order"
        );
    }
}
