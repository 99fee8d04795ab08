//! `carl ping` and `carl dump` end to end: TLS with client certificates, retries of
//! transient failures, the fewest read requests, and dumps that rebuild the gateway.

mod common;

use std::path::Path;

use common::{Gateway, write};
use predicates::prelude::PredicateBooleanExt;
use predicates::str::contains;
use serde_json::{Value, json};

/// A CA, a server certificate for 127.0.0.1/localhost, a client certificate, and a
/// second CA that signed nothing of this server's.
struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    fn new() -> Pki {
        let dir = tempfile::tempdir().unwrap();
        let ca = |name: &str| {
            let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
            params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
            params
                .distinguished_name
                .push(rcgen::DnType::CommonName, name);
            rcgen::CertifiedIssuer::self_signed(params, rcgen::KeyPair::generate().unwrap())
                .unwrap()
        };
        let ca1 = ca("carl test CA");
        let ca2 = ca("some other CA");
        let server_key = rcgen::KeyPair::generate().unwrap();
        let mut server_params =
            rcgen::CertificateParams::new(vec!["127.0.0.1".into(), "localhost".into()]).unwrap();
        server_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "kong-admin.test");
        let server = server_params.signed_by(&server_key, &ca1).unwrap();
        let client_key = rcgen::KeyPair::generate().unwrap();
        let client = rcgen::CertificateParams::new(vec!["carl".into()])
            .unwrap()
            .signed_by(&client_key, &ca1)
            .unwrap();
        // The right names and CA, but valid only in 2020.
        let mut expired_params =
            rcgen::CertificateParams::new(vec!["127.0.0.1".into(), "localhost".into()]).unwrap();
        expired_params.not_before = rcgen::date_time_ymd(2020, 1, 1);
        expired_params.not_after = rcgen::date_time_ymd(2020, 12, 31);
        let expired = expired_params.signed_by(&server_key, &ca1).unwrap();
        // A client certificate from a CA the server does not trust.
        let stranger = rcgen::CertificateParams::new(vec!["carl".into()])
            .unwrap()
            .signed_by(&client_key, &ca2)
            .unwrap();
        let files = [
            ("ca.pem", ca1.pem()),
            ("other-ca.pem", ca2.pem()),
            ("server.pem", server.pem()),
            ("server.key", server_key.serialize_pem()),
            ("client.pem", client.pem()),
            ("client.key", client_key.serialize_pem()),
            ("expired.pem", expired.pem()),
            ("stranger.pem", stranger.pem()),
        ];
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        Pki { dir }
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }

    fn sim(&self, client_ca: bool) -> Gateway {
        self.sim_with("server.pem", client_ca)
    }

    fn sim_with(&self, server_cert: &str, client_ca: bool) -> Gateway {
        Gateway::start_sim(kong_sim::SimConfig {
            tls: Some(kong_sim::TlsFiles {
                cert: self.dir.path().join(server_cert),
                key: self.dir.path().join("server.key"),
                client_ca: client_ca.then(|| self.dir.path().join("ca.pem")),
            }),
            ..kong_sim::SimConfig::default()
        })
    }
}

#[test]
fn ping_reports_kong_and_fails_clearly_when_unreachable() {
    let gw = Gateway::start();
    gw.carl()
        .arg("ping")
        .assert()
        .code(0)
        .stdout(contains("reachable: "))
        .stdout(contains("Kong       3."))
        .stdout(contains("TLS        none (plain HTTP)"));
    let out = gw
        .carl()
        .args(["ping", "--format", "json"])
        .assert()
        .code(0);
    let ping: Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert!(
        ping["version"].as_str().unwrap().starts_with("3."),
        "{ping}"
    );
    assert_eq!(ping["db_less"], false);

    // Nothing listens on port 9 of localhost: one clear line, exit 1, quickly.
    gw.carl()
        .args([
            "ping",
            "--kong-addr",
            "http://127.0.0.1:9",
            "--retries",
            "1",
        ])
        .assert()
        .code(1)
        .stderr(contains("cannot use the Admin API at http://127.0.0.1:9"))
        .stderr(contains("Connection refused"));
}

