//! Kong's schema validation (`kong/db/schema/init.lua`, `Schema:validate`), driven by the
//! JSON schemas of [`crate::schema`], with Kong's messages and error shape.
//!
//! What the JSON cannot carry (Lua functions: typedef `custom_validator`s and
//! `custom_entity_check`s) comes from a [`Custom`] implementation, so kong-sim can
//! answer exactly as Kong and carl's offline validator can share the rules.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::lua_pattern::LuaPattern;
use crate::{Field, FieldType, Object, Schema};

pub const REQUIRED: &str = "required field missing";
pub const UNKNOWN: &str = "unknown field";

/// Validation errors in Kong's shape: entity-level messages plus a tree of field errors
/// (strings; arrays with nulls for elements; objects for records).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Violations {
    pub entity: Vec<String>,
    /// Sorted by name, the order Kong prints them in.
    pub fields: BTreeMap<String, Value>,
}

impl Violations {
    pub fn is_empty(&self) -> bool {
        self.entity.is_empty() && self.fields.is_empty()
    }

    pub fn field(name: &str, err: impl Into<Value>) -> Self {
        let mut v = Violations::default();
        v.fields.insert(name.to_owned(), err.into());
        v
    }

    /// `schema violation (a: x)` or `N schema violations (a: x; b: y)`
    /// (`kong/db/errors.lua` `schema_violation`): entity errors first, then fields
    /// sorted, one level of nesting flattened with 1-based indices.
    pub fn message(&self) -> String {
        let mut buf: Vec<String> = self.entity.clone();
        for (name, err) in &self.fields {
            match err {
                Value::Array(items) => {
                    for (i, item) in items.iter().enumerate() {
                        if !item.is_null() {
                            buf.push(format!("{name}.{}: {}", i + 1, render(item)));
                        }
                    }
                }
                Value::Object(map) => {
                    for (k, item) in map {
                        buf.push(format!("{name}.{k}: {}", render(item)));
                    }
                }
                other => buf.push(format!("{name}: {}", render(other))),
            }
        }
        if buf.len() == 1 {
            format!("schema violation ({})", buf[0])
        } else {
            format!("{} schema violations ({})", buf.len(), buf.join("; "))
        }
    }

    /// The `fields` object of Kong's error body.
    pub fn to_json(&self) -> Value {
        let mut out = Object::new();
        if !self.entity.is_empty() {
            out.insert("@entity".into(), json!(self.entity));
        }
        for (k, v) in &self.fields {
            out.insert(k.clone(), v.clone());
        }
        Value::Object(out)
    }
}

/// A nested error as Kong prints it in a message: strings bare, tables as Lua tables.
fn render(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => lua_literal(other),
    }
}

/// A value in Lua table syntax with sorted keys, as Kong's messages show tables.
pub fn lua_literal(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::String(s) => format!("\"{s}\""),
        Value::Array(items) => format!(
            "{{{}}}",
            items.iter().map(lua_literal).collect::<Vec<_>>().join(",")
        ),
        Value::Object(map) => {
            let parts: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{k}={}", lua_literal(v)))
                .collect();
            format!("{{{}}}", parts.join(","))
        }
        other => other.to_string(),
    }
}

/// The Lua functions of Kong's schemas, re-implemented by the caller.
pub trait Custom {
    /// A field's `custom_validator`, run after the built-in validators. `path` names the
    /// field from the entity root: `host`, `paths[]` for elements, `config.origins[]`,
    /// `headers{}` for map values, `headers{key}` for map keys.
    fn field(&self, schema: &str, path: &str, value: &Value) -> Result<(), String> {
        let _ = (schema, path, value);
        Ok(())
    }

    /// `custom_entity_check`s and `check` functions: messages for `@entity`, or field
    /// errors. Called only when the entity has no field errors so far.
    fn entity(&self, schema: &str, entity: &Object, violations: &mut Violations) {
        let _ = (schema, entity, violations);
    }
}

/// No custom rules: only what the JSON schema says.
pub struct NoCustom;
impl Custom for NoCustom {}

