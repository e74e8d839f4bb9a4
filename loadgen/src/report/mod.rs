//! The final report: totals (all and after warmup), throughput, latency
//! percentiles and spectra, errors by code, CPU per GB, and the per-second
//! timeline; rendered as a human table, JSON (schema in docs/loadgen.md) and
//! a self-contained HTML page. Main thread only, after the shards finished.

pub mod compare;
pub mod html;
pub mod plot;

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::cli::RunConfig;
use crate::client::cluster::Cluster;
use crate::machine::Machine;
use crate::stats::{spectrum, Interval, Percentiles};

/// Bumped when a field changes meaning or disappears.
pub const SCHEMA: &str = "weir-loadgen/2";

#[derive(Debug, Clone, Default, serde::Serialize, PartialEq, Eq)]
pub struct Counts {
    pub sent_records: u64,
    pub acked_records: u64,
    pub failed_records: u64,
    pub acked_payload_bytes: u64,
    pub acked_batch_bytes: u64,
    pub produce_requests: u64,
    pub consumed_records: u64,
    /// Key + value bytes of the records consumed (after decompression).
    pub consumed_payload_bytes: u64,
    pub consumed_batch_bytes: u64,
    pub fetch_requests: u64,
    /// Transactions committed / aborted (EndTxn answered without error).
    pub txn_committed: u64,
    pub txn_aborted: u64,
    /// read_committed: records of aborted transactions dropped by consumers.
    pub aborted_records_skipped: u64,
    /// Transaction markers fetched (never counted as records).
    pub control_batches: u64,
}

impl Counts {
    fn of(iv: &Interval) -> Self {
        Self {
            sent_records: iv.sent_records,
            acked_records: iv.acked_records,
            failed_records: iv.failed_records,
            acked_payload_bytes: iv.acked_payload_bytes,
            acked_batch_bytes: iv.acked_batch_bytes,
            produce_requests: iv.produce_requests,
            consumed_records: iv.consumed_records,
            consumed_payload_bytes: iv.consumed_payload_bytes,
            consumed_batch_bytes: iv.consumed_batch_bytes,
            fetch_requests: iv.fetch_requests,
            txn_committed: iv.txn_committed,
            txn_aborted: iv.txn_aborted,
            aborted_records_skipped: iv.aborted_records_skipped,
            control_batches: iv.control_batches,
        }
    }
}

/// What `--check-order` found over the whole run (warmup included).
#[derive(Debug, Clone, Default, serde::Serialize, PartialEq, Eq)]
pub struct OrderCheck {
    /// Records whose order stamp was checked.
    pub checked_records: u64,
    /// Records that came after a record of the same producer and partition
    /// with a higher or equal sequence number (stored out of send order, or
    /// twice). Any makes the run fail.
    pub inversions: u64,
    /// Forward jumps of a producer's sequence in a partition (records missing,
    /// or arriving later as inversions).
    pub gaps: u64,
    /// Records under 20 bytes: too short to carry an order stamp.
    pub unstamped_records: u64,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Totals {
    /// Everything, warmup included: compare these with what a broker stored.
    pub all: Counts,
    /// After warmup only: the basis of throughput and latency figures.
    pub measured: Counts,
}

/// The three ways to count what moved, for produce or consume alike.
#[derive(Debug, Clone, Copy, Default, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct Rates {
    pub records_per_s: f64,
    /// Record key + value bytes per second (uncompressed), 10^6 B/s.
    pub payload_mb_per_s: f64,
    /// RecordBatch bytes per second as they crossed the wire (after
    /// compression; batch and record headers included), 10^6 B/s.
    pub wire_mb_per_s: f64,
    /// Payload bytes / wire bytes: the compression ratio (just under 1
    /// without compression: the headers).
    pub compression_ratio: f64,
}

