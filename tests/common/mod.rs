//! What the end-to-end tests share: a gateway to talk to and a way to run carl.
//!
//! By default each test starts its own kong-sim on a free port. With
//! `CARL_TEST_KONG_ADDR` set, the tests run unchanged against that real Kong instead
//! (run them one at a time: `cargo test -- --test-threads=1`); it is emptied of services
//! and routes before each test, and request counts, which only kong-sim keeps, are not
//! checked.

#![allow(dead_code)]

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::sync::{LazyLock, Mutex};

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

    /// Waits until kong-sim has counted `k` writes after `before` (a [`Self::writes`]
    /// reading), while `child` still runs: bounded by `limit`, and failing (with `what`,
    /// the run's name) if carl ended first. kong-sim only: a real Kong has no counters.
    pub fn wait_for_writes(
        &self,
        what: &str,
        child: &mut std::process::Child,
        before: u64,
        k: u64,
        limit: std::time::Duration,
    ) {
        let deadline = std::time::Instant::now() + limit;
        while self.writes().expect("kong-sim's counters") - before < k {
            assert!(
                std::time::Instant::now() < deadline,
                "{what}: no {k} writes in {limit:?}"
            );
            assert!(
                child.try_wait().unwrap().is_none(),
                "{what}: carl ended before {k} writes"
            );
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
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

    /// `carl` with `CARL_KONG_ADDR` pointing here and a clean environment; its output
    /// is searched for secrets when it runs (see [`Carl`]).
    pub fn carl(&self) -> Carl {
        let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin!("carl"));
        cmd.env_clear()
            .env("CARL_KONG_ADDR", &self.url)
            .env("NO_COLOR", "1")
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            // Apply's backups go to cargo's scratch space, not the source tree.
            .env(
                "CARL_BACKUP_DIR",
                Path::new(env!("CARGO_TARGET_TMPDIR")).join("backups"),
            );
        Carl {
            cmd,
            args: Vec::new(),
        }
    }
}

/// A carl command of the test suite. Whatever it prints, and any plan file it writes
/// (`--out`), is searched for every secret value the suite uses ([`secrets`]): a
/// test that makes carl leak one fails, whatever it was testing. The one exception is
/// `carl dump` without `--redact-secrets` writing to stdout, a backup whose job is to
/// hold the credentials.
pub struct Carl {
    cmd: std::process::Command,
    args: Vec<String>,
}

/// A carl started with [`Carl::spawn`], for tests that signal or kill it.
pub struct RunningCarl {
    pub child: std::process::Child,
    what: String,
}

impl RunningCarl {
    /// Waits for carl to end and checks its output for secrets.
    pub fn wait(self) -> std::process::Output {
        let output = self.child.wait_with_output().expect("wait for carl");
        assert_no_secret(
            &self.what,
            "stdout",
            &String::from_utf8_lossy(&output.stdout),
        );
        assert_no_secret(
            &self.what,
            "stderr",
            &String::from_utf8_lossy(&output.stderr),
        );
        output
    }
}

impl Carl {
    pub fn arg(&mut self, arg: impl AsRef<OsStr>) -> &mut Self {
        self.args.push(arg.as_ref().to_string_lossy().into_owned());
        self.cmd.arg(arg);
        self
    }

    pub fn args<I, S>(&mut self, args: I) -> &mut Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        for a in args {
            self.arg(a);
        }
        self
    }

    /// Sets a variable; one whose name says it holds a secret (`*_KEY`, `*_PASSWORD`,
    /// `*_SECRET`, `*_TOKEN`) joins the secrets searched for.
    pub fn env(&mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> &mut Self {
        let name = key.as_ref().to_string_lossy().to_ascii_uppercase();
        if ["KEY", "PASSWORD", "SECRET", "TOKEN"]
            .iter()
            .any(|s| name.ends_with(s))
            && !name.starts_with("CARL_")
        {
            add_secret(&value.as_ref().to_string_lossy());
        }
        self.cmd.env(key, value);
        self
    }

    pub fn env_remove(&mut self, key: impl AsRef<OsStr>) -> &mut Self {
        self.cmd.env_remove(key);
        self
    }

    pub fn current_dir(&mut self, dir: impl AsRef<Path>) -> &mut Self {
        self.cmd.current_dir(dir);
        self
    }

    /// Starts carl with its output captured.
    pub fn spawn(&mut self) -> RunningCarl {
        use std::process::Stdio;
        let child = self
            .cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start carl");
        RunningCarl {
            child,
            what: format!("carl {}", self.args.join(" ")),
        }
    }

    /// Starts carl with its output thrown away: for long runs a test only kills (a
    /// captured output nobody reads would fill its pipe and stall carl).
    pub fn spawn_unheard(&mut self) -> std::process::Child {
        use std::process::Stdio;
        self.cmd
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start carl")
    }

    /// Runs carl, checks its output for secrets, and returns it for assertions.
    pub fn assert(&mut self) -> assert_cmd::assert::Assert {
        let cmd = std::mem::replace(&mut self.cmd, std::process::Command::new("false"));
        let assert = Command::from_std(cmd).assert();
        let output = assert.get_output();
        let what = format!("carl {}", self.args.join(" "));
        let dumps_secrets = self.args.first().is_some_and(|a| a == "dump")
            && !self.args.iter().any(|a| a == "--redact-secrets")
            && !self.args.iter().any(|a| a == "-o" || a == "--output");
        if !dumps_secrets {
            assert_no_secret(&what, "stdout", &String::from_utf8_lossy(&output.stdout));
        }
        assert_no_secret(&what, "stderr", &String::from_utf8_lossy(&output.stderr));
        if let Some(i) = self.args.iter().position(|a| a == "--out")
            && let Some(file) = self.args.get(i + 1)
            && let Ok(text) = std::fs::read_to_string(file)
        {
            assert_no_secret(&what, file, &text);
        }
        assert
    }
}

