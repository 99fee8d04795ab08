//! Entity kinds and the metadata that tells them apart (DESIGN.md decision 2): one table,
//! so that adding a kind is adding a row.

use serde::{Deserialize, Serialize};

use crate::Schema;

/// The entity kinds of Kong 3.x OSS, in dependency order: a kind only references kinds
/// before it, so creating in this order and deleting in reverse never breaks a foreign
/// key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Certificate,
    CaCertificate,
    Sni,
    Vault,
    KeySet,
    Key,
    Service,
    Route,
    Consumer,
    Upstream,
    Target,
    Plugin,
    KeyAuth,
    BasicAuth,
    HmacAuth,
    Jwt,
    Acl,
}

/// What differs between kinds.
struct Meta {
    /// Kong's DAO name: the schema name (`/schemas/{dao}`) and the declarative key.
    dao: &'static str,
    /// Top-level Admin API collection (`/key-auths`); `None` when only nested (targets).
    path: Option<&'static str>,
    /// The collection's name under its parent (`/consumers/{c}/key-auth`).
    nested: &'static str,
    singular: &'static str,
    /// The field Kong accepts in place of the id in `/{path}/{key}`.
    endpoint_key: Option<&'static str>,
    /// Foreign-key fields and the kind each references.
    foreign_keys: &'static [(&'static str, Kind)],
}

const fn m(
    dao: &'static str,
    path: Option<&'static str>,
    nested: &'static str,
    singular: &'static str,
    endpoint_key: Option<&'static str>,
    foreign_keys: &'static [(&'static str, Kind)],
) -> Meta {
    Meta {
        dao,
        path,
        nested,
        singular,
        endpoint_key,
        foreign_keys,
    }
}

const fn meta(kind: Kind) -> Meta {
    use Kind::*;
    match kind {
        Certificate => m(
            "certificates",
            Some("certificates"),
            "certificates",
            "certificate",
            None,
            &[],
        ),
        CaCertificate => m(
            "ca_certificates",
            Some("ca_certificates"),
            "ca_certificates",
            "CA certificate",
            None,
            &[],
        ),
        Sni => m(
            "snis",
            Some("snis"),
            "snis",
            "SNI",
            Some("name"),
            &[("certificate", Certificate)],
        ),
        Vault => m(
            "vaults",
            Some("vaults"),
            "vaults",
            "vault",
            Some("prefix"),
            &[],
        ),
        KeySet => m(
            "key_sets",
            Some("key-sets"),
            "key-sets",
            "key set",
            Some("name"),
            &[],
        ),
        Key => m(
            "keys",
            Some("keys"),
            "keys",
            "key",
            Some("name"),
            &[("set", KeySet)],
        ),
        Service => m(
            "services",
            Some("services"),
            "services",
            "service",
            Some("name"),
            &[("client_certificate", Certificate)],
        ),
        Route => m(
            "routes",
            Some("routes"),
            "routes",
            "route",
            Some("name"),
            &[("service", Service)],
        ),
        Consumer => m(
            "consumers",
            Some("consumers"),
            "consumers",
            "consumer",
            Some("username"),
            &[],
        ),
        Upstream => m(
            "upstreams",
            Some("upstreams"),
            "upstreams",
            "upstream",
            Some("name"),
            &[("client_certificate", Certificate)],
        ),
        Target => m(
            "targets",
            None,
            "targets",
            "target",
            Some("target"),
            &[("upstream", Upstream)],
        ),
        Plugin => m(
            "plugins",
            Some("plugins"),
            "plugins",
            "plugin",
            Some("instance_name"),
            &[
                ("route", Route),
                ("service", Service),
                ("consumer", Consumer),
            ],
        ),
        KeyAuth => m(
            "keyauth_credentials",
            Some("key-auths"),
            "key-auth",
            "key-auth credential",
            Some("key"),
            &[("consumer", Consumer)],
        ),
        BasicAuth => m(
            "basicauth_credentials",
            Some("basic-auths"),
            "basic-auth",
            "basic-auth credential",
            Some("username"),
            &[("consumer", Consumer)],
        ),
        HmacAuth => m(
            "hmacauth_credentials",
            Some("hmac-auths"),
            "hmac-auth",
            "hmac-auth credential",
            Some("username"),
            &[("consumer", Consumer)],
        ),
        Jwt => m(
            "jwt_secrets",
            Some("jwts"),
            "jwt",
            "JWT credential",
            Some("key"),
            &[("consumer", Consumer)],
        ),
        Acl => m(
            "acls",
            Some("acls"),
            "acls",
            "ACL",
            None,
            &[("consumer", Consumer)],
        ),
    }
}

