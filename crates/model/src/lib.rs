//! The one model of Kong entities that every carl crate shares.
//!
//! An entity is a [`Kind`] plus a JSON object (DESIGN.md decision 2). What differs
//! between kinds is metadata in [`Kind`]'s methods: Admin API path, declarative key,
//! endpoint key, foreign keys, set-typed fields. Field-level knowledge (types, defaults)
//! comes from Kong's own schemas ([`schema`]), never from hand-written structs, so fields
//! a newer Kong adds flow through untouched.

mod kind;
pub mod kong_rules;
pub mod legacy;
pub mod lua_pattern;
pub mod schema;
pub mod service_url;
pub mod validate;

use serde_json::{Map, Value};
use uuid::Uuid;

pub use kind::Kind;
pub use schema::{Field, FieldType, Schema};

/// A JSON object: the fields of one entity.
pub type Object = Map<String, Value>;

/// Completes `obj` as Kong completes an insert of `kind`: the schema's defaults, then
/// what a subschema changes. Routes pick a subschema by their first protocol
/// (`kong/db/schema/entities/routes_subschemas.lua`): grpc and grpcs routes default
/// `strip_path` to false, not true.
pub fn fill_defaults(kind: Kind, schema: &Schema, obj: &mut Object) {
    if let Some(v) = subschema_default(kind, "strip_path", obj)
        && obj.get("strip_path").is_none_or(Value::is_null)
    {
        obj.insert("strip_path".into(), v);
    }
    schema.fill_defaults(obj);
}

/// The default a subschema gives `field` of `obj`, where it differs from the entity
/// schema's: see [`fill_defaults`].
pub fn subschema_default(kind: Kind, field: &str, obj: &Object) -> Option<Value> {
    if kind != Kind::Route || field != "strip_path" {
        return None;
    }
    let protocols = obj.get("protocols").and_then(Value::as_array);
    let first = protocols.and_then(|p| p.first()).and_then(Value::as_str);
    matches!(first, Some("grpc" | "grpcs")).then_some(Value::Bool(false))
}

/// True for a field name that by convention holds a secret (`password`,
/// `client_secret`, `api_key`, `access_token`...): used for plugin configurations and
/// other fields no schema describes, so an unknown plugin's secrets are masked too.
pub fn is_secret_name(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    [
        "password",
        "passwd",
        "secret",
        "token",
        "api_key",
        "apikey",
        "private_key",
        "credential",
        "authorization",
    ]
    .iter()
    .any(|s| name.contains(s))
}

/// What the gateway has, by kind, as the Admin API returned it, except that fields
/// Kong stores as null (unset) may be absent: readers take an absent field as null.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LiveState {
    pub entities: std::collections::BTreeMap<Kind, Vec<Object>>,
}

impl LiveState {
    /// The live entities of `kind` (empty when none were read).
    pub fn of(&self, kind: Kind) -> &[Object] {
        self.entities.get(&kind).map_or(&[], Vec::as_slice)
    }

    /// How many entities there are in all.
    pub fn len(&self) -> usize {
        self.entities.values().map(Vec::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Namespace of carl's deterministic ids (DESIGN.md decision 5). Never change it:
/// ids derived from it are stored in every gateway carl has written to.
pub const ID_NAMESPACE: Uuid = Uuid::from_u128(0x6361_726c_2d6b_6f6e_672d_6964_732d_7635);

/// The id carl gives a new entity without one: a UUIDv5 of its kind and identity, so
/// a retried or re-run create writes the same entity instead of a duplicate.
pub fn deterministic_id(kind: Kind, identity: &str) -> Uuid {
    let name = format!("{}\u{0}{}", kind.path(), identity);
    Uuid::new_v5(&ID_NAMESPACE, name.as_bytes())
}

/// True when `s` is a UUID in the form Kong treats as an id (8-4-4-4-12 hex digits,
/// `kong/db/schema/init.lua` `uuid_regex`); 32 bare hex digits are not one.
pub fn is_uuid(s: &str) -> bool {
    s.len() == 36 && Uuid::try_parse(s).is_ok()
}

/// Kong's rule for names (`typedefs.utf8_name`): ASCII alphanumerics and `.-_~`,
/// plus any non-ASCII character.
pub fn is_valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars().all(|c| {
            !c.is_ascii() || c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '~')
        })
}

/// Sets `path` in `obj`, a dotted path into records (`config.minute`), creating the
/// records on the way: how a change to one field of a record is written.
pub fn set_path(obj: &mut Object, path: &str, value: Value) {
    let (head, rest) = match path.split_once('.') {
        Some((head, rest)) => (head, Some(rest)),
        None => (path, None),
    };
    let Some(rest) = rest else {
        obj.insert(head.to_owned(), value);
        return;
    };
    let slot = obj
        .entry(head.to_owned())
        .or_insert_with(|| Value::Object(Object::new()));
    if !slot.is_object() {
        *slot = Value::Object(Object::new());
    }
    if let Value::Object(inner) = slot {
        set_path(inner, rest, value);
    }
}

/// The id inside a foreign-key value: `{"id": "..."}` → `"..."`.
pub fn foreign_id(value: &Value) -> Option<&str> {
    value.get("id").and_then(Value::as_str)
}

#[cfg(test)]
mod tests {
    #[test]
    fn secret_names_are_recognised_and_ordinary_ones_are_not() {
        for name in [
            "password",
            "redis_password",
            "client_secret",
            "api_key",
            "access_token",
            "private_key",
        ] {
            assert!(super::is_secret_name(name), "{name}");
        }
        for name in [
            "name",
            "host",
            "minute",
            "key_names",
            "username",
            "public_key",
        ] {
            assert!(!super::is_secret_name(name), "{name}");
        }
    }

    use super::*;

    #[test]
    fn deterministic_ids_depend_on_kind_and_identity_only() {
        let a = deterministic_id(Kind::Service, "orders");
        assert_eq!(a, deterministic_id(Kind::Service, "orders"));
        assert_ne!(a, deterministic_id(Kind::Route, "orders"));
        assert_ne!(a, deterministic_id(Kind::Service, "orders2"));
        assert_eq!(a.get_version_num(), 5);
    }

    #[test]
    fn grpc_routes_default_strip_path_to_false() {
        let mut grpc = serde_json::json!({"protocols": ["grpcs", "grpc"], "paths": ["/"]})
            .as_object()
            .unwrap()
            .clone();
        fill_defaults(Kind::Route, Kind::Route.schema(), &mut grpc);
        assert_eq!(grpc["strip_path"], false);
        let mut http = serde_json::json!({"paths": ["/"]})
            .as_object()
            .unwrap()
            .clone();
        fill_defaults(Kind::Route, Kind::Route.schema(), &mut http);
        assert_eq!(http["strip_path"], true);
    }

    #[test]
    fn names_follow_kongs_utf8_name_rule() {
        assert!(is_valid_name("orders-v2.internal_~"));
        assert!(is_valid_name("円"));
        assert!(!is_valid_name("a b"));
        assert!(!is_valid_name("a/b"));
        assert!(!is_valid_name(""));
    }

    #[test]
    fn kinds_are_listed_parents_first() {
        for (i, kind) in Kind::ALL.iter().enumerate() {
            for (_, parent) in kind.foreign_keys() {
                let p = Kind::ALL.iter().position(|k| k == parent).unwrap();
                assert!(p < i, "{kind} references {parent}, listed after it");
            }
        }
    }
}
