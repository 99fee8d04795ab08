//! Applying plans against kong-sim: bounded parallelism, no barriers, failures contained.

use carl_admin_client::{AdminClient, ClientConfig};
use carl_executor::{Outcome, apply};
use carl_model::{Kind, LiveState};
use carl_planner::{Plan, Schemas};
use serde_json::Value;

async fn setup(latency_ms: u64) -> (kong_sim::RunningSim, AdminClient) {
    let config = kong_sim::SimConfig {
        latency_ms,
        ..kong_sim::SimConfig::default()
    };
    let sim = kong_sim::start(config).await.unwrap();
    let client = AdminClient::new(&ClientConfig {
        addr: sim.url(),
        ..ClientConfig::default()
    })
    .unwrap();
    (sim, client)
}

async fn stats(sim: &kong_sim::RunningSim) -> Value {
    reqwest::get(format!("{}/_sim/stats", sim.url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

fn plan_for(yaml: &str) -> Plan {
    let desired = carl_config::load_str("gw.yaml", yaml, &|_| None).unwrap();
    carl_planner::plan(&desired, &LiveState::default(), &Schemas::default()).unwrap()
}

fn services(n: usize) -> String {
    let mut yaml = String::from("_format_version: \"3.0\"\nservices:\n");
    for i in 0..n {
        yaml.push_str(&format!(
            "- name: s{i}\n  host: h{i}.internal\n  routes:\n  - name: r{i}\n    paths: [/r{i}]\n"
        ));
    }
    yaml
}

#[tokio::test]
async fn keeps_exactly_parallelism_requests_in_flight() {
    let (sim, client) = setup(30).await;
    let plan = plan_for(&services(20));
    assert_eq!(plan.ops.len(), 40);
    let report = apply(&client, &plan, 8, |_, _| {}).await;
    assert!(report.succeeded(), "{report:?}");
    let s = stats(&sim).await;
    assert_eq!(s["peak_in_flight"], 8, "{s}");
    assert_eq!(
        s["requests"]["by_method"]["PUT"], 40,
        "one write per op, no read-back: {s}"
    );
    assert_eq!(s["requests"]["total"], 40, "{s}");
    sim.shutdown().await;
}

#[tokio::test]
async fn a_child_starts_as_soon_as_its_parent_is_done() {
    // Every route finishes after its own service (the dependency is honoured) while
    // routes and services of different branches interleave freely.
    let (sim, client) = setup(50).await;
    let plan = plan_for(&services(20));
    let order = std::sync::Mutex::new(Vec::new());
    let report = apply(&client, &plan, 20, |op, _| {
        order.lock().unwrap().push((op.kind, op.label.clone()))
    })
    .await;
    assert!(report.succeeded());
    let order = order.into_inner().unwrap();
    for (i, (kind, label)) in order.iter().enumerate() {
        if *kind == Kind::Route {
            let service = label.replace("\"r", "\"s");
            let parent = order
                .iter()
                .position(|(k, l)| *k == Kind::Service && *l == service)
                .unwrap();
            assert!(parent < i, "route {label} finished before its service");
        }
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn a_failed_op_skips_only_its_dependents() {
    let (sim, client) = setup(0).await;
    // Kong refuses `bad` (a fault injected on its PUT); its route is skipped, `good`
    // and its route are applied.
    let plan = plan_for(
        "_format_version: \"3.0\"\nservices:\n- name: bad\n  host: bad.internal\n  routes:\n  - name: bad-r\n    paths: [/b]\n\
         - name: good\n  host: good.internal\n  routes:\n  - name: good-r\n    paths: [/g]\n",
    );
    let bad_id = &plan.ops.iter().find(|o| o.label == "\"bad\"").unwrap().id;
    let rule = serde_json::json!({"rules": [{"method": "PUT", "path": format!("/services/{bad_id}"), "status": 400}]});
    reqwest::Client::new()
        .put(format!("{}/_sim/faults", sim.url()))
        .json(&rule)
        .send()
        .await
        .unwrap();
    let report = apply(&client, &plan, 4, |_, _| {}).await;
    let outcome = |label: &str| {
        let op = plan
            .ops
            .iter()
            .find(|o| o.label == format!("\"{label}\""))
            .unwrap();
        (op.index, report.outcomes[op.index].clone())
    };
    let (bad_index, bad) = outcome("bad");
    match bad {
        Outcome::Failed(msg) => assert!(msg.starts_with("400 "), "{msg}"),
        other => panic!("expected failure, got {other:?}"),
    }
    assert_eq!(outcome("bad-r").1, Outcome::Skipped { because: bad_index });
    assert_eq!(outcome("good").1, Outcome::Done);
    assert_eq!(outcome("good-r").1, Outcome::Done);
    let c = report.counts();
    assert_eq!((c.done, c.failed, c.skipped, c.not_run), (2, 1, 1, 0));
    let s = stats(&sim).await;
    assert_eq!(
        s["requests"]["by_route"]["PUT /routes/{routes}"], 1,
        "the skipped route was never sent: {s}"
    );
    sim.shutdown().await;
}
