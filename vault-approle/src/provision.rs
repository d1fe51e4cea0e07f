//! The trusted orchestrator: [`Provisioner`] creates, updates, rotates and
//! deletes a service's AppRole and delivers its credentials.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use vault_client::{GeneratedSecretId, Method, SecretIdRequest, VaultAuth, VaultClient};

use crate::error::{Error, Result};
use crate::spec::{DeliveryMode, RoleSpec, is_valid_role_name};
use crate::store::{CredentialStore, Credentials, now_rfc3339};

/// Default time between delivering a new secret_id and destroying the old one.
pub const DEFAULT_ROTATION_GRACE: Duration = Duration::from_secs(10);
/// Default TTL of the wrapping token of a wrapped secret_id.
pub const DEFAULT_WRAP_TTL: Duration = Duration::from_secs(3600);

/// Settings of a [`Provisioner`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ProvisionerOptions {
    /// AppRole mount (default `approle`).
    pub mount: String,
    /// Wait between writing a new secret_id to the store and destroying the
    /// old one, so consumers reading the old object can still log in
    /// (default 10 s).
    pub rotation_grace: Duration,
    /// TTL of wrapping tokens (default 1 h).
    pub wrap_ttl: Duration,
    /// The Vault address written into the credentials for consumers
    /// (default: the orchestrator's own address).
    pub consumer_vault_addr: Option<String>,
}

impl Default for ProvisionerOptions {
    fn default() -> Self {
        Self {
            mount: "approle".into(),
            rotation_grace: DEFAULT_ROTATION_GRACE,
            wrap_ttl: DEFAULT_WRAP_TTL,
            consumer_vault_addr: None,
        }
    }
}

impl ProvisionerOptions {
    /// Sets the mount.
    pub fn mount(mut self, mount: impl Into<String>) -> Self {
        self.mount = mount.into().trim_matches('/').to_owned();
        self
    }
    /// Sets the rotation grace period.
    pub fn rotation_grace(mut self, grace: Duration) -> Self {
        self.rotation_grace = grace;
        self
    }
    /// Sets the wrapping TTL.
    pub fn wrap_ttl(mut self, ttl: Duration) -> Self {
        self.wrap_ttl = ttl;
        self
    }
    /// Sets the address consumers use.
    pub fn consumer_vault_addr(mut self, addr: impl Into<String>) -> Self {
        self.consumer_vault_addr = Some(addr.into());
        self
    }
}

/// The outcome of provisioning: what CloudFormation reports as `Data`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Provisioned {
    /// The Vault role name.
    pub role_name: String,
    /// The role_id (not secret on its own).
    pub role_id: String,
    /// Where the credentials were delivered.
    pub location: String,
    /// Accessor of the delivered secret_id.
    pub secret_id_accessor: String,
    /// Whether a new secret_id was delivered (false when valid credentials
    /// were already in place).
    pub delivered: bool,
}

/// Creates, updates, rotates and deletes AppRoles, authenticating to Vault
/// with any [`VaultAuth`] (AWS IAM, a token from S3, `VAULT_TOKEN`).
///
/// Every operation is idempotent: running it again after a success (or a
/// partial failure) converges to the same state.
pub struct Provisioner {
    client: VaultClient,
    auth: Arc<dyn VaultAuth>,
    store: Arc<dyn CredentialStore>,
    options: ProvisionerOptions,
}

impl std::fmt::Debug for Provisioner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Provisioner")
            .field("client", &self.client)
            .field("auth", &self.auth.method())
            .field("options", &self.options)
            .finish()
    }
}

impl Provisioner {
    /// A provisioner talking to `client`'s Vault, logging in with `auth`
    /// before each operation, delivering into `store`.
    pub fn new(
        client: VaultClient,
        auth: Arc<dyn VaultAuth>,
        store: Arc<dyn CredentialStore>,
        options: ProvisionerOptions,
    ) -> Self {
        Self {
            client,
            auth,
            store,
            options,
        }
    }

    /// The credential store.
    pub fn store(&self) -> &Arc<dyn CredentialStore> {
        &self.store
    }

    /// The options.
    pub fn options(&self) -> &ProvisionerOptions {
        &self.options
    }

    async fn admin(&self) -> Result<VaultClient> {
        let auth = self.auth.login(&self.client).await?;
        Ok(self.client.with_token(auth.client_token))
    }

