//! The commands wired into the `muster-exchange` binary by the CLI crate: `muster-exchange controller`
//! (its flags are here; `runtime/` runs it) and `muster-exchange diagnose` (in `diagnose/`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use k8s_openapi::api::rbac::v1::Subject;

pub use crate::diagnose::command::{DiagnoseArgs, run_diagnose};
use crate::grants::subjects::parse_service_account;
use muster_exchange_api::duration::parse_positive;

/// `muster-exchange controller`: Secret-read grants and per-cluster MCPServer conditions.
#[derive(Debug, Clone, clap::Args)]
pub struct ControllerArgs {
    /// Label selector of organization namespaces (kubeconfig grants are made there).
    #[arg(long, default_value = "giantswarm.io/organization")]
    pub org_namespace_selector: String,
    /// Who may `get` the kubeconfig Secrets, as serviceaccount:NAMESPACE/NAME; repeatable.
    #[arg(long = "grant-subject", value_name = "serviceaccount:NAMESPACE/NAME", value_parser = parse_service_account)]
    pub grant_subjects: Vec<Subject>,
    /// Suffix of kubeconfig Secret names (`<cluster>-kubeconfig`, the Cluster API convention).
    #[arg(long, default_value = muster_exchange_api::names::KUBECONFIG_SECRET_SUFFIX)]
    pub kubeconfig_secret_suffix: String,
    /// Let an MCPServer use a credentials Secret in another namespace (probe reads it, the credentials reader
    /// is granted it). Risk: every MCPServer author can then have any such Secret read and sent to a token
    /// endpoint of their choosing; system namespaces and the controller's own stay refused regardless.
    /// `--allow-cross-namespace-credentials` alone means `=true`.
    #[arg(long, default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1,
          default_missing_value = "true", require_equals = true)]
    pub allow_cross_namespace_credentials: bool,
    /// ServiceAccount that reads token-exchange credential Secrets (e.g. Muster's); unset: no credential grants.
    #[arg(long, value_name = "serviceaccount:NAMESPACE/NAME", value_parser = parse_service_account)]
    pub credentials_reader: Option<Subject>,
    /// Namespace of the MCPServers to watch; empty: all namespaces.
    #[arg(long, default_value = "")]
    pub mcpserver_namespace: String,
    /// Interval between probes of one MCPServer (jittered ±10 %).
    #[arg(long, default_value = "60s", value_parser = parse_positive)]
    pub probe_interval: Duration,
    /// Deadline for one MCPServer's probe (discovery plus probe exchange).
    #[arg(long, default_value = "5s", value_parser = parse_positive)]
    pub probe_timeout: Duration,
    /// Longest delay between probes of a failing MCPServer (exponential backoff from the interval).
    #[arg(long, default_value = "10m", value_parser = parse_positive)]
    pub probe_max_backoff: Duration,
    /// Probes in flight at most.
    #[arg(long, default_value_t = 16)]
    pub probe_concurrency: usize,
    /// Send the probe exchange with an invalid subject token (TokenExchangeReady); false skips it.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub probe_exchange: bool,
    /// PEM bundle of extra CAs trusted for the remote Dex servers.
    #[arg(long, value_name = "PATH")]
    pub ca_file: Option<PathBuf>,
    /// The controller's own namespace: never granted in.
    #[arg(long, env = "POD_NAMESPACE", default_value = "muster-exchange")]
    pub controller_namespace: String,
    /// Elect a leader on a Lease (only the leader writes); false for a single local replica.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub leader_election: bool,
    /// Name of the leader-election Lease.
    #[arg(long, default_value = "muster-exchange-controller")]
    pub leader_election_lease_name: String,
    /// Namespace of the leader-election Lease; default the controller's namespace.
    #[arg(long)]
    pub leader_election_namespace: Option<String>,
    /// This replica's identity in the Lease; default the pod name.
    #[arg(long, env = "POD_NAME")]
    pub leader_election_identity: Option<String>,
    /// Address of /healthz, /readyz and /metrics; the default `[::]` accepts IPv6 and IPv4 (dual-stack
    /// on Linux).
    #[arg(long, default_value = "[::]:8080")]
    pub metrics_addr: SocketAddr,
    /// Grants are re-checked at least this often even without watch events.
    #[arg(long, default_value = "5m", value_parser = parse_positive)]
    pub grants_resync_interval: Duration,
    /// Namespaces synced at once.
    #[arg(long, default_value_t = 8)]
    pub grants_concurrency: usize,
}

/// Why the controller could not start (exit code 1).
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A flag combination makes no sense.
    #[error("{0}")]
    Flags(String),
    /// `--ca-file` unreadable.
    #[error("cannot read --ca-file {0}: {1}")]
    CaFile(String, std::io::Error),
    /// Dex client.
    #[error(transparent)]
    Dex(#[from] muster_exchange_dex::BuildError),
    /// No cluster access.
    #[error(transparent)]
    Kube(#[from] crate::runtime::kube_client::ClientError),
    /// The metrics address is taken.
    #[error("cannot listen on --metrics-addr {0}: {1}")]
    Listen(SocketAddr, std::io::Error),
}

/// Entry point: runs until SIGTERM/Ctrl-C; exit 0 after a graceful shutdown, 1 when it cannot start.
pub async fn run_controller(args: ControllerArgs) -> std::process::ExitCode {
    match crate::runtime::run(args).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::from(1)
        }
    }
}

