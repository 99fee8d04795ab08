//! Field-by-field comparison of a desired entity with its live counterpart.
//!
//! Only fields the schema knows are compared, so values Kong generates (ids,
//! timestamps) and fields of a newer Kong the file cannot mention never show as drift.
//! Set-typed fields compare as sets; an empty list and null mean the same thing to Kong.

use carl_model::{Field, FieldType, Kind, Object, Schema};
use serde_json::Value;

use crate::Change;

/// What a comparison needs beyond the two entities.
#[derive(Debug, Clone, Copy, Default)]
pub struct Context {
    /// The desired basic-auth password is already Kong's hash (`_transform: false`).
    pub hashed_passwords: bool,
}

/// Fields Kong computes from others and the file never writes: the certificate's
/// `snis` (a view of the SNI entities), a CA certificate's `cert_digest`.
fn computed(kind: Kind, field: &str) -> bool {
    matches!(
        (kind, field),
        (Kind::Certificate, "snis") | (Kind::CaCertificate, "cert_digest")
    )
}

/// The fields of `desired` that differ from `live`, in schema order. A field the file
/// leaves out (or sets to null) means Kong's default, else null, as if `desired` had
/// been completed with [`carl_model::fill_defaults`]; completing as it compares saves
/// copying every entity. Records (a plugin's `config`, an upstream's `healthchecks`)
/// are compared field by field and reported as paths (`config.minute`), which is also
/// how Kong's PATCH merges them.
pub fn changes(
    kind: Kind,
    schema: &Schema,
    desired: &Object,
    live: &Object,
    cx: Context,
) -> Vec<Change> {
    let mut out = Vec::new();
    for field in &schema.fields {
        let given = desired.get(&field.name).filter(|v| !v.is_null());
        // Generated values (ids, timestamps, keys Kong made up) are compared only when
        // the file sets them.
        if (field.auto || computed(kind, &field.name)) && given.is_none() {
            continue;
        }
        if kind.generated_fields().contains(&field.name.as_str()) {
            continue;
        }
        let old = live.get(&field.name).unwrap_or(&Value::Null);
        let subschema;
        let given = match given {
            None => {
                subschema = carl_model::subschema_default(kind, &field.name, desired);
                subschema.as_ref()
            }
            some => some,
        };
        if kind == Kind::BasicAuth && field.name == "password" {
            let new = given.unwrap_or(&Value::Null);
            if !password_matches(new, old, desired, cx) {
                out.push(change(kind, &field.name, old, new));
            }
            continue;
        }
        if kind == Kind::Target && field.name == "target" {
            let new = given.unwrap_or(&Value::Null);
            let norm = |v: &Value| v.as_str().map(crate::identity::normalize_target);
            if norm(new) != norm(old) {
                out.push(change(kind, &field.name, old, new));
            }
            continue;
        }
        record_changes(kind, field, &field.name, given, old, &mut out);
    }
    out
}

/// Compares the desired `given` (absent or null: the field's default) with `old`.
fn record_changes(
    kind: Kind,
    field: &Field,
    path: &str,
    given: Option<&Value>,
    old: &Value,
    out: &mut Vec<Change>,
) {
    let new = match given.filter(|v| !v.is_null()) {
        Some(v) => v,
        None => field.default.as_ref().unwrap_or(&Value::Null),
    };
    if field.ty == FieldType::Record
        && let Value::Object(o) = old
    {
        let empty = Object::new();
        let n = match new {
            Value::Object(n) => Some(n),
            Value::Null if field.required => Some(&empty),
            _ => None,
        };
        if let Some(n) = n {
            for sub in &field.fields {
                let given = n.get(&sub.name).filter(|v| !v.is_null());
                if sub.auto && given.is_none() {
                    continue;
                }
                let ov = o.get(&sub.name).unwrap_or(&Value::Null);
                record_changes(kind, sub, &format!("{path}.{}", sub.name), given, ov, out);
            }
            // Keys the schema does not know (an abstract record, a newer Kong) as values.
            for (k, nv) in n {
                if field.fields.iter().all(|f| &f.name != k) {
                    let ov = o.get(k).unwrap_or(&Value::Null);
                    if !equal(None, nv, ov) {
                        out.push(change(kind, &format!("{path}.{k}"), ov, nv));
                    }
                }
            }
            return;
        }
    }
    if field.ty == FieldType::Record {
        // Compared whole (the live record is missing): completed as Kong would store it.
        let complete = match new {
            Value::Object(n) => Some(n.clone()),
            Value::Null if field.required => Some(Object::new()),
            _ => None,
        };
        if let Some(mut complete) = complete {
            carl_model::schema::fill_record(&field.fields, &mut complete);
            let complete = Value::Object(complete);
            if !equal(Some(field), &complete, old) {
                out.push(change(kind, path, old, &complete));
            }
            return;
        }
    }
    if !equal(Some(field), new, old) {
        out.push(change(kind, path, old, new));
    }
}

