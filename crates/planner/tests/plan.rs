//! Planning against hand-built live states.

use carl_model::{Kind, LiveState, Object};
use carl_planner::{Action, Plan, Schemas, plan};
use serde_json::{Value, json};

fn desired(yaml: &str) -> carl_config::DesiredState {
    carl_config::load_str("gw.yaml", yaml, &|name| CERT.get(name)).unwrap()
}

/// A self-signed certificate and its key, as `${CERT}` and `${KEY}`.
struct Pem {
    cert: String,
    key: String,
}

impl Pem {
    fn get(&self, name: &str) -> Option<String> {
        match name {
            "CERT" => Some(self.cert.clone()),
            "KEY" => Some(self.key.clone()),
            _ => None,
        }
    }
}

static CERT: std::sync::LazyLock<Pem> = std::sync::LazyLock::new(|| {
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["api.example.test".into()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    Pem {
        cert: cert.pem(),
        key: key.serialize_pem(),
    }
});

/// Text as a terminal without colour shows it.
fn plain(text: &str) -> String {
    carl_planner::render::strip_ansi(text)
}

/// What Kong would hold after applying `plan` to `live`: creates become complete
/// entities, updates patch, deletes remove.
fn apply(live: &LiveState, plan: &Plan) -> LiveState {
    let mut out = live.clone();
    for op in &plan.ops {
        out.edit(op.kind, |list| match op.action {
            Action::Create => {
                let mut e = op.body();
                Schemas::default()
                    .for_entity(op.kind, &e)
                    .expect("known schema")
                    .fill_defaults(&mut e);
                e.insert("id".into(), json!(op.id));
                e.insert("created_at".into(), json!(1));
                list.push(e);
            }
            Action::Update => {
                let e = list
                    .iter_mut()
                    .find(|e| e["id"] == op.id)
                    .expect("updated entity exists");
                merge(e, &op.body());
            }
            Action::Delete => list.retain(|e| e["id"] != op.id),
        });
    }
    out
}

/// Kong's PATCH: records merge, everything else is replaced.
fn merge(into: &mut Object, patch: &Object) {
    for (k, v) in patch {
        match (into.get_mut(k), v) {
            (Some(Value::Object(old)), Value::Object(new)) => merge(old, new),
            _ => {
                into.insert(k.clone(), v.clone());
            }
        }
    }
}

const GATEWAY: &str = r#"_format_version: "3.0"
services:
- name: orders
  url: http://orders.internal:8080
  routes:
  - name: orders-api
    paths: [/orders]
  - hosts: [api.example.test]
    paths: [/legacy/orders]
    methods: [GET]
- name: billing
  host: billing.internal
"#;

fn ops(plan: &Plan) -> Vec<String> {
    plan.ops
        .iter()
        .map(|o| format!("{:?} {} {}", o.action, o.kind, o.label))
        .collect()
}

#[test]
fn empty_gateway_creates_everything_parents_first() {
    let p = plan(
        &desired(GATEWAY),
        &LiveState::default(),
        &Schemas::default(),
    )
    .unwrap();
    assert_eq!(p.summary.create, 4);
    assert_eq!(
        ops(&p),
        [
            "Create service \"billing\"",
            "Create service \"orders\"",
            "Create route \"orders-api\"",
            "Create route (unnamed) GET api.example.test /legacy/orders",
        ]
    );
    let orders = p.ops.iter().find(|o| o.label == "\"orders\"").unwrap();
    for route in p.ops.iter().filter(|o| o.kind == Kind::Route) {
        assert_eq!(
            route.depends_on,
            [orders.index],
            "{} waits for its service",
            route.label
        );
        assert_eq!(route.body()["service"], json!({"id": orders.id}));
        assert!(route.index > orders.index);
    }
    // Deterministic ids: the same file plans the same ids.
    let again = plan(
        &desired(GATEWAY),
        &LiveState::default(),
        &Schemas::default(),
    )
    .unwrap();
    assert_eq!(
        p.ops.iter().map(|o| &o.id).collect::<Vec<_>>(),
        again.ops.iter().map(|o| &o.id).collect::<Vec<_>>()
    );
}

#[test]
fn applied_plan_converges_to_no_changes() {
    let d = desired(GATEWAY);
    let p = plan(&d, &LiveState::default(), &Schemas::default()).unwrap();
    let live = apply(&LiveState::default(), &p);
    let p2 = plan(&d, &live, &Schemas::default()).unwrap();
    assert!(p2.is_empty(), "{:?}", ops(&p2));
}

#[test]
fn one_changed_field_is_one_update_with_old_and_new() {
    let d = desired(GATEWAY);
    let live = apply(
        &LiveState::default(),
        &plan(&d, &LiveState::default(), &Schemas::default()).unwrap(),
    );
    let p = plan(
        &desired(&GATEWAY.replace("8080", "9090")),
        &live,
        &Schemas::default(),
    )
    .unwrap();
    assert_eq!(ops(&p), ["Update service \"orders\""]);
    let c = &p.ops[0].changes();
    assert_eq!(c.len(), 1);
    assert_eq!(
        (c[0].field.as_str(), &c[0].old, &c[0].new),
        ("port", &json!(8080), &json!(9090))
    );
    assert_eq!(
        p.ops[0].body(),
        json!({"port": 9090}).as_object().unwrap().clone()
    );
}

#[test]
fn unnamed_route_is_matched_by_what_it_matches() {
    let d = desired(GATEWAY);
    let live = apply(
        &LiveState::default(),
        &plan(&d, &LiveState::default(), &Schemas::default()).unwrap(),
    );
    // Same criteria in another order and case: still the same route, a field changes.
    let edited = GATEWAY.replace(
        "    paths: [/legacy/orders]\n    methods: [GET]\n",
        "    methods: [GET, GET]\n    paths: [/legacy/orders]\n    strip_path: false\n",
    );
    let p = plan(&desired(&edited), &live, &Schemas::default()).unwrap();
    assert_eq!(
        ops(&p),
        ["Update route (unnamed) GET,GET api.example.test /legacy/orders"]
    );
    assert_eq!(
        p.ops[0]
            .changes()
            .iter()
            .map(|c| c.field.as_str())
            .collect::<Vec<_>>(),
        ["strip_path"]
    );
}

#[test]
fn renaming_a_service_creates_repoints_routes_then_deletes() {
    let d = desired(GATEWAY);
    let live = apply(
        &LiveState::default(),
        &plan(&d, &LiveState::default(), &Schemas::default()).unwrap(),
    );
    let p = plan(
        &desired(&GATEWAY.replace("name: orders\n", "name: orders-v2\n")),
        &live,
        &Schemas::default(),
    )
    .unwrap();
    // The named route moves to the new service. The unnamed route is identified by its
    // service and what it matches, so it is a new route on the new service.
    assert_eq!(p.summary.create, 2);
    assert_eq!(p.summary.update, 1);
    assert_eq!(p.summary.delete, 2);
    let create = p
        .ops
        .iter()
        .find(|o| o.action == Action::Create && o.kind == Kind::Service)
        .unwrap();
    let delete = p
        .ops
        .iter()
        .find(|o| o.action == Action::Delete && o.kind == Kind::Service)
        .unwrap();
    for update in p.ops.iter().filter(|o| o.action == Action::Update) {
        assert!(update.depends_on.contains(&create.index));
        assert!(
            delete.depends_on.contains(&update.index),
            "the old service is deleted after its routes leave"
        );
    }
    let converged = apply(&live, &p);
    assert!(
        plan(
            &desired(&GATEWAY.replace("name: orders\n", "name: orders-v2\n")),
            &converged,
            &Schemas::default()
        )
        .unwrap()
        .is_empty()
    );
}

#[test]
fn explicit_id_clashing_with_a_live_name_is_replaced_delete_first() {
    let live_svc: Object = json!({"id": "2f0a8ad9-6d6b-4d0b-9a48-0a9a6c0d3d6b", "name": "billing", "host": "old", "port": 80,
        "protocol": "http"})
    .as_object()
    .unwrap()
    .clone();
    let live = LiveState::from_entities([(Kind::Service, vec![live_svc])]);
    let d = desired(
        "_format_version: \"3.0\"\nservices:\n- name: billing\n  id: 7d6c1f0e-0b1e-4a55-9d1a-2b4f1c3e5a77\n  host: new\n",
    );
    let p = plan(&d, &live, &Schemas::default()).unwrap();
    assert_eq!(
        ops(&p),
        ["Delete service \"billing\"", "Create service \"billing\""]
    );
    assert_eq!(
        p.ops[1].depends_on,
        [0],
        "the create waits until the name is free"
    );
    assert_eq!(p.ops[1].id, "7d6c1f0e-0b1e-4a55-9d1a-2b4f1c3e5a77");
}

#[test]
fn reference_to_a_missing_service_points_at_the_file() {
    // The loader refuses dangling references; a desired state built another way is
    // still checked here.
    let mut d = desired(
        "_format_version: \"3.0\"\nservices:\n- name: nope\n  host: h\nroutes:\n- name: r\n  service: nope\n  paths: [/]\n",
    );
    d.entities.retain(|e| e.kind != Kind::Service);
    let e = plan(&d, &LiveState::default(), &Schemas::default()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "gw.yaml:7:12: route refers to service 'nope', which is not in the desired state (add it, or fix the reference)"
    );
}

#[test]
fn everything_not_in_the_file_is_deleted_children_first() {
    let d = desired(GATEWAY);
    let live = apply(
        &LiveState::default(),
        &plan(&d, &LiveState::default(), &Schemas::default()).unwrap(),
    );
    let p = plan(
        &desired("_format_version: \"3.0\"\n"),
        &live,
        &Schemas::default(),
    )
    .unwrap();
    assert_eq!(p.summary.delete, 4);
    let orders = p.ops.iter().find(|o| o.label == "\"orders\"").unwrap();
    assert_eq!(orders.depends_on.len(), 2, "waits for both its routes");
    let text = carl_planner::render::text(&p);
    assert!(
        text.ends_with("Plan: 0 to create, 0 to update, 4 to delete.\u{1b}[0m\n"),
        "{text}"
    );
    let _: Value = serde_json::from_str(&carl_planner::render::json(&p)).unwrap();
}

const EVERY_KIND: &str = r#"_format_version: "3.0"
certificates:
- cert: "${CERT}"
  key: "${KEY}"
  snis:
  - name: api.example.test
services:
- name: orders
  url: http://orders.internal:8080
  routes:
  - name: orders-api
    paths: [/orders]
    plugins:
    - name: rate-limiting
      config: {minute: 10, policy: redis, redis: {host: redis.internal, password: s3cr3t-redis}}
  plugins:
  - name: cors
consumers:
- username: alice
  keyauth_credentials:
  - key: alice-key-123
  - {}
  basicauth_credentials:
  - username: alice
    password: alice-password
  acls:
  - group: admins
upstreams:
- name: orders.upstream
  targets:
  - target: 10.0.0.1
  - target: 10.0.0.2:9000
    weight: 50
"#;

/// What Kong does with a plan's writes that matters to the next plan: generated keys,
/// hashed passwords, targets with their default port.
fn as_kong_stores(mut live: LiveState) -> LiveState {
    let consumers: Vec<Object> = live.of(Kind::Consumer);
    live.edit(Kind::KeyAuth, |list| {
        for e in list {
            if e.get("key").is_none_or(Value::is_null) {
                let key = format!("generated-by-kong-{}", e["id"].as_str().unwrap());
                e.insert("key".into(), json!(key));
            }
        }
    });
    live.edit(Kind::BasicAuth, |list| {
        for e in list {
            let consumer = e["consumer"]["id"].as_str().unwrap().to_owned();
            assert!(consumers.iter().any(|c| c["id"] == consumer));
            let hashed =
                carl_planner::diff::basic_auth_hash(e["password"].as_str().unwrap(), &consumer);
            e.insert("password".into(), json!(hashed));
        }
    });
    live.edit(Kind::Target, |list| {
        for e in list {
            let t = carl_planner::identity::normalize_target(e["target"].as_str().unwrap());
            e.insert("target".into(), json!(t));
        }
    });
    live.edit(Kind::Certificate, |list| {
        for e in list {
            e.insert("snis".into(), json!(["api.example.test"]));
        }
    });
    live
}

/// What an empty gateway holds once `d`'s plan is applied.
fn kong_after(d: &carl_config::DesiredState) -> LiveState {
    let p = plan(d, &LiveState::default(), &Schemas::default()).unwrap();
    as_kong_stores(apply(&LiveState::default(), &p))
}

#[test]
fn every_kind_is_created_parents_first_and_then_in_sync() {
    let d = desired(EVERY_KIND);
    let p = plan(&d, &LiveState::default(), &Schemas::default()).unwrap();
    assert_eq!(p.summary.create, d.entities.len(), "{:#?}", ops(&p));
    for op in &p.ops {
        for &dep in &op.depends_on {
            assert!(dep < op.index, "{op:?} runs after what it needs");
        }
    }
    let position = |kind: Kind| p.ops.iter().position(|o| o.kind == kind).unwrap();
    assert!(position(Kind::Certificate) < position(Kind::Sni));
    assert!(position(Kind::Upstream) < position(Kind::Target));
    assert!(position(Kind::Consumer) < position(Kind::KeyAuth));
    let target = p.ops.iter().find(|o| o.kind == Kind::Target).unwrap();
    assert!(
        target.path.starts_with("/upstreams/") && target.path.contains("/targets/"),
        "{}",
        target.path
    );

    let live = as_kong_stores(apply(&LiveState::default(), &p));
    let again = plan(&d, &live, &Schemas::default()).unwrap();
    assert!(
        again.is_empty(),
        "no false diffs after apply: {:#?}",
        ops(&again)
    );
    // Ids are deterministic: planning again from scratch gives the same ids.
    let p2 = plan(&d, &LiveState::default(), &Schemas::default()).unwrap();
    let ids = |p: &Plan| p.ops.iter().map(|o| o.id.clone()).collect::<Vec<_>>();
    assert_eq!(ids(&p), ids(&p2));
}

#[test]
fn secrets_never_print_in_any_format() {
    let d = desired(EVERY_KIND);
    let p = plan(&d, &LiveState::default(), &Schemas::default()).unwrap();
    let outputs = [
        carl_planner::render::text(&p),
        carl_planner::render::markdown(&p),
        carl_planner::render::json(&p),
    ];
    for out in &outputs {
        let key_body = CERT.key.lines().nth(1).unwrap();
        for secret in ["alice-key-123", "alice-password", "s3cr3t-redis", key_body] {
            assert!(!out.contains(secret), "{secret} leaked:\n{out}");
        }
        assert!(out.contains("(sensitive)"), "{out}");
    }
    // Changing a password is shown as a change, without either value.
    let live = as_kong_stores(apply(&LiveState::default(), &p));
    let changed = desired(&EVERY_KIND.replace("alice-password", "new-password"));
    let p = plan(&changed, &live, &Schemas::default()).unwrap();
    assert_eq!(
        ops(&p),
        ["Update basic-auth credential \"alice\" of consumer \"alice\""]
    );
    let text = plain(&carl_planner::render::text(&p));
    assert!(
        text.contains("password: (sensitive) → (sensitive)"),
        "{text}"
    );
    assert!(!text.contains("new-password"));
}

#[test]
fn nested_config_changes_show_as_paths_and_patch_only_them() {
    let d = desired(EVERY_KIND);
    let live = kong_after(&d);
    let changed = desired(&EVERY_KIND.replace("minute: 10", "minute: 20"));
    let p = plan(&changed, &live, &Schemas::default()).unwrap();
    assert_eq!(p.ops.len(), 1, "{:#?}", ops(&p));
    assert_eq!(p.ops[0].changes()[0].field, "config.minute");
    assert_eq!(
        p.ops[0].body(),
        json!({"config": {"minute": 20}})
            .as_object()
            .unwrap()
            .clone()
    );
    let text = plain(&carl_planner::render::text(&p));
    assert!(text.contains("config.minute: 10 → 20"), "{text}");
    assert!(
        text.contains("~ plugin \"rate-limiting\" on route \"orders-api\""),
        "{text}"
    );
}

#[test]
fn a_password_kong_hashed_is_not_drift_and_a_dumped_hash_compares_as_is() {
    let d = desired(EVERY_KIND);
    let live = kong_after(&d);
    assert!(plan(&d, &live, &Schemas::default()).unwrap().is_empty());
    // A dump holds the hash with `_transform: false`: the same password, no change.
    let hash = live.of(Kind::BasicAuth)[0]["password"]
        .as_str()
        .unwrap()
        .to_owned();
    let dumped = EVERY_KIND.replace("alice-password", &hash).replace(
        "_format_version: \"3.0\"",
        "_format_version: \"3.0\"\n_transform: false",
    );
    assert!(
        plan(&desired(&dumped), &live, &Schemas::default())
            .unwrap()
            .is_empty()
    );
}

#[test]
fn swapped_names_are_resolved_through_a_temporary_name() {
    let live = LiveState::from_entities([(
        Kind::Service,
        vec![
            json!({"id": "00000000-0000-4000-8000-00000000000a", "name": "blue", "host": "a.internal", "port": 80, "protocol": "http"}),
            json!({"id": "00000000-0000-4000-8000-00000000000b", "name": "green", "host": "b.internal", "port": 80, "protocol": "http"}),
        ]
        .into_iter()
        .map(|v| v.as_object().unwrap().clone())
        .collect(),
    )]);
    let d = desired(
        "_format_version: \"3.0\"\nservices:\n- id: 00000000-0000-4000-8000-00000000000a\n  name: green\n  host: a.internal\n- id: 00000000-0000-4000-8000-00000000000b\n  name: blue\n  host: b.internal\n",
    );
    let p = plan(&d, &live, &Schemas::default()).unwrap();
    assert_eq!(p.summary.update, 3, "{:#?}", ops(&p));
    // Replaying the ops in order never has two services with one name.
    let mut state = live.clone();
    for op in &p.ops {
        state = apply(
            &state,
            &Plan {
                ops: vec![op.clone()],
                ..Plan::default()
            },
        );
        let services = state.of(Kind::Service);
        let names: Vec<&str> = services
            .iter()
            .map(|s| s["name"].as_str().unwrap())
            .collect();
        let mut unique = names.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), names.len(), "after {op:?}: {names:?}");
    }
    assert!(plan(&d, &state, &Schemas::default()).unwrap().is_empty());
}

