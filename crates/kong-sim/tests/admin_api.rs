//! kong-sim against the facts of Kong's source and specs. Each test starts its
//! own emulator on port 0. File names in comments are in Kong/kong.
//!
//! The same suite runs against a real Kong: `CARL_TEST_KONG_ADDR=http://localhost:8001
//! cargo test -p kong-sim --test admin_api -- --test-threads=1`. The target is emptied
//! before each test (it must be a disposable Kong); tests of kong-sim's own `/_sim/`
//! controls skip themselves there.

use std::time::{Duration, Instant};

mod common;

use common::Sim;
use reqwest::Method;
use serde_json::{Value, json};

const PROTOCOLS: &str = "grpc, grpcs, http, https, tcp, tls, tls_passthrough, udp";

#[tokio::test]
async fn root_reports_version_and_kong_headers() {
    // kong/api/routes/kong.lua; headers from kong/api/init.lua
    let s = Sim::new().await;
    let resp = s
        .client
        .get(format!("{}/", s.url()))
        .send()
        .await
        .expect("GET /");
    assert_eq!(resp.status().as_u16(), 200);
    let server = resp.headers()["server"]
        .to_str()
        .unwrap_or_default()
        .to_owned();
    assert!(server.starts_with("kong/3."), "{server}");
    assert_eq!(
        resp.headers()["content-type"],
        "application/json; charset=utf-8"
    );
    let body: Value = resp.json().await.expect("json");
    assert!(server.ends_with(body["version"].as_str().unwrap_or("?")));
    assert_eq!(body["edition"], "community");
    assert_eq!(body["configuration"]["database"], "postgres");
    assert_eq!(body["plugins"]["enabled_in_cluster"], json!([]));
    if let Some(sim) = s.sim {
        sim.shutdown().await;
    }
}

#[tokio::test]
async fn post_service_fills_every_default() {
    // kong/db/schema/entities/services.lua
    let s = Sim::new().await;
    let (st, svc) = s
        .post("/services", json!({"name": "s1", "host": "example.test"}))
        .await;
    assert_eq!(st, 201);
    let id = svc["id"].as_str().expect("id");
    assert_eq!(
        uuid::Uuid::parse_str(id).map(|u| u.get_version_num()).ok(),
        Some(4)
    );
    assert!(svc["created_at"].is_i64());
    assert_eq!(svc["created_at"], svc["updated_at"]);
    let mut expected = json!({
        "name": "s1", "retries": 5, "protocol": "http", "host": "example.test",
        "port": 80, "path": null, "connect_timeout": 60000, "write_timeout": 60000,
        "read_timeout": 60000, "tags": null, "client_certificate": null,
        "tls_verify": null, "tls_verify_depth": null, "ca_certificates": null,
        "enabled": true,
    });
    for k in ["id", "created_at", "updated_at"] {
        expected[k] = svc[k].clone();
    }
    assert_eq!(svc, expected);
    let (st, got) = s.get(&format!("/services/{id}")).await;
    assert_eq!((st, &got), (200, &svc));
    let (st, got) = s.get("/services/s1").await;
    assert_eq!((st, &got), (200, &svc));
}

#[tokio::test]
async fn client_supplied_id_is_honoured_and_reused_id_is_code_3() {
    // kong/db/errors.lua primary_key_violation; 400, not 409
    let s = Sim::new().await;
    let id = "6148d590-377a-491b-b31a-e160c60480a6";
    let (st, svc) = s.post("/services", json!({"id": id, "host": "h"})).await;
    assert_eq!((st, svc["id"].as_str()), (201, Some(id)));
    let (st, err) = s.post("/services", json!({"id": id, "host": "h"})).await;
    assert_eq!(st, 400);
    assert_eq!(
        err,
        json!({"code": 3, "name": "primary key violation",
               "message": format!("primary key violation on key '{{id=\"{id}\"}}'"),
               "fields": {"id": id}})
    );
}

