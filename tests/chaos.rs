//! The reliability suite's long runs: faults of every kind injected into applies of a
//! generated gateway, and carl killed at points spread across applies; after each, a
//! run converges and an independent oracle ([`carl_testkit::oracle`], none of carl's
//! code) finds the gateway holding the file entity for entity.
//!
//! The full matrix is `#[ignore]`d and run by `cargo xtask chaos` (release build, one
//! test at a time), which writes its figures to `target/chaos/`; the regular suite runs
//! a small subset of each. kong-sim only: faults and kills need the emulator.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use carl_testkit::generate::{GenOptions, generate};
use carl_testkit::oracle;
use common::{Gateway, write};
use serde_json::{Value, json};

fn generated(dir: &Path, services: usize, mutate_pct: u32) -> (PathBuf, String) {
    let text = generate(&GenOptions {
        services,
        mutate_pct,
        tag: None,
        seed: 11,
    })
    .expect("generate");
    let name = format!("gateway-{services}-{mutate_pct}.yaml");
    (PathBuf::from(write(dir, &name, &text)), text)
}

fn sim() -> Gateway {
    Gateway::start_sim(kong_sim::SimConfig::default())
}

/// The oracle's verdict on kong-sim against `text`.
fn verdict(gw: &Gateway, text: &str) -> oracle::Verdict {
    oracle::compare(text, &mut |path| match gw.call("GET", path, None) {
        (200, body) => Ok(body),
        (status, body) => Err(format!("GET {path}: {status} {body}")),
    })
    .expect("the oracle reads the file and the gateway")
}

fn assert_matches(gw: &Gateway, text: &str, what: &str) -> oracle::Verdict {
    let v = verdict(gw, text);
    assert!(
        v.matches(),
        "{what}: {} mismatches, first: {:#?}",
        v.mismatches.len(),
        &v.mismatches[..v.mismatches.len().min(20)]
    );
    assert_eq!(v.compared, v.live, "{what}");
    v
}

fn faults(gw: &Gateway, faults: Value) {
    assert_eq!(gw.call("PUT", "/_sim/faults", Some(faults)).0, 200);
}

/// One kind of trouble, at one rate.
#[derive(Debug, Clone, Copy)]
enum Fault {
    Status(u16),
    Reset,
    Timeout,
    /// Every status, resets and timeouts at once, the rate shared among them.
    Everything,
}

impl Fault {
    const ALL: [Fault; 8] = [
        Fault::Status(500),
        Fault::Status(502),
        Fault::Status(503),
        Fault::Status(504),
        Fault::Status(429),
        Fault::Reset,
        Fault::Timeout,
        Fault::Everything,
    ];

    fn name(self) -> String {
        match self {
            Fault::Status(429) => "429 + Retry-After".into(),
            Fault::Status(s) => s.to_string(),
            Fault::Reset => "connection reset".into(),
            Fault::Timeout => "timeout".into(),
            Fault::Everything => "all of them".into(),
        }
    }

    /// kong-sim's fault settings: `rate` of requests meet the fault.
    fn settings(self, rate: f64, jitter_ms: u64, seed: u64) -> Value {
        let mut s = json!({"seed": seed, "jitter_ms": jitter_ms});
        match self {
            Fault::Status(status) => {
                s["error_rate"] = json!(rate);
                s["error_statuses"] = json!([status]);
            }
            Fault::Reset => s["reset_rate"] = json!(rate),
            Fault::Timeout => s["hang_rate"] = json!(rate),
            Fault::Everything => {
                s["error_rate"] = json!(rate * 0.6);
                s["error_statuses"] = json!([500, 502, 503, 504, 429]);
                s["reset_rate"] = json!(rate * 0.3);
                s["hang_rate"] = json!(rate * 0.1);
            }
        }
        s
    }
}

/// What one chaos run did and found (a row of `cargo xtask chaos`'s table).
#[derive(Debug, serde::Serialize)]
struct ChaosRun {
    fault: String,
    rate: f64,
    jitter_ms: u64,
    entities: usize,
    first_exit: i32,
    first_s: f64,
    rerun_exit: i32,
    errors: u64,
    resets: u64,
    timeouts: u64,
    compared: usize,
    mismatches: usize,
}

