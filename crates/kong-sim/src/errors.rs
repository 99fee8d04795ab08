//! Kong's error responses (kong/db/errors.lua, kong/api/endpoints.lua).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use carl_model::validate::{Violations as Errors, lua_literal};

/// An error answer, shaped exactly as Kong shapes it.
#[derive(Debug, Clone, PartialEq)]
pub enum ApiError {
    /// `{"message": "..."}` with the given status (404 "Not found", 405, parse errors...).
    Message(StatusCode, String),
    /// A DAO error: `{"code", "name", "message", "fields"?}`.
    Dao {
        status: StatusCode,
        code: u8,
        name: String,
        message: String,
        fields: Option<Value>,
        /// `invalid options` (code 11) carries `options` instead of `fields`.
        options_key: bool,
    },
    /// 415 with an empty body.
    UnsupportedMediaType,
    /// A non-JSON text body (Kong answers a few errors as raw text).
    Text(StatusCode, String),
    /// A JSON body built elsewhere (`/config` with `flatten_errors`).
    Json(StatusCode, Value),
}

impl ApiError {
    pub fn not_found() -> Self {
        ApiError::Message(StatusCode::NOT_FOUND, "Not found".into())
    }

    pub fn method_not_allowed() -> Self {
        ApiError::Message(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed".into())
    }

    pub fn bad_json() -> Self {
        ApiError::Message(StatusCode::BAD_REQUEST, "Cannot parse JSON body".into())
    }

    fn dao(
        status: StatusCode,
        code: u8,
        name: &str,
        message: String,
        fields: Option<Value>,
    ) -> Self {
        ApiError::Dao {
            status,
            code,
            name: name.into(),
            message,
            fields,
            options_key: false,
        }
    }

    /// Code 2, message built by [`Errors::message`].
    pub fn schema_violation(errors: &Errors) -> Self {
        Self::dao(
            StatusCode::BAD_REQUEST,
            2,
            "schema violation",
            errors.message(),
            Some(errors.to_json()),
        )
    }

    /// Code 3: an insert whose `id` already exists (400, not 409).
    pub fn primary_key_violation(id: &str) -> Self {
        Self::dao(
            StatusCode::BAD_REQUEST,
            3,
            "primary key violation",
            format!("primary key violation on key '{}'", lua_kv("id", id)),
            Some(json!({ "id": id })),
        )
    }

    /// Code 4 on insert/update: the referenced parent does not exist.
    pub fn foreign_key_invalid(field: &str, parent: &str, id: &str) -> Self {
        Self::dao(
            StatusCode::BAD_REQUEST,
            4,
            "foreign key violation",
            format!(
                "the foreign key '{}' does not reference an existing '{parent}' entity.",
                lua_kv("id", id)
            ),
            Some(json!({ field: { "id": id } })),
        )
    }

    /// Code 4 on delete: children still reference the entity.
    pub fn foreign_key_restricted(parent: &str, child: &str) -> Self {
        Self::dao(
            StatusCode::BAD_REQUEST,
            4,
            "foreign key violation",
            format!("an existing '{child}' entity references this '{parent}' entity"),
            Some(json!({ "@referenced_by": child })),
        )
    }

    /// Code 5 (409) for a unique field of any type.
    pub fn unique_violation_value(field: &str, value: &Value) -> Self {
        let mut fields = Map::new();
        fields.insert(field.to_owned(), value.clone());
        Self::unique_violation_fields(&fields)
    }

    /// Code 5 (409) for a combination (a cache key): `{consumer=null,name="cors",...}`.
    pub fn unique_violation_fields(fields: &Map<String, Value>) -> Self {
        Self::dao(
            StatusCode::CONFLICT,
            5,
            "unique constraint violation",
            format!(
                "UNIQUE violation detected on '{}'",
                lua_literal(&Value::Object(fields.clone()))
            ),
            Some(Value::Object(fields.clone())),
        )
    }

    /// Code 12 (405): a write in DB-less mode.
    pub fn operation_unsupported(message: String) -> Self {
        Self::dao(
            StatusCode::METHOD_NOT_ALLOWED,
            12,
            "operation unsupported",
            message,
            None,
        )
    }

    /// Code 14: `/config` input that does not validate.
    pub fn declarative(message: String, fields: Value) -> Self {
        Self::dao(
            StatusCode::BAD_REQUEST,
            14,
            "invalid declarative configuration",
            message,
            Some(fields),
        )
    }

    /// The `fields` of a DAO error.
    pub fn fields(&self) -> Option<Value> {
        match self {
            ApiError::Dao { fields, .. } => fields.clone(),
            _ => None,
        }
    }

    /// Code 6 by primary key.
    pub fn not_found_pk(id: &str) -> Self {
        Self::dao(
            StatusCode::NOT_FOUND,
            6,
            "not found",
            format!(
                "could not find the entity with primary key '{}'",
                lua_kv("id", id)
            ),
            Some(json!({ "id": id })),
        )
    }

    /// Code 6 by endpoint key.
    pub fn not_found_by(field: &str, value: &str) -> Self {
        Self::dao(
            StatusCode::NOT_FOUND,
            6,
            "not found",
            format!("could not find the entity with '{}'", lua_kv(field, value)),
            Some(json!({ field: value })),
        )
    }

    /// Code 7; Kong adds no `fields`.
    pub fn invalid_offset(offset: &str, why: &str) -> Self {
        Self::dao(
            StatusCode::BAD_REQUEST,
            7,
            "invalid offset",
            format!("'{offset}' is not a valid offset: {why}"),
            None,
        )
    }

    /// Code 9; Kong adds no `fields`.
    pub fn invalid_size(message: &str) -> Self {
        Self::dao(
            StatusCode::BAD_REQUEST,
            9,
            "invalid size",
            message.into(),
            None,
        )
    }

    /// Code 10: a path key that fails the endpoint key's validator.
    pub fn invalid_unique(field: &str, message: String) -> Self {
        Self::dao(
            StatusCode::BAD_REQUEST,
            10,
            &format!("invalid unique {field}"),
            message,
            None,
        )
    }

    /// Code 11, with `options` in place of `fields`.
    pub fn invalid_option(option: &str, message: &str) -> Self {
        ApiError::Dao {
            status: StatusCode::BAD_REQUEST,
            code: 11,
            name: "invalid options".into(),
            message: format!("invalid option ({option}: {message})"),
            fields: Some(json!({ option: message })),
            options_key: true,
        }
    }

    /// Code 13: a foreign key given by name that names nothing.
    pub fn foreign_key_unresolved(field: &str, key: &str, value: &str, parent: &str) -> Self {
        let text = format!(
            "the foreign key cannot be resolved with '{}' for an existing '{parent}' entity",
            lua_kv(key, value)
        );
        Self::dao(
            StatusCode::BAD_REQUEST,
            13,
            "foreign keys unresolved",
            format!("foreign key unresolved ({field}.{key}: {text})"),
            Some(json!({ field: { key: text } })),
        )
    }
}

/// A one-entry Lua table literal, as penlight's `pretty.write(t, "")` prints it:
/// `{name="foo"}`.
pub fn lua_kv(key: &str, value: &str) -> String {
    format!("{{{key}={}}}", lua_string(value))
}

/// A Lua string literal with the escapes penlight would use.
pub fn lua_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            _ => out.push(c),
        }
    }
    out.push('"');
    out
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            ApiError::Message(status, message) => {
                crate::server::json_response(status, &json!({ "message": message }))
            }
            ApiError::Dao {
                status,
                code,
                name,
                message,
                fields,
                options_key,
            } => {
                let mut body = Map::new();
                body.insert("code".into(), json!(code));
                body.insert("name".into(), json!(name));
                body.insert("message".into(), json!(message));
                if let Some(fields) = fields {
                    let key = if options_key { "options" } else { "fields" };
                    body.insert(key.into(), fields);
                }
                crate::server::json_response(status, &Value::Object(body))
            }
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE.into_response(),
            ApiError::Text(status, text) => (status, text).into_response(),
            ApiError::Json(status, body) => crate::server::json_response(status, &body),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lua_literals_escape_quotes() {
        assert_eq!(lua_kv("name", "foo"), r#"{name="foo"}"#);
        assert_eq!(lua_kv("name", "a\"b"), r#"{name="a\"b"}"#);
    }
}
