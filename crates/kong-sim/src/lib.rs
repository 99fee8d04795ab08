//! kong-sim: an in-memory emulator of the Kong 3.x Admin API (DB mode), for
//! carl's tests, benchmarks and demo. This cut serves services and routes.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! let sim = kong_sim::start(kong_sim::SimConfig::default()).await?;
//! println!("{}", sim.url());
//! sim.shutdown().await;
//! # Ok(())
//! # }
//! ```

mod body;
mod declarative;
mod engine;
mod errors;
pub mod faults;
mod hooks;
mod pagination;
mod router;
mod server;
mod stats;
mod store;
mod transport;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use faults::{FaultConfig, Rule};
pub use transport::TlsFiles;

/// How to run an emulator.
#[derive(Debug, Clone, PartialEq)]
pub struct SimConfig {
    /// Where to listen; port 0 picks a free port.
    pub listen: SocketAddr,
    /// Reported by `GET /` and in the `Server` header.
    pub kong_version: String,
    /// Latency added to every non-`/_sim` request.
    pub latency_ms: u64,
    /// DB-less mode (`database = off`): entity writes refused, `/config` loads.
    pub db_less: bool,
    /// Serve HTTPS (and require client certificates when a client CA is given).
    pub tls: Option<TlsFiles>,
    /// When set, every Admin API request needs `Kong-Admin-Token: <token>` (Kong
    /// Enterprise RBAC); 401 otherwise.
    pub admin_token: Option<String>,
    /// Workspace names accepted as a path prefix (`/{ws}/services`, Kong Enterprise);
    /// empty serves OSS paths only.
    pub workspaces: Vec<String>,
    /// Faults from the start (`PUT /_sim/faults` changes them later). `latency_ms`
    /// above is added to `faults.latency_ms`.
    pub faults: FaultConfig,
}

impl SimConfig {
    /// Emulating Kong 2.x: `GET /` and the collections look as they did in 2.8 (no
    /// keys or key sets, vaults as `/vaults-beta`). Writes keep 3.x rules: 2.8 mode is
    /// for testing carl's reading of old gateways.
    pub fn kong2(&self) -> bool {
        self.kong_version
            .split('.')
            .next()
            .and_then(|m| m.parse::<u32>().ok())
            .is_some_and(|m| m < 3)
    }
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            kong_version: "3.9.1".into(),
            latency_ms: 0,
            db_less: false,
            tls: None,
            admin_token: None,
            workspaces: Vec::new(),
            faults: FaultConfig::default(),
        }
    }
}

/// A listening emulator. Dropping it leaves the server running until the tokio
/// runtime ends; [`RunningSim::shutdown`] stops it.
pub struct RunningSim {
    pub addr: SocketAddr,
    tls: bool,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl RunningSim {
    /// `http://127.0.0.1:PORT` (`https://` with TLS).
    pub fn url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// Stops accepting, lets in-flight requests finish (up to 5 s), then returns.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        let _ = tokio::time::timeout(Duration::from_secs(6), &mut self.task).await;
        self.task.abort();
    }
}

/// Binds `config.listen` and serves on the current tokio runtime; returns once the
/// socket accepts connections.
pub async fn start(config: SimConfig) -> std::io::Result<RunningSim> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let tls = config.tls.as_ref().map(transport::acceptor).transpose()?;
    let listener = tokio::net::TcpListener::bind(config.listen).await?;
    let addr = listener.local_addr()?;
    let mut fault_config = config.faults.clone();
    fault_config.latency_ms += config.latency_ms;
    let faults = Arc::new(faults::Faults::new(fault_config));
    let workspaces = Arc::new(config.workspaces.clone());
    let has_tls = tls.is_some();
    let app = server::router(Arc::new(server::Sim::new(config, faults.clone())));
    let layer = transport::Layer {
        app,
        faults,
        workspaces,
    };
    let (stop, stopped) = watch::channel(false);
    let task = tokio::spawn(transport::serve(listener, tls, layer, stopped));
    Ok(RunningSim {
        addr,
        tls: has_tls,
        stop,
        task,
    })
}

/// What Kong would store for a declarative configuration, YAML or JSON (as `POST
/// /config` loads it), by kind in [`carl_model::Kind::ALL`] order, each kind in id order: a gateway
/// for in-process benchmarks of carl's planner without a server.
pub fn stored_entities(
    config: &str,
) -> Result<Vec<(carl_model::Kind, Vec<carl_model::Object>)>, String> {
    let (config, _) =
        declarative::parse_input("text/yaml", config.as_bytes()).map_err(|e| format!("{e:?}"))?;
    let store = declarative::load(&config, true).map_err(|e| format!("{e:?}"))?;
    Ok(carl_model::Kind::ALL
        .iter()
        .map(|&kind| (kind, store.table(kind).by_id.values().cloned().collect()))
        .collect())
}
