//! The controller never connects to link-local or cloud-metadata addresses: an MCPServer author chooses
//! `dexTokenEndpoint`, and the controller's probe would otherwise fetch from the node's metadata service
//! (instance credentials) and write what it answered into a condition.
//!
//! The rule is checked where the connection is made: the probe client resolves host names through
//! [`GuardedResolver`], which drops refused addresses from every answer, so a name that resolves (or
//! later re-resolves) to a refused address cannot be reached. An endpoint whose host is an IP literal is
//! not resolved at all, so [`refused_endpoint`] checks it before probing; it also resolves names once
//! to report a refused endpoint with its own reason rather than as unreachable. Private and loopback
//! addresses stay allowed: management-cluster Dex servers often live there.
//!
//! With an HTTPS proxy configured the proxy resolves and connects; it must enforce the same rule.

use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// The AWS IPv6 instance metadata address.
const AWS_METADATA_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x0254);

/// True for addresses the controller must never connect to: IPv4 link-local 169.254.0.0/16 (the cloud
/// metadata services), IPv6 link-local fe80::/10, AWS's IPv6 metadata address fd00:ec2::254, and IPv4
/// link-local written as an IPv4-mapped IPv6 address.
pub(crate) fn is_refused(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_link_local(),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return v4.is_link_local();
            }
            (v6.segments()[0] & 0xffc0) == 0xfe80 || v6 == AWS_METADATA_V6
        }
    }
}

fn refusal_message(host: &str, refused: &[IpAddr]) -> String {
    let addresses: Vec<String> = refused.iter().map(ToString::to_string).collect();
    format!(
        "Dex host {host} resolves only to link-local or cloud-metadata addresses ({}); muster-exchange never \
         connects there (169.254.0.0/16, fe80::/10, fd00:ec2::254): set dexTokenEndpoint to the remote Dex's \
         address",
        addresses.join(", ")
    )
}

/// Looks up the addresses of a host name.
pub(crate) trait Lookup: Send + Sync + 'static {
    /// The addresses of `host`.
    fn lookup(&self, host: String) -> Pin<Box<dyn Future<Output = io::Result<Vec<IpAddr>>> + Send>>;
}

/// The system resolver (getaddrinfo, on tokio's blocking pool).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct SystemLookup;

impl Lookup for SystemLookup {
    fn lookup(&self, host: String) -> Pin<Box<dyn Future<Output = io::Result<Vec<IpAddr>>> + Send>> {
        Box::pin(async move {
            let addrs = tokio::net::lookup_host((host.as_str(), 0)).await?;
            Ok(addrs.map(|a| a.ip()).collect())
        })
    }
}

/// The addresses of `host` the controller may connect to; an error naming the refused ones when none is
/// left.
pub(crate) async fn allowed_addresses(lookup: &dyn Lookup, host: &str) -> io::Result<Vec<IpAddr>> {
    let all = lookup.lookup(host.to_string()).await?;
    let (refused, allowed): (Vec<IpAddr>, Vec<IpAddr>) = all.into_iter().partition(|ip| is_refused(*ip));
    if allowed.is_empty() && !refused.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            refusal_message(host, &refused),
        ));
    }
    Ok(allowed)
}

/// A reqwest resolver that never yields a refused address.
#[derive(Clone)]
pub(crate) struct GuardedResolver {
    lookup: Arc<dyn Lookup>,
}

impl GuardedResolver {
    /// Guards `lookup`.
    pub(crate) fn new(lookup: Arc<dyn Lookup>) -> Self {
        Self { lookup }
    }

    /// Guards the system resolver.
    pub(crate) fn system() -> Arc<dyn Resolve> {
        Arc::new(Self::new(Arc::new(SystemLookup)))
    }
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let lookup = self.lookup.clone();
        Box::pin(async move {
            let allowed = allowed_addresses(lookup.as_ref(), name.as_str()).await?;
            let addrs: Addrs = Box::new(allowed.into_iter().map(|ip| SocketAddr::new(ip, 0)));
            Ok(addrs)
        })
    }
}

/// `Some(why)` when the probe must not contact `endpoint`: its host is a refused IP literal, or a name
/// that resolves only to refused addresses. A lookup failure is left to the connection to report.
pub(crate) async fn refused_endpoint(lookup: &dyn Lookup, endpoint: &str) -> Option<String> {
    let url = url::Url::parse(endpoint).ok()?;
    match url.host()? {
        url::Host::Ipv4(v4) => is_refused(IpAddr::V4(v4)).then(|| literal_message(endpoint)),
        url::Host::Ipv6(v6) => is_refused(IpAddr::V6(v6)).then(|| literal_message(endpoint)),
        url::Host::Domain(host) => match allowed_addresses(lookup, host).await {
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => Some(e.to_string()),
            _ => None,
        },
    }
}

fn literal_message(endpoint: &str) -> String {
    format!(
        "dexTokenEndpoint {endpoint} is a link-local or cloud-metadata address; muster-exchange never connects \
         there (169.254.0.0/16, fe80::/10, fd00:ec2::254): set dexTokenEndpoint to the remote Dex's address"
    )
}

#[cfg(test)]
mod tests;
