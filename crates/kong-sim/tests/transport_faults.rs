//! kong-sim's transport (TLS, client certificates, admin token, workspace prefixes) and
//! its injected faults. These are kong-sim's own features: kong-sim only.

use std::time::{Duration, Instant};

use kong_sim::{FaultConfig, Rule, SimConfig, TlsFiles, start};
use reqwest::Client;
use serde_json::{Value, json};

fn client() -> Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    Client::builder().no_proxy().build().expect("client")
}

struct Pki {
    dir: tempfile::TempDir,
    ca_pem: String,
    client_pem: String,
}

/// A CA, a server certificate for 127.0.0.1 and a client certificate, on disk.
fn pki() -> Pki {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("ca params");
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca_key = rcgen::KeyPair::generate().expect("key");
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).expect("ca");
    let server_key = rcgen::KeyPair::generate().expect("key");
    let server = rcgen::CertificateParams::new(vec!["127.0.0.1".into(), "localhost".into()])
        .expect("params")
        .signed_by(&server_key, &ca)
        .expect("server cert");
    let client_key = rcgen::KeyPair::generate().expect("key");
    let client = rcgen::CertificateParams::new(vec!["carl".into()])
        .expect("params")
        .signed_by(&client_key, &ca)
        .expect("client cert");
    std::fs::write(dir.path().join("ca.pem"), ca.pem()).expect("write");
    std::fs::write(dir.path().join("server.pem"), server.pem()).expect("write");
    std::fs::write(dir.path().join("server.key"), server_key.serialize_pem()).expect("write");
    Pki {
        ca_pem: ca.pem(),
        client_pem: format!("{}{}", client.pem(), client_key.serialize_pem()),
        dir,
    }
}

fn tls_client(pki: &Pki, with_client_cert: bool) -> Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let ca = reqwest::Certificate::from_pem(pki.ca_pem.as_bytes()).expect("ca");
    let mut b = Client::builder().no_proxy().tls_certs_only([ca]);
    if with_client_cert {
        b = b.identity(reqwest::Identity::from_pem(pki.client_pem.as_bytes()).expect("identity"));
    }
    b.build().expect("tls client")
}

#[tokio::test]
async fn serves_https_and_requires_client_certificates_when_asked() {
    let pki = pki();
    let files = |client_ca: bool| TlsFiles {
        cert: pki.dir.path().join("server.pem"),
        key: pki.dir.path().join("server.key"),
        client_ca: client_ca.then(|| pki.dir.path().join("ca.pem")),
    };
    let sim = start(SimConfig {
        tls: Some(files(false)),
        ..SimConfig::default()
    })
    .await
    .expect("start");
    assert!(sim.url().starts_with("https://"));
    let resp = tls_client(&pki, false)
        .get(format!("{}/services", sim.url()))
        .send()
        .await
        .expect("https");
    assert_eq!(resp.status(), 200);
    assert!(
        client()
            .get(format!("{}/services", sim.url()))
            .send()
            .await
            .is_err(),
        "unknown CA is refused"
    );
    sim.shutdown().await;

    let sim = start(SimConfig {
        tls: Some(files(true)),
        ..SimConfig::default()
    })
    .await
    .expect("start");
    let url = format!("{}/services", sim.url());
    assert!(
        tls_client(&pki, false).get(&url).send().await.is_err(),
        "no client certificate: refused"
    );
    let resp = tls_client(&pki, true).get(&url).send().await.expect("mtls");
    assert_eq!(resp.status(), 200);
    sim.shutdown().await;
}

