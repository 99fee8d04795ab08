//! The only place carl decides what to change.
//!
//! [`plan`] takes the desired state (from `carl-config`), the live state (from
//! `carl-admin-client`) and the target Kong's schemas, and returns a [`Plan`]: the
//! operations that make the gateway match the files, each with the fields it changes and
//! the operations it must wait for. Steps:
//!
//! 1. **resolve**: resolve each desired entity's references to ids, compute its
//!    identity ([`identity`]);
//! 2. **match**: pair desired and live entities by id, then name, then (unnamed routes)
//!    by service and canonical match criteria;
//! 3. **diff**: compare fields, a missing one as its schema default, sets as sets
//!    ([`diff`]);
//! 4. **order**: a dependency graph, parents before children, frees before takes
//!    ([`order`]).
//!
//! Rendering for people and machines is in [`render`].

pub mod diff;
pub mod identity;
mod order;
pub mod render;
pub mod saved;
mod schemas;

use std::collections::BTreeMap;

// The planner's maps hold an entry per entity (270,000 on a large gateway): foldhash,
// seeded per process like std's, hashes these short keys faster than SipHash.
use foldhash::{HashMap, HashSet};

use carl_config::{DesiredEntity, DesiredState, Location, Reference};
use carl_model::{Kind, LiveState, Object, Schema};
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use schemas::Schemas;

/// What an operation does to its entity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Create,
    Update,
    Delete,
}

/// One field that changes: `old` is the live value (null on create), `new` the desired
/// value (null on delete).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change {
    /// The field, or the path into a record: `config.minute`.
    pub field: String,
    pub old: Value,
    pub new: Value,
    /// A secret (credential key, password, private key): shown as `(sensitive)`, never
    /// its value.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub sensitive: bool,
}

/// One write to the Admin API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Op {
    /// Position in [`Plan::ops`]; what `depends_on` refers to.
    pub index: usize,
    pub action: Action,
    pub kind: Kind,
    /// The Kong id the write targets (`PUT /services/{id}`).
    pub id: String,
    /// How people recognise the entity: its name, or for an unnamed route what it matches.
    pub label: String,
    /// The entity's Admin API path: `/services/{id}`, `/upstreams/{u}/targets/{id}`.
    pub path: String,
    /// Why this entity is deleted and created again rather than updated (on both ops
    /// of a replacement), or why an update is a temporary step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replace: Option<String>,
    /// On the create of a replacement: the index of the delete it completes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replaces: Option<usize>,
    /// The fields that change, in schema order; read them with [`Op::changes`].
    pub changes: Changes,
    /// Fields sent but not shown as changes: on a create, those carl's schema does not
    /// know (a newer Kong's), sent as written. Empty otherwise.
    pub extra: Object,
    /// Indices of the operations that must finish first.
    pub depends_on: Vec<usize>,
}

/// An op's changes as it keeps them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Changes {
    /// Each change with its old and new value (updates, deletes).
    Listed(Vec<Change>),
    /// A create's fields as compact JSON `[[field, value], ...]` in schema order (the
    /// old values are all null): one string per create instead of a list of values,
    /// for a plan of 70,000 creates is otherwise the largest thing carl holds.
    Created(Box<str>),
}

impl Changes {
    /// A create's changes, kept compact.
    fn created(fields: &[(&str, &Value)]) -> Changes {
        Changes::Created(serde_json::to_string(fields).unwrap_or_default().into())
    }
}

impl Op {
    /// The fields that change, in schema order.
    pub fn changes(&self) -> std::borrow::Cow<'_, [Change]> {
        use std::borrow::Cow;
        match &self.changes {
            Changes::Listed(list) => Cow::Borrowed(list),
            Changes::Created(text) => {
                let fields: Vec<(String, Value)> = serde_json::from_str(text).unwrap_or_default();
                Cow::Owned(
                    fields
                        .into_iter()
                        .map(|(field, new)| Change {
                            sensitive: diff::is_sensitive(self.kind, &field),
                            field,
                            old: Value::Null,
                            new,
                        })
                        .collect(),
                )
            }
        }
    }

    /// The request body: the whole entity for a create (`PUT`), the changed fields only
    /// for an update (`PATCH`, records as nested objects, which Kong merges into the
    /// stored record), empty for a delete. Made from the changes when asked: a plan of
    /// 70,000 creates would otherwise hold every desired value twice.
    pub fn body(&self) -> Object {
        let mut body = self.extra.clone();
        for c in self.changes().iter() {
            carl_model::set_path(&mut body, &c.field, c.new.clone());
        }
        body
    }
}

