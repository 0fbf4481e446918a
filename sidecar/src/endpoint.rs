//! The remote cluster's API server URL and CA, read from the mounted endpoint ConfigMap (`endpointDir`):
//! two files with fixed names, `server` and `ca.crt`, and no cluster credentials anywhere.
//!
//! Read fresh on every exchange, like the kubeconfig, so a rotated CA or a moved server is picked up
//! without a restart. No path comes from the files' content.

use std::io::Read as _;
use std::path::Path;

use base64::Engine as _;
use muster_exchange_api::names::{ENDPOINT_CA_KEY, ENDPOINT_SERVER_KEY};

use crate::kubeconfig::{ClusterEndpoint, KubeconfigError};

/// Largest `ca.crt` accepted (a CA bundle is a few KiB; anything larger is not one).
pub const MAX_CA_BYTES: u64 = 64 * 1024;
/// Largest `server` accepted.
const MAX_SERVER_BYTES: u64 = 4 * 1024;

/// Reads `<dir>/server` and `<dir>/ca.crt`.
pub fn load(dir: &Path) -> Result<ClusterEndpoint, KubeconfigError> {
    let server_path = dir.join(ENDPOINT_SERVER_KEY);
    let ca_path = dir.join(ENDPOINT_CA_KEY);
    let fail = |path: &Path, reason: String| KubeconfigError {
        kind: "endpoint ConfigMap file",
        path: path.to_path_buf(),
        reason,
    };
    let server = read_limited(&server_path, MAX_SERVER_BYTES).map_err(|e| fail(&server_path, e))?;
    let server = server_url(&server).map_err(|e| fail(&server_path, e))?;
    let ca = read_limited(&ca_path, MAX_CA_BYTES).map_err(|e| fail(&ca_path, e))?;
    check_pem(&ca).map_err(|e| fail(&ca_path, e))?;
    Ok(ClusterEndpoint {
        server,
        ca_data_base64: base64::engine::general_purpose::STANDARD.encode(ca.as_bytes()),
    })
}

/// The file's text, refused beyond `limit` bytes without reading more than one byte past it.
fn read_limited(path: &Path, limit: u64) -> Result<String, String> {
    let file = std::fs::File::open(path).map_err(|e| {
        format!("cannot open it: {e}; mount the endpoint ConfigMap with keys {ENDPOINT_SERVER_KEY} and {ENDPOINT_CA_KEY}")
    })?;
    let mut bytes = Vec::new();
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read it: {e}"))?;
    if bytes.len() as u64 > limit {
        return Err(format!("larger than {limit} bytes; it is not a {}", what(path)));
    }
    String::from_utf8(bytes).map_err(|_| format!("not UTF-8 text; it is not a {}", what(path)))
}

fn what(path: &Path) -> &'static str {
    if path.ends_with(ENDPOINT_CA_KEY) {
        "PEM CA bundle"
    } else {
        "server URL"
    }
}

/// One `https://` URL, surrounding whitespace removed (a trailing newline from `--from-file` is usual).
fn server_url(text: &str) -> Result<String, String> {
    let server = text.trim();
    if !server.starts_with("https://") || server.len() == "https://".len() {
        return Err(
            "the server must be an https:// URL (the remote API server), e.g. https://api.wc.example:6443"
                .into(),
        );
    }
    if server.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("the server URL contains whitespace or control characters; write exactly one URL".into());
    }
    Ok(server.to_string())
}