#[tokio::test]
async fn admin_token_and_workspace_prefixes() {
    let sim = start(SimConfig {
        admin_token: Some("s3cret".into()),
        workspaces: vec!["default".into()],
        ..SimConfig::default()
    })
    .await
    .expect("start");
    let c = client();
    let resp = c
        .get(format!("{}/services", sim.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        body["message"],
        "Invalid credentials. Token or User credentials required"
    );
    let ok = c
        .get(format!("{}/default/services", sim.url()))
        .header("Kong-Admin-Token", "s3cret")
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200, "the workspace prefix is served");
    let stats: Value = c
        .get(format!("{}/_sim/stats", sim.url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        stats["requests"]["by_route"]["GET /services"], 2,
        "counted under the unprefixed template"
    );
    sim.shutdown().await;
}

async fn put_faults(url: &str, faults: Value) {
    let resp = client()
        .put(format!("{url}/_sim/faults"))
        .json(&faults)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn error_rates_answer_with_kong_like_bodies() {
    let sim = start(SimConfig::default()).await.expect("start");
    put_faults(
        &sim.url(),
        json!({"error_rate": 1.0, "error_statuses": [429], "seed": 3}),
    )
    .await;
    let resp = client()
        .get(format!("{}/services", sim.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 429);
    assert_eq!(resp.headers()["retry-after"], "1");
    assert_eq!(
        resp.json::<Value>().await.unwrap()["message"],
        "API rate limit exceeded"
    );
    // /_sim is never faulted, and `{}` clears everything.
    put_faults(&sim.url(), json!({})).await;
    assert_eq!(
        client()
            .get(format!("{}/services", sim.url()))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let stats: Value = client()
        .get(format!("{}/_sim/stats", sim.url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stats["faults"]["errors"], 1);
    assert_eq!(stats["requests"]["by_status"]["429"], 1);
    sim.shutdown().await;
}

#[tokio::test]
async fn rules_fail_before_or_after_the_write() {
    let sim = start(SimConfig::default()).await.expect("start");
    let url = sim.url();
    let rule = |after| json!({"rules": [{"method": "PUT", "path": "/services/*", "status": 500, "after": after}]});
    put_faults(&url, rule(false)).await;
    let resp = client()
        .put(format!("{url}/services/a"))
        .json(&json!({"host": "h"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 500);
    assert_eq!(
        client()
            .get(format!("{url}/services/a"))
            .send()
            .await
            .unwrap()
            .status(),
        404,
        "not written"
    );
    put_faults(&url, rule(true)).await;
    let resp = client()
        .put(format!("{url}/services/a"))
        .json(&json!({"host": "h"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 500);
    assert_eq!(
        client()
            .get(format!("{url}/services/a"))
            .send()
            .await
            .unwrap()
            .status(),
        200,
        "written, then failed"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn resets_and_hangs_are_connection_level() {
    let sim = start(SimConfig {
        faults: FaultConfig {
            rules: vec![
                Rule {
                    path: "/services".into(),
                    reset: true,
                    ..Rule::default()
                },
                Rule {
                    path: "/routes".into(),
                    hang: true,
                    ..Rule::default()
                },
            ],
            ..FaultConfig::default()
        },
        ..SimConfig::default()
    })
    .await
    .expect("start");
    let err = client()
        .get(format!("{}/services", sim.url()))
        .send()
        .await
        .unwrap_err();
    assert!(!err.is_status(), "a reset is not an HTTP answer: {err}");
    let short = Client::builder()
        .no_proxy()
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let err = short
        .get(format!("{}/routes", sim.url()))
        .send()
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err}");
    let stats: Value = client()
        .get(format!("{}/_sim/stats", sim.url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (
            stats["faults"]["resets"].clone(),
            stats["faults"]["hangs"].clone()
        ),
        (json!(1), json!(1))
    );
    sim.shutdown().await;
}

/// kong-sim asks tokio's millisecond timer for one tick less than the latency (it
/// rounds deadlines up) and yields for the rest: no answer may come early.
#[tokio::test]
async fn every_answer_waits_the_whole_latency() {
    let sim = start(SimConfig::default()).await.expect("start");
    put_faults(&sim.url(), json!({"latency_ms": 7})).await;
    let client = client();
    for _ in 0..20 {
        let started = Instant::now();
        client
            .get(format!("{}/services", sim.url()))
            .send()
            .await
            .unwrap();
        let took = started.elapsed();
        assert!(took >= Duration::from_millis(7), "answered after {took:?}");
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn latency_is_at_least_what_was_asked() {
    let sim = start(SimConfig::default()).await.expect("start");
    put_faults(
        &sim.url(),
        json!({"latency_ms": 100, "jitter_ms": 20, "seed": 9}),
    )
    .await;
    let started = Instant::now();
    client()
        .get(format!("{}/services", sim.url()))
        .send()
        .await
        .unwrap();
    assert!(started.elapsed() >= Duration::from_millis(80));
    sim.shutdown().await;
}