#[test]
fn a_generated_key_is_never_drift_and_an_extra_credential_is_deleted() {
    let d = desired(EVERY_KIND);
    let mut live = kong_after(&d);
    let consumer = live.of(Kind::Consumer)[0]["id"].clone();
    live.push(
        Kind::KeyAuth,
        json!({"id": "00000000-0000-4000-8000-0000000000ff", "key": "stray", "consumer": {"id": consumer}})
            .as_object()
            .unwrap()
            .clone(),
    );
    let p = plan(&d, &live, &Schemas::default()).unwrap();
    assert_eq!(ops(&p).len(), 1, "{:#?}", ops(&p));
    assert_eq!(p.ops[0].action, Action::Delete);
    assert_eq!(p.ops[0].id, "00000000-0000-4000-8000-0000000000ff");
}

#[test]
fn replacing_a_service_by_id_replaces_its_routes_too() {
    let d = desired(GATEWAY);
    let p = plan(&d, &LiveState::default(), &Schemas::default()).unwrap();
    let live = apply(&LiveState::default(), &p);
    let text = GATEWAY.replace(
        "- name: orders\n",
        "- name: orders\n  id: 11111111-2222-4333-8444-555555555555\n",
    );
    let p = plan(&desired(&text), &live, &Schemas::default()).unwrap();
    let rendered = plain(&carl_planner::render::text(&p));
    assert!(
        rendered.contains(
            "-/+ service \"orders\" (the file gives id 11111111-2222-4333-8444-555555555555"
        ),
        "{rendered}"
    );
    assert!(
        rendered.contains("-/+ route \"orders-api\" (its service is replaced)"),
        "{rendered}"
    );
    // Every delete of the old service's routes comes before the service's delete, which
    // comes before the new service's create.
    let at = |action: Action, label: &str, kind: Kind| {
        p.ops
            .iter()
            .position(|o| o.action == action && o.label == label && o.kind == kind)
            .unwrap()
    };
    assert!(
        at(Action::Delete, "\"orders-api\"", Kind::Route)
            < at(Action::Delete, "\"orders\"", Kind::Service)
    );
    assert!(
        at(Action::Delete, "\"orders\"", Kind::Service)
            < at(Action::Create, "\"orders\"", Kind::Service)
    );
    assert!(
        at(Action::Create, "\"orders\"", Kind::Service)
            < at(Action::Create, "\"orders-api\"", Kind::Route)
    );
    let after = apply(&live, &p);
    assert!(
        plan(&desired(&text), &after, &Schemas::default())
            .unwrap()
            .is_empty()
    );
}

