//! Every OSS entity besides services and routes, against the facts of Kong's source
//! (file names are in Kong/kong at 3.9.1) and ../shared/kong-admin-api.md (§ numbers).
//! Runs against a real Kong too (see tests/common).

mod common;

use common::Sim;
use serde_json::{Value, json};

#[tokio::test]
async fn consumers_need_a_username_or_custom_id() {
    // kong/db/schema/entities/consumers.lua entity_checks; §5.3
    let s = Sim::new().await;
    let (st, body) = s.post("/consumers", json!({})).await;
    assert_eq!(st, 400);
    assert_eq!(
        body["message"],
        "schema violation (at least one of these fields must be non-empty: 'custom_id', 'username')"
    );
    assert_eq!(
        body["fields"]["@entity"],
        json!(["at least one of these fields must be non-empty: 'custom_id', 'username'"])
    );
    let (st, alice) = s
        .post(
            "/consumers",
            json!({"username": "alice", "custom_id": "c-1"}),
        )
        .await;
    assert_eq!(st, 201);
    assert_eq!(alice["tags"], Value::Null);
    let (st, body) = s.post("/consumers", json!({"username": "alice"})).await;
    assert_eq!(st, 409);
    assert_eq!(
        body["message"],
        "UNIQUE violation detected on '{username=\"alice\"}'"
    );
    // ?custom_id= is a lookup (kong/api/routes/consumers.lua).
    let (_, found) = s.get("/consumers?custom_id=c-1").await;
    assert_eq!(found, json!({"data": [alice], "next": null}));
    let (st, body) = s.get("/consumers?custom_id=").await;
    assert_eq!(
        (st, body["message"].clone()),
        (400, json!("custom_id must be an unempty string"))
    );
}

#[tokio::test]
async fn plugins_are_completed_from_their_schema() {
    // kong/plugins/key-auth/schema.lua; §7.1
    let s = Sim::new().await;
    let (st, p) = s.post("/plugins", json!({"name": "key-auth"})).await;
    assert_eq!(st, 201, "{p}");
    assert_eq!(p["config"]["key_names"], json!(["apikey"]));
    assert_eq!(p["config"]["hide_credentials"], false);
    assert_eq!(p["config"]["key_in_header"], true);
    assert_eq!(p["config"]["key_in_body"], false);
    assert_eq!(p["config"]["anonymous"], Value::Null);
    assert_eq!(p["protocols"], json!(["grpc", "grpcs", "http", "https"]));
    assert_eq!(p["enabled"], true);
    assert_eq!(
        (
            p["route"].clone(),
            p["service"].clone(),
            p["consumer"].clone()
        ),
        (Value::Null, Value::Null, Value::Null)
    );
    // PATCH deep-merges config (§4.3).
    let id = p["id"].as_str().unwrap();
    let (st, p2) = s
        .patch(
            &format!("/plugins/{id}"),
            json!({"config": {"hide_credentials": true}}),
        )
        .await;
    assert_eq!(st, 200, "{p2}");
    assert_eq!(p2["config"]["hide_credentials"], true);
    assert_eq!(
        p2["config"]["key_names"],
        json!(["apikey"]),
        "other config fields kept"
    );
}

#[tokio::test]
async fn unknown_plugins_and_bad_configs_are_refused_as_kong_does() {
    let s = Sim::new().await;
    let (st, body) = s.post("/plugins", json!({"name": "no-such-plugin"})).await;
    assert_eq!(st, 400);
    assert_eq!(
        body["fields"]["name"],
        "plugin 'no-such-plugin' not enabled; add it to the 'plugins' configuration property"
    );
    // Auth plugins cannot be scoped to a consumer (typedefs.no_consumer).
    let (_, c) = s.post("/consumers", json!({"username": "bob"})).await;
    let (st, body) = s
        .post(
            "/plugins",
            json!({"name": "key-auth", "consumer": {"id": c["id"]}}),
        )
        .await;
    assert_eq!(st, 400);
    assert_eq!(body["fields"]["consumer"], "value must be null");
    // rate-limiting needs at least one limit (kong/plugins/rate-limiting/schema.lua).
    let (st, body) = s.post("/plugins", json!({"name": "rate-limiting"})).await;
    assert_eq!(st, 400, "{body}");
    assert_eq!(
        body["fields"]["@entity"],
        json!([
            "at least one of these fields must be non-empty: 'config.second', 'config.minute', 'config.hour', 'config.day', 'config.month', 'config.year'"
        ])
    );
    let (st, p) = s
        .post(
            "/plugins",
            json!({"name": "rate-limiting", "config": {"minute": 10}}),
        )
        .await;
    assert_eq!(st, 201, "{p}");
    assert_eq!(p["config"]["policy"], "local");
    assert_eq!(p["config"]["limit_by"], "consumer");
}

