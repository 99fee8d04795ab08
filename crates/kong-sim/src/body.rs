//! Request bodies as Kong's Admin API reads them (kong/api/api_helpers.lua,
//! kong/api/arguments.lua).

use axum::http::{HeaderMap, StatusCode, header::CONTENT_TYPE};
use carl_model::{FieldType, Kind, Object};
use serde_json::{Value, json};

use crate::errors::ApiError;

/// Reads a POST/PUT/PATCH body into an object.
pub fn read(kind: Kind, headers: &HeaderMap, bytes: &[u8]) -> Result<Object, ApiError> {
    let mut types = headers.get_all(CONTENT_TYPE).iter();
    let first = types.next();
    if types.next().is_some() {
        return Err(ApiError::Text(
            StatusCode::BAD_REQUEST,
            "Multiple Content-Type headers not allowed".into(),
        ));
    }
    let Some(ct) = first else {
        // An empty body without a type is fine; a non-empty one is 415.
        return if bytes.is_empty() {
            Ok(Object::new())
        } else {
            Err(ApiError::UnsupportedMediaType)
        };
    };
    let mime = ct
        .to_str()
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match mime.as_str() {
        "application/json" => match serde_json::from_slice::<Value>(bytes) {
            Ok(Value::Object(obj)) => Ok(obj),
            _ => Err(ApiError::bad_json()),
        },
        "application/x-www-form-urlencoded" => Ok(read_form(kind, bytes)),
        _ => Err(ApiError::UnsupportedMediaType),
    }
}

/// Form bodies: `a=1&a=2`, `a[]=x`, `a[1]=x`, `service.id=...`; values are typed
/// by the schema ("true" → boolean, numerals → numbers, "" → null).
fn read_form(kind: Kind, bytes: &[u8]) -> Object {
    let schema = kind.schema();
    let mut out = Object::new();
    for (raw_key, raw_value) in form_pairs(bytes) {
        let key = raw_key.split('[').next().unwrap_or("").to_owned();
        let (top, sub) = match key.split_once('.') {
            Some((t, s)) => (t.to_owned(), Some(s.to_owned())),
            None => (key, None),
        };
        let field = schema.field(&top);
        let ty = field.map(|f| f.ty);
        if let Some(sub) = sub {
            let entry = out.entry(top).or_insert_with(|| json!({}));
            if let Value::Object(map) = entry {
                map.insert(sub, typed(FieldType::String, &raw_value));
            }
            continue;
        }
        match ty {
            Some(FieldType::Array | FieldType::Set) => {
                let el = field
                    .and_then(|f| f.elements.as_ref())
                    .map_or(FieldType::String, |e| e.ty);
                let entry = out.entry(top).or_insert_with(|| json!([]));
                if let Value::Array(items) = entry {
                    items.push(typed(el, &raw_value));
                }
            }
            Some(t) => {
                out.insert(top, typed(t, &raw_value));
            }
            None => {
                out.insert(top, typed(FieldType::String, &raw_value));
            }
        }
    }
    out
}

fn typed(ty: FieldType, s: &str) -> Value {
    if s.is_empty() {
        return Value::Null;
    }
    match ty {
        FieldType::Integer | FieldType::Number => s
            .parse::<i64>()
            .map(Value::from)
            .or_else(|_| s.parse::<f64>().map(Value::from))
            .unwrap_or_else(|_| json!(s)),
        FieldType::Boolean => match s {
            "true" => json!(true),
            "false" => json!(false),
            _ => json!(s),
        },
        _ => json!(s),
    }
}

fn form_pairs(bytes: &[u8]) -> Vec<(String, String)> {
    bytes
        .split(|b| *b == b'&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let mut it = pair.splitn(2, |b| *b == b'=');
            let k = it.next().unwrap_or_default();
            let v = it.next().unwrap_or_default();
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &[u8]) -> String {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < s.len() => {
                let hex = std::str::from_utf8(&s[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_are_typed_by_schema() {
        let o = read_form(
            Kind::Route,
            b"paths[]=%2Fa&paths=/b&strip_path=false&service.name=svc&regex_priority=3",
        );
        assert_eq!(o["paths"], json!(["/a", "/b"]));
        assert_eq!(o["strip_path"], false);
        assert_eq!(o["service"], json!({"name": "svc"}));
        assert_eq!(o["regex_priority"], 3);
    }

    #[test]
    fn percent_decoding_tolerates_garbage() {
        assert_eq!(percent_decode(b"a%2"), "a%2");
        assert_eq!(percent_decode(b"a%zz"), "a%zz");
        assert_eq!(percent_decode(b"a+b%21"), "a b!");
    }
}
