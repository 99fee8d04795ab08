//! `kong-sim`: run the emulator until SIGINT/SIGTERM.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;

// mimalloc, as carl has: the benches run kong-sim beside carl on the same cores, and
// with glibc's malloc a fifth of kong-sim's CPU went to the allocator
// (`_int_malloc`, `malloc_consolidate`), more as its heap grew (docs/performance.md).
// `--features system-alloc` builds without it, for heaptrack, as carl's does.
#[cfg(not(feature = "system-alloc"))]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(name = "kong-sim", version, about = "A Kong 3.x Admin API emulator")]
struct Args {
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, env = "KONG_SIM_LISTEN", default_value = "127.0.0.1:8001")]
    listen: SocketAddr,
    /// Kong version to report.
    #[arg(long, env = "KONG_SIM_KONG_VERSION", default_value = "3.9.1")]
    kong_version: String,
    /// Latency added to every Admin API request, in milliseconds.
    #[arg(long, env = "KONG_SIM_LATENCY_MS", default_value_t = 0)]
    latency_ms: u64,
    /// Emulate DB-less mode (`database = off`): writes refused, `POST /config` loads.
    #[arg(long, env = "KONG_SIM_DB_LESS")]
    db_less: bool,
    /// Serve HTTPS with this PEM certificate (chain); needs --tls-key.
    #[arg(
        long,
        env = "KONG_SIM_TLS_CERT",
        requires = "tls_key",
        value_name = "PEM"
    )]
    tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(
        long,
        env = "KONG_SIM_TLS_KEY",
        requires = "tls_cert",
        value_name = "PEM"
    )]
    tls_key: Option<PathBuf>,
    /// Require client certificates signed by this PEM CA (mTLS); needs --tls-cert.
    #[arg(
        long,
        env = "KONG_SIM_CLIENT_CA",
        requires = "tls_cert",
        value_name = "PEM"
    )]
    client_ca: Option<PathBuf>,
    /// Require `Kong-Admin-Token: TOKEN` on every Admin API request (as Kong
    /// Enterprise RBAC does); 401 otherwise.
    #[arg(long, env = "KONG_SIM_ADMIN_TOKEN", value_name = "TOKEN")]
    admin_token: Option<String>,
    /// Accept these workspace names as a path prefix (`/default/services`), as Kong
    /// Enterprise does.
    #[arg(
        long,
        env = "KONG_SIM_WORKSPACES",
        value_delimiter = ',',
        value_name = "NAME,..."
    )]
    workspaces: Vec<String>,
    /// Jitter added to or taken from the latency, in milliseconds.
    #[arg(long, env = "KONG_SIM_JITTER_MS", default_value_t = 0)]
    jitter_ms: u64,
    /// Share of requests answered with 500, 502, 503 or 504 (0.0 to 1.0).
    #[arg(long, env = "KONG_SIM_FAULT_RATE", default_value_t = 0.0)]
    fault_rate: f64,
    /// Seed of the fault generator, for repeatable runs.
    #[arg(long, env = "KONG_SIM_SEED", default_value_t = 0)]
    seed: u64,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let listen = args.listen;
    let config = kong_sim::SimConfig {
        listen: args.listen,
        kong_version: args.kong_version,
        latency_ms: args.latency_ms,
        db_less: args.db_less,
        tls: match (args.tls_cert, args.tls_key) {
            (Some(cert), Some(key)) => Some(kong_sim::TlsFiles {
                cert,
                key,
                client_ca: args.client_ca,
            }),
            _ => None,
        },
        admin_token: args.admin_token,
        workspaces: args.workspaces,
        faults: kong_sim::FaultConfig {
            jitter_ms: args.jitter_ms,
            error_rate: args.fault_rate,
            seed: args.seed,
            ..kong_sim::FaultConfig::default()
        },
    };
    let sim = match kong_sim::start(config).await {
        Ok(sim) => sim,
        Err(e) => {
            eprintln!("kong-sim: cannot start on {listen}: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    {
        // Scripts wait for exactly this line.
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "listening on {}", sim.url());
        let _ = out.flush();
    }
    wait_for_signal().await;
    sim.shutdown().await;
    std::process::ExitCode::SUCCESS
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
