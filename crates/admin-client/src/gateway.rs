//! What `GET /` says about the gateway: its version (and so what carl may do with it),
//! edition and database mode.
//!
//! carl reconciles Kong 3.x. Kong 2.8 can be read (ping, dump) so that a team can move a
//! 2.8 gateway into a 3.0 file before upgrading; what differs on the wire is listed in
//! `kong-admin-api.md` §10 and handled here: no `keys`/`key_sets` (3.1+), vaults served
//! as `/vaults-beta`, `available_on_server` a map of `true`s.

use std::fmt;

use carl_model::Kind;
use serde_json::Value;

/// A Kong release, `3.9.1` (Enterprise's fourth number, `3.4.3.12`, is ignored).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct KongVersion {
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
}

impl KongVersion {
    /// Reads `3.9.1`, `2.8.4`, `3.4.3.12`, `3.10.0.0-enterprise-edition`, `3.9.1-rc1`.
    pub fn parse(text: &str) -> Option<KongVersion> {
        let core = text.split(['-', ' ']).next()?;
        let mut parts = core.split('.').map(|p| p.parse::<u32>().ok());
        let major = parts.next()??;
        let minor = parts.next()??;
        let patch = parts.next().flatten().unwrap_or(0);
        Some(KongVersion {
            major,
            minor,
            patch,
        })
    }

    /// The newest Kong carl knows: what requests are shaped for when the version is
    /// not known (yet, or at all).
    pub const NEWEST_KNOWN: KongVersion = KongVersion::new(3, 9, 0);

    pub const fn new(major: u32, minor: u32, patch: u32) -> KongVersion {
        KongVersion {
            major,
            minor,
            patch,
        }
    }

    /// What carl does with a gateway of this version.
    pub fn support(self) -> Support {
        match (self.major, self.minor) {
            (3, _) => Support::Full,
            (2, 8) => Support::ReadOnly,
            (m, _) if m > 3 => Support::Newer,
            _ => Support::Unsupported,
        }
    }

    /// Whether this version has `kind` at all (keys and key sets came with 3.1).
    pub fn has(self, kind: Kind) -> bool {
        match kind {
            Kind::Key | Kind::KeySet => self >= KongVersion::new(3, 1, 0),
            _ => true,
        }
    }

    /// The Admin API collection of `kind` in this version: 2.8 served vaults, then a
    /// beta, as `/vaults-beta`.
    pub fn path(self, kind: Kind) -> &'static str {
        match kind {
            Kind::Vault if self.major < 3 => "vaults-beta",
            _ => kind.path(),
        }
    }

    /// Kong 3.0 changed what a route path means: a regex only when it starts with `~`.
    pub fn has_legacy_route_paths(self) -> bool {
        self.major < 3
    }
}

impl fmt::Display for KongVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// How far carl goes with a gateway, by its version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Support {
    /// Kong 3.x: everything.
    Full,
    /// Kong 2.8: ping and dump, never a plan or a write.
    ReadOnly,
    /// A major version after 3: carl goes on with a warning.
    Newer,
    /// Before 2.8.
    Unsupported,
    /// `GET /` did not say (an RBAC user without rights on it): treated as the newest
    /// carl knows, with a warning.
    Unknown,
}

/// The Kong versions carl supports, for `--version` and error messages.
pub const SUPPORTED: &str =
    "Kong Gateway 3.x (OSS and Enterprise) fully; 2.8 for reading (ping, dump)";

/// What `GET /` says.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Gateway {
    /// As Kong reports it, `3.9.1` or `3.4.3.12`.
    pub version_text: String,
    /// `None` when Kong's version string cannot be read.
    pub version: Option<KongVersion>,
    /// `community` or `enterprise`.
    pub edition: String,
    /// Kong's `database` setting: `postgres`, or `off` for DB-less.
    pub database: String,
    /// `database = off`: entities cannot be written one by one, only through `/config`.
    pub db_less: bool,
    /// Plugins the node can run (`plugins.available_on_server`), sorted.
    pub plugins: Vec<String>,
}

impl Gateway {
    pub fn from_root(info: &Value) -> Gateway {
        let version_text = info["version"].as_str().unwrap_or("unknown").to_owned();
        let version = KongVersion::parse(&version_text);
        // `edition` is in `GET /` from 3.6; before, Enterprise shows in the version.
        let edition = match info["edition"].as_str() {
            Some(e) => e.to_owned(),
            None if version_text.contains("enterprise") || version_text.split('.').count() > 3 => {
                "enterprise".to_owned()
            }
            None => "community".to_owned(),
        };
        let database = info["configuration"]["database"]
            .as_str()
            .unwrap_or("unknown")
            .to_owned();
        // 3.x: name → {version, priority}; 2.x: name → true. Keys are the names in both.
        let mut plugins: Vec<String> = info["plugins"]["available_on_server"]
            .as_object()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        plugins.sort();
        Gateway {
            version_text,
            version,
            edition,
            db_less: database == "off",
            database,
            plugins,
        }
    }

