//! Command-line entry points wired into `muster-exchange` by the CLI crate: `webhook` and `inject`.
//! They print their own user-facing errors and install nothing global (the binary's `main` installs
//! the ring crypto provider and the tracing subscriber).

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use muster_exchange_api::documents::read_documents;
use muster_exchange_api::duration::{parse_non_negative, parse_positive};
use muster_exchange_api::names::DEFAULT_SIDECAR_IMAGE;
use muster_exchange_api::validation::syntax::is_dns1123_label;

use crate::inject::InjectorSettings;
use crate::mcpservers::StaticMcpServers;
use crate::offline::{inject_documents, to_yaml};
use crate::server::run::{CatalogSource, TlsSource, WebhookServerConfig, run};
use crate::tls::authority::service_dns_names;
use crate::tls::ca_secret::DEFAULT_CA_SECRET;
use crate::tls::pem_files::PemFiles;
use crate::tls::self_signed::SelfSignedSettings;

/// `muster-exchange webhook`: serve the admission webhook over HTTPS.
#[derive(Debug, Clone, clap::Args)]
pub struct WebhookArgs {
    /// Address to serve HTTPS on; the default `[::]` accepts IPv6 and IPv4 (dual-stack on Linux).
    #[arg(long, default_value = "[::]:8443", env = "MUSTER_EXCHANGE_WEBHOOK_LISTEN")]
    pub listen: SocketAddr,
    /// Image of the injected token-exchange sidecar.
    #[arg(long, default_value = DEFAULT_SIDECAR_IMAGE, env = "MUSTER_EXCHANGE_SIDECAR_IMAGE")]
    pub sidecar_image: String,
    /// Namespace holding the MCPServers when a pod does not say (default: the pod's namespace).
    #[arg(long, env = "MUSTER_EXCHANGE_MCPSERVER_NAMESPACE")]
    pub mcpserver_namespace: Option<String>,
    /// Read MCPServers from this YAML/JSON file instead of watching the cluster.
    #[arg(long, value_name = "FILE")]
    pub mcpservers: Option<String>,
    /// The central Dex's issuer URL; rendered into every sidecar, which then refuses subject tokens of any
    /// other issuer (but the remote cluster's own) before asking Dex.
    #[arg(long, value_name = "URL", env = "MUSTER_EXCHANGE_CENTRAL_ISSUER")]
    pub central_issuer: Option<String>,
    /// Serving certificate chain (PEM); reloaded when the file content changes.
    #[arg(
        long,
        value_name = "FILE",
        requires = "tls_key_file",
        conflicts_with = "self_signed"
    )]
    pub tls_cert_file: Option<PathBuf>,
    /// Serving private key (PEM).
    #[arg(long, value_name = "FILE", requires = "tls_cert_file")]
    pub tls_key_file: Option<PathBuf>,
    /// How often to check the TLS files for changes.
    #[arg(long, default_value = "10s", value_name = "DURATION", value_parser = parse_positive)]
    pub tls_reload_interval: Duration,
    /// Require API server client certificates signed by these CAs (PEM); default: any client.
    #[arg(long, value_name = "FILE")]
    pub client_ca_file: Option<PathBuf>,
    /// Serve a certificate of a CA kept in a Secret (created on first start, shared by the replicas,
    /// rotated with overlap) and patch that CA into the webhook configurations.
    #[arg(long)]
    pub self_signed: bool,
    /// Service name the API server uses to reach the webhook (certificate DNS names).
    #[arg(long, default_value = "muster-exchange-webhook")]
    pub service_name: String,
    /// Namespace of that Service.
    #[arg(long, default_value = "muster-exchange", env = "POD_NAMESPACE")]
    pub service_namespace: String,
    /// MutatingWebhookConfiguration whose caBundle `--self-signed` maintains.
    #[arg(long, default_value = "muster-exchange")]
    pub mutating_webhook_configuration: String,
    /// ValidatingWebhookConfiguration whose caBundle `--self-signed` maintains.
    #[arg(long, default_value = "muster-exchange")]
    pub validating_webhook_configuration: String,
    /// Secret (in the Service's namespace) holding the CA that `--self-signed` replicas share; created by
    /// the first replica to start.
    #[arg(long, default_value = DEFAULT_CA_SECRET)]
    pub self_signed_ca_secret: String,
    /// Lifetime of each self-signed CA and certificate, 1h to 87600h (ten years); rotated with a third
    /// of it left.
    #[arg(long, default_value = "720h", value_name = "DURATION", value_parser = parse_validity)]
    pub self_signed_validity: Duration,
    /// After SIGTERM, keep serving this long with /readyz failing (endpoints drop the pod meanwhile).
    #[arg(long, default_value = "5s", value_name = "DURATION", value_parser = parse_non_negative)]
    pub shutdown_delay: Duration,
    /// Longest wait for in-flight reviews after the shutdown delay.
    #[arg(long, default_value = "20s", value_name = "DURATION", value_parser = parse_non_negative)]
    pub shutdown_grace: Duration,
}

