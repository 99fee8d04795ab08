//! How carl recognises an entity across the file and the gateway (DESIGN.md decision 3).
//!
//! By `id` when the file gives one, else by name. A route without a name is recognised
//! by what it matches: its service plus its hosts, paths, methods, headers and snis, each
//! canonicalised so that order, case and duplicates do not matter. This is how the
//! original carl named an API: by its URL pattern and host.

use carl_model::{Kind, Object};
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

/// How an entity is shown to people: `"orders"` for a named one; for an unnamed route
/// what it matches, e.g. `(unnamed) GET api.example.test/orders`.
pub fn label(kind: Kind, entity: &Object) -> String {
    if let Some(name) = entity.get(kind.endpoint_key()).and_then(Value::as_str) {
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
    fn labels_show_names_or_what_a_route_matches() {
        assert_eq!(
            label(Kind::Service, &obj(json!({"name": "orders"}))),
            "\"orders\""
        );
        let r =
            obj(json!({"methods": ["GET"], "hosts": ["api.example.test"], "paths": ["/orders"]}));
        assert_eq!(
            label(Kind::Route, &r),
            "(unnamed) GET api.example.test /orders"
        );
    }
}
