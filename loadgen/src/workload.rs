//! Named workloads: a TOML file describing one scenario (mode, topic,
//! partitions, producers, consumers, record size distribution, keys, rate or
//! rate steps over time, duration...), modelled on OpenMessaging Benchmark's
//! workload files. Turned into the same flags a user could type, so one
//! validation (`RunArgs::into_config`) covers both. Main thread, before a run.

use std::path::Path;

use clap::Parser;
use serde::Deserialize;

use crate::cli::{Cli, Command, ConfigError, Mode, RunArgs, WorkloadArgs};

/// A workload file. Every field but `mode` is optional (the flag defaults).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Workload {
    /// Shown in reports' names by scripts; free text.
    pub name: Option<String>,
    pub description: Option<String>,
    /// "produce", "consume" or "e2e".
    pub mode: String,
    pub topic: Option<String>,
    /// Topics `topic-0`.. (produce only); 1 or absent: the one `topic`.
    pub topics: Option<usize>,
    pub partitions: Option<i32>,
    /// Create the topic first (default true for a workload).
    pub create: Option<bool>,
    pub producers: Option<usize>,
    pub consumers: Option<usize>,
    pub threads: Option<usize>,
    pub record_size: Option<RecordSize>,
    /// "none" or "uniform:N".
    pub keys: Option<String>,
    pub batch_bytes: Option<usize>,
    pub linger_ms: Option<u64>,
    /// "0", "1" or "all".
    pub acks: Option<String>,
    pub compression: Option<String>,
    pub max_in_flight: Option<usize>,
    /// Records/s in total (0: as fast as possible)...
    pub rate: Option<u64>,
    /// ...or rates over time (a burst: a higher step, then back).
    pub rate_steps: Option<Vec<Step>>,
    /// "30s", "2m"...
    pub duration: Option<String>,
    pub warmup: Option<String>,
    pub records: Option<u64>,
    pub idempotent: Option<bool>,
    pub transactional_id: Option<String>,
    pub txn_records: Option<u64>,
    pub txn_abort_every: Option<u64>,
    /// "read-committed" or "read-uncommitted".
    pub isolation: Option<String>,
    /// "earliest" or "latest".
    pub from: Option<String>,
    pub to_end: Option<bool>,
    pub check_order: Option<bool>,
    pub check_crc: Option<bool>,
}

/// `record_size = 1024`, or `record_size = { min = 100, max = 2000 }` (uniform).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum RecordSize {
    Fixed(usize),
    Uniform { min: usize, max: usize },
}

/// One rate step: from `at_s` seconds after the start, `rate` records/s.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    pub at_s: f64,
    pub rate: u64,
}

/// Read and parse a workload file.
pub fn load(path: &Path) -> Result<Workload, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError(format!("cannot read {}: {e}", path.display())))?;
    parse(&text).map_err(|e| ConfigError(format!("{}: {e}", path.display())))
}

pub fn parse(text: &str) -> Result<Workload, String> {
    toml::from_str(text).map_err(|e| e.to_string())
}

impl Workload {
    pub fn mode(&self) -> Result<Mode, ConfigError> {
        match self.mode.as_str() {
            "produce" => Ok(Mode::Produce),
            "consume" => Ok(Mode::Consume),
            "e2e" => Ok(Mode::E2e),
            other => Err(ConfigError(format!(
                "workload mode '{other}': expected produce, consume or e2e"
            ))),
        }
    }

    /// The command line this workload stands for, with `args`' overrides.
    pub fn argv(&self, args: &WorkloadArgs) -> Result<Vec<String>, ConfigError> {
        let mut v: Vec<String> = vec!["weir-loadgen".into(), self.mode()?.name().into()];
        let mut flag = |name: &str, value: Option<String>| {
            if let Some(value) = value {
                v.push(format!("--{name}"));
                v.push(value);
            }
        };
        let dur = |d: Option<std::time::Duration>| d.map(|d| format!("{}ms", d.as_millis()));
        flag("bootstrap", Some(args.bootstrap.clone()));
        flag("topic", args.topic.clone().or_else(|| self.topic.clone()));
        flag("topics", self.topics.map(|n| n.to_string()));
        flag("partitions", self.partitions.map(|n| n.to_string()));
        flag("producers", self.producers.map(|n| n.to_string()));
        flag("consumers", self.consumers.map(|n| n.to_string()));
        flag("threads", self.threads.map(|n| n.to_string()));
        let (min, max) = match self.record_size {
            Some(RecordSize::Fixed(n)) => (Some(n), None),
            Some(RecordSize::Uniform { min, max }) => (Some(min), Some(max)),
            None => (None, None),
        };
        flag("record-size", min.map(|n| n.to_string()));
        flag("record-size-max", max.map(|n| n.to_string()));
        flag("keys", self.keys.clone());
        flag("batch-bytes", self.batch_bytes.map(|n| n.to_string()));
        flag("linger-ms", self.linger_ms.map(|n| n.to_string()));
        flag("acks", self.acks.clone());
        flag("compression", self.compression.clone());
        flag("max-in-flight", self.max_in_flight.map(|n| n.to_string()));
        flag("rate", args.rate.or(self.rate).map(|n| n.to_string()));
        let steps = self
            .rate_steps
            .as_ref()
            .filter(|_| args.rate.is_none())
            .map(|steps| {
                (steps.iter())
                    .map(|s| format!("{}s:{}", s.at_s, s.rate))
                    .collect::<Vec<_>>()
                    .join(",")
            });
        flag("rate-steps", steps);
        flag("duration", dur(args.duration).or_else(|| self.duration.clone()));
        flag("warmup", dur(args.warmup).or_else(|| self.warmup.clone()));
        flag("records", args.records.or(self.records).map(|n| n.to_string()));
        flag("transactional-id", self.transactional_id.clone());
        flag("txn-records", self.txn_records.map(|n| n.to_string()));
        flag("txn-abort-every", self.txn_abort_every.map(|n| n.to_string()));
        flag("isolation", self.isolation.clone());
        flag("from", self.from.clone());
        self.switches(args, &mut v);
        Ok(v)
    }

