//! weir-drain: from a Weir (Kafka) topic into PostgreSQL, exactly once, at a
//! bounded rate. See docs/peak-shaving.md.
//!
//! This file owns the command line, start-up checks (each failure is one
//! line on stderr and a non-zero exit) and signal handling; the loop lives in
//! `drain`. A separate binary so the broker carries no database dependency.

mod drain;
mod group;
mod rate;
mod rows;
mod sink;
mod source;
mod status;
mod write;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};

use crate::drain::{Drain, Settings, STOP};
use crate::sink::{Method, Options, Sink};
use crate::status::{Output, Reporter};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum MapMode {
    /// topic, partition, offset, ts, key, value, headers (jsonb) per record.
    Raw,
    /// The value is a JSON object: its fields fill the columns of the same
    /// name, the record key fills the key column.
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum WriteMethod {
    Copy,
    Insert,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum StatusOutput {
    /// A progress line on stderr every second.
    Line,
    /// One JSON object per second on stdout.
    Json,
    Quiet,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Start {
    Earliest,
    Latest,
}

/// Drain a Weir topic into a PostgreSQL table, exactly once, at a bounded rate.
#[derive(Debug, Parser)]
#[command(name = "weir-drain", version)]
struct Args {
    /// The broker's bootstrap address (host:port).
    #[arg(long, env = "WEIR_DRAIN_BOOTSTRAP", default_value = "127.0.0.1:9092")]
    bootstrap: String,
    #[arg(long)]
    topic: String,
    /// The consumer group; drains of one group share the partitions, and the
    /// offsets table is keyed by it.
    #[arg(long, default_value = "weir-drain")]
    group: String,
    /// libpq-style connection string or URL, e.g. "host=/run/postgresql dbname=app".
    #[arg(long, env = "WEIR_DRAIN_DSN")]
    dsn: String,
    /// Target table (`name` or `schema.name`).
    #[arg(long)]
    table: String,
    #[arg(long, value_enum, default_value_t = MapMode::Raw)]
    mode: MapMode,
    /// Raw mode: create the table when it is missing.
    #[arg(long)]
    create_table: bool,
    /// JSON mode: INSERT .. ON CONFLICT (key) DO UPDATE (implies --write insert).
    #[arg(long)]
    upsert: bool,
    /// JSON mode: the column the record key fills (default: the single-column primary key).
    #[arg(long)]
    key_column: Option<String>,
    /// COPY or multi-row INSERT (binary COPY measured 1.65x faster; docs/peak-shaving.md).
    #[arg(long = "write", value_enum, default_value_t = WriteMethod::Copy)]
    write_method: WriteMethod,
    /// Most rows per transaction.
    #[arg(long, default_value_t = 5000, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    batch_rows: u64,
    /// Hard cap on rows committed per second.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    rows_per_sec: Option<u64>,
    /// Adaptive mode: grow the batch while the transaction p99 is under this,
    /// halve it when above (AIMD).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    target_p99_ms: Option<u64>,
    #[arg(long, default_value_t = 10_000)]
    session_timeout_ms: i32,
    /// Where a partition without a stored offset starts.
    #[arg(long, value_enum, default_value_t = Start::Earliest)]
    start: Start,
    #[arg(long, value_enum, default_value_t = StatusOutput::Line)]
    status: StatusOutput,
    /// Rewrite this file with the JSON status every second.
    #[arg(long)]
    status_file: Option<PathBuf>,
    /// Fetch wait when no records are there.
    #[arg(long, default_value_t = 500)]
    max_wait_ms: i32,
    #[arg(long, default_value_t = 4 << 20)]
    fetch_max_bytes: i32,
    /// Exit (0) once no records arrived for this many seconds and the lag is zero.
    #[arg(long)]
    exit_when_idle: Option<f64>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    install_signal_handlers();
    let sink = match open_sink(&args) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("weir-drain: {e}");
            return ExitCode::from(2);
        }
    };
    let mut source = source::Source::new(&args.bootstrap, &args.topic);
    if let Err(e) = wait_for_topic(&mut source) {
        eprintln!("weir-drain: {e}");
        return ExitCode::from(2);
    }
    let output = match args.status {
        StatusOutput::Line => Output::Line,
        StatusOutput::Json => Output::Json,
        StatusOutput::Quiet => Output::Quiet,
    };
    let reporter = Reporter::start(output, args.status_file.clone());
    let group = group::Membership::new(&args.group, &args.topic, args.session_timeout_ms);
    let drain = Drain::new(settings(&args), source, sink, group, reporter);
    match drain.run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("weir-drain: {e}");
            ExitCode::from(1)
        }
    }
}

fn settings(args: &Args) -> Settings {
    Settings {
        batch_rows: usize::try_from(args.batch_rows).unwrap_or(5000),
        rows_per_sec: args.rows_per_sec,
        target_p99: args.target_p99_ms.map(Duration::from_millis),
        max_wait_ms: args.max_wait_ms.max(1),
        fetch_max_bytes: args.fetch_max_bytes.max(1 << 16),
        start_latest: args.start == Start::Latest,
        exit_when_idle: args.exit_when_idle.map(|s| Duration::from_secs_f64(s.max(0.0))),
    }
}

fn open_sink(args: &Args) -> Result<Sink, String> {
    let config = sink::parse_dsn(&args.dsn)?;
    if args.upsert && args.mode != MapMode::Json {
        return Err("--upsert needs --mode json".into());
    }
    let options = Options {
        json: args.mode == MapMode::Json,
        create_table: args.create_table,
        upsert: args.upsert,
        key_column: args.key_column.clone(),
        method: match args.write_method {
            WriteMethod::Copy => Method::Copy,
            WriteMethod::Insert => Method::Insert,
        },
    };
    Sink::open(config, &args.table, &args.group, &args.topic, &options)
}

/// The topic must exist; an unreachable broker gets 30 s to come up.
fn wait_for_topic(source: &mut source::Source) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match source.refresh() {
            Ok(()) => return Ok(()),
            Err(e) if e.starts_with("cannot reach") && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(500));
            }
            Err(e) => return Err(e),
        }
    }
}

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::Release);
}

fn install_signal_handlers() {
    let handler = on_signal as extern "C" fn(libc::c_int);
    for sig in [libc::SIGTERM, libc::SIGINT] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        unsafe { libc::signal(sig, handler as libc::sighandler_t) };
    }
}
