//! carl's development tasks, in Rust so they run wherever cargo does.
//!
//! `cargo xtask demo`: builds carl and kong-sim, starts kong-sim on a free port, and walks
//! through plan, apply, check, a blue/green switch and drift caught by `--check`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

fn main() -> ExitCode {
    let task = std::env::args().nth(1);
    let rest: Vec<String> = std::env::args().skip(2).collect();
    let result = match task.as_deref() {
        Some("demo") => demo(),
        Some("gen") => gen_task(&rest),
        Some("chaos") => chaos::run(&root(), &rest),
        Some("man") => dist::man(&root()),
        Some("dist") => dist::dist(&root(), &rest),
        Some("bench") => match rest.first().map(String::as_str) {
            Some("load") => bench::load(&root(), &rest[1..]),
            Some("plan") => bench::plan(&root(), &rest[1..]),
            None => matrix::run(&root(), &[]),
            Some(flag) if flag.starts_with("--") => matrix::run(&root(), &rest),
            _ => Err("usage: cargo xtask bench [--sizes N,N] [--latency MS,MS] \
                      [--parallelism N,N] [--scenarios noop,change,create,delete] \
                      [--max-bound S] [--runs N] [--smoke] [--plot FILE | --no-plot]\n   \
                      or: cargo xtask bench load|plan [--services N] [--runs N]"
                .into()),
        },
        Some("-h" | "--help") | None => {
            println!(
                "usage: cargo xtask <task>\n\ntasks:\n  \
                 demo    run carl against a local kong-sim: plan, apply, check, drift\n  \
                 gen     write a generated gateway: --services N [--mutate PCT] [--tag T] [--seed S] [--out FILE]\n  \
                 bench   the scenario matrix against kong-sim (no-op plan, 10% change, create, delete\n          \
                 at sizes x latencies x parallelisms; --smoke for CI); `bench load` times carl\n          \
                 validate, `bench plan` a no-op plan's phases\n  \
                 chaos   the reliability suite's long runs: faults x rates x jitter on a 2,000-service\n          \
                 apply, 20 kills; [--services N] [--only matrix|kills]\n  \
                 man     write carl's man pages to target/man/man1 and render each with man\n  \
                 dist    build the static musl carl into dist/ (installing musl-tools and the\n          \
                 target where it can), check it; --image also builds the image with podman"
            );
            Ok(())
        }
        Some(other) => Err(format!("unknown task '{other}' (try: cargo xtask --help)")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Where cargo puts its builds: `CARGO_TARGET_DIR`, else `target/` in the workspace.
fn target_dir(root: &Path) -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => root.join("target"),
    }
}

mod bench;
mod chaos;
mod dist;
use carl_testkit::generate;
mod matrix;
mod plot;

/// `cargo xtask gen`: the generated file on stdout, or in `--out FILE`.
fn gen_task(args: &[String]) -> Result<(), String> {
    let (opts, out) = generate::parse_args(args)?;
    let text = generate::generate(&opts)?;
    match out {
        Some(path) => std::fs::write(&path, text).map_err(|e| format!("{path}: {e}")),
        None => {
            print!("{text}");
            Ok(())
        }
    }
}

fn root() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    root.canonicalize().unwrap_or(root)
}

