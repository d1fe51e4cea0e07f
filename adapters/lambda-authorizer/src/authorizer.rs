//! The decision: the valid token set (static, or refreshed from a
//! [`TokenSource`]) and one call per event.

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use async_trait::async_trait;
use secrecy::SecretString;
use serde_json::Value;
use tokio::time::Instant;

/// The token cache's clock: tokio's, so tests move it with
/// `tokio::time::advance`. (This crate does not link vault-client, the
/// home of the workspace's clock: an authorizer never talks to Vault.)
#[allow(clippy::disallowed_methods)] // this crate's one reading of the clock
fn clock_now() -> Instant {
    Instant::now()
}

use crate::config::AuthorizerConfig;
use crate::request::{
    AuthorizerEvent, Decision, DenyReason, PolicyResource, extract_credential, response,
};
use crate::tokens::TokenSet;
use crate::{AuthorizerError, SourceError};

/// Longest wait before the source is tried again after a failed read.
pub const MAX_RETRY_AFTER_FAILURE: Duration = Duration::from_secs(10);

/// Where the rotating tokens come from (the Secrets Manager secret in
/// production).
#[cfg_attr(any(test, feature = "test-util"), mockall::automock)]
#[async_trait]
pub trait TokenSource: Send + Sync {
    /// The current secret text (a JSON array or object, see
    /// [`TokenSet::from_secret`]).
    async fn fetch(&self) -> Result<SecretString, SourceError>;

    /// What to name in log lines and errors (e.g. the variable and secret
    /// id); never secret.
    fn describe(&self) -> String;
}

/// [`TokenSource`] reading `SecretString` of a Secrets Manager secret.
#[derive(Clone, Debug)]
pub struct SecretsManagerSource {
    client: aws_sdk_secretsmanager::Client,
    secret_id: String,
}

impl SecretsManagerSource {
    /// Reads `secret_id` (name or ARN) with `client`.
    pub fn new(client: aws_sdk_secretsmanager::Client, secret_id: impl Into<String>) -> Self {
        Self {
            client,
            secret_id: secret_id.into(),
        }
    }

    /// A client from the standard AWS configuration chain (region,
    /// credentials, and `AWS_ENDPOINT_URL_SECRETS_MANAGER` /
    /// `AWS_ENDPOINT_URL` for the endpoint).
    pub async fn from_env(secret_id: impl Into<String>) -> Self {
        let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        Self::new(aws_sdk_secretsmanager::Client::new(&sdk), secret_id)
    }
}

#[async_trait]
impl TokenSource for SecretsManagerSource {
    async fn fetch(&self) -> Result<SecretString, SourceError> {
        let out = self
            .client
            .get_secret_value()
            .secret_id(&self.secret_id)
            .send()
            .await
            .map_err(|e| {
                SourceError::new(format!(
                    "GetSecretValue {}: {}",
                    self.secret_id,
                    aws_sdk_secretsmanager::error::DisplayErrorContext(&e)
                ))
            })?;
        out.secret_string()
            .map(|s| SecretString::from(s.to_owned()))
            .ok_or_else(|| {
                SourceError::new(format!(
                    "secret {} has no SecretString (binary secrets are not supported)",
                    self.secret_id
                ))
            })
    }

    fn describe(&self) -> String {
        format!("AUTHORIZER_TOKENS_SECRET_ID={}", self.secret_id)
    }
}

struct State {
    /// The last good set (environment tokens plus the source's), or `None`
    /// before the first successful read.
    tokens: Option<Arc<TokenSet>>,
    /// When the source is read again.
    next_read: Instant,
}

/// Decides API Gateway authorizer events.
///
/// With a [`TokenSource`], the set is read on the first call of
/// [`Authorizer::refresh_if_due`] (or [`Authorizer::authorize`]) and again
/// once it is `refresh` old. A failed refresh keeps the last good set (and
/// logs a warning); while no read has succeeded every request is denied
/// (`tokens-unavailable`) and the error is logged. After a failure the
/// source is tried again after `min(refresh, 10 s)`.
pub struct Authorizer {
    env_tokens: Arc<TokenSet>,
    source: Option<Arc<dyn TokenSource>>,
    refresh: Duration,
    cookie_name: String,
    policy_resource: PolicyResource,
    state: ArcSwap<State>,
}

