//! Prometheus text exposition (format 0.0.4) of every shard's snapshot, written
//! by hand: a scrape renders a few hundred lines, and a registry crate would put
//! atomics or locks on the hot path for what `Cell`s do here. Families are
//! grouped (one HELP/TYPE each), label values escaped, histograms cumulative
//! with `le` in seconds or bytes, as Prometheus expects.

use std::collections::BTreeMap;
use std::fmt::Write;

use kafka_protocol::messages::ApiKey;
use kafka_protocol::ResponseError;

use super::snapshot::{PartitionSample, ShardSnapshot};
use crate::metrics::Buckets;
use crate::metrics::Flow;

/// A family rendered from one field: name, help, and how to read the value.
type Row<T, V> = (&'static str, &'static str, fn(&T) -> V);

/// What the shards do not report themselves: the watchdog's view.
pub struct Health<'a> {
    pub ready: &'a [bool],
    pub stalls: &'a [u64],
}

pub fn render(shards: &[ShardSnapshot], health: &Health<'_>) -> String {
    let mut out = String::with_capacity(16 * 1024);
    shard_flows(&mut out, shards);
    partition_flows(&mut out, shards);
    requests(&mut out, shards);
    storage(&mut out, shards);
    partitions(&mut out, shards);
    lag(&mut out, shards);
    runtime(&mut out, shards, health);
    backlog(&mut out, shards);
    timers(&mut out, shards);
    out
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// Escape a label value: backslash, double quote and newline.
fn esc(value: &str) -> String {
    value
        .replace('\\', r"\\")
        .replace('"', "\\\"")
        .replace('\n', r"\n")
}

fn api_name(key: i16) -> String {
    ApiKey::try_from(key).map_or_else(|()| format!("api{key}"), |k| format!("{k:?}"))
}

fn shard_flows(out: &mut String, shards: &[ShardSnapshot]) {
    let rows: [Row<ShardSnapshot, u64>; 4] = [
        (
            "weir_bytes_in_total",
            "Batch bytes producers appended, per owning shard.",
            |s| s.bytes_in,
        ),
        (
            "weir_records_in_total",
            "Records producers appended, per owning shard.",
            |s| s.records_in,
        ),
        (
            "weir_bytes_out_total",
            "Batch bytes fetch responses carried, per answering shard.",
            |s| s.bytes_out,
        ),
        (
            "weir_records_out_total",
            "Records fetch responses carried, per answering shard.",
            |s| s.records_out,
        ),
    ];
    for (name, help, get) in rows {
        per_shard(out, shards, name, "counter", help, |s| get(s).to_string());
    }
}

fn partition_flows(out: &mut String, shards: &[ShardSnapshot]) {
    let mut inflow: BTreeMap<(&str, i32), Flow> = BTreeMap::new();
    for p in shards.iter().flat_map(|s| &s.partitions) {
        let f = inflow.entry((&p.topic, p.partition)).or_default();
        f.bytes += p.bytes_in;
        f.records += p.records_in;
    }
    // Reads are counted by the shard that answered the fetch: sum them.
    let mut outflow: BTreeMap<(&str, i32), Flow> = BTreeMap::new();
    for (topic, partition, flow) in shards.iter().flat_map(|s| &s.out) {
        let f = outflow.entry((topic, *partition)).or_default();
        f.bytes += flow.bytes;
        f.records += flow.records;
    }
    for (map, dir) in [(&inflow, "in"), (&outflow, "out")] {
        for (what, get) in [
            ("bytes", (|f: &Flow| f.bytes) as fn(&Flow) -> u64),
            ("records", |f| f.records),
        ] {
            let name = format!("weir_partition_{what}_{dir}_total");
            family(out, &name, "counter", &format!("{what} {dir}, per partition."));
            for ((topic, partition), f) in map.iter() {
                let _ = writeln!(
                    out,
                    "{name}{{topic=\"{}\",partition=\"{partition}\"}} {}",
                    esc(topic),
                    get(f)
                );
            }
        }
    }
}

fn requests(out: &mut String, shards: &[ShardSnapshot]) {
    family(
        out,
        "weir_requests_total",
        "counter",
        "Requests answered, per shard and API.",
    );
    for s in shards {
        for (key, b) in &s.requests {
            let _ = writeln!(
                out,
                "weir_requests_total{{shard=\"{}\",api=\"{}\"}} {}",
                s.shard,
                api_name(*key),
                b.count()
            );
        }
    }
    family(
        out,
        "weir_request_errors_total",
        "counter",
        "Partitions or requests answered with an error code, per shard, API and code.",
    );
    for s in shards {
        let mut errors = s.errors.clone();
        errors.sort_unstable();
        for ((key, code), n) in errors {
            let error = ResponseError::try_from_code(code)
                .map_or_else(|| format!("code{code}"), |e| format!("{e:?}"));
            let _ = writeln!(
                out,
                "weir_request_errors_total{{shard=\"{}\",api=\"{}\",code=\"{code}\",error=\"{error}\"}} {n}",
                s.shard,
                api_name(key)
            );
        }
    }
    family(
        out,
        "weir_request_latency_seconds",
        "histogram",
        "Time from a request's decode to its answer.",
    );
    for s in shards {
        for (key, b) in &s.requests {
            let labels = format!("shard=\"{}\",api=\"{}\"", s.shard, api_name(*key));
            histogram(out, "weir_request_latency_seconds", &labels, b, 1e6);
        }
    }
}

/// Cumulative buckets; the recorded unit divided by `per` is the exposed one.
/// One histogram family with a series per shard (`shard="N"`), values divided by `per`.
fn shard_histograms(
    out: &mut String,
    name: &str,
    help: &str,
    shards: &[ShardSnapshot],
    buckets: impl Fn(&ShardSnapshot) -> &Buckets,
    per: f64,
) {
    family(out, name, "histogram", help);
    for s in shards {
        histogram(out, name, &format!("shard=\"{}\"", s.shard), buckets(s), per);
    }
}

fn histogram(out: &mut String, name: &str, labels: &str, b: &Buckets, per: f64) {
    let mut cumulative = 0;
    for (bound, count) in b.bounds.iter().zip(&b.counts) {
        cumulative += count;
        let le = *bound as f64 / per;
        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{le}\"}} {cumulative}");
    }
    let total = b.count();
    let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {total}");
    let _ = writeln!(out, "{name}_sum{{{labels}}} {}", b.sum as f64 / per);
    let _ = writeln!(out, "{name}_count{{{labels}}} {total}");
}

