//! In-memory entity tables: a BTreeMap by id (Kong lists in id order) plus a
//! name index, and the service → routes index used for nested lists and the
//! delete restriction.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use carl_model::{Kind, Object, foreign_id};
use serde_json::Value;

#[derive(Debug, Default)]
pub struct Table {
    pub by_id: BTreeMap<String, Object>,
    by_name: HashMap<String, String>,
}

impl Table {
    pub fn get(&self, id: &str) -> Option<&Object> {
        self.by_id.get(id)
    }

    pub fn id_by_name(&self, name: &str) -> Option<&str> {
        self.by_name.get(name).map(String::as_str)
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }
}

#[derive(Debug, Default)]
pub struct Store {
    pub services: Table,
    pub routes: Table,
    /// service id → ids of the routes referencing it.
    routes_by_service: HashMap<String, BTreeSet<String>>,
}

fn name_of(obj: &Object) -> Option<&str> {
    obj.get("name").and_then(Value::as_str)
}

fn service_of(obj: &Object) -> Option<&str> {
    obj.get("service").and_then(foreign_id)
}

impl Store {
    pub fn table(&self, kind: Kind) -> &Table {
        match kind {
            Kind::Service => &self.services,
            Kind::Route => &self.routes,
        }
    }

    fn table_mut(&mut self, kind: Kind) -> &mut Table {
        match kind {
            Kind::Service => &mut self.services,
            Kind::Route => &mut self.routes,
        }
    }

    /// Inserts or replaces the entity with `obj["id"]`, keeping the indexes in step.
    /// The caller has checked uniqueness.
    pub fn put(&mut self, kind: Kind, obj: Object) {
        let Some(id) = obj.get("id").and_then(Value::as_str).map(str::to_owned) else {
            return;
        };
        self.remove(kind, &id);
        if kind == Kind::Route
            && let Some(sid) = service_of(&obj)
        {
            self.routes_by_service
                .entry(sid.to_owned())
                .or_default()
                .insert(id.clone());
        }
        let table = self.table_mut(kind);
        if let Some(name) = name_of(&obj) {
            table.by_name.insert(name.to_owned(), id.clone());
        }
        table.by_id.insert(id, obj);
    }

    pub fn remove(&mut self, kind: Kind, id: &str) -> Option<Object> {
        let table = self.table_mut(kind);
        let old = table.by_id.remove(id)?;
        if let Some(name) = name_of(&old) {
            table.by_name.remove(name);
        }
        if kind == Kind::Route
            && let Some(sid) = service_of(&old)
            && let Some(set) = self.routes_by_service.get_mut(sid)
        {
            set.remove(id);
            if set.is_empty() {
                self.routes_by_service.remove(sid);
            }
        }
        Some(old)
    }

    /// Ids of the routes attached to service `sid`, in id order.
    pub fn routes_of(&self, sid: &str) -> Option<&BTreeSet<String>> {
        self.routes_by_service.get(sid)
    }

    pub fn has_routes(&self, sid: &str) -> bool {
        self.routes_by_service
            .get(sid)
            .is_some_and(|s| !s.is_empty())
    }

    pub fn clear(&mut self) {
        *self = Store::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn indexes_follow_replacements() {
        let mut s = Store::default();
        let r = json!({"id": "b", "name": "r1", "service": {"id": "s1"}});
        s.put(Kind::Route, r.as_object().cloned().unwrap_or_default());
        assert!(s.has_routes("s1"));
        let r = json!({"id": "b", "name": "r2", "service": {"id": "s2"}});
        s.put(Kind::Route, r.as_object().cloned().unwrap_or_default());
        assert!(!s.has_routes("s1"));
        assert!(s.has_routes("s2"));
        assert_eq!(s.routes.id_by_name("r1"), None);
        assert_eq!(s.routes.id_by_name("r2"), Some("b"));
        s.remove(Kind::Route, "b");
        assert!(!s.has_routes("s2"));
        assert_eq!(s.routes.len(), 0);
    }
}
