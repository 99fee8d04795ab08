//! DB-less gateways: Kong without a database refuses entity writes and loads its whole
//! configuration at once (`POST /config`). The plan is applied to the configuration
//! the gateway runs (`GET /config`), op by op in plan order, and the result is sent in
//! one request: everything the plan does, and nothing outside it, lands together or not
//! at all.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use carl_admin_client::{AdminClient, EntityErrors, Error, Loaded};
use carl_model::{Kind, Object};
use carl_planner::{Action, Op, Plan};
use serde_json::{Value, json};

/// How a DB-less apply ended.
#[derive(Debug, Clone, PartialEq)]
pub enum ConfigOutcome {
    /// Kong loaded the new configuration: every op is done.
    Applied,
    /// Kong runs exactly this configuration already (`check_hash`): nothing reloaded.
    Unchanged,
    /// Kong refused the configuration; nothing changed. `errors` name the entities at
    /// fault (Kong 3.2+); `message` is Kong's.
    Refused {
        message: String,
        errors: Vec<EntityErrors>,
    },
    /// Nothing was loaded, for another reason (unreachable, the configuration changed
    /// since it was read, an op that no longer fits it).
    Failed(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct ConfigReport {
    pub outcome: ConfigOutcome,
    pub elapsed: Duration,
    /// HTTP requests sent, retries included.
    pub requests: u64,
}

/// Applies `plan` to a DB-less gateway: reads its configuration, checks that it is still
/// the one planned against (`planned_hash`, Kong's `configuration_hash` read before the
/// live state), applies the ops to it and loads the result with `check_hash`.
pub async fn apply_config(
    client: &AdminClient,
    plan: &Plan,
    planned_hash: Option<&str>,
) -> ConfigReport {
    let started = Instant::now();
    let sent_before = client.requests_sent();
    let outcome = load(client, plan, planned_hash).await;
    ConfigReport {
        outcome,
        elapsed: started.elapsed(),
        requests: client.requests_sent() - sent_before,
    }
}

async fn load(client: &AdminClient, plan: &Plan, planned_hash: Option<&str>) -> ConfigOutcome {
    let base = match client.config().await {
        Ok(base) => base,
        Err(e) => return ConfigOutcome::Failed(format!("cannot read the configuration: {e}")),
    };
    // Read after the configuration: if this still matches, so did what was read.
    match (client.configuration_hash().await, planned_hash) {
        (Ok(now), Some(planned)) if now.as_deref() != Some(planned) => {
            return ConfigOutcome::Failed(format!(
                "the gateway loaded another configuration since carl read it (hash {planned} → {}); \
                 plan again",
                now.as_deref().unwrap_or("none")
            ));
        }
        (Err(e), _) => return ConfigOutcome::Failed(format!("cannot read /status: {e}")),
        _ => {}
    }
    let config = match render(base, plan) {
        Ok(config) => config,
        Err(why) => return ConfigOutcome::Failed(why),
    };
    let text = config.to_string();
    drop(config);
    match client.load_config(text).await {
        Ok(Loaded::Applied) => ConfigOutcome::Applied,
        Ok(Loaded::Unchanged) => ConfigOutcome::Unchanged,
        Err(e @ Error::Api { status: 400, .. }) => ConfigOutcome::Refused {
            message: e.kong_message(),
            errors: e.entity_errors(),
        },
        Err(e) => ConfigOutcome::Failed(e.to_string()),
    }
}

/// The configuration that results from applying `plan`'s ops, in order, to `base` (a
/// flat configuration as `GET /config` exports it): creates added with their id,
/// updates changed field by field (records by path, everything else whole, as Kong's
/// PATCH does), deletes removed along with what Kong would cascade. Values Kong
/// derives on write are derived here, since the result is loaded with
/// `_transform: false` (the base holds them derived already): basic-auth password
/// hashes, CA certificate digests.
pub fn render(base: Value, plan: &Plan) -> Result<Value, String> {
    let Value::Object(mut root) = base else {
        return Err("the gateway's configuration is not a table".into());
    };
    // Every list of entities, as slots so deletes keep positions.
    let mut lists: Vec<(String, Vec<Option<Object>>)> = Vec::new();
    let mut meta = Object::new();
    for (key, value) in std::mem::take(&mut root) {
        match value {
            Value::Array(items) if !key.starts_with('_') => {
                let slots = items
                    .into_iter()
                    .map(|v| match v {
                        Value::Object(o) => Some(o),
                        _ => None,
                    })
                    .collect();
                lists.push((key, slots));
            }
            other => {
                meta.insert(key, other);
            }
        }
    }
    let mut at: HashMap<(String, String), (usize, usize)> = HashMap::new();
    for (l, (dao, slots)) in lists.iter().enumerate() {
        for (i, o) in slots.iter().enumerate() {
            if let Some(id) = o.as_ref().and_then(|o| o.get("id")).and_then(Value::as_str) {
                at.insert((dao.clone(), id.to_owned()), (l, i));
            }
        }
    }
    let mut deleted: HashSet<String> = HashSet::new();
    for op in &plan.ops {
        let dao = op.kind.dao().to_owned();
        let key = (dao.clone(), op.id.clone());
        match op.action {
            Action::Create => {
                let mut entity = op.body();
                entity.insert("id".into(), json!(op.id));
                derive(op.kind, &mut entity, true, true);
                deleted.remove(&op.id);
                match at.get(&key) {
                    Some(&(l, i)) => lists[l].1[i] = Some(entity),
                    None => {
                        let l = match lists.iter().position(|(d, _)| *d == dao) {
                            Some(l) => l,
                            None => {
                                lists.push((dao.clone(), Vec::new()));
                                lists.len() - 1
                            }
                        };
                        lists[l].1.push(Some(entity));
                        at.insert(key, (l, lists[l].1.len() - 1));
                    }
                }
            }
            Action::Update => {
                let entity = at
                    .get(&key)
                    .and_then(|&(l, i)| lists[l].1[i].as_mut())
                    .ok_or_else(|| missing(op))?;
                let changes = op.changes();
                for change in changes.iter() {
                    carl_model::set_path(entity, &change.field, change.new.clone());
                }
                let password = changes.iter().any(|c| c.field == "password");
                let cert = changes.iter().any(|c| c.field == "cert");
                derive(op.kind, entity, password, cert);
            }
            Action::Delete => {
                if let Some(&(l, i)) = at.get(&key) {
                    lists[l].1[i] = None;
                }
                deleted.insert(op.id.clone());
            }
        }
    }
    cascade(&mut lists, deleted);
    let mut out = meta;
    out.insert("_format_version".into(), json!("3.0"));
    out.insert("_transform".into(), json!(false));
    for (dao, slots) in lists {
        let items: Vec<Value> = slots.into_iter().flatten().map(Value::Object).collect();
        out.insert(dao, Value::Array(items));
    }
    Ok(Value::Object(out))
}

fn missing(op: &Op) -> String {
    format!(
        "{} {} ({}) is no longer in the gateway's configuration; plan again",
        op.kind, op.label, op.id
    )
}

/// What Kong's transformations would have written: the entity goes in with
/// `_transform: false`.
fn derive(kind: Kind, entity: &mut Object, password: bool, cert: bool) {
    match kind {
        Kind::BasicAuth if password => {
            let consumer = entity.get("consumer").and_then(id_of).map(str::to_owned);
            if let (Some(pw), Some(consumer)) =
                (entity.get("password").and_then(Value::as_str), consumer)
            {
                let hash = carl_planner::diff::basic_auth_hash(pw, &consumer);
                entity.insert("password".into(), json!(hash));
            }
        }
        Kind::CaCertificate if cert => {
            if let Some(digest) = entity
                .get("cert")
                .and_then(Value::as_str)
                .and_then(carl_model::kong_rules::ca_cert_digest)
            {
                entity.insert("cert_digest".into(), json!(digest));
            }
        }
        _ => {}
    }
}

/// A foreign key as Kong exports it (a bare id) or as carl writes it (`{"id": ...}`).
fn id_of(value: &Value) -> Option<&str> {
    value.as_str().or_else(|| carl_model::foreign_id(value))
}

/// Removes, transitively, every entity whose cascading foreign key points at a deleted
/// one (a consumer's credentials and plugins, an upstream's targets), as Kong's delete
/// would. Lists of kinds carl does not model cascade on a field named after the parent
/// kind (`consumer` in `oauth2_credentials`), Kong's convention.
fn cascade(lists: &mut [(String, Vec<Option<Object>>)], mut deleted: HashSet<String>) {
    let rules: Vec<Vec<String>> = lists
        .iter()
        .map(|(dao, _)| match Kind::from_dao(dao) {
            Some(kind) => kind
                .schema()
                .fields
                .iter()
                .filter(|f| f.raw.get("on_delete").and_then(Value::as_str) == Some("cascade"))
                .map(|f| f.name.clone())
                .collect(),
            None => ["consumer", "service", "route", "upstream", "certificate"]
                .map(String::from)
                .to_vec(),
        })
        .collect();
    while !deleted.is_empty() {
        let mut more = HashSet::new();
        for ((_, slots), fields) in lists.iter_mut().zip(&rules) {
            for slot in slots.iter_mut() {
                let Some(o) = slot else { continue };
                let doomed = fields.iter().any(|f| {
                    o.get(f)
                        .and_then(id_of)
                        .is_some_and(|id| deleted.contains(id))
                });
                if doomed {
                    if let Some(id) = o.get("id").and_then(Value::as_str) {
                        more.insert(id.to_owned());
                    }
                    *slot = None;
                }
            }
        }
        deleted = more;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use carl_planner::Change;

    const CONSUMER: &str = "0b4f1a3c-56c9-4d5e-9f0a-1b2c3d4e5f60";
    const PLUGIN: &str = "5c3a0f3e-1d2b-4c5d-8e9f-0a1b2c3d4e5f";

    /// An op whose request body is `changes` and `body` (as fields beyond them).
    fn op(action: Action, kind: Kind, id: &str, changes: Vec<Change>, body: Value) -> Op {
        Op {
            index: 0,
            action,
            kind,
            id: id.into(),
            label: "x".into(),
            path: String::new(),
            replace: None,
            replaces: None,
            changes: carl_planner::Changes::Listed(changes),
            extra: body.as_object().cloned().unwrap_or_default(),
            depends_on: Vec::new(),
        }
    }

    fn change(field: &str, new: Value) -> Change {
        Change {
            field: field.into(),
            old: Value::Null,
            new,
            sensitive: false,
        }
    }

    fn base() -> Value {
        json!({
            "_format_version": "3.0",
            "_transform": false,
            "consumers": [{"id": CONSUMER, "username": "alice"}],
            "keyauth_credentials": [{"id": "k1", "consumer": CONSUMER, "key": "secret"}],
            "oauth2_credentials": [{"id": "o1", "consumer": CONSUMER, "name": "app"}],
            "plugins": [{
                "id": PLUGIN, "name": "rate-limiting", "consumer": CONSUMER,
                "config": {"minute": 5, "hour": 100, "headers": {"a": "1", "b": "2"}}
            }],
            "services": [{"id": "s1", "name": "orders", "host": "orders.internal"}]
        })
    }

    fn plan(ops: Vec<Op>) -> Plan {
        Plan {
            ops: ops
                .into_iter()
                .enumerate()
                .map(|(i, mut o)| {
                    o.index = i;
                    o
                })
                .collect(),
            ..Plan::default()
        }
    }

    fn ids(config: &Value, dao: &str) -> Vec<String> {
        config[dao]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["id"].as_str().unwrap().to_owned())
            .collect()
    }

    #[test]
    fn an_update_changes_records_by_path_and_other_values_whole() {
        let p = plan(vec![op(
            Action::Update,
            Kind::Plugin,
            PLUGIN,
            vec![
                change("config.minute", json!(10)),
                change("config.headers", json!({"a": "9"})),
            ],
            json!({}),
        )]);
        let out = render(base(), &p).unwrap();
        let config = &out["plugins"][0]["config"];
        assert_eq!(config["minute"], 10);
        assert_eq!(config["hour"], 100, "a record keeps the fields not changed");
        assert_eq!(
            config["headers"],
            json!({"a": "9"}),
            "a map is replaced whole"
        );
        assert_eq!(out["_transform"], false);
    }

    #[test]
    fn a_delete_takes_what_kong_would_cascade() {
        let p = plan(vec![op(
            Action::Delete,
            Kind::Consumer,
            CONSUMER,
            vec![],
            json!({}),
        )]);
        let out = render(base(), &p).unwrap();
        for dao in [
            "consumers",
            "keyauth_credentials",
            "oauth2_credentials",
            "plugins",
        ] {
            assert!(ids(&out, dao).is_empty(), "{dao}: {out}");
        }
        assert_eq!(ids(&out, "services"), ["s1"], "unrelated entities stay");
    }

    #[test]
    fn creates_derive_what_kong_transforms() {
        let p = plan(vec![
            op(
                Action::Create,
                Kind::BasicAuth,
                "b1",
                vec![],
                json!({"consumer": {"id": CONSUMER}, "username": "alice", "password": "pw"}),
            ),
            // Deleted and created again with the same id: the new one stays.
            op(Action::Delete, Kind::Service, "s1", vec![], json!({})),
            op(
                Action::Create,
                Kind::Service,
                "s1",
                vec![],
                json!({"name": "orders", "host": "new.internal"}),
            ),
        ]);
        let out = render(base(), &p).unwrap();
        let credential = &out["basicauth_credentials"][0];
        assert_eq!(
            credential["password"],
            carl_planner::diff::basic_auth_hash("pw", CONSUMER)
        );
        assert_eq!(credential["id"], "b1");
        assert_eq!(
            out["services"],
            json!([{"id": "s1", "name": "orders", "host": "new.internal"}])
        );
    }

    #[test]
    fn an_update_of_an_entity_no_longer_there_is_an_error() {
        let p = plan(vec![op(
            Action::Update,
            Kind::Service,
            "gone",
            vec![change("host", json!("h"))],
            json!({}),
        )]);
        let err = render(base(), &p).unwrap_err();
        assert!(
            err.contains("no longer in the gateway's configuration"),
            "{err}"
        );
    }
}
