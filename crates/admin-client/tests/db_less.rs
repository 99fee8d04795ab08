//! A DB-less gateway's configuration, read and loaded whole, against kong-sim in
//! DB-less mode.

use carl_admin_client::{AdminClient, ClientConfig, Loaded};
use carl_model::Kind;
use serde_json::json;

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

#[tokio::test]
async fn a_configuration_loads_once_and_the_same_text_again_is_a_304() {
    let (_sim, client) = db_less().await;
    let empty = client.configuration_hash().await.unwrap();
    assert_eq!(empty.as_deref(), Some("00000000000000000000000000000000"));
    let text = json!({
        "_format_version": "3.0",
        "services": [{"name": "orders", "host": "orders.internal"}]
    })
    .to_string();
    assert_eq!(
        client.load_config(text.clone()).await.unwrap(),
        Loaded::Applied
    );
    let hash = client.configuration_hash().await.unwrap();
    assert_ne!(hash, empty, "a new configuration, a new hash");
    // `check_hash`: Kong keeps the configuration it runs when the text is the same.
    assert_eq!(client.load_config(text).await.unwrap(), Loaded::Unchanged);
    assert_eq!(client.configuration_hash().await.unwrap(), hash);

    // Kong's export reads back as a flat table, foreign keys as bare ids.
    let export = client.config().await.unwrap();
    assert_eq!(export["_transform"], false);
    assert_eq!(export["services"][0]["name"], "orders");
    assert_eq!(client.list_all(Kind::Service).await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_refused_configuration_names_its_entities() {
    let (_sim, client) = db_less().await;
    let text = json!({
        "_format_version": "3.0",
        "services": [{"id": "0b4f1a3c-56c9-4d5e-9f0a-1b2c3d4e5f60", "name": "orders", "host": "orders.internal", "port": 99999}],
        "consumers": [
            {"username": "alice", "keyauth_credentials": [{"key": "the-same-key"}]},
            {"username": "bob", "keyauth_credentials": [{"key": "the-same-key"}]}
        ]
    })
    .to_string();
    let e = client.load_config(text).await.unwrap_err();
    assert_eq!(e.status(), Some(400));
    let errors = e.entity_errors();
    let service = errors
        .iter()
        .find(|e| e.kind == Some(Kind::Service))
        .unwrap();
    assert_eq!(
        service.id.as_deref(),
        Some("0b4f1a3c-56c9-4d5e-9f0a-1b2c3d4e5f60")
    );
    assert_eq!(service.errors[0].field.as_deref(), Some("port"));
    assert_eq!(
        service.errors[0].message,
        "value should be between 0 and 65535"
    );
    let credential = errors
        .iter()
        .find(|e| e.kind == Some(Kind::KeyAuth))
        .unwrap();
    // Kong quotes the clashing key; carl masks it.
    assert_eq!(
        credential.errors[0].message,
        "uniqueness violation: 'keyauth_credentials' entity with key set to '(sensitive)' already declared"
    );
}
