//! Measurements: per-second `Interval`s (counters + latency histograms) that
//! each shard fills and ships to the main thread, and their merge into totals.
//!
//! A shard owns its current `Interval` exclusively; only whole intervals cross
//! threads (moved through a bounded channel). Latencies are microseconds,
//! recorded from the intended send time, so stalls are never hidden.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;

/// The longest latency a histogram records exactly; longer ones are clamped
/// (and still counted) so a pathological stall cannot lose samples.
pub const LATENCY_US_MAX: u64 = 3_600_000_000;
/// Three significant digits: 0.1% resolution at any magnitude.
const SIGNIFICANT_DIGITS: u8 = 3;

pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, LATENCY_US_MAX, SIGNIFICANT_DIGITS)
        .expect("constant histogram bounds are valid")
}

/// Record a latency, clamping into the histogram's range.
pub fn record_us(h: &mut Histogram<u64>, latency_us: u64) {
    h.saturating_record(latency_us.clamp(1, LATENCY_US_MAX));
}

/// Counters and histograms of one second of one shard (or merged).
#[derive(Debug, Clone)]
pub struct Interval {
    /// Seconds since the run start this interval covers (`second..second+1`).
    pub second: u64,
    /// Records handed to the network (Produce requests written).
    pub sent_records: u64,
    /// Key + value bytes of those records (the payload a user cares about).
    pub sent_payload_bytes: u64,
    /// RecordBatch bytes on the wire (after compression).
    pub sent_batch_bytes: u64,
    pub acked_records: u64,
    pub acked_payload_bytes: u64,
    pub acked_batch_bytes: u64,
    /// Records that failed for good (after retries).
    pub failed_records: u64,
    pub produce_requests: u64,
    pub consumed_records: u64,
    /// Key + value bytes of the records consumed (decompressed).
    pub consumed_payload_bytes: u64,
    /// RecordBatch bytes fetched, as they came over the wire (compressed).
    pub consumed_batch_bytes: u64,
    pub fetch_requests: u64,
    /// --check-order: records whose order stamp was checked...
    pub order_checked_records: u64,
    /// ...those that came after a record of the same producer and partition
    /// with a higher (or the same) sequence number: stored out of send order,
    /// or twice...
    pub order_inversions: u64,
    /// ...sequence numbers skipped forward (records missing, or coming later),
    pub order_gaps: u64,
    /// ...and records too short (under 20 bytes) to carry a stamp.
    pub order_unstamped_records: u64,
    /// Transactions ended with EndTxn(commit) / EndTxn(abort) and answered.
    pub txn_committed: u64,
    pub txn_aborted: u64,
    /// read_committed: records of aborted transactions fetched and dropped.
    pub aborted_records_skipped: u64,
    /// Control batches (transaction markers) fetched: never counted as records.
    pub control_batches: u64,
    /// Produce latency per batch: intended send of its first record → ack.
    pub produce_us: Histogram<u64>,
    /// Produce latency per record: its own intended send time → its batch's ack.
    pub produce_record_us: Histogram<u64>,
    /// End-to-end latency per record: intended send → consumer receipt.
    pub e2e_us: Histogram<u64>,
    /// Per committed transaction: EndTxn(commit) sent → its answer.
    pub txn_commit_us: Histogram<u64>,
    /// Per committed transaction: AddPartitionsToTxn sent → EndTxn answered.
    pub txn_us: Histogram<u64>,
    /// Error counts by name, e.g. "NOT_LEADER_OR_FOLLOWER(6)" or "timeout".
    pub errors: BTreeMap<String, u64>,
}

impl Interval {
    pub fn new(second: u64) -> Self {
        Self {
            second,
            sent_records: 0,
            sent_payload_bytes: 0,
            sent_batch_bytes: 0,
            acked_records: 0,
            acked_payload_bytes: 0,
            acked_batch_bytes: 0,
            failed_records: 0,
            produce_requests: 0,
            consumed_records: 0,
            consumed_payload_bytes: 0,
            consumed_batch_bytes: 0,
            fetch_requests: 0,
            order_checked_records: 0,
            order_inversions: 0,
            order_gaps: 0,
            order_unstamped_records: 0,
            txn_committed: 0,
            txn_aborted: 0,
            aborted_records_skipped: 0,
            control_batches: 0,
            produce_us: new_histogram(),
            produce_record_us: new_histogram(),
            e2e_us: new_histogram(),
            txn_commit_us: new_histogram(),
            txn_us: new_histogram(),
            errors: BTreeMap::new(),
        }
    }

