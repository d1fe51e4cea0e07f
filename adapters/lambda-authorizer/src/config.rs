//! Configuration from the environment (read through a lookup function).

use std::time::Duration;

use secrecy::SecretString;

use crate::ConfigError;
use crate::request::PolicyResource;
use crate::tokens::TokenSet;

/// Default of `AUTHORIZER_COOKIE_NAME`.
pub const DEFAULT_COOKIE_NAME: &str = "auth";
/// Default of `AUTHORIZER_TOKENS_REFRESH_SECONDS`.
pub const DEFAULT_REFRESH: Duration = Duration::from_secs(300);

/// The authorizer's settings.
///
/// | variable | default | meaning |
/// |---|---|---|
/// | `AUTHORIZER_TOKENS` | – | valid tokens, comma-separated (labels `env-1`, `env-2`, ...) |
/// | `AUTHORIZER_TOKENS_SECRET_ID` | – | Secrets Manager secret (name or ARN) holding more valid tokens |
/// | `AUTHORIZER_TOKENS_REFRESH_SECONDS` | `300` | how old the secret's tokens may get before they are read again |
/// | `AUTHORIZER_COOKIE_NAME` | `auth` | cookie holding the token when there is no `Authorization` header |
/// | `AUTHORIZER_POLICY_RESOURCE` | `stage` | REST policy resource: `stage` (`<api>/<stage>/*/*`) or `method` (the `methodArn`) |
///
/// At least one of `AUTHORIZER_TOKENS` and `AUTHORIZER_TOKENS_SECRET_ID` is
/// required.
#[derive(Debug)]
pub struct AuthorizerConfig {
    /// Tokens of `AUTHORIZER_TOKENS`.
    pub env_tokens: TokenSet,
    /// `AUTHORIZER_TOKENS_SECRET_ID`.
    pub secret_id: Option<String>,
    /// `AUTHORIZER_TOKENS_REFRESH_SECONDS`.
    pub refresh: Duration,
    /// `AUTHORIZER_COOKIE_NAME`.
    pub cookie_name: String,
    /// `AUTHORIZER_POLICY_RESOURCE`.
    pub policy_resource: PolicyResource,
}

