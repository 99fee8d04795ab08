//! The CI templates in `docs/ci/` run as written. Each template is parsed as YAML, and
//! the scripts of its jobs that call carl are run by bash, in the order a pipeline
//! runs them (plan, apply, then the scheduled drift check, once clean and once after a
//! change made behind carl's back), with the template's own variables and carl on the
//! PATH. Only the lines that install carl are left out (the test builds it) and those
//! that call GitLab's or GitHub's API. What each job leaves as an artefact or a report
//! must be there, in the shape GitLab's widget and a reviewer read.

mod common;

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use common::Gateway;
use serde_json::{Value, json};

fn template(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("docs/ci")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap();
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{}: not YAML: {e}", path.display()))
}

/// A pipeline's workspace: the repository's gateway file, carl on the PATH, the
/// template's variables, `CARL_KONG_ADDR` pointing at the test's gateway.
struct Runner<'a> {
    gw: &'a Gateway,
    dir: tempfile::TempDir,
    env: BTreeMap<String, String>,
}

impl<'a> Runner<'a> {
    fn new(gw: &'a Gateway, variables: &Value) -> Runner<'a> {
        let dir = tempfile::tempdir().unwrap();
        let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("gateway.yaml.example");
        std::fs::copy(example, dir.path().join("gateway.yaml")).unwrap();
        let carl = Path::new(assert_cmd::cargo::cargo_bin!("carl"));
        let mut env = BTreeMap::new();
        for (k, v) in variables.as_object().unwrap() {
            // `${{ secrets.X }}` and the like are the platform's to fill in.
            if let Some(v) = v.as_str().filter(|v| !v.contains("${{")) {
                env.insert(k.clone(), v.to_owned());
            }
        }
        env.insert(
            "PATH".into(),
            format!("{}:/usr/bin:/bin", carl.parent().unwrap().display()),
        );
        env.insert("CARL_KONG_ADDR".into(), gw.url.clone());
        env.insert("NO_COLOR".into(), "1".into());
        for (k, file) in [
            ("GITHUB_STEP_SUMMARY", "summary.md"),
            ("GITHUB_PATH", "github-path"),
        ] {
            env.insert(k.into(), dir.path().join(file).display().to_string());
        }
        Runner { gw, dir, env }
    }

    fn path(&self, file: &str) -> std::path::PathBuf {
        self.dir.path().join(file)
    }

    fn read(&self, file: &str) -> String {
        std::fs::read_to_string(self.path(file)).unwrap_or_else(|e| panic!("{file}: {e}"))
    }

    /// Runs one script as the CI platform would (`bash -e`); its exit code and output.
    fn script(&self, script: &str) -> (i32, String) {
        let out = Command::new("bash")
            .args(["-e", "-c", script])
            .current_dir(self.dir.path())
            .env_clear()
            .envs(&self.env)
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.code().unwrap_or(-1), text)
    }

    /// Runs every script that calls carl, in order; the last exit code and all output.
    fn job(&self, scripts: &[String]) -> (i32, String) {
        let mut all = String::new();
        for script in scripts {
            let (code, text) = self.script(script);
            all.push_str(&text);
            if code != 0 {
                return (code, all);
            }
        }
        (0, all)
    }

    /// Changes the gateway behind carl's back, as an operator's curl would.
    fn drift(&self) {
        let (status, body) = self.gw.call(
            "PATCH",
            "/services/orders",
            Some(json!({"host": "hand-edited.internal"})),
        );
        assert_eq!(status, 200, "{body}");
    }
}

/// Scripts that call carl, leaving out API calls to the CI platform (`gh`, `curl` to
/// GitLab) that need its tokens.
fn carl_scripts(items: impl IntoIterator<Item = String>) -> Vec<String> {
    items
        .into_iter()
        .filter(|s| s.lines().any(|l| l.trim_start().starts_with("carl ")))
        .collect()
}

fn strings(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    }
}

