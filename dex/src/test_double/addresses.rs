//! Addresses that fail in the two ways a dead Dex fails: refused connections and silent black holes.

use std::net::SocketAddr;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// A listener that accepts connections and never answers (a Dex behind a dropping firewall, or hung).
/// Dropping it closes the listener and every held connection.
pub struct BlackHole {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl BlackHole {
    /// Starts the listener on 127.0.0.1.
    pub async fn start() -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                held.push(socket);
            }
        });
        Ok(Self { addr, task })
    }

    /// Its address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// An https token endpoint on it.
    pub fn token_endpoint(&self) -> String {
        format!("https://127.0.0.1:{}/dex/token", self.addr.port())
    }
}

impl Drop for BlackHole {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// An address nothing listens on (bound once, then released), so connecting is refused.
pub fn refused_addr() -> std::io::Result<SocketAddr> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    listener.local_addr()
}
