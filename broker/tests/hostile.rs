//! Hostile clients (issue 6), beyond the single-connection cases of bad_input.rs:
//! floods of garbage, huge announced frames, a slow-loris client, a burst of 2,000
//! connections, and a client that never reads its fetch responses. In each case a
//! well-behaved client keeps normal latency and the broker's RSS (/proc/PID/status)
//! stays bounded while the attack runs and returns near its baseline afterwards.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use common::{batch, Broker};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::{ApiKey, BrokerId, FetchRequest, RequestHeader, RequestKind, TopicName};
use weir_client::blocking::Client;
use weir_protocol::frame;
use weir_protocol::record_batch::Compression;

const MIB: u64 = 1024 * 1024;
/// One well-behaved round trip (produce acks=1 + fetch) must finish within this even on
/// a busy 2-core CI machine in a debug build; a broker stalled by an attacker (one byte
/// per second, a blocked shard) blows through it.
const ROUND_TRIP_MS_MAX: u128 = 750;
/// RSS may stay above its baseline by this much after an attack ends: allocator caches
/// and the tail cache keep some memory, but no per-connection or per-request buffer may.
const RSS_MARGIN_BYTES: u64 = 48 * MIB;

fn rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("broker alive");
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .expect("VmRSS line");
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib * 1024
}

/// A well-behaved client doing produce + fetch round trips; returns the slowest.
struct Good {
    client: Client,
    next: usize,
}

impl Good {
    fn new(broker: &Broker) -> Self {
        let mut client = broker.client();
        client.create_topic("good", 1, &[]).unwrap();
        Good { client, next: 0 }
    }

    fn round_trips(&mut self, count: usize, what: &str) -> Duration {
        let mut slowest = Duration::ZERO;
        for _ in 0..count {
            let t = Instant::now();
            let base = self
                .client
                .produce("good", 0, batch(self.next, 5, Compression::None), 1)
                .unwrap();
            let (_, records) = self.client.fetch("good", 0, base, 1 << 16, 0).unwrap();
            assert!(!records.is_empty(), "{what}: the produced batch is readable");
            self.next += 5;
            slowest = slowest.max(t.elapsed());
        }
        assert!(
            slowest.as_millis() < ROUND_TRIP_MS_MAX,
            "{what}: slowest good round trip {slowest:?}"
        );
        slowest
    }
}

/// Warm the broker up (allocator, tail cache) and take the RSS baseline.
fn baseline(broker: &Broker, good: &mut Good) -> u64 {
    good.round_trips(50, "warm-up");
    std::thread::sleep(Duration::from_millis(200));
    rss_bytes(broker.pid())
}

