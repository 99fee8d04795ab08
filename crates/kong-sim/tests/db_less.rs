//! DB-less mode (`--db-less`): kong/api/routes/config.lua, kong/api/endpoints.lua with
//! the `off` strategy, spec/02-integration/04-admin_api/15-off_spec.lua. These need a
//! DB-less target, so they run against kong-sim only.

use kong_sim::{SimConfig, start};
use reqwest::{Client, Method};
use serde_json::{Value, json};

struct Target {
    url: String,
    client: Client,
    _sim: kong_sim::RunningSim,
}

impl Target {
    async fn new(db_less: bool) -> Target {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let sim = start(SimConfig {
            db_less,
            ..SimConfig::default()
        })
        .await
        .expect("sim starts");
        Target {
            url: sim.url(),
            client: Client::builder().no_proxy().build().expect("client"),
            _sim: sim,
        }
    }

    async fn raw(
        &self,
        method: Method,
        path: &str,
        content_type: Option<&str>,
        body: String,
    ) -> (u16, Value) {
        let mut rb = self.client.request(method, format!("{}{path}", self.url));
        if let Some(ct) = content_type {
            rb = rb.header("content-type", ct).body(body);
        }
        let resp = rb.send().await.expect("request");
        let status = resp.status().as_u16();
        let text = resp.text().await.expect("body");
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn json(&self, method: Method, path: &str, body: Value) -> (u16, Value) {
        self.raw(method, path, Some("application/json"), body.to_string())
            .await
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        self.raw(Method::GET, path, None, String::new()).await
    }
}

const CONFIG: &str = r#"_format_version: "3.0"
services:
- name: orders
  url: http://orders.internal:8080
  routes:
  - name: orders-api
    paths: [/orders]
routes:
- name: top
  service: orders
  hosts: [example.test]
"#;

#[tokio::test]
async fn writes_are_refused_after_validation() {
    let t = Target::new(true).await;
    // A valid body: 405 code 12 (validation passes first).
    let (st, body) = t
        .json(Method::POST, "/services", json!({"host": "h"}))
        .await;
    assert_eq!(st, 405);
    assert_eq!(body["code"], 12);
    assert_eq!(body["name"], "operation unsupported");
    assert_eq!(
        body["message"],
        "cannot create 'services' entities when not using a database"
    );
    // An invalid body: the schema violation wins over 405.
    let (st, body) = t.json(Method::POST, "/services", json!({"port": 1})).await;
    assert_eq!(st, 400);
    assert_eq!(body["code"], 2);
    // PUT by name names the key.
    let (st, body) = t
        .json(Method::PUT, "/services/a", json!({"host": "h"}))
        .await;
    assert_eq!(st, 405);
    assert_eq!(
        body["message"],
        "cannot create or update 'services' entities by 'name' when not using a database"
    );
    // PATCH of a missing entity is 404 code 6; DELETE of one is 204.
    let (st, body) = t
        .json(Method::PATCH, "/services/nope", json!({"host": "h"}))
        .await;
    assert_eq!((st, body["code"].clone()), (404, json!(6)));
    let (st, _) = t
        .raw(Method::DELETE, "/services/nope", None, String::new())
        .await;
    assert_eq!(st, 204);
}

#[tokio::test]
async fn config_loads_yaml_and_serves_it() {
    let t = Target::new(true).await;
    let (st, body) = t
        .raw(Method::POST, "/config", Some("text/yaml"), CONFIG.into())
        .await;
    assert_eq!(st, 201, "{body}");
    let services = body["services"].as_object().expect("map of services by id");
    assert_eq!(services.len(), 1);
    let (sid, svc) = services.iter().next().unwrap();
    assert_eq!(svc["host"], "orders.internal");
    assert_eq!(svc["port"], 8080);
    assert_eq!(body["routes"].as_object().unwrap().len(), 2);
    for r in body["routes"].as_object().unwrap().values() {
        assert_eq!(
            r["service"]["id"],
            json!(sid),
            "nested and by-name references resolve"
        );
    }
    let (_, list) = t.get("/routes").await;
    assert_eq!(list["data"].as_array().unwrap().len(), 2);
    // Named entities keep their ids across reloads (UUIDv5 of the endpoint key).
    let (_, again) = t
        .raw(Method::POST, "/config", Some("text/yaml"), CONFIG.into())
        .await;
    assert!(again["services"].get(sid).is_some());
    // Existing entities stay refused for writes.
    let (st, body) = t
        .json(Method::PATCH, "/services/orders", json!({"retries": 1}))
        .await;
    assert_eq!(st, 405);
    assert_eq!(
        body["message"],
        "cannot update 'services' entities by 'name' when not using a database"
    );
    // GET /config exports a flat YAML file.
    let (st, body) = t.get("/config").await;
    assert_eq!(st, 200);
    let text = body["config"].as_str().unwrap();
    assert!(
        text.contains("_format_version: \"3.0\"") || text.contains("_format_version: '3.0'"),
        "{text}"
    );
    assert!(text.contains("_transform: false"), "{text}");
}

#[tokio::test]
async fn check_hash_skips_an_identical_text() {
    let t = Target::new(true).await;
    let (st, _) = t
        .raw(
            Method::POST,
            "/config?check_hash=1",
            Some("text/yaml"),
            CONFIG.into(),
        )
        .await;
    assert_eq!(st, 201);
    let (st, _) = t
        .raw(
            Method::POST,
            "/config?check_hash=1",
            Some("text/yaml"),
            CONFIG.into(),
        )
        .await;
    assert_eq!(st, 304);
    let (_, status) = t.get("/status").await;
    let hash = status["configuration_hash"].as_str().unwrap();
    assert_eq!(hash.len(), 32);
    assert_ne!(hash, "0".repeat(32));
    assert!(status.get("database").is_none());
}

#[tokio::test]
async fn invalid_configs_are_code_14_with_a_tree() {
    let t = Target::new(true).await;
    let bad = "_format_version: \"3.0\"\nservices:\n- name: a\n  port: 99999\n";
    let (st, body) = t
        .raw(Method::POST, "/config", Some("text/yaml"), bad.into())
        .await;
    assert_eq!(st, 400);
    assert_eq!(body["code"], 14);
    assert_eq!(body["name"], "invalid declarative configuration");
    assert_eq!(
        body["fields"]["services"][0]["host"],
        "required field missing"
    );
    assert_eq!(
        body["fields"]["services"][0]["port"],
        "value should be between 0 and 65535"
    );
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .starts_with("declarative config is invalid: ")
    );

