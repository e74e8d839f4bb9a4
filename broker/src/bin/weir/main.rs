//! The `weir` binary: parse the command line, set up logging, run the broker
//! (`serve`) or an admin command against a running one (`group`, `share-group`, `topic`,
//! `txn`, `user`, `quota`, `acl`).
//! The admin commands block the main thread on their sockets; the broker
//! starts its own shard threads.

mod acls;
mod admin;
mod args;
mod backlog;
mod group_delete;
mod quotas;
mod share_group;
mod topic_changes;
mod txn;
mod users;

use args::{Cli, Command};
use clap::Parser;

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = Cli::parse();
    let mut stdout = std::io::stdout().lock();
    let result = match cli.command {
        Command::Serve(args) => weir_broker::server::run(*args).map_err(|e| e.to_string()),
        Command::Group(args) => admin::run_group(args, &mut stdout).map_err(|e| with_sources(&e)),
        Command::Topic(args) => admin::run_topic(args, &mut stdout).map_err(|e| with_sources(&e)),
        Command::ShareGroup(args) => share_group::run(args, &mut stdout).map_err(|e| with_sources(&e)),
        Command::Txn(args) => txn::run(args, &mut stdout).map_err(|e| with_sources(&e)),
        Command::User(args) => users::run(args, &mut stdout).map_err(|e| with_sources(&e)),
        Command::Quota(args) => quotas::run(args, &mut stdout).map_err(|e| with_sources(&e)),
        Command::Acl(args) => acls::run(args, &mut stdout).map_err(|e| with_sources(&e)),
    };
    if let Err(message) = result {
        eprintln!("weir: {message}");
        std::process::exit(1);
    }
}

/// The error and its chain of causes on one line, so "connection refused" reaches the operator.
fn with_sources(e: &dyn std::error::Error) -> String {
    let mut message = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = s.source();
    }
    message
}
