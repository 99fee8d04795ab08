//! Command-line flags. Every flag can also be set by a `CARL_*` environment variable.

use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgGroup, Args, Parser, Subcommand, ValueEnum};

/// `carl --version`: carl's version and the Kong versions it works with (the same
/// words as `carl_admin_client::SUPPORTED`, which a test keeps in step).
pub const LONG_VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    "\nsupports: Kong Gateway 3.x (OSS and Enterprise) fully; 2.8 for reading (ping, dump)",
    "\noffline schemas: Kong 3.9.1 (carl validate; online runs use the gateway's own)"
);

#[derive(Debug, Parser)]
#[command(
    name = "carl",
    version,
    long_version = LONG_VERSION,
    about = "Declarative reconciler for Kong Gateway: plan, apply and drift-check a gateway from a YAML file.",
    long_about = "Declarative reconciler for Kong Gateway.\n\n\
        Keep your gateway (services, routes, plugins, consumers and credentials, upstreams and targets, certificates, vaults, keys) in a Kong declarative file in git. carl diffs it \
        against the live Kong Admin API, prints the plan a reviewer reads, applies exactly that plan, \
        and reports drift.",
    after_help = "Examples:\n  \
        carl reconcile --plan  -f gateway.yaml            # what would change\n  \
        carl reconcile --apply -f gateway.yaml            # make it so\n  \
        carl reconcile --check -f gateway.yaml            # exit 2 on drift\n  \
        CARL_KONG_ADDR=http://kong:8001 carl reconcile --plan -f gateway.yaml --format json\n\n\
        Exit codes: 0 success/no changes, 1 error, 2 changes (--plan --detailed-exitcode) or drift (--check)."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
