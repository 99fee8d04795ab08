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
            // Kong's own text stays in the body; the error shows the words (with any
            // secret value left out) wherever it is printed.
            assert_eq!(
                body["message"],
                "UNIQUE violation detected on '{name=\"a\"}'"
            );
            assert_eq!(
                message,
                "unique constraint violated on name 'a' (another entity has it)"
            );
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

fn target_id(i: usize) -> String {
    format!("00000000-0000-4000-8000-{i:012}")
}

/// Targets are read one request per upstream as soon as the page naming the upstream
/// arrives, not after every other kind: a kind whose page never comes (the services
/// page hangs here) does not hold them back. With `parallelism` 4, the hanging page
/// takes one slot and the targets share the other three.
#[tokio::test]
async fn targets_are_read_while_other_kinds_are_still_paging() {
    let (sim, writer) = sim().await;
    for i in 0..12 {
        let upstream = format!("up-{i:02}");
        writer
            .put(
                Kind::Upstream,
                &upstream,
                json!({ "name": upstream }).as_object().unwrap(),
            )
            .await
            .unwrap();
        writer
            .create_at(
                Kind::Target,
                &format!("/upstreams/{upstream}/targets/{}", target_id(i)),
                &target_id(i),
                json!({ "target": format!("10.0.0.{i}:80") })
                    .as_object()
                    .unwrap(),
            )
            .await
            .unwrap();
    }
    let faults = json!({
        "latency_ms": 30,
        "rules": [{"method": "GET", "path": "/services", "hang": true}]
    });
    let answer = reqwest::Client::new()
        .put(format!("{}/_sim/faults", sim.url()))
        .json(&faults)
        .send()
        .await
        .unwrap();
    assert!(answer.status().is_success());
    let reader = AdminClient::new(&ClientConfig {
        addr: sim.url(),
        parallelism: 4,
        timeout: std::time::Duration::from_secs(2),
        retry: carl_admin_client::RetryConfig {
            attempts: 1,
            ..Default::default()
        },
        ..ClientConfig::default()
    })
    .unwrap();

    let err = reader
        .read_state(&[Kind::Service, Kind::Upstream, Kind::Target])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("/services"), "{err}");
    let s = stats(&sim).await;
    assert_eq!(
        s["requests"]["by_route"]["GET /upstreams/{upstreams}/targets"], 12,
        "every upstream's targets read while the services page hung: {s}"
    );
    // Three targets at a time beside the hanging page, which kong-sim holds in its
    // transport, before it counts requests in flight.
    assert_eq!(s["peak_in_flight"], 3, "{s}");
    sim.shutdown().await;
}