/// Fails when `text` holds any secret value the suite uses.
#[track_caller]
pub fn assert_no_secret(what: &str, place: &str, text: &str) {
    let secrets = SECRETS.lock().unwrap_or_else(|e| e.into_inner());
    for secret in secrets.iter() {
        assert!(
            !text.contains(secret.as_str()),
            "{what}: the secret {secret:?} appears in its {place}:\n{text}"
        );
    }
}

/// The secret values the suite uses: collected from the fixtures, from every file a
/// test writes with [`write`], and from secret-named variables given to carl.
pub fn secrets() -> BTreeSet<String> {
    SECRETS.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

static SECRETS: LazyLock<Mutex<BTreeSet<String>>> = LazyLock::new(|| {
    let mut found = BTreeSet::new();
    let mut dirs = vec![PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/good")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir)
            .expect("fixtures directory")
            .flatten()
        {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else if let Ok(text) = std::fs::read_to_string(&path) {
                found.extend(secrets_in(&text));
            }
        }
    }
    Mutex::new(found)
});

fn add_secret(value: &str) {
    if is_secret_value(value) {
        SECRETS
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(value.to_owned());
    }
}

/// Values worth searching for: not placeholders (`${VAR}`, vault references), not so
/// short or common that they would turn up by chance.
fn is_secret_value(v: &str) -> bool {
    v.len() >= 6
        && !v.contains("${")
        && !v.starts_with("{vault://")
        && !["true", "false", "null"].contains(&v)
}

/// The secret values in a desired-state file (YAML or JSON), found by reading its text
/// rather than through carl's own idea of what is secret: the values of credential
/// keys, passwords and secrets, and the body of every PEM private key.
pub fn secrets_in(text: &str) -> Vec<String> {
    const NAMES: &[&str] = &[
        "key",
        "password",
        "secret",
        "client_secret",
        "private_key",
        "jwk",
        "token",
        "api_key",
        "access_token",
    ];
    let mut out = Vec::new();
    let mut in_private_key = false;
    // The sections (`jwt_secrets:`) enclosing the line, by indentation.
    let mut sections: Vec<(usize, String)> = Vec::new();
    for line in text.lines() {
        let t = line.trim().trim_start_matches("- ").trim();
        // A list item's content sits deeper than the `- `, under the list's key.
        let indent = line.len() - t.len();
        sections.retain(|(i, _)| *i < indent);
        if let Some((name, rest)) = t.split_once(':')
            && ["", "[", "{"].contains(&rest.trim())
        {
            sections.push((indent, name.trim_matches('"').to_owned()));
        }
        if t.contains("PRIVATE KEY-----") {
            in_private_key = t.contains("BEGIN");
            continue;
        }
        if in_private_key {
            // A line of the key's base64 body (JSON files hold the PEM on one line).
            if t.len() >= 40 {
                out.push(t.to_owned());
            }
            continue;
        }
        if let Some(pem) = t.split("PRIVATE KEY-----").nth(1)
            && let Some(body) = pem.split("-----END").next()
        {
            let body = body.replace("\\n", "\n");
            out.extend(
                body.split('\n')
                    .map(str::trim)
                    .filter(|l| l.len() >= 40)
                    .map(str::to_owned),
            );
        }
        let Some((name, value)) = t.split_once(':') else {
            continue;
        };
        let name = name.trim().trim_matches(['"', '\'']);
        let value = value
            .trim()
            .trim_end_matches(',')
            .trim()
            .trim_matches(['"', '\'']);
        // `${VAR:-default}`: the default is the value used when VAR is unset.
        let value = value
            .strip_prefix("${")
            .and_then(|v| v.strip_suffix('}'))
            .and_then(|v| v.split_once(":-"))
            .map_or(value, |(_, default)| default);
        // A JWT credential's `key` is its `iss` claim, public in every token.
        let jwt_key = name == "key" && sections.last().is_some_and(|(_, s)| s == "jwt_secrets");
        if NAMES.contains(&name) && !jwt_key && is_secret_value(value) {
            out.push(value.to_owned());
        }
    }
    out
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
/// Its secrets join those the suite searches carl's output for.
pub fn write(dir: &Path, name: &str, text: &str) -> String {
    for secret in secrets_in(text) {
        add_secret(&secret);
    }
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write desired-state file");
    path.display().to_string()
}
