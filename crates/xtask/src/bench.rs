//! `cargo xtask bench load`: how long `carl validate` takes on a large gateway file.
//!
//! Builds carl in release mode, generates the file with [`crate::generate`], runs
//! `carl validate -f FILE` several times and reports wall time, CPU time and peak RSS
//! of the process (getrusage of the children), as a table and as JSON in
//! `target/bench/load.json`.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::generate::{GenOptions, generate};

struct Run {
    wall: Duration,
    cpu: Duration,
}

/// Runs `cmd` to completion and returns its stdout, exit status, CPU time (user +
/// system) and peak RSS in KiB, from wait4's rusage for that one process.
fn run_measured(cmd: &mut Command) -> Result<(Vec<u8>, i32, Duration, u64), String> {
    use std::io::Read;
    let mut child = cmd
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {cmd:?}: {e}"))?;
    let mut stdout = Vec::new();
    if let Some(mut out) = child.stdout.take() {
        out.read_to_end(&mut stdout).map_err(|e| e.to_string())?;
    }
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: wait4 on our own child's pid, writing into locals we own. The child is
    // reaped here, so `child` is never waited on again.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        if libc::wait4(pid, &mut status, 0, &mut usage) < 0 {
            return Err(format!("wait4: {}", std::io::Error::last_os_error()));
        }
        usage
    };
    let tv = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        -1
    };
    Ok((
        stdout,
        code,
        tv(usage.ru_utime) + tv(usage.ru_stime),
        usage.ru_maxrss as u64,
    ))
}

pub fn load(root: &Path, args: &[String]) -> Result<(), String> {
    let mut services = 5000;
    let mut runs = 5;
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--services" => services = value.parse().map_err(|e| format!("--services: {e}"))?,
            "--runs" => runs = value.parse().map_err(|e| format!("--runs: {e}"))?,
            other => return Err(format!("bench load: unknown argument '{other}'")),
        }
    }
    println!("Building carl (release)…");
    let status = Command::new(env!("CARGO"))
        .args([
            "build",
            "--release",
            "--quiet",
            "--package",
            "carl",
            "--bin",
            "carl",
        ])
        .current_dir(root)
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !status.success() {
        return Err("release build failed".into());
    }
    let root = root.canonicalize().map_err(|e| e.to_string())?;
    let dir = root.join("target/bench");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let file = dir.join(format!("gateway-{services}.yaml"));
    let text = generate(&GenOptions {
        services,
        mutate_pct: 0,
        tag: None,
        seed: 1,
    })?;
    std::fs::write(&file, &text).map_err(|e| e.to_string())?;
    let carl = root.join("target/release/carl");

    let mut results = Vec::new();
    let mut entities = String::new();
    let mut peak_kib = 0;
    for _ in 0..runs.max(1) {
        let started = Instant::now();
        let (stdout, code, cpu, rss) = run_measured(
            Command::new(&carl)
                .args(["validate", "-f"])
                .arg(&file)
                .env("NO_COLOR", "1"),
        )?;
        let wall = started.elapsed();
        if code != 0 {
            return Err(format!(
                "carl validate failed on the generated file (exit {code})"
            ));
        }
        entities = String::from_utf8_lossy(&stdout).trim().to_owned();
        peak_kib = peak_kib.max(rss);
        results.push(Run { wall, cpu });
    }
    results.sort_by_key(|r| r.wall);
    let median = &results[results.len() / 2];
    let best = &results[0];
    let mb = text.len() as f64 / 1e6;
    println!("\n{entities}");
    println!("file: {} ({mb:.1} MB, {services} services)", file.display());
    println!(
        "{:<28} {:>10} {:>10} {:>10}",
        "scenario", "best", "median", "cpu"
    );
    println!(
        "{:<28} {:>9.3}s {:>9.3}s {:>9.3}s",
        "validate (load + check)",
        best.wall.as_secs_f64(),
        median.wall.as_secs_f64(),
        median.cpu.as_secs_f64()
    );
    println!("peak RSS: {:.0} MB", peak_kib as f64 / 1024.0);
    let json = format!(
        "{{\"scenario\":\"load\",\"services\":{services},\"file_bytes\":{},\"runs\":{},\"best_s\":{:.4},\"median_s\":{:.4},\"median_cpu_s\":{:.4},\"peak_rss_mb\":{:.1},\"result\":\"{}\"}}\n",
        text.len(),
        results.len(),
        best.wall.as_secs_f64(),
        median.wall.as_secs_f64(),
        median.cpu.as_secs_f64(),
        peak_kib as f64 / 1024.0,
        entities.replace('"', "'")
    );
    std::fs::write(dir.join("load.json"), json).map_err(|e| e.to_string())?;
    println!("wrote {}", dir.join("load.json").display());
    Ok(())
}