fn storage(out: &mut String, shards: &[ShardSnapshot]) {
    shard_histograms(
        out,
        "weir_fsync_latency_seconds",
        "fdatasync of segment files, per shard.",
        shards,
        |s| &s.fsync_latency_us,
        1e6,
    );
    shard_histograms(
        out,
        "weir_group_commit_bytes",
        "Bytes one fdatasync made durable (a group commit), per shard.",
        shards,
        |s| &s.group_commit_bytes,
        1.0,
    );
    shard_histograms(
        out,
        "weir_syncfs_latency_seconds",
        "syncfs of a data filesystem by the shard-wide flush.ms sync, per shard.",
        shards,
        |s| &s.syncfs_latency_us,
        1e6,
    );
    reads(out, shards);
}

/// Where log reads were served from: tail cache, segment file, read-ahead.
fn reads(out: &mut String, shards: &[ShardSnapshot]) {
    family(
        out,
        "weir_log_reads_total",
        "counter",
        "Log reads by where they were served from: the tail cache or the segment files.",
    );
    for s in shards {
        let _ = writeln!(
            out,
            "weir_log_reads_total{{shard=\"{}\",source=\"cache\"}} {}",
            s.shard, s.reads_cached
        );
        let _ = writeln!(
            out,
            "weir_log_reads_total{{shard=\"{}\",source=\"file\"}} {}",
            s.shard, s.reads_file
        );
    }
    per_shard(
        out,
        shards,
        "weir_read_ahead_started_total",
        "counter",
        "Segment-file reads started ahead of a consumer reading in order.",
        |s| s.read_ahead_started.to_string(),
    );
    per_shard(
        out,
        shards,
        "weir_open_segment_files",
        "gauge",
        "Sealed-segment files the shard's descriptor cache holds open (--max-open-segment-files).",
        |s| s.open_segment_files[0].to_string(),
    );
    per_shard(
        out,
        shards,
        "weir_open_segment_files_limit",
        "gauge",
        "The shard's share of --max-open-segment-files.",
        |s| s.open_segment_files[1].to_string(),
    );
    per_shard(
        out,
        shards,
        "weir_read_ahead_hits_total",
        "counter",
        "Segment-file reads answered from a read started ahead.",
        |s| s.read_ahead_hits.to_string(),
    );
    per_shard(
        out,
        shards,
        "weir_fetch_wakeups_total",
        "counter",
        "Long-polling fetches woken by new data in one of their partitions.",
        |s| s.fetch_wakeups.to_string(),
    );
    per_shard(
        out,
        shards,
        "weir_tail_cache_hit_ratio",
        "gauge",
        "Share of log reads served from the tail cache since start (NaN before any read).",
        |s| (s.reads_cached as f64 / (s.reads_cached + s.reads_file) as f64).to_string(),
    );
}

