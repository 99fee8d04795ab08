//! The schemas desired entities are completed and compared with (DESIGN.md decision 4):
//! the target Kong's, read once per kind and once per plugin in use, or carl's built-in
//! snapshot of Kong 3.9 for whatever could not be read.

use std::collections::BTreeMap;

use carl_model::{Kind, Object, Schema};
use serde_json::Value;

#[derive(Debug, Clone, Default)]
pub struct Schemas {
    kinds: BTreeMap<Kind, Schema>,
    /// `GET /schemas/plugins/{name}`, merged into the plugins schema.
    plugins: BTreeMap<String, Schema>,
}

impl Schemas {
    /// Uses `schema` (read from the live Kong) for `kind`.
    pub fn insert(&mut self, kind: Kind, schema: Schema) {
        self.kinds.insert(kind, schema);
        // Plugin schemas merged with an older plugins schema would be stale.
        if kind == Kind::Plugin {
            let names: Vec<String> = self.plugins.keys().cloned().collect();
            for name in names {
                if let Some(own) = self.plugins.remove(&name) {
                    self.insert_plugin(&name, own);
                }
            }
        }
    }

    /// Uses `schema` (`GET /schemas/plugins/{name}` of the live Kong) for plugin `name`.
    pub fn insert_plugin(&mut self, name: &str, own: Schema) {
        let merged = self.get(Kind::Plugin).with_subschema(&own);
        self.plugins.insert(name.to_owned(), merged);
    }

    /// The schema of `kind` entities in general.
    pub fn get(&self, kind: Kind) -> &Schema {
        self.kinds.get(&kind).unwrap_or_else(|| kind.schema())
    }

    /// The schema of one entity: for a plugin, the plugins schema with the plugin's own
    /// fields (its `config` record, protocols); `None` for a plugin nobody knows.
    pub fn for_entity(&self, kind: Kind, entity: &Object) -> Option<std::borrow::Cow<'_, Schema>> {
        use std::borrow::Cow;
        if kind != Kind::Plugin {
            return Some(Cow::Borrowed(self.get(kind)));
        }
        let name = entity.get("name").and_then(Value::as_str)?;
        if let Some(merged) = self.plugins.get(name) {
            return Some(Cow::Borrowed(merged));
        }
        let own = carl_model::schema::plugin(name)?;
        Some(Cow::Owned(self.get(Kind::Plugin).with_subschema(own)))
    }
}
