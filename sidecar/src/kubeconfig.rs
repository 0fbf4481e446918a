//! The remote cluster's API server URL and CA, read from its kubeconfig (current context), for the
//! `kubernetes-server` and `kubernetes-certificate-authority-data` headers.
//!
//! A kubeconfig that names files (`certificate-authority`, `client-certificate`, `client-key`,
//! `tokenFile`) is refused: the sidecar reads no file a kubeconfig names (it could be any file the
//! container can reach, of any size), and the Secret must carry everything inline.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use muster_exchange_api::names::KUBECONFIG_FALLBACK_KEY;
use serde::Deserialize;

/// Where the remote API server is and which CA signs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterEndpoint {
    /// `clusters[].cluster.server`.
    pub server: String,
    /// The CA bundle as base64 of PEM (what the auth-headers provider expects).
    pub ca_data_base64: String,
}

/// Why the kubeconfig (or the endpoint ConfigMap file, see [`crate::endpoint`]) is unusable.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("{kind} {path}: {reason}")]
pub struct KubeconfigError {
    /// What the file is: `kubeconfig` or `endpoint ConfigMap file`.
    pub kind: &'static str,
    /// The file (or the one tried first).
    pub path: PathBuf,
    /// What is wrong and what to do.
    pub reason: String,
}

#[derive(Deserialize)]
struct Kubeconfig {
    #[serde(rename = "current-context", default)]
    current_context: Option<String>,
    #[serde(default)]
    contexts: Vec<Named<Context>>,
    #[serde(default)]
    clusters: Vec<Named<Cluster>>,
    #[serde(default)]
    users: Vec<NamedUser>,
}

/// A `users` entry; one without `user` is tolerated (it names no file).
#[derive(Deserialize)]
struct NamedUser {
    name: String,
    #[serde(default)]
    user: User,
}

/// Only the file references of a user entry; everything else in it is ignored.
#[derive(Deserialize, Default)]
struct User {
    #[serde(rename = "client-certificate", default)]
    client_certificate: Option<serde::de::IgnoredAny>,
    #[serde(rename = "client-key", default)]
    client_key: Option<serde::de::IgnoredAny>,
    #[serde(rename = "tokenFile", default)]
    token_file: Option<serde::de::IgnoredAny>,
}

#[derive(Deserialize)]
struct Named<T> {
    name: String,
    #[serde(alias = "context", alias = "cluster")]
    value: T,
}

#[derive(Deserialize)]
struct Context {
    cluster: String,
}

#[derive(Deserialize)]
struct Cluster {
    server: String,
    #[serde(rename = "certificate-authority-data", default)]
    certificate_authority_data: Option<String>,
    #[serde(rename = "certificate-authority", default)]
    certificate_authority: Option<serde::de::IgnoredAny>,
}

/// Loads `path`; when it does not exist, `kubeconfig` in the same directory (the other key Cluster API
/// kubeconfig Secrets use).
pub fn load(path: &Path) -> Result<ClusterEndpoint, KubeconfigError> {
    let fail = |reason: String| KubeconfigError {
        kind: "kubeconfig",
        path: path.to_path_buf(),
        reason,
    };
    let chosen = if path.exists() {
        path.to_path_buf()
    } else {
        let fallback = path.with_file_name(KUBECONFIG_FALLBACK_KEY);
        if !fallback.exists() {
            return Err(fail(format!(
                "neither it nor {} exists; mount the cluster's kubeconfig Secret (key value or kubeconfig)",
                fallback.display()
            )));
        }
        fallback
    };
    let text = std::fs::read_to_string(&chosen)
        .map_err(|e| fail(format!("cannot read {}: {e}", chosen.display())))?;
    endpoint_from_text(&text).map_err(fail)
}

