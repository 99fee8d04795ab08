//! The Admin API router: Kong's generic endpoints for services and routes
//! (kong/api/endpoints.lua) plus the `/_sim/` control endpoints.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, MatchedPath, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post, put};
use carl_model::{FieldType, Kind, Object, foreign_id, is_uuid, service_url};
use serde_json::{Value, json};

use crate::SimConfig;
use crate::errors::ApiError;
use crate::pagination::{self, PageRequest};
use crate::stats::Stats;
use crate::store::Store;
use crate::validate::{self, Errors};

type ApiResult = Result<Response, ApiError>;

/// Shared state of one emulator instance.
pub struct Sim {
    config: SimConfig,
    node_id: String,
    store: Mutex<Store>,
    stats: Stats,
    latency_ms: AtomicU64,
}

impl Sim {
    pub fn new(config: SimConfig) -> Self {
        let latency = config.latency_ms;
        Sim {
            config,
            node_id: uuid::Uuid::new_v4().to_string(),
            store: Mutex::new(Store::default()),
            stats: Stats::default(),
            latency_ms: AtomicU64::new(latency),
        }
    }

    fn store(&self) -> MutexGuard<'_, Store> {
        // A panic elsewhere must not wedge the emulator.
        self.store.lock().unwrap_or_else(|e| e.into_inner())
    }
}

pub fn json_response(status: StatusCode, body: &Value) -> Response {
    (status, body.to_string()).into_response()
}

fn ok(status: StatusCode, obj: &Object) -> ApiResult {
    Ok(json_response(status, &Value::Object(obj.clone())))
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

type S = Arc<Sim>;

/// Registers `path` and `path/`: Kong tolerates a trailing slash.
fn both(router: Router<S>, path: &str, mr: MethodRouter<S>) -> Router<S> {
    router
        .route(&format!("{path}/"), mr.clone())
        .route(path, mr)
}

pub fn router(sim: S) -> Router {
    let mut r = Router::new().route("/", get(root));
    r = both(r, "/services", get(list_services).post(post_service));
    r = both(
        r,
        "/services/{key}",
        get(get_service)
            .put(put_service)
            .patch(patch_service)
            .delete(delete_service),
    );
    r = both(
        r,
        "/services/{key}/routes",
        get(list_service_routes).post(post_service_route),
    );
    r = both(
        r,
        "/services/{key}/routes/{rkey}",
        get(get_service_route)
            .put(put_service_route)
            .patch(patch_service_route)
            .delete(delete_service_route),
    );
    r = both(r, "/routes", get(list_routes).post(post_route));
    r = both(
        r,
        "/routes/{key}",
        get(get_route)
            .put(put_route)
            .patch(patch_route)
            .delete(delete_route),
    );
    r = both(
        r,
        "/routes/{key}/service",
        get(get_route_service).patch(patch_route_service),
    );
    r = both(r, "/schemas/{name}", get(get_schema));
    r = r
        .route("/_sim/stats", get(sim_stats))
        .route("/_sim/reset", post(sim_reset))
        .route("/_sim/faults", put(sim_faults));
    r.fallback(|| async { ApiError::not_found() })
        .layer(middleware::from_fn_with_state(sim.clone(), kong_layer))
        .layer(DefaultBodyLimit::max(10 * 1024 * 1024))
        .with_state(sim)
}

/// Kong's response headers, the JSON 405, injected latency and request counting.
async fn kong_layer(State(sim): State<S>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let path = req.uri().path();
    let is_sim = path == "/_sim" || path.starts_with("/_sim/");
    let method = req.method().as_str().to_owned();
    let route = req.extensions().get::<MatchedPath>().map(|m| {
        let p = m.as_str();
        let p = if p.len() > 1 {
            p.trim_end_matches('/')
        } else {
            p
        };
        format!("{method} {p}")
    });

    // CORS: Kong echoes the request's Origin, else `*` (kong/api/init.lua).
    let origin = req
        .headers()
        .get(header::ORIGIN)
        .cloned()
        .unwrap_or_else(|| HeaderValue::from_static("*"));
    let guard = (!is_sim).then(|| sim.stats.start());
    if !is_sim {
        let latency = sim.latency_ms.load(Ordering::Relaxed);
        if latency > 0 {
            tokio::time::sleep(Duration::from_millis(latency)).await;
        }
    }

    let mut resp = next.run(req).await;
    if resp.status() == StatusCode::METHOD_NOT_ALLOWED
        && !resp.headers().contains_key(header::CONTENT_TYPE)
    {
        resp = ApiError::method_not_allowed().into_response();
    }
    let headers = resp.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("kong/{}", sim.config.kong_version)) {
        headers.insert(header::SERVER, v);
    }
    if let Ok(v) = HeaderValue::from_str(&started.elapsed().as_millis().to_string()) {
        headers.insert("x-kong-admin-latency", v);
    }
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
        HeaderValue::from_static("true"),
    );

    if guard.is_some() {
        sim.stats.finish(&method, resp.status().as_u16(), route);
    }
    drop(guard);
    resp
}