/// `muster-exchange inject`: print manifests with the sidecar injected, without a cluster.
#[derive(Debug, Clone, clap::Args)]
pub struct InjectArgs {
    /// Manifests to inject (`-` for stdin); multi-document YAML or JSON.
    #[arg(short = 'f', long = "filename", value_name = "FILE")]
    pub filename: String,
    /// MCPServers to inject from (YAML/JSON).
    #[arg(long, value_name = "FILE")]
    pub mcpservers: String,
    /// Image of the injected sidecar.
    #[arg(long, default_value = DEFAULT_SIDECAR_IMAGE)]
    pub sidecar_image: String,
    /// Namespace holding the MCPServers when a pod does not say (default: the pod's namespace).
    #[arg(long)]
    pub mcpserver_namespace: Option<String>,
    /// The central Dex's issuer URL; rendered into every sidecar, which then refuses subject tokens of any
    /// other issuer (but the remote cluster's own) before asking Dex.
    #[arg(long, value_name = "URL")]
    pub central_issuer: Option<String>,
    /// Namespace of objects that name none.
    #[arg(short = 'n', long, default_value = "default")]
    pub namespace: String,
}

/// Runs the webhook server until SIGTERM or Ctrl-C.
pub async fn run_webhook(args: WebhookArgs) -> ExitCode {
    let config = match server_config(args) {
        Ok(config) => config,
        Err(message) => return fail(&message),
    };
    match run(config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => fail(&error.to_string()),
    }
}

fn server_config(args: WebhookArgs) -> Result<WebhookServerConfig, String> {
    check_namespace("--mcpserver-namespace", args.mcpserver_namespace.as_deref())?;
    check_central_issuer(args.central_issuer.as_deref())?;
    let tls = match (args.tls_cert_file, args.tls_key_file, args.self_signed) {
        (Some(cert), Some(key), false) => TlsSource::Files {
            files: PemFiles { cert, key },
            reload_interval: args.tls_reload_interval,
        },
        (None, None, true) => {
            let validity = args.self_signed_validity;
            TlsSource::SelfSigned {
                settings: SelfSignedSettings {
                    dns_names: service_dns_names(&args.service_name, &args.service_namespace),
                    validity,
                    check_interval: (validity / 20).min(Duration::from_secs(600)),
                    propagation_delay: Duration::from_secs(10),
                    client_verifier: None,
                },
                mutating: args.mutating_webhook_configuration,
                validating: args.validating_webhook_configuration,
                ca_secret: args.self_signed_ca_secret,
                ca_namespace: args.service_namespace,
            }
        }
        _ => {
            return Err(
                "choose a certificate: --tls-cert-file FILE --tls-key-file FILE, or --self-signed".into(),
            );
        }
    };
    let catalog = match args.mcpservers {
        Some(file) => CatalogSource::File(file),
        None => CatalogSource::Cluster,
    };
    Ok(WebhookServerConfig {
        listen: args.listen,
        settings: InjectorSettings {
            sidecar_image: args.sidecar_image,
            default_mcpserver_namespace: args.mcpserver_namespace,
            central_issuer: args.central_issuer,
        },
        catalog,
        tls,
        client_ca_file: args.client_ca_file,
        shutdown_delay: args.shutdown_delay,
        shutdown_grace: args.shutdown_grace,
    })
}

