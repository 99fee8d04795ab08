//! Admin API failures, worded so a user knows what happened and where.

use reqwest::{Method, StatusCode};
use serde_json::Value;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// carl's own settings are wrong (address, header).
    #[error("{0}")]
    Config(String),
    /// No HTTP answer: connection refused, reset, timed out.
    #[error("{method} {path}: cannot reach Kong at {addr}: {cause}")]
    Transport {
        method: Method,
        path: String,
        addr: String,
        cause: String,
        timeout: bool,
        /// False for failures that will not change on a retry (a certificate refused).
        retryable: bool,
    },
    /// Kong answered with an error status.
    #[error("{method} {path}: {status} {message}")]
    Api {
        method: Method,
        path: String,
        status: u16,
        /// Kong's `message`, or the status text when the body has none.
        message: String,
        /// Kong's error body, when it was JSON (`code`, `name`, `fields`).
        body: Value,
        /// `Retry-After`, when Kong (or a proxy) sent one.
        retry_after: Option<std::time::Duration>,
    },
    /// Kong answered 2xx with something that is not what the Admin API returns.
    #[error("{path}: unexpected response: {message}")]
    Decode { path: String, message: String },
}

impl Error {
    pub(crate) fn transport(method: &Method, path: &str, addr: &str, e: reqwest::Error) -> Error {
        // reqwest's outer layers repeat the URL; the innermost cause says why.
        let mut cause = crate::connect::innermost(&e);
        let tls = crate::connect::explain_tls(&cause);
        if let Some(meaning) = tls {
            cause = format!("{meaning} ({cause})");
        } else if e.is_timeout() {
            cause = format!("timed out ({cause})");
        } else if e.is_connect() {
            cause = format!("connection failed: {cause}");
        }
        Error::Transport {
            method: method.clone(),
            path: path.to_owned(),
            addr: addr.to_owned(),
            cause,
            timeout: e.is_timeout(),
            retryable: tls.is_none(),
        }
    }

    pub(crate) fn api(
        method: Method,
        path: &str,
        status: StatusCode,
        bytes: &[u8],
        retry_after: Option<std::time::Duration>,
    ) -> Error {
        let body: Value = serde_json::from_slice(bytes).unwrap_or(Value::Null);
        let raw = body
            .get("message")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .unwrap_or_else(|| {
                let text = String::from_utf8_lossy(bytes);
                let text = text.trim();
                if text.is_empty() {
                    status.canonical_reason().unwrap_or("error").to_owned()
                } else {
                    text.chars().take(200).collect()
                }
            });
        // Made readable and stripped of secrets once, here: every way the error is
        // shown (Display, logs, reports) then shows only this.
        let message = unique_violation(&body)
            .unwrap_or_else(|| redact_declared_values(&redact_unique_values(&raw)));
        Error::Api {
            method,
            path: path.to_owned(),
            status: status.as_u16(),
            message,
            body,
            retry_after,
        }
    }

    /// Whether trying again may succeed: no answer, or an answer that says "later"
    /// (429, 502, 503, 504), or Kong's 500, which it answers for a database error
    /// (a lost or timed-out Postgres connection: `kong/api/endpoints.lua` maps
    /// `database error` to 500). Every request carl sends is idempotent, so retrying
    /// is safe; a 500 that is a bug in Kong costs only the waits.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Transport { retryable, .. } => *retryable,
            Error::Api { status, .. } => matches!(status, 429 | 500 | 502 | 503 | 504),
            _ => false,
        }
    }

    /// Kong refused an insert because the entity, or one with the same unique values,
    /// exists: `primary key violation` (code 3, answered 400) or `unique constraint
    /// violation` (code 5, 409).
    pub fn is_clash(&self) -> bool {
        match self {
            Error::Api { body, .. } => {
                matches!(body.get("code").and_then(Value::as_u64), Some(3 | 5))
            }
            _ => false,
        }
    }

    /// The HTTP status Kong answered, if it answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Api { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Kong's own message for an API error, in words where Kong's is a Lua table: a
    /// unique violation (code 5, whose `fields` are the values that clash) reads
    /// `unique constraint violated on name 'orders' (another entity has it)`. The
    /// error's text for other errors.
    pub fn kong_message(&self) -> String {
        match self {
            Error::Api { message, .. } => message.clone(),
            other => other.to_string(),
        }
    }
}

