//! In-memory entity tables, one per kind: a BTreeMap by id (Kong lists in id order),
//! an index per unique field and for the cache key, and a reverse index of foreign keys
//! for nested lists, restrictions and cascades. Every operation is O(log n).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use carl_model::{Kind, Object, foreign_id};
use serde_json::Value;

#[derive(Debug, Default)]
pub struct Table {
    pub by_id: BTreeMap<String, Object>,
    /// field → value (as canonical JSON text) → id.
    unique: HashMap<&'static str, HashMap<String, String>>,
}

impl Table {
    pub fn get(&self, id: &str) -> Option<&Object> {
        self.by_id.get(id)
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// The id of the entity whose unique `field` equals `value`.
    pub fn id_by(&self, field: &str, value: &Value) -> Option<&str> {
        self.unique
            .get(field)?
            .get(&value.to_string())
            .map(String::as_str)
    }
}

/// A referencing entity: (kind, id).
pub type Ref = (Kind, String);

#[derive(Debug, Default)]
pub struct Store {
    tables: HashMap<Kind, Table>,
    /// (referenced kind, id) → entities whose foreign keys point at it.
    refs: HashMap<Ref, BTreeSet<Ref>>,
}

/// The fields Kong keeps unique for `kind`: the `unique` ones in its schema (every
/// endpoint key but the target's, which is unique per upstream through the cache key).
pub fn unique_fields(kind: Kind) -> Vec<&'static str> {
    kind.schema()
        .fields
        .iter()
        .filter(|f| f.raw.get("unique").and_then(Value::as_bool) == Some(true))
        .filter_map(|f| static_name(kind, &f.name))
        .collect()
}

/// Schema field names live in a `'static` schema; find the same `&'static str`.
fn static_name(kind: Kind, name: &str) -> Option<&'static str> {
    kind.schema()
        .fields
        .iter()
        .find(|f| f.name == name)
        .map(|f| f.name.as_str())
}

/// The cache-key value of `obj` as one string, if the kind has a cache key.
pub fn cache_key_of(kind: Kind, obj: &Object) -> Option<String> {
    let fields = kind.cache_key();
    if fields.is_empty() {
        return None;
    }
    let parts: Vec<String> = fields
        .iter()
        .map(|f| match obj.get(*f) {
            Some(Value::Object(o)) => o.get("id").map_or("null".into(), Value::to_string),
            Some(v) => v.to_string(),
            None => "null".into(),
        })
        .collect();
    Some(parts.join("|"))
}

const CACHE_KEY: &str = "@cache_key";

impl Store {
    pub fn table(&self, kind: Kind) -> &Table {
        static EMPTY: std::sync::LazyLock<Table> = std::sync::LazyLock::new(Table::default);
        self.tables.get(&kind).unwrap_or(&EMPTY)
    }

    pub fn get(&self, kind: Kind, id: &str) -> Option<&Object> {
        self.table(kind).get(id)
    }

    /// The id of the entity of `kind` whose cache key equals that of `obj`.
    pub fn id_by_cache_key(&self, kind: Kind, obj: &Object) -> Option<&str> {
        let key = cache_key_of(kind, obj)?;
        self.table(kind)
            .unique
            .get(CACHE_KEY)?
            .get(&key)
            .map(String::as_str)
    }

    /// Inserts or replaces the entity with `obj["id"]`, keeping the indexes in step.
    /// The caller has checked uniqueness.
    pub fn put(&mut self, kind: Kind, obj: Object) {
        let Some(id) = obj.get("id").and_then(Value::as_str).map(str::to_owned) else {
            return;
        };
        self.remove(kind, &id);
        for (field, target) in kind.foreign_keys() {
            if let Some(parent) = obj.get(*field).and_then(foreign_id) {
                self.refs
                    .entry((*target, parent.to_owned()))
                    .or_default()
                    .insert((kind, id.clone()));
            }
        }
        let cache_key = cache_key_of(kind, &obj);
        let table = self.tables.entry(kind).or_default();
        for field in unique_fields(kind) {
            if let Some(v) = obj.get(field).filter(|v| !v.is_null()) {
                table
                    .unique
                    .entry(field)
                    .or_default()
                    .insert(v.to_string(), id.clone());
            }
        }
        if let Some(key) = cache_key {
            table
                .unique
                .entry(CACHE_KEY)
                .or_default()
                .insert(key, id.clone());
        }
        table.by_id.insert(id, obj);
    }