    async fn ensure_policies(&self, admin: &VaultClient, spec: &RoleSpec) -> Result<()> {
        for policy in spec.policies() {
            if admin.read_policy(&policy).await?.is_none() {
                return Err(Error::PolicyMissing(policy));
            }
        }
        Ok(())
    }

    async fn write_role(&self, admin: &VaultClient, name: &str, spec: &RoleSpec) -> Result<()> {
        // Every field is sent, so an update also clears what was removed.
        let body = json!({
            "token_policies": spec.policies(),
            "token_ttl": spec.token_ttl.as_secs(),
            "token_max_ttl": spec.token_max_ttl.as_secs(),
            "secret_id_ttl": spec.secret_id_ttl.as_secs(),
            "secret_id_num_uses": spec.secret_id_num_uses,
            "secret_id_bound_cidrs": spec.secret_id_bound_cidrs,
            "token_bound_cidrs": spec.token_bound_cidrs,
            "bind_secret_id": true,
        });
        admin
            .request(
                Method::POST,
                &format!("auth/{}/role/{name}", self.options.mount),
            )
            .json(&body)
            .send()
            .await?;
        Ok(())
    }

    fn consumer_addr(&self) -> String {
        self.options.consumer_vault_addr.clone().unwrap_or_else(|| {
            self.client
                .address()
                .as_str()
                .trim_end_matches('/')
                .to_owned()
        })
    }

    /// Generates a secret_id per the spec's delivery mode and writes it to
    /// the store. Returns the new accessor.
    async fn deliver(
        &self,
        admin: &VaultClient,
        name: &str,
        role_id: &str,
        spec: &RoleSpec,
    ) -> Result<String> {
        let metadata = HashMap::from([
            ("service".to_owned(), spec.service.clone()),
            ("environment".to_owned(), spec.environment.clone()),
            ("iam_role".to_owned(), spec.iam_role.clone()),
            ("managed_by".to_owned(), "vault-aws".to_owned()),
        ]);
        let request = SecretIdRequest {
            metadata,
            num_uses: (spec.delivery == DeliveryMode::Wrapped).then_some(1),
            wrap_ttl: (spec.delivery == DeliveryMode::Wrapped).then_some(self.options.wrap_ttl),
            ..SecretIdRequest::default()
        };
        // Not retried: a retried POST could mint a second, unknown secret_id.
        let generated = admin
            .approle(&self.options.mount)
            .generate_secret_id(name, &request)
            .await?;
        let mut creds = Credentials::new(name, role_id, &self.options.mount, &self.consumer_addr());
        creds.created_at = now_rfc3339();
        creds.secret_id_accessor = generated.accessor().to_owned();
        match generated {
            GeneratedSecretId::Plain(s) => creds.secret_id = Some(s.secret_id),
            GeneratedSecretId::Wrapped(w) => creds.wrapping_token = Some(w.token),
            _ => {
                return Err(Error::Credentials(
                    "vault returned an unknown kind of secret_id".into(),
                ));
            }
        }
        if let Err(e) = self.store.put(name, &creds).await {
            // Do not leave a live secret_id that nobody knows of.
            let _ = admin
                .approle(&self.options.mount)
                .destroy_secret_id_accessor(name, &creds.secret_id_accessor)
                .await;
            return Err(e);
        }
        tracing::info!(role = name, accessor = %creds.secret_id_accessor, mode = %spec.delivery, "secret_id delivered");
        Ok(creds.secret_id_accessor)
    }

    async fn destroy_except(
        &self,
        admin: &VaultClient,
        name: &str,
        accessors: &[String],
        keep: &str,
    ) {
        for accessor in accessors.iter().filter(|a| a.as_str() != keep) {
            match admin
                .approle(&self.options.mount)
                .destroy_secret_id_accessor(name, accessor)
                .await
            {
                Ok(()) => {
                    tracing::info!(role = name, accessor = %accessor, "old secret_id destroyed")
                }
                Err(e) => {
                    tracing::warn!(role = name, accessor = %accessor, error = %e, "cannot destroy old secret_id")
                }
            }
        }
    }

