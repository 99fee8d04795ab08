//! The plan-file reader against hostile files: arbitrary bytes, JSON of the right
//! shape holding nonsense, deep nesting, a file too large to read. A refusal, never a
//! panic, and never an unbounded read.

use carl_model::LiveState;
use carl_planner::saved::{MAX_PLAN_FILE_BYTES, SavedPlan};
use carl_planner::{Schemas, plan};
use proptest::prelude::*;

fn desired() -> carl_config::DesiredState {
    carl_config::load_str(
        "gw.yaml",
        "_format_version: '3.0'\nservices:\n- name: a\n  host: a.internal\n",
        &|_| None,
    )
    .unwrap()
}

/// JSON shaped like a saved plan, with values of every type where the fields are.
fn plan_like() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        Just("null".to_owned()),
        Just("1".to_owned()),
        Just("-1".to_owned()),
        Just("1e999".to_owned()),
        Just("\"\"".to_owned()),
        "\"[a-z~+=-]{0,8}\"",
        Just("[]".to_owned()),
        Just("{}".to_owned()),
    ];
    let op = prop_oneof![
        leaf.clone(),
        (leaf.clone(), leaf.clone(), leaf.clone()).prop_map(|(a, k, c)| format!(
            "{{\"action\":{a},\"kind\":{k},\"changes\":{c},\"label\":\"x\",\"id\":\"y\"}}"
        )),
    ];
    (
        prop_oneof![Just("1".to_owned()), leaf.clone()],
        proptest::collection::vec(op, 0..4),
        leaf.clone(),
        leaf,
    )
        .prop_map(|(version, ops, files, summary)| {
            format!(
                "{{\"format_version\":{version},\"carl_version\":\"0\",\"kong_address\":\"http://k\",\
                 \"select_tags\":[],\"live_fingerprint\":\"sha256:0\",\"files\":{files},\
                 \"summary\":{summary},\"ops\":[{}]}}",
                ops.join(",")
            )
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_text_is_refused_without_a_panic(text in "\\PC{0,512}") {
        prop_assert!(SavedPlan::from_json(&text).is_err());
    }

    /// Whatever a damaged plan holds, reading it and checking it against the files and
    /// the gateway ends in a plan applied or a refusal: never a panic.
    #[test]
    fn plan_shaped_nonsense_is_read_or_refused_never_a_panic(text in plan_like()) {
        if let Ok(saved) = SavedPlan::from_json(&text) {
            let desired = desired();
            let _ = saved.check_files(&desired);
            let live = LiveState::default();
            let fresh = plan(&desired, &live, &Schemas::default()).unwrap();
            let _ = saved.check(&fresh, &live, "http://k");
        }
    }
}

#[test]
fn deep_nesting_is_refused_without_overflowing_the_stack() {
    let deep = format!("{{\"ops\":{}{}}}", "[".repeat(100_000), "]".repeat(100_000));
    let err = SavedPlan::from_json(&deep).unwrap_err();
    assert!(err.contains("recursion limit"), "{err}");
}

#[test]
fn a_file_larger_than_the_limit_is_refused_before_it_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("plan.json");
    // Sparse: no disk, and reading it whole would take seconds and the memory.
    let file = std::fs::File::create(&path).unwrap();
    file.set_len(MAX_PLAN_FILE_BYTES + 1).unwrap();
    let err = SavedPlan::read(&path).unwrap_err();
    assert!(err.contains("larger than 512 MiB"), "{err}");
    // A plan file that is not one says so.
    std::fs::write(&path, "format_version: 1\n").unwrap();
    let err = SavedPlan::read(&path).unwrap_err();
    assert!(err.starts_with("not a carl plan file"), "{err}");
}
