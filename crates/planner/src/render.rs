//! The plan for people (text, coloured when the terminal allows; Markdown for merge
//! request comments) and for machines (JSON, `docs/plan-format.md`).
//!
//! Text follows Terraform's plan: one line per entity with `+` create, `~` update,
//! `-` delete, `-/+` replace, then only the fields that change as `field: old → new`
//! (records as paths, `config.minute`), then a summary. Secrets show as `(sensitive)`
//! in every format.

use std::collections::BTreeMap;
use std::fmt::Write;

use anstyle::{AnsiColor, Style};
use carl_model::Kind;
use serde_json::{Value, json};

use crate::{Action, Change, Op, Plan};

const GREEN: Style = AnsiColor::Green.on_default();
const YELLOW: Style = AnsiColor::Yellow.on_default();
const RED: Style = AnsiColor::Red.on_default();
const BOLD: Style = Style::new().bold();

/// What carl prints in place of a secret.
pub const SENSITIVE: &str = "(sensitive)";

/// The version of the JSON plan format (`docs/plan-format.md`).
pub const FORMAT_VERSION: u32 = 1;

/// The plan as text. Styles are ANSI escapes; print it through `anstream`, which removes
/// them when the output is not a terminal or `NO_COLOR` is set.
pub fn text(plan: &Plan) -> String {
    let mut out = String::new();
    if plan.is_empty() {
        out.push_str("No changes. The gateway matches the desired state.\n");
        return out;
    }
    let folded = folded_deletes(plan);
    for op in &plan.ops {
        if !folded.contains(&op.index) {
            write_op(&mut out, plan, op);
        }
    }
    let _ = writeln!(out, "\n{BOLD}{}{BOLD:#}", summary_line(plan));
    out
}

/// Deletes shown as part of a `-/+` replacement rather than on their own.
fn folded_deletes(plan: &Plan) -> Vec<usize> {
    plan.ops.iter().filter_map(|op| op.replaces).collect()
}

/// `Plan: N to create, N to update, N to delete.`
pub fn summary_line(plan: &Plan) -> String {
    let s = plan.summary;
    format!(
        "Plan: {} to create, {} to update, {} to delete.",
        s.create, s.update, s.delete
    )
}

/// The one-line description of an op: `+ service "orders"`.
pub fn headline(op: &Op) -> String {
    let (sign, style) = sign(op);
    let mut line = format!("{style}{sign} {} {}{style:#}", op.kind, op.label);
    if let Some(why) = &op.replace {
        let _ = write!(line, " ({why})");
    }
    line
}

fn sign(op: &Op) -> (&'static str, Style) {
    match op.action {
        Action::Create if op.replaces.is_some() => ("-/+", YELLOW),
        Action::Create => ("+", GREEN),
        Action::Update => ("~", YELLOW),
        Action::Delete => ("-", RED),
    }
}

fn write_op(out: &mut String, plan: &Plan, op: &Op) {
    let _ = writeln!(out, "  {}", headline(op));
    let changes = op.changes();
    let width = changes.iter().map(|c| c.field.len()).max().unwrap_or(0) + 1;
    for c in changes.iter() {
        let field = format!("{}:", c.field);
        let new = show(plan, op.kind, c, &c.new);
        match op.action {
            // A create shows what the file sets; nulls add nothing to read.
            Action::Create if c.new.is_null() => {}
            Action::Create => {
                let _ = writeln!(out, "      {field:<width$} {new}");
            }
            _ => {
                let old = show(plan, op.kind, c, &c.old);
                let _ = writeln!(out, "      {field:<width$} {old} → {new}");
            }
        }
    }
}

/// A value as compact JSON, secrets masked; a foreign key as the label of the entity
/// it points to.
fn show(plan: &Plan, kind: Kind, change: &Change, value: &Value) -> String {
    if change.sensitive && !value.is_null() {
        return SENSITIVE.to_owned();
    }
    if let Some(id) = carl_model::foreign_id(value)
        && value.as_object().is_some_and(|o| o.len() == 1)
        && let Some(label) = plan.names.get(id)
    {
        return label.clone();
    }
    if let Some(pem) = value
        .as_str()
        .filter(|s| s.trim_start().starts_with("-----BEGIN"))
    {
        // A PEM block is unreadable in a plan; its digest tells two apart.
        return format!("(PEM, sha256:{}…)", &crate::identity::pem_digest(pem)[..12]);
    }
    redact(kind, &change.field, value).to_string()
}

