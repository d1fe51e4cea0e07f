//! The data the planner works on: source and target snapshots, naming and
//! policies.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{ConfigError, Error};

/// The tag (and S3 metadata key) that marks what the replicator manages.
pub const TAG_MANAGED_BY: &str = "managed-by";
/// The value of [`TAG_MANAGED_BY`].
pub const MANAGED_BY: &str = "vault-replicate";
/// Tag: the KV v2 mount of the source secret.
pub const TAG_MOUNT: &str = "vault-mount";
/// Tag: the path of the source secret, relative to its mount.
pub const TAG_PATH: &str = "vault-path";
/// Tag: the Vault version whose value the target holds.
pub const TAG_VERSION: &str = "vault-version";
/// Tag: what identifies that version beyond its number: the version's
/// `created_time` on KV v2 (a secret deleted completely and written again
/// restarts at version 1 with a new time), `sha256:<hex>` of the value on
/// KV v1 (no versions).
pub const TAG_VERSION_ID: &str = "vault-version-id";
/// Tag (key granularity): the key of the Vault secret this target holds.
pub const TAG_KEY: &str = "vault-key";
/// Tag (key granularity): how many keys the Vault version had.
pub const TAG_KEY_COUNT: &str = "vault-key-count";
/// Tag: `active`, or `orphaned` once the source is gone and the deletion
/// policy is `none`.
pub const TAG_STATE: &str = "vault-state";

/// `sha256:<hex>` of a secret's value (its keys sorted, as JSON): the
/// version id of a KV v1 secret. Anyone who can read the replica's tags can
/// check a guessed value against it, as with any unsalted digest.
pub fn value_digest(value: &vault_client::SecretMap) -> String {
    use sha2::{Digest, Sha256};
    use std::fmt::Write as _;
    let json = serde_json::to_string(value.expose_secret()).unwrap_or_default();
    let hash = Sha256::digest(json.as_bytes());
    let mut out = String::from("sha256:");
    for b in hash.iter() {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// Where secrets are read: a KV v2 mount and a folder below it (`""` = all).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SourceScope {
    /// The mount, e.g. `secret`.
    pub mount: String,
    /// A folder below the mount (no leading or trailing `/`), `""` for all.
    pub prefix: String,
}

impl SourceScope {
    /// A scope; slashes around the mount and the prefix are trimmed.
    pub fn new(mount: &str, prefix: &str) -> Self {
        Self {
            mount: mount.trim_matches('/').to_owned(),
            prefix: prefix.trim_matches('/').to_owned(),
        }
    }

    /// Whether `mount`/`path` lies inside this scope.
    pub fn contains(&self, mount: &str, path: &str) -> bool {
        mount == self.mount
            && (self.prefix.is_empty()
                || path
                    .strip_prefix(&self.prefix)
                    .is_some_and(|rest| rest.starts_with('/')))
    }
}

impl FromStr for SourceScope {
    type Err = ConfigError;

    /// `mount`, `mount/folder/...` (first segment is the mount), or
    /// `mount:folder` for mounts whose name holds a `/`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let scope = match s.split_once(':') {
            Some((mount, prefix)) => Self::new(mount, prefix),
            None => {
                let t = s.trim_matches('/');
                match t.split_once('/') {
                    Some((mount, prefix)) => Self::new(mount, prefix),
                    None => Self::new(t, ""),
                }
            }
        };
        if scope.mount.is_empty() || scope.prefix.contains("//") || scope.prefix.contains("..") {
            return Err(ConfigError::invalid(
                "REPLICATE_SOURCES",
                "a comma-separated list of `mount`, `mount/folder` or `mount:folder`",
                format!("got {:?}", s),
            ));
        }
        Ok(scope)
    }
}

impl fmt::Display for SourceScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.prefix.is_empty() {
            write!(f, "{}", self.mount)
        } else {
            write!(f, "{}:{}", self.mount, self.prefix)
        }
    }
}

