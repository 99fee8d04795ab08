//! Kong's DAO semantics over the [`Store`], for every kind: key lookup, insert (POST),
//! upsert (PUT), update (PATCH), delete with cascades and restrictions, and lists
//! (`kong/api/endpoints.lua`, `kong/db/dao/init.lua`).

use std::time::{SystemTime, UNIX_EPOCH};

use carl_model::validate::Violations;
use carl_model::{FieldType, Kind, Object, foreign_id, is_uuid};
use serde_json::{Value, json};

use crate::errors::ApiError;
use crate::hooks;
use crate::store::{Store, unique_fields};

pub fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Kong's timestamp for `kind`: whole seconds, except targets (milliseconds).
fn timestamp(kind: Kind) -> Value {
    let t = now();
    if kind == Kind::Target {
        json!((t * 1000.0).floor() / 1000.0)
    } else {
        json!(t.floor() as i64)
    }
}

/// A path key: a UUID is only ever an id; anything else is the endpoint key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Key {
    Id(String),
    Endpoint(&'static str, String),
}

/// Parses `key` for `kind`. A non-UUID key of a kind without an endpoint key is not
/// found (Kong looks it up as a primary key and finds nothing).
pub fn parse_key(kind: Kind, key: &str) -> Result<Key, ApiError> {
    if is_uuid(key) {
        return Ok(Key::Id(key.to_ascii_lowercase()));
    }
    match kind.lookup_key() {
        Some(field) => {
            // The endpoint key's own validator runs on the path value (code 10).
            let schema = kind.schema();
            if let Some(f) = schema.field(field) {
                let mut probe = Object::new();
                probe.insert(field.to_owned(), json!(key));
                if let Err(v) = hooks::validate_field(kind, f, &json!(key)) {
                    return Err(ApiError::invalid_unique(field, v));
                }
            }
            Ok(Key::Endpoint(field, key.to_owned()))
        }
        None => Ok(Key::Endpoint("id", key.to_owned())),
    }
}

/// The id `key` names, if the entity exists.
pub fn find(store: &Store, kind: Kind, key: &Key) -> Option<String> {
    match key {
        Key::Id(id) => store.get(kind, id).map(|_| id.clone()),
        Key::Endpoint("id", _) => None,
        Key::Endpoint(field, value) => store
            .table(kind)
            .id_by(field, &json!(value))
            .map(str::to_owned),
    }
}

pub fn find_key(store: &Store, kind: Kind, key: &str) -> Result<Option<String>, ApiError> {
    if kind == Kind::Certificate && !is_uuid(key) {
        // Certificates are looked up by one of their SNI names (api/routes/certificates.lua).
        let sni = store
            .table(Kind::Sni)
            .id_by("name", &json!(key))
            .map(str::to_owned);
        return Ok(sni
            .and_then(|id| store.get(Kind::Sni, &id))
            .and_then(|s| s.get("certificate"))
            .and_then(foreign_id)
            .map(str::to_owned));
    }
    Ok(find(store, kind, &parse_key(kind, key)?))
}

/// Kong's "not found" for a PATCH: the full code-6 body.
pub fn not_found_error(key: &Key) -> ApiError {
    match key {
        Key::Id(id) => ApiError::not_found_pk(id),
        Key::Endpoint(field, value) => ApiError::not_found_by(field, value),
    }
}

/// `{"name": "svc"}` → `{"id": ...}` (dao/init.lua `resolve_foreign`); code 13 when the
/// endpoint key names nothing.
fn resolve_foreign(store: &Store, kind: Kind, obj: &mut Object) -> Result<(), ApiError> {
    for (field, parent) in kind.foreign_keys() {
        let Some(Value::Object(fk)) = obj.get(*field) else {
            continue;
        };
        if fk.get("id").is_some() {
            continue;
        }
        let Some(ek) = parent.lookup_key() else {
            continue;
        };
        let Some(value) = fk.get(ek).and_then(Value::as_str) else {
            continue;
        };
        match store.table(*parent).id_by(ek, &json!(value)) {
            Some(id) => {
                let id = id.to_owned();
                obj.insert((*field).into(), json!({ "id": id }));
            }
            None => {
                return Err(ApiError::foreign_key_unresolved(
                    field,
                    ek,
                    value,
                    parent.dao(),
                ));
            }
        }
    }
    Ok(())
}

