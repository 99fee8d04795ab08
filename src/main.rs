//! The `carl` binary: flags, output and exit codes. The work is done by the crates in
//! `crates/`; see docs/ARCHITECTURE.md.

mod apply;
mod cli;
mod connect;
mod docs;
mod gateway;
mod output;
mod reconcile;

use std::process::ExitCode;

use clap::Parser;

/// Exit codes (DESIGN.md): 0 done or no changes, 1 error, 2 changes or drift, 130
/// an apply stopped by Ctrl-C (the shell's code for SIGINT).
pub const EXIT_OK: u8 = 0;
pub const EXIT_ERROR: u8 = 1;
pub const EXIT_CHANGES: u8 = 2;
pub const EXIT_INTERRUPTED: u8 = 130;

fn main() -> ExitCode {
    // clap exits 2 on a usage error, which carl reserves for "changes"/"drift".
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { EXIT_ERROR } else { EXIT_OK });
        }
    };
    if cli.global.no_color {
        anstream::ColorChoice::Never.write_global();
    }
    init_logging(&cli.global);
    carl_admin_client::init_crypto();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            anstream::eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(EXIT_ERROR);
        }
    };
    let code = runtime.block_on(async {
        match cli.command {
            cli::Command::Reconcile(args) => reconcile::run(&cli.global, &args).await,
            cli::Command::Validate(args) => reconcile::validate(&cli.global, &args).await,
            cli::Command::Ping(args) => gateway::ping(&cli.global, &args).await,
            cli::Command::Dump(args) => gateway::dump(&cli.global, &args).await,
            cli::Command::Completions(args) => docs::completions(args.shell),
            cli::Command::Man(args) => docs::man(&args.dir),
        }
    });
    ExitCode::from(code)
}

fn init_logging(global: &cli::GlobalArgs) {
    let level = if global.quiet {
        "error"
    } else {
        match global.verbose {
            0 => "warn",
            1 => "info",
            2 => "debug",
            _ => "trace",
        }
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("CARL_LOG").unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(format!("{level},hyper=warn,reqwest=warn"))
    });
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .without_time()
        // Colour only on a terminal: CI logs and files get plain text.
        .with_ansi(
            !global.no_color
                && std::env::var_os("NO_COLOR").is_none()
                && std::io::IsTerminal::is_terminal(&std::io::stderr()),
        )
        .init();
}

// mimalloc: a quarter less CPU and RSS than glibc's malloc on a large gateway
// (docs/performance.md), and musl's malloc, for the static build, is slower still.
// Built without transparent huge pages (`no_thp`): with them, every page the heap
// touches afresh is a 2 MiB page the kernel zeroes, a fifth of a large plan's CPU.
#[cfg(not(feature = "system-alloc"))]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
