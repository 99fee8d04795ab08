//! `cargo xtask bench`: the scenario matrix (issue #9). For each gateway size it starts
//! kong-sim, and for each scenario, latency and parallelism it times one carl command
//! and sets it beside its bounds:
//!
//! - **requests**: the fewest the Admin API allows. A read is `GET /`, one request per
//!   page of 1,000 per kind (an empty kind still takes one), one per upstream for its
//!   targets, and one schema per kind and per plugin the file uses; a write is one
//!   request per changed entity. Any difference fails the benchmark.
//! - **time**: requests × latency ÷ parallelism, what carl would take if every request
//!   waited exactly the latency and `--parallelism` were always in flight.
//!
//! Results: a table on stdout, `target/bench/results.json`, and with several sizes a
//! plot of wall time against size (`docs/performance-wall.svg`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use serde_json::{Value, json};

use crate::bench::{apply_phase, build, generated_pair, run_measured, set_latency, sim_requests};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Scenario {
    /// `reconcile --plan` of the gateway kong-sim holds: reads only.
    Noop,
    /// `reconcile --apply` of the gateway with 10% of its services changed.
    Change,
    /// `reconcile --apply` of the whole gateway into an empty kong-sim.
    Create,
    /// `reconcile --apply` of an empty file: every entity deleted.
    Delete,
}

impl Scenario {
    const ALL: [Scenario; 4] = [
        Scenario::Noop,
        Scenario::Change,
        Scenario::Delete,
        Scenario::Create,
    ];

    fn name(self) -> &'static str {
        match self {
            Scenario::Noop => "noop-plan",
            Scenario::Change => "change-apply",
            Scenario::Create => "create",
            Scenario::Delete => "delete",
        }
    }

    fn parse(s: &str) -> Option<Scenario> {
        Scenario::ALL
            .into_iter()
            .find(|x| x.name() == s || x.name().starts_with(&format!("{s}-")))
    }
}

struct Options {
    sizes: Vec<usize>,
    latencies: Vec<u64>,
    parallelisms: Vec<u64>,
    scenarios: Vec<Scenario>,
    /// Combinations whose time bound exceeds this are skipped (and listed).
    max_bound_s: f64,
    plot: Option<PathBuf>,
    /// Release binaries (timings mean something) or the debug ones CI has built.
    release: bool,
    /// Each combination is run this many times and its fastest run kept: on two cores
    /// shared with kong-sim, one run of the same command varies by up to 30%.
    runs: usize,
}

fn list<T: std::str::FromStr>(flag: &str, value: &str) -> Result<Vec<T>, String> {
    value
        .split(',')
        .map(|v| {
            v.trim()
                .parse()
                .map_err(|_| format!("{flag}: '{v}' is not a number"))
        })
        .collect()
}

fn parse_options(root: &Path, args: &[String]) -> Result<Options, String> {
    let mut o = Options {
        sizes: vec![500, 5000, 20000],
        latencies: vec![0, 20],
        parallelisms: vec![1, 10, 32],
        scenarios: Scenario::ALL.to_vec(),
        max_bound_s: 120.0,
        plot: Some(root.join("docs/performance-wall.svg")),
        release: true,
        runs: 1,
    };
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        if flag == "--smoke" {
            // CI: the smallest gateway, every scenario, request counts checked.
            o.sizes = vec![100];
            o.latencies = vec![0];
            o.parallelisms = vec![10];
            o.plot = None;
            continue;
        }
        if flag == "--replot" {
            continue;
        }
        if flag == "--debug" {
            o.release = false;
            continue;
        }
        if flag == "--no-plot" {
            o.plot = None;
            continue;
        }
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--sizes" => o.sizes = list(flag, value)?,
            "--latency" => o.latencies = list(flag, value)?,
            "--parallelism" => o.parallelisms = list(flag, value)?,
            "--scenarios" => {
                o.scenarios = value
                    .split(',')
                    .map(|s| Scenario::parse(s.trim()).ok_or(format!("--scenarios: unknown '{s}'")))
                    .collect::<Result<_, _>>()?
            }
            "--max-bound" => {
                o.max_bound_s = value.parse().map_err(|e| format!("--max-bound: {e}"))?
            }
            "--plot" => o.plot = Some(PathBuf::from(value)),
            "--runs" => {
                o.runs = value
                    .parse()
                    .ok()
                    .filter(|&n| n > 0)
                    .ok_or(format!("--runs: '{value}' is not a count of at least 1"))?
            }
            other => return Err(format!("bench: unknown argument '{other}'")),
        }
    }
    if o.parallelisms.contains(&0) {
        return Err("--parallelism: at least 1".into());
    }
    Ok(o)
}