/// Fills defaults as Kong's insert does: absent fields only; an explicit null stays
/// null (so a required field sent as null fails validation).
fn fill_defaults(kind: Kind, obj: &mut Object) {
    let explicit_nulls: Vec<String> = obj
        .iter()
        .filter(|(_, v)| v.is_null())
        .map(|(k, _)| k.clone())
        .collect();
    match carl_model::schema::effective(kind, obj) {
        Ok(schema) => schema.fill_defaults(obj),
        Err(_) => kind.schema().fill_defaults(obj),
    }
    for k in explicit_nulls {
        obj.insert(k, Value::Null);
    }
}

/// Drops duplicate elements of set-typed fields, keeping first occurrences in order
/// (Kong's `make_set`).
fn dedup_sets(kind: Kind, obj: &mut Object) {
    let Ok(schema) = carl_model::schema::effective(kind, obj) else {
        return;
    };
    for field in schema.fields.iter().filter(|f| f.is_set()) {
        if let Some(Value::Array(items)) = obj.get_mut(&field.name) {
            let mut seen: Vec<Value> = Vec::with_capacity(items.len());
            items.retain(|v| {
                if seen.contains(v) {
                    false
                } else {
                    seen.push(v.clone());
                    true
                }
            });
        }
    }
}

/// Validates `obj` (complete) and makes it storable.
fn check(store: &Store, kind: Kind, obj: &mut Object) -> Result<(), ApiError> {
    resolve_foreign(store, kind, obj)?;
    hooks::validate_entity(kind, obj).map_err(|v| ApiError::schema_violation(&v))?;
    dedup_sets(kind, obj);
    hooks::derive(kind, obj);
    Ok(())
}

/// Database-level constraints: foreign keys exist (code 4), unique fields and cache
/// keys are free (409 code 5).
fn constraints(store: &Store, kind: Kind, id: &str, obj: &Object) -> Result<(), ApiError> {
    for (field, parent) in kind.foreign_keys() {
        if let Some(fid) = obj.get(*field).and_then(foreign_id)
            && store.get(*parent, fid).is_none()
        {
            return Err(ApiError::foreign_key_invalid(field, parent.dao(), fid));
        }
    }
    for field in unique_fields(kind) {
        if let Some(v) = obj.get(field).filter(|v| !v.is_null())
            && let Some(other) = store.table(kind).id_by(field, v)
            && other != id
        {
            return Err(ApiError::unique_violation_value(field, v));
        }
    }
    if let Some(other) = store.id_by_cache_key(kind, obj)
        && other != id
    {
        let fields: Object = kind
            .cache_key()
            .iter()
            .map(|f| ((*f).to_owned(), obj.get(*f).cloned().unwrap_or(Value::Null)))
            .collect();
        return Err(ApiError::unique_violation_fields(&fields));
    }
    Ok(())
}

/// A parent forced by a nested path: `(foreign key field, parent id)`.
pub type Forced<'a> = Option<(&'static str, &'a str)>;

fn force_parent(obj: &mut Object, forced: Forced<'_>) {
    if let Some((field, id)) = forced {
        obj.insert(field.into(), json!({ "id": id }));
    }
}

fn body_id(obj: &Object) -> Option<String> {
    obj.get("id")
        .and_then(Value::as_str)
        .filter(|s| is_uuid(s))
        .map(str::to_ascii_lowercase)
}

