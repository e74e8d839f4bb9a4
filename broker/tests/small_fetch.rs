//! Fetches smaller than what the partitions hold, read from the files, with real clients.
//!
//! A fetch whose partitions ask for more than its `fetch.max.bytes` is shared among the
//! shards that own them (each reads its share), only the owner of the request's first
//! partition may return a batch larger than what is left (KIP-74), and when that leaves an
//! answer empty while a partition had data, every owner reads again allowed one oversized
//! batch. Clients must still read every record, each partition's in order, and never loop on
//! an empty answer.
//!
//! Each test starts a 2-shard broker (zero-hop, or `--single-address` so one fetch spans
//! both shards), writes 1 KiB records in batches of about 0.88 MB with the project's own
//! client, restarts the broker (so reads come from the segment files and their read-ahead,
//! not the tail cache), then reads back with one real client whose whole fetch and partition
//! max are 1 MiB: confluent-kafka, kafka-python, aiokafka (tests/clients/small_fetch.py) and
//! kcat. Two topics: eight partitions of equal size (shares act: 8 x 1 MiB asked of 1 MiB),
//! and two partitions with the first one empty (a share of 0.5 MiB cannot carry a batch, so
//! the answer needs the re-read). Every partition's sequence is compared with 0..N in order.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use common::{kcat, run, Broker};
use weir_protocol::builder::BatchBuilder;
use weir_protocol::record_batch::Compression;

const RECORD_BYTES: usize = 1024;
/// About 0.88 MB per batch: under a 1 MiB fetch max, over half of it.
const RECORDS_PER_BATCH: usize = 860;
const RECORDS_PER_PARTITION: usize = 3 * RECORDS_PER_BATCH;
/// The clients' fetch max and partition fetch max.
const FETCH_MAX: &str = "1048576";

#[derive(Clone, Copy, Debug)]
enum Routing {
    ZeroHop,
    SingleAddress,
}

#[derive(Clone, Copy, Debug)]
enum Reader {
    Confluent,
    KafkaPython,
    Aiokafka,
    Kcat,
}

/// The value of record `seq` of `partition`: "partition:seq" padded with 'x'.
fn value(partition: i32, seq: usize) -> Vec<u8> {
    let mut v = format!("{partition}:{seq}").into_bytes();
    v.resize(RECORD_BYTES, b'x');
    v
}

/// Writes `RECORDS_PER_PARTITION` records to each of `partitions` (acks=all, one batch per
/// request).
fn fill(broker: &Broker, topic: &str, partitions: &[i32]) {
    let mut client = broker.client();
    for &p in partitions {
        for first in (0..RECORDS_PER_PARTITION).step_by(RECORDS_PER_BATCH) {
            let mut b = BatchBuilder::new(Compression::None);
            for seq in first..first + RECORDS_PER_BATCH {
                b.push(0, None, Some(&value(p, seq)), &[]);
            }
            let mut out = BytesMut::new();
            b.finish_into(&mut out).unwrap();
            client.produce(topic, p, out.freeze(), -1).unwrap();
        }
    }
}

fn start(routing: Routing) -> Broker {
    match routing {
        Routing::ZeroHop => Broker::start(&["--shards", "2"]),
        Routing::SingleAddress => Broker::start(&["--shards", "2", "--single-address"]),
    }
}

/// Each partition's sequence numbers, in the order `reader` delivered them.
fn read_with(reader: Reader, broker: &Broker, topic: &str, expected: usize) -> BTreeMap<i32, Vec<usize>> {
    let addr = broker.addr();
    let lines: Vec<(i32, usize)> = match reader {
        Reader::Kcat => {
            let out = run(
                kcat()
                    .args(["-b", &addr, "-t", topic, "-C", "-o", "beginning", "-e", "-q"])
                    .args(["-X", &format!("fetch.max.bytes={FETCH_MAX}")])
                    .args(["-X", &format!("max.partition.fetch.bytes={FETCH_MAX}")])
                    .args(["-f", "%s\n"]),
                None,
            );
            out.lines().map(|l| parse(l.as_bytes())).collect()
        }
        _ => {
            let name = match reader {
                Reader::Confluent => "confluent",
                Reader::KafkaPython => "kafka-python",
                _ => "aiokafka",
            };
            let python = common::venv_python("confluent_kafka, kafka, crc32c, aiokafka");
            let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/small_fetch.py");
            let out = run(
                Command::new(python)
                    .arg(script)
                    .args([name, &addr, topic, &expected.to_string()]),
                None,
            );
            let json: serde_json::Value = serde_json::from_str(out.trim()).expect("one JSON line");
            let mut pairs = Vec::new();
            for (p, seqs) in json["partitions"].as_object().unwrap() {
                for s in seqs.as_array().unwrap() {
                    pairs.push((p.parse().unwrap(), s.as_u64().unwrap() as usize));
                }
            }
            pairs
        }
    };
    let mut by_partition: BTreeMap<i32, Vec<usize>> = BTreeMap::new();
    for (p, s) in lines {
        by_partition.entry(p).or_default().push(s);
    }
    by_partition
}

