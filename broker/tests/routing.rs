//! Shards and routing: every partition is reachable through every shard, in
//! single-address (forwarding) mode and in zero-hop mode.

mod common;

use std::time::Duration;

use common::{batch, decode, Broker};
use weir_client::blocking::Client;
use weir_protocol::record_batch::Compression;

const PARTITIONS: i32 = 8;

fn every_partition_through_every_shard(broker: &Broker, topic: &str) {
    broker.client().create_topic(topic, PARTITIONS, &[]).unwrap();
    let shard_ports = [broker.shard_port_base, broker.shard_port_base + 1];
    let mut next = 0usize;
    for port in shard_ports {
        let mut c = Client::connect(("127.0.0.1", port), Duration::from_secs(5)).unwrap();
        for p in 0..PARTITIONS {
            let base = c
                .produce(topic, p, batch(next, 10, Compression::None), -1)
                .unwrap();
            assert!(base >= 0);
            next += 10;
        }
    }
    // Read everything back through each shard and check it is all there.
    for port in shard_ports {
        let mut c = Client::connect(("127.0.0.1", port), Duration::from_secs(5)).unwrap();
        let mut all = Vec::new();
        for p in 0..PARTITIONS {
            let (hw, records) = c.fetch(topic, p, 0, 1 << 20, 100).unwrap();
            assert_eq!(hw, 20, "partition {p}: two batches of 10 via two shards");
            let got = decode(&records);
            assert_eq!(
                got.iter().map(|r| r.0).collect::<Vec<_>>(),
                (0..20).collect::<Vec<_>>()
            );
            all.extend(got.into_iter().map(|r| r.1));
        }
        all.sort();
        let mut expected: Vec<String> = (0..next).map(|i| format!("key-{i}")).collect();
        expected.sort();
        assert_eq!(all, expected, "every record via shard port {port}");
    }
}

#[test]
fn given_single_address_mode_with_two_shards_when_each_shard_is_used_should_reach_every_partition() {
    let broker = Broker::start(&["--shards", "2", "--single-address"]);
    let m = broker.client().metadata(None).unwrap();
    assert_eq!(m.brokers.len(), 1, "one advertised broker in single-address mode");
    every_partition_through_every_shard(&broker, "routed");
}

#[test]
fn given_zero_hop_mode_with_two_shards_when_metadata_asked_should_advertise_each_shard_as_leader() {
    let broker = Broker::start(&["--shards", "2"]);
    every_partition_through_every_shard(&broker, "zerohop");
    let m = broker.client().metadata(Some(&["zerohop"])).unwrap();
    assert_eq!(m.brokers.len(), 2);
    let leaders: std::collections::BTreeSet<i32> =
        m.topics[0].partitions.iter().map(|p| p.leader_id.0).collect();
    assert_eq!(
        leaders.into_iter().collect::<Vec<_>>(),
        vec![0, 1],
        "partitions balanced over both shards"
    );
}

#[test]
fn given_the_default_relative_data_dir_when_a_topic_is_created_should_save_the_catalog() {
    // `make run` uses ./weir-data; glommio's directory calls once failed on a
    // relative path, so every CreateTopics answered KAFKA_STORAGE_ERROR.
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    // From the harness's registry: tests in this binary run in parallel, and a port
    // another test's broker holds would make this one refuse to start.
    let port = common::free_ports(2);
    let log_path = dir.path().join("broker.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_weir"))
        .current_dir(dir.path())
        .args([
            "serve",
            "--single-address",
            "--shards",
            "1",
            "--listen",
            &format!("127.0.0.1:{port}"),
        ])
        .args(["--shard-port-base", &(port + 1).to_string()])
        .stderr(log)
        .spawn()
        .unwrap();
    let guard = common::arm_deadline();
    guard.watch_child(child.id());
    let mut client = None;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while client.is_none() && std::time::Instant::now() < deadline {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        client = Client::connect(("127.0.0.1", port), Duration::from_millis(200)).ok();
        if client.is_none() {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    let Some(mut client) = client else {
        let _ = child.kill();
        let _ = child.wait();
        panic!(
            "broker not up on {port}; log:\n{}",
            std::fs::read_to_string(&log_path).unwrap_or_default()
        );
    };
    let result = client.create_topic("rel", 1, &[]);
    let _ = child.kill();
    let _ = child.wait();
    result.unwrap();
    assert!(dir.path().join("weir-data/rel-0").is_dir());
}
