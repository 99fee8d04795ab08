//! Saved plans (DESIGN.md decision 8): what `carl reconcile --plan --out plan.json`
//! writes, so that main applies what the merge request showed.
//!
//! A saved plan holds the ops as the JSON renderer shows them (secrets replaced by
//! `(sensitive)`), a fingerprint of the live state they were computed from (only the
//! entities in scope), the SHA-256 of every desired file, the carl version and the
//! Kong address. It holds no secret value: applying it re-reads the same files for
//! those, recomputes the plan, and applies it only when the live fingerprint and the
//! ops are the saved ones.

use std::collections::BTreeMap;

use carl_config::DesiredState;
use carl_model::LiveState;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{Plan, Summary, render};

/// The version of the saved-plan format; a reader refuses others.
pub const SAVED_FORMAT_VERSION: u32 = 1;

/// The largest plan file carl reads (a bound on memory, far above any real plan's
/// size: see docs/reliability.md).
pub const MAX_PLAN_FILE_BYTES: u64 = 512 << 20;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SavedPlan {
    pub format_version: u32,
    pub carl_version: String,
    /// The Admin API the plan was computed against.
    pub kong_address: String,
    /// `_info.select_tags` of the files: the scope of the fingerprint.
    pub select_tags: Vec<String>,
    /// `sha256:` of the canonical JSON of the live entities in scope.
    pub live_fingerprint: String,
    /// Every desired file read, with the SHA-256 of its bytes.
    pub files: BTreeMap<String, String>,
    pub summary: Summary,
    /// The ops as `carl reconcile --plan --format json` shows them.
    pub ops: Vec<Value>,
}

impl SavedPlan {
    pub fn new(
        plan: &Plan,
        live: &LiveState,
        desired: &DesiredState,
        kong_address: &str,
        carl_version: &str,
    ) -> SavedPlan {
        let rendered = render::json_value(plan);
        SavedPlan {
            format_version: SAVED_FORMAT_VERSION,
            carl_version: carl_version.to_owned(),
            kong_address: kong_address.to_owned(),
            select_tags: desired
                .select_tags
                .as_ref()
                .map(|(t, _)| t.clone())
                .unwrap_or_default(),
            live_fingerprint: fingerprint(live),
            files: desired
                .file_digests
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
            summary: plan.summary,
            ops: rendered["ops"].as_array().cloned().unwrap_or_default(),
        }
    }

    /// Pretty JSON, ending with a newline.
    pub fn to_json(&self) -> String {
        let mut text = serde_json::to_string_pretty(self).unwrap_or_default();
        text.push('\n');
        text
    }

    /// Reads the plan file at `path`: one larger than [`MAX_PLAN_FILE_BYTES`] is
    /// refused before it is read.
    pub fn read(path: &std::path::Path) -> Result<SavedPlan, String> {
        use std::io::Read;
        let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
        let size = file.metadata().map_err(|e| e.to_string())?.len();
        let too_large = || {
            format!(
                "not a carl plan file: larger than {} MiB",
                MAX_PLAN_FILE_BYTES >> 20
            )
        };
        if size > MAX_PLAN_FILE_BYTES {
            return Err(too_large());
        }
        let mut text = String::new();
        // Bounded even if the file grows (or is a pipe) while it is read.
        file.take(MAX_PLAN_FILE_BYTES + 1)
            .read_to_string(&mut text)
            .map_err(|e| format!("not a carl plan file: {e}"))?;
        if text.len() as u64 > MAX_PLAN_FILE_BYTES {
            return Err(too_large());
        }
        SavedPlan::from_json(&text)
    }

