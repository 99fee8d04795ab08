//! The loader reads Kong's declarative format and puts every error at file:line:col.

use carl_config::{LoadError, Reference, load_str};
use carl_model::Kind;
use serde_json::json;

fn env(name: &str) -> Option<String> {
    match name {
        "ACTIVE_COLOR" => Some("green".into()),
        "PORT" => Some("8443".into()),
        _ => None,
    }
}

fn load(text: &str) -> Result<carl_config::DesiredState, LoadError> {
    load_str("gw.yaml", text, &env)
}

fn errors(text: &str) -> Vec<String> {
    load(text)
        .unwrap_err()
        .diagnostics
        .iter()
        .map(ToString::to_string)
        .collect()
}

#[test]
fn nested_and_top_level_routes_reference_their_service() {
    let state = load(
        r#"_format_version: "3.0"
services:
- name: orders
  url: http://orders.internal:8080/v1
  routes:
  - name: orders-api
    paths: [/orders]
routes:
- name: by-name
  service: orders
  paths: [/b]
- name: by-record
  service: {name: orders}
  hosts: [b.example.test]
- paths: [/c]
  service: {id: 0b7b5e30-6f4c-4f5a-8f0e-4b1b1c1d2e3f}
"#
        .replace(
            "services:\n- name: orders\n",
            "services:\n- name: orders\n  id: 0b7b5e30-6f4c-4f5a-8f0e-4b1b1c1d2e3f\n",
        )
        .as_str(),
    )
    .unwrap();
    let kinds: Vec<Kind> = state.entities.iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds,
        [
            Kind::Service,
            Kind::Route,
            Kind::Route,
            Kind::Route,
            Kind::Route
        ]
    );
    let svc = &state.entities[0];
    assert_eq!(svc.object()["protocol"], "http");
    assert_eq!(svc.object()["host"], "orders.internal");
    assert_eq!(svc.object()["port"], 8080);
    assert_eq!(svc.object()["path"], "/v1");
    assert!(
        !svc.fields.contains_key("url"),
        "url is a shorthand, expanded on load"
    );
    let name = Reference::Name("orders".into());
    let id = Reference::Id("0b7b5e30-6f4c-4f5a-8f0e-4b1b1c1d2e3f".into());
    assert_eq!(
        state.entities[1].references.get("service").unwrap().clone(),
        id,
        "nested children point at their parent's id when it has one"
    );
    assert_eq!(
        state.entities[2].references.get("service").unwrap().clone(),
        name
    );
    assert_eq!(
        state.entities[3].references.get("service").unwrap().clone(),
        name
    );
    assert_eq!(
        state.entities[4].references.get("service").unwrap().clone(),
        Reference::Id("0b7b5e30-6f4c-4f5a-8f0e-4b1b1c1d2e3f".into())
    );
    assert_eq!(
        state.entities[1].location.to_string(),
        "gw.yaml:7:5",
        "one line down: the id line was added"
    );
}

#[test]
fn variables_are_interpolated_and_take_the_fields_type() {
    let state = load(
        r#"_format_version: "3.0"
services:
- name: api
  host: api-${ACTIVE_COLOR:-blue}.internal
  port: ${PORT}
  path: /${UNSET:-v1}
  retries: ${UNSET_RETRIES:-3}
"#,
    )
    .unwrap();
    let svc = state.entities[0].object();
    assert_eq!(svc["host"], "api-green.internal");
    assert_eq!(svc["port"], 8443);
    assert_eq!(svc["path"], "/v1");
    assert_eq!(svc["retries"], 3);
}

#[test]
fn unset_variable_is_an_error_at_its_column() {
    let errs = errors(
        "_format_version: \"3.0\"\nservices:\n- name: api\n  host: api-${NOT_SET}.internal\n",
    );
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(
        errs[0].starts_with("gw.yaml:4:13: environment variable NOT_SET is not set"),
        "{}",
        errs[0]
    );
}