#[tokio::test]
async fn url_shorthand_wins_and_is_never_echoed() {
    // services.lua shorthand_fields.url
    let s = Sim::new().await;
    let (st, svc) = s
        .post(
            "/services",
            json!({"name": "u", "url": "https://api.test:8443/v1", "protocol": "http", "port": 1}),
        )
        .await;
    assert_eq!(st, 201);
    assert_eq!(svc["protocol"], "https");
    assert_eq!(svc["host"], "api.test");
    assert_eq!(svc["port"], 8443);
    assert_eq!(svc["path"], "/v1");
    assert!(svc.get("url").is_none());
    // PATCH with a url without path resets path to null.
    let (st, svc) = s
        .patch("/services/u", json!({"url": "http://other.test"}))
        .await;
    assert_eq!(st, 200);
    assert_eq!(
        (svc["port"].as_i64(), &svc["path"]),
        (Some(80), &Value::Null)
    );
}

#[tokio::test]
async fn put_is_200_create_and_full_replace() {
    // kong/api/endpoints.lua put_entity_endpoint; PR #10987 (created_at reset)
    let s = Sim::new().await;
    let (st, a) = s
        .put(
            "/services/svc",
            json!({"host": "a.test", "retries": 1, "name": "ignored"}),
        )
        .await;
    assert_eq!(st, 200);
    assert_eq!(a["name"], "svc", "PUT by name forces the name");
    let (st, b) = s.put("/services/svc", json!({"host": "b.test"})).await;
    assert_eq!(st, 200);
    assert_eq!(b["id"], a["id"], "upsert by name keeps the id");
    assert_eq!(b["retries"], 5, "unset fields go back to defaults");
    // By id, with created_at supplied.
    let id = "0a5c3c7e-1b3c-4e9a-9c71-2f1f3a0b9d11";
    let (st, c) = s
        .put(
            &format!("/services/{id}"),
            json!({"host": "c.test", "created_at": 1000}),
        )
        .await;
    assert_eq!(
        (st, c["id"].as_str(), c["created_at"].as_i64()),
        (200, Some(id), Some(1000))
    );
    assert_eq!(c["name"], Value::Null);
    // PUT that takes another entity's name is a 409.
    let (st, err) = s
        .put(
            &format!("/services/{id}"),
            json!({"host": "c.test", "name": "svc"}),
        )
        .await;
    assert_eq!((st, err["code"].as_i64()), (409, Some(5)));
}

#[tokio::test]
async fn patch_merges_and_missing_is_full_code_6() {
    // kong/db/dao/init.lua check_update; errors.lua not_found / not_found_by_field
    let s = Sim::new().await;
    let (_, a) = s
        .post(
            "/services",
            json!({"name": "p", "host": "h.test", "tags": ["x", "y", "x"]}),
        )
        .await;
    assert_eq!(
        a["tags"],
        json!(["x", "y"]),
        "sets drop duplicates, keep order"
    );
    let (st, b) = s.patch("/services/p", json!({"port": 8080})).await;
    assert_eq!(st, 200);
    assert_eq!(
        (b["host"].as_str(), b["port"].as_i64()),
        (Some("h.test"), Some(8080))
    );
    assert_eq!(b["tags"], json!(["x", "y"]));
    assert_eq!(b["created_at"], a["created_at"]);

    let (st, err) = s.patch("/services/nope", json!({"port": 1})).await;
    assert_eq!(st, 404);
    assert_eq!(
        err,
        json!({"code": 6, "name": "not found",
               "message": "could not find the entity with '{name=\"nope\"}'",
               "fields": {"name": "nope"}})
    );
    let id = "11111111-2222-4333-8444-555555555555";
    let (st, err) = s
        .patch(&format!("/services/{id}"), json!({"port": 1}))
        .await;
    assert_eq!(st, 404);
    assert_eq!(
        err,
        json!({"code": 6, "name": "not found",
               "message": format!("could not find the entity with primary key '{{id=\"{id}\"}}'"),
               "fields": {"id": id}})
    );
    // The merged result is validated as a whole.
    let (st, err) = s
        .patch("/services/p", json!({"protocol": "tcp", "path": "/x"}))
        .await;
    assert_eq!((st, err["code"].as_i64()), (400, Some(2)));
}

