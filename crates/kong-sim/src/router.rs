//! Kong's Admin API paths, generated from the entity table the way
//! `kong/api/endpoints.lua` generates them from schemas: a collection and an entity
//! endpoint per kind, a nested collection and entity per foreign key
//! (`/services/{s}/routes`), and a foreign-entity endpoint per foreign key
//! (`/routes/{r}/service`).

use carl_model::Kind;

/// What a request path addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    Root,
    Status,
    /// `/config`: DB-less declarative configuration.
    Config,
    /// `/tags` and `/tags/{tag}`: every tagged entity.
    Tags(Option<String>),
    Endpoints,
    PluginsEnabled,
    /// `/schemas/{dao}`
    Schema(String),
    /// `/schemas/{dao}/validate`
    SchemaValidate(String),
    /// `/schemas/plugins/{name}`
    PluginSchema(String),
    /// `/schemas/plugins/validate`
    PluginSchemaValidate,
    /// `/plugins/schema/{name}` (deprecated: the config record only)
    LegacyPluginSchema(String),
    Collection(Kind),
    Entity(Kind, String),
    /// `/{kind}/{key}/{field}`: the entity a foreign key points at.
    ForeignEntity {
        kind: Kind,
        key: String,
        field: &'static str,
        target: Kind,
    },
    /// `/{parent}/{pkey}/{child}`
    Nested {
        parent: Kind,
        pkey: String,
        child: Kind,
        field: &'static str,
    },
    /// `/{parent}/{pkey}/{child}/{ckey}`
    NestedEntity {
        parent: Kind,
        pkey: String,
        child: Kind,
        field: &'static str,
        ckey: String,
    },
}

impl Endpoint {
    /// The methods Kong serves here (HEAD and OPTIONS come with GET).
    pub fn methods(&self) -> &'static [&'static str] {
        match self {
            Endpoint::Collection(Kind::Target) => &[],
            Endpoint::Collection(_) | Endpoint::Nested { .. } => &["GET", "POST"],
            Endpoint::Entity(..) | Endpoint::NestedEntity { .. } => {
                &["DELETE", "GET", "PATCH", "PUT"]
            }
            Endpoint::ForeignEntity { .. } => &["DELETE", "GET", "PATCH", "PUT"],
            Endpoint::SchemaValidate(_) | Endpoint::PluginSchemaValidate => &["POST"],
            Endpoint::Config => &["GET", "POST"],
            _ => &["GET"],
        }
    }

    /// The path template for `/_sim/stats` and `/endpoints`, in Kong's `{param}` style:
    /// `/services/{services}/routes/{routes}`.
    pub fn template(&self) -> String {
        let coll = |k: Kind| k.path();
        let param = |k: Kind| format!("{{{}}}", k.path());
        match self {
            Endpoint::Root => "/".into(),
            Endpoint::Status => "/status".into(),
            Endpoint::Config => "/config".into(),
            Endpoint::Tags(None) => "/tags".into(),
            Endpoint::Tags(Some(_)) => "/tags/{tags}".into(),
            Endpoint::Endpoints => "/endpoints".into(),
            Endpoint::PluginsEnabled => "/plugins/enabled".into(),
            Endpoint::Schema(_) => "/schemas/{name}".into(),
            Endpoint::SchemaValidate(_) => "/schemas/{name}/validate".into(),
            Endpoint::PluginSchema(_) => "/schemas/plugins/{name}".into(),
            Endpoint::PluginSchemaValidate => "/schemas/plugins/validate".into(),
            Endpoint::LegacyPluginSchema(_) => "/plugins/schema/{name}".into(),
            Endpoint::Collection(k) => format!("/{}", coll(*k)),
            Endpoint::Entity(k, _) => format!("/{}/{}", coll(*k), param(*k)),
            Endpoint::ForeignEntity { kind, field, .. } => {
                format!("/{}/{}/{field}", coll(*kind), param(*kind))
            }
            Endpoint::Nested { parent, child, .. } => {
                format!(
                    "/{}/{}/{}",
                    coll(*parent),
                    param(*parent),
                    child.nested_path()
                )
            }
            Endpoint::NestedEntity { parent, child, .. } => format!(
                "/{}/{}/{}/{}",
                coll(*parent),
                param(*parent),
                child.nested_path(),
                param(*child)
            ),
        }
    }
}

/// The kind served at top-level path segment `seg`.
fn top_kind(seg: &str) -> Option<Kind> {
    Kind::ALL
        .iter()
        .copied()
        .find(|k| k.has_top_level_path() && k.path() == seg)
}

/// The child kind reached from `parent` by nested segment `seg`, and its foreign key.
fn nested_kind(parent: Kind, seg: &str) -> Option<(Kind, &'static str)> {
    Kind::ALL.iter().find_map(|child| {
        if child.nested_path() != seg {
            return None;
        }
        child
            .foreign_keys()
            .iter()
            .find(|(_, target)| *target == parent)
            .map(|(field, _)| (*child, *field))
    })
}

