//! AppRole provisioning as a trusted orchestrator, credential delivery
//! through S3, AppRole login, and the CloudFormation custom resource
//! (`Custom::VaultAuth`) protocol.
//!
//! An orchestrator (the `adapters/lambda-approle` Lambda, or any program)
//! creates one AppRole per service, named after the service's IAM role and
//! bound to the policy `<service>-<environment>`, and delivers its role_id and
//! secret_id (plain and reusable with a TTL, or wrapped and single-use) to a
//! [`CredentialStore`]. The service's containers (`adapters/ecs-exec`) read
//! them and log in with [`AppRoleAuth`].
//!
//! ```no_run
//! use std::sync::Arc;
//! use vault_approle::{AppRoleAuth, Provisioner, ProvisionerOptions, RoleSpec, S3CredentialStore};
//! use vault_client::{TokenAuth, VaultAuth, VaultClient};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let lookup = |k: &str| std::env::var(k).ok();
//! let client = VaultClient::from_env()?;
//! let store = Arc::new(S3CredentialStore::from_lookup(lookup)?);
//! let admin: Arc<dyn VaultAuth> = Arc::new(TokenAuth::from_lookup(lookup)?);
//! let provisioner = Provisioner::new(client.clone(), admin, store.clone(), ProvisionerOptions::default());
//!
//! // Policy "shop-dev" must exist; the role is "shop-task".
//! let spec = RoleSpec::builder("shop", "dev", "arn:aws:iam::123456789012:role/shop-task").build()?;
//! let done = provisioner.provision(&spec).await?;
//! println!("role {} delivered to {}", done.role_name, done.location);
//!
//! // The consumer:
//! let auth = AppRoleAuth::from_store("approle", store, "shop-task");
//! let token = auth.login(&client).await?;
//! # let _ = token; Ok(()) }
//! ```
//!
//! | piece | does |
//! |---|---|
//! | [`RoleSpec`], [`role_name_from_iam`] | what a role looks like; validated, with errors naming the field |
//! | [`Provisioner`] | `provision`, `update`, `rotate_secret_id`, `deprovision`: idempotent; the policy must exist; a role recorded as another [`Owner`]'s is never changed; `rotate_due`: the scheduled rotation ([`RotationReport`]) |
//! | [`CredentialStore`] | [`S3CredentialStore`] (SSE-KMS or AES256, key `<prefix><role>`), [`DirectoryCredentialStore`] (0600 files) |
//! | [`AppRoleAuth`] | a [`vault_client::VaultAuth`]: role_id/secret_id from values, files or a store; unwraps a wrapped secret_id once |
//! | [`S3TokenAuth`] | a [`vault_client::VaultAuth`] for an orchestrator token kept in S3 |
//! | [`cfn`] | the custom resource protocol: parse, act, always answer |
//!
//! | feature | enables |
//! |---|---|
//! | `s3` (default) | [`S3CredentialStore`], [`S3TokenAuth`] and the S3 source of [`AppRoleAuth::from_lookup`] (aws-sdk-s3); off, AppRole login from values, files or a directory store stays, in a much smaller binary |
//! | `test-util` | `MockCredentialStore` (mockall) |
#![cfg_attr(not(test), warn(clippy::disallowed_methods))] // time via vault_client::clock

mod auth;
pub mod cfn;
mod error;
mod provision;
#[cfg(feature = "s3")]
mod s3;
mod spec;
mod store;

pub use auth::AppRoleAuth;
#[cfg(feature = "s3")]
pub use auth::S3TokenAuth;
pub use error::{Error, Result};
pub use provision::{
    DEFAULT_ROTATE_BELOW, DEFAULT_ROTATION_GRACE, DEFAULT_WRAP_TTL, LEGACY_PREFIX, Provisioned,
    Provisioner, ProvisionerOptions, RoleNote, RotationReport, StoreLayout,
};
#[cfg(feature = "s3")]
pub use s3::{DEFAULT_PREFIX, S3Access, S3CredentialStore, S3CredentialStoreBuilder, S3Encryption};
pub use spec::{
    DEFAULT_SECRET_ID_TTL, DEFAULT_TOKEN_MAX_TTL, DEFAULT_TOKEN_TTL, DeliveryMode, RoleSpec,
    RoleSpecBuilder, iam_role_name_as_given, is_valid_role_name, role_name_from_iam,
};
#[cfg(any(test, feature = "test-util"))]
pub use store::MockCredentialStore;
pub use store::{CredentialStore, Credentials, DirectoryCredentialStore, Owner};
