//! [`Ec2Auth`]: the `ec2` login of Vault's `aws` auth method.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};
use vault_client::{AuthInfo, ConfigError, VaultAuth, VaultClient};

use crate::error::AwsAuthError;
use crate::hints::login_refused;
use crate::iam::DEFAULT_MOUNT;
use crate::imds::{DEFAULT_IMDS_ENDPOINT, Imds};
use vault_client::write_private_file;

/// Path of the PKCS7-signed instance identity document.
pub const PKCS7_PATH: &str = "/latest/dynamic/instance-identity/pkcs7";

/// Logs in with Vault's `aws` auth method, `ec2` type: sends the instance's
/// PKCS7-signed identity document from IMDSv2, and the nonce.
///
/// Vault answers the first login with a nonce (`auth.metadata.nonce`) and
/// requires it on every later login of the instance. `Ec2Auth` keeps it in
/// memory and, with [`nonce_file`](Ec2AuthBuilder::nonce_file), in a `0600`
/// file so a restarted process can log in again.
pub struct Ec2Auth {
    mount: String,
    role: Option<String>,
    imds: Imds,
    nonce_file: Option<PathBuf>,
    nonce: Mutex<Option<SecretString>>,
}

impl fmt::Debug for Ec2Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let has_nonce = self.nonce.lock().map(|n| n.is_some()).unwrap_or(false);
        f.debug_struct("Ec2Auth")
            .field("mount", &self.mount)
            .field("role", &self.role)
            .field("imds_endpoint", &self.imds.endpoint())
            .field("nonce_file", &self.nonce_file)
            .field("nonce", &if has_nonce { "<redacted>" } else { "<none>" })
            .finish()
    }
}

/// Builder of [`Ec2Auth`]; see [`Ec2Auth::builder`].
#[derive(Debug, Default)]
pub struct Ec2AuthBuilder {
    mount: Option<String>,
    role: Option<String>,
    imds_endpoint: Option<String>,
    nonce_file: Option<PathBuf>,
    nonce: Option<SecretString>,
    timeout: Option<Duration>,
}

impl Ec2AuthBuilder {
    /// Mount path of the aws auth method (default `aws`).
    pub fn mount(mut self, mount: impl Into<String>) -> Self {
        self.mount = Some(mount.into());
        self
    }
    /// The Vault role (Vault defaults to the AMI id when it is not sent).
    pub fn role(mut self, role: impl Into<String>) -> Self {
        self.role = Some(role.into());
        self
    }
    /// The IMDS base URL (default `http://169.254.169.254`).
    pub fn imds_endpoint(mut self, url: impl Into<String>) -> Self {
        self.imds_endpoint = Some(url.into());
        self
    }
    /// Keep the nonce in this file (mode 0600, written atomically), read at
    /// the first login when it exists.
    pub fn nonce_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.nonce_file = Some(path.into());
        self
    }
    /// A nonce chosen by the caller (sent from the first login on).
    pub fn nonce(mut self, nonce: SecretString) -> Self {
        self.nonce = Some(nonce);
        self
    }
    /// Timeout of each IMDS request (default 2 s).
    pub fn imds_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Checks the settings.
    pub fn build(self) -> Result<Ec2Auth, ConfigError> {
        let mount = self
            .mount
            .unwrap_or_else(|| DEFAULT_MOUNT.to_owned())
            .trim()
            .trim_matches('/')
            .to_owned();
        if mount.is_empty() || mount.contains(char::is_whitespace) || mount.contains("..") {
            return Err(ConfigError::invalid(
                "mount",
                "the mount path of the aws auth method, e.g. aws",
                "it is empty or contains spaces or ..",
            ));
        }
        let endpoint = self
            .imds_endpoint
            .unwrap_or_else(|| DEFAULT_IMDS_ENDPOINT.to_owned());
        let parsed = url::Url::parse(&endpoint).map_err(|e| {
            ConfigError::invalid(
                "imds_endpoint",
                "an http URL such as http://169.254.169.254",
                e.to_string(),
            )
        })?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
            return Err(ConfigError::invalid(
                "imds_endpoint",
                "an http URL such as http://169.254.169.254",
                "the scheme is not http(s) or the host is missing",
            ));
        }
        let imds = Imds::new(&endpoint, self.timeout.unwrap_or(Duration::from_secs(2)))
            .map_err(|e| ConfigError::Inconsistent(format!("cannot build the IMDS client: {e}")))?;
        Ok(Ec2Auth {
            mount,
            role: self
                .role
                .map(|r| r.trim().to_owned())
                .filter(|r| !r.is_empty()),
            imds,
            nonce_file: self.nonce_file,
            nonce: Mutex::new(self.nonce),
        })
    }
}

impl Ec2Auth {
    /// A builder; every setting has a default.
    pub fn builder() -> Ec2AuthBuilder {
        Ec2AuthBuilder::default()
    }