/// Shortest `--self-signed-validity`: rotation starts with a third left, so shorter lifetimes rotate
/// faster than the API servers pick up a new CA bundle.
const MIN_VALIDITY: Duration = Duration::from_secs(3600);
/// Longest `--self-signed-validity`: ten years, beyond which certificate dates stop being meaningful.
const MAX_VALIDITY: Duration = Duration::from_secs(87_600 * 3600);

fn parse_validity(value: &str) -> Result<Duration, String> {
    let validity = parse_positive(value)?;
    if !(MIN_VALIDITY..=MAX_VALIDITY).contains(&validity) {
        return Err(format!(
            "{value:?} is outside 1h to 87600h (ten years); use for example 720h"
        ));
    }
    Ok(validity)
}

/// Injects the manifests of `-f` and prints them as YAML; exit 1 naming the object on any error.
pub fn run_inject(args: InjectArgs) -> ExitCode {
    match inject_to_string(&args) {
        Ok(yaml) => match std::io::stdout().lock().write_all(yaml.as_bytes()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => fail(&format!("cannot write to stdout: {error}")),
        },
        Err(message) => fail(&message),
    }
}

/// The output of `inject` as a string (what `run_inject` prints).
pub fn inject_to_string(args: &InjectArgs) -> Result<String, String> {
    check_namespace("--mcpserver-namespace", args.mcpserver_namespace.as_deref())?;
    check_namespace("--namespace", Some(&args.namespace))?;
    check_central_issuer(args.central_issuer.as_deref())?;
    let catalog = StaticMcpServers::load(&args.mcpservers).map_err(|e| e.to_string())?;
    let documents = read_documents(&args.filename).map_err(|e| e.to_string())?;
    let settings = InjectorSettings {
        sidecar_image: args.sidecar_image.clone(),
        default_mcpserver_namespace: args.mcpserver_namespace.clone(),
        central_issuer: args.central_issuer.clone(),
    };
    let objects =
        inject_documents(documents, &args.namespace, &settings, &catalog).map_err(|e| e.to_string())?;
    to_yaml(&objects)
}

fn check_namespace(flag: &str, namespace: Option<&str>) -> Result<(), String> {
    match namespace {
        Some(ns) if !is_dns1123_label(ns) => Err(format!(
            "{flag} {ns:?} is not a namespace name; use e.g. \"muster\""
        )),
        _ => Ok(()),
    }
}

fn check_central_issuer(issuer: Option<&str>) -> Result<(), String> {
    match issuer {
        Some(url) if !url.starts_with("https://") => Err(format!(
            "--central-issuer {url:?} is not an https:// URL; give the central Dex's issuer, e.g. https://dex.example.com"
        )),
        _ => Ok(()),
    }
}

