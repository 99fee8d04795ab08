//! What Kong does in Lua per kind, beyond validation (whose Lua rules are in
//! `carl_model::kong_rules`): shorthands and input rewrites, generated values, and
//! per-DAO behaviour (basic-auth hashing, certificate SNIs, CA digests).

use carl_model::kong_rules::KongCustom;
use carl_model::validate::Violations;
use carl_model::{Field, Kind, Object, foreign_id, service_url};
use serde_json::{Value, json};
use sha1::Digest;

use crate::errors::ApiError;
use crate::store::Store;

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

/// targets.lua: a target without a port gets `:8000`, IPv6 is expanded.
fn default_target_port(body: &mut Object) {
    let Some(Value::String(t)) = body.get("target") else {
        return;
    };
    if let Some(stored) = carl_model::kong_rules::stored_target(t) {
        body.insert("target".into(), json!(stored));
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
    if let Some(digest) = body
        .get("cert")
        .and_then(Value::as_str)
        .and_then(carl_model::kong_rules::ca_cert_digest)
    {
        body.insert("cert_digest".into(), json!(digest));
    }
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
}
