//! Building the HTTP client: address, TLS (CA, client certificate, server name),
//! headers, timeout. Every mistake in these settings is an [`Error::Config`] that names
//! the setting, before any request is made.

use std::net::ToSocketAddrs;
use std::time::Duration;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::Error;

/// How carl verifies the Admin API and proves who it is.
#[derive(Debug, Clone, Default)]
pub struct TlsConfig {
    /// PEM bundle of the CAs to trust instead of the system's (`--ca-cert`).
    pub ca_cert: Option<Pem>,
    /// PEM client certificate (chain) and its key (`--tls-client-cert`/`-key`).
    pub client_cert: Option<Pem>,
    pub client_key: Option<Pem>,
    /// Accept any server certificate (`--tls-skip-verify`).
    pub skip_verify: bool,
    /// Verify the server as this name and send it as SNI, while connecting to the
    /// address's host (`--tls-server-name`).
    pub server_name: Option<String>,
}

/// PEM text and where it came from, for messages (`--ca-cert ca.pem`,
/// `CARL_TLS_CLIENT_KEY`).
#[derive(Clone)]
pub struct Pem {
    pub origin: String,
    pub bytes: Vec<u8>,
}

impl std::fmt::Debug for Pem {
    // A client key is a secret: never print its bytes.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Pem({}, {} bytes)", self.origin, self.bytes.len())
    }
}

/// The parts of the client that connect: the URL requests go to and the client.
pub(crate) struct Connection {
    pub base: String,
    pub http: reqwest::Client,
}

pub(crate) fn build(
    addr: &str,
    workspace: Option<&str>,
    tls: &TlsConfig,
    headers: &[(String, String)],
    timeout: Duration,
) -> Result<Connection, Error> {
    let mut url = reqwest::Url::parse(addr.trim_end_matches('/')).map_err(|e| {
        Error::Config(format!(
            "Kong address '{addr}' is not a URL ({e}): expected e.g. http://localhost:8001"
        ))
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(Error::Config(format!(
            "Kong address '{addr}' must start with http:// or https://"
        )));
    }
    let mut builder = reqwest::Client::builder()
        .user_agent(concat!("carl/", env!("CARGO_PKG_VERSION")))
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(10)))
        .tls_info(true)
        .default_headers(header_map(headers)?);

    if let Some(name) = &tls.server_name {
        // Connect where the address points, but verify (and send SNI for) `name`:
        // requests go to https://name:port/, and name resolves to the address's host.
        let host = url.host_str().unwrap_or_default().to_owned();
        let port = url.port_or_known_default().unwrap_or(443);
        let target = (host.trim_matches(['[', ']']), port)
            .to_socket_addrs()
            .map_err(|e| Error::Config(format!("cannot resolve '{host}': {e}")))?
            .next()
            .ok_or_else(|| Error::Config(format!("'{host}' resolves to no address")))?;
        url.set_host(Some(name))
            .map_err(|e| Error::Config(format!("--tls-server-name '{name}': {e}")))?;
        builder = builder.resolve(name, target);
    }
    if let Some(ca) = &tls.ca_cert {
        let certs = certificates(ca)?
            .into_iter()
            .map(|der| {
                reqwest::Certificate::from_der(&der)
                    .map_err(|e| Error::Config(format!("{}: not a certificate: {e}", ca.origin)))
            })
            .collect::<Result<Vec<_>, _>>()?;
        builder = builder.tls_certs_only(certs);
    }
    match (&tls.client_cert, &tls.client_key) {
        (Some(cert), Some(key)) => {
            certificates(cert)?;
            PrivateKeyDer::from_pem_slice(&key.bytes).map_err(|_| {
                Error::Config(format!(
                    "{}: no private key in PEM form (expected -----BEGIN PRIVATE KEY-----)",
                    key.origin
                ))
            })?;
            let mut pem = cert.bytes.clone();
            pem.push(b'\n');
            pem.extend_from_slice(&key.bytes);
            let identity = reqwest::Identity::from_pem(&pem).map_err(|e| {
                Error::Config(format!(
                    "{} and {}: not a usable client certificate and key: {e}",
                    cert.origin, key.origin
                ))
            })?;
            builder = builder.identity(identity);
        }
        (Some(c), None) => {
            return Err(Error::Config(format!(
                "{} is given but no client key: add --tls-client-key (or CARL_TLS_CLIENT_KEY)",
                c.origin
            )));
        }
        (None, Some(k)) => {
            return Err(Error::Config(format!(
                "{} is given but no client certificate: add --tls-client-cert (or CARL_TLS_CLIENT_CERT)",
                k.origin
            )));
        }
        (None, None) => {}
    }
    if tls.skip_verify {
        builder = builder.tls_danger_accept_invalid_certs(true);
    }
    let http = builder.build().map_err(|e| {
        let cause = innermost(&e);
        if cause.contains("No CA certificates") || cause.contains("native") {
            Error::Config(format!(
                "no system CA certificates to verify Kong with ({cause}): pass --ca-cert, or set SSL_CERT_FILE"
            ))
        } else {
            Error::Config(format!("cannot build the HTTP client: {cause}"))
        }
    })?;
    let mut base = url.as_str().trim_end_matches('/').to_owned();
    if let Some(ws) = workspace.filter(|w| !w.is_empty()) {
        if !ws
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '~'))
        {
            return Err(Error::Config(format!(
                "workspace '{ws}': expected letters, digits, '-', '_', '.' or '~'"
            )));
        }
        base.push('/');
        base.push_str(ws);
    }
    Ok(Connection { base, http })
}

