//! `cargo xtask chaos`: the reliability suite's long runs (`tests/chaos.rs`, the
//! `#[ignore]`d tests), in a release build, one at a time; then their figures as the
//! tables of `docs/reliability.md`.
//!
//! `--services N` changes the matrix's gateway (2,000 services by default); `--only
//! matrix|kills` runs one of the two; `--from N` resumes a matrix cut short after the
//! N rows its matrix.json holds (the kills' figures stay as they are).

use std::path::Path;
use std::process::Command;

use serde_json::Value;

pub fn run(root: &Path, args: &[String]) -> Result<(), String> {
    let out = crate::target_dir(root).join("chaos");
    let mut filter = None;
    let mut services = None;
    let mut from = None;
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--services" => services = Some(value()?.clone()),
            "--from" => from = Some(value()?.clone()),
            "--only" => {
                filter = Some(match value()?.as_str() {
                    "matrix" => "chaos_matrix",
                    "kills" => "kill_anywhere_20",
                    other => return Err(format!("--only: matrix or kills, not '{other}'")),
                })
            }
            other => return Err(format!("chaos: unknown argument '{other}'")),
        }
    }
    // `--from N` resumes the matrix after its first N rows, kept in matrix.json.
    match &from {
        Some(_) => filter = Some("chaos_matrix"),
        None => {
            let _ = std::fs::remove_dir_all(&out);
        }
    }
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(root)
        .args(["test", "--release", "-p", "carl", "--test", "chaos", "--"])
        .args(["--ignored", "--test-threads", "1", "--nocapture"])
        .env("CARL_CHAOS_OUT", &out);
    if let Some(f) = filter {
        cmd.args([f, "--exact"]);
    }
    if let Some(n) = from {
        cmd.env("CARL_CHAOS_FROM", n);
    }
    if let Some(n) = services {
        cmd.env("CARL_CHAOS_SERVICES", n);
    }
    let started = std::time::Instant::now();
    let status = cmd.status().map_err(|e| format!("cannot run cargo: {e}"))?;
    let summary = summarize(&out)?;
    println!("{summary}");
    std::fs::write(out.join("summary.md"), &summary).map_err(|e| e.to_string())?;
    println!(
        "wrote {} ({:.0} min in all)",
        out.join("summary.md").display(),
        started.elapsed().as_secs_f64() / 60.0
    );
    match status.success() {
        true => Ok(()),
        false => Err("a chaos run failed (its message is above)".into()),
    }
}

fn rows(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|t| serde_json::from_str::<Value>(&t).ok())
        .and_then(|v| v.as_array().cloned())
        .unwrap_or_default()
}

/// The Markdown tables of whatever runs wrote their figures.
fn summarize(out: &Path) -> Result<String, String> {
    let mut md = String::new();
    let n = |r: &Value, k: &str| r[k].as_u64().unwrap_or(0);
    let matrix = rows(&out.join("matrix.json"));
    if !matrix.is_empty() {
        md.push_str(
            "| fault | rate | jitter | entities | 1st run exit | 1st run | re-run exit | \
             errors | resets | timeouts | compared | mismatches |\n\
             |---|---|---|---|---|---|---|---|---|---|---|---|\n",
        );
        for r in &matrix {
            md.push_str(&format!(
                "| {} | {:.0}% | {} ms | {} | {} | {:.1} s | {} | {} | {} | {} | {} | {} |\n",
                r["fault"].as_str().unwrap_or("?"),
                r["rate"].as_f64().unwrap_or(0.0) * 100.0,
                n(r, "jitter_ms"),
                n(r, "entities"),
                r["first_exit"],
                r["first_s"].as_f64().unwrap_or(0.0),
                r["rerun_exit"],
                n(r, "errors"),
                n(r, "resets"),
                n(r, "timeouts"),
                n(r, "compared"),
                n(r, "mismatches"),
            ));
        }
        let sum = |k: &str| matrix.iter().map(|r| n(r, k)).sum::<u64>();
        md.push_str(&format!(
            "\n**Matrix: {} runs, {} faults injected ({} errors, {} resets, {} timeouts), \
             {} entities compared, {} mismatches.**\n\n",
            matrix.len(),
            sum("errors") + sum("resets") + sum("timeouts"),
            sum("errors"),
            sum("resets"),
            sum("timeouts"),
            sum("compared"),
            sum("mismatches"),
        ));
    }
    let kills = rows(&out.join("kills.json"));
    if !kills.is_empty() {
        md.push_str(
            "| scenario | killed after (writes) | writes when dead | writes of a whole run | \
             compared | mismatches |\n|---|---|---|---|---|---|\n",
        );
        for r in &kills {
            md.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} |\n",
                r["scenario"].as_str().unwrap_or("?"),
                n(r, "kill_after_writes"),
                n(r, "writes_before_kill"),
                n(r, "writes_in_full_run"),
                n(r, "compared"),
                n(r, "mismatches"),
            ));
        }
        let sum = |k: &str| kills.iter().map(|r| n(r, k)).sum::<u64>();
        md.push_str(&format!(
            "\n**Kills: {} runs killed with SIGKILL, each re-run converged; {} entities \
             compared, {} mismatches.**\n",
            kills.len(),
            sum("compared"),
            sum("mismatches"),
        ));
    }
    if md.is_empty() {
        return Err(format!("no figures in {}", out.display()));
    }
    Ok(md)
}
