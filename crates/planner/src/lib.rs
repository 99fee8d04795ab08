//! The only place carl decides what to change.
//!
//! [`plan`] takes the desired state (from `carl-config`), the live state (from
//! `carl-admin-client`) and the target Kong's schemas, and returns a [`Plan`]: the
//! operations that make the gateway match the files, each with the fields it changes and
//! the operations it must wait for. Steps:
//!
//! 1. **resolve**: complete each desired entity with schema defaults, resolve its
//!    references to ids, compute its identity ([`identity`]);
//! 2. **match**: pair desired and live entities by id, then name, then (unnamed routes)
//!    by service and canonical match criteria;
//! 3. **diff**: compare fields, sets as sets ([`diff`]);
//! 4. **order**: a dependency graph, parents before children, frees before takes
//!    ([`order`]).
//!
//! Rendering for people and machines is in [`render`].

pub mod diff;
pub mod identity;
mod order;
pub mod render;

use std::collections::{BTreeMap, HashMap};

use carl_config::{DesiredEntity, DesiredState, Location, Reference};
use carl_model::{Kind, LiveState, Object, Schema};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The schemas the planner completes desired entities with: the target Kong's when it
/// could be read, the built-in snapshot otherwise.
#[derive(Debug, Clone, Default)]
pub struct Schemas {
    fetched: BTreeMap<Kind, Schema>,
}

impl Schemas {
    /// Uses `schema` (read from the live Kong) for `kind`.
    pub fn insert(&mut self, kind: Kind, schema: Schema) {
        self.fetched.insert(kind, schema);
    }

    pub fn get(&self, kind: Kind) -> &Schema {
        self.fetched.get(&kind).unwrap_or_else(|| kind.schema())
    }
}

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
    pub field: String,
    pub old: Value,
    pub new: Value,
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
    /// The fields that change, in schema order.
    pub changes: Vec<Change>,
    /// The request body: the whole entity for a create (`PUT`), the changed fields only
    /// for an update (`PATCH`), empty for a delete.
    pub body: Object,
    /// Indices of the operations that must finish first.
    pub depends_on: Vec<usize>,
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

/// A desired entity after resolution: defaults filled, references as ids, identity known.
struct Resolved<'a> {
    source: &'a DesiredEntity,
    /// Complete fields, foreign keys as `{"id": ...}`, without `id`.
    fields: Object,
    identity: String,
    /// Explicit id from the file.
    explicit_id: Option<String>,
}

