//! `carl reconcile` and `carl validate`: load, read, plan, and print, apply or check.

use std::io::Write;

use crate::output::{OK, WARN, report_error};
use carl_admin_client::{AdminClient, Gateway};

use crate::connect::client;
use carl_config::DesiredState;
use carl_model::{Kind, LiveState};
use carl_planner::saved::SavedPlan;
use carl_planner::{Plan, Schemas, render};

use crate::cli::{FilesArgs, GlobalArgs, PlanFormat, ReconcileArgs, ValidateArgs};
use crate::{EXIT_CHANGES, EXIT_ERROR, EXIT_OK};
use futures_util::StreamExt;

/// Loads the desired state, printing every problem with its place.
fn load(files: &FilesArgs) -> Option<DesiredState> {
    match carl_config::load_paths(&files.files, &carl_config::process_env) {
        Ok(state) => {
            for w in &state.warnings {
                anstream::eprintln!("{WARN}warning{WARN:#}: {w}");
            }
            Some(state)
        }
        Err(e) => {
            // Coloured here; anstream strips colour for pipes, CI logs and NO_COLOR.
            let options = carl_config::RenderOptions {
                max: files.max_errors.max(1),
                color: true,
                snippets: true,
            };
            anstream::eprint!("{}", e.render(options));
            let n = e.diagnostics.len();
            anstream::eprintln!(
                "{n} problem{} in the desired state; nothing was written to Kong.",
                if n == 1 { "" } else { "s" }
            );
            None
        }
    }
}

pub async fn validate(global: &GlobalArgs, args: &ValidateArgs) -> u8 {
    let Some(state) = load(&args.files) else {
        return EXIT_ERROR;
    };
    if args.online {
        let client = match client(global) {
            Ok(c) => c,
            Err(e) => {
                report_error(e);
                return EXIT_ERROR;
            }
        };
        // One read-only request per entity, `--parallelism` at a time.
        let results: Vec<_> = futures_util::stream::iter(state.entities.iter())
            .map(|e| {
                let client = &client;
                async move { (e, client.validate(e.kind, &e.validation_body()).await) }
            })
            .buffered(usize::from(global.parallelism))
            .collect()
            .await;
        let mut problems = 0;
        for (entity, result) in results {
            match result {
                Ok(None) => {}
                Ok(Some(fields)) => {
                    for d in entity.diagnostics(&fields) {
                        report_error(d);
                        problems += 1;
                    }
                }
                Err(e) => {
                    report_error(format!("cannot validate with the gateway: {e}"));
                    return EXIT_ERROR;
                }
            }
        }
        if problems > 0 {
            anstream::eprintln!("{problems} problem(s) found by the gateway; nothing was written.");
            return EXIT_ERROR;
        }
    }
    let how = if args.online {
        "offline and by the gateway"
    } else {
        "offline"
    };
    anstream::println!(
        "{OK}valid{OK:#} ({how}): {} entities in {} file argument(s)",
        state.entities.len(),
        args.files.files.len()
    );
    // The process ends here: freeing ~70k entities one by one would only delay exit.
    std::mem::forget(state);
    EXIT_OK
}

