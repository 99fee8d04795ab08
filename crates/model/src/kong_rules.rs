//! Kong's validation rules that live in Lua functions, not in the schema JSON: the
//! typedef validators of `kong/db/schema/typedefs.lua` and the custom entity checks of
//! some entities. kong-sim enforces them; carl's offline validator applies them too.

use serde_json::{Value, json};

use crate::Object;
use crate::validate::{Custom, Violations};

/// The typedef a field was defined with, when its validator is a Lua function.
fn typedef(schema: &str, path: &str) -> Option<&'static str> {
    Some(match (schema, path) {
        (_, "tags[]") => "tag",
        ("services" | "routes" | "key_sets" | "keys", "name") => "utf8_name",
        ("plugins", "instance_name") => "utf8_name",
        ("services", "host") => "host",
        ("services", "path") => "path",
        ("routes", "hosts[]") => "wildcard_host_with_optional_port",
        ("routes", "snis[]") => "wildcard_host",
        ("routes", "paths[]") => "router_path",
        ("routes", "headers{key}") => "header_name",
        ("routes", "sources[].ip" | "destinations[].ip") => "ip_or_cidr",
        ("upstreams", "name") => "upstream_name",
        ("upstreams", "host_header") => "host_with_optional_port",
        ("upstreams", "hash_on_header" | "hash_fallback_header") => "header_name",
        ("upstreams", "hash_on_cookie_path") => "path",
        ("targets", "target") => "target",
        ("snis", "name") => "wildcard_host",
        ("certificates", "snis[]") => "wildcard_host",
        ("certificates" | "ca_certificates", "cert" | "cert_alt") => "certificate",
        ("certificates", "key" | "key_alt") => "key",
        _ => return None,
    })
}

fn is_hostname(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        })
}

/// A host as `tools_ip.normalize_ip` reads it: the host, the port if any, and its type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPort<'a> {
    pub host: String,
    pub port: Option<&'a str>,
    /// `ipv4`, `ipv6` or `name`.
    pub ty: &'static str,
}

/// Splits `host[:port]` (IPv6 in brackets when a port follows); `None` when it is no
/// valid host.
pub fn split_host_port(s: &str) -> Option<HostPort<'_>> {
    if let Some(rest) = s.strip_prefix('[') {
        let (ip, after) = rest.split_once(']')?;
        ip.parse::<std::net::Ipv6Addr>().ok()?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':')?),
        };
        return Some(HostPort {
            host: ip.to_owned(),
            port,
            ty: "ipv6",
        });
    }
    if s.parse::<std::net::Ipv6Addr>().is_ok() {
        return Some(HostPort {
            host: s.to_owned(),
            port: None,
            ty: "ipv6",
        });
    }
    let (host, port) = match s.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (s, None),
    };
    let ty = if host.parse::<std::net::Ipv4Addr>().is_ok() {
        "ipv4"
    } else {
        "name"
    };
    if ty == "name" && !is_hostname(host) {
        return None;
    }
    Some(HostPort {
        host: host.to_owned(),
        port,
        ty,
    })
}

/// A target as Kong stores it (`format_target` in `kong/db/dao/targets.lua`): the
/// port defaults to 8000 and an IPv6 address is written fully expanded, lower case, in
/// brackets (`tools/ip.lua` `normalize_ipv6`). `None` when it is no valid target.
pub fn stored_target(target: &str) -> Option<String> {
    let HostPort { host, port, ty } = split_host_port(target)?;
    let host = match host.parse::<std::net::Ipv6Addr>() {
        Ok(ip) if ty == "ipv6" => {
            let groups: Vec<String> = ip.segments().iter().map(|g| format!("{g:04x}")).collect();
            format!("[{}]", groups.join(":"))
        }
        _ => host,
    };
    Some(format!("{host}:{}", port.unwrap_or("8000")))
}

fn valid_port(p: &str) -> bool {
    !p.is_empty()
        && p.chars().all(|c| c.is_ascii_digit())
        && p.parse::<u32>().is_ok_and(|n| n <= 65535)
}

fn validate_host(s: &str) -> Result<(), String> {
    match split_host_port(s) {
        Some(HostPort { port: None, .. }) => Ok(()),
        Some(_) => Err("must not have a port".into()),
        None => Err(format!("invalid value: {s}")),
    }
}

