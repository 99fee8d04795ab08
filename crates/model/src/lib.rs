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
/// Kong stores as null (unset) are left out: readers take an absent field as null.
///
/// Each entity is kept as compact JSON text (keys sorted, as `Object` keeps them) and
/// decoded when its kind is asked for ([`LiveState::of`]): a gateway of 70,000
/// entities takes about 25 MB as text and seven times that as `Object`s, whose every
/// map is a B-tree node of several hundred bytes. Readers (the planner, dump) go one
/// kind at a time, so only one kind is ever decoded at once.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LiveState {
    entities: std::collections::BTreeMap<Kind, Texts>,
}

/// Entities as JSON texts laid end to end in one buffer per kind: no allocation per
/// entity, and nothing small and long-lived scattered among the pages decoded while
/// reading (which would keep their memory from being reused).
#[derive(Debug, Clone, Default, PartialEq)]
struct Texts {
    buf: String,
    /// Where each entity's text ends in `buf`.
    ends: Vec<usize>,
}

impl Texts {
    fn push(&mut self, mut object: Object) {
        drop_nulls(&mut object);
        // Serializing a map of strings to JSON values cannot fail.
        self.buf
            .push_str(&serde_json::to_string(&object).unwrap_or_default());
        self.ends.push(self.buf.len());
    }

    fn append(&mut self, other: Texts) {
        let base = self.buf.len();
        self.buf.push_str(&other.buf);
        self.ends.extend(other.ends.into_iter().map(|e| e + base));
    }

    fn iter(&self) -> impl Iterator<Item = &str> {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        starts
            .zip(&self.ends)
            .map(|(start, &end)| &self.buf[start..end])
    }
}

impl LiveState {
    /// A live state of these entities.
    pub fn from_entities(entities: impl IntoIterator<Item = (Kind, Vec<Object>)>) -> Self {
        let mut state = LiveState::default();
        for (kind, objects) in entities {
            state.set(kind, objects);
        }
        state
    }

    /// Replaces the entities of `kind` (an empty list still records the kind as read).
    pub fn set(&mut self, kind: Kind, objects: Vec<Object>) {
        let mut texts = Texts::default();
        for o in objects {
            texts.push(o);
        }
        self.entities.insert(kind, texts);
    }

    /// Adds one entity of `kind`.
    pub fn push(&mut self, kind: Kind, object: Object) {
        self.entities.entry(kind).or_default().push(object);
    }

    /// Adds entities of `kind` (a page as it arrives: only one page is ever held
    /// decoded).
    pub fn extend(&mut self, kind: Kind, objects: impl IntoIterator<Item = Object>) {
        let texts = self.entities.entry(kind).or_default();
        for o in objects {
            texts.push(o);
        }
    }

    /// Moves the entities of `other` in, after those of the same kind here.
    pub fn merge(&mut self, other: LiveState) {
        for (kind, texts) in other.entities {
            self.entities.entry(kind).or_default().append(texts);
        }
    }

    /// The ids of the entities of `kind`, without decoding the rest of them.
    pub fn ids(&self, kind: Kind) -> Vec<String> {
        #[derive(serde::Deserialize)]
        struct Id {
            id: Option<String>,
        }
        self.project(kind, |i: Id| i.id)
    }

    /// The `name` of each entity of `kind` that has one (a plugin's), without decoding
    /// the rest of them.
    pub fn names(&self, kind: Kind) -> Vec<String> {
        #[derive(serde::Deserialize)]
        struct Name {
            name: Option<String>,
        }
        let names = self.project(kind, |n: Name| n.name);
        names.into_iter().filter(|n| !n.is_empty()).collect()
    }

    /// One string read from each entity of `kind` through `T` (serde skips the other
    /// fields); empty where there is none.
    fn project<T: serde::de::DeserializeOwned>(
        &self,
        kind: Kind,
        get: impl Fn(T) -> Option<String>,
    ) -> Vec<String> {
        self.texts(kind)
            .map(|t| {
                serde_json::from_str::<T>(t)
                    .ok()
                    .and_then(&get)
                    .unwrap_or_default()
            })
            .collect()
    }

