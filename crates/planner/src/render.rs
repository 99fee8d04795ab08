//! The plan for people (text, coloured when the terminal allows) and for machines (JSON).
//!
//! Text follows Terraform's plan: one line per entity with `+` create, `~` update,
//! `-` delete, then only the fields that change as `field: old → new`, then a summary.

use std::fmt::Write;

use anstyle::{AnsiColor, Style};
use serde_json::Value;

use crate::{Action, Op, Plan};

const GREEN: Style = AnsiColor::Green.on_default();
const YELLOW: Style = AnsiColor::Yellow.on_default();
const RED: Style = AnsiColor::Red.on_default();
const BOLD: Style = Style::new().bold();

/// The plan as text. Styles are ANSI escapes; print it through `anstream`, which removes
/// them when the output is not a terminal or `NO_COLOR` is set.
pub fn text(plan: &Plan) -> String {
    let mut out = String::new();
    if plan.is_empty() {
        out.push_str("No changes. The gateway matches the desired state.\n");
        return out;
    }
    for op in &plan.ops {
        write_op(&mut out, plan, op);
    }
    let _ = writeln!(out, "\n{BOLD}{}{BOLD:#}", summary_line(plan));
    out
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
    let (sign, style) = sign(op.action);
    format!("{style}{sign} {} {}{style:#}", op.kind, op.label)
}

fn sign(action: Action) -> (char, Style) {
    match action {
        Action::Create => ('+', GREEN),
        Action::Update => ('~', YELLOW),
        Action::Delete => ('-', RED),
    }
}

fn write_op(out: &mut String, plan: &Plan, op: &Op) {
    let _ = writeln!(out, "  {}", headline(op));
    let width = op.changes.iter().map(|c| c.field.len()).max().unwrap_or(0) + 1;
    for c in &op.changes {
        let field = format!("{}:", c.field);
        let new = show(plan, &c.new);
        match op.action {
            // A create shows what the file sets; nulls add nothing to read.
            Action::Create if c.new.is_null() => {}
            Action::Create => {
                let _ = writeln!(out, "      {field:<width$} {new}");
            }
            _ => {
                let old = show(plan, &c.old);
                let _ = writeln!(out, "      {field:<width$} {old} → {new}");
            }
        }
    }
}

/// A value as compact JSON; a foreign key as the label of the entity it points to.
fn show(plan: &Plan, value: &Value) -> String {
    if let Some(id) = carl_model::foreign_id(value)
        && value.as_object().is_some_and(|o| o.len() == 1)
        && let Some(label) = plan.names.get(id)
    {
        return label.clone();
    }
    value.to_string()
}

/// The plan as pretty JSON: `{"summary": {...}, "ops": [...], "names": {...}}`.
pub fn json(plan: &Plan) -> String {
    // Serialising plain data into a String cannot fail.
    serde_json::to_string_pretty(plan).unwrap_or_default()
}
