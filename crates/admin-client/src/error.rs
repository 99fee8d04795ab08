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
        let message = body
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
            Error::Api { message, body, .. } => {
                let fields = body.get("fields").and_then(Value::as_object);
                match (body.get("code").and_then(Value::as_u64), fields) {
                    (Some(5), Some(fields)) if !fields.is_empty() => {
                        let clash: Vec<String> = fields
                            .iter()
                            .map(|(field, value)| match value {
                                Value::String(s) => format!("{field} '{s}'"),
                                other => format!("{field} {other}"),
                            })
                            .collect();
                        format!(
                            "unique constraint violated on {} (another entity has it)",
                            clash.join(" and ")
                        )
                    }
                    _ => message.clone(),
                }
            }
            other => other.to_string(),
        }
    }
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
        let plain = Error::api(Method::GET, "/", StatusCode::BAD_GATEWAY, b"", None);
        assert_eq!(plain.kong_message(), "Bad Gateway");
        assert!(plain.is_transient());
    }
}
