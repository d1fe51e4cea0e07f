//! Logging in: [`AppRoleAuth`] (the consumer) and [`S3TokenAuth`] (an
//! orchestrator token kept in S3).

use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;
#[cfg(feature = "s3")]
use vault_client::TokenAuth;
use vault_client::{AuthInfo, VaultAuth, VaultClient};
use zeroize::Zeroizing;

use crate::error::Error;
#[cfg(feature = "s3")]
use crate::s3::{S3Access, S3CredentialStore};
use crate::store::CredentialStore;

const METHOD: &str = "approle";

/// Where [`AppRoleAuth`] gets role_id and secret_id.
#[derive(Clone)]
enum Source {
    Values {
        role_id: String,
        secret: Secret,
    },
    Files {
        role_id: RoleId,
        secret_id_file: Option<PathBuf>,
        wrapped: bool,
    },
    Store {
        store: Arc<dyn CredentialStore>,
        role: String,
    },
}

#[derive(Clone)]
enum RoleId {
    Value(String),
    File(PathBuf),
}

#[derive(Clone)]
enum Secret {
    None,
    Plain(SecretString),
    Wrapped(SecretString),
}

/// AppRole login (`auth/<mount>/login`) with role_id and secret_id from
/// values, files, or a [`CredentialStore`] (read afresh on every login, so a
/// rotated secret_id is picked up).
///
/// A wrapped secret_id (a wrapping token) is checked
/// (`sys/wrapping/lookup`: it must come from `auth/<mount>/role/*/secret-id`)
/// and unwrapped once. A wrapping token is never unwrapped twice: a re-login
/// after it was used needs a fresh delivery and fails with a clear error.
///
/// A role_id/secret_id pair that Vault refused is never sent again: a later
/// login with the same values fails at once without calling Vault (each
/// refused attempt counts towards the AppRole user lockout, which would then
/// refuse even the right secret_id for 15 minutes). A login with changed
/// values (a rotated file or delivery) goes to Vault as usual.
pub struct AppRoleAuth {
    mount: String,
    source: Source,
    used_wrapping_tokens: Mutex<Vec<SecretString>>,
    refused: Mutex<Option<Refused>>,
}

/// Credentials Vault refused, and what it said.
struct Refused {
    mount: String,
    role_id: Zeroizing<String>,
    secret_id: Option<SecretString>,
    reason: String,
}

impl Refused {
    fn matches(&self, mount: &str, role_id: &str, secret_id: Option<&SecretString>) -> bool {
        let same_secret = match (&self.secret_id, secret_id) {
            (None, None) => true,
            (Some(a), Some(b)) => bool::from(
                a.expose_secret()
                    .as_bytes()
                    .ct_eq(b.expose_secret().as_bytes()),
            ),
            _ => false,
        };
        self.mount == mount && self.role_id.as_str() == role_id && same_secret
    }
}

impl fmt::Debug for AppRoleAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let source = match &self.source {
            Source::Values { .. } => "values <redacted>".to_owned(),
            Source::Files {
                role_id,
                secret_id_file,
                ..
            } => format!(
                "files {} {}",
                match role_id {
                    RoleId::Value(_) => "(role_id value)".to_owned(),
                    RoleId::File(p) => p.display().to_string(),
                },
                secret_id_file
                    .as_ref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default()
            ),
            Source::Store { store, role } => format!("store {}", store.location(role)),
        };
        f.debug_struct("AppRoleAuth")
            .field("mount", &self.mount)
            .field("source", &source)
            .finish()
    }
}

fn auth_err(
    message: impl Into<String>,
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
) -> vault_client::Error {
    vault_client::Error::auth(METHOD, message, source)
}

impl AppRoleAuth {
    fn with(mount: &str, source: Source) -> Self {
        Self {
            mount: mount.trim_matches('/').to_owned(),
            source,
            used_wrapping_tokens: Mutex::new(Vec::new()),
            refused: Mutex::new(None),
        }
    }

    /// A role_id and a plain secret_id (`None` for roles without
    /// `bind_secret_id`).
    pub fn new(mount: &str, role_id: impl Into<String>, secret_id: Option<SecretString>) -> Self {
        let secret = secret_id.map_or(Secret::None, Secret::Plain);
        Self::with(
            mount,
            Source::Values {
                role_id: role_id.into(),
                secret,
            },
        )
    }