/// POST: a full insert. A client `id` is honoured; an existing one is code 3.
pub fn insert(
    store: &mut Store,
    kind: Kind,
    mut body: Object,
    forced: Forced<'_>,
) -> Result<Object, ApiError> {
    hooks::normalize(kind, &mut body)?;
    force_parent(&mut body, forced);
    let id = match body.get("id") {
        None | Some(Value::Null) => uuid::Uuid::new_v4().to_string(),
        Some(_) => body_id(&body).unwrap_or_default(),
    };
    if !id.is_empty() {
        body.insert("id".into(), json!(id));
    }
    resolve_foreign(store, kind, &mut body)?;
    hooks::dao_checks(store, kind, &body, None)?;
    prepare_insert(kind, &mut body);
    check(store, kind, &mut body)?;
    let extra = hooks::take_extra(kind, &mut body);
    if store.get(kind, &id).is_some() {
        return Err(ApiError::primary_key_violation(&id));
    }
    write(store, kind, &id, body, &extra)
}

/// PUT: create or fully replace. By endpoint key the key field is forced to the URL's
/// value and an existing entity keeps its id. Always 200.
pub fn upsert(
    store: &mut Store,
    kind: Kind,
    key: &str,
    mut body: Object,
    forced: Forced<'_>,
) -> Result<Object, ApiError> {
    let parsed = parse_key(kind, key)?;
    hooks::normalize(kind, &mut body)?;
    let existing = if kind == Kind::Certificate && !is_uuid(key) {
        find_key(store, kind, key)?
    } else {
        find(store, kind, &parsed)
    };
    let id = match &parsed {
        Key::Id(id) => id.clone(),
        Key::Endpoint(field, value) => {
            if *field != "id" && kind != Kind::Certificate {
                body.insert((*field).to_owned(), json!(value));
            }
            existing
                .clone()
                .or_else(|| body_id(&body))
                .unwrap_or_else(|| uuid::Uuid::new_v4().to_string())
        }
    };
    body.insert("id".into(), json!(id));
    force_parent(&mut body, forced);
    if kind == Kind::Certificate && !is_uuid(key) {
        hooks::add_sni_name(&mut body, key);
    }
    resolve_foreign(store, kind, &mut body)?;
    hooks::dao_checks(store, kind, &body, None)?;
    prepare_insert(kind, &mut body);
    check(store, kind, &mut body)?;
    let mut extra = hooks::take_extra(kind, &mut body);
    // PUT replaces the whole entity: no SNIs given means none.
    hooks::replace_all(kind, &mut extra);
    write(store, kind, &id, body, &extra)
}

/// PATCH of the stored entity `id`: records merged, everything else replaced, then the
/// whole result validated.
pub fn update(
    store: &mut Store,
    kind: Kind,
    id: &str,
    mut body: Object,
) -> Result<Object, ApiError> {
    let Some(base) = store.get(kind, id).cloned() else {
        return Err(ApiError::not_found());
    };
    hooks::normalize_patch(kind, &base, &mut body)?;
    // The primary key is the URL's; Kong does not move an entity to a new id.
    body.remove("id");
    resolve_foreign(store, kind, &mut body)?;
    hooks::dao_checks(store, kind, &body, Some(&base))?;
    let mut merged = merge(kind, &base, body);
    stamp(kind, &mut merged, false);
    check(store, kind, &mut merged)?;
    let extra = hooks::take_extra(kind, &mut merged);
    write(store, kind, id, merged, &extra)
}

/// The end of every write: database constraints, DAO transformations, the store, and
/// the entity as the Admin API shows it.
fn write(
    store: &mut Store,
    kind: Kind,
    id: &str,
    mut body: Object,
    extra: &hooks::Extra,
) -> Result<Object, ApiError> {
    constraints(store, kind, id, &body)?;
    hooks::before_store(store, kind, &mut body, extra)?;
    store.put(kind, body.clone());
    hooks::after_store(store, kind, id, extra);
    Ok(hooks::output(store, kind, body))
}

/// What an insert adds to the input: defaults, generated values, timestamps.
pub fn prepare_insert(kind: Kind, obj: &mut Object) {
    fill_defaults(kind, obj);
    hooks::generate(kind, obj);
    stamp(kind, obj, true);
}