fn header_map(headers: &[(String, String)]) -> Result<reqwest::header::HeaderMap, Error> {
    let mut map = reqwest::header::HeaderMap::new();
    for (name, value) in headers {
        let name = reqwest::header::HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| Error::Config(format!("invalid header name '{name}'")))?;
        let mut value = reqwest::header::HeaderValue::from_str(value)
            .map_err(|_| Error::Config(format!("invalid value for header '{name}'")))?;
        // Tokens and credentials: never in debug logs.
        value.set_sensitive(true);
        map.append(name, value);
    }
    Ok(map)
}

/// The certificates in a PEM bundle; an error naming the origin when there is none.
pub(crate) fn certificates(pem: &Pem) -> Result<Vec<CertificateDer<'static>>, Error> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&pem.bytes)
        .collect::<Result<_, _>>()
        .map_err(|e| Error::Config(format!("{}: invalid PEM: {e}", pem.origin)))?;
    if certs.is_empty() {
        return Err(Error::Config(format!(
            "{}: no certificate in PEM form (expected -----BEGIN CERTIFICATE-----)",
            pem.origin
        )));
    }
    Ok(certs)
}

/// The innermost cause of an error chain: the part that says why.
pub(crate) fn innermost(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        cause = s.to_string();
        source = s.source();
    }
    cause
}

/// What a TLS failure means for the user, from rustls's wording.
pub(crate) fn explain_tls(cause: &str) -> Option<&'static str> {
    let c = cause;
    Some(
        if c.contains("UnknownIssuer") || c.contains("unknown issuer") {
            "the Admin API's certificate is not signed by a CA carl trusts: pass --ca-cert with the CA that signed it"
        } else if c.contains("NotValidForName") || c.contains("not valid for name") {
            "the Admin API's certificate is not valid for this host name: connect by a name it names, or set --tls-server-name"
        } else if c.contains("Expired") || c.contains("expired") {
            "the Admin API's certificate has expired"
        } else if c.contains("CertificateRequired")
            || c.contains("HandshakeFailure") && c.contains("alert")
        {
            "the Admin API requires a client certificate: pass --tls-client-cert and --tls-client-key"
        } else if c.contains("UnknownCA")
            || c.contains("BadCertificate")
            || c.contains("DecryptError")
        {
            "the Admin API refused carl's client certificate (not signed by a CA it trusts)"
        } else if c.contains("InvalidContentType") || c.contains("corrupt message") {
            "the Admin API does not speak TLS here: use http:// or the TLS port"
        } else {
            return None;
        },
    )
}
