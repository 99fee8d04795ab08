//! `carl reconcile` end to end: a file, the carl binary, and a gateway (kong-sim, or a
//! real Kong with CARL_TEST_KONG_ADDR).

mod common;

use common::{Gateway, write};
use predicates::prelude::*;
use predicates::str::contains;
use serde_json::json;

const GATEWAY: &str = r#"_format_version: "3.0"
services:
  - name: orders
    url: http://orders.internal:8080/v1
    retries: 3
    routes:
      - name: orders-api
        paths: [/orders]
        methods: [GET, POST]
      - hosts: [legacy.example.com]
        paths: [/shop/orders]
        strip_path: false
  - name: storefront
    host: api-${ACTIVE_COLOR:-blue}.internal
    port: 8080
routes:
  - name: storefront
    service: storefront
    hosts: [shop.example.com]
    paths: [/]
"#;

#[test]
fn plan_apply_check_and_drift_end_to_end() {
    let gw = Gateway::start();
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "gateway.yaml", GATEWAY);

    // Empty gateway: the plan lists every create and writes nothing.
    gw.carl()
        .args(["reconcile", "--plan", "-f", &file])
        .assert()
        .code(0)
        .stdout(contains("+ service \"orders\""))
        .stdout(contains("+ service \"storefront\""))
        .stdout(contains("+ route \"orders-api\""))
        .stdout(contains(
            "+ route (unnamed) legacy.example.com /shop/orders",
        ))
        .stdout(contains("+ route \"storefront\""))
        .stdout(contains("host: \"api-blue.internal\""))
        .stdout(contains("Plan: 5 to create, 0 to update, 0 to delete."));
    assert_eq!(gw.writes(), Some(0).filter(|_| gw.is_sim()));

    // Apply: every create, reported.
    gw.carl()
        .args(["reconcile", "--apply", "-f", &file])
        .assert()
        .code(0)
        .stdout(contains("+ route \"orders-api\": created"))
        .stdout(contains("Apply complete: 5 created, 0 updated, 0 deleted."));
    assert_eq!(gw.list("services").len(), 2);
    assert_eq!(gw.list("routes").len(), 3);
    let writes_after_apply = gw.writes();
    if gw.is_sim() {
        assert_eq!(writes_after_apply, Some(5), "one PUT per entity");
    }

    // Plan and check now find nothing, and make no writes.
    gw.carl()
        .args(["reconcile", "--plan", "--detailed-exitcode", "-f", &file])
        .assert()
        .code(0)
        .stdout(contains("No changes."));
    gw.carl()
        .args(["reconcile", "--check", "-f", &file])
        .assert()
        .code(0)
        .stdout(contains("No drift"));
    assert_eq!(
        gw.writes(),
        writes_after_apply,
        "plan and check never write"
    );

    // One field edited in the file: the plan shows exactly that field.
    let edited = write(
        dir.path(),
        "edited.yaml",
        &GATEWAY.replace("retries: 3", "retries: 7"),
    );
    let out = gw
        .carl()
        .args(["reconcile", "--plan", "--detailed-exitcode", "-f", &edited])
        .assert()
        .code(2)
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8(out).unwrap();
    assert_eq!(
        text,
        "  ~ service \"orders\"\n      retries: 3 → 7\n\nPlan: 0 to create, 1 to update, 0 to delete.\n"
    );

    // The live gateway changed behind carl's back: check names it and exits 2.
    let (status, body) = gw.call(
        "PATCH",
        "/routes/orders-api",
        Some(json!({"paths": ["/orders", "/v2/orders"]})),
    );
    assert_eq!(status, 200, "{body}");
    gw.carl()
        .args(["reconcile", "--check", "-f", &file])
        .assert()
        .code(2)
        .stdout(contains("Drift"))
        .stdout(contains("~ route \"orders-api\""))
        .stdout(contains(r#"paths: ["/orders","/v2/orders"] → ["/orders"]"#));

    // Apply repairs it with one PATCH; check is clean again.
    gw.carl()
        .args(["reconcile", "--apply", "-f", &file])
        .assert()
        .code(0)
        .stdout(contains("Apply complete: 0 created, 1 updated, 0 deleted."));
    gw.carl()
        .args(["reconcile", "--check", "-f", &file])
        .assert()
        .code(0);
    if let Some(stats) = gw.stats() {
        assert_eq!(
            stats["requests"]["by_method"]["PATCH"], 2,
            "the drift PATCH and carl's repair: {stats}"
        );
    }
}

#[test]
fn applying_the_same_file_twice_writes_nothing_the_second_time() {
    let gw = Gateway::start();
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "gateway.yaml", GATEWAY);
    gw.carl()
        .args(["reconcile", "--apply", "-f", &file])
        .assert()
        .code(0);
    let before = gw.writes();
    gw.carl()
        .args(["reconcile", "--apply", "-f", &file])
        .assert()
        .code(0)
        .stdout(contains("No changes."));
    assert_eq!(gw.writes(), before);
}