/// A unique violation (code 5, whose `fields` are the values that clash) in words,
/// secret values left out.
fn unique_violation(body: &Value) -> Option<String> {
    let fields = body.get("fields").and_then(Value::as_object)?;
    if body.get("code").and_then(Value::as_u64) != Some(5) || fields.is_empty() {
        return None;
    }
    let clash: Vec<String> = fields
        .iter()
        .map(|(field, value)| match value {
            _ if is_secret_field(field) => format!("{field} (sensitive)"),
            Value::String(s) => format!("{field} '{s}'"),
            other => format!("{field} {other}"),
        })
        .collect();
    Some(format!(
        "unique constraint violated on {} (another entity has it)",
        clash.join(" and ")
    ))
}

/// Kong's own unique-violation text quotes the clashing values as a Lua table:
/// `UNIQUE violation detected on '{key="hunter2"}'`. A secret field's value is
/// replaced by `(sensitive)`.
fn redact_unique_values(message: &str) -> String {
    const ON: &str = "violation detected on '{";
    let Some(start) = message.find(ON).map(|at| at + ON.len()) else {
        return message.to_owned();
    };
    let Some(len) = message[start..].find("}'") else {
        return message.to_owned();
    };
    let pairs: Vec<String> = message[start..start + len]
        .split(',')
        .map(|pair| match pair.split_once('=') {
            Some((field, _)) if is_secret_field(field.trim()) => format!("{field}=(sensitive)"),
            _ => pair.to_owned(),
        })
        .collect();
    format!(
        "{}{}{}",
        &message[..start],
        pairs.join(","),
        &message[start + len..]
    )
}

/// One entity a DB-less Kong refused in a configuration (`POST /config` with
/// `flatten_errors`, Kong 3.2+), and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntityErrors {
    /// The entity's kind, when carl knows Kong's `entity_type` (`service`,
    /// `keyauth_credential`).
    pub kind: Option<carl_model::Kind>,
    pub entity_type: String,
    pub id: Option<String>,
    pub name: Option<String>,
    pub errors: Vec<FieldError>,
}

/// One message about an entity: about one of its fields (a dotted path into records,
/// `config.minute`), or about the entity as a whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: Option<String>,
    pub message: String,
}

impl Error {
    /// The entities a refused `POST /config` names (empty for other errors, and for a
    /// Kong older than 3.2, which does not flatten). Kong echoes each entity as it was
    /// sent, secrets included: that part is not read.
    pub fn entity_errors(&self) -> Vec<EntityErrors> {
        let Error::Api { body, .. } = self else {
            return Vec::new();
        };
        let Some(list) = body.get("flattened_errors").and_then(Value::as_array) else {
            return Vec::new();
        };
        let text = |v: &Value, key: &str| v.get(key).and_then(Value::as_str).map(str::to_owned);
        list.iter()
            .map(|entry| {
                let entity_type = text(entry, "entity_type").unwrap_or_default();
                let errors = entry
                    .get("errors")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .map(|e| FieldError {
                        // Kong writes a list position as a number (`categorize_errors`).
                        field: match e.get("field") {
                            Some(Value::String(f)) => Some(f.clone()),
                            Some(Value::Number(n)) => Some(n.to_string()),
                            _ => None,
                        },
                        message: redact_declared_values(&text(e, "message").unwrap_or_default()),
                    })
                    .collect();
                EntityErrors {
                    kind: carl_model::Kind::from_dao(&format!("{entity_type}s")),
                    id: text(entry, "entity_id"),
                    name: text(entry, "entity_name"),
                    entity_type,
                    errors,
                }
            })
            .collect()
    }
}

