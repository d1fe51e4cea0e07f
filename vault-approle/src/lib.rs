//! AppRole provisioning as a trusted orchestrator, credential delivery, AppRole login.
//!
//! **Status: planned.** This crate reserves its place in the workspace; its code
//! arrives with the "vault-approle" issue. Nothing here is usable yet.
//!
//! What it will provide:
//!
//! | piece | does |
//! |---|---|
//! | `Provisioner` | creates, updates, rotates and deletes an AppRole per service, bound to the policy `<service>-<environment>`, idempotently |
//! | `CredentialStore` | where role_id and secret_id (or a wrapping token) are delivered: `S3CredentialStore` (SSE-KMS) or a directory |
//! | `AppRoleAuth` | the consumer's login, unwrapping a wrapped secret_id once; implements `vault_client::VaultAuth` |
//! | custom resource | the CloudFormation `Custom::VaultAuth` protocol used by `adapters/lambda-approle` |