/// Renaming a service (no id in the file) creates the new service, moves its named
/// routes to it with a PATCH, recreates its unnamed routes (their identity includes
/// the service) and deletes the old one last: never a 409.
#[test]
fn renaming_a_service_never_conflicts() {
    let gw = Gateway::start();
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "gateway.yaml", GATEWAY);
    gw.carl()
        .args(["reconcile", "--apply", "-f", &file])
        .assert()
        .code(0);
    let old_orders = gw.call("GET", "/services/orders", None).1;
    let renamed = write(
        dir.path(),
        "renamed.yaml",
        &GATEWAY.replace("name: orders\n", "name: orders-v2\n"),
    );

    let plan = gw.json_plan(&renamed);
    assert_eq!(
        plan["summary"],
        json!({"create": 2, "update": 1, "delete": 2}),
        "{plan}"
    );

    gw.carl()
        .args(["reconcile", "--apply", "-f", &renamed])
        .assert()
        .code(0)
        .stdout(contains("~ route \"orders-api\": updated"))
        .stdout(contains("- service \"orders\": deleted"));
    gw.carl()
        .args(["reconcile", "--check", "-f", &renamed])
        .assert()
        .code(0);
    let (status, _) = gw.call(
        "GET",
        &format!("/services/{}", old_orders["id"].as_str().unwrap()),
        None,
    );
    assert_eq!(status, 404, "the old service is gone");
    let route = gw.call("GET", "/routes/orders-api", None).1;
    let new_orders = gw.call("GET", "/services/orders-v2", None).1;
    assert_eq!(route["service"]["id"], new_orders["id"]);
    if let Some(stats) = gw.stats() {
        assert_eq!(
            stats["requests"]["by_status"]["409"],
            serde_json::Value::Null,
            "{stats}"
        );
    }
}

#[test]
fn json_plan_has_summary_and_ops() {
    let gw = Gateway::start();
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "gateway.yaml", GATEWAY);
    let plan = gw.json_plan(&file);
    assert_eq!(
        plan["summary"],
        json!({"create": 5, "update": 0, "delete": 0})
    );
    let ops = plan["ops"].as_array().unwrap();
    assert_eq!(ops.len(), 5);
    let orders = ops.iter().find(|o| o["label"] == "\"orders\"").unwrap();
    assert_eq!(orders["action"], "create");
    assert_eq!(orders["kind"], "service");
    let route = ops.iter().find(|o| o["label"] == "\"orders-api\"").unwrap();
    assert_eq!(route["depends_on"], json!([orders["index"]]));
    assert_eq!(route["body"]["service"]["id"], orders["id"]);
}