/// What kong-sim holds between scenarios.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Holds {
    Empty,
    Base,
    Changed,
}

/// One timed command.
#[derive(Clone)]
struct Row {
    scenario: Scenario,
    services: usize,
    latency_ms: u64,
    parallelism: u64,
    entities: u64,
    reads: u64,
    writes: u64,
    requests: u64,
    wall_s: f64,
    cpu_s: f64,
    peak_rss_mb: f64,
    /// First write to last answer, from carl's closing line (applies only).
    apply_s: Option<f64>,
    /// Every run's wall time, in order (the row is the fastest).
    walls_s: Vec<f64>,
}

impl Row {
    fn label(&self) -> String {
        format!(
            "{} of {} services at {} ms, parallelism {}",
            self.scenario.name(),
            self.services,
            self.latency_ms,
            self.parallelism
        )
    }

    /// The fastest of `runs` (of one combination), with every run's wall time.
    fn fastest(runs: Vec<Row>) -> Option<Row> {
        let walls: Vec<f64> = runs.iter().map(|r| r.wall_s).collect();
        let mut best = runs
            .into_iter()
            .min_by(|a, b| a.wall_s.total_cmp(&b.wall_s))?;
        best.walls_s = walls;
        Some(best)
    }

    fn minimum(&self) -> u64 {
        self.reads + self.writes
    }

    fn bound_s(&self) -> f64 {
        self.minimum() as f64 * self.latency_ms as f64 / 1e3 / self.parallelism as f64
    }

    fn write_bound_s(&self) -> f64 {
        self.writes as f64 * self.latency_ms as f64 / 1e3 / self.parallelism as f64
    }

    fn json(&self) -> Value {
        let ratio = |t: f64, b: f64| (b > 0.0).then(|| t / b);
        json!({
            "scenario": self.scenario.name(),
            "services": self.services,
            "entities": self.entities,
            "latency_ms": self.latency_ms,
            "parallelism": self.parallelism,
            "requests": self.requests,
            "minimum_requests": self.minimum(),
            "reads": self.reads,
            "writes": self.writes,
            "wall_s": self.wall_s,
            "bound_s": self.bound_s(),
            "wall_ratio": ratio(self.wall_s, self.bound_s()),
            "apply_s": self.apply_s,
            "write_bound_s": self.write_bound_s(),
            "apply_ratio": self.apply_s.and_then(|a| ratio(a, self.write_bound_s())),
            "cpu_s": self.cpu_s,
            "peak_rss_mb": self.peak_rss_mb,
            "runs_wall_s": self.walls_s,
        })
    }
}

/// kong-sim's entity counts by collection.
fn sim_entities(addr: &str) -> Result<BTreeMap<String, u64>, String> {
    let (_, body) = crate::http(addr, "GET", "/_sim/stats", None)?;
    let stats: Value = serde_json::from_str(&body).map_err(|e| format!("kong-sim stats: {e}"))?;
    Ok(stats["entities"]
        .as_object()
        .ok_or("kong-sim stats without entities")?
        .iter()
        .map(|(k, v)| (k.clone(), v.as_u64().unwrap_or(0)))
        .collect())
}

/// The fewest requests that read a gateway holding `counts`, for a file using
/// `schemas` kinds and plugins.
fn minimum_reads(counts: &BTreeMap<String, u64>, schemas: u64) -> u64 {
    let pages = |n: u64| n.div_ceil(1000).max(1);
    let kinds: u64 = counts
        .iter()
        .filter(|(k, _)| k.as_str() != "targets")
        .map(|(_, n)| pages(*n))
        .sum();
    // Targets are listed per upstream; the generator gives each fewer than 1,000.
    let upstreams = counts.get("upstreams").copied().unwrap_or(0);
    1 + kinds + upstreams + schemas
}

