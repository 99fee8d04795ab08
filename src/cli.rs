//! Command-line flags. Every flag can also be set by a `CARL_*` environment variable.

use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgGroup, Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "carl",
    version,
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

    /// More logging on stderr (-v info, -vv debug, -vvv trace).
    #[arg(short, long, global = true, action = clap::ArgAction::Count, conflicts_with = "quiet")]
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
    #[arg(long)]
    pub plan: bool,
    /// Make the gateway match the files, then report each change.
    #[arg(long)]
    pub apply: bool,
    /// Exit 2 and list the drift when the gateway no longer matches the files.
    #[arg(long)]
    pub check: bool,

    #[command(flatten)]
    pub files: FilesArgs,

    /// Output format of the plan (stdout).
    #[arg(long, env = "CARL_FORMAT", value_enum, default_value_t = PlanFormat::Text)]
    pub format: PlanFormat,

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
}