    /// A role_id and a wrapping token holding the secret_id.
    pub fn wrapped(mount: &str, role_id: impl Into<String>, wrapping_token: SecretString) -> Self {
        Self::with(
            mount,
            Source::Values {
                role_id: role_id.into(),
                secret: Secret::Wrapped(wrapping_token),
            },
        )
    }

    /// Files read on every login: the role_id, and the secret_id (or a
    /// wrapping token when `wrapped`).
    pub fn from_files(
        mount: &str,
        role_id_file: impl Into<PathBuf>,
        secret_id_file: Option<PathBuf>,
        wrapped: bool,
    ) -> Self {
        Self::with(
            mount,
            Source::Files {
                role_id: RoleId::File(role_id_file.into()),
                secret_id_file,
                wrapped,
            },
        )
    }

    /// The credentials delivered for `role` in `store`; the mount written in
    /// the credentials wins over `mount`.
    pub fn from_store(
        mount: &str,
        store: Arc<dyn CredentialStore>,
        role: impl Into<String>,
    ) -> Self {
        Self::with(
            mount,
            Source::Store {
                store,
                role: role.into(),
            },
        )
    }

    /// Reads the configuration through `lookup` (tests never touch the
    /// process environment):
    ///
    /// | variable | meaning | default |
    /// |---|---|---|
    /// | `VAULT_APPROLE_MOUNT` | AppRole mount | `approle` |
    /// | `VAULT_ROLE_ID` / `VAULT_ROLE_ID_FILE` | role_id, or a file holding it | — |
    /// | `VAULT_SECRET_ID` / `VAULT_SECRET_ID_FILE` | secret_id, or a file holding it | none (`bind_secret_id=false`) |
    /// | `VAULT_SECRET_ID_WRAPPED` | `true`: the secret_id value/file is a wrapping token | `false` |
    /// | `VAULT_APPROLE_S3_BUCKET` + `VAULT_APPROLE_ROLE` | read the delivered credentials of that role from S3 (with `VAULT_APPROLE_S3_PREFIX`, `AWS_ENDPOINT_URL_S3`) | — |
    ///
    /// A role_id (value or file) wins over S3.
    pub fn from_lookup<F>(lookup: F) -> Result<Self, Error>
    where
        F: Fn(&str) -> Option<String>,
    {
        let get = vault_client::trimmed(&lookup);
        let mount = get("VAULT_APPROLE_MOUNT").unwrap_or_else(|| "approle".into());
        let wrapped = match get("VAULT_SECRET_ID_WRAPPED") {
            Some(raw) => vault_client::parse_bool("VAULT_SECRET_ID_WRAPPED", &raw)?,
            None => false,
        };
        if let Some(role_id) = get("VAULT_ROLE_ID") {
            let secret = match (get("VAULT_SECRET_ID"), get("VAULT_SECRET_ID_FILE")) {
                (Some(s), _) if wrapped => Secret::Wrapped(SecretString::from(s)),
                (Some(s), _) => Secret::Plain(SecretString::from(s)),
                (None, Some(file)) => {
                    return Ok(Self::with(
                        &mount,
                        Source::Files {
                            role_id: RoleId::Value(role_id),
                            secret_id_file: Some(PathBuf::from(file)),
                            wrapped,
                        },
                    ));
                }
                (None, None) => Secret::None,
            };
            return Ok(Self::with(&mount, Source::Values { role_id, secret }));
        }
        if let Some(file) = get("VAULT_ROLE_ID_FILE") {
            if get("VAULT_SECRET_ID").is_some() {
                return Err(Error::invalid(
                    "VAULT_SECRET_ID",
                    "VAULT_SECRET_ID_FILE with VAULT_ROLE_ID_FILE, or VAULT_SECRET_ID with VAULT_ROLE_ID",
                    "it is set together with VAULT_ROLE_ID_FILE",
                ));
            }
            return Ok(Self::from_files(
                &mount,
                file,
                get("VAULT_SECRET_ID_FILE").map(PathBuf::from),
                wrapped,
            ));
        }
        #[cfg(not(feature = "s3"))]
        if get("VAULT_APPROLE_S3_BUCKET").is_some() {
            return Err(Error::invalid(
                "VAULT_APPROLE_S3_BUCKET",
                "VAULT_ROLE_ID or VAULT_ROLE_ID_FILE, or a build with the `s3` feature",
                "this binary was built without S3 support (vault-approle feature `s3`)",
            ));
        }
        #[cfg(feature = "s3")]
        if get("VAULT_APPROLE_S3_BUCKET").is_some() {
            let role = get("VAULT_APPROLE_ROLE").ok_or_else(|| {
                Error::invalid(
                    "VAULT_APPROLE_ROLE",
                    "the Vault role name whose credentials are in VAULT_APPROLE_S3_BUCKET",
                    "it is not set",
                )
            })?;
            let store = S3CredentialStore::from_lookup(&lookup)?;
            return Ok(Self::from_store(&mount, Arc::new(store), role));
        }
        Err(Error::invalid(
            "VAULT_ROLE_ID",
            "an AppRole role_id (value or file) or the S3 location of delivered credentials",
            "neither VAULT_ROLE_ID, VAULT_ROLE_ID_FILE nor VAULT_APPROLE_S3_BUCKET is set",
        ))
    }

