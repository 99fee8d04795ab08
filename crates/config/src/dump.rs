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
/// (defaults out, references by name) and waits under its parent's id, as compact
/// JSON, until the parent's kind comes; a top-level entity is written out as text as
/// soon as it is complete. Nesting costs one pass, and memory holds text, not a tree
/// of the gateway: this runs before every apply, on top of its plan.
pub fn dump(live: &LiveState, options: &DumpOptions) -> String {
    // Names of entities by id, for references written by name.
    let mut names: HashMap<String, String> = HashMap::new();
    for &kind in Kind::ALL {
        let Some(key) = kind.lookup_key() else {
            continue;
        };
        for e in live.decoded(kind) {
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
    let keep_consumer_id: HashSet<String> = live
        .decoded(Kind::BasicAuth)
        .filter_map(|c| {
            c.get("consumer")
                .and_then(carl_model::foreign_id)
                .map(str::to_owned)
        })
        .collect();

    let mut header = Object::new();
    header.insert("_format_version".into(), json!("3.0"));
    if live.count(Kind::BasicAuth) > 0 {
        // Passwords come back hashed: `_transform: false` says they are stored as given.
        header.insert("_transform".into(), json!(false));
    }
    if !options.select_tags.is_empty() {
        header.insert(
            "_info".into(),
            json!({ "select_tags": options.select_tags }),
        );
    }
    // Written children (compact JSON) by their parent's id, until the parent is
    // written. Children whose parent is not in the state (read with other select tags)
    // stay here.
    let mut waiting: HashMap<String, Vec<(Kind, String)>> = HashMap::new();
    // Top-level entities as text, each with its sort name, by kind.
    let mut sections: Vec<(&'static str, Vec<(String, String)>)> = Vec::new();
    for &kind in Kind::ALL.iter().rev() {
        let mut top: Vec<(String, String)> = Vec::new();
        for e in live.decoded(kind) {
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
            let out = Value::Object(out);
            match nested {
                Some((_, parent)) => waiting
                    .entry(parent.to_owned())
                    .or_default()
                    .push((kind, out.to_string())),
                None => top.push((sort_name(kind, &out).to_owned(), item(&out, options.json))),
            }
        }
        if !top.is_empty() {
            // By name, then by the text, which breaks ties the same way every time.
            top.sort_unstable();
            sections.push((kind.dao(), top));
        }
    }
    sections.sort_unstable_by_key(|(dao, _)| *dao);
    match options.json {
        true => json_document(&header, &sections),
        false => yaml_document(&header, &sections),
    }
}

/// One top-level entity as an item of its kind's list, unindented.
fn item(entity: &Value, json: bool) -> String {
    match json {
        true => serde_json::to_string_pretty(entity).unwrap_or_default(),
        false => serde_saphyr::to_string(&[entity]).unwrap_or_default(),
    }
}

/// The header's keys (`_format_version`, ...: all sort before a kind's name), then each
/// kind's list, as one YAML mapping.
fn yaml_document(header: &Object, sections: &[(&str, Vec<(String, String)>)]) -> String {
    let mut text = serde_saphyr::to_string(header).unwrap_or_default();
    text.reserve(
        sections
            .iter()
            .flat_map(|(_, items)| items)
            .map(|(_, t)| t.len())
            .sum(),
    );
    for (dao, items) in sections {
        text.push_str(dao);
        text.push_str(":\n");
        for (_, item) in items {
            text.push_str(item);
        }
    }
    text
}

/// The same as one pretty JSON object, as `serde_json::to_string_pretty` indents it.
fn json_document(header: &Object, sections: &[(&str, Vec<(String, String)>)]) -> String {
    let indent = |text: &str, by: &str| text.replace('\n', &format!("\n{by}"));
    let mut entries: Vec<String> = header
        .iter()
        .map(|(k, v)| {
            let v = serde_json::to_string_pretty(v).unwrap_or_default();
            format!("  {}: {}", Value::from(k.as_str()), indent(&v, "  "))
        })
        .collect();
    for (dao, items) in sections {
        let items: Vec<String> = items
            .iter()
            .map(|(_, t)| format!("    {}", indent(t, "    ")))
            .collect();
        entries.push(format!(
            "  {}: [\n{}\n  ]",
            Value::from(*dao),
            items.join(",\n")
        ));
    }
    format!("{{\n{}\n}}\n", entries.join(",\n"))
}

/// Kinds written inside their parent when they have exactly one.
fn nests(kind: Kind) -> bool {
    !matches!(kind, Kind::Service | Kind::Consumer | Kind::Upstream)
}

/// Puts written children into their parent, one sorted list per kind.
fn insert_children(parent: &mut Object, children: Vec<(Kind, String)>) {
    let mut by_kind: BTreeMap<Kind, Vec<Value>> = BTreeMap::new();
    for (kind, child) in children {
        let child = serde_json::from_str(&child).unwrap_or_default();
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
    items.sort_by_cached_key(|v| (sort_name(kind, v).to_owned(), v.to_string()));
}

/// What identifies an entity of `kind` to a reader, the first sort key.
fn sort_name(kind: Kind, v: &Value) -> &str {
    [
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
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(v: Value) -> Object {
        match v {
            Value::Object(o) => o,
            _ => unreachable!(),
        }
    }

    /// Nesting two levels deep, a PEM, an unnamed tie (two `cors` instances), header
    /// keys (`_transform` for basic-auth, `_info` for select tags).
    fn gateway() -> LiveState {
        let pem =
            "-----BEGIN CERTIFICATE-----\nMIIBaTCCARCgAwIBAgIUZ2qz\n-----END CERTIFICATE-----\n";
        LiveState::from_entities([
            (
                Kind::Service,
                vec![
                    obj(json!({"id": "s2", "name": "b", "host": "b.internal", "port": 8080})),
                    obj(json!({"id": "s1", "name": "a", "host": "a.internal", "tags": ["t"]})),
                ],
            ),
            (
                Kind::Route,
                vec![obj(
                    json!({"id": "r1", "name": "r", "service": {"id": "s1"},
                                "paths": ["/a", "/b"]}),
                )],
            ),
            (
                Kind::Plugin,
                vec![
                    obj(json!({"id": "p1", "name": "cors", "instance_name": "z",
                               "config": {"origins": ["*"]}})),
                    obj(json!({"id": "p2", "name": "cors", "instance_name": "y",
                               "config": {"origins": ["x"]}})),
                    obj(json!({"id": "p3", "name": "acl", "route": {"id": "r1"},
                               "config": {"allow": ["g"]}})),
                ],
            ),
            (
                Kind::Consumer,
                vec![obj(json!({"id": "c1", "username": "ann"}))],
            ),
            (
                Kind::BasicAuth,
                vec![obj(json!({"id": "b1", "consumer": {"id": "c1"},
                                "username": "ann", "password": "hashed"}))],
            ),
            (
                Kind::CaCertificate,
                vec![obj(json!({"id": "ca1", "cert": pem}))],
            ),
        ])
    }

    /// The document is written piece by piece; it must be exactly what serialising the
    /// whole tree at once gives, in both formats.
    #[test]
    fn the_streamed_document_is_the_whole_trees_serialisation() {
        let live = gateway();
        for select_tags in [vec![], vec!["t".to_owned()]] {
            for with_id in [false, true] {
                let options = |json| DumpOptions {
                    with_id,
                    select_tags: select_tags.clone(),
                    json,
                    ..DumpOptions::default()
                };
                let yaml = dump(&live, &options(false));
                let tree: Value = serde_saphyr::from_str(&yaml).unwrap();
                assert_eq!(yaml, serde_saphyr::to_string(&tree).unwrap());
                assert_eq!(tree["routes"], Value::Null, "nested:\n{yaml}");
                assert_eq!(
                    tree["services"][0]["routes"][0]["plugins"][0]["name"],
                    "acl"
                );
                assert_eq!(tree["plugins"].as_array().unwrap().len(), 2, "{yaml}");

                let json = dump(&live, &options(true));
                let json_tree: Value = serde_json::from_str(&json).unwrap();
                assert_eq!(
                    json,
                    serde_json::to_string_pretty(&json_tree).unwrap() + "\n"
                );
                assert_eq!(json_tree, tree);
            }
        }
    }
}
