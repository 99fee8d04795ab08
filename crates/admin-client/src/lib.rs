//! Every HTTP call carl makes to the Kong Admin API.
//!
//! Nothing else in carl speaks HTTP. This crate reads the live state (all pages of every
//! kind, kinds fetched concurrently), writes single entities (`PUT`, `PATCH`, `DELETE`),
//! and turns Kong's error bodies into [`Error`] values that say what happened.

mod config;
mod connect;
mod error;
mod gateway;
mod ping;
mod retry;

use std::sync::{Arc, Once, OnceLock};
use std::time::Duration;

use carl_model::{Kind, LiveState, Object, Schema};
use futures_util::stream::StreamExt;
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde_json::Value;

pub use config::Loaded;
pub use connect::{Pem, TlsConfig};
pub use error::{EntityErrors, Error, FieldError};
pub use gateway::{Gateway, KongVersion, SUPPORTED, Support};
pub use ping::Ping;
pub use retry::RetryConfig;

/// The largest page Kong serves (`size` 1..1000): the fewest requests per kind.
pub const PAGE_SIZE: usize = 1000;

/// The most pages carl follows in one read: more is not a gateway (a billion
/// entities) but an Admin API whose `next` never ends, and the read fails.
const MAX_PAGES: usize = 1_000_000;

/// The largest answer carl reads by default: Kong's largest page (1,000 plugins with
/// big configurations) is a few megabytes; more is not an Admin API answer.
pub const MAX_RESPONSE_BYTES: usize = 256 << 20;

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
    /// Kong Enterprise workspace: requests go to `/{workspace}/...`.
    pub workspace: Option<String>,
    pub tls: TlsConfig,
    pub retry: RetryConfig,
    /// Answers larger than this are refused unread ([`MAX_RESPONSE_BYTES`]).
    pub max_response_bytes: usize,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            addr: "http://localhost:8001".into(),
            timeout: Duration::from_secs(30),
            headers: Vec::new(),
            parallelism: 10,
            workspace: None,
            tls: TlsConfig::default(),
            retry: RetryConfig::default(),
            max_response_bytes: MAX_RESPONSE_BYTES,
        }
    }
}

/// A client for one Kong Admin API.
#[derive(Debug, Clone)]
pub struct AdminClient {
    http: reqwest::Client,
    base: String,
    parallelism: usize,
    retry: RetryConfig,
    tls: TlsConfig,
    /// `/{workspace}` when one is set: Kong's `next` links may carry it already.
    prefix: String,
    /// The base URL without the workspace: where node-level `GET /` lives.
    root: String,
    /// Kong's version once [`AdminClient::gateway`] has read it: which kinds exist and
    /// where they live. Shared by clones.
    version: Arc<OnceLock<KongVersion>>,
    /// HTTP requests sent, retries included; shared by clones.
    sent: Arc<std::sync::atomic::AtomicU64>,
    /// Whether the Admin API has answered once: a connection closed after that is the
    /// network, not a refused certificate.
    answered: Arc<std::sync::atomic::AtomicBool>,
    max_response_bytes: usize,
}

#[derive(Deserialize)]
struct Page {
    data: Vec<Object>,
    next: Option<String>,
}

impl AdminClient {
    pub fn new(config: &ClientConfig) -> Result<AdminClient, Error> {
        init_crypto();
        let connection = connect::build(
            &config.addr,
            config.workspace.as_deref(),
            &config.tls,
            &config.headers,
            config.timeout,
        )?;
        let prefix = config
            .workspace
            .as_deref()
            .filter(|w| !w.is_empty())
            .map(|w| format!("/{w}"))
            .unwrap_or_default();
        Ok(AdminClient {
            http: connection.http,
            root: connection
                .base
                .strip_suffix(&prefix)
                .unwrap_or(&connection.base)
                .to_owned(),
            base: connection.base,
            parallelism: config.parallelism.max(1),
            retry: config.retry.clone(),
            tls: config.tls.clone(),
            prefix,
            version: Arc::default(),
            sent: Arc::default(),
            answered: Arc::default(),
            max_response_bytes: config.max_response_bytes,
        })
    }

    /// The base URL requests go to.
    pub fn addr(&self) -> &str {
        &self.base
    }