/// How many operations of each action a plan has.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    pub create: usize,
    pub update: usize,
    pub delete: usize,
}

impl Summary {
    pub fn total(&self) -> usize {
        self.create + self.update + self.delete
    }
}

/// The operations that make the gateway match the desired state, in an order Kong
/// accepts (each op comes after everything in its `depends_on`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub summary: Summary,
    pub ops: Vec<Op>,
    /// How to show the entities ops refer to by id (a route's service), id → label.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub names: BTreeMap<String, String>,
    /// For each op, the index in [`DesiredState::entities`] of the entity it writes
    /// (`None` for deletes): how an error Kong reports about an entity finds its place
    /// in the files. Not saved: a saved plan is applied from a fresh plan.
    #[serde(skip)]
    pub sources: Vec<Option<usize>>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }
}

/// A desired state that cannot be planned, with the place in the file to fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanError {
    /// Where to fix it, when one place is to blame.
    pub location: Option<Location>,
    pub message: String,
}

impl std::error::Error for PlanError {}

impl std::fmt::Display for PlanError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.location {
            Some(loc) => write!(f, "{loc}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

/// A desired entity after resolution: references as ids (defaults stay implicit).
struct Resolved<'a> {
    source: &'a DesiredEntity,
    /// Position in [`DesiredState::entities`]: what nested children refer to.
    index: usize,
    /// The consumer's id, for credentials whose key Kong generates.
    consumer: Option<String>,
    /// See [`identity::natural`].
    natural: Option<String>,
    /// Explicit id from the file.
    explicit_id: Option<String>,
}

/// Computes the plan that makes `live` match `desired`.
pub fn plan(
    desired: &DesiredState,
    live: &LiveState,
    schemas: &Schemas,
) -> Result<Plan, PlanError> {
    // With select tags, every entity the files write carries them (DESIGN.md decision
    // 7); the live state was read with the same filter.
    let tagged;
    let desired = match &desired.select_tags {
        Some((tags, _)) => {
            tagged = with_tags(desired, tags);
            &tagged
        }
        None => desired,
    };
    let plugin_schemas = plugin_schemas(desired, live, schemas);
    let mut planner = Planner {
        desired,
        schemas,
        plugin_schemas: &plugin_schemas,
        ids: HashMap::default(),
        replaced: HashMap::default(),
        builder: order::Builder::with_capacity(desired.entities.len() + live.len()),
        names: HashMap::default(),
        id_scope: desired
            .select_tags
            .as_ref()
            .map(|(tags, _)| {
                let mut tags = tags.clone();
                tags.sort();
                tags.dedup();
                tags.join(",")
            })
            .filter(|s| !s.is_empty()),
    };
    // Each kind's desired entities, found once: scanning the whole file once per kind
    // costs a cache miss per entity per kind on a large gateway.
    let mut of_kind: HashMap<Kind, Vec<usize>> = HashMap::default();
    for (index, entity) in desired.entities.iter().enumerate() {
        of_kind.entry(entity.kind).or_default().push(index);
    }
    for &kind in Kind::ALL {
        // One kind decoded at a time (see `LiveState`).
        let indices = of_kind.remove(&kind).unwrap_or_default();
        if indices.is_empty() {
            planner.delete_all(kind, live.decoded(kind));
        } else {
            planner.kind(kind, &indices, &live.of(kind))?;
        }
    }
    let mut names = std::mem::take(&mut planner.names);
    let mut plan = planner.builder.finish()?;
    // Only the entities the ops point to are shown by name.
    for op in &plan.ops {
        for c in op.changes().iter() {
            for v in [&c.old, &c.new] {
                if let Some(id) = carl_model::foreign_id(v)
                    && let Some(label) = names.remove(id)
                {
                    plan.names.insert(id.to_owned(), label);
                }
            }
        }
    }
    Ok(plan)
}

/// Each plugin in use, with its own schema merged in: built once per name.
fn plugin_schemas(
    desired: &DesiredState,
    live: &LiveState,
    schemas: &Schemas,
) -> HashMap<String, Schema> {
    let mut out = HashMap::default();
    // Names only: the live plugins are decoded when the planner reaches them.
    let live_names = live.names(Kind::Plugin);
    let desired_names = desired
        .entities
        .iter()
        .filter(|e| e.kind == Kind::Plugin)
        .filter_map(|e| e.fields.get("name").and_then(Value::as_str));
    for name in desired_names.chain(live_names.iter().map(String::as_str)) {
        if out.contains_key(name) {
            continue;
        }
        // A plugin's schema depends on its name only.
        let probe: Object = [("name".to_owned(), Value::from(name))]
            .into_iter()
            .collect();
        if let Some(schema) = schemas.for_entity(Kind::Plugin, &probe) {
            out.insert(name.to_owned(), schema.into_owned());
        }
    }
    out
}

struct Planner<'a> {
    desired: &'a DesiredState,
    schemas: &'a Schemas,
    plugin_schemas: &'a HashMap<String, Schema>,
    /// The id of every desired entity planned so far, by kind and by how references
    /// name it: `id:{id}`, `name:{endpoint key}`, `parent:{index}`.
    ids: HashMap<(Kind, String), String>,
    /// Live entities deleted to be created again, and why: their children go with them.
    replaced: HashMap<(Kind, String), String>,
    builder: order::Builder,
    /// id → label of every entity others can refer to (services, consumers...): how
    /// ops show their parents.
    names: HashMap<String, String>,
    /// The file's select tags, sorted: part of every new id. Two teams that both
    /// declare a service `payments` must not derive the same id, or the second team's
    /// `PUT /services/{id}` (an upsert) would silently take over the first team's
    /// service, which it cannot even see. With distinct ids Kong refuses the second
    /// create on the unique name instead.
    id_scope: Option<String>,
}

