//! The exchange client's ID and secret, read from the mounted Secret on every exchange, so a rotated
//! Secret is used without a restart (kubelet updates the files in place). Exchanges are rare (the cache
//! absorbs traffic), so two small file reads per exchange cost nothing.

use std::path::{Path, PathBuf};

use muster_exchange_api::sidecar_config::ClusterConfig;

pub use muster_exchange_dex::ClientCredentials;

/// Why credentials could not be read.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum CredentialsError {
    /// A file is missing or unreadable.
    #[error(
        "cannot read {path}: {cause}; mount the credentials Secret at credentialsDir with the keys clientIdKey \
         and clientSecretKey"
    )]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        cause: String,
    },
    /// A file is empty (after trimming the trailing newline).
    #[error("{path} is empty; put the value into the credentials Secret")]
    Empty {
        /// The file.
        path: PathBuf,
    },
}

/// Reads `<credentialsDir>/<clientIdKey>` and `<credentialsDir>/<clientSecretKey>`.
pub fn read(cluster: &ClusterConfig) -> Result<ClientCredentials, CredentialsError> {
    let dir = &cluster.credentials_dir;
    Ok(ClientCredentials {
        client_id: read_value(&dir.join(&cluster.client_id_key))?,
        client_secret: read_value(&dir.join(&cluster.client_secret_key))?,
    })
}

/// One value; a trailing newline (as `echo` or editors leave) is not part of it.
fn read_value(path: &Path) -> Result<String, CredentialsError> {
    let text = std::fs::read_to_string(path).map_err(|e| CredentialsError::Unreadable {
        path: path.to_path_buf(),
        cause: e.to_string(),
    })?;
    let value = text.trim_end_matches(['\n', '\r']);
    if value.is_empty() {
        return Err(CredentialsError::Empty {
            path: path.to_path_buf(),
        });
    }
    Ok(value.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cluster(dir: &Path) -> ClusterConfig {
        let yaml = format!(
            "name: a\ndexTokenEndpoint: https://d/token\nconnectorId: c\ncredentialsDir: {}\nclientSecretKey: pw\n",
            dir.display()
        );
        serde_saphyr::from_str(&yaml).unwrap()
    }

    #[test]
    fn reads_keys_trims_newline_and_sees_rotation() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("client-id"), "id\n").unwrap();
        std::fs::write(dir.path().join("pw"), "a+b/c \n").unwrap();
        let c = read(&cluster(dir.path())).unwrap();
        assert_eq!((c.client_id.as_str(), c.client_secret.as_str()), ("id", "a+b/c "));
        std::fs::write(dir.path().join("pw"), "rotated").unwrap();
        assert_eq!(read(&cluster(dir.path())).unwrap().client_secret, "rotated");
        assert!(!format!("{c:?}").contains("a+b"));
    }

    #[test]
    fn missing_and_empty_files_say_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        let e = read(&cluster(dir.path())).unwrap_err();
        assert!(
            e.to_string().contains("client-id") && e.to_string().contains("mount the credentials Secret")
        );
        std::fs::write(dir.path().join("client-id"), "\n").unwrap();
        let e = read(&cluster(dir.path())).unwrap_err();
        assert_eq!(
            e,
            CredentialsError::Empty {
                path: dir.path().join("client-id")
            }
        );
    }
}
