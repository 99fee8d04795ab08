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
