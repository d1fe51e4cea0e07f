//! Where role_id and secret_id (or a wrapping token) are delivered:
//! the [`CredentialStore`] trait, [`Credentials`], and
//! [`DirectoryCredentialStore`].

use std::fmt;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::error::{Error, Result};

/// The resource that owns a role: a CloudFormation stack's logical resource.
/// Recorded with the delivered credentials; only the owner may change or
/// delete the role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Owner {
    /// The stack's id (an ARN).
    pub stack_id: String,
    /// The resource's logical id in that stack.
    pub logical_resource_id: String,
}

impl Owner {
    /// The resource `logical_resource_id` of the stack `stack_id`.
    pub fn new(stack_id: impl Into<String>, logical_resource_id: impl Into<String>) -> Self {
        Self {
            stack_id: stack_id.into(),
            logical_resource_id: logical_resource_id.into(),
        }
    }
}

impl fmt::Display for Owner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "resource {} of stack {}",
            self.logical_resource_id, self.stack_id
        )
    }
}

/// What a consumer needs to log in with AppRole.
///
/// Serialized as JSON `{role_id, secret_id | wrapping_token,
/// secret_id_accessor, vault_addr, mount, role, created_at}`. `Debug` redacts
/// the secret_id and the wrapping token.
#[derive(Clone)]
#[non_exhaustive]
pub struct Credentials {
    /// The role's role_id.
    pub role_id: String,
    /// The secret_id (shared delivery).
    pub secret_id: Option<SecretString>,
    /// A wrapping token holding a single-use secret_id (wrapped delivery).
    pub wrapping_token: Option<SecretString>,
    /// The secret_id's accessor (safe to log; used to destroy it on rotation).
    pub secret_id_accessor: String,
    /// The Vault address consumers should use.
    pub vault_addr: String,
    /// The AppRole mount.
    pub mount: String,
    /// The role name.
    pub role: String,
    /// When this delivery was made (RFC 3339).
    pub created_at: String,
    /// The resource that owns the role (absent for roles provisioned
    /// without one, e.g. by an older version or by a program).
    pub owner: Option<Owner>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("role_id", &self.role_id)
            .field("secret_id", &self.secret_id.as_ref().map(|_| "<redacted>"))
            .field(
                "wrapping_token",
                &self.wrapping_token.as_ref().map(|_| "<redacted>"),
            )
            .field("secret_id_accessor", &self.secret_id_accessor)
            .field("vault_addr", &self.vault_addr)
            .field("mount", &self.mount)
            .field("role", &self.role)
            .field("created_at", &self.created_at)
            .field("owner", &self.owner)
            .finish()
    }
}

#[derive(Serialize, Deserialize)]
struct Wire {
    role_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    secret_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    wrapping_token: Option<String>,
    #[serde(default)]
    secret_id_accessor: String,
    #[serde(default)]
    vault_addr: String,
    #[serde(default = "default_mount")]
    mount: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    created_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    owner: Option<Owner>,
}

fn default_mount() -> String {
    "approle".into()
}

impl Drop for Wire {
    fn drop(&mut self) {
        use zeroize::Zeroize;
        if let Some(s) = self.secret_id.as_mut() {
            s.zeroize();
        }
        if let Some(s) = self.wrapping_token.as_mut() {
            s.zeroize();
        }
    }
}

impl Credentials {
    /// Credentials with a plain (shared) secret_id.
    pub fn new(role: &str, role_id: &str, mount: &str, vault_addr: &str) -> Self {
        Self {
            role_id: role_id.to_owned(),
            secret_id: None,
            wrapping_token: None,
            secret_id_accessor: String::new(),
            vault_addr: vault_addr.to_owned(),
            mount: mount.to_owned(),
            role: role.to_owned(),
            created_at: now_rfc3339(),
            owner: None,
        }
    }

    /// Whether the secret_id is delivered wrapped.
    pub fn is_wrapped(&self) -> bool {
        self.wrapping_token.is_some()
    }

    /// The JSON document stored for consumers. Holds secrets: keep it in
    /// memory only as long as needed.
    pub fn to_json(&self) -> Zeroizing<Vec<u8>> {
        let wire = Wire {
            role_id: self.role_id.clone(),
            secret_id: self
                .secret_id
                .as_ref()
                .map(|s| s.expose_secret().to_owned()),
            wrapping_token: self
                .wrapping_token
                .as_ref()
                .map(|s| s.expose_secret().to_owned()),
            secret_id_accessor: self.secret_id_accessor.clone(),
            vault_addr: self.vault_addr.clone(),
            mount: self.mount.clone(),
            role: self.role.clone(),
            created_at: self.created_at.clone(),
            owner: self.owner.clone(),
        };
        Zeroizing::new(serde_json::to_vec_pretty(&wire).unwrap_or_default())
    }

