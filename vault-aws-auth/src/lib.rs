//! AWS IAM and EC2 login to HashiCorp Vault and OpenBao.
//!
//! **Status: planned.** This crate reserves its place in the workspace; its code
//! arrives with the "vault-aws-auth" issue. Nothing here is usable yet.
//!
//! What it will provide:
//!
//! | type | does |
//! |---|---|
//! | `AwsIamAuth` | signs `POST sts:GetCallerIdentity` with SigV4 (credentials from the `aws-config` default chain: environment, profile, web identity, ECS container endpoint, IMDSv2, Lambda) and logs in at `auth/<mount>/login`; optional `X-Vault-AWS-IAM-Server-ID`, regional STS endpoints, an assumed role |
//! | `Ec2Auth` | logs in with the IMDSv2 PKCS7 identity document and keeps the nonce for re-login |
//!
//! Both will implement [`vault_client::VaultAuth`](https://docs.rs/vault-client)
//! so that the proxy, the ECS entrypoint and the replicator can use them without
//! knowing which login method is behind them.
