//! `kong-sim`: run the emulator until SIGINT/SIGTERM.

use std::io::Write;
use std::net::SocketAddr;

use clap::Parser;

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
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let config = kong_sim::SimConfig {
        listen: args.listen,
        kong_version: args.kong_version,
        latency_ms: args.latency_ms,
        db_less: args.db_less,
    };
    let sim = match kong_sim::start(config).await {
        Ok(sim) => sim,
        Err(e) => {
            eprintln!("kong-sim: cannot listen on {}: {e}", args.listen);
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
