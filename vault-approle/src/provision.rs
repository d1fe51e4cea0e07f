//! The trusted orchestrator: [`Provisioner`] creates, updates, rotates and
//! deletes a service's AppRole and delivers its credentials.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use vault_client::{GeneratedSecretId, Method, SecretIdRequest, VaultAuth, VaultClient};

use crate::error::{Error, Result};
use crate::spec::{DeliveryMode, RoleSpec, is_valid_role_name};
use crate::store::{CredentialStore, Credentials, Owner, now_rfc3339};

/// Default time between delivering a new secret_id and destroying the old one.
pub const DEFAULT_ROTATION_GRACE: Duration = Duration::from_secs(10);
/// Default fraction of a secret_id's TTL under which the scheduled rotation
/// replaces it (one third).
pub const DEFAULT_ROTATE_BELOW: f64 = 1.0 / 3.0;
/// The secret_id metadata key naming the orchestrator that made it.
const MANAGED_BY: &str = "managed_by";
/// Its value for this crate's orchestrator.
const MANAGER: &str = "vault-aws";
/// Secret_id metadata keys naming the owner (stack id, logical id): the
/// record in Vault itself, which every orchestrator sharing the Vault reads,
/// whatever bucket it delivers to.
const OWNER_STACK: &str = "owner_stack_id";
const OWNER_RESOURCE: &str = "owner_logical_resource_id";
/// How many of a role's secret_ids are looked up for an owner record.
const OWNER_LOOKUPS: usize = 16;

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
    /// How credentials are named in the store (default
    /// [`StoreLayout::VaultAws`]).
    pub layout: StoreLayout,
}

/// How delivered credentials are named in the [`CredentialStore`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum StoreLayout {
    /// By Vault role name (`vault/approle/shoptask` in S3).
    #[default]
    VaultAws,
    /// As kickstarter's serverless AppRole manager did: by the IAM role name
    /// as given, case preserved (`vault/appRole/ShopTask` in S3, with the
    /// prefix [`LEGACY_PREFIX`]), or by `RoleName` as given.
    ServerlessAppRoleManager,
}

/// The S3 key prefix of the serverless AppRole manager's objects.
pub const LEGACY_PREFIX: &str = "vault/appRole/";

impl std::str::FromStr for StoreLayout {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "vault-aws" => Ok(Self::VaultAws),
            "serverless-approle-manager" => Ok(Self::ServerlessAppRoleManager),
            other => Err(Error::invalid(
                "store layout",
                "vault-aws or serverless-approle-manager",
                format!("got {:?}", other.chars().take(64).collect::<String>()),
            )),
        }
    }
}