/// (partition, seq) from a value "partition:seq" followed by padding.
fn parse(value: &[u8]) -> (i32, usize) {
    let end = value.iter().position(|&b| b == b'x').unwrap_or(value.len());
    let text = std::str::from_utf8(&value[..end]).unwrap();
    let (p, s) = text.split_once(':').expect("partition:seq");
    (p.parse().unwrap(), s.parse().unwrap())
}

fn case(routing: Routing, reader: Reader) {
    let mut broker = start(routing);
    let wide = "wide";
    let skew = "skew";
    broker.client().create_topic(wide, 8, &[]).unwrap();
    broker.client().create_topic(skew, 2, &[]).unwrap();
    fill(&broker, wide, &(0..8).collect::<Vec<_>>());
    fill(&broker, skew, &[1]);
    broker.restart();

    for (topic, filled) in [(wide, (0..8).collect::<Vec<i32>>()), (skew, vec![1])] {
        let expected = filled.len() * RECORDS_PER_PARTITION;
        let started = Instant::now();
        let got = read_with(reader, &broker, topic, expected);
        let took = started.elapsed();
        let want: Vec<usize> = (0..RECORDS_PER_PARTITION).collect();
        for &p in &filled {
            let seqs = got.get(&p).map(Vec::as_slice).unwrap_or_default();
            let first_wrong = seqs.iter().zip(&want).position(|(a, b)| a != b);
            assert!(
                seqs == want.as_slice(),
                "{reader:?} {routing:?} topic {topic} partition {p}: read {} of {} records in {took:?}, \
                 first out of place at index {first_wrong:?}",
                seqs.len(),
                want.len()
            );
        }
        let strays: Vec<&i32> = got.keys().filter(|p| !filled.contains(p)).collect();
        assert!(
            strays.is_empty(),
            "{reader:?} {routing:?} topic {topic}: records from empty partitions {strays:?}"
        );
        assert!(
            took < Duration::from_secs(120),
            "{reader:?} {routing:?} topic {topic} took {took:?}"
        );
    }
}

#[test]
fn given_confluent_kafka_with_a_1_mib_fetch_max_in_zero_hop_mode_when_it_reads_from_the_files_should_get_every_partition_in_order(
) {
    case(Routing::ZeroHop, Reader::Confluent);
}

#[test]
fn given_confluent_kafka_with_a_1_mib_fetch_max_in_single_address_mode_when_it_reads_from_the_files_should_get_every_partition_in_order(
) {
    case(Routing::SingleAddress, Reader::Confluent);
}

#[test]
fn given_kafka_python_with_a_1_mib_fetch_max_in_single_address_mode_when_it_reads_from_the_files_should_get_every_partition_in_order(
) {
    case(Routing::SingleAddress, Reader::KafkaPython);
}

#[test]
fn given_aiokafka_with_a_1_mib_fetch_max_in_single_address_mode_when_it_reads_from_the_files_should_get_every_partition_in_order(
) {
    case(Routing::SingleAddress, Reader::Aiokafka);
}

#[test]
fn given_kcat_with_a_1_mib_fetch_max_in_single_address_mode_when_it_reads_from_the_files_should_get_every_partition_in_order(
) {
    case(Routing::SingleAddress, Reader::Kcat);
}

#[test]
fn given_kcat_with_a_1_mib_fetch_max_in_zero_hop_mode_when_it_reads_from_the_files_should_get_every_partition_in_order(
) {
    case(Routing::ZeroHop, Reader::Kcat);
}
