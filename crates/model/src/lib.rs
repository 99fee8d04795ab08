//! The one model of Kong entities that every carl crate shares.
//!
//! An entity is a [`Kind`] plus a JSON object (DESIGN.md decision 2). What differs
//! between kinds is metadata in [`Kind`]'s methods: Admin API path, declarative key,
//! endpoint key, foreign keys, set-typed fields. Field-level knowledge (types, defaults)
//! comes from Kong's own schemas ([`schema`]), never from hand-written structs, so fields
//! a newer Kong adds flow through untouched.

pub mod lua_pattern;
pub mod schema;
pub mod service_url;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

pub use schema::{Field, FieldType, Schema};

/// A JSON object: the fields of one entity.
pub type Object = Map<String, Value>;

/// The entity kinds carl knows, in dependency order: a kind only references kinds
/// before it, so creating in this order and deleting in reverse never breaks a
/// foreign key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Service,
    Route,
}

impl Kind {
    /// Every kind, parents first.
    pub const ALL: &'static [Kind] = &[Kind::Service, Kind::Route];

    /// The Admin API collection path segment: `services` in `/services/{id}`.
    pub fn path(self) -> &'static str {
        match self {
            Kind::Service => "services",
            Kind::Route => "routes",
        }
    }

    /// The key of this kind's array in a declarative file (Kong's DAO name).
    pub fn decl_key(self) -> &'static str {
        self.path()
    }

    /// The singular noun used in messages and plan output.
    pub fn singular(self) -> &'static str {
        match self {
            Kind::Service => "service",
            Kind::Route => "route",
        }
    }

    /// The field Kong accepts in place of the id in `/{path}/{key}`.
    pub fn endpoint_key(self) -> &'static str {
        match self {
            Kind::Service | Kind::Route => "name",
        }
    }

    /// Foreign-key fields of this kind and the kind each references.
    pub fn foreign_keys(self) -> &'static [(&'static str, Kind)] {
        match self {
            Kind::Service => &[],
            Kind::Route => &[("service", Kind::Service)],
        }
    }

    /// Fields that carl never diffs: Kong generates them.
    pub fn generated_fields(self) -> &'static [&'static str] {
        &["id", "created_at", "updated_at"]
    }

    /// Kong's schema for this kind, from the built-in snapshot.
    pub fn schema(self) -> &'static Schema {
        schema::builtin(self)
    }

    /// The kind whose Admin API path or declarative key is `s`.
    pub fn from_path(s: &str) -> Option<Kind> {
        Kind::ALL.iter().copied().find(|k| k.path() == s)
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.singular())
    }
}

/// Completes `obj` as Kong completes an insert of `kind`: the schema's defaults, then
/// what a subschema changes. Routes pick a subschema by their first protocol
/// (`kong/db/schema/entities/routes_subschemas.lua`): grpc and grpcs routes default
/// `strip_path` to false, not true.
pub fn fill_defaults(kind: Kind, schema: &Schema, obj: &mut Object) {
    if kind == Kind::Route && obj.get("strip_path").is_none_or(Value::is_null) {
        let protocols = obj.get("protocols").and_then(Value::as_array);
        let first = protocols.and_then(|p| p.first()).and_then(Value::as_str);
        if matches!(first, Some("grpc" | "grpcs")) {
            obj.insert("strip_path".into(), Value::Bool(false));
        }
    }
    schema.fill_defaults(obj);
}

/// What the gateway has, by kind, as the Admin API returned it.
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

/// True when `s` is a UUID in the form Kong treats as an id in a path.
pub fn is_uuid(s: &str) -> bool {
    Uuid::try_parse(s).is_ok()
}

/// Kong's rule for names (`typedefs.utf8_name`): ASCII alphanumerics and `.-_~`,
/// plus any non-ASCII character.
pub fn is_valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars().all(|c| {
            !c.is_ascii() || c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '~')
        })
}

/// The id inside a foreign-key value: `{"id": "..."}` → `"..."`.
pub fn foreign_id(value: &Value) -> Option<&str> {
    value.get("id").and_then(Value::as_str)
}

#[cfg(test)]
mod tests {
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