fn partitions(out: &mut String, shards: &[ShardSnapshot]) {
    let rows: [Row<PartitionSample, i64>; 6] = [
        (
            "weir_log_size_bytes",
            "Bytes of the partition's segment files.",
            |p| p.size_bytes as i64,
        ),
        ("weir_log_segments", "Segment files of the partition.", |p| {
            p.segments as i64
        }),
        (
            "weir_high_watermark",
            "The partition's high watermark (log end offset).",
            |p| p.high_watermark,
        ),
        (
            "weir_log_start_offset",
            "The partition's first readable offset.",
            |p| p.log_start_offset,
        ),
        (
            "weir_partition_failed",
            "1 when the partition's writer failed and the log waits for a reopen.",
            |p| i64::from(p.failed),
        ),
        (
            "weir_partition_reopen_failures",
            "Failed reopens in a row of a fenced partition (the backoff doubles with each).",
            |p| i64::from(p.reopen_failures),
        ),
    ];
    for (name, help, get) in rows {
        family(out, name, "gauge", help);
        for s in shards {
            for p in &s.partitions {
                let _ = writeln!(
                    out,
                    "{name}{{shard=\"{}\",topic=\"{}\",partition=\"{}\"}} {}",
                    s.shard,
                    esc(&p.topic),
                    p.partition,
                    get(p)
                );
            }
        }
    }
}

fn lag(out: &mut String, shards: &[ShardSnapshot]) {
    let hwm: BTreeMap<(&str, i32), i64> = shards
        .iter()
        .flat_map(|s| &s.partitions)
        .map(|p| ((p.topic.as_str(), p.partition), p.high_watermark))
        .collect();
    let mut committed: Vec<&(String, String, i32, i64)> = shards.iter().flat_map(|s| &s.committed).collect();
    committed.sort_unstable();
    family(
        out,
        "weir_consumer_committed_offset",
        "gauge",
        "A group's committed offset, per partition.",
    );
    for (group, topic, partition, offset) in &committed {
        let _ = writeln!(
            out,
            "weir_consumer_committed_offset{{group=\"{}\",topic=\"{}\",partition=\"{partition}\"}} {offset}",
            esc(group),
            esc(topic)
        );
    }
    family(
        out,
        "weir_consumer_lag",
        "gauge",
        "Records between a group's committed offset and the high watermark.",
    );
    for (group, topic, partition, offset) in committed {
        let Some(end) = hwm.get(&(topic.as_str(), *partition)) else {
            continue; // the topic is gone: no lag to speak of
        };
        let _ = writeln!(
            out,
            "weir_consumer_lag{{group=\"{}\",topic=\"{}\",partition=\"{partition}\"}} {}",
            esc(group),
            esc(topic),
            (end - offset).max(0)
        );
    }
}

/// The backlog bound's counters (handlers/backlog.rs).
fn backlog(out: &mut String, shards: &[ShardSnapshot]) {
    per_shard(
        out,
        shards,
        "weir_backlog_rejections_total",
        "counter",
        "Produce partitions refused past their topic's backlog bound (backlog.policy=reject), per shard.",
        |s| s.backlog[0].to_string(),
    );
    per_shard(
        out,
        shards,
        "weir_backlog_throttled_total",
        "counter",
        "Produce partitions accepted past their topic's backlog bound with a throttle time (backlog.policy=throttle), per shard.",
        |s| s.backlog[1].to_string(),
    );
}