impl Kind {
    /// Every kind, parents first.
    pub const ALL: &'static [Kind] = &[
        Kind::Certificate,
        Kind::CaCertificate,
        Kind::Sni,
        Kind::Vault,
        Kind::KeySet,
        Kind::Key,
        Kind::Service,
        Kind::Route,
        Kind::Consumer,
        Kind::Upstream,
        Kind::Target,
        Kind::Plugin,
        Kind::KeyAuth,
        Kind::BasicAuth,
        Kind::HmacAuth,
        Kind::Jwt,
        Kind::Acl,
    ];

    /// The Admin API path of this kind's collection: `services` in `/services/{id}`.
    /// For targets, which Kong serves only under upstreams, the nested name.
    pub fn path(self) -> &'static str {
        let m = meta(self);
        m.path.unwrap_or(m.nested)
    }

    /// True when Kong serves `/{path}` at the top level (all but targets).
    pub fn has_top_level_path(self) -> bool {
        meta(self).path.is_some()
    }

    /// The collection's name under its parent: `key-auth` in `/consumers/{c}/key-auth`.
    pub fn nested_path(self) -> &'static str {
        meta(self).nested
    }

    /// Kong's DAO name: the schema name and the key of this kind in a declarative file.
    pub fn dao(self) -> &'static str {
        meta(self).dao
    }

    /// The key of this kind's array in a declarative file.
    pub fn decl_key(self) -> &'static str {
        self.dao()
    }

    /// The singular noun used in messages and plan output.
    pub fn singular(self) -> &'static str {
        meta(self).singular
    }

    /// The field Kong accepts in place of the id in `/{path}/{key}`; `name` for kinds
    /// without one, where it is only used to label entities.
    pub fn endpoint_key(self) -> &'static str {
        meta(self).endpoint_key.unwrap_or("name")
    }

    /// The endpoint key, or `None` when Kong has none (certificates, CA certificates,
    /// ACLs: looked up by id, or by custom rules).
    pub fn lookup_key(self) -> Option<&'static str> {
        meta(self).endpoint_key
    }

    /// Foreign-key fields of this kind and the kind each references.
    pub fn foreign_keys(self) -> &'static [(&'static str, Kind)] {
        meta(self).foreign_keys
    }

    /// Kong's `cache_key`: the fields whose values together identify an entity (unique
    /// as a combination). Empty when the kind has none.
    pub fn cache_key(self) -> &'static [&'static str] {
        match self {
            Kind::Plugin => &["name", "route", "service", "consumer"],
            Kind::Target => &["upstream", "target"],
            Kind::Key => &["kid", "set"],
            Kind::Acl => &["consumer", "group"],
            _ => &[],
        }
    }

    /// Fields whose values are secrets, beyond those Kong's schema marks `encrypted`:
    /// credential keys and secrets, which Kong stores in clear but which authenticate
    /// a consumer. carl never prints their values (DESIGN.md decision 9).
    ///
    /// A name is matched as a top-level field or as the last segment of a nested one:
    /// a key's `private_key` is `pem.private_key` (which Kong also marks `encrypted`).
    pub fn secret_fields(self) -> &'static [&'static str] {
        match self {
            Kind::KeyAuth => &["key"],
            Kind::BasicAuth => &["password"],
            Kind::HmacAuth | Kind::Jwt => &["secret"],
            Kind::Certificate => &["key", "key_alt"],
            Kind::Key => &["jwk", "private_key"],
            _ => &[],
        }
    }

    /// Fields that carl never diffs: Kong generates them.
    pub fn generated_fields(self) -> &'static [&'static str] {
        &["id", "created_at", "updated_at"]
    }

    /// Kong's schema for this kind, from the built-in snapshot.
    pub fn schema(self) -> &'static Schema {
        crate::schema::builtin(self)
    }

    /// The kind whose top-level Admin API path is `s`.
    pub fn from_path(s: &str) -> Option<Kind> {
        Kind::ALL.iter().copied().find(|k| meta(*k).path == Some(s))
    }

    /// The kind whose DAO name (schema name, declarative key) is `s`.
    pub fn from_dao(s: &str) -> Option<Kind> {
        Kind::ALL.iter().copied().find(|k| k.dao() == s)
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.singular())
    }
}
