//! DB-less mode's `/config`: load a whole declarative configuration into a fresh store,
//! or export the store as one (`kong/api/routes/config.lua`,
//! `kong/db/schema/others/declarative_config.lua`, `kong/db/declarative/`).

use std::collections::{BTreeMap, HashMap};

use carl_model::validate::lua_literal;
use carl_model::{Kind, Object, foreign_id, is_uuid};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::errors::ApiError;
use crate::hooks;
use crate::store::{Store, unique_fields};

/// Kong's namespace for declarative ids (`declarative_config.lua`).
const DECLARATIVE_NAMESPACE: Uuid = Uuid::from_u128(0xfd02801f_0957_4a15_a55a_c8d9606f30b5);

/// One entity of the file, flattened, with where it sits in the input (for errors).
struct Item {
    kind: Kind,
    obj: Object,
    /// `["services", 0, "routes", 1]`
    path: Vec<Value>,
    /// The entity as the input gave it (nested children left out, the parent's id added
    /// when the parent gave one): what `flatten_errors` echoes.
    input: Object,
}

/// An error that belongs to one entity of the input.
struct EntityError {
    kind: Kind,
    path: Vec<Value>,
    input: Object,
    error: Value,
    /// A dangling reference: Kong files these under the entity's key rather than its
    /// position, where `flatten_errors` cannot find them, so they vanish from its
    /// answer (`errors.lua` `flatten_errors` puts them back in a detached table).
    by_key: bool,
}

impl EntityError {
    fn of(item: &Item, error: Value) -> EntityError {
        EntityError {
            kind: item.kind,
            path: item.path.clone(),
            input: item.input.clone(),
            error,
            by_key: false,
        }
    }
}

/// Reads the request into a configuration table: a JSON body with `_format_version`,
/// a `config` parameter holding JSON or YAML text, or a raw YAML/JSON body.
pub fn parse_input(content_type: &str, body: &[u8]) -> Result<(Value, Option<String>), ApiError> {
    let text = String::from_utf8_lossy(body).into_owned();
    // `declarative/init.lua` `unserialize`: JSON first, then YAML (whose parser here
    // has budgets a large gateway's configuration exceeds).
    let parse_text = |t: &str| -> Result<Value, ApiError> {
        if let Ok(v) = serde_json::from_str::<Value>(t) {
            return Ok(v);
        }
        let mut budget = serde_saphyr::Budget::default();
        budget.max_nodes = 50_000_000;
        budget.max_events = 100_000_000;
        budget.max_total_scalar_bytes = 1 << 30;
        let options = serde_saphyr::options! { budget: Some(budget) };
        serde_saphyr::from_str_with_options::<Value>(t, options).map_err(|_| {
            invalid(
                json!({"error": "failed parsing declarative configuration: expected an object"}),
            )
        })
    };
    if content_type.starts_with("application/json") {
        let v: Value = serde_json::from_slice(body).map_err(|_| ApiError::bad_json())?;
        if v.get("_format_version").is_some() {
            return Ok((v, None));
        }
        if let Some(config) = v.get("config").and_then(Value::as_str) {
            return Ok((parse_text(config)?, Some(config.to_owned())));
        }
        return Err(ApiError::Message(
            axum::http::StatusCode::BAD_REQUEST,
            "expected a declarative configuration".into(),
        ));
    }
    if content_type.starts_with("application/x-www-form-urlencoded") {
        let config = url_form_value(&text, "config").ok_or_else(|| {
            ApiError::Message(
                axum::http::StatusCode::BAD_REQUEST,
                "expected a declarative configuration".into(),
            )
        })?;
        return Ok((parse_text(&config)?, Some(config)));
    }
    if text.trim().is_empty() {
        return Err(ApiError::Message(
            axum::http::StatusCode::BAD_REQUEST,
            "expected a declarative configuration".into(),
        ));
    }
    Ok((parse_text(&text)?, Some(text)))
}

fn url_form_value(body: &str, name: &str) -> Option<String> {
    body.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == name).then(|| {
            let v = v.replace('+', " ");
            let mut out = Vec::new();
            let bytes = v.as_bytes();
            let mut i = 0;
            while i < bytes.len() {
                if bytes[i] == b'%'
                    && i + 2 < bytes.len()
                    && let Ok(b) = u8::from_str_radix(&v[i + 1..i + 3], 16)
                {
                    out.push(b);
                    i += 3;
                    continue;
                }
                out.push(bytes[i]);
                i += 1;
            }
            String::from_utf8_lossy(&out).into_owned()
        })
    })
}