// ---- node and schemas ----

async fn root(State(sim): State<S>) -> Response {
    json_response(
        StatusCode::OK,
        &json!({
            "version": sim.config.kong_version,
            "edition": "community",
            "tagline": "Welcome to kong",
            "hostname": "kong-sim",
            "node_id": sim.node_id,
            "lua_version": "LuaJIT 2.1.0-kong-sim",
            "timers": {"running": 0, "pending": 0},
            "configuration": {
                "database": "postgres",
                "role": "traditional",
                "router_flavor": "traditional_compatible",
            },
            "plugins": {"available_on_server": {}, "enabled_in_cluster": []},
        }),
    )
}

async fn get_schema(Path(name): Path<String>) -> ApiResult {
    match Kind::from_path(&name) {
        Some(kind) => Ok(json_response(StatusCode::OK, &kind.schema().raw)),
        None => Err(ApiError::Message(
            StatusCode::NOT_FOUND,
            format!("No entity named '{name}'"),
        )),
    }
}

// ---- key resolution ----

/// A path key: a UUID is only ever an id; anything else is the endpoint key
/// (`name`), which must pass the field's validator (else code 10).
enum Key {
    Id(String),
    Name(String),
}

fn parse_key(key: &str) -> Result<Key, ApiError> {
    if is_uuid(key) {
        Ok(Key::Id(key.to_ascii_lowercase()))
    } else {
        validate::validate_utf8_name(key).map_err(|m| ApiError::invalid_unique("name", m))?;
        Ok(Key::Name(key.to_owned()))
    }
}

fn find(store: &Store, kind: Kind, key: &Key) -> Option<String> {
    let table = store.table(kind);
    match key {
        Key::Id(id) => table.get(id).map(|_| id.clone()),
        Key::Name(name) => table.id_by_name(name).map(str::to_owned),
    }
}

fn find_key(store: &Store, kind: Kind, key: &str) -> Result<Option<String>, ApiError> {
    Ok(find(store, kind, &parse_key(key)?))
}

// ---- writes ----

/// `url` → protocol/host/port/path (services.lua shorthand); `url` wins.
fn expand_url(kind: Kind, body: &mut Object) -> Result<(), ApiError> {
    if kind != Kind::Service {
        return Ok(());
    }
    let Some(url) = body.remove("url") else {
        return Ok(());
    };
    match url {
        Value::Null => Ok(()),
        Value::String(s) if s.is_empty() => Err(ApiError::schema_violation(&Errors::field(
            "url",
            "length must be at least 1",
        ))),
        Value::String(s) => match service_url::expand(&s) {
            Ok(fields) => {
                for (k, v) in fields {
                    body.insert(k.into(), v);
                }
                Ok(())
            }
            Err(msg) => Err(ApiError::schema_violation(&Errors::field("url", msg))),
        },
        _ => Err(ApiError::schema_violation(&Errors::field(
            "url",
            "expected a string",
        ))),
    }
}