#[test]
fn mutual_tls_works_with_the_right_certificates_and_each_mistake_says_what_it_is() {
    let pki = Pki::new();
    let gw = pki.sim(true);
    let (ca, client, key) = (
        pki.path("ca.pem"),
        pki.path("client.pem"),
        pki.path("client.key"),
    );
    let tls = |cmd: &mut common::Carl| {
        cmd.args([
            "--ca-cert",
            &ca,
            "--tls-client-cert",
            &client,
            "--tls-client-key",
            &key,
        ]);
    };

    let mut ping = gw.carl();
    tls(&mut ping);
    ping.arg("ping")
        .assert()
        .code(0)
        .stdout(contains("TLS        TLSv1.3"))
        .stdout(contains("CN=kong-admin.test"))
        .stdout(contains("issued by CN=carl test CA"))
        .stdout(contains("certificate presented and accepted"));
    let mut dump = gw.carl();
    tls(&mut dump);
    dump.arg("dump")
        .assert()
        .code(0)
        .stdout(contains("_format_version: \"3.0\""));

    // The PEM itself in the environment, as CI variables hold it.
    gw.carl()
        .args(["ping", "--ca-cert", &ca])
        .env(
            "CARL_TLS_CLIENT_CERT",
            std::fs::read_to_string(&client).unwrap(),
        )
        .env(
            "CARL_TLS_CLIENT_KEY",
            std::fs::read_to_string(&key).unwrap(),
        )
        .assert()
        .code(0);

    // No client certificate.
    gw.carl()
        .args(["ping", "--ca-cert", &ca, "--retries", "0"])
        .assert()
        .code(1)
        .stderr(contains("requires a client certificate"))
        .stderr(contains("--tls-client-cert and --tls-client-key"));
    // A CA that did not sign the server's certificate.
    let mut wrong_ca = gw.carl();
    wrong_ca.args([
        "ping",
        "--ca-cert",
        &pki.path("other-ca.pem"),
        "--tls-client-cert",
        &client,
        "--tls-client-key",
        &key,
    ]);
    wrong_ca
        .assert()
        .code(1)
        .stderr(contains("not signed by a CA carl trusts: pass --ca-cert"));
    // A name the certificate does not hold.
    let mut mismatch = gw.carl();
    tls(&mut mismatch);
    mismatch
        .args(["ping", "--tls-server-name", "kong.example.com"])
        .assert()
        .code(1)
        .stderr(contains("not valid for this host name"));
    // Without any CA, the system's do not know this one either.
    gw.carl()
        .args(["ping", "--retries", "0"])
        .assert()
        .code(1)
        .stderr(contains("CA carl trusts").or(contains("no system CA certificates")));
    // Skipping verification works, and says how dangerous it is, every time.
    let mut skip = gw.carl();
    skip.args([
        "ping",
        "--tls-skip-verify",
        "--tls-client-cert",
        &client,
        "--tls-client-key",
        &key,
        "-q",
    ]);
    skip.assert()
        .code(0)
        .stderr(contains("warning: --tls-skip-verify"));
    // A key without its certificate is a usage mistake, named before connecting.
    gw.carl()
        .args(["ping", "--ca-cert", &ca, "--tls-client-key", &key])
        .assert()
        .code(1)
        .stderr(contains("no client certificate: add --tls-client-cert"))
        .stderr(contains("BEGIN").not());
}

/// The two TLS mistakes the test above does not make: an Admin API whose certificate
/// has expired, and a client certificate from a CA the Admin API does not trust. And
/// `--tls-skip-verify` warns once on every run, whatever the command.
#[test]
fn an_expired_certificate_and_a_stranger_client_certificate_are_refused() {
    let pki = Pki::new();
    let (ca, client, key) = (
        pki.path("ca.pem"),
        pki.path("client.pem"),
        pki.path("client.key"),
    );
    let expired = pki.sim_with("expired.pem", false);
    expired
        .carl()
        .args(["ping", "--ca-cert", &ca, "--retries", "0"])
        .assert()
        .code(1)
        .stderr(contains("the Admin API's certificate has expired"));
    // Refused in the handshake (the server's alert arrives: "refused carl's client
    // certificate"), or just after it under TLS 1.3 (a closed connection: "it probably
    // refused carl's client certificate"): either way the message says which.
    let mtls = pki.sim(true);
    mtls.carl()
        .args(["ping", "--ca-cert", &ca, "--retries", "0"])
        .args(["--tls-client-cert", &pki.path("stranger.pem")])
        .args(["--tls-client-key", &key])
        .assert()
        .code(1)
        .stderr(contains("refused carl's client certificate"));
    // The right one still works: the refusals were about the certificates.
    mtls.carl()
        .args(["ping", "--ca-cert", &ca])
        .args(["--tls-client-cert", &client, "--tls-client-key", &key])
        .assert()
        .code(0);

    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "gw.yaml",
        "_format_version: \"3.0\"\nservices:\n- name: a\n  host: a.internal\n",
    );
    for command in [
        vec!["ping"],
        vec!["validate", "--online", "-f", &file],
        vec!["reconcile", "--plan", "-f", &file],
        vec!["reconcile", "--apply", "-f", &file],
        vec!["reconcile", "--check", "-f", &file],
        vec!["dump"],
    ] {
        let out = expired
            .carl()
            .args(["--tls-skip-verify"])
            .args(&command)
            .assert()
            .code(0);
        let stderr = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
        assert_eq!(
            stderr.matches("--tls-skip-verify").count(),
            1,
            "{command:?} warns once: {stderr}"
        );
        assert!(stderr.contains("warning: --tls-skip-verify"), "{stderr}");
    }
}

