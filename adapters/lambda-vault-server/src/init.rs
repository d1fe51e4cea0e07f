//! `vault-aws server init`: the server's one-time initialization, run inside
//! the function (a direct invocation), so the recovery keys and the initial
//! root token go from the server straight into Secrets Manager and never
//! cross the network to the operator or appear in a log.
//!
//! Order, so that nothing is lost and nothing runs twice:
//! 1. the server must not be initialized (else: refused);
//! 2. the secret is created first, holding a "pending" marker
//!    (`CreateSecret` fails if it exists: a second init, or keys of an
//!    earlier storage, are never overwritten);
//! 3. `PUT sys/init` with recovery shares (an auto-unseal server);
//! 4. the answer is written into the secret (retried). Should that still
//!    fail, the answer stays in this instance's memory and the next
//!    `server init` stores it.

use std::time::Duration;

use aws_sdk_secretsmanager::Client;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::Mutex;

/// The direct invocation `{"vault_aws_server": "init", ...}`.
#[derive(Clone, Debug, Deserialize)]
pub struct InitRequest {
    /// Number of recovery key shares (default 5).
    #[serde(default = "default_shares")]
    pub recovery_shares: u8,
    /// Shares needed to recover (default 3).
    #[serde(default = "default_threshold")]
    pub recovery_threshold: u8,
}

fn default_shares() -> u8 {
    5
}

fn default_threshold() -> u8 {
    3
}

/// Why init did not (fully) happen. Never holds a key or a token.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    /// The server is already initialized.
    #[error(
        "refusing to initialize: the server is already initialized (its recovery keys and root token were stored in the secret {0} by the first `vault-aws server init`)"
    )]
    AlreadyInitialized(String),
    /// The secret exists although the server is not initialized.
    #[error(
        "refusing to initialize: the secret {0} already exists, so an earlier init stored keys there (of another storage?); delete it or set VAULT_SERVER_INIT_SECRET_NAME to a new name if you mean to start over"
    )]
    SecretExists(String),
    /// Request out of range.
    #[error("recovery_threshold {threshold} must be between 1 and recovery_shares {shares}")]
    Shares {
        /// Shares.
        shares: u8,
        /// Threshold.
        threshold: u8,
    },
    /// Secrets Manager refused.
    #[error("Secrets Manager: {0}")]
    SecretsManager(String),
    /// The server refused or failed.
    #[error("the server: {0}")]
    Server(String),
    /// Initialized, but the answer is not stored yet.
    #[error(
        "the server is initialized but its recovery keys and root token could not be stored in the secret {secret}: {problem}; they are kept in this function instance's memory: run `vault-aws server init` again to store them"
    )]
    NotStored {
        /// The secret.
        secret: String,
        /// Why.
        problem: String,
    },
}

/// Runs init; keeps an unstored answer between invocations.
pub struct Initializer {
    secrets: Client,
    secret_name: String,
    kms_key_id: Option<String>,
    unstored: Mutex<Option<SecretString>>,
}

impl Initializer {
    /// An initializer writing to `secret_name` (encrypted with `kms_key_id`).
    pub fn new(secrets: Client, secret_name: String, kms_key_id: Option<String>) -> Self {
        Self {
            secrets,
            secret_name,
            kms_key_id,
            unstored: Mutex::new(None),
        }
    }