/// A kind the files have none of is planned without matching (every live one is
/// deleted); a replaced grandparent still shows as the reason, and still orders the
/// deletes children first.
#[test]
fn live_plugins_the_file_lacks_go_with_a_replaced_service_and_route() {
    let d = desired(GATEWAY);
    let p = plan(&d, &LiveState::default(), &Schemas::default()).unwrap();
    let mut live = apply(&LiveState::default(), &p);
    let route = live
        .of(Kind::Route)
        .into_iter()
        .find(|r| r["name"] == "orders-api")
        .unwrap()["id"]
        .clone();
    live.push(
        Kind::Plugin,
        json!({"id": "00000000-0000-4000-8000-0000000000a1", "name": "cors",
               "route": {"id": route}, "config": {}})
        .as_object()
        .unwrap()
        .clone(),
    );
    let text = GATEWAY.replace(
        "- name: orders\n",
        "- name: orders\n  id: 11111111-2222-4333-8444-555555555555\n",
    );
    let p = plan(&desired(&text), &live, &Schemas::default()).unwrap();
    let plugin = p.ops.iter().find(|o| o.kind == Kind::Plugin).unwrap();
    assert_eq!(plugin.action, Action::Delete);
    assert_eq!(plugin.replace.as_deref(), Some("its route is replaced"));
    let route_delete = p
        .ops
        .iter()
        .find(|o| {
            o.kind == Kind::Route && o.action == Action::Delete && o.label == "\"orders-api\""
        })
        .unwrap();
    assert!(plugin.index < route_delete.index);
    assert!(route_delete.depends_on.contains(&plugin.index));

    // With no routes in the file either, both kinds are deleted without matching, and
    // the reason still passes from the service to its routes and on to their plugins.
    let text = "_format_version: \"3.0\"\nservices:\n- name: orders\n  \
                id: 11111111-2222-4333-8444-555555555555\n  url: http://orders.internal:8080\n";
    let p = plan(&desired(text), &live, &Schemas::default()).unwrap();
    let routes: Vec<&carl_planner::Op> = p.ops.iter().filter(|o| o.kind == Kind::Route).collect();
    assert!(!routes.is_empty());
    for r in routes {
        assert_eq!(r.action, Action::Delete);
        assert_eq!(
            r.replace.as_deref(),
            Some("its service is replaced"),
            "{r:?}"
        );
    }
    let plugin = p.ops.iter().find(|o| o.kind == Kind::Plugin).unwrap();
    assert_eq!(plugin.replace.as_deref(), Some("its route is replaced"));
}