#[test]
fn blue_green_switch_is_one_field() {
    let gw = Gateway::start();
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "gateway.yaml", GATEWAY);
    gw.carl()
        .args(["reconcile", "--apply", "-f", &file])
        .assert()
        .code(0);
    gw.carl()
        .args(["reconcile", "--apply", "-f", &file])
        .env("ACTIVE_COLOR", "green")
        .assert()
        .code(0)
        .stdout(contains(
            "host: \"api-blue.internal\" → \"api-green.internal\"",
        ))
        .stdout(contains("Apply complete: 0 created, 1 updated, 0 deleted."));
    assert_eq!(
        gw.call("GET", "/services/storefront", None).1["host"],
        "api-green.internal"
    );
}

#[test]
fn bad_files_exit_1_with_their_place_and_write_nothing() {
    let gw = Gateway::start();
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "syntax.yaml",
            "_format_version: \"3.0\"\nservices:\n  - name: a\n    host: [oops\n",
            "syntax.yaml:",
        ),
        (
            "type.yaml",
            "_format_version: \"3.0\"\nservices:\n  - name: a\n    host: a.internal\n    port: eighty\n",
            "type.yaml:5:11: service.port: expected an integer, found a string",
        ),
        (
            "unset.yaml",
            "_format_version: \"3.0\"\nservices:\n  - name: a\n    host: ${CARL_TEST_SURELY_UNSET}\n",
            "unset.yaml:4:11: environment variable CARL_TEST_SURELY_UNSET is not set",
        ),
    ];
    for (name, text, expected) in cases {
        let file = write(dir.path(), name, text);
        for mode in ["--plan", "--apply", "--check"] {
            gw.carl()
                .args(["reconcile", mode, "-f", &file])
                .assert()
                .code(1)
                .stderr(contains(expected))
                .stderr(contains("nothing was written to Kong"));
        }
    }
    // The gateway may have been read while the file loaded (reads only: carl reads
    // a gateway whose files cannot select tags while they load); never written.
    assert_eq!(gw.writes(), Some(0).filter(|_| gw.is_sim()));
}

/// A file Kong would refuse is caught offline, before any write.
#[test]
fn a_file_kong_would_refuse_is_caught_before_any_write() {
    let gw = Gateway::start();
    let dir = tempfile::tempdir().unwrap();
    let bad = GATEWAY.replace("paths: [/shop/orders]", "paths: [shop/orders]");
    let file = write(dir.path(), "gateway.yaml", &bad);
    gw.carl()
        .args(["reconcile", "--apply", "-f", &file])
        .assert()
        .code(1)
        .stderr(contains("gateway.yaml:11:"))
        .stderr(contains(
            "route.paths[0]: should start with: / (fixed path) or ~/ (regex path)",
        ));
    assert_eq!(gw.writes(), Some(0).filter(|_| gw.is_sim()));
}

/// Kong fails the writes of every route (injected): those ops fail with Kong's status
/// and message, the services are applied, the run exits 1, and running again after
/// the fault clears converges. kong-sim only: it needs fault injection.
#[test]
fn a_failed_write_is_reported_and_the_rest_is_applied() {
    let gw = Gateway::start();
    if !gw.is_sim() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "gateway.yaml", GATEWAY);
    let rule = json!({"rules": [{"method": "PUT", "path": "/routes/*", "status": 503}]});
    assert_eq!(gw.call("PUT", "/_sim/faults", Some(rule)).0, 200);
    gw.carl()
        .args(["reconcile", "--apply", "-f", &file])
        .assert()
        .code(1)
        .stdout(contains(
            "+ route \"orders-api\": failed: 503 Service unavailable",
        ))
        .stdout(contains("+ service \"orders\": created"))
        .stdout(contains("Apply failed: 2 done, 3 failed, 0 skipped."));
    assert_eq!(gw.call("PUT", "/_sim/faults", Some(json!({}))).0, 200);
    gw.carl()
        .args(["reconcile", "--apply", "-f", &file])
        .assert()
        .code(0)
        .stdout(contains("Apply complete: 3 created, 0 updated, 0 deleted."));
    gw.carl()
        .args(["reconcile", "--check", "-f", &file])
        .assert()
        .code(0);
}