    /// Reads a saved plan, refusing another format version or a damaged file.
    pub fn from_json(text: &str) -> Result<SavedPlan, String> {
        let value: Value =
            serde_json::from_str(text).map_err(|e| format!("not a carl plan file: {e}"))?;
        match value.get("format_version").and_then(Value::as_u64) {
            Some(v) if v == u64::from(SAVED_FORMAT_VERSION) => {}
            Some(v) => {
                return Err(format!(
                    "plan file format {v}; this carl reads format {SAVED_FORMAT_VERSION}: plan again with this carl"
                ));
            }
            None => return Err("not a carl plan file: no `format_version`".into()),
        }
        serde_json::from_value(value).map_err(|e| format!("damaged carl plan file: {e}"))
    }
}

/// Why a saved plan cannot be applied as it is. Each says what differs; the way out is
/// always to plan again and have that plan reviewed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The desired files are not those the plan was made from.
    Files {
        changed: Vec<String>,
        added: Vec<String>,
        missing: Vec<String>,
    },
    /// The plan was made against another Admin API.
    Address { saved: String, now: String },
    /// Something in scope changed on the gateway since the plan was made.
    LiveChanged {
        /// Ops the plan would have now and the saved plan lacks, and the reverse.
        now_also: Vec<String>,
        no_longer: Vec<String>,
    },
    /// Same gateway, same files, yet another plan: a different carl made it.
    OpsDiffer { saved_by: String },
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let list = |items: &[String]| items.join(", ");
        match self {
            Refusal::Files {
                changed,
                added,
                missing,
            } => {
                f.write_str("the desired-state files are not those this plan was made from:")?;
                if !changed.is_empty() {
                    write!(f, " changed since: {};", list(changed))?;
                }
                if !added.is_empty() {
                    write!(f, " not in the plan: {};", list(added))?;
                }
                if !missing.is_empty() {
                    write!(f, " missing now: {};", list(missing))?;
                }
                Ok(())
            }
            Refusal::Address { saved, now } => {
                write!(f, "this plan was made against {saved}, not {now}")
            }
            Refusal::LiveChanged {
                now_also,
                no_longer,
            } => {
                f.write_str("the gateway changed since this plan was made")?;
                if now_also.is_empty() && no_longer.is_empty() {
                    return f.write_str(
                        " (the changes would be the same, but an entity in scope was \
                         written in between)",
                    );
                }
                f.write_str(":")?;
                for op in now_also {
                    write!(f, "\n  now also needed: {op}")?;
                }
                for op in no_longer {
                    write!(f, "\n  no longer as planned: {op}")?;
                }
                Ok(())
            }
            Refusal::OpsDiffer { saved_by } => write!(
                f,
                "carl {saved_by} made this plan and this carl ({}) plans the same gateway and \
                 files differently",
                env!("CARGO_PKG_VERSION")
            ),
        }
    }
}

impl SavedPlan {
    /// Refuses when the desired files are not, byte for byte, those planned from.
    pub fn check_files(&self, desired: &DesiredState) -> Result<(), Refusal> {
        let now: BTreeMap<String, &String> = desired
            .file_digests
            .iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        let changed: Vec<String> = self
            .files
            .iter()
            .filter(|(f, d)| now.get(*f).is_some_and(|n| n != d))
            .map(|(f, _)| f.clone())
            .collect();
        let added: Vec<String> = now
            .keys()
            .filter(|f| !self.files.contains_key(*f))
            .cloned()
            .collect();
        let missing: Vec<String> = self
            .files
            .keys()
            .filter(|f| !now.contains_key(*f))
            .cloned()
            .collect();
        if changed.is_empty() && added.is_empty() && missing.is_empty() {
            Ok(())
        } else {
            Err(Refusal::Files {
                changed,
                added,
                missing,
            })
        }
    }

