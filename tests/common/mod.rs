//! What the end-to-end tests share: a gateway to talk to and a way to run carl.
//!
//! By default each test starts its own kong-sim on a free port. With
//! `CARL_TEST_KONG_ADDR` set, the tests run unchanged against that real Kong instead
//! (run them one at a time: `cargo test -- --test-threads=1`); it is emptied of services
//! and routes before each test, and request counts, which only kong-sim keeps, are not
//! checked.

#![allow(dead_code)]

use std::path::Path;

use assert_cmd::Command;
use serde_json::Value;

pub struct Gateway {
    pub url: String,
    runtime: tokio::runtime::Runtime,
    sim: Option<kong_sim::RunningSim>,
    http: reqwest::Client,
}

/// The tests' own runtime and Admin API client (it does not verify certificates: the
/// tests' direct calls check behaviour, carl checks TLS).
fn runtime_and_client() -> (tokio::runtime::Runtime, reqwest::Client) {
    carl_admin_client::init_crypto();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let http = reqwest::Client::builder()
        .no_proxy()
        .tls_danger_accept_invalid_certs(true)
        .build()
        .expect("http client");
    (runtime, http)
}

impl Gateway {
    /// A kong-sim with these settings (TLS, DB-less, faults), whatever
    /// `CARL_TEST_KONG_ADDR` says: for what only an emulator can be told to do.
    pub fn start_sim(config: kong_sim::SimConfig) -> Gateway {
        let (runtime, http) = runtime_and_client();
        let sim = runtime
            .block_on(kong_sim::start(config))
            .expect("kong-sim starts");
        Gateway {
            url: sim.url(),
            runtime,
            sim: Some(sim),
            http,
        }
    }

    pub fn start() -> Gateway {
        let (runtime, http) = runtime_and_client();
        match std::env::var("CARL_TEST_KONG_ADDR") {
            Ok(url) => {
                let gw = Gateway {
                    url,
                    runtime,
                    sim: None,
                    http,
                };
                gw.empty_real_kong();
                gw
            }
            Err(_) => {
                let sim = runtime
                    .block_on(kong_sim::start(kong_sim::SimConfig::default()))
                    .expect("kong-sim starts");
                Gateway {
                    url: sim.url(),
                    runtime,
                    sim: Some(sim),
                    http,
                }
            }
        }
    }

    /// True when talking to kong-sim, which counts requests.
    pub fn is_sim(&self) -> bool {
        self.sim.is_some()
    }

    /// A direct Admin API call, as an operator's curl would make it.
    pub fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let url = format!("{}{path}", self.url);
        self.runtime.block_on(async {
            let mut req = self.http.request(method, url);
            if let Some(body) = body {
                req = req.json(&body);
            }
            let resp = req.send().await.expect("admin API answers");
            let status = resp.status().as_u16();
            let bytes = resp.bytes().await.expect("body");
            (
                status,
                serde_json::from_slice(&bytes).unwrap_or(Value::Null),
            )
        })
    }

    /// kong-sim's request counters; `None` on a real Kong.
    pub fn stats(&self) -> Option<Value> {
        self.is_sim()
            .then(|| self.call("GET", "/_sim/stats", None).1)
    }

    /// Requests that write (POST, PUT, PATCH, DELETE) counted so far; `None` on a real Kong.
    pub fn writes(&self) -> Option<u64> {
        let stats = self.stats()?;
        let by_method = &stats["requests"]["by_method"];
        Some(
            ["POST", "PUT", "PATCH", "DELETE"]
                .iter()
                .map(|m| by_method[*m].as_u64().unwrap_or(0))
                .sum(),
        )
    }

    /// All requests counted so far; `None` on a real Kong.
    pub fn requests(&self) -> Option<u64> {
        Some(self.stats()?["requests"]["total"].as_u64().unwrap_or(0))
    }

    /// Every entity of a collection (first page of 1000 is plenty in tests).
    pub fn list(&self, collection: &str) -> Vec<Value> {
        let (status, body) = self.call("GET", &format!("/{collection}?size=1000"), None);
        assert_eq!(status, 200, "GET /{collection}: {body}");
        body["data"].as_array().cloned().unwrap_or_default()
    }

    fn empty_real_kong(&self) {
        // Children first (Kong refuses to delete a service with routes); credentials,
        // plugins and targets go with their parents, but are listed for older Kongs.
        for collection in [
            "plugins",
            "acls",
            "jwts",
            "hmac-auths",
            "basic-auths",
            "key-auths",
            "routes",
            "services",
            "consumers",
            "upstreams",
            "snis",
            "certificates",
            "ca_certificates",
            "keys",
            "key-sets",
            "vaults",
        ] {
            for e in self.list(collection) {
                let id = e["id"].as_str().expect("id");
                let (status, body) = self.call("DELETE", &format!("/{collection}/{id}"), None);
                assert!(
                    status == 204 || status == 404,
                    "emptying {collection}: {body}"
                );
            }
        }
    }

    /// `carl` with `CARL_KONG_ADDR` pointing here and a clean environment.
    pub fn carl(&self) -> Command {
        let mut cmd = Command::new(assert_cmd::cargo::cargo_bin!("carl"));
        cmd.env_clear()
            .env("CARL_KONG_ADDR", &self.url)
            .env("NO_COLOR", "1")
            .env("PATH", std::env::var_os("PATH").unwrap_or_default());
        cmd
    }
}

impl Gateway {
    /// `carl reconcile --plan --format json -f file`, which must succeed, parsed.
    pub fn json_plan(&self, file: &str) -> Value {
        let assert = self
            .carl()
            .args(["reconcile", "--plan", "--format", "json", "-f", file])
            .assert()
            .code(0);
        serde_json::from_slice(&assert.get_output().stdout).expect("--format json prints JSON")
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        if let Some(sim) = self.sim.take() {
            self.runtime.block_on(sim.shutdown());
        }
    }
}

/// Writes `text` to `name` in `dir` and returns the path as a string.
pub fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write desired-state file");
    path.display().to_string()
}
