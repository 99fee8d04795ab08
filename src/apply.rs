//! `carl reconcile --apply`: runs the plan through `carl-executor` and reports, for the
//! person watching (a progress bar on a terminal, a line every few seconds in CI) and
//! for the one reading the log afterwards (each op's outcome, then what failed, why,
//! and what that skipped).

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use carl_admin_client::AdminClient;
use carl_admin_client::EntityErrors;
use carl_config::DesiredState;
use carl_config::dump::DumpOptions;
use carl_executor::config::ConfigOutcome;
use carl_executor::{Outcome, Report, Stop};
use carl_model::LiveState;
use carl_planner::{Action, Op, Plan, render};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::output::{ERROR, OK, WARN, report_error, write_private};
use crate::{EXIT_ERROR, EXIT_INTERRUPTED, EXIT_OK};

/// How often CI logs get a progress line.
const PLAIN_PROGRESS_EVERY: Duration = Duration::from_secs(10);

/// Progress on stderr: a bar on a terminal, a plain line now and then elsewhere,
/// nothing with `--quiet`.
struct Progress {
    bar: Option<ProgressBar>,
    plain: bool,
    total: usize,
    finished: usize,
    failed: usize,
    started: Instant,
    last_line: Instant,
}

impl Progress {
    fn new(total: usize, quiet: bool) -> Progress {
        let terminal = std::io::stderr().is_terminal();
        let bar = (terminal && !quiet).then(|| {
            let bar = ProgressBar::with_draw_target(
                Some(total as u64),
                ProgressDrawTarget::stderr_with_hz(10),
            );
            if let Ok(style) = ProgressStyle::with_template(
                "{bar:30} {pos}/{len} changes, {per_sec}, {elapsed} (eta {eta})",
            ) {
                bar.set_style(style);
            }
            bar
        });
        Progress {
            bar,
            plain: !terminal && !quiet,
            total,
            finished: 0,
            failed: 0,
            started: Instant::now(),
            last_line: Instant::now(),
        }
    }

    /// Prints one op's line on stdout without tearing the bar.
    fn println(&self, line: String) {
        match &self.bar {
            Some(bar) => bar.suspend(|| anstream::println!("{line}")),
            None => anstream::println!("{line}"),
        }
    }

    fn advance(&mut self, failed: bool) {
        self.finished += 1;
        self.failed += usize::from(failed);
        if let Some(bar) = &self.bar {
            bar.inc(1);
        }
        if self.plain && self.last_line.elapsed() >= PLAIN_PROGRESS_EVERY {
            self.last_line = Instant::now();
            let secs = self.started.elapsed().as_secs_f64().max(0.001);
            anstream::eprintln!(
                "progress: {}/{} changes ({}%), {} failed, {:.0} changes/s",
                self.finished,
                self.total,
                self.finished * 100 / self.total.max(1),
                self.failed,
                self.finished as f64 / secs
            );
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// Applies `plan`, printing each outcome and a closing report. Ctrl-C stops starting
/// new writes; a second Ctrl-C quits at once.
pub async fn apply(client: &AdminClient, plan: &Plan, parallelism: usize, quiet: bool) -> u8 {
    if plan.is_empty() {
        return EXIT_OK;
    }
    let n = plan.ops.len();
    anstream::println!(
        "\nApplying {n} change{} ({parallelism} at a time):",
        if n == 1 { "" } else { "s" }
    );
    let stop = Stop::default();
    let on_ctrl_c = {
        let stop = stop.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                anstream::eprintln!(
                    "\n{WARN}Stopping{WARN:#}: no new writes; waiting for those in flight \
                     (Ctrl-C again to quit at once)."
                );
                stop.request();
                if tokio::signal::ctrl_c().await.is_ok() {
                    std::process::exit(i32::from(EXIT_INTERRUPTED));
                }
            }
        })
    };
    let mut progress = Progress::new(n, quiet);
    let report = carl_executor::apply_until(client, plan, parallelism, &stop, |op, outcome| {
        progress.println(outcome_line(plan, op, outcome));
        progress.advance(!matches!(outcome, Outcome::Done));
    })
    .await;
    progress.finish();
    on_ctrl_c.abort();
    summarize(plan, &report)
}