/// How many schemas carl fetches for `file`: one per kind and per plugin it uses.
fn schemas_of(file: &Path) -> Result<u64, String> {
    let text = std::fs::read_to_string(file).map_err(|e| e.to_string())?;
    let state = carl_config::load_str(&file.display().to_string(), &text, &|_| None)
        .map_err(|e| format!("{}: {e}", file.display()))?;
    let kinds: std::collections::BTreeSet<_> = state.entities.iter().map(|e| e.kind).collect();
    let plugins: std::collections::BTreeSet<_> = state
        .entities
        .iter()
        .filter_map(|e| {
            (e.kind == carl_model::Kind::Plugin)
                .then(|| e.fields.get("name").and_then(Value::as_str))
                .flatten()
        })
        .collect();
    Ok((kinds.len() + plugins.len()) as u64)
}

/// One gateway size: its files, what the gateway holds, and its own kong-sim.
struct Size<'a> {
    services: usize,
    carl: &'a Path,
    sim_bin: &'a Path,
    /// The kong-sim at `addr` (stopped when replaced or dropped).
    _sim: Option<crate::Sim>,
    addr: String,
    base: PathBuf,
    changed: PathBuf,
    empty: PathBuf,
    /// Where measured applies write their backup (as a user's apply does).
    backups: PathBuf,
    holds: Holds,
    /// Schemas carl reads for the generated file (one per kind and plugin in use).
    schemas: u64,
    /// The base gateway's entities by collection, as kong-sim counted them.
    base_counts: BTreeMap<String, u64>,
    base_entities: u64,
    /// Ops of the 10% change, planned once against the base gateway.
    change_ops: u64,
}