fn change(kind: Kind, path: &str, old: &Value, new: &Value) -> Change {
    Change {
        field: path.to_owned(),
        old: old.clone(),
        new: new.clone(),
        sensitive: is_sensitive(kind, path),
    }
}

/// Whether the value at `path` (`password`, `config.redis.password`) is a secret: a
/// credential's key or secret, a private key, or a secret-looking name anywhere
/// (DESIGN.md decision 9).
pub fn is_sensitive(kind: Kind, path: &str) -> bool {
    let top = path.split('.').next().unwrap_or(path);
    let last = path.rsplit('.').next().unwrap_or(path);
    kind.secret_fields().contains(&top)
        || kind.secret_fields().contains(&last)
        || kind.schema().field(top).is_some_and(Field::is_encrypted)
        || (path.contains('.') && carl_model::is_secret_name(last))
}

/// Kong stores a basic-auth password as `sha1(password .. consumer_id)` in hex
/// (`kong/plugins/basic-auth/crypto.lua`), so the file's password is hashed the same
/// way before comparing; with `_transform: false` the file holds the hash already.
fn password_matches(new: &Value, old: &Value, desired: &Object, cx: Context) -> bool {
    let (Some(new), Some(old)) = (new.as_str(), old.as_str()) else {
        return new == old;
    };
    if cx.hashed_passwords || new == old {
        return new == old;
    }
    let consumer = desired
        .get("consumer")
        .and_then(carl_model::foreign_id)
        .unwrap_or_default();
    old.eq_ignore_ascii_case(&basic_auth_hash(new, consumer))
}

