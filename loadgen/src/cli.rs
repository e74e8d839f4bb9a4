//! Command line: the flags a user types and their validation into a `RunConfig`.
//!
//! Owns parsing only; runs on the main thread before any shard starts.
//! Invariant: a `RunConfig` that left `RunArgs::into_config` is internally
//! consistent (non-zero sizes, limits respected), so shards never re-check it.

use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use weir_protocol::record_batch::Compression;

/// A record must hold the 8-byte send stamp that end-to-end latency needs.
pub const RECORD_BYTES_MIN: usize = 8;
/// Kafka's default `message.max.bytes` is ~1 MiB; larger records are a misuse.
pub const RECORD_BYTES_MAX: usize = 1 << 20;
/// A batch larger than this would exceed what brokers accept by default (1 MiB
/// `message.max.bytes`) by a wide margin; 16 MiB leaves room for tuned brokers.
pub const BATCH_BYTES_MAX: usize = 16 << 20;
/// Pipelining deeper than this only adds memory: loopback saturates far below.
pub const IN_FLIGHT_MAX: usize = 1024;
/// Kafka's own partition count limit per CreateTopics is far higher, but a
/// load generator keeps one open batch per partition per producer.
pub const PARTITIONS_MAX: i32 = 100_000;
/// Tasks per kind; each holds buffers, so the total is bounded.
pub const TASKS_MAX: usize = 4096;
/// A transactional id prefix; "-<task>" is appended, and Kafka's ids are
/// strings of at most i16::MAX bytes (brokers log them: keep them short).
pub const TXN_PREFIX_BYTES_MAX: usize = 200;

#[derive(Parser, Debug)]
#[command(
    name = "weir-loadgen",
    version,
    about = "Kafka-protocol load generator with honest latency"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Produce records and measure produce latency (send -> ack).
    Produce(RunArgs),
    /// Consume records and measure throughput.
    Consume(RunArgs),
    /// Produce and consume at once; measure end-to-end latency per record.
    E2e(RunArgs),
    /// A minimal Kafka-protocol endpoint that acknowledges without storing.
    NullBroker(NullBrokerArgs),
    /// Measure the loopback TCP ceiling (64 KiB writes to a reader thread).
    TcpCeiling(CeilingArgs),
    /// Measure the ceiling, then produce to and consume from an in-process
    /// null broker, and fail if the generator reaches less than --min-ratio of
    /// the ceiling in either.
    SelfCheck(SelfCheckArgs),
    /// Overlay JSON reports of several runs on one HTML page: throughput over
    /// time, latency spectra, and ratios against the first run.
    Compare(CompareArgs),
    /// Run a named workload file (TOML; see loadgen/workloads/).
    Run(WorkloadArgs),
    /// The synced-write ceiling: a raw pwrite + fdatasync loop of one block size.
    SyncWrite(crate::ceiling::SyncWriteArgs),
    /// The CPU floor of a catch-up read: O_DIRECT reads of a file written to a
    /// loopback socket, nothing else; prints the sender's CPU seconds per GB.
    ReadSend(crate::ceiling::ReadSendArgs),
    /// The platform's own pauses: pinned threads sleep 1 ms at a time and record how
    /// late they wake; prints the latency floor those pauses imply for a steady stream.
    Hiccup(crate::hiccup::HiccupArgs),
}

#[derive(Args, Debug, Clone)]
pub struct CompareArgs {
    /// Two or more JSON reports (--report-json); the first is the baseline.
    #[arg(required = true, num_args = 2..)]
    pub reports: Vec<std::path::PathBuf>,
    /// The HTML page to write.
    #[arg(long, short, default_value = "compare.html")]
    pub output: std::path::PathBuf,
    /// Names of the runs, comma-separated (default: the file names).
    #[arg(long, value_delimiter = ',')]
    pub labels: Vec<String>,
}

#[derive(Args, Debug, Clone)]
pub struct WorkloadArgs {
    /// The workload file.
    pub workload: std::path::PathBuf,
    #[arg(long, default_value = "127.0.0.1:9092")]
    pub bootstrap: String,
    /// Override the workload's duration.
    #[arg(long, value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Override the workload's warmup.
    #[arg(long, value_parser = parse_duration)]
    pub warmup: Option<Duration>,
    /// Override the workload's topic name.
    #[arg(long)]
    pub topic: Option<String>,
    /// Override the workload's rate (and rate steps), records/s.
    #[arg(long)]
    pub rate: Option<u64>,
    /// Override the workload's record limit.
    #[arg(long)]
    pub records: Option<u64>,
    #[arg(long)]
    pub report_json: Option<std::path::PathBuf>,
    #[arg(long)]
    pub report_html: Option<std::path::PathBuf>,
    #[arg(long)]
    pub quiet: bool,
}