fn validate_host_with_optional_port(s: &str) -> Result<(), String> {
    match split_host_port(s) {
        Some(HostPort { port: Some(p), .. }) if !valid_port(p) => Err("invalid port number".into()),
        Some(_) => Ok(()),
        None => Err(format!("invalid value: {s}")),
    }
}

/// typedefs.wildcard_host: a host where the leftmost or rightmost label may be `*`.
fn validate_wildcard_host(s: &str, allow_port: bool) -> Result<(), String> {
    let stars = s.matches('*').count();
    if stars > 1 {
        return Err(format!(
            "invalid wildcard: must have at most one wildcard in '{s}'"
        ));
    }
    let probe = if stars == 1 {
        if let Some(rest) = s.strip_prefix("*.") {
            format!("x.{rest}")
        } else if let Some(rest) = s.strip_suffix(".*") {
            format!("{rest}.x")
        } else if allow_port && s.contains(".*:") {
            s.replacen(".*:", ".x:", 1)
        } else {
            return Err(format!(
                "invalid wildcard: must be placed at leftmost or rightmost label in '{s}'"
            ));
        }
    } else {
        s.to_owned()
    };
    if allow_port {
        validate_host_with_optional_port(&probe).map_err(|_| format!("invalid value: {s}"))
    } else {
        validate_host(&probe).map_err(|e| {
            if e.contains("port") {
                e
            } else {
                format!("invalid value: {s}")
            }
        })
    }
}

/// typedefs.lua `validate_path`.
fn validate_path(s: &str) -> Result<(), String> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || "._-~/%:@!$&'()*+,;=".contains(c);
    if !s.starts_with('/') || !s.chars().all(allowed) {
        return Err(format!(
            "invalid path: '{s}' (characters outside of the reserved list of RFC 3986 found)"
        ));
    }
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let ok = bytes.len() > i + 2
                && bytes[i + 1].is_ascii_hexdigit()
                && bytes[i + 2].is_ascii_hexdigit();
            if !ok {
                let end = (i + 3).min(bytes.len());
                return Err(format!("invalid url-encoded value: '{}'", &s[i..end]));
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    if s.contains("//") {
        return Err("must not have empty segments".into());
    }
    Ok(())
}

/// typedefs.lua `validate_utf8_name`.
pub fn validate_utf8_name(s: &str) -> Result<(), String> {
    if crate::is_valid_name(s) {
        Ok(())
    } else {
        Err(format!(
            "invalid value '{s}': the only accepted ascii characters are alphanumerics or ., -, _, and ~"
        ))
    }
}

/// typedefs.lua `validate_tag`: printable ASCII except `,` and `/`, or UTF-8.
fn validate_tag(s: &str) -> Result<(), String> {
    let ok = s
        .chars()
        .all(|c| !c.is_ascii() || ((c.is_ascii_graphic() || c == ' ') && c != ',' && c != '/'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid tag '{s}': expected printable ascii (except `,` and `/`) or valid utf-8 sequences"
        ))
    }
}

fn validate_ip_or_cidr(s: &str) -> Result<(), String> {
    let (ip, bits) = match s.split_once('/') {
        Some((ip, b)) => (ip, Some(b)),
        None => (s, None),
    };
    let max = if ip.parse::<std::net::Ipv4Addr>().is_ok() {
        32
    } else if ip.parse::<std::net::Ipv6Addr>().is_ok() {
        128
    } else {
        return Err(format!("invalid ip or cidr range: '{s}'"));
    };
    match bits {
        Some(b) if b.parse::<u32>().map_or(true, |n| n > max) => {
            Err(format!("invalid ip or cidr range: '{s}'"))
        }
        _ => Ok(()),
    }
}

/// The `router_path` typedef: `match_none` (empty segments) and `match_any` (/ or ~/)
/// come from the schema JSON when present; this repeats them for snapshots that lack
/// them, plus the regex compile check Kong does with PCRE (approximated).
fn validate_router_path(s: &str) -> Result<(), String> {
    if !(s.starts_with('/') || s.starts_with("~/")) {
        return Err("should start with: / (fixed path) or ~/ (regex path)".into());
    }
    if s.contains("//") {
        return Err("must not have empty segments".into());
    }
    if let Some(re) = s.strip_prefix('~')
        && regex::Regex::new(re).is_err()
        && fancy_free_invalid(re)
    {
        return Err(format!(
            "invalid regex: '{re}' (PCRE returned: compilation failed)"
        ));
    }
    Ok(())
}

