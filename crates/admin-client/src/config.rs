//! DB-less Kong: its configuration is read and replaced whole (`/config`), never entity
//! by entity (`kong/api/routes/config.lua`).

use carl_model::Object;
use reqwest::Method;
use serde_json::Value;

use crate::{AdminClient, Error};

/// What `POST /config` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Loaded {
    /// Kong loaded the configuration (201).
    Applied,
    /// Kong already ran exactly this configuration and kept it (304, `check_hash`).
    Unchanged,
}

impl AdminClient {
    /// `GET /config`: the whole configuration a DB-less Kong runs, as Kong exports it
    /// (flat: every kind a top-level list, foreign keys as bare ids, all fields,
    /// `_transform: false`).
    pub async fn config(&self) -> Result<Value, Error> {
        let path = "/config";
        let answer = self.request(Method::GET, path, None).await?;
        let Some(text) = answer.get("config").and_then(Value::as_str) else {
            return Err(Error::Decode {
                path: path.into(),
                message: "no `config` text in the answer".into(),
            });
        };
        parse_export(text).map_err(|message| Error::Decode {
            path: path.into(),
            message,
        })
    }

    /// `GET /status`'s `configuration_hash`: which configuration a DB-less Kong runs
    /// (`None` from a Kong with a database).
    pub async fn configuration_hash(&self) -> Result<Option<String>, Error> {
        let status = self.request(Method::GET, "/status", None).await?;
        Ok(status
            .get("configuration_hash")
            .and_then(Value::as_str)
            .map(str::to_owned))
    }

    /// `POST /config?check_hash=1&flatten_errors=1` with `text` (JSON or YAML) as the
    /// `config` parameter: Kong replaces its whole configuration, or answers 304 when it
    /// runs this very text already (the hash covers text, not a table, hence the
    /// parameter). A refusal is [`Error::Api`] whose [`Error::entity_errors`] name the
    /// entities at fault. Kong's 201 body (every entity, secrets included) is not read.
    pub async fn load_config(&self, text: String) -> Result<Loaded, Error> {
        let path = "/config?check_hash=1&flatten_errors=1";
        let mut body = Object::new();
        body.insert("config".into(), Value::String(text));
        let sent = self
            .retry
            .run(|| self.send_once(Method::POST, path, Some(&body)))
            .await;
        match sent {
            Ok(_) => Ok(Loaded::Applied),
            Err(Error::Api { status: 304, .. }) => Ok(Loaded::Unchanged),
            Err(e) => Err(e),
        }
    }
}

/// Kong's export is YAML that lyaml wrote; a large gateway's has millions of nodes, more
/// than the YAML parser's default budget allows (the text comes from the gateway, and
/// its size is bounded by the answer's).
fn parse_export(text: &str) -> Result<Value, String> {
    if let Ok(v) = serde_json::from_str::<Value>(text) {
        return Ok(v);
    }
    let mut budget = serde_saphyr::Budget::default();
    budget.max_nodes = usize::MAX;
    budget.max_events = usize::MAX;
    budget.max_total_scalar_bytes = usize::MAX;
    let options = serde_saphyr::options! { budget: Some(budget) };
    serde_saphyr::from_str_with_options::<Value>(text, options)
        .map_err(|e| format!("the exported configuration is not YAML: {e}"))
}
