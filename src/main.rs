//! The `sluice` binary: parse the command line, load config, start the shards.

use clap::{Parser, Subcommand};
use sluice::config::{BrokerConfig, ServeArgs};
use sluice::tune::TuneCommand;

/// Sluice: a Kafka-compatible broker, one shard per core.
#[derive(Debug, Parser)]
#[command(name = "sluice", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

// Parsed once at start; boxing `ServeArgs` would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
enum Command {
    /// Run the broker.
    Serve(ServeArgs),
    /// Host tuning for a broker.
    #[command(subcommand)]
    Tune(TuneCommand),
}

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("SLUICE_LOG").unwrap_or_else(|_| "info".into()))
        .with_target(false)
        // Colours for a terminal only: a log written to a file or a pipe stays plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        // A log line that cannot be written (the log's disk is full) is
        // dropped; reporting that on stderr would panic when stderr cannot be
        // written either, and take the broker down with it.
        .log_internal_errors(false)
        .init();
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => {
            let config = match BrokerConfig::resolve(&args) {
                Ok(config) => config,
                Err(e) => {
                    report(&e);
                    std::process::exit(2);
                }
            };
            if let Err(e) = sluice::broker::run(config) {
                report(&e);
                std::process::exit(1);
            }
        }
        Command::Tune(TuneCommand::Check(args)) => {
            sluice::tune::run_check(&args.options());
        }
    }
}

/// Prints a fatal error on stderr; a stderr that cannot be written (a full
/// disk) does not turn it into a panic.
fn report(error: &dyn std::fmt::Display) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "sluice: {error}");
}
