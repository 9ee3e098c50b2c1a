//! The `sluice` binary: parse the command line, load config, start the shards.

use clap::Parser;
use sluice::config::{BrokerConfig, Cli, Command};
use sluice::tune::TuneCommand;

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("SLUICE_LOG").unwrap_or_else(|_| "info".into()))
        .with_target(false)
        .init();
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => {
            let config = match BrokerConfig::resolve(&args) {
                Ok(config) => config,
                Err(e) => {
                    eprintln!("sluice: {e}");
                    std::process::exit(2);
                }
            };
            if let Err(e) = sluice::broker::run(config) {
                eprintln!("sluice: {e}");
                std::process::exit(1);
            }
        }
        Command::Tune(TuneCommand::Check(args)) => {
            sluice::tune::run_check(&args.options());
        }
    }
}
