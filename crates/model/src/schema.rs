//! Kong entity schemas in the shape `GET /schemas/{entity}` returns them.
//!
//! The built-in snapshot (`schemas/*.json`, taken from Kong 3.9's
//! `kong/db/schema/entities/*.lua`) is used offline by carl and served by kong-sim, so
//! both sides read defaults from one place. A live Kong's `/schemas` answer parses into
//! the same [`Schema`].

use std::sync::LazyLock;

use serde_json::Value;

use crate::{Kind, Object};

/// The JSON type of a schema field, as Kong names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldType {
    String,
    Integer,
    Number,
    Boolean,
    Array,
    Set,
    Map,
    Record,
    Foreign,
    Json,
}

impl FieldType {
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "string" => Self::String,
            "integer" => Self::Integer,
            "number" => Self::Number,
            "boolean" => Self::Boolean,
            "array" => Self::Array,
            "set" => Self::Set,
            "map" => Self::Map,
            "record" => Self::Record,
            "foreign" => Self::Foreign,
            "json" => Self::Json,
            _ => return None,
        })
    }

    /// The noun Kong uses in `expected a ...` messages.
    pub fn noun(self) -> &'static str {
        match self {
            Self::String => "string",
            Self::Integer => "integer",
            Self::Number => "number",
            Self::Boolean => "boolean",
            Self::Array => "array",
            Self::Set => "set",
            Self::Map => "map",
            Self::Record => "record",
            Self::Foreign => "foreign",
            Self::Json => "json",
        }
    }
}

/// One field of a schema. `raw` keeps every attribute Kong sent, for what carl does
/// not interpret yet.
#[derive(Debug, Clone)]
pub struct Field {
    pub name: String,
    pub ty: FieldType,
    pub required: bool,
    /// `Some(Value::Null)` when the schema says `default = null` explicitly.
    pub default: Option<Value>,
    pub auto: bool,
    pub elements: Option<Box<Field>>,
    pub fields: Vec<Field>,
    pub raw: Value,
    /// The attributes of `raw` that validation reads (`eq`, `one_of`, `between`,
    /// `match`, `err`, ...), kept apart so validating looks through a handful of keys,
    /// not every attribute and description.
    pub checks: Value,
}

/// Attributes `validate` reads from a field.
const CHECK_KEYS: &[&str] = &[
    "eq",
    "ne",
    "not_one_of",
    "one_of",
    "gt",
    "timestamp",
    "uuid",
    "between",
    "len_eq",
    "len_min",
    "len_max",
    "starts_with",
    "not_match",
    "match_none",
    "match",
    "match_all",
    "match_any",
    "contains",
    "mutually_exclusive_subsets",
    "err",
    "referenceable",
];

impl Field {
    /// Reads one field's attributes as `/schemas` gives them.
    pub fn parse_attrs(name: &str, attrs: &Value) -> Result<Field, String> {
        let ty = attrs
            .get("type")
            .and_then(Value::as_str)
            .and_then(FieldType::parse)
            .ok_or_else(|| format!("field '{name}' has no known type"))?;
        let elements = match attrs.get("elements") {
            Some(e) => Some(Box::new(Field::parse_attrs("", e)?)),
            None => None,
        };
        let fields = match attrs.get("fields") {
            Some(f) => parse_fields(f)?,
            None => Vec::new(),
        };
        Ok(Field {
            name: name.to_owned(),
            ty,
            required: attrs
                .get("required")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            default: attrs.get("default").cloned(),
            auto: attrs.get("auto").and_then(Value::as_bool).unwrap_or(false),
            elements,
            fields,
            raw: attrs.clone(),
            checks: Value::Object(
                attrs
                    .as_object()
                    .into_iter()
                    .flatten()
                    .filter(|(k, _)| CHECK_KEYS.contains(&k.as_str()))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            ),
        })
    }

    /// True for `set`-typed fields, which carl compares ignoring order and duplicates.
    pub fn is_set(&self) -> bool {
        self.ty == FieldType::Set
    }

    /// True when Kong stores the field encrypted (`encrypted = true`): a password, a
    /// private key. carl never prints such a value.
    pub fn is_encrypted(&self) -> bool {
        self.raw.get("encrypted").and_then(Value::as_bool) == Some(true)
    }

    /// Allowed values (`one_of`), if the schema restricts them.
    pub fn one_of(&self) -> Option<&Vec<Value>> {
        self.raw.get("one_of").and_then(Value::as_array)
    }