/// Applies `plan` to a DB-less Kong: one configuration, loaded whole (`POST /config`)
/// or not at all. A refusal is reported at the places in the files that Kong's errors
/// point to.
pub async fn apply_db_less(
    client: &AdminClient,
    plan: &Plan,
    desired: &DesiredState,
    planned_hash: Option<&str>,
    quiet: bool,
) -> u8 {
    if plan.is_empty() {
        return EXIT_OK;
    }
    let n = plan.ops.len();
    anstream::println!(
        "\nApplying {n} change{} as one configuration (this Kong runs without a database: \
         POST /config loads all of it or none):",
        plural(n)
    );
    let spinner = (!quiet && std::io::stderr().is_terminal()).then(|| {
        let s = ProgressBar::new_spinner();
        s.set_message("loading the configuration");
        s.enable_steady_tick(Duration::from_millis(100));
        s
    });
    let report = carl_executor::config::apply_config(client, plan, planned_hash).await;
    if let Some(s) = spinner {
        s.finish_and_clear();
    }
    let pace = format!(
        "{:.1} s, {} request{}",
        report.elapsed.as_secs_f64(),
        report.requests,
        plural(report.requests as usize)
    );
    match report.outcome {
        ConfigOutcome::Applied | ConfigOutcome::Unchanged => {
            for op in &plan.ops {
                anstream::println!("{}", outcome_line(plan, op, &Outcome::Done));
            }
            if report.outcome == ConfigOutcome::Unchanged {
                anstream::eprintln!(
                    "{WARN}warning{WARN:#}: Kong answered that it runs this very configuration \
                     already (304 to check_hash), so it did not reload it."
                );
            }
            let s = plan.summary;
            anstream::println!(
                "\n{OK}Apply complete{OK:#}: {} created, {} updated, {} deleted, in one \
                 configuration. {pace}.",
                s.create,
                s.update,
                s.delete
            );
            EXIT_OK
        }
        ConfigOutcome::Refused { message, errors } => {
            for line in refusal_lines(plan, desired, &errors) {
                report_error(line);
            }
            if errors.is_empty() {
                report_error(format!("Kong refused the configuration: {message}"));
            }
            anstream::println!(
                "\n{ERROR}Apply failed{ERROR:#}: Kong refused the configuration ({} entit{} at \
                 fault), so nothing changed. {pace}.",
                errors.len(),
                if errors.len() == 1 { "y" } else { "ies" }
            );
            EXIT_ERROR
        }
        ConfigOutcome::Failed(why) => {
            report_error(why);
            anstream::println!(
                "\n{ERROR}Apply failed{ERROR:#}: the configuration was not loaded, so nothing \
                 changed. {pace}."
            );
            EXIT_ERROR
        }
    }
}

/// Kong's errors about entities, each at its place in the files when the plan wrote
/// that entity, else named by kind, name and id.
fn refusal_lines(plan: &Plan, desired: &DesiredState, errors: &[EntityErrors]) -> Vec<String> {
    let mut lines = Vec::new();
    for e in errors {
        let op = plan.ops.iter().find(|op| {
            Some(op.kind) == e.kind
                && e.id.as_deref() == Some(op.id.as_str())
                && op.action != Action::Delete
        });
        let entity = op
            .and_then(|op| plan.sources.get(op.index).copied().flatten())
            .and_then(|i| desired.entities.get(i));
        if let Some(entity) = entity {
            lines.extend(
                entity
                    .diagnostics(&error_tree(e))
                    .iter()
                    .map(|d| d.to_string()),
            );
            continue;
        }
        let who = match (&e.name, &e.id) {
            (Some(name), Some(id)) => format!("{} {name} ({id})", e.entity_type),
            (Some(name), None) => format!("{} {name}", e.entity_type),
            (None, Some(id)) => format!("{} {id}", e.entity_type),
            (None, None) => e.entity_type.clone(),
        };
        for f in &e.errors {
            lines.push(match &f.field {
                Some(field) => format!("{who} (not from the files): {field}: {}", f.message),
                None => format!("{who} (not from the files): {}", f.message),
            });
        }
    }
    lines
}

/// Kong's flattened errors as the error tree of an Admin API answer (`@entity` and
/// fields by path), which the desired state knows how to place.
fn error_tree(e: &EntityErrors) -> serde_json::Value {
    use serde_json::{Map, Value};
    let mut tree = Map::new();
    for f in &e.errors {
        let Some(field) = &f.field else {
            let list = tree
                .entry("@entity")
                .or_insert_with(|| Value::Array(Vec::new()));
            if let Value::Array(list) = list {
                list.push(Value::String(f.message.clone()));
            }
            continue;
        };
        carl_model::set_path(&mut tree, field, Value::String(f.message.clone()));
    }
    Value::Object(tree)
}

fn outcome_line(plan: &Plan, op: &Op, outcome: &Outcome) -> String {
    let verb = match op.action {
        Action::Create => "created",
        Action::Update => "updated",
        Action::Delete => "deleted",
    };
    let head = render::headline(op);
    match outcome {
        Outcome::Done => format!("  {head}: {OK}{verb}{OK:#}"),
        Outcome::Failed(why) => format!("  {head}: {ERROR}failed{ERROR:#}: {why}"),
        Outcome::Skipped { because } => {
            let cause = &plan.ops[*because];
            format!(
                "  {head}: {WARN}skipped{WARN:#} because {} {} failed",
                cause.kind, cause.label
            )
        }
        // Never reported one by one: the summary counts them.
        Outcome::NotRun => format!("  {head}: not run"),
    }
}