/// A regex the Rust engine rejects is only called invalid when it is unbalanced, since
/// PCRE accepts look-arounds and back-references that Rust's engine does not.
fn fancy_free_invalid(re: &str) -> bool {
    let mut depth: i32 = 0;
    let mut escaped = false;
    for c in re.chars() {
        match (escaped, c) {
            (true, _) => escaped = false,
            (false, '\\') => escaped = true,
            (false, '(') => depth += 1,
            (false, ')') => depth -= 1,
            _ => {}
        }
        if depth < 0 {
            return true;
        }
    }
    depth != 0
}

fn validate_header_name(s: &str) -> Result<(), String> {
    if s.eq_ignore_ascii_case("host") {
        return Err(
            "cannot contain 'host' header, which must be specified in the 'hosts' attribute".into(),
        );
    }
    if s.chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        Ok(())
    } else {
        Err(format!(
            "bad header name '{s}', allowed characters are A-Z, a-z, 0-9, '_', and '-'"
        ))
    }
}

/// upstreams.lua `validate_name`: a hostname, not an IP, without a port.
fn validate_upstream_name(s: &str) -> Result<(), String> {
    match split_host_port(s) {
        Some(HostPort { port: Some(_), .. }) => {
            Err(format!("Invalid name ('{s}'); no port allowed"))
        }
        Some(HostPort { ty: "name", .. }) => Ok(()),
        Some(_) => Err(format!("Invalid name ('{s}'); no ip addresses allowed")),
        None => Err(format!("Invalid name ('{s}'); must be a valid hostname")),
    }
}

fn validate_target(s: &str) -> Result<(), String> {
    match split_host_port(s) {
        Some(HostPort { port: Some(p), .. }) if !valid_port(p) => {
            Err("Invalid target; not a valid hostname or ip address".into())
        }
        Some(_) => Ok(()),
        None => Err("Invalid target; not a valid hostname or ip address".into()),
    }
}

fn run_typedef(name: &str, s: &str) -> Result<(), String> {
    match name {
        "tag" => validate_tag(s),
        "utf8_name" => validate_utf8_name(s),
        "host" => validate_host(s),
        "host_with_optional_port" => validate_host_with_optional_port(s),
        "wildcard_host" => validate_wildcard_host(s, false),
        "wildcard_host_with_optional_port" => validate_wildcard_host(s, true),
        "path" => validate_path(s),
        "router_path" => validate_router_path(s),
        "header_name" => validate_header_name(s),
        "ip_or_cidr" => validate_ip_or_cidr(s),
        "upstream_name" => validate_upstream_name(s),
        "target" => validate_target(s),
        "certificate" => validate_certificate(s),
        "key" => validate_key(s),
        _ => Ok(()),
    }
}

/// Kong's Lua validators, for the generic validator in `carl_model::validate`.
pub struct KongCustom;

impl Custom for KongCustom {
    fn field(&self, schema: &str, path: &str, value: &Value) -> Result<(), String> {
        match (typedef(schema, path), value.as_str()) {
            (Some(t), Some(s)) => run_typedef(t, s),
            _ => Ok(()),
        }
    }

    fn entity(&self, schema: &str, entity: &Object, violations: &mut Violations) {
        if schema == "upstreams" {
            upstream_checks(entity, violations);
        }
        if schema == "ca_certificates"
            && let Some(cert) = entity.get("cert").and_then(Value::as_str)
            && cert.matches("-----BEGIN CERTIFICATE-----").count() > 1
        {
            violations
                .entity
                .push("please submit only one certificate at a time".into());
        }
        if schema == "certificates"
            && let Some(names) = entity.get("snis").and_then(Value::as_array)
        {
            for (i, n) in names.iter().enumerate() {
                if names[..i].contains(n) {
                    violations.fields.insert(
                        "snis".into(),
                        json!(format!("{} is duplicated", n.as_str().unwrap_or_default())),
                    );
                }
            }
        }
    }
}