/// The current context's cluster, after refusing every file reference.
pub(crate) fn endpoint_from_text(text: &str) -> Result<ClusterEndpoint, String> {
    let config: Kubeconfig = parse_without_echo(text)?;
    refuse_file_references(&config)?;
    let cluster_name = match (&config.current_context, config.contexts.as_slice()) {
        (Some(current), contexts) => {
            let context = contexts.iter().find(|c| &c.name == current);
            context
                .map(|c| c.value.cluster.clone())
                .ok_or_else(|| format!("current-context {current:?} is not in contexts"))?
        }
        (None, [only]) => only.value.cluster.clone(),
        (None, _) => {
            return Err("no current-context set; set it to the context of the remote cluster".into());
        }
    };
    let cluster = config
        .clusters
        .iter()
        .find(|c| c.name == cluster_name)
        .ok_or_else(|| format!("cluster {cluster_name:?} of the current context is not in clusters"))?;
    let ca_data_base64 = ca_data(&cluster.value)?;
    Ok(ClusterEndpoint {
        server: cluster.value.server.clone(),
        ca_data_base64,
    })
}

/// Parses the YAML. The file also holds client keys and tokens, so the error names only the position: the
/// parser's own text may quote the offending value (and by default a source snippet), and this error ends
/// up in logs, JSON error bodies and `/readyz`.
fn parse_without_echo(text: &str) -> Result<Kubeconfig, String> {
    let mut options = muster_exchange_api::documents::yaml_options();
    options.with_snippet = false;
    options.crop_radius = 0;
    serde_saphyr::from_str_with_options(text, options).map_err(|e| {
        let position = e.location().map_or_else(
            || "at an unknown position".to_string(),
            |l| format!("at line {}, column {}", l.line(), l.column()),
        );
        format!(
            "not a valid kubeconfig ({position}; details withheld because the file holds credentials); \
             check it with kubectl --kubeconfig <file> config view"
        )
    })
}

/// The first file reference in any cluster or user entry, as an error naming the field and the entry
/// (not the path).
fn refuse_file_references(config: &Kubeconfig) -> Result<(), String> {
    let clusters = config
        .clusters
        .iter()
        .filter(|c| c.value.certificate_authority.is_some())
        .map(|c| ("certificate-authority", "cluster", &c.name));
    let users = config.users.iter().flat_map(|u| {
        [
            ("client-certificate", u.user.client_certificate.is_some()),
            ("client-key", u.user.client_key.is_some()),
            ("tokenFile", u.user.token_file.is_some()),
        ]
        .into_iter()
        .filter(|(_, present)| *present)
        .map(move |(field, _)| (field, "user", &u.name))
    });
    match clusters.chain(users).next() {
        Some((field, kind, name)) => Err(format!(
            "{kind} {name:?} names a file ({field}); the sidecar reads no file a kubeconfig names. Put the \
             content inline ({field}-data, or token), e.g. with kubectl config view --flatten --raw"
        )),
        None => Ok(()),
    }
}