/// Populates a gateway with every kind the dump nests, through the Admin API.
fn populate(gw: &Gateway, dir: &Path) {
    let file = write(
        dir,
        "services.yaml",
        "_format_version: \"3.0\"\nservices:\n- name: orders\n  url: http://orders.internal:8080/v1\n  routes:\n  - name: orders-api\n    paths: [/orders]\n  - hosts: [orders.example.com]\n- name: billing\n  host: billing.internal\n  retries: 2\n",
    );
    gw.carl()
        .args(["reconcile", "--apply", "-f", &file])
        .assert()
        .code(0);
    let post = |path: &str, body: Value| {
        let (status, answer) = gw.call("POST", path, Some(body));
        assert_eq!(status, 201, "POST {path}: {answer}");
        answer
    };
    let ann = post("/consumers", json!({"username": "ann", "tags": ["team-a"]}));
    post("/consumers/ann/key-auth", json!({"key": "ann-secret-key"}));
    post(
        "/consumers/ann/basic-auth",
        json!({"username": "ann", "password": "hunter2"}),
    );
    post("/consumers/ann/acls", json!({"group": "readers"}));
    post(
        "/upstreams",
        json!({"name": "orders.internal", "algorithm": "least-connections"}),
    );
    post(
        "/upstreams/orders.internal/targets",
        json!({"target": "10.0.0.1:8080"}),
    );
    post(
        "/upstreams/orders.internal/targets",
        json!({"target": "10.0.0.2:8080", "weight": 50}),
    );
    post(
        "/services/orders/plugins",
        json!({"name": "rate-limiting", "config": {"minute": 10}}),
    );
    post(
        "/plugins",
        json!({"name": "rate-limiting", "config": {"hour": 100}, "service": {"name": "orders"}, "consumer": {"id": ann["id"]}}),
    );
    post("/plugins", json!({"name": "correlation-id"}));
}

#[test]
fn two_dumps_are_identical_and_a_dump_rebuilds_the_gateway() {
    let gw = Gateway::start_sim(kong_sim::SimConfig::default());
    let dir = tempfile::tempdir().unwrap();
    populate(&gw, dir.path());
    let dump = |gw: &Gateway, extra: &[&str]| -> String {
        let out = gw.carl().arg("dump").args(extra).assert().code(0);
        String::from_utf8(out.get_output().stdout.clone()).unwrap()
    };
    let first = dump(&gw, &[]);
    assert_eq!(first, dump(&gw, &[]), "dumps are deterministic");
    for expected in [
        "ann-secret-key",
        "_transform: false",
        "target: 10.0.0.2:8080",
        "consumer: ann",
        "algorithm: least-connections",
    ] {
        assert!(first.contains(expected), "{expected} missing:\n{first}");
    }
    for left_out in ["created_at", "connect_timeout: 60000", "null"] {
        assert!(!first.contains(left_out), "{left_out} in:\n{first}");
    }
    let file = write(dir.path(), "dump.yaml", &first);
    gw.carl().args(["validate", "-f", &file]).assert().code(0);

    // Kong's own loader (DB-less /config) rebuilds the gateway from the dump, and the
    // rebuilt gateway dumps to the same file.
    let rebuilt = Gateway::start_sim(kong_sim::SimConfig {
        db_less: true,
        ..kong_sim::SimConfig::default()
    });
    let (status, body) = rebuilt.call("POST", "/config", Some(json!({ "config": first.clone() })));
    assert_eq!(status, 201, "{body}");
    assert_eq!(dump(&rebuilt, &[]), first);

    // Redacted: no secret left, and the file refuses to load rather than apply
    // placeholders.
    let redacted = dump(&gw, &["--redact-secrets"]);
    assert!(!redacted.contains("ann-secret-key") && redacted.contains("${CARL_REDACTED}"));
    let file = write(dir.path(), "redacted.yaml", &redacted);
    gw.carl()
        .args(["validate", "-f", &file])
        .assert()
        .code(1)
        .stderr(contains("CARL_REDACTED is not set"));

    // To a file: owner-only, since it holds secrets.
    let out = dir.path().join("backup.yaml");
    gw.carl()
        .args(["dump", "-o", out.to_str().unwrap()])
        .assert()
        .code(0);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&out).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}

