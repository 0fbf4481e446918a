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
    /// Inject the token-exchange sidecar into manifests offline, like `istioctl kube-inject`.
    Inject(muster_exchange_webhook::cli::InjectArgs),
    /// Run the admission webhook (MCPServer validation and defaulting, sidecar injection).
    Webhook(muster_exchange_webhook::cli::WebhookArgs),
    /// Run the token-exchange sidecar in front of mcp-kubernetes.
    Sidecar(muster_exchange_sidecar::cli::SidecarArgs),
    /// Run the controller (Secret grants, per-cluster MCPServer conditions).
    Controller(muster_exchange_controller::cli::ControllerArgs),
    /// Check MCPServers' credentials, remote Dex and exchange once, like `linkerd check`.
    Diagnose(muster_exchange_controller::cli::DiagnoseArgs),
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
        Command::Inject(args) => muster_exchange_webhook::cli::run_inject(args),
        Command::Webhook(args) => block_on(muster_exchange_webhook::cli::run_webhook(args)),
        Command::Sidecar(args) => muster_exchange_sidecar::cli::run(args),
        Command::Controller(args) => block_on(muster_exchange_controller::cli::run_controller(args)),
        Command::Diagnose(args) => block_on(muster_exchange_controller::cli::run_diagnose(args)),
    }
}

/// Runs a long-lived component on a multi-threaded runtime; only the servers need one, so `validate`,
/// `crd` and `inject` start no threads.
fn block_on(future: impl std::future::Future<Output = ExitCode>) -> ExitCode {
    match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime.block_on(future),
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            ExitCode::from(70)
        }
    }
}
