//! The conformance suite's target: a kong-sim started per test, or a real Kong when
//! `CARL_TEST_KONG_ADDR` is set (emptied before each test; run with
//! `--test-threads=1`). Tests of kong-sim's own `/_sim/` controls skip themselves on a
//! real Kong with `if s.is_real() { return; }`.

#![allow(dead_code)]

use kong_sim::{RunningSim, SimConfig, start};
use reqwest::{Client, Method};
use serde_json::Value;

pub struct Sim {
    /// None when the suite runs against a real Kong.
    pub sim: Option<RunningSim>,
    pub base: String,
    pub client: Client,
}

impl Sim {
    pub async fn new() -> Sim {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = Client::builder().no_proxy().build().expect("client");
        if let Ok(base) = std::env::var("CARL_TEST_KONG_ADDR") {
            let s = Sim {
                sim: None,
                base,
                client,
            };
            s.empty().await;
            return s;
        }
        let sim = start(SimConfig::default()).await.expect("sim starts");
        let base = sim.url();
        Sim {
            sim: Some(sim),
            base,
            client,
        }
    }

    pub fn url(&self) -> &str {
        &self.base
    }

    /// True against a real Kong, where `/_sim/` does not exist.
    pub fn is_real(&self) -> bool {
        self.sim.is_none()
    }

    /// Deletes every entity, children first (a real Kong is reused between tests).
    pub async fn empty(&self) {
        for kind in carl_model::Kind::ALL
            .iter()
            .rev()
            .filter(|k| k.has_top_level_path())
        {
            loop {
                let (st, body) = self.get(&format!("/{}?size=1000", kind.path())).await;
                let items = body["data"].as_array().cloned().unwrap_or_default();
                if st != 200 || items.is_empty() {
                    break;
                }
                for e in items {
                    let id = e["id"].as_str().unwrap_or_default();
                    self.delete(&format!("/{}/{id}", kind.path())).await;
                }
            }
        }
    }

    pub async fn req(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut rb = self.client.request(method, format!("{}{path}", self.base));
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        let resp = rb.send().await.expect("request");
        let status = resp.status().as_u16();
        let text = resp.text().await.expect("body");
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).expect("JSON body")
        };
        (status, value)
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.req(Method::GET, path, None).await
    }
    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.req(Method::POST, path, Some(body)).await
    }
    pub async fn put(&self, path: &str, body: Value) -> (u16, Value) {
        self.req(Method::PUT, path, Some(body)).await
    }
    pub async fn patch(&self, path: &str, body: Value) -> (u16, Value) {
        self.req(Method::PATCH, path, Some(body)).await
    }
    pub async fn delete(&self, path: &str) -> (u16, Value) {
        self.req(Method::DELETE, path, None).await
    }
}