    /// Inclusive numeric range (`between`), if any.
    pub fn between(&self) -> Option<(i64, i64)> {
        let b = self.raw.get("between")?.as_array()?;
        Some((b.first()?.as_i64()?, b.get(1)?.as_i64()?))
    }

    /// Checks the JSON type of `value` (not null) and returns Kong's message on mismatch.
    pub fn check_type(&self, value: &Value) -> Result<(), String> {
        let ok = match self.ty {
            FieldType::String => value.is_string(),
            FieldType::Integer => value.as_i64().is_some() || value.as_u64().is_some(),
            FieldType::Number => value.is_number(),
            FieldType::Boolean => value.is_boolean(),
            FieldType::Array | FieldType::Set => value.is_array(),
            FieldType::Map | FieldType::Record | FieldType::Foreign => value.is_object(),
            FieldType::Json => true,
        };
        if ok {
            Ok(())
        } else {
            Err(format!(
                "expected a{} {}",
                if self.ty == FieldType::Integer || self.ty == FieldType::Array {
                    "n"
                } else {
                    ""
                },
                self.ty.noun()
            ))
        }
    }
}

fn parse_fields(list: &Value) -> Result<Vec<Field>, String> {
    let list = list.as_array().ok_or("'fields' is not an array")?;
    let mut out = Vec::with_capacity(list.len());
    for item in list {
        let obj = item.as_object().ok_or("a field entry is not an object")?;
        for (name, attrs) in obj {
            out.push(Field::parse_attrs(name, attrs)?);
        }
    }
    Ok(out)
}

/// An entity schema: its fields in Kong's definition order.
#[derive(Debug, Clone)]
pub struct Schema {
    pub fields: Vec<Field>,
    /// The schema exactly as Kong (or the snapshot) gave it.
    pub raw: Value,
}

impl Schema {
    /// Parses the body of `GET /schemas/{entity}`.
    pub fn from_json(raw: Value) -> Result<Schema, String> {
        let fields = parse_fields(raw.get("fields").ok_or("schema has no 'fields'")?)?;
        Ok(Schema { fields, raw })
    }

    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.name == name)
    }

    /// This schema specialised by a subschema (a route's protocol family, a plugin's
    /// own schema): `sub`'s fields replace those of the same name or are added, and
    /// its entity checks run after this schema's.
    pub fn with_subschema(&self, sub: &Schema) -> Schema {
        let mut fields = self.fields.clone();
        for f in &sub.fields {
            match fields.iter_mut().find(|g| g.name == f.name) {
                Some(slot) => *slot = f.clone(),
                None => fields.push(f.clone()),
            }
        }
        let mut raw = self.raw.clone();
        let field_list: Vec<Value> = fields
            .iter()
            .map(|f| serde_json::json!({ f.name.clone(): f.raw.clone() }))
            .collect();
        let mut checks = raw
            .get("entity_checks")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        checks.extend(
            sub.raw
                .get("entity_checks")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default(),
        );
        if let Some(obj) = raw.as_object_mut() {
            obj.insert("fields".into(), Value::Array(field_list));
            obj.insert("entity_checks".into(), Value::Array(checks));
        }
        Schema { fields, raw }
    }

    /// Completes `obj` the way Kong completes an insert (go-kong's `fillConfigRecord`):
    /// each absent field takes its default, or null; records present or required are
    /// filled recursively. Auto fields (id, timestamps) are left out: Kong generates them.
    pub fn fill_defaults(&self, obj: &mut Object) {
        fill_record(&self.fields, obj);
    }
}

/// Completes the record `obj` with the defaults of its `fields`, recursively.
pub fn fill_record(fields: &[Field], obj: &mut Object) {
    for field in fields {
        if field.auto {
            continue;
        }
        // Look up before inserting: most fields are there, and `entry` would allocate
        // the key every time.
        if !obj.contains_key(&field.name) {
            obj.insert(field.name.clone(), Value::Null);
        }
        let Some(entry) = obj.get_mut(&field.name) else {
            continue;
        };
        if entry.is_null() {
            if let Some(default) = &field.default {
                *entry = default.clone();
            } else if field.ty == FieldType::Record && field.required {
                *entry = Value::Object(Object::new());
            }
        }
        if field.ty == FieldType::Record
            && let Value::Object(inner) = entry
        {
            fill_record(&field.fields, inner);
        }
    }
}

fn load(text: &str) -> Schema {
    // The snapshot is part of the source tree; a unit test parses every file.
    Schema::from_json(serde_json::from_str(text).expect("built-in schema is JSON"))
        .expect("built-in schema is valid")
}