impl Rates {
    fn of(records: u64, payload_bytes: u64, wire_bytes: u64, seconds: f64) -> Self {
        Self {
            records_per_s: records as f64 / seconds,
            payload_mb_per_s: payload_bytes as f64 / 1e6 / seconds,
            wire_mb_per_s: wire_bytes as f64 / 1e6 / seconds,
            compression_ratio: if wire_bytes > 0 {
                payload_bytes as f64 / wire_bytes as f64
            } else {
                0.0
            },
        }
    }
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Throughput {
    /// From the end of warmup to the end of the run.
    pub measured_seconds: f64,
    /// From the end of warmup until the last producer / consumer finished.
    pub produce_seconds: f64,
    pub consume_seconds: f64,
    /// Acknowledged records per produce second.
    pub produce: Rates,
    /// Consumed records per consume second (wire: every batch fetched, also
    /// those read_committed drops, and markers).
    pub consume: Rates,
    /// Committed transactions per second (produce seconds).
    pub txn_committed_per_s: f64,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Latency {
    /// Per batch: intended send time of its first record → acknowledgement.
    pub produce: Percentiles,
    /// Per record: its intended send time → its batch's acknowledgement.
    pub produce_record: Percentiles,
    /// Per record: intended send time → consumer receipt.
    pub e2e: Percentiles,
    /// Per committed transaction: EndTxn(commit) round trip...
    pub txn_commit: Percentiles,
    /// ...and AddPartitionsToTxn sent → EndTxn(commit) answered.
    pub txn: Percentiles,
    /// (percentile, µs) points of the percentile spectrum.
    pub produce_spectrum: Vec<(f64, u64)>,
    pub produce_record_spectrum: Vec<(f64, u64)>,
    pub e2e_spectrum: Vec<(f64, u64)>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Cpu {
    /// User + system seconds of this process over the whole run.
    pub loadgen_cpu_seconds: f64,
    /// Acknowledged plus fetched RecordBatch (wire) bytes, 10^9 bytes, whole run.
    pub gb_moved: f64,
    pub cpu_seconds_per_gb: f64,
}

/// One second of the run. Counts, not rates: divide by `seconds`, the part of
/// the second the run covered (below 1 only for the last, partial one).
#[derive(Debug, Clone, serde::Serialize)]
pub struct TimelinePoint {
    pub second: u64,
    pub seconds: f64,
    pub warmup: bool,
    pub produce_records: u64,
    /// Acknowledged key + value bytes, 10^6 B.
    pub produce_payload_mb: f64,
    /// Acknowledged RecordBatch bytes, 10^6 B.
    pub produce_wire_mb: f64,
    pub consume_records: u64,
    pub consume_payload_mb: f64,
    pub consume_wire_mb: f64,
    pub produce_p50_us: u64,
    pub produce_p99_us: u64,
    pub produce_max_us: u64,
    pub produce_record_p99_us: u64,
    pub e2e_p50_us: u64,
    pub e2e_p99_us: u64,
    pub e2e_max_us: u64,
    pub errors: u64,
    /// Records handed to a Produce request this second (first sends only).
    pub sent_records: u64,
    /// Records given up this second (a non-retriable error or retries out).
    pub failed_records: u64,
    /// This second's errors by name, as in the report's `errors`.
    pub errors_by_code: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct ClusterInfo {
    pub brokers: BTreeMap<i32, String>,
    pub topics: usize,
    /// Of all `topics` together.
    pub partitions: usize,
    pub topic_id: Option<String>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Report {
    pub schema: &'static str,
    pub tool_version: &'static str,
    pub mode: &'static str,
    pub started_unix_ms: u64,
    /// The run was ended by SIGINT or SIGTERM: the figures cover what was
    /// measured until then.
    pub interrupted: bool,
    /// "SIGINT" or "SIGTERM" when interrupted.
    pub interrupted_by: Option<&'static str>,
    /// The error that ended the run early (a broker gone, a fatal error
    /// code): the figures cover what was measured until then.
    pub failed_with: Option<String>,
    pub parameters: RunConfig,
    pub machine: Machine,
    pub cluster: ClusterInfo,
    pub totals: Totals,
    pub throughput: Throughput,
    pub latency: Latency,
    pub errors: BTreeMap<String, u64>,
    pub cpu: Cpu,
    /// With --check-order only.
    pub order: Option<OrderCheck>,
    pub timeline: Vec<TimelinePoint>,
}

/// Wall-clock instants of a run (ns since the Unix epoch).
#[derive(Debug, Clone, Copy)]
pub struct Window {
    pub run_start_ns: u64,
    pub produce_end_ns: u64,
    pub consume_end_ns: u64,
    pub end_ns: u64,
    /// The signal that ended the run early, if one did.
    pub interrupted_by: Option<&'static str>,
}

impl Window {
    /// Seconds from the end of warmup to `end_ns` (at least 1 ms).
    fn seconds_to(&self, end_ns: u64, warmup_s: u64) -> f64 {
        let elapsed_s = end_ns.saturating_sub(self.run_start_ns) as f64 / 1e9;
        (elapsed_s - warmup_s as f64).max(1e-3)
    }
}

/// Whole-run sums and the per-second summaries, built second by second so
/// that memory stays constant however long the run (histograms are only
/// kept for the totals, not per second).
pub struct Aggregate {
    warmup_s: u64,
    pub all: Interval,
    pub measured: Interval,
    pub timeline: Vec<TimelinePoint>,
}

impl Aggregate {
    pub fn new(warmup_ms: u64) -> Self {
        Self {
            warmup_s: warmup_ms.div_ceil(1000),
            all: Interval::new(0),
            measured: Interval::new(0),
            timeline: Vec::new(),
        }
    }

    /// Add one second, merged over all shards.
    pub fn add_second(&mut self, iv: &Interval) {
        self.all.merge(iv);
        if iv.second >= self.warmup_s {
            self.measured.merge(iv);
        }
        self.timeline.push(point(iv, self.warmup_s));
    }
}

impl Throughput {
    fn of(measured: &Interval, window: &Window, warmup_s: u64) -> Self {
        let produce_seconds = window.seconds_to(window.produce_end_ns.max(window.run_start_ns), warmup_s);
        let consume_seconds = window.seconds_to(window.consume_end_ns.max(window.run_start_ns), warmup_s);
        Self {
            measured_seconds: window.seconds_to(window.end_ns, warmup_s),
            produce_seconds,
            consume_seconds,
            produce: Rates::of(
                measured.acked_records,
                measured.acked_payload_bytes,
                measured.acked_batch_bytes,
                produce_seconds,
            ),
            consume: Rates::of(
                measured.consumed_records,
                measured.consumed_payload_bytes,
                measured.consumed_batch_bytes,
                consume_seconds,
            ),
            txn_committed_per_s: measured.txn_committed as f64 / produce_seconds,
        }
    }
}

impl Report {
    pub fn build(
        cfg: &RunConfig,
        cluster: &Cluster,
        machine: Machine,
        aggregate: Aggregate,
        window: Window,
        cpu_seconds: f64,
    ) -> Self {
        let warmup_s = aggregate.warmup_s;
        let Aggregate {
            all,
            measured,
            mut timeline,
            ..
        } = aggregate;
        let elapsed_s = window.end_ns.saturating_sub(window.run_start_ns) as f64 / 1e9;
        for p in &mut timeline {
            p.seconds = (elapsed_s - p.second as f64).clamp(0.0, 1.0);
        }
        let gb_moved = (all.acked_batch_bytes + all.consumed_batch_bytes) as f64 / 1e9;
        Self {
            schema: SCHEMA,
            tool_version: env!("CARGO_PKG_VERSION"),
            mode: cfg.mode.name(),
            started_unix_ms: window.run_start_ns / 1_000_000,
            interrupted: window.interrupted_by.is_some(),
            interrupted_by: window.interrupted_by,
            failed_with: None,
            parameters: cfg.clone(),
            machine,
            cluster: ClusterInfo {
                brokers: cluster.brokers.clone(),
                topics: cluster.topics.len(),
                partitions: cluster.slots.len(),
                topic_id: cluster
                    .topic()
                    .has_topic_id()
                    .then(|| cluster.topic().raw.topic_id.to_string()),
            },
            throughput: Throughput::of(&measured, &window, warmup_s),
            latency: Latency {
                produce: Percentiles::of(&measured.produce_us),
                produce_record: Percentiles::of(&measured.produce_record_us),
                produce_record_spectrum: spectrum(&measured.produce_record_us),
                e2e: Percentiles::of(&measured.e2e_us),
                txn_commit: Percentiles::of(&measured.txn_commit_us),
                txn: Percentiles::of(&measured.txn_us),
                produce_spectrum: spectrum(&measured.produce_us),
                e2e_spectrum: spectrum(&measured.e2e_us),
            },
            errors: all.errors.clone(),
            cpu: Cpu {
                loadgen_cpu_seconds: cpu_seconds,
                gb_moved,
                cpu_seconds_per_gb: if gb_moved > 0.0 {
                    cpu_seconds / gb_moved
                } else {
                    0.0
                },
            },
            order: cfg.check_order.then_some(OrderCheck {
                checked_records: all.order_checked_records,
                inversions: all.order_inversions,
                gaps: all.order_gaps,
                unstamped_records: all.order_unstamped_records,
            }),
            timeline,
            totals: Totals {
                all: Counts::of(&all),
                measured: Counts::of(&measured),
            },
        }
    }

    /// Records that never got a successful answer.
    pub fn failed(&self) -> bool {
        self.totals.all.failed_records > 0
    }

    /// --check-order found records out of send order.
    pub fn out_of_order(&self) -> bool {
        self.order.as_ref().is_some_and(|o| o.inversions > 0)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("the report is plain data")
    }

    /// The final human-readable table.
    pub fn table(&self) -> String {
        let mut s = String::new();
        let t = &self.throughput;
        let a = &self.totals.all;
        let _ = writeln!(
            s,
            "weir-loadgen {} | {} | {} partitions | {} shards | {:.1} s measured",
            self.mode,
            self.parameters.topic,
            self.cluster.partitions,
            self.parameters.threads,
            t.measured_seconds
        );
        self.cut_short_lines(&mut s);
        let _ = writeln!(
            s,
            "{:<8} {:>12} {:>14} {:>14} {:>12}   (payload: key+value bytes; wire: RecordBatch bytes, after compression; MB = 10^6 B)",
            "", "records/s", "payload MB/s", "wire MB/s", "payload/wire"
        );
        let rows = [
            (
                "produce",
                self.parameters.producers > 0,
                &t.produce,
                a.acked_records,
                "acked",
            ),
            (
                "consume",
                self.parameters.consumers > 0,
                &t.consume,
                a.consumed_records,
                "consumed",
            ),
        ];
        for (name, present, r, count, verb) in rows {
            if present {
                let _ = writeln!(
                    s,
                    "{name:<8} {:>12.0} {:>14.1} {:>14.1} {:>12.2}   {verb} {count} (all, incl. warmup)",
                    r.records_per_s, r.payload_mb_per_s, r.wire_mb_per_s, r.compression_ratio
                );
            }
        }
        if self.parameters.producers > 0 && a.failed_records > 0 {
            let _ = writeln!(s, "produce: {} records failed", a.failed_records);
        }
        self.txn_lines(&mut s);
        self.latency_table(&mut s);
        for (name, count) in &self.errors {
            let _ = writeln!(s, "error {name}: {count}");
        }
        if let Some(o) = &self.order {
            let _ = writeln!(
                s,
                "order: {} records checked, {} inversions, {} gaps, {} too short to check",
                o.checked_records, o.inversions, o.gaps, o.unstamped_records
            );
        }
        let _ = writeln!(
            s,
            "cpu: {:.2} s for {:.3} GB moved = {:.2} cpu-s/GB (loadgen process)",
            self.cpu.loadgen_cpu_seconds, self.cpu.gb_moved, self.cpu.cpu_seconds_per_gb
        );
        s
    }

    /// Why the run ended early, when it did.
    fn cut_short_lines(&self, s: &mut String) {
        if self.interrupted {
            let _ = writeln!(
                s,
                "INTERRUPTED by {}: the figures cover the run until then",
                self.interrupted_by.unwrap_or("a signal")
            );
        }
        if let Some(error) = &self.failed_with {
            let _ = writeln!(s, "FAILED ({error}): the figures cover the run until then");
        }
    }

    /// Transactions and read_committed counts, when there are any.
    fn txn_lines(&self, s: &mut String) {
        let a = &self.totals.all;
        if self.parameters.transactional_id.is_some() {
            let _ = writeln!(
                s,
                "transactions: {:>7.1} committed/s | committed {} aborted {} (all) | {} records each",
                self.throughput.txn_committed_per_s,
                a.txn_committed,
                a.txn_aborted,
                self.parameters.txn_records
            );
        }
        if self.parameters.consumers > 0 {
            let _ = writeln!(
                s,
                "isolation: {:?} | {} records of aborted transactions dropped, {} control batches skipped (all)",
                self.parameters.isolation, a.aborted_records_skipped, a.control_batches
            );
        }
    }

    /// Latency percentiles of the produce and end-to-end histograms that
    /// recorded anything, in milliseconds.
    fn latency_table(&self, s: &mut String) {
        let rows = [
            ("produce (batch)", &self.latency.produce),
            ("produce (record)", &self.latency.produce_record),
            ("end-to-end", &self.latency.e2e),
            ("txn commit", &self.latency.txn_commit),
            ("txn (whole)", &self.latency.txn),
        ];
        if rows.iter().any(|(_, p)| p.count > 0) {
            let _ = writeln!(
                s,
                "{:<18} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
                "latency (ms)", "p50", "p90", "p99", "p99.9", "p99.99", "max", "count"
            );
        }
        for (name, p) in rows {
            if p.count == 0 {
                continue;
            }
            let ms = |us: u64| us as f64 / 1e3;
            let _ = writeln!(
                s,
                "{:<18} {:>9.3} {:>9.3} {:>9.3} {:>9.3} {:>9.3} {:>9.3} {:>9}",
                name,
                ms(p.p50_us),
                ms(p.p90_us),
                ms(p.p99_us),
                ms(p.p999_us),
                ms(p.p9999_us),
                ms(p.max_us),
                p.count
            );
        }
    }
}

fn point(iv: &Interval, warmup_s: u64) -> TimelinePoint {
    let p = Percentiles::of(&iv.produce_us);
    let e = Percentiles::of(&iv.e2e_us);
    TimelinePoint {
        second: iv.second,
        seconds: 1.0,
        warmup: iv.second < warmup_s,
        produce_records: iv.acked_records,
        produce_payload_mb: iv.acked_payload_bytes as f64 / 1e6,
        produce_wire_mb: iv.acked_batch_bytes as f64 / 1e6,
        consume_records: iv.consumed_records,
        consume_payload_mb: iv.consumed_payload_bytes as f64 / 1e6,
        consume_wire_mb: iv.consumed_batch_bytes as f64 / 1e6,
        produce_p50_us: p.p50_us,
        produce_p99_us: p.p99_us,
        produce_max_us: p.max_us,
        produce_record_p99_us: Percentiles::of(&iv.produce_record_us).p99_us,
        e2e_p50_us: e.p50_us,
        e2e_p99_us: e.p99_us,
        e2e_max_us: e.max_us,
        errors: iv.errors.values().sum(),
        sent_records: iv.sent_records,
        failed_records: iv.failed_records,
        errors_by_code: iv.errors.clone(),
    }
}