#[test]
fn a_dump_of_services_and_routes_plans_no_change() {
    let gw = Gateway::start();
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "gateway.yaml",
        "_format_version: \"3.0\"\nservices:\n- name: orders\n  url: https://orders.internal:8443/v1\n  retries: 3\n  routes:\n  - name: orders-api\n    paths: [/orders, \"~/orders/\\\\d+$\"]\n    methods: [GET, POST]\n  - hosts: [orders.example.com]\n    strip_path: false\n",
    );
    gw.carl()
        .args(["reconcile", "--apply", "-f", &file])
        .assert()
        .code(0);
    assert_dump_plans_no_change(&gw, dir.path());
}

/// How many requests kong-sim counted for `route` (`GET /services`) in `stats`.
fn route_count_in(stats: &Value, route: &str) -> u64 {
    stats["requests"]["by_route"][route].as_u64().unwrap_or(0)
}

fn route_count(gw: &Gateway, route: &str) -> u64 {
    route_count_in(&gw.stats().unwrap(), route)
}

/// `carl dump` of `gw`, planned against `gw`: no changes.
fn assert_dump_plans_no_change(gw: &Gateway, dir: &Path) {
    let out = gw.carl().arg("dump").assert().code(0);
    let dumped = write(
        dir,
        "dump.yaml",
        &String::from_utf8_lossy(&out.get_output().stdout),
    );
    gw.carl()
        .args(["reconcile", "--plan", "--detailed-exitcode", "-f", &dumped])
        .assert()
        .code(0)
        .stdout(contains("No changes"));
}

/// A gateway built by hand through the Admin API (credentials with keys Kong did not
/// generate, a hashed password, plugins scoped to a service and a consumer, targets
/// without a port) dumps to a file that plans no change against it.
#[test]
fn a_dump_of_a_hand_built_gateway_plans_no_change() {
    let gw = Gateway::start();
    let dir = tempfile::tempdir().unwrap();
    populate(&gw, dir.path());
    assert_dump_plans_no_change(&gw, dir.path());
}

#[test]
fn select_tags_dump_only_what_a_team_owns() {
    let gw = Gateway::start_sim(kong_sim::SimConfig::default());
    for (name, tags) in [("a1", json!(["team-a"])), ("b1", json!(["team-b"]))] {
        let (status, body) = gw.call(
            "POST",
            "/services",
            Some(json!({"name": name, "host": "h.internal", "tags": tags})),
        );
        assert_eq!(status, 201, "{body}");
    }
    let out = gw
        .carl()
        .args(["dump", "--select-tag", "team-a"])
        .assert()
        .code(0);
    let text = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    assert!(
        text.contains("select_tags:\n  - team-a") && text.contains("name: a1"),
        "{text}"
    );
    assert!(
        !text.contains("b1") && !text.contains("tags:\n  - team-a\n  name"),
        "{text}"
    );
}