/// At least one `CERTIFICATE` block, every block's body base64; nothing is echoed.
fn check_pem(text: &str) -> Result<(), String> {
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    const END: &str = "-----END CERTIFICATE-----";
    let not_pem = |why: &str| {
        format!("{why}; write the CA as PEM (-----BEGIN CERTIFICATE----- ... -----END CERTIFICATE-----)")
    };
    let mut blocks = 0;
    let mut body: Option<String> = None;
    for line in text.lines().map(str::trim) {
        match (&mut body, line) {
            (None, BEGIN) => body = Some(String::new()),
            (None, _) => {}
            (Some(b), END) => {
                base64::engine::general_purpose::STANDARD
                    .decode(b.as_bytes())
                    .map_err(|_| not_pem("a certificate block is not base64"))?;
                blocks += 1;
                body = None;
            }
            (Some(_), BEGIN) => return Err(not_pem("a certificate block is not closed")),
            (Some(b), line) => b.push_str(line),
        }
    }
    if body.is_some() {
        return Err(not_pem("the last certificate block is not closed"));
    }
    if blocks == 0 {
        return Err(not_pem("no certificate found"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const PEM: &str = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";

    fn dir_with(server: Option<&[u8]>, ca: Option<&[u8]>) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        if let Some(server) = server {
            std::fs::write(dir.path().join("server"), server).unwrap();
        }
        if let Some(ca) = ca {
            std::fs::write(dir.path().join("ca.crt"), ca).unwrap();
        }
        dir
    }

    #[test]
    fn reads_server_and_ca_as_the_headers_need_them() {
        let dir = dir_with(Some(b"https://api.wc:6443\n"), Some(PEM.as_bytes()));
        let endpoint = load(dir.path()).unwrap();
        assert_eq!(
            endpoint,
            ClusterEndpoint {
                server: "https://api.wc:6443".into(),
                ca_data_base64: base64::engine::general_purpose::STANDARD.encode(PEM),
            }
        );
        // Read fresh: a rotated file is seen on the next load.
        std::fs::write(dir.path().join("server"), "https://api2.wc:6443").unwrap();
        assert_eq!(load(dir.path()).unwrap().server, "https://api2.wc:6443");
    }

    #[test]
    fn refuses_http_and_malformed_servers() {
        for server in [
            &b"http://api.wc:6443"[..],
            b"https://",
            b"https://a b",
            b"api.wc:6443",
            b"",
        ] {
            let dir = dir_with(Some(server), Some(PEM.as_bytes()));
            let e = load(dir.path()).unwrap_err();
            assert_eq!(e.path, dir.path().join("server"));
            assert!(e.to_string().starts_with("endpoint ConfigMap file "), "{e}");
            assert!(
                e.reason.contains("https://") || e.reason.contains("whitespace"),
                "{e}"
            );
        }
    }

    #[test]
    fn refuses_a_ca_that_is_not_pem_or_too_large() {
        let der = [0x30u8, 0x82, 0x01, 0x0a, 0xff, 0x00];
        let cases: Vec<(&[u8], &str)> = vec![
            (
                b"MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA",
                "no certificate found",
            ),
            (&der, "not UTF-8"),
            (
                b"-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n",
                "not base64",
            ),
            (b"-----BEGIN CERTIFICATE-----\nMIIB\n", "not closed"),
        ];
        for (ca, expected) in cases {
            let dir = dir_with(Some(b"https://api.wc:6443"), Some(ca));
            let e = load(dir.path()).unwrap_err();
            assert_eq!(e.path, dir.path().join("ca.crt"));
            assert!(e.reason.contains(expected), "{expected}: {e}");
        }
        let mut big = PEM.as_bytes().to_vec();
        big.resize(MAX_CA_BYTES as usize + 1, b'\n');
        let dir = dir_with(Some(b"https://api.wc:6443"), Some(&big));
        assert!(
            load(dir.path())
                .unwrap_err()
                .reason
                .contains("larger than 65536 bytes")
        );
        // Exactly at the limit is fine.
        big.truncate(MAX_CA_BYTES as usize);
        let dir = dir_with(Some(b"https://api.wc:6443"), Some(&big));
        assert!(load(dir.path()).is_ok());
    }

    #[test]
    fn a_missing_file_is_named() {
        let dir = dir_with(Some(b"https://api.wc:6443"), None);
        let e = load(dir.path()).unwrap_err();
        assert_eq!(e.path, dir.path().join("ca.crt"));
        assert!(e.reason.contains("mount the endpoint ConfigMap"), "{e}");
        let dir = dir_with(None, Some(PEM.as_bytes()));
        assert_eq!(load(dir.path()).unwrap_err().path, dir.path().join("server"));
    }
}