#[tokio::test]
async fn plugin_uniqueness_is_name_plus_scope() {
    // plugins.lua cache_key = { name, route, service, consumer }; §5.4, §2.3
    let s = Sim::new().await;
    let (_, svc) = s.post("/services", json!({"name": "s", "host": "h"})).await;
    let sid = svc["id"].as_str().unwrap().to_owned();
    let (st, p) = s.post("/services/s/plugins", json!({"name": "cors"})).await;
    assert_eq!(st, 201, "{p}");
    assert_eq!(
        p["service"],
        json!({"id": sid}),
        "the nested path sets the scope"
    );
    let (st, body) = s
        .post("/plugins", json!({"name": "cors", "service": {"id": sid}}))
        .await;
    assert_eq!(st, 409);
    assert_eq!(
        body["message"],
        format!(
            "UNIQUE violation detected on '{{consumer=null,name=\"cors\",route=null,service={{id=\"{sid}\"}}}}'"
        )
    );
    assert_eq!(
        body["fields"],
        json!({"consumer": null, "name": "cors", "route": null, "service": {"id": sid}})
    );
    // A global cors is another plugin.
    assert_eq!(s.post("/plugins", json!({"name": "cors"})).await.0, 201);
    // instance_name is an endpoint key.
    let (st, _) = s
        .post(
            "/plugins",
            json!({"name": "key-auth", "instance_name": "ka"}),
        )
        .await;
    assert_eq!(st, 201);
    assert_eq!(s.get("/plugins/ka").await.1["name"], "key-auth");
    // Deleting the service cascades its plugins (§4.5).
    assert_eq!(s.delete("/services/s").await.0, 204);
    assert_eq!(
        s.get(&format!("/plugins/{}", p["id"].as_str().unwrap()))
            .await
            .0,
        404
    );
}

#[tokio::test]
async fn plugin_protocols_must_meet_their_route() {
    // kong/db/dao/plugins.lua check_protocols_match
    let s = Sim::new().await;
    s.post("/services", json!({"name": "s", "host": "h"})).await;
    let (_, r) = s
        .post(
            "/services/s/routes",
            json!({"name": "r", "protocols": ["https"], "paths": ["/"]}),
        )
        .await;
    let (st, body) = s
        .post(
            "/plugins",
            json!({"name": "cors", "route": {"id": r["id"]}, "protocols": ["http"]}),
        )
        .await;
    assert_eq!(st, 400);
    assert_eq!(
        body["message"],
        "schema violation (protocols: must match the associated route's protocols)"
    );
    let (st, body) = s
        .post(
            "/plugins",
            json!({"name": "cors", "service": {"name": "s"}, "protocols": ["grpc"]}),
        )
        .await;
    assert_eq!(st, 400);
    assert_eq!(
        body["fields"]["protocols"],
        "must match the protocols of at least one route pointing to this Plugin's service"
    );
    assert_eq!(
        s.post(
            "/routes/r/plugins",
            json!({"name": "cors", "protocols": ["https"]})
        )
        .await
        .0,
        201
    );
}