#[test]
fn syntax_errors_have_a_location() {
    let errs = errors("_format_version: \"3.0\"\nservices:\n- name: a\n  host: [x\n  port: 1\n");
    assert_eq!(errs.len(), 1);
    assert!(errs[0].starts_with("gw.yaml:"), "{}", errs[0]);
    let line: u32 = errs[0].split(':').nth(1).unwrap().parse().unwrap();
    assert!((4..=5).contains(&line), "{}", errs[0]);
}

#[test]
fn duplicate_keys_are_errors() {
    let errs = errors("_format_version: \"3.0\"\nservices:\n- name: a\n  host: x\n  host: y\n");
    assert_eq!(errs, ["gw.yaml:5:3: duplicate mapping key: host"]);
}

#[test]
fn wrong_types_name_the_field_and_what_was_expected() {
    let errs = errors(
        "_format_version: \"3.0\"\nservices:\n- name: a\n  host: x\n  port: eighty\n  retries: [1]\n",
    );
    assert_eq!(
        errs,
        [
            "gw.yaml:5:9: service.port: expected an integer, found a string",
            "gw.yaml:6:12: service.retries: expected an integer, found a list",
        ]
    );
}

#[test]
fn unknown_fields_suggest_the_nearest_one() {
    let errs = errors("_format_version: \"3.0\"\nservices:\n- name: a\n  hots: x\n");
    assert!(
        errs.iter()
            .any(|e| e == "gw.yaml:4:3: service: unknown field `hots`, did you mean `host`?"),
        "{errs:?}"
    );
    let errs = errors("_format_version: \"3.0\"\nservics: []\n");
    assert_eq!(
        errs,
        ["gw.yaml:2:1: unknown top-level key `servics`, did you mean `services`?"]
    );
}

#[test]
fn yaml_1_1_scalars_read_as_kong_reads_them() {
    let state = load("_format_version: \"3.0\"\nroutes:\n- name: r\n  paths: [/a]\n  strip_path: off\n  regex_priority: 010\n").unwrap();
    assert_eq!(state.entities[0].object()["strip_path"], false);
    assert_eq!(
        state.entities[0].object()["regex_priority"],
        8,
        "lyaml reads 010 as octal"
    );
}

#[test]
fn the_same_service_twice_names_both_places() {
    let errs =
        errors("_format_version: \"3.0\"\nservices:\n- name: a\n  host: x\n- name: a\n  host: z\n");
    assert_eq!(
        errs,
        ["gw.yaml:5:3: service with name 'a' is defined twice: first at gw.yaml:3:3, again here"]
    );
}

#[test]
fn format_version_is_required_and_checked() {
    assert_eq!(
        errors("services: []\n"),
        [
            "gw.yaml:1:1: missing `_format_version`: add `_format_version: \"3.0\"` at the top of the file"
        ]
    );
    assert!(errors("_format_version: \"2.1\"\n")[0].contains("change it to \"3.0\""));
    assert!(errors("_format_version: 3.0\n")[0].contains("in quotes"));
}

#[test]
fn every_kind_loads_with_its_nested_children() {
    let state = load(
        r#"_format_version: "3.0"
consumers:
- username: alice
  keyauth_credentials:
  - key: k-1
  acls:
  - group: admins
upstreams:
- name: up.internal
  targets:
  - target: 10.0.0.1:8080
plugins:
- name: key-auth
  service: orders
services:
- name: orders
  host: orders.internal
"#,
    )
    .unwrap();
    let kinds: Vec<Kind> = state.entities.iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds,
        [
            Kind::Consumer,
            Kind::KeyAuth,
            Kind::Acl,
            Kind::Upstream,
            Kind::Target,
            Kind::Plugin,
            Kind::Service
        ]
    );
    assert_eq!(
        state.entities[1]
            .references
            .get("consumer")
            .unwrap()
            .clone(),
        Reference::Name("alice".into())
    );
    assert_eq!(
        state.entities[4]
            .references
            .get("upstream")
            .unwrap()
            .clone(),
        Reference::Name("up.internal".into())
    );
    assert_eq!(
        state.entities[5].references.get("service").unwrap().clone(),
        Reference::Name("orders".into())
    );
}