/// The route subschemas of `routes_subschemas.lua`, by protocol.
fn route_subschema(protocol: &str) -> Option<&'static Schema> {
    static HTTP: LazyLock<Schema> =
        LazyLock::new(|| load(include_str!("../schemas/subschemas/routes/http.json")));
    static STREAM: LazyLock<Schema> =
        LazyLock::new(|| load(include_str!("../schemas/subschemas/routes/stream.json")));
    static GRPC: LazyLock<Schema> =
        LazyLock::new(|| load(include_str!("../schemas/subschemas/routes/grpc.json")));
    match protocol {
        "http" | "https" => Some(&HTTP),
        "tcp" | "tls" | "udp" | "tls_passthrough" => Some(&STREAM),
        "grpc" | "grpcs" => Some(&GRPC),
        _ => None,
    }
}

/// The schema an entity of `kind` is validated and completed with: the kind's schema
/// specialised by the subschema the entity selects (a route by its first known
/// protocol, a plugin by its name). Errors are Kong's when no subschema applies.
pub fn effective(
    kind: Kind,
    entity: &Object,
) -> Result<&'static Schema, crate::validate::Violations> {
    use crate::validate::{REQUIRED, Violations};
    use std::collections::HashMap;
    use std::sync::RwLock;
    static MERGED: LazyLock<RwLock<HashMap<(Kind, usize), &'static Schema>>> =
        LazyLock::new(Default::default);
    let base = builtin(kind);
    let sub: &'static Schema = match kind {
        Kind::Route => {
            let sub = match entity.get("protocols") {
                None | Some(Value::Null) => return Err(Violations::field("protocols", REQUIRED)),
                Some(Value::String(p)) => route_subschema(p),
                Some(Value::Array(items)) => items
                    .iter()
                    .filter_map(Value::as_str)
                    .find_map(route_subschema),
                Some(_) => None,
            };
            match sub {
                Some(found) => found,
                None => {
                    let first = match entity.get("protocols") {
                        Some(Value::Array(items)) => items
                            .first()
                            .map(|v| v.as_str().map_or(v.to_string(), str::to_owned)),
                        Some(v) => Some(v.as_str().map_or(v.to_string(), str::to_owned)),
                        None => None,
                    };
                    return Err(Violations::field(
                        "protocols",
                        format!("unknown type: {}", first.unwrap_or_else(|| "nil".into())),
                    ));
                }
            }
        }
        Kind::Plugin => match entity.get("name") {
            Some(Value::String(name)) => match plugin(name) {
                Some(s) => s,
                None => {
                    return Err(Violations::field(
                        "name",
                        format!(
                            "plugin '{name}' not enabled; add it to the 'plugins' configuration property"
                        ),
                    ));
                }
            },
            None | Some(Value::Null) => return Err(Violations::field("name", REQUIRED)),
            Some(_) => return Err(Violations::field("name", "expected a string")),
        },
        // Kong 3.9 OSS bundles one vault, `env` (`kong/vaults/env/schema.lua`).
        Kind::Vault => match entity.get("name") {
            Some(Value::String(name)) if name == "env" => {
                static ENV: LazyLock<Schema> =
                    LazyLock::new(|| load(include_str!("../schemas/subschemas/vaults/env.json")));
                &ENV
            }
            Some(Value::String(name)) => {
                return Err(Violations::field(
                    "name",
                    format!("vault '{name}' is not installed"),
                ));
            }
            None | Some(Value::Null) => return Err(Violations::field("name", REQUIRED)),
            Some(_) => return Err(Violations::field("name", "expected a string")),
        },
        _ => return Ok(base),
    };
    // Route families share a subschema; key the cache by the subschema itself (a
    // static, so its address is stable). Read-locked: validation runs on all cores.
    let key = (kind, sub as *const Schema as usize);
    if let Some(merged) = MERGED.read().unwrap_or_else(|e| e.into_inner()).get(&key) {
        return Ok(*merged);
    }
    let mut cache = MERGED.write().unwrap_or_else(|e| e.into_inner());
    Ok(*cache
        .entry(key)
        .or_insert_with(|| Box::leak(Box::new(base.with_subschema(sub)))))
}