pub async fn run(global: &GlobalArgs, args: &ReconcileArgs) -> u8 {
    let started = std::time::Instant::now();
    let client = client(global);
    // Reading costs requests × latency and loading costs CPU: when the files cannot
    // select tags, the whole gateway is read while they load. Only reads: nothing is
    // written before the files are valid, and a broken file reports its own errors.
    let needs_hash = !args.plan && !args.check;
    let early = match &client {
        Ok(c) if !carl_config::may_select_tags(&args.files.files) => {
            Some(EarlyRead::start(c.clone(), needs_hash))
        }
        _ => None,
    };
    let files = args.files.clone();
    let loaded = tokio::task::spawn_blocking(move || load(&files)).await;
    let Ok(Some(desired)) = loaded else {
        return EXIT_ERROR;
    };
    tracing::info!(
        entities = desired.entities.len(),
        ms = started.elapsed().as_millis() as u64,
        "desired state loaded"
    );
    let client = match client {
        Ok(c) => c,
        Err(e) => {
            report_error(e);
            return EXIT_ERROR;
        }
    };
    // A file that selects tags after all (the check above is textual): read again
    // with them.
    let mut early = early.filter(|_| desired.select_tags.is_none());
    tracing::info!(addr = client.addr(), "reading the gateway");
    let gateway = match early.as_mut() {
        Some(early) => early.gateway().await,
        None => client.gateway().await.map_err(|e| e.to_string()),
    };
    let db_less = match gateway {
        Ok(gateway) => {
            if let Err(why) = gateway.check_writable() {
                report_error(why);
                return EXIT_ERROR;
            }
            if let Some(w) = gateway.warning() {
                anstream::eprintln!("{WARN}warning{WARN:#}: {w}");
            }
            gateway.db_less
        }
        Err(e) => {
            report_error(format!("cannot read the gateway: {e}"));
            return EXIT_ERROR;
        }
    };
    // A saved plan is checked against the files before the live state is used.
    let saved = match &args.plan_file {
        None => None,
        Some(path) => {
            let saved = SavedPlan::read(path);
            let saved = match saved {
                Ok(saved) => saved,
                Err(e) => {
                    report_error(format!("{}: {e}", path.display()));
                    return EXIT_ERROR;
                }
            };
            if let Err(why) = saved.check_files(&desired) {
                refuse_saved(path, why);
                return EXIT_ERROR;
            }
            Some((path, saved))
        }
    };
    // DB-less: which configuration the plan is made against, read before the live
    // state (the early read does not start in this case), so that an apply can tell
    // whether Kong loaded another one since.
    let planned_hash = if db_less && needs_hash {
        match client.configuration_hash().await {
            Ok(hash) => hash,
            Err(e) => {
                report_error(format!("cannot read the gateway: {e}"));
                return EXIT_ERROR;
            }
        }
    } else {
        None
    };
    let tags: Vec<String> = desired
        .select_tags
        .as_ref()
        .map(|(t, _)| t.clone())
        .unwrap_or_default();
    let live = async {
        let early = match early.as_mut().and_then(EarlyRead::live) {
            Some(live) => live.await,
            None => None,
        };
        match early {
            Some(live) => live,
            // Not started, or not read (a DB-less apply reads its hash first).
            None => client
                .read_state_tagged(Kind::ALL, &tags)
                .await
                .map_err(|e| e.to_string()),
        }
    };
    let (live, (schemas, warnings)) = tokio::join!(
        live,
        read_schemas(&client, &desired, global.parallelism.into())
    );
    let live = match live {
        Ok(live) => live,
        Err(e) => {
            report_error(format!("cannot read the gateway: {e}"));
            return EXIT_ERROR;
        }
    };
    for w in warnings {
        tracing::warn!("{w}");
    }
    tracing::info!(
        entities = live.len(),
        ms = started.elapsed().as_millis() as u64,
        "live state read"
    );
    let planning = std::time::Instant::now();
    let plan = carl_planner::plan(&desired, &live, &schemas);
    tracing::info!(ms = planning.elapsed().as_millis() as u64, "planned");
    let plan = match plan {
        Ok(plan) => plan,
        Err(e) => {
            report_error(e);
            return EXIT_ERROR;
        }
    };

    if let Err(e) = write_reports(&plan, &args.reports) {
        report_error(e);
        return EXIT_ERROR;
    }
    if args.check {
        return check(&plan, args.format);
    }
    if let Some((path, saved)) = &saved {
        if let Err(why) = saved.check(&plan, &live, client.addr()) {
            refuse_saved(path, why);
            return EXIT_ERROR;
        }
        anstream::eprintln!(
            "Saved plan {} checked: same files, same gateway state, same changes.",
            path.display()
        );
    }
    print_plan(&plan, args.format);
    if let Some(path) = &args.out {
        let saved = SavedPlan::new(
            &plan,
            &live,
            &desired,
            client.addr(),
            env!("CARGO_PKG_VERSION"),
        );
        if let Err(e) = std::fs::write(path, saved.to_json()) {
            report_error(format!("{}: {e}", path.display()));
            return EXIT_ERROR;
        }
        anstream::eprintln!("Plan saved to {} (no secret values in it).", path.display());
    }
    if args.plan {
        return if args.detailed_exitcode && !plan.is_empty() {
            EXIT_CHANGES
        } else {
            EXIT_OK
        };
    }
    if !plan.is_empty() && !args.no_backup {
        match crate::apply::backup(&args.backup_dir, client.addr(), &live, &tags) {
            Ok(path) => anstream::eprintln!(
                "Backup of the {} entities in scope: {} (applying it restores them)",
                live.len(),
                path.display()
            ),
            Err(e) => {
                report_error(format!(
                    "cannot write the backup to {}: {e}; nothing was written to Kong \
                     (--no-backup to apply without one)",
                    args.backup_dir.display()
                ));
                return EXIT_ERROR;
            }
        }
    }
    if db_less {
        let hash = planned_hash.as_deref();
        return crate::apply::apply_db_less(&client, &plan, &desired, hash, global.quiet).await;
    }
    crate::apply::apply(&client, &plan, global.parallelism.into(), global.quiet).await
}

/// The gateway's `GET /` and, unless it is DB-less and the run applies (which reads
/// the configuration hash first), its whole live state, read in a task of its own
/// while the files load. Dropped, it stops reading.
struct EarlyRead {
    gateway: Option<tokio::sync::oneshot::Receiver<Result<Gateway, String>>>,
    task: Option<tokio::task::JoinHandle<Option<Result<LiveState, String>>>>,
}

impl EarlyRead {
    fn start(client: AdminClient, needs_hash: bool) -> EarlyRead {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(async move {
            let gateway = client.gateway().await.map_err(|e| e.to_string());
            let read = matches!(&gateway, Ok(g) if !(g.db_less && needs_hash));
            let _ = tx.send(gateway);
            if !read {
                return None;
            }
            Some(
                client
                    .read_state_tagged(Kind::ALL, &[])
                    .await
                    .map_err(|e| e.to_string()),
            )
        });
        EarlyRead {
            gateway: Some(rx),
            task: Some(task),
        }
    }