/// Code 14 with Kong's message built from the error tree.
fn invalid(fields: Value) -> ApiError {
    ApiError::declarative(
        format!("declarative config is invalid: {}", lua_literal(&fields)),
        fields,
    )
}

/// The kinds that may be nested under `parent`, by their DAO name, with the foreign
/// key that links them.
fn nested_kinds(parent: Kind) -> Vec<(Kind, &'static str)> {
    Kind::ALL
        .iter()
        .filter_map(|k| {
            k.foreign_keys()
                .iter()
                .find(|(_, t)| *t == parent)
                .map(|(f, _)| (*k, *f))
        })
        .collect()
}

fn set_error(tree: &mut Value, path: &[Value], err: Value) {
    let Some((head, rest)) = path.split_first() else {
        *tree = err;
        return;
    };
    match head {
        Value::String(key) => {
            if !tree.is_object() {
                *tree = json!({});
            }
            if let Some(map) = tree.as_object_mut() {
                let slot = map.entry(key.clone()).or_insert(Value::Null);
                set_error(slot, rest, err);
            }
        }
        Value::Number(n) => {
            let i = n.as_u64().unwrap_or(0) as usize;
            if !tree.is_array() {
                *tree = json!([]);
            }
            if let Some(list) = tree.as_array_mut() {
                while list.len() <= i {
                    list.push(Value::Null);
                }
                set_error(&mut list[i], rest, err);
            }
        }
        _ => {}
    }
}

