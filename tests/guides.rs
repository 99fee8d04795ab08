//! The guides in `docs/` run as written. A guide's ```yaml block that starts with
//! `# NAME.yaml` is written to that file; each line of a ```sh block is run by bash in
//! that directory, with carl on the PATH and `CARL_KONG_ADDR` pointing at the test's
//! gateway, and must exit 0 (or the `# exit N` at its end); a ```text block right after
//! a ```sh block is what those commands print, stdout then stderr, and must match.
//!
//! So a guide cannot drift from carl: change an output and its guide fails here.

mod common;

use std::path::Path;
use std::process::Command;

use common::Gateway;

struct Block {
    lang: String,
    text: String,
    /// 1-based line of the opening fence, for messages.
    line: usize,
}

/// The fenced blocks of a Markdown file, in order.
fn blocks(markdown: &str) -> Vec<Block> {
    let mut out = Vec::new();
    let mut open: Option<Block> = None;
    for (i, line) in markdown.lines().enumerate() {
        match (&mut open, line.strip_prefix("```")) {
            (None, Some(lang)) => {
                open = Some(Block {
                    lang: lang.trim().to_owned(),
                    text: String::new(),
                    line: i + 1,
                })
            }
            (Some(_), Some("")) => out.extend(open.take()),
            (Some(block), _) => {
                block.text.push_str(line);
                block.text.push('\n');
            }
            (None, None) => {}
        }
    }
    assert!(open.is_none(), "an unclosed code block");
    out
}

fn guide(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("docs")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A shell for a guide's commands: a clean environment, carl first on the PATH.
fn shell(gw: &Gateway, dir: &Path, line: &str, env: &[(&str, String)]) -> Command {
    let carl = Path::new(assert_cmd::cargo::cargo_bin!("carl"));
    let path = format!(
        "{}:{}",
        carl.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut cmd = Command::new("bash");
    cmd.args(["-c", line])
        .current_dir(dir)
        .env_clear()
        .env("PATH", path)
        .env("CARL_KONG_ADDR", &gw.url)
        .env("CARL_BACKUP_DIR", dir.join(".backups"))
        .env("NO_COLOR", "1");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// Runs a guide; returns everything its commands printed.
fn run_guide(name: &str, env: &[(&str, String)]) -> String {
    let gw = Gateway::start();
    let dir = tempfile::tempdir().unwrap();
    let mut printed = String::new();
    let mut last: Option<(usize, String)> = None;
    let mut ran = 0;
    for block in blocks(&guide(name)) {
        let at = format!("docs/{name}:{}", block.line);
        match block.lang.as_str() {
            "yaml" => {
                let first = block.text.lines().next().unwrap_or_default();
                if let Some(file) = first.strip_prefix("# ").filter(|f| f.ends_with(".yaml")) {
                    std::fs::write(dir.path().join(file), &block.text).unwrap();
                }
                last = None;
            }
            "sh" => {
                let mut output = String::new();
                for line in block.text.lines().map(str::trim) {
                    if line.is_empty() || line.starts_with('#') {
                        continue;
                    }
                    let expected: i32 = line
                        .rsplit_once("# exit ")
                        .and_then(|(_, code)| code.trim().parse().ok())
                        .unwrap_or(0);
                    let out = shell(&gw, dir.path(), line, env).output().unwrap();
                    let (stdout, stderr) = (
                        String::from_utf8_lossy(&out.stdout),
                        String::from_utf8_lossy(&out.stderr),
                    );
                    assert_eq!(
                        out.status.code(),
                        Some(expected),
                        "{at}: `{line}`\nstdout:\n{stdout}\nstderr:\n{stderr}"
                    );
                    output.push_str(&stdout);
                    output.push_str(&stderr);
                    ran += 1;
                }
                printed.push_str(&output);
                last = Some((block.line, output));
            }
            "text" => {
                if let Some((line, output)) = last.take() {
                    assert_eq!(
                        output.trim_end(),
                        block.text.trim_end(),
                        "docs/{name}:{line}: the commands print something else than {at} shows"
                    );
                }
            }
            _ => last = None,
        }
    }
    assert!(ran > 0, "docs/{name} ran no command");
    printed
}

#[test]
fn the_blue_green_guide_runs_as_written() {
    let printed = run_guide("blue-green.md", &[]);
    assert!(printed.contains("host: \"storefront-blue\" → \"storefront-green\""));
}

#[test]
fn the_multi_team_guide_runs_as_written() {
    let printed = run_guide("multi-team.md", &[]);
    assert!(printed.contains("- route \"shop\""));
}

/// The file-format guide's complete example: valid offline, applied to the gateway,
/// and then no drift, with its secrets set as a pipeline's masked variables would be and
/// never printed.
#[test]
fn the_file_format_example_applies_and_converges() {
    let gw = Gateway::start();
    let dir = tempfile::tempdir().unwrap();
    let example = blocks(&guide("file-format.md"))
        .into_iter()
        .find(|b| b.lang == "yaml" && b.text.starts_with("# gateway.yaml"))
        .expect("the complete example");
    std::fs::write(dir.path().join("gateway.yaml"), &example.text).unwrap();

    let leaf = rcgen::generate_simple_self_signed(vec!["shop.example.com".into()]).unwrap();
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = ca
        .self_signed(&rcgen::KeyPair::generate().unwrap())
        .unwrap();
    let signing = rcgen::KeyPair::generate().unwrap();
    let secrets = [
        ("SHOP_TLS_KEY", leaf.signing_key.serialize_pem()),
        ("SIGNING_PRIVATE_KEY", signing.serialize_pem()),
        ("ACME_API_KEY", "guide-key-auth-9f2c".to_string()),
        ("ACME_PASSWORD", "guide-password-71ad".to_string()),
        ("ACME_HMAC_SECRET", "guide-hmac-secret-0b3e".to_string()),
        ("ACME_JWT_SECRET", "guide-jwt-secret-c55d".to_string()),
    ];
    let mut env: Vec<(&str, String)> = vec![
        ("SHOP_TLS_CERT", leaf.cert.pem()),
        ("PARTNER_CA", ca.pem()),
        ("SIGNING_PUBLIC_KEY", signing.public_key_pem()),
    ];
    env.extend(secrets.iter().cloned());

    let mut printed = String::new();
    for (line, expected) in [
        ("carl validate -f gateway.yaml", 0),
        ("carl reconcile --apply -f gateway.yaml", 0),
        ("carl reconcile --check -f gateway.yaml", 0),
        (
            "ACTIVE_COLOR=green carl reconcile --check -f gateway.yaml",
            2,
        ),
    ] {
        let out = shell(&gw, dir.path(), line, &env).output().unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.status.code(), Some(expected), "`{line}`:\n{text}");
        printed.push_str(&text);
    }
    assert!(printed.contains("Apply complete: 27 created"), "{printed}");
    for (name, value) in &secrets {
        let probe = value.lines().nth(1).unwrap_or(value);
        assert!(!printed.contains(probe), "{name} was printed:\n{printed}");
    }
}