/// Stops kong-sim however the demo ends.
struct Sim(Child);

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn demo() -> Result<(), String> {
    let root = root();
    step("Building carl and kong-sim");
    let status = Command::new(env!("CARGO"))
        .args([
            "build",
            "--quiet",
            "--package",
            "carl",
            "--package",
            "kong-sim",
            "--bins",
        ])
        .current_dir(&root)
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !status.success() {
        return Err("build failed".into());
    }
    let bin = crate::target_dir(&root).join("debug");
    let (sim, addr) = start_sim(&bin.join("kong-sim"))?;
    println!("kong-sim is listening on {addr}");

    let file = root.join("gateway.yaml.example");
    let carl = |args: &[&str], env: &[(&str, &str)]| -> Result<i32, String> {
        println!(
            "\n$ {}carl {}",
            env.iter()
                .map(|(k, v)| format!("{k}={v} "))
                .collect::<String>(),
            args.join(" ")
        );
        let status = Command::new(bin.join("carl"))
            .args(args)
            .arg("-f")
            .arg(&file)
            .env("CARL_KONG_ADDR", &addr)
            .envs(env.iter().copied())
            .status()
            .map_err(|e| format!("cannot run carl: {e}"))?;
        Ok(status.code().unwrap_or(-1))
    };
    let expect = |what: &str, code: i32, want: i32| -> Result<(), String> {
        if code == want {
            Ok(())
        } else {
            Err(format!("{what}: carl exited {code}, expected {want}"))
        }
    };

    step("1. Plan against an empty gateway: everything is created");
    expect("plan", carl(&["reconcile", "--plan"], &[])?, 0)?;
    step("2. Apply it");
    expect("apply", carl(&["reconcile", "--apply"], &[])?, 0)?;
    step("3. Check: the gateway matches the file");
    expect("check", carl(&["reconcile", "--check"], &[])?, 0)?;
    step("4. Blue/green: the plan to go live with green is one field");
    expect(
        "plan green",
        carl(
            &["reconcile", "--plan", "--detailed-exitcode"],
            &[("ACTIVE_COLOR", "green")],
        )?,
        2,
    )?;
    step("5. Someone changes the gateway behind carl's back (PATCH /services/orders retries=10)");
    let (status, _) = http(
        &addr,
        "PATCH",
        "/services/orders",
        Some(r#"{"retries": 10}"#),
    )?;
    println!("PATCH /services/orders -> {status}");
    step("6. Check catches the drift (exit 2)");
    expect("drift check", carl(&["reconcile", "--check"], &[])?, 2)?;
    step("7. Apply puts it back, check is clean again");
    expect("apply", carl(&["reconcile", "--apply"], &[])?, 0)?;
    expect("check", carl(&["reconcile", "--check"], &[])?, 0)?;
    let (_, stats) = http(&addr, "GET", "/_sim/stats", None)?;
    step("kong-sim counted these requests");
    println!("{stats}");
    drop(sim);
    println!("\nDemo complete; kong-sim stopped.");
    Ok(())
}

fn step(title: &str) {
    println!("\n\x1b[1m== {title}\x1b[0m");
}

/// Starts kong-sim on a free port and waits for its `listening on URL` line.
fn start_sim(bin: &Path) -> Result<(Sim, String), String> {
    let mut child = Command::new(bin)
        .args(["--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start kong-sim: {e}"))?;
    let stdout = child.stdout.take().ok_or("kong-sim has no stdout")?;
    let sim = Sim(child);
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .map_err(|e| format!("reading kong-sim's output: {e}"))?;
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .ok_or_else(|| format!("unexpected first line from kong-sim: {line:?}"))?
        .to_owned();
    Ok((sim, addr))
}

/// One plain HTTP/1.1 request: enough for the demo's direct Admin API calls.
fn http(addr: &str, method: &str, path: &str, body: Option<&str>) -> Result<(u16, String), String> {
    let host = addr.trim_start_matches("http://").trim_end_matches('/');
    let mut stream = TcpStream::connect(host).map_err(|e| format!("connect {host}: {e}"))?;
    let deadline = Instant::now() + Duration::from_secs(10);
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    let body = body.unwrap_or("");
    let content_type = if body.is_empty() {
        ""
    } else {
        "Content-Type: application/json\r\n"
    };
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\n{content_type}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .map_err(|e| e.to_string())?;
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .map_err(|e| e.to_string())?;
    if Instant::now() > deadline {
        return Err(format!("{method} {path}: timed out"));
    }
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("{method} {path}: not an HTTP response"))?;
    let body = response
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_owned();
    Ok((status, body))
}