/// Loads `input` into a new store, as `POST /config` does; the error is code 14 with a
/// tree of errors mirroring the input, or with `flatten_errors` a list of entities and
/// their errors (`kong/db/errors.lua` `declarative_config_flattened`).
pub fn load(input: &Value, flatten_errors: bool) -> Result<Store, ApiError> {
    let Some(root) = input.as_object() else {
        return Err(invalid(
            json!({"error": "failed parsing declarative configuration: expected an object"}),
        ));
    };
    let mut errors = json!({});
    match root.get("_format_version") {
        Some(Value::String(v)) if ["1.1", "2.1", "3.0"].contains(&v.as_str()) => {}
        Some(_) => set_error(
            &mut errors,
            &[json!("_format_version")],
            json!("expected one of: 1.1, 2.1, 3.0"),
        ),
        None => set_error(
            &mut errors,
            &[json!("_format_version")],
            json!("required field missing"),
        ),
    }
    let transform = root
        .get("_transform")
        .and_then(Value::as_bool)
        .unwrap_or(true);
    let mut items = Vec::new();
    let mut entity_errors: Vec<EntityError> = Vec::new();
    for (key, value) in root {
        if matches!(
            key.as_str(),
            "_format_version" | "_transform" | "_comment" | "_ignore"
        ) {
            continue;
        }
        match Kind::from_dao(key) {
            Some(kind) => {
                let at = vec![json!(key)];
                flatten(kind, value, None, at, &mut items, &mut errors);
            }
            None => set_error(&mut errors, &[json!(key)], json!("unknown field")),
        }
    }

    // Ids: given, or derived from the endpoint key (stable across reloads), or random.
    for item in &mut items {
        if item
            .obj
            .get("id")
            .and_then(Value::as_str)
            .is_none_or(|s| !is_uuid(s))
        {
            // As `declarative_config.lua` does: by the cache key when the kind has one
            // (a target's is upstream + target, so the same target under two
            // upstreams gets two ids), else by the endpoint key.
            let cache_key = item.kind.cache_key();
            let key = if cache_key.is_empty() {
                item.kind
                    .lookup_key()
                    .and_then(|k| item.obj.get(k))
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            } else {
                let parts: Vec<String> = cache_key
                    .iter()
                    .map(|k| match item.obj.get(*k) {
                        Some(Value::String(s)) => s.clone(),
                        Some(Value::Object(fk)) => {
                            fk.get("id").or_else(|| fk.get("name")).map_or_else(
                                || Value::Object(fk.clone()).to_string(),
                                |v| v.as_str().map_or_else(|| v.to_string(), str::to_owned),
                            )
                        }
                        Some(Value::Null) | None => String::new(),
                        Some(other) => other.to_string(),
                    })
                    .collect();
                Some(parts.join(":"))
            };
            let id = match key {
                Some(k) => Uuid::new_v5(
                    &Uuid::new_v5(&DECLARATIVE_NAMESPACE, item.kind.dao().as_bytes()),
                    k.as_bytes(),
                ),
                None => Uuid::new_v4(),
            };
            item.obj.insert("id".into(), json!(id.to_string()));
        }
    }

    // Uniqueness within the file, and an index for references by key.
    let mut by_key: HashMap<(Kind, String), String> = HashMap::new();
    let mut seen: HashMap<(Kind, String, String), ()> = HashMap::new();
    for item in &items {
        let id = item.obj["id"].as_str().unwrap_or_default().to_owned();
        // As `populate_references` does: the unique keys first; the primary key only
        // when they did not clash already (one error per entity).
        let mut keys: Vec<(&str, String)> = unique_fields(item.kind)
            .into_iter()
            .filter_map(|f| {
                let v = item.obj.get(f).and_then(Value::as_str)?;
                Some((f, v.to_owned()))
            })
            .collect();
        keys.push(("primary key", id.clone()));
        for (what, value) in keys {
            let field = if what == "primary key" { "id" } else { what };
            if seen
                .insert((item.kind, field.to_owned(), value.clone()), ())
                .is_some()
            {
                entity_errors.push(EntityError::of(
                    item,
                    json!(format!(
                        "uniqueness violation: '{}' entity with {what} set to '{value}' already declared",
                        item.kind.dao()
                    )),
                ));
                break;
            }
        }
        by_key.insert((item.kind, id.clone()), id.clone());
        if let Some(k) = item.kind.lookup_key()
            && let Some(v) = item.obj.get(k).and_then(Value::as_str)
        {
            by_key.insert((item.kind, v.to_owned()), id);
        }
    }

    // References, defaults, validation.
    let mut store = Store::default();
    let mut ready = Vec::with_capacity(items.len());
    for mut item in items {
        let mut bad = false;
        for (field, target) in item.kind.foreign_keys() {
            let reference = match item.obj.get(*field) {
                Some(Value::String(s)) => Some(s.clone()),
                Some(Value::Object(o)) => o.get("id").and_then(Value::as_str).map(str::to_owned),
                _ => None,
            };
            let Some(reference) = reference else { continue };
            match by_key.get(&(*target, reference.clone())) {
                Some(id) => {
                    item.obj.insert((*field).into(), json!({ "id": id }));
                }
                None => {
                    let mut e = EntityError::of(
                        &item,
                        json!([format!(
                            "invalid reference '{field}: {reference}' (no such entry in '{}')",
                            target.dao()
                        )]),
                    );
                    e.by_key = true;
                    entity_errors.push(e);
                    bad = true;
                }
            }
        }
        if bad {
            continue;
        }
        if let Err(e) = hooks::normalize(item.kind, &mut item.obj) {
            let error = e.fields().unwrap_or(json!("invalid"));
            entity_errors.push(EntityError::of(&item, error));
            continue;
        }
        let extra = hooks::take_extra(item.kind, &mut item.obj);
        crate::engine::prepare_insert(item.kind, &mut item.obj);
        if let Err(v) = hooks::validate_entity(item.kind, &item.obj) {
            entity_errors.push(EntityError::of(&item, v.to_json()));
            continue;
        }
        if !transform && item.kind == Kind::BasicAuth {
            // `_transform: false`: values are stored as given (already hashed).
        } else if let Err(e) = hooks::before_store(&store, item.kind, &mut item.obj, &extra) {
            let error = e.fields().unwrap_or(json!("invalid"));
            entity_errors.push(EntityError::of(&item, error));
            continue;
        }
        ready.push((item.kind, item.obj));
    }
    if flatten_errors && !entity_errors.is_empty() {
        return Err(flattened(errors, entity_errors));
    }
    for e in entity_errors {
        set_error(&mut errors, &e.path, e.error);
    }
    if errors.as_object().is_some_and(|o| !o.is_empty()) {
        return Err(invalid(errors));
    }
    for (kind, obj) in ready {
        store.put(kind, obj);
    }
    Ok(store)
}

