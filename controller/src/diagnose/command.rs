//! The `diagnose` subcommand: flags, input selection, and the exit code.

use std::path::PathBuf;
use std::time::Duration;

use muster_exchange_dex::{ClientOptions, ExchangeClient};

use crate::diagnose::checks::{
    DiagnoseInput, all_ready, check_all, input_from_cluster, input_from_files, render,
};
use crate::diagnose::sources::read_inputs;
use crate::probe::ProbeSettings;
use muster_exchange_api::credentials_policy::CredentialsPolicy;
use muster_exchange_api::duration::parse_positive;

/// `muster-exchange diagnose`: check MCPServers' token exchange once and exit 1 if any is not Ready.
#[derive(Debug, Clone, clap::Args)]
pub struct DiagnoseArgs {
    /// Manifest file with MCPServers and their credential Secrets (YAML or JSON, `-` for stdin); repeatable.
    /// Without it, the objects are read from the current kubeconfig context.
    #[arg(short = 'f', long = "filename", value_name = "FILE")]
    pub files: Vec<String>,
    /// Namespace to read MCPServers from (cluster mode; default all namespaces). With -f, the namespace of
    /// objects that name none.
    #[arg(short = 'n', long)]
    pub namespace: Option<String>,
    /// PEM bundle of extra CAs trusted for the remote Dex servers (private CAs).
    #[arg(long, value_name = "PATH")]
    pub ca_file: Option<PathBuf>,
    /// Deadline for checking one MCPServer (discovery plus probe exchange).
    #[arg(long, default_value = "5s", value_parser = parse_positive)]
    pub probe_timeout: Duration,
    /// Send the probe exchange with an invalid subject token (TokenExchangeReady); false skips it.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub probe_exchange: bool,
    /// The controller's namespace: credentials Secrets there are refused (as the controller does).
    #[arg(long, default_value = "muster-exchange")]
    pub controller_namespace: String,
    /// Accept credentials Secrets outside their MCPServer's namespace (as the controller flag of that name;
    /// alone it means `=true`).
    #[arg(long, default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1,
          default_missing_value = "true", require_equals = true)]
    pub allow_cross_namespace_credentials: bool,
}

impl DiagnoseArgs {
    /// The controller's rule for where credentials Secrets may live.
    pub fn credentials_policy(&self) -> CredentialsPolicy {
        CredentialsPolicy::for_controller(&self.controller_namespace, self.allow_cross_namespace_credentials)
    }
}

/// Why diagnose could not check anything (exit code 2).
#[derive(Debug, thiserror::Error)]
pub enum DiagnoseError {
    /// `--ca-file` unreadable.
    #[error("cannot read --ca-file {path}: {cause}; check the path")]
    CaFile {
        /// Path.
        path: String,
        /// Cause.
        cause: std::io::Error,
    },
    /// The HTTPS client could not be built (bad CA bundle, no crypto provider).
    #[error(transparent)]
    Client(#[from] muster_exchange_dex::BuildError),
    /// A manifest could not be read.
    #[error(transparent)]
    Input(#[from] crate::diagnose::sources::InputError),
    /// Malformed MCPServers in the files.
    #[error("the files hold objects that are not valid MCPServers:\n  {}", .0.join("\n  "))]
    Malformed(Vec<String>),
    /// No kubeconfig or cluster access.
    #[error(
        "cannot read MCPServers from the current kubeconfig context: {0}; pass -f FILE or fix the context"
    )]
    Cluster(String),
}

/// What diagnose found.
#[derive(Debug)]
pub struct DiagnoseReport {
    /// The printed report.
    pub text: String,
    /// Every MCPServer is Ready.
    pub all_ready: bool,
}

/// Runs the checks once and renders the report.
pub async fn diagnose(args: &DiagnoseArgs) -> Result<DiagnoseReport, DiagnoseError> {
    let extra_ca_pem = match &args.ca_file {
        Some(path) => Some(std::fs::read(path).map_err(|cause| DiagnoseError::CaFile {
            path: path.display().to_string(),
            cause,
        })?),
        None => None,
    };
    let client = ExchangeClient::with_resolver(
        ClientOptions {
            timeout: crate::probe::http_client_timeout(args.probe_timeout),
            extra_ca_pem,
        },
        crate::probe::resolve_guard::GuardedResolver::system(),
    )?;
    let input: DiagnoseInput = if args.files.is_empty() {
        let kube = crate::runtime::kube_client::clients()
            .await
            .map_err(|e| DiagnoseError::Cluster(e.to_string()))?
            .call;
        input_from_cluster(&kube, args.namespace.as_deref(), &args.credentials_policy())
            .await
            .map_err(|e| DiagnoseError::Cluster(e.to_string()))?
    } else {
        let files = read_inputs(&args.files, args.namespace.as_deref().unwrap_or("default"))?;
        if !files.servers.malformed.is_empty() {
            return Err(DiagnoseError::Malformed(files.servers.malformed));
        }
        input_from_files(&files, &args.credentials_policy())
    };
    let settings = ProbeSettings {
        timeout: args.probe_timeout,
        exchange_probe: args.probe_exchange,
    };
    let results = check_all(&client, input.targets.clone(), &settings).await;
    Ok(DiagnoseReport {
        text: render(&input, &results),
        all_ready: all_ready(&input, &results),
    })
}

/// Entry point: prints the report; exit 0 all Ready, 1 any not Ready, 2 unreadable input.
pub async fn run_diagnose(args: DiagnoseArgs) -> std::process::ExitCode {
    match diagnose(&args).await {
        Ok(report) => {
            print!("{}", report.text);
            std::process::ExitCode::from(if report.all_ready { 0 } else { 1 })
        }
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::from(2)
        }
    }
}
