//! The two event shapes API Gateway sends, the credential they carry, and
//! the two response shapes it expects back.

use std::collections::HashMap;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::tokens::{MAX_TOKEN_LEN, is_token_text};

/// Why a request was denied (safe to log and to return in the context).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DenyReason {
    /// Neither an `Authorization` header nor the token cookie.
    NoCredentials,
    /// `Authorization` uses a scheme other than `Bearer`.
    UnsupportedScheme,
    /// `Bearer` or the cookie with an empty token.
    EmptyToken,
    /// A token with characters or a length no valid token has.
    MalformedToken,
    /// Several different `Authorization` headers or token cookies.
    AmbiguousCredentials,
    /// A well-formed token that is not in the valid set.
    UnknownToken,
    /// The valid tokens could not be loaded (see the error logged at load).
    TokensUnavailable,
}

impl DenyReason {
    /// Short kebab-case name used in logs and in the deny context.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NoCredentials => "no-credentials",
            Self::UnsupportedScheme => "unsupported-scheme",
            Self::EmptyToken => "empty-token",
            Self::MalformedToken => "malformed-token",
            Self::AmbiguousCredentials => "ambiguous-credentials",
            Self::UnknownToken => "unknown-token",
            Self::TokensUnavailable => "tokens-unavailable",
        }
    }
}

impl std::fmt::Display for DenyReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where the presented token came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CredentialSource {
    /// `Authorization: Bearer <token>` (or a TOKEN authorizer's
    /// `authorizationToken`).
    Bearer,
    /// The token cookie.
    Cookie,
}

impl CredentialSource {
    /// `bearer` or `cookie`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Bearer => "bearer",
            Self::Cookie => "cookie",
        }
    }
}

/// A token presented by the caller (redacting `Debug`).
pub struct Credential {
    /// Where it came from.
    pub source: CredentialSource,
    /// The token.
    pub token: SecretString,
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credential")
            .field("source", &self.source)
            .field("token", &"<redacted>")
            .finish()
    }
}

/// The request facts the decision needs, from either event shape.
#[derive(Debug, Default)]
pub struct RequestParts {
    /// Every header value, names as sent (any case); a name may repeat.
    pub headers: Vec<(String, String)>,
    /// HTTP API 2.0 `cookies` entries (`name=value`).
    pub cookies: Vec<String>,
    /// A TOKEN authorizer's `authorizationToken`.
    pub authorization_token: Option<String>,
}

/// Which API flavour sent the event, and so which response it expects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EventKind {
    /// HTTP API, payload format 2.0: simple response.
    HttpV2 {
        /// `routeArn` of the request.
        route_arn: String,
    },
    /// REST API (REQUEST or TOKEN authorizer) or HTTP API payload format
    /// 1.0: IAM policy response.
    Policy {
        /// `methodArn` of the request.
        method_arn: String,
    },
}