    /// Refuses unless `plan`, made now from the same files against `live` at
    /// `address`, is the saved one: same address, same live state in scope (by
    /// fingerprint), same ops.
    pub fn check(&self, plan: &Plan, live: &LiveState, address: &str) -> Result<(), Refusal> {
        if self.kong_address.trim_end_matches('/') != address.trim_end_matches('/') {
            return Err(Refusal::Address {
                saved: self.kong_address.clone(),
                now: address.to_owned(),
            });
        }
        let rendered = render::json_value(plan);
        let now: Vec<Value> = rendered["ops"].as_array().cloned().unwrap_or_default();
        let describe = |op: &Value| {
            let sign = match op["action"].as_str() {
                Some("create") => "+",
                Some("update") => "~",
                _ => "-",
            };
            format!(
                "{sign} {} {}",
                op["kind"].as_str().unwrap_or("?"),
                op["label"].as_str().unwrap_or("?")
            )
        };
        if fingerprint(live) != self.live_fingerprint {
            // Ops compared without their positions: an added op renumbers the rest.
            let key = |op: &Value| {
                let mut op = op.clone();
                if let Some(o) = op.as_object_mut() {
                    o.remove("index");
                    o.remove("depends_on");
                }
                let mut text = String::new();
                canonical(&op, &mut text);
                text
            };
            let saved: std::collections::HashSet<String> = self.ops.iter().map(key).collect();
            let fresh: std::collections::HashSet<String> = now.iter().map(key).collect();
            return Err(Refusal::LiveChanged {
                now_also: now
                    .iter()
                    .filter(|op| !saved.contains(&key(op)))
                    .map(describe)
                    .collect(),
                no_longer: self
                    .ops
                    .iter()
                    .filter(|op| !fresh.contains(&key(op)))
                    .map(describe)
                    .collect(),
            });
        }
        if now != self.ops {
            return Err(Refusal::OpsDiffer {
                saved_by: self.carl_version.clone(),
            });
        }
        Ok(())
    }
}

/// `sha256:` of the live state as canonical JSON (kinds in order, entities by id, keys
/// sorted): equal exactly when the Admin API returned the same entities. `LiveState`
/// keeps each entity as that JSON already.
pub fn fingerprint(live: &LiveState) -> String {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    for kind in live.kinds() {
        let texts: Vec<&str> = live.texts(kind).collect();
        let ids = live.ids(kind);
        let mut order: Vec<usize> = (0..texts.len()).collect();
        order.sort_by(|a, b| ids[*a].cmp(&ids[*b]));
        hasher.update(kind.dao().as_bytes());
        hasher.update(b"\n");
        for i in order {
            hasher.update(texts[i].as_bytes());
            hasher.update(b"\n");
        }
    }
    let digest = hasher.finalize();
    format!(
        "sha256:{}",
        digest
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    )
}

/// JSON with object keys sorted, whatever order the map keeps them in.
fn canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                canonical(&map[k], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical(v, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use carl_model::Kind;
    use serde_json::json;

    fn live(entities: Vec<Value>) -> LiveState {
        LiveState::from_entities([(
            Kind::Service,
            entities
                .into_iter()
                .map(|v| v.as_object().unwrap().clone())
                .collect(),
        )])
    }

    #[test]
    fn fingerprint_ignores_order_and_sees_every_change() {
        let a = json!({"id": "1", "name": "a", "port": 80});
        let b = json!({"id": "2", "name": "b", "port": 80});
        let reordered = json!({"port": 80, "name": "a", "id": "1"});
        assert_eq!(
            fingerprint(&live(vec![a.clone(), b.clone()])),
            fingerprint(&live(vec![b.clone(), reordered]))
        );
        let changed = json!({"id": "1", "name": "a", "port": 81});
        assert_ne!(
            fingerprint(&live(vec![a.clone(), b.clone()])),
            fingerprint(&live(vec![changed, b.clone()]))
        );
        assert_ne!(
            fingerprint(&live(vec![a.clone(), b])),
            fingerprint(&live(vec![a]))
        );
    }

    #[test]
    fn another_format_version_is_refused_with_what_to_do() {
        let e = SavedPlan::from_json(r#"{"format_version": 99}"#).unwrap_err();
        assert!(e.contains("plan again"), "{e}");
        assert!(
            SavedPlan::from_json("{")
                .unwrap_err()
                .starts_with("not a carl plan file")
        );
    }
}
