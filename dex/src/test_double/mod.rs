//! An in-test Dex: a real HTTPS server on 127.0.0.1 that answers token exchanges the way Dex does
//! (docs/facts.md, "Dex: how a token exchange is checked": client authentication first, then the
//! connector, the client's allowed connectors, the token types, and finally the subject token), with Dex's exact error bodies.
//!
//! ```ignore
//! let dex = DexDouble::start().await?;
//! let client = ExchangeClient::new(ClientOptions { timeout, extra_ca_pem: Some(dex.ca_pem().into()) })?;
//! dex.update(|b| b.failure = Some(FailureMode::Hang));
//! ```

mod addresses;
mod handler;
mod tls;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

pub use addresses::{BlackHole, refused_addr};
pub use tls::TlsSetupError;

/// Client ID the double knows by default.
pub const DEFAULT_CLIENT_ID: &str = "exchange-client";
/// Its default secret (with `+` and `/`, the characters that broke Muster's Basic encoding).
pub const DEFAULT_CLIENT_SECRET: &str = "s3cr+t/with=chars";
/// Connector the double knows by default.
pub const DEFAULT_CONNECTOR: &str = "central";

/// A client registered in the double.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DoubleClient {
    /// Its secret.
    pub secret: String,
    /// Dex's `allowedConnectors`; empty allows all.
    pub allowed_connectors: Vec<String>,
}

/// Ways the double misbehaves on `POST /token` (after recording the request).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureMode {
    /// 500 `{"error":"server_error"}`.
    ServerError,
    /// Accepts the request and never answers.
    Hang,
    /// 200 with a 2 MiB body, streamed without a length.
    OversizedBody,
    /// 200 with an HTML body.
    NotJson,
    /// 401 `invalid_client` whose `error_description` is this many characters long (a hostile Dex).
    LongRejection(usize),
}

/// Everything a test can change while the double runs (see [`DexDouble::update`]).
#[derive(Debug, Clone)]
pub struct Behaviour {
    /// Registered clients by ID.
    pub clients: BTreeMap<String, DoubleClient>,
    /// Connectors that implement token exchange.
    pub connectors: BTreeSet<String>,
    /// Subject tokens the connector refuses (answered with 401 `access_denied`).
    pub refused_subject_tokens: BTreeSet<String>,
    /// The connector's upstream issuer, like Dex's OIDC connector `issuer`: when set, a subject token is
    /// accepted only when it is a JWT naming this `iss` with an `exp` still ahead (the double holds no keys,
    /// so the signature is not checked), and anything else is refused with 401 `access_denied`. Issued
    /// tokens then carry a `sub` derived from the subject's `sub` and the connector, and its `email`.
    pub connector_issuer: Option<String>,
    /// `iss` of issued tokens; `None` uses the double's own issuer.
    pub token_issuer: Option<String>,
    /// `issuer` in discovery; `None` uses the double's own issuer.
    pub discovery_issuer: Option<String>,
    /// Answer discovery with this status and a plain-text body instead of the document (a failing Dex).
    pub discovery_status: Option<u16>,
    /// `expires_in` in responses; `None` omits the field.
    pub expires_in: Option<u64>,
    /// Issued tokens' `exp` is now plus this.
    pub token_lifetime: Duration,
    /// Delay before answering (a slow Dex).
    pub delay: Duration,
    /// Misbehaviour, if any.
    pub failure: Option<FailureMode>,
}

impl Default for Behaviour {
    fn default() -> Self {
        let client = DoubleClient {
            secret: DEFAULT_CLIENT_SECRET.to_string(),
            allowed_connectors: Vec::new(),
        };
        Self {
            clients: BTreeMap::from([(DEFAULT_CLIENT_ID.to_string(), client)]),
            connectors: BTreeSet::from([DEFAULT_CONNECTOR.to_string()]),
            refused_subject_tokens: BTreeSet::new(),
            connector_issuer: None,
            token_issuer: None,
            discovery_issuer: None,
            discovery_status: None,
            expires_in: Some(300),
            token_lifetime: Duration::from_secs(300),
            delay: Duration::ZERO,
            failure: None,
        }
    }
}

/// One `POST /token` as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    /// Form fields in order.
    pub form: Vec<(String, String)>,
    /// The raw `Authorization` header.
    pub authorization: Option<String>,
    /// The `Content-Type` header.
    pub content_type: Option<String>,
}

