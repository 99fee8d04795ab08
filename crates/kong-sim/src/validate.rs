//! Schema validation with Kong's messages (kong/db/schema/init.lua, typedefs.lua,
//! entities/services.lua, entities/routes.lua, entities/routes_subschemas.lua).
//!
//! Field types, defaults, `one_of` and `between` come from the model's built-in
//! schemas; what those JSON snapshots cannot express (Lua custom validators,
//! subschemas, entity checks) is written out here.

use std::collections::BTreeMap;

use carl_model::{Field, FieldType, Kind, Object, is_uuid};
use serde_json::{Value, json};

const REQUIRED: &str = "required field missing";

/// Validation errors in Kong's shape: entity-level messages plus a field tree.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Errors {
    pub entity: Vec<String>,
    /// Sorted by name, which is the order Kong prints them in.
    pub fields: BTreeMap<String, Value>,
}

impl Errors {
    pub fn is_empty(&self) -> bool {
        self.entity.is_empty() && self.fields.is_empty()
    }

    pub fn field(name: &str, err: impl Into<Value>) -> Self {
        let mut e = Errors::default();
        e.fields.insert(name.to_owned(), err.into());
        e
    }

    /// `schema violation (a: x)` or `N schema violations (a: x; b: y)`
    /// (errors.lua `schema_violation`): `@entity` first, then fields sorted, one
    /// level of nesting flattened with 1-based indices.
    pub fn message(&self) -> String {
        let mut buf: Vec<String> = self.entity.clone();
        for (name, err) in &self.fields {
            match err {
                Value::Array(items) => {
                    for (i, item) in items.iter().enumerate() {
                        if !item.is_null() {
                            buf.push(format!("{name}.{}: {}", i + 1, render(item)));
                        }
                    }
                }
                Value::Object(map) => {
                    for (k, item) in map {
                        buf.push(format!("{name}.{k}: {}", render(item)));
                    }
                }
                other => buf.push(format!("{name}: {}", render(other))),
            }
        }
        if buf.len() == 1 {
            format!("schema violation ({})", buf[0])
        } else {
            format!("{} schema violations ({})", buf.len(), buf.join("; "))
        }
    }

    /// The `fields` object of the error body.
    pub fn to_json(&self) -> Value {
        let mut out = Object::new();
        if !self.entity.is_empty() {
            out.insert("@entity".into(), json!(self.entity));
        }
        for (k, v) in &self.fields {
            out.insert(k.clone(), v.clone());
        }
        Value::Object(out)
    }
}

/// A nested error as Kong prints it in a message: strings bare, tables as Lua.
fn render(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => lua_pretty(other),
    }
}

fn lua_pretty(v: &Value) -> String {
    match v {
        Value::String(s) => crate::errors::lua_string(s),
        Value::Null => "null".into(),
        Value::Array(items) => {
            let parts: Vec<String> = items.iter().map(lua_pretty).collect();
            format!("{{{}}}", parts.join(","))
        }
        Value::Object(map) => {
            let parts: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{k}={}", lua_pretty(v)))
                .collect();
            format!("{{{}}}", parts.join(","))
        }
        other => other.to_string(),
    }
}

/// Completes an insert the way Kong's `process_auto_fields(..., "insert")` does:
/// absent fields take their default (or null); an explicit `null` stays null (Kong
/// only defaults `nil`), so a required field sent as null fails validation.
pub fn fill_defaults(kind: Kind, obj: &mut Object) {
    let explicit_nulls: Vec<String> = obj
        .iter()
        .filter(|(_, v)| v.is_null())
        .map(|(k, _)| k.clone())
        .collect();
    if kind == Kind::Route && !obj.contains_key("strip_path") {
        // The grpc subschema overrides strip_path's default to false.
        let protocols = obj
            .get("protocols")
            .cloned()
            .unwrap_or_else(|| json!(["http", "https"]));
        if matches!(route_subschema(&protocols), Some(Sub::Grpc)) {
            obj.insert("strip_path".into(), json!(false));
        }
    }
    kind.schema().fill_defaults(obj);
    for k in explicit_nulls {
        obj.insert(k, Value::Null);
    }
}

