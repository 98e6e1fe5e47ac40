//! The API's socket: a bounded number of open connections, optionally TLS (rustls).
//!
//! Beyond `max_connections` the listener stops accepting, so further clients wait in the
//! kernel's backlog instead of each costing a task and buffers. With a certificate and key
//! configured, every connection is TLS; a failed handshake (or one slower than
//! [`HANDSHAKE_TIMEOUT`]) drops that connection only.

use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::connect_info::Connected;
use axum::serve::IncomingStream;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio_rustls::rustls;
use tokio_rustls::TlsAcceptor;

use crate::api::Peer;

/// A TLS handshake must finish within this.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    #[error("{path}: {reason}")]
    File { path: String, reason: String },
    #[error("TLS configuration: {0}")]
    Config(String),
}

/// A rustls server configuration from PEM files: the certificate chain and its private key.
pub fn tls_acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor, TlsSetupError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let file_error = |path: &Path, e: &dyn std::fmt::Display| TlsSetupError::File {
        path: path.display().to_string(),
        reason: e.to_string(),
    };
    let certs = CertificateDer::pem_file_iter(cert)
        .map_err(|e| file_error(cert, &e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_error(cert, &e))?;
    if certs.is_empty() {
        return Err(file_error(cert, &"no certificate in the file"));
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| file_error(key, &e))?;
    // Two crypto providers are linked (through the S3 client); name one.
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsSetupError::Config(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| TlsSetupError::Config(e.to_string()))?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// The API listener: TCP with a connection limit, TLS if an acceptor is given. A background
/// task accepts and runs each TLS handshake on its own task, so a slow handshake delays
/// nobody else.
pub struct ApiListener {
    ready: mpsc::Receiver<(Conn, SocketAddr)>,
    local: SocketAddr,
    _acceptor: AbortOnDrop,
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl ApiListener {
    pub fn new(
        tcp: TcpListener,
        max_connections: usize,
        tls: Option<TlsAcceptor>,
    ) -> io::Result<Self> {
        let local = tcp.local_addr()?;
        let slots = Arc::new(Semaphore::new(max_connections.max(1)));
        let (tx, ready) = mpsc::channel(64);
        let task = tokio::spawn(accept_loop(tcp, slots, tls, tx));
        Ok(Self {
            ready,
            local,
            _acceptor: AbortOnDrop(task),
        })
    }
}

async fn accept_loop(
    tcp: TcpListener,
    slots: Arc<Semaphore>,
    tls: Option<TlsAcceptor>,
    tx: mpsc::Sender<(Conn, SocketAddr)>,
) {
    loop {
        // Wait for a free slot before taking the next connection off the backlog.
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let (stream, peer) = match tcp.accept().await {
            Ok(c) => c,
            Err(e) => {
                // Out of file descriptors and the like: back off, keep serving.
                tracing::warn!("accepting a connection failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        match &tls {
            None => {
                let conn = Conn {
                    io: Io::Plain(stream),
                    _slot: slot,
                };
                if tx.send((conn, peer)).await.is_err() {
                    return;
                }
            }
            Some(acceptor) => {
                let (acceptor, tx) = (acceptor.clone(), tx.clone());
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(s)) => {
                            let conn = Conn {
                                io: Io::Tls(Box::new(s)),
                                _slot: slot,
                            };
                            let _ = tx.send((conn, peer)).await;
                        }
                        Ok(Err(e)) => tracing::debug!(%peer, "TLS handshake failed: {e}"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                });
            }
        }
    }
}

/// One accepted connection; holds its slot until it closes.
pub struct Conn {
    io: Io,
    _slot: OwnedSemaphorePermit,
}

enum Io {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::server::TlsStream<TcpStream>>),
}

impl axum::serve::Listener for ApiListener {
    type Io = Conn;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(c) => c,
            // The accept task ended (its listener failed for good): accept nothing more.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(self.local)
    }
}

impl Connected<IncomingStream<'_, ApiListener>> for Peer {
    fn connect_info(stream: IncomingStream<'_, ApiListener>) -> Self {
        Peer(*stream.remote_addr())
    }
}

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match &mut self.get_mut().io {
            Io::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match &mut self.get_mut().io {
            Io::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().io {
            Io::Plain(s) => Pin::new(s).poll_flush(cx),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().io {
            Io::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::get;
    use axum::Router;

    fn app() -> Router {
        Router::new().route("/", get(|| async { "ok" }))
    }

    async fn serve(max_connections: usize, tls: Option<TlsAcceptor>) -> SocketAddr {
        let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let listener = ApiListener::new(tcp, max_connections, tls).unwrap();
        let addr = axum::serve::Listener::local_addr(&listener).unwrap();
        tokio::spawn(async move { axum::serve(listener, app()).await });
        addr
    }

    /// With a certificate configured the API speaks TLS only: a client trusting the
    /// certificate gets its answer, a plain-HTTP client (what would carry the weights in the
    /// clear) gets none.
    #[tokio::test]
    async fn tls_is_served_and_plain_http_is_not() {
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
        let cert_pem = cert.serialize_pem().unwrap();
        std::fs::write(&cert_path, &cert_pem).unwrap();
        std::fs::write(&key_path, cert.serialize_private_key_pem()).unwrap();
        let acceptor = tls_acceptor(&cert_path, &key_path).unwrap();
        let addr = serve(8, Some(acceptor)).await;
        let client = reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(cert_pem.as_bytes()).unwrap())
            .resolve("localhost", addr)
            .build()
            .unwrap();
        let url = format!("https://localhost:{}/", addr.port());
        let body = client.get(&url).send().await.unwrap().text().await.unwrap();
        assert_eq!(body, "ok");
        let plain = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap();
        assert!(plain
            .get(format!("http://127.0.0.1:{}/", addr.port()))
            .send()
            .await
            .is_err());
        assert!(matches!(
            tls_acceptor(&key_path, &key_path),
            Err(TlsSetupError::File { .. })
        ));
    }

    /// The attack: open connections and keep them idle until the worker runs out of file
    /// descriptors and memory. Beyond the limit, a connection waits until one closes.
    #[tokio::test]
    async fn connections_beyond_the_limit_wait_for_a_free_slot() {
        let addr = serve(1, None).await;
        let hog = TcpStream::connect(addr).await.unwrap();
        // Let the listener take the hog off the backlog, using the only slot.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let client = reqwest::Client::builder()
            .timeout(Duration::from_millis(1500))
            .pool_max_idle_per_host(0)
            .build()
            .unwrap();
        let url = format!("http://{addr}/");
        assert!(
            client.get(&url).send().await.is_err(),
            "served past the limit"
        );
        drop(hog);
        tokio::time::sleep(Duration::from_millis(200)).await;
        let body = client.get(&url).send().await.unwrap().text().await.unwrap();
        assert_eq!(body, "ok");
    }
}
