//! The Vault login of every vault-aws binary, chosen and configured by
//! environment variables, so the Lambda extension, the replication Lambda,
//! the AppRole Lambda, `vault-exec` and the CLI all accept the same settings.
//!
//! ```
//! let env = |name: &str| match name {
//!     "VAULT_AUTH_ROLE" => Some("my-function".to_owned()),
//!     _ => None,
//! };
//! let auth = vault_auth_env::auth_from_lookup(env)?;
//! assert_eq!(auth.method(), "aws-iam");
//! # Ok::<(), vault_auth_env::AuthEnvError>(())
//! ```
//!
//! | `VAULT_AUTH_METHOD` | login | configured by |
//! |---|---|---|
//! | `aws` (or `iam`, `aws-iam`) | [`vault_aws_auth::AwsIamAuth`]: SigV4-signed `sts:GetCallerIdentity` | `VAULT_AUTH_ROLE`, `VAULT_AUTH_PROVIDER`, `VAULT_IAM_SERVER_ID`, `VAULT_STS_ENDPOINT_REGION`, `VAULT_ASSUMED_ROLE_ARN` |
//! | `ec2` | [`vault_aws_auth::Ec2Auth`]: the instance's PKCS7 identity document | `VAULT_AUTH_ROLE`, `VAULT_AUTH_PROVIDER`, `VAULT_EC2_NONCE_FILE` |
//! | `approle` | [`vault_approle::AppRoleAuth`]: role_id + secret_id (plain or wrapped; values, files or the S3 delivery) | `VAULT_ROLE_ID[_FILE]`, `VAULT_SECRET_ID[_FILE]`, `VAULT_SECRET_ID_WRAPPED`, `VAULT_APPROLE_S3_BUCKET` + `VAULT_APPROLE_ROLE`, `VAULT_APPROLE_MOUNT` |
//! | `s3-token` | [`vault_approle::S3TokenAuth`]: a token kept in an S3 object | `VAULT_TOKEN_S3_BUCKET`, `VAULT_TOKEN_S3_KEY` |
//! | `token` | [`vault_client::TokenAuth`]: a static token or token file | `VAULT_TOKEN`, `VAULT_TOKEN_FILE` |
//!
//! Without `VAULT_AUTH_METHOD`, the first of these that is configured wins:
//! `VAULT_AUTH_ROLE` (AWS IAM, as hashicorp/vault-lambda-extension reads
//! it), then AppRole (`VAULT_ROLE_ID`, `VAULT_ROLE_ID_FILE` or
//! `VAULT_APPROLE_S3_BUCKET`), then `VAULT_TOKEN_S3_BUCKET` /
//! `VAULT_TOKEN_S3_KEY`, then `VAULT_TOKEN` / `VAULT_TOKEN_FILE`. Each
//! method's own variables are documented on its `from_lookup`.
//!
//! This crate is the one registry of login methods: [`AuthMethod`] (its
//! name, the variables that select it, [`build`]). A binary differs only in
//! its [`Selection`] policy: [`Selection::DEFAULT`] (extension, replication,
//! CLI), [`Selection::ORCHESTRATOR`] (AppRole is its delivery, never its
//! login) and [`Selection::EXEC`] (`vault-exec`). To add a login method:
//! its `VaultAuth` in a capability crate, one variant with its arms here,
//! and its place in the policies that should detect it.
//!
//! | feature | enables |
//! |---|---|
//! | `s3` (default) | `s3-token`, and AppRole credentials delivered through S3 (aws-sdk-s3); the Lambda extension leaves it out to stay small |
//! | `sso` (default) | AWS IAM Identity Center (SSO) profiles in the IAM login's credential chain (aws-sdk-sso); the Lambda extension leaves it out |
#![cfg_attr(not(test), warn(clippy::disallowed_methods))] // time via vault_client::clock

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use vault_approle::AppRoleAuth;
#[cfg(feature = "s3")]
use vault_approle::S3TokenAuth;
use vault_aws_auth::{AwsIamAuth, Ec2Auth};
use vault_client::{ConfigError, TokenAuth, VaultAuth};

