//! The HTTP side: one dispatcher over the endpoints of [`crate::router`], Kong's
//! response headers, injected latency and request counting, and the `/_sim/` controls.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use carl_model::{Kind, Object, foreign_id, is_uuid};
use md5::Digest;
use serde_json::{Value, json};

use crate::SimConfig;
use crate::engine;
use crate::errors::ApiError;
use crate::faults::{Decision, FaultConfig, Faults};
use crate::pagination::{self, PageRequest};
use crate::router::{self, Endpoint};
use crate::stats::Stats;
use crate::store::Store;

type ApiResult = Result<Response, ApiError>;

/// Shared state of one emulator instance.
pub struct Sim {
    config: SimConfig,
    node_id: String,
    store: Mutex<Store>,
    stats: Stats,
    faults: Arc<Faults>,
    /// DB-less: MD5 of the last configuration loaded from text (`configuration_hash`).
    config_hash: Mutex<Option<String>>,
}

impl Sim {
    pub fn new(config: SimConfig, faults: Arc<Faults>) -> Self {
        Sim {
            config,
            node_id: uuid::Uuid::new_v4().to_string(),
            store: Mutex::new(Store::default()),
            stats: Stats::default(),
            faults,
            config_hash: Mutex::new(None),
        }
    }

    fn store(&self) -> MutexGuard<'_, Store> {
        // A panic elsewhere must not wedge the emulator.
        self.store.lock().unwrap_or_else(|e| e.into_inner())
    }
}

pub fn json_response(status: StatusCode, body: &Value) -> Response {
    let mut resp = (status, body.to_string()).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    resp
}

fn ok(status: StatusCode, obj: Object) -> ApiResult {
    Ok(json_response(status, &Value::Object(obj)))
}

type S = Arc<Sim>;

pub fn router(sim: S) -> Router {
    Router::new()
        .route("/_sim/stats", get(sim_stats))
        .route("/_sim/reset", post(sim_reset))
        .route("/_sim/faults", put(sim_faults).get(get_faults))
        .fallback(dispatch)
        .layer(middleware::from_fn_with_state(sim.clone(), kong_layer))
        .layer(DefaultBodyLimit::max(10 * 1024 * 1024))
        .with_state(sim)
}

/// Kong's response headers, the admin token, injected latency and errors, and request
/// counting. (Resets and hangs happen below HTTP, in `transport`.)
async fn kong_layer(State(sim): State<S>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let path = req.uri().path().to_owned();
    let is_sim = path == "/_sim" || path.starts_with("/_sim/");
    let method = req.method().as_str().to_owned();
    let route = kong2_path(&sim, &path)
        .and_then(|p| router::route(&p))
        .map(|e| {
            let template = e.template();
            // Counted under the path Kong 2.8 served.
            match path.starts_with("/vaults-beta") {
                true => format!(
                    "{method} {}",
                    template.replacen("/vaults", "/vaults-beta", 1)
                ),
                false => format!("{method} {template}"),
            }
        });

    // CORS: Kong echoes the request's Origin, else `*` (kong/api/init.lua).
    let origin = req
        .headers()
        .get(header::ORIGIN)
        .cloned()
        .unwrap_or_else(|| HeaderValue::from_static("*"));
    let guard = (!is_sim).then(|| sim.stats.start());
    let decision = req
        .extensions()
        .get::<Decision>()
        .copied()
        .unwrap_or(Decision::Pass);
    if !is_sim {
        let latency = sim.faults.latency();
        if !latency.is_zero() {
            answer_no_sooner_than(started + latency).await;
        }
    }
    let token_ok = is_sim
        || sim.config.admin_token.as_deref().is_none_or(|want| {
            req.headers()
                .get("kong-admin-token")
                .and_then(|v| v.to_str().ok())
                == Some(want)
        });

    let mut resp = if !token_ok {
        // Kong Enterprise RBAC's answer (kong-admin-api.md §9).
        json_response(
            StatusCode::UNAUTHORIZED,
            &json!({"message": "Invalid credentials. Token or User credentials required"}),
        )
    } else {
        match decision {
            Decision::Error(status) => injected(status),
            Decision::ErrorAfter(status) => {
                let _ = next.run(req).await;
                injected(status)
            }
            _ => next.run(req).await,
        }
    };
    let headers = resp.headers_mut();
    if !headers.contains_key(header::CONTENT_TYPE) {
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        );
    }
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