/// A field whose value is a secret in some kind (a credential's `key`, a `password`).
fn is_secret_field(field: &str) -> bool {
    carl_model::Kind::ALL
        .iter()
        .any(|k| k.secret_fields().contains(&field))
        || carl_model::is_secret_name(field)
}

/// Kong's uniqueness messages quote the clashing value: `... entity with key set to
/// 'the-credential' already declared`. For a secret field (a credential's key, a
/// password) the value is replaced by `(sensitive)`: it would otherwise reach the log.
pub fn redact_declared_values(message: &str) -> String {
    const WITH: &str = " entity with ";
    const SET_TO: &str = " set to '";
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(at) = rest.find(WITH) {
        let after = &rest[at + WITH.len()..];
        let Some(set) = after.find(SET_TO) else { break };
        let field = &after[..set];
        let value_at = at + WITH.len() + set + SET_TO.len();
        let secret = is_secret_field(field);
        out.push_str(&rest[..value_at]);
        rest = &rest[value_at..];
        if secret && let Some(end) = rest.find("' already declared") {
            out.push_str("(sensitive)");
            rest = &rest[end..];
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kong_messages_name_the_field_at_fault() {
        // Kong 3.9's answer to a second service named "orders" (kong/db/errors.lua:
        // `fields` is the unique key that clashes).
        let body = br#"{"code":5,"name":"unique constraint violation","fields":{"name":"orders"},"message":"UNIQUE violation detected on '{name=\"orders\"}'"}"#;
        let e = Error::api(Method::PUT, "/services/x", StatusCode::CONFLICT, body, None);
        assert_eq!(
            e.kong_message(),
            "unique constraint violated on name 'orders' (another entity has it)"
        );
        // A DB-less Kong's uniqueness message quotes the value: a credential's key is
        // a secret, a name is not.
        let declared = br#"{"code":14,"message":"declarative config is invalid: {keyauth_credentials={[2]=\"uniqueness violation: 'keyauth_credentials' entity with key set to 'hunter2' already declared\"},services={[2]=\"uniqueness violation: 'services' entity with name set to 'orders' already declared\"}}"}"#;
        let e = Error::api(
            Method::POST,
            "/config",
            StatusCode::BAD_REQUEST,
            declared,
            None,
        );
        let message = e.kong_message();
        assert!(!message.contains("hunter2"), "{message}");
        assert!(
            message.contains("key set to '(sensitive)' already declared"),
            "{message}"
        );
        assert!(
            message.contains("name set to 'orders' already declared"),
            "{message}"
        );
        // With a database, a clash on a credential's key is code 5 with the key in
        // `fields` and in Kong's message: neither is shown.
        let clash = br#"{"code":5,"name":"unique constraint violation","fields":{"key":"hunter2"},"message":"UNIQUE violation detected on '{key=\"hunter2\"}'"}"#;
        let e = Error::api(
            Method::PUT,
            "/key-auths/x",
            StatusCode::CONFLICT,
            clash,
            None,
        );
        assert_eq!(
            e.kong_message(),
            "unique constraint violated on key (sensitive) (another entity has it)"
        );
        assert!(!e.to_string().contains("hunter2"), "{e}");
        // Without `fields`, Kong's own text is shown, the secret value taken out.
        let bare = br#"{"code":5,"message":"UNIQUE violation detected on '{consumer={id=\"c1\"}, key=\"hunter2\"}'"}"#;
        let e = Error::api(Method::POST, "/key-auths", StatusCode::CONFLICT, bare, None);
        let shown = e.to_string();
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("key=(sensitive)"), "{shown}");
        assert!(shown.contains("consumer={id=\"c1\"}"), "{shown}");
        let plain = Error::api(Method::GET, "/", StatusCode::BAD_GATEWAY, b"", None);
        assert_eq!(plain.kong_message(), "Bad Gateway");
        assert!(plain.is_transient());
    }
}