/// Applies `text` (file `file`) into an empty kong-sim under `fault` at `rate`, runs
/// again under the same faults, then without faults: `--check` exits 0 and the oracle
/// finds every entity as the file says.
fn chaos_run(file: &Path, text: &str, fault: Fault, rate: f64, jitter_ms: u64) -> ChaosRun {
    let gw = sim();
    let file = file.to_str().unwrap();
    faults(&gw, fault.settings(rate, jitter_ms, 7));
    let apply = |gw: &Gateway| {
        let t = Instant::now();
        let out = gw
            .carl()
            .args([
                "--parallelism",
                "32",
                "--timeout",
                "1s",
                "reconcile",
                "--apply",
                "--no-backup",
                "-f",
                file,
            ])
            .assert();
        let code = out.get_output().status.code().unwrap_or(-1);
        (code, t.elapsed().as_secs_f64())
    };
    let (first_exit, first_s) = apply(&gw);
    // A second run under the same trouble (another draw) mends what the first left.
    faults(&gw, fault.settings(rate, jitter_ms, 8));
    let (rerun_exit, _) = apply(&gw);
    let stats = gw.stats().unwrap();
    faults(&gw, json!({}));
    assert_eq!(
        rerun_exit,
        0,
        "{} at {rate}: the re-run failed",
        fault.name()
    );
    gw.carl()
        .args(["reconcile", "--check", "-f", file])
        .assert()
        .code(0);
    let what = format!("{} at {rate}, jitter {jitter_ms} ms", fault.name());
    let v = assert_matches(&gw, text, &what);
    let count = |k: &str| stats["faults"][k].as_u64().unwrap_or(0);
    let run = ChaosRun {
        fault: fault.name(),
        rate,
        jitter_ms,
        entities: v.live,
        first_exit,
        first_s,
        rerun_exit,
        errors: count("errors"),
        resets: count("resets"),
        timeouts: count("hangs"),
        compared: v.compared,
        mismatches: v.mismatches.len(),
    };
    assert!(
        run.errors + run.resets + run.timeouts > 0,
        "{what}: no fault was injected"
    );
    eprintln!("{run:?}");
    run
}

