//! What Kong does in Lua that the JSON schemas cannot say: typedef validators
//! (`kong/db/schema/typedefs.lua`), shorthands and input rewrites, generated values,
//! and per-DAO behaviour (basic-auth hashing, certificate SNIs, CA digests).

use carl_model::validate::{Custom, Violations};
use carl_model::{Field, Kind, Object, foreign_id, service_url};
use serde_json::{Value, json};
use sha1::Digest;

use crate::errors::ApiError;
use crate::store::Store;

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

/// `tools_ip.normalize_ip`: (host, port) or an error; IPv6 in brackets when a port
/// follows.
fn split_host_port(s: &str) -> Result<(String, Option<&str>, &'static str), ()> {
    if let Some(rest) = s.strip_prefix('[') {
        let (ip, after) = rest.split_once(']').ok_or(())?;
        ip.parse::<std::net::Ipv6Addr>().map_err(|_| ())?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':').ok_or(())?),
        };
        return Ok((ip.to_owned(), port, "ipv6"));
    }
    if s.parse::<std::net::Ipv6Addr>().is_ok() {
        return Ok((s.to_owned(), None, "ipv6"));
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
        return Err(());
    }
    Ok((host.to_owned(), port, ty))
}

fn valid_port(p: &str) -> bool {
    !p.is_empty()
        && p.chars().all(|c| c.is_ascii_digit())
        && p.parse::<u32>().is_ok_and(|n| n <= 65535)
}

fn validate_host(s: &str) -> Result<(), String> {
    match split_host_port(s) {
        Ok((_, None, _)) => Ok(()),
        Ok((_, Some(_), _)) => Err("must not have a port".into()),
        Err(()) => Err(format!("invalid value: {s}")),
    }
}