    /// Initializes the server at `base_url`; returns what may be shown
    /// (the secret's name and ARN, the shares), never keys.
    pub async fn run(
        &self,
        http: &reqwest::Client,
        base_url: &str,
        request: &InitRequest,
    ) -> Result<Value, InitError> {
        let mut unstored = self.unstored.lock().await;
        if let Some(answer) = unstored.as_ref() {
            let arn = self.store(answer).await?;
            *unstored = None;
            return Ok(self.summary(arn, request, "stored the answer kept from the earlier init"));
        }
        if request.recovery_threshold == 0 || request.recovery_threshold > request.recovery_shares {
            return Err(InitError::Shares {
                shares: request.recovery_shares,
                threshold: request.recovery_threshold,
            });
        }
        let status: Value = http
            .get(format!("{base_url}/v1/sys/init"))
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(|e| InitError::Server(vault_client::error_chain(&e)))?
            .json()
            .await
            .map_err(|e| InitError::Server(vault_client::error_chain(&e)))?;
        if status["initialized"] == true {
            return Err(InitError::AlreadyInitialized(self.secret_name.clone()));
        }

        let mut create = self
            .secrets
            .create_secret()
            .name(&self.secret_name)
            .description(
                "Recovery keys and initial root token of the Vault/OpenBao server in Lambda \
                 (written by vault-aws server init)",
            )
            .secret_string(json!({"status": "pending"}).to_string());
        if let Some(key) = &self.kms_key_id {
            create = create.kms_key_id(key);
        }
        if let Err(e) = create.send().await {
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_exists_exception())
            {
                // A "pending" marker is what an init left that failed
                // before the server answered (no key in it): go on.
                // Anything else may hold keys: never overwritten.
                if !self.holds_pending_marker().await {
                    return Err(InitError::SecretExists(self.secret_name.clone()));
                }
                tracing::info!(secret = %self.secret_name, "reusing the pending marker of an earlier init that did not finish");
            } else {
                return Err(InitError::SecretsManager(format!(
                    "cannot create {}: {}",
                    self.secret_name,
                    vault_client::error_chain(&e)
                )));
            }
        }

        let response = http
            .put(format!("{base_url}/v1/sys/init"))
            .json(&json!({
                "recovery_shares": request.recovery_shares,
                "recovery_threshold": request.recovery_threshold,
            }))
            .send()
            .await
            .map_err(|e| InitError::Server(vault_client::error_chain(&e)))?;
        let code = response.status();
        let body = response
            .text()
            .await
            .map_err(|e| InitError::Server(vault_client::error_chain(&e)))?;
        if !code.is_success() {
            // An error answer holds no key; Vault's own message.
            return Err(InitError::Server(format!(
                "sys/init answered {code}: {body}"
            )));
        }
        let answer: Value = serde_json::from_str(&body).map_err(|_| {
            InitError::Server(format!(
                "sys/init answered {code} with a body that is not JSON"
            ))
        })?;
        let stored = SecretString::from(
            json!({
                "status": "initialized",
                "root_token": answer["root_token"],
                "recovery_keys_base64": answer["recovery_keys_base64"],
                "recovery_shares": request.recovery_shares,
                "recovery_threshold": request.recovery_threshold,
            })
            .to_string(),
        );
        drop(body);
        match self.store(&stored).await {
            Ok(arn) => Ok(self.summary(arn, request, "initialized")),
            Err(e) => {
                *unstored = Some(stored);
                Err(e)
            }
        }
    }

    async fn holds_pending_marker(&self) -> bool {
        let Ok(out) = self
            .secrets
            .get_secret_value()
            .secret_id(&self.secret_name)
            .send()
            .await
        else {
            return false;
        };
        out.secret_string
            .as_deref()
            .and_then(|s| serde_json::from_str::<Value>(s).ok())
            .is_some_and(|v| v == json!({"status": "pending"}))
    }

    async fn store(&self, answer: &SecretString) -> Result<Option<String>, InitError> {
        let mut last = String::new();
        for attempt in 0..4u32 {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(200 << attempt)).await;
            }
            match self
                .secrets
                .put_secret_value()
                .secret_id(&self.secret_name)
                .secret_string(answer.expose_secret())
                .send()
                .await
            {
                Ok(out) => return Ok(out.arn),
                Err(e) => last = vault_client::error_chain(&e),
            }
        }
        Err(InitError::NotStored {
            secret: self.secret_name.clone(),
            problem: last,
        })
    }

    fn summary(&self, arn: Option<String>, request: &InitRequest, outcome: &str) -> Value {
        json!({
            "outcome": outcome,
            "secret_name": self.secret_name,
            "secret_arn": arn,
            "recovery_shares": request.recovery_shares,
            "recovery_threshold": request.recovery_threshold,
        })
    }
}