    let dangling = "_format_version: \"3.0\"\nroutes:\n- name: r\n  service: nope\n  paths: [/]\n";
    let (st, body) = t
        .raw(Method::POST, "/config", Some("text/yaml"), dangling.into())
        .await;
    assert_eq!(st, 400);
    assert_eq!(
        body["fields"]["routes"][0],
        json!(["invalid reference 'service: nope' (no such entry in 'services')"])
    );

    let unknown = "_format_version: \"3.0\"\nabnormal_extra_field: 1\n";
    let (_, body) = t
        .raw(Method::POST, "/config", Some("text/yaml"), unknown.into())
        .await;
    assert_eq!(body["fields"]["abnormal_extra_field"], "unknown field");

    let dup = "_format_version: \"3.0\"\nservices:\n- name: a\n  host: h\n- name: a\n  host: h\n";
    let (_, body) = t
        .raw(Method::POST, "/config", Some("text/yaml"), dup.into())
        .await;
    assert_eq!(
        body["fields"]["services"][1],
        "uniqueness violation: 'services' entity with name set to 'a' already declared"
    );
    // Nothing was loaded by the failed attempts.
    assert_eq!(t.get("/services").await.1["data"], json!([]));
}

#[tokio::test]
async fn config_endpoint_is_db_less_only() {
    let t = Target::new(false).await;
    let (st, body) = t.get("/config").await;
    assert_eq!(st, 400);
    assert_eq!(
        body["message"],
        "this endpoint is only available when Kong is configured to not use a database"
    );
    let (_, root) = t.get("/").await;
    assert_eq!(root["configuration"]["database"], "postgres");
    let (_, status) = t.get("/status").await;
    assert_eq!(status["database"]["reachable"], true);
}

