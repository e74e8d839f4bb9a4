//! Progress reporting: a live progress line on stderr, and a JSON status
//! (`--status-file`, rewritten every second through a rename, or one JSON
//! line a second on stdout with `--status json`).
//!
//! The main thread updates `Stats` under a mutex after each transaction; the
//! reporter thread reads it once a second. Nothing here blocks the main
//! thread for longer than a copy of the counters.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;

/// What the drain has done; the reporter derives rates from it.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    pub state: &'static str,
    pub rows: u64,
    pub dead_letters: u64,
    pub transactions: u64,
    pub fenced: u64,
    pub db_errors: u64,
    pub kafka_errors: u64,
    pub lag: i64,
    pub partitions: Vec<i32>,
    pub generation: i32,
    pub batch_rows: usize,
    /// Latency of the last second's transactions (p50, p99, max), microseconds.
    pub latency_us: (u64, u64, u64),
    pub last_error: Option<String>,
    /// Time spent in committed transactions (rows, dead letters, offsets,
    /// commit): rows / this is the write path's own speed.
    pub txn_busy: Duration,
    /// Rows `--rows-per-sec` allowed beyond its burst while the drain had
    /// rows to write but was slower (a slow database or machine).
    pub cap_unused_rows: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// The human progress line on stderr.
    Line,
    /// One JSON object a line on stdout.
    Json,
    Quiet,
}

pub struct Reporter {
    pub stats: Arc<Mutex<Stats>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Reporter {
    pub fn start(output: Output, file: Option<PathBuf>) -> Self {
        let stats = Arc::new(Mutex::new(Stats {
            state: "starting",
            ..Stats::default()
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let (s, st) = (Arc::clone(&stats), Arc::clone(&stop));
        let thread = std::thread::Builder::new()
            .name("status".into())
            .spawn(move || report_loop(&s, &st, output, file.as_deref()))
            .expect("spawn the status thread");
        Self {
            stats,
            stop,
            thread: Some(thread),
        }
    }

    pub fn update(&self, f: impl FnOnce(&mut Stats)) {
        f(&mut self.stats.lock().expect("stats"));
    }

    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn report_loop(stats: &Mutex<Stats>, stop: &AtomicBool, output: Output, file: Option<&std::path::Path>) {
    let start = Instant::now();
    let mut last = (Instant::now(), 0u64);
    loop {
        let tick = Instant::now();
        while !stop.load(Ordering::Acquire) && tick.elapsed() < Duration::from_secs(1) {
            std::thread::sleep(Duration::from_millis(50));
        }
        let finishing = stop.load(Ordering::Acquire);
        let s = stats.lock().expect("stats").clone();
        let now = Instant::now();
        let rate = (s.rows - last.1) as f64 / now.duration_since(last.0).as_secs_f64().max(1e-3);
        last = (now, s.rows);
        let doc = status_json(&s, rate, start.elapsed());
        if let Some(path) = file {
            let tmp = path.with_extension("tmp");
            if std::fs::write(&tmp, format!("{doc}\n")).is_ok() {
                let _ = std::fs::rename(&tmp, path);
            }
        }
        match output {
            Output::Json => println!("{doc}"),
            Output::Line => eprintln!("{}", progress_line(&s, rate)),
            Output::Quiet => {}
        }
        if finishing {
            return;
        }
    }
}

fn status_json(s: &Stats, rate: f64, uptime: Duration) -> serde_json::Value {
    json!({
        "state": s.state,
        "uptime_s": uptime.as_secs(),
        "rows": s.rows,
        "rows_per_sec": (rate * 10.0).round() / 10.0,
        "dead_letters": s.dead_letters,
        "transactions": s.transactions,
        "fenced_transactions": s.fenced,
        "db_errors": s.db_errors,
        "kafka_errors": s.kafka_errors,
        "lag": s.lag,
        "partitions": s.partitions,
        "generation": s.generation,
        "batch_rows": s.batch_rows,
        "txn_latency_ms": {
            "p50": s.latency_us.0 as f64 / 1000.0,
            "p99": s.latency_us.1 as f64 / 1000.0,
            "max": s.latency_us.2 as f64 / 1000.0,
        },
        "last_error": s.last_error,
        "txn_busy_s": (s.txn_busy.as_secs_f64() * 1000.0).round() / 1000.0,
        "cap_unused_rows": s.cap_unused_rows,
    })
}

fn progress_line(s: &Stats, rate: f64) -> String {
    let mut line = format!(
        "weir-drain: {:<9} {:>9.0} rows/s  {:>10} rows  lag {:>9}  txn p50 {:.1} ms p99 {:.1} ms  batch {}  partitions {}  dead {}",
        s.state,
        rate,
        s.rows,
        s.lag,
        s.latency_us.0 as f64 / 1000.0,
        s.latency_us.1 as f64 / 1000.0,
        s.batch_rows,
        s.partitions.len(),
        s.dead_letters,
    );
    if let Some(e) = &s.last_error {
        line.push_str("  last error: ");
        line.push_str(e);
    }
    line
}