impl Size<'_> {
    /// What `scenario` needs kong-sim to hold, and the file it applies.
    fn scenario(&self, scenario: Scenario) -> (Holds, &Path) {
        match scenario {
            Scenario::Noop => (Holds::Base, &self.base),
            Scenario::Change => (Holds::Base, &self.changed),
            Scenario::Create => (Holds::Empty, &self.base),
            Scenario::Delete => (Holds::Base, &self.empty),
        }
    }

    /// The row of a combination at this size, before it is run: its minimum requests.
    fn row(&self, scenario: Scenario, latency_ms: u64, parallelism: u64) -> Row {
        let (needs, file) = self.scenario(scenario);
        let counts = if needs == Holds::Empty {
            self.base_counts.keys().map(|k| (k.clone(), 0)).collect()
        } else {
            self.base_counts.clone()
        };
        let file_schemas = if file == self.empty { 0 } else { self.schemas };
        Row {
            scenario,
            services: self.services,
            latency_ms,
            parallelism,
            entities: self.base_entities,
            reads: minimum_reads(&counts, file_schemas),
            writes: match scenario {
                Scenario::Noop => 0,
                Scenario::Change => self.change_ops,
                Scenario::Create | Scenario::Delete => self.base_entities,
            },
            requests: 0,
            wall_s: 0.0,
            cpu_s: 0.0,
            peak_rss_mb: 0.0,
            apply_s: None,
            walls_s: Vec::new(),
        }
    }

    /// Runs `row`'s command once, from the state its scenario needs, and fills in what
    /// was measured.
    fn measure(&mut self, mut row: Row) -> Result<Row, String> {
        let (needs, file) = self.scenario(row.scenario);
        let file = file.to_path_buf();
        self.set_up(needs)?;
        set_latency(&self.addr, row.latency_ms)?;
        let before = sim_requests(&self.addr)?;
        let p = row.parallelism.to_string();
        let backups = self.backups.to_str().unwrap_or("backups");
        let args: Vec<&str> = match row.scenario {
            Scenario::Noop => vec![
                "reconcile",
                "--plan",
                "--detailed-exitcode",
                "--parallelism",
                &p,
            ],
            // With the backup a user's apply writes first (the dump of the live state
            // is part of the cost).
            _ => vec![
                "reconcile",
                "--apply",
                "--backup-dir",
                backups,
                "--parallelism",
                &p,
            ],
        };
        let t = Instant::now();
        let (stdout, code, cpu, rss) = run_measured(&mut self.carl(&args, &file))?;
        row.wall_s = t.elapsed().as_secs_f64();
        row.requests = sim_requests(&self.addr)? - before;
        set_latency(&self.addr, 0)?;
        if code != 0 {
            return Err(format!("{}: carl exited {code}", row.label()));
        }
        let _ = std::fs::remove_dir_all(&self.backups);
        row.cpu_s = cpu.as_secs_f64();
        row.peak_rss_mb = rss as f64 / 1024.0;
        if row.scenario != Scenario::Noop {
            row.apply_s = apply_phase(&String::from_utf8_lossy(&stdout)).map(|(s, _)| s);
        }
        self.holds = match row.scenario {
            Scenario::Noop | Scenario::Create => Holds::Base,
            Scenario::Change => Holds::Changed,
            Scenario::Delete => Holds::Empty,
        };
        Ok(row)
    }

    fn carl(&self, args: &[&str], file: &Path) -> Command {
        let mut cmd = Command::new(self.carl);
        cmd.args(args)
            .args(["--kong-addr", &self.addr, "-f"])
            .arg(file)
            .env("NO_COLOR", "1")
            .stderr(Stdio::null());
        cmd
    }

    /// Brings kong-sim to `want`, quickly (0 ms, parallelism 32).
    fn set_up(&mut self, want: Holds) -> Result<(), String> {
        if self.holds == want {
            return Ok(());
        }
        set_latency(&self.addr, 0)?;
        match want {
            // A new kong-sim rather than `/_sim/reset`: one that has held and freed
            // 270,000 entities answered the same delete ~15% slower (its allocator's
            // state; measured when kong-sim still ran on glibc's malloc), which the
            // 20,000-service rows would charge to carl.
            Holds::Empty => {
                self._sim = None;
                let (sim, addr) = crate::start_sim(self.sim_bin)?;
                self._sim = Some(sim);
                self.addr = addr;
            }
            Holds::Base | Holds::Changed => {
                let file = if want == Holds::Base {
                    &self.base
                } else {
                    &self.changed
                };
                let (out, code, _, _) = run_measured(&mut self.carl(
                    &["reconcile", "--apply", "--no-backup", "--parallelism", "32"],
                    file,
                ))?;
                if code != 0 {
                    let out = String::from_utf8_lossy(&out);
                    let tail: Vec<&str> = out.lines().rev().take(10).collect();
                    return Err(format!(
                        "setting up: the apply failed (exit {code}):\n{}",
                        tail.join("\n")
                    ));
                }
            }
        }
        self.holds = want;
        Ok(())
    }
}