#[test]
fn every_kind_is_validated_offline_with_kongs_rules() {
    let errs = errors(
        "_format_version: \"3.0\"\nplugins:\n- name: rate-limiting\n- name: nope\nupstreams:\n- name: 10.0.0.1\n",
    );
    assert_eq!(
        errs,
        [
            "gw.yaml:3:3: plugin: at least one of these fields must be non-empty: 'config.second', 'config.minute', \
             'config.hour', 'config.day', 'config.month', 'config.year'",
            "gw.yaml:6:9: upstream.name: Invalid name ('10.0.0.1'); no ip addresses allowed",
        ]
    );
}

#[test]
fn services_need_a_host_and_a_name() {
    let errs = errors("_format_version: \"3.0\"\nservices:\n- port: 80\n");
    assert_eq!(
        errs,
        [
            "gw.yaml:3:3: service: missing `name` (or `id`): carl matches services to the gateway by name",
            "gw.yaml:3:3: service.host: required field missing",
        ]
    );
}

#[test]
fn routes_must_match_something_and_names_follow_kongs_pattern() {
    let errs = errors("_format_version: \"3.0\"\nroutes:\n- name: a b\n");
    assert_eq!(
        errs,
        [
            "gw.yaml:3:3: route: must set one of 'methods', 'hosts', 'headers', 'paths', 'snis' when 'protocols' is 'https'",
            "gw.yaml:3:9: route.name: invalid value 'a b': the only accepted ascii characters are alphanumerics or ., -, _, and ~",
        ]
    );
}

#[test]
fn json_files_load_too() {
    let state = load(
        r#"{"_format_version": "3.0", "services": [{"name": "a", "host": "x", "tags": ["t"]}]}"#,
    )
    .unwrap();
    assert_eq!(state.entities[0].object()["tags"], json!(["t"]));
}

#[test]
fn directories_merge_their_files() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("a.yaml"),
        "_format_version: \"3.0\"\nservices:\n- name: a\n  host: x\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("b.yml"),
        "_format_version: \"3.0\"\nservices:\n- name: a\n  host: z\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("notes.txt"), "not yaml").unwrap();
    let err = carl_config::load_paths(&[dir.path().to_path_buf()], &env).unwrap_err();
    assert_eq!(err.diagnostics.len(), 1);
    assert!(err.diagnostics[0].to_string().contains("defined twice"));
}

#[test]
fn deck_files_load_unchanged() {
    let state = load(
        r#"_format_version: "3.0"
_workspace: default
services:
- name: api
  host: ${{ env "ACTIVE_COLOR" }}.internal
  port: ${{ env "PORT" }}
"#,
    )
    .unwrap();
    assert_eq!(state.entities[0].object()["host"], "green.internal");
    assert_eq!(state.entities[0].object()["port"], 8443);
    let errs = errors("_format_version: \"3.0\"\n_workspace: team-a\n");
    assert_eq!(
        errs,
        [
            "gw.yaml:2:13: `_workspace`: carl manages Kong's default workspace only; expected `default`"
        ]
    );
}

#[test]
fn kong_errors_map_back_to_the_file() {
    let state =
        load("_format_version: \"3.0\"\nservices:\n- name: a\n  host: h.internal\n  retries: 3\n")
            .unwrap();
    let e = &state.entities[0];
    let fields = json!({"@entity": ["something about the whole service"], "retries": "value should be between 0 and 2", "tags": [null, "bad tag"]});
    let msgs: Vec<String> = e
        .diagnostics(&fields)
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        msgs,
        [
            "gw.yaml:3:3: service: something about the whole service",
            "gw.yaml:5:12: service.retries: value should be between 0 and 2",
            "gw.yaml:3:3: service.tags[1]: bad tag",
        ]
    );
}