/// Kong's basic-auth password hash.
pub fn basic_auth_hash(password: &str, consumer_id: &str) -> String {
    use sha1::{Digest, Sha1};
    let digest = Sha1::digest(format!("{password}{consumer_id}").as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Equality as Kong means it for a value of `field`'s type.
pub fn equal(field: Option<&Field>, a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Null, Value::Null) => true,
        // Kong treats an empty collection and null alike (it renders both, by version).
        (Value::Null, Value::Array(v)) | (Value::Array(v), Value::Null) => v.is_empty(),
        (Value::Null, Value::Object(m)) | (Value::Object(m), Value::Null) => {
            m.is_empty() && field.is_some_and(|f| f.ty == FieldType::Map)
        }
        (Value::Number(x), Value::Number(y)) => x == y || x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            let elements = field.and_then(|f| f.elements.as_deref());
            if field.is_some_and(Field::is_set) {
                // Sets: same members, ignoring order and duplicates.
                x.iter().all(|i| y.iter().any(|j| equal(elements, i, j)))
                    && y.iter().all(|j| x.iter().any(|i| equal(elements, i, j)))
            } else {
                x.len() == y.len() && x.iter().zip(y).all(|(i, j)| equal(elements, i, j))
            }
        }
        (Value::Object(x), Value::Object(y)) => {
            let sub = |k: &str| field.and_then(|f| f.fields.iter().find(|s| s.name == k));
            x.keys().chain(y.keys()).all(|k| {
                equal(
                    sub(k),
                    x.get(k).unwrap_or(&Value::Null),
                    y.get(k).unwrap_or(&Value::Null),
                )
            })
        }
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use carl_model::Kind;
    use serde_json::json;

    fn obj(v: Value) -> Object {
        v.as_object().unwrap().clone()
    }

    /// `v` as Kong returns it: completed with the schema's defaults.
    fn stored(kind: Kind, v: Value) -> Object {
        let mut o = obj(v);
        carl_model::fill_defaults(kind, kind.schema(), &mut o);
        o
    }

    #[test]
    fn sets_compare_as_sets_and_arrays_in_order() {
        let schema = Kind::Route.schema();
        let desired = obj(json!({"protocols": ["https", "http"], "paths": ["/a", "/b"]}));
        let live = stored(
            Kind::Route,
            json!({"protocols": ["http", "https"], "paths": ["/b", "/a"]}),
        );
        let c = changes(Kind::Route, schema, &desired, &live, Context::default());
        assert_eq!(c.len(), 1, "{c:?}");
        assert_eq!(
            c[0].field, "paths",
            "paths is an array: order matters to Kong's router"
        );
    }

    #[test]
    fn null_and_empty_collections_are_equal() {
        let schema = Kind::Route.schema();
        let desired = obj(json!({"hosts": [], "headers": null, "paths": ["/"]}));
        let live = stored(
            Kind::Route,
            json!({"hosts": null, "headers": {}, "paths": ["/"]}),
        );
        assert!(changes(Kind::Route, schema, &desired, &live, Context::default()).is_empty());
    }

    #[test]
    fn generated_and_unknown_fields_are_not_drift() {
        let schema = Kind::Service.schema();
        let desired = obj(json!({"host": "h", "port": 80}));
        let mut live = stored(Kind::Service, json!({"host": "h", "port": 80}));
        live.extend(obj(
            json!({"id": "x", "created_at": 1, "updated_at": 2, "new_field": 1}),
        ));
        assert!(changes(Kind::Service, schema, &desired, &live, Context::default()).is_empty());
    }

    #[test]
    fn a_field_left_out_means_kongs_default() {
        let schema = Kind::Service.schema();
        let desired = obj(json!({"host": "h"}));
        let live = stored(Kind::Service, json!({"host": "h", "retries": 9}));
        let c = changes(Kind::Service, schema, &desired, &live, Context::default());
        assert_eq!(
            c.iter()
                .map(|c| (c.field.as_str(), &c.old, &c.new))
                .collect::<Vec<_>>(),
            [("retries", &json!(9), &json!(5))],
            "retries was changed out of band; the file means Kong's default 5"
        );
        // Likewise inside a record: a plugin's config defaults.
        let plugin = carl_model::schema::plugin("rate-limiting").unwrap();
        let schema = Kind::Plugin.schema().with_subschema(plugin);
        let desired = obj(json!({"name": "rate-limiting", "config": {"minute": 10}}));
        let mut live = obj(json!({"name": "rate-limiting", "config": {"minute": 10}}));
        carl_model::fill_defaults(Kind::Plugin, &schema, &mut live);
        assert!(changes(Kind::Plugin, &schema, &desired, &live, Context::default()).is_empty());
        live["config"]["policy"] = json!("redis");
        let c = changes(Kind::Plugin, &schema, &desired, &live, Context::default());
        assert_eq!(c.len(), 1, "{c:?}");
        assert_eq!(
            (c[0].field.as_str(), &c[0].old, &c[0].new),
            ("config.policy", &json!("redis"), &json!("local"))
        );
    }

    #[test]
    fn grpc_routes_default_strip_path_to_false() {
        let schema = Kind::Route.schema();
        let desired = obj(json!({"protocols": ["grpc"], "paths": ["/"]}));
        let live = stored(Kind::Route, json!({"protocols": ["grpc"], "paths": ["/"]}));
        assert_eq!(live["strip_path"], json!(false));
        assert!(changes(Kind::Route, schema, &desired, &live, Context::default()).is_empty());
    }

    #[test]
    fn changed_fields_carry_old_and_new() {
        let schema = Kind::Service.schema();
        let c = changes(
            Kind::Service,
            schema,
            &obj(json!({"host": "h", "port": 8080})),
            &stored(Kind::Service, json!({"host": "h", "port": 80})),
            Context::default(),
        );
        assert_eq!(
            c,
            [Change {
                field: "port".into(),
                old: json!(80),
                new: json!(8080),
                sensitive: false,
            }]
        );
    }
}