impl std::fmt::Debug for Authorizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authorizer")
            .field("env_tokens", &self.env_tokens.labels())
            .field("source", &self.source.as_ref().map(|s| s.describe()))
            .field("refresh", &self.refresh)
            .field("cookie_name", &self.cookie_name)
            .field("policy_resource", &self.policy_resource)
            .finish()
    }
}

impl Authorizer {
    /// An authorizer for `config`, reading the tokens of `source` (required
    /// when `config.secret_id` is set, see [`Authorizer::from_config`]).
    pub fn new(config: AuthorizerConfig, source: Option<Arc<dyn TokenSource>>) -> Self {
        let env_tokens = Arc::new(config.env_tokens);
        let tokens = if source.is_none() {
            Some(env_tokens.clone())
        } else {
            None
        };
        Self {
            env_tokens,
            source,
            refresh: config.refresh,
            cookie_name: config.cookie_name,
            policy_resource: config.policy_resource,
            state: ArcSwap::from_pointee(State {
                tokens,
                next_read: clock_now(),
            }),
        }
    }

    /// An authorizer for `config` with a [`SecretsManagerSource`] when
    /// `AUTHORIZER_TOKENS_SECRET_ID` is set.
    pub async fn from_config(config: AuthorizerConfig) -> Self {
        let source: Option<Arc<dyn TokenSource>> = match &config.secret_id {
            Some(id) => Some(Arc::new(SecretsManagerSource::from_env(id.clone()).await)),
            None => None,
        };
        Self::new(config, source)
    }

