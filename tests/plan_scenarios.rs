//! The planner's hard cases against a gateway (kong-sim, or a real Kong with
//! CARL_TEST_KONG_ADDR): each applies cleanly (no 409, no refused delete), converges
//! (the next plan is empty), and its plan reads as a reviewer expects.

mod common;

use common::{Gateway, write};
use predicates::str::contains;

/// Applies `before`, then plans and applies `after`; returns the plan text of `after`.
fn transition(gw: &Gateway, before: &str, after: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let first = write(dir.path(), "before.yaml", before);
    gw.carl()
        .args(["reconcile", "--apply", "-f", &first])
        .assert()
        .code(0);
    let second = write(dir.path(), "after.yaml", after);
    let plan = gw
        .carl()
        .args(["reconcile", "--plan", "-f", &second])
        .assert()
        .code(0);
    let text = String::from_utf8_lossy(&plan.get_output().stdout).into_owned();
    gw.carl()
        .args(["reconcile", "--apply", "-f", &second])
        .assert()
        .code(0);
    gw.carl()
        .args(["reconcile", "--plan", "--detailed-exitcode", "-f", &second])
        .assert()
        .code(0)
        .stdout(contains("No changes."));
    if let Some(stats) = gw.stats() {
        let by_status = &stats["requests"]["by_status"];
        for status in ["400", "409", "500"] {
            assert!(by_status[status].is_null(), "{status} answered: {stats}");
        }
    }
    text
}

#[test]
fn two_services_swap_names_without_a_conflict() {
    let gw = Gateway::start();
    let before = "_format_version: \"3.0\"\nservices:\n- id: 0d6d1c8e-3b7a-4c59-9b1e-0000000000a1\n  name: blue\n  host: a.internal\n- id: 0d6d1c8e-3b7a-4c59-9b1e-0000000000b2\n  name: green\n  host: b.internal\n";
    let after = before
        .replace("name: blue", "name: TMP")
        .replace("name: green", "name: blue")
        .replace("name: TMP", "name: green");
    let text = transition(&gw, before, &after);
    assert!(
        text.contains("Plan: 0 to create, 3 to update, 0 to delete."),
        "{text}"
    );
    assert!(text.contains("temporary name"), "{text}");
    let a = gw
        .call(
            "GET",
            "/services/0d6d1c8e-3b7a-4c59-9b1e-0000000000a1",
            None,
        )
        .1;
    assert_eq!(a["name"], "green");
}

#[test]
fn a_username_moves_to_another_consumer() {
    let gw = Gateway::start();
    let before = "_format_version: \"3.0\"\nconsumers:\n- username: ann\n  custom_id: c-1\n- username: bob\n  custom_id: c-2\n";
    // `ann` leaves c-1 and is taken by c-2 (matched by id: both keep their identity).
    let live_before = |gw: &Gateway, name: &str| {
        gw.call("GET", &format!("/consumers/{name}"), None).1["id"].clone()
    };
    let dir = tempfile::tempdir().unwrap();
    let first = write(dir.path(), "before.yaml", before);
    gw.carl()
        .args(["reconcile", "--apply", "-f", &first])
        .assert()
        .code(0);
    let ann = live_before(&gw, "ann");
    let bob = live_before(&gw, "bob");
    let after = format!(
        "_format_version: \"3.0\"\nconsumers:\n- id: {}\n  username: ann-old\n  custom_id: c-1\n- id: {}\n  username: ann\n  custom_id: c-2\n",
        ann.as_str().unwrap(),
        bob.as_str().unwrap()
    );
    let text = transition(&gw, before, &after);
    assert!(text.contains("username: \"ann\" → \"ann-old\""), "{text}");
    assert_eq!(gw.call("GET", "/consumers/ann", None).1["id"], bob);
}