/// Waits until `deadline`, and not a millisecond later. tokio's timer has millisecond
/// ticks and rounds a deadline up to the next one, so a plain `sleep(20 ms)` answers
/// after ~21.2 ms: 6% of every latency bound the benchmarks compare carl with would be
/// the simulator. The timer is asked for one tick less; the rest (under a millisecond,
/// rare) is waited by yielding.
async fn answer_no_sooner_than(deadline: Instant) {
    let tick = std::time::Duration::from_millis(1);
    if let Some(early) = deadline.checked_sub(tick) {
        tokio::time::sleep_until(early.into()).await;
    }
    while Instant::now() < deadline {
        tokio::task::yield_now().await;
    }
}

/// Every Admin API request: route, check the method, run it.
async fn dispatch(
    State(sim): State<S>,
    method: Method,
    uri: Uri,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = match kong2_path(&sim, uri.path()) {
        Some(p) => p,
        None => return ApiError::not_found().into_response(),
    };
    let Some(endpoint) = router::route(&path) else {
        return ApiError::not_found().into_response();
    };
    let allowed = endpoint.methods();
    if method == Method::OPTIONS {
        return options(allowed);
    }
    let verb = if method == Method::HEAD {
        "GET"
    } else {
        method.as_str()
    };
    if !allowed.contains(&verb) {
        return ApiError::method_not_allowed().into_response();
    }
    let result = handle(&sim, &endpoint, verb, &query, &headers, &body);
    result.unwrap_or_else(IntoResponse::into_response)
}

/// The 3.x path a request addresses; `None` for what Kong 2.8 did not serve. In 2.8,
/// keys and key sets did not exist (3.1) and vaults were a beta at `/vaults-beta`.
fn kong2_path(sim: &Sim, path: &str) -> Option<String> {
    if !sim.config.kong2() {
        return Some(path.to_owned());
    }
    let first = path.trim_start_matches('/').split('/').next().unwrap_or("");
    match first {
        "keys" | "key-sets" | "vaults" => None,
        "vaults-beta" => Some(path.replacen("/vaults-beta", "/vaults", 1)),
        _ => Some(path.to_owned()),
    }
}

/// `OPTIONS`: 204 with the allowed methods (kong/api/api_helpers.lua).
fn options(allowed: &[&str]) -> Response {
    let mut methods: Vec<&str> = allowed.to_vec();
    if methods.contains(&"GET") {
        methods.push("HEAD");
    }
    methods.push("OPTIONS");
    methods.sort_unstable();
    let list = methods.join(", ");
    let mut resp = StatusCode::NO_CONTENT.into_response();
    if let Ok(v) = HeaderValue::from_str(&list) {
        resp.headers_mut().insert(header::ALLOW, v.clone());
        resp.headers_mut()
            .insert(header::ACCESS_CONTROL_ALLOW_METHODS, v);
    }
    resp.headers_mut().insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("Content-Type"),
    );
    resp
}

