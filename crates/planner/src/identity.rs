//! How carl recognises an entity across the file and the gateway (DESIGN.md decision 3).
//!
//! By `id` when the file gives one, else by name. A route without a name is recognised
//! by what it matches: its service plus its hosts, paths, methods, headers and snis, each
//! canonicalised so that order, case and duplicates do not matter. This is how the
//! original carl named an API: by its URL pattern and host.

use carl_model::{Kind, Object, Schema};
use serde_json::Value;

/// The canonical match criteria of a route: equal for two routes exactly when they
/// route the same requests to the same service.
pub fn route_match_key(route: &Object) -> String {
    let service = route
        .get("service")
        .and_then(carl_model::foreign_id)
        .unwrap_or("-");
    let list = |field: &str, fold: fn(&str) -> String| -> String {
        let mut items: Vec<String> = strings(route.get(field)).map(fold).collect();
        items.sort();
        items.dedup();
        items.join(",")
    };
    // Hosts and SNIs are DNS names (case-insensitive); methods are upper case in Kong;
    // paths are case-sensitive.
    let hosts = list("hosts", |s| s.to_ascii_lowercase());
    let paths = list("paths", str::to_owned);
    let methods = list("methods", |s| s.to_ascii_uppercase());
    let snis = list("snis", |s| s.to_ascii_lowercase());
    let mut headers: Vec<String> = match route.get("headers") {
        Some(Value::Object(map)) => map
            .iter()
            .map(|(name, values)| {
                let mut vals: Vec<&str> = strings(Some(values)).collect();
                vals.sort_unstable();
                vals.dedup();
                format!("{}={}", name.to_ascii_lowercase(), vals.join("|"))
            })
            .collect(),
        _ => Vec::new(),
    };
    headers.sort();
    format!(
        "service={service};hosts={hosts};paths={paths};methods={methods};headers={};snis={snis}",
        headers.join(",")
    )
}

fn strings(value: Option<&Value>) -> impl Iterator<Item = &str> {
    value
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
}

/// An entity's natural identity, the way carl matches it when the file gives no id
/// (DESIGN.md decision 3). Foreign keys must be ids (`{"id": ...}`). `None` when the
/// entity has nothing to be recognised by (a credential whose key Kong generates).
pub fn natural(kind: Kind, entity: &Object) -> Option<String> {
    let s = |field: &str| entity.get(field).and_then(Value::as_str);
    let fk = |field: &str| {
        entity
            .get(field)
            .and_then(carl_model::foreign_id)
            .unwrap_or("-")
            .to_owned()
    };
    Some(match kind {
        Kind::Consumer => match (s("username"), s("custom_id")) {
            (Some(u), _) => format!("username={u}"),
            (None, Some(c)) => format!("custom_id={c}"),
            (None, None) => return None,
        },
        Kind::Route => match s("name") {
            Some(n) => format!("name={n}"),
            None => format!("match:{}", route_match_key(entity)),
        },
        Kind::Plugin => format!("plugin:{}", plugin_scope(entity)),
        Kind::Target => format!(
            "target:{}/{}",
            fk("upstream"),
            normalize_target(s("target").unwrap_or_default())
        ),
        Kind::Acl => format!("acl:{}/{}", fk("consumer"), s("group").unwrap_or_default()),
        Kind::Key => match s("name") {
            Some(n) => format!("name={n}"),
            None => format!("kid:{}/{}", fk("set"), s("kid").unwrap_or_default()),
        },
        Kind::Certificate | Kind::CaCertificate => format!("cert:{}", pem_digest(s("cert")?)),
        Kind::KeyAuth | Kind::Jwt => format!("key={}", s("key")?),
        _ => format!("{}={}", kind.endpoint_key(), s(kind.endpoint_key())?),
    })
}

/// A plugin's scope, what Kong's cache key makes unique: name, route, service, consumer.
fn plugin_scope(entity: &Object) -> String {
    let fk = |field: &str| {
        entity
            .get(field)
            .and_then(carl_model::foreign_id)
            .unwrap_or("-")
    };
    format!(
        "{}/service={}/route={}/consumer={}",
        entity
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default(),
        fk("service"),
        fk("route"),
        fk("consumer")
    )
}