/// Validates a complete entity (an insert after defaults, or the result of a PATCH
/// merge) as `Schema:validate(input, full_check = true)` does.
pub fn validate(
    schema: &Schema,
    schema_name: &str,
    entity: &Object,
    custom: &dyn Custom,
) -> Result<(), Violations> {
    let v = Validator {
        schema_name,
        custom,
    };
    let mut out = Violations::default();
    v.record_fields(&schema.fields, entity, "", &mut out.fields);
    for field in &schema.fields {
        if field.required && entity.get(&field.name).is_none_or(Value::is_null) {
            out.fields.insert(field.name.clone(), json!(REQUIRED));
        }
    }
    if let Some(checks) = schema.raw.get("entity_checks").and_then(Value::as_array) {
        for check in checks {
            v.entity_check(&schema.fields, check, entity, &mut out);
        }
    }
    if out.fields.is_empty() {
        custom.entity(schema_name, entity, &mut out);
    }
    if out.is_empty() { Ok(()) } else { Err(out) }
}

/// Validates one value against one field definition (`Schema:validate_field`); `path`
/// is what [`Custom::field`] sees.
pub fn validate_value(
    field: &Field,
    schema_name: &str,
    path: &str,
    value: &Value,
    custom: &dyn Custom,
) -> Result<(), Value> {
    Validator {
        schema_name,
        custom,
    }
    .field(field, value, path)
}

struct Validator<'a> {
    schema_name: &'a str,
    custom: &'a dyn Custom,
}

/// `is_nonempty` of init.lua: null, empty strings and empty tables are empty.
pub fn is_nonempty(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => false,
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Array(a)) => !a.is_empty(),
        Some(Value::Object(o)) => !o.is_empty(),
        Some(_) => true,
    }
}

/// `'a', 'b'` (init.lua `quoted_list`), nested lists in parentheses.
pub fn quoted_list(words: &[Value]) -> String {
    words
        .iter()
        .map(|w| match w {
            Value::Array(inner) => format!("({})", quoted_list(inner)),
            Value::String(s) => format!("'{s}'"),
            other => format!("'{other}'"),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// A dotted path into an entity (`config.redis.host`).
fn get_path<'v>(entity: &'v Object, path: &str) -> Option<&'v Value> {
    let mut parts = path.split('.');
    let mut cur = entity.get(parts.next()?)?;
    for p in parts {
        cur = cur.as_object()?.get(p)?;
    }
    Some(cur)
}

fn field_at<'f>(fields: &'f [Field], path: &str) -> Option<&'f Field> {
    let mut parts = path.split('.');
    let first = parts.next()?;
    let mut cur = fields.iter().find(|f| f.name == first)?;
    for p in parts {
        cur = cur.fields.iter().find(|f| f.name == p)?;
    }
    Some(cur)
}

fn set_path(errors: &mut BTreeMap<String, Value>, path: &str, err: Value) {
    match path.split_once('.') {
        None => {
            errors.insert(path.to_owned(), err);
        }
        Some((head, tail)) => {
            let slot = errors.entry(head.to_owned()).or_insert_with(|| json!({}));
            if !slot.is_object() {
                *slot = json!({});
            }
            if let Value::Object(map) = slot {
                let mut sub: BTreeMap<String, Value> = std::mem::take(map).into_iter().collect();
                set_path(&mut sub, tail, err);
                *map = sub.into_iter().collect();
            }
        }
    }
}

fn has_error(errors: &BTreeMap<String, Value>, path: &str) -> bool {
    match path.split_once('.') {
        None => errors.contains_key(path),
        Some((head, tail)) => match errors.get(head) {
            Some(Value::Object(map)) => {
                let sub: BTreeMap<String, Value> = map.clone().into_iter().collect();
                has_error(&sub, tail)
            }
            Some(_) => true,
            None => false,
        },
    }
}

fn str_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "null".into(),
        other => other.to_string(),
    }
}