/// `{"name": "svc"}` → `{"id": ...}` (dao/init.lua `resolve_foreign`); code 13 when
/// nothing has that name.
fn resolve_foreign(store: &Store, kind: Kind, obj: &mut Object) -> Result<(), ApiError> {
    for (field, parent) in kind.foreign_keys() {
        let Some(Value::Object(fk)) = obj.get(*field) else {
            continue;
        };
        if fk.get("id").and_then(Value::as_str).is_some_and(is_uuid) {
            continue;
        }
        let Some(name) = fk.get("name").and_then(Value::as_str) else {
            continue;
        };
        if validate::validate_utf8_name(name).is_err() {
            continue;
        }
        match store.table(*parent).id_by_name(name) {
            Some(id) => {
                let id = id.to_owned();
                obj.insert((*field).into(), json!({ "id": id }));
            }
            None => {
                return Err(ApiError::foreign_key_unresolved(
                    field,
                    "name",
                    name,
                    parent.path(),
                ));
            }
        }
    }
    Ok(())
}

/// PATCH merge: top-level fields replaced, records merged recursively.
fn merge(kind: Kind, base: &Object, patch: Object) -> Object {
    let mut out = base.clone();
    for (k, v) in patch {
        let is_record = kind
            .schema()
            .field(&k)
            .is_some_and(|f| f.ty == FieldType::Record);
        match (is_record, out.get_mut(&k), v) {
            (true, Some(Value::Object(old)), Value::Object(new)) => {
                for (nk, nv) in new {
                    old.insert(nk, nv);
                }
            }
            (_, _, v) => {
                out.insert(k, v);
            }
        }
    }
    out
}

/// Validates `obj` and makes it storable: sets deduplicated, foreign keys `{id}`.
fn finish_entity(store: &Store, kind: Kind, obj: &mut Object) -> Result<(), ApiError> {
    resolve_foreign(store, kind, obj)?;
    validate::validate(kind, obj).map_err(|e| ApiError::schema_violation(&e))?;
    validate::dedup_sets(kind, obj);
    for (field, _) in kind.foreign_keys() {
        if let Some(id) = obj.get(*field).and_then(foreign_id).map(str::to_owned) {
            obj.insert((*field).into(), json!({ "id": id }));
        }
    }
    Ok(())
}

/// Database-level checks: unique name (409) and foreign key existence (code 4).
fn check_constraints(store: &Store, kind: Kind, id: &str, obj: &Object) -> Result<(), ApiError> {
    if let Some(name) = obj.get("name").and_then(Value::as_str)
        && let Some(other) = store.table(kind).id_by_name(name)
        && other != id
    {
        return Err(ApiError::unique_violation("name", name));
    }
    for (field, parent) in kind.foreign_keys() {
        if let Some(fid) = obj.get(*field).and_then(foreign_id)
            && store.table(*parent).get(fid).is_none()
        {
            return Err(ApiError::foreign_key_invalid(field, parent.path(), fid));
        }
    }
    Ok(())
}

fn body_id(obj: &Object) -> Option<String> {
    obj.get("id")
        .and_then(Value::as_str)
        .filter(|s| is_uuid(s))
        .map(str::to_ascii_lowercase)
}

/// POST: a full insert; a client `id` is honoured, an existing one is code 3.
fn create(sim: &Sim, kind: Kind, mut body: Object, parent: Option<&str>) -> ApiResult {
    expand_url(kind, &mut body)?;
    if let Some(sid) = parent {
        body.insert("service".into(), json!({ "id": sid }));
    }
    validate::fill_defaults(kind, &mut body);
    let ts = now();
    body.entry("created_at").or_insert(json!(ts));
    body.insert("updated_at".into(), json!(ts));
    let mut store = sim.store();
    let id = match body.get("id") {
        None | Some(Value::Null) => uuid::Uuid::new_v4().to_string(),
        Some(_) => body_id(&body).unwrap_or_default(),
    };
    if !id.is_empty() {
        body.insert("id".into(), json!(id));
    }
    finish_entity(&store, kind, &mut body)?;
    if store.table(kind).get(&id).is_some() {
        return Err(ApiError::primary_key_violation(&id));
    }
    check_constraints(&store, kind, &id, &body)?;
    store.put(kind, body.clone());
    ok(StatusCode::CREATED, &body)
}