#[command(next_help_heading = "Global options")]
pub struct GlobalArgs {
    /// Kong Admin API address.
    #[arg(
        long,
        global = true,
        env = "CARL_KONG_ADDR",
        default_value = "http://localhost:8001"
    )]
    pub kong_addr: String,

    /// Extra header for every Admin API request, as 'Name: value' (repeatable), e.g.
    /// 'Kong-Admin-Token: ...' for RBAC. In CARL_HEADERS, one header per line.
    #[arg(
        long = "header",
        global = true,
        env = "CARL_HEADERS",
        hide_env_values = true,
        value_delimiter = '\n',
        value_name = "NAME: VALUE"
    )]
    pub headers: Vec<String>,

    /// Kong Enterprise workspace to manage (requests go to /WORKSPACE/...).
    #[arg(long, global = true, env = "CARL_WORKSPACE", value_name = "NAME")]
    pub workspace: Option<String>,

    /// PEM file of the CA(s) that signed the Admin API's certificate; replaces the
    /// system's CAs. Kong's self-generated admin certificate needs this.
    #[arg(long, global = true, env = "CARL_CA_CERT", value_name = "PEM")]
    pub ca_cert: Option<PathBuf>,

    /// Client certificate for mutual TLS: a PEM file, or the PEM itself (as CI
    /// variables hold it).
    #[arg(
        long,
        global = true,
        env = "CARL_TLS_CLIENT_CERT",
        hide_env_values = true,
        value_name = "PEM|FILE"
    )]
    pub tls_client_cert: Option<String>,

    /// The client certificate's private key: a PEM file, or the PEM itself.
    #[arg(
        long,
        global = true,
        env = "CARL_TLS_CLIENT_KEY",
        hide_env_values = true,
        value_name = "PEM|FILE"
    )]
    pub tls_client_key: Option<String>,

    /// Verify the Admin API's certificate for this name (and send it as SNI) while
    /// connecting to --kong-addr's host.
    #[arg(long, global = true, env = "CARL_TLS_SERVER_NAME", value_name = "NAME")]
    pub tls_server_name: Option<String>,

    /// Do not verify the Admin API's certificate. Dangerous: anyone on the path can
    /// read and change what carl sends, credentials included. Warned on every run.
    #[arg(long, global = true, env = "CARL_TLS_SKIP_VERIFY")]
    pub tls_skip_verify: bool,

    /// Retries of a request that failed transiently (connection error, timeout, 429,
    /// 500, 502, 503, 504), with jittered exponential backoff; Retry-After is honoured.
    #[arg(
        long,
        global = true,
        env = "CARL_RETRIES",
        default_value_t = 4,
        value_name = "N"
    )]
    pub retries: u32,

    /// Most Admin API requests in flight at once.
    #[arg(long, global = true, env = "CARL_PARALLELISM", default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub parallelism: u16,

    /// Timeout of each Admin API request (e.g. 30s, 2m).
    #[arg(long, global = true, env = "CARL_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub timeout: Duration,

    /// Do not colour the output (NO_COLOR is honoured too).
    #[arg(long, global = true, env = "CARL_NO_COLOR")]
    pub no_color: bool,

    /// More logging on stderr (-v info, -vv debug, -vvv trace; CARL_VERBOSE=1..3).
    /// CARL_LOG takes a tracing filter for finer control.
    #[arg(short, long, global = true, env = "CARL_VERBOSE", action = clap::ArgAction::Count, conflicts_with = "quiet")]
    pub verbose: u8,

    /// Only errors on stderr.
    #[arg(short, long, global = true, env = "CARL_QUIET")]
    pub quiet: bool,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("{e} (expected e.g. 30s, 500ms, 2m)"))
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Compare the desired-state files with the gateway: plan, apply, or check for drift.
    #[command(after_help = "Examples:\n  \
        carl reconcile --plan -f gateway.yaml -f teams/\n  \
        carl reconcile --plan -f gateway.yaml --detailed-exitcode   # exit 2 when there are changes\n  \
        carl reconcile --apply -f gateway.yaml\n  \
        carl reconcile --check -f gateway.yaml                      # exit 2 and list the drift")]
    Reconcile(ReconcileArgs),
    /// Check the desired-state files: offline against Kong 3.9.1's schemas, or with
    /// --online against the gateway's own (including plugins carl does not know).
    #[command(after_help = "Examples:\n  \
        carl validate -f gateway.yaml                 # offline, no request\n  \
        carl validate -f gateway.yaml --online        # also ask the gateway, writes nothing")]
    Validate(ValidateArgs),
    /// Check that carl can reach and use the Admin API: Kong's version, edition and
    /// database mode, round-trip latency, and the TLS in use.
    #[command(after_help = "Examples:\n  \
        carl ping\n  \
        carl ping --kong-addr https://kong-admin:8444 --ca-cert ca.pem \\\n      \
        --tls-client-cert client.pem --tls-client-key client.key\n\n\
        Exit codes: 0 reachable, 1 not (with the cause).")]
    Ping(PingArgs),
    /// Write the whole live gateway as a desired-state file: a backup that carl can
    /// apply to rebuild it, and a start for a repository.
    #[command(after_help = "Examples:\n  \
        carl dump -o gateway.yaml\n  \
        carl dump --select-tag team-a -o team-a.yaml   # only what team-a manages\n  \
        carl dump --redact-secrets                     # for reading, not restoring\n\n\
        The dump includes secrets (credential keys, passwords, private keys) unless\n\
        --redact-secrets: store it as you store those secrets.")]
    Dump(DumpArgs),
    /// Print a shell completion script to stdout.
    #[command(after_help = "Examples:\n  \
        carl completions bash > ~/.local/share/bash-completion/completions/carl\n  \
        carl completions zsh  > \"${fpath[1]}/_carl\"\n  \
        carl completions fish > ~/.config/fish/completions/carl.fish\n  \
        carl completions powershell >> $PROFILE")]
    Completions(CompletionsArgs),
    /// Write carl's man pages (carl.1, carl-reconcile.1, ...) to a directory.
    #[command(after_help = "Examples:\n  \
        carl man --dir ~/.local/share/man/man1 && man carl-reconcile\n  \
        cargo xtask man                  # in a clone: target/man/man1, then checked with man")]
    Man(ManArgs),
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(env = "CARL_SHELL", value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// Directory to write the pages to (created if missing).
    #[arg(long, env = "CARL_MAN_DIR", value_name = "DIR")]
    pub dir: PathBuf,
}