/// The variable that names the login method.
pub const METHOD_VARIABLE: &str = "VAULT_AUTH_METHOD";

/// A Vault login method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuthMethod {
    /// AWS IAM (`sts:GetCallerIdentity` signed with the workload's credentials).
    AwsIam,
    /// AWS EC2 (the instance identity document).
    Ec2,
    /// AppRole.
    AppRole,
    /// A token read from an S3 object at every login.
    S3Token,
    /// A static token or a token file.
    Token,
}

impl AuthMethod {
    /// The name `VAULT_AUTH_METHOD` uses for this method.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AwsIam => "aws",
            Self::Ec2 => "ec2",
            Self::AppRole => "approle",
            Self::S3Token => "s3-token",
            Self::Token => "token",
        }
    }

    /// The variables whose presence selects this method when
    /// `VAULT_AUTH_METHOD` is not set (for a [`Selection`] that detects it).
    /// Empty: the method is only ever chosen by name.
    pub fn detected_by(self) -> &'static [&'static str] {
        match self {
            Self::AwsIam => &["VAULT_AUTH_ROLE"],
            Self::Ec2 => &[],
            Self::AppRole => &[
                "VAULT_ROLE_ID",
                "VAULT_ROLE_ID_FILE",
                "VAULT_APPROLE_S3_BUCKET",
            ],
            Self::S3Token => &["VAULT_TOKEN_S3_BUCKET", "VAULT_TOKEN_S3_KEY"],
            Self::Token => &["VAULT_TOKEN", "VAULT_TOKEN_FILE"],
        }
    }

    /// The method `VAULT_AUTH_METHOD` names, or the first one whose
    /// variables are set in [`Selection::DEFAULT`]'s order; `Ok(None)` when
    /// nothing is configured.
    pub fn from_lookup<F>(lookup: F) -> Result<Option<Self>, AuthEnvError>
    where
        F: Fn(&str) -> Option<String>,
    {
        Selection::DEFAULT.method(lookup)
    }
}

/// A binary's selection policy over the one registry of login methods:
/// which methods are detected from the variables that are set, in which
/// order, and what to tell the user when nothing is. `VAULT_AUTH_METHOD`
/// always wins, and names any method of this build.
///
/// ```
/// use vault_auth_env::{AuthMethod, Selection};
/// // The orchestrator's delivery bucket is not a login of its own:
/// let env = |name: &str| match name {
///     "VAULT_APPROLE_S3_BUCKET" => Some("delivery".to_owned()),
///     "VAULT_TOKEN" => Some("hvs.x".to_owned()),
///     _ => None,
/// };
/// assert_eq!(Selection::DEFAULT.method(env)?, Some(AuthMethod::AppRole));
/// assert_eq!(Selection::ORCHESTRATOR.method(env)?, Some(AuthMethod::Token));
/// # Ok::<(), vault_auth_env::AuthEnvError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Selection {
    /// Whose login this is, for the "not configured" error (`Vault`,
    /// `orchestrator`).
    pub who: &'static str,
    /// The methods detected from their [`AuthMethod::detected_by`]
    /// variables, first match wins.
    pub detect: &'static [AuthMethod],
    /// What to set, when nothing is configured.
    pub hint: &'static str,
}

impl Selection {
    /// Every binary's default (the extension, the replication Lambda, the
    /// CLI): AWS IAM, then AppRole (values, files or an S3 delivery), then a
    /// token in S3, then a token.
    pub const DEFAULT: Self = Self {
        who: "Vault",
        detect: &[
            AuthMethod::AwsIam,
            AuthMethod::AppRole,
            AuthMethod::S3Token,
            AuthMethod::Token,
        ],
        hint: "set VAULT_AUTH_ROLE for AWS IAM (preferred on AWS), VAULT_ROLE_ID \
               (+ VAULT_SECRET_ID) or VAULT_APPROLE_S3_BUCKET for AppRole, \
               VAULT_TOKEN_S3_BUCKET for a token in S3, or VAULT_TOKEN; or name the method \
               in VAULT_AUTH_METHOD",
    };