/// Code 14 with `flattened_errors`: one entry per entity at fault, children before
/// their parent, each with its errors as `field` (dotted path) or `entity` messages;
/// `fields` keeps only what belongs to no entity.
fn flattened(mut rest: Value, entity_errors: Vec<EntityError>) -> ApiError {
    // Several errors may land on one entity (a uniqueness and a validation error).
    let mut by_path: Vec<EntityError> = Vec::new();
    for e in entity_errors.into_iter().filter(|e| !e.by_key) {
        match by_path.iter_mut().find(|seen| seen.path == e.path) {
            Some(seen) => merge_errors(&mut seen.error, e.error),
            None => by_path.push(e),
        }
    }
    // Kong walks sections and positions in order, a parent's children before it.
    by_path.sort_by(|a, b| {
        for (x, y) in a.path.iter().zip(&b.path) {
            let order = match (x, y) {
                (Value::Number(x), Value::Number(y)) => x.as_u64().cmp(&y.as_u64()),
                (x, y) => x.as_str().cmp(&y.as_str()),
            };
            if order.is_ne() {
                return order;
            }
        }
        b.path.len().cmp(&a.path.len())
    });
    let list: Vec<Value> = by_path
        .into_iter()
        .map(|e| {
            let mut errors = Vec::new();
            categorize(&e.error, "", &mut errors);
            let mut entry = serde_json::Map::new();
            entry.insert(
                "entity_type".into(),
                json!(e.kind.dao().trim_end_matches('s')),
            );
            if let Some(name) = e
                .input
                .get("name")
                .and_then(Value::as_str)
                .filter(|n| !n.is_empty())
            {
                entry.insert("entity_name".into(), json!(name));
            }
            if let Some(id) = e
                .input
                .get("id")
                .and_then(Value::as_str)
                .filter(|id| is_uuid(id))
            {
                entry.insert("entity_id".into(), json!(id));
            }
            if let Some(tags) = e
                .input
                .get("tags")
                .filter(|t| t.as_array().is_some_and(|l| l.iter().all(Value::is_string)))
            {
                entry.insert("entity_tags".into(), tags.clone());
            }
            entry.insert("entity".into(), Value::Object(e.input));
            entry.insert("errors".into(), Value::Array(errors));
            Value::Object(entry)
        })
        .collect();
    if !rest.is_object() {
        rest = json!({});
    }
    let mut body = serde_json::Map::new();
    body.insert("code".into(), json!(14));
    body.insert("name".into(), json!("invalid declarative configuration"));
    body.insert(
        "message".into(),
        json!(format!(
            "declarative config is invalid: {}",
            lua_literal(&rest)
        )),
    );
    body.insert("fields".into(), rest);
    body.insert("flattened_errors".into(), Value::Array(list));
    ApiError::Json(axum::http::StatusCode::BAD_REQUEST, Value::Object(body))
}

fn merge_errors(into: &mut Value, more: Value) {
    match (into, more) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in b {
                a.insert(k, v);
            }
        }
        (Value::Object(a), other) => {
            let list = a.entry("@entity").or_insert_with(|| json!([]));
            if let Value::Array(l) = list {
                l.extend(other.as_array().cloned().unwrap_or_else(|| vec![other]));
            }
        }
        (into, more) => {
            let first = std::mem::take(into);
            *into = json!({ "@entity": [first, more] });
        }
    }
}

/// Kong's `categorize_errors`: `@entity` messages, and field messages at their dotted
/// path (keys in order; list positions counted from 1, as in Lua).
fn categorize(error: &Value, ns: &str, out: &mut Vec<Value>) {
    let join = |field: &str| {
        if ns.is_empty() {
            field.to_owned()
        } else {
            format!("{ns}.{field}")
        }
    };
    match error {
        Value::String(message) if ns.is_empty() => {
            out.push(json!({"type": "entity", "message": message}));
        }
        Value::String(message) => {
            out.push(json!({"type": "field", "field": ns, "message": message}));
        }
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            for key in keys {
                let value = &map[key];
                if key == "@entity" {
                    for m in value
                        .as_array()
                        .cloned()
                        .unwrap_or_else(|| vec![value.clone()])
                    {
                        if let Some(m) = m.as_str() {
                            out.push(json!({"type": "entity", "message": m}));
                        }
                    }
                } else {
                    categorize(value, &join(key), out);
                }
            }
        }
        Value::Array(list) => {
            for (i, value) in list.iter().enumerate() {
                if !value.is_null() {
                    categorize(value, &join(&(i + 1).to_string()), out);
                }
            }
        }
        _ => {}
    }
}

