//! End to end with the project's own client (weir-protocol codecs over a
//! blocking socket): 100,000 keyed records with headers to 8 partitions, read
//! back byte-identical in per-partition order, across a restart.

mod common;

use std::collections::BTreeMap;

use bytes::BytesMut;
use common::Broker;
use weir_protocol::builder::BatchBuilder;
use weir_protocol::record_batch::{BatchWalker, Compression};

const RECORDS: usize = 100_000;
const PARTITIONS: usize = 8;
const PER_BATCH: usize = 500;

fn partition_of(i: usize) -> usize {
    (i * 7919) % PARTITIONS
}

/// (offset, key, value, header value) of one record.
type Stored = (i64, Vec<u8>, Vec<u8>, Vec<u8>);

/// Everything in one partition.
fn read_partition(broker: &Broker, p: usize) -> Vec<Stored> {
    let mut c = broker.client();
    let mut out = Vec::new();
    let mut scratch = Vec::new();
    let mut next = 0i64;
    loop {
        let (hw, records) = c.fetch("keyed", p as i32, next, 1 << 20, 10).unwrap();
        for range in BatchWalker::new(&records) {
            weir_protocol::records::for_each_record(&records[range], &mut scratch, 64 << 20, |r| {
                if r.offset >= next {
                    let h = r.headers.iter().next().map(|(_, v)| v.unwrap().to_vec()).unwrap();
                    out.push((r.offset, r.key.unwrap().to_vec(), r.value.unwrap().to_vec(), h));
                }
            })
            .unwrap();
        }
        next = out.last().map_or(0, |r| r.0 + 1);
        if next >= hw {
            return out;
        }
    }
}

fn check(broker: &Broker) {
    let mut total = 0;
    for p in 0..PARTITIONS {
        let records = read_partition(broker, p);
        let expected: Vec<usize> = (0..RECORDS).filter(|i| partition_of(*i) == p).collect();
        assert_eq!(records.len(), expected.len(), "partition {p} count");
        for (n, ((offset, k, v, h), i)) in records.iter().zip(&expected).enumerate() {
            assert_eq!(*offset, n as i64, "dense offsets");
            assert_eq!(k, format!("key-{i}").as_bytes());
            assert_eq!(v, format!("value-{i}-{}", "y".repeat(i % 100)).as_bytes());
            assert_eq!(h, format!("h{i}").as_bytes());
        }
        total += records.len();
    }
    assert_eq!(total, RECORDS);
}

#[test]
fn given_own_client_when_100k_keyed_records_go_to_8_partitions_should_read_back_identical_across_restart() {
    let mut broker = Broker::start(&["--shards", "2"]);
    let mut c = broker.client();
    c.create_topic("keyed", PARTITIONS as i32, &[]).unwrap();
    let start_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let mut builders: Vec<BatchBuilder> = (0..PARTITIONS)
        .map(|_| BatchBuilder::new(Compression::Lz4))
        .collect();
    let mut out = BytesMut::new();
    let mut by_partition: BTreeMap<usize, usize> = BTreeMap::new();
    for i in 0..RECORDS {
        let p = partition_of(i);
        let (k, v, h) = (
            format!("key-{i}"),
            format!("value-{i}-{}", "y".repeat(i % 100)),
            format!("h{i}"),
        );
        builders[p].push(
            start_ms + i as i64,
            Some(k.as_bytes()),
            Some(v.as_bytes()),
            &[(b"hdr", Some(h.as_bytes()))],
        );
        if builders[p].record_count() == PER_BATCH || i + 1 == RECORDS {
            builders[p].finish_into(&mut out).unwrap();
            let base = c.produce("keyed", p as i32, out.split().freeze(), -1).unwrap();
            assert_eq!(base as usize, *by_partition.get(&p).unwrap_or(&0));
            *by_partition.entry(p).or_default() += PER_BATCH;
        }
    }
    for (p, b) in builders.iter_mut().enumerate() {
        if b.record_count() > 0 {
            b.finish_into(&mut out).unwrap();
            c.produce("keyed", p as i32, out.split().freeze(), -1).unwrap();
        }
    }
    check(&broker);
    // By time: the first record has timestamp start_ms, so start_ms finds offset 0.
    assert_eq!(c.list_offset("keyed", 0, start_ms).unwrap().0, 0);
    broker.restart();
    check(&broker);
}