#[test]
fn unreachable_kong_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "gateway.yaml", GATEWAY);
    let gw = Gateway::start();
    gw.carl()
        .args([
            "reconcile",
            "--plan",
            "-f",
            &file,
            "--kong-addr",
            "http://127.0.0.1:1",
        ])
        .assert()
        .code(1)
        .stderr(contains("cannot reach Kong at http://127.0.0.1:1"))
        .stderr(contains("connection failed").or(contains("refused")));
}

#[test]
fn usage_errors_exit_1_not_2() {
    let gw = Gateway::start();
    gw.carl()
        .args(["reconcile", "-f", "x.yaml"])
        .assert()
        .code(1);
    gw.carl()
        .args(["--help"])
        .assert()
        .code(0)
        .stdout(contains("Examples:"))
        .stdout(contains("CARL_KONG_ADDR"));
}

#[test]
fn validate_online_asks_the_gateway_and_writes_nothing() {
    let gw = Gateway::start();
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "gateway.yaml", GATEWAY);
    gw.carl()
        .args(["validate", "--online", "-f", &file])
        .assert()
        .code(0)
        .stdout(contains("valid (offline and by the gateway): 5 entities"));
    if let Some(stats) = gw.stats() {
        assert_eq!(
            stats["requests"]["by_route"]["POST /schemas/{name}/validate"], 5,
            "{stats}"
        );
        assert_eq!(gw.writes(), Some(5), "only the validate POSTs");
        assert_eq!(stats["entities"]["services"], 0);
    }
    // Offline, no request at all.
    let before = gw.requests();
    gw.carl()
        .args(["validate", "-f", &file])
        .assert()
        .code(0)
        .stdout(contains("valid (offline)"));
    assert_eq!(gw.requests(), before);
}

/// Two teams share one gateway with select tags: each file sees, plans and deletes only
/// its own entities, and tags what it writes.
#[test]
fn teams_with_select_tags_share_a_gateway() {
    let gw = Gateway::start();
    let dir = tempfile::tempdir().unwrap();
    let team = |name: &str, services: &[&str]| {
        let mut yaml =
            format!("_format_version: \"3.0\"\n_info:\n  select_tags: [{name}]\nservices:\n");
        for s in services {
            yaml.push_str(&format!("- name: {s}\n  host: {s}.internal\n"));
        }
        write(dir.path(), &format!("{name}.yaml"), &yaml)
    };
    let a = team("team-a", &["a1", "a2"]);
    let b = team("team-b", &["b1"]);
    gw.carl()
        .args(["reconcile", "--apply", "-f", &a])
        .assert()
        .code(0);
    gw.carl()
        .args(["reconcile", "--plan", "-f", &b])
        .assert()
        .code(0)
        .stdout(contains("Plan: 1 to create, 0 to update, 0 to delete."));
    gw.carl()
        .args(["reconcile", "--apply", "-f", &b])
        .assert()
        .code(0);
    assert_eq!(
        gw.call("GET", "/services/a1", None).1["tags"],
        json!(["team-a"])
    );
    gw.carl()
        .args(["reconcile", "--check", "-f", &a])
        .assert()
        .code(0);
    gw.carl()
        .args(["reconcile", "--check", "-f", &b])
        .assert()
        .code(0);
    // Team A drops a2: only a2 is deleted; team B's service is not even seen.
    let a = team("team-a", &["a1"]);
    gw.carl()
        .args(["reconcile", "--apply", "-f", &a])
        .assert()
        .code(0)
        .stdout(contains("- service \"a2\": deleted"))
        .stdout(contains("Apply complete: 0 created, 0 updated, 1 deleted."));
    assert_eq!(gw.call("GET", "/services/b1", None).0, 200);
}