    /// Reads the configuration through `lookup`:
    ///
    /// | variable | meaning | default |
    /// |---|---|---|
    /// | `VAULT_AUTH_ROLE` | Vault role | the AMI id (Vault's default) |
    /// | `VAULT_AUTH_PROVIDER` | mount of the aws auth method | `aws` |
    /// | `VAULT_EC2_NONCE_FILE` | file keeping the nonce across restarts (0600) | memory only |
    /// | `AWS_EC2_METADATA_SERVICE_ENDPOINT` | IMDS base URL | `http://169.254.169.254` |
    pub fn from_lookup<F>(lookup: F) -> Result<Self, ConfigError>
    where
        F: Fn(&str) -> Option<String>,
    {
        let get = vault_client::trimmed(&lookup);
        let mut b = Self::builder();
        if let Some(r) = get("VAULT_AUTH_ROLE") {
            b = b.role(r);
        }
        if let Some(m) = get("VAULT_AUTH_PROVIDER") {
            b = b.mount(m);
        }
        if let Some(f) = get("VAULT_EC2_NONCE_FILE") {
            b = b.nonce_file(f);
        }
        if let Some(u) = get("AWS_EC2_METADATA_SERVICE_ENDPOINT") {
            b = b.imds_endpoint(u);
        }
        b.build().map_err(|e| match e.variable() {
            Some("mount") => e.for_variable("VAULT_AUTH_PROVIDER"),
            Some("imds_endpoint") => e.for_variable("AWS_EC2_METADATA_SERVICE_ENDPOINT"),
            _ => e,
        })
    }

    /// The mount path.
    pub fn mount(&self) -> &str {
        &self.mount
    }

    /// Fetches the PKCS7 identity document through IMDSv2, newlines removed.
    pub async fn pkcs7(&self) -> Result<String, AwsAuthError> {
        let body = self.imds.get(PKCS7_PATH, "the identity document").await?;
        let pkcs7: String = body.chars().filter(|c| *c != '\n' && *c != '\r').collect();
        if pkcs7.trim().is_empty() {
            return Err(AwsAuthError::Imds {
                endpoint: self.imds.endpoint().to_owned(),
                problem: "the identity document is empty".to_owned(),
                source: None,
            });
        }
        Ok(pkcs7)
    }

    fn current_nonce(&self) -> Result<Option<SecretString>, AwsAuthError> {
        if let Ok(n) = self.nonce.lock()
            && n.is_some()
        {
            return Ok(n.clone());
        }
        let Some(path) = &self.nonce_file else {
            return Ok(None);
        };
        match std::fs::read_to_string(path) {
            Ok(text) if !text.trim().is_empty() => {
                let nonce = SecretString::from(text.trim().to_owned());
                if let Ok(mut n) = self.nonce.lock() {
                    *n = Some(nonce.clone());
                }
                Ok(Some(nonce))
            }
            Ok(_) => Ok(None),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(AwsAuthError::File {
                what: "cannot read the EC2 nonce file",
                path: path.clone(),
                problem: e.to_string(),
            }),
        }
    }

    fn remember_nonce(&self, nonce: &str) -> Result<(), AwsAuthError> {
        if let Ok(mut n) = self.nonce.lock() {
            *n = Some(SecretString::from(nonce.to_owned()));
        }
        if let Some(path) = &self.nonce_file {
            write_private_file(path, nonce.as_bytes()).map_err(|e| AwsAuthError::File {
                what: "cannot write the EC2 nonce file",
                path: path.clone(),
                problem: e.to_string(),
            })?;
        }
        Ok(())
    }

    /// The nonce file, if one is configured.
    pub fn nonce_file(&self) -> Option<&Path> {
        self.nonce_file.as_deref()
    }
}

#[async_trait]
impl VaultAuth for Ec2Auth {
    async fn login(&self, client: &VaultClient) -> vault_client::Result<AuthInfo> {
        let pkcs7 = self.pkcs7().await.map_err(|e| e.into_vault_error("ec2"))?;
        let nonce = self
            .current_nonce()
            .map_err(|e| e.into_vault_error("ec2"))?;
        let mut body = serde_json::json!({ "pkcs7": pkcs7 });
        if let Some(role) = &self.role {
            body["role"] = serde_json::Value::String(role.clone());
        }
        if let Some(n) = &nonce {
            body["nonce"] = serde_json::Value::String(n.expose_secret().to_owned());
        }
        let auth = client.login(&self.mount, &body).await.map_err(|e| {
            login_refused(
                "ec2",
                &self.mount,
                self.role.as_deref().unwrap_or("<ami id>"),
                e,
            )
        })?;
        if nonce.is_none()
            && let Some(n) = auth.metadata.get("nonce")
        {
            self.remember_nonce(n)
                .map_err(|e| e.into_vault_error("ec2"))?;
        }
        Ok(auth)
    }

    fn method(&self) -> &'static str {
        "ec2"
    }
}
