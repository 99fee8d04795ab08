//! Field-by-field comparison of a desired entity with its live counterpart.
//!
//! Only fields the schema knows are compared, so values Kong generates (ids,
//! timestamps) and fields of a newer Kong the file cannot mention never show as drift.
//! Set-typed fields compare as sets; an empty list and null mean the same thing to Kong.

use carl_model::{Field, FieldType, Object, Schema};
use serde_json::Value;

use crate::Change;

/// The fields of `desired` (complete, with defaults) that differ from `live`, in schema
/// order.
pub fn changes(schema: &Schema, desired: &Object, live: &Object) -> Vec<Change> {
    let mut out = Vec::new();
    for field in &schema.fields {
        if field.auto {
            continue;
        }
        let Some(new) = desired.get(&field.name) else {
            continue;
        };
        let old = live.get(&field.name).unwrap_or(&Value::Null);
        if !equal(Some(field), new, old) {
            out.push(Change {
                field: field.name.clone(),
                old: old.clone(),
                new: new.clone(),
            });
        }
    }
    out
}

/// Equality as Kong means it for a value of `field`'s type.
pub fn equal(field: Option<&Field>, a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Null, Value::Null) => true,
        // Kong treats an empty collection and null alike (it renders both, by version).
        (Value::Null, Value::Array(v)) | (Value::Array(v), Value::Null) => v.is_empty(),
        (Value::Null, Value::Object(m)) | (Value::Object(m), Value::Null) => {
            m.is_empty() && field.is_some_and(|f| f.ty == FieldType::Map)
        }
        (Value::Number(x), Value::Number(y)) => x == y || x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            let elements = field.and_then(|f| f.elements.as_deref());
            if field.is_some_and(Field::is_set) {
                // Sets: same members, ignoring order and duplicates.
                x.iter().all(|i| y.iter().any(|j| equal(elements, i, j)))
                    && y.iter().all(|j| x.iter().any(|i| equal(elements, i, j)))
            } else {
                x.len() == y.len() && x.iter().zip(y).all(|(i, j)| equal(elements, i, j))
            }
        }
        (Value::Object(x), Value::Object(y)) => {
            let sub = |k: &str| field.and_then(|f| f.fields.iter().find(|s| s.name == k));
            x.keys().chain(y.keys()).all(|k| {
                equal(
                    sub(k),
                    x.get(k).unwrap_or(&Value::Null),
                    y.get(k).unwrap_or(&Value::Null),
                )
            })
        }
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use carl_model::Kind;
    use serde_json::json;

    fn obj(v: Value) -> Object {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn sets_compare_as_sets_and_arrays_in_order() {
        let schema = Kind::Route.schema();
        let desired = obj(json!({"protocols": ["https", "http"], "paths": ["/a", "/b"]}));
        let live = obj(json!({"protocols": ["http", "https"], "paths": ["/b", "/a"]}));
        let c = changes(schema, &desired, &live);
        assert_eq!(c.len(), 1, "{c:?}");
        assert_eq!(
            c[0].field, "paths",
            "paths is an array: order matters to Kong's router"
        );
    }

    #[test]
    fn null_and_empty_collections_are_equal() {
        let schema = Kind::Route.schema();
        let desired = obj(json!({"hosts": [], "headers": null}));
        let live = obj(json!({"hosts": null, "headers": {}}));
        assert!(changes(schema, &desired, &live).is_empty());
    }

    #[test]
    fn generated_and_unknown_fields_are_not_drift() {
        let schema = Kind::Service.schema();
        let desired = obj(json!({"host": "h", "port": 80}));
        let live = obj(
            json!({"id": "x", "created_at": 1, "updated_at": 2, "host": "h", "port": 80, "new_field": 1}),
        );
        assert!(changes(schema, &desired, &live).is_empty());
    }

    #[test]
    fn changed_fields_carry_old_and_new() {
        let schema = Kind::Service.schema();
        let c = changes(
            schema,
            &obj(json!({"port": 8080})),
            &obj(json!({"port": 80})),
        );
        assert_eq!(
            c,
            [Change {
                field: "port".into(),
                old: json!(80),
                new: json!(8080)
            }]
        );
    }
}