#[test]
fn info_select_tags_and_defaults() {
    let state = load(
        r#"_format_version: "3.0"
services:
- name: a
  host: a.internal
- name: b
  host: b.internal
  retries: 1
_info:
  select_tags: [team-a, prod, team-a]
  defaults:
    service:
      retries: 9
      connect_timeout: 1000
"#,
    )
    .unwrap();
    assert_eq!(state.select_tags.as_ref().unwrap().0, ["prod", "team-a"]);
    assert_eq!(
        state.entities[0].object()["retries"],
        9,
        "a default fills what the entity leaves out"
    );
    assert_eq!(
        state.entities[1].object()["retries"],
        1,
        "an entity's own value wins"
    );
    assert_eq!(state.entities[1].object()["connect_timeout"], 1000);
    let errs =
        errors("_format_version: \"3.0\"\n_info:\n  defaults:\n    service:\n      retires: 1\n");
    assert_eq!(
        errs,
        ["gw.yaml:5:7: _info.defaults.service: unknown field `retires`, did you mean `retries`?"]
    );
}

#[test]
fn files_of_one_run_must_select_the_same_tags() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("a.yaml"),
        "_format_version: \"3.0\"\n_info:\n  select_tags: [a]\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("b.yaml"),
        "_format_version: \"3.0\"\n_info:\n  select_tags: [b]\n",
    )
    .unwrap();
    let err = carl_config::load_paths(&[dir.path().to_path_buf()], &env).unwrap_err();
    assert!(
        err.diagnostics[0]
            .to_string()
            .contains("every file of a run must select the same tags"),
        "{err}"
    );
}

#[test]
fn references_must_name_something_in_the_files() {
    let errs =
        errors("_format_version: \"3.0\"\nroutes:\n- name: r\n  service: nope\n  paths: [/]\n");
    assert_eq!(
        errs,
        ["gw.yaml:4:12: route.service: no service 'nope' in the desired state"]
    );
}

#[test]
fn plugins_the_snapshot_does_not_know_are_warnings_not_errors() {
    let state = load(
        "_format_version: \"3.0\"\nplugins:\n- name: my-auth\n  config: {anything: 1}\n- name: session\n  protocols: [ftp]\n",
    );
    let errs: Vec<String> = state
        .unwrap_err()
        .diagnostics
        .iter()
        .map(ToString::to_string)
        .collect();
    // The plugin's own fields are still checked, only its config is left to the gateway.
    assert_eq!(
        errs,
        [
            "gw.yaml:6:14: plugin.protocols[0]: expected one of: grpc, grpcs, http, https, tcp, tls, tls_passthrough, udp"
        ]
    );
    let state = load("_format_version: \"3.0\"\nplugins:\n- name: my-auth\n  config: {anything: 1}\n- name: key-authh\n").unwrap();
    let warnings: Vec<String> = state.warnings.iter().map(ToString::to_string).collect();
    assert_eq!(
        warnings,
        [
            "gw.yaml:3:9: plugin `my-auth` is not bundled with Kong 3.9 (a custom plugin?): its config is not checked offline; `carl validate --online` checks it with the gateway",
            "gw.yaml:5:9: plugin `key-authh` is not bundled with Kong 3.9 (did you mean `key-auth`?): its config is not checked offline; `carl validate --online` checks it with the gateway",
        ]
    );
}

#[test]
fn alias_bombs_are_refused_with_a_clear_error() {
    let mut yaml =
        String::from("_format_version: \"3.0\"\na0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..12 {
        let prev = i - 1;
        yaml.push_str(&format!("a{i}: &a{i} [*a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}]\n"));
    }
    // Expanded, a11 would be 10^12 nodes: a loader that followed the aliases would run
    // for hours and need terabytes. Refused within a bound, it never started to.
    let started = std::time::Instant::now();
    let errs = errors(&yaml);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(errs[0].starts_with("gw.yaml:"), "{}", errs[0]);
    assert!(errs[0].contains("exceeds carl's limits"), "{}", errs[0]);
}