/// A team cannot see another team's entities, so it may declare one of the same
/// name. Its create must then fail on Kong's unique name, never overwrite: carl's
/// deterministic ids include the select tags, because a `PUT /services/{id}` to the
/// other team's id would be an upsert that silently takes over their service (and the
/// traffic of their routes).
#[test]
fn a_team_cannot_take_over_another_teams_entity_of_the_same_name() {
    let gw = Gateway::start();
    let dir = tempfile::tempdir().unwrap();
    let payments = write(
        dir.path(),
        "payments.yaml",
        "_format_version: \"3.0\"\n_info:\n  select_tags: [team-payments]\nservices:\n\
         - name: payments\n  host: payments.internal\n  routes:\n  - name: pay\n    paths: [/pay]\n",
    );
    let intruder = write(
        dir.path(),
        "intruder.yaml",
        "_format_version: \"3.0\"\n_info:\n  select_tags: [team-x]\nservices:\n\
         - name: payments\n  host: evil.example.com\n",
    );
    gw.carl()
        .args(["reconcile", "--apply", "-f", &payments])
        .assert()
        .code(0);
    let before = gw.call("GET", "/services/payments", None).1;
    gw.carl()
        .args(["reconcile", "--apply", "-f", &intruder])
        .assert()
        .code(1)
        .stdout(contains(
            "+ service \"payments\": 409 unique constraint violated on name 'payments'",
        ));
    let after = gw.call("GET", "/services/payments", None).1;
    assert_eq!(
        after["host"], "payments.internal",
        "not taken over: {after}"
    );
    assert_eq!(after["id"], before["id"]);
    assert_eq!(after["tags"], json!(["team-payments"]));
    gw.carl()
        .args(["reconcile", "--check", "-f", &payments])
        .assert()
        .code(0);
}

/// carl reads the gateway while the files load when no file says `_info`. A file
/// that selects tags without those five characters in its text (an escaped key) is
/// still planned within its tags: the loaded select tags are the truth, and the
/// gateway is read again with them.
#[test]
fn select_tags_behind_an_escaped_key_still_scope_the_plan() {
    let gw = Gateway::start();
    let dir = tempfile::tempdir().unwrap();
    let other = write(
        dir.path(),
        "other.yaml",
        "_format_version: \"3.0\"\n_info:\n  select_tags: [team-b]\nservices:\n- name: b1\n  host: b1.internal\n",
    );
    gw.carl()
        .args(["reconcile", "--apply", "-f", &other])
        .assert()
        .code(0);
    let escaped = write(
        dir.path(),
        "escaped.yaml",
        "_format_version: \"3.0\"\n\"\\x5finfo\":\n  select_tags: [team-a]\nservices:\n- name: a1\n  host: a1.internal\n",
    );
    assert!(!std::fs::read_to_string(&escaped).unwrap().contains("_info"));
    gw.carl()
        .args(["reconcile", "--plan", "-f", &escaped])
        .assert()
        .code(0)
        .stdout(contains("+ service \"a1\""))
        .stdout(contains("Plan: 1 to create, 0 to update, 0 to delete."));
}

/// A broken file is reported as such even when the gateway cannot be reached (the
/// read that started while it loaded is dropped, its error never shown).
#[test]
fn a_broken_file_is_reported_before_an_unreachable_gateway() {
    let gw = Gateway::start();
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "broken.yaml",
        "_format_version: \"3.0\"\nservices:\n  - name: a\n    host: a.internal\n    port: eighty\n",
    );
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let out = gw
        .carl()
        .args(["reconcile", "--plan", "--kong-addr", &addr, "-f", &file])
        .assert()
        .code(1)
        .stderr(contains(
            "broken.yaml:5:11: service.port: expected an integer",
        ))
        .get_output()
        .clone();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("cannot read the gateway"), "{stderr}");
}

