//! delay-bench: delayed delivery against a running Weir (run by
//! loadgen/scripts/delay-bench.sh). Three measurements in one run:
//! 1. produce throughput, plain records vs the same records each with a
//!    `weir-delay-ms` header (due in 10 minutes), same sizes, same pipeline;
//! 2. the broker's RSS before and after the delayed phase (`--pending` timers
//!    pending), from /proc/PID/status;
//! 3. firing lateness at `--rate` timers per second: records with
//!    `weir-deliver-at-ms` one second ahead, produced at that rate, read back
//!    by a fetch loop; lateness = time read - due (includes the fetch latency).
//!
//! Beside each phase, the broker's CPU seconds (utime + stime from
//! /proc/PID/stat), per GB moved for the produce phases.
//! `DELAY_BENCH_TRACE=1` prints every record read more than 50 ms late (due,
//! read time, offset) to stderr, to match against the broker's debug log.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use weir_client::blocking::Client;
use weir_protocol::builder::BatchBuilder;
use weir_protocol::record_batch::{BatchWalker, Compression};
use weir_protocol::records::for_each_record;

const BATCH_RECORDS: usize = 100;
const IN_FLIGHT: usize = 8;

struct Args {
    bootstrap: String,
    broker_pid: u32,
    pending: usize,
    record_bytes: usize,
    rate: usize,
    secs: u64,
}

fn args() -> Args {
    let mut a = Args {
        bootstrap: "127.0.0.1:9092".into(),
        broker_pid: 0,
        pending: 1_000_000,
        record_bytes: 1024,
        rate: 50_000,
        secs: 5,
    };
    let v: Vec<String> = std::env::args().skip(1).collect();
    for pair in v.chunks(2) {
        let value = pair.get(1).cloned().unwrap_or_default();
        match pair[0].as_str() {
            "--bootstrap" => a.bootstrap = value,
            "--broker-pid" => a.broker_pid = value.parse().expect("pid"),
            "--pending" => a.pending = value.parse().expect("count"),
            "--record-bytes" => a.record_bytes = value.parse().expect("bytes"),
            "--rate" => a.rate = value.parse().expect("rate"),
            "--secs" => a.secs = value.parse().expect("secs"),
            other => panic!("unknown flag {other}"),
        }
    }
    a
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// The broker's user + system CPU seconds so far.
fn cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) start at field 3.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15, i.e. 11 and 12 after the name.
    // SAFETY: sysconf reads a constant of the C library; no memory is passed.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    (ticks(11) + ticks(12)) / hz
}

fn batch(records: usize, value: &[u8], header: Option<(&[u8], &[u8])>) -> Bytes {
    let mut b = BatchBuilder::new(Compression::None);
    let now = now_ms();
    let hs: Vec<(&[u8], Option<&[u8]>)> = header.iter().map(|(k, v)| (*k, Some(*v))).collect();
    for _ in 0..records {
        b.push(now, None, Some(value), &hs);
    }
    let mut out = BytesMut::new();
    b.finish_into(&mut out).unwrap();
    out.freeze()
}

/// Produce `total` records in batches, `IN_FLIGHT` requests pipelined; MB/s.
fn produce(client: &mut Client, topic: &str, total: usize, one: &Bytes) -> f64 {
    let start = Instant::now();
    let (mut sent, mut answered) = (0usize, 0usize);
    let batches = total / BATCH_RECORDS;
    while answered < batches {
        while sent < batches && sent - answered < IN_FLIGHT {
            client.send_produce(topic, 0, one.clone(), 1).unwrap();
            sent += 1;
        }
        client.receive_produce().unwrap();
        answered += 1;
    }
    (batches * one.len()) as f64 / start.elapsed().as_secs_f64() / 1e6
}

