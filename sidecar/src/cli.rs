//! `muster-exchange sidecar`: arguments and the entry point the binary calls.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use muster_exchange_api::duration::{parse_non_negative, parse_positive};

use crate::server::Sidecar;
use crate::state::SidecarOptions;

/// Flags of `muster-exchange sidecar`.
#[derive(clap::Args, Debug, Clone)]
pub struct SidecarArgs {
    /// The configuration document (YAML or JSON). Without it, the JSON in the environment variable
    /// MUSTER_EXCHANGE_SIDECAR_CONFIG is used (the webhook sets it).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Overrides the document's `listen` address (e.g. 127.0.0.1:8090).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// Timeout of one token exchange at Dex.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_positive)]
    pub exchange_timeout: Duration,
    /// After SIGTERM or Ctrl-C, how long open requests (e.g. SSE streams) may finish.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_non_negative)]
    pub shutdown_grace: Duration,
    /// Threads serving requests, each a single-threaded runtime with its own accept loop and its own
    /// connections to the app. Default: the CPUs available to the process, at most 2 (the sidecar asks
    /// for 10m CPU; more threads only add memory).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub threads: Option<u16>,
}

/// Default of `--threads`.
const MAX_DEFAULT_THREADS: usize = 2;

/// Runs the sidecar on its own runtimes (see [`SidecarArgs::threads`]) until SIGTERM or Ctrl-C; the
/// binary's entry point.
pub fn run(args: SidecarArgs) -> ExitCode {
    match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime.block_on(run_sidecar(args)),
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            ExitCode::from(70)
        }
    }
}

/// Runs the sidecar until SIGTERM or Ctrl-C, the calling runtime serving as the first thread. Errors are
/// printed to stderr; the exit code is 1 for a configuration or start-up problem, 0 after a clean
/// shutdown.
pub async fn run_sidecar(args: SidecarArgs) -> ExitCode {
    let mut config = match crate::config::load(args.config.as_deref()) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    let options = SidecarOptions {
        exchange_timeout: args.exchange_timeout,
        ..Default::default()
    };
    let sidecar = match Sidecar::bind(&config, &options).await {
        Ok(sidecar) => sidecar,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    let addr = sidecar.local_addr().map(|a| a.to_string()).unwrap_or_default();
    let clusters: Vec<&str> = config.clusters.iter().map(|c| c.name.as_str()).collect();
    let threads = args.threads.map_or_else(
        || {
            std::thread::available_parallelism()
                .map_or(1, usize::from)
                .min(MAX_DEFAULT_THREADS)
        },
        usize::from,
    );
    tracing::info!(listen = addr, upstream = config.upstream, header_mode = config.header_mode.as_str(),
        clusters = ?clusters, threads, "token-exchange sidecar listening");
    match sidecar
        .serve_with_workers(
            threads - 1,
            muster_exchange_ops::shutdown_signal(),
            args.shutdown_grace,
        )
        .await
    {
        Ok(()) => {
            tracing::info!("token-exchange sidecar stopped");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: the sidecar server failed: {e}");
            ExitCode::from(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser as _;

    #[derive(clap::Parser)]
    struct Wrapper {
        #[command(flatten)]
        args: SidecarArgs,
    }

    #[test]
    fn flags_parse_with_defaults() {
        let w = Wrapper::try_parse_from(["x", "--config", "/etc/sidecar.yaml", "--listen", "127.0.0.1:9"])
            .unwrap();
        assert_eq!(w.args.config, Some(PathBuf::from("/etc/sidecar.yaml")));
        assert_eq!(w.args.listen.as_deref(), Some("127.0.0.1:9"));
        assert_eq!(
            (w.args.exchange_timeout, w.args.shutdown_grace),
            (Duration::from_secs(10), Duration::from_secs(10))
        );
        assert_eq!(w.args.threads, None);
        assert!(Wrapper::try_parse_from(["x", "--threads", "0"]).is_err());
        let w = Wrapper::try_parse_from(["x", "--threads", "3"]).unwrap();
        assert_eq!(w.args.threads, Some(3));
    }

    #[test]
    fn durations_take_go_syntax() {
        let w =
            Wrapper::try_parse_from(["x", "--exchange-timeout", "2500ms", "--shutdown-grace", "0s"]).unwrap();
        assert_eq!(
            (w.args.exchange_timeout, w.args.shutdown_grace),
            (Duration::from_millis(2500), Duration::ZERO)
        );
        let error = Wrapper::try_parse_from(["x", "--exchange-timeout", "0s"])
            .err()
            .unwrap()
            .to_string();
        assert!(error.contains("greater than zero"), "{error}");
        let error = Wrapper::try_parse_from(["x", "--shutdown-grace", "10"])
            .err()
            .unwrap()
            .to_string();
        assert!(error.contains("for example 500ms, 30s"), "{error}");
    }

    #[tokio::test]
    async fn a_missing_config_file_exits_with_1() {
        let args = SidecarArgs {
            config: Some(PathBuf::from("/nonexistent/sidecar.yaml")),
            listen: None,
            exchange_timeout: Duration::from_secs(1),
            shutdown_grace: Duration::from_secs(1),
            threads: None,
        };
        assert_eq!(run_sidecar(args).await, ExitCode::from(1));
    }
}