fn fail(message: &str) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::FAILURE
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        webhook: WebhookArgs,
    }

    fn parse(args: &[&str]) -> Result<WebhookArgs, clap::Error> {
        Cli::try_parse_from(std::iter::once("muster-exchange").chain(args.iter().copied())).map(|c| c.webhook)
    }

    #[test]
    fn a_certificate_source_is_required_and_exclusive() {
        let error = server_config(parse(&[]).unwrap()).unwrap_err();
        assert_eq!(
            error,
            "choose a certificate: --tls-cert-file FILE --tls-key-file FILE, or --self-signed"
        );
        assert!(parse(&["--tls-cert-file", "c", "--tls-key-file", "k", "--self-signed"]).is_err());
        assert!(
            parse(&["--tls-cert-file", "c"]).is_err(),
            "the key is required with the certificate"
        );
    }

    #[test]
    fn self_signed_names_the_service_and_files_mode_polls() {
        let config = server_config(parse(&["--self-signed", "--service-namespace", "mx"]).unwrap()).unwrap();
        let TlsSource::SelfSigned {
            settings,
            mutating,
            ca_secret,
            ca_namespace,
            ..
        } = config.tls
        else {
            panic!("self-signed expected")
        };
        assert_eq!(settings.dns_names[2], "muster-exchange-webhook.mx.svc");
        assert_eq!(settings.validity, Duration::from_secs(720 * 3600));
        assert_eq!(settings.check_interval, Duration::from_secs(600));
        assert_eq!(mutating, "muster-exchange");
        assert_eq!(
            (ca_secret.as_str(), ca_namespace.as_str()),
            ("muster-exchange-webhook-ca", "mx")
        );
        assert!(matches!(config.catalog, CatalogSource::Cluster));

        let files = parse(&[
            "--tls-cert-file",
            "c",
            "--tls-key-file",
            "k",
            "--mcpservers",
            "m.yaml",
        ])
        .unwrap();
        let config = server_config(files).unwrap();
        assert!(
            matches!(config.tls, TlsSource::Files { reload_interval, .. } if reload_interval == Duration::from_secs(10))
        );
        assert!(matches!(config.catalog, CatalogSource::File(ref f) if f == "m.yaml"));
        assert_eq!(config.listen.to_string(), "[::]:8443");
        assert_eq!(config.shutdown_delay, Duration::from_secs(5));
        assert_eq!(config.shutdown_grace, Duration::from_secs(20));
    }

    #[test]
    fn mcpserver_namespace_is_the_default_lookup_namespace_and_the_watch_covers_all() {
        let config =
            server_config(parse(&["--self-signed", "--mcpserver-namespace", "muster"]).unwrap()).unwrap();
        assert!(
            matches!(config.catalog, CatalogSource::Cluster),
            "never a one-namespace watch"
        );
        assert_eq!(
            config.settings.default_mcpserver_namespace.as_deref(),
            Some("muster")
        );
    }

    #[test]
    fn self_signed_validity_is_bounded_by_clap() {
        for validity in ["59m", "87601h"] {
            let error = parse(&["--self-signed", "--self-signed-validity", validity]).unwrap_err();
            assert!(
                error.to_string().contains("outside 1h to 87600h"),
                "{validity}: {error}"
            );
        }
        for validity in ["0s", "720", "18446744073709551615h"] {
            assert!(
                parse(&["--self-signed", "--self-signed-validity", validity]).is_err(),
                "{validity}"
            );
        }
        let args = parse(&["--self-signed", "--self-signed-validity", "87600h"]).unwrap();
        assert_eq!(args.self_signed_validity, Duration::from_secs(87_600 * 3600));
        let args = parse(&["--self-signed", "--self-signed-validity", "1h"]).unwrap();
        assert_eq!(args.self_signed_validity, Duration::from_secs(3600));
    }

    #[test]
    fn durations_take_go_syntax_and_zero_only_where_it_means_skip() {
        let args = parse(&[
            "--self-signed",
            "--shutdown-delay",
            "0s",
            "--shutdown-grace",
            "1m30s",
            "--tls-reload-interval",
            "500ms",
        ])
        .unwrap();
        assert_eq!(args.shutdown_delay, Duration::ZERO);
        assert_eq!(args.shutdown_grace, Duration::from_secs(90));
        assert_eq!(args.tls_reload_interval, Duration::from_millis(500));
        let error = parse(&["--self-signed", "--tls-reload-interval", "0s"]).unwrap_err();
        assert!(error.to_string().contains("greater than zero"), "{error}");
        let error = parse(&["--self-signed", "--shutdown-grace", "20"]).unwrap_err();
        assert!(error.to_string().contains("for example 500ms, 30s"), "{error}");
    }

    #[test]
    fn a_bad_mcpserver_namespace_is_explained() {
        let error =
            server_config(parse(&["--self-signed", "--mcpserver-namespace", "Bad_NS"]).unwrap()).unwrap_err();
        assert_eq!(
            error,
            "--mcpserver-namespace \"Bad_NS\" is not a namespace name; use e.g. \"muster\""
        );
    }
}
