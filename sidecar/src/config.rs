//! Loading the sidecar's configuration document: `--config FILE` (YAML or JSON) or, without it, the
//! JSON the webhook puts into the pod spec (env [`SIDECAR_CONFIG_ENV`]).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use muster_exchange_api::names::SIDECAR_CONFIG_ENV;
use muster_exchange_api::sidecar_config::SidecarConfig;

/// Why the configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read the sidecar config {path}: {source}; check the --config path")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Neither `--config` nor the environment variable is set.
    #[error("no sidecar configuration: pass --config FILE or set {SIDECAR_CONFIG_ENV} (the webhook sets it)")]
    Missing,
    /// Not valid YAML/JSON for the document, or semantically wrong.
    #[error("{origin}: {message}")]
    Invalid {
        /// `--config <path>` or the env var name.
        origin: String,
        /// What is wrong and how to fix it.
        message: String,
    },
}

/// Reads the document from `path`, or from the environment when `path` is `None`, and checks it.
pub fn load(path: Option<&Path>) -> Result<SidecarConfig, ConfigError> {
    let (origin, text) = match path {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                path: path.to_path_buf(),
                source,
            })?;
            (path.display().to_string(), text)
        }
        None => match std::env::var(SIDECAR_CONFIG_ENV) {
            Ok(text) if !text.trim().is_empty() => (format!("env {SIDECAR_CONFIG_ENV}"), text),
            _ => return Err(ConfigError::Missing),
        },
    };
    parse(&origin, &text)
}

/// Parses and checks a document; `origin` names where it came from in errors.
pub fn parse(origin: &str, text: &str) -> Result<SidecarConfig, ConfigError> {
    let invalid = |message: String| ConfigError::Invalid {
        origin: origin.to_string(),
        message,
    };
    let config = SidecarConfig::parse(text).map_err(invalid)?;
    config.check().map_err(invalid)?;
    listen_addr(&config.listen).map_err(invalid)?;
    crate::forward::UpstreamTarget::parse(&config.upstream).map_err(|e| invalid(e.to_string()))?;
    Ok(config)
}

/// The `listen` value as a socket address.
pub fn listen_addr(listen: &str) -> Result<SocketAddr, String> {
    listen
        .parse()
        .map_err(|e| format!("listen {listen:?} is not an address like [::]:8090 or 0.0.0.0:8090: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const YAML: &str = "listen: 127.0.0.1:9000\nupstream: http://127.0.0.1:8080\nheaderMode: bearer\nclusters:\n\
        - name: a\n  dexTokenEndpoint: https://dex.a/token\n  connectorId: central\n  credentialsDir: /s/a\n";

    #[test]
    fn parses_yaml_and_json() {
        let c = parse("t", YAML).unwrap();
        assert_eq!(c.listen, "127.0.0.1:9000");
        assert_eq!(c.clusters[0].name, "a");
        let json = serde_json::to_string(&c).unwrap();
        assert_eq!(parse("t", &json).unwrap(), c);
    }

    #[test]
    fn explains_bad_documents() {
        let e = parse("cfg.yaml", &YAML.replace("https://dex.a", "http://dex.a")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "cfg.yaml: cluster \"a\": dexTokenEndpoint must be an https:// URL"
        );
        let e = parse("cfg.yaml", &YAML.replace("127.0.0.1:9000", "nine")).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("cfg.yaml: listen \"nine\" is not an address"),
            "{e}"
        );
        let e = parse("cfg.yaml", &YAML.replace("http://127.0.0.1:8080", "https://x")).unwrap_err();
        assert!(e.to_string().contains("upstream"), "{e}");
    }

    #[test]
    fn missing_file_names_the_path() {
        let e = load(Some(Path::new("/nonexistent/sidecar.yaml"))).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("cannot read the sidecar config /nonexistent/sidecar.yaml"),
            "{e}"
        );
    }
}
