//! The weir-loadgen binary: parse flags, run a mode, print and write reports,
//! exit non-zero with a clear message on any failure.

use std::process::ExitCode;

use clap::Parser;
use weir_loadgen::cli::{Cli, Command, Mode, RunArgs};
use weir_loadgen::machine::available_cores;
use weir_loadgen::null_broker::{NullBroker, NullBrokerConfig};
use weir_loadgen::report::html;
use weir_loadgen::runner::run;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Produce(args) => run_mode(args, Mode::Produce),
        Command::Consume(args) => run_mode(args, Mode::Consume),
        Command::E2e(args) => run_mode(args, Mode::E2e),
        Command::NullBroker(args) => {
            let cfg = NullBrokerConfig {
                listen: args.listen,
                stall_ms: args.stall_ms,
                stall_every_ms: args.stall_every_ms,
                default_partitions: args.default_partitions,
                auto_topics: !args.no_auto_topics,
            };
            match NullBroker::start(cfg.clone()) {
                Ok(b) => {
                    eprintln!("null-broker listening on {}", b.addr());
                    b.wait();
                    ExitCode::SUCCESS
                }
                Err(e) => fail(&format!("cannot listen on {}: {e}", cfg.listen)),
            }
        }
        Command::TcpCeiling(args) => match weir_loadgen::ceiling::tcp_ceiling(args.duration) {
            Ok(bps) => {
                println!(
                    "loopback TCP ceiling: {:.1} MB/s (64 KiB writes, one stream)",
                    bps / 1e6
                );
                ExitCode::SUCCESS
            }
            Err(e) => fail(&format!("tcp-ceiling failed: {e}")),
        },
    }
}

fn fail(message: &str) -> ExitCode {
    eprintln!("weir-loadgen: error: {message}");
    ExitCode::FAILURE
}

fn run_mode(args: RunArgs, mode: Mode) -> ExitCode {
    let (json_path, html_path) = (args.report_json.clone(), args.report_html.clone());
    let cfg = match args.into_config(mode, available_cores()) {
        Ok(c) => c,
        Err(e) => return fail(&e.to_string()),
    };
    let report = match run(cfg) {
        Ok(r) => r,
        Err(e) => return fail(&e.to_string()),
    };
    print!("{}", report.table());
    if let Some(path) = json_path {
        if let Err(e) = std::fs::write(&path, report.to_json()) {
            return fail(&format!("cannot write {}: {e}", path.display()));
        }
    }
    if let Some(path) = html_path {
        if let Err(e) = std::fs::write(&path, html::render(&report)) {
            return fail(&format!("cannot write {}: {e}", path.display()));
        }
    }
    if report.failed() {
        return fail(&format!(
            "{} records failed after retries (errors: {:?})",
            report.totals.all.failed_records, report.errors
        ));
    }
    ExitCode::SUCCESS
}