/// Where `cargo xtask chaos` wants the figures, if it asked.
fn save(name: &str, rows: &impl serde::Serialize) {
    if let Some(dir) = std::env::var_os("CARL_CHAOS_OUT") {
        let path = Path::new(&dir).join(name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(&path, serde_json::to_string_pretty(rows).unwrap()).unwrap();
    }
}

fn chaos_services() -> usize {
    std::env::var("CARL_CHAOS_SERVICES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2000)
}

/// The regular suite's share of the matrix: a 100-service gateway (~1,450 entities)
/// under every fault at once at 5% with 200 ms jitter, and under timeouts alone.
#[test]
fn an_apply_through_every_fault_converges_entity_for_entity() {
    let dir = tempfile::tempdir().unwrap();
    let (file, text) = generated(dir.path(), 100, 0);
    let run = chaos_run(&file, &text, Fault::Everything, 0.05, 200);
    assert!(run.errors > 0 && run.resets > 0, "{run:?}");
    chaos_run(&file, &text, Fault::Timeout, 0.01, 0);
}

/// `cargo xtask chaos`: every fault at 1% and 5%, with and without 200 ms jitter, on a
/// 2,000-service gateway (`CARL_CHAOS_SERVICES` to change it).
#[test]
#[ignore = "long: cargo xtask chaos"]
fn chaos_matrix() {
    let dir = tempfile::tempdir().unwrap();
    let (file, text) = generated(dir.path(), chaos_services(), 0);
    // `CARL_CHAOS_FROM=N` resumes a matrix cut short: the first N rows are those
    // already saved in matrix.json.
    let from: usize = std::env::var("CARL_CHAOS_FROM")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let mut rows: Vec<serde_json::Value> = Vec::new();
    if from > 0 {
        let dir = std::env::var_os("CARL_CHAOS_OUT").expect("CARL_CHAOS_FROM needs CARL_CHAOS_OUT");
        let saved = std::fs::read_to_string(Path::new(&dir).join("matrix.json")).unwrap();
        rows = serde_json::from_str(&saved).unwrap();
        assert!(
            rows.len() >= from,
            "only {} rows saved, cannot resume from {from}",
            rows.len()
        );
        rows.truncate(from);
    }
    let combinations = Fault::ALL.into_iter().flat_map(|fault| {
        [0.01, 0.05]
            .into_iter()
            .flat_map(move |rate| [0, 200].map(|jitter| (fault, rate, jitter)))
    });
    for (fault, rate, jitter_ms) in combinations.skip(from) {
        let run = chaos_run(&file, &text, fault, rate, jitter_ms);
        rows.push(serde_json::to_value(&run).unwrap());
        save("matrix.json", &rows);
    }
}

/// What one kill did and found.
#[derive(Debug, serde::Serialize)]
struct KillRun {
    scenario: &'static str,
    /// The kill point: after this many of the apply's writes (0: while it loads and
    /// reads, before its first write).
    kill_after_writes: u64,
    /// Writes kong-sim had counted when carl was dead (those in flight land too).
    writes_before_kill: u64,
    writes_in_full_run: u64,
    compared: usize,
    mismatches: usize,
}

/// Kills carl (SIGKILL) applying `to` over what the gateway holds, once kong-sim has
/// counted `k` of its writes (with `k` = 0, 30 ms after it starts: loading, reading),
/// then runs again: the second run exits 0 and the oracle finds `to` exactly.
fn killed_run(
    gw: &Gateway,
    to: (&Path, &str),
    k: u64,
    scenario: &'static str,
    full: u64,
) -> KillRun {
    let before = gw.writes().unwrap();
    let mut child = gw
        .carl()
        .args(["reconcile", "--apply", "--no-backup", "-f"])
        .arg(to.0)
        .spawn_unheard();
    if k == 0 {
        std::thread::sleep(Duration::from_millis(30));
    } else {
        gw.wait_for_writes(scenario, &mut child, before, k, Duration::from_secs(120));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let writes = gw.writes().unwrap() - before;
    gw.carl()
        .args(["reconcile", "--apply", "--no-backup", "-f"])
        .arg(to.0)
        .assert()
        .code(0);
    let v = assert_matches(gw, to.1, &format!("{scenario} killed after {k} writes"));
    KillRun {
        scenario,
        kill_after_writes: k,
        writes_before_kill: writes,
        writes_in_full_run: full,
        compared: v.compared,
        mismatches: v.mismatches.len(),
    }
}

/// The writes of a whole apply of `to` on a gateway holding `from`.
fn full_apply_writes(from: Option<&Path>, to: &Path) -> u64 {
    let gw = sim();
    if let Some(from) = from {
        apply_quietly(&gw, from);
    }
    let before = gw.writes().unwrap();
    apply_quietly(&gw, to);
    gw.writes().unwrap() - before
}

fn apply_quietly(gw: &Gateway, file: &Path) {
    gw.carl()
        .args(["reconcile", "--apply", "--no-backup", "-f"])
        .arg(file)
        .assert()
        .code(0);
}

/// `kills` runs, each killed at its own point of an apply: the first of each
/// scenario before any write, the others after a share of the writes spread evenly up
/// to the last. Half create a gateway into an empty one, half change 30% of it
/// (updates, deletes, creates).
fn kill_anywhere(services: usize, kills: u32, latency_ms: u64) -> Vec<KillRun> {
    let dir = tempfile::tempdir().unwrap();
    let (base, base_text) = generated(dir.path(), services, 0);
    let (changed, changed_text) = generated(dir.path(), services, 30);
    let create_writes = full_apply_writes(None, &base);
    let change_writes = full_apply_writes(Some(&base), &changed);
    let per_scenario = kills.div_ceil(2);
    let mut rows = Vec::new();
    for i in 0..kills {
        let share = f64::from(i / 2) / f64::from(per_scenario);
        let gw = sim();
        let (scenario, to, full) = if i % 2 == 0 {
            (
                "create",
                (base.as_path(), base_text.as_str()),
                create_writes,
            )
        } else {
            apply_quietly(&gw, &base);
            (
                "change",
                (changed.as_path(), changed_text.as_str()),
                change_writes,
            )
        };
        // Latency so the kill lands while writes are still going.
        faults(&gw, json!({"latency_ms": latency_ms}));
        let k = (full as f64 * share) as u64;
        let row = killed_run(&gw, to, k, scenario, full);
        eprintln!("{row:?}");
        rows.push(row);
    }
    rows
}

/// The regular suite's share: four kills of a create and a change of a 30-service
/// gateway, before the first write and half-way.
#[test]
fn a_run_killed_anywhere_converges_on_the_next_run() {
    let rows = kill_anywhere(30, 4, 2);
    assert!(rows.iter().all(|r| r.mismatches == 0));
}

/// `cargo xtask chaos`: 20 kills spread over the applies of a 500-service gateway.
#[test]
#[ignore = "long: cargo xtask chaos"]
fn kill_anywhere_20() {
    let rows = kill_anywhere(500, 20, 2);
    save("kills.json", &rows);
    assert!(rows.iter().all(|r| r.mismatches == 0));
}

/// A team's services (each with a route and a plugin) and upstreams (each with a
/// target), named after the team, as the two lists of a file.
fn team_lists(name: &str, n: usize) -> (String, String) {
    let mut services = String::new();
    let mut upstreams = String::new();
    for i in 0..n {
        services.push_str(&format!(
            "- name: {name}-svc-{i}\n  host: {name}-up-{i}\n  routes:\n  - name: {name}-route-{i}\n    \
             paths: [/{name}/{i}]\n  plugins:\n  - name: rate-limiting\n    config: {{minute: {}}}\n",
            10 + i
        ));
        upstreams.push_str(&format!(
            "- name: {name}-up-{i}\n  targets:\n  - target: 10.{}.0.{i}:80\n",
            name.len()
        ));
    }
    (services, upstreams)
}

/// The file of `teams`, scoped by `select_tag` if given.
fn team_file(teams: &[(&str, usize)], select_tag: Option<&str>) -> String {
    let mut head = String::from("_format_version: \"3.0\"\n");
    if let Some(tag) = select_tag {
        head.push_str(&format!("_info:\n  select_tags: [{tag}]\n"));
    }
    let (mut services, mut upstreams) = (String::new(), String::new());
    for (name, n) in teams {
        let (s, u) = team_lists(name, *n);
        services.push_str(&s);
        upstreams.push_str(&u);
    }
    format!("{head}services:\n{services}upstreams:\n{upstreams}")
}

/// Starts the apply of `a` in the background, applies `b` meanwhile; both exit 0.
fn apply_at_once(gw: &Gateway, a: &str, b: &str) {
    let mut first = gw
        .carl()
        .args(["reconcile", "--apply", "--no-backup", "-f", a])
        .spawn_unheard();
    let second = gw
        .carl()
        .args(["reconcile", "--apply", "--no-backup", "-f", b])
        .assert();
    assert_eq!(first.wait().unwrap().code(), Some(0));
    assert_eq!(second.get_output().status.code(), Some(0));
}

/// Two teams, each with its select tag, apply at the same moment against one gateway
/// (under latency, so their reads and writes interleave): both succeed, each team's
/// `--check` finds nothing to do, and the gateway holds both files, entity for entity.
#[test]
fn two_teams_applying_at_once_both_converge() {
    let gw = sim();
    faults(&gw, json!({"latency_ms": 3}));
    let dir = tempfile::tempdir().unwrap();
    let fa = write(
        dir.path(),
        "alpha.yaml",
        &team_file(&[("alpha", 40)], Some("alpha")),
    );
    let fb = write(
        dir.path(),
        "bravo.yaml",
        &team_file(&[("bravo", 40)], Some("bravo")),
    );
    apply_at_once(&gw, &fa, &fb);
    for f in [&fa, &fb] {
        gw.carl()
            .args(["reconcile", "--check", "-f", f])
            .assert()
            .code(0);
    }
    let both = team_file(&[("alpha", 40), ("bravo", 40)], None);
    assert_matches(&gw, &both, "two teams");
}

/// Two files without select tags applied at once each claim the whole gateway: which
/// entities remain depends on which run read first (one that read the other's
/// entities deletes them, as its plan said). Never silent: whatever the gateway holds,
/// each file's `--check` says drift (exit 2) exactly when the independent oracle
/// finds the gateway differs from that file, and re-applying one file makes the
/// gateway that file.
#[test]
fn two_untagged_files_applied_at_once_are_never_a_silent_loss() {
    let gw = sim();
    faults(&gw, json!({"latency_ms": 3}));
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (
        team_file(&[("alpha", 30)], None),
        team_file(&[("bravo", 30)], None),
    );
    let fa = write(dir.path(), "alpha.yaml", &a);
    let fb = write(dir.path(), "bravo.yaml", &b);
    apply_at_once(&gw, &fa, &fb);
    let holds = |text: &str| verdict(&gw, text).matches();
    let union = team_file(&[("alpha", 30), ("bravo", 30)], None);
    assert!(
        holds(&a) || holds(&b) || holds(&union),
        "the gateway holds one file, or both: {:?}",
        verdict(&gw, &union).mismatches
    );
    for (file, text) in [(&fa, &a), (&fb, &b)] {
        let expected = if holds(text) { 0 } else { 2 };
        gw.carl()
            .args(["reconcile", "--check", "-f", file])
            .assert()
            .code(expected);
    }
    apply_quietly(&gw, Path::new(&fb));
    assert_matches(&gw, &b, "bravo re-applied");
}