fn stamp(kind: Kind, obj: &mut Object, insert: bool) {
    let schema = kind.schema();
    let ts = timestamp(kind);
    if insert && schema.field("created_at").is_some() {
        obj.entry("created_at").or_insert(ts.clone());
        if obj.get("created_at").is_some_and(Value::is_null) {
            obj.insert("created_at".into(), ts.clone());
        }
    }
    if schema.field("updated_at").is_some() {
        obj.insert("updated_at".into(), ts);
    }
}

/// PATCH merge: top-level fields replaced, records merged recursively.
fn merge(kind: Kind, base: &Object, patch: Object) -> Object {
    let schema = carl_model::schema::effective(kind, base).unwrap_or(kind.schema());
    let mut out = base.clone();
    for (k, v) in patch {
        let field = schema.field(&k);
        match (field, out.get_mut(&k), v) {
            (Some(f), Some(Value::Object(old)), Value::Object(new))
                if f.ty == FieldType::Record =>
            {
                merge_record(&f.fields, old, new);
            }
            (_, _, v) => {
                out.insert(k, v);
            }
        }
    }
    out
}

fn merge_record(fields: &[carl_model::Field], old: &mut Object, new: Object) {
    for (k, v) in new {
        let field = fields.iter().find(|f| f.name == k);
        match (field, old.get_mut(&k), v) {
            (Some(f), Some(Value::Object(o)), Value::Object(n)) if f.ty == FieldType::Record => {
                merge_record(&f.fields, o, n)
            }
            (_, _, v) => {
                old.insert(k, v);
            }
        }
    }
}

/// Deletes `id` and what cascades from it; refuses (code 4) when a restricting
/// foreign key still points at it.
pub fn delete(store: &mut Store, kind: Kind, id: &str) -> Result<(), ApiError> {
    if kind == Kind::Certificate {
        // The certificates DAO deletes the SNIs first, then the certificate.
        for sni in store.children(Kind::Sni, "certificate", id) {
            store.remove(Kind::Sni, &sni);
        }
    }
    for (child, child_id) in store.referencing(kind, id) {
        let cascade = child
            .schema()
            .fields
            .iter()
            .filter(|f| f.ty == FieldType::Foreign)
            .any(|f| {
                f.raw.get("on_delete").and_then(Value::as_str) == Some("cascade")
                    && f.raw.get("reference").and_then(Value::as_str) == Some(kind.dao())
            });
        let still_points = child.foreign_keys().iter().any(|(f, t)| {
            *t == kind
                && store
                    .get(child, &child_id)
                    .and_then(|o| o.get(*f))
                    .and_then(foreign_id)
                    == Some(id)
        });
        if still_points && !cascade {
            return Err(ApiError::foreign_key_restricted(kind.dao(), child.dao()));
        }
    }
    cascade_delete(store, kind, id);
    Ok(())
}

fn cascade_delete(store: &mut Store, kind: Kind, id: &str) {
    for (child, child_id) in store.referencing(kind, id) {
        cascade_delete(store, child, &child_id);
    }
    store.remove(kind, id);
}

/// Schema validation errors for `obj` without storing it (the `/schemas/.../validate`
/// endpoints): defaults applied, no uniqueness or foreign-key existence checks.
pub fn validate_only(kind: Kind, mut body: Object) -> Result<(), ApiError> {
    hooks::normalize(kind, &mut body)?;
    let _ = hooks::take_extra(kind, &mut body);
    fill_defaults(kind, &mut body);
    hooks::generate(kind, &mut body);
    // Foreign keys by name are not resolved here; only their shape is checked.
    for (field, _) in kind.foreign_keys() {
        if let Some(Value::Object(fk)) = body.get(*field)
            && fk.get("id").is_none()
            && !fk.is_empty()
        {
            body.insert(
                (*field).into(),
                json!({ "id": uuid::Uuid::nil().to_string() }),
            );
        }
    }
    hooks::validate_entity(kind, &body).map_err(|v: Violations| ApiError::schema_violation(&v))
}