impl<'a> Planner<'a> {
    /// The deterministic id of a new entity (DESIGN.md decision 5), within the file's
    /// scope. Untagged files keep the unscoped ids carl has always written.
    fn new_id(&self, kind: Kind, key: &str) -> String {
        match &self.id_scope {
            None => carl_model::deterministic_id(kind, key),
            Some(scope) => carl_model::deterministic_id(kind, &format!("{key}\u{0}tags:{scope}")),
        }
        .to_string()
    }

    fn schema(&self, kind: Kind, entity: &Object) -> &'a Schema {
        let (schemas, plugins): (&'a Schemas, &'a HashMap<String, Schema>) =
            (self.schemas, self.plugin_schemas);
        if kind == Kind::Plugin
            && let Some(s) = entity
                .get("name")
                .and_then(Value::as_str)
                .and_then(|n| plugins.get(n))
        {
            return s;
        }
        schemas.get(kind)
    }

    fn label(&self, kind: Kind, entity: &Object) -> String {
        identity::label(kind, entity, &|id| self.names.get(id).cloned())
    }

    /// Plans a kind the files have none of: every live entity of it is deleted. Each
    /// is decoded as it is reached rather than the whole kind at once (nothing needs
    /// matching), so deleting a whole gateway works in one entity's memory instead of
    /// a kind's hundreds of megabytes, which at 20,000 services spill every cache.
    fn delete_all(&mut self, kind: Kind, live: impl Iterator<Item = Object>) {
        let referenced = is_referenced(kind);
        for o in live {
            let label = self.label(kind, &o);
            if referenced {
                self.names.insert(live_id(&o).to_owned(), label.clone());
            }
            // Removed along with a replaced parent, and its own children with it.
            let why = self.replaced_parent(kind, &o);
            if let Some(why) = &why {
                self.replaced
                    .insert((kind, live_id(&o).to_owned()), why.clone());
            }
            self.delete(kind, &o, label, why);
        }
    }

    /// Why the live entity `o` goes with a parent that is replaced, if one is (the
    /// last such foreign key names it).
    fn replaced_parent(&self, kind: Kind, o: &Object) -> Option<String> {
        if self.replaced.is_empty() {
            return None;
        }
        let target = kind
            .foreign_keys()
            .iter()
            .rev()
            .find_map(|(field, target)| {
                let parent = o.get(*field).and_then(carl_model::foreign_id)?;
                self.replaced
                    .contains_key(&(*target, parent.to_owned()))
                    .then_some(target)
            })?;
        Some(format!("its {target} is replaced"))
    }

    /// A delete of the live entity `o`, labelled `label`.
    fn delete(&mut self, kind: Kind, o: &Object, label: String, why: Option<String>) {
        let id = live_id(o);
        let write = order::Write {
            kind,
            id: id.to_owned(),
            label,
            path: entity_path(kind, id, o),
            schema: self.schema(kind, o),
            source: None,
        };
        self.builder.delete(write, o, why);
    }

    /// Plans a kind the files have: `indices` (not empty) are its entities in
    /// `desired.entities`, matched against `live_of`, the kind's live entities.
    fn kind(&mut self, kind: Kind, indices: &[usize], live_of: &[Object]) -> Result<(), PlanError> {
        let referenced = is_referenced(kind);
        if referenced {
            for o in live_of {
                let label = self.label(kind, o);
                self.names.insert(live_id(o).to_owned(), label);
            }
        }
        // Live entities whose parent is replaced go with it: deleted, created again.
        let forced: HashMap<&str, String> = live_of
            .iter()
            .filter_map(|o| Some((live_id(o), self.replaced_parent(kind, o)?)))
            .collect();
        let by_id: HashMap<&str, &Object> = live_of.iter().map(|o| (live_id(o), o)).collect();
        let mut by_natural: HashMap<String, Vec<&Object>> =
            HashMap::with_capacity_and_hasher(live_of.len(), Default::default());
        for o in live_of {
            if let Some(n) = identity::natural(kind, o) {
                by_natural.entry(n).or_default().push(o);
            }
        }

        // Resolve every desired entity of this kind.
        let mut resolved = Vec::with_capacity(indices.len());
        let mut seen: HashMap<String, &Location> =
            HashMap::with_capacity_and_hasher(indices.len(), Default::default());
        for &index in indices {
            let entity = &self.desired.entities[index];
            // The resolved fields are made again when the entity is compared: holding
            // them for a whole kind would double the desired state's memory.
            let (r, fields) = resolve(index, entity, &self.ids)?;
            if let Some(n) = &r.natural
                && let Some(first) = seen.insert(n.clone(), &entity.location)
            {
                return Err(PlanError {
                    location: Some(entity.location.clone()),
                    message: format!(
                        "{kind} {} is defined twice: first at {first}, again here",
                        self.label(kind, &fields)
                    ),
                });
            }
            resolved.push(r);
        }

        // Match: explicit id, else natural identity.
        let mut taken: HashSet<&str> =
            HashSet::with_capacity_and_hasher(indices.len(), Default::default());
        let mut matches: Vec<Option<&Object>> = Vec::with_capacity(resolved.len());
        let mut replacing: Vec<Option<(String, String)>> = Vec::with_capacity(resolved.len());
        for r in &resolved {
            let natural_match = r
                .natural
                .as_ref()
                .and_then(|n| by_natural.get(n))
                .and_then(|c| c.iter().find(|o| !taken.contains(live_id(o))))
                .copied();
            let mut found = match &r.explicit_id {
                Some(id) => by_id.get(id.as_str()).copied(),
                None => natural_match,
            };
            let mut replace = None;
            if let Some(o) = found
                && let Some(why) = forced.get(live_id(o))
            {
                replace = Some((live_id(o).to_owned(), why.clone()));
                found = None;
            }
            if found.is_none()
                && replace.is_none()
                && let (Some(new), Some(o)) = (&r.explicit_id, natural_match)
            {
                // As decK does: the name is taken by an entity with another id.
                replace = Some((
                    live_id(o).to_owned(),
                    format!(
                        "the file gives id {new}, the gateway's has id {}",
                        live_id(o)
                    ),
                ));
            }
            if let Some(o) = found {
                taken.insert(live_id(o));
            }
            if let Some((old, _)) = &replace
                && let Some(o) = by_id.get(old.as_str())
            {
                taken.insert(live_id(o));
            }
            matches.push(found);
            replacing.push(replace);
        }
        // Credentials whose key Kong generates: any unmatched live one of the same
        // consumer, the one with carl's deterministic id first.
        let mut by_consumer: HashMap<&str, Vec<&Object>> = HashMap::default();
        if resolved
            .iter()
            .any(|r| r.natural.is_none() && r.explicit_id.is_none())
        {
            for o in live_of {
                if let Some(c) = o.get("consumer").and_then(carl_model::foreign_id) {
                    by_consumer.entry(c).or_default().push(o);
                }
            }
        }
        let mut generated = HashMap::<String, usize>::default();
        let mut keys: Vec<Option<String>> = Vec::with_capacity(resolved.len());
        for (r, m) in resolved.iter().zip(matches.iter_mut()) {
            if r.natural.is_some() || r.explicit_id.is_some() {
                keys.push(r.natural.clone());
                continue;
            }
            let consumer = r.consumer.clone().unwrap_or_else(|| "-".to_owned());
            let n = generated.entry(consumer.clone()).or_default();
            *n += 1;
            let key = format!("generated:{consumer}#{n}");
            let id = self.new_id(kind, &key);
            let same_owner = |o: &&Object| {
                o.get("consumer").and_then(carl_model::foreign_id) == Some(consumer.as_str())
                    && !taken.contains(live_id(o))
                    && !forced.contains_key(live_id(o))
            };
            let candidate = by_id
                .get(id.as_str())
                .copied()
                .filter(|o| same_owner(o))
                .or_else(|| {
                    by_consumer
                        .get(consumer.as_str())
                        .and_then(|c| c.iter().copied().find(|o| same_owner(o)))
                });
            if let Some(o) = candidate {
                taken.insert(live_id(o));
                *m = Some(o);
            }
            keys.push(Some(key));
        }
        // Anything else removed along with a replaced parent.
        for (id, why) in &forced {
            self.replaced.insert((kind, (*id).to_owned()), why.clone());
        }

        // Creates and updates.
        for (((r, m), replace), key) in resolved.iter().zip(&matches).zip(replacing).zip(keys) {
            let (_, fields) = resolve(r.index, r.source, &self.ids)?;
            let id = match (m, &r.explicit_id) {
                (Some(o), _) => live_id(o).to_owned(),
                (None, Some(id)) => id.clone(),
                (None, None) => self.new_id(kind, key.as_deref().unwrap_or_default()),
            };
            if referenced {
                self.ids.insert((kind, format!("id:{id}")), id.clone());
                self.ids
                    .insert((kind, format!("parent:{}", r.index)), id.clone());
                if let Some(name) = fields.get(kind.endpoint_key()).and_then(Value::as_str) {
                    self.ids.insert((kind, format!("name:{name}")), id.clone());
                }
                let label = self.label(kind, &fields);
                self.names.insert(id.clone(), label);
            }
            let schema = self.schema(kind, &fields);
            // Built only for an op: most entities are unchanged.
            let write = |planner: &Self, id: String| order::Write {
                kind,
                path: entity_path(kind, &id, &fields),
                label: planner.label(kind, &fields),
                id,
                schema,
                source: Some(r.index),
            };
            let hashed = self
                .desired
                .untransformed_files
                .contains(&r.source.location.file);
            match m {
                None => {
                    if hashed {
                        refuse_hashed_password(kind, r, &fields)?;
                    }
                    let (changes, extra) = creation(schema, r, &fields);
                    if let Some((old, why)) = &replace {
                        self.replaced.insert((kind, old.clone()), why.clone());
                    }
                    let write = write(self, id);
                    self.builder.create(write, &fields, changes, extra, replace);
                }
                Some(live) => {
                    let cx = diff::Context {
                        hashed_passwords: hashed,
                    };
                    let changes = diff::changes(kind, schema, &fields, live, cx);
                    if hashed && changes.iter().any(|c| c.field == "password") {
                        refuse_hashed_password(kind, r, &fields)?;
                    }
                    if !changes.is_empty() {
                        let write = write(self, id);
                        self.builder.update(write, live, &fields, changes);
                    }
                }
            }
        }

        // Deletes: live entities nothing in the files matched.
        for o in live_of {
            let id = live_id(o);
            let why = match self.replaced.is_empty() {
                true => None,
                false => self.replaced.get(&(kind, id.to_owned())).cloned(),
            };
            if taken.contains(id) && why.is_none() {
                continue;
            }
            let label = self.label(kind, o);
            self.delete(kind, o, label, why);
        }
        Ok(())
    }
}