#[test]
fn transient_failures_are_retried_and_permanent_ones_are_not() {
    let gw = Gateway::start_sim(kong_sim::SimConfig::default());
    gw.call("POST", "/services", Some(json!({"name": "s", "host": "h"})));
    let faults = |rules: Value| {
        let (status, body) = gw.call("PUT", "/_sim/faults", Some(json!({ "rules": rules })));
        assert_eq!(status, 200, "{body}");
    };
    // Two 503s, a 502, a reset and a 429 with Retry-After: all retried, the dump succeeds.
    faults(json!([
        {"method": "GET", "path": "/services", "status": 503, "count": 2},
        {"method": "GET", "path": "/routes", "status": 502, "count": 1},
        {"method": "GET", "path": "/consumers", "reset": true, "count": 1},
        {"method": "GET", "path": "/upstreams", "status": 429, "count": 1},
    ]));
    let before = route_count(&gw, "GET /services");
    let started = std::time::Instant::now();
    gw.carl()
        .arg("dump")
        .assert()
        .code(0)
        .stdout(contains("name: s"));
    assert!(
        started.elapsed() >= std::time::Duration::from_secs(1),
        "Retry-After: 1 was honoured"
    );
    assert_eq!(
        route_count(&gw, "GET /services") - before,
        3,
        "2 failures + 1 success"
    );

    // Kong answers 500 for a database error: retried like the others; one that lasts
    // is reported after the retries (--retries 2: three tries).
    faults(json!([{"method": "GET", "path": "/services", "status": 500}]));
    let before = route_count(&gw, "GET /services");
    gw.carl()
        .args(["--retries", "2", "dump"])
        .assert()
        .code(1)
        .stderr(contains("GET /services?size=1000: 500"));
    assert_eq!(route_count(&gw, "GET /services") - before, 3);
    // A 4xx is Kong refusing the request: reported at once, not retried.
    faults(json!([{"method": "GET", "path": "/services", "status": 400}]));
    let before = route_count(&gw, "GET /services");
    gw.carl()
        .arg("dump")
        .assert()
        .code(1)
        .stderr(contains("GET /services?size=1000: 400"));
    assert_eq!(route_count(&gw, "GET /services") - before, 1);
}

#[test]
fn reading_a_large_gateway_takes_the_fewest_requests() {
    // 5,000 services with a route each, 5,000 consumers, 300 upstreams with 2 targets.
    let gw = Gateway::start_sim(kong_sim::SimConfig {
        db_less: true,
        ..kong_sim::SimConfig::default()
    });
    let mut services = Vec::new();
    let mut consumers = Vec::new();
    for i in 0..5000 {
        services.push(json!({"name": format!("s{i}"), "host": "h.internal",
            "routes": [{"name": format!("r{i}"), "paths": [format!("/s{i}")]}]}));
        consumers.push(json!({"username": format!("c{i}")}));
    }
    let upstreams: Vec<Value> = (0..300)
        .map(|i| json!({"name": format!("u{i}.internal"), "targets": [{"target": "10.0.0.1"}, {"target": "10.0.0.2"}]}))
        .collect();
    let config = json!({"_format_version": "3.0", "services": services, "consumers": consumers, "upstreams": upstreams});
    let (status, body) = gw.call("POST", "/config", Some(config));
    assert_eq!(status, 201, "{body}");
    let before = gw.requests().unwrap();
    gw.carl().arg("dump").assert().code(0);
    let sent = gw.requests().unwrap() - before;
    // Per kind: one page per 1000 (at least one), plus one request per upstream.
    let pages = |n: u64| n.div_ceil(1000).max(1);
    // The 12 other kinds are empty: one page each; `GET /` says which kinds exist.
    let minimum = 1 + pages(5000) * 3 + pages(300) + 300 + 12;
    assert_eq!(sent, minimum, "{}", gw.stats().unwrap());
}

#[test]
fn workspaces_and_admin_tokens_reach_an_enterprise_style_admin_api() {
    let gw = Gateway::start_sim(kong_sim::SimConfig {
        admin_token: Some("rbac-token-123".into()),
        workspaces: vec!["default".into(), "team-a".into()],
        ..kong_sim::SimConfig::default()
    });
    // Without the token: Kong's 401, named, and not retried into a long wait.
    gw.carl()
        .args(["dump", "--workspace", "team-a"])
        .assert()
        .code(1)
        .stderr(contains("401"));
    let out = gw
        .carl()
        .args(["dump", "--workspace", "team-a"])
        .env("CARL_HEADERS", "Kong-Admin-Token: rbac-token-123")
        .assert()
        .code(0);
    assert!(String::from_utf8_lossy(&out.get_output().stdout).contains("_format_version"));
    // The token never shows in help or errors.
    gw.carl()
        .args(["--help"])
        .env("CARL_HEADERS", "Kong-Admin-Token: rbac-token-123")
        .assert()
        .code(0)
        .stdout(contains("rbac-token-123").not());
    gw.carl()
        .args(["dump", "--header", "Kong-Admin-Token rbac-token-123"])
        .assert()
        .code(1)
        .stderr(contains("expected 'Name: value'"))
        .stderr(contains("rbac-token-123").not());
}

