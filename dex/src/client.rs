//! The HTTPS client that performs exchanges (and reads OIDC discovery for the controller's checks).

use std::time::{Duration, SystemTime};

use crate::error::{ExchangeError, InvalidResponse};
use crate::request::ExchangeRequest;
use crate::response::{ExchangedToken, interpret};
use crate::{MAX_RESPONSE_BYTES, MAX_SUBJECT_TOKEN_BYTES};

/// How to build an [`ExchangeClient`].
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Whole-request timeout (connect, send, and read the capped body).
    pub timeout: Duration,
    /// Extra CA certificates (PEM bundle) trusted for Dex, in addition to the system roots.
    pub extra_ca_pem: Option<Vec<u8>>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(10),
            extra_ca_pem: None,
        }
    }
}

/// Why a client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The process has no rustls crypto provider installed.
    #[error(
        "no TLS crypto provider is installed; call rustls::crypto::ring::default_provider().install_default() first"
    )]
    NoCryptoProvider,
    /// The extra CA bundle is not PEM or holds no certificate.
    #[error(
        "the extra CA bundle (caFile) is not a usable PEM certificate bundle: {0}; provide PEM certificates"
    )]
    InvalidCa(String),
    /// reqwest refused the configuration.
    #[error("cannot build the HTTPS client for Dex: {0}")]
    Http(String),
}

/// An RFC 8693 client for Dex. Cheap to clone (connection pool shared).
#[derive(Debug, Clone)]
pub struct ExchangeClient {
    http: reqwest::Client,
    timeout: Duration,
}

impl ExchangeClient {
    /// Builds a client on the process-wide rustls provider (ring), https only, no redirects.
    pub fn new(options: ClientOptions) -> Result<Self, BuildError> {
        Self::build(options, None)
    }

    /// [`Self::new`] resolving host names with `resolver`, which decides which addresses the client may
    /// connect to (the controller refuses link-local and cloud-metadata addresses this way).
    pub fn with_resolver(
        options: ClientOptions,
        resolver: std::sync::Arc<dyn reqwest::dns::Resolve>,
    ) -> Result<Self, BuildError> {
        Self::build(options, Some(resolver))
    }