/// Runs the controller against the API server `config` names (the grant benchmark drives a mock API
/// server this way); otherwise as [`run_controller`].
#[doc(hidden)]
pub async fn run_controller_with(args: ControllerArgs, config: kube::Config) -> std::process::ExitCode {
    let started = match crate::runtime::kube_client::clients_from(config) {
        Ok(clients) => crate::runtime::run_with(args, clients).await,
        Err(e) => Err(e.into()),
    };
    match started {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::from(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::runtime::validate;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: ControllerArgs,
    }

    #[test]
    fn flags_parse_with_documented_defaults() {
        let cli = Cli::try_parse_from([
            "controller",
            "--grant-subject",
            "serviceaccount:muster/mcp-kubernetes",
            "--grant-subject=sa:muster/other",
            "--credentials-reader",
            "serviceaccount:muster/muster",
            "--controller-namespace",
            "mx",
        ])
        .unwrap();
        let a = cli.args;
        assert_eq!(a.org_namespace_selector, "giantswarm.io/organization");
        assert_eq!(
            a.grant_subjects
                .iter()
                .map(|s| s.name.as_str())
                .collect::<Vec<_>>(),
            ["mcp-kubernetes", "other"]
        );
        assert_eq!(a.credentials_reader.map(|s| s.name), Some("muster".into()));
        assert_eq!(
            (a.probe_interval, a.probe_timeout),
            (Duration::from_secs(60), Duration::from_secs(5))
        );
        assert_eq!(a.kubeconfig_secret_suffix, "-kubeconfig");
        assert_eq!(a.mcpserver_namespace, "");
        assert!(a.leader_election && a.probe_exchange);
        assert!(!a.allow_cross_namespace_credentials, "off unless asked for");
        // The spelling the refusal messages suggest, the bare flag, and an explicit false all parse.
        for (flag, expected) in [
            ("--allow-cross-namespace-credentials=true", true),
            ("--allow-cross-namespace-credentials", true),
            ("--allow-cross-namespace-credentials=false", false),
        ] {
            let parsed = Cli::try_parse_from(["controller", flag]).unwrap();
            assert_eq!(parsed.args.allow_cross_namespace_credentials, expected, "{flag}");
        }
        assert_eq!(a.leader_election_lease_name, "muster-exchange-controller");
    }

    #[test]
    fn bad_subjects_and_durations_are_refused_with_a_hint() {
        let err = Cli::try_parse_from(["controller", "--grant-subject", "user:alice"])
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("serviceaccount:NAMESPACE/NAME"), "{err}");
        let err = Cli::try_parse_from(["controller", "--probe-timeout", "soon"])
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("use a number and a unit (ns, us, ms, s, m or h)"),
            "{err}"
        );
        // Every duration flag takes a unit: a bare number is refused, not read as seconds.
        assert!(Cli::try_parse_from(["controller", "--probe-interval", "60"]).is_err());
        let cli = Cli::try_parse_from(["controller", "--probe-max-backoff", "1h30m"]).unwrap();
        assert_eq!(cli.args.probe_max_backoff, Duration::from_secs(5400));
        for (flag, value, message) in [
            (
                "--grants-resync-interval",
                "1s",
                "--grants-resync-interval (1s) must be between 2s and",
            ),
            (
                "--grants-resync-interval",
                "1000h",
                "--grants-resync-interval (3600000s) must be between",
            ),
            (
                "--probe-max-backoff",
                "2000h",
                "--probe-max-backoff (7200000s) must be between",
            ),
        ] {
            let cli = Cli::try_parse_from(["controller", flag, value]).unwrap();
            let err = validate(&cli.args).unwrap_err().to_string();
            assert!(err.starts_with(message), "{err}");
        }
        let cli = Cli::try_parse_from(["controller", "--probe-timeout", "2m"]).unwrap();
        assert!(
            validate(&cli.args)
                .unwrap_err()
                .to_string()
                .starts_with("--probe-timeout (120s) must be shorter")
        );
    }
}

#[cfg(test)]
mod send_check {
    fn assert_send<T: Send>(_: &T) {}

    #[test]
    #[allow(clippy::unwrap_used)]
    fn entry_point_futures_are_send_so_the_cli_may_spawn_them() {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            args: super::ControllerArgs,
        }
        let args = Cli::try_parse_from(["controller"]).unwrap().args;
        assert_send(&super::run_controller(args));
        let diagnose = crate::diagnose::command::DiagnoseArgs {
            files: vec![],
            namespace: None,
            ca_file: None,
            probe_timeout: std::time::Duration::from_secs(1),
            probe_exchange: true,
            controller_namespace: "mx".into(),
            allow_cross_namespace_credentials: false,
        };
        assert_send(&crate::diagnose::command::run_diagnose(diagnose));
    }
}