/// A basic-auth password from a `_transform: false` file is Kong's hash; the Admin
/// API hashes whatever it is given, so writing it would set the hash as the password.
fn refuse_hashed_password(kind: Kind, r: &Resolved<'_>, fields: &Object) -> Result<(), PlanError> {
    if kind != Kind::BasicAuth || fields.get("password").is_none_or(Value::is_null) {
        return Ok(());
    }
    let user = fields
        .get("username")
        .and_then(Value::as_str)
        .unwrap_or("?");
    Err(PlanError {
        location: Some(r.source.location_of("password")),
        message: format!(
            "basic-auth credential \"{user}\": this file says `_transform: false`, so its password is \
             Kong's hash, and the Admin API would hash it again (the credential would stop working). \
             Write the password itself (e.g. `password: ${{BASIC_AUTH_{}}}`) and drop `_transform: false`; \
             a DB-less gateway takes the hash as it is",
            user.to_ascii_uppercase()
                .replace(|c: char| !c.is_ascii_alphanumeric(), "_")
        ),
    })
}

/// The shown fields of a create, in schema order, and the fields sent beyond them
/// ([`Op::extra`]): what the file says (Kong fills its own defaults), references as ids.
fn creation(schema: &Schema, r: &Resolved<'_>, fields: &Object) -> (Changes, Object) {
    let source = r.source;
    let shown: Vec<(&str, &Value)> = schema
        .fields
        .iter()
        .filter(|field| field.name != "id")
        .filter_map(|field| {
            let name = field.name.as_str();
            let value = if source.references.contains_key(name) {
                fields.get(name)
            } else {
                source.fields.get(name)
            };
            Some((name, value?))
        })
        .collect();
    // Fields a newer Kong knows and carl's schema does not: sent as written.
    let mut extra = Object::new();
    for (name, value) in &source.fields {
        let name: &str = name;
        if name != "id" && schema.field(name).is_none() {
            extra.insert(name.to_owned(), value.clone());
        }
    }
    (Changes::created(&shown), extra)
}