/// PUT: create or fully replace; by name the name is forced to the URL's and an
/// existing entity keeps its id. Always 200.
fn upsert(sim: &Sim, kind: Kind, key: &str, mut body: Object, parent: Option<&str>) -> ApiResult {
    let key = parse_key(key)?;
    expand_url(kind, &mut body)?;
    let mut store = sim.store();
    let id = match &key {
        Key::Id(id) => id.clone(),
        Key::Name(name) => {
            body.insert("name".into(), json!(name));
            store
                .table(kind)
                .id_by_name(name)
                .map(str::to_owned)
                .or_else(|| body_id(&body))
                .unwrap_or_else(|| uuid::Uuid::new_v4().to_string())
        }
    };
    body.insert("id".into(), json!(id));
    if let Some(sid) = parent {
        body.insert("service".into(), json!({ "id": sid }));
    }
    validate::fill_defaults(kind, &mut body);
    let ts = now();
    body.entry("created_at").or_insert(json!(ts));
    body.insert("updated_at".into(), json!(ts));
    finish_entity(&store, kind, &mut body)?;
    check_constraints(&store, kind, &id, &body)?;
    store.put(kind, body.clone());
    ok(StatusCode::OK, &body)
}

/// PATCH of the stored entity `id`: merged, then the whole result validated.
fn update(store: &mut Store, kind: Kind, id: &str, mut body: Object) -> ApiResult {
    let Some(base) = store.table(kind).get(id).cloned() else {
        return Err(ApiError::not_found());
    };
    expand_url(kind, &mut body)?;
    // The primary key is the URL's; Kong does not move an entity to a new id.
    body.remove("id");
    let mut merged = merge(kind, &base, body);
    merged.insert("updated_at".into(), json!(now()));
    finish_entity(store, kind, &mut merged)?;
    check_constraints(store, kind, id, &merged)?;
    store.put(kind, merged.clone());
    ok(StatusCode::OK, &merged)
}

/// Top-level PATCH: a missing entity is the full code-6 body.
fn patch_top(sim: &Sim, kind: Kind, key: &str, body: Object) -> ApiResult {
    let key = parse_key(key)?;
    let mut store = sim.store();
    match find(&store, kind, &key) {
        Some(id) => update(&mut store, kind, &id, body),
        None => Err(match key {
            Key::Id(id) => ApiError::not_found_pk(&id),
            Key::Name(name) => ApiError::not_found_by("name", &name),
        }),
    }
}

fn delete_id(store: &mut Store, kind: Kind, id: &str) -> Result<(), ApiError> {
    if kind == Kind::Service && store.has_routes(id) {
        return Err(ApiError::foreign_key_restricted("services", "routes"));
    }
    store.remove(kind, id);
    Ok(())
}

fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

// ---- lists ----

fn list_response(data: Vec<Value>, offset: Option<String>, next: Option<String>) -> Response {
    let mut body = Object::new();
    body.insert("data".into(), Value::Array(data));
    if let Some(o) = offset {
        body.insert("offset".into(), json!(o));
    }
    body.insert("next".into(), next.map_or(Value::Null, Value::String));
    json_response(StatusCode::OK, &Value::Object(body))
}

fn list_top(sim: &Sim, kind: Kind, query: &HashMap<String, String>) -> ApiResult {
    let req: PageRequest = pagination::parse(query)?;
    let store = sim.store();
    let table = store.table(kind);
    let start = req.after.clone();
    let ids = table
        .by_id
        .range::<String, _>((
            start.map_or(std::ops::Bound::Unbounded, std::ops::Bound::Excluded),
            std::ops::Bound::Unbounded,
        ))
        .filter(|(_, obj)| req.tags.as_ref().is_none_or(|t| t.matches(obj.get("tags"))))
        .map(|(id, _)| id.as_str());
    let (page, offset) = pagination::page(ids, &req);
    let data = page
        .iter()
        .filter_map(|id| table.get(id).cloned().map(Value::Object))
        .collect();
    let next = offset
        .as_deref()
        .map(|o| pagination::next_link(&format!("/{}", kind.path()), o, &req, false));
    Ok(list_response(data, offset, next))
}

// ---- handlers: services ----

type Q = Query<HashMap<String, String>>;

async fn list_services(State(sim): State<S>, Query(q): Q) -> ApiResult {
    list_top(&sim, Kind::Service, &q)
}

async fn post_service(State(sim): State<S>, headers: HeaderMap, body: Bytes) -> ApiResult {
    let body = crate::body::read(Kind::Service, &headers, &body)?;
    create(&sim, Kind::Service, body, None)
}