    /// Resolves role_id, secret and mount for one login.
    async fn resolve(&self) -> vault_client::Result<(String, Secret, String, String)> {
        let read = |path: &PathBuf, what: &str| -> vault_client::Result<Zeroizing<String>> {
            std::fs::read_to_string(path)
                .map(|s| Zeroizing::new(s.trim().to_owned()))
                .map_err(|e| {
                    auth_err(
                        format!("cannot read the {what} file {}: {e}", path.display()),
                        None,
                    )
                })
        };
        match &self.source {
            Source::Values { role_id, secret } => Ok((
                role_id.clone(),
                secret.clone(),
                self.mount.clone(),
                "the configured values".into(),
            )),
            Source::Files {
                role_id,
                secret_id_file,
                wrapped,
            } => {
                let role_id = match role_id {
                    RoleId::Value(value) => value.clone(),
                    RoleId::File(path) => read(path, "role_id")?.to_string(),
                };
                let secret = match secret_id_file {
                    None => Secret::None,
                    Some(p) => {
                        let s = SecretString::from(read(p, "secret_id")?.as_str());
                        if *wrapped {
                            Secret::Wrapped(s)
                        } else {
                            Secret::Plain(s)
                        }
                    }
                };
                let where_ = secret_id_file
                    .as_ref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_else(|| "the role_id file".into());
                Ok((role_id, secret, self.mount.clone(), where_))
            }
            Source::Store { store, role } => {
                let location = store.location(role);
                let creds = store
                    .get(role)
                    .await
                    .map_err(|e| auth_err(format!("cannot read the delivered credentials: {e}"), Some(Box::new(e))))?
                    .ok_or_else(|| {
                        auth_err(
                            format!("no credentials delivered at {location} (is the role provisioned, and is this the right IAM role?)"),
                            None,
                        )
                    })?;
                let secret = match (creds.secret_id.clone(), creds.wrapping_token.clone()) {
                    (Some(s), _) => Secret::Plain(s),
                    (None, Some(w)) => Secret::Wrapped(w),
                    (None, None) => Secret::None,
                };
                let mount = if creds.mount.trim().is_empty() {
                    self.mount.clone()
                } else {
                    creds.mount.trim_matches('/').to_owned()
                };
                Ok((creds.role_id.clone(), secret, mount, location))
            }
        }
    }