    fn build(
        options: ClientOptions,
        resolver: Option<std::sync::Arc<dyn reqwest::dns::Resolve>>,
    ) -> Result<Self, BuildError> {
        if rustls::crypto::CryptoProvider::get_default().is_none() {
            return Err(BuildError::NoCryptoProvider);
        }
        // A redirect would re-send the form (with the subject token) somewhere we were not configured to use.
        let mut builder = reqwest::Client::builder()
            .https_only(true)
            .redirect(reqwest::redirect::Policy::none())
            .timeout(options.timeout)
            .connect_timeout(options.timeout);
        if let Some(resolver) = resolver {
            builder = builder.dns_resolver(resolver);
        }
        if let Some(pem) = &options.extra_ca_pem {
            let certs = reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|e| BuildError::InvalidCa(e.to_string()))?;
            if certs.is_empty() {
                return Err(BuildError::InvalidCa("no certificate found".into()));
            }
            builder = builder.tls_certs_merge(certs);
        }
        let http = builder.build().map_err(|e| BuildError::Http(error_chain(&e)))?;
        Ok(Self {
            http,
            timeout: options.timeout,
        })
    }

    /// Performs one exchange and checks the answer (token present, lifetime known, issuer as expected).
    pub async fn exchange(&self, request: &ExchangeRequest<'_>) -> Result<ExchangedToken, ExchangeError> {
        check_request(request)?;
        let mut builder = self.http.post(request.endpoint).form(&request.form_fields());
        if let Some(auth) = request.basic_authorization() {
            builder = builder.header(reqwest::header::AUTHORIZATION, auth);
        }
        let (status, body) = self.send_and_read(builder, request.endpoint).await?;
        interpret(
            request.endpoint,
            status,
            &body,
            request.expected_issuer,
            SystemTime::now(),
        )
    }

    /// The `issuer` Dex announces at `<endpoint without /token>/.well-known/openid-configuration`.
    pub async fn discover_issuer(&self, token_endpoint: &str) -> Result<String, ExchangeError> {
        require_https(token_endpoint)?;
        let url = muster_exchange_api::issuer::discovery_url(token_endpoint);
        let (status, body) = self.send_and_read(self.http.get(&url), &url).await?;
        let invalid = |reason| ExchangeError::InvalidResponse {
            endpoint: url.clone(),
            reason,
        };
        // A 5xx is Dex (or its proxy) failing, like on the token endpoint; other statuses mean the address
        // does not serve discovery.
        if (500..=599).contains(&status) {
            return Err(ExchangeError::ServerError {
                endpoint: url,
                status,
                detail: crate::response::body_excerpt(&body),
            });
        }
        if status != 200 {
            return Err(ExchangeError::UnexpectedStatus {
                endpoint: url,
                status,
                body: crate::response::body_excerpt(&body),
            });
        }
        let doc: serde_json::Value =
            serde_json::from_slice(&body).map_err(|e| invalid(InvalidResponse::NotJson(e.to_string())))?;
        doc.get("issuer")
            .and_then(|i| i.as_str())
            .map(str::to_string)
            .ok_or_else(|| invalid(InvalidResponse::NotJson("no \"issuer\" string".into())))
    }

    async fn send_and_read(
        &self,
        builder: reqwest::RequestBuilder,
        endpoint: &str,
    ) -> Result<(u16, Vec<u8>), ExchangeError> {
        let mut response = builder
            .send()
            .await
            .map_err(|e| self.transport_error(endpoint, &e))?;
        let status = response.status().as_u16();
        let too_large = || ExchangeError::InvalidResponse {
            endpoint: endpoint.to_string(),
            reason: InvalidResponse::TooLarge {
                limit: MAX_RESPONSE_BYTES,
            },
        };
        if response
            .content_length()
            .is_some_and(|len| len > MAX_RESPONSE_BYTES as u64)
        {
            return Err(too_large());
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| self.read_error(endpoint, &e))?
        {
            if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok((status, body))
    }

    fn transport_error(&self, endpoint: &str, error: &reqwest::Error) -> ExchangeError {
        if error.is_timeout() {
            return ExchangeError::Timeout {
                endpoint: endpoint.to_string(),
                timeout: self.timeout,
            };
        }
        ExchangeError::Unreachable {
            endpoint: endpoint.to_string(),
            cause: error_chain(error),
        }
    }

    fn read_error(&self, endpoint: &str, error: &reqwest::Error) -> ExchangeError {
        if error.is_timeout() {
            return ExchangeError::Timeout {
                endpoint: endpoint.to_string(),
                timeout: self.timeout,
            };
        }
        ExchangeError::InvalidResponse {
            endpoint: endpoint.to_string(),
            reason: InvalidResponse::Read(error_chain(error)),
        }
    }
}

fn check_request(request: &ExchangeRequest<'_>) -> Result<(), ExchangeError> {
    require_https(request.endpoint)?;
    let size = request.subject_token.len();
    if size > MAX_SUBJECT_TOKEN_BYTES {
        return Err(ExchangeError::SubjectTokenTooLarge {
            size,
            limit: MAX_SUBJECT_TOKEN_BYTES,
        });
    }
    Ok(())
}

fn require_https(endpoint: &str) -> Result<(), ExchangeError> {
    match url::Url::parse(endpoint) {
        Ok(url) if url.scheme() == "https" && url.host().is_some() => Ok(()),
        _ => Err(ExchangeError::InsecureEndpoint {
            endpoint: endpoint.to_string(),
        }),
    }
}

/// An error and its sources joined with ": ", so "connection refused" or the TLS reason is visible.
/// A source whose text is already contained (wrappers that repeat their cause) is not repeated.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let next = cause.to_string();
        if !text.contains(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        source = cause.source();
    }
    text
}