fn validate_host_with_optional_port(s: &str) -> Result<(), String> {
    match split_host_port(s) {
        Ok((_, Some(p), _)) if !valid_port(p) => Err("invalid port number".into()),
        Ok(_) => Ok(()),
        Err(()) => Err(format!("invalid value: {s}")),
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
    if carl_model::is_valid_name(s) {
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
        Ok((_, Some(_), _)) => Err(format!("Invalid name ('{s}'); no port allowed")),
        Ok((_, None, "name")) => Ok(()),
        Ok(_) => Err(format!("Invalid name ('{s}'); no ip addresses allowed")),
        Err(()) => Err(format!("Invalid name ('{s}'); must be a valid hostname")),
    }
}

fn validate_target(s: &str) -> Result<(), String> {
    match split_host_port(s) {
        Ok((_, Some(p), _)) if !valid_port(p) => {
            Err("Invalid target; not a valid hostname or ip address".into())
        }
        Ok(_) => Ok(()),
        Err(()) => Err("Invalid target; not a valid hostname or ip address".into()),
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

/// Validates a whole entity of `kind` as Kong does before writing it.
pub fn validate_entity(kind: Kind, entity: &Object) -> Result<(), Violations> {
    let schema = carl_model::schema::effective(kind, entity)?;
    carl_model::validate::validate(schema, kind.dao(), entity, &KongCustom)
}

/// Validates one value of `field` (a path key checked against the endpoint key's
/// definition, code 10).
pub fn validate_field(kind: Kind, field: &Field, value: &Value) -> Result<(), String> {
    carl_model::validate::validate_value(field, kind.dao(), &field.name, value, &KongCustom)
        .map_err(|e| match e {
            Value::String(s) => s,
            other => other.to_string(),
        })
}

/// Input rewrites Kong applies before defaults: the service `url` shorthand, the
/// upstream hash/algorithm coupling, the target default port.
pub fn normalize(kind: Kind, body: &mut Object) -> Result<(), ApiError> {
    match kind {
        Kind::Service => expand_url(body),
        Kind::Upstream => {
            couple_upstream(body);
            Ok(())
        }
        Kind::Target => {
            default_target_port(body);
            Ok(())
        }
        _ => Ok(()),
    }
}

/// The same rewrites for a PATCH body, which may see the stored entity.
pub fn normalize_patch(kind: Kind, _base: &Object, body: &mut Object) -> Result<(), ApiError> {
    normalize(kind, body)
}

/// `url` → protocol/host/port/path (services.lua shorthand); `url` wins.
fn expand_url(body: &mut Object) -> Result<(), ApiError> {
    let Some(url) = body.remove("url") else {
        return Ok(());
    };
    match url {
        Value::Null => Ok(()),
        Value::String(s) if s.is_empty() => Err(ApiError::schema_violation(&Violations::field(
            "url",
            "length must be at least 1",
        ))),
        Value::String(s) => match service_url::expand(&s) {
            Ok(fields) => {
                for (k, v) in fields {
                    body.insert(k.into(), v);
                }
                Ok(())
            }
            Err(msg) => Err(ApiError::schema_violation(&Violations::field("url", msg))),
        },
        _ => Err(ApiError::schema_violation(&Violations::field(
            "url",
            "expected a string",
        ))),
    }
}

/// upstreams.lua shorthands: `hash_on` other than none forces consistent-hashing;
/// none forces round-robin; least-connections and latency force `hash_on = none`.
fn couple_upstream(body: &mut Object) {
    let algorithm = body
        .get("algorithm")
        .and_then(Value::as_str)
        .map(str::to_owned);
    if matches!(algorithm.as_deref(), Some("least-connections" | "latency")) {
        body.insert("hash_on".into(), json!("none"));
        return;
    }
    match body.get("hash_on").and_then(Value::as_str) {
        Some("none") => {
            body.insert("algorithm".into(), json!("round-robin"));
        }
        Some(_) => {
            body.insert("algorithm".into(), json!("consistent-hashing"));
        }
        None => {}
    }
}

/// targets.lua: a target without a port gets `:8000`.
fn default_target_port(body: &mut Object) {
    let Some(Value::String(t)) = body.get("target") else {
        return;
    };
    if let Ok((host, port, ty)) = split_host_port(t) {
        // IPv6 addresses are stored fully expanded, in brackets.
        let host = match host.parse::<std::net::Ipv6Addr>() {
            Ok(ip) if ty == "ipv6" => {
                let groups: Vec<String> =
                    ip.segments().iter().map(|g| format!("{g:04x}")).collect();
                format!("[{}]", groups.join(":"))
            }
            _ => host,
        };
        let port = port.unwrap_or("8000");
        body.insert("target".into(), json!(format!("{host}:{port}")));
    }
}

/// Values that travel with an entity but are stored elsewhere (a certificate's SNIs).
#[derive(Debug, Default)]
pub struct Extra {
    snis: Option<Vec<String>>,
}

/// Takes what is not stored with the entity out of a validated body.
pub fn take_extra(kind: Kind, body: &mut Object) -> Extra {
    let mut extra = Extra::default();
    if kind == Kind::Certificate
        && let Some(v) = body.remove("snis")
        && let Some(list) = v.as_array()
    {
        extra.snis = Some(
            list.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect(),
        );
    }
    extra
}

/// A PUT replaces the whole entity: a certificate PUT without `snis` clears them.
pub fn replace_all(kind: Kind, extra: &mut Extra) {
    if kind == Kind::Certificate && extra.snis.is_none() {
        extra.snis = Some(Vec::new());
    }
}

/// `PUT /certificates/{sni}` adds that name to the certificate's SNIs.
pub fn add_sni_name(body: &mut Object, name: &str) {
    let list = body.entry("snis").or_insert_with(|| json!([]));
    if !list.is_array() {
        *list = json!([]);
    }
    if let Some(items) = list.as_array_mut()
        && !items.iter().any(|n| n == name)
    {
        items.push(json!(name));
    }
}

/// Values Kong derives on write: a CA certificate's `cert_digest` (the SHA-256 of its
/// DER, `ca_certificates.lua` transformations).
pub fn derive(kind: Kind, body: &mut Object) {
    if kind != Kind::CaCertificate {
        return;
    }
    if let Some(der) = body
        .get("cert")
        .and_then(Value::as_str)
        .and_then(first_cert_der)
    {
        use sha2::Digest;
        let digest = sha2::Sha256::digest(&der);
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        body.insert("cert_digest".into(), json!(hex));
    }
}

fn first_cert_der(pem: &str) -> Option<Vec<u8>> {
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
        Some(Ok(_)) => Ok(()),
        Some(Err(e)) => Err(format!("invalid certificate: {e}")),
        None => Err("invalid certificate: PEM_read_bio_X509_AUX() failed".into()),
    }
}

/// typedefs.key: a PEM private key.
fn validate_key(s: &str) -> Result<(), String> {
    use rustls_pki_types::PrivateKeyDer;
    use rustls_pki_types::pem::PemObject;
    PrivateKeyDer::from_pem_slice(s.as_bytes())
        .map(drop)
        .map_err(|_| {
            "invalid key: unable to read key (PEM_read_bio_PrivateKey() failed)".to_owned()
        })
}

/// Generated values: `auto` strings (credential keys and secrets) on insert.
pub fn generate(kind: Kind, body: &mut Object) {
    for field in &kind.schema().fields {
        let auto_string =
            field.auto && field.ty == carl_model::FieldType::String && field.name != "id";
        if auto_string && body.get(&field.name).is_none_or(Value::is_null) {
            body.insert(field.name.clone(), json!(random_string()));
        }
    }
}

/// Kong's `random_string` (`kong/tools/rand.lua`): 24 random bytes in base64, 32
/// characters, with `/` and `+` replaced by letters.
fn random_string() -> String {
    use base64::Engine;
    let mut bytes = [0u8; 24];
    bytes[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    bytes[16..].copy_from_slice(&uuid::Uuid::new_v4().as_bytes()[..8]);
    base64::engine::general_purpose::STANDARD
        .encode(bytes)
        .chars()
        .enumerate()
        .map(|(i, c)| match c {
            '/' => (b'A' + (i % 26) as u8) as char,
            '+' => (b'a' + (i % 26) as u8) as char,
            c => c,
        })
        .collect()
}

/// DAO checks Kong runs before validation (`kong/db/dao/plugins.lua`
/// `check_protocols_match`): a plugin's explicit protocols must share one with its
/// route, or with at least one route of its service. On update the stored values fill
/// in what the PATCH leaves out.
pub fn dao_checks(
    store: &Store,
    kind: Kind,
    body: &Object,
    stored: Option<&Object>,
) -> Result<(), ApiError> {
    if kind != Kind::Plugin {
        return Ok(());
    }
    let touched = ["protocols", "service", "route"]
        .iter()
        .any(|f| body.contains_key(*f));
    if stored.is_some() && !touched {
        return Ok(());
    }
    let pick = |f: &str| {
        body.get(f)
            .or_else(|| stored.and_then(|s| s.get(f)))
            .cloned()
            .unwrap_or(Value::Null)
    };
    let Value::Array(protocols) = pick("protocols") else {
        return Ok(());
    };
    let shares = |route: &Object| {
        let rp = route.get("protocols").and_then(Value::as_array);
        protocols.iter().any(|p| rp.is_some_and(|r| r.contains(p)))
    };
    let violation = |msg: &str| {
        Err(ApiError::schema_violation(&Violations::field(
            "protocols",
            msg,
        )))
    };
    if let Some(rid) = foreign_id(&pick("route")) {
        if let Some(route) = store.get(Kind::Route, rid)
            && !shares(route)
        {
            return violation("must match the associated route's protocols");
        }
    } else if let Some(sid) = foreign_id(&pick("service")) {
        let routes = store.children(Kind::Route, "service", sid);
        let ok = routes.is_empty()
            || routes
                .iter()
                .filter_map(|r| store.get(Kind::Route, r))
                .any(shares);
        if !ok {
            return violation(
                "must match the protocols of at least one route pointing to this Plugin's service",
            );
        }
    }
    Ok(())
}

/// Just before storing: DAO transformations (basic-auth password hashing), SNI checks.
pub fn before_store(
    store: &Store,
    kind: Kind,
    body: &mut Object,
    extra: &Extra,
) -> Result<(), ApiError> {
    match kind {
        Kind::BasicAuth => {
            if let (Some(pw), Some(consumer)) = (
                body.get("password").and_then(Value::as_str),
                body.get("consumer").and_then(foreign_id),
            ) && !is_sha1_hex(pw)
            {
                let digest = sha1::Sha1::digest(format!("{pw}{consumer}").as_bytes());
                let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
                body.insert("password".into(), json!(hex));
            }
            Ok(())
        }
        Kind::Certificate => {
            let id = body.get("id").and_then(Value::as_str).unwrap_or_default();
            for name in extra.snis.iter().flatten() {
                if let Some(other) = store.table(Kind::Sni).id_by("name", &json!(name))
                    && let Some(owner) = store
                        .get(Kind::Sni, other)
                        .and_then(|s| s.get("certificate"))
                        .and_then(foreign_id)
                    && owner != id
                {
                    return Err(ApiError::schema_violation(&Violations::field(
                        "snis",
                        format!("{name} already associated with existing certificate '{owner}'"),
                    )));
                }
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// A stored password is not re-hashed when a PATCH does not change it.
fn is_sha1_hex(s: &str) -> bool {
    s.len() == 40
        && s.chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
}

/// After storing: a certificate's SNI list replaces its SNIs.
pub fn after_store(store: &mut Store, kind: Kind, id: &str, extra: &Extra) {
    if kind != Kind::Certificate {
        return;
    }
    let Some(names) = &extra.snis else { return };
    for sni in store.children(Kind::Sni, "certificate", id) {
        let keep = store
            .get(Kind::Sni, &sni)
            .and_then(|s| s.get("name"))
            .and_then(Value::as_str)
            .is_some_and(|n| names.iter().any(|m| m == n));
        if !keep {
            store.remove(Kind::Sni, &sni);
        }
    }
    for name in names {
        if store.table(Kind::Sni).id_by("name", &json!(name)).is_none() {
            let ts = crate::engine::now().floor() as i64;
            let mut sni = Object::new();
            sni.insert("id".into(), json!(uuid::Uuid::new_v4().to_string()));
            sni.insert("name".into(), json!(name));
            sni.insert("certificate".into(), json!({ "id": id }));
            sni.insert("tags".into(), Value::Null);
            sni.insert("created_at".into(), json!(ts));
            sni.insert("updated_at".into(), json!(ts));
            store.put(Kind::Sni, sni);
        }
    }
}

/// True for kinds whose output differs from what is stored (see [`output`]).
pub fn decorates(kind: Kind) -> bool {
    kind == Kind::Certificate
}

/// The entity as the Admin API shows it: certificates carry their sorted SNI names.
pub fn output(store: &Store, kind: Kind, mut body: Object) -> Object {
    if kind == Kind::Certificate {
        let id = body
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let mut names: Vec<String> = store
            .children(Kind::Sni, "certificate", &id)
            .iter()
            .filter_map(|s| {
                store
                    .get(Kind::Sni, s)?
                    .get("name")?
                    .as_str()
                    .map(str::to_owned)
            })
            .collect();
        names.sort();
        body.insert("snis".into(), json!(names));
    }
    body
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
    fn targets_get_port_8000() {
        let mut t = json!({"target": "10.0.0.1"})
            .as_object()
            .cloned()
            .unwrap_or_default();
        default_target_port(&mut t);
        assert_eq!(t["target"], "10.0.0.1:8000");
        let mut t = json!({"target": "::1"})
            .as_object()
            .cloned()
            .unwrap_or_default();
        default_target_port(&mut t);
        assert_eq!(
            t["target"],
            "[0000:0000:0000:0000:0000:0000:0000:0001]:8000"
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