/// `flatten_errors=1` (Kong 3.2+, `kong/db/errors.lua` `declarative_config_flattened`):
/// one entry per entity at fault, nested ones hoisted, children before their parent,
/// with the entity as sent and its errors by dotted field path.
#[tokio::test]
async fn flatten_errors_lists_each_entity_at_fault() {
    let t = Target::new(true).await;
    let config = json!({
        "_format_version": "3.0",
        "services": [{
            "id": "0b4f1a3c-56c9-4d5e-9f0a-1b2c3d4e5f60",
            "name": "orders",
            "host": "orders.internal",
            "port": 99999,
            "tags": ["team-a"],
            "routes": [
                {"name": "ok", "paths": ["/ok"]},
                {"id": "5c3a0f3e-1d2b-4c5d-8e9f-0a1b2c3d4e5f", "name": "bad", "protocols": ["http"], "paths": ["no-slash"]}
            ],
            "plugins": [{"name": "rate-limiting", "config": {"minute": "lots"}}]
        }],
        "consumers": [{"username": "a"}, {"username": "a"}]
    });
    let body = json!({ "config": config.to_string() });
    let (st, answer) = t
        .json(Method::POST, "/config?flatten_errors=1", body.clone())
        .await;
    assert_eq!(st, 400, "{answer}");
    assert_eq!(answer["code"], 14);
    // Everything was attributed to an entity: nothing is left in `fields`.
    assert_eq!(answer["fields"], json!({}));
    assert_eq!(answer["message"], "declarative config is invalid: {}");
    let list = answer["flattened_errors"].as_array().expect("a list");
    let types: Vec<&str> = list
        .iter()
        .map(|e| e["entity_type"].as_str().unwrap())
        .collect();
    // Sections in order; a service's children (in Kong's relationship order, which
    // follows a Lua table walk) before the service.
    assert_eq!(types.len(), 4, "{answer:#}");
    assert_eq!((types[0], types[3]), ("consumer", "service"), "{answer:#}");
    let entry = |t: &str| list.iter().find(|e| e["entity_type"] == t).unwrap();

    let consumer = entry("consumer");
    assert_eq!(
        consumer["errors"],
        json!([{"type": "entity", "message": "uniqueness violation: 'consumers' entity with username set to 'a' already declared"}])
    );
    assert!(consumer.get("entity_id").is_none(), "no id was given");

    let route = entry("route");
    assert_eq!(route["entity_name"], "bad");
    assert_eq!(route["entity_id"], "5c3a0f3e-1d2b-4c5d-8e9f-0a1b2c3d4e5f");
    // The nested entity carries its parent's id, as Kong adds it.
    assert_eq!(
        route["entity"]["service"],
        json!({"id": "0b4f1a3c-56c9-4d5e-9f0a-1b2c3d4e5f60"})
    );
    assert_eq!(route["errors"][0]["type"], "field");
    assert_eq!(route["errors"][0]["field"], "paths.1");

    let plugin = entry("plugin");
    assert_eq!(plugin["entity_name"], "rate-limiting");
    assert_eq!(
        plugin["errors"],
        json!([{"type": "field", "field": "config.minute", "message": "expected a number"}])
    );

    let service = entry("service");
    assert_eq!(service["entity_id"], "0b4f1a3c-56c9-4d5e-9f0a-1b2c3d4e5f60");
    assert_eq!(service["entity_tags"], json!(["team-a"]));
    assert_eq!(
        service["errors"],
        json!([{"type": "field", "field": "port", "message": "value should be between 0 and 65535"}])
    );
    // The echoed entity has no nested children: they are entries of their own.
    assert!(service["entity"].get("routes").is_none());
    assert!(service["entity"].get("plugins").is_none());

    // Without the flag: the tree, as before.
    let (_, tree) = t.json(Method::POST, "/config", body).await;
    assert!(tree.get("flattened_errors").is_none());
    assert_eq!(
        tree["fields"]["services"][0]["port"],
        "value should be between 0 and 65535"
    );
}

/// A dangling reference is filed under the entity's key, where `flatten_errors` does
/// not look: Kong's answer then names no entity at all (a 400 carl must still explain).
#[tokio::test]
async fn flatten_errors_loses_dangling_references_as_kong_does() {
    let t = Target::new(true).await;
    let config = "_format_version: \"3.0\"\nroutes:\n- name: r\n  service: nope\n  paths: [/]\n";
    let (st, answer) = t
        .raw(
            Method::POST,
            "/config?flatten_errors=true",
            Some("text/yaml"),
            config.into(),
        )
        .await;
    assert_eq!(st, 400);
    assert_eq!(answer["code"], 14);
    assert_eq!(answer["flattened_errors"], json!([]));
}
