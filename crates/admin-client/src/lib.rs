//! Every HTTP call carl makes to the Kong Admin API.
//!
//! Nothing else in carl speaks HTTP. This crate reads the live state (all pages of every
//! kind, kinds fetched concurrently), writes single entities (`PUT`, `PATCH`, `DELETE`),
//! and turns Kong's error bodies into [`Error`] values that say what happened.

mod error;

use std::sync::Once;
use std::time::Duration;

use carl_model::{Kind, LiveState, Object, Schema};
use futures_util::stream::{self, StreamExt, TryStreamExt};
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde_json::Value;

pub use error::Error;

/// The largest page Kong serves (`size` 1..1000): the fewest requests per kind.
pub const PAGE_SIZE: usize = 1000;

/// Installs the ring crypto provider for rustls once per process. reqwest is built
/// without a provider (crates.md §2), so this must run before any client is built.
pub fn init_crypto() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // Err means another provider is already installed, which is just as good.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// How to reach the Admin API.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Base URL, e.g. `http://localhost:8001`.
    pub addr: String,
    /// Per-request timeout.
    pub timeout: Duration,
    /// Extra headers sent with every request (`Kong-Admin-Token`, ...).
    pub headers: Vec<(String, String)>,
    /// Most requests in flight at once when reading.
    pub parallelism: usize,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            addr: "http://localhost:8001".into(),
            timeout: Duration::from_secs(30),
            headers: Vec::new(),
            parallelism: 10,
        }
    }
}

/// A client for one Kong Admin API.
#[derive(Debug, Clone)]
pub struct AdminClient {
    http: reqwest::Client,
    base: String,
    parallelism: usize,
}

#[derive(Deserialize)]
struct Page {
    data: Vec<Object>,
    next: Option<String>,
}