    /// How many HTTP requests this client and its clones have sent, retries included.
    pub fn requests_sent(&self) -> u64 {
        self.sent.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// `GET /`: Kong's version, edition and configuration.
    pub async fn node_info(&self) -> Result<Value, Error> {
        self.request(Method::GET, "/", None).await
    }

    /// `GET /` read as [`Gateway`]; from then on this client (and its clones) shapes
    /// reads for that version. An RBAC user without rights on `/` (403) gets a gateway
    /// of unknown version, which carl treats as the newest it knows, with a warning.
    pub async fn gateway(&self) -> Result<Gateway, Error> {
        let info = match self.node_info().await {
            Ok(info) => info,
            Err(Error::Api { status: 403, .. }) => Value::Null,
            Err(e) => return Err(e),
        };
        Ok(self.remember(Gateway::from_root(&info)))
    }

    /// Keeps `gateway`'s version to shape later reads (first one read wins).
    pub(crate) fn remember(&self, gateway: Gateway) -> Gateway {
        if let Some(v) = gateway.version {
            let _ = self.version.set(v);
        }
        gateway
    }

    /// The version requests are shaped for: the gateway's once read, else the newest.
    fn kong(&self) -> KongVersion {
        self.version
            .get()
            .copied()
            .unwrap_or(KongVersion::NEWEST_KNOWN)
    }

    /// Kong's schema for `kind` (`GET /schemas/{kind}`).
    pub async fn schema(&self, kind: Kind) -> Result<Schema, Error> {
        let path = format!("/schemas/{}", kind.dao());
        let raw = self.request(Method::GET, &path, None).await?;
        Schema::from_json(raw).map_err(|e| Error::Decode { path, message: e })
    }

    /// Plugin `name`'s own schema (`GET /schemas/plugins/{name}`).
    pub async fn plugin_schema(&self, name: &str) -> Result<Schema, Error> {
        let path = format!("/schemas/plugins/{}", escape_query(name));
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
        let collection = self.kong().path(kind);
        self.all_pages(
            self.list_path(kind, tags),
            collection,
            |_| true,
            |page| out.extend(page),
        )
        .await?;
        Ok(out)
    }

    /// The first page of `kind`'s collection, filtered by `tags`.
    fn list_path(&self, kind: Kind, tags: &[String]) -> String {
        let mut path = format!("/{}?size={PAGE_SIZE}", self.kong().path(kind));
        if !tags.is_empty() {
            path.push_str(&format!("&tags={}", escape_query(&tags.join(","))));
        }
        path
    }

    /// Every page from `path` on, following `next`: the entities `keep` accepts, page
    /// by page, to `sink`.
    async fn all_pages(
        &self,
        mut path: String,
        what: &str,
        keep: impl Fn(&Object) -> bool,
        mut sink: impl FnMut(Vec<Object>),
    ) -> Result<(), Error> {
        let mut chain = Chain::default();
        loop {
            let page = self.page(&path, what).await?;
            sink(page.data.into_iter().filter(|e| keep(e)).collect());
            match page.next {
                Some(next) => path = chain.follow(what, self.relative(next))?,
                None => break,
            }
        }
        Ok(())
    }

    /// One page, straight from the bytes into entities: no intermediate `Value`.
    async fn page(&self, path: &str, what: &str) -> Result<Page, Error> {
        let bytes = self
            .retry
            .run(|| self.send_once(Method::GET, path, None))
            .await?;
        let page: Page = serde_json::from_slice(&bytes).map_err(|e| Error::Decode {
            path: path.to_owned(),
            message: format!("not a page of {what}: {e}"),
        })?;
        // carl asks for pages of PAGE_SIZE: a longer one is not Kong's paging.
        if page.data.len() > PAGE_SIZE {
            return Err(Error::Decode {
                path: path.to_owned(),
                message: format!(
                    "a page of {} {what}, more than the {PAGE_SIZE} asked for",
                    page.data.len()
                ),
            });
        }
        Ok(page)
    }

    /// The live state of `kinds`, kinds read concurrently.
    pub async fn read_state(&self, kinds: &[Kind]) -> Result<LiveState, Error> {
        self.read_state_tagged(kinds, &[]).await
    }

    /// The live state of `kinds` limited to entities carrying all of `tags` (select
    /// tags, DESIGN.md decision 7). Kinds the gateway's version does not have (keys
    /// before 3.1) are read as empty.
    ///
    /// One scheduler keeps `parallelism` requests in flight: every kind follows its
    /// pages (one page of a kind at a time: `next` comes with the page), and targets,
    /// which Kong serves only under their upstream, take one request per upstream as
    /// soon as the page naming that upstream arrives. Pages go first when a slot frees:
    /// a kind's pages are a chain whose length bounds the read, the targets are not.
    pub async fn read_state_tagged(
        &self,
        kinds: &[Kind],
        tags: &[String],
    ) -> Result<LiveState, Error> {
        use futures_util::future::{BoxFuture, FutureExt};
        use futures_util::stream::FuturesUnordered;
        use std::collections::VecDeque;

        enum Done {
            Page(Kind, Page),
            Targets(Vec<Object>),
        }

        let kong = self.kong();
        let want = |k: Kind| kinds.contains(&k) && kong.has(k);
        let want_targets = want(Kind::Target);
        let mut live = LiveState::default();
        // Upstreams first: their pages start the targets' requests.
        let mut pages: VecDeque<(Kind, String)> = Kind::ALL
            .iter()
            .copied()
            .filter(|&k| k != Kind::Target && (want(k) || (k == Kind::Upstream && want_targets)))
            .map(|k| (k, self.list_path(k, tags)))
            .collect();
        pages
            .make_contiguous()
            .sort_by_key(|(k, _)| *k != Kind::Upstream);
        for (kind, _) in &pages {
            live.touch(*kind);
        }
        if want_targets {
            live.touch(Kind::Target);
        }
        let mut upstreams: VecDeque<String> = VecDeque::new();
        let mut in_flight: FuturesUnordered<BoxFuture<'_, Result<Done, Error>>> =
            FuturesUnordered::new();
        let mut chains: std::collections::HashMap<Kind, Chain> = Default::default();
        loop {
            while in_flight.len() < self.parallelism {
                if let Some((kind, path)) = pages.pop_front() {
                    in_flight.push(
                        async move {
                            let page = self.page(&path, kong.path(kind)).await?;
                            Ok(Done::Page(kind, page))
                        }
                        .boxed(),
                    );
                } else if let Some(id) = upstreams.pop_front() {
                    in_flight.push(
                        async move { Ok(Done::Targets(self.targets_of(&id, tags).await?)) }.boxed(),
                    );
                } else {
                    break;
                }
            }
            let Some(done) = in_flight.next().await else {
                break;
            };
            match done? {
                Done::Page(kind, page) => {
                    if kind == Kind::Upstream && want_targets {
                        upstreams.extend(page.data.iter().filter_map(|u| {
                            u.get("id").and_then(Value::as_str).map(str::to_owned)
                        }));
                    }
                    live.extend(kind, page.data);
                    if let Some(next) = page.next {
                        let next = chains
                            .entry(kind)
                            .or_default()
                            .follow(kong.path(kind), self.relative(next))?;
                        pages.push_back((kind, next));
                    }
                }
                Done::Targets(targets) => live.extend(Kind::Target, targets),
            }
        }
        if want_targets && !want(Kind::Upstream) {
            live.remove(Kind::Upstream);
        }
        Ok(live)
    }

    /// An upstream's targets (`GET /upstreams/{id}/targets`, every page), those
    /// carrying all of `tags`: Kong does not filter this endpoint by tags.
    async fn targets_of(&self, upstream: &str, tags: &[String]) -> Result<Vec<Object>, Error> {
        let path = format!("/upstreams/{upstream}/targets?size={PAGE_SIZE}");
        let mut out = Vec::new();
        self.all_pages(
            path,
            "targets",
            |t| has_tags(t, tags),
            |page| out.extend(page),
        )
        .await?;
        Ok(out)
    }

    /// `PUT /{kind}/{id}`: creates or wholly replaces the entity with this id.
    pub async fn put(&self, kind: Kind, id: &str, body: &Object) -> Result<Object, Error> {
        self.put_at(&format!("/{}/{id}", kind.path()), body).await
    }

    /// `PATCH /{kind}/{id}`: changes only the fields in `body`.
    pub async fn patch(&self, kind: Kind, id: &str, body: &Object) -> Result<Object, Error> {
        self.patch_at(&format!("/{}/{id}", kind.path()), body).await
    }

    /// `DELETE /{kind}/{id}`; an entity already gone (404) counts as deleted.
    pub async fn delete(&self, kind: Kind, id: &str) -> Result<(), Error> {
        self.delete_at(&format!("/{}/{id}", kind.path())).await
    }

    /// `PUT {path}` (an entity path such as `/services/{id}`).
    pub async fn put_at(&self, path: &str, body: &Object) -> Result<Object, Error> {
        into_object(path, self.request(Method::PUT, path, Some(body)).await?)
    }

    /// `PATCH {path}`: changes only the fields in `body` (Kong merges records).
    pub async fn patch_at(&self, path: &str, body: &Object) -> Result<Object, Error> {
        into_object(path, self.request(Method::PATCH, path, Some(body)).await?)
    }

    /// Creates the `kind` entity at `path` (`/services/{id}`) with this `id`: `PUT`,
    /// except for targets, whose `PUT` only updates (`kong/api/routes/upstreams.lua`):
    /// those are `POST`ed to their upstream's collection with the id in the body.
    pub async fn create_at(
        &self,
        kind: Kind,
        path: &str,
        id: &str,
        body: &Object,
    ) -> Result<Object, Error> {
        if kind != Kind::Target {
            return self.put_at(path, body).await;
        }
        let collection = path.rsplit_once('/').map_or(path, |(c, _)| c);
        let mut body = body.clone();
        body.insert("id".into(), id.into());
        match self.request(Method::POST, collection, Some(&body)).await {
            Ok(created) => into_object(collection, created),
            // A POST is not idempotent on the wire: when a try was applied but its
            // answer lost, the retry clashes with it. The target carl meant to create
            // exists with carl's id: that is done.
            Err(e) if e.is_clash() => match self.get_object(path).await {
                Ok(Some(existing)) => {
                    tracing::info!(path, "created by an earlier try whose answer was lost");
                    Ok(existing)
                }
                _ => Err(e),
            },
            Err(e) => Err(e),
        }
    }

    /// `GET {path}`: the entity, or `None` when Kong has no such entity (404).
    async fn get_object(&self, path: &str) -> Result<Option<Object>, Error> {
        match self.request(Method::GET, path, None).await {
            Ok(v) => into_object(path, v).map(Some),
            Err(Error::Api { status: 404, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `DELETE {path}`; an entity already gone (404) counts as deleted.
    pub async fn delete_at(&self, path: &str) -> Result<(), Error> {
        match self.request(Method::DELETE, path, None).await {
            Ok(_) => Ok(()),
            Err(Error::Api { status, .. }) if status == StatusCode::NOT_FOUND.as_u16() => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// One request, retried on connection errors, timeouts, 429, 500, 502, 503 and 504 as
    /// [`RetryConfig`] says (every request carl sends is idempotent: DESIGN.md
    /// decision 5).
    async fn request(
        &self,
        method: Method,
        path: &str,
        body: Option<&Object>,
    ) -> Result<Value, Error> {
        self.retry
            .run(|| self.request_once(method.clone(), path, body))
            .await
    }

    async fn request_once(
        &self,
        method: Method,
        path: &str,
        body: Option<&Object>,
    ) -> Result<Value, Error> {
        let bytes = self.send_once(method, path, body).await?;
        if bytes.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&bytes).map_err(|e| Error::Decode {
            path: path.to_owned(),
            message: format!("response is not JSON: {e}"),
        })
    }

    /// One try: the body of a 2xx answer, else the error.
    async fn send_once(
        &self,
        method: Method,
        path: &str,
        body: Option<&Object>,
    ) -> Result<bytes::Bytes, Error> {
        let url = self.url(path);
        self.sent.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut req = self.http.request(method.clone(), &url);
        if let Some(body) = body {
            req = req.json(body);
        }
        tracing::debug!(%method, path, "request");
        let response = req
            .send()
            .await
            .map_err(|e| self.annotate(Error::transport(&method, path, &self.base, e)))?;
        self.answered
            .store(true, std::sync::atomic::Ordering::Relaxed);
        let status = response.status();
        let retry_after = retry::retry_after(response.headers());
        let bytes = self.body(&method, path, response).await?;
        tracing::debug!(%method, path, status = status.as_u16(), "response");
        if status.is_success() {
            return Ok(bytes);
        }
        Err(Error::api(method, path, status, &bytes, retry_after))
    }
}

/// The pages of one list, as `next` links them: a link read before, or more than
/// [`MAX_PAGES`] of them, is an Admin API that would keep carl reading forever.
#[derive(Default)]
struct Chain {
    seen: std::collections::HashSet<String>,
}

impl Chain {
    fn follow(&mut self, what: &str, next: String) -> Result<String, Error> {
        if self.seen.len() >= MAX_PAGES {
            return Err(Error::Decode {
                path: next,
                message: format!("more than {MAX_PAGES} pages of {what}: the paging never ends"),
            });
        }
        if !self.seen.insert(next.clone()) {
            return Err(Error::Decode {
                message: format!("the pages of {what} loop: `next` points to a page already read"),
                path: next,
            });
        }
        Ok(next)
    }
}

impl AdminClient {
    /// An answer's body, refused past `max_response_bytes` (announced or streamed):
    /// memory stays bounded whatever the other end sends.
    async fn body(
        &self,
        method: &Method,
        path: &str,
        mut response: reqwest::Response,
    ) -> Result<bytes::Bytes, Error> {
        let max = self.max_response_bytes;
        let too_large = |n: String| Error::Decode {
            path: path.to_owned(),
            message: format!(
                "the answer is {n} bytes, more than the {} MiB carl reads",
                max >> 20
            ),
        };
        if let Some(n) = response.content_length()
            && n > max as u64
        {
            return Err(too_large(n.to_string()));
        }
        let announced = response.content_length().unwrap_or(0) as usize;
        let mut body = bytes::BytesMut::with_capacity(announced);
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| Error::transport(method, path, &self.base, e))?
        {
            if body.len() + chunk.len() > max {
                return Err(too_large(format!("over {}", body.len() + chunk.len())));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body.freeze())
    }

    /// Adds what carl knows and the error does not: over HTTPS, before the Admin API
    /// has ever answered, a connection closed right after the handshake is how a TLS
    /// 1.3 server refuses a client certificate, or the lack of one.
    pub(crate) fn annotate(&self, e: Error) -> Error {
        match e {
            Error::Transport {
                method,
                path,
                addr,
                cause,
                timeout,
                ..
            } if self.base.starts_with("https://")
                && !self.answered.load(std::sync::atomic::Ordering::Relaxed)
                && [
                    "connection closed",
                    "channel closed",
                    "connection was not ready",
                    "reset by peer",
                    // The OS says "Broken pipe"; hyper's h2 says "stream closed because
                    // of a broken pipe" when the refusal lands mid-request.
                    "broken pipe",
                    "unexpected eof",
                ]
                .iter()
                .any(|c| cause.to_ascii_lowercase().contains(c)) =>
            {
                // With TLS 1.3 the server judges the client's certificate after the
                // client thinks the handshake is done: its refusal arrives as a
                // closed connection.
                let guess = match self.tls.client_cert {
                    None => {
                        "it probably requires a client certificate (--tls-client-cert and --tls-client-key)"
                    }
                    Some(_) => {
                        "it probably refused carl's client certificate (not signed by a CA it trusts, or expired)"
                    }
                };
                Error::Transport {
                    method,
                    path,
                    addr,
                    cause: format!("the Admin API closed the TLS connection: {guess} ({cause})"),
                    timeout,
                    retryable: false,
                }
            }
            other => other,
        }
    }

    /// Where `path` is: node-level `GET /` outside any workspace, everything else
    /// under it.
    pub(crate) fn url(&self, path: &str) -> String {
        if path == "/" {
            format!("{}/", self.root)
        } else {
            format!("{}{path}", self.base)
        }
    }

    /// A `next` link as a path under the base URL (without a workspace prefix Kong
    /// may have put in it).
    fn relative(&self, next: String) -> String {
        match next.strip_prefix(&self.prefix) {
            Some(rest) if !self.prefix.is_empty() && rest.starts_with('/') => rest.to_owned(),
            _ => next,
        }
    }
}

fn has_tags(entity: &Object, tags: &[String]) -> bool {
    let have = entity.get("tags").and_then(Value::as_array);
    tags.iter()
        .all(|t| have.is_some_and(|h| h.iter().any(|v| v.as_str() == Some(t))))
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