    /// Boolean flags, and the report and progress flags of the command line.
    fn switches(&self, args: &WorkloadArgs, v: &mut Vec<String>) {
        let on = |b: Option<bool>| b == Some(true);
        let mode = self.mode().ok();
        for (name, set) in [
            ("--create", self.create.unwrap_or(mode != Some(Mode::Consume))),
            ("--idempotent", on(self.idempotent)),
            ("--to-end", on(self.to_end)),
            ("--check-order", on(self.check_order)),
            ("--check-crc", on(self.check_crc)),
            ("--quiet", args.quiet),
        ] {
            if set {
                v.push(name.into());
            }
        }
        for (name, path) in [
            ("--report-json", &args.report_json),
            ("--report-html", &args.report_html),
        ] {
            if let Some(p) = path {
                v.push(name.into());
                v.push(p.display().to_string());
            }
        }
    }

    /// The run's flags, parsed as if typed.
    pub fn run_args(&self, args: &WorkloadArgs) -> Result<(Mode, RunArgs), ConfigError> {
        let mode = self.mode()?;
        let cli = Cli::try_parse_from(self.argv(args)?).map_err(|e| ConfigError(e.to_string()))?;
        match cli.command {
            Command::Produce(a) | Command::Consume(a) | Command::E2e(a) => Ok((mode, a)),
            _ => unreachable!("argv names a run mode"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args() -> WorkloadArgs {
        let Command::Run(a) = Cli::parse_from(["weir-loadgen", "run", "w.toml"]).command else {
            unreachable!()
        };
        a
    }

    #[test]
    fn given_a_burst_workload_when_parsing_should_make_the_flags_of_the_run() {
        let w = parse(
            r#"
            name = "peak-shaving"
            mode = "produce"
            topic = "burst"
            partitions = 4
            producers = 2
            record_size = { min = 100, max = 2000 }
            keys = "uniform:1000"
            duration = "40s"
            rate_steps = [{ at_s = 0, rate = 1000 }, { at_s = 30, rate = 20000 }, { at_s = 35, rate = 1000 }]
            "#,
        )
        .expect("a valid workload");
        let (mode, run) = w.run_args(&args()).expect("valid flags");
        let cfg = run.into_config(mode, 64).expect("a valid run");
        assert_eq!((cfg.record_bytes, cfg.record_bytes_max), (100, 2000));
        assert_eq!(cfg.rate_steps.len(), 3);
        assert_eq!(
            (cfg.rate_steps[1].at_ms, cfg.rate_steps[1].rate),
            (30_000, 20_000)
        );
        assert_eq!(cfg.duration_ms, Some(40_000));
        assert!(cfg.create, "a workload creates its topic by default");
    }

    #[test]
    fn given_a_bad_workload_when_parsing_should_name_the_problem() {
        let err = parse("mode = \"produce\"\nparitions = 8\n").unwrap_err();
        assert!(err.contains("paritions"), "{err}");
        let w = parse("mode = \"fly\"").expect("parses");
        assert!(w.run_args(&args()).is_err());
    }

    #[test]
    fn given_every_bundled_workload_when_parsing_should_make_a_valid_run() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/workloads");
        let mut seen = 0;
        for entry in std::fs::read_dir(dir).expect("loadgen/workloads exists") {
            let path = entry.expect("a directory entry").path();
            let w = load(&path).unwrap_or_else(|e| panic!("{e}"));
            let (mode, run) = w
                .run_args(&args())
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            run.into_config(mode, 64)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            seen += 1;
        }
        assert!(seen >= 5, "the bench scenarios are workload files");
    }
}