#[derive(Debug, Args)]
pub struct PingArgs {
    /// Output format.
    #[arg(long, env = "CARL_FORMAT", value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct DumpArgs {
    /// Write to this file (mode 0600) instead of stdout.
    #[arg(
        short = 'o',
        long = "output",
        env = "CARL_DUMP_OUTPUT",
        value_name = "FILE"
    )]
    pub output: Option<PathBuf>,
    /// File format.
    #[arg(long, env = "CARL_DUMP_FORMAT", value_enum, default_value_t = DumpFormat::Yaml)]
    pub format: DumpFormat,
    /// Dump only entities carrying all these tags, and write them as the file's
    /// `_info.select_tags` (repeatable).
    #[arg(
        long = "select-tag",
        env = "CARL_SELECT_TAGS",
        value_delimiter = ',',
        value_name = "TAG"
    )]
    pub select_tags: Vec<String>,
    /// Keep every entity's id.
    #[arg(long, env = "CARL_WITH_ID")]
    pub with_id: bool,
    /// Replace credential keys, passwords and private keys with ${CARL_REDACTED}.
    #[arg(long, env = "CARL_REDACT_SECRETS")]
    pub redact_secrets: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DumpFormat {
    Yaml,
    Json,
}

#[derive(Debug, Clone, Args)]
pub struct FilesArgs {
    /// Desired-state file or directory (repeatable); directories contribute their
    /// .yaml, .yml and .json files.
    #[arg(
        short = 'f',
        long = "file",
        env = "CARL_FILES",
        value_delimiter = ',',
        required = true,
        value_name = "FILE|DIR"
    )]
    pub files: Vec<PathBuf>,
    /// Print at most this many problems in the files (all are counted).
    #[arg(long, env = "CARL_MAX_ERRORS", default_value_t = 50, value_name = "N")]
    pub max_errors: usize,
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    #[command(flatten)]
    pub files: FilesArgs,
    /// Also validate every entity with the gateway's `/schemas/.../validate` (read-only).
    #[arg(long, env = "CARL_ONLINE")]
    pub online: bool,
}

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("mode").required(true).args(["plan", "apply", "check"])))]
pub struct ReconcileArgs {
    /// Print what would change; write nothing.
    #[arg(long, env = "CARL_PLAN")]
    pub plan: bool,
    /// Make the gateway match the files, then report each change.
    #[arg(long, env = "CARL_APPLY")]
    pub apply: bool,
    /// Exit 2 and list the drift when the gateway no longer matches the files.
    #[arg(long, env = "CARL_CHECK")]
    pub check: bool,

    #[command(flatten)]
    pub files: FilesArgs,

    /// Output format of the plan (stdout).
    #[arg(long, env = "CARL_FORMAT", value_enum, default_value_t = PlanFormat::Text)]
    pub format: PlanFormat,