#[tokio::test]
async fn get_missing_is_plain_404_and_delete_missing_is_204() {
    // kong/api/endpoints.lua get_entity_endpoint / delete_entity_endpoint
    let s = Sim::new().await;
    assert_eq!(
        s.get("/services/nope").await,
        (404, json!({"message": "Not found"}))
    );
    assert_eq!(
        s.get("/services/11111111-2222-4333-8444-555555555555")
            .await,
        (404, json!({"message": "Not found"}))
    );
    assert_eq!(s.delete("/services/nope").await, (204, Value::Null));
    assert_eq!(
        s.delete("/routes/11111111-2222-4333-8444-555555555555")
            .await
            .0,
        204
    );
    let (st, err) = s.get("/services/a%20b").await;
    assert_eq!(st, 400);
    assert_eq!(err["code"], 10);
    assert_eq!(err["name"], "invalid unique name");
}

#[tokio::test]
async fn unique_name_is_409_code_5() {
    // kong/db/errors.lua unique_violation
    let s = Sim::new().await;
    assert_eq!(
        s.post("/services", json!({"name": "foo", "host": "h"}))
            .await
            .0,
        201
    );
    let (st, err) = s
        .post("/services", json!({"name": "foo", "host": "h"}))
        .await;
    assert_eq!(st, 409);
    assert_eq!(
        err,
        json!({"code": 5, "name": "unique constraint violation",
               "message": "UNIQUE violation detected on '{name=\"foo\"}'",
               "fields": {"name": "foo"}})
    );
}

#[tokio::test]
async fn schema_violations_are_sorted_and_counted() {
    // kong/db/errors.lua schema_violation; kong/db/schema/init.lua messages
    let s = Sim::new().await;
    let (st, err) = s
        .post(
            "/services",
            json!({"port": "80", "protocol": "foo", "bogus": 1, "name": "a b"}),
        )
        .await;
    assert_eq!(st, 400);
    let name_err = "invalid value 'a b': the only accepted ascii characters are alphanumerics or ., -, _, and ~";
    assert_eq!(
        err,
        json!({"code": 2, "name": "schema violation",
               "message": format!("5 schema violations (bogus: unknown field; host: required field missing; name: {name_err}; port: expected an integer; protocol: expected one of: {PROTOCOLS})"),
               "fields": {"bogus": "unknown field", "host": "required field missing",
                          "name": name_err, "port": "expected an integer",
                          "protocol": format!("expected one of: {PROTOCOLS}")}})
    );
    let (st, err) = s
        .post("/services", json!({"host": "h", "port": 70000}))
        .await;
    assert_eq!(st, 400);
    assert_eq!(
        err["message"],
        "schema violation (port: value should be between 0 and 65535)"
    );
}

#[tokio::test]
async fn service_conditionals_report_entity_errors_first() {
    // services.lua entity_checks; schema/init.lua CONDITIONAL
    let s = Sim::new().await;
    let (st, err) = s
        .post(
            "/services",
            json!({"host": "h", "protocol": "tcp", "path": "/x"}),
        )
        .await;
    assert_eq!(st, 400);
    assert_eq!(
        err["message"],
        "2 schema violations (failed conditional validation given value of field 'protocol'; path: value must be null)"
    );
    assert_eq!(
        err["fields"],
        json!({"@entity": ["failed conditional validation given value of field 'protocol'"],
               "path": "value must be null"})
    );
    let (st, err) = s.post("/services", json!({"host": "h", "path": "x"})).await;
    assert_eq!(
        (st, &err["fields"]["path"]),
        (400, &json!("should start with: /"))
    );
}

