//! Hostile input: whatever the bytes, loading returns a state or errors with places in
//! the file, in bounded time and memory, and never panics.

use std::path::{Path, PathBuf};

use carl_config::{interpolate, load_paths, load_str};
use proptest::prelude::*;

fn no_env(_: &str) -> Option<String> {
    None
}

/// Loads `text` and checks every error's place lies in the text.
fn load_checked(text: &str) {
    if let Err(e) = load_str("h.yaml", text, &no_env) {
        let lines = text.lines().count() as u64 + 1;
        for d in &e.diagnostics {
            if let Some(l) = &d.location {
                assert!(l.line >= 1 && l.line <= lines, "{d} outside {lines} lines");
            }
            assert!(!d.message.is_empty());
        }
        let _ = e.render(carl_config::RenderOptions::default());
    }
}

fn good_fixtures() -> Vec<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/good");
    let mut texts = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_file() {
            texts.push(std::fs::read_to_string(p).unwrap());
        }
    }
    texts
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        load_checked(&String::from_utf8_lossy(&bytes));
    }

    /// Text made of the format's own words is far likelier to get deep into the loader
    /// than random bytes.
    #[test]
    fn format_shaped_text_never_panics(parts in proptest::collection::vec(prop_oneof![
        Just("_format_version: \"3.0\"\n"), Just("services:\n"), Just("- name: s\n"),
        Just("  host: h\n"), Just("  routes:\n"), Just("  - paths: [/a]\n"),
        Just("    plugins:\n"), Just("    - name: rate-limiting\n"), Just("      config: {minute: 1}\n"),
        Just("consumers:\n"), Just("- username: u\n"), Just("  keyauth_credentials: [{key: k}]\n"),
        Just("upstreams:\n"), Just("- name: u.internal\n"), Just("  targets: [{target: 1.2.3.4}]\n"),
        Just("  url: ${U:-http://x}\n"), Just("  port: ${P}\n"), Just("  tags: [\"a,b\"]\n"),
        Just("&a [*a]\n"), Just("{"), Just("]"), Just("\t"), Just("  "), Just("- "), Just(": "),
        Just("null\n"), Just("~\n"), Just("0755\n"), Just("\"\\u0000\"\n"), Just("é"),
    ], 0..40)) {
        load_checked(&parts.concat());
    }

    /// A real file with one byte changed, inserted or removed: still errors with places.
    #[test]
    fn mutated_good_files_never_panic(which in 0usize..7, at in any::<prop::sample::Index>(), op in 0u8..3, byte in any::<u8>()) {
        let texts = good_fixtures();
        let text = texts[which % texts.len()].as_bytes();
        let i = at.index(text.len().max(1)).min(text.len());
        let mut mutated = text.to_vec();
        match op {
            0 if i < mutated.len() => mutated[i] = byte,
            1 => mutated.insert(i, byte),
            _ if i < mutated.len() => { mutated.remove(i); }
            _ => {}
        }
        load_checked(&String::from_utf8_lossy(&mutated));
    }

    #[test]
    fn interpolation_never_panics_and_leaves_plain_text_alone(s in ".{0,64}") {
        let env = |name: &str| (name == "SET").then(|| "value".to_owned());
        let out = interpolate(&s, &env);
        if !s.contains('$') {
            prop_assert_eq!(out.unwrap(), s.clone());
        }
        // A literal `$${` always survives as `${`.
        let escaped = format!("a$${{{}", s.replace('$', ""));
        prop_assert_eq!(interpolate(&escaped, &env).unwrap(), format!("a${{{}", s.replace('$', "")));
    }

    #[test]
    fn unset_variables_use_their_default(name in "[A-Z][A-Z0-9_]{0,12}", default in "[a-z0-9./:-]{0,20}") {
        prop_assume!(name != "SET");
        let env = |n: &str| (n == "SET").then(|| "value".to_owned());
        prop_assert_eq!(interpolate(&format!("x${{{name}:-{default}}}y"), &env).unwrap(), format!("x{default}y"));
        let bare = format!("${{{name}}}");
        prop_assert!(interpolate(&bare, &env).is_err());
    }
}

#[test]
fn deep_nesting_is_refused_without_overflowing_the_stack() {
    for depth in [10_000, 100_000] {
        let text = format!(
            "_format_version: \"3.0\"\nx: {}{}\n",
            "[".repeat(depth),
            "]".repeat(depth)
        );
        let err = load_str("deep.yaml", &text, &no_env).unwrap_err();
        assert!(err.to_string().contains("deep.yaml:"), "{err}");
        let text = format!(
            "_format_version: \"3.0\"\nx: {}1{}\n",
            "{a: ".repeat(depth),
            "}".repeat(depth)
        );
        assert!(load_str("deep.yaml", &text, &no_env).is_err());
    }
}

#[test]
fn a_100_mb_file_is_refused_before_it_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("huge.yaml");
    // Sparse: 100 MB long without writing 100 MB.
    std::fs::File::create(&path)
        .unwrap()
        .set_len(100 * 1024 * 1024)
        .unwrap();
    let started = std::time::Instant::now();
    let err = load_paths(&[path], &no_env).unwrap_err();
    assert!(
        err.to_string()
            .contains("the file is 100 MiB; carl reads files up to 64 MiB"),
        "{err}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}

#[test]
fn a_directory_of_binaries_gives_one_clear_error_per_file() {
    let dir = tempfile::tempdir().unwrap();
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    for i in 0..5 {
        let bytes: Vec<u8> = (0..4096)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                (seed >> 24) as u8
            })
            .collect();
        std::fs::write(dir.path().join(format!("blob{i}.yaml")), bytes).unwrap();
    }
    let err = load_paths(&[PathBuf::from(dir.path())], &no_env).unwrap_err();
    assert_eq!(err.diagnostics.len(), 5, "{err}");
    for d in &err.diagnostics {
        assert!(d.message.starts_with("not UTF-8 text"), "{d}");
    }
}
