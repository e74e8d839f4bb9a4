//! The `weir` binary: parse the command line, set up logging, run.

use clap::Parser;
use weir_broker::config::{Cli, Command};

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
    let result = match cli.command {
        Command::Serve(args) => weir_broker::server::run(*args),
    };
    if let Err(e) = result {
        eprintln!("weir: {e}");
        std::process::exit(1);
    }
}