/// Every plugin bundled with Kong 3.9 (`kong/constants.lua`, 3.9.1), whether or not
/// the offline snapshot has its schema.
pub const BUNDLED_PLUGINS: &[&str] = &[
    "jwt",
    "acl",
    "correlation-id",
    "cors",
    "oauth2",
    "tcp-log",
    "udp-log",
    "file-log",
    "http-log",
    "key-auth",
    "hmac-auth",
    "basic-auth",
    "ip-restriction",
    "request-transformer",
    "response-transformer",
    "request-size-limiting",
    "rate-limiting",
    "response-ratelimiting",
    "syslog",
    "loggly",
    "datadog",
    "ldap-auth",
    "statsd",
    "bot-detection",
    "aws-lambda",
    "request-termination",
    "prometheus",
    "proxy-cache",
    "session",
    "acme",
    "grpc-gateway",
    "grpc-web",
    "pre-function",
    "post-function",
    "azure-functions",
    "zipkin",
    "opentelemetry",
    "ai-proxy",
    "ai-prompt-decorator",
    "ai-prompt-template",
    "ai-prompt-guard",
    "ai-request-transformer",
    "ai-response-transformer",
    "standard-webhooks",
    "redirect",
];

/// Kong's bundled plugins that the snapshot knows, with their priorities (the order
/// Kong runs them in; `GET /` reports them).
const PLUGINS: &[(&str, i64, &str)] = &[
    ("acl", 950, include_str!("../schemas/plugins/acl.json")),
    (
        "basic-auth",
        1100,
        include_str!("../schemas/plugins/basic-auth.json"),
    ),
    (
        "bot-detection",
        2500,
        include_str!("../schemas/plugins/bot-detection.json"),
    ),
    (
        "correlation-id",
        100001,
        include_str!("../schemas/plugins/correlation-id.json"),
    ),
    ("cors", 2000, include_str!("../schemas/plugins/cors.json")),
    (
        "file-log",
        9,
        include_str!("../schemas/plugins/file-log.json"),
    ),
    (
        "hmac-auth",
        1030,
        include_str!("../schemas/plugins/hmac-auth.json"),
    ),
    (
        "http-log",
        12,
        include_str!("../schemas/plugins/http-log.json"),
    ),
    (
        "ip-restriction",
        990,
        include_str!("../schemas/plugins/ip-restriction.json"),
    ),
    ("jwt", 1450, include_str!("../schemas/plugins/jwt.json")),
    (
        "key-auth",
        1250,
        include_str!("../schemas/plugins/key-auth.json"),
    ),
    (
        "post-function",
        -1000,
        include_str!("../schemas/plugins/post-function.json"),
    ),
    (
        "pre-function",
        1000000,
        include_str!("../schemas/plugins/pre-function.json"),
    ),
    (
        "prometheus",
        13,
        include_str!("../schemas/plugins/prometheus.json"),
    ),
    (
        "proxy-cache",
        100,
        include_str!("../schemas/plugins/proxy-cache.json"),
    ),
    (
        "rate-limiting",
        910,
        include_str!("../schemas/plugins/rate-limiting.json"),
    ),
    (
        "request-size-limiting",
        951,
        include_str!("../schemas/plugins/request-size-limiting.json"),
    ),
    (
        "request-termination",
        2,
        include_str!("../schemas/plugins/request-termination.json"),
    ),
    (
        "request-transformer",
        801,
        include_str!("../schemas/plugins/request-transformer.json"),
    ),
    (
        "response-ratelimiting",
        900,
        include_str!("../schemas/plugins/response-ratelimiting.json"),
    ),
    (
        "response-transformer",
        800,
        include_str!("../schemas/plugins/response-transformer.json"),
    ),
    (
        "tcp-log",
        7,
        include_str!("../schemas/plugins/tcp-log.json"),
    ),
];

/// The names of the bundled plugins in the snapshot, sorted.
pub fn plugin_names() -> Vec<&'static str> {
    let mut names: Vec<&'static str> = PLUGINS.iter().map(|(n, _, _)| *n).collect();
    names.sort_unstable();
    names
}

/// A bundled plugin's priority.
pub fn plugin_priority(name: &str) -> Option<i64> {
    PLUGINS
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|(_, p, _)| *p)
}

/// The built-in schema of bundled plugin `name` (`GET /schemas/plugins/{name}`).
pub fn plugin(name: &str) -> Option<&'static Schema> {
    static LOADED: LazyLock<Vec<(&'static str, Schema)>> = LazyLock::new(|| {
        PLUGINS
            .iter()
            .map(|(n, _, text)| (*n, load(text)))
            .collect()
    });
    LOADED.iter().find(|(n, _)| *n == name).map(|(_, s)| s)
}

/// The built-in schema of `kind`.
pub fn builtin(kind: Kind) -> &'static Schema {
    static ALL: LazyLock<Vec<(Kind, Schema)>> = LazyLock::new(|| {
        ENTITY_FILES
            .iter()
            .map(|(dao, text)| {
                let kind = Kind::from_dao(dao).expect("every snapshot file is a known kind");
                (kind, load(text))
            })
            .collect()
    });
    ALL.iter()
        .find(|(k, _)| *k == kind)
        .map(|(_, s)| s)
        .expect("every kind has a snapshot file")
}

