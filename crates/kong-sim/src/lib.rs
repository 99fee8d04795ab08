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
mod hooks;
mod pagination;
mod router;
mod server;
mod stats;
mod store;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// How to run an emulator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimConfig {
    /// Where to listen; port 0 picks a free port.
    pub listen: SocketAddr,
    /// Reported by `GET /` and in the `Server` header.
    pub kong_version: String,
    /// Latency added to every non-`/_sim` request.
    pub latency_ms: u64,
    /// DB-less mode (`database = off`): entity writes refused, `/config` loads.
    pub db_less: bool,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            kong_version: "3.9.1".into(),
            latency_ms: 0,
            db_less: false,
        }
    }
}

/// A listening emulator. Dropping it leaves the server running until the tokio
/// runtime ends; [`RunningSim::shutdown`] stops it.
pub struct RunningSim {
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl RunningSim {
    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting, lets in-flight requests finish (up to 5 s), then returns.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = tokio::time::timeout(Duration::from_secs(5), &mut self.task).await;
        self.task.abort();
    }
}

/// Binds `config.listen` and serves on the current tokio runtime; returns once
/// the socket accepts connections.
pub async fn start(config: SimConfig) -> std::io::Result<RunningSim> {
    let listener = tokio::net::TcpListener::bind(config.listen).await?;
    let addr = listener.local_addr()?;
    let app = server::router(Arc::new(server::Sim::new(config)));
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let signal = async move {
            // A dropped handle (Err) is not a request to stop.
            if stopped.await.is_err() {
                std::future::pending::<()>().await;
            }
        };
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(signal)
            .await;
    });
    Ok(RunningSim {
        addr,
        stop: Some(stop),
        task,
    })
}