    pub fn remove(&mut self, kind: Kind, id: &str) -> Option<Object> {
        let table = self.tables.get_mut(&kind)?;
        let old = table.by_id.remove(id)?;
        for field in unique_fields(kind) {
            if let Some(v) = old.get(field).filter(|v| !v.is_null())
                && let Some(index) = table.unique.get_mut(field)
            {
                index.remove(&v.to_string());
            }
        }
        if let Some(key) = cache_key_of(kind, &old)
            && let Some(index) = table.unique.get_mut(CACHE_KEY)
        {
            index.remove(&key);
        }
        for (field, target) in kind.foreign_keys() {
            if let Some(parent) = old.get(*field).and_then(foreign_id) {
                let key = (*target, parent.to_owned());
                if let Some(set) = self.refs.get_mut(&key) {
                    set.remove(&(kind, id.to_owned()));
                    if set.is_empty() {
                        self.refs.remove(&key);
                    }
                }
            }
        }
        Some(old)
    }

    /// The entities referencing (`kind`, `id`), in (kind, id) order.
    pub fn referencing(&self, kind: Kind, id: &str) -> Vec<Ref> {
        self.refs
            .get(&(kind, id.to_owned()))
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Ids of the `child` entities whose `field` points at `parent_id`, in id order.
    pub fn children(&self, child: Kind, field: &str, parent_id: &str) -> Vec<String> {
        let Some(target) = child
            .foreign_keys()
            .iter()
            .find(|(f, _)| *f == field)
            .map(|(_, t)| *t)
        else {
            return Vec::new();
        };
        self.refs
            .get(&(target, parent_id.to_owned()))
            .into_iter()
            .flatten()
            .filter(|(k, id)| {
                *k == child
                    && self
                        .get(child, id)
                        .and_then(|o| o.get(field))
                        .and_then(foreign_id)
                        == Some(parent_id)
            })
            .map(|(_, id)| id.clone())
            .collect()
    }

    /// Entity counts by collection, for `/_sim/stats`.
    pub fn counts(&self) -> BTreeMap<&'static str, usize> {
        Kind::ALL
            .iter()
            .map(|k| (k.dao(), self.table(*k).len()))
            .collect()
    }

    pub fn clear(&mut self) {
        *self = Store::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Object {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn indexes_follow_replacements() {
        let mut s = Store::default();
        s.put(
            Kind::Route,
            obj(json!({"id": "b", "name": "r1", "service": {"id": "s1"}})),
        );
        assert_eq!(s.children(Kind::Route, "service", "s1"), ["b"]);
        s.put(
            Kind::Route,
            obj(json!({"id": "b", "name": "r2", "service": {"id": "s2"}})),
        );
        assert!(s.children(Kind::Route, "service", "s1").is_empty());
        assert_eq!(
            s.referencing(Kind::Service, "s2"),
            [(Kind::Route, "b".to_owned())]
        );
        assert_eq!(s.table(Kind::Route).id_by("name", &json!("r1")), None);
        assert_eq!(s.table(Kind::Route).id_by("name", &json!("r2")), Some("b"));
        s.remove(Kind::Route, "b");
        assert!(s.referencing(Kind::Service, "s2").is_empty());
        assert_eq!(s.table(Kind::Route).len(), 0);
    }

    #[test]
    fn cache_keys_identify_plugins_by_name_and_scope() {
        let mut s = Store::default();
        let p = obj(
            json!({"id": "p1", "name": "cors", "service": {"id": "s1"}, "route": null, "consumer": null}),
        );
        s.put(Kind::Plugin, p.clone());
        let mut other = p.clone();
        other.insert("id".into(), json!("p2"));
        assert_eq!(s.id_by_cache_key(Kind::Plugin, &other), Some("p1"));
        other.insert("service".into(), Value::Null);
        assert_eq!(s.id_by_cache_key(Kind::Plugin, &other), None);
    }
}
