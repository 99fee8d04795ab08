//! Writing a live gateway as a desired-state file (`carl dump`): nested where Kong's
//! format nests, references by name, defaults and generated values left out, sorted so
//! two dumps of the same gateway are byte-identical.

use std::collections::{BTreeMap, HashMap, HashSet};

use carl_model::{Kind, LiveState, Object};
use serde_json::{Value, json};

/// How [`dump`] writes.
#[derive(Debug, Clone, Default)]
pub struct DumpOptions {
    /// Keep every entity's `id` (otherwise only where an identity needs it).
    pub with_id: bool,
    /// Replace secret values with `${CARL_REDACTED}`: the file then documents the
    /// gateway but cannot be applied until they are restored (loading it fails at
    /// each one, rather than writing a placeholder into Kong).
    pub redact_secrets: bool,
    /// `_info.select_tags` of the file (the state should have been read with them).
    pub select_tags: Vec<String>,
    pub json: bool,
}

/// What a redacted secret reads as.
pub const REDACTED: &str = "${CARL_REDACTED}";

/// The live state as a desired-state file.
///
/// Kinds are visited children first, one decoded at a time: each entity is written
/// (defaults out, references by name) and waits under its parent's id until the
/// parent's kind comes, so nesting costs one pass, and memory holds the written file
/// plus one kind.
pub fn dump(live: &LiveState, options: &DumpOptions) -> String {
    // Names of entities by id, for references written by name.
    let mut names: HashMap<String, String> = HashMap::new();
    for &kind in Kind::ALL {
        let Some(key) = kind.lookup_key() else {
            continue;
        };
        for e in live.of(kind) {
            if let (Some(id), Some(name)) = (
                e.get("id").and_then(Value::as_str),
                e.get(key).and_then(Value::as_str),
            ) {
                names.insert(id.to_owned(), name.to_owned());
            }
        }
    }
    // Consumers whose basic-auth passwords are stored hashed with their id: keeping the
    // id keeps the credentials working when the dump is applied elsewhere.
    let basic_auths = live.of(Kind::BasicAuth);
    let keep_consumer_id: HashSet<String> = basic_auths
        .iter()
        .filter_map(|c| c.get("consumer").and_then(carl_model::foreign_id))
        .map(str::to_owned)
        .collect();

    let mut root = Object::new();
    root.insert("_format_version".into(), json!("3.0"));
    if !basic_auths.is_empty() {
        // Passwords come back hashed: `_transform: false` says they are stored as given.
        root.insert("_transform".into(), json!(false));
    }
    drop(basic_auths);
    if !options.select_tags.is_empty() {
        root.insert(
            "_info".into(),
            json!({ "select_tags": options.select_tags }),
        );
    }
    // Written children by their parent's id, until the parent is written. Children
    // whose parent is not in the state (read with other select tags) stay here.
    let mut waiting: HashMap<String, Vec<(Kind, Value)>> = HashMap::new();
    for &kind in Kind::ALL.iter().rev() {
        let mut top: Vec<Value> = Vec::new();
        for e in live.of(kind) {
            let parents: Vec<(&str, &str)> = kind
                .foreign_keys()
                .iter()
                .filter_map(|(f, _)| e.get(*f).and_then(carl_model::foreign_id).map(|p| (*f, p)))
                .collect();
            // A child with exactly one parent is written inside it.
            let nested = match parents.as_slice() {
                [(field, parent)] if nests(kind) => Some((*field, *parent)),
                _ => None,
            };
            let id = e.get("id").and_then(Value::as_str).unwrap_or_default();
            let keep_id =
                options.with_id || (kind == Kind::Consumer && keep_consumer_id.contains(id));
            let implied: &[&str] = match &nested {
                Some((field, _)) => &[field],
                None => &[],
            };
            let mut out = entity(kind, &e, keep_id, options, &names, implied);
            if let Some(children) = waiting.remove(id) {
                insert_children(&mut out, children);
            }
            match nested {
                Some((_, parent)) => waiting
                    .entry(parent.to_owned())
                    .or_default()
                    .push((kind, Value::Object(out))),
                None => top.push(Value::Object(out)),
            }
        }
        if !top.is_empty() {
            sort(kind, &mut top);
            root.insert(kind.dao().into(), Value::Array(top));
        }
    }
    let value = Value::Object(root);
    if options.json {
        let mut text = serde_json::to_string_pretty(&value).unwrap_or_default();
        text.push('\n');
        text
    } else {
        serde_saphyr::to_string(&value).unwrap_or_default()
    }
}

/// Kinds written inside their parent when they have exactly one.
fn nests(kind: Kind) -> bool {
    !matches!(kind, Kind::Service | Kind::Consumer | Kind::Upstream)
}

