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

/// CPU time (user + system) and peak RSS (KiB) of all waited-for children so far.
fn children_usage() -> (Duration, u64) {
    // SAFETY: getrusage writes into the zeroed struct we own; RUSAGE_CHILDREN is valid.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage);
        usage
    };
    let tv = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    (
        tv(usage.ru_utime) + tv(usage.ru_stime),
        usage.ru_maxrss as u64,
    )
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
    for _ in 0..runs.max(1) {
        let (cpu_before, _) = children_usage();
        let started = Instant::now();
        let out = Command::new(&carl)
            .args(["validate", "-f"])
            .arg(&file)
            .env("NO_COLOR", "1")
            .stderr(Stdio::inherit())
            .output()
            .map_err(|e| format!("cannot run carl: {e}"))?;
        let wall = started.elapsed();
        if !out.status.success() {
            return Err(format!(
                "carl validate failed on the generated file ({})",
                out.status
            ));
        }
        entities = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        let (cpu_after, _) = children_usage();
        results.push(Run {
            wall,
            cpu: cpu_after - cpu_before,
        });
    }
    let (_, peak_kib) = children_usage();
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