/// upstreams.lua entity checks written as functions: hash settings must agree.
fn upstream_checks(e: &Object, v: &mut Violations) {
    let get = |k: &str| e.get(k).and_then(Value::as_str);
    let (on, fallback) = (get("hash_on"), get("hash_fallback"));
    if on == Some("none") && fallback.is_some_and(|f| f != "none") {
        v.fields
            .insert("hash_fallback".into(), json!("must be 'none'"));
    }
    if on == Some("cookie") && fallback.is_some_and(|f| f != "none") {
        v.fields
            .insert("hash_fallback".into(), json!("must be 'none'"));
    }
    if let (Some(a), Some(b)) = (on, fallback)
        && a == b
        && matches!(a, "consumer" | "ip" | "path")
    {
        v.fields.insert(
            "hash_fallback".into(),
            json!(format!("must not equal 'hash_on'")),
        );
    }
}

/// A CA certificate's `cert_digest` as Kong derives it on write: the SHA-256 of the
/// first certificate's DER, in lowercase hex (`ca_certificates.lua` transformations).
pub fn ca_cert_digest(pem: &str) -> Option<String> {
    use sha2::Digest;
    let der = first_cert_der(pem)?;
    Some(
        sha2::Sha256::digest(&der)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect(),
    )
}

pub fn first_cert_der(pem: &str) -> Option<Vec<u8>> {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    CertificateDer::pem_slice_iter(pem.as_bytes())
        .next()?
        .ok()
        .map(|c| c.to_vec())
}

/// typedefs.certificate: a PEM certificate (the structure beyond PEM is not checked).
fn validate_certificate(s: &str) -> Result<(), String> {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    match CertificateDer::pem_slice_iter(s.as_bytes()).next() {
        Some(Ok(der)) if is_der_sequence(&der) => Ok(()),
        Some(Ok(_)) => Err("invalid certificate: x509.new: d2i_X509() failed".into()),
        Some(Err(e)) => Err(format!("invalid certificate: {e}")),
        None => Err("invalid certificate: PEM_read_bio_X509_AUX() failed".into()),
    }
}

/// typedefs.key: a PEM private key.
fn validate_key(s: &str) -> Result<(), String> {
    use rustls_pki_types::PrivateKeyDer;
    use rustls_pki_types::pem::PemObject;
    match PrivateKeyDer::from_pem_slice(s.as_bytes()) {
        Ok(key) if is_der_sequence(key.secret_der()) => Ok(()),
        _ => Err("invalid key: unable to read key (PEM_read_bio_PrivateKey() failed)".to_owned()),
    }
}

/// True when `der` is one complete DER SEQUENCE holding a SEQUENCE first, the shape of
/// an X.509 certificate and of PKCS#8, PKCS#1 and SEC1 keys. The PEM decoder accepts
/// any base64; OpenSSL, which Kong uses, refuses what does not parse.
fn is_der_sequence(der: &[u8]) -> bool {
    /// (tag, header length, content length) of the TLV at the start of `b`.
    fn tlv(b: &[u8]) -> Option<(u8, usize, usize)> {
        let tag = *b.first()?;
        let first = *b.get(1)? as usize;
        if first < 0x80 {
            return Some((tag, 2, first));
        }
        let n = first & 0x7f;
        if n == 0 || n > 4 {
            return None;
        }
        let len = b
            .get(2..2 + n)?
            .iter()
            .fold(0usize, |acc, x| acc << 8 | *x as usize);
        Some((tag, 2 + n, len))
    }
    match tlv(der) {
        Some((0x30, header, len)) if header + len == der.len() => {
            matches!(tlv(&der[header..]), Some((0x30 | 0x02, h, l)) if h + l <= len)
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_as_typedefs_check_them() {
        assert!(validate_host("example.test").is_ok());
        assert!(validate_host("10.0.0.1").is_ok());
        assert_eq!(validate_host("h:80").unwrap_err(), "must not have a port");
        assert_eq!(validate_host("a b").unwrap_err(), "invalid value: a b");
        assert!(validate_wildcard_host("*.example.test", false).is_ok());
        assert!(validate_wildcard_host("example.*", false).is_ok());
        assert!(validate_wildcard_host("a.*.b", false).is_err());
        assert_eq!(
            validate_upstream_name("10.0.0.1").unwrap_err(),
            "Invalid name ('10.0.0.1'); no ip addresses allowed"
        );
    }

    #[test]
    fn paths_follow_rfc_3986() {
        assert!(validate_path("/a/b%20c").is_ok());
        assert!(validate_path("/a%2").is_err());
        assert_eq!(
            validate_path("/a//b").unwrap_err(),
            "must not have empty segments"
        );
    }
}