/// The three renders of one plan that creates, updates, deletes and replaces entities of
/// every kind, as a reviewer sees them.
#[test]
fn renders_of_a_plan_touching_every_kind() {
    let fixture = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/fixtures/good/every-kind-flat.yaml"),
    )
    .unwrap();
    let live = kong_after(&desired(&fixture));
    let after = fixture
        .replace("port: 8080", "port: 8081")
        .replace("second: 10", "second: 20")
        .replace("group: catalog-readers", "group: catalog-writers")
        .replace("weight: 10", "weight: 20")
        .replace("- name: www.shop.example.com", "- name: shop.example.org")
        .replace("- custom_id: partner-b-7731\n", "")
        .replace(
            "  instance_name: catalog-audit\n",
            "  instance_name: catalog-audit-2\n",
        )
        .replace(
            "password: ${PARTNER_A_PASSWORD:-not-a-real-password}",
            "password: changed-password",
        );
    let p = plan(&desired(&after), &live, &Schemas::default()).unwrap();
    insta::assert_snapshot!("every_kind_text", plain(&carl_planner::render::text(&p)));
    insta::assert_snapshot!("every_kind_markdown", carl_planner::render::markdown(&p));
    insta::assert_snapshot!("every_kind_json", carl_planner::render::json(&p));
}