    /// Parses the stored JSON document; `location` names it in errors.
    pub fn from_json(bytes: &[u8], location: &str) -> Result<Self> {
        let wire: Wire = serde_json::from_slice(bytes).map_err(|e| {
            // serde_json's message names the position, not the data.
            Error::store(
                location,
                format!("not a credentials document (role_id, secret_id or wrapping_token): line {} column {}", e.line(), e.column()),
                None,
            )
        })?;
        if wire.role_id.trim().is_empty() {
            return Err(Error::store(
                location,
                "the document has an empty role_id",
                None,
            ));
        }
        if wire.secret_id.is_none() && wire.wrapping_token.is_none() {
            return Err(Error::store(
                location,
                "the document has neither secret_id nor wrapping_token",
                None,
            ));
        }
        Ok(Self {
            role_id: wire.role_id.trim().to_owned(),
            secret_id: wire
                .secret_id
                .as_deref()
                .map(|s| SecretString::from(s.trim())),
            wrapping_token: wire
                .wrapping_token
                .as_deref()
                .map(|s| SecretString::from(s.trim())),
            secret_id_accessor: wire.secret_id_accessor.clone(),
            vault_addr: wire.vault_addr.clone(),
            mount: wire.mount.clone(),
            role: wire.role.clone(),
            created_at: wire.created_at.clone(),
            owner: wire.owner.clone(),
        })
    }
}

/// Now as RFC 3339 (UTC, seconds).
pub(crate) fn now_rfc3339() -> String {
    let secs = vault_client::clock::wall()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    rfc3339(secs)
}

/// Seconds since the Unix epoch of an RFC 3339 time such as
/// `2026-12-01T04:30:00.123456789Z` or `2026-12-01T05:30:00+01:00` (the
/// fraction is dropped); `None` when it is not one.
pub(crate) fn parse_rfc3339(s: &str) -> Option<i64> {
    let s = s.trim();
    let num = |range: std::ops::Range<usize>| -> Option<i64> {
        let part = s.get(range)?;
        part.bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    if s.len() < 20
        || s.as_bytes().get(4) != Some(&b'-')
        || s.as_bytes().get(10).map(u8::to_ascii_uppercase) != Some(b'T')
    {
        return None;
    }
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let mut rest = &s[19..];
    if let Some(fraction) = rest.strip_prefix('.') {
        let digits = fraction.bytes().take_while(u8::is_ascii_digit).count();
        rest = &fraction[digits..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            if rest.len() != 6 || rest.as_bytes()[3] != b':' {
                return None;
            }
            let h: i64 = rest[1..3].parse().ok()?;
            let m: i64 = rest[4..6].parse().ok()?;
            sign * (h * 3600 + m * 60)
        }
    };
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + hour * 3600 + minute * 60 + second - offset)
}

/// Seconds since the Unix epoch as RFC 3339 UTC (days to civil date after
/// Howard Hinnant's algorithm).
fn rfc3339(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Where credentials are delivered, keyed by role name.
///
/// Implementations must be idempotent: `delete` of something missing succeeds,
/// `put` replaces.
#[cfg_attr(any(test, feature = "test-util"), mockall::automock)]
#[async_trait]
pub trait CredentialStore: Send + Sync {
    /// Writes (replaces) the credentials of `role`.
    async fn put(&self, role: &str, credentials: &Credentials) -> Result<()>;
    /// Reads the credentials of `role`; `None` when there are none.
    async fn get(&self, role: &str) -> Result<Option<Credentials>>;
    /// Deletes the credentials of `role`; succeeds when there are none.
    async fn delete(&self, role: &str) -> Result<()>;
    /// The roles that have credentials in the store (what the scheduled
    /// rotation looks at). The default fails: the store cannot list.
    async fn list(&self) -> Result<Vec<String>> {
        Err(Error::Credentials(
            "this credential store cannot list the roles it holds".into(),
        ))
    }
    /// Where the credentials of `role` live, for humans (`s3://bucket/key`,
    /// a path). Not secret.
    fn location(&self, role: &str) -> String;
}

/// Credentials as files `<dir>/<role>.json`, mode 0600, written to a
/// temporary file and renamed (readers never see half a file).
#[derive(Debug, Clone)]
pub struct DirectoryCredentialStore {
    dir: PathBuf,
}

impl DirectoryCredentialStore {
    /// A store in `dir` (created with mode 0700 on first write).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    fn path(&self, role: &str) -> Result<PathBuf> {
        if !crate::spec::is_valid_role_name(role) {
            return Err(Error::invalid(
                "role name",
                "a Vault role name (letters, digits, '_', '-', '.')",
                format!("{role:?} cannot name a file"),
            ));
        }
        Ok(self.dir.join(format!("{role}.json")))
    }
}