    /// The answer to `GET /`.
    async fn gateway(&mut self) -> Result<Gateway, String> {
        match self.gateway.take() {
            Some(rx) => rx
                .await
                .unwrap_or_else(|_| Err("the read stopped".to_owned())),
            None => Err("the gateway was already taken".to_owned()),
        }
    }

    /// The live state, once read; `None` inside when the task did not read it.
    fn live(&mut self) -> Option<impl Future<Output = Option<Result<LiveState, String>>> + use<>> {
        let task = self.task.take()?;
        Some(async move {
            task.await
                .unwrap_or_else(|e| Some(Err(format!("the read stopped: {e}"))))
        })
    }
}

impl Drop for EarlyRead {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

/// The target Kong's schemas, so defaults match its version (DESIGN.md decision 4):
/// one request per kind and per plugin the files use, `parallelism` at a time; the
/// built-in snapshot for any it cannot serve, with the reasons to warn about.
async fn read_schemas(
    client: &AdminClient,
    desired: &DesiredState,
    parallelism: usize,
) -> (Schemas, Vec<String>) {
    use std::collections::BTreeSet;
    enum Wanted {
        Kind(Kind),
        Plugin(String),
    }
    let kinds: BTreeSet<Kind> = desired.entities.iter().map(|e| e.kind).collect();
    let plugins: BTreeSet<&str> = desired
        .entities
        .iter()
        .filter(|e| e.kind == Kind::Plugin)
        .filter_map(|e| e.fields.get("name").and_then(|n| n.as_str()))
        .collect();
    let wanted: Vec<Wanted> = kinds
        .into_iter()
        .map(Wanted::Kind)
        .chain(plugins.into_iter().map(|p| Wanted::Plugin(p.to_owned())))
        .collect();
    let fetched: Vec<_> = futures_util::stream::iter(wanted)
        .map(|w| async move {
            let result = match &w {
                Wanted::Kind(kind) => client.schema(*kind).await,
                Wanted::Plugin(name) => client.plugin_schema(name).await,
            };
            (w, result)
        })
        .buffered(parallelism.max(1))
        .collect()
        .await;
    let mut schemas = Schemas::default();
    let mut warnings = Vec::new();
    // `Schemas` merges a plugin's schema with whichever plugins schema it has last.
    for (wanted, result) in fetched {
        match (wanted, result) {
            (Wanted::Kind(kind), Ok(schema)) => schemas.insert(kind, schema),
            (Wanted::Plugin(name), Ok(schema)) => schemas.insert_plugin(&name, schema),
            (Wanted::Kind(kind), Err(e)) => warnings.push(format!(
                "using carl's built-in schema for {}: {e}",
                kind.path()
            )),
            (Wanted::Plugin(name), Err(e)) => warnings.push(format!(
                "using carl's built-in schema for plugin {name}: {e}"
            )),
        }
    }
    (schemas, warnings)
}

fn rendered(plan: &Plan, format: PlanFormat) -> String {
    match format {
        PlanFormat::Text => render::text(plan),
        PlanFormat::Markdown => render::markdown(plan),
        PlanFormat::Json => render::json(plan) + "\n",
        PlanFormat::GitlabReport => render::gitlab_report(plan) + "\n",
    }
}

/// `--report FORMAT=FILE`: the plan in other formats, for the pipeline's comment and
/// widget. Written before any change is applied, so a failed apply still has them.
fn write_reports(plan: &Plan, reports: &[(PlanFormat, std::path::PathBuf)]) -> Result<(), String> {
    for (format, path) in reports {
        // Files get no colour, whatever the terminal.
        let text = render::strip_ansi(&rendered(plan, *format));
        std::fs::write(path, text)
            .map_err(|e| format!("cannot write the report {}: {e}", path.display()))?;
        tracing::info!(file = %path.display(), "report written");
    }
    Ok(())
}

fn print_plan(plan: &Plan, format: PlanFormat) {
    let text = rendered(plan, format);
    let mut out = anstream::stdout();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}

fn check(plan: &Plan, format: PlanFormat) -> u8 {
    if plan.is_empty() {
        if format != PlanFormat::Text {
            print_plan(plan, format);
        } else {
            anstream::println!("No drift: the gateway matches the desired state.");
        }
        return EXIT_OK;
    }
    if format == PlanFormat::Text {
        anstream::println!(
            "{WARN}Drift{WARN:#}: the gateway differs from the desired state in {} place{}:\n",
            plan.ops.len(),
            if plan.ops.len() == 1 { "" } else { "s" }
        );
    }
    print_plan(plan, format);
    EXIT_CHANGES
}

fn refuse_saved(path: &std::path::Path, why: carl_planner::saved::Refusal) {
    report_error(format!(
        "refusing to apply {}: {why}\nNothing was written. Plan again (`carl reconcile --plan --out ...`) \
         and have the new plan reviewed.",
        path.display()
    ));
}