/// A small random gateway as a file: services with named and unnamed routes, plugins on
/// services, consumers with key-auth credentials.
fn gateway_file() -> impl proptest::strategy::Strategy<Value = String> {
    use proptest::prelude::*;
    let service = (
        0usize..5,
        prop_oneof![Just(80u16), Just(8080)],
        0usize..3,
        any::<bool>(),
        proptest::option::of(1u32..4),
    );
    let consumer = (0usize..3, 0usize..3);
    (
        proptest::collection::vec(service, 0..5),
        proptest::collection::vec(consumer, 0..3),
    )
        .prop_map(|(services, consumers)| {
            let mut text = String::from("_format_version: \"3.0\"\nservices:\n");
            let mut seen = std::collections::HashSet::new();
            for (name, port, routes, unnamed, limit) in services {
                if !seen.insert(name) {
                    continue;
                }
                text.push_str(&format!(
                    "- name: s{name}\n  host: s{name}.internal\n  port: {port}\n  routes:\n"
                ));
                for r in 0..routes {
                    text.push_str(&format!(
                        "  - name: s{name}-r{r}\n    paths: [/s{name}/r{r}]\n"
                    ));
                }
                if unnamed {
                    text.push_str(&format!(
                        "  - paths: [/s{name}/unnamed]\n    methods: [GET]\n"
                    ));
                }
                if let Some(minute) = limit {
                    text.push_str(&format!(
                        "  plugins:\n  - name: rate-limiting\n    config: {{minute: {minute}}}\n"
                    ));
                }
            }
            text.push_str("consumers:\n");
            let mut seen = std::collections::HashSet::new();
            for (name, keys) in consumers {
                if !seen.insert(name) {
                    continue;
                }
                text.push_str(&format!("- username: c{name}\n  keyauth_credentials:\n"));
                for k in 0..keys {
                    text.push_str(&format!("  - key: c{name}-key-{k}\n"));
                }
                text.push_str("  - {}\n");
            }
            text
        })
}