    /// Creates (or converges) the role for `spec` and delivers credentials.
    ///
    /// The policy `<service>-<environment>` (and every extra policy) must
    /// exist. When the store already holds live credentials for this role,
    /// they are kept (a repeated call delivers nothing new); otherwise a new
    /// secret_id is delivered and any other secret_id of the role destroyed.
    pub async fn provision(&self, spec: &RoleSpec) -> Result<Provisioned> {
        spec.validate()?;
        let name = spec.role_name()?;
        let admin = self.admin().await?;
        self.ensure_policies(&admin, spec).await?;
        self.write_role(&admin, &name, spec).await?;
        let approle = admin.approle(&self.options.mount);
        let role_id = approle.role_id(&name).await?;

        if let Some(existing) = self.store.get(&name).await?
            && existing.role_id == role_id
            && existing.is_wrapped() == (spec.delivery == DeliveryMode::Wrapped)
            && !existing.secret_id_accessor.is_empty()
            && approle
                .lookup_secret_id_accessor(&name, &existing.secret_id_accessor)
                .await?
                .is_some()
        {
            return Ok(Provisioned {
                role_name: name.clone(),
                role_id,
                location: self.store.location(&name),
                secret_id_accessor: existing.secret_id_accessor,
                delivered: false,
            });
        }
        let before = approle.list_secret_id_accessors(&name).await?;
        let accessor = self.deliver(&admin, &name, &role_id, spec).await?;
        self.destroy_except(&admin, &name, &before, &accessor).await;
        Ok(Provisioned {
            role_name: name.clone(),
            role_id,
            location: self.store.location(&name),
            secret_id_accessor: accessor,
            delivered: true,
        })
    }

    /// Updates the role in place (parameters, policies), delivers a new
    /// secret_id and destroys the old one after the grace period.
    pub async fn update(&self, spec: &RoleSpec) -> Result<Provisioned> {
        spec.validate()?;
        let name = spec.role_name()?;
        let admin = self.admin().await?;
        self.ensure_policies(&admin, spec).await?;
        self.write_role(&admin, &name, spec).await?;
        self.rotate_with(&admin, &name, spec).await
    }

    /// Delivers a new secret_id for the existing role of `spec`, then, after
    /// the grace period, destroys the secret_ids that existed before. The
    /// store always holds a working secret_id: the new one is written before
    /// the old one is destroyed.
    pub async fn rotate_secret_id(&self, spec: &RoleSpec) -> Result<Provisioned> {
        spec.validate()?;
        let name = spec.role_name()?;
        let admin = self.admin().await?;
        if admin
            .approle(&self.options.mount)
            .read_role(&name)
            .await?
            .is_none()
        {
            return Err(Error::RoleMissing(name));
        }
        self.rotate_with(&admin, &name, spec).await
    }

    async fn rotate_with(
        &self,
        admin: &VaultClient,
        name: &str,
        spec: &RoleSpec,
    ) -> Result<Provisioned> {
        let approle = admin.approle(&self.options.mount);
        let role_id = approle.role_id(name).await?;
        let before = approle.list_secret_id_accessors(name).await?;
        let accessor = self.deliver(admin, name, &role_id, spec).await?;
        if !before.is_empty() && !self.options.rotation_grace.is_zero() {
            tokio::time::sleep(self.options.rotation_grace).await;
        }
        self.destroy_except(admin, name, &before, &accessor).await;
        Ok(Provisioned {
            role_name: name.to_owned(),
            role_id,
            location: self.store.location(name),
            secret_id_accessor: accessor,
            delivered: true,
        })
    }

    /// Deletes the delivered credentials and the role (with all its
    /// secret_ids). Succeeds when neither exists.
    pub async fn deprovision(&self, role_name: &str) -> Result<()> {
        if !is_valid_role_name(role_name) {
            return Err(Error::invalid(
                "role name",
                format!("{role_name:?} is not a Vault role name"),
                "letters, digits, '_', '-' or '.', starting and ending with a letter, digit or '_'",
            ));
        }
        let admin = self.admin().await?;
        self.store.delete(role_name).await?;
        admin
            .approle(&self.options.mount)
            .delete_role(role_name)
            .await?;
        tracing::info!(role = role_name, "role and credentials deleted");
        Ok(())
    }

    /// Whether the role exists.
    pub async fn role_exists(&self, role_name: &str) -> Result<bool> {
        let admin = self.admin().await?;
        Ok(admin
            .approle(&self.options.mount)
            .read_role(role_name)
            .await?
            .is_some())
    }
}
