//! `carl ping`: who answers at the address, how fast, and over what TLS.

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::Value;

use crate::{AdminClient, Error, Gateway, Support};

/// What `GET /` and the connection say about the gateway.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Ping {
    pub address: String,
    pub version: String,
    /// `community` or `enterprise`.
    pub edition: String,
    /// Kong's `database` setting: `postgres`, or `off` for DB-less.
    pub database: String,
    pub db_less: bool,
    /// What carl does with a gateway of this version.
    pub support: Support,
    /// Round trip of `GET /` (the best of the attempts made).
    #[serde(skip)]
    pub latency: Duration,
    pub latency_ms: f64,
    /// `None` over plain HTTP.
    pub tls: Option<TlsDetails>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct TlsDetails {
    /// `TLSv1.3`, `TLSv1.2`.
    pub protocol: String,
    pub cipher: String,
    /// The server certificate's subject and issuer, as `CN=...` strings.
    pub peer_subject: String,
    pub peer_issuer: String,
    /// carl presented a client certificate (and Kong accepted the connection).
    pub client_certificate: bool,
}

impl AdminClient {
    /// `GET /` (timed, verified as every request is), then, over HTTPS, one more
    /// handshake only to read the protocol and cipher that reqwest does not expose.
    pub async fn ping(&self) -> Result<Ping, Error> {
        let mut best = Duration::MAX;
        let mut info = Value::Null;
        let mut peer = None;
        // Three round trips: the first pays for connecting, the best one is latency.
        for _ in 0..3 {
            let started = Instant::now();
            let response =
                self.http.get(self.url("/")).send().await.map_err(|e| {
                    self.annotate(Error::transport(&Method::GET, "/", &self.base, e))
                })?;
            let status = response.status();
            peer = response
                .extensions()
                .get::<reqwest::tls::TlsInfo>()
                .and_then(|t| t.peer_certificate().map(<[u8]>::to_vec));
            let bytes = response
                .bytes()
                .await
                .map_err(|e| Error::transport(&Method::GET, "/", &self.base, e))?;
            best = best.min(started.elapsed());
            if !status.is_success() {
                return Err(Error::api(Method::GET, "/", status, &bytes, None));
            }
            info = serde_json::from_slice(&bytes).map_err(|e| Error::Decode {
                path: "/".into(),
                message: format!("response is not JSON: {e}"),
            })?;
        }
        let gateway = self.remember(Gateway::from_root(&info));
        let tls = match (self.base.starts_with("https://"), peer) {
            (true, Some(der)) => Some(self.tls_details(&der).await?),
            _ => None,
        };
        Ok(Ping {
            address: self.base.clone(),
            version: gateway.version_text.clone(),
            edition: gateway.edition.clone(),
            db_less: gateway.db_less,
            database: gateway.database.clone(),
            support: gateway.support(),
            latency: best,
            latency_ms: (best.as_secs_f64() * 1e6).round() / 1e3,
            tls,
        })
    }

    async fn tls_details(&self, peer_der: &[u8]) -> Result<TlsDetails, Error> {
        let (peer_subject, peer_issuer) = match x509_parser::parse_x509_certificate(peer_der) {
            Ok((_, cert)) => (cert.subject().to_string(), cert.issuer().to_string()),
            Err(_) => ("(unreadable)".into(), "(unreadable)".into()),
        };
        let (protocol, cipher) = self.handshake().await.unwrap_or_else(|e| {
            tracing::debug!(error = %e, "TLS details handshake");
            ("unknown".into(), "unknown".into())
        });
        Ok(TlsDetails {
            protocol,
            cipher,
            peer_subject,
            peer_issuer,
            client_certificate: self.tls.client_cert.is_some(),
        })
    }

    /// A bare handshake to the Admin API's host, with carl's client certificate if it
    /// has one. It does not verify the server: the request before it did.
    async fn handshake(&self) -> Result<(String, String), String> {
        let url = reqwest::Url::parse(&self.base).map_err(|e| e.to_string())?;
        let host = url.host_str().ok_or("no host")?.to_owned();
        let port = url.port_or_known_default().ok_or("no port")?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(InspectOnly(provider)));
        let config = match (&self.tls.client_cert, &self.tls.client_key) {
            (Some(cert), Some(key)) => {
                use rustls_pki_types::pem::PemObject;
                let certs = crate::connect::certificates(cert).map_err(|e| e.to_string())?;
                let key = rustls_pki_types::PrivateKeyDer::from_pem_slice(&key.bytes)
                    .map_err(|e| e.to_string())?;
                builder
                    .with_client_auth_cert(certs, key)
                    .map_err(|e| e.to_string())?
            }
            _ => builder.with_no_client_auth(),
        };
        let name = rustls_pki_types::ServerName::try_from(host.trim_matches(['[', ']']).to_owned())
            .map_err(|e| e.to_string())?;
        let tcp = tokio::time::timeout(
            Duration::from_secs(10),
            tokio::net::TcpStream::connect((host.trim_matches(['[', ']']), port)),
        )
        .await
        .map_err(|_| "timed out".to_owned())?
        .map_err(|e| e.to_string())?;
        let stream = tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(name, tcp)
            .await
            .map_err(|e| e.to_string())?;
        let (_, connection) = stream.get_ref();
        let protocol = match connection.protocol_version() {
            Some(rustls::ProtocolVersion::TLSv1_3) => "TLSv1.3".to_owned(),
            Some(rustls::ProtocolVersion::TLSv1_2) => "TLSv1.2".to_owned(),
            Some(other) => format!("{other:?}"),
            None => "unknown".to_owned(),
        };
        let cipher = connection
            .negotiated_cipher_suite()
            .map_or("unknown".to_owned(), |c| format!("{:?}", c.suite()));
        Ok((protocol, cipher))
    }
}

/// Accepts any server certificate: used only to read what was negotiated, after a
/// verified request to the same server.
#[derive(Debug)]
struct InspectOnly(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for InspectOnly {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls_pki_types::CertificateDer<'_>,
        _intermediates: &[rustls_pki_types::CertificateDer<'_>],
        _server_name: &rustls_pki_types::ServerName<'_>,
        _ocsp: &[u8],
        _now: rustls_pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls_pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls_pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