    /// Reads the source when it is due (first call, `refresh` elapsed, or
    /// the retry delay after a failure) and returns the current set, or
    /// `None` while no read has succeeded.
    pub async fn refresh_if_due(&self) -> Option<Arc<TokenSet>> {
        let state = self.state.load_full();
        let Some(source) = &self.source else {
            return state.tokens.clone();
        };
        let now = clock_now();
        if now < state.next_read {
            return state.tokens.clone();
        }
        let retry = now + self.refresh.min(MAX_RETRY_AFTER_FAILURE);
        let loaded = match source.fetch().await {
            Ok(secret) => TokenSet::from_secret(&secret).map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        let next = match (loaded, &state.tokens) {
            (Ok(set), _) => {
                let all = Arc::new(self.env_tokens.merged(&set));
                tracing::info!(
                    source = %source.describe(),
                    tokens = all.len(),
                    clients = ?all.labels(),
                    "valid tokens loaded"
                );
                State {
                    tokens: Some(all),
                    next_read: clock_now() + self.refresh,
                }
            }
            (Err(e), Some(old)) => {
                tracing::warn!(
                    source = %source.describe(),
                    error = %e,
                    "cannot refresh the valid tokens; keeping the last good set"
                );
                State {
                    tokens: Some(old.clone()),
                    next_read: retry,
                }
            }
            (Err(e), None) => {
                tracing::error!(
                    source = %source.describe(),
                    error = %e,
                    "cannot read the valid tokens from AUTHORIZER_TOKENS_SECRET_ID; denying every request until it can be read"
                );
                State {
                    tokens: None,
                    next_read: retry,
                }
            }
        };
        let tokens = next.tokens.clone();
        self.state.store(Arc::new(next));
        tokens
    }

    /// The decision for `event`'s credential.
    pub async fn decide(&self, event: &AuthorizerEvent) -> Decision {
        let credential = match extract_credential(&event.parts, &self.cookie_name) {
            Ok(c) => c,
            Err(reason) => return Decision::Deny(reason),
        };
        let Some(tokens) = self.refresh_if_due().await else {
            return Decision::Deny(DenyReason::TokensUnavailable);
        };
        match tokens.find(credential.token()) {
            Some(client) => Decision::Allow {
                client: client.to_owned(),
                via: credential.source,
            },
            None => Decision::Deny(DenyReason::UnknownToken),
        }
    }

    /// Decides one raw event and returns the response API Gateway expects
    /// (simple for HTTP API 2.0, IAM policy for REST). Every decision is
    /// logged with its reason and client label. An event of another shape
    /// is an error (API Gateway then answers 500: never an allow).
    pub async fn authorize(&self, event: &Value) -> Result<Value, AuthorizerError> {
        let event = AuthorizerEvent::parse(event).map_err(AuthorizerError::unsupported_event)?;
        let decision = self.decide(&event).await;
        let api = match &event.kind {
            crate::request::EventKind::HttpV2 { .. } => "http-v2",
            crate::request::EventKind::Policy { .. } => "rest",
        };
        let request_id = event.request_id.as_deref().unwrap_or("-");
        let source_ip = event.source_ip.as_deref().unwrap_or("-");
        match &decision {
            Decision::Allow { client, via } => tracing::info!(
                decision = "allow",
                client = %client,
                via = %via.as_str(),
                api,
                request_id,
                source_ip,
                "authorized"
            ),
            Decision::Deny(reason) => tracing::info!(
                decision = "deny",
                reason = %reason,
                api,
                request_id,
                source_ip,
                "denied"
            ),
        }
        Ok(response(&event.kind, &decision, self.policy_resource))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use serde_json::json;

    use super::*;

    const OLD: &str = "tok-old-aaaaaaaaaaaa";
    const NEW: &str = "tok-new-bbbbbbbbbbbb";
    const ENV: &str = "tok-env-cccccccccccc";

    fn config(vars: &[(&str, &str)]) -> AuthorizerConfig {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        AuthorizerConfig::from_lookup(|k| map.get(k).cloned()).unwrap()
    }

    fn http(headers: Value) -> Value {
        json!({"version": "2.0", "type": "REQUEST",
            "routeArn": "arn:aws:execute-api:us-east-1:123456789012:abcdef123/test/GET/request",
            "headers": headers})
    }

    fn bearer(t: &str) -> Value {
        http(json!({"authorization": format!("Bearer {t}")}))
    }

    fn secret(v: &str) -> Result<SecretString, SourceError> {
        Ok(SecretString::from(v.to_owned()))
    }

    fn mock(returns: Vec<Result<SecretString, SourceError>>) -> Arc<dyn TokenSource> {
        let mut m = MockTokenSource::new();
        let n = returns.len();
        let mut returns = returns.into_iter();
        m.expect_fetch().times(n).returning(move || {
            returns
                .next()
                .unwrap_or_else(|| Err(SourceError::new("no more".into())))
        });
        m.expect_describe().return_const("test source".to_owned());
        Arc::new(m)
    }

    async fn allowed(a: &Authorizer, t: &str) -> bool {
        a.authorize(&bearer(t)).await.unwrap()["isAuthorized"] == json!(true)
    }

    #[tokio::test]
    async fn env_tokens_only() {
        let a = Authorizer::new(config(&[("AUTHORIZER_TOKENS", ENV)]), None);
        let r = a.authorize(&bearer(ENV)).await.unwrap();
        assert_eq!(
            r,
            json!({"isAuthorized": true, "context": {"client": "env-1"}})
        );
        let r = a.authorize(&bearer(NEW)).await.unwrap();
        assert_eq!(
            r,
            json!({"isAuthorized": false, "context": {"reason": "unknown-token"}})
        );
        let r = a.authorize(&http(json!({}))).await.unwrap();
        assert_eq!(r["context"]["reason"], "no-credentials");
        assert!(a.authorize(&json!({"foo": 1})).await.is_err());
        assert!(!format!("{a:?}").contains(ENV));
    }

    #[tokio::test(start_paused = true)]
    async fn rotation_refreshes_after_the_interval_and_keeps_the_last_good_set() {
        let source = mock(vec![
            secret(&format!(r#"{{"web":"{OLD}"}}"#)),
            secret(&format!(r#"{{"web":"{NEW}"}}"#)),
            Err(SourceError::new("throttled".into())),
            secret("not json"),
            secret(&format!(r#"["{OLD}"]"#)),
        ]);
        let a = Authorizer::new(
            config(&[
                ("AUTHORIZER_TOKENS", ENV),
                ("AUTHORIZER_TOKENS_SECRET_ID", "x"),
                ("AUTHORIZER_TOKENS_REFRESH_SECONDS", "60"),
            ]),
            Some(source),
        );
        // Read 1.
        assert!(allowed(&a, OLD).await);
        assert!(allowed(&a, ENV).await, "environment tokens stay valid");
        assert!(!allowed(&a, NEW).await);
        tokio::time::advance(Duration::from_secs(59)).await;
        assert!(allowed(&a, OLD).await, "not yet refreshed");
        tokio::time::advance(Duration::from_secs(1)).await;
        // Read 2: rotated.
        assert!(allowed(&a, NEW).await);
        assert!(!allowed(&a, OLD).await);
        tokio::time::advance(Duration::from_secs(60)).await;
        // Read 3 fails: last good set kept; retried after 10 s.
        assert!(allowed(&a, NEW).await);
        tokio::time::advance(Duration::from_secs(9)).await;
        assert!(allowed(&a, NEW).await);
        tokio::time::advance(Duration::from_secs(1)).await;
        // Read 4: bad content, same.
        assert!(allowed(&a, NEW).await);
        tokio::time::advance(Duration::from_secs(10)).await;
        // Read 5: array form.
        let r = a.authorize(&bearer(OLD)).await.unwrap();
        assert_eq!(r["context"]["client"], "secret-1");
        assert!(!allowed(&a, NEW).await);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_first_read_denies_everything_then_recovers() {
        let source = mock(vec![
            Err(SourceError::new("AccessDenied".into())),
            secret(&format!(r#"["{OLD}"]"#)),
        ]);
        let a = Authorizer::new(
            config(&[
                ("AUTHORIZER_TOKENS", ENV),
                ("AUTHORIZER_TOKENS_SECRET_ID", "x"),
            ]),
            Some(source),
        );
        for t in [ENV, OLD] {
            let r = a.authorize(&bearer(t)).await.unwrap();
            assert_eq!(r["isAuthorized"], false);
            assert_eq!(r["context"]["reason"], "tokens-unavailable");
        }
        // Requests without a credential are denied without reading.
        assert_eq!(
            a.authorize(&http(json!({}))).await.unwrap()["context"]["reason"],
            "no-credentials"
        );
        tokio::time::advance(MAX_RETRY_AFTER_FAILURE).await;
        assert!(allowed(&a, OLD).await);
        assert!(allowed(&a, ENV).await);
    }

    #[tokio::test]
    async fn rest_policy_responses() {
        let a = Authorizer::new(
            config(&[("AUTHORIZER_TOKENS", &format!("{ENV},{OLD}"))]),
            None,
        );
        let event = |h: Value| {
            json!({"type": "REQUEST",
                "methodArn": "arn:aws:execute-api:us-east-1:123456789012:abcdef123/test/GET/request",
                "headers": h, "multiValueHeaders": {}})
        };
        let r = a
            .authorize(&event(json!({"Cookie": format!("auth={OLD}")})))
            .await
            .unwrap();
        assert_eq!(
            r,
            json!({
                "principalId": "env-2",
                "policyDocument": {"Version": "2012-10-17", "Statement": [{
                    "Action": "execute-api:Invoke", "Effect": "Allow",
                    "Resource": "arn:aws:execute-api:us-east-1:123456789012:abcdef123/test/*/*"}]},
                "context": {"client": "env-2"}
            })
        );
        let r = a
            .authorize(&event(json!({"Authorization": format!("Basic {OLD}")})))
            .await
            .unwrap();
        assert_eq!(r["principalId"], "anonymous");
        assert_eq!(r["policyDocument"]["Statement"][0]["Effect"], "Deny");
        assert_eq!(r["context"], json!({"reason": "unsupported-scheme"}));
        assert!(!r.to_string().contains(OLD));
    }
}