fn runtime(out: &mut String, shards: &[ShardSnapshot], health: &Health<'_>) {
    per_shard(
        out,
        shards,
        "weir_connections",
        "gauge",
        "Open client connections, per shard.",
        |s| s.connections.to_string(),
    );
    per_shard(
        out,
        shards,
        "weir_in_flight_requests",
        "gauge",
        "Requests decoded and not yet answered, per shard.",
        |s| s.in_flight.to_string(),
    );
    family(
        out,
        "weir_quota_throttle_ms_total",
        "counter",
        "Client-quota throttle time ordered (throttle_time_ms answered, connection muted), per shard and quota type.",
    );
    for s in shards {
        for (quota, ms) in [("produce", s.throttle_ms[0]), ("fetch", s.throttle_ms[1])] {
            let _ = writeln!(
                out,
                "weir_quota_throttle_ms_total{{shard=\"{}\",quota=\"{quota}\"}} {ms}",
                s.shard
            );
        }
    }
    family(
        out,
        "weir_mesh_queue_depth",
        "gauge",
        "Messages queued from one shard to another.",
    );
    for s in shards {
        for (peer, depth) in &s.mesh_queued {
            let _ = writeln!(
                out,
                "weir_mesh_queue_depth{{shard=\"{}\",peer=\"{peer}\"}} {depth}",
                s.shard
            );
        }
    }
    per_shard(
        out,
        shards,
        "weir_mesh_pending_calls",
        "gauge",
        "Cross-shard calls a shard awaits answers to.",
        |s| s.mesh_pending_calls.to_string(),
    );
    let ready: Vec<u8> = health.ready.iter().map(|r| u8::from(*r)).collect();
    per_index(
        out,
        &ready,
        "weir_shard_ready",
        "gauge",
        "1 once a shard has opened its partitions and listens.",
    );
    per_index(
        out,
        health.stalls,
        "weir_shard_stalls_total",
        "counter",
        "Times the watchdog saw a shard silent for over a second.",
    );
}

/// One family with one sample per shard snapshot, labelled by shard.
fn per_shard(
    out: &mut String,
    shards: &[ShardSnapshot],
    name: &str,
    kind: &str,
    help: &str,
    value: impl Fn(&ShardSnapshot) -> String,
) {
    family(out, name, kind, help);
    for s in shards {
        let _ = writeln!(out, "{name}{{shard=\"{}\"}} {}", s.shard, value(s));
    }
}

/// One family with one sample per shard, from a per-shard slice (the watchdog's view).
fn per_index<T: std::fmt::Display>(out: &mut String, values: &[T], name: &str, kind: &str, help: &str) {
    family(out, name, kind, help);
    for (shard, v) in values.iter().enumerate() {
        let _ = writeln!(out, "{name}{{shard=\"{shard}\"}} {v}");
    }
}

/// The timer store's gauges and counters (delayed delivery, docs/queues.md).
fn timers(out: &mut String, shards: &[ShardSnapshot]) {
    per_shard(
        out,
        shards,
        "weir_timers_pending",
        "gauge",
        "Delayed records waiting in the shard's timer store.",
        |s| s.timers.pending.to_string(),
    );
    per_shard(
        out,
        shards,
        "weir_timers_fired_total",
        "counter",
        "Delayed records appended durably to their partition, per shard.",
        |s| s.timers.fired.to_string(),
    );
    per_shard(
        out,
        shards,
        "weir_timers_refused_total",
        "counter",
        "Delayed produce parts refused because the shard's timer store held --timers-pending-max records.",
        |s| s.timers.refused.to_string(),
    );
    shard_histograms(
        out,
        "weir_timer_lateness_seconds",
        "How long after its due time a delayed record was appended to its partition, per shard.",
        shards,
        |s| &s.timers.lateness_ms,
        1e3,
    );
    shard_histograms(
        out,
        "weir_timer_sync_wait_seconds",
        "How much of a delayed record's lateness was spent waiting for its FIRE intent to be durable (the disk's fdatasync), per shard.",
        shards,
        |s| &s.timers.sync_wait_ms,
        1e3,
    );
}