/// A plugin carl's snapshot does not know is a warning offline (it may be a custom
/// plugin) and is checked by the gateway online, where a typo is an error at its line.
#[test]
fn unknown_plugins_are_a_warning_offline_and_checked_online() {
    let gw = Gateway::start();
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "plugins.yaml",
        "_format_version: \"3.0\"\nplugins:\n- name: rate-limitting\n  config: {minute: 5}\n",
    );
    gw.carl()
        .args(["validate", "-f", &file])
        .assert()
        .code(0)
        .stderr(contains(
            "plugins.yaml:3:9: plugin `rate-limitting` is not bundled",
        ))
        .stderr(contains("did you mean `rate-limiting`?"));
    gw.carl()
        .args(["validate", "--online", "-f", &file])
        .assert()
        .code(1)
        .stderr(contains(
            "plugins.yaml:3:9: plugin.name: plugin 'rate-limitting' not enabled",
        ));
    assert!(gw.list("plugins").is_empty(), "validating writes nothing");
}

const WITH_SECRETS: &str = r#"_format_version: "3.0"
services:
  - name: orders
    host: orders.internal
    plugins:
      - name: rate-limiting
        config: {minute: 10, policy: redis, redis: {host: redis.internal, password: redis-pass-9f1}}
consumers:
  - username: ann
    keyauth_credentials:
      - key: ann-key-7c2e
    basicauth_credentials:
      - username: ann
        password: ann-pass-41d
"#;

/// `carl reconcile --plan -f file --out path`, which must succeed, read back.
fn saved_plan(gw: &Gateway, file: &str, path: &std::path::Path) -> carl_planner::saved::SavedPlan {
    gw.carl()
        .args([
            "reconcile",
            "--plan",
            "-f",
            file,
            "--out",
            path.to_str().unwrap(),
        ])
        .assert()
        .code(0);
    carl_planner::saved::SavedPlan::from_json(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn a_saved_plan_records_ops_live_fingerprint_and_file_digests_but_no_secret() {
    let gw = Gateway::start();
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "gateway.yaml", WITH_SECRETS);
    let out = dir.path().join("plan.json");
    let run = gw
        .carl()
        .args([
            "reconcile",
            "--plan",
            "-f",
            &file,
            "--out",
            out.to_str().unwrap(),
        ])
        .assert()
        .code(0)
        .stderr(contains("Plan saved to"));
    let text = std::fs::read_to_string(&out).unwrap();
    let stdout = String::from_utf8_lossy(&run.get_output().stdout).into_owned();
    for secret in ["redis-pass-9f1", "ann-key-7c2e", "ann-pass-41d"] {
        assert!(!text.contains(secret), "{secret} in the plan file");
        assert!(!stdout.contains(secret), "{secret} in the plan");
    }
    let saved = carl_planner::saved::SavedPlan::from_json(&text).unwrap();
    assert_eq!(saved.summary.create, 5);
    assert_eq!(saved.ops.len(), 5);
    assert_eq!(saved.kong_address, gw.url);
    assert!(saved.live_fingerprint.starts_with("sha256:"));
    let digest = carl_config::sha256_hex(WITH_SECRETS.as_bytes());
    assert_eq!(saved.files.values().collect::<Vec<_>>(), [&digest]);

    // The same gateway gives the same fingerprint; any change to it, another.
    let again = saved_plan(&gw, &file, &dir.path().join("again.json"));
    assert_eq!(again.live_fingerprint, saved.live_fingerprint);
    let (status, _) = gw.call(
        "PUT",
        "/services/other",
        Some(json!({"host": "x.internal"})),
    );
    assert_eq!(status, 200);
    let changed = saved_plan(&gw, &file, &dir.path().join("changed.json"));
    assert_ne!(changed.live_fingerprint, saved.live_fingerprint);
}

#[test]
fn markdown_plan_has_a_summary_table_and_a_section_per_kind() {
    let gw = Gateway::start();
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "gateway.yaml", WITH_SECRETS);
    let out = gw
        .carl()
        .args(["reconcile", "--plan", "--format", "markdown", "-f", &file])
        .assert()
        .code(0);
    let md = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    assert!(md.contains("| kind | create | update | delete |"), "{md}");
    assert!(md.contains("| services | 1 | 0 | 0 |"), "{md}");
    assert!(
        md.contains("<details><summary>keyauth_credentials (1 change)</summary>"),
        "{md}"
    );
    assert!(
        md.contains("\n+ plugin \"rate-limiting\" on service \"orders\"\n"),
        "{md}"
    );
    assert!(
        md.contains("**Plan: 5 to create, 0 to update, 0 to delete.**"),
        "{md}"
    );
    assert!(!md.contains('\u{1b}'), "no terminal escapes in Markdown");
    for secret in ["redis-pass-9f1", "ann-key-7c2e", "ann-pass-41d"] {
        assert!(!md.contains(secret), "{secret} in:\n{md}");
    }
}