/// Puts written children into their parent, one sorted list per kind.
fn insert_children(parent: &mut Object, children: Vec<(Kind, Value)>) {
    let mut by_kind: BTreeMap<Kind, Vec<Value>> = BTreeMap::new();
    for (kind, child) in children {
        by_kind.entry(kind).or_default().push(child);
    }
    for (kind, mut list) in by_kind {
        sort(kind, &mut list);
        parent.insert(kind.dao().into(), Value::Array(list));
    }
}

/// One entity: generated values and defaults left out, references by name, secrets
/// redacted if asked. `implied` are foreign keys the nesting already says.
fn entity(
    kind: Kind,
    e: &Object,
    keep_id: bool,
    options: &DumpOptions,
    names: &HashMap<String, String>,
    implied: &[&str],
) -> Object {
    let schema = carl_model::schema::effective(kind, e).unwrap_or_else(|_| kind.schema());
    let mut out = Object::new();
    for (field, value) in e {
        if value.is_null() || implied.contains(&field.as_str()) {
            continue;
        }
        if matches!(field.as_str(), "created_at" | "updated_at") || (field == "id" && !keep_id) {
            continue;
        }
        if let Some((fk, _)) = kind.foreign_keys().iter().find(|(f, _)| f == field) {
            let id = carl_model::foreign_id(value).unwrap_or_default();
            let reference = match names.get(id) {
                Some(name) if !options.with_id => json!(name),
                _ => json!(id),
            };
            out.insert((*fk).to_owned(), reference);
            continue;
        }
        let f = schema.field(field);
        let mut value = value.clone();
        if let Some(f) = f {
            if is_default(f, &value) {
                continue;
            }
            strip_defaults(f, &mut value);
            // A record left empty (a plugin's config of defaults) is filled again on load.
            if f.ty == carl_model::FieldType::Record
                && value.as_object().is_some_and(Object::is_empty)
            {
                continue;
            }
        }
        // The tags every entity carries because of select tags are implied by `_info`.
        if field == "tags"
            && !options.select_tags.is_empty()
            && let Value::Array(tags) = &mut value
        {
            tags.retain(|t| !options.select_tags.iter().any(|s| t == s));
            if tags.is_empty() {
                continue;
            }
        }
        if options.redact_secrets {
            redact(kind, field, f, &mut value);
        }
        out.insert(field.clone(), value);
    }
    out
}

/// Equal to the schema's default (an empty set or array equals an absent one).
fn is_default(field: &carl_model::Field, value: &Value) -> bool {
    match &field.default {
        Some(d) => d == value || (d.is_null() && is_empty_list(value)),
        None => is_empty_list(value) && !field.required,
    }
}

fn is_empty_list(v: &Value) -> bool {
    v.as_array().is_some_and(Vec::is_empty)
}

/// Drops the defaults inside a record (a plugin's `config`), recursively.
fn strip_defaults(field: &carl_model::Field, value: &mut Value) {
    let Value::Object(obj) = value else { return };
    if field.fields.is_empty() {
        return;
    }
    obj.retain(|k, v| {
        if v.is_null() {
            return false;
        }
        match field.fields.iter().find(|f| f.name == *k) {
            Some(f) => {
                strip_defaults(f, v);
                // A record left empty is all defaults: the loader fills it again.
                !is_default(f, v) && !v.as_object().is_some_and(Object::is_empty)
            }
            None => true,
        }
    });
}

fn redact(kind: Kind, name: &str, field: Option<&carl_model::Field>, value: &mut Value) {
    let secret = kind.secret_fields().contains(&name)
        || field.is_some_and(carl_model::Field::is_encrypted)
        || carl_model::is_secret_name(name);
    match value {
        Value::String(_) if secret => *value = json!(REDACTED),
        Value::Object(obj) => {
            for (k, v) in obj.iter_mut() {
                let sub = field.and_then(|f| f.fields.iter().find(|sf| sf.name == *k));
                if secret {
                    if v.is_string() {
                        *v = json!(REDACTED);
                    }
                } else {
                    redact(kind, k, sub, v);
                }
            }
        }
        _ => {}
    }
}

/// A stable order: by name (or what identifies the kind), then by the whole entity.
fn sort(kind: Kind, items: &mut [Value]) {
    let key = |v: &Value| -> (String, String) {
        let first = [
            kind.endpoint_key(),
            "name",
            "username",
            "target",
            "group",
            "key",
            "kid",
        ]
        .iter()
        .find_map(|k| v.get(*k).and_then(Value::as_str))
        .unwrap_or_default()
        .to_owned();
        (first, v.to_string())
    };
    items.sort_by_cached_key(key);
}