#[derive(Args, Debug, Clone)]
pub struct SelfCheckArgs {
    #[arg(long, value_parser = parse_duration, default_value = "5s")]
    pub duration: Duration,
    #[arg(long, default_value_t = 0.55)]
    pub min_ratio: f64,
}

#[derive(Args, Debug, Clone)]
pub struct RunArgs {
    /// Bootstrap broker address host:port.
    #[arg(long, default_value = "127.0.0.1:9092")]
    pub bootstrap: String,
    #[arg(long, default_value = "weir-loadgen")]
    pub topic: String,
    /// Partitions of the topic when --create is given.
    #[arg(long, default_value_t = 8)]
    pub partitions: i32,
    /// Produce to this many topics, named TOPIC-0 .. TOPIC-(N-1) (each with
    /// --partitions when --create is given); records go over all their partitions
    /// as over one topic's. 1: the one topic named --topic. Produce only.
    #[arg(long, default_value_t = 1)]
    pub topics: usize,
    /// Create the topic first (an existing topic is fine).
    #[arg(long)]
    pub create: bool,
    #[arg(long, default_value_t = 1)]
    pub producers: usize,
    #[arg(long, default_value_t = 1)]
    pub consumers: usize,
    /// Shards (pinned executors); default: the available cores.
    #[arg(long)]
    pub threads: Option<usize>,
    /// Record value bytes (the smallest, with --record-size-max).
    #[arg(long, default_value_t = 1024)]
    pub record_size: usize,
    /// Record value sizes uniform in --record-size..=this.
    #[arg(long)]
    pub record_size_max: Option<usize>,
    #[arg(long, default_value_t = 65536)]
    pub batch_bytes: usize,
    #[arg(long, default_value_t = 1)]
    pub linger_ms: u64,
    #[arg(long, value_enum, default_value_t = AcksArg::One)]
    pub acks: AcksArg,
    #[arg(long, value_enum, default_value_t = CompressionArg::None)]
    pub compression: CompressionArg,
    /// Records per second in total; 0 = as fast as possible.
    #[arg(long, default_value_t = 0)]
    pub rate: u64,
    /// Rates over time instead of --rate: "0:1000,30:50000,40:1000" is
    /// 1,000 rec/s from the start, 50,000 from 30 s, 1,000 again from 40 s.
    #[arg(long, value_parser = parse_rate_steps)]
    pub rate_steps: Option<RateSteps>,
    /// How long to measure, e.g. 30s, 500ms, 2m.
    #[arg(long, value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Stop after this many records (produced, or consumed for `consume`).
    #[arg(long)]
    pub records: Option<u64>,
    /// Run this long before measuring; its samples are not in the totals.
    #[arg(long, value_parser = parse_duration, default_value = "0s")]
    pub warmup: Duration,
    /// Record keys: none, or uniform:N (N distinct keys).
    #[arg(long, value_parser = parse_keys, default_value = "none")]
    pub keys: Keys,
    /// Requests in flight per connection.
    #[arg(long, default_value_t = 8)]
    pub max_in_flight: usize,
    /// Produce as an idempotent producer: one InitProducerId per producer task,
    /// sequence numbers per partition (needs --acks all and --max-in-flight <= 5,
    /// as Kafka's producer does).
    #[arg(long)]
    pub idempotent: bool,
    /// Produce in transactions: each producer task is a transactional producer
    /// with the id PREFIX-<task index> (needs --acks all and --max-in-flight of
    /// at most 5; implies --idempotent).
    #[arg(long, value_name = "PREFIX")]
    pub transactional_id: Option<String>,
    /// Records per transaction with --transactional-id.
    #[arg(long, default_value_t = 1000)]
    pub txn_records: u64,
    /// With --transactional-id: abort every Nth transaction of a task instead
    /// of committing it (0: commit every one), to leave aborted data behind.
    #[arg(long, default_value_t = 0)]
    pub txn_abort_every: u64,
    /// Consumers' Fetch isolation level: read-committed drops the records of
    /// aborted transactions (control batches are never counted either way).
    #[arg(long, value_enum, default_value_t = Isolation::ReadUncommitted)]
    pub isolation: Isolation,
    /// Retries of a batch after a retriable error.
    #[arg(long, default_value_t = 5)]
    pub retries: u32,
    /// A produce error retries cannot fix (a backlog bound's rejection) counts
    /// the batch's records as failed and the run goes on, instead of ending
    /// it: for scenarios where rejections are the expected answer.
    #[arg(long)]
    pub keep_going: bool,
    /// Timeout for connecting and for each request.
    #[arg(long, value_parser = parse_duration, default_value = "10s")]
    pub request_timeout: Duration,
    /// Where consumers start: earliest or latest (default: consume=earliest, e2e=latest).
    #[arg(long, value_enum)]
    pub from: Option<StartFrom>,
    /// consume: stop once every partition reaches the end offset seen at start.
    #[arg(long)]
    pub to_end: bool,
    /// Verify CRC-32C of every fetched batch.
    #[arg(long)]
    pub check_crc: bool,
    /// consume/e2e: check that each partition holds every producer's records in
    /// the order it sent them (the per-partition sequence numbers `produce` and
    /// `e2e` write into each value); report inversions and gaps, and fail on an
    /// inversion.
    #[arg(long)]
    pub check_order: bool,
    #[arg(long)]
    pub report_json: Option<std::path::PathBuf>,
    #[arg(long)]
    pub report_html: Option<std::path::PathBuf>,
    /// Do not print the live progress line.
    #[arg(long)]
    pub quiet: bool,
}