/// Collects the entities of `value` (a list of `kind`), nested children included.
fn flatten(
    kind: Kind,
    value: &Value,
    parent: Option<(&'static str, Value, Option<String>)>,
    path: Vec<Value>,
    out: &mut Vec<Item>,
    errors: &mut Value,
) {
    let Some(list) = value.as_array() else {
        set_error(errors, &path, json!("expected an array"));
        return;
    };
    let children = nested_kinds(kind);
    for (i, entry) in list.iter().enumerate() {
        let mut item_path = path.clone();
        item_path.push(json!(i));
        let Some(obj) = entry.as_object() else {
            set_error(errors, &item_path, json!("expected a record"));
            continue;
        };
        let mut obj = obj.clone();
        let mut nested = Vec::new();
        for (child, field) in &children {
            if let Some(v) = obj.remove(child.dao()) {
                nested.push((*child, *field, v));
            }
        }
        let mut input = obj.clone();
        obj.remove("_comment");
        obj.remove("_ignore");
        if let Some((field, parent_ref, parent_pk)) = &parent {
            if let Some(pk) = parent_pk
                && !input.contains_key(*field)
            {
                input.insert((*field).to_owned(), json!({ "id": pk }));
            }
            obj.insert((*field).to_owned(), parent_ref.clone());
        }
        let own_pk = obj
            .get("id")
            .and_then(Value::as_str)
            .filter(|id| is_uuid(id))
            .map(str::to_owned);
        // Children refer to this entity by its id when it has one, else its key.
        let own_ref = obj
            .get("id")
            .cloned()
            .or_else(|| kind.lookup_key().and_then(|k| obj.get(k)).cloned());
        out.push(Item {
            kind,
            obj,
            path: item_path.clone(),
            input,
        });
        let index = out.len() - 1;
        for (child, field, v) in nested {
            let reference = match &own_ref {
                Some(r) => r.clone(),
                None => {
                    // No key yet: give the parent its id now so children can point at it.
                    let id = Uuid::new_v4().to_string();
                    out[index].obj.insert("id".into(), json!(id));
                    json!(id)
                }
            };
            let mut child_path = item_path.clone();
            child_path.push(json!(child.dao()));
            let parent = Some((field, reference, own_pk.clone()));
            flatten(child, &v, parent, child_path, out, errors);
        }
    }
}

/// The store as Kong's `GET /config` exports it: flat, parents first, foreign keys as
/// bare ids, `_transform: false`.
pub fn export(store: &Store) -> String {
    let mut root = serde_json::Map::new();
    root.insert("_format_version".into(), json!("3.0"));
    root.insert("_transform".into(), json!(false));
    for &kind in Kind::ALL {
        let table = store.table(kind);
        if table.len() == 0 {
            continue;
        }
        let list: Vec<Value> = table
            .by_id
            .values()
            .map(|o| {
                let mut o = o.clone();
                for (field, _) in kind.foreign_keys() {
                    if let Some(id) = o.get(*field).and_then(foreign_id).map(str::to_owned) {
                        o.insert((*field).into(), json!(id));
                    }
                }
                Value::Object(o)
            })
            .collect();
        root.insert(kind.dao().into(), Value::Array(list));
    }
    serde_saphyr::to_string(&Value::Object(root)).unwrap_or_default()
}

/// The `/config` 201 body: every loaded entity, by kind then id.
pub fn loaded_body(store: &Store) -> Value {
    let mut out = serde_json::Map::new();
    for &kind in Kind::ALL {
        let table = store.table(kind);
        if table.len() == 0 {
            continue;
        }
        let map: BTreeMap<String, Value> = table
            .by_id
            .iter()
            .map(|(id, o)| (id.clone(), Value::Object(o.clone())))
            .collect();
        out.insert(kind.dao().into(), json!(map));
    }
    Value::Object(out)
}