    pub fn count_error(&mut self, name: String) {
        *self.errors.entry(name).or_insert(0) += 1;
    }

    /// Add `other` into `self` (the second label of `self` is kept).
    pub fn merge(&mut self, other: &Interval) {
        self.sent_records += other.sent_records;
        self.sent_payload_bytes += other.sent_payload_bytes;
        self.sent_batch_bytes += other.sent_batch_bytes;
        self.acked_records += other.acked_records;
        self.acked_payload_bytes += other.acked_payload_bytes;
        self.acked_batch_bytes += other.acked_batch_bytes;
        self.failed_records += other.failed_records;
        self.produce_requests += other.produce_requests;
        self.consumed_records += other.consumed_records;
        self.consumed_payload_bytes += other.consumed_payload_bytes;
        self.consumed_batch_bytes += other.consumed_batch_bytes;
        self.fetch_requests += other.fetch_requests;
        self.order_checked_records += other.order_checked_records;
        self.order_inversions += other.order_inversions;
        self.order_gaps += other.order_gaps;
        self.order_unstamped_records += other.order_unstamped_records;
        self.txn_committed += other.txn_committed;
        self.txn_aborted += other.txn_aborted;
        self.aborted_records_skipped += other.aborted_records_skipped;
        self.control_batches += other.control_batches;
        for (mine, theirs) in [
            (&mut self.txn_commit_us, &other.txn_commit_us),
            (&mut self.txn_us, &other.txn_us),
        ] {
            mine.add(theirs)
                .expect("histograms share bounds, so add cannot fail");
        }
        self.produce_us
            .add(&other.produce_us)
            .expect("histograms share bounds, so add cannot fail");
        self.produce_record_us
            .add(&other.produce_record_us)
            .expect("histograms share bounds, so add cannot fail");
        self.e2e_us
            .add(&other.e2e_us)
            .expect("histograms share bounds, so add cannot fail");
        for (name, count) in &other.errors {
            *self.errors.entry(name.clone()).or_insert(0) += count;
        }
    }
}

/// The percentiles every report shows, in microseconds.
#[derive(Debug, Clone, Copy, Default, serde::Serialize, PartialEq)]
pub struct Percentiles {
    pub count: u64,
    pub min_us: u64,
    pub mean_us: f64,
    pub p50_us: u64,
    pub p90_us: u64,
    pub p99_us: u64,
    pub p999_us: u64,
    pub p9999_us: u64,
    pub max_us: u64,
}

impl Percentiles {
    pub fn of(h: &Histogram<u64>) -> Self {
        if h.is_empty() {
            return Self::default();
        }
        Self {
            count: h.len(),
            min_us: h.min(),
            mean_us: h.mean(),
            p50_us: h.value_at_quantile(0.5),
            p90_us: h.value_at_quantile(0.9),
            p99_us: h.value_at_quantile(0.99),
            p999_us: h.value_at_quantile(0.999),
            p9999_us: h.value_at_quantile(0.9999),
            max_us: h.max(),
        }
    }
}

/// Points of the percentile spectrum (HdrHistogram's classic plot): x is the
/// percentile, y the latency in microseconds.
pub fn spectrum(h: &Histogram<u64>) -> Vec<(f64, u64)> {
    const QUANTILES: [f64; 14] = [
        0.0, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.995, 0.999, 0.9995, 0.9999, 0.99995, 0.99999, 1.0,
    ];
    if h.is_empty() {
        return Vec::new();
    }
    QUANTILES
        .iter()
        .map(|&q| (q * 100.0, h.value_at_quantile(q)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_two_intervals_when_merging_should_add_counts_and_histograms() {
        let mut a = Interval::new(3);
        a.acked_records = 10;
        record_us(&mut a.produce_us, 100);
        a.count_error("timeout".into());
        let mut b = Interval::new(3);
        b.acked_records = 5;
        record_us(&mut b.produce_us, 10_000);
        b.count_error("timeout".into());
        a.merge(&b);
        assert_eq!(a.acked_records, 15);
        assert_eq!(a.produce_us.len(), 2);
        assert_eq!(a.errors["timeout"], 2);
        let p = Percentiles::of(&a.produce_us);
        assert!(p.max_us >= 9_990 && p.p50_us <= 101, "{p:?}");
    }

    #[test]
    fn given_huge_latency_when_recording_should_clamp_not_drop() {
        let mut h = new_histogram();
        record_us(&mut h, u64::MAX);
        record_us(&mut h, 0);
        assert_eq!(h.len(), 2);
        assert!(h.max() >= LATENCY_US_MAX / 2);
    }
}