#[derive(Args, Debug, Clone)]
pub struct NullBrokerArgs {
    #[arg(long, default_value = "127.0.0.1:9092")]
    pub listen: String,
    /// Withhold responses for this long...
    #[arg(long, default_value_t = 0)]
    pub stall_ms: u64,
    /// ...once every this many milliseconds.
    #[arg(long, default_value_t = 0)]
    pub stall_every_ms: u64,
    /// Partitions of a topic nobody created explicitly.
    #[arg(long, default_value_t = 8)]
    pub default_partitions: i32,
    /// Only topics created with CreateTopics exist (default: any topic exists).
    #[arg(long)]
    pub no_auto_topics: bool,
    /// Highest ApiVersions version to accept (plays an older broker).
    #[arg(long, default_value_t = 4)]
    pub api_versions_max: i16,
    /// Kafka error code for the first --produce-error-count partition writes.
    #[arg(long, default_value_t = 6)]
    pub produce_error_code: i16,
    #[arg(long, default_value_t = 0)]
    pub produce_error_count: u64,
    /// Keep what is produced in memory (the last 256 MiB per partition) and
    /// serve it to Fetch, which waits for data like a broker's long poll: for
    /// trying `consume --check-order`, and as the latency floor of an `e2e`
    /// run (the generator and the machine without a broker's work).
    #[arg(long)]
    pub store: bool,
    /// With --store: store every Nth batch of a partition before the one
    /// received just before it (a reordering broker; 0: never).
    #[arg(long, default_value_t = 0, requires = "store")]
    pub reorder_every: u64,
    /// Answer every Fetch with this many bytes per partition of pre-built
    /// 1 KiB records (the consume ceiling; 0: empty answers).
    #[arg(long, default_value_t = 0, conflicts_with = "store")]
    pub serve_fetch_bytes: usize,
}

