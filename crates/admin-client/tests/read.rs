//! Reading a gateway against kong-sim: every page, the fewest requests.

use carl_admin_client::{AdminClient, ClientConfig, Error};
use carl_model::Kind;
use serde_json::{Value, json};

async fn sim() -> (kong_sim::RunningSim, AdminClient) {
    let sim = kong_sim::start(kong_sim::SimConfig::default())
        .await
        .unwrap();
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

#[tokio::test]
async fn reads_every_page_with_one_request_per_page_of_1000() {
    let (sim, client) = sim().await;
    for i in 0..2100 {
        let body = json!({"name": format!("svc-{i:04}"), "host": "example.internal"});
        client
            .put(
                Kind::Service,
                &format!("svc-{i:04}"),
                body.as_object().unwrap(),
            )
            .await
            .unwrap();
    }
    let before = stats(&sim).await["requests"]["by_route"]["GET /services"]
        .as_u64()
        .unwrap_or(0);

    let state = client
        .read_state(&[Kind::Service, Kind::Route])
        .await
        .unwrap();
    assert_eq!(state.of(Kind::Service).len(), 2100);
    assert_eq!(state.of(Kind::Route).len(), 0);
    let services = state.of(Kind::Service);
    let mut names: Vec<&str> = services
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(
        names.len(),
        2100,
        "no entity read twice or missed across pages"
    );

    let s = stats(&sim).await;
    let pages = s["requests"]["by_route"]["GET /services"].as_u64().unwrap() - before;
    assert_eq!(pages, 3, "2100 services = 3 pages of 1000: {s}");
    assert_eq!(s["requests"]["by_route"]["GET /routes"], 1);
    sim.shutdown().await;
}

#[tokio::test]
async fn kong_errors_carry_status_and_kongs_message() {
    let (sim, client) = sim().await;
    let body = json!({"name": "a", "host": "example.internal"});
    client
        .put(Kind::Service, "a", body.as_object().unwrap())
        .await
        .unwrap();
    let clash = json!({"name": "a", "host": "other.internal"});
    let err = client
        .put(
            Kind::Service,
            "6b3c3c1e-0a51-4c8e-9d0e-3a4b5c6d7e8f",
            clash.as_object().unwrap(),
        )
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(409));
    // Kong's body names the field; carl says it in words.
    assert_eq!(
        err.kong_message(),
        "unique constraint violated on name 'a' (another entity has it)"
    );
    match err {
        Error::Api { body, message, .. } => {
            assert_eq!(body["code"], 5);
            assert_eq!(message, "UNIQUE violation detected on '{name=\"a\"}'");
        }
        other => panic!("expected an API error, got {other}"),
    }
    // Deleting what is already gone is success: deletes can be retried.
    client
        .delete(Kind::Service, "6b3c3c1e-0a51-4c8e-9d0e-3a4b5c6d7e8f")
        .await
        .unwrap();
    sim.shutdown().await;
}

#[tokio::test]
async fn schemas_come_from_the_gateway() {
    let (sim, client) = sim().await;
    let schema = client.schema(Kind::Route).await.unwrap();
    assert!(schema.field("protocols").unwrap().is_set());
    sim.shutdown().await;
}

#[tokio::test]
async fn an_address_without_scheme_is_refused_before_any_request() {
    let err = AdminClient::new(&ClientConfig {
        addr: "localhost:8001".into(),
        ..ClientConfig::default()
    })
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("must start with http:// or https://"),
        "{err}"
    );
}