/// `value` (at `path` of a `kind` entity) with every secret in it replaced by
/// [`SENSITIVE`]: a plugin's `config` as a whole hides its `redis.password`.
pub fn redact(kind: Kind, path: &str, value: &Value) -> Value {
    if value.is_null() {
        return Value::Null;
    }
    if crate::diff::is_sensitive(kind, path) {
        return Value::String(SENSITIVE.to_owned());
    }
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), redact(kind, &format!("{path}.{k}"), v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(|v| redact(kind, path, v)).collect()),
        other => other.clone(),
    }
}

/// The plan as Markdown for a merge request comment: a summary table, then one
/// collapsible section per kind with the text diff of its ops.
pub fn markdown(plan: &Plan) -> String {
    let mut out = String::from("### carl plan\n\n");
    if plan.is_empty() {
        out.push_str("No changes. The gateway matches the desired state.\n");
        return out;
    }
    let mut by_kind: BTreeMap<usize, (Kind, [usize; 3], Vec<&Op>)> = BTreeMap::new();
    let folded = folded_deletes(plan);
    for op in &plan.ops {
        let rank = Kind::ALL.iter().position(|k| *k == op.kind).unwrap_or(0);
        let entry = by_kind.entry(rank).or_insert((op.kind, [0; 3], Vec::new()));
        entry.1[op.action as usize] += 1;
        if !folded.contains(&op.index) {
            entry.2.push(op);
        }
    }
    out.push_str("| kind | create | update | delete |\n|---|---:|---:|---:|\n");
    for (kind, counts, _) in by_kind.values() {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} |",
            kind.dao(),
            counts[0],
            counts[1],
            counts[2]
        );
    }
    let _ = writeln!(out, "\n**{}**\n", summary_line(plan));
    for (kind, counts, ops) in by_kind.values() {
        let total: usize = counts.iter().sum();
        let _ = writeln!(
            out,
            "<details><summary>{} ({total} change{})</summary>\n\n```diff",
            kind.dao(),
            if total == 1 { "" } else { "s" }
        );
        for op in ops {
            let mut text = String::new();
            write_op(&mut text, plan, op);
            // The `diff` highlighter colours lines by their first character: `+`
            // creates green, `-` deletes red; `~` updates and field lines stay plain.
            for line in strip_ansi(&text).lines() {
                let _ = writeln!(out, "{}", line.strip_prefix("  ").unwrap_or(line));
            }
        }
        out.push_str("```\n\n</details>\n\n");
    }
    out
}

/// `s` without ANSI escapes: as a terminal without colour shows the text render.
pub fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The plan as JSON (`docs/plan-format.md`): `format_version`, `summary`, `ops` with
/// kind, id, label, action, changed fields and dependencies. Secret values are
/// replaced by [`SENSITIVE`], in changes and in request bodies.
/// What GitLab's merge request widget reads from a Terraform report artefact
/// (`artifacts:reports:terraform`): `{"create": N, "update": N, "delete": N}`. A
/// replacement counts as a delete and a create, as the plan's summary line says.
pub fn gitlab_report(plan: &Plan) -> String {
    let s = plan.summary;
    serde_json::json!({"create": s.create, "update": s.update, "delete": s.delete}).to_string()
}

pub fn json(plan: &Plan) -> String {
    serde_json::to_string_pretty(&json_value(plan)).unwrap_or_default()
}

pub fn json_value(plan: &Plan) -> Value {
    let ops: Vec<Value> = plan
        .ops
        .iter()
        .map(|op| {
            let changes: Vec<Value> = op
                .changes()
                .iter()
                .map(|c| {
                    let mask = |v: &Value| match (c.sensitive, v.is_null()) {
                        (true, false) => Value::String(SENSITIVE.into()),
                        _ => redact(op.kind, &c.field, v),
                    };
                    let mut o = json!({"field": c.field, "old": mask(&c.old), "new": mask(&c.new)});
                    if c.sensitive {
                        o["sensitive"] = Value::Bool(true);
                    }
                    o
                })
                .collect();
            let body: serde_json::Map<String, Value> = op
                .body()
                .iter()
                .map(|(k, v)| (k.clone(), redact(op.kind, k, v)))
                .collect();
            let mut o = json!({
                "index": op.index,
                "action": op.action,
                "kind": op.kind,
                "id": op.id,
                "label": op.label,
                "path": op.path,
                "changes": changes,
                "body": body,
                "depends_on": op.depends_on,
            });
            if let Some(why) = &op.replace {
                o["replace"] = Value::String(why.clone());
            }
            if let Some(r) = op.replaces {
                o["replaces"] = json!(r);
            }
            o
        })
        .collect();
    json!({
        "format_version": FORMAT_VERSION,
        "summary": plan.summary,
        "ops": ops,
        "names": plan.names,
    })
}