#[derive(Args, Debug, Clone)]
pub struct CeilingArgs {
    #[arg(long, value_parser = parse_duration, default_value = "3s")]
    pub duration: Duration,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum AcksArg {
    #[value(name = "0")]
    Zero,
    #[value(name = "1")]
    One,
    #[value(name = "all", alias = "-1")]
    All,
}

impl AcksArg {
    pub fn wire(self) -> i16 {
        match self {
            Self::Zero => 0,
            Self::One => 1,
            Self::All => -1,
        }
    }
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompressionArg {
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

impl CompressionArg {
    pub fn codec(self) -> Compression {
        match self {
            Self::None => Compression::None,
            Self::Gzip => Compression::Gzip,
            Self::Snappy => Compression::Snappy,
            Self::Lz4 => Compression::Lz4,
            Self::Zstd => Compression::Zstd,
        }
    }
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Isolation {
    ReadUncommitted,
    ReadCommitted,
}

impl Isolation {
    /// Fetch's and ListOffsets' `isolation_level`.
    pub fn wire(self) -> i8 {
        match self {
            Self::ReadUncommitted => 0,
            Self::ReadCommitted => 1,
        }
    }
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StartFrom {
    Earliest,
    Latest,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Keys {
    None,
    Uniform(u64),
}

/// One step of --rate-steps: from `at_ms` after the start, `rate` records/s.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct RateStep {
    pub at_ms: u64,
    pub rate: u64,
}

/// A parsed --rate-steps (a newtype: clap takes a Vec as a repeated flag).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateSteps(pub Vec<RateStep>);

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Produce,
    Consume,
    E2e,
}

/// Validated parameters of one run; plain data, sent to every shard.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RunConfig {
    pub mode: Mode,
    pub bootstrap: String,
    pub topic: String,
    /// Topics under load: 1 is `topic` itself, more are `topic-0`.. (`topic_names`).
    pub topics: usize,
    pub partitions: i32,
    pub create: bool,
    pub producers: usize,
    pub consumers: usize,
    pub threads: usize,
    /// Record value bytes: uniform in record_bytes..=record_bytes_max.
    pub record_bytes: usize,
    pub record_bytes_max: usize,
    pub batch_bytes: usize,
    pub linger_ms: u64,
    pub acks: i16,
    #[serde(serialize_with = "ser_compression")]
    pub compression: Compression,
    pub rate_per_s: u64,
    /// Empty: `rate_per_s` throughout.
    pub rate_steps: Vec<RateStep>,
    pub duration_ms: Option<u64>,
    pub records_max: Option<u64>,
    pub warmup_ms: u64,
    pub keys: Keys,
    pub max_in_flight: usize,
    pub idempotent: bool,
    /// Transactional id prefix; `None`: no transactions.
    pub transactional_id: Option<String>,
    pub txn_records: u64,
    pub txn_abort_every: u64,
    pub isolation: Isolation,
    pub retries: u32,
    pub keep_going: bool,
    pub request_timeout_ms: u64,
    pub from: StartFrom,
    pub to_end: bool,
    pub check_crc: bool,
    pub check_order: bool,
    pub quiet: bool,
}

fn ser_compression<S: serde::Serializer>(c: &Compression, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format!("{c:?}").to_lowercase())
}

/// Why the flags do not make a run.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid arguments: {0}")]
pub struct ConfigError(pub String);

fn bad(msg: impl Into<String>) -> ConfigError {
    ConfigError(msg.into())
}

impl RunArgs {
    /// Check every flag against its limit; `cores` is the default shard count.
    pub fn into_config(self, mode: Mode, cores: usize) -> Result<RunConfig, ConfigError> {
        self.check_sizes()?;
        self.check_tasks(mode)?;
        if self.duration.is_none() && self.records.is_none() && !(mode == Mode::Consume && self.to_end) {
            return Err(bad("give --duration or --records (or --to-end for consume)"));
        }
        if self.check_order && mode == Mode::Produce {
            return Err(bad(
                "--check-order checks what consumers read: use it with consume or e2e",
            ));
        }
        self.check_txn(mode)?;
        if self.topics > 1 && (mode != Mode::Produce || self.transactional_id.is_some()) {
            return Err(bad("--topics above 1 is for produce without --transactional-id"));
        }
        if self.idempotent && (self.acks.wire() != -1 || self.max_in_flight > 5) {
            return Err(bad(
                "--idempotent needs --acks all and --max-in-flight of at most 5",
            ));
        }
        let threads = self.threads.unwrap_or(cores);
        if threads == 0 || threads > cores {
            return Err(bad(format!(
                "--threads must be 1..={cores} (the available cores), got {threads}"
            )));
        }
        let from = self.from.unwrap_or(match mode {
            Mode::Consume => StartFrom::Earliest,
            _ => StartFrom::Latest,
        });
        Ok(RunConfig {
            mode,
            bootstrap: self.bootstrap,
            topic: self.topic,
            topics: self.topics,
            partitions: self.partitions,
            create: self.create,
            producers: if mode == Mode::Consume { 0 } else { self.producers },
            consumers: if mode == Mode::Produce { 0 } else { self.consumers },
            threads,
            record_bytes: self.record_size,
            record_bytes_max: self.record_size_max.unwrap_or(self.record_size),
            batch_bytes: self.batch_bytes,
            linger_ms: self.linger_ms,
            acks: self.acks.wire(),
            compression: self.compression.codec(),
            rate_per_s: self.rate_steps.as_ref().map_or(self.rate, |s| s.0[0].rate),
            rate_steps: self.rate_steps.map(|s| s.0).unwrap_or_default(),
            duration_ms: self.duration.map(|d| d.as_millis() as u64),
            records_max: self.records,
            warmup_ms: self.warmup.as_millis() as u64,
            keys: self.keys,
            max_in_flight: self.max_in_flight,
            // A transactional producer is an idempotent one with an id.
            idempotent: self.idempotent || self.transactional_id.is_some(),
            transactional_id: self.transactional_id,
            txn_records: self.txn_records,
            txn_abort_every: self.txn_abort_every,
            isolation: self.isolation,
            retries: self.retries,
            keep_going: self.keep_going,
            request_timeout_ms: self.request_timeout.as_millis().max(1) as u64,
            from,
            to_end: self.to_end,
            check_crc: self.check_crc,
            check_order: self.check_order,
            quiet: self.quiet,
        })
    }