#[tokio::test]
async fn credentials_are_generated_hashed_and_cascaded() {
    // kong/plugins/{key-auth,basic-auth,hmac-auth,jwt,acl}/daos.lua; §5.12
    let s = Sim::new().await;
    let (_, c) = s.post("/consumers", json!({"username": "alice"})).await;
    let cid = c["id"].as_str().unwrap().to_owned();
    let (st, k) = s.post("/consumers/alice/key-auth", json!({})).await;
    assert_eq!(st, 201, "{k}");
    assert_eq!(k["consumer"], json!({"id": cid}));
    assert_eq!(k["key"].as_str().unwrap().len(), 32, "a generated key");
    let key = k["key"].as_str().unwrap();
    assert_eq!(
        s.get(&format!("/key-auths/{key}")).await.1["id"],
        k["id"],
        "key-auths are looked up by key"
    );
    let (st, b) = s
        .post(
            "/consumers/alice/basic-auth",
            json!({"username": "alice", "password": "s3cret"}),
        )
        .await;
    assert_eq!(st, 201, "{b}");
    let expected = {
        use sha1::Digest;
        let d = sha1::Sha1::digest(format!("s3cret{cid}").as_bytes());
        d.iter().map(|b| format!("{b:02x}")).collect::<String>()
    };
    assert_eq!(
        b["password"], expected,
        "sha1(password .. consumer id), kong/plugins/basic-auth/crypto.lua"
    );
    let (st, h) = s
        .post(
            "/consumers/alice/hmac-auth",
            json!({"username": "alice-hmac"}),
        )
        .await;
    assert_eq!(st, 201);
    assert!(h["secret"].as_str().is_some_and(|x| !x.is_empty()));
    let (st, j) = s.post("/consumers/alice/jwt", json!({})).await;
    assert_eq!(st, 201);
    assert_eq!(j["algorithm"], "HS256");
    assert!(j["key"].is_string() && j["secret"].is_string());
    let (st, a) = s
        .post("/consumers/alice/acls", json!({"group": "admins"}))
        .await;
    assert_eq!(st, 201);
    assert_eq!(
        s.get("/consumers/alice/acls/admins").await.1["id"],
        a["id"],
        "ACLs by group under their consumer"
    );
    let (st, body) = s
        .post("/consumers/alice/acls", json!({"group": "admins"}))
        .await;
    assert_eq!(st, 409, "{body}");
    // Credentials cannot exist without a consumer.
    let (st, body) = s.post("/key-auths", json!({})).await;
    assert_eq!(st, 400);
    assert_eq!(body["fields"]["consumer"], "required field missing");
    // Deleting the consumer cascades every credential (§4.5).
    assert_eq!(s.delete("/consumers/alice").await.0, 204);
    for path in [
        "/key-auths",
        "/basic-auths",
        "/hmac-auths",
        "/jwts",
        "/acls",
    ] {
        assert_eq!(s.get(path).await.1["data"], json!([]), "{path}");
    }
}

#[tokio::test]
async fn upstreams_and_targets() {
    // kong/db/schema/entities/{upstreams,targets}.lua, kong/api/routes/upstreams.lua; §5.5, §5.6
    let s = Sim::new().await;
    let (st, body) = s.post("/upstreams", json!({"name": "10.0.0.1"})).await;
    assert_eq!(st, 400);
    assert_eq!(
        body["fields"]["name"],
        "Invalid name ('10.0.0.1'); no ip addresses allowed"
    );
    let (st, u) = s
        .post(
            "/upstreams",
            json!({"name": "up.internal", "hash_on": "ip"}),
        )
        .await;
    assert_eq!(st, 201, "{u}");
    assert_eq!(
        u["algorithm"], "consistent-hashing",
        "hash_on forces consistent-hashing"
    );
    assert_eq!(u["slots"], 10000);
    assert_eq!(u["healthchecks"]["active"]["type"], "http");
    let (st, t) = s
        .post(
            "/upstreams/up.internal/targets",
            json!({"target": "10.0.0.1"}),
        )
        .await;
    assert_eq!(st, 201, "{t}");
    assert_eq!(t["target"], "10.0.0.1:8000");
    assert_eq!(t["weight"], 100);
    assert_eq!(t["upstream"], json!({"id": u["id"]}));
    assert!(t["created_at"].is_number());
    assert_eq!(
        s.get("/targets").await.0,
        404,
        "targets are served under upstreams only"
    );
    assert_eq!(s.delete("/upstreams/up.internal").await.0, 204);
    assert_eq!(
        s.get(&format!(
            "/upstreams/up.internal/targets/{}",
            t["id"].as_str().unwrap()
        ))
        .await
        .0,
        404
    );
}