/// Computes the plan from `desired` to match against `live`.
pub fn plan(
    desired: &DesiredState,
    live: &LiveState,
    schemas: &Schemas,
) -> Result<Plan, PlanError> {
    // A kind carl cannot plan yet is refused, never silently left alone.
    if let Some(e) = desired
        .entities
        .iter()
        .find(|e| !Kind::MANAGED.contains(&e.kind))
    {
        return Err(PlanError {
            location: Some(e.location.clone()),
            message: format!(
                "`{}` are not managed by this version of carl yet (it plans services and routes): \
                 remove them from the file to plan the rest; `carl validate` checks them",
                e.kind.dao()
            ),
        });
    }
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
    let mut builder = order::Builder::default();
    let mut names = BTreeMap::new();
    // Assigned id of every desired entity, by kind and the identity the file used.
    let mut ids: HashMap<(Kind, String), String> = HashMap::new();
    // Claimed live ids, so one live entity is matched at most once.
    let mut claimed: HashMap<Kind, std::collections::HashSet<String>> = HashMap::new();

    for &kind in Kind::MANAGED {
        let schema = schemas.get(kind);
        let live_of_kind = live.of(kind);
        let by_id: HashMap<&str, &Object> = live_of_kind
            .iter()
            .filter_map(|o| Some((o.get("id")?.as_str()?, o)))
            .collect();
        let by_name: HashMap<&str, &Object> = live_of_kind
            .iter()
            .filter_map(|o| Some((o.get(kind.endpoint_key())?.as_str()?, o)))
            .collect();
        let mut by_match_key: HashMap<String, Vec<&Object>> = HashMap::new();
        if kind == Kind::Route {
            for o in live_of_kind {
                by_match_key
                    .entry(identity::route_match_key(o))
                    .or_default()
                    .push(o);
            }
        }

        // Resolve every desired entity of this kind.
        let mut resolved = Vec::new();
        let mut identities: HashMap<String, &Location> = HashMap::new();
        for entity in desired.entities.iter().filter(|e| e.kind == kind) {
            let r = resolve(entity, schema, &ids)?;
            if let Some(first) = identities.insert(r.identity.clone(), &entity.location) {
                return Err(PlanError {
                    location: Some(entity.location.clone()),
                    message: format!(
                        "{kind} {} is defined twice: first at {first}, again here",
                        identity::label(kind, &r.fields)
                    ),
                });
            }
            resolved.push(r);
        }

        // Match: explicit id, then name, then (unnamed routes) what they match.
        let taken = claimed.entry(kind).or_default();
        let mut matches: Vec<Option<&Object>> = Vec::with_capacity(resolved.len());
        for r in &resolved {
            let found = match &r.explicit_id {
                Some(id) => by_id.get(id.as_str()).copied(),
                None => r
                    .fields
                    .get(kind.endpoint_key())
                    .and_then(Value::as_str)
                    .and_then(|n| by_name.get(n).copied()),
            };
            let found = found.filter(|o| !taken.contains(live_id(o)));
            if let Some(o) = found {
                taken.insert(live_id(o).to_owned());
            }
            matches.push(found);
        }
        for (r, m) in resolved.iter().zip(matches.iter_mut()) {
            if m.is_none()
                && r.explicit_id.is_none()
                && r.fields.get(kind.endpoint_key()).is_none_or(Value::is_null)
            {
                let key = identity::route_match_key(&r.fields);
                if let Some(o) = by_match_key
                    .get(&key)
                    .and_then(|c| c.iter().find(|o| !taken.contains(live_id(o))))
                {
                    taken.insert(live_id(o).to_owned());
                    *m = Some(o);
                }
            }
        }

        // Creates and updates.
        for (r, m) in resolved.iter().zip(&matches) {
            let id = match (m, &r.explicit_id) {
                (Some(o), _) => live_id(o).to_owned(),
                (None, Some(id)) => id.clone(),
                (None, None) => carl_model::deterministic_id(kind, &r.identity).to_string(),
            };
            ids.insert((kind, r.identity.clone()), id.clone());
            if let Some(name) = r.fields.get(kind.endpoint_key()).and_then(Value::as_str) {
                ids.insert((kind, format!("name:{name}")), id.clone());
            }
            ids.insert((kind, format!("id:{id}")), id.clone());
            names.insert(id.clone(), identity::label(kind, &r.fields));
            match m {
                None => builder.create(kind, id, r.source, &r.fields, schema),
                Some(live) => {
                    let changes = diff::changes(schema, &r.fields, live);
                    if !changes.is_empty() {
                        builder.update(kind, id, identity::label(kind, &r.fields), changes);
                    }
                }
            }
        }

        // Deletes: live entities nothing in the files matched.
        for o in live_of_kind {
            if !taken.contains(live_id(o)) {
                names.insert(live_id(o).to_owned(), identity::label(kind, o));
                builder.delete(kind, live_id(o).to_owned(), identity::label(kind, o), o);
            }
        }
    }
    let mut plan = builder.finish()?;
    plan.names = names;
    Ok(plan)
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

fn live_id(o: &Object) -> &str {
    o.get("id").and_then(Value::as_str).unwrap_or_default()
}

/// Completes a desired entity and computes its identity. References resolve against
/// entities of earlier kinds, already in `ids`.
fn resolve<'a>(
    entity: &'a DesiredEntity,
    schema: &Schema,
    ids: &HashMap<(Kind, String), String>,
) -> Result<Resolved<'a>, PlanError> {
    let kind = entity.kind;
    let mut fields = entity.fields.clone();
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
                            location: Some(entity.location_of(field).clone()),
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
    carl_model::fill_defaults(kind, schema, &mut fields);
    for generated in kind.generated_fields() {
        fields.remove(*generated);
    }
    let identity = match (
        &explicit_id,
        fields.get(kind.endpoint_key()).and_then(Value::as_str),
    ) {
        (Some(id), _) => format!("id:{id}"),
        (None, Some(name)) => format!("name:{name}"),
        (None, None) => format!("match:{}", identity::route_match_key(&fields)),
    };
    Ok(Resolved {
        source: entity,
        fields,
        identity,
        explicit_id,
    })
}