/// A parsed authorizer event.
#[derive(Debug)]
pub struct AuthorizerEvent {
    /// The API flavour.
    pub kind: EventKind,
    /// Headers, cookies, token.
    pub parts: RequestParts,
    /// `requestContext.requestId`, for the log line.
    pub request_id: Option<String>,
    /// The caller's IP address, for the log line.
    pub source_ip: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct RawEvent {
    version: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    route_arn: Option<String>,
    method_arn: Option<String>,
    authorization_token: Option<String>,
    headers: Option<HashMap<String, Option<String>>>,
    multi_value_headers: Option<HashMap<String, Option<Vec<String>>>>,
    cookies: Option<Vec<String>>,
    request_context: Option<RawContext>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct RawContext {
    request_id: Option<String>,
    http: Option<RawHttp>,
    identity: Option<RawIdentity>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct RawHttp {
    source_ip: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct RawIdentity {
    source_ip: Option<String>,
}

impl AuthorizerEvent {
    /// Reads an event: `"version": "2.0"` with `routeArn` is an HTTP API
    /// payload 2.0 event; an event with `methodArn` is a REST API
    /// REQUEST/TOKEN event (or HTTP API payload 1.0). Anything else is an
    /// error that names what was expected.
    pub fn parse(event: &Value) -> Result<Self, String> {
        const EXPECTED: &str = "expected an API Gateway Lambda authorizer event: HTTP API payload 2.0 (\"version\": \"2.0\" with \"routeArn\") or REST API (\"methodArn\")";
        if !event.is_object() {
            return Err(format!("the event is not a JSON object; {EXPECTED}"));
        }
        // serde's message can quote a value (a header, a cookie): not logged.
        let raw = RawEvent::deserialize(event).map_err(|_| {
            format!(
                "a field has an unexpected type (headers must map names to strings, multiValueHeaders names to lists of strings, cookies must be a list of strings); {EXPECTED}"
            )
        })?;
        let ctx = raw.request_context.unwrap_or_default();
        let source_ip = ctx
            .http
            .and_then(|h| h.source_ip)
            .or_else(|| ctx.identity.and_then(|i| i.source_ip));
        let kind = match (raw.version.as_deref(), raw.route_arn, raw.method_arn) {
            (Some("2.0"), Some(route_arn), _) => EventKind::HttpV2 { route_arn },
            (_, _, Some(method_arn)) => EventKind::Policy { method_arn },
            _ => return Err(EXPECTED.to_owned()),
        };
        if let Some(t) = raw.kind.as_deref()
            && t != "REQUEST"
            && t != "TOKEN"
        {
            return Err(format!("unsupported authorizer type {t:?}; {EXPECTED}"));
        }
        let mut headers: Vec<(String, String)> = Vec::new();
        for (name, value) in raw.headers.unwrap_or_default() {
            if let Some(v) = value {
                headers.push((name, v));
            }
        }
        for (name, values) in raw.multi_value_headers.unwrap_or_default() {
            for v in values.unwrap_or_default() {
                headers.push((name.clone(), v));
            }
        }
        let authorization_token = if raw.kind.as_deref() == Some("TOKEN") {
            raw.authorization_token
        } else {
            None
        };
        Ok(Self {
            kind,
            parts: RequestParts {
                headers,
                cookies: raw.cookies.unwrap_or_default(),
                authorization_token,
            },
            request_id: ctx.request_id,
            source_ip,
        })
    }
}

/// Distinct values, first-seen order.
fn distinct(values: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for v in values {
        if !out.contains(&v) {
            out.push(v);
        }
    }
    out
}

fn check_token(token: &str) -> Result<(), DenyReason> {
    if token.is_empty() {
        Err(DenyReason::EmptyToken)
    } else if token.len() > MAX_TOKEN_LEN || !is_token_text(token) {
        Err(DenyReason::MalformedToken)
    } else {
        Ok(())
    }
}

/// Reads `Bearer <token>` (scheme case-insensitive).
fn parse_authorization(value: &str) -> Result<SecretString, DenyReason> {
    let value = value.trim_matches([' ', '\t']);
    let (scheme, rest) = match value.find([' ', '\t']) {
        Some(i) => (&value[..i], &value[i..]),
        None => (value, ""),
    };
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(if scheme.is_empty() {
            DenyReason::EmptyToken
        } else {
            DenyReason::UnsupportedScheme
        });
    }
    let token = rest.trim_matches([' ', '\t']);
    check_token(token)?;
    Ok(SecretString::from(token.to_owned()))
}

/// Values of cookie `name` in one `Cookie` header or `cookies` entry.
fn cookie_values<'a>(pairs: &'a str, name: &'a str) -> impl Iterator<Item = String> + 'a {
    pairs.split(';').filter_map(move |pair| {
        let (n, v) = pair.split_once('=')?;
        if n.trim() != name {
            return None;
        }
        let v = v.trim();
        let v = v
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .unwrap_or(v);
        Some(v.to_owned())
    })
}

/// The caller's token: the `Authorization` header when there is one
/// (`Bearer`, case-insensitive; it decides alone, no fallback to the
/// cookie), else cookie `cookie_name` from the `cookies` array and `Cookie`
/// headers. Several different values of the chosen source are ambiguous.
pub fn extract_credential(
    parts: &RequestParts,
    cookie_name: &str,
) -> Result<Credential, DenyReason> {
    let authorization = distinct(
        parts.authorization_token.iter().cloned().chain(
            parts
                .headers
                .iter()
                .filter(|(n, _)| n.eq_ignore_ascii_case("authorization"))
                .map(|(_, v)| v.clone()),
        ),
    );
    match authorization.as_slice() {
        [] => {}
        [one] => {
            return parse_authorization(one).map(|token| Credential {
                source: CredentialSource::Bearer,
                token,
            });
        }
        _ => return Err(DenyReason::AmbiguousCredentials),
    }
    let cookies = distinct(
        parts
            .cookies
            .iter()
            .map(String::as_str)
            .chain(
                parts
                    .headers
                    .iter()
                    .filter(|(n, _)| n.eq_ignore_ascii_case("cookie"))
                    .map(|(_, v)| v.as_str()),
            )
            .flat_map(|c| cookie_values(c, cookie_name))
            .collect::<Vec<_>>(),
    );
    match cookies.as_slice() {
        [] => Err(DenyReason::NoCredentials),
        [one] => {
            check_token(one)?;
            Ok(Credential {
                source: CredentialSource::Cookie,
                token: SecretString::from(one.clone()),
            })
        }
        _ => Err(DenyReason::AmbiguousCredentials),
    }
}

/// What the IAM policy of a REST response covers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PolicyResource {
    /// `arn:aws:execute-api:<region>:<account>:<api>/<stage>/*/*`: every
    /// method of the stage, so a cached decision (cached per identity
    /// source, not per method) fits every route it is reused for.
    #[default]
    Stage,
    /// Exactly the `methodArn` of the request (set the authorizer's cache
    /// TTL to 0, or a cached Allow for one route denies the others).
    Method,
}

impl PolicyResource {
    /// The policy's `Resource` for `method_arn`. A `methodArn` that is not
    /// `arn:...:<api>/<stage>/<verb>/<path>` is used as it is.
    pub fn resource(self, method_arn: &str) -> String {
        if self == Self::Method {
            return method_arn.to_owned();
        }
        let mut parts = method_arn.splitn(6, ':');
        let prefix: Vec<&str> = parts.by_ref().take(5).collect();
        let Some(path) = parts.next() else {
            return method_arn.to_owned();
        };
        let mut segments = path.splitn(3, '/');
        match (segments.next(), segments.next(), segments.next()) {
            (Some(api), Some(stage), Some(_))
                if prefix.len() == 5
                    && prefix[0] == "arn"
                    && !api.is_empty()
                    && !stage.is_empty() =>
            {
                format!("{}:{api}/{stage}/*/*", prefix.join(":"))
            }
            _ => method_arn.to_owned(),
        }
    }
}

/// The decision for one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Allowed: the label of the client whose token matched.
    Allow {
        /// Non-secret client label.
        client: String,
        /// Where the token was found.
        via: CredentialSource,
    },
    /// Denied, and why.
    Deny(DenyReason),
}

/// The principal of a denied REST request.
pub const DENIED_PRINCIPAL: &str = "anonymous";

/// The response API Gateway expects for `kind`: `{"isAuthorized", "context"}`
/// for HTTP API 2.0, an IAM policy for REST. The context holds `client` on
/// allow and `reason` on deny, never a token.
pub fn response(kind: &EventKind, decision: &Decision, resource: PolicyResource) -> Value {
    let (allowed, principal, context) = match decision {
        Decision::Allow { client, .. } => (true, client.as_str(), json!({ "client": client })),
        Decision::Deny(reason) => (
            false,
            DENIED_PRINCIPAL,
            json!({ "reason": reason.as_str() }),
        ),
    };
    match kind {
        EventKind::HttpV2 { .. } => json!({ "isAuthorized": allowed, "context": context }),
        EventKind::Policy { method_arn } => json!({
            "principalId": principal,
            "policyDocument": {
                "Version": "2012-10-17",
                "Statement": [{
                    "Action": "execute-api:Invoke",
                    "Effect": if allowed { "Allow" } else { "Deny" },
                    "Resource": resource.resource(method_arn),
                }],
            },
            "context": context,
        }),
    }
}

impl Credential {
    pub(crate) fn token(&self) -> &str {
        self.token.expose_secret()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: &str = "tok-aaaaaaaaaaaaaaaa";

    fn parts(headers: &[(&str, &str)], cookies: &[&str]) -> RequestParts {
        RequestParts {
            headers: headers
                .iter()
                .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
                .collect(),
            cookies: cookies.iter().map(|c| (*c).to_owned()).collect(),
            authorization_token: None,
        }
    }

    fn token(p: &RequestParts) -> Result<(CredentialSource, String), DenyReason> {
        extract_credential(p, "auth").map(|c| (c.source, c.token().to_owned()))
    }

    #[test]
    fn bearer_in_any_case_and_spacing() {
        for h in [
            format!("Bearer {T}"),
            format!("bearer {T}"),
            format!("BEARER\t {T} "),
        ] {
            for name in ["Authorization", "authorization", "AUTHORIZATION"] {
                assert_eq!(
                    token(&parts(&[(name, &h)], &[])),
                    Ok((CredentialSource::Bearer, T.to_owned())),
                    "{name}: {h}"
                );
            }
        }
    }

    #[test]
    fn bad_authorization_headers_are_denied_without_cookie_fallback() {
        let cookie = format!("auth={T}");
        let cases = [
            (format!("Basic {T}"), DenyReason::UnsupportedScheme),
            (T.to_owned(), DenyReason::UnsupportedScheme),
            ("Bearer".to_owned(), DenyReason::EmptyToken),
            ("Bearer   ".to_owned(), DenyReason::EmptyToken),
            (String::new(), DenyReason::EmptyToken),
            (format!("Bearer {T} extra"), DenyReason::MalformedToken),
            (format!("Bearer {T},Bearer {T}"), DenyReason::MalformedToken),
            (format!("Bearer {T}\u{e9}"), DenyReason::MalformedToken),
            (
                format!("Bearer {}", "a".repeat(MAX_TOKEN_LEN + 1)),
                DenyReason::MalformedToken,
            ),
        ];
        for (h, reason) in cases {
            assert_eq!(
                token(&parts(&[("authorization", &h)], &[&cookie])),
                Err(reason),
                "{h}"
            );
        }
        assert_eq!(
            token(&parts(
                &[
                    ("Authorization", &format!("Bearer {T}")),
                    ("authorization", "Bearer other-token-1234567"),
                ],
                &[]
            )),
            Err(DenyReason::AmbiguousCredentials)
        );
        // The same value twice (headers and multiValueHeaders) is one value.
        assert!(
            token(&parts(
                &[
                    ("Authorization", &format!("Bearer {T}")),
                    ("Authorization", &format!("Bearer {T}")),
                ],
                &[]
            ))
            .is_ok()
        );
    }

    #[test]
    fn cookie_from_array_or_header() {
        let ok = Ok((CredentialSource::Cookie, T.to_owned()));
        assert_eq!(token(&parts(&[], &["a=1", &format!("auth={T}")])), ok);
        assert_eq!(
            token(&parts(&[("Cookie", &format!("a=1; auth={T}; b=2"))], &[])),
            ok
        );
        assert_eq!(
            token(&parts(&[("cookie", &format!("auth=\"{T}\""))], &[])),
            ok
        );
        // Same cookie in the array and the header: one value.
        assert_eq!(
            token(&parts(
                &[("cookie", &format!("auth={T}"))],
                &[&format!("auth={T}")]
            )),
            ok
        );
        assert_eq!(
            extract_credential(&parts(&[], &[&format!("session={T}")]), "session")
                .map(|c| c.token().to_owned()),
            Ok(T.to_owned())
        );
        assert_eq!(
            token(&parts(&[], &[&format!("Auth={T}"), &format!("xauth={T}")])),
            Err(DenyReason::NoCredentials),
            "cookie names are case-sensitive and exact"
        );
        assert_eq!(token(&parts(&[], &["auth="])), Err(DenyReason::EmptyToken));
        assert_eq!(
            token(&parts(
                &[],
                &[&format!("auth={T}"), "auth=other-token-123456789"]
            )),
            Err(DenyReason::AmbiguousCredentials)
        );
        assert_eq!(
            token(&parts(&[("x-api-key", T)], &[])),
            Err(DenyReason::NoCredentials)
        );
    }

    #[test]
    fn credential_debug_is_redacted() {
        let c = extract_credential(&parts(&[], &[&format!("auth={T}")]), "auth").unwrap();
        assert!(!format!("{c:?}").contains(T));
    }

    #[test]
    fn stage_resource_from_method_arn() {
        let arn = "arn:aws:execute-api:us-east-1:123456789012:abcdef123/test/GET/request/child";
        assert_eq!(
            PolicyResource::Stage.resource(arn),
            "arn:aws:execute-api:us-east-1:123456789012:abcdef123/test/*/*"
        );
        assert_eq!(PolicyResource::Method.resource(arn), arn);
        let root = "arn:aws-cn:execute-api:cn-north-1:123456789012:api/prod/GET/";
        assert_eq!(
            PolicyResource::Stage.resource(root),
            "arn:aws-cn:execute-api:cn-north-1:123456789012:api/prod/*/*"
        );
        for odd in [
            "",
            "not-an-arn",
            "arn:aws:execute-api:r:a:api",
            "arn:aws:execute-api:r:a:api/stage",
        ] {
            assert_eq!(PolicyResource::Stage.resource(odd), odd);
        }
    }

    #[test]
    fn unsupported_events_are_errors() {
        for e in [
            json!([]),
            json!({}),
            json!({"version": "2.0", "type": "REQUEST"}),
            json!({"type": "REQUEST", "routeArn": "arn"}),
            json!({"type": "WEIRD", "methodArn": "arn"}),
            json!({"methodArn": 5}),
            json!({"version": "2.0", "routeArn": "arn", "cookies": "auth=tok-secret-value-123456"}),
        ] {
            let err = AuthorizerEvent::parse(&e).unwrap_err();
            assert!(err.contains("expected"), "{e}: {err}");
            assert!(!err.contains("tok-secret-value"), "{err}");
        }
    }

    #[test]
    fn token_authorizer_event_uses_authorization_token() {
        let e = AuthorizerEvent::parse(&json!({
            "type": "TOKEN",
            "authorizationToken": format!("Bearer {T}"),
            "methodArn": "arn:aws:execute-api:us-west-2:123456789012:ymy8tbxw7b/*/GET/"
        }))
        .unwrap();
        assert!(matches!(e.kind, EventKind::Policy { .. }));
        assert_eq!(
            token(&e.parts),
            Ok((CredentialSource::Bearer, T.to_owned()))
        );
    }
}