    pub fn support(&self) -> Support {
        self.version.map_or(Support::Unknown, KongVersion::support)
    }

    /// The version to shape requests for: an unreadable version is treated as the
    /// newest carl knows.
    pub fn effective_version(&self) -> KongVersion {
        self.version.unwrap_or(KongVersion::NEWEST_KNOWN)
    }

    /// `Ok` when carl may plan and write to this gateway; otherwise why not.
    pub fn check_writable(&self) -> Result<(), String> {
        match self.support() {
            Support::Full | Support::Newer | Support::Unknown => Ok(()),
            Support::ReadOnly => Err(format!(
                "Kong {} is supported for reading only (carl ping, carl dump): carl plans and applies \
                 for Kong 3.x. `carl dump` writes this gateway as a 3.0 file to apply after the upgrade",
                self.version_text
            )),
            Support::Unsupported => Err(format!(
                "Kong {} is not supported: carl works with {SUPPORTED}",
                self.version_text
            )),
        }
    }

    /// `Ok` when carl may read this gateway.
    pub fn check_readable(&self) -> Result<(), String> {
        match self.support() {
            Support::Unsupported => Err(format!(
                "Kong {} is not supported: carl works with {SUPPORTED}",
                self.version_text
            )),
            _ => Ok(()),
        }
    }

    /// A warning to print, when the version calls for one.
    pub fn warning(&self) -> Option<String> {
        match self.support() {
            Support::Newer => Some(format!(
                "Kong {} is newer than carl knows ({SUPPORTED}); going on, but check the plan carefully",
                self.version_text
            )),
            Support::Unknown => Some(format!(
                "cannot read Kong's version from GET / (version: {}); going on as for Kong 3.x",
                self.version_text
            )),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn versions_parse_as_kong_reports_them() {
        assert_eq!(KongVersion::parse("3.9.1"), Some(KongVersion::new(3, 9, 1)));
        assert_eq!(
            KongVersion::parse("3.4.3.12"),
            Some(KongVersion::new(3, 4, 3))
        );
        assert_eq!(
            KongVersion::parse("2.8.4-enterprise-edition"),
            Some(KongVersion::new(2, 8, 4))
        );
        assert_eq!(
            KongVersion::parse("3.10.0-rc.1"),
            Some(KongVersion::new(3, 10, 0))
        );
        assert_eq!(KongVersion::parse("3.10"), Some(KongVersion::new(3, 10, 0)));
        assert_eq!(KongVersion::parse("unknown"), None);
        assert_eq!(KongVersion::parse(""), None);
    }

    #[test]
    fn support_follows_the_major_version() {
        assert_eq!(KongVersion::new(3, 0, 0).support(), Support::Full);
        assert_eq!(KongVersion::new(3, 9, 1).support(), Support::Full);
        assert_eq!(KongVersion::new(2, 8, 4).support(), Support::ReadOnly);
        assert_eq!(KongVersion::new(2, 7, 0).support(), Support::Unsupported);
        assert_eq!(KongVersion::new(4, 0, 0).support(), Support::Newer);
    }

    #[test]
    fn kong_2_8_has_no_keys_and_serves_vaults_as_a_beta() {
        let v = KongVersion::new(2, 8, 4);
        assert!(!v.has(Kind::Key) && !v.has(Kind::KeySet));
        assert_eq!(v.path(Kind::Vault), "vaults-beta");
        assert!(!KongVersion::new(3, 0, 0).has(Kind::Key));
        assert!(KongVersion::new(3, 1, 0).has(Kind::KeySet));
        assert_eq!(KongVersion::new(3, 0, 0).path(Kind::Vault), "vaults");
    }

    #[test]
    fn root_of_2_8_and_3_x_read_alike() {
        let old = Gateway::from_root(&json!({
            "version": "2.8.4",
            "configuration": {"database": "postgres"},
            "plugins": {"available_on_server": {"key-auth": true, "acl": true}},
        }));
        assert_eq!(old.plugins, ["acl", "key-auth"]);
        assert_eq!(old.edition, "community");
        assert!(old.check_writable().unwrap_err().contains("reading only"));
        assert!(old.check_readable().is_ok());
        let new = Gateway::from_root(&json!({
            "version": "3.9.1",
            "edition": "enterprise",
            "configuration": {"database": "off"},
            "plugins": {"available_on_server": {"acl": {"version": "3.9.1", "priority": 950}}},
        }));
        assert!(new.db_less && new.check_writable().is_ok());
        assert_eq!(new.edition, "enterprise");
        let ancient = Gateway::from_root(&json!({"version": "1.4.0"}));
        assert!(ancient.check_readable().is_err());
        let hidden = Gateway::from_root(&serde_json::Value::Null);
        assert_eq!(hidden.support(), Support::Unknown);
        assert!(hidden.check_writable().is_ok() && hidden.warning().is_some());
    }
}