/// Drops duplicate elements of set-typed fields, keeping first occurrences in the
/// client's order (Kong's `make_set`).
pub fn dedup_sets(kind: Kind, obj: &mut Object) {
    for field in &kind.schema().fields {
        if field.is_set()
            && let Some(Value::Array(items)) = obj.get_mut(&field.name)
        {
            let mut seen: Vec<Value> = Vec::with_capacity(items.len());
            items.retain(|v| {
                if seen.contains(v) {
                    false
                } else {
                    seen.push(v.clone());
                    true
                }
            });
        }
    }
}

/// Route subschemas, picked by the first known protocol (routes_subschemas.lua).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sub {
    Http,
    Stream,
    Grpc,
}

fn sub_of(p: &str) -> Option<Sub> {
    match p {
        "http" | "https" => Some(Sub::Http),
        "tcp" | "tls" | "udp" | "tls_passthrough" => Some(Sub::Stream),
        "grpc" | "grpcs" => Some(Sub::Grpc),
        _ => None,
    }
}

fn route_subschema(protocols: &Value) -> Option<Sub> {
    match protocols {
        Value::String(s) => sub_of(s),
        Value::Array(items) => items.iter().filter_map(Value::as_str).find_map(sub_of),
        _ => None,
    }
}

/// Validates a complete entity (after defaults or a PATCH merge), the way
/// `Schema:validate` does with `full_check`.
pub fn validate(kind: Kind, obj: &Object) -> Result<(), Errors> {
    let schema = kind.schema();
    let mut errors = Errors::default();

    let mut sub = None;
    if kind == Kind::Route {
        // Without a subschema Kong stops before any other check (Schema:validate).
        let protocols = obj.get("protocols").unwrap_or(&Value::Null);
        match protocols {
            Value::Null => return Err(Errors::field("protocols", REQUIRED)),
            Value::Array(_) | Value::String(_) | Value::Object(_) => {
                sub = route_subschema(protocols);
                if sub.is_none() {
                    let first = match protocols {
                        Value::String(s) => s.clone(),
                        Value::Array(items) => items.first().map_or("nil".into(), |v| match v {
                            Value::String(s) => s.clone(),
                            other => other.to_string(),
                        }),
                        _ => "nil".into(),
                    };
                    return Err(Errors::field("protocols", format!("unknown type: {first}")));
                }
            }
            _ => return Err(Errors::field("protocols", "expected a set")),
        }
    }

    for key in obj.keys() {
        if schema.field(key).is_none() {
            errors.fields.insert(key.clone(), json!("unknown field"));
        }
    }

    for field in &schema.fields {
        let value = obj.get(&field.name).unwrap_or(&Value::Null);
        if let Some(sub) = sub
            && let Some(msg) = subschema_override(sub, &field.name, value)
        {
            errors.fields.insert(field.name.clone(), json!(msg));
            continue;
        }
        if let Err(e) = check_value(kind, &field.name, field, value) {
            errors.fields.insert(field.name.clone(), e);
        }
    }

    match kind {
        Kind::Service => service_checks(obj, &mut errors),
        Kind::Route => {
            if let Some(sub) = sub {
                route_checks(obj, sub, &mut errors);
            }
        }
    }

    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

/// Field definitions a route subschema replaces (`eq = null` / `ne = true` with a
/// custom `err`).
fn subschema_override(sub: Sub, name: &str, value: &Value) -> Option<&'static str> {
    if value.is_null() {
        return None;
    }
    match (sub, name) {
        (Sub::Http, "sources") => {
            Some("cannot set 'sources' when 'protocols' is 'http' or 'https'")
        }
        (Sub::Http, "destinations") => {
            Some("cannot set 'destinations' when 'protocols' is 'http' or 'https'")
        }
        (Sub::Stream, "methods" | "hosts" | "paths" | "headers") => Some(match name {
            "methods" => {
                "cannot set 'methods' when 'protocols' is 'tcp', 'tls', 'tls_passthrough' or 'udp'"
            }
            "hosts" => {
                "cannot set 'hosts' when 'protocols' is 'tcp', 'tls', 'tls_passthrough' or 'udp'"
            }
            "paths" => {
                "cannot set 'paths' when 'protocols' is 'tcp', 'tls', 'tls_passthrough' or 'udp'"
            }
            _ => {
                "cannot set 'headers' when 'protocols' is 'tcp', 'tls', 'tls_passthrough' or 'udp'"
            }
        }),
        (Sub::Grpc, "strip_path") if value == &Value::Bool(true) => {
            Some("cannot set 'strip_path' when 'protocols' is 'grpc' or 'grpcs'")
        }
        (Sub::Grpc, "methods") => {
            Some("cannot set 'methods' when 'protocols' is 'grpc' or 'grpcs'")
        }
        (Sub::Grpc, "sources") => {
            Some("cannot set 'sources' when 'protocols' is 'grpc' or 'grpcs'")
        }
        (Sub::Grpc, "destinations") => {
            Some("cannot set 'destinations' when 'protocols' is 'grpc' or 'grpcs'")
        }
        _ => None,
    }
}

