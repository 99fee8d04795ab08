//! `carl validate` over the fixture corpus (`tests/fixtures/`): 0 on every good file,
//! offline and with the gateway; 1 on every wrong one, with `file:line:col`; and never
//! a write to the gateway.

mod common;

use std::path::PathBuf;

use common::Gateway;
use predicates::prelude::PredicateBooleanExt;
use predicates::str::contains;

fn fixtures(dir: &str) -> Vec<PathBuf> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(dir);
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&root)
        .expect("fixtures")
        .map(|e| e.expect("entry").path())
        .collect();
    paths.sort();
    paths
}

/// The variables the good fixtures interpolate.
fn with_env(mut cmd: common::Carl) -> common::Carl {
    for (k, v) in [
        ("DECK_OWNER", "web-team"),
        ("SHOP_API_KEY", "shop-key-from-env"),
        ("SHOP_PASSWORD", "shop-password-from-env"),
        ("SHOP_HMAC_SECRET", "shop-hmac-from-env"),
        ("SHOP_JWT_SECRET", "shop-jwt-from-env"),
    ] {
        cmd.env(k, v);
    }
    cmd
}

#[test]
fn good_fixtures_are_valid_offline_and_online_and_nothing_is_written() {
    let gw = Gateway::start();
    for path in fixtures("good") {
        let file = path.display().to_string();
        for online in [false, true] {
            let mut cmd = with_env(gw.carl());
            cmd.args(["validate", "-f", &file]);
            if online {
                cmd.arg("--online");
            }
            cmd.assert()
                .code(0)
                .stdout(contains("valid ("))
                .stderr(predicates::str::contains("error").not());
        }
    }
    if let Some(stats) = gw.stats() {
        let by_method = &stats["requests"]["by_method"];
        for method in ["PUT", "PATCH", "DELETE"] {
            assert_eq!(by_method[method].as_u64().unwrap_or(0), 0, "{stats}");
        }
        let posts = by_method["POST"].as_u64().unwrap_or(0);
        let validates = stats["requests"]["by_route"]
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(route, _)| route.starts_with("POST /schemas/"))
            .map(|(_, n)| n.as_u64().unwrap_or(0))
            .sum::<u64>();
        assert_eq!(posts, validates, "the only POSTs are validations: {stats}");
        for (collection, n) in stats["entities"].as_object().into_iter().flatten() {
            assert_eq!(n, 0, "{collection} written: {stats}");
        }
    }
}

#[test]
fn bad_fixtures_fail_with_their_place_and_nothing_is_sent() {
    let gw = Gateway::start();
    let bad = fixtures("bad");
    assert!(bad.len() >= 25);
    let before = gw.requests();
    let place = regex::Regex::new(r"error: \S+:\d+:\d+: ").unwrap();
    for path in bad {
        let file = path.display().to_string();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let out = gw
            .carl()
            .args(["validate", "--online", "-f", &file])
            .env("ACTIVE_COLOR", "blue")
            .env("ORDERS_PORT_WORD", "eighty")
            .assert()
            .code(1)
            .stderr(contains("nothing was written to Kong"));
        let stderr = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
        // Whole-file problems (not text, empty) name the file; the rest a line and column.
        let whole_file = ["binary.yml", "not-utf8.yaml", "empty.yaml"].contains(&name.as_str());
        assert!(
            place.is_match(&stderr) || (whole_file && stderr.contains(&format!("error: {file}: "))),
            "{name}: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{name}: {stderr}");
    }
    assert_eq!(
        gw.requests(),
        before,
        "a wrong file never leads to a request"
    );
}

/// `carl validate -f file`, its stderr to `stderr`: its exit code, its own peak RSS in
/// KiB (`VmHWM`, `carl_testkit::measure`) and its wall time.
fn validate_measured(
    file: &std::path::Path,
    stderr: std::process::Stdio,
) -> (i32, u64, std::time::Duration) {
    let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin!("carl"));
    cmd.args(["validate", "-f"])
        .arg(file)
        .env("NO_COLOR", "1")
        .stderr(stderr);
    let started = std::time::Instant::now();
    let (_, code, _, peak_kib) = carl_testkit::measure::run_measured(&mut cmd).unwrap();
    (code, peak_kib, started.elapsed())
}

/// A replay bomb: one anchor as large as carl records (90,000 events, 270 KB of text)
/// aliased 1,000 times, 90M events once expanded (about 12 GB at ~130 bytes an event).
/// It stays under the limits on recorded anchors and on aliases, so what stops it is
/// the bound on replayed events (four per byte of the file, at least 1M: here 1.1M,
/// reached at the 13th alias): measured 144 MB and 0.6 s in a release build, about 3.7 s
/// in a debug one. At 5M replayed events it held 508 MB for 4.4 s.
#[test]
fn an_anchor_replayed_past_the_budget_is_refused_in_bounded_time_and_memory() {
    let dir = tempfile::tempdir().unwrap();
    let mut yaml = String::from("_format_version: \"3.0\"\nbig: &big [");
    yaml.push_str(&"x, ".repeat(89_990));
    yaml.push_str("x]\nreplays:\n");
    yaml.push_str(&"- *big\n".repeat(1_000));
    let file = dir.path().join("replay.yaml");
    std::fs::write(&file, &yaml).unwrap();
    let stderr = dir.path().join("stderr.txt");
    let (code, peak_kib, wall) =
        validate_measured(&file, std::fs::File::create(&stderr).unwrap().into());
    assert_eq!(code, 1, "the replays must be refused");
    assert!(peak_kib < 200 * 1024, "peak RSS {} MiB", peak_kib / 1024);
    assert!(wall < std::time::Duration::from_secs(30), "{wall:?}");
    // Refused for what the aliases replay, at the alias that went past the budget
    // (4 × 277,016 bytes: the 13th replay of 90,000 events, on line 16).
    let stderr = std::fs::read_to_string(&stderr).unwrap();
    assert!(
        stderr.contains(&format!(
            "replay.yaml:16:3: the file exceeds carl's limits for YAML input: its aliases \
             (*ref) expand to more than the {} YAML events carl replays for a file of {} bytes",
            4 * yaml.len(),
            yaml.len()
        )),
        "{stderr}"
    );
}

/// An alias bomb (9^9 strings once expanded) is refused before it costs anything: in
/// bounded time and memory, carl's own peak RSS (`VmHWM`, `carl_testkit::measure`). With
/// serde-saphyr's default anchor budget it held 277 MB for 0.6 s before the refusal.
#[test]
fn an_alias_bomb_is_refused_in_bounded_time_and_memory() {
    let bomb =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/bad/yaml-alias-bomb.yaml");
    let (code, peak_kib, wall) = validate_measured(&bomb, std::process::Stdio::null());
    assert_eq!(code, 1, "the bomb must be refused");
    assert!(peak_kib < 64 * 1024, "peak RSS {} MiB", peak_kib / 1024);
    assert!(wall < std::time::Duration::from_secs(5), "{wall:?}");
}