fn main() {
    let a = args();
    let mut client = Client::connect(a.bootstrap.as_str(), Duration::from_secs(5)).unwrap();
    for t in ["bench-plain", "bench-delayed", "bench-late"] {
        client.create_topic(t, 1, &[]).unwrap();
    }
    let value = vec![b'x'; a.record_bytes];
    let plain = batch(BATCH_RECORDS, &value, None);
    let delayed = batch(BATCH_RECORDS, &value, Some((b"weir-delay-ms", b"600000")));
    let cpu0 = cpu_secs(a.broker_pid);
    let plain_mbs = produce(&mut client, "bench-plain", a.pending, &plain);
    let cpu1 = cpu_secs(a.broker_pid);
    std::thread::sleep(Duration::from_secs(2));
    let rss_before = rss_kib(a.broker_pid);
    let cpu2 = cpu_secs(a.broker_pid);
    let delayed_mbs = produce(&mut client, "bench-delayed", a.pending, &delayed);
    let cpu3 = cpu_secs(a.broker_pid);
    std::thread::sleep(Duration::from_secs(2));
    let rss_after = rss_kib(a.broker_pid);
    let gb = |one: &Bytes| (a.pending / BATCH_RECORDS * one.len()) as f64 / 1e9;
    println!(
        "produce {} x {} B records: plain {plain_mbs:.1} MB/s, delayed {delayed_mbs:.1} MB/s (ratio {:.2})",
        a.pending,
        a.record_bytes,
        delayed_mbs / plain_mbs
    );
    println!(
        "broker RSS: {:.1} MiB before, {:.1} MiB with {} pending timers (growth {:.1} MiB)",
        rss_before as f64 / 1024.0,
        rss_after as f64 / 1024.0,
        a.pending,
        (rss_after as f64 - rss_before as f64) / 1024.0
    );
    println!(
        "broker CPU: plain {:.2} CPU-s/GB, delayed {:.2} CPU-s/GB",
        (cpu1 - cpu0) / gb(&plain),
        (cpu3 - cpu2) / gb(&delayed)
    );
    let cpu4 = cpu_secs(a.broker_pid);
    lateness(&a);
    println!(
        "broker CPU during the lateness phase: {:.2} CPU-s",
        cpu_secs(a.broker_pid) - cpu4
    );
}

/// Produce `rate` timers/s for `secs`, each due 1 s after it is produced,
/// while a fetch loop reads them back; prints lateness percentiles.
fn lateness(a: &Args) {
    let total = a.rate * a.secs as usize;
    let bootstrap = a.bootstrap.clone();
    let reader = std::thread::spawn(move || {
        let mut c = Client::connect(bootstrap.as_str(), Duration::from_secs(5)).unwrap();
        let (mut offset, mut late) = (0i64, Vec::with_capacity(total));
        let mut scratch = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        while late.len() < total && Instant::now() < deadline {
            let (_, records) = c.fetch("bench-late", 0, offset, 8 << 20, 50).unwrap();
            let read_at = now_ms();
            for r in BatchWalker::new(&records) {
                for_each_record(&records[r], &mut scratch, 64 << 20, |rec| {
                    let due: i64 = rec
                        .headers
                        .iter()
                        .find(|(k, _)| *k == b"weir-deliver-at-ms")
                        .and_then(|(_, v)| std::str::from_utf8(v?).ok()?.parse().ok())
                        .unwrap_or(read_at);
                    late.push(read_at - due);
                    if std::env::var_os("DELAY_BENCH_TRACE").is_some() && read_at - due > 50 {
                        eprintln!(
                            "late {} ms: due {due} read {read_at} offset {}",
                            read_at - due,
                            rec.offset
                        );
                    }
                    offset = rec.offset + 1;
                })
                .unwrap();
            }
        }
        late
    });
    let mut client = Client::connect(a.bootstrap.as_str(), Duration::from_secs(5)).unwrap();
    let value = vec![b'y'; 100];
    // 100 batches per second of rate/100 records, each batch one due time.
    let per_batch = (a.rate / 100).max(1);
    let start = Instant::now();
    let mut sent = 0usize;
    while sent < total {
        let target = start + Duration::from_micros((sent as u64 * 1_000_000) / a.rate as u64);
        if let Some(wait) = target.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let due = (now_ms() + 1_000).to_string();
        let b = batch(per_batch, &value, Some((b"weir-deliver-at-ms", due.as_bytes())));
        client.produce("bench-late", 0, b, 1).unwrap();
        sent += per_batch;
    }
    let mut late = reader.join().unwrap();
    late.sort_unstable();
    let pct = |p: f64| {
        late.get(((late.len() as f64 * p) as usize).min(late.len().saturating_sub(1)))
            .copied()
    };
    println!(
        "lateness at {} timers/s ({} read of {total}): p50 {:?} ms, p99 {:?} ms, max {:?} ms, early {}",
        a.rate,
        late.len(),
        pct(0.5),
        pct(0.99),
        late.last(),
        late.iter().filter(|l| **l < 0).count()
    );
}