    /// The AppRole orchestrator (`Custom::VaultAuth`): AppRole is never
    /// detected, because `VAULT_APPROLE_S3_BUCKET` is its delivery bucket,
    /// not a login; AWS IAM with the Lambda's role, then a token in S3 (what
    /// the original manager did), then a token.
    pub const ORCHESTRATOR: Self = Self {
        who: "orchestrator",
        detect: &[AuthMethod::AwsIam, AuthMethod::S3Token, AuthMethod::Token],
        hint: "set VAULT_AUTH_ROLE (AWS IAM, preferred), VAULT_TOKEN_S3_BUCKET and \
               VAULT_TOKEN_S3_KEY, or VAULT_TOKEN",
    };

    /// `vault-exec` (ECS): AWS IAM with the task role, then AppRole
    /// (values, files, or the credentials delivered for the task's role),
    /// then a token; a token in S3 only by name.
    pub const EXEC: Self = Self {
        who: "Vault",
        detect: &[AuthMethod::AwsIam, AuthMethod::AppRole, AuthMethod::Token],
        hint: "set VAULT_APPROLE_S3_BUCKET (delivered AppRole credentials), VAULT_AUTH_ROLE \
               (AWS IAM with the task role), VAULT_ROLE_ID, or VAULT_TOKEN",
    };

    /// The method `VAULT_AUTH_METHOD` names, or the first of
    /// [`detect`](Self::detect) whose variables are set; `Ok(None)` when
    /// nothing is configured.
    pub fn method<F>(&self, lookup: F) -> Result<Option<AuthMethod>, AuthEnvError>
    where
        F: Fn(&str) -> Option<String>,
    {
        let get = vault_client::non_blank(&lookup);
        if let Some(raw) = get(METHOD_VARIABLE) {
            return raw.parse().map(Some);
        }
        Ok(self
            .detect
            .iter()
            .copied()
            .find(|m| m.detected_by().iter().any(|name| get(name).is_some())))
    }

    /// The error for "nothing is configured" under this policy.
    pub fn not_configured(&self) -> AuthEnvError {
        AuthEnvError::NotConfigured {
            who: self.who,
            hint: self.hint,
        }
    }

    /// The login this policy selects, configured by `lookup`.
    pub fn auth_from_lookup<F>(&self, lookup: F) -> Result<Arc<dyn VaultAuth>, AuthEnvError>
    where
        F: Fn(&str) -> Option<String>,
    {
        let method = self.method(&lookup)?.ok_or_else(|| self.not_configured())?;
        build(method, lookup)
    }
}

impl fmt::Display for AuthMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for AuthMethod {
    type Err = AuthEnvError;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        match raw.trim().to_ascii_lowercase().as_str() {
            "aws" | "iam" | "aws-iam" => Ok(Self::AwsIam),
            "ec2" | "aws-ec2" => Ok(Self::Ec2),
            "approle" => Ok(Self::AppRole),
            "s3-token" | "s3token" => Ok(Self::S3Token),
            "token" => Ok(Self::Token),
            _ => Err(AuthEnvError::UnknownMethod {
                got: raw.to_owned(),
            }),
        }
    }
}