fn is_cookie_name(s: &str) -> bool {
    // RFC 6265 cookie-name: an RFC 7230 token.
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

impl AuthorizerConfig {
    /// Reads the variables through `lookup` (e.g. `|k| std::env::var(k).ok()`).
    /// Empty values count as unset.
    pub fn from_lookup<F>(lookup: F) -> Result<Self, ConfigError>
    where
        F: Fn(&str) -> Option<String>,
    {
        let get = |k: &str| lookup(k).filter(|v| !v.trim().is_empty());
        let env_tokens = match get("AUTHORIZER_TOKENS") {
            Some(v) => TokenSet::from_env_list(&SecretString::from(v))
                .map_err(|e| ConfigError::new("AUTHORIZER_TOKENS", e.to_string()))?,
            None => TokenSet::default(),
        };
        let secret_id = get("AUTHORIZER_TOKENS_SECRET_ID").map(|s| s.trim().to_owned());
        if env_tokens.is_empty() && secret_id.is_none() {
            return Err(ConfigError::new(
                "AUTHORIZER_TOKENS",
                "no valid token is configured: set AUTHORIZER_TOKENS (comma-separated tokens) and/or AUTHORIZER_TOKENS_SECRET_ID (a Secrets Manager secret name or ARN)".to_owned(),
            ));
        }
        let refresh = match get("AUTHORIZER_TOKENS_REFRESH_SECONDS") {
            Some(v) => Duration::from_secs(v.trim().parse::<u64>().map_err(|_| {
                ConfigError::new(
                    "AUTHORIZER_TOKENS_REFRESH_SECONDS",
                    format!("{v:?} is not a whole number of seconds (e.g. 300)"),
                )
            })?),
            None => DEFAULT_REFRESH,
        };
        let cookie_name = get("AUTHORIZER_COOKIE_NAME")
            .map(|s| s.trim().to_owned())
            .unwrap_or_else(|| DEFAULT_COOKIE_NAME.to_owned());
        if !is_cookie_name(&cookie_name) {
            return Err(ConfigError::new(
                "AUTHORIZER_COOKIE_NAME",
                format!(
                    "{cookie_name:?} is not a cookie name (letters, digits and !#$%&'*+-.^_`|~)"
                ),
            ));
        }
        let policy_resource = match get("AUTHORIZER_POLICY_RESOURCE")
            .map(|s| s.trim().to_ascii_lowercase())
            .as_deref()
        {
            None | Some("stage") => PolicyResource::Stage,
            Some("method") => PolicyResource::Method,
            Some(other) => {
                return Err(ConfigError::new(
                    "AUTHORIZER_POLICY_RESOURCE",
                    format!("{other:?} is not one of: stage, method"),
                ));
            }
        };
        Ok(Self {
            env_tokens,
            secret_id,
            refresh,
            cookie_name,
            policy_resource,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn config(vars: &[(&str, &str)]) -> Result<AuthorizerConfig, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        AuthorizerConfig::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults() {
        let c = config(&[("AUTHORIZER_TOKENS", "tok-aaaaaaaaaaaaaaaa")]).unwrap();
        assert_eq!(c.env_tokens.len(), 1);
        assert_eq!(c.secret_id, None);
        assert_eq!(c.refresh, Duration::from_secs(300));
        assert_eq!(c.cookie_name, "auth");
        assert_eq!(c.policy_resource, PolicyResource::Stage);
        assert!(!format!("{c:?}").contains("tok-aaaa"));
    }

    #[test]
    fn everything_set() {
        let c = config(&[
            ("AUTHORIZER_TOKENS_SECRET_ID", " api/tokens "),
            ("AUTHORIZER_TOKENS_REFRESH_SECONDS", "0"),
            ("AUTHORIZER_COOKIE_NAME", "__Host-session"),
            ("AUTHORIZER_POLICY_RESOURCE", "Method"),
        ])
        .unwrap();
        assert!(c.env_tokens.is_empty());
        assert_eq!(c.secret_id.as_deref(), Some("api/tokens"));
        assert_eq!(c.refresh, Duration::ZERO);
        assert_eq!(c.cookie_name, "__Host-session");
        assert_eq!(c.policy_resource, PolicyResource::Method);
    }

    #[test]
    fn errors_name_the_variable_and_never_the_token() {
        type Vars<'a> = &'a [(&'a str, &'a str)];
        let cases: [(Vars<'_>, &str, &str); 6] = [
            (&[], "AUTHORIZER_TOKENS", "no valid token"),
            (
                &[("AUTHORIZER_TOKENS", " , ")],
                "AUTHORIZER_TOKENS",
                "no valid token",
            ),
            (
                &[("AUTHORIZER_TOKENS", "tooshort-secret")],
                "AUTHORIZER_TOKENS",
                "entry 1",
            ),
            (
                &[
                    ("AUTHORIZER_TOKENS_SECRET_ID", "s"),
                    ("AUTHORIZER_TOKENS_REFRESH_SECONDS", "5m"),
                ],
                "AUTHORIZER_TOKENS_REFRESH_SECONDS",
                "whole number",
            ),
            (
                &[
                    ("AUTHORIZER_TOKENS_SECRET_ID", "s"),
                    ("AUTHORIZER_COOKIE_NAME", "a b"),
                ],
                "AUTHORIZER_COOKIE_NAME",
                "not a cookie name",
            ),
            (
                &[
                    ("AUTHORIZER_TOKENS_SECRET_ID", "s"),
                    ("AUTHORIZER_POLICY_RESOURCE", "api"),
                ],
                "AUTHORIZER_POLICY_RESOURCE",
                "stage, method",
            ),
        ];
        for (vars, var, text) in cases {
            let e = config(vars).unwrap_err();
            assert_eq!(e.variable(), var);
            let msg = e.to_string();
            assert!(msg.contains(var) && msg.contains(text), "{msg}");
            assert!(!msg.contains("tooshort-secret"), "{msg}");
        }
    }
}
