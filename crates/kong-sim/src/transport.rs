//! The accept loop: plain TCP or TLS (with optional required client certificates),
//! HTTP/1.1 and HTTP/2, and the faults that live below HTTP: connection resets and
//! requests never answered. Written by hand rather than `axum::serve` for exactly
//! those.

use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use crate::faults::{Decision, Faults};

/// TLS for the listener, from PEM files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// When set, clients must present a certificate signed by this CA.
    pub client_ca: Option<PathBuf>,
}

fn io_err(msg: String) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidInput, msg)
}

/// Builds the TLS acceptor: ring provider, HTTP/2 and HTTP/1.1 by ALPN.
pub fn acceptor(files: &TlsFiles) -> std::io::Result<TlsAcceptor> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&files.cert)
        .and_then(|it| it.collect::<Result<_, _>>())
        .map_err(|e| io_err(format!("{}: {e}", files.cert.display())))?;
    let key = PrivateKeyDer::from_pem_file(&files.key)
        .map_err(|e| io_err(format!("{}: {e}", files.key.display())))?;
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| io_err(e.to_string()))?;
    let builder = match &files.client_ca {
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in CertificateDer::pem_file_iter(ca)
                .map_err(|e| io_err(format!("{}: {e}", ca.display())))?
            {
                let cert = cert.map_err(|e| io_err(format!("{}: {e}", ca.display())))?;
                roots
                    .add(cert)
                    .map_err(|e| io_err(format!("{}: {e}", ca.display())))?;
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            )
            .build()
            .map_err(|e| io_err(e.to_string()))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder
        .with_single_cert(certs, key)
        .map_err(|e| io_err(e.to_string()))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// What the connection layer needs per request.
#[derive(Clone)]
pub struct Layer {
    pub app: Router,
    pub faults: Arc<Faults>,
    /// Workspace names accepted as a path prefix (`/default/services`), as Kong
    /// Enterprise serves them; empty for OSS.
    pub workspaces: Arc<Vec<String>>,
}

/// Longest a request is left unanswered by a `hang` fault.
const HANG_LIMIT: Duration = Duration::from_secs(60);

impl Layer {
    async fn call(
        self,
        req: hyper::Request<Incoming>,
        mut stop: watch::Receiver<bool>,
    ) -> Result<axum::response::Response, std::io::Error> {
        let mut req = req.map(Body::new);
        rewrite_workspace(&mut req, &self.workspaces);
        let path = req.uri().path().to_owned();
        if !path.starts_with("/_sim") {
            match self.faults.decide(req.method().as_str(), &path) {
                Decision::Reset => {
                    // An error from the service makes hyper drop the connection unanswered.
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::ConnectionReset,
                        "injected reset",
                    ));
                }
                Decision::Hang => {
                    tokio::select! {
                        _ = tokio::time::sleep(HANG_LIMIT) => {}
                        _ = stop.changed() => {}
                    }
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "injected hang",
                    ));
                }
                decision => {
                    req.extensions_mut().insert(decision);
                }
            }
        }
        let resp = self.app.oneshot(req).await;
        Ok(resp.unwrap_or_else(|e: Infallible| match e {}))
    }
}

/// `/{workspace}/services` → `/services` for the configured workspace names.
fn rewrite_workspace(req: &mut hyper::Request<Body>, workspaces: &[String]) {
    if workspaces.is_empty() {
        return;
    }
    let path = req.uri().path();
    let Some(rest) = path.strip_prefix('/') else {
        return;
    };
    let (first, tail) = rest.split_once('/').unwrap_or((rest, ""));
    if !workspaces.iter().any(|w| w == first) || tail.is_empty() || first == "_sim" {
        return;
    }
    let query = req
        .uri()
        .query()
        .map(|q| format!("?{q}"))
        .unwrap_or_default();
    if let Ok(uri) = format!("/{tail}{query}").parse() {
        *req.uri_mut() = uri;
    }
}

/// Serves `listener` until `stop` turns true, then lets open connections finish for up
/// to five seconds.
pub async fn serve(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    layer: Layer,
    mut stop: watch::Receiver<bool>,
) {
    let graceful = GracefulShutdown::new();
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stop.changed() => break,
        };
        let Ok((stream, _)) = accepted else { continue };
        let _ = stream.set_nodelay(true);
        let layer = layer.clone();
        let conn_stop = stop.clone();
        let service =
            hyper::service::service_fn(move |req| layer.clone().call(req, conn_stop.clone()));
        let builder = auto::Builder::new(TokioExecutor::new());
        match &tls {
            None => {
                let conn = builder
                    .serve_connection_with_upgrades(TokioIo::new(stream), service)
                    .into_owned();
                let conn = graceful.watch(conn);
                tokio::spawn(async move {
                    let _ = conn.await;
                });
            }
            Some(acceptor) => {
                let acceptor = acceptor.clone();
                let watcher = graceful.watcher();
                tokio::spawn(async move {
                    // A failed handshake (no or bad client certificate) just closes.
                    let Ok(Ok(tls_stream)) =
                        tokio::time::timeout(Duration::from_secs(10), acceptor.accept(stream))
                            .await
                    else {
                        return;
                    };
                    let conn = builder
                        .serve_connection_with_upgrades(TokioIo::new(tls_stream), service)
                        .into_owned();
                    let _ = watcher.watch(conn).await;
                });
            }
        }
    }
    let _ = tokio::time::timeout(Duration::from_secs(5), graceful.shutdown()).await;
}