/// services.lua `entity_checks`: conditionals on `protocol`.
fn service_checks(obj: &Object, errors: &mut Errors) {
    let Some(protocol) = obj.get("protocol").and_then(Value::as_str) else {
        return;
    };
    // The if_match inherits the field's one_of, so an invalid protocol skips all.
    if errors.fields.contains_key("protocol") {
        return;
    }
    let conditionals: [(&[&str], bool, &str); 5] = [
        (&["tcp", "tls", "udp", "grpc", "grpcs"], true, "path"),
        (&["https", "tls"], false, "client_certificate"),
        (&["https", "tls"], false, "tls_verify"),
        (&["https", "tls"], false, "tls_verify_depth"),
        (&["https", "tls"], false, "ca_certificates"),
    ];
    for (list, one_of, then_field) in conditionals {
        if list.contains(&protocol) != one_of {
            continue;
        }
        if obj.get(then_field).is_some_and(|v| !v.is_null()) {
            errors
                .fields
                .insert(then_field.into(), json!("value must be null"));
            errors
                .entity
                .push("failed conditional validation given value of field 'protocol'".into());
        }
    }
}

fn is_nonempty(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => false,
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Array(a)) => !a.is_empty(),
        Some(Value::Object(o)) => !o.is_empty(),
        Some(_) => true,
    }
}

