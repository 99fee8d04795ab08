//! Planning and the backup's dump in process, with no server: what carl's own CPU
//! costs between reading the gateway and the first write, at several sizes.
//!
//! `cargo bench -p carl-planner --bench plan [-- --sizes 5000,20000 --runs 5 --only delete,dump]`
//!
//! The gateway is `cargo xtask gen`'s, stored as kong-sim stores a declarative
//! configuration; the desired states are that file (a no-op), its 10% change and an
//! empty file (every entity deleted). Prints the best of the runs (this machine's
//! neighbours only ever add time), microseconds per
//! live entity, and the growth from each size to the next against the growth of the
//! gateway: the end-to-end benchmark (`cargo xtask bench`) shares this machine with
//! kong-sim and the network stack, this one does not.

use std::time::{Duration, Instant};

use carl_config::DesiredState;
use carl_config::dump::DumpOptions;
use carl_model::LiveState;
use carl_planner::Schemas;
use carl_testkit::generate::{GenOptions, generate};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

struct Options {
    sizes: Vec<usize>,
    runs: usize,
    /// Scenarios whose name contains one of these (all when empty): `delete`, `dump`.
    only: Vec<String>,
}

impl Options {
    fn runs(&self, scenario: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|o| scenario.contains(o.as_str()))
    }
}

fn options() -> Result<Options, String> {
    let mut o = Options {
        sizes: vec![5000, 20000],
        runs: 5,
        only: Vec::new(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        match flag.as_str() {
            // cargo bench passes --bench to every bench target.
            "--bench" => {}
            "--sizes" => {
                let v = args.next().ok_or("--sizes needs a value")?;
                o.sizes = v
                    .split(',')
                    .map(|n| n.trim().parse().map_err(|e| format!("--sizes: {e}")))
                    .collect::<Result<_, _>>()?;
            }
            "--runs" => {
                let v = args.next().ok_or("--runs needs a value")?;
                o.runs = v.parse().map_err(|e| format!("--runs: {e}"))?;
            }
            "--only" => {
                let v = args.next().ok_or("--only needs a value")?;
                o.only = v.split(',').map(str::to_owned).collect();
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(o)
}

fn gateway(services: usize, mutate_pct: u32) -> Result<String, String> {
    generate(&GenOptions {
        services,
        mutate_pct,
        tag: None,
        seed: 1,
    })
}

fn desired(name: &str, text: &str) -> Result<DesiredState, String> {
    carl_config::load_str(name, text, &|_| None).map_err(|e| format!("{name}: {e:?}"))
}

/// The generated gateway as kong-sim stores it, read back as carl reads it.
fn live(text: &str) -> Result<LiveState, String> {
    Ok(LiveState::from_entities(kong_sim::stored_entities(text)?))
}

/// This thread's CPU time: what the work cost, apart from the time the VM or other
/// processes took the core away (which wall time also counts).
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; the clock id is a constant.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// The best (wall, CPU) of `runs`, and what `f` returned.
fn time(runs: usize, mut f: impl FnMut() -> usize) -> ((Duration, Duration), usize) {
    let mut out = 0;
    let best = (0..runs)
        .map(|_| {
            let (t, c) = (Instant::now(), thread_cpu());
            out = std::hint::black_box(f());
            (t.elapsed(), thread_cpu() - c)
        })
        .min()
        .unwrap_or_default();
    (best, out)
}

fn main() -> Result<(), String> {
    let o = options()?;
    let schemas = Schemas::default();
    let empty = desired("empty.yaml", "_format_version: \"3.0\"\n")?;
    // (scenario, size, entities, the best run's wall and CPU time)
    let mut rows: Vec<(&str, usize, usize, (Duration, Duration))> = Vec::new();
    for &services in &o.sizes {
        let base = gateway(services, 0)?;
        let live = live(&base)?;
        let entities = live.len();
        let changed = desired("changed.yaml", &gateway(services, 10)?)?;
        let base = desired("gateway.yaml", &base)?;
        println!(
            "{services} services, {entities} entities, best of {}:",
            o.runs
        );
        let scenarios: [(&str, &DesiredState); 3] = [
            ("plan: no-op", &base),
            ("plan: 10% change", &changed),
            ("plan: delete all", &empty),
        ];
        for (name, desired) in scenarios.into_iter().filter(|(n, _)| o.runs(n)) {
            let (t, ops) = time(o.runs, || {
                carl_planner::plan(desired, &live, &schemas)
                    .map(|p| p.ops.len())
                    .unwrap_or(usize::MAX)
            });
            if ops == usize::MAX {
                return Err(format!("{name}: the plan failed"));
            }
            println!(
                "  {name:<20} {:>8.3} s ({:.3} s CPU) {ops:>7} ops",
                t.0.as_secs_f64(),
                t.1.as_secs_f64()
            );
            rows.push((name, services, entities, t));
        }
        if !o.runs("backup (dump)") {
            continue;
        }
        let backup = DumpOptions {
            with_id: true,
            ..DumpOptions::default()
        };
        let (t, bytes) = time(o.runs, || carl_config::dump::dump(&live, &backup).len());
        println!(
            "  {:<20} {:>8.3} s ({:.3} s CPU) {bytes:>7} bytes",
            "backup (dump)",
            t.0.as_secs_f64(),
            t.1.as_secs_f64()
        );
        rows.push(("backup (dump)", services, entities, t));
    }
    println!(
        "\n{:<20} {:>8} {:>9} {:>11} {:>9} {:>7} {:>7}",
        "", "services", "entities", "µs/entity", "CPU µs", "growth", "CPU"
    );
    for (i, &(name, services, entities, (wall, cpu))) in rows.iter().enumerate() {
        let per = |d: Duration| d.as_secs_f64() * 1e6 / entities as f64;
        // Against the same scenario at the previous size, beside the gateway's growth.
        let growth = rows[..i]
            .iter()
            .rev()
            .find(|r| r.0 == name)
            .map(|r| {
                format!(
                    "{:>6.2}x {:>6.2}x / {:.2}x",
                    wall.as_secs_f64() / r.3.0.as_secs_f64(),
                    cpu.as_secs_f64() / r.3.1.as_secs_f64(),
                    entities as f64 / r.2 as f64
                )
            })
            .unwrap_or_default();
        println!(
            "{name:<20} {services:>8} {entities:>9} {:>11.2} {:>9.2} {growth}",
            per(wall),
            per(cpu)
        );
    }
    Ok(())
}