/// Every kind, certificates and key sets included: Kong's loader takes the fixture,
/// carl dumps it, Kong's loader takes the dump, and the second dump is the first.
#[test]
fn dumps_of_every_kind_reload_into_kong_unchanged() {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/good/every-kind-flat.yaml"),
    )
    .unwrap();
    // Kong reads references as a name or an id, not carl's {name: ...}.
    let text = carl_config::interpolate(&text, &|_| None)
        .unwrap()
        .replace("service: {name: catalog}", "service: catalog")
        .replace("certificate: {id: ", "certificate: ")
        .replace("0a11}", "0a11");
    let load_and_dump = |config: &str| -> String {
        let gw = Gateway::start_sim(kong_sim::SimConfig {
            db_less: true,
            ..kong_sim::SimConfig::default()
        });
        let (status, body) = gw.call("POST", "/config", Some(json!({ "config": config })));
        assert_eq!(status, 201, "{body}");
        let out = gw.carl().arg("dump").assert().code(0);
        String::from_utf8(out.get_output().stdout.clone()).unwrap()
    };
    let first = load_and_dump(&text);
    for kind in [
        "certificates:",
        "snis:",
        "key_sets:",
        "keys:",
        "acls:",
        "targets:",
        "plugins:",
    ] {
        assert!(first.contains(kind), "{kind} missing:\n{first}");
    }
    assert_eq!(load_and_dump(&first), first);
}

/// Kong 2.8 is read, never written: `ping` says so, `dump` skips what 2.8 lacks (keys,
/// key sets), reads vaults from `/vaults-beta`, and writes a 3.0 file whose regex paths
/// carry the `~` Kong's 3.0 migration gives them; `reconcile` refuses before any write.
#[test]
fn kong_2_8_is_read_as_a_3_0_file_and_never_written() {
    let gw = Gateway::start_sim(kong_sim::SimConfig {
        kong_version: "2.8.4".into(),
        ..kong_sim::SimConfig::default()
    });
    let (status, body) = gw.call(
        "PUT",
        "/services/orders",
        Some(json!({"host": "orders.internal"})),
    );
    assert_eq!(status, 200, "{body}");
    let (status, body) = gw.call(
        "PUT",
        "/services/orders/routes/by-id",
        Some(json!({"paths": ["/orders/\\d+$", "/caf%C3%A9", "/plain"]})),
    );
    assert_eq!(status, 200, "{body}");
    let (status, _) = gw.call("GET", "/keys", None);
    assert_eq!(status, 404, "Kong 2.8 has no keys");

    gw.carl()
        .arg("ping")
        .assert()
        .code(0)
        .stdout(contains("Kong       2.8.4 (community)"))
        .stdout(contains("reading only"));

    let before = gw.stats().unwrap();
    let out = gw.carl().arg("dump").assert().code(0);
    let after = gw.stats().unwrap();
    let text = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    assert!(
        text.contains("_format_version: '3.0'") || text.contains("_format_version: \"3.0\""),
        "{text}"
    );
    assert!(text.contains("~/orders/\\d+$"), "{text}");
    assert!(text.contains("- /café"), "{text}");
    assert!(text.contains("- /plain"), "{text}");
    let got = route_count_in;
    assert_eq!(
        got(&after, "GET /keys") - got(&before, "GET /keys"),
        0,
        "{after}"
    );
    assert_eq!(
        got(&after, "GET /key-sets") - got(&before, "GET /key-sets"),
        0,
        "{after}"
    );
    assert_eq!(
        got(&after, "GET /vaults-beta") - got(&before, "GET /vaults-beta"),
        1,
        "{after}"
    );
    out.stderr(contains("route paths written in 3.0 form"));

    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "gateway.yaml",
        "_format_version: '3.0'\nservices:\n- name: orders\n  host: orders.internal\n",
    );
    let writes = gw.writes().unwrap();
    for mode in ["--plan", "--apply", "--check"] {
        gw.carl()
            .args(["reconcile", mode, "-f", &file])
            .assert()
            .code(1)
            .stderr(contains("Kong 2.8.4 is supported for reading only"));
    }
    assert_eq!(gw.writes().unwrap(), writes);
}