pub fn run(root: &Path, args: &[String]) -> Result<(), String> {
    let o = parse_options(root, args)?;
    if args.iter().any(|a| a == "--replot") {
        let plot = o
            .plot
            .clone()
            .unwrap_or(root.join("docs/performance-wall.svg"));
        return replot(root, &plot);
    }
    let root = build(root, &["carl", "kong-sim"], o.release)?;
    let dir = crate::target_dir(&root).join("bench");
    let bin = crate::target_dir(&root).join(if o.release { "release" } else { "debug" });
    let carl = bin.join("carl");
    let sim_bin = bin.join("kong-sim");
    let empty = dir.join("empty.yaml");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    std::fs::write(&empty, "_format_version: \"3.0\"\n").map_err(|e| e.to_string())?;

    let mut rows: Vec<Row> = Vec::new();
    let mut skipped: Vec<String> = Vec::new();
    // Runs that sent more (or fewer) requests than the minimum: the bench fails.
    let mut wrong: Vec<String> = Vec::new();
    let started = Instant::now();
    // Every size is prepared first, each with its own kong-sim, so that each run of a
    // combination measures all sizes one after the other: this machine's speed drifts
    // by 20-30% within the hour, and sizes measured minutes apart would put that drift
    // into their growth.
    let mut sizes: Vec<Size> = Vec::new();
    for &services in &o.sizes {
        let (base, changed) = generated_pair(&dir, services, 10)?;
        let (sim, addr) = crate::start_sim(&sim_bin)?;
        let mut size = Size {
            services,
            carl: &carl,
            sim_bin: &sim_bin,
            _sim: Some(sim),
            addr,
            schemas: schemas_of(&base)?,
            base,
            changed,
            empty: empty.clone(),
            backups: dir.join(format!("backups-{services}")),
            holds: Holds::Empty,
            base_counts: BTreeMap::new(),
            base_entities: 0,
            change_ops: 0,
        };
        size.set_up(Holds::Base)?;
        size.base_counts = sim_entities(&size.addr)?;
        size.base_entities = size.base_counts.values().sum();
        let (plan, _, _, _) = run_measured(&mut size.carl(
            &["reconcile", "--plan", "--format", "json"],
            &size.changed.clone(),
        ))?;
        let plan: Value = serde_json::from_slice(&plan).map_err(|e| format!("plan JSON: {e}"))?;
        size.change_ops = plan["ops"].as_array().map_or(0, Vec::len) as u64;
        println!(
            "{services} services: {} entities; the 10% change is {} ops",
            size.base_entities, size.change_ops
        );
        sizes.push(size);
    }

    for &scenario in &o.scenarios {
        for &latency_ms in &o.latencies {
            for &parallelism in &o.parallelisms {
                // Each size's row of this combination, unless its bound is too long.
                let planned: Vec<Option<Row>> = sizes
                    .iter()
                    .map(|size| {
                        let row = size.row(scenario, latency_ms, parallelism);
                        if row.bound_s() > o.max_bound_s {
                            skipped.push(format!("{}: bound {:.0} s", row.label(), row.bound_s()));
                            return None;
                        }
                        Some(row)
                    })
                    .collect();
                // Each size's runs of this combination.
                let mut runs: Vec<Vec<Row>> = vec![Vec::new(); sizes.len()];
                for _ in 0..o.runs {
                    for ((size, runs), planned) in sizes.iter_mut().zip(&mut runs).zip(&planned) {
                        let Some(row) = planned.clone() else {
                            continue;
                        };
                        let row = size.measure(row)?;
                        println!(
                            "  {}: {:.2} s, {} requests (minimum {}), {:.0} MB",
                            row.label(),
                            row.wall_s,
                            row.requests,
                            row.minimum(),
                            row.peak_rss_mb
                        );
                        if row.requests != row.minimum() {
                            wrong.push(format!(
                                "{}: {} requests, minimum {}",
                                row.label(),
                                row.requests,
                                row.minimum()
                            ));
                        }
                        runs.push(row);
                    }
                }
                rows.extend(runs.into_iter().filter_map(Row::fastest));
            }
        }
    }
    // The table reads size by size.
    rows.sort_by_key(|r| r.services);

    print_table(&rows);
    print_growth(&rows);
    if !skipped.is_empty() {
        println!(
            "\nSkipped (time bound over --max-bound {:.0} s; the bound predicts them):",
            o.max_bound_s
        );
        for s in &skipped {
            println!("  {s}");
        }
    }
    let json: Vec<Value> = rows.iter().map(Row::json).collect();
    let out = dir.join("results.json");
    std::fs::write(
        &out,
        serde_json::to_string_pretty(&json).unwrap_or_default() + "\n",
    )
    .map_err(|e| e.to_string())?;
    println!(
        "\nwrote {} ({:.0} s in all)",
        out.display(),
        started.elapsed().as_secs_f64()
    );
    if let Some(plot) = &o.plot
        && o.sizes.len() > 1
    {
        crate::plot::wall_against_size(plot, &lines_for_plot(&json))?;
        println!("wrote {}", plot.display());
    }
    if !wrong.is_empty() {
        return Err(format!(
            "requests other than the minimum:\n  {}",
            wrong.join("\n  ")
        ));
    }
    Ok(())
}