/// The current version of one Vault secret.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SourceEntry {
    /// The KV v2 mount.
    pub mount: String,
    /// The path relative to the mount (no leading `/`).
    pub path: String,
    /// The current (live) version; 0 on a KV v1 mount (no versions).
    pub version: u64,
    /// What identifies that version (see [`TAG_VERSION_ID`]).
    #[serde(default)]
    pub version_id: String,
}

/// Every live secret under the source's scopes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceSnapshot {
    /// The scopes that were listed.
    pub scopes: Vec<SourceScope>,
    /// The secrets whose current version is live, sorted.
    pub entries: Vec<SourceEntry>,
    /// Secrets skipped because their current version is deleted or destroyed.
    pub skipped_deleted: u64,
}

/// One object in the target (an AWS secret or an S3 object) that carries our
/// managed-by tag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetEntry {
    /// The secret name or object key.
    pub name: String,
    /// The ARN (Secrets Manager) or key (S3).
    pub id: String,
    /// `vault-mount` tag.
    pub mount: String,
    /// `vault-path` tag.
    pub path: String,
    /// `vault-key` tag (key granularity).
    pub key: Option<String>,
    /// `vault-version` tag; 0 when missing or not a number.
    pub version: u64,
    /// `vault-version-id` tag; `None` on replicas written by releases before
    /// it existed.
    #[serde(default)]
    pub version_id: Option<String>,
    /// `vault-key-count` tag (key granularity); 1 otherwise.
    pub key_count: u64,
    /// Whether it is tagged `vault-state=orphaned`.
    pub orphaned: bool,
    /// Whether it is scheduled for deletion (Secrets Manager).
    pub pending_deletion: bool,
}

/// What the target holds that we manage.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetSnapshot {
    /// Every managed entry.
    pub entries: Vec<TargetEntry>,
}

/// One AWS secret per Vault secret, or one per key of a Vault secret.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Granularity {
    /// The whole Vault secret as one JSON object (default).
    #[default]
    Secret,
    /// One target secret per key; string values are stored as they are,
    /// other JSON values as JSON.
    Key,
}

impl FromStr for Granularity {
    type Err = ConfigError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "secret" => Ok(Self::Secret),
            "key" => Ok(Self::Key),
            _ => Err(ConfigError::invalid(
                "REPLICATE_GRANULARITY",
                "`secret` or `key`",
                format!("got {:?}", s),
            )),
        }
    }
}

/// What happens to a target secret whose Vault secret is gone.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "lowercase")]
pub enum DeletionPolicy {
    /// Never delete; tag it `vault-state=orphaned` (default).
    #[default]
    None,
    /// `DeleteSecret` with a recovery window (7 to 30 days).
    Schedule {
        /// Days before Secrets Manager deletes it for good.
        recovery_window_days: u8,
    },
    /// `DeleteSecret` without recovery.
    Force,
}

impl DeletionPolicy {
    /// `schedule` with a validated recovery window (7 to 30 days).
    pub fn schedule(recovery_window_days: u8) -> Result<Self, ConfigError> {
        if (7..=30).contains(&recovery_window_days) {
            Ok(Self::Schedule {
                recovery_window_days,
            })
        } else {
            Err(ConfigError::invalid(
                "REPLICATE_RECOVERY_WINDOW_DAYS",
                "a number of days from 7 to 30",
                format!("got {:?}", recovery_window_days.to_string()),
            ))
        }
    }

    /// `none`, `schedule` or `force`; `days` is the recovery window for `schedule`.
    pub fn parse(mode: &str, days: u8) -> Result<Self, ConfigError> {
        match mode.trim().to_ascii_lowercase().as_str() {
            "none" | "" => Ok(Self::None),
            "schedule" => Self::schedule(days),
            "force" => Ok(Self::Force),
            _ => Err(ConfigError::invalid(
                "REPLICATE_DELETION",
                "`none`, `schedule` or `force`",
                format!("got {:?}", mode),
            )),
        }
    }
}

/// How target names are made from Vault paths.
///
/// The template may use `{prefix}`, `{mount}`, `{path}` and `{key}` (key
/// granularity only, where it is required).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Naming {
    template: String,
    prefix: String,
    granularity: Granularity,
}