#[tokio::test]
async fn route_validation_matches_kong() {
    // routes.lua, routes_subschemas.lua, typedefs.lua router_path / http_method
    let s = Sim::new().await;
    let (st, err) = s.post("/routes", json!({})).await;
    assert_eq!(st, 400);
    let msg = "must set one of 'methods', 'hosts', 'headers', 'paths', 'snis' when 'protocols' is 'https'";
    assert_eq!(err["message"], format!("schema violation ({msg})"));
    assert_eq!(err["fields"], json!({"@entity": [msg]}));

    let (st, err) = s
        .post(
            "/routes",
            json!({"protocols": ["http", "foo"], "paths": ["/ok", "bad"], "methods": ["get"]}),
        )
        .await;
    assert_eq!(st, 400);
    assert_eq!(
        err["message"],
        format!(
            "3 schema violations (methods.1: invalid value: get; paths.2: should start with: / (fixed path) or ~/ (regex path); protocols.2: expected one of: {PROTOCOLS})"
        )
    );
    assert_eq!(
        err["fields"]["paths"],
        json!([null, "should start with: / (fixed path) or ~/ (regex path)"])
    );

    let (st, err) = s
        .post(
            "/routes",
            json!({"protocols": ["http"], "snis": ["a.test"], "paths": ["/"]}),
        )
        .await;
    assert_eq!(st, 400);
    assert_eq!(
        err["fields"],
        json!({"@entity": ["'snis' can only be set when 'protocols' is 'grpcs', 'https', 'tls' or 'tls_passthrough'"],
               "snis": "length must be 0"})
    );

    let (st, err) = s
        .post(
            "/routes",
            json!({"paths": ["/"], "headers": {"Host": ["x"]}}),
        )
        .await;
    assert_eq!(st, 400);
    assert_eq!(
        err["fields"]["headers"],
        "cannot contain 'host' header, which must be specified in the 'hosts' attribute"
    );

    let (st, r) = s
        .post(
            "/routes",
            json!({"paths": ["/a"], "protocols": ["https", "http", "https"]}),
        )
        .await;
    assert_eq!(st, 201);
    assert_eq!(r["protocols"], json!(["https", "http"]));
    assert_eq!(r["service"], Value::Null);
    assert_eq!(r["https_redirect_status_code"], 426);
    assert_eq!(r["path_handling"], "v0");
}

#[tokio::test]
async fn foreign_keys_by_name_id_and_bad_forms() {
    // kong/db/dao/init.lua resolve_foreign; errors.lua foreign_keys_unresolved,
    // foreign_key_violation_invalid_reference; schema/init.lua MISSING_PK
    let s = Sim::new().await;
    let (_, svc) = s
        .post("/services", json!({"name": "svc", "host": "h"}))
        .await;
    let sid = svc["id"].as_str().expect("id").to_owned();
    let (st, r) = s
        .post(
            "/routes",
            json!({"paths": ["/a"], "service": {"name": "svc"}}),
        )
        .await;
    assert_eq!(st, 201);
    assert_eq!(r["service"], json!({"id": sid}));

    let (st, err) = s
        .post(
            "/routes",
            json!({"paths": ["/a"], "service": {"name": "nope"}}),
        )
        .await;
    assert_eq!(st, 400);
    let text = "the foreign key cannot be resolved with '{name=\"nope\"}' for an existing 'services' entity";
    assert_eq!(
        err,
        json!({"code": 13, "name": "foreign keys unresolved",
               "message": format!("foreign key unresolved (service.name: {text})"),
               "fields": {"service": {"name": text}}})
    );

    let missing = "11111111-2222-4333-8444-555555555555";
    let (st, err) = s
        .post(
            "/routes",
            json!({"paths": ["/a"], "service": {"id": missing}}),
        )
        .await;
    assert_eq!(st, 400);
    assert_eq!(
        err,
        json!({"code": 4, "name": "foreign key violation",
               "message": format!("the foreign key '{{id=\"{missing}\"}}' does not reference an existing 'services' entity."),
               "fields": {"service": {"id": missing}}})
    );

    let (st, err) = s
        .post("/routes", json!({"paths": ["/a"], "service": sid}))
        .await;
    assert_eq!(st, 400);
    assert_eq!(
        err["message"],
        "schema violation (service.id: missing primary key)"
    );
    assert_eq!(
        err["fields"],
        json!({"service": {"id": "missing primary key"}})
    );
}