/// After an attack: RSS back near the baseline within a few seconds.
fn assert_rss_returns(broker: &Broker, base: u64, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let now = rss_bytes(broker.pid());
        if now <= base + RSS_MARGIN_BYTES {
            eprintln!("{what}: RSS {} MiB after, baseline {} MiB", now / MIB, base / MIB);
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: RSS {} MiB stays above baseline {} MiB",
            now / MIB,
            base / MIB
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

#[test]
fn given_floods_of_garbage_and_huge_frames_should_keep_serving_and_free_their_memory() {
    let broker = Broker::start(&[]);
    let mut good = Good::new(&broker);
    let base = baseline(&broker, &mut good);
    let mut rng = 0x1234_5678_9abc_def1u64;
    // 200 connections of random bytes (some with a plausible size prefix).
    let mut conns = Vec::new();
    for i in 0..200 {
        let mut s = TcpStream::connect(broker.addr()).unwrap();
        let len = 1 + xorshift(&mut rng) as usize % 4096;
        let mut bytes: Vec<u8> = (0..len).map(|_| xorshift(&mut rng) as u8).collect();
        if i % 2 == 0 && len > 4 {
            bytes[..4].copy_from_slice(&((len - 4) as u32).to_be_bytes());
        }
        let _ = s.write_all(&bytes);
        conns.push(s);
    }
    good.round_trips(20, "garbage flood");
    drop(conns);
    // 40 connections announce 90 MiB frames (under the 100 MiB limit), send 1.5 MiB and
    // stall: the broker must hold only what arrived (1 MiB read chunks), not 90 MiB each.
    let mut stalled = Vec::new();
    let chunk = vec![0x5au8; 3 * MIB as usize / 2];
    for _ in 0..40 {
        let mut s = TcpStream::connect(broker.addr()).unwrap();
        s.write_all(&(90 * MIB as u32).to_be_bytes()).unwrap();
        s.write_all(&[0, 0, 0, 9, 0, 0, 0, 1]).unwrap();
        s.write_all(&chunk).unwrap();
        stalled.push(s);
    }
    std::thread::sleep(Duration::from_millis(500));
    let during = rss_bytes(broker.pid());
    eprintln!(
        "huge frames: RSS {} MiB during, baseline {} MiB",
        during / MIB,
        base / MIB
    );
    assert!(
        during < base + 40 * 2 * MIB + RSS_MARGIN_BYTES,
        "announced sizes must not be allocated up front"
    );
    good.round_trips(20, "huge frames pending");
    // A truncated frame then a hang-up, on all of them at once.
    drop(stalled);
    std::thread::sleep(Duration::from_millis(300));
    good.round_trips(20, "after hang-ups");
    assert_rss_returns(&broker, base, "garbage and huge frames");
}

#[test]
fn given_slow_loris_clients_sending_one_byte_per_second_should_not_delay_others() {
    let broker = Broker::start(&[]);
    let mut good = Good::new(&broker);
    let base = baseline(&broker, &mut good);
    // A real Metadata request, dribbled one byte per second by 50 clients.
    let mut request = BytesMut::new();
    let header = RequestHeader::default()
        .with_request_api_key(ApiKey::Metadata as i16)
        .with_request_api_version(1)
        .with_correlation_id(1);
    let body = RequestKind::Metadata(kafka_protocol::messages::MetadataRequest::default());
    frame::encode_request(&mut request, &header, &body).unwrap();
    let mut slow: Vec<TcpStream> = (0..50)
        .map(|_| TcpStream::connect(broker.addr()).unwrap())
        .collect();
    let started = Instant::now();
    for (i, byte) in request.iter().take(6).enumerate() {
        for s in &mut slow {
            s.write_all(&[*byte]).unwrap();
        }
        let slowest = good.round_trips(10, "slow loris");
        eprintln!("slow loris: byte sent, slowest good round trip {slowest:?}");
        let next_second = Duration::from_secs(i as u64 + 1).saturating_sub(started.elapsed());
        std::thread::sleep(next_second);
    }
    drop(slow);
    good.round_trips(10, "after slow loris");
    assert_rss_returns(&broker, base, "slow loris");
}

#[test]
fn given_2000_connections_opened_and_dropped_in_a_burst_should_keep_serving() {
    let broker = Broker::start(&[]);
    let mut good = Good::new(&broker);
    let base = baseline(&broker, &mut good);
    for round in 0..2 {
        let t = Instant::now();
        let mut conns = Vec::with_capacity(2000);
        for i in 0..2000 {
            let mut s = TcpStream::connect(broker.addr()).unwrap();
            if i % 3 == 0 {
                // Some send half a size prefix before vanishing.
                let _ = s.write_all(&[0, 0]);
            }
            conns.push(s);
        }
        let during = rss_bytes(broker.pid());
        good.round_trips(10, "2000 connections open");
        drop(conns);
        eprintln!(
            "burst {round}: 2000 connections in {:?}, RSS {} MiB (baseline {} MiB)",
            t.elapsed(),
            during / MIB,
            base / MIB
        );
    }
    std::thread::sleep(Duration::from_millis(500));
    good.round_trips(20, "after the burst");
    assert_rss_returns(&broker, base, "connection burst");
}

/// A Fetch frame for partition 0 of `topic` named `copies` times, offset 0, 1 MiB each.
fn fetch_frame_of(header: RequestHeader, topic: &str, copies: usize, max_wait_ms: i32) -> BytesMut {
    let part = FetchPartition::default()
        .with_partition(0)
        .with_fetch_offset(0)
        .with_partition_max_bytes(MIB as i32);
    let req = FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(max_wait_ms)
        .with_min_bytes(1)
        .with_max_bytes(MIB as i32)
        .with_topics(vec![FetchTopic::default()
            .with_topic(TopicName(topic.to_string().into()))
            .with_partitions(vec![part; copies])]);
    let mut out = BytesMut::new();
    frame::encode_request(&mut out, &header, &RequestKind::Fetch(req)).unwrap();
    out
}

fn fetch_frame(correlation_id: i32) -> BytesMut {
    let header = RequestHeader::default()
        .with_request_api_key(ApiKey::Fetch as i16)
        .with_request_api_version(12)
        .with_correlation_id(correlation_id)
        // 16 KiB per request, so kernel socket buffers (several MiB on loopback) hold
        // hundreds of requests, not tens of thousands, before the writer blocks.
        .with_client_id(Some("x".repeat(16 * 1024).into()));
    fetch_frame_of(header, "big", 1, 0)
}

#[test]
fn given_a_client_that_never_reads_its_fetch_responses_should_stop_reading_it_with_bounded_memory() {
    const IN_FLIGHT: usize = 8;
    let broker = Broker::start(&["--in-flight-max", &IN_FLIGHT.to_string()]);
    let mut good = Good::new(&broker);
    let mut c = broker.client();
    c.create_topic("big", 1, &[]).unwrap();
    // ~4 MiB of data, so every fetch answers a full 1 MiB.
    for n in 0..40 {
        c.produce("big", 0, batch(n * 4000, 4000, Compression::None), 1)
            .unwrap();
    }
    let base = baseline(&broker, &mut good);
    let mut hog = TcpStream::connect(broker.addr()).unwrap();
    hog.set_write_timeout(Some(Duration::from_secs(2))).unwrap();
    let mut sent = 0usize;
    // Pipeline fetches until the broker stops reading (the write blocks for 2 s).
    while sent < 5000 {
        match hog.write_all(&fetch_frame(sent as i32)) {
            Ok(()) => sent += 1,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => break,
            Err(e) => panic!("hog write failed: {e}"),
        }
    }
    let during = rss_bytes(broker.pid());
    eprintln!(
        "non-reader: broker stopped reading after {sent} fetches; RSS {} MiB (baseline {} MiB)",
        during / MIB,
        base / MIB
    );
    assert!(
        sent < 5000,
        "the broker must stop reading a client that does not read"
    );
    // Answers held: the in-flight queue plus the one being written, 1 MiB each, plus
    // socket buffers; far below 5000 x 1 MiB.
    let bound = base + (IN_FLIGHT as u64 + 2) * 2 * MIB + RSS_MARGIN_BYTES;
    assert!(
        during < bound,
        "RSS {} MiB over bound {} MiB",
        during / MIB,
        bound / MIB
    );
    good.round_trips(20, "while a client does not read");
    // It can still drain what it asked for, then leave.
    hog.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = vec![0u8; MIB as usize];
    let mut drained = 0usize;
    while drained < 4 * MIB as usize {
        match hog.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => drained += n,
        }
    }
    assert!(drained >= 4 * MIB as usize, "the answers were kept, in order");
    drop(hog);
    std::thread::sleep(Duration::from_millis(300));
    good.round_trips(20, "after the non-reader left");
    assert_rss_returns(&broker, base, "non-reading client");
}

/// One Fetch naming the same empty partition 40,000 times (a 640 KB request) waits on
/// that partition once. Each waiting partition used to hold a clone of the request
/// task's waker, and glommio counted a task's wakers in an i16: the 32,768th clone
/// panicked, the panic poisoned a lock in a destructor, and the whole process aborted.
#[test]
fn given_a_fetch_naming_one_partition_40000_times_should_answer_it_and_keep_serving() {
    const COPIES: usize = 40_000;
    let broker = Broker::start(&[]);
    let mut good = Good::new(&broker);
    broker.client().create_topic("dup", 1, &[]).unwrap();
    let header = RequestHeader::default()
        .with_request_api_key(ApiKey::Fetch as i16)
        .with_request_api_version(4)
        .with_correlation_id(77);
    let out = fetch_frame_of(header, "dup", COPIES, 500);
    let mut conn = TcpStream::connect(broker.addr()).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    conn.write_all(&out).unwrap();
    let mut len = [0u8; 4];
    conn.read_exact(&mut len)
        .expect("an answer, not a closed connection");
    let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
    conn.read_exact(&mut body).unwrap();
    assert_eq!(&body[..4], &77i32.to_be_bytes(), "the fetch's own answer");
    good.round_trips(20, "after the fetch");
}

/// A Fetch asking for 2 GiB gets at most the broker's fetch cap (Kafka's
/// `fetch.max.bytes`, 55 MiB) plus one batch: a file read allocates about what is
/// asked, and a segment-sized buffer per request is a memory attack.
#[test]
fn given_a_fetch_asking_for_2_gib_should_answer_at_most_the_fetch_cap() {
    const CAP: usize = 57_671_680;
    const BATCH_BYTES: usize = 512 << 10;
    let broker = Broker::start(&[]);
    let mut c = broker.client();
    c.create_topic("wide", 1, &[]).unwrap();
    let value = vec![7u8; BATCH_BYTES / 8];
    let mut produced = 0;
    while produced < CAP + 8 * BATCH_BYTES {
        let mut b = weir_protocol::builder::BatchBuilder::new(Compression::None);
        for _ in 0..8 {
            b.push(0, None, Some(&value), &[]);
        }
        let mut out = BytesMut::new();
        b.finish_into(&mut out).unwrap();
        produced += out.len();
        c.produce("wide", 0, out.freeze(), 1).unwrap();
    }
    let (_, records) = c.fetch("wide", 0, 0, i32::MAX, 0).unwrap();
    eprintln!("asked 2 GiB of {produced} bytes, got {}", records.len());
    assert!(records.len() > CAP / 2, "a full answer: {}", records.len());
    assert!(
        records.len() <= CAP + 2 * BATCH_BYTES,
        "at most the cap and one batch: {}",
        records.len()
    );
    let mut good = Good::new(&broker);
    good.round_trips(5, "after the wide fetch");
}