impl Naming {
    /// A naming scheme; `template` `None` picks the default:
    /// `{prefix}/{path}` (`{prefix}/{mount}/{path}` when `several_mounts`),
    /// with `/{key}` appended for key granularity.
    pub fn new(
        template: Option<&str>,
        prefix: &str,
        granularity: Granularity,
        several_mounts: bool,
    ) -> Result<Self, ConfigError> {
        let template = match template.map(str::trim).filter(|t| !t.is_empty()) {
            Some(t) => t.to_owned(),
            None => {
                let mut t = if several_mounts {
                    "{prefix}/{mount}/{path}".to_owned()
                } else {
                    "{prefix}/{path}".to_owned()
                };
                if granularity == Granularity::Key {
                    t.push_str("/{key}");
                }
                t
            }
        };
        let bad = |why: &str| {
            ConfigError::invalid(
                "REPLICATE_NAME_TEMPLATE",
                format!("a template using {{prefix}}, {{mount}}, {{path}}, {{key}} ({why})"),
                format!("got {:?}", template.clone()),
            )
        };
        if !template.contains("{path}") {
            return Err(bad("{path} is required"));
        }
        if granularity == Granularity::Key && !template.contains("{key}") {
            return Err(bad("{key} is required with key granularity"));
        }
        if granularity == Granularity::Secret && template.contains("{key}") {
            return Err(bad("{key} needs key granularity"));
        }
        if several_mounts && !template.contains("{mount}") {
            return Err(bad("{mount} is required with several mounts"));
        }
        let rest = template
            .replace("{prefix}", "")
            .replace("{mount}", "")
            .replace("{path}", "")
            .replace("{key}", "");
        if rest.contains('{') || rest.contains('}') {
            return Err(bad("unknown placeholder"));
        }
        Ok(Self {
            template,
            prefix: prefix.trim_matches('/').to_owned(),
            granularity,
        })
    }

    /// The granularity.
    pub fn granularity(&self) -> Granularity {
        self.granularity
    }

    /// The template.
    pub fn template(&self) -> &str {
        &self.template
    }

    /// The name for `mount`/`path` (and `key` with key granularity).
    pub fn name(&self, mount: &str, path: &str, key: Option<&str>) -> String {
        let name = self
            .template
            .replace("{prefix}", &self.prefix)
            .replace("{mount}", mount)
            .replace("{path}", path)
            .replace("{key}", key.unwrap_or(""));
        // An empty prefix leaves a leading `/`: drop it.
        name.trim_start_matches('/').to_owned()
    }

    /// What every target name of `mount`/`path` starts with: the name
    /// (secret granularity), or the name up to where the key goes.
    pub fn name_prefix(&self, mount: &str, path: &str) -> String {
        match self.granularity {
            Granularity::Secret => self.name(mount, path, None),
            Granularity::Key => {
                let marked = self.name(mount, path, Some("\u{0}"));
                marked.split('\u{0}').next().unwrap_or_default().to_owned()
            }
        }
    }
}

/// Checks a Secrets Manager secret name: 1 to 512 characters of
/// `A-Z a-z 0-9 / _ + = . @ -`.
pub fn validate_secret_name(name: &str) -> Result<(), Error> {
    let problem = if name.is_empty() {
        Some("it is empty".to_owned())
    } else if name.len() > 512 {
        Some(format!(
            "it has {} characters; at most 512 are allowed",
            name.len()
        ))
    } else {
        name.chars()
            .find(|c| !(c.is_ascii_alphanumeric() || "/_+=.@-".contains(*c)))
            .map(|c| format!("{c:?} is not allowed (only A-Z a-z 0-9 / _ + = . @ -)"))
            .or_else(|| {
                // AWS: "Do not end your secret name with a hyphen followed by
                // six characters": a partial ARN lookup could pick another secret.
                let b = name.as_bytes();
                (b.len() >= 7
                    && b[b.len() - 7] == b'-'
                    && b[b.len() - 6..].iter().all(u8::is_ascii_alphanumeric))
                .then(|| {
                    "it ends with a hyphen and six characters, which Secrets Manager reads as \
                     the random suffix of an ARN; rename the Vault path or change \
                     REPLICATE_NAME_TEMPLATE"
                        .to_owned()
                })
            })
    };
    match problem {
        None => Ok(()),
        Some(problem) => Err(Error::InvalidName {
            what: "secret name",
            value: name.to_owned(),
            problem,
        }),
    }
}