/// The closing report: counts, time and request rate; on failure, every failed op
/// again with Kong's message (the on-call reads the end of the log first).
fn summarize(plan: &Plan, report: &Report) -> u8 {
    let secs = report.elapsed.as_secs_f64();
    let pace = format!(
        "{:.2} s, {} request{} ({:.0}/s)",
        secs,
        report.requests,
        if report.requests == 1 { "" } else { "s" },
        report.requests as f64 / secs.max(0.001)
    );
    if report.succeeded() {
        let s = plan.summary;
        anstream::println!(
            "\n{OK}Apply complete{OK:#}: {} created, {} updated, {} deleted. {pace}.",
            s.create,
            s.update,
            s.delete
        );
        return EXIT_OK;
    }
    let c = report.counts();
    let not_run = if c.not_run > 0 {
        format!(", {} not run", c.not_run)
    } else {
        String::new()
    };
    anstream::println!(
        "\n{ERROR}Apply failed{ERROR:#}: {} done, {} failed, {} skipped{not_run}. {pace}.",
        c.done,
        c.failed,
        c.skipped
    );
    let failed: Vec<(&Op, &str)> = plan
        .ops
        .iter()
        .zip(&report.outcomes)
        .filter_map(|(op, o)| match o {
            Outcome::Failed(why) => Some((op, why.as_str())),
            _ => None,
        })
        .collect();
    if !failed.is_empty() {
        anstream::println!("\nFailed:");
        for (op, why) in failed {
            let skipped = report
                .outcomes
                .iter()
                .filter(|o| matches!(o, Outcome::Skipped { because } if *because == op.index))
                .count();
            let also = if skipped > 0 {
                format!(" ({skipped} dependent change{} skipped)", plural(skipped))
            } else {
                String::new()
            };
            anstream::println!("  {}: {why}{also}", render::headline(op));
        }
    }
    if report.stopped {
        anstream::println!(
            "\nStopped before {} change{} could start.",
            c.not_run,
            plural(c.not_run)
        );
    }
    anstream::println!(
        "Run carl again (after fixing the cause): every write is idempotent, so it converges from wherever this run stopped."
    );
    if report.stopped {
        EXIT_INTERRUPTED
    } else {
        EXIT_ERROR
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// Saves `live` (the entities in scope, as read for this plan) as a desired-state file
/// in `dir`, named after the gateway and the time: `127.0.0.1_8001-20261125T080933Z.yaml`.
/// Ids are kept, so applying it recreates the same entities. Mode 0600: it holds the
/// gateway's secrets.
pub fn backup(
    dir: &Path,
    addr: &str,
    live: &LiveState,
    select_tags: &[String],
) -> std::io::Result<PathBuf> {
    let text = carl_config::dump::dump(
        live,
        &DumpOptions {
            with_id: true,
            redact_secrets: false,
            select_tags: select_tags.to_vec(),
            json: false,
        },
    );
    let gateway: String = addr
        .split("://")
        .last()
        .unwrap_or(addr)
        .trim_end_matches('/')
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let stamp: String = humantime::format_rfc3339_seconds(std::time::SystemTime::now())
        .to_string()
        .chars()
        .filter(|c| !matches!(c, '-' | ':'))
        .collect();
    create_private_dir(dir)?;
    // Written under a name of this process's own, then published under the backup's
    // name: a carl killed while writing leaves no file named as a backup that holds
    // part of the gateway (applying that would delete the rest), only this dot file.
    let partial = dir.join(format!(".{gateway}-{stamp}.{}.partial", std::process::id()));
    if let Err(e) = write_private(&partial, text.as_bytes()) {
        let _ = std::fs::remove_file(&partial);
        return Err(e);
    }
    // Two applies in the same second, even at once, keep both backups: a hard link
    // never replaces a file, so each takes the first name free.
    let mut n = 1;
    let path = loop {
        let path = match n {
            1 => dir.join(format!("{gateway}-{stamp}.yaml")),
            _ => dir.join(format!("{gateway}-{stamp}-{n}.yaml")),
        };
        match std::fs::hard_link(&partial, &path) {
            Ok(()) => {
                let _ = std::fs::remove_file(&partial);
                break path;
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => n += 1,
            // A filesystem without hard links: a rename, which would replace a backup
            // another run published in the same instant.
            Err(_) if !path.exists() => {
                if let Err(e) = std::fs::rename(&partial, &path) {
                    let _ = std::fs::remove_file(&partial);
                    return Err(e);
                }
                break path;
            }
            Err(e) => {
                let _ = std::fs::remove_file(&partial);
                return Err(e);
            }
        }
    };
    // The new name made durable too, where the filesystem can (the content already is,
    // by `write_private`); some network filesystems cannot sync a directory.
    #[cfg(unix)]
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(path)
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}