/// A file that leans on one anchor: `<<: *defaults` of 89 events (70 tags) on each of
/// 12,000 services replays 1.07M events, past serde-saphyr's fixed 1M, which refused
/// it as an alias bomb. The replay budget grows with the file (4 events a byte).
#[test]
fn an_anchor_replayed_a_million_times_by_a_real_file_loads() {
    let services = 12_000;
    let tags: Vec<String> = (0..70).map(|t| format!("t{t}")).collect();
    let mut yaml = format!(
        "_format_version: \"3.0\"\nservices:\n- <<: &defaults {{protocol: https, host: backend.internal, \
         port: 443, retries: 3, connect_timeout: 5000, write_timeout: 5000, read_timeout: 5000, \
         tags: [{}]}}\n  name: svc0\n",
        tags.join(", ")
    );
    for i in 1..services {
        yaml.push_str(&format!("- <<: *defaults\n  name: svc{i}\n"));
    }
    let state = load(&yaml).unwrap_or_else(|e| panic!("{}", e.diagnostics[0]));
    assert_eq!(state.entities.len(), services);
    let last = &state.entities[services - 1];
    assert_eq!(
        last.fields.get("name"),
        Some(&serde_json::json!("svc11999"))
    );
    assert_eq!(last.fields.get("port"), Some(&serde_json::json!(443)));
}

/// Anchors are for reuse: `<<: *defaults` on every service of a large gateway loads.
/// serde-saphyr's default budget refused this file (more than 10 aliases per anchor,
/// 10,000 merge keys, 50,000 aliases) with "more YAML nodes than carl reads".
#[test]
fn anchors_may_be_reused_on_every_service_of_a_large_gateway() {
    let services = 5_001;
    let mut yaml = String::from("_format_version: \"3.0\"\nservices:\n");
    for i in 0..services {
        let (defaults, route, tags) = if i == 0 {
            let tags: Vec<String> = (0..10).map(|t| format!("&t{t} tag-{t}")).collect();
            (
                "&defaults {protocol: https, port: 443, retries: 3}".to_owned(),
                "&route {protocols: [https], strip_path: false}".to_owned(),
                tags.join(", "),
            )
        } else {
            let tags: Vec<String> = (0..10).map(|t| format!("*t{t}")).collect();
            ("*defaults".into(), "*route".into(), tags.join(", "))
        };
        yaml.push_str(&format!(
            "- <<: {defaults}\n  name: svc{i}\n  host: h{i}.internal\n  tags: [{tags}]\n  \
             routes:\n  - <<: {route}\n    name: r{i}\n    paths: [/p{i}]\n"
        ));
    }
    let state = load(&yaml).unwrap_or_else(|e| panic!("{}", e.diagnostics[0]));
    assert_eq!(state.entities.len(), 2 * services);
    let last = state
        .entities
        .iter()
        .find(|e| e.kind == Kind::Service && e.object()["name"] == "svc5000")
        .unwrap();
    assert_eq!(last.object()["port"], 443);
    assert_eq!(last.object()["tags"][9], "tag-9");
}

/// `may_select_tags` is false only when every file reads and none says `_info`: a
/// caller may then read the whole gateway while the files load.
#[test]
fn may_select_tags_is_false_only_when_no_file_says_info() {
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("plain.yaml");
    std::fs::write(&plain, "_format_version: \"3.0\"\nservices: []\n").unwrap();
    let tagged = dir.path().join("tagged.yaml");
    std::fs::write(&tagged, "_info:\n  select_tags: [a]\n").unwrap();
    let missing = dir.path().join("missing.yaml");

    assert!(!carl_config::may_select_tags(std::slice::from_ref(&plain)));
    assert!(carl_config::may_select_tags(&[plain.clone(), tagged]));
    assert!(carl_config::may_select_tags(&[plain, missing]));
    // A directory: the files in it.
    assert!(carl_config::may_select_tags(&[dir.path().to_path_buf()]));
}