impl Validator<'_> {
    /// Every key of `obj` against `fields` (unknown ones included), into `errors`.
    fn record_fields(
        &self,
        fields: &[Field],
        obj: &Object,
        prefix: &str,
        errors: &mut BTreeMap<String, Value>,
    ) {
        for (key, value) in obj {
            match fields.iter().find(|f| &f.name == key) {
                None => {
                    errors.insert(key.clone(), json!(UNKNOWN));
                }
                Some(field) => {
                    let path = if prefix.is_empty() {
                        key.clone()
                    } else {
                        format!("{prefix}.{key}")
                    };
                    if let Err(e) = self.field(field, value, &path) {
                        errors.insert(key.clone(), e);
                    }
                }
            }
        }
    }

    /// `Schema:validate_field`.
    fn field(&self, field: &Field, value: &Value, path: &str) -> Result<(), Value> {
        let raw = &field.checks;
        let custom_err = raw.get("err").and_then(Value::as_str);
        let fail = |msg: String| Err(json!(custom_err.map_or(msg, str::to_owned)));
        if value.is_null() {
            if raw.get("ne").is_some_and(Value::is_null) {
                return fail("value must not be null".into());
            }
            if let Some(eq) = raw.get("eq").filter(|e| !e.is_null()) {
                return Err(json!(format!("value must be {}", str_of(eq))));
            }
            if field.required {
                return Err(json!(REQUIRED));
            }
            return Ok(());
        }
        if raw.get("eq").is_some_and(Value::is_null) {
            return fail("value must be null".into());
        }
        match field.ty {
            FieldType::Array | FieldType::Set => {
                let Some(items) = value.as_array() else {
                    let noun = if field.ty == FieldType::Set {
                        "a set"
                    } else {
                        "an array"
                    };
                    return Err(json!(format!("expected {noun}")));
                };
                if let Some(elements) = &field.elements {
                    let mut errs = vec![Value::Null; items.len()];
                    let mut bad = false;
                    for (i, item) in items.iter().enumerate() {
                        // Elements are required: a null element is an error.
                        let r = if item.is_null() {
                            Err(json!(REQUIRED))
                        } else {
                            self.field(elements, item, &format!("{path}[]"))
                        };
                        if let Err(e) = r {
                            errs[i] = e;
                            bad = true;
                        }
                    }
                    if bad {
                        return Err(Value::Array(errs));
                    }
                }
            }
            FieldType::Map => {
                let Some(map) = value.as_object() else {
                    return Err(json!("expected a map"));
                };
                let keys = field
                    .raw
                    .get("keys")
                    .and_then(|k| Field::parse_attrs("", k).ok());
                let values = field
                    .raw
                    .get("values")
                    .and_then(|v| Field::parse_attrs("", v).ok());
                for (k, v) in map {
                    if let Some(kf) = &keys {
                        self.field(kf, &json!(k), &format!("{path}{{key}}"))?;
                    }
                    if let Some(vf) = &values {
                        if v.is_null() {
                            return Err(json!(REQUIRED));
                        }
                        self.field(vf, v, &format!("{path}{{}}"))?;
                    }
                }
            }
            FieldType::Record => {
                let Some(obj) = value.as_object() else {
                    return Err(json!("expected a record"));
                };
                // Kong fills a record's defaults before validating it; a record that
                // already has every field (the caller filled defaults) is not copied.
                let complete = field.fields.iter().all(|f| {
                    f.auto
                        || obj.get(&f.name).is_some_and(|v| {
                            !v.is_null()
                                || (f.default.is_none()
                                    && !(f.ty == FieldType::Record && f.required))
                        })
                });
                let copy = if complete {
                    std::borrow::Cow::Borrowed(obj)
                } else {
                    let mut copy = obj.clone();
                    crate::schema::fill_record(&field.fields, &mut copy);
                    std::borrow::Cow::Owned(copy)
                };
                let copy: &Object = &copy;
                let mut errors = BTreeMap::new();
                self.record_fields(&field.fields, copy, path, &mut errors);
                for f in &field.fields {
                    if f.required && copy.get(&f.name).is_none_or(Value::is_null) {
                        errors.insert(f.name.clone(), json!(REQUIRED));
                    }
                }
                let mut nested = Violations {
                    entity: Vec::new(),
                    fields: errors,
                };
                if let Some(checks) = field.raw.get("entity_checks").and_then(Value::as_array) {
                    for check in checks {
                        self.entity_check(&field.fields, check, copy, &mut nested);
                    }
                }
                if !nested.is_empty() {
                    return Err(nested.to_json());
                }
            }
            FieldType::Foreign => {
                // validate_primary_key: a table whose `id` is a UUID.
                let Some(obj) = value.as_object() else {
                    return Err(json!({ "id": "missing primary key" }));
                };
                match obj.get("id") {
                    None | Some(Value::Null) => return Err(json!({ "id": "missing primary key" })),
                    Some(Value::String(s)) if crate::is_uuid(s) => {}
                    Some(Value::String(_)) => return Err(json!({ "id": "expected a valid UUID" })),
                    Some(_) => return Err(json!({ "id": "expected a string" })),
                }
            }
            FieldType::Integer => {
                let ok = value.as_i64().is_some()
                    || value.as_u64().is_some()
                    || value
                        .as_f64()
                        .is_some_and(|f| f.fract() == 0.0 && f.is_finite());
                if !ok {
                    return Err(json!("expected an integer"));
                }
            }
            FieldType::Number => {
                if !value.is_number() {
                    return Err(json!("expected a number"));
                }
            }
            FieldType::Boolean => {
                if !value.is_boolean() {
                    return Err(json!("expected a boolean"));
                }
            }
            FieldType::String => {
                if !value.is_string() {
                    return Err(json!("expected a string"));
                }
                // `{vault://...}` references skip validation in referenceable fields.
                if raw.get("referenceable").and_then(Value::as_bool) == Some(true)
                    && value.as_str().is_some_and(|s| s.starts_with("{vault://"))
                {
                    return Ok(());
                }
            }
            FieldType::Json => {}
        }
        self.validators(field, value, path).or_else(fail)
    }

    /// The generic validators, in `Schema.validators_order`.
    fn validators(&self, field: &Field, value: &Value, path: &str) -> Result<(), String> {
        let raw = &field.checks;
        // Most fields have no validator at all: skip the two dozen lookups below.
        if raw.as_object().is_none_or(serde_json::Map::is_empty) {
            return self.custom.field(self.schema_name, path, value);
        }
        if let Some(eq) = raw.get("eq").filter(|e| !e.is_null())
            && value != eq
        {
            return Err(format!("value must be {}", str_of(eq)));
        }
        if let Some(ne) = raw.get("ne").filter(|e| !e.is_null())
            && value == ne
        {
            return Err(format!("value must not be {}", str_of(value)));
        }
        let list = |l: &Vec<Value>| l.iter().map(str_of).collect::<Vec<_>>().join(", ");
        if let Some(options) = raw.get("not_one_of").and_then(Value::as_array)
            && options.contains(value)
        {
            return Err(format!("must not be one of: {}", list(options)));
        }
        if let Some(options) = raw.get("one_of").and_then(Value::as_array)
            && !options.iter().any(|o| numeric_eq(o, value))
        {
            return Err(format!("expected one of: {}", list(options)));
        }
        let number = value.as_f64();
        if let (Some(gt), Some(n)) = (raw.get("gt").and_then(Value::as_f64), number)
            && n <= gt
        {
            return Err(format!("value must be greater than {}", str_of(&raw["gt"])));
        }
        if raw.get("timestamp").and_then(Value::as_bool) == Some(true)
            && number.is_some_and(|n| n <= 0.0)
        {
            return Err("expected a valid timestamp".into());
        }
        if raw.get("uuid").and_then(Value::as_bool) == Some(true)
            && value.as_str().is_some_and(|s| !crate::is_uuid(s))
        {
            return Err("expected a valid UUID".into());
        }
        if let (Some(b), Some(n)) = (raw.get("between").and_then(Value::as_array), number)
            && let (Some(lo), Some(hi)) = (
                b.first().and_then(Value::as_f64),
                b.get(1).and_then(Value::as_f64),
            )
            && (n < lo || n > hi)
        {
            return Err(format!(
                "value should be between {} and {}",
                lo as i64, hi as i64
            ));
        }
        let len = match value {
            Value::String(s) => Some(s.len() as u64),
            Value::Array(a) => Some(a.len() as u64),
            Value::Object(o) if field.ty == FieldType::Map => Some(o.len() as u64),
            _ => None,
        };
        if let Some(len) = len {
            if let Some(n) = raw.get("len_eq").and_then(Value::as_u64)
                && len != n
            {
                return Err(format!("length must be {n}"));
            }
            // Kong gives every string an implicit len_min of 1.
            let implicit = (field.ty == FieldType::String).then_some(1);
            if let Some(n) = raw.get("len_min").and_then(Value::as_u64).or(implicit)
                && len < n
            {
                return Err(format!("length must be at least {n}"));
            }
            if let Some(n) = raw.get("len_max").and_then(Value::as_u64)
                && len > n
            {
                return Err(format!("length must be at most {n}"));
            }
        }
        if let Some(s) = value.as_str() {
            if let Some(prefix) = raw.get("starts_with").and_then(Value::as_str)
                && !s.starts_with(prefix)
            {
                return Err(format!("should start with: {prefix}"));
            }
            if let Some(p) = raw.get("not_match").and_then(Value::as_str)
                && matches(p, s)
            {
                return Err(format!("invalid value: {s}"));
            }
            if let Some(rules) = raw.get("match_none").and_then(Value::as_array) {
                for rule in rules {
                    if rule
                        .get("pattern")
                        .and_then(Value::as_str)
                        .is_some_and(|p| matches(p, s))
                    {
                        return Err(rule
                            .get("err")
                            .map_or_else(|| format!("invalid value: {s}"), str_of));
                    }
                }
            }
            if let Some(p) = raw.get("match").and_then(Value::as_str)
                && !matches(p, s)
            {
                return Err(format!("invalid value: {s}"));
            }
            if let Some(rules) = raw.get("match_all").and_then(Value::as_array) {
                for rule in rules {
                    if rule
                        .get("pattern")
                        .and_then(Value::as_str)
                        .is_some_and(|p| !matches(p, s))
                    {
                        return Err(rule
                            .get("err")
                            .map_or_else(|| format!("invalid value: {s}"), str_of));
                    }
                }
            }
            if let Some(rule) = raw.get("match_any") {
                let patterns = rule
                    .get("patterns")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                if !patterns
                    .iter()
                    .filter_map(Value::as_str)
                    .any(|p| matches(p, s))
                {
                    return Err(rule
                        .get("err")
                        .map_or_else(|| format!("invalid value: {s}"), str_of));
                }
            }
        }
        if let (Some(wanted), Some(items)) = (raw.get("contains"), value.as_array())
            && !items.contains(wanted)
        {
            return Err(format!("expected to contain: {}", str_of(wanted)));
        }
        self.custom.field(self.schema_name, path, value)?;
        if let (Some(subsets), Some(items)) = (
            raw.get("mutually_exclusive_subsets")
                .and_then(Value::as_array),
            value.as_array(),
        ) {
            let mut member_of: Vec<&Value> = Vec::new();
            for item in items {
                if let Some(group) = subsets
                    .iter()
                    .find(|g| g.as_array().is_some_and(|g| g.contains(item)))
                    && !member_of.iter().any(|m| std::ptr::eq(*m, group))
                {
                    member_of.push(group);
                }
            }
            if member_of.len() > 1 {
                let groups: Vec<Value> = member_of.into_iter().cloned().collect();
                return Err(format!(
                    "these sets are mutually exclusive: {}",
                    quoted_list(&groups)
                ));
            }
        }
        Ok(())
    }

    /// One entry of `entity_checks` (`run_entity_check` and `Schema.entity_checkers`).
    fn entity_check(&self, fields: &[Field], check: &Value, entity: &Object, out: &mut Violations) {
        let Some((name, arg)) = check.as_object().and_then(|o| o.iter().next()) else {
            return;
        };
        let names = |v: Option<&Value>| -> Vec<String> {
            match v {
                Some(Value::String(s)) => vec![s.clone()],
                Some(Value::Array(a)) => a
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect(),
                _ => Vec::new(),
            }
        };
        // The fields a checker looks at; which must be present; and its traits
        // (run_with_missing_fields, run_with_invalid_fields).
        let (involved, required, with_missing, with_invalid): (
            Vec<String>,
            Vec<String>,
            bool,
            bool,
        ) = match name.as_str() {
            "at_least_one_of" => (names(Some(arg)), Vec::new(), true, true),
            "conditional_at_least_one_of" => {
                let mut f = names(arg.get("if_field"));
                f.extend(names(arg.get("then_at_least_one_of")));
                f.extend(names(arg.get("else_then_at_least_one_of")));
                (f, names(arg.get("if_field")), true, true)
            }
            "only_one_of" | "distinct" => (names(Some(arg)), names(Some(arg)), false, true),
            "conditional" => {
                let mut f = names(arg.get("if_field"));
                f.extend(names(arg.get("then_field")));
                (f, names(arg.get("if_field")), false, true)
            }
            "mutually_required" | "mutually_exclusive" => {
                (names(Some(arg)), Vec::new(), true, false)
            }
            "mutually_exclusive_sets" => {
                let mut f = names(arg.get("set1"));
                f.extend(names(arg.get("set2")));
                (f, Vec::new(), true, false)
            }
            // custom_entity_check and anything unknown: Lua functions, left to `Custom`.
            _ => return,
        };
        let with_missing = with_missing
            || arg.get("run_with_missing_fields").and_then(Value::as_bool) == Some(true);
        let with_invalid = with_invalid
            || arg.get("run_with_invalid_fields").and_then(Value::as_bool) == Some(true);
        let mut missing = Vec::new();
        let mut all_ok = true;
        for f in &involved {
            if get_path(entity, f).is_none() && !with_missing && required.contains(f) {
                missing.push(f.clone());
            }
            if has_error(&out.fields, f) {
                all_ok = false;
            }
        }
        if !all_ok && !with_invalid {
            return;
        }
        if !missing.is_empty() {
            for f in missing {
                set_path(
                    &mut out.fields,
                    &f,
                    json!("field required for entity check"),
                );
            }
            return;
        }
        let nonempty = |f: &str| is_nonempty(get_path(entity, f));
        let list_of = |fs: &[String]| quoted_list(&fs.iter().map(|s| json!(s)).collect::<Vec<_>>());
        let err = match name.as_str() {
            "at_least_one_of" => (!involved.iter().any(|f| nonempty(f))).then(|| {
                format!(
                    "at least one of these fields must be non-empty: {}",
                    list_of(&involved)
                )
            }),
            "only_one_of" => (involved.iter().filter(|f| nonempty(f)).count() != 1).then(|| {
                format!(
                    "exactly one of these fields must be non-empty: {}",
                    list_of(&involved)
                )
            }),
            "distinct" => {
                let values: Vec<&Value> = involved
                    .iter()
                    .filter_map(|f| get_path(entity, f))
                    .filter(|v| is_nonempty(Some(v)))
                    .collect();
                let dup = values
                    .iter()
                    .enumerate()
                    .any(|(i, a)| values[..i].contains(a));
                dup.then(|| {
                    format!(
                        "values of these fields must be distinct: {}",
                        list_of(&involved)
                    )
                })
            }
            "mutually_required" => {
                let n = involved.iter().filter(|f| nonempty(f)).count();
                (n != 0 && n != involved.len()).then(|| {
                    format!(
                        "all or none of these fields must be set: {}",
                        list_of(&involved)
                    )
                })
            }
            "mutually_exclusive" => {
                (involved.iter().filter(|f| nonempty(f)).count() > 1).then(|| {
                    format!(
                        "only one or none of these fields must be set: {}",
                        list_of(&involved)
                    )
                })
            }
            "mutually_exclusive_sets" => {
                let set1: Vec<String> = names(arg.get("set1"))
                    .into_iter()
                    .filter(|f| nonempty(f))
                    .collect();
                let set2: Vec<String> = names(arg.get("set2"))
                    .into_iter()
                    .filter(|f| nonempty(f))
                    .collect();
                (!set1.is_empty() && !set2.is_empty()).then(|| {
                    format!(
                        "these sets are mutually exclusive: ({}), ({})",
                        list_of(&set1),
                        list_of(&set2)
                    )
                })
            }
            "conditional" => self.conditional(fields, arg, entity, out),
            "conditional_at_least_one_of" => self.conditional_at_least_one_of(fields, arg, entity),
            _ => None,
        };
        if let Some(err) = err {
            out.entity.push(err);
        }
    }

    /// Validates `value` against `field` with the attributes of `matcher` on top (the
    /// `if_match` / `then_match` of conditional checks inherit the field's definition).
    fn matches_with(
        &self,
        field: Option<&Field>,
        matcher: &Value,
        value: &Value,
    ) -> Result<(), Value> {
        let f = matcher_field(field, matcher).map_err(Value::String)?;
        self.field(&f, value, "")
    }

    fn conditional(
        &self,
        fields: &[Field],
        arg: &Value,
        entity: &Object,
        out: &mut Violations,
    ) -> Option<String> {
        let if_field = arg.get("if_field")?.as_str()?;
        let then_field = arg.get("then_field")?.as_str()?;
        let if_value = get_path(entity, if_field).cloned().unwrap_or(Value::Null);
        let then_value = get_path(entity, then_field).cloned().unwrap_or(Value::Null);
        let if_match = arg.get("if_match").unwrap_or(&EMPTY_MATCHER);
        if self
            .matches_with(field_at(fields, if_field), if_match, &if_value)
            .is_err()
        {
            return None;
        }
        let then_match = arg.get("then_match").unwrap_or(&EMPTY_MATCHER);
        let failure = if then_match.get("required").and_then(Value::as_bool) == Some(true)
            && then_value.is_null()
        {
            Some(json!(REQUIRED))
        } else {
            self.matches_with(field_at(fields, then_field), then_match, &then_value)
                .err()
        };
        let err = failure?;
        set_path(&mut out.fields, then_field, err);
        Some(match arg.get("then_err").and_then(Value::as_str) {
            Some(e) => e.replace("%s", if_field),
            None => format!("failed conditional validation given value of field '{if_field}'"),
        })
    }

    fn conditional_at_least_one_of(
        &self,
        fields: &[Field],
        arg: &Value,
        entity: &Object,
    ) -> Option<String> {
        let if_field = arg.get("if_field")?.as_str()?;
        let if_value = get_path(entity, if_field)?;
        let if_match = arg.get("if_match").unwrap_or(&EMPTY_MATCHER);
        let (names, err) = if self
            .matches_with(field_at(fields, if_field), if_match, if_value)
            .is_ok()
        {
            (arg.get("then_at_least_one_of")?, arg.get("then_err"))
        } else {
            let else_match = arg.get("else_match")?;
            self.matches_with(field_at(fields, if_field), else_match, if_value)
                .ok()?;
            (
                arg.get("else_then_at_least_one_of")?,
                arg.get("else_then_err"),
            )
        };
        let names = names.as_array()?;
        if names
            .iter()
            .filter_map(Value::as_str)
            .any(|n| is_nonempty(get_path(entity, n)))
        {
            return None;
        }
        let list = quoted_list(names);
        Some(match err.and_then(Value::as_str) {
            Some(e) => e.replace("%s", &list),
            None => format!("at least one of these fields must be non-empty: {list}"),
        })
    }
}

