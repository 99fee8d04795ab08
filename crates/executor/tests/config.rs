//! DB-less apply against kong-sim in DB-less mode: one configuration, loaded whole.

use carl_admin_client::{AdminClient, ClientConfig};
use carl_executor::config::{ConfigOutcome, apply_config};
use carl_model::LiveState;
use carl_planner::Schemas;

async fn db_less() -> (kong_sim::RunningSim, AdminClient) {
    let sim = kong_sim::start(kong_sim::SimConfig {
        db_less: true,
        ..kong_sim::SimConfig::default()
    })
    .await
    .unwrap();
    let client = AdminClient::new(&ClientConfig {
        addr: sim.url(),
        ..ClientConfig::default()
    })
    .unwrap();
    (sim, client)
}

const FILE: &str = "_format_version: \"3.0\"\nservices:\n- name: orders\n  host: orders.internal\n";

/// Kong has no compare-and-swap for `/config`; carl compares the `configuration_hash`
/// it planned against with the one after reading the configuration, and loads nothing
/// when another configuration was loaded in between (another pipeline).
#[tokio::test]
async fn a_configuration_loaded_since_the_plan_was_read_is_not_overwritten() {
    let (_sim, client) = db_less().await;
    let planned = client.configuration_hash().await.unwrap();
    let desired = carl_config::load_str("gw.yaml", FILE, &|_| None).unwrap();
    let plan = carl_planner::plan(&desired, &LiveState::default(), &Schemas::default()).unwrap();

    // Another pipeline loads its configuration after carl read the gateway.
    let other = r#"{"_format_version": "3.0", "consumers": [{"username": "theirs"}]}"#;
    client.load_config(other.into()).await.unwrap();

    let report = apply_config(&client, &plan, planned.as_deref()).await;
    match &report.outcome {
        ConfigOutcome::Failed(why) => {
            assert!(why.contains("loaded another configuration"), "{why}")
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(report.requests, 2, "GET /config and GET /status, no POST");
    let consumers = client.list_all(carl_model::Kind::Consumer).await.unwrap();
    assert_eq!(consumers.len(), 1, "their configuration stands");

    // Planned against what runs now, it applies and keeps their consumer.
    let now = client.configuration_hash().await.unwrap();
    let report = apply_config(&client, &plan, now.as_deref()).await;
    assert_eq!(report.outcome, ConfigOutcome::Applied);
    assert_eq!(report.requests, 3, "GET /config, GET /status, POST /config");
    assert_eq!(
        client
            .list_all(carl_model::Kind::Service)
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        client
            .list_all(carl_model::Kind::Consumer)
            .await
            .unwrap()
            .len(),
        1
    );
}