/// A target as Kong stores it: without a port, `:8000` is added; an IPv6 address is
/// fully expanded ([`carl_model::kong_rules::stored_target`]). An invalid one (which
/// Kong would refuse) is left as it is.
pub fn normalize_target(target: &str) -> String {
    carl_model::kong_rules::stored_target(target).unwrap_or_else(|| target.to_owned())
}

/// A certificate's identity: the SHA-256 of its PEM without surrounding whitespace or
/// `\r`, so re-wrapped line endings do not make a new certificate.
pub fn pem_digest(pem: &str) -> String {
    use sha2::{Digest, Sha256};
    let text: String = pem.trim().chars().filter(|c| *c != '\r').collect();
    let digest = Sha256::digest(text.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// The values only one entity of `kind` may hold at a time (schema `unique` fields,
/// Kong's cache keys, the id), as `field=value`: a write that takes one must wait for
/// the delete or rename that frees it.
pub fn unique_values(kind: Kind, schema: &Schema, entity: &Object, id: &str) -> Vec<String> {
    let mut out = vec![format!("id={id}")];
    for field in &schema.fields {
        if field.name != "id"
            && field.raw.get("unique").and_then(Value::as_bool) == Some(true)
            && let Some(v) = entity.get(&field.name).and_then(Value::as_str)
        {
            out.push(format!("{}={v}", field.name));
        }
    }
    match kind {
        Kind::Plugin | Kind::Target | Kind::Acl => out.extend(natural(kind, entity)),
        Kind::Key if entity.get("kid").is_some() => out.push(format!(
            "kid:{}/{}",
            entity
                .get("set")
                .and_then(carl_model::foreign_id)
                .unwrap_or("-"),
            entity
                .get("kid")
                .and_then(Value::as_str)
                .unwrap_or_default()
        )),
        _ => {}
    }
    out
}

/// How an entity is shown to people: `"orders"` for a named one; for an unnamed route
/// what it matches, e.g. `(unnamed) GET api.example.test/orders`; a credential by its
/// consumer; a plugin by name and scope.
pub fn label(kind: Kind, entity: &Object, names: &dyn Fn(&str) -> Option<String>) -> String {
    let s = |field: &str| entity.get(field).and_then(Value::as_str);
    let owner = |field: &str| -> Option<String> {
        let id = entity.get(field).and_then(carl_model::foreign_id)?;
        Some(names(id).unwrap_or_else(|| id.to_owned()))
    };
    match kind {
        Kind::Plugin => {
            let mut text = format!("\"{}\"", s("name").unwrap_or("?"));
            if let Some(i) = s("instance_name") {
                text.push_str(&format!(" ({i})"));
            }
            let scope: Vec<String> = ["service", "route", "consumer"]
                .iter()
                .filter_map(|f| Some(format!("{f} {}", owner(f)?)))
                .collect();
            if scope.is_empty() {
                text.push_str(" (global)");
            } else {
                text.push_str(&format!(" on {}", scope.join(", ")));
            }
            return text;
        }
        Kind::KeyAuth | Kind::Jwt | Kind::BasicAuth | Kind::HmacAuth | Kind::Acl => {
            let what = match kind {
                Kind::Acl => s("group").map(|g| format!("group \"{g}\"")),
                Kind::BasicAuth | Kind::HmacAuth => s("username").map(|u| format!("\"{u}\"")),
                // A key is a secret: it identifies the credential but is never shown.
                _ => entity
                    .get("id")
                    .and_then(Value::as_str)
                    .map(|id| format!("{}…", &id[..id.len().min(8)])),
            };
            let consumer = owner("consumer").unwrap_or_else(|| "?".into());
            return match what {
                Some(w) => format!("{w} of consumer {consumer}"),
                None => format!("of consumer {consumer}"),
            };
        }
        Kind::Target => {
            let upstream = owner("upstream").unwrap_or_else(|| "?".into());
            return format!("\"{}\" in upstream {upstream}", s("target").unwrap_or("?"));
        }
        Kind::Certificate | Kind::CaCertificate => {
            if let Some(cert) = s("cert") {
                return format!("sha256:{}…", &pem_digest(cert)[..12]);
            }
        }
        Kind::Consumer if s("username").is_none() => {
            if let Some(c) = s("custom_id") {
                return format!("custom_id \"{c}\"");
            }
        }
        _ => {}
    }
    if let Some(name) = s(kind.endpoint_key()) {
        return format!("\"{name}\"");
    }
    if kind == Kind::Route {
        let join = |field: &str| strings(entity.get(field)).collect::<Vec<_>>().join(",");
        let mut parts = Vec::new();
        let methods = join("methods");
        if !methods.is_empty() {
            parts.push(methods);
        }
        let hosts = join("hosts");
        let paths = join("paths");
        match (hosts.is_empty(), paths.is_empty()) {
            (false, false) => parts.push(format!("{hosts} {paths}")),
            (false, true) => parts.push(hosts),
            (true, false) => parts.push(paths),
            (true, true) => {}
        }
        let snis = join("snis");
        if !snis.is_empty() {
            parts.push(format!("snis={snis}"));
        }
        if let Some(Value::Object(h)) = entity.get("headers")
            && !h.is_empty()
        {
            parts.push(format!(
                "headers={}",
                h.keys().cloned().collect::<Vec<_>>().join(",")
            ));
        }
        if !parts.is_empty() {
            return format!("(unnamed) {}", parts.join(" "));
        }
    }
    match entity.get("id").and_then(Value::as_str) {
        Some(id) => format!("(unnamed) {id}"),
        None => "(unnamed)".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Object {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn match_key_ignores_order_case_and_duplicates() {
        let a = obj(
            json!({"service": {"id": "s1"}, "hosts": ["B.example", "a.example"], "paths": ["/x", "/y"],
            "methods": ["get", "POST"], "headers": {"X-Env": ["b", "a"]}}),
        );
        let b = obj(
            json!({"service": {"id": "s1"}, "hosts": ["a.example", "b.example", "a.example"], "paths": ["/y", "/x"],
            "methods": ["POST", "GET"], "headers": {"x-env": ["a", "b"]}, "snis": null}),
        );
        assert_eq!(route_match_key(&a), route_match_key(&b));
    }

    #[test]
    fn match_key_tells_apart_what_routes_differently() {
        let base = obj(json!({"service": {"id": "s1"}, "paths": ["/x"]}));
        let other_path = obj(json!({"service": {"id": "s1"}, "paths": ["/X"]}));
        let other_service = obj(json!({"service": {"id": "s2"}, "paths": ["/x"]}));
        let with_host = obj(json!({"service": {"id": "s1"}, "paths": ["/x"], "hosts": ["h"]}));
        let k = route_match_key(&base);
        assert_ne!(k, route_match_key(&other_path), "paths are case-sensitive");
        assert_ne!(k, route_match_key(&other_service));
        assert_ne!(k, route_match_key(&with_host));
    }

    #[test]
    fn targets_compare_as_kong_stores_them() {
        // kong/db/dao/targets.lua format_target: default port 8000, IPv6 expanded.
        for (given, stored) in [
            ("api.internal", "api.internal:8000"),
            ("api.internal:80", "api.internal:80"),
            ("10.0.0.1", "10.0.0.1:8000"),
            (
                "2001:db8::12",
                "[2001:0db8:0000:0000:0000:0000:0000:0012]:8000",
            ),
            (
                "[2001:DB8::12]:8443",
                "[2001:0db8:0000:0000:0000:0000:0000:0012]:8443",
            ),
        ] {
            assert_eq!(normalize_target(given), stored, "{given}");
        }
    }

    #[test]
    fn labels_show_names_or_what_a_route_matches() {
        assert_eq!(
            label(Kind::Service, &obj(json!({"name": "orders"})), &|_| None),
            "\"orders\""
        );
        let r =
            obj(json!({"methods": ["GET"], "hosts": ["api.example.test"], "paths": ["/orders"]}));
        assert_eq!(
            label(Kind::Route, &r, &|_| None),
            "(unnamed) GET api.example.test /orders"
        );
    }
}