/// Each combination's wall time and carl's CPU at one size against the next, beside
/// the growth of the gateway (issue #9: 20,000 services within 4.4× 5,000).
fn print_growth(rows: &[Row]) {
    let mut lines = Vec::new();
    for small in rows {
        let next = rows
            .iter()
            .filter(|r| {
                r.scenario == small.scenario
                    && r.latency_ms == small.latency_ms
                    && r.parallelism == small.parallelism
                    && r.services > small.services
            })
            .min_by_key(|r| r.services);
        if let Some(large) = next {
            lines.push(format!(
                "{:<13} {:>5} {:>4} {:>6} → {:<6} {:>6.2}× {:>6.2}× {:>6.2}×",
                small.scenario.name(),
                small.latency_ms,
                small.parallelism,
                small.services,
                large.services,
                large.entities as f64 / small.entities.max(1) as f64,
                large.wall_s / small.wall_s.max(1e-9),
                large.cpu_s / small.cpu_s.max(1e-9),
            ));
        }
    }
    if !lines.is_empty() {
        println!(
            "\n{:<13} {:>5} {:>4} {:>15}  {:>7} {:>7} {:>7}",
            "growth", "ms", "par", "services", "entities", "wall", "cpu"
        );
        for l in lines {
            println!("{l}");
        }
    }
}

fn print_table(rows: &[Row]) {
    println!(
        "\n{:<13} {:>8} {:>5} {:>4} {:>9} {:>8} {:>9} {:>9} {:>6} {:>9} {:>6} {:>8} {:>7}",
        "scenario",
        "services",
        "ms",
        "par",
        "requests",
        "÷ min",
        "wall",
        "bound",
        "ratio",
        "apply",
        "ratio",
        "cpu",
        "RSS MB"
    );
    for r in rows {
        let ratio = |t: f64, b: f64| {
            if b > 0.0 {
                format!("{:.3}", t / b)
            } else {
                "-".into()
            }
        };
        let (apply, apply_ratio) = match r.apply_s {
            Some(a) => (format!("{a:.2}s"), ratio(a, r.write_bound_s())),
            None => ("-".into(), "-".into()),
        };
        println!(
            "{:<13} {:>8} {:>5} {:>4} {:>9} {:>8.3} {:>8.2}s {:>8.2}s {:>6} {:>9} {:>6} {:>7.2}s {:>7.0}",
            r.scenario.name(),
            r.services,
            r.latency_ms,
            r.parallelism,
            r.requests,
            r.requests as f64 / r.minimum().max(1) as f64,
            r.wall_s,
            r.bound_s(),
            ratio(r.wall_s, r.bound_s()),
            apply,
            apply_ratio,
            r.cpu_s,
            r.peak_rss_mb
        );
    }
}

/// One line per scenario and latency at one parallelism (10 when measured), for the
/// sizes measured: more lines would not be readable.
fn lines_for_plot(results: &[Value]) -> Vec<(String, Vec<(f64, f64)>)> {
    let get = |r: &Value, k: &str| r[k].as_f64().unwrap_or(0.0);
    let parallelisms: Vec<f64> = results.iter().map(|r| get(r, "parallelism")).collect();
    let chosen = if parallelisms.contains(&10.0) {
        10.0
    } else {
        parallelisms.first().copied().unwrap_or(0.0)
    };
    let mut lines: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
    for r in results.iter().filter(|r| get(r, "parallelism") == chosen) {
        let label = format!(
            "{} at {} ms, parallelism {chosen}",
            r["scenario"].as_str().unwrap_or("?"),
            get(r, "latency_ms")
        );
        lines
            .entry(label)
            .or_default()
            .push((get(r, "services"), get(r, "wall_s")));
    }
    lines.into_iter().filter(|(_, p)| p.len() > 1).collect()
}

/// `cargo xtask bench --replot`: the plot again from the recorded results,
/// `docs/performance-results.json` (a copy of a full run's `target/bench/results.json`).
pub fn replot(root: &Path, plot: &Path) -> Result<(), String> {
    let path = root.join("docs/performance-results.json");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let results: Vec<Value> = serde_json::from_str(&text).map_err(|e| e.to_string())?;
    crate::plot::wall_against_size(plot, &lines_for_plot(&results))?;
    println!("wrote {}", plot.display());
    Ok(())
}