/// Applies `plan` one op at a time, checking after each what Kong would refuse: two
/// entities with one unique name, a route whose service is gone, a credential or plugin
/// whose parent is gone.
fn apply_checked(live: &LiveState, p: &Plan) -> Result<LiveState, String> {
    let mut state = live.clone();
    for op in &p.ops {
        if op.depends_on.iter().any(|&d| d >= op.index) {
            return Err(format!("{op:?} depends on a later op"));
        }
        state = as_kong_stores(apply(
            &state,
            &Plan {
                ops: vec![op.clone()],
                ..Plan::default()
            },
        ));
        for (kind, field) in [
            (Kind::Service, "name"),
            (Kind::Route, "name"),
            (Kind::Consumer, "username"),
            (Kind::KeyAuth, "key"),
        ] {
            let entities = state.of(kind);
            let values: Vec<&str> = entities
                .iter()
                .filter_map(|e| e.get(field)?.as_str())
                .collect();
            let unique: std::collections::HashSet<&&str> = values.iter().collect();
            if unique.len() != values.len() {
                return Err(format!(
                    "after {op:?}: duplicate {kind} {field}: {values:?}"
                ));
            }
        }
        let ids = |kind: Kind| -> std::collections::HashSet<String> {
            state
                .of(kind)
                .iter()
                .map(|e| e["id"].as_str().unwrap().to_owned())
                .collect()
        };
        for (kind, field, parent) in [
            (Kind::Route, "service", Kind::Service),
            (Kind::KeyAuth, "consumer", Kind::Consumer),
            (Kind::Plugin, "service", Kind::Service),
        ] {
            let parents = ids(parent);
            for e in state.of(kind) {
                if let Some(id) = e.get(field).and_then(carl_model::foreign_id)
                    && !parents.contains(id)
                    && op.action != Action::Delete
                {
                    return Err(format!("after {op:?}: {kind} points at a missing {parent}"));
                }
            }
        }
    }
    Ok(state)
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

    /// From any gateway to any other: the plan applies in order without a conflict,
    /// reaches the desired state (the next plan is empty), and planning a state
    /// against itself gives nothing.
    #[test]
    fn any_gateway_converges_to_any_file(before in gateway_file(), after in gateway_file()) {
        let schemas = Schemas::default();
        let start = apply_checked(&LiveState::default(), &plan(&desired(&before), &LiveState::default(), &schemas).unwrap()).unwrap();
        proptest::prop_assert!(plan(&desired(&before), &start, &schemas).unwrap().is_empty());
        let p = plan(&desired(&after), &start, &schemas).unwrap();
        let end = apply_checked(&start, &p).map_err(proptest::test_runner::TestCaseError::fail)?;
        let again = plan(&desired(&after), &end, &schemas).unwrap();
        proptest::prop_assert!(again.is_empty(), "{:#?}", ops(&again));
    }
}

/// A create keeps what the file gives as one compact text, and shows it as changes in
/// schema order (secrets flagged) and sends it as its body.
#[test]
fn a_create_keeps_its_fields_compact_and_shows_them_in_schema_order() {
    let d = desired(
        "_format_version: \"3.0\"\nconsumers:\n- username: alice\n  keyauth_credentials:\n  - key: s3cr3t-key-value\n",
    );
    let p = plan(&d, &LiveState::default(), &Schemas::default()).unwrap();
    let key = p.ops.iter().find(|o| o.kind == Kind::KeyAuth).unwrap();
    assert!(matches!(key.changes, carl_planner::Changes::Created(_)));
    let changes = key.changes();
    let fields: Vec<&str> = changes.iter().map(|c| c.field.as_str()).collect();
    assert_eq!(fields, ["consumer", "key"], "schema order, no id");
    assert!(changes.iter().all(|c| c.old.is_null()));
    assert!(changes[1].sensitive && !changes[0].sensitive);
    let body = key.body();
    assert_eq!(body["key"], "s3cr3t-key-value");
    assert_eq!(body.len(), 2, "{body:?}");
    assert_eq!(body["consumer"]["id"], p.ops[0].id);
}