/// Why no login could be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthEnvError {
    /// `VAULT_AUTH_METHOD` names no known method.
    #[error(
        "invalid VAULT_AUTH_METHOD: got {got:?}; expected one of aws, ec2, approle, s3-token, token"
    )]
    UnknownMethod {
        /// The value found (a method name, never a secret).
        got: String,
    },

    /// Nothing says how to log in.
    #[error("no {who} login configured: {hint}")]
    NotConfigured {
        /// Whose login ([`Selection::who`]).
        who: &'static str,
        /// What to set ([`Selection::hint`]).
        hint: &'static str,
    },

    /// This build leaves the chosen method out (feature `s3`).
    #[error("the {method} login is not in this build (vault-auth-env feature `s3`)")]
    Unsupported {
        /// The chosen method.
        method: AuthMethod,
    },

    /// The chosen method's variables are missing or invalid.
    #[error("cannot configure the {method} login")]
    Config {
        /// The chosen method.
        method: AuthMethod,
        /// What is wrong, naming the variable.
        #[source]
        source: ConfigError,
    },

    /// The chosen AppRole or S3 token login's variables are missing or invalid.
    #[error("cannot configure the {method} login")]
    AppRole {
        /// The chosen method.
        method: AuthMethod,
        /// What is wrong, naming the variable.
        #[source]
        source: vault_approle::Error,
    },
}

/// The login configured by `lookup` under [`Selection::DEFAULT`] (see the
/// crate documentation).
pub fn auth_from_lookup<F>(lookup: F) -> Result<Arc<dyn VaultAuth>, AuthEnvError>
where
    F: Fn(&str) -> Option<String>,
{
    Selection::DEFAULT.auth_from_lookup(lookup)
}