impl Default for ProvisionerOptions {
    fn default() -> Self {
        Self {
            mount: "approle".into(),
            rotation_grace: DEFAULT_ROTATION_GRACE,
            wrap_ttl: DEFAULT_WRAP_TTL,
            consumer_vault_addr: None,
            layout: StoreLayout::VaultAws,
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
    /// Sets the store layout.
    pub fn layout(mut self, layout: StoreLayout) -> Self {
        self.layout = layout;
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
        owner: Option<Owner>,
    ) -> Result<String> {
        let key = self.store_key(spec)?;
        let metadata = HashMap::from([
            ("service".to_owned(), spec.service.clone()),
            ("environment".to_owned(), spec.environment.clone()),
            ("iam_role".to_owned(), spec.iam_role.clone()),
            (MANAGED_BY.to_owned(), MANAGER.to_owned()),
        ]);
        let what = NewSecretId {
            metadata,
            wrapped: spec.delivery == DeliveryMode::Wrapped,
            owner,
        };
        self.deliver_raw(admin, name, role_id, what, &key).await
    }

    /// Generates a secret_id as `what` says and writes it to the store as
    /// `key`. Returns the new accessor.
    async fn deliver_raw(
        &self,
        admin: &VaultClient,
        name: &str,
        role_id: &str,
        what: NewSecretId,
        key: &str,
    ) -> Result<String> {
        let NewSecretId {
            mut metadata,
            wrapped,
            owner,
        } = what;
        if let Some(o) = &owner {
            metadata.insert(OWNER_STACK.to_owned(), o.stack_id.clone());
            metadata.insert(OWNER_RESOURCE.to_owned(), o.logical_resource_id.clone());
        }
        let request = SecretIdRequest {
            metadata,
            num_uses: wrapped.then_some(1),
            wrap_ttl: wrapped.then_some(self.options.wrap_ttl),
            ..SecretIdRequest::default()
        };
        // Not retried: a retried POST could mint a second, unknown secret_id.
        let generated = admin
            .approle(&self.options.mount)
            .generate_secret_id(name, &request)
            .await?;
        let mut creds = Credentials::new(name, role_id, &self.options.mount, &self.consumer_addr());
        creds.created_at = now_rfc3339();
        creds.owner = owner;
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
        if let Err(e) = self.store.put(key, &creds).await {
            // Do not leave a live secret_id that nobody knows of.
            let _ = admin
                .approle(&self.options.mount)
                .destroy_secret_id_accessor(name, &creds.secret_id_accessor)
                .await;
            return Err(e);
        }
        tracing::info!(role = name, accessor = %creds.secret_id_accessor, wrapped, "secret_id delivered");
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

    /// The name of `spec`'s credentials in the store: the Vault role name,
    /// or with [`StoreLayout::ServerlessAppRoleManager`] the `RoleName` or
    /// IAM role name as given (case preserved).
    pub fn store_key(&self, spec: &RoleSpec) -> Result<String> {
        match self.options.layout {
            StoreLayout::VaultAws => spec.role_name(),
            StoreLayout::ServerlessAppRoleManager => match &spec.vault_role {
                Some(name) => Ok(name.trim().to_owned()),
                None => crate::spec::iam_role_name_as_given(&spec.iam_role),
            },
        }
    }

    /// The recorded owner of the credentials named `key` in the store
    /// (the role name, see [`Provisioner::store_key`]), if any.
    pub async fn owner_of(&self, key: &str) -> Result<Option<Owner>> {
        Ok(self.store.get(key).await?.and_then(|c| c.owner))
    }

    /// The owner of the role `role_name` (credentials stored as `key`): the
    /// store's record, else the one in Vault (the metadata of the role's
    /// secret_ids), which a second orchestrator sharing the Vault, with a
    /// store of its own, also sees.
    pub async fn owner_of_role(&self, role_name: &str, key: &str) -> Result<Option<Owner>> {
        if let Some(owner) = self.owner_of(key).await? {
            return Ok(Some(owner));
        }
        let admin = self.admin().await?;
        self.owner_in_vault(&admin, role_name).await
    }

    /// The owner recorded in the metadata of the role's secret_ids (the
    /// first [`OWNER_LOOKUPS`] of them), if any.
    async fn owner_in_vault(&self, admin: &VaultClient, role: &str) -> Result<Option<Owner>> {
        let approle = admin.approle(&self.options.mount);
        if approle.read_role(role).await?.is_none() {
            return Ok(None);
        }
        let accessors = approle.list_secret_id_accessors(role).await?;
        for accessor in accessors.iter().take(OWNER_LOOKUPS) {
            let Some(info) = approle.lookup_secret_id_accessor(role, accessor).await? else {
                continue;
            };
            if let (Some(stack), Some(resource)) = (
                info.metadata.get(OWNER_STACK),
                info.metadata.get(OWNER_RESOURCE),
            ) {
                return Ok(Some(Owner::new(stack.clone(), resource.clone())));
            }
        }
        Ok(None)
    }

    /// Fails with [`Error::OwnedByOther`] when `spec` has an owner and the
    /// role is recorded as another's, in the store or, when the store has
    /// no record, in Vault. Returns the stored credentials.
    async fn check_owner(
        &self,
        admin: &VaultClient,
        name: &str,
        spec: &RoleSpec,
    ) -> Result<Option<Credentials>> {
        let existing = self.store.get(&self.store_key(spec)?).await?;
        let Some(wanted) = spec.owner.as_ref() else {
            return Ok(existing);
        };
        let recorded = match existing.as_ref().and_then(|c| c.owner.clone()) {
            Some(o) => Some(o),
            None => self.owner_in_vault(admin, name).await?,
        };
        if let Some(recorded) = recorded
            && &recorded != wanted
        {
            return Err(Error::OwnedByOther {
                role: name.to_owned(),
                owner: recorded,
            });
        }
        Ok(existing)
    }

    /// Creates (or converges) the role for `spec` and delivers credentials.
    ///
    /// The policy `<service>-<environment>` (and every extra policy) must
    /// exist. When the store already holds live credentials for this role,
    /// they are kept (a repeated call delivers nothing new); otherwise a new
    /// secret_id is delivered and any other secret_id of the role destroyed.
    ///
    /// When `spec` names an owner and the role is recorded as another
    /// owner's, nothing is changed: [`Error::OwnedByOther`]. A role without a
    /// recorded owner is adopted by the spec's owner.
    pub async fn provision(&self, spec: &RoleSpec) -> Result<Provisioned> {
        spec.validate()?;
        let name = spec.role_name()?;
        let admin = self.admin().await?;
        let stored = self.check_owner(&admin, &name, spec).await?;
        let owner = spec
            .owner
            .clone()
            .or_else(|| stored.as_ref().and_then(|c| c.owner.clone()));
        self.ensure_policies(&admin, spec).await?;
        self.write_role(&admin, &name, spec).await?;
        let approle = admin.approle(&self.options.mount);
        let role_id = approle.role_id(&name).await?;

        if let Some(mut existing) = stored
            && existing.role_id == role_id
            && existing.is_wrapped() == (spec.delivery == DeliveryMode::Wrapped)
            && !existing.secret_id_accessor.is_empty()
            && approle
                .lookup_secret_id_accessor(&name, &existing.secret_id_accessor)
                .await?
                .is_some()
        {
            if existing.owner != owner {
                // Adopted: record the owner, keep the credentials.
                existing.owner = owner;
                self.store.put(&self.store_key(spec)?, &existing).await?;
            }
            return Ok(Provisioned {
                role_name: name.clone(),
                role_id,
                location: self.store.location(&self.store_key(spec)?),
                secret_id_accessor: existing.secret_id_accessor,
                delivered: false,
            });
        }
        let before = approle.list_secret_id_accessors(&name).await?;
        let accessor = self.deliver(&admin, &name, &role_id, spec, owner).await?;
        self.destroy_except(&admin, &name, &before, &accessor).await;
        Ok(Provisioned {
            role_name: name.clone(),
            role_id,
            location: self.store.location(&self.store_key(spec)?),
            secret_id_accessor: accessor,
            delivered: true,
        })
    }

    /// Updates the role in place (parameters, policies), delivers a new
    /// secret_id and destroys the old one after the grace period.
    /// Like [`Provisioner::provision`], another owner's role is not touched.
    pub async fn update(&self, spec: &RoleSpec) -> Result<Provisioned> {
        spec.validate()?;
        let name = spec.role_name()?;
        let admin = self.admin().await?;
        self.check_owner(&admin, &name, spec).await?;
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
        self.check_owner(&admin, &name, spec).await?;
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
        let key = self.store_key(spec)?;
        let owner = match &spec.owner {
            Some(o) => Some(o.clone()),
            None => self.owner_of(&key).await?,
        };
        let accessor = self.deliver(admin, name, &role_id, spec, owner).await?;
        if !before.is_empty() && !self.options.rotation_grace.is_zero() {
            tokio::time::sleep(self.options.rotation_grace).await;
        }
        self.destroy_except(admin, name, &before, &accessor).await;
        Ok(Provisioned {
            role_name: name.to_owned(),
            role_id,
            location: self.store.location(&key),
            secret_id_accessor: accessor,
            delivered: true,
        })
    }

    /// Deletes the delivered credentials and the role (with all its
    /// secret_ids). Succeeds when neither exists.
    pub async fn deprovision(&self, role_name: &str) -> Result<()> {
        self.deprovision_keyed(role_name, role_name).await
    }

    /// [`Provisioner::deprovision`] for credentials stored as `key` (see
    /// [`Provisioner::store_key`]).
    pub async fn deprovision_keyed(&self, role_name: &str, key: &str) -> Result<()> {
        if !is_valid_role_name(role_name) {
            return Err(Error::invalid(
                "role name",
                "letters, digits, '_', '-' or '.', starting and ending with a letter, digit or '_'",
                format!("{role_name:?} is not a Vault role name"),
            ));
        }
        let admin = self.admin().await?;
        self.store.delete(key).await?;
        admin
            .approle(&self.options.mount)
            .delete_role(role_name)
            .await?;
        tracing::info!(role = role_name, "role and credentials deleted");
        Ok(())
    }

    /// The role of `spec` as it is, without changing anything: `None` when
    /// the role does not exist in Vault.
    pub async fn current(&self, spec: &RoleSpec) -> Result<Option<Provisioned>> {
        let name = spec.role_name()?;
        let admin = self.admin().await?;
        let approle = admin.approle(&self.options.mount);
        if approle.read_role(&name).await?.is_none() {
            return Ok(None);
        }
        let role_id = approle.role_id(&name).await?;
        let key = self.store_key(spec)?;
        let accessor = self
            .store
            .get(&key)
            .await?
            .map(|c| c.secret_id_accessor)
            .unwrap_or_default();
        Ok(Some(Provisioned {
            role_name: name.clone(),
            role_id,
            location: self.store.location(&key),
            secret_id_accessor: accessor,
            delivered: false,
        }))
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

    /// The scheduled rotation: for every role with credentials in the store
    /// that this orchestrator manages (an owner record, or a secret_id made
    /// by it), replaces the shared secret_id when less than `rotate_below`
    /// (a fraction of its TTL, e.g. one third) of its life is left, or when
    /// it no longer exists. The new secret_id is written to the store first;
    /// the ones it replaces are destroyed by a later run, once the current
    /// delivery is older than the rotation grace period (consumers re-read
    /// the store at every login). Wrapped (single-use) deliveries, secret_ids
    /// that never expire and roles of other mounts are skipped. One failing
    /// role never stops the others. Roles not reached before `deadline` are
    /// reported as skipped.
    pub async fn rotate_due(
        &self,
        rotate_below: f64,
        deadline: Option<std::time::SystemTime>,
    ) -> Result<RotationReport> {
        if !(rotate_below > 0.0 && rotate_below <= 1.0) {
            return Err(Error::invalid(
                "rotation fraction",
                "a fraction of the secret_id TTL above 0 and at most 1, e.g. 0.33",
                format!("got {rotate_below}"),
            ));
        }
        let admin = self.admin().await?;
        let keys = self.store.list().await?;
        let mut report = RotationReport::default();
        for role in keys {
            if deadline.is_some_and(|d| vault_client::clock::wall() >= d) {
                report
                    .skipped
                    .push(RoleNote::new(&role, "no time left in this run"));
                continue;
            }
            match self.rotate_role_if_due(&admin, &role, rotate_below).await {
                Ok(Checked::Rotated(detail)) => report.rotated.push(RoleNote::new(&role, detail)),
                Ok(Checked::Skipped(detail)) => report.skipped.push(RoleNote::new(&role, detail)),
                Err(e) => {
                    tracing::warn!(role = %role, error = %vault_client::error_chain(&e), "scheduled rotation failed for this role");
                    report
                        .failed
                        .push(RoleNote::new(&role, vault_client::error_chain(&e)));
                }
            }
        }
        Ok(report)
    }

    async fn rotate_role_if_due(
        &self,
        admin: &VaultClient,
        key: &str,
        rotate_below: f64,
    ) -> Result<Checked> {
        let Some(creds) = self.store.get(key).await? else {
            return Ok(Checked::Skipped("its credentials are gone".into()));
        };
        // The role: named in the object, else the key (the old layout's
        // objects name no role; Vault lower-cases role names).
        let role_name = match creds.role.trim() {
            "" => key.to_ascii_lowercase(),
            r => r.to_owned(),
        };
        let role = role_name.as_str();
        let mount = match creds.mount.trim().trim_matches('/') {
            "" => self.options.mount.clone(),
            m => m.to_owned(),
        };
        if mount != self.options.mount {
            return Ok(Checked::Skipped(format!(
                "delivered for the mount {mount}, not {}",
                self.options.mount
            )));
        }
        if creds.is_wrapped() {
            return Ok(Checked::Skipped(
                "wrapped (single-use) delivery: renewed by an Update, not on a schedule".into(),
            ));
        }
        let approle = admin.approle(&mount);
        if approle.read_role(role).await?.is_none() {
            return Ok(Checked::Skipped("the role does not exist in vault".into()));
        }
        let current = if creds.secret_id_accessor.is_empty() {
            None
        } else {
            approle
                .lookup_secret_id_accessor(role, &creds.secret_id_accessor)
                .await?
        };
        let made_here = current
            .as_ref()
            .is_some_and(|i| i.metadata.get(MANAGED_BY).map(String::as_str) == Some(MANAGER));
        if creds.owner.is_none() && !made_here {
            return Ok(Checked::Skipped(
                "not managed by vault-aws (no owner record, secret_id not made by it)".into(),
            ));
        }
        let now = unix_now();
        // Secret_ids replaced by an earlier run: destroyed once the current
        // delivery is older than the grace period.
        if let Some(info) = &current
            && crate::store::parse_rfc3339(&info.creation_time).is_some_and(|created| {
                created.saturating_add(self.options.rotation_grace.as_secs() as i64) <= now
            })
        {
            let all = approle.list_secret_id_accessors(role).await?;
            self.destroy_except(admin, role, &all, &creds.secret_id_accessor)
                .await;
        }
        let why = match &current {
            None => "the delivered secret_id no longer exists".to_owned(),
            Some(info) if info.secret_id_ttl == 0 => {
                return Ok(Checked::Skipped("the secret_id never expires".into()));
            }
            Some(info) => {
                let ttl = info.secret_id_ttl as i64;
                let left =
                    crate::store::parse_rfc3339(&info.expiration_time).map(|expires| expires - now);
                match left {
                    Some(left) if (left as f64) >= ttl as f64 * rotate_below => {
                        return Ok(Checked::Skipped(format!("{left}s of {ttl}s left")));
                    }
                    Some(left) => format!("{left}s of {ttl}s left"),
                    None => format!("its expiry time {:?} cannot be read", info.expiration_time),
                }
            }
        };
        let role_id = approle.role_id(role).await?;
        let metadata = current
            .map(|i| i.metadata)
            .filter(|m| !m.is_empty())
            .unwrap_or_else(|| HashMap::from([(MANAGED_BY.to_owned(), MANAGER.to_owned())]));
        let accessor = self
            .deliver_raw(
                admin,
                role,
                &role_id,
                NewSecretId {
                    metadata,
                    wrapped: false,
                    owner: creds.owner.clone(),
                },
                key,
            )
            .await?;
        tracing::info!(role, accessor = %accessor, reason = %why, "secret_id rotated on schedule");
        Ok(Checked::Rotated(format!("{why}: new accessor {accessor}")))
    }
}

fn unix_now() -> i64 {
    vault_client::clock::wall()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// What a new secret_id carries: its metadata, whether it is delivered
/// wrapped (and single-use), and the owner recorded with it.
struct NewSecretId {
    metadata: HashMap<String, String>,
    wrapped: bool,
    owner: Option<Owner>,
}

enum Checked {
    Rotated(String),
    Skipped(String),
}

/// One role in a [`RotationReport`]: its name and what happened (never a
/// secret).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct RoleNote {
    /// The Vault role name.
    pub role: String,
    /// Why it was rotated or skipped, or how it failed.
    pub detail: String,
}

impl RoleNote {
    fn new(role: &str, detail: impl Into<String>) -> Self {
        Self {
            role: role.to_owned(),
            detail: detail.into(),
        }
    }
}

/// What a scheduled rotation run did ([`Provisioner::rotate_due`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct RotationReport {
    /// Roles whose secret_id was replaced.
    pub rotated: Vec<RoleNote>,
    /// Roles left as they were, and why.
    pub skipped: Vec<RoleNote>,
    /// Roles whose check or rotation failed, and why.
    pub failed: Vec<RoleNote>,
}
