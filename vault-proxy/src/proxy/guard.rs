//! The SSRF guard: what a request must carry, and what it must not, before
//! anything leaves for Vault.

use http::StatusCode;
use http::header::{self, HeaderMap};
use secrecy::ExposeSecret;
use subtle::ConstantTimeEq;

use super::{Failure, X_VAULT_REQUEST};
use crate::config::GuardConfig;
use crate::metrics::{Event, Metrics};
use crate::upstream::check_path;

/// Refuses (and counts) a request the guard does not let through: a path
/// with dot segments (`400`, guard or not: the upstream URL must never leave
/// `<VAULT_ADDR>/v1/`), one that came through another proxy (`400`), or one
/// without `X-Vault-Request: true` or the secret header (`412`).
pub(super) fn check(
    guard: &GuardConfig,
    metrics: &Metrics,
    path: &str,
    headers: &HeaderMap,
) -> Result<(), Failure> {
    let refused = if let Err(message) = check_path(path) {
        Failure::new(StatusCode::BAD_REQUEST, message)
    } else if let Some(message) = forwarded_refusal(guard, headers) {
        Failure::new(StatusCode::BAD_REQUEST, message)
    } else if !guard_allows(guard, headers) {
        let alt = guard
            .secret_header
            .as_ref()
            .map(|(h, _)| format!(" or the header {h} with the configured secret"))
            .unwrap_or_default();
        Failure::new(
            StatusCode::PRECONDITION_FAILED,
            format!(
                "vault-aws proxy: missing required header: send X-Vault-Request: true{alt} \
                 (protects against server-side request forgery; set \
                 VAULT_PROXY_REQUIRE_REQUEST_HEADER=false to switch it off)"
            ),
        )
    } else {
        return Ok(());
    };
    metrics.inc(Event::Rejected);
    Err(refused)
}

/// `X-Vault-Request: true`, or the secret header with the right value
/// (constant-time compare).
fn guard_allows(guard: &GuardConfig, headers: &HeaderMap) -> bool {
    if !guard.enabled {
        return true;
    }
    if headers
        .get(&X_VAULT_REQUEST)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"true"))
    {
        return true;
    }
    match &guard.secret_header {
        Some((name, secret)) => headers
            .get(name)
            .is_some_and(|v| bool::from(v.as_bytes().ct_eq(secret.expose_secret().as_bytes()))),
        None => false,
    }
}

/// With the guard on, a request that passed through another proxy
/// (`X-Forwarded-For` or `Forwarded`) is refused, as AWS's caching agent does:
/// the local proxy is for local callers.
fn forwarded_refusal(guard: &GuardConfig, headers: &HeaderMap) -> Option<&'static str> {
    (guard.enabled
        && (headers.contains_key("x-forwarded-for") || headers.contains_key(header::FORWARDED)))
    .then_some(
        "vault-aws proxy refuses requests with X-Forwarded-For or Forwarded: they came \
         through another proxy (protects against server-side request forgery; set \
         VAULT_PROXY_REQUIRE_REQUEST_HEADER=false to switch it off)",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::header::{HeaderName, HeaderValue};
    use secrecy::SecretString;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(HeaderName::from_static(k), HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn guard_needs_the_request_header_or_the_secret() {
        let guard = GuardConfig {
            enabled: true,
            secret_header: Some((
                HeaderName::from_static("x-vault-aws-session-token"),
                SecretString::from("s3cret"),
            )),
        };
        assert!(!guard_allows(&guard, &headers(&[])));
        assert!(guard_allows(
            &guard,
            &headers(&[("x-vault-request", "true")])
        ));
        assert!(guard_allows(
            &guard,
            &headers(&[("x-vault-request", "TRUE")])
        ));
        assert!(!guard_allows(&guard, &headers(&[("x-vault-request", "1")])));
        assert!(guard_allows(
            &guard,
            &headers(&[("x-vault-aws-session-token", "s3cret")])
        ));
        assert!(!guard_allows(
            &guard,
            &headers(&[("x-vault-aws-session-token", "s3cre")])
        ));
        assert!(guard_allows(
            &GuardConfig {
                enabled: false,
                secret_header: None
            },
            &headers(&[])
        ));
    }
}