/// The Admin API path of an entity: targets live under their upstream.
pub fn entity_path(kind: Kind, id: &str, entity: &Object) -> String {
    match kind {
        Kind::Target => format!(
            "/upstreams/{}/targets/{id}",
            entity
                .get("upstream")
                .and_then(carl_model::foreign_id)
                .unwrap_or("-")
        ),
        _ => format!("/{}/{id}", kind.path()),
    }
}

/// `desired` with `tags` added to every entity's `tags` (a set: order kept, no repeats).
fn with_tags(desired: &DesiredState, tags: &[String]) -> DesiredState {
    let mut out = desired.clone();
    for e in &mut out.entities {
        let mut list: Vec<Value> = e
            .fields
            .get("tags")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for t in tags {
            if !list.iter().any(|v| v.as_str() == Some(t)) {
                list.push(Value::String(t.clone()));
            }
        }
        e.fields.insert("tags".into(), Value::Array(list));
    }
    out
}

/// Whether other kinds refer to `kind`: only those need their ids and names
/// remembered; most entities (plugins, credentials, targets) are leaves.
fn is_referenced(kind: Kind) -> bool {
    Kind::ALL
        .iter()
        .any(|k| k.foreign_keys().iter().any(|(_, t)| *t == kind))
}

fn live_id(o: &Object) -> &str {
    o.get("id").and_then(Value::as_str).unwrap_or_default()
}