#[tokio::test]
async fn service_with_routes_cannot_be_deleted() {
    // Postgres FK ON DELETE RESTRICT → errors.lua foreign_key_violation_restricted
    let s = Sim::new().await;
    s.post("/services", json!({"name": "svc", "host": "h"}))
        .await;
    let (st, _) = s
        .post("/services/svc/routes", json!({"name": "r", "paths": ["/"]}))
        .await;
    assert_eq!(st, 201);
    let (st, err) = s.delete("/services/svc").await;
    assert_eq!(st, 400);
    assert_eq!(
        err,
        json!({"code": 4, "name": "foreign key violation",
               "message": "an existing 'routes' entity references this 'services' entity",
               "fields": {"@referenced_by": "routes"}})
    );
    assert_eq!(s.delete("/routes/r").await.0, 204);
    assert_eq!(s.delete("/services/svc").await.0, 204);
    assert_eq!(s.get("/services/svc").await.0, 404);
}

#[tokio::test]
async fn nested_routes_enforce_ownership() {
    // kong/api/endpoints.lua (parent-scoped endpoints), §4.6 of the reference
    let s = Sim::new().await;
    let (_, a) = s.post("/services", json!({"name": "a", "host": "h"})).await;
    s.post("/services", json!({"name": "b", "host": "h"})).await;
    let (st, r) = s
        .post(
            "/services/a/routes",
            json!({"name": "r", "paths": ["/"], "service": null}),
        )
        .await;
    assert_eq!(st, 201);
    assert_eq!(
        r["service"],
        json!({"id": a["id"]}),
        "POST forces the parent"
    );
    assert_eq!(s.get("/services/a/routes/r").await.0, 200);
    assert_eq!(
        s.get("/services/b/routes/r").await,
        (404, json!({"message": "Not found"}))
    );
    assert_eq!(
        s.patch("/services/b/routes/r", json!({"strip_path": false}))
            .await,
        (404, json!({"message": "Not found"}))
    );
    assert_eq!(s.delete("/services/b/routes/r").await.0, 404);
    assert_eq!(s.get("/services/nope/routes").await.0, 404);
    let (st, list) = s.get("/services/a/routes").await;
    assert_eq!((st, list["data"].as_array().map(Vec::len)), (200, Some(1)));
    let (st, svc) = s.get("/routes/r/service").await;
    assert_eq!((st, &svc["id"]), (200, &a["id"]));
    // PUT re-parents without an ownership check.
    let (st, r2) = s.put("/services/b/routes/r", json!({"paths": ["/"]})).await;
    assert_eq!(st, 200);
    assert_eq!(r2["id"], r["id"]);
    assert_eq!(s.get("/services/b/routes/r").await.0, 200);
    assert_eq!(s.delete("/services/b/routes/r").await.0, 204);
}

