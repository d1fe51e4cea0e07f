//! Test-only crate that keeps the user guide honest.
//!
//! - The Rust examples of `docs/crates.md` and `README.md` are compiled (and
//!   the ones that need no network are run) as doc tests of this crate:
//!   `cargo test -p vault-aws-docs-check --doc`.
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