    async fn unwrap_secret_id(
        &self,
        client: &VaultClient,
        mount: &str,
        token: &SecretString,
        location: &str,
    ) -> vault_client::Result<SecretString> {
        let already_used = self
            .used_wrapping_tokens
            .lock()
            .map(|used| {
                used.iter().any(|u| {
                    bool::from(
                        u.expose_secret()
                            .as_bytes()
                            .ct_eq(token.expose_secret().as_bytes()),
                    )
                })
            })
            .unwrap_or(false);
        if already_used {
            return Err(auth_err(
                format!(
                    "the wrapped secret_id from {location} was already unwrapped and used; a new login needs a fresh delivery (rotate the secret_id)"
                ),
                None,
            ));
        }
        let lookup = client.without_token().wrap_lookup(token).await.map_err(|e| {
            auth_err(
                format!("the wrapping token from {location} is invalid, expired or already used; a fresh delivery is needed"),
                Some(Box::new(e)),
            )
        })?;
        let expected_prefix = format!("auth/{mount}/role/");
        if !(lookup.creation_path.starts_with(&expected_prefix)
            && lookup.creation_path.ends_with("/secret-id"))
        {
            return Err(auth_err(
                format!(
                    "the wrapping token from {location} was created by {:?}, not by {expected_prefix}<role>/secret-id; refusing to unwrap it",
                    lookup.creation_path
                ),
                None,
            ));
        }
        #[derive(serde::Deserialize)]
        struct Data {
            secret_id: SecretString,
        }
        let response = client
            .without_token()
            .unwrap::<Data>(token)
            .await
            .map_err(|e| {
                auth_err(
                    format!("cannot unwrap the secret_id from {location}"),
                    Some(Box::new(e)),
                )
            })?;
        if let Ok(mut used) = self.used_wrapping_tokens.lock() {
            used.push(token.clone());
        }
        response.data.map(|d| d.secret_id).ok_or_else(|| {
            auth_err(
                format!("the wrapped response from {location} holds no secret_id"),
                None,
            )
        })
    }
}

/// Whether Vault refused the secret_id itself (expired, destroyed by a
/// rotation, used up): OpenBao says "invalid secret id", Vault "invalid role
/// or secret ID".
fn is_secret_id_refusal(e: &vault_client::Error) -> bool {
    let text = e.to_string().to_ascii_lowercase();
    (e.status() == Some(400) || e.is_permission_denied()) && text.contains("secret id")
}

fn same_secret(a: &Secret, b: &Secret) -> bool {
    match (a, b) {
        (Secret::None, Secret::None) => true,
        (Secret::Plain(x), Secret::Plain(y)) | (Secret::Wrapped(x), Secret::Wrapped(y)) => {
            bool::from(
                x.expose_secret()
                    .as_bytes()
                    .ct_eq(y.expose_secret().as_bytes()),
            )
        }
        _ => false,
    }
}

#[async_trait]
impl VaultAuth for AppRoleAuth {
    /// Reads the credentials (from the store or files: at every login, so a
    /// rotation is picked up) and logs in. When Vault refuses the secret_id
    /// and the source then holds a different one (a rotation in between),
    /// it retries once with that one; never more, so repeated refusals do
    /// not trip Vault's AppRole lockout.
    async fn login(&self, client: &VaultClient) -> vault_client::Result<AuthInfo> {
        let (role_id, secret, mount, location) = self.resolve().await?;
        let first = self
            .login_with(client, &role_id, secret.clone(), &mount, &location)
            .await;
        match first {
            Err(Attempt::Refused(e)) if !matches!(self.source, Source::Values { .. }) => {
                let (role_id2, secret2, mount2, location2) = self.resolve().await?;
                if role_id2 == role_id && same_secret(&secret, &secret2) {
                    return Err(e);
                }
                tracing::info!(location = %location2, "the secret_id was refused and the credentials changed meanwhile: retrying once with the new ones");
                self.login_with(client, &role_id2, secret2, &mount2, &location2)
                    .await
                    .map_err(Attempt::into_error)
            }
            other => other.map_err(Attempt::into_error),
        }
    }

    fn method(&self) -> &'static str {
        METHOD
    }
}

/// A failed login: refused for the secret_id (worth one re-read) or not.
enum Attempt {
    Refused(vault_client::Error),
    Other(vault_client::Error),
}

impl Attempt {
    fn into_error(self) -> vault_client::Error {
        match self {
            Self::Refused(e) | Self::Other(e) => e,
        }
    }
}