/// `field`'s definition with a conditional's matcher on top, built once per schema
/// field and matcher: entity checks run for every entity, and the schemas never change.
fn matcher_field(field: Option<&Field>, matcher: &Value) -> Result<std::rc::Rc<Field>, String> {
    use std::cell::RefCell;
    use std::collections::HashMap;
    use std::rc::Rc;
    /// (matcher, field attributes) the entry was built from, and the merged field.
    type Entry = (Value, Value, Rc<Field>);
    // Per thread, so parallel validation never waits on a lock.
    thread_local! {
        static CACHE: RefCell<HashMap<(usize, usize), Vec<Entry>>> = RefCell::default();
    }
    // Keyed by where the field and the matcher live (no hashing of their contents on
    // every entity), and checked by value: a schema fetched from a gateway may be
    // freed and its address reused.
    let key = (
        field.map_or(0, |f| f as *const Field as usize),
        matcher as *const Value as usize,
    );
    let null = Value::Null;
    let field_raw = field.map_or(&null, |f| &f.raw);
    let hit = CACHE.with_borrow(|cache| {
        cache.get(&key).and_then(|entries| {
            entries
                .iter()
                .find(|(m, r, _)| m == matcher && r == field_raw)
                .map(|(_, _, f)| f.clone())
        })
    });
    if let Some(f) = hit {
        return Ok(f);
    }
    let mut attrs = field.map_or_else(|| json!({"type": "any"}), |f| f.raw.clone());
    let no_keys = serde_json::Map::new();
    let m = matcher.as_object().unwrap_or(&no_keys);
    if let Some(a) = attrs.as_object_mut() {
        for (k, v) in m {
            a.insert(k.clone(), v.clone());
        }
        // The field's own `err` must not mask the matcher's result.
        if !m.contains_key("err") {
            a.remove("err");
        }
    }
    if attrs.get("type").and_then(Value::as_str) == Some("any")
        && let Some(a) = attrs.as_object_mut()
    {
        a.insert("type".into(), json!("json"));
    }
    let f = Rc::new(Field::parse_attrs("", &attrs)?);
    CACHE.with_borrow_mut(|cache| {
        cache
            .entry(key)
            .or_default()
            .push((matcher.clone(), field_raw.clone(), f.clone()));
    });
    Ok(f)
}