fn assert_backup_is_private(r: &Runner) {
    let backups: Vec<_> = std::fs::read_dir(r.path("backups"))
        .expect("the apply left a backup")
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(backups.len(), 1, "{backups:?}");
    let mode = std::fs::metadata(&backups[0]).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "the backup holds secrets");
}

#[test]
fn the_gitlab_template_plans_applies_and_checks_drift() {
    let gw = Gateway::start();
    let t = template("gitlab-ci.yml");
    let r = Runner::new(&gw, &t["variables"]);
    let job = |name: &str| {
        let job = &t[name];
        assert!(job.is_object(), "the template has a job {name}");
        // GitLab runs `script` (the install lines are in `before_script`).
        carl_scripts(strings(&job["script"]))
    };
    let (plan, apply, drift) = (job("carl:plan"), job("carl:apply"), job("carl:drift"));
    assert!(plan.iter().any(|s| s.contains("--plan")), "{plan:?}");

    let (code, log) = r.job(&plan);
    assert_eq!(code, 0, "plan job:\n{log}");
    assert!(
        log.contains("Plan: 7 to create, 0 to update, 0 to delete."),
        "{log}"
    );
    // What the job declares as artefacts and reports exists, in the shape read.
    let artifacts = &t["carl:plan"]["artifacts"];
    for file in strings(&artifacts["paths"]) {
        assert!(r.path(&file).exists(), "artefact {file}");
    }
    let report = artifacts["reports"]["terraform"].as_str().unwrap();
    let widget: Value = serde_json::from_str(&r.read(report)).unwrap();
    assert_eq!(widget, json!({"create": 7, "update": 0, "delete": 0}));
    assert!(r.read("plan.md").starts_with("### carl plan"));

    let (code, log) = r.job(&apply);
    assert_eq!(code, 0, "apply job:\n{log}");
    assert!(log.contains("Saved plan plan.json checked"), "{log}");
    assert_backup_is_private(&r);

    let (code, log) = r.job(&drift);
    assert_eq!(code, 0, "drift job, nothing changed:\n{log}");
    r.drift();
    let (code, log) = r.job(&drift);
    assert_eq!(code, 2, "drift job after a hand edit fails:\n{log}");
    assert!(r.read("drift.md").contains("hand-edited.internal"));
}

#[test]
fn the_github_workflow_plans_applies_and_checks_drift() {
    let gw = Gateway::start();
    let t = template("github-actions.yml");
    let r = Runner::new(&gw, &t["env"]);
    let job = |name: &str| {
        let steps = t["jobs"][name]["steps"].as_array().expect("steps").clone();
        let runs = steps.iter().filter(|s| {
            let name = s["name"].as_str().unwrap_or_default();
            !name.starts_with("Install") && !s["run"].as_str().unwrap_or_default().contains("gh ")
        });
        carl_scripts(runs.filter_map(|s| s["run"].as_str().map(str::to_owned)))
    };
    let (plan, apply, drift) = (job("plan"), job("apply"), job("drift"));

    let (code, log) = r.job(&plan);
    assert_eq!(code, 0, "plan job:\n{log}");
    assert!(
        log.contains("Plan: 7 to create, 0 to update, 0 to delete."),
        "{log}"
    );
    assert!(r.read("summary.md").starts_with("### carl plan"));
    for file in ["plan.json", "plan.md"] {
        assert!(r.path(file).exists(), "artefact {file}");
    }

    let (code, log) = r.job(&apply);
    assert_eq!(code, 0, "apply job:\n{log}");
    assert_backup_is_private(&r);

    let (code, log) = r.job(&drift);
    assert_eq!(code, 0, "drift job, nothing changed:\n{log}");
    r.drift();
    let (code, log) = r.job(&drift);
    assert_eq!(code, 2, "drift job after a hand edit fails the run:\n{log}");
    assert!(r.read("summary.md").contains("hand-edited.internal"));
}