impl AppRoleAuth {
    async fn login_with(
        &self,
        client: &VaultClient,
        role_id: &str,
        secret: Secret,
        mount: &str,
        location: &str,
    ) -> Result<AuthInfo, Attempt> {
        let secret_id = match secret {
            Secret::None => None,
            Secret::Plain(s) => Some(s),
            Secret::Wrapped(token) => Some(
                self.unwrap_secret_id(client, mount, &token, location)
                    .await
                    .map_err(Attempt::Other)?,
            ),
        };
        if let Ok(refused) = self.refused.lock()
            && let Some(r) = refused.as_ref()
            && r.matches(mount, role_id, secret_id.as_ref())
        {
            return Err(Attempt::Other(auth_err(
                format!(
                    "not sending the role_id/secret_id from {location} again: vault refused them before ({}); \
                     a refused secret_id sent again counts towards the AppRole lockout; deliver a new secret_id",
                    r.reason
                ),
                None,
            )));
        }
        let result = client
            .approle(mount)
            .login(role_id, secret_id.as_ref())
            .await;
        match result {
            Ok(auth) => {
                if let Ok(mut refused) = self.refused.lock() {
                    *refused = None;
                }
                Ok(auth)
            }
            Err(e) => {
                let refused_by_vault = e.status() == Some(400) || e.is_permission_denied();
                let secret_id_refused = is_secret_id_refusal(&e);
                let message = if refused_by_vault {
                    format!(
                        "vault refused the role_id/secret_id from {location} (expired, used up, destroyed by a rotation, or bound to other CIDRs)"
                    )
                } else {
                    format!("cannot log in with the credentials from {location}")
                };
                if refused_by_vault && let Ok(mut refused) = self.refused.lock() {
                    *refused = Some(Refused {
                        mount: mount.to_owned(),
                        role_id: Zeroizing::new(role_id.to_owned()),
                        secret_id: secret_id.clone(),
                        reason: e.to_string(),
                    });
                }
                let e = auth_err(message, Some(Box::new(e)));
                if secret_id_refused {
                    Err(Attempt::Refused(e))
                } else {
                    Err(Attempt::Other(e))
                }
            }
        }
    }
}

#[cfg(feature = "s3")]
/// An existing Vault token kept in an S3 object (the original orchestrator's
/// way), read on every login and checked with `auth/token/lookup-self`.
#[derive(Clone)]
pub struct S3TokenAuth {
    access: S3Access,
    bucket: String,
    key: String,
}

#[cfg(feature = "s3")]
impl fmt::Debug for S3TokenAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "S3TokenAuth(s3://{}/{})", self.bucket, self.key)
    }
}

#[cfg(feature = "s3")]
impl S3TokenAuth {
    /// The token in `s3://bucket/key`.
    pub fn new(access: S3Access, bucket: impl Into<String>, key: impl Into<String>) -> Self {
        Self {
            access,
            bucket: bucket.into(),
            key: key.into(),
        }
    }

    /// `VAULT_TOKEN_S3_BUCKET` and `VAULT_TOKEN_S3_KEY` (both required), with
    /// the endpoint variables of [`S3Access::from_lookup`].
    pub fn from_lookup<F>(lookup: F) -> Result<Self, Error>
    where
        F: Fn(&str) -> Option<String>,
    {
        let get = vault_client::trimmed(&lookup);
        let bucket = get("VAULT_TOKEN_S3_BUCKET").ok_or_else(|| {
            Error::invalid(
                "VAULT_TOKEN_S3_BUCKET",
                "the bucket of the token object",
                "it is not set",
            )
        })?;
        let key = get("VAULT_TOKEN_S3_KEY").ok_or_else(|| {
            Error::invalid(
                "VAULT_TOKEN_S3_KEY",
                "the key of the token object",
                "it is not set",
            )
        })?;
        Ok(Self::new(
            S3Access::from_lookup(&lookup),
            bucket,
            key.trim_start_matches('/'),
        ))
    }
}

