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
}

/// Reads the request into a configuration table: a JSON body with `_format_version`,
/// a `config` parameter holding JSON or YAML text, or a raw YAML/JSON body.
pub fn parse_input(content_type: &str, body: &[u8]) -> Result<(Value, Option<String>), ApiError> {
    let text = String::from_utf8_lossy(body).into_owned();
    let parse_text = |t: &str| -> Result<Value, ApiError> {
        serde_saphyr::from_str::<Value>(t).map_err(|_| {
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
/// tree of errors mirroring the input.
pub fn load(input: &Value) -> Result<Store, ApiError> {
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
    for (key, value) in root {
        if matches!(
            key.as_str(),
            "_format_version" | "_transform" | "_comment" | "_ignore"
        ) {
            continue;
        }
        match Kind::from_dao(key) {
            Some(kind) => flatten(kind, value, None, vec![json!(key)], &mut items, &mut errors),
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
        let mut keys = vec![("primary key", "id".to_owned(), id.clone())];
        for f in unique_fields(item.kind) {
            if let Some(v) = item.obj.get(f).and_then(Value::as_str) {
                keys.push((f, f.to_owned(), v.to_owned()));
            }
        }
        for (label, field, value) in keys {
            if seen
                .insert((item.kind, field.clone(), value.clone()), ())
                .is_some()
            {
                let what = if label == "primary key" {
                    "primary key".to_owned()
                } else {
                    field.clone()
                };
                set_error(
                    &mut errors,
                    &item.path,
                    json!(format!(
                        "uniqueness violation: '{}' entity with {what} set to '{value}' already declared",
                        item.kind.dao()
                    )),
                );
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
                    set_error(
                        &mut errors,
                        &item.path,
                        json!([format!(
                            "invalid reference '{field}: {reference}' (no such entry in '{}')",
                            target.dao()
                        )]),
                    );
                    bad = true;
                }
            }
        }
        if bad {
            continue;
        }
        if let Err(e) = hooks::normalize(item.kind, &mut item.obj) {
            set_error(
                &mut errors,
                &item.path,
                e.fields().unwrap_or(json!("invalid")),
            );
            continue;
        }
        let extra = hooks::take_extra(item.kind, &mut item.obj);
        crate::engine::prepare_insert(item.kind, &mut item.obj);
        if let Err(v) = hooks::validate_entity(item.kind, &item.obj) {
            set_error(&mut errors, &item.path, v.to_json());
            continue;
        }
        if !transform && item.kind == Kind::BasicAuth {
            // `_transform: false`: values are stored as given (already hashed).
        } else if hooks::before_store(&store, item.kind, &mut item.obj, &extra).is_err() {
            continue;
        }
        ready.push((item.kind, item.obj));
    }
    if errors.as_object().is_some_and(|o| !o.is_empty()) {
        return Err(invalid(errors));
    }
    for (kind, obj) in ready {
        store.put(kind, obj);
    }
    Ok(store)
}

/// Collects the entities of `value` (a list of `kind`), nested children included.
fn flatten(
    kind: Kind,
    value: &Value,
    parent: Option<(&'static str, Value)>,
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
        obj.remove("_comment");
        obj.remove("_ignore");
        let mut nested = Vec::new();
        for (child, field) in &children {
            if let Some(v) = obj.remove(child.dao()) {
                nested.push((*child, *field, v));
            }
        }
        if let Some((field, parent_ref)) = &parent {
            obj.insert((*field).to_owned(), parent_ref.clone());
        }
        // Children refer to this entity by its id when it has one, else its key.
        let own_ref = obj
            .get("id")
            .cloned()
            .or_else(|| kind.lookup_key().and_then(|k| obj.get(k)).cloned());
        out.push(Item {
            kind,
            obj,
            path: item_path.clone(),
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
            flatten(child, &v, Some((field, reference)), child_path, out, errors);
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
