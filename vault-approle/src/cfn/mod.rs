//! The CloudFormation custom resource protocol (`Custom::VaultAuth`):
//! event parsing, response building and the [`CfnHandler`] that always
//! answers.
//!
//! Properties (strings, as CloudFormation sends them; names are
//! case-insensitive):
//!
//! | property | meaning | default |
//! |---|---|---|
//! | `Service` | service name (policy `<Service>-<Environment>`) | required |
//! | `Environment` | environment name | required |
//! | `Iam` | IAM role name or ARN of the consumers; gives the Vault role name | required |
//! | `TokenTtl`, `TokenMaxTtl`, `SecretIdTtl` | durations: seconds or `30m`, `1h`, `7d` | `1h`, `4h`, `30d` |
//! | `SecretIdNumUses` | integer (0 = unlimited) | `0` shared, `1` wrapped |
//! | `SecretIdBoundCidrs`, `TokenBoundCidrs` | comma-separated CIDRs or a list | none |
//! | `Policies` | extra policies, comma-separated or a list | none |
//! | `Delivery` | `shared` or `wrapped` | the handler's default (`shared`) |
//! | `RoleName` | the Vault role name (two roles for one IAM role name) | derived from `Iam` |
//!
//! CloudFormation's own properties ([`CLOUDFORMATION_PROPERTIES`]:
//! `ServiceToken`, `ServiceTimeout`) are accepted and ignored; an Update
//! changing only them changes and rotates nothing.
//!
//! Ownership: the resource (StackId + LogicalResourceId) that creates a role
//! is recorded with its credentials; a Create or Update onto another
//! resource's role answers FAILED naming the owner, and a Delete from a
//! non-owner answers SUCCESS touching nothing.
//!
//! EventBridge scheduled events ([`is_scheduled_event`]) run the scheduled
//! rotation ([`CfnHandler::scheduled`]).
//!
//! Responses: `PhysicalResourceId` is the Vault role name (stable across
//! updates of the same IAM role); `Data` has `RoleName`, `RoleId` and
//! `CredentialsLocation`. A Create that fails gets the physical id
//! `vault-aws-failed-create-<LogicalResourceId>-<RequestId>`, which Delete
//! recognises and acknowledges without touching Vault.
//!
//! `ResponseURL` must be a pre-signed S3 URL of CloudFormation: `https://`
//! and a host under `amazonaws.com` (or `amazonaws.com.cn`). An event naming
//! any other URL is not acted on and not answered, so whoever can invoke the
//! function cannot make it send requests to hosts of their choice. Other
//! hosts (the Lambda emulator's listener in tests, a private endpoint) are
//! allowed one by one with [`CfnHandler::allow_response_url_hosts`].

mod handler;
mod legacy;
mod operation;
mod properties;
mod request;
mod response;

pub use handler::{CfnHandler, DEFAULT_DEADLINE_MARGIN, HandleOutcome, is_scheduled_event};
pub use legacy::is_legacy_physical_id;
pub use properties::{CLOUDFORMATION_PROPERTIES, spec_from_properties};
pub use request::{CfnRequest, FAILED_CREATE_PREFIX, RequestType};
pub use response::{CfnResponse, MAX_BODY, Status};