#[cfg(feature = "s3")]
#[async_trait]
impl VaultAuth for S3TokenAuth {
    async fn login(&self, client: &VaultClient) -> vault_client::Result<AuthInfo> {
        let location = format!("s3://{}/{}", self.bucket, self.key);
        let bytes = self
            .access
            .get(&self.bucket, &self.key)
            .await
            .map_err(|e| {
                vault_client::Error::auth(
                    "s3-token",
                    format!("cannot read the token: {e}"),
                    Some(Box::new(e)),
                )
            })?
            .ok_or_else(|| {
                vault_client::Error::auth(
                    "s3-token",
                    format!("no token object at {location}"),
                    None,
                )
            })?;
        let text = Zeroizing::new(String::from_utf8_lossy(&bytes).trim().to_owned());
        if text.is_empty() || !text.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(vault_client::Error::auth(
                "s3-token",
                format!(
                    "the object at {location} does not hold a token (empty, or spaces/non-ASCII)"
                ),
                None,
            ));
        }
        TokenAuth::new(SecretString::from(text.as_str()))
            .login(client)
            .await
            .map_err(|e| {
                vault_client::Error::auth(
                    "s3-token",
                    format!("the token from {location} was not accepted"),
                    Some(Box::new(e)),
                )
            })
    }

    fn method(&self) -> &'static str {
        "s3-token"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_lookup_picks_values_files_or_s3_and_names_what_is_missing() {
        let a = AppRoleAuth::from_lookup(|k| match k {
            "VAULT_ROLE_ID" => Some("rid".into()),
            "VAULT_SECRET_ID" => Some("sid-secret".into()),
            _ => None,
        })
        .unwrap();
        let dbg = format!("{a:?}");
        assert!(
            dbg.contains("values <redacted>") && !dbg.contains("sid-secret"),
            "{dbg}"
        );
        let b = AppRoleAuth::from_lookup(|k| match k {
            "VAULT_ROLE_ID_FILE" => Some("/run/rid".into()),
            "VAULT_SECRET_ID_FILE" => Some("/run/sid".into()),
            "VAULT_APPROLE_MOUNT" => Some("ar2".into()),
            _ => None,
        })
        .unwrap();
        assert!(format!("{b:?}").contains("/run/sid"));
        assert_eq!(b.mount, "ar2");
        #[cfg(feature = "s3")]
        let c = AppRoleAuth::from_lookup(|k| match k {
            "VAULT_APPROLE_S3_BUCKET" => Some("creds-bucket".into()),
            "VAULT_APPROLE_ROLE" => Some("shop".into()),
            _ => None,
        })
        .unwrap();
        #[cfg(feature = "s3")]
        assert!(
            format!("{c:?}").contains("s3://creds-bucket/vault/approle/shop"),
            "{c:?}"
        );
        let err =
            AppRoleAuth::from_lookup(|k| (k == "VAULT_APPROLE_S3_BUCKET").then(|| "b-1".into()))
                .unwrap_err();
        #[cfg(feature = "s3")]
        assert!(err.to_string().contains("VAULT_APPROLE_ROLE"), "{err}");
        #[cfg(not(feature = "s3"))]
        assert!(err.to_string().contains("without S3 support"), "{err}");
        let err = AppRoleAuth::from_lookup(|_| None).unwrap_err();
        assert!(err.to_string().contains("neither VAULT_ROLE_ID"), "{err}");
        let err = AppRoleAuth::from_lookup(|k| match k {
            "VAULT_ROLE_ID" => Some("r".into()),
            "VAULT_SECRET_ID_WRAPPED" => Some("maybe".into()),
            _ => None,
        })
        .unwrap_err();
        assert!(err.to_string().contains("VAULT_SECRET_ID_WRAPPED"), "{err}");
    }

    #[tokio::test]
    async fn a_store_without_credentials_is_a_clear_login_error() {
        let mut store = crate::store::MockCredentialStore::new();
        store.expect_get().times(1).returning(|_| Ok(None));
        store.expect_location().returning(|r| format!("mock://{r}"));
        let auth = AppRoleAuth::from_store("approle", Arc::new(store), "shop");
        let client =
            VaultClient::new(vault_client::ClientConfig::new("http://127.0.0.1:1").unwrap())
                .unwrap();
        let err = auth.login(&client).await.unwrap_err().to_string();
        assert!(
            err.contains("no credentials delivered at mock://shop"),
            "{err}"
        );
    }
}