    /// Also write the plan (the drift with --check) in FORMAT to FILE, as
    /// `markdown=plan.md` or `gitlab-report=plan-report.json` (repeatable; FORMAT is one
    /// of --format's). One read of the gateway serves the log, the merge request comment
    /// and the widget.
    #[arg(
        long = "report",
        env = "CARL_REPORTS",
        value_delimiter = ',',
        value_name = "FORMAT=FILE",
        value_parser = parse_report
    )]
    pub reports: Vec<(PlanFormat, PathBuf)>,

    /// With --plan: also save the plan to FILE (JSON, no secret values) for
    /// `--apply --plan-file FILE` on main.
    #[arg(long, value_name = "FILE", env = "CARL_OUT", requires = "plan")]
    pub out: Option<PathBuf>,

    /// With --apply: apply this saved plan (from `--plan --out FILE`) and nothing else.
    /// Refused, with what differs, when the files are not those it was made from or the
    /// gateway changed in scope since; secret values come from the files.
    #[arg(long, value_name = "FILE", env = "CARL_PLAN_FILE", requires = "apply")]
    pub plan_file: Option<PathBuf>,

    /// With --plan: exit 2 when there are changes (0 when none).
    #[arg(long, env = "CARL_DETAILED_EXITCODE")]
    pub detailed_exitcode: bool,

    /// With --apply: before the first write, save what the changes touch (every live
    /// entity in scope) as a desired-state file in DIR, readable by you only; applying
    /// that file restores the gateway.
    #[arg(
        long,
        value_name = "DIR",
        env = "CARL_BACKUP_DIR",
        default_value = ".carl/backups"
    )]
    pub backup_dir: PathBuf,

    /// With --apply: write no backup.
    #[arg(long, env = "CARL_NO_BACKUP")]
    pub no_backup: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PlanFormat {
    /// For people: +/~/-/-+ per entity and changed fields as old → new.
    Text,
    /// For a merge request comment: a summary table and a collapsible section per kind.
    Markdown,
    /// For machines: docs/plan-format.md.
    Json,
    /// For GitLab's merge request widget (a Terraform report artefact):
    /// {"create": N, "update": N, "delete": N}.
    GitlabReport,
}

fn parse_report(s: &str) -> Result<(PlanFormat, PathBuf), String> {
    let (format, file) = s
        .split_once('=')
        .ok_or("expected FORMAT=FILE, e.g. markdown=plan.md")?;
    let format = PlanFormat::from_str(format, false).map_err(|_| {
        format!("unknown format '{format}': expected text, markdown, json or gitlab-report")
    })?;
    if file.is_empty() {
        return Err("expected a file after '='".into());
    }
    Ok((format, PathBuf::from(file)))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// For people: +/~/- per entity and changed fields as old → new.
    Text,
    /// For machines: {"summary": {...}, "ops": [...]}.
    Json,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn every_flag_has_a_carl_variable_shown_in_help() {
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for arg in cmd.get_arguments() {
                let id = arg.get_id().as_str();
                if matches!(id, "help" | "version") {
                    continue;
                }
                match arg.get_env().and_then(|e| e.to_str()) {
                    Some(env) if env.starts_with("CARL_") && !arg.is_hide_env_set() => {}
                    _ => missing.push(format!("{path} --{id}")),
                }
            }
            for sub in cmd.get_subcommands() {
                walk(sub, &format!("{path} {}", sub.get_name()), missing);
            }
        }
        let mut missing = Vec::new();
        walk(&Cli::command(), "carl", &mut missing);
        assert!(
            missing.is_empty(),
            "flags without a CARL_* variable: {missing:?}"
        );
    }

    #[test]
    fn the_long_version_names_the_supported_kong_versions() {
        assert!(
            LONG_VERSION.contains(carl_admin_client::SUPPORTED),
            "{LONG_VERSION:?} should contain {:?}",
            carl_admin_client::SUPPORTED
        );
    }

    #[test]
    fn a_report_is_a_format_and_a_file() {
        assert_eq!(
            parse_report("gitlab-report=out/report.json").unwrap(),
            (PlanFormat::GitlabReport, PathBuf::from("out/report.json"))
        );
        assert!(parse_report("plan.md").unwrap_err().contains("FORMAT=FILE"));
        assert!(
            parse_report("html=plan.html")
                .unwrap_err()
                .contains("unknown format 'html'")
        );
        assert!(parse_report("markdown=").is_err());
    }
}