#[test]
fn check_exits_2_on_drift_of_any_kind_and_0_in_sync() {
    let gw = Gateway::start();
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "gateway.yaml", WITH_SECRETS);
    gw.carl()
        .args(["reconcile", "--apply", "-f", &file])
        .assert()
        .code(0);
    gw.carl()
        .args(["reconcile", "--check", "-f", &file])
        .assert()
        .code(0)
        .stdout(contains("No drift"));
    // Someone changes the plugin by hand.
    let plugins = gw.list("plugins");
    let id = plugins[0]["id"].as_str().unwrap();
    let (status, body) = gw.call(
        "PATCH",
        &format!("/plugins/{id}"),
        Some(json!({"config": {"minute": 99}})),
    );
    assert_eq!(status, 200, "{body}");
    gw.carl()
        .args(["reconcile", "--check", "-f", &file])
        .assert()
        .code(2)
        .stdout(contains("config.minute: 99 → 10"))
        .stdout(contains("redis-pass-9f1").not());
}

/// The suite's secret watcher (`common::Carl`) knows the secrets of the fixtures and
/// of files tests write, and fails a test whose carl output holds one.
#[test]
fn the_secret_watcher_knows_the_suites_secrets_and_catches_a_leak() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "inline.yaml",
        "consumers:\n- username: u\n  keyauth_credentials:\n  - key: inline-test-key-42\n",
    );
    let secrets = common::secrets();
    for known in [
        "partner-a-test-key",  // every-kind-flat.yaml, a ${VAR:-default}
        "not-a-real-password", // every-kind-flat.yaml
        "inline-test-key-42",  // written above
    ] {
        assert!(secrets.contains(known), "{known} missing from {secrets:?}");
    }
    // A private key's body, from the certificates of the fixtures.
    assert!(secrets.iter().any(|s| s.len() >= 40), "{secrets:?}");
    let leak = std::panic::catch_unwind(|| {
        common::assert_no_secret("test", "stdout", "key: inline-test-key-42")
    });
    assert!(leak.is_err(), "a leaked secret must fail the test");
    common::assert_no_secret("test", "stdout", "key: (sensitive)");
}