impl RecordedRequest {
    /// The first value of form field `name`.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.form.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// Why the double could not start.
#[derive(Debug, thiserror::Error)]
pub enum DoubleError {
    /// Certificate generation failed.
    #[error(transparent)]
    Tls(#[from] TlsSetupError),
    /// Binding failed.
    #[error("cannot bind the Dex double: {0}")]
    Io(#[from] std::io::Error),
}

pub(crate) struct Shared {
    pub(crate) issuer: String,
    pub(crate) behaviour: Mutex<Behaviour>,
    pub(crate) requests: Mutex<Vec<RecordedRequest>>,
    pub(crate) token_requests: AtomicUsize,
    pub(crate) issued: AtomicUsize,
    pub(crate) in_flight: AtomicUsize,
    pub(crate) max_in_flight: AtomicUsize,
}

impl Shared {
    pub(crate) fn behaviour(&self) -> MutexGuard<'_, Behaviour> {
        self.behaviour
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The running double. Dropping it stops the server.
pub struct DexDouble {
    addr: SocketAddr,
    ca_pem: String,
    shared: Arc<Shared>,
    handle: axum_server::Handle<SocketAddr>,
}

impl DexDouble {
    /// Starts with [`Behaviour::default`].
    pub async fn start() -> Result<Self, DoubleError> {
        Self::start_with(Behaviour::default()).await
    }

    /// Starts with `behaviour`.
    pub async fn start_with(behaviour: Behaviour) -> Result<Self, DoubleError> {
        let tls = tls::generate()?;
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            issuer: format!("https://127.0.0.1:{}/dex", addr.port()),
            behaviour: Mutex::new(behaviour),
            requests: Mutex::new(Vec::new()),
            token_requests: AtomicUsize::new(0),
            issued: AtomicUsize::new(0),
            in_flight: AtomicUsize::new(0),
            max_in_flight: AtomicUsize::new(0),
        });
        let handle = axum_server::Handle::new();
        let server = axum_server::from_tcp_rustls(
            listener,
            axum_server::tls_rustls::RustlsConfig::from_config(tls.server_config),
        )?
        .handle(handle.clone());
        let app = handler::router(shared.clone());
        tokio::spawn(async move {
            if let Err(e) = server.serve(app.into_make_service()).await {
                tracing::error!(error = %e, "dex double stopped");
            }
        });
        Ok(Self {
            addr,
            ca_pem: tls.ca_pem,
            shared,
            handle,
        })
    }

    /// `https://127.0.0.1:<port>/dex/token`.
    pub fn token_endpoint(&self) -> String {
        format!("{}/token", self.shared.issuer)
    }

    /// `https://127.0.0.1:<port>/dex`, the double's own issuer.
    pub fn issuer(&self) -> &str {
        &self.shared.issuer
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The CA (PEM) that signed the server certificate; give it to clients as the extra CA.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// An ID token as this Dex would issue it after a login: `iss` is this double's issuer, `sub` and
    /// `email` name `user`, valid for `lifetime`. Unsigned, like everything the double issues.
    pub fn id_token(&self, user: &str, lifetime: Duration) -> String {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or(Duration::ZERO);
        crate::jwt::unsigned_jwt(&serde_json::json!({
            "iss": self.shared.issuer,
            "sub": user,
            "email": format!("{user}@example.com"),
            "email_verified": true,
            "name": user,
            "aud": "muster",
            "iat": now.as_secs(),
            "exp": (now + lifetime).as_secs(),
        }))
    }

    /// Changes behaviour while running.
    pub fn update(&self, change: impl FnOnce(&mut Behaviour)) {
        change(&mut self.shared.behaviour());
    }

    /// `POST /token` requests received (whatever their outcome).
    pub fn token_requests(&self) -> usize {
        self.shared.token_requests.load(Ordering::SeqCst)
    }

    /// The most `POST /token` requests that were being handled at the same time.
    pub fn max_concurrent_requests(&self) -> usize {
        self.shared.max_in_flight.load(Ordering::SeqCst)
    }

    /// Tokens successfully issued.
    pub fn exchanges(&self) -> usize {
        self.shared.issued.load(Ordering::SeqCst)
    }

    /// Every `POST /token` received, in order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared
            .requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

impl Drop for DexDouble {
    fn drop(&mut self) {
        self.handle.shutdown();
    }
}