impl AdminClient {
    pub fn new(config: &ClientConfig) -> Result<AdminClient, Error> {
        init_crypto();
        let base = config.addr.trim_end_matches('/').to_owned();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(Error::Config(format!(
                "Kong address '{}' must start with http:// or https://",
                config.addr
            )));
        }
        let mut headers = reqwest::header::HeaderMap::new();
        for (name, value) in &config.headers {
            let name = reqwest::header::HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| Error::Config(format!("invalid header name '{name}'")))?;
            let value = reqwest::header::HeaderValue::from_str(value)
                .map_err(|_| Error::Config(format!("invalid value for header '{name}'")))?;
            headers.insert(name, value);
        }
        let http = reqwest::Client::builder()
            .user_agent(concat!("carl/", env!("CARGO_PKG_VERSION")))
            .timeout(config.timeout)
            .default_headers(headers)
            .build()
            .map_err(|e| Error::Config(format!("cannot build the HTTP client: {e}")))?;
        Ok(AdminClient {
            http,
            base,
            parallelism: config.parallelism.max(1),
        })
    }

    /// The base URL requests go to.
    pub fn addr(&self) -> &str {
        &self.base
    }

    /// `GET /`: Kong's version, edition and configuration.
    pub async fn node_info(&self) -> Result<Value, Error> {
        self.request(Method::GET, "/", None).await
    }

    /// Kong's schema for `kind` (`GET /schemas/{kind}`).
    pub async fn schema(&self, kind: Kind) -> Result<Schema, Error> {
        let path = format!("/schemas/{}", kind.dao());
        let raw = self.request(Method::GET, &path, None).await?;
        Schema::from_json(raw).map_err(|e| Error::Decode { path, message: e })
    }

    /// Validates `body` as an insert of `kind` with the gateway's own schemas
    /// (`POST /schemas/{entity}/validate`, or `/schemas/plugins/validate` for plugins):
    /// `Ok(None)` when valid, `Ok(Some(fields))` with Kong's error tree when not.
    pub async fn validate(&self, kind: Kind, body: &Object) -> Result<Option<Value>, Error> {
        let path = match kind {
            Kind::Plugin => "/schemas/plugins/validate".to_owned(),
            _ => format!("/schemas/{}/validate", kind.dao()),
        };
        match self.request(Method::POST, &path, Some(body)).await {
            Ok(_) => Ok(None),
            Err(Error::Api {
                status: 400, body, ..
            }) => Ok(Some(body.get("fields").cloned().unwrap_or(Value::Null))),
            Err(e) => Err(e),
        }
    }

    /// Every entity of `kind`, following `next` through pages of [`PAGE_SIZE`].
    pub async fn list_all(&self, kind: Kind) -> Result<Vec<Object>, Error> {
        self.list_tagged(kind, &[]).await
    }

    /// Every entity of `kind` carrying all of `tags` (Kong filters with `?tags=a,b`).
    pub async fn list_tagged(&self, kind: Kind, tags: &[String]) -> Result<Vec<Object>, Error> {
        let mut out = Vec::new();
        let mut path = format!("/{}?size={PAGE_SIZE}", kind.path());
        if !tags.is_empty() {
            path.push_str(&format!("&tags={}", escape_query(&tags.join(","))));
        }
        // A `next` that never ends would loop forever; Kong's cannot exceed this.
        let mut pages_left = 1_000_000usize;
        loop {
            let body = self.request(Method::GET, &path, None).await?;
            let page: Page = serde_json::from_value(body).map_err(|e| Error::Decode {
                path: path.clone(),
                message: format!("not a page of {}: {e}", kind.path()),
            })?;
            out.extend(page.data);
            match page.next {
                Some(next) if pages_left > 0 => {
                    pages_left -= 1;
                    path = next;
                }
                _ => break,
            }
        }
        Ok(out)
    }

    /// The live state of `kinds`, kinds read concurrently.
    pub async fn read_state(&self, kinds: &[Kind]) -> Result<LiveState, Error> {
        self.read_state_tagged(kinds, &[]).await
    }

    /// The live state of `kinds` limited to entities carrying all of `tags` (select
    /// tags, DESIGN.md decision 7); kinds read concurrently.
    pub async fn read_state_tagged(
        &self,
        kinds: &[Kind],
        tags: &[String],
    ) -> Result<LiveState, Error> {
        let pages: Vec<(Kind, Vec<Object>)> = stream::iter(kinds.iter().copied())
            .map(|kind| async move { Ok::<_, Error>((kind, self.list_tagged(kind, tags).await?)) })
            .buffer_unordered(self.parallelism)
            .try_collect()
            .await?;
        Ok(LiveState {
            entities: pages.into_iter().collect(),
        })
    }

    /// `PUT /{kind}/{id}`: creates or wholly replaces the entity with this id.
    pub async fn put(&self, kind: Kind, id: &str, body: &Object) -> Result<Object, Error> {
        let path = format!("/{}/{id}", kind.path());
        into_object(&path, self.request(Method::PUT, &path, Some(body)).await?)
    }

    /// `PATCH /{kind}/{id}`: changes only the fields in `body`.
    pub async fn patch(&self, kind: Kind, id: &str, body: &Object) -> Result<Object, Error> {
        let path = format!("/{}/{id}", kind.path());
        into_object(&path, self.request(Method::PATCH, &path, Some(body)).await?)
    }

    /// `DELETE /{kind}/{id}`; an entity already gone (404) counts as deleted.
    pub async fn delete(&self, kind: Kind, id: &str) -> Result<(), Error> {
        let path = format!("/{}/{id}", kind.path());
        match self.request(Method::DELETE, &path, None).await {
            Ok(_) => Ok(()),
            Err(Error::Api { status, .. }) if status == StatusCode::NOT_FOUND.as_u16() => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn request(
        &self,
        method: Method,
        path: &str,
        body: Option<&Object>,
    ) -> Result<Value, Error> {
        let url = format!("{}{path}", self.base);
        let mut req = self.http.request(method.clone(), &url);
        if let Some(body) = body {
            req = req.json(body);
        }
        tracing::debug!(%method, path, "request");
        let response = req
            .send()
            .await
            .map_err(|e| Error::transport(&method, path, &self.base, e))?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| Error::transport(&method, path, &self.base, e))?;
        tracing::debug!(%method, path, status = status.as_u16(), "response");
        if status.is_success() {
            if bytes.is_empty() {
                return Ok(Value::Null);
            }
            return serde_json::from_slice(&bytes).map_err(|e| Error::Decode {
                path: path.to_owned(),
                message: format!("response is not JSON: {e}"),
            });
        }
        Err(Error::api(method, path, status, &bytes))
    }
}

/// Percent-encodes a query value (everything but unreserved characters and `,`).
fn escape_query(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b',') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn into_object(path: &str, value: Value) -> Result<Object, Error> {
    match value {
        Value::Object(o) => Ok(o),
        other => Err(Error::Decode {
            path: path.to_owned(),
            message: format!("expected an entity, got {other}"),
        }),
    }
}