/// The login of `method`, configured by `lookup`.
pub fn build<F>(method: AuthMethod, lookup: F) -> Result<Arc<dyn VaultAuth>, AuthEnvError>
where
    F: Fn(&str) -> Option<String>,
{
    let config = |source| AuthEnvError::Config { method, source };
    let approle = |source| AuthEnvError::AppRole { method, source };
    Ok(match method {
        AuthMethod::AwsIam => Arc::new(AwsIamAuth::from_lookup(lookup).map_err(config)?),
        AuthMethod::Ec2 => Arc::new(Ec2Auth::from_lookup(lookup).map_err(config)?),
        AuthMethod::AppRole => Arc::new(AppRoleAuth::from_lookup(lookup).map_err(approle)?),
        #[cfg(feature = "s3")]
        AuthMethod::S3Token => Arc::new(S3TokenAuth::from_lookup(lookup).map_err(approle)?),
        #[cfg(not(feature = "s3"))]
        AuthMethod::S3Token => return Err(AuthEnvError::Unsupported { method }),
        AuthMethod::Token => Arc::new(TokenAuth::from_lookup(lookup).map_err(config)?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    fn chain(err: &dyn std::error::Error) -> String {
        let mut out = err.to_string();
        let mut cur = err.source();
        while let Some(e) = cur {
            out.push_str(": ");
            out.push_str(&e.to_string());
            cur = e.source();
        }
        out
    }

    #[test]
    fn detects_the_configured_method_in_documented_order() {
        let cases: &[(&'static [(&str, &str)], &str)] = &[
            (
                &[("VAULT_AUTH_ROLE", "fn"), ("VAULT_TOKEN", "hvs.x")],
                "aws-iam",
            ),
            (
                &[("VAULT_ROLE_ID", "r"), ("VAULT_SECRET_ID", "s")],
                "approle",
            ),
            (&[("VAULT_ROLE_ID_FILE", "/run/role")], "approle"),
            (
                &[("VAULT_TOKEN_S3_BUCKET", "b"), ("VAULT_TOKEN_S3_KEY", "k")],
                "s3-token",
            ),
            (&[("VAULT_TOKEN", "hvs.x")], "token"),
            (&[("VAULT_TOKEN_FILE", "/run/token")], "token"),
            (
                &[
                    ("VAULT_AUTH_METHOD", "EC2"),
                    ("VAULT_AUTH_ROLE", "ami-role"),
                ],
                "ec2",
            ),
            (
                &[
                    ("VAULT_AUTH_METHOD", "token"),
                    ("VAULT_AUTH_ROLE", "fn"),
                    ("VAULT_TOKEN", "t"),
                ],
                "token",
            ),
        ];
        for (pairs, want) in cases {
            if cfg!(not(feature = "s3")) && *want == "s3-token" {
                let err = auth_from_lookup(env(pairs)).err().unwrap();
                assert!(matches!(err, AuthEnvError::Unsupported { .. }), "{err}");
                continue;
            }
            let auth = auth_from_lookup(env(pairs)).unwrap();
            assert_eq!(auth.method(), *want, "{pairs:?}");
        }
    }

    #[test]
    fn each_binary_policy_detects_its_own_methods_and_a_name_always_wins() {
        let delivery = env(&[
            ("VAULT_APPROLE_S3_BUCKET", "delivery"),
            ("VAULT_TOKEN_S3_BUCKET", "tokens"),
            ("VAULT_TOKEN", "hvs.x"),
        ]);
        let pick = |p: Selection| p.method(&delivery).unwrap();
        assert_eq!(pick(Selection::DEFAULT), Some(AuthMethod::AppRole));
        // The orchestrator's bucket is its delivery, never its login.
        assert_eq!(pick(Selection::ORCHESTRATOR), Some(AuthMethod::S3Token));
        assert_eq!(pick(Selection::EXEC), Some(AuthMethod::AppRole));
        let tokens = env(&[("VAULT_TOKEN_S3_KEY", "k"), ("VAULT_TOKEN", "hvs.x")]);
        assert_eq!(
            Selection::EXEC.method(&tokens).unwrap(),
            Some(AuthMethod::Token)
        );
        assert_eq!(
            Selection::ORCHESTRATOR.method(&tokens).unwrap(),
            Some(AuthMethod::S3Token)
        );
        for policy in [Selection::DEFAULT, Selection::ORCHESTRATOR, Selection::EXEC] {
            for method in [
                AuthMethod::AwsIam,
                AuthMethod::Ec2,
                AuthMethod::AppRole,
                AuthMethod::S3Token,
                AuthMethod::Token,
            ] {
                let named =
                    |name: &str| (name == METHOD_VARIABLE).then(|| method.as_str().to_uppercase());
                assert_eq!(policy.method(named).unwrap(), Some(method), "{policy:?}");
            }
            let err = policy.auth_from_lookup(env(&[])).err().unwrap().to_string();
            assert!(
                err.starts_with(&format!("no {} login configured: set ", policy.who)),
                "{err}"
            );
        }
    }

    #[test]
    fn explains_what_is_missing_or_wrong() {
        let err = auth_from_lookup(env(&[])).err().unwrap();
        assert!(matches!(err, AuthEnvError::NotConfigured { .. }));
        assert!(err.to_string().contains("VAULT_AUTH_ROLE"), "{err}");

        let err = auth_from_lookup(env(&[("VAULT_AUTH_METHOD", "kerberos")]))
            .err()
            .unwrap();
        assert!(err.to_string().contains("\"kerberos\""), "{err}");
        assert!(err.to_string().contains("approle"), "{err}");

        let err = auth_from_lookup(env(&[("VAULT_AUTH_METHOD", "aws")]))
            .err()
            .unwrap();
        let text = chain(&err);
        assert!(
            text.contains("aws login") && text.contains("VAULT_AUTH_ROLE"),
            "{text}"
        );

        let err = auth_from_lookup(env(&[
            ("VAULT_AUTH_METHOD", "s3-token"),
            ("VAULT_TOKEN_S3_BUCKET", "b"),
        ]))
        .err()
        .unwrap();
        let text = chain(&err);
        if cfg!(feature = "s3") {
            assert!(text.contains("VAULT_TOKEN_S3_KEY"), "{text}");
        } else {
            assert!(text.contains("not in this build"), "{text}");
        }
    }

    #[test]
    fn secrets_never_reach_errors() {
        let err = auth_from_lookup(env(&[
            ("VAULT_ROLE_ID", "role-id-value"),
            ("VAULT_SECRET_ID", "secret-id-value"),
            ("VAULT_SECRET_ID_WRAPPED", "maybe"),
        ]))
        .err()
        .unwrap();
        let text = format!("{} {err:?}", chain(&err));
        assert!(text.contains("VAULT_SECRET_ID_WRAPPED"), "{text}");
        assert!(!text.contains("secret-id-value"), "{text}");
    }
}