/// Percent-decodes one path segment; `None` for invalid UTF-8.
fn decode(seg: &str) -> Option<String> {
    let bytes = seg.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Ok(b) = u8::from_str_radix(
                std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz"),
                16,
            )
        {
            out.push(b);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Resolves a request path (without query) to an endpoint; `None` is Kong's 404.
pub fn route(path: &str) -> Option<Endpoint> {
    // Kong tolerates one trailing slash.
    let trimmed = path
        .strip_suffix('/')
        .filter(|p| !p.is_empty())
        .unwrap_or(path);
    let raw: Vec<&str> = trimmed.split('/').skip(1).collect();
    if trimmed == "/" {
        return Some(Endpoint::Root);
    }
    let segs: Vec<String> = raw.iter().map(|s| decode(s)).collect::<Option<_>>()?;
    if segs.iter().any(String::is_empty) {
        return None;
    }
    let s: Vec<&str> = segs.iter().map(String::as_str).collect();
    match s.as_slice() {
        ["status"] => return Some(Endpoint::Status),
        ["config"] => return Some(Endpoint::Config),
        ["tags"] => return Some(Endpoint::Tags(None)),
        ["tags", tag] => return Some(Endpoint::Tags(Some((*tag).to_owned()))),
        ["endpoints"] => return Some(Endpoint::Endpoints),
        ["plugins", "enabled"] => return Some(Endpoint::PluginsEnabled),
        ["plugins", "schema", name] => {
            return Some(Endpoint::LegacyPluginSchema((*name).to_owned()));
        }
        ["schemas", "plugins", "validate"] => return Some(Endpoint::PluginSchemaValidate),
        ["schemas", "plugins", name] => return Some(Endpoint::PluginSchema((*name).to_owned())),
        ["schemas", name] => return Some(Endpoint::Schema((*name).to_owned())),
        ["schemas", name, "validate"] => return Some(Endpoint::SchemaValidate((*name).to_owned())),
        _ => {}
    }
    let (first, rest) = s.split_first()?;
    let kind = top_kind(first)?;
    match rest {
        [] => Some(Endpoint::Collection(kind)),
        [key] => Some(Endpoint::Entity(kind, (*key).to_owned())),
        [key, seg] => {
            // `/snis/{s}/certificate` is disabled in Kong (kong/api/routes/snis.lua).
            if kind == Kind::Sni && *seg == "certificate" {
                return None;
            }
            if let Some((field, target)) = kind.foreign_keys().iter().find(|(f, _)| f == seg) {
                return Some(Endpoint::ForeignEntity {
                    kind,
                    key: (*key).to_owned(),
                    field,
                    target: *target,
                });
            }
            let (child, field) = nested_kind(kind, seg)?;
            Some(Endpoint::Nested {
                parent: kind,
                pkey: (*key).to_owned(),
                child,
                field,
            })
        }
        [key, seg, ckey] => {
            let (child, field) = nested_kind(kind, seg)?;
            Some(Endpoint::NestedEntity {
                parent: kind,
                pkey: (*key).to_owned(),
                child,
                field,
                ckey: (*ckey).to_owned(),
            })
        }
        _ => None,
    }
}

/// Every endpoint template Kong would list in `GET /endpoints`, sorted.
pub fn all_templates() -> Vec<String> {
    let mut out: Vec<String> = [
        "/",
        "/status",
        "/config",
        "/tags",
        "/tags/{tags}",
        "/endpoints",
        "/plugins/enabled",
        "/plugins/schema/{name}",
        "/schemas/{name}",
        "/schemas/{name}/validate",
        "/schemas/plugins/{name}",
        "/schemas/plugins/validate",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    for &kind in Kind::ALL {
        if kind.has_top_level_path() {
            out.push(Endpoint::Collection(kind).template());
            out.push(Endpoint::Entity(kind, String::new()).template());
            for (field, target) in kind.foreign_keys() {
                out.push(
                    Endpoint::ForeignEntity {
                        kind,
                        key: String::new(),
                        field,
                        target: *target,
                    }
                    .template(),
                );
            }
        }
        for (field, parent) in kind.foreign_keys() {
            let nested = Endpoint::Nested {
                parent: *parent,
                pkey: String::new(),
                child: kind,
                field,
            };
            out.push(nested.template());
            out.push(
                Endpoint::NestedEntity {
                    parent: *parent,
                    pkey: String::new(),
                    child: kind,
                    field,
                    ckey: String::new(),
                }
                .template(),
            );
        }
    }
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_paths_match_kongs() {
        assert_eq!(
            route("/services"),
            Some(Endpoint::Collection(Kind::Service))
        );
        assert_eq!(
            route("/services/"),
            Some(Endpoint::Collection(Kind::Service))
        );
        assert_eq!(
            route("/services/%E5%86%86"),
            Some(Endpoint::Entity(Kind::Service, "円".into()))
        );
        assert!(matches!(
            route("/consumers/alice/key-auth"),
            Some(Endpoint::Nested {
                parent: Kind::Consumer,
                child: Kind::KeyAuth,
                field: "consumer",
                ..
            })
        ));
        assert!(matches!(
            route("/routes/r/service"),
            Some(Endpoint::ForeignEntity {
                kind: Kind::Route,
                target: Kind::Service,
                ..
            })
        ));
        assert!(matches!(
            route("/upstreams/u/targets/10.0.0.1:80"),
            Some(Endpoint::NestedEntity {
                child: Kind::Target,
                ..
            })
        ));
        assert!(matches!(
            route("/certificates/c/snis"),
            Some(Endpoint::Nested {
                child: Kind::Sni,
                ..
            })
        ));
        assert_eq!(route("/targets"), None, "targets live under upstreams only");
        assert_eq!(route("/nope"), None);
        assert_eq!(route("/services/a/b/c/d"), None);
        assert_eq!(
            route("/default/services"),
            None,
            "no workspace prefix in OSS"
        );
    }

    #[test]
    fn templates_use_kongs_param_style() {
        let e = route("/services/s/routes/r").unwrap();
        assert_eq!(e.template(), "/services/{services}/routes/{routes}");
        assert!(
            all_templates().contains(&"/consumers/{consumers}/key-auth/{key-auths}".to_owned())
        );
    }
}