fn quoted_list(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("'{n}'"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// routes.lua's snis conditional and the subschema's `conditional_at_least_one_of`.
fn route_checks(obj: &Object, sub: Sub, errors: &mut Errors) {
    // Both checks validate `protocols` against its own field definition first;
    // an invalid set makes them pass silently.
    if errors.fields.contains_key("protocols") {
        return;
    }
    let protocols: Vec<&str> = obj
        .get("protocols")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if protocols.is_empty() {
        return;
    }
    let has = |p: &str| protocols.contains(&p);
    let all_in = |list: &[&str]| protocols.iter().all(|p| list.contains(p));

    let tls_family = ["grpcs", "https", "tls", "tls_passthrough"];
    if !protocols.iter().any(|p| tls_family.contains(p))
        && obj
            .get("snis")
            .and_then(Value::as_array)
            .is_some_and(|a| !a.is_empty())
    {
        errors
            .fields
            .insert("snis".into(), json!("length must be 0"));
        errors.entity.push(
            "'snis' can only be set when 'protocols' is 'grpcs', 'https', 'tls' or 'tls_passthrough'"
                .into(),
        );
    }

    let mut require = |names: &[&str], message: String| {
        if !names.iter().any(|n| is_nonempty(obj.get(*n))) {
            errors.entity.push(message);
        }
    };
    match sub {
        Sub::Http => {
            if has("https") {
                let names = ["methods", "hosts", "headers", "paths", "snis"];
                require(
                    &names,
                    format!(
                        "must set one of {} when 'protocols' is 'https'",
                        quoted_list(&names)
                    ),
                );
            } else if has("http") {
                let names = ["methods", "hosts", "headers", "paths"];
                require(
                    &names,
                    format!(
                        "must set one of {} when 'protocols' is 'http'",
                        quoted_list(&names)
                    ),
                );
            }
        }
        Sub::Grpc => {
            if has("grpcs") {
                let names = ["hosts", "headers", "paths", "snis"];
                require(
                    &names,
                    format!(
                        "must set one of {} when 'protocols' is 'grpcs'",
                        quoted_list(&names)
                    ),
                );
            } else if has("grpc") {
                let names = ["hosts", "headers", "paths"];
                require(
                    &names,
                    format!(
                        "must set one of {} when 'protocols' is 'grpc'",
                        quoted_list(&names)
                    ),
                );
            }
        }
        Sub::Stream => {
            if all_in(&["tcp", "tls", "udp"]) {
                let names = ["sources", "destinations", "snis"];
                require(
                    &names,
                    format!(
                        "must set one of {} when 'protocols' is 'tcp', 'tls' or 'udp'",
                        quoted_list(&names)
                    ),
                );
            }
            if all_in(&["tls_passthrough"]) {
                require(
                    &["snis"],
                    "must set snis when 'protocols' is 'tls_passthrough'".into(),
                );
            }
        }
    }
}

/// `Schema:validate_field` for one value; the error is a string, or an array /
/// object for element and record errors.
fn check_value(kind: Kind, path: &str, field: &Field, v: &Value) -> Result<(), Value> {
    if v.is_null() {
        return if field.required {
            Err(json!(REQUIRED))
        } else {
            Ok(())
        };
    }
    if field.ty == FieldType::Foreign && !v.is_object() {
        // Kong reads a non-table as a primary key without an `id`, never
        // "expected a foreign".
        return Err(json!({ "id": "missing primary key" }));
    }
    field.check_type(v).map_err(Value::String)?;

    match field.ty {
        FieldType::Array | FieldType::Set => {
            let items = v.as_array().map(Vec::as_slice).unwrap_or_default();
            if let Some(elements) = &field.elements {
                let mut errs = vec![Value::Null; items.len()];
                let mut bad = false;
                for (i, item) in items.iter().enumerate() {
                    // Kong marks elements required: a null element is an error.
                    let r = if item.is_null() {
                        Err(json!(REQUIRED))
                    } else {
                        check_value(kind, &format!("{path}[]"), elements, item)
                    };
                    if let Err(e) = r {
                        errs[i] = e;
                        bad = true;
                    }
                }
                if bad {
                    return Err(Value::Array(errs));
                }
            }
        }
        FieldType::Record => {
            let obj = v.as_object().cloned().unwrap_or_default();
            let mut errs = Object::new();
            for key in obj.keys() {
                if !field.fields.iter().any(|f| &f.name == key) {
                    errs.insert(key.clone(), json!("unknown field"));
                }
            }
            for sub in &field.fields {
                let value = obj.get(&sub.name).unwrap_or(&Value::Null);
                if let Err(e) = check_value(kind, &format!("{path}.{}", sub.name), sub, value) {
                    errs.insert(sub.name.clone(), e);
                }
            }
            if !errs.is_empty() {
                return Err(Value::Object(errs));
            }
        }
        FieldType::Map if path == "headers" => check_headers(v)?,
        FieldType::Foreign => {
            // validate_primary_key(value, true): only `id` matters here; other
            // keys were a by-name reference, already resolved by the caller.
            let mut errs = Object::new();
            match v.get("id") {
                None | Some(Value::Null) => {
                    errs.insert("id".into(), json!("missing primary key"));
                }
                Some(Value::String(s)) if is_uuid(s) => {}
                Some(Value::String(_)) => {
                    errs.insert("id".into(), json!("expected a valid UUID"));
                }
                Some(_) => {
                    errs.insert("id".into(), json!("expected a string"));
                }
            }
            if !errs.is_empty() {
                return Err(Value::Object(errs));
            }
        }
        _ => {}
    }

    validators(kind, path, field, v).map_err(Value::String)
}

/// The generic validators, in `Schema.validators_order`.
fn validators(kind: Kind, path: &str, field: &Field, v: &Value) -> Result<(), String> {
    let raw = &field.raw;
    if let Some(one_of) = field.one_of()
        && !one_of.contains(v)
    {
        let list: Vec<String> = one_of
            .iter()
            .map(|x| match x {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect();
        return Err(format!("expected one of: {}", list.join(", ")));
    }
    if raw.get("uuid").and_then(Value::as_bool) == Some(true)
        && v.as_str().is_some_and(|s| !is_uuid(s))
    {
        return Err("expected a valid UUID".into());
    }
    if let Some((lo, hi)) = field.between()
        && let Some(n) = v.as_i64()
        && (n < lo || n > hi)
    {
        return Err(format!("value should be between {lo} and {hi}"));
    }
    // Kong gives every string an implicit len_min of 1.
    let len_min = raw
        .get("len_min")
        .and_then(Value::as_u64)
        .or(if field.ty == FieldType::String {
            Some(1)
        } else {
            None
        });
    if let Some(min) = len_min {
        let len = match v {
            Value::String(s) => Some(s.chars().count()),
            Value::Array(a) => Some(a.len()),
            _ => None,
        };
        if let Some(len) = len
            && (len as u64) < min
        {
            return Err(format!("length must be at least {min}"));
        }
    }
    if let Some(prefix) = raw.get("starts_with").and_then(Value::as_str)
        && v.as_str().is_some_and(|s| !s.starts_with(prefix))
    {
        return Err(format!("should start with: {prefix}"));
    }
    if let Some(s) = v.as_str() {
        custom_string(kind, path, raw, s)?;
    }
    if let Some(subsets) = raw
        .get("mutually_exclusive_subsets")
        .and_then(Value::as_array)
        && let Some(items) = v.as_array()
    {
        mutually_exclusive(subsets, items)?;
    }
    Ok(())
}

/// The Lua-side validators of typedefs.lua that the schema JSON cannot carry.
fn custom_string(kind: Kind, path: &str, raw: &Value, s: &str) -> Result<(), String> {
    // typedefs.http_method: match = "^%u+$"
    if raw.get("match").and_then(Value::as_str) == Some("^%u+$")
        && !s.chars().all(|c| c.is_ascii_uppercase())
    {
        return Err(format!("invalid value: {s}"));
    }
    match (kind, path) {
        (_, "name") => validate_utf8_name(s),
        (_, "tags[]") => validate_tag(s),
        (Kind::Service, "host") => validate_host(s),
        (Kind::Service, "path") => {
            if s.contains("//") {
                Err("must not have empty segments".into())
            } else {
                Ok(())
            }
        }
        (Kind::Route, "paths[]") => {
            // typedefs.router_path: match_none before match_any.
            if s.contains("//") {
                Err("must not have empty segments".into())
            } else if !(s.starts_with('/') || s.starts_with("~/")) {
                Err("should start with: / (fixed path) or ~/ (regex path)".into())
            } else {
                Ok(())
            }
        }
        _ => Ok(()),
    }
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
        .all(|c| !c.is_ascii() || (c.is_ascii_graphic() || c == ' ') && c != ',' && c != '/');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid tag '{s}': expected printable ascii (except `,` and `/`) or valid utf-8 sequences"
        ))
    }
}

/// typedefs.lua `validate_host` (simplified): a hostname or IP, without a port.
fn validate_host(s: &str) -> Result<(), String> {
    let bare = s.strip_prefix('[').and_then(|r| r.strip_suffix(']'));
    if let Some(v6) = bare {
        return if v6.parse::<std::net::Ipv6Addr>().is_ok() {
            Ok(())
        } else {
            Err(format!("invalid value: {s}"))
        };
    }
    if s.parse::<std::net::Ipv6Addr>().is_ok() {
        return Ok(());
    }
    if let Some((h, p)) = s.rsplit_once(':') {
        if !h.is_empty() && !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()) {
            return Err("must not have a port".into());
        }
        return Err(format!("invalid value: {s}"));
    }
    let ok = s
        .chars()
        .all(|c| !c.is_ascii() || c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
    if ok {
        Ok(())
    } else {
        Err(format!("invalid value: {s}"))
    }
}

/// routes.lua `headers`: keys are header names other than `host`; values are
/// arrays of non-empty strings. Kong reports the first failure only.
fn check_headers(v: &Value) -> Result<(), Value> {
    let Some(map) = v.as_object() else {
        return Err(json!("expected a map"));
    };
    for (name, values) in map {
        if name.eq_ignore_ascii_case("host") {
            return Err(json!(
                "cannot contain 'host' header, which must be specified in the 'hosts' attribute"
            ));
        }
        if name.is_empty() {
            return Err(json!("length must be at least 1"));
        }
        let Some(items) = values.as_array() else {
            return Err(if values.is_null() {
                json!(REQUIRED)
            } else {
                json!("expected an array")
            });
        };
        let mut errs = vec![Value::Null; items.len()];
        let mut bad = false;
        for (i, item) in items.iter().enumerate() {
            let e = match item {
                Value::String(s) if s.is_empty() => Some("length must be at least 1"),
                Value::String(_) => None,
                Value::Null => Some(REQUIRED),
                _ => Some("expected a string"),
            };
            if let Some(e) = e {
                errs[i] = json!(e);
                bad = true;
            }
        }
        if bad {
            return Err(Value::Array(errs));
        }
    }
    Ok(())
}

/// `mutually_exclusive_subsets`: the protocols may come from one group only.
fn mutually_exclusive(subsets: &[Value], items: &[Value]) -> Result<(), String> {
    let mut member_of: Vec<&Vec<Value>> = Vec::new();
    for item in items {
        let group = subsets
            .iter()
            .filter_map(Value::as_array)
            .find(|g| g.contains(item));
        if let Some(g) = group
            && !member_of.iter().any(|m| std::ptr::eq(*m, g))
        {
            member_of.push(g);
        }
    }
    if member_of.len() <= 1 {
        return Ok(());
    }
    let groups: Vec<String> = member_of
        .iter()
        .map(|g| {
            let names: Vec<&str> = g.iter().filter_map(Value::as_str).collect();
            format!("({})", quoted_list(&names))
        })
        .collect();
    Err(format!(
        "these sets are mutually exclusive: {}",
        groups.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(v: Value) -> Object {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn message_lists_entity_errors_first_then_sorted_fields() {
        let mut e = Errors::default();
        e.entity
            .push("failed conditional validation given value of field 'protocol'".into());
        e.fields.insert("port".into(), json!("expected an integer"));
        e.fields.insert("host".into(), json!(REQUIRED));
        e.fields.insert("protocols".into(), json!([null, "bad"]));
        assert_eq!(
            e.message(),
            "4 schema violations (failed conditional validation given value of field 'protocol'; \
             host: required field missing; port: expected an integer; protocols.2: bad)"
        );
    }

    #[test]
    fn route_mutually_exclusive_protocols() {
        // spec/01-unit/01-db/01-schema/06-routes_spec.lua
        let mut r = obj(json!({"protocols": ["tcp", "tls_passthrough"], "snis": ["x"]}));
        fill_defaults(Kind::Route, &mut r);
        let e = validate(Kind::Route, &r).unwrap_err();
        assert_eq!(
            e.fields["protocols"],
            "these sets are mutually exclusive: ('tcp', 'tls', 'udp'), ('tls_passthrough')"
        );
    }

    #[test]
    fn grpc_routes_default_strip_path_to_false() {
        let mut r = obj(json!({"protocols": ["grpc"], "paths": ["/a"]}));
        fill_defaults(Kind::Route, &mut r);
        assert_eq!(r["strip_path"], false);
        assert!(validate(Kind::Route, &r).is_ok());
    }
}