fn ca_data(cluster: &Cluster) -> Result<String, String> {
    let engine = base64::engine::general_purpose::STANDARD;
    if let Some(data) = &cluster.certificate_authority_data {
        let compact: String = data.split_whitespace().collect();
        let pem = engine
            .decode(&compact)
            .map_err(|e| format!("certificate-authority-data is not base64: {e}"))?;
        if !pem.starts_with(b"-----BEGIN") {
            return Err("certificate-authority-data does not hold a PEM certificate".into());
        }
        return Ok(compact);
    }
    Err("the cluster has no certificate-authority-data; auth-headers mode must pass the CA to the app".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    const PEM: &str = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";

    fn kubeconfig(ca_b64: &str) -> String {
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: wc\ncontexts:\n- name: other\n  context:\n    cluster: x\n\
             - name: wc\n  context:\n    cluster: wc-cluster\n    user: admin\nclusters:\n- name: x\n  cluster:\n    \
             server: https://x\n- name: wc-cluster\n  cluster:\n    server: https://api.wc:6443\n    \
             certificate-authority-data: {ca_b64}\nusers: []\n"
        )
    }

    #[test]
    fn reads_current_context_cluster() {
        let b64 = base64::engine::general_purpose::STANDARD.encode(PEM);
        let e = endpoint_from_text(&kubeconfig(&b64)).unwrap();
        assert_eq!(
            e,
            ClusterEndpoint {
                server: "https://api.wc:6443".into(),
                ca_data_base64: b64
            }
        );
    }

    #[test]
    fn falls_back_to_the_kubeconfig_key() {
        let dir = tempfile::tempdir().unwrap();
        let b64 = base64::engine::general_purpose::STANDARD.encode(PEM);
        std::fs::write(dir.path().join("kubeconfig"), kubeconfig(&b64)).unwrap();
        assert_eq!(
            load(&dir.path().join("value")).unwrap().server,
            "https://api.wc:6443"
        );
        let e = load(&dir.path().join("sub").join("value")).unwrap_err();
        assert!(e.reason.contains("mount the cluster's kubeconfig Secret"), "{e}");
    }

    #[test]
    fn malformed_kubeconfig_errors_never_echo_its_content() {
        let secret = "c2VjcmV0LWNsaWVudC1rZXktZGF0YQ-TOPSECRET";
        let wrong_type = format!(
            "current-context: wc\ncontexts:\n- name: wc\n  context:\n    cluster: wc\nclusters:\n- name: wc\n  \
             cluster:\n    server: [{secret}]\nusers:\n- name: u\n  user:\n    client-key-data: {secret}\n"
        );
        let bad_yaml = format!("users:\n- name: u\n  user:\n    token: {secret}\n  : : [\n");
        for (text, line) in [(wrong_type, 9), (bad_yaml, 5)] {
            let e = endpoint_from_text(&text).unwrap_err();
            assert!(!e.contains("TOPSECRET"), "{e}");
            assert!(
                e.starts_with(&format!("not a valid kubeconfig (at line {line}, column ")),
                "{e}"
            );
        }
    }

    #[test]
    fn refuses_missing_or_bad_ca() {
        let e = endpoint_from_text(&kubeconfig("not*base64")).unwrap_err();
        assert!(e.contains("not base64"), "{e}");
        let no_ca = kubeconfig("x").replace("    certificate-authority-data: x\n", "");
        assert!(
            endpoint_from_text(&no_ca)
                .unwrap_err()
                .contains("no certificate-authority-data")
        );
    }

    #[test]
    fn file_references_are_refused_without_reading_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let secret_file = dir.path().join("client-secret");
        std::fs::write(&secret_file, "TOPSECRET-CLIENT-SECRET").unwrap();
        let b64 = base64::engine::general_purpose::STANDARD.encode(PEM);
        let ca_path = kubeconfig("x").replace(
            "    certificate-authority-data: x\n",
            &format!("    certificate-authority: {}\n", secret_file.display()),
        );
        let e = endpoint_from_text(&ca_path).unwrap_err();
        assert_eq!(
            e,
            "cluster \"wc-cluster\" names a file (certificate-authority); the sidecar reads no file a kubeconfig \
             names. Put the content inline (certificate-authority-data, or token), e.g. with kubectl config view \
             --flatten --raw"
        );
        assert!(!e.contains("TOPSECRET"));
        for (field, value) in [
            ("client-certificate", "/etc/passwd"),
            ("client-key", "/dev/zero"),
            ("tokenFile", "/var/run/secrets/token"),
        ] {
            let text = kubeconfig(&b64).replace(
                "users: []\n",
                &format!("users:\n- name: admin\n  user:\n    {field}: {value}\n"),
            );
            let e = endpoint_from_text(&text).unwrap_err();
            assert!(
                e.starts_with(&format!("user \"admin\" names a file ({field})")),
                "{e}"
            );
        }
        let inline = kubeconfig(&b64).replace(
            "users: []\n",
            "users:\n- name: admin\n  user:\n    client-certificate-data: eA==\n    client-key-data: eA==\n    token: t\n",
        );
        assert_eq!(endpoint_from_text(&inline).unwrap().server, "https://api.wc:6443");
    }
}