/// Checks a Secrets Manager / S3 tag value: at most 256 characters of
/// letters, digits, spaces and `_ . : / = + - @`.
pub fn validate_tag_value(value: &str) -> Result<(), Error> {
    let problem = if value.chars().count() > 256 {
        Some("longer than 256 characters".to_owned())
    } else {
        value
            .chars()
            .find(|c| !(c.is_alphanumeric() || " _.:/=+-@".contains(*c)))
            .map(|c| format!("{c:?} is not allowed in a tag value"))
    };
    match problem {
        None => Ok(()),
        Some(problem) => Err(Error::InvalidName {
            what: "tag value",
            value: value.to_owned(),
            problem,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_parse_and_contain() {
        let s: SourceScope = "secret/app/prod".parse().unwrap();
        assert_eq!(s, SourceScope::new("secret", "app/prod"));
        assert!(s.contains("secret", "app/prod/db"));
        assert!(!s.contains("secret", "app/production/db"));
        assert!(!s.contains("kv", "app/prod/db"));
        let s: SourceScope = "team/kv:a".parse().unwrap();
        assert_eq!(s, SourceScope::new("team/kv", "a"));
        assert!(SourceScope::new("secret", "").contains("secret", "x"));
        assert!("".parse::<SourceScope>().is_err());
        assert!("secret/../x".parse::<SourceScope>().is_err());
    }

    #[test]
    fn naming_defaults_and_validation() {
        let n = Naming::new(None, "vault", Granularity::Secret, false).unwrap();
        assert_eq!(n.name("secret", "app/db", None), "vault/app/db");
        let n = Naming::new(None, "vault", Granularity::Key, true).unwrap();
        assert_eq!(n.name("kv", "app/db", Some("pw")), "vault/kv/app/db/pw");
        let n = Naming::new(None, "", Granularity::Secret, false).unwrap();
        assert_eq!(n.name("secret", "a", None), "a");
        assert!(Naming::new(Some("{prefix}"), "p", Granularity::Secret, false).is_err());
        assert!(Naming::new(Some("{path}"), "p", Granularity::Key, false).is_err());
        assert!(Naming::new(Some("{path}/{nope}"), "p", Granularity::Secret, false).is_err());
        assert!(Naming::new(Some("{path}"), "p", Granularity::Secret, true).is_err());
    }

    #[test]
    fn names_and_tags_are_checked() {
        assert!(validate_secret_name("vault/app-1/db_x+y=z.w@v").is_ok());
        assert!(validate_secret_name("vault/with space").is_err());
        assert!(validate_secret_name("").is_err());
        assert!(validate_secret_name(&"a".repeat(513)).is_err());
        assert!(validate_secret_name(&"a".repeat(512)).is_ok());
        let e = validate_secret_name("vault/db-a1B2c3")
            .unwrap_err()
            .to_string();
        assert!(e.contains("six characters"), "{e}");
        assert!(validate_secret_name("vault/db-server").is_err());
        assert!(validate_secret_name("vault/db-serv").is_ok());
        assert!(validate_secret_name("vault/db-serve/x").is_ok());
        assert!(validate_tag_value("app/db 1:x").is_ok());
        assert!(validate_tag_value("a*b").is_err());
        assert!(validate_tag_value(&"a".repeat(257)).is_err());
    }

    #[test]
    fn deletion_policy_window_is_validated() {
        assert!(DeletionPolicy::schedule(6).is_err());
        assert!(DeletionPolicy::schedule(31).is_err());
        assert_eq!(
            DeletionPolicy::parse("schedule", 7).unwrap(),
            DeletionPolicy::Schedule {
                recovery_window_days: 7
            }
        );
        assert_eq!(
            DeletionPolicy::parse("force", 0).unwrap(),
            DeletionPolicy::Force
        );
        assert!(DeletionPolicy::parse("maybe", 7).is_err());
    }
}