/// Every command and format, with logs at -vvv, on a gateway holding every kind of
/// secret: the watcher checks each output and plan file for the secrets' values.
#[test]
fn no_command_or_format_shows_a_secret() {
    let gw = Gateway::start();
    let dir = tempfile::tempdir().unwrap();
    let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/good/every-kind-nested.yaml");
    let fixture = fixture.to_str().unwrap();
    let env = [
        ("DECK_OWNER", "web-team"),
        ("SHOP_API_KEY", "shop-key-from-env"),
        ("SHOP_PASSWORD", "shop-password-from-env"),
        ("SHOP_HMAC_SECRET", "shop-hmac-from-env"),
        ("SHOP_JWT_SECRET", "shop-jwt-from-env"),
    ];
    let run = |args: &[&str], code: i32| {
        let mut cmd = gw.carl();
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.arg("-vvv").args(args).assert().code(code);
    };
    let plan = dir.path().join("plan.json");
    let plan = plan.to_str().unwrap();
    run(&["validate", "-f", fixture], 0);
    run(&["validate", "--online", "-f", fixture], 0);
    for format in ["text", "markdown", "json"] {
        run(
            &["reconcile", "--plan", "--format", format, "-f", fixture],
            0,
        );
    }
    run(&["reconcile", "--plan", "--out", plan, "-f", fixture], 0);
    run(&["reconcile", "--check", "-f", fixture], 2);
    run(&["reconcile", "--apply", "-f", fixture], 0);
    run(&["reconcile", "--check", "-f", fixture], 0);
    run(&["dump", "--redact-secrets"], 0);
    run(&["ping"], 0);
    // Every secret changed: each update is shown, its values never.
    let mut cmd = gw.carl();
    for (k, v) in env {
        cmd.env(k, format!("{v}-rotated"));
    }
    cmd.args(["-vvv", "reconcile", "--apply", "-f", fixture])
        .assert()
        .code(0)
        .stdout(contains("(sensitive)"));
    assert!(common::secrets().contains("shop-key-from-env-rotated"));
    // A saved plan, made and applied; a dump in each format.
    let saved = dir.path().join("saved.json");
    let saved = saved.to_str().unwrap();
    let rotated = |args: &[&str], code: i32| {
        let mut cmd = gw.carl();
        for (k, v) in env {
            cmd.env(k, format!("{v}-again"));
        }
        cmd.arg("-vvv").args(args).assert().code(code)
    };
    rotated(&["reconcile", "--plan", "--out", saved, "-f", fixture], 0);
    rotated(
        &["reconcile", "--apply", "--plan-file", saved, "-f", fixture],
        0,
    );
    for format in ["yaml", "json"] {
        run(&["dump", "--redact-secrets", "--format", format], 0);
    }
    // An error that quotes a secret: another consumer already holds the key the file
    // gives (Kong answers 409, its message naming the key's value).
    let (status, body) = gw.call(
        "POST",
        "/consumers",
        Some(serde_json::json!({"username": "intruder"})),
    );
    assert_eq!(status, 201, "{body}");
    let (status, body) = gw.call(
        "POST",
        "/consumers/intruder/key-auth",
        Some(serde_json::json!({"key": "shop-key-from-env-clash"})),
    );
    assert_eq!(status, 201, "{body}");
    // A team's file (select tags: it does not see the intruder) giving the same key.
    let team = write(
        dir.path(),
        "team.yaml",
        "_format_version: \"3.0\"\n_info:\n  select_tags: [team-x]\nconsumers:\n\
         - username: bob\n  keyauth_credentials:\n  - key: ${SHOP_API_KEY}\n",
    );
    gw.carl()
        .env("SHOP_API_KEY", "shop-key-from-env-clash")
        .args(["-vvv", "reconcile", "--apply", "-f", &team])
        .assert()
        .code(1)
        .stdout(contains("key (sensitive)"));
}

/// Logs and plans piped to a file or CI log carry no colour codes, even without
/// NO_COLOR: colour is for terminals only.
#[test]
fn output_that_is_not_a_terminal_has_no_colour_codes() {
    let gw = Gateway::start();
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "gateway.yaml", GATEWAY);
    let out = gw
        .carl()
        .env_remove("NO_COLOR")
        .args(["-vv", "reconcile", "--plan", "-f", &file])
        .assert()
        .code(0);
    let output = out.get_output();
    assert!(String::from_utf8_lossy(&output.stderr).contains("planned"));
    for (name, bytes) in [("stdout", &output.stdout), ("stderr", &output.stderr)] {
        assert!(
            !bytes.contains(&0x1b),
            "{name} has escape codes:\n{}",
            String::from_utf8_lossy(bytes)
        );
    }
}