#[tokio::test]
async fn vaults_keys_and_key_sets() {
    // kong/db/schema/entities/{vaults,keys,key_sets}.lua; §5.10, §5.11
    let s = Sim::new().await;
    let (st, body) = s
        .post("/vaults", json!({"prefix": "Bad_Prefix", "name": "env"}))
        .await;
    assert_eq!(st, 400, "{body}");
    assert!(body["fields"]["prefix"].is_string());
    let (st, ks) = s.post("/key-sets", json!({"name": "ks"})).await;
    assert_eq!(st, 201);
    let jwk = json!({"kty": "oct", "kid": "k1", "k": "c2VjcmV0"}).to_string();
    let (st, k) = s
        .post(
            "/key-sets/ks/keys",
            json!({"name": "k1", "kid": "k1", "jwk": jwk}),
        )
        .await;
    assert_eq!(st, 201, "{k}");
    assert_eq!(k["set"], json!({"id": ks["id"]}));
    // Deleting the key set cascades its keys.
    assert_eq!(s.delete("/key-sets/ks").await.0, 204);
    assert_eq!(s.get("/keys/k1").await.0, 404);
}

/// A self-signed certificate and its key, PEM.
fn cert_pair(name: &str, ca: bool) -> (String, String) {
    let mut params = rcgen::CertificateParams::new(vec![name.to_owned()]).expect("params");
    if ca {
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    }
    let key = rcgen::KeyPair::generate().expect("key");
    let cert = params.self_signed(&key).expect("cert");
    (cert.pem(), key.serialize_pem())
}

#[tokio::test]
async fn certificates_carry_their_snis() {
    // kong/db/dao/certificates.lua, kong/api/routes/certificates.lua; §5.7, §5.8
    let s = Sim::new().await;
    let (cert, key) = cert_pair("example.test", false);
    let (st, body) = s
        .post("/certificates", json!({"cert": "not a pem", "key": key}))
        .await;
    assert_eq!(st, 400);
    assert!(
        body["fields"]["cert"]
            .as_str()
            .unwrap()
            .starts_with("invalid certificate"),
        "{body}"
    );
    let (st, c) = s
        .post(
            "/certificates",
            json!({"cert": cert, "key": key, "snis": ["b.example.test", "a.example.test"]}),
        )
        .await;
    assert_eq!(st, 201, "{c}");
    assert_eq!(
        c["snis"],
        json!(["a.example.test", "b.example.test"]),
        "sorted SNI names"
    );
    let cid = c["id"].as_str().unwrap().to_owned();
    let (_, snis) = s.get("/snis").await;
    assert_eq!(snis["data"].as_array().unwrap().len(), 2);
    assert_eq!(snis["data"][0]["certificate"], json!({"id": cid}));
    // A certificate is found by one of its SNI names.
    assert_eq!(
        s.get("/certificates/a.example.test").await.1["id"],
        json!(cid)
    );
    let (st, body) = s.get("/certificates/nope.example.test").await;
    assert_eq!((st, body), (404, json!({"message": "SNI not found"})));
    // Another certificate cannot take a name in use.
    let (cert2, key2) = cert_pair("other.test", false);
    let (st, body) = s
        .post(
            "/certificates",
            json!({"cert": cert2, "key": key2, "snis": ["a.example.test"]}),
        )
        .await;
    assert_eq!(st, 400);
    assert_eq!(
        body["fields"]["snis"],
        format!("a.example.test already associated with existing certificate '{cid}'")
    );
    // PATCH replaces the SNI set; deleting the certificate removes its SNIs.
    let (st, c2) = s
        .patch(
            &format!("/certificates/{cid}"),
            json!({"snis": ["c.example.test"]}),
        )
        .await;
    assert_eq!(st, 200, "{c2}");
    assert_eq!(c2["snis"], json!(["c.example.test"]));
    assert_eq!(s.get("/snis").await.1["data"].as_array().unwrap().len(), 1);
    assert_eq!(s.delete(&format!("/certificates/{cid}")).await.0, 204);
    assert_eq!(s.get("/snis").await.1["data"], json!([]));
}

#[tokio::test]
async fn ca_certificates_are_unique_by_digest() {
    // kong/db/schema/entities/ca_certificates.lua; §5.9
    let s = Sim::new().await;
    let (ca, _) = cert_pair("ca.example.test", true);
    let (st, c) = s.post("/ca_certificates", json!({"cert": ca})).await;
    assert_eq!(st, 201, "{c}");
    let digest = c["cert_digest"].as_str().unwrap().to_owned();
    assert_eq!(digest.len(), 64);
    let (st, body) = s.post("/ca_certificates", json!({"cert": ca})).await;
    assert_eq!(st, 409);
    assert_eq!(
        body["message"],
        format!("UNIQUE violation detected on '{{cert_digest=\"{digest}\"}}'")
    );
    let (st, body) = s
        .post("/ca_certificates", json!({"cert": format!("{ca}{ca}")}))
        .await;
    assert_eq!(st, 400);
    assert_eq!(
        body["fields"]["@entity"],
        json!(["please submit only one certificate at a time"])
    );
}