/// The snapshot, taken from Kong 3.9.1 by `schemas/dump.lua` (see schemas/README.md).
const ENTITY_FILES: &[(&str, &str)] = &[
    ("services", include_str!("../schemas/services.json")),
    ("routes", include_str!("../schemas/routes.json")),
    ("consumers", include_str!("../schemas/consumers.json")),
    ("plugins", include_str!("../schemas/plugins.json")),
    ("upstreams", include_str!("../schemas/upstreams.json")),
    ("targets", include_str!("../schemas/targets.json")),
    ("certificates", include_str!("../schemas/certificates.json")),
    ("snis", include_str!("../schemas/snis.json")),
    (
        "ca_certificates",
        include_str!("../schemas/ca_certificates.json"),
    ),
    ("vaults", include_str!("../schemas/vaults.json")),
    ("key_sets", include_str!("../schemas/key_sets.json")),
    ("keys", include_str!("../schemas/keys.json")),
    (
        "keyauth_credentials",
        include_str!("../schemas/keyauth_credentials.json"),
    ),
    (
        "basicauth_credentials",
        include_str!("../schemas/basicauth_credentials.json"),
    ),
    (
        "hmacauth_credentials",
        include_str!("../schemas/hmacauth_credentials.json"),
    ),
    ("jwt_secrets", include_str!("../schemas/jwt_secrets.json")),
    ("acls", include_str!("../schemas/acls.json")),
];

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_builtin_schema_parses() {
        for kind in Kind::ALL {
            assert!(!builtin(*kind).fields.is_empty());
        }
        for name in plugin_names() {
            let p = plugin(name).unwrap();
            assert!(p.field("config").is_some(), "{name}");
            assert!(plugin_priority(name).is_some());
        }
    }

    #[test]
    fn foreign_keys_in_the_kind_table_match_the_schemas() {
        for kind in Kind::ALL {
            let mut from_schema: Vec<(String, String)> = builtin(*kind)
                .fields
                .iter()
                .filter(|f| f.ty == FieldType::Foreign)
                .map(|f| {
                    (
                        f.name.clone(),
                        f.raw["reference"].as_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect();
            let mut from_table: Vec<(String, String)> = kind
                .foreign_keys()
                .iter()
                .map(|(f, t)| ((*f).to_owned(), t.dao().to_owned()))
                .collect();
            from_schema.sort();
            from_table.sort();
            assert_eq!(from_table, from_schema, "{kind:?}");
        }
    }

    #[test]
    fn service_defaults_match_kong() {
        let mut svc = json!({"name": "s", "host": "example.test"})
            .as_object()
            .unwrap()
            .clone();
        Kind::Service.schema().fill_defaults(&mut svc);
        assert_eq!(svc["port"], 80);
        assert_eq!(svc["protocol"], "http");
        assert_eq!(svc["retries"], 5);
        assert_eq!(svc["connect_timeout"], 60000);
        assert_eq!(svc["enabled"], true);
        assert_eq!(svc["path"], Value::Null);
        assert!(
            !svc.contains_key("id"),
            "auto fields are Kong's to generate"
        );
    }

    #[test]
    fn route_defaults_match_kong() {
        let mut r = json!({"paths": ["/a"]}).as_object().unwrap().clone();
        Kind::Route.schema().fill_defaults(&mut r);
        assert_eq!(r["protocols"], json!(["http", "https"]));
        assert_eq!(r["https_redirect_status_code"], 426);
        assert_eq!(r["strip_path"], true);
        assert_eq!(r["preserve_host"], false);
        assert_eq!(r["path_handling"], "v0");
        assert_eq!(r["regex_priority"], 0);
        assert_eq!(r["hosts"], Value::Null);
        assert!(Kind::Route.schema().field("protocols").unwrap().is_set());
        assert!(!Kind::Route.schema().field("paths").unwrap().is_set());
    }

    #[test]
    fn type_errors_use_kongs_words() {
        let port = Kind::Service.schema().field("port").unwrap();
        assert_eq!(
            port.check_type(&json!("80")).unwrap_err(),
            "expected an integer"
        );
        assert!(port.check_type(&json!(80)).is_ok());
        let host = Kind::Service.schema().field("host").unwrap();
        assert_eq!(host.check_type(&json!(1)).unwrap_err(), "expected a string");
    }
}