#[tokio::test]
async fn pagination_walks_three_pages_in_id_order() {
    // kong/db/strategies/postgres/init.lua page; kong/api/endpoints.lua next
    let s = Sim::new().await;
    let mut ids = Vec::new();
    for i in 0..5 {
        let (st, svc) = s
            .post("/services", json!({"name": format!("s{i}"), "host": "h"}))
            .await;
        assert_eq!(st, 201);
        ids.push(svc["id"].as_str().expect("id").to_owned());
    }
    ids.sort();
    let mut seen = Vec::new();
    let mut path = "/services?size=2".to_owned();
    let mut pages = 0;
    loop {
        let (st, page) = s.get(&path).await;
        assert_eq!(st, 200);
        pages += 1;
        for e in page["data"].as_array().expect("data") {
            seen.push(e["id"].as_str().expect("id").to_owned());
        }
        match page["next"].as_str() {
            Some(next) => {
                let offset = page["offset"].as_str().expect("offset with next");
                assert!(next.starts_with("/services?offset="));
                assert!(next.ends_with("&size=2"));
                assert!(next.contains(&offset.replace('+', "%2B").replace('/', "%2F")));
                path = next.to_owned();
            }
            None => {
                assert!(page.get("offset").is_none(), "no offset on the last page");
                assert_eq!(page["next"], Value::Null);
                break;
            }
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, ids);
    assert_eq!(
        s.get("/routes").await,
        (200, json!({"data": [], "next": null}))
    );
}

#[tokio::test]
async fn list_arguments_are_validated() {
    // kong/api/endpoints.lua get_page_size; errors.lua invalid_size / invalid_offset
    let s = Sim::new().await;
    assert_eq!(
        s.get("/services?size=abc").await,
        (
            400,
            json!({"code": 9, "name": "invalid size", "message": "size must be a number"})
        )
    );
    for bad in ["0", "1001", "1.5"] {
        let (st, err) = s.get(&format!("/services?size={bad}")).await;
        assert_eq!(st, 400);
        assert_eq!(err["message"], "size must be an integer between 1 and 1000");
    }
    let (st, err) = s.get("/services?offset=%21%21").await;
    assert_eq!(st, 400);
    assert_eq!(
        err,
        json!({"code": 7, "name": "invalid offset", "message": "'!!' is not a valid offset: bad base64 encoding"})
    );
    let (st, err) = s.get("/services?tags=a,b/c").await;
    assert_eq!(st, 400);
    assert_eq!(
        err,
        json!({"code": 11, "name": "invalid options",
               "message": "invalid option (tags: invalid filter syntax)",
               "options": {"tags": "invalid filter syntax"}})
    );
}

#[tokio::test]
async fn tags_filter_and_or() {
    // spec/02-integration/04-admin_api/14-tags_spec.lua
    let s = Sim::new().await;
    s.post(
        "/services",
        json!({"name": "ab", "host": "h", "tags": ["a", "b"]}),
    )
    .await;
    s.post(
        "/services",
        json!({"name": "a", "host": "h", "tags": ["a"]}),
    )
    .await;
    s.post(
        "/services",
        json!({"name": "c", "host": "h", "tags": ["c"]}),
    )
    .await;
    let names = |v: &Value| {
        let mut n: Vec<String> = v["data"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|e| e["name"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        n.sort();
        n
    };
    assert_eq!(names(&s.get("/services?tags=a,b").await.1), ["ab"]);
    assert_eq!(names(&s.get("/services?tags=a").await.1), ["a", "ab"]);
    assert_eq!(names(&s.get("/services?tags=b/c").await.1), ["ab", "c"]);
}

#[tokio::test]
async fn transport_errors() {
    // kong/api/init.lua (404/405 handlers), kong/api/api_helpers.lua (body parsing)
    let s = Sim::new().await;
    assert_eq!(s.get("/nope").await, (404, json!({"message": "Not found"})));
    assert_eq!(
        s.delete("/nope/x/y/z").await,
        (404, json!({"message": "Not found"}))
    );
    assert_eq!(
        s.delete("/services").await,
        (405, json!({"message": "Method not allowed"}))
    );
    assert_eq!(s.get("/services/").await.0, 200, "trailing slash tolerated");
    // Path segments are percent-decoded (kong/api/init.lua, 10-services_routes_spec.lua).
    assert_eq!(
        s.put("/services/%E5%86%86", json!({"host": "h"})).await.0,
        200
    );
    let (st, svc) = s.get("/services/%E5%86%86/").await;
    assert_eq!((st, svc["name"].as_str()), (200, Some("円")));
    let url = format!("{}/services", s.url());
    let r = s
        .client
        .post(&url)
        .header("content-type", "text/plain")
        .body("x")
        .send()
        .await
        .expect("send");
    assert_eq!(r.status().as_u16(), 415);
    assert_eq!(r.text().await.expect("text"), "");
    let r = s.client.post(&url).body("{}").send().await.expect("send");
    assert_eq!(r.status().as_u16(), 415, "a body without Content-Type");
    for body in ["{not json", ""] {
        let r = s
            .client
            .post(&url)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("send");
        assert_eq!(r.status().as_u16(), 400);
        let v: Value = r.json().await.expect("json");
        assert_eq!(v, json!({"message": "Cannot parse JSON body"}));
    }
    let r = s
        .client
        .post(&url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("name=f&host=h.test&port=81")
        .send()
        .await
        .expect("send");
    assert_eq!(r.status().as_u16(), 201);
    let v: Value = r.json().await.expect("json");
    assert_eq!(v["port"], 81);
}

#[tokio::test]
async fn schemas_endpoint() {
    // kong/api/routes/kong.lua /schemas/:name
    let s = Sim::new().await;
    let (st, schema) = s.get("/schemas/services").await;
    assert_eq!(st, 200);
    assert!(schema["fields"].as_array().is_some_and(|f| !f.is_empty()));
    assert_eq!(
        s.get("/schemas/nope").await,
        (404, json!({"message": "No entity named 'nope'"}))
    );
}

#[tokio::test]
async fn sim_stats_count_by_template_and_reset() {
    let s = Sim::new().await;
    if s.is_real() {
        return;
    }
    s.post("/services", json!({"name": "a", "host": "h"})).await;
    s.get("/services/a").await;
    s.get("/services/b").await;
    s.put("/services/c", json!({"host": "h"})).await;
    let (st, stats) = s.get("/_sim/stats").await;
    assert_eq!(st, 200);
    assert_eq!(
        stats["requests"]["total"], 4,
        "/_sim requests are not counted"
    );
    assert_eq!(
        stats["requests"]["by_method"],
        json!({"GET": 2, "POST": 1, "PUT": 1})
    );
    assert_eq!(
        stats["requests"]["by_status"],
        json!({"200": 2, "201": 1, "404": 1})
    );
    assert_eq!(
        stats["requests"]["by_route"],
        json!({"GET /services/{services}": 2, "POST /services": 1, "PUT /services/{services}": 1})
    );
    assert_eq!(stats["entities"]["services"], 2);
    assert_eq!(stats["entities"]["routes"], 0);
    assert!(stats["peak_in_flight"].as_u64().is_some_and(|n| n >= 1));

    let (st, _) = s.req(Method::POST, "/_sim/reset", None).await;
    assert_eq!(st, 204);
    let (_, stats) = s.get("/_sim/stats").await;
    assert_eq!(stats["requests"]["total"], 0);
    assert_eq!(stats["entities"]["services"], 0);
    assert_eq!(s.get("/services/a").await.0, 404);
}

#[tokio::test]
async fn sim_faults_inject_latency() {
    let s = Sim::new().await;
    if s.is_real() {
        return;
    }
    assert_eq!(
        s.put("/_sim/faults", json!({"latency_ms": 150, "seed": 1}))
            .await
            .0,
        200
    );
    let t = Instant::now();
    s.get("/services").await;
    assert!(t.elapsed() >= Duration::from_millis(150));
    let t = Instant::now();
    s.get("/_sim/stats").await;
    assert!(
        t.elapsed() < Duration::from_millis(150),
        "/_sim is never delayed"
    );
    assert_eq!(s.put("/_sim/faults", json!({})).await.0, 200);
    let t = Instant::now();
    s.get("/services").await;
    assert!(t.elapsed() < Duration::from_millis(150));
}