#[tokio::test]
async fn targets_list_newest_first_and_put_only_updates() {
    // kong/api/routes/upstreams.lua; §5.6
    let s = Sim::new().await;
    let (_, u) = s.post("/upstreams", json!({"name": "up.internal"})).await;
    let uid = u["id"].as_str().unwrap().to_owned();
    for t in ["10.0.0.1", "10.0.0.2:9000", "::1"] {
        assert_eq!(
            s.post("/upstreams/up.internal/targets", json!({"target": t}))
                .await
                .0,
            201
        );
        // Millisecond timestamps order the list; keep them apart.
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let (st, body) = s
        .post(
            "/upstreams/up.internal/targets",
            json!({"target": "10.0.0.2:9000"}),
        )
        .await;
    assert_eq!(st, 409);
    assert_eq!(
        body["message"],
        format!(
            "UNIQUE violation detected on '{{target=\"10.0.0.2:9000\",upstream={{id=\"{uid}\"}}}}'"
        )
    );
    let (_, page) = s.get("/upstreams/up.internal/targets?size=2").await;
    let names: Vec<&str> = page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["target"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "[0000:0000:0000:0000:0000:0000:0000:0001]:8000",
            "10.0.0.2:9000"
        ]
    );
    assert_eq!(
        page["offset"], "2",
        "targets page with a plain integer offset"
    );
    let (_, rest) = s.get("/upstreams/up.internal/targets?offset=2").await;
    assert_eq!(rest["data"][0]["target"], "10.0.0.1:8000");
    assert_eq!(rest["next"], Value::Null);
    // PUT updates an existing target and never creates one.
    let (st, t) = s
        .put(
            "/upstreams/up.internal/targets/10.0.0.1:8000",
            json!({"weight": 5}),
        )
        .await;
    assert_eq!(st, 200, "{t}");
    assert_eq!(t["weight"], 5);
    assert_eq!(
        s.put(
            "/upstreams/up.internal/targets/10.9.9.9:80",
            json!({"weight": 5})
        )
        .await
        .0,
        404
    );
    // A nested DELETE of a missing child is 404, unlike top-level deletes.
    assert_eq!(
        s.delete("/upstreams/up.internal/targets/10.9.9.9:80")
            .await
            .0,
        404
    );
}

#[tokio::test]
async fn node_endpoints_list_plugins_tags_and_methods() {
    // kong/api/routes/{kong,tags}.lua, kong/api/api_helpers.lua; §6.1, §3.2, §1
    let s = Sim::new().await;
    s.post(
        "/services",
        json!({"name": "a", "host": "h", "tags": ["team-a", "prod"]}),
    )
    .await;
    s.post("/consumers", json!({"username": "c", "tags": ["team-a"]}))
        .await;
    s.post("/plugins", json!({"name": "cors"})).await;
    let (_, root) = s.get("/").await;
    assert!(root["plugins"]["available_on_server"]["key-auth"]["priority"].is_number());
    assert_eq!(root["plugins"]["enabled_in_cluster"], json!(["cors"]));
    let (_, tags) = s.get("/tags/team-a").await;
    let entities: Vec<&str> = tags["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["entity_name"].as_str().unwrap())
        .collect();
    assert_eq!(entities, ["consumers", "services"]);
    let (_, all) = s.get("/tags").await;
    assert_eq!(all["data"].as_array().unwrap().len(), 3);
    // OPTIONS answers with the methods; HEAD is GET without a body.
    let resp = s
        .client
        .request(reqwest::Method::OPTIONS, format!("{}/routes", s.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    assert_eq!(resp.headers()["allow"], "GET, HEAD, OPTIONS, POST");
    let resp = s
        .client
        .head(format!("{}/services", s.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.text().await.unwrap(), "");
    let (_, eps) = s.get("/endpoints").await;
    assert!(
        eps["data"]
            .as_array()
            .unwrap()
            .contains(&json!("/consumers/{consumers}/key-auth"))
    );
}