#[test]
fn a_plugin_moves_from_a_route_to_its_service() {
    let gw = Gateway::start();
    let before = "_format_version: \"3.0\"\nservices:\n- name: orders\n  host: orders.internal\n  routes:\n  - name: orders-api\n    paths: [/orders]\n    plugins:\n    - name: rate-limiting\n      config: {minute: 10}\n";
    let after = "_format_version: \"3.0\"\nservices:\n- name: orders\n  host: orders.internal\n  plugins:\n  - name: rate-limiting\n    config: {minute: 10}\n  routes:\n  - name: orders-api\n    paths: [/orders]\n";
    let text = transition(&gw, before, after);
    assert!(
        text.contains("+ plugin \"rate-limiting\" on service \"orders\""),
        "{text}"
    );
    assert!(
        text.contains("- plugin \"rate-limiting\" on route \"orders-api\""),
        "{text}"
    );
    assert_eq!(gw.list("plugins").len(), 1);
}

#[test]
fn a_certificate_replaced_with_its_snis() {
    let gw = Gateway::start();
    let pem = |name: &str| {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec![name.to_owned()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        (cert.pem(), key.serialize_pem())
    };
    let file = |(cert, key): &(String, String)| {
        let indent = |s: &str| s.lines().map(|l| format!("    {l}\n")).collect::<String>();
        format!(
            "_format_version: \"3.0\"\ncertificates:\n- cert: |\n{}  key: |\n{}  snis:\n  - name: shop.example.com\n  - name: www.shop.example.com\n",
            indent(cert),
            indent(key)
        )
    };
    let old = pem("shop.example.com");
    let new = pem("shop.example.com");
    let text = transition(&gw, &file(&old), &file(&new));
    // The SNIs move to the new certificate before the old one goes: no moment without.
    assert!(
        text.contains("Plan: 1 to create, 2 to update, 1 to delete."),
        "{text}"
    );
    assert!(text.contains("~ SNI \"www.shop.example.com\""), "{text}");
    assert!(text.contains("cert: (PEM, sha256:"), "{text}");
    assert!(
        !text.contains("PRIVATE KEY") && !text.contains("BEGIN CERTIFICATE"),
        "{text}"
    );
    assert_eq!(gw.list("certificates").len(), 1);
    assert_eq!(gw.list("snis").len(), 2);
    assert!(gw.list("certificates")[0]["cert"].as_str().unwrap().trim() == new.0.trim());
}

#[test]
fn each_kind_creates_updates_and_deletes() {
    let gw = Gateway::start();
    let base = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/good/every-kind-flat.yaml"),
    )
    .unwrap();
    // One field changed in each kind that has a field to change.
    let changed = base
        .replace("port: 8080", "port: 8081")
        .replace("methods: [GET, HEAD]", "methods: [GET]")
        .replace("group: catalog-readers", "group: catalog-writers")
        .replace("allow: [catalog-readers]", "allow: [catalog-writers]")
        .replace("weight: 10", "weight: 20")
        .replace("second: 10", "second: 20")
        .replace(
            "http_endpoint: https://audit.internal/ingest",
            "http_endpoint: https://audit2.internal/ingest",
        )
        .replace(
            "- custom_id: partner-b-7731",
            "- custom_id: partner-b-7731\n  tags: [b]",
        );
    let text = transition(&gw, &base, &changed);
    for expected in [
        "port: 8080 → 8081",
        "methods: [\"GET\",\"HEAD\"] → [\"GET\"]",
        "weight: 10 → 20",
        "config.second: 10 → 20",
        "config.allow: [\"catalog-readers\"] → [\"catalog-writers\"]",
        "tags: null → [\"b\"]",
    ] {
        assert!(text.contains(expected), "{expected} missing:\n{text}");
    }
    // The ACL group is its identity: a new ACL replaces the old one.
    assert!(text.contains("+ ACL group \"catalog-writers\""), "{text}");
    assert!(text.contains("- ACL group \"catalog-readers\""), "{text}");
    // And everything goes away with an empty file.
    let text = transition(&gw, &changed, "_format_version: \"3.0\"\n");
    assert!(text.contains("to create, 0 to update,"), "{text}");
    for collection in [
        "services",
        "routes",
        "consumers",
        "plugins",
        "upstreams",
        "certificates",
        "snis",
        "keys",
        "key-sets",
    ] {
        assert!(gw.list(collection).is_empty(), "{collection} left");
    }
}