async fn get_service(State(sim): State<S>, Path(key): Path<String>) -> ApiResult {
    get_top(&sim, Kind::Service, &key)
}

fn get_top(sim: &Sim, kind: Kind, key: &str) -> ApiResult {
    let store = sim.store();
    let id = find_key(&store, kind, key)?.ok_or_else(ApiError::not_found)?;
    let obj = store.table(kind).get(&id).ok_or_else(ApiError::not_found)?;
    ok(StatusCode::OK, obj)
}

async fn put_service(
    State(sim): State<S>,
    Path(key): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let body = crate::body::read(Kind::Service, &headers, &body)?;
    upsert(&sim, Kind::Service, &key, body, None)
}

async fn patch_service(
    State(sim): State<S>,
    Path(key): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let body = crate::body::read(Kind::Service, &headers, &body)?;
    patch_top(&sim, Kind::Service, &key, body)
}

async fn delete_service(State(sim): State<S>, Path(key): Path<String>) -> ApiResult {
    delete_top(&sim, Kind::Service, &key)
}

fn delete_top(sim: &Sim, kind: Kind, key: &str) -> ApiResult {
    let mut store = sim.store();
    if let Some(id) = find_key(&store, kind, key)? {
        delete_id(&mut store, kind, &id)?;
    }
    // Deleting what does not exist is not an error at the top level.
    Ok(no_content())
}

// ---- handlers: routes ----

async fn list_routes(State(sim): State<S>, Query(q): Q) -> ApiResult {
    list_top(&sim, Kind::Route, &q)
}

async fn post_route(State(sim): State<S>, headers: HeaderMap, body: Bytes) -> ApiResult {
    let body = crate::body::read(Kind::Route, &headers, &body)?;
    create(&sim, Kind::Route, body, None)
}

async fn get_route(State(sim): State<S>, Path(key): Path<String>) -> ApiResult {
    get_top(&sim, Kind::Route, &key)
}

async fn put_route(
    State(sim): State<S>,
    Path(key): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let body = crate::body::read(Kind::Route, &headers, &body)?;
    upsert(&sim, Kind::Route, &key, body, None)
}

async fn patch_route(
    State(sim): State<S>,
    Path(key): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let body = crate::body::read(Kind::Route, &headers, &body)?;
    patch_top(&sim, Kind::Route, &key, body)
}

async fn delete_route(State(sim): State<S>, Path(key): Path<String>) -> ApiResult {
    delete_top(&sim, Kind::Route, &key)
}

/// The service a route points at; 404 when the route or its service is absent.
fn route_service_id(store: &Store, key: &str) -> Result<String, ApiError> {
    let rid = find_key(store, Kind::Route, key)?.ok_or_else(ApiError::not_found)?;
    store
        .routes
        .get(&rid)
        .and_then(|r| r.get("service"))
        .and_then(foreign_id)
        .map(str::to_owned)
        .ok_or_else(ApiError::not_found)
}

async fn get_route_service(State(sim): State<S>, Path(key): Path<String>) -> ApiResult {
    let store = sim.store();
    let sid = route_service_id(&store, &key)?;
    let svc = store.services.get(&sid).ok_or_else(ApiError::not_found)?;
    ok(StatusCode::OK, svc)
}

async fn patch_route_service(
    State(sim): State<S>,
    Path(key): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let body = crate::body::read(Kind::Service, &headers, &body)?;
    let mut store = sim.store();
    let sid = route_service_id(&store, &key)?;
    update(&mut store, Kind::Service, &sid, body)
}

// ---- handlers: /services/{s}/routes ----

fn parent_id(store: &Store, key: &str) -> Result<String, ApiError> {
    find_key(store, Kind::Service, key)?.ok_or_else(ApiError::not_found)
}

/// The route `rkey` if it belongs to service `sid`, else plain 404 (§4.6).
fn owned_route(store: &Store, sid: &str, rkey: &str) -> Result<String, ApiError> {
    let rid = find_key(store, Kind::Route, rkey)?.ok_or_else(ApiError::not_found)?;
    let owner = store
        .routes
        .get(&rid)
        .and_then(|r| r.get("service"))
        .and_then(foreign_id);
    if owner == Some(sid) {
        Ok(rid)
    } else {
        Err(ApiError::not_found())
    }
}

