//! Test-only crate that keeps the user guide honest.
//!
//! - The Rust examples of `README.md` and of the `docs/*.md` guides are
//!   compiled (and the ones that need no network are run) as doc tests of
//!   this crate: `cargo test -p vault-aws-docs-check --doc`.
//! - `tests/configuration.rs` fails when a variable or flag that the code
//!   reads is missing from `docs/configuration.md`.

/// The per-crate guide, `docs/crates.md`; its examples are doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../crates.md")]
pub struct CratesGuide;

/// The README; its Rust examples are doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct Readme;

/// The READMEs of the published library crates (what crates.io shows);
/// their examples are doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../../vault-client/README.md")]
#[doc = include_str!("../../../vault-aws-auth/README.md")]
#[doc = include_str!("../../../vault-approle/README.md")]
#[doc = include_str!("../../../vault-replicate/README.md")]
#[doc = include_str!("../../../vault-proxy/README.md")]
#[doc = include_str!("../../../vault-auth-env/README.md")]
pub struct CrateReadmes;

/// `docs/aws-auth.md`; its examples are doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../aws-auth.md")]
pub struct AwsAuthGuide;

/// `docs/approle.md`; its examples are doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../approle.md")]
pub struct AppRoleGuide;

/// `docs/proxy.md`; its examples are doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../proxy.md")]
pub struct ProxyGuide;

/// `docs/replicate.md`; its examples are doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../replicate.md")]
pub struct ReplicateGuide;

/// `docs/security.md`, `docs/migration-from-vault-lambda-extension.md`
/// and `docs/configuration.md` hold no Rust, but an unlabelled code block
/// would be compiled here, so they are included too.
#[cfg(doctest)]
#[doc = include_str!("../../security.md")]
#[doc = include_str!("../../migration-from-vault-lambda-extension.md")]
#[doc = include_str!("../../configuration.md")]
#[doc = include_str!("../../benchmarks.md")]
pub struct OtherGuides;
