//! The remote cluster's API server URL and CA, read from its kubeconfig (current context), for the
//! `kubernetes-server` and `kubernetes-certificate-authority-data` headers.

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

/// Why the kubeconfig is unusable.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("kubeconfig {path}: {reason}")]
pub struct KubeconfigError {
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
    certificate_authority: Option<PathBuf>,
}

/// Loads `path`; when it does not exist, `kubeconfig` in the same directory (the other key Cluster API
/// kubeconfig Secrets use).
pub fn load(path: &Path) -> Result<ClusterEndpoint, KubeconfigError> {
    let fail = |reason: String| KubeconfigError {
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
    endpoint_from_text(&text, chosen.parent().unwrap_or(Path::new("."))).map_err(fail)
}

/// The current context's cluster; relative CA file paths resolve against `base_dir`.
pub(crate) fn endpoint_from_text(text: &str, base_dir: &Path) -> Result<ClusterEndpoint, String> {
    let config: Kubeconfig = parse_without_echo(text)?;
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
    let ca_data_base64 = ca_data(&cluster.value, base_dir)?;
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

fn ca_data(cluster: &Cluster, base_dir: &Path) -> Result<String, String> {
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
    if let Some(file) = &cluster.certificate_authority {
        let path = base_dir.join(file);
        let pem = std::fs::read(&path)
            .map_err(|e| format!("cannot read certificate-authority {}: {e}", path.display()))?;
        return Ok(engine.encode(pem));
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
        let e = endpoint_from_text(&kubeconfig(&b64), Path::new("/")).unwrap();
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
            let e = endpoint_from_text(&text, Path::new("/")).unwrap_err();
            assert!(!e.contains("TOPSECRET"), "{e}");
            assert!(
                e.starts_with(&format!("not a valid kubeconfig (at line {line}, column ")),
                "{e}"
            );
        }
    }

    #[test]
    fn refuses_missing_or_bad_ca() {
        let e = endpoint_from_text(&kubeconfig("not*base64"), Path::new("/")).unwrap_err();
        assert!(e.contains("not base64"), "{e}");
        let no_ca = kubeconfig("x").replace("    certificate-authority-data: x\n", "");
        assert!(
            endpoint_from_text(&no_ca, Path::new("/"))
                .unwrap_err()
                .contains("no certificate-authority-data")
        );
    }
}
