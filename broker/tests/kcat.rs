//! End to end with Debian's kcat (librdkafka 2.0.2, an old client that
//! negotiates old API versions) against the real binary.

mod common;

use std::collections::BTreeMap;
use std::io::Write;

use common::{kcat, run, Broker};

const RECORDS: usize = 100_000;
const PARTITIONS: i32 = 8;

/// (partition, offset, key, value, headers) per consumed line.
type Consumed = Vec<(i32, i64, String, String, String)>;

fn consume_all(broker: &Broker, topic: &str) -> Consumed {
    let out = run(
        kcat()
            .args([
                "-b",
                &broker.addr(),
                "-t",
                topic,
                "-C",
                "-o",
                "beginning",
                "-e",
                "-q",
            ])
            .args(["-f", "%p\t%o\t%k\t%s\t%h\n"]),
        None,
    );
    out.lines()
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            assert_eq!(f.len(), 5, "unexpected kcat line {l:?}");
            (
                f[0].parse().unwrap(),
                f[1].parse().unwrap(),
                f[2].into(),
                f[3].into(),
                f[4].into(),
            )
        })
        .collect()
}

fn check_all_back(consumed: &Consumed) {
    assert_eq!(consumed.len(), RECORDS, "every record consumed exactly once");
    let mut by_partition: BTreeMap<i32, Vec<(i64, usize)>> = BTreeMap::new();
    let mut seen = vec![false; RECORDS];
    for (p, o, k, v, h) in consumed {
        let i: usize = k.strip_prefix("key-").unwrap().parse().unwrap();
        assert_eq!(v, &format!("value-{i}-{}", "x".repeat(i % 50)), "value of {k}");
        assert_eq!(h, "source=kcat", "headers of {k}");
        assert!(!seen[i], "{k} consumed twice");
        seen[i] = true;
        by_partition.entry(*p).or_default().push((*o, i));
    }
    assert_eq!(
        by_partition.len(),
        PARTITIONS as usize,
        "keys spread over every partition"
    );
    for (p, mut records) in by_partition {
        records.sort();
        for (n, (o, _)) in records.iter().enumerate() {
            assert_eq!(*o, n as i64, "partition {p} offsets are dense from 0");
        }
        assert!(
            records.windows(2).all(|w| w[0].1 < w[1].1),
            "partition {p} keeps produce order"
        );
    }
}

/// RECORDS keyed records into `orders` with kcat.
fn produce_all(broker: &Broker) {
    let input = broker.dir.path().join("input.txt");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&input).unwrap());
    for i in 0..RECORDS {
        writeln!(f, "key-{i}\tvalue-{i}-{}", "x".repeat(i % 50)).unwrap();
    }
    drop(f);
    run(
        kcat()
            .args([
                "-b",
                &broker.addr(),
                "-t",
                "orders",
                "-P",
                "-K",
                "\t",
                "-H",
                "source=kcat",
            ])
            .args(["-X", "linger.ms=5"]),
        Some(&input),
    );
}

#[test]
fn given_kcat_when_100k_keyed_records_go_to_8_partitions_should_come_back_identical_and_survive_restart() {
    let mut broker = Broker::start(&[]);
    broker.client().create_topic("orders", PARTITIONS, &[]).unwrap();
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    produce_all(&broker);
    check_all_back(&consume_all(&broker, "orders"));

    let mut client = broker.client();
    let mut total = 0;
    for p in 0..PARTITIONS {
        let (earliest, _) = client.list_offset("orders", p, -2).unwrap();
        let (latest, _) = client.list_offset("orders", p, -1).unwrap();
        assert_eq!(earliest, 0);
        total += latest;
        let (by_old_time, _) = client.list_offset("orders", p, before - 60_000).unwrap();
        assert_eq!(
            by_old_time, 0,
            "a time before every record finds the first offset"
        );
        let (by_future, ts) = client.list_offset("orders", p, before + 3_600_000).unwrap();
        assert_eq!((by_future, ts), (-1, -1), "a time after every record finds none");
    }
    assert_eq!(total, RECORDS as i64);

    broker.restart();
    check_all_back(&consume_all(&broker, "orders"));
}

/// After a restart every read comes from the segment files: on the DMA read
/// path (the default) through the shards' own ports and through one forwarding
/// shard (single-address: the other shard's answers are copied back), and on the
/// copy path. Each gives back every record, identical, in produce order.
#[test]
fn given_rolled_segments_when_read_from_the_files_on_each_read_path_should_come_back_identical_in_order() {
    let modes: [&[&str]; 3] = [
        &["--shards", "2"],
        &["--shards", "2", "--single-address"],
        &["--shards", "2", "--fetch-read-path", "copy"],
    ];
    for extra in modes {
        let mut broker = Broker::start(extra);
        let small = [("segment.bytes", "65536")];
        broker
            .client()
            .create_topic("orders", PARTITIONS, &small)
            .unwrap();
        produce_all(&broker);
        broker.restart();
        check_all_back(&consume_all(&broker, "orders"));
        let log = broker.log();
        assert!(!log.contains("dropped off its shard"), "{extra:?}: {log}");
        let segments = std::fs::read_dir(broker.data_dir().join("orders-0"))
            .unwrap()
            .filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "log"))
            .count();
        // The precondition only: reads must cross rolled segments. How many a
        // partition gets depends on how the producer spread the records (a clean CI
        // run saw exactly 3 with `> 3` asserted), so ask for at least two.
        assert!(segments >= 2, "{extra:?}: {segments} segments");
    }
}

#[test]
fn given_kcat_when_producing_each_codec_should_round_trip_and_store_compressed_batches() {
    let broker = Broker::start(&[]);
    for codec in ["gzip", "snappy", "lz4", "zstd"] {
        let topic = format!("codec-{codec}");
        broker.client().create_topic(&topic, 1, &[]).unwrap();
        let input = broker.dir.path().join(format!("{codec}.txt"));
        let lines: Vec<String> = (0..2000)
            .map(|i| format!("k{i}:{codec} value {i} {}", "abc".repeat(20)))
            .collect();
        std::fs::write(&input, lines.join("\n") + "\n").unwrap();
        run(
            kcat().args(["-b", &broker.addr(), "-t", &topic, "-P", "-K", ":", "-z", codec]),
            Some(&input),
        );
        let consumed = consume_all(&broker, &topic);
        let got: Vec<String> = consumed
            .iter()
            .map(|(_, _, k, v, _)| format!("{k}:{v}"))
            .collect();
        assert_eq!(got, lines, "{codec} records come back in order");
        // The stored bytes are the producer's compressed batches, not re-encoded.
        let (_, records) = broker.client().fetch(&topic, 0, 0, 1 << 20, 100).unwrap();
        let codecs: Vec<i16> = weir_protocol::record_batch::BatchWalker::new(&records)
            .map(|r| {
                weir_protocol::record_batch::header(&records[r])
                    .unwrap()
                    .attributes
                    .get()
                    & 0x7
            })
            .collect();
        let expected = match codec {
            "gzip" => 1,
            "snappy" => 2,
            "lz4" => 3,
            _ => 4,
        };
        assert!(
            codecs.contains(&expected),
            "{codec} batches stored compressed: {codecs:?}"
        );
    }
}
