//! The exchange client's identity at the remote Dex. The sidecar reads it from mounted files, the
//! controller from the Secret; both hand it to [`crate::ExchangeRequest`].

/// Client ID and secret of the exchange client. `Debug` shows the ID, never the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientCredentials {
    /// OAuth client ID registered in the remote Dex.
    pub client_id: String,
    /// Its client secret.
    pub client_secret: String,
}

impl std::fmt::Debug for ClientCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientCredentials")
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_secret() {
        let c = ClientCredentials {
            client_id: "muster".into(),
            client_secret: "s3cr+t".into(),
        };
        let shown = format!("{c:?}");
        assert!(shown.contains("muster") && !shown.contains("s3cr+t"), "{shown}");
    }
}