/// Resolves a desired entity's references and computes its identity. References resolve against
/// entities of earlier kinds, already in `ids`.
/// Also returns the file's fields with foreign keys as `{"id": ...}`, without `id`.
fn resolve<'a>(
    index: usize,
    entity: &'a DesiredEntity,
    ids: &HashMap<(Kind, String), String>,
) -> Result<(Resolved<'a>, Object), PlanError> {
    let kind = entity.kind;
    let mut fields = entity.object();
    let explicit_id = fields
        .remove("id")
        .and_then(|v| v.as_str().map(str::to_owned));
    for (field, target) in kind.foreign_keys() {
        let value = match entity.references.get(*field) {
            None => Value::Null,
            Some(reference) => {
                let key = match reference {
                    Reference::Id(id) => format!("id:{id}"),
                    Reference::Name(name) => format!("name:{name}"),
                    Reference::Parent(i) => format!("parent:{i}"),
                };
                match ids.get(&(*target, key)) {
                    Some(id) => serde_json::json!({ "id": id }),
                    None => {
                        return Err(PlanError {
                            location: Some(entity.location_of(field)),
                            message: format!(
                                "{kind} refers to {target} '{reference}', which is not in the desired state \
                                 (add it, or fix the reference)"
                            ),
                        });
                    }
                }
            }
        };
        fields.insert((*field).to_owned(), value);
    }
    // Defaults are not filled in: `diff::changes` reads them from the schema.
    for generated in kind.generated_fields() {
        fields.remove(*generated);
    }
    let resolved = Resolved {
        source: entity,
        index,
        natural: identity::natural(kind, &fields),
        consumer: fields
            .get("consumer")
            .and_then(carl_model::foreign_id)
            .map(str::to_owned),
        explicit_id,
    };
    Ok((resolved, fields))
}