/// A conditional without `if_match` / `then_match` matches anything.
static EMPTY_MATCHER: Value = Value::Null;

fn numeric_eq(a: &Value, b: &Value) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

/// Lua `string.match(s, p) ~= nil`. A pattern carl cannot compile never rejects.
fn matches(pattern: &str, s: &str) -> bool {
    use std::cell::RefCell;
    use std::collections::HashMap;
    use std::rc::Rc;
    // Per thread: validation runs on several threads, and a shared lock held while
    // matching serialised them.
    thread_local! {
        static CACHE: RefCell<HashMap<String, Option<Rc<LuaPattern>>>> = RefCell::default();
    }
    let compiled = CACHE.with_borrow_mut(|cache| match cache.get(pattern) {
        Some(p) => p.clone(),
        None => {
            let p = LuaPattern::new(pattern).ok().map(Rc::new);
            cache.insert(pattern.to_owned(), p.clone());
            p
        }
    });
    compiled.is_none_or(|p| p.is_match(s))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Kind;

    fn obj(v: Value) -> Object {
        v.as_object().cloned().unwrap_or_default()
    }

    fn check(kind: Kind, v: Value) -> Result<(), Violations> {
        let mut e = obj(v);
        crate::fill_defaults(kind, kind.schema(), &mut e);
        validate(kind.schema(), kind.dao(), &e, &NoCustom)
    }

    #[test]
    fn message_lists_entity_errors_first_then_sorted_fields() {
        let mut e = Violations::default();
        e.entity
            .push("failed conditional validation given value of field 'protocol'".into());
        e.fields.insert("port".into(), json!("expected an integer"));
        e.fields.insert("host".into(), json!(REQUIRED));
        e.fields.insert("protocols".into(), json!([null, "bad"]));
        assert_eq!(
            e.message(),
            "4 schema violations (failed conditional validation given value of field 'protocol'; \
             host: required field missing; port: expected an integer; protocols.2: bad)"
        );
    }

    /// Stream routes (`routes_subschemas.lua`): tcp needs sources, destinations or snis;
    /// only tls_passthrough needs snis. The `if_match` on `protocols` elements must be
    /// read against the protocols field, not any field.
    #[test]
    fn stream_route_checks_match_on_protocol_elements() {
        let route = |v: Value| {
            let mut e = obj(v);
            e.insert(
                "service".into(),
                json!({"id": "00000000-0000-0000-0000-000000000000"}),
            );
            crate::fill_defaults(Kind::Route, Kind::Route.schema(), &mut e);
            let schema = crate::schema::effective(Kind::Route, &e).expect("subschema");
            crate::fill_defaults(Kind::Route, schema, &mut e);
            validate(schema, "routes", &e, &NoCustom)
        };
        assert!(route(json!({"protocols": ["tcp"], "destinations": [{"port": 5432}]})).is_ok());
        assert_eq!(
            route(json!({"protocols": ["tcp"]})).unwrap_err().entity,
            [
                "must set one of 'sources', 'destinations', 'snis' when 'protocols' is 'tcp', 'tls' or 'udp'"
            ]
        );
        assert_eq!(
            route(json!({"protocols": ["tls_passthrough"]}))
                .unwrap_err()
                .entity,
            ["must set snis when 'protocols' is 'tls_passthrough'"]
        );
        assert!(
            route(json!({"protocols": ["tls_passthrough"], "snis": ["db.example.com"]})).is_ok()
        );
    }

    #[test]
    fn types_ranges_and_required_fields() {
        let e = check(
            Kind::Service,
            json!({"port": 70000, "retries": "x", "bogus": 1}),
        )
        .unwrap_err();
        assert_eq!(e.fields["host"], REQUIRED);
        assert_eq!(e.fields["port"], "value should be between 0 and 65535");
        assert_eq!(e.fields["retries"], "expected an integer");
        assert_eq!(e.fields["bogus"], UNKNOWN);
    }

    #[test]
    fn service_conditionals_name_the_protocol() {
        // services.lua: path must be null for tcp.
        let e = check(
            Kind::Service,
            json!({"host": "h", "protocol": "tcp", "path": "/x"}),
        )
        .unwrap_err();
        assert_eq!(
            e.entity,
            ["failed conditional validation given value of field 'protocol'"]
        );
        assert_eq!(e.fields["path"], "value must be null");
    }

    #[test]
    fn set_elements_errors_are_positional() {
        let e = check(
            Kind::Route,
            json!({"protocols": ["http", "gopher"], "paths": ["/"]}),
        )
        .unwrap_err();
        assert_eq!(
            e.fields["protocols"],
            json!([
                null,
                "expected one of: grpc, grpcs, http, https, tcp, tls, tls_passthrough, udp"
            ])
        );
    }

    #[test]
    fn mutually_exclusive_protocol_subsets() {
        let e = check(
            Kind::Route,
            json!({"protocols": ["tcp", "tls_passthrough"], "snis": ["x"]}),
        )
        .unwrap_err();
        assert_eq!(
            e.fields["protocols"],
            "these sets are mutually exclusive: ('tcp', 'tls', 'udp'), ('tls_passthrough')"
        );
    }

    #[test]
    fn lua_literals_sort_keys() {
        assert_eq!(
            lua_literal(&json!({"name": "a", "consumer": null})),
            "{consumer=null,name=\"a\"}"
        );
    }
}
