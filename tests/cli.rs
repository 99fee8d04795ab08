//! The CLI's conventions, end to end: completions for every shell, man pages,
//! `--version`, and every flag's `CARL_*` variable taking effect. No gateway needed
//! except where a variable is shown to reach one.

mod common;

use std::process::Command;

use common::Gateway;
use predicates::str::contains;

fn carl() -> assert_cmd::Command {
    let mut cmd = assert_cmd::Command::new(assert_cmd::cargo::cargo_bin!("carl"));
    cmd.env_clear().env("NO_COLOR", "1");
    cmd
}

/// Whether `program` runs here (`bash` always does; zsh and fish may not be installed).
fn have(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn completions_are_generated_for_every_shell_and_parse() {
    let dir = tempfile::tempdir().unwrap();
    for (shell, checker) in [
        ("bash", Some("bash")),
        ("zsh", Some("zsh")),
        ("fish", Some("fish")),
        ("powershell", None),
    ] {
        let out = carl().args(["completions", shell]).assert().code(0);
        let script = String::from_utf8(out.get_output().stdout.clone()).unwrap();
        // Every command and a global flag are offered.
        for word in [
            "reconcile",
            "validate",
            "dump",
            "ping",
            "man",
            "--kong-addr",
            "--plan",
        ] {
            assert!(script.contains(word), "{shell} completion lacks {word}");
        }
        // The shell itself reads the script without a syntax error, where it exists.
        if let Some(checker) = checker.filter(|c| have(c)) {
            let path = dir.path().join(format!("carl.{shell}"));
            std::fs::write(&path, &script).unwrap();
            let status = Command::new(checker).arg("-n").arg(&path).status().unwrap();
            assert!(
                status.success(),
                "{checker} -n rejects the {shell} completion"
            );
        }
    }
    carl()
        .args(["completions", "tcsh"])
        .assert()
        .code(1)
        .stderr(contains("invalid value 'tcsh'"));
}

#[test]
fn man_pages_cover_every_command_with_its_variables() {
    let dir = tempfile::tempdir().unwrap();
    carl()
        .args(["man", "--dir"])
        .arg(dir.path())
        .assert()
        .code(0);
    for (page, words) in [
        ("carl.1", &["reconcile", "CARL_KONG_ADDR", "carl \\- "][..]),
        (
            "carl-reconcile.1",
            &["\\-\\-plan", "CARL_PLAN_FILE", "CARL_KONG_ADDR"][..],
        ),
        ("carl-validate.1", &["\\-\\-online"][..]),
        ("carl-ping.1", &["CARL_KONG_ADDR"][..]),
        ("carl-dump.1", &["\\-\\-redact\\-secrets"][..]),
        ("carl-completions.1", &["powershell"][..]),
    ] {
        let roff = std::fs::read_to_string(dir.path().join(page))
            .unwrap_or_else(|e| panic!("{page}: {e}"));
        assert!(
            roff.starts_with(".ie") || roff.contains(".TH"),
            "{page} is roff"
        );
        for word in words {
            assert!(roff.contains(word), "{page} lacks {word}:\n{roff}");
        }
    }
}

#[test]
fn version_names_the_kong_versions_supported() {
    carl()
        .arg("--version")
        .assert()
        .code(0)
        .stdout(contains("carl 0.1.0"))
        .stdout(contains(
            "Kong Gateway 3.x (OSS and Enterprise) fully; 2.8 for reading",
        ));
}

/// A pipeline that sets variables instead of flags: the mode, the files, the format and
/// the verbosity all come from `CARL_*`.
#[test]
fn variables_do_what_their_flags_do() {
    let gw = Gateway::start();
    let dir = tempfile::tempdir().unwrap();
    let file = common::write(
        dir.path(),
        "gateway.yaml",
        "_format_version: \"3.0\"\nservices:\n- name: env-only\n  host: env.internal\n",
    );
    gw.carl()
        .env("CARL_PLAN", "true")
        .env("CARL_FILES", &file)
        .env("CARL_FORMAT", "gitlab-report")
        .env("CARL_DETAILED_EXITCODE", "true")
        .env("CARL_VERBOSE", "1")
        .arg("reconcile")
        .assert()
        .code(2)
        .stdout("{\"create\":1,\"delete\":0,\"update\":0}\n")
        .stderr(contains("INFO"));
}