    fn check_sizes(&self) -> Result<(), ConfigError> {
        if self.topic.is_empty() || self.topic.len() > 249 {
            return Err(bad("--topic must be 1..=249 characters"));
        }
        if !(RECORD_BYTES_MIN..=RECORD_BYTES_MAX).contains(&self.record_size) {
            return Err(bad(format!(
                "--record-size must be {RECORD_BYTES_MIN}..={RECORD_BYTES_MAX} bytes (it carries an 8-byte send stamp)"
            )));
        }
        if let Some(max) = self.record_size_max {
            if max < self.record_size || max > RECORD_BYTES_MAX {
                return Err(bad(format!(
                    "--record-size-max must be --record-size..={RECORD_BYTES_MAX}"
                )));
            }
        }
        if self.batch_bytes == 0 || self.batch_bytes > BATCH_BYTES_MAX {
            return Err(bad(format!("--batch-bytes must be 1..={BATCH_BYTES_MAX}")));
        }
        if self.partitions < 1 || self.partitions > PARTITIONS_MAX {
            return Err(bad(format!("--partitions must be 1..={PARTITIONS_MAX}")));
        }
        if self.topics == 0 || self.topics as i64 * self.partitions as i64 > PARTITIONS_MAX as i64 {
            return Err(bad(format!(
                "--topics must be at least 1, and --topics x --partitions at most {PARTITIONS_MAX}"
            )));
        }
        if self.topics > 1 && self.topic.len() + 1 + (self.topics - 1).to_string().len() > 249 {
            return Err(bad("--topic with its -N suffix must be at most 249 characters"));
        }
        if self.max_in_flight == 0 || self.max_in_flight > IN_FLIGHT_MAX {
            return Err(bad(format!("--max-in-flight must be 1..={IN_FLIGHT_MAX}")));
        }
        if self.records == Some(0) {
            return Err(bad("--records must be at least 1"));
        }
        if self.duration == Some(Duration::ZERO) {
            return Err(bad("--duration must be positive"));
        }
        Ok(())
    }

    fn check_txn(&self, mode: Mode) -> Result<(), ConfigError> {
        if self.isolation == Isolation::ReadCommitted && mode == Mode::Produce {
            return Err(bad("--isolation is for consumers: use it with consume or e2e"));
        }
        let Some(prefix) = &self.transactional_id else {
            if self.txn_abort_every > 0 {
                return Err(bad("--txn-abort-every needs --transactional-id"));
            }
            return Ok(());
        };
        if mode == Mode::Consume {
            return Err(bad(
                "--transactional-id is for producers: use it with produce or e2e",
            ));
        }
        // Kafka bounds a transactional id by its string length (i16); the
        // task suffix needs room.
        if prefix.is_empty() || prefix.len() > TXN_PREFIX_BYTES_MAX {
            return Err(bad(format!(
                "--transactional-id must be 1..={TXN_PREFIX_BYTES_MAX} bytes"
            )));
        }
        if self.acks.wire() != -1 || self.max_in_flight > 5 {
            return Err(bad(
                "--transactional-id needs --acks all and --max-in-flight of at most 5 (it implies --idempotent)",
            ));
        }
        if self.txn_records == 0 {
            return Err(bad("--txn-records must be at least 1"));
        }
        Ok(())
    }

    fn check_tasks(&self, mode: Mode) -> Result<(), ConfigError> {
        let needs_producers = mode != Mode::Consume;
        let needs_consumers = mode != Mode::Produce;
        if needs_producers && !(1..=TASKS_MAX).contains(&self.producers) {
            return Err(bad(format!("--producers must be 1..={TASKS_MAX}")));
        }
        if needs_consumers && !(1..=TASKS_MAX).contains(&self.consumers) {
            return Err(bad(format!("--consumers must be 1..={TASKS_MAX}")));
        }
        if needs_producers && self.rate > 0 && self.rate < self.producers as u64 {
            return Err(bad("--rate must be at least one record/s per producer"));
        }
        if let Some(steps) = &self.rate_steps {
            if self.rate > 0 {
                return Err(bad("give --rate or --rate-steps, not both"));
            }
            if steps.0.iter().any(|s| s.rate < self.producers as u64) {
                return Err(bad(
                    "every --rate-steps rate must be at least one record/s per producer",
                ));
            }
        }
        Ok(())
    }
}

#[path = "cli_values.rs"]
mod values;
pub use values::{check_rate_steps, parse_duration, parse_keys, parse_rate_steps};

#[cfg(test)]
#[path = "cli_tests.rs"]
mod tests;