fn io_error(path: &Path, what: &str, e: std::io::Error) -> Error {
    Error::store(
        path.display().to_string(),
        format!("cannot {what}: {e}"),
        Some(Box::new(e)),
    )
}

#[async_trait]
impl CredentialStore for DirectoryCredentialStore {
    async fn put(&self, role: &str, credentials: &Credentials) -> Result<()> {
        let path = self.path(role)?;
        let body = credentials.to_json();
        vault_client::write_private_file(&path, &body)
            .map_err(|e| io_error(&path, "write the credentials", e))
    }

    async fn get(&self, role: &str) -> Result<Option<Credentials>> {
        let path = self.path(role)?;
        match std::fs::read(&path) {
            Ok(bytes) => {
                let bytes = Zeroizing::new(bytes);
                Credentials::from_json(&bytes, &path.display().to_string()).map(Some)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_error(&path, "read the credentials", e)),
        }
    }

    async fn delete(&self, role: &str) -> Result<()> {
        let path = self.path(role)?;
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_error(&path, "delete the credentials", e)),
        }
    }

    async fn list(&self) -> Result<Vec<String>> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_error(&self.dir, "list the credentials", e)),
        };
        let mut roles: Vec<String> = entries
            .filter_map(|entry| entry.ok())
            .filter_map(|entry| {
                let name = entry.file_name().into_string().ok()?;
                let role = name.strip_suffix(".json")?;
                crate::spec::is_valid_role_name(role).then(|| role.to_owned())
            })
            .collect();
        roles.sort();
        Ok(roles)
    }

    fn location(&self, role: &str) -> String {
        self.dir.join(format!("{role}.json")).display().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn directory_store_round_trips_with_0600_and_deletes_idempotently() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let store = DirectoryCredentialStore::new(dir.path().join("creds"));
        assert!(store.get("shop").await.unwrap().is_none());
        let mut c = Credentials::new("shop", "rid-1", "approle", "http://v:8200");
        c.secret_id = Some(SecretString::from("sid-secret"));
        c.secret_id_accessor = "acc".into();
        store.put("shop", &c).await.unwrap();
        let path = dir.path().join("creds/shop.json");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let back = store.get("shop").await.unwrap().unwrap();
        assert_eq!(back.role_id, "rid-1");
        assert_eq!(
            back.secret_id.as_ref().unwrap().expose_secret(),
            "sid-secret"
        );
        assert!(!format!("{back:?}").contains("sid-secret"));
        store.delete("shop").await.unwrap();
        store.delete("shop").await.unwrap();
        assert!(store.get("shop").await.unwrap().is_none());
        assert!(store.put("../x", &c).await.is_err());
    }

    #[test]
    fn malformed_documents_are_clear_errors_without_content() {
        let err = Credentials::from_json(br#"{"role_id":"r"}"#, "here").unwrap_err();
        assert!(
            err.to_string()
                .contains("neither secret_id nor wrapping_token"),
            "{err}"
        );
        let err = Credentials::from_json(b"{\"secret_id\": \"topsecret\"", "here").unwrap_err();
        assert!(!err.to_string().contains("topsecret"), "{err}");
    }

    #[test]
    fn timestamps_are_rfc3339_utc() {
        assert_eq!(super::rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(super::rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(super::rfc3339(1_795_449_599), "2026-11-23T15:59:59Z");
        for secs in [0u64, 951_782_400, 1_795_449_599] {
            assert_eq!(
                super::parse_rfc3339(&super::rfc3339(secs)),
                Some(secs as i64)
            );
        }
        assert_eq!(
            super::parse_rfc3339("2026-11-23T16:59:59.123456789+01:00"),
            Some(1_795_449_599)
        );
        assert_eq!(
            super::parse_rfc3339("0001-01-01T00:00:00Z"),
            Some(-62_135_596_800)
        );
        for bad in [
            "",
            "2026-11-23",
            "2026-13-01T00:00:00Z",
            "2026-11-23T16:59:59+0100",
            "x026-11-23T16:59:59Z",
        ] {
            assert_eq!(super::parse_rfc3339(bad), None, "{bad}");
        }
    }
}