async fn list_service_routes(
    State(sim): State<S>,
    Path(key): Path<String>,
    Query(q): Q,
) -> ApiResult {
    let mut req = pagination::parse(&q)?;
    // Tags are ignored on nested lists.
    req.tags = None;
    let store = sim.store();
    let sid = parent_id(&store, &key)?;
    let empty = std::collections::BTreeSet::new();
    let set = store.routes_of(&sid).unwrap_or(&empty);
    let ids = set
        .range::<String, _>((
            req.after
                .clone()
                .map_or(std::ops::Bound::Unbounded, std::ops::Bound::Excluded),
            std::ops::Bound::Unbounded,
        ))
        .map(String::as_str);
    let (page, offset) = pagination::page(ids, &req);
    let data = page
        .iter()
        .filter_map(|id| store.routes.get(id).cloned().map(Value::Object))
        .collect();
    let base = format!("/services/{}/routes", pagination::escape_uri(&key));
    let next = offset
        .as_deref()
        .map(|o| pagination::next_link(&base, o, &req, true));
    Ok(list_response(data, offset, next))
}

async fn post_service_route(
    State(sim): State<S>,
    Path(key): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let body = crate::body::read(Kind::Route, &headers, &body)?;
    let sid = parent_id(&sim.store(), &key)?;
    create(&sim, Kind::Route, body, Some(&sid))
}

async fn get_service_route(
    State(sim): State<S>,
    Path((key, rkey)): Path<(String, String)>,
) -> ApiResult {
    let store = sim.store();
    let sid = parent_id(&store, &key)?;
    let rid = owned_route(&store, &sid, &rkey)?;
    let route = store.routes.get(&rid).ok_or_else(ApiError::not_found)?;
    ok(StatusCode::OK, route)
}

async fn put_service_route(
    State(sim): State<S>,
    Path((key, rkey)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let body = crate::body::read(Kind::Route, &headers, &body)?;
    // No ownership check: PUT re-parents the route (endpoints.lua).
    let sid = parent_id(&sim.store(), &key)?;
    upsert(&sim, Kind::Route, &rkey, body, Some(&sid))
}

async fn patch_service_route(
    State(sim): State<S>,
    Path((key, rkey)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let body = crate::body::read(Kind::Route, &headers, &body)?;
    let mut store = sim.store();
    let sid = parent_id(&store, &key)?;
    let rid = owned_route(&store, &sid, &rkey)?;
    update(&mut store, Kind::Route, &rid, body)
}

async fn delete_service_route(
    State(sim): State<S>,
    Path((key, rkey)): Path<(String, String)>,
) -> ApiResult {
    let mut store = sim.store();
    let sid = parent_id(&store, &key)?;
    let rid = owned_route(&store, &sid, &rkey)?;
    delete_id(&mut store, Kind::Route, &rid)?;
    Ok(no_content())
}

// ---- /_sim ----

async fn sim_stats(State(sim): State<S>) -> Response {
    let entities = {
        let store = sim.store();
        json!({"services": store.services.len(), "routes": store.routes.len()})
    };
    json_response(StatusCode::OK, &sim.stats.to_json(entities))
}

async fn sim_reset(State(sim): State<S>) -> Response {
    sim.store().clear();
    sim.stats.reset();
    no_content()
}

/// Only `latency_ms` is honoured in this cut; other fields are accepted.
async fn sim_faults(State(sim): State<S>, body: Bytes) -> ApiResult {
    let value: Value = if body.is_empty() {
        json!({})
    } else {
        serde_json::from_slice(&body).map_err(|_| ApiError::bad_json())?
    };
    let Some(obj) = value.as_object() else {
        return Err(ApiError::bad_json());
    };
    let latency = match obj.get("latency_ms") {
        None | Some(Value::Null) => 0,
        Some(v) => v.as_u64().ok_or_else(|| {
            ApiError::Message(
                StatusCode::BAD_REQUEST,
                "latency_ms must be a non-negative integer".into(),
            )
        })?,
    };
    sim.latency_ms.store(latency, Ordering::Relaxed);
    Ok(json_response(
        StatusCode::OK,
        &json!({ "latency_ms": latency }),
    ))
}