/// Every kind through the Admin API: carl applies the fixture into an empty gateway,
/// then plans no change; the gateway's dump plans no change either; the dump applied
/// to another empty gateway dumps to the same file.
#[test]
fn every_kind_applies_plans_in_sync_and_its_dump_rebuilds_the_gateway() {
    let fixture =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/good/every-kind-flat.yaml");
    let fixture = fixture.to_str().unwrap();
    let gw = Gateway::start();
    gw.carl()
        .args(["reconcile", "--apply", "-f", fixture])
        .assert()
        .code(0);
    gw.carl()
        .args(["reconcile", "--plan", "--detailed-exitcode", "-f", fixture])
        .assert()
        .code(0)
        .stdout(contains("No changes."));

    let dump = |gw: &Gateway| -> String {
        let out = gw.carl().arg("dump").assert().code(0);
        String::from_utf8(out.get_output().stdout.clone()).unwrap()
    };
    let first = dump(&gw);
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "dump.yaml", &first);
    gw.carl()
        .args(["reconcile", "--plan", "--detailed-exitcode", "-f", &file])
        .assert()
        .code(0)
        .stdout(contains("No changes."));

    // The dump holds the basic-auth password as Kong's hash: through the Admin API that
    // cannot be restored, and carl says so instead of setting the hash as the password.
    let empty = Gateway::start_sim(kong_sim::SimConfig::default());
    empty
        .carl()
        .args(["reconcile", "--apply", "-f", &file])
        .assert()
        .code(1)
        .stderr(contains("basic-auth credential \"partner-a-basic\""))
        .stderr(contains("would hash it again"));
    assert_eq!(empty.writes(), Some(0));
    // Without it, the dump rebuilds the gateway exactly.
    let without_basic_auth = drop_basic_auth(&first);
    let file = write(dir.path(), "rebuild.yaml", &without_basic_auth);
    empty
        .carl()
        .args(["reconcile", "--apply", "-f", &file])
        .assert()
        .code(0);
    // Without basic-auth, the dump has no reason to keep `_transform: false` and the
    // consumer's id (the password's salt).
    let unsalted = |t: &str| -> String {
        t.lines()
            .filter(|l| *l != "_transform: false" && !l.trim_start().starts_with("id: "))
            .map(|l| format!("{l}\n"))
            .collect()
    };
    assert_eq!(dump(&empty), unsalted(&without_basic_auth));
}

/// `text` without its `basicauth_credentials` block (nested under a consumer).
fn drop_basic_auth(text: &str) -> String {
    let mut out = Vec::new();
    let mut skip_indent: Option<usize> = None;
    for line in text.lines() {
        let indent = line.len() - line.trim_start().len();
        if let Some(i) = skip_indent {
            if indent > i || (indent == i && line.trim_start().starts_with("- ")) {
                continue;
            }
            skip_indent = None;
        }
        if line.trim_start().starts_with("basicauth_credentials:") {
            skip_indent = Some(indent);
            continue;
        }
        out.push(line);
    }
    out.join("\n") + "\n"
}

/// A plan reads each kind once (one page each when small), and each schema it needs
/// once: one per kind in the file and one per plugin the file uses.
#[test]
fn a_plan_fetches_each_schema_once_per_kind_and_plugin_in_use() {
    let gw = Gateway::start_sim(kong_sim::SimConfig::default());
    let fixture =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/good/every-kind-flat.yaml");
    let before = gw.stats().unwrap();
    gw.carl()
        .args(["reconcile", "--plan", "-f", fixture.to_str().unwrap()])
        .assert()
        .code(0);
    let after = gw.stats().unwrap();
    let count = |stats: &Value, prefix: &str| -> u64 {
        stats["requests"]["by_route"]
            .as_object()
            .unwrap()
            .iter()
            .filter(|(route, _)| route.starts_with(prefix))
            .map(|(_, n)| n.as_u64().unwrap())
            .sum()
    };
    // 13 kinds in the file; plugins key-auth, acl, rate-limiting and http-log.
    assert_eq!(
        count(&after, "GET /schemas/") - count(&before, "GET /schemas/"),
        13 + 4,
        "{after}"
    );
    // GET /, then one page of each of the 16 kinds with a collection (targets come
    // per upstream, and there are none).
    let total = after["requests"]["total"].as_u64().unwrap()
        - before["requests"]["total"].as_u64().unwrap();
    assert_eq!(total, 1 + 16 + 17, "{after}");
}