fn handle(
    sim: &Sim,
    endpoint: &Endpoint,
    verb: &str,
    query: &HashMap<String, String>,
    headers: &HeaderMap,
    body: &[u8],
) -> ApiResult {
    let read = |kind: Kind| crate::body::read(kind, headers, body);
    if sim.config.db_less
        && verb != "GET"
        && let Some(result) = db_less_write(sim, endpoint, verb, &read)
    {
        return result;
    }
    match (endpoint, verb) {
        (Endpoint::Config, verb) => config(sim, verb, query, headers, body),
        (Endpoint::Tags(tag), _) => tags(sim, tag.as_deref(), query),
        (Endpoint::Root, _) => Ok(root(sim)),
        (Endpoint::Status, _) => Ok(status(sim)),
        (Endpoint::Endpoints, _) => Ok(json_response(
            StatusCode::OK,
            &json!({ "data": router::all_templates() }),
        )),
        (Endpoint::PluginsEnabled, _) => Ok(json_response(
            StatusCode::OK,
            &json!({ "enabled_plugins": carl_model::schema::plugin_names() }),
        )),
        (Endpoint::Schema(name), _) => match Kind::from_dao(name) {
            Some(kind) => Ok(json_response(StatusCode::OK, &kind.schema().raw)),
            None => Err(ApiError::Message(
                StatusCode::NOT_FOUND,
                format!("No entity named '{name}'"),
            )),
        },
        (Endpoint::PluginSchema(name), _) => match carl_model::schema::plugin(name) {
            Some(schema) => Ok(json_response(StatusCode::OK, &schema.raw)),
            None => Err(ApiError::Message(
                StatusCode::NOT_FOUND,
                format!("No plugin named '{name}'"),
            )),
        },
        (Endpoint::LegacyPluginSchema(name), _) => {
            match carl_model::schema::plugin(name).and_then(|s| s.field("config")) {
                Some(config) => Ok(json_response(
                    StatusCode::OK,
                    &json!({ "fields": config.raw.get("fields").cloned().unwrap_or(json!([])) }),
                )),
                None => Err(ApiError::Message(
                    StatusCode::NOT_FOUND,
                    format!("No plugin named '{name}'"),
                )),
            }
        }
        (Endpoint::SchemaValidate(name), _) => {
            let kind = Kind::from_dao(name).ok_or_else(|| {
                ApiError::Message(StatusCode::NOT_FOUND, format!("No entity named '{name}'"))
            })?;
            engine::validate_only(kind, read(kind)?)?;
            Ok(json_response(
                StatusCode::OK,
                &json!({ "message": "schema validation successful" }),
            ))
        }
        (Endpoint::PluginSchemaValidate, _) => {
            engine::validate_only(Kind::Plugin, read(Kind::Plugin)?)?;
            Ok(json_response(
                StatusCode::OK,
                &json!({ "message": "schema validation successful" }),
            ))
        }
        (Endpoint::Collection(kind), "GET") => {
            list(sim, *kind, None, query, &format!("/{}", kind.path()))
        }
        (Endpoint::Collection(kind), _) => {
            let body = read(*kind)?;
            ok(
                StatusCode::CREATED,
                engine::insert(&mut sim.store(), *kind, body, None)?,
            )
        }
        (Endpoint::Entity(kind, key), "GET") => {
            let store = sim.store();
            let id = entity_id(&store, *kind, key)?.ok_or_else(|| {
                if *kind == Kind::Certificate && !is_uuid(key) {
                    // kong/api/routes/certificates.lua looks the name up as an SNI.
                    ApiError::Message(StatusCode::NOT_FOUND, "SNI not found".into())
                } else {
                    ApiError::not_found()
                }
            })?;
            output(&store, *kind, &id)
        }
        (Endpoint::Entity(kind, key), "PUT") => {
            let body = read(*kind)?;
            ok(
                StatusCode::OK,
                engine::upsert(&mut sim.store(), *kind, key, body, None)?,
            )
        }
        (Endpoint::Entity(kind, key), "PATCH") => {
            let body = read(*kind)?;
            let mut store = sim.store();
            match entity_id(&store, *kind, key)? {
                Some(id) => ok(
                    StatusCode::OK,
                    engine::update(&mut store, *kind, &id, body)?,
                ),
                // Kong pre-reads a plugin to learn its type when the body has no name.
                None if *kind == Kind::Plugin && !body.contains_key("name") => {
                    Err(ApiError::not_found())
                }
                None if *kind == Kind::Certificate && !is_uuid(key) => Err(ApiError::Message(
                    StatusCode::NOT_FOUND,
                    "SNI not found".into(),
                )),
                None => Err(engine::not_found_error(&engine::parse_key(*kind, key)?)),
            }
        }
        (Endpoint::Entity(kind, key), _) => {
            let mut store = sim.store();
            if let Some(id) = entity_id(&store, *kind, key)? {
                engine::delete(&mut store, *kind, &id)?;
            }
            // Deleting what does not exist is not an error at the top level.
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        (
            Endpoint::ForeignEntity {
                kind,
                key,
                field,
                target,
            },
            verb,
        ) => {
            let mut store = sim.store();
            let id = entity_id(&store, *kind, key)?.ok_or_else(ApiError::not_found)?;
            let parent = store
                .get(*kind, &id)
                .and_then(|o| o.get(*field))
                .and_then(foreign_id)
                .map(str::to_owned);
            match (verb, parent) {
                (_, None) => Err(ApiError::not_found()),
                ("GET", Some(pid)) => output(&store, *target, &pid),
                ("PATCH", Some(pid)) => {
                    let body = read(*target)?;
                    ok(
                        StatusCode::OK,
                        engine::update(&mut store, *target, &pid, body)?,
                    )
                }
                ("PUT", Some(pid)) => {
                    let body = read(*target)?;
                    ok(
                        StatusCode::OK,
                        engine::upsert(&mut store, *target, &pid, body, None)?,
                    )
                }
                (_, Some(_)) => Err(ApiError::method_not_allowed()),
            }
        }
        (
            Endpoint::Nested {
                parent,
                pkey,
                child,
                field,
            },
            verb,
        ) => {
            let pid = entity_id(&sim.store(), *parent, pkey)?.ok_or_else(ApiError::not_found)?;
            if verb == "GET" {
                let base = format!(
                    "/{}/{}/{}",
                    parent.path(),
                    pagination::escape_uri(pkey),
                    child.nested_path()
                );
                return list(sim, *child, Some((field, &pid)), query, &base);
            }
            let body = read(*child)?;
            ok(
                StatusCode::CREATED,
                engine::insert(&mut sim.store(), *child, body, Some((field, &pid)))?,
            )
        }
        (
            Endpoint::NestedEntity {
                parent,
                pkey,
                child,
                field,
                ckey,
            },
            verb,
        ) => {
            let mut store = sim.store();
            let pid = entity_id(&store, *parent, pkey)?.ok_or_else(ApiError::not_found)?;
            if verb == "PUT" && *child == Kind::Target {
                // kong/api/routes/upstreams.lua: PUT on a target is an update, never a create.
                let cid = nested_child(&store, *child, field, &pid, ckey)?
                    .ok_or_else(ApiError::not_found)?;
                let body = read(*child)?;
                return ok(
                    StatusCode::OK,
                    engine::update(&mut store, *child, &cid, body)?,
                );
            }
            if verb == "PUT" {
                // No ownership check: PUT (re-)parents the child (endpoints.lua).
                let body = read(*child)?;
                drop(store);
                let key = nested_put_key(&sim.store(), *child, field, &pid, ckey);
                return ok(
                    StatusCode::OK,
                    engine::upsert(&mut sim.store(), *child, &key, body, Some((field, &pid)))?,
                );
            }
            let cid =
                nested_child(&store, *child, field, &pid, ckey)?.ok_or_else(ApiError::not_found)?;
            match verb {
                "GET" => output(&store, *child, &cid),
                "PATCH" => {
                    let body = read(*child)?;
                    ok(
                        StatusCode::OK,
                        engine::update(&mut store, *child, &cid, body)?,
                    )
                }
                _ => {
                    engine::delete(&mut store, *child, &cid)?;
                    Ok(StatusCode::NO_CONTENT.into_response())
                }
            }
        }
    }
}

/// DB-less mode refuses entity writes as `kong/api/endpoints.lua` does with the `off`
/// strategy: the body is validated first (400 wins), then 405 code 12. A PATCH of a
/// missing entity is 404; a DELETE of one is 204.
fn db_less_write(
    sim: &Sim,
    endpoint: &Endpoint,
    verb: &str,
    read: &dyn Fn(Kind) -> Result<Object, ApiError>,
) -> Option<ApiResult> {
    let (kind, key, forced): (Kind, Option<&str>, Option<(&'static str, String)>) = match endpoint {
        Endpoint::Collection(k) => (*k, None, None),
        Endpoint::Entity(k, key) => (*k, Some(key.as_str()), None),
        Endpoint::ForeignEntity { target, .. } => (*target, None, None),
        Endpoint::Nested {
            parent,
            pkey,
            child,
            field,
        }
        | Endpoint::NestedEntity {
            parent,
            pkey,
            child,
            field,
            ..
        } => {
            let pid = match entity_id(&sim.store(), *parent, pkey) {
                Ok(Some(pid)) => pid,
                Ok(None) => return Some(Err(ApiError::not_found())),
                Err(e) => return Some(Err(e)),
            };
            let ckey = match endpoint {
                Endpoint::NestedEntity { ckey, .. } => Some(ckey.as_str()),
                _ => None,
            };
            (*child, ckey, Some((*field, pid)))
        }
        _ => return None,
    };
    let by = key
        .filter(|k| !is_uuid(k))
        .and_then(|_| kind.lookup_key())
        .map_or(String::new(), |f| format!(" by '{f}'"));
    let refuse = |verb: &str| {
        Err(ApiError::operation_unsupported(format!(
            "cannot {verb} '{}' entities{by} when not using a database",
            kind.dao()
        )))
    };
    let exists = || -> Result<bool, ApiError> {
        match (key, &forced) {
            (Some(k), Some((field, pid))) => {
                Ok(nested_child(&sim.store(), kind, field, pid, k)?.is_some())
            }
            (Some(k), None) => Ok(entity_id(&sim.store(), kind, k)?.is_some()),
            (None, _) => Ok(true),
        }
    };
    Some((|| match verb {
        "POST" | "PUT" => {
            let mut body = read(kind)?;
            if let Some((field, pid)) = &forced {
                body.insert((*field).into(), json!({ "id": pid }));
            }
            if let (Some(k), Some(f)) = (key.filter(|k| !is_uuid(k)), kind.lookup_key()) {
                body.insert(f.into(), json!(k));
            }
            engine::validate_only(kind, body)?;
            refuse(if verb == "POST" {
                "create"
            } else {
                "create or update"
            })
        }
        "PATCH" => {
            if !exists()? {
                let k = key.unwrap_or_default();
                return Err(engine::not_found_error(&engine::parse_key(kind, k)?));
            }
            refuse("update")
        }
        _ => {
            if !exists()? {
                return Ok(StatusCode::NO_CONTENT.into_response());
            }
            refuse("remove")
        }
    })())
}

/// `GET /config` exports, `POST /config` loads (DB-less only).
fn config(
    sim: &Sim,
    verb: &str,
    query: &HashMap<String, String>,
    headers: &HeaderMap,
    body: &[u8],
) -> ApiResult {
    if !sim.config.db_less {
        return Err(ApiError::Message(
            StatusCode::BAD_REQUEST,
            "this endpoint is only available when Kong is configured to not use a database".into(),
        ));
    }
    if verb == "GET" {
        let text = crate::declarative::export(&sim.store());
        return Ok(json_response(StatusCode::OK, &json!({ "config": text })));
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let (input, raw) = crate::declarative::parse_input(&content_type, body)?;
    // The hash covers text input only; a table is never short-circuited.
    let hash = raw.as_deref().map(|t| {
        md5::Md5::digest(t.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    });
    if query.get("check_hash").map(String::as_str) == Some("1")
        && hash.is_some()
        && *sim.config_hash.lock().unwrap_or_else(|e| e.into_inner()) == hash
    {
        return Ok(StatusCode::NOT_MODIFIED.into_response());
    }
    // Kong's `truthy()`: 1, true, on, yes (any case).
    let flatten = query
        .get("flatten_errors")
        .is_some_and(|v| matches!(v.to_ascii_lowercase().as_str(), "1" | "true" | "on" | "yes"));
    let loaded = crate::declarative::load(&input, flatten)?;
    let body = crate::declarative::loaded_body(&loaded);
    *sim.store() = loaded;
    *sim.config_hash.lock().unwrap_or_else(|e| e.into_inner()) = hash;
    Ok(json_response(StatusCode::CREATED, &body))
}

/// The id a top-level path key names.
fn entity_id(store: &Store, kind: Kind, key: &str) -> Result<Option<String>, ApiError> {
    engine::find_key(store, kind, key)
}

/// A child under its parent: by id or endpoint key (ACLs by group, targets by target),
/// and only if it belongs to that parent.
fn nested_child(
    store: &Store,
    child: Kind,
    field: &str,
    pid: &str,
    ckey: &str,
) -> Result<Option<String>, ApiError> {
    let belongs = |id: &str| {
        store
            .get(child, id)
            .and_then(|o| o.get(field))
            .and_then(foreign_id)
            == Some(pid)
    };
    if is_uuid(ckey) {
        let id = ckey.to_ascii_lowercase();
        return Ok(belongs(&id).then_some(id));
    }
    // Keys that are unique only within the parent.
    let scoped = match child {
        Kind::Acl => Some("group"),
        Kind::Target => Some("target"),
        _ => None,
    };
    if let Some(scoped_field) = scoped {
        let wanted = if child == Kind::Target && !ckey.contains(':') {
            format!("{ckey}:8000")
        } else {
            ckey.to_owned()
        };
        return Ok(store.children(child, field, pid).into_iter().find(|id| {
            store
                .get(child, id)
                .and_then(|o| o.get(scoped_field))
                .and_then(Value::as_str)
                == Some(wanted.as_str())
        }));
    }
    let id = engine::find(store, child, &engine::parse_key(child, ckey)?);
    Ok(id.filter(|id| belongs(id)))
}

/// The key a nested PUT upserts by: an existing scoped child's id, else the key itself.
fn nested_put_key(store: &Store, child: Kind, field: &str, pid: &str, ckey: &str) -> String {
    nested_child(store, child, field, pid, ckey)
        .ok()
        .flatten()
        .unwrap_or_else(|| ckey.to_owned())
}

fn output(store: &Store, kind: Kind, id: &str) -> ApiResult {
    let obj = store
        .get(kind, id)
        .cloned()
        .ok_or_else(ApiError::not_found)?;
    ok(StatusCode::OK, crate::hooks::output(store, kind, obj))
}

fn list_response(data: Vec<Value>, offset: Option<String>, next: Option<String>) -> Response {
    let mut body = Object::new();
    body.insert("data".into(), Value::Array(data));
    if let Some(o) = offset {
        body.insert("offset".into(), json!(o));
    }
    body.insert("next".into(), next.map_or(Value::Null, Value::String));
    json_response(StatusCode::OK, &Value::Object(body))
}

/// A page of `kind`, all of them or the children of one parent. Tags filter top-level
/// lists only.
fn list(
    sim: &Sim,
    kind: Kind,
    parent: Option<(&str, &str)>,
    query: &HashMap<String, String>,
    base: &str,
) -> ApiResult {
    if kind == Kind::Consumer
        && parent.is_none()
        && let Some(custom_id) = query.get("custom_id")
    {
        return consumer_by_custom_id(sim, custom_id);
    }
    if kind == Kind::Target
        && let Some((field, pid)) = parent
    {
        return list_targets(sim, field, pid, query, base);
    }
    let mut req: PageRequest = pagination::parse(query)?;
    if parent.is_some() {
        req.tags = None;
    }
    let store = sim.store();
    let table = store.table(kind);
    let after = req.after.clone();
    let bound = after.map_or(std::ops::Bound::Unbounded, std::ops::Bound::Excluded);
    let (page, offset) = match parent {
        None => {
            let ids = table
                .by_id
                .range::<String, _>((bound, std::ops::Bound::Unbounded))
                .filter(|(_, obj)| req.tags.as_ref().is_none_or(|t| t.matches(obj.get("tags"))))
                .map(|(id, _)| id.as_str());
            pagination::page(ids, &req)
        }
        Some((field, pid)) => {
            let children = store.children(kind, field, pid);
            let ids: Vec<&str> = children
                .iter()
                .filter(|id| match &bound {
                    std::ops::Bound::Excluded(a) => id.as_str() > a.as_str(),
                    _ => true,
                })
                .filter_map(|id| table.by_id.get_key_value(id).map(|(k, _)| k.as_str()))
                .collect();
            pagination::page(ids.into_iter(), &req)
        }
    };
    let next = offset
        .as_deref()
        .map(|o| pagination::next_link(base, o, &req, parent.is_some()));
    // Serialised straight from the store: a page of 1000 is never cloned.
    let mut out: Vec<u8> = Vec::with_capacity(page.len() * 600 + 256);
    out.extend_from_slice(b"{\"data\":[");
    for (i, obj) in page.iter().filter_map(|id| table.get(id)).enumerate() {
        if i > 0 {
            out.push(b',');
        }
        let written = if crate::hooks::decorates(kind) {
            serde_json::to_writer(&mut out, &crate::hooks::output(&store, kind, obj.clone()))
        } else {
            serde_json::to_writer(&mut out, obj)
        };
        written.map_err(|_| {
            ApiError::Message(
                StatusCode::INTERNAL_SERVER_ERROR,
                "An unexpected error occurred".into(),
            )
        })?;
    }
    out.push(b']');
    if let Some(o) = &offset {
        out.extend_from_slice(format!(",\"offset\":{}", json!(o)).as_bytes());
    }
    out.extend_from_slice(format!(",\"next\":{}}}", json!(next)).as_bytes());
    let mut resp = (StatusCode::OK, out).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    Ok(resp)
}

/// `GET /upstreams/{u}/targets`: newest first, with a plain integer offset
/// (kong/api/routes/upstreams.lua pages targets itself).
fn list_targets(
    sim: &Sim,
    field: &str,
    pid: &str,
    query: &HashMap<String, String>,
    base: &str,
) -> ApiResult {
    let size = match query.get("size") {
        None => pagination::DEFAULT_SIZE,
        Some(raw) => {
            let n: usize = raw
                .trim()
                .parse()
                .map_err(|_| ApiError::invalid_size("size must be a number"))?;
            if !(1..=pagination::MAX_SIZE).contains(&n) {
                return Err(ApiError::invalid_size(
                    "size must be an integer between 1 and 1000",
                ));
            }
            n
        }
    };
    let start: usize = match query.get("offset") {
        None => 0,
        Some(o) => o
            .parse()
            .map_err(|_| ApiError::invalid_offset(o, "bad json encoding"))?,
    };
    let store = sim.store();
    let mut targets: Vec<&Object> = store
        .children(Kind::Target, field, pid)
        .iter()
        .filter_map(|id| store.get(Kind::Target, id))
        .collect();
    let created = |o: &Object| o.get("created_at").and_then(Value::as_f64).unwrap_or(0.0);
    targets.sort_by(|a, b| created(b).total_cmp(&created(a)));
    let page: Vec<Value> = targets
        .iter()
        .skip(start)
        .take(size)
        .map(|o| Value::Object((*o).clone()))
        .collect();
    let more = start + page.len() < targets.len();
    let offset = more.then(|| (start + page.len()).to_string());
    let next = offset.as_ref().map(|o| format!("{base}?offset={o}"));
    Ok(list_response(page, offset, next))
}

/// `/tags[/{tag}]` (kong/api/routes/tags.lua): `{tag, entity_name, entity_id}` rows,
/// paged like any list; `?tags=` is ignored here.
fn tags(sim: &Sim, only: Option<&str>, query: &HashMap<String, String>) -> ApiResult {
    let mut args = query.clone();
    args.remove("tags");
    let req = pagination::parse(&args)?;
    let store = sim.store();
    let mut rows: Vec<(String, &'static str, String)> = Vec::new();
    for &kind in Kind::ALL {
        for (id, obj) in &store.table(kind).by_id {
            for tag in obj
                .get("tags")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
            {
                if only.is_none_or(|t| t == tag) {
                    rows.push((tag.to_owned(), kind.dao(), id.clone()));
                }
            }
        }
    }
    rows.sort();
    let keys: Vec<String> = rows
        .iter()
        .map(|(t, k, id)| format!("{t}|{k}|{id}"))
        .collect();
    let start = req
        .after
        .as_ref()
        .map_or(0, |a| keys.partition_point(|k| k <= a));
    let (page, offset) = pagination::page(keys[start..].iter().map(String::as_str), &req);
    let data: Vec<Value> = rows[start..start + page.len()]
        .iter()
        .map(|(t, k, id)| json!({"tag": t, "entity_name": k, "entity_id": id}))
        .collect();
    let base = match only {
        Some(t) => format!("/tags/{}", pagination::escape_uri(t)),
        None => "/tags".into(),
    };
    let next = offset
        .as_deref()
        .map(|o| pagination::next_link(&base, o, &req, true));
    Ok(list_response(data, offset, next))
}

/// `/consumers?custom_id=X` is a lookup, not a page.
fn consumer_by_custom_id(sim: &Sim, custom_id: &str) -> ApiResult {
    if custom_id.is_empty() {
        return Err(ApiError::Message(
            StatusCode::BAD_REQUEST,
            "custom_id must be an unempty string".into(),
        ));
    }
    let store = sim.store();
    let found = store
        .table(Kind::Consumer)
        .id_by("custom_id", &json!(custom_id))
        .and_then(|id| store.get(Kind::Consumer, id))
        .cloned();
    let data: Vec<Value> = found.into_iter().map(Value::Object).collect();
    Ok(list_response(data, None, None))
}

// ---- node ----

fn root(sim: &Sim) -> Response {
    let version = &sim.config.kong_version;
    let available: Object = carl_model::schema::plugin_names()
        .iter()
        .map(|name| {
            let priority = carl_model::schema::plugin_priority(name).unwrap_or(0);
            (
                (*name).to_owned(),
                json!({ "version": version, "priority": priority }),
            )
        })
        .collect();
    let enabled: Vec<String> = {
        let store = sim.store();
        let mut names: Vec<String> = store
            .table(Kind::Plugin)
            .by_id
            .values()
            .filter_map(|p| p.get("name").and_then(Value::as_str).map(str::to_owned))
            .collect();
        names.sort();
        names.dedup();
        names
    };
    let loaded: Object = carl_model::schema::plugin_names()
        .iter()
        .map(|n| ((*n).to_owned(), json!(true)))
        .collect();
    let mut body = json!({
            "version": version,
            "edition": "community",
            "tagline": "Welcome to kong",
            "hostname": "kong-sim",
            "node_id": sim.node_id,
            "lua_version": "LuaJIT 2.1.0-kong-sim",
            "timers": {"running": 0, "pending": 0},
            "pids": {"master": 1, "workers": [2]},
            "configuration": {
                "database": if sim.config.db_less { "off" } else { "postgres" },
                "role": "traditional",
                "router_flavor": "traditional_compatible",
                "admin_listen": ["127.0.0.1:8001 reuseport backlog=16384"],
                "loaded_plugins": loaded,
                "pg_password": "******",
            },
            "plugins": {"available_on_server": available, "enabled_in_cluster": enabled},
    });
    if sim.config.kong2() {
        // 2.8: `available_on_server` is `loaded_plugins` (name → true); no `edition`
        // (3.6+) and no `router_flavor` (3.0+).
        body["plugins"]["available_on_server"] = Value::Object(
            body["configuration"]["loaded_plugins"]
                .as_object()
                .cloned()
                .unwrap_or_default(),
        );
        if let Some(root) = body.as_object_mut() {
            root.remove("edition");
        }
        if let Some(conf) = body["configuration"].as_object_mut() {
            conf.remove("router_flavor");
        }
    }
    json_response(StatusCode::OK, &body)
}

fn status(sim: &Sim) -> Response {
    let total = sim.stats.total();
    let mut body = json!({
            "memory": {
                "lua_shared_dicts": {"kong": {"allocated_slabs": "0.04 MiB", "capacity": "5.00 MiB"}},
                "workers_lua_vms": [{"http_allocated_gc": "40.00 MiB", "pid": 2}],
            },
            "server": {
                "connections_accepted": total, "connections_active": 1, "connections_handled": total,
                "connections_reading": 0, "connections_waiting": 0, "connections_writing": 1,
                "total_requests": total,
            },
    });
    if sim.config.db_less {
        let hash = sim
            .config_hash
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        body["configuration_hash"] = json!(hash.unwrap_or_else(|| "0".repeat(32)));
    } else {
        body["database"] = json!({"reachable": true});
    }
    json_response(StatusCode::OK, &body)
}

// ---- /_sim ----

async fn sim_stats(State(sim): State<S>) -> Response {
    let entities = json!(sim.store().counts());
    let mut stats = sim.stats.to_json(entities);
    stats["faults"] = json!(sim.faults.counts());
    json_response(StatusCode::OK, &stats)
}

async fn sim_reset(State(sim): State<S>) -> Response {
    sim.store().clear();
    sim.stats.reset();
    sim.faults.reset_counts();
    StatusCode::NO_CONTENT.into_response()
}

/// An injected error answer: Kong-like body; 429 carries `Retry-After`.
fn injected(status: u16) -> Response {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut resp = (code, crate::faults::error_body(status)).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    if status == 429 {
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    resp
}

/// `PUT /_sim/faults`: replaces every fault setting (`{}` clears them).
async fn sim_faults(State(sim): State<S>, body: Bytes) -> ApiResult {
    let config: FaultConfig = if body.is_empty() {
        FaultConfig::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            ApiError::Message(StatusCode::BAD_REQUEST, format!("invalid faults: {e}"))
        })?
    };
    sim.faults.set(config);
    Ok(json_response(StatusCode::OK, &json!(sim.faults.config())))
}

/// `GET /_sim/faults`: the settings in force.
async fn get_faults(State(sim): State<S>) -> Response {
    json_response(StatusCode::OK, &json!(sim.faults.config()))
}
