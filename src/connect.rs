//! The Admin API client from the global flags: address, TLS, headers, retries.

use carl_admin_client::{AdminClient, ClientConfig, Pem, RetryConfig, TlsConfig};

use crate::cli::GlobalArgs;

/// A PEM given as a file path or as the PEM text itself (CI variables hold the
/// latter); `flag` names it in errors without ever printing its content.
fn pem(flag: &str, value: &str) -> Result<Pem, String> {
    if value.trim_start().starts_with("-----BEGIN") {
        return Ok(Pem {
            origin: format!("{flag} (PEM text)"),
            bytes: value.as_bytes().to_vec(),
        });
    }
    let bytes = std::fs::read(value).map_err(|e| format!("{flag} {value}: {e}"))?;
    Ok(Pem {
        origin: format!("{flag} {value}"),
        bytes,
    })
}

pub fn client(global: &GlobalArgs) -> Result<AdminClient, String> {
    let mut headers = Vec::new();
    for h in global.headers.iter().filter(|h| !h.trim().is_empty()) {
        // The header's value may be a token: name only the header in errors.
        let (name, value) = h.split_once(':').ok_or_else(|| {
            format!(
                "--header '{} …': expected 'Name: value' (the value is not shown: it may be a token)",
                h.split_whitespace().next().unwrap_or_default()
            )
        })?;
        headers.push((name.trim().to_owned(), value.trim().to_owned()));
    }
    let tls = TlsConfig {
        ca_cert: global
            .ca_cert
            .as_ref()
            .map(|p| pem("--ca-cert", &p.display().to_string()))
            .transpose()?,
        client_cert: global
            .tls_client_cert
            .as_deref()
            .map(|v| pem("--tls-client-cert", v))
            .transpose()?,
        client_key: global
            .tls_client_key
            .as_deref()
            .map(|v| pem("--tls-client-key", v))
            .transpose()?,
        skip_verify: global.tls_skip_verify,
        server_name: global.tls_server_name.clone(),
    };
    if global.tls_skip_verify {
        // Not a log line: shown even with -q, on every run.
        anstream::eprintln!(
            "warning: --tls-skip-verify: the Admin API's certificate is not verified; anyone on the \
             path can read and change what carl sends, credentials included"
        );
    }
    let config = ClientConfig {
        addr: global.kong_addr.clone(),
        timeout: global.timeout,
        headers,
        parallelism: global.parallelism.into(),
        workspace: global.workspace.clone(),
        tls,
        retry: RetryConfig {
            attempts: global.retries.saturating_add(1),
            ..RetryConfig::default()
        },
        ..ClientConfig::default()
    };
    AdminClient::new(&config).map_err(|e| e.to_string())
}