    /// Records `kind` as read, with no entities if it had none yet.
    pub fn touch(&mut self, kind: Kind) {
        self.entities.entry(kind).or_default();
    }

    /// Changes the entities of `kind` (decoded, changed by `f`, kept again); records
    /// the kind as read.
    pub fn edit<R>(&mut self, kind: Kind, f: impl FnOnce(&mut Vec<Object>) -> R) -> R {
        let mut objects = self.of(kind);
        let result = f(&mut objects);
        self.set(kind, objects);
        result
    }

    /// Forgets `kind` (read only to reach another kind, as upstreams for targets).
    pub fn remove(&mut self, kind: Kind) {
        self.entities.remove(&kind);
    }

    /// The live entities of `kind`, decoded (empty when none were read).
    pub fn of(&self, kind: Kind) -> Vec<Object> {
        self.decoded(kind).collect()
    }

    /// The live entities of `kind`, each decoded as it is reached: a reader that needs
    /// one at a time (dump) holds one, not the kind.
    pub fn decoded(&self, kind: Kind) -> impl Iterator<Item = Object> + '_ {
        self.texts(kind).map(decode)
    }

    /// The entities of `kind` as kept: compact JSON, keys sorted at every depth.
    pub fn texts(&self, kind: Kind) -> impl Iterator<Item = &str> {
        self.entities.get(&kind).into_iter().flat_map(Texts::iter)
    }

    /// The kinds read, in [`Kind`] order.
    pub fn kinds(&self) -> impl Iterator<Item = Kind> + '_ {
        self.entities.keys().copied()
    }

    /// How many entities of `kind` there are.
    pub fn count(&self, kind: Kind) -> usize {
        self.entities.get(&kind).map_or(0, |t| t.ends.len())
    }

    /// How many entities there are in all.
    pub fn len(&self) -> usize {
        self.entities.values().map(|t| t.ends.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn decode(text: &str) -> Object {
    // The text is what `Texts::push` wrote from an `Object` that was parsed (so nested
    // no deeper than serde_json's limit): it always reads back.
    serde_json::from_str(text).unwrap_or_default()
}

/// Leaves out fields that are null, at any depth of records: Kong answers with every
/// field of the schema, most of them unset.
fn drop_nulls(object: &mut Object) {
    object.retain(|_, v| match v {
        Value::Null => false,
        Value::Object(o) => {
            drop_nulls(o);
            true
        }
        _ => true,
    });
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

    fn obj(v: Value) -> Object {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn live_state_keeps_entities_as_text_without_null_fields() {
        let mut live = LiveState::default();
        live.extend(
            Kind::Service,
            [
                obj(serde_json::json!({"id": "b", "name": "two", "tags": null,
                    "client_certificate": null, "port": 80})),
                obj(serde_json::json!({"id": "a", "name": "one",
                    "config": {"x": null, "y": [null, 1]}})),
            ],
        );
        let mut other = LiveState::default();
        other.push(Kind::Service, obj(serde_json::json!({"id": "c"})));
        other.touch(Kind::Route);
        live.merge(other);

        let services = live.of(Kind::Service);
        assert_eq!(live.count(Kind::Service), 3);
        assert_eq!(live.len(), 3);
        assert_eq!(
            services[0],
            obj(serde_json::json!({"id": "b", "name": "two", "port": 80})),
            "null fields are left out"
        );
        assert_eq!(
            services[1]["config"],
            serde_json::json!({"y": [null, 1]}),
            "nulls in records go, nulls in lists stay"
        );
        assert_eq!(live.ids(Kind::Service), ["b", "a", "c"]);
        assert_eq!(live.names(Kind::Service), ["two", "one"], "c has no name");
        assert_eq!(
            live.texts(Kind::Service).next(),
            Some(r#"{"id":"b","name":"two","port":80}"#),
            "compact JSON, keys sorted"
        );
        assert_eq!(
            live.kinds().collect::<Vec<_>>(),
            [Kind::Service, Kind::Route]
        );
        assert!(live.of(Kind::Route).is_empty());

        live.edit(Kind::Service, |list| list.retain(|s| s["id"] != "a"));
        assert_eq!(live.ids(Kind::Service), ["b", "c"]);
    }

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
