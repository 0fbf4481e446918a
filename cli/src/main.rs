//! `muster-exchange`: one binary for every component. `main` only parses arguments, installs the TLS
//! crypto provider and the log subscriber once, and hands over to the component's entry point.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod crd_cmd;
mod logging;
mod validate_cmd;

/// Token exchange wiring for a central Muster in front of many management clusters.
#[derive(Parser, Debug)]
#[command(name = "muster-exchange", version, about, propagate_version = true)]
struct Cli {
    #[command(flatten)]
    logging: logging::LogArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Validate MCPServer manifests offline (exit 0 valid, 1 invalid, 2 unreadable).
    Validate(validate_cmd::ValidateArgs),
    /// Print the MCPServer CRD generated from the Rust types.
    Crd,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // One crypto provider (ring) for every TLS user in the process: kube, axum-server, reqwest, rcgen.
    if rustls::crypto::ring::default_provider()
        .install_default()
        .is_err()
    {
        eprintln!("error: a TLS crypto provider was already installed; this is a bug, please report it");
        return ExitCode::from(70);
    }
    if let Err(e) = logging::init(&cli.logging) {
        eprintln!("error: {e}");
        return ExitCode::from(2);
    }
    match cli.command {
        Command::Validate(args) => validate_cmd::run(&args),
        Command::Crd => crd_cmd::run(),
    }
}
