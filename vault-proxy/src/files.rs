//! Secret files: each configured secret is read with the managed token and
//! written atomically (temp file + rename, mode 0600) as Vault's JSON
//! response. Leased secrets are renewed before their lease ends and read
//! again (the file rewritten) before their max TTL; secrets without a lease
//! are re-read on an optional interval.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::config::{FilesConfig, SecretFileSpec};
use crate::metrics::Event;
use crate::token::TokenManager;
use vault_client::error_chain;

/// A secret could not be read or its file written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FileError {
    /// No token.
    #[error(transparent)]
    Token(#[from] crate::token::TokenError),
    /// Vault refused or failed the read.
    #[error("cannot read {path} from vault for {file}: {message}")]
    Read {
        /// The API path.
        path: String,
        /// The file it was meant for.
        file: PathBuf,
        /// Vault's error, rendered.
        message: String,
    },
    /// The file could not be written.
    #[error("cannot write the secret file {file}: {source}")]
    Write {
        /// The file.
        file: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

/// The lease of a secret as last read or renewed.
#[derive(Debug, Clone)]
struct Lease {
    id: String,
    renewable: bool,
    /// Duration asked for on renewal (the first lease's).
    increment: Duration,
    since: Instant,
    expires: Instant,
    capped: bool,
}

/// One secret file and what is known about its lease.
#[derive(Debug, Clone)]
pub struct SecretFileState {
    spec: SecretFileSpec,
    lease: Option<Lease>,
    read_at: Instant,
    /// Generation of the token that read it: Vault revokes a lease with the
    /// token that created it.
    generation: u64,
}

impl SecretFileState {
    /// The configured secret.
    pub fn spec(&self) -> &SecretFileSpec {
        &self.spec
    }

    /// The lease id, when the secret is leased (lease ids are not secret).
    pub fn lease_id(&self) -> Option<&str> {
        self.lease.as_ref().map(|l| l.id.as_str())
    }
}

/// Writes and refreshes the secret files.
#[derive(Debug, Clone)]
pub struct SecretFiles {
    tokens: TokenManager,
    config: Arc<FilesConfig>,
}

impl SecretFiles {
    /// Files for `config.secrets`, read with the tokens of `tokens`.
    pub fn new(tokens: TokenManager, config: FilesConfig) -> Self {
        Self {
            tokens,
            config: Arc::new(config),
        }
    }

    /// Reads every secret and writes its file; the first failure is returned.
    pub async fn write_all(&self) -> Result<Vec<SecretFileState>, FileError> {
        let mut states = Vec::with_capacity(self.config.secrets.len());
        for spec in &self.config.secrets {
            states.push(self.refresh(spec).await?);
        }
        Ok(states)
    }

    /// Keeps the files fresh until `cancel` fires: one task per file.
    pub fn spawn_maintenance(
        &self,
        states: Vec<SecretFileState>,
        cancel: CancellationToken,
    ) -> Vec<tokio::task::JoinHandle<()>> {
        states
            .into_iter()
            .map(|state| {
                let this = self.clone();
                let cancel = cancel.clone();
                tokio::spawn(async move { this.maintain(state, cancel).await })
            })
            .collect()
    }

    async fn maintain(&self, mut state: SecretFileState, cancel: CancellationToken) {
        let grace = self.config.grace;
        let mut failures: u32 = 0;
        let mut logins = self.tokens.subscribe();
        loop {
            // A new token (a login before the old one's max TTL, or after a
            // revocation): the lease dies with the token that read it, so
            // read the secret again with the new one while the old one
            // still lives.
            let generation = *logins.borrow_and_update();
            if state.lease.is_some() && generation > state.generation {
                match self.refresh(&state.spec).await {
                    Ok(s) => {
                        tracing::info!(file = %state.spec.file.display(), "read a leased secret again with the new vault token");
                        state = s;
                        failures = 0;
                        continue;
                    }
                    Err(e) => {
                        self.tokens.metrics().inc(Event::FileFailure);
                        tracing::warn!(file = %state.spec.file.display(), error = %e, "cannot read a leased secret again with the new vault token");
                    }
                }
            }
            let (at, renew) = match &state.lease {
                Some(lease) => {
                    let margin = grace.min(lease.increment / 4);
                    let reread_at = lease.expires.checked_sub(margin).unwrap_or(lease.expires);
                    if lease.renewable && !lease.capped {
                        let fraction = 0.5 + 0.2 * fastrand::f64();
                        let renew_at = lease.since
                            + lease
                                .expires
                                .saturating_duration_since(lease.since)
                                .mul_f64(fraction);
                        (renew_at.min(reread_at), true)
                    } else {
                        (reread_at, false)
                    }
                }
                None => match self.config.refresh_interval {
                    Some(every) => (state.read_at + every, false),
                    None => return,
                },
            };
            tokio::select! {
                () = cancel.cancelled() => return,
                () = tokio::time::sleep_until(at) => {}
                r = logins.changed(), if state.lease.is_some() => {
                    if r.is_err() {
                        return;
                    }
                    continue;
                }
            }
            let result = if renew {
                self.renew(&mut state).await
            } else {
                self.refresh(&state.spec).await.map(|s| state = s)
            };
            match result {
                Ok(()) => failures = 0,
                Err(e) => {
                    self.tokens.metrics().inc(Event::FileFailure);
                    failures = failures.saturating_add(1);
                    let delay = Duration::from_millis(200 * 2u64.pow(failures.min(7)))
                        .min(Duration::from_secs(30));
                    tracing::warn!(file = %state.spec.file.display(), error = %e, retry_in_ms = delay.as_millis() as u64, "cannot refresh a secret file");
                    // A failed renewal falls back to reading the secret again.
                    if let Some(lease) = &mut state.lease {
                        lease.capped = true;
                    }
                    tokio::select! {
                        () = cancel.cancelled() => return,
                        () = tokio::time::sleep(delay) => {}
                    }
                    if let Ok(s) = self.refresh(&state.spec).await {
                        state = s;
                        failures = 0;
                    }
                }
            }
        }
    }

    async fn renew(&self, state: &mut SecretFileState) -> Result<(), FileError> {
        let Some(lease) = state.lease.as_mut() else {
            return Ok(());
        };
        let token = self.tokens.token().await?;
        let started = vault_client::clock::now();
        let result = self
            .tokens
            .client()
            .with_token(token.secret().clone())
            .renew_lease(&lease.id, Some(lease.increment))
            .await;
        match result {
            Ok(renewal) => {
                self.tokens.metrics().inc(Event::LeaseRenewal);
                lease.since = started;
                lease.expires = started + renewal.lease_duration;
                lease.renewable = renewal.renewable;
                lease.capped = renewal.lease_duration + Duration::from_secs(1) < lease.increment;
                tracing::debug!(lease_id = %lease.id, granted_s = renewal.lease_duration.as_secs(), capped = lease.capped, "renewed a secret's lease");
                Ok(())
            }
            Err(e) => {
                self.tokens.metrics().inc(Event::LeaseRenewalFailure);
                lease.capped = true;
                Err(FileError::Read {
                    path: format!("sys/leases/renew ({})", lease.id),
                    file: state.spec.file.clone(),
                    message: error_chain(&e),
                })
            }
        }
    }

    /// Reads the secret and (re)writes its file.
    async fn refresh(&self, spec: &SecretFileSpec) -> Result<SecretFileState, FileError> {
        let started = vault_client::clock::now();
        let (body, generation) = self.read(spec).await?;
        vault_client::write_private_file(&spec.file, &body).map_err(|source| FileError::Write {
            file: spec.file.clone(),
            source,
        })?;
        self.tokens.metrics().inc(Event::FileWrite);
        let lease = lease_of(&body, started);
        tracing::info!(
            path = %spec.path,
            file = %spec.file.display(),
            lease_id = lease.as_ref().map(|l| l.id.as_str()),
            lease_s = lease.as_ref().map(|l| l.increment.as_secs()),
            "wrote a secret file"
        );
        Ok(SecretFileState {
            spec: spec.clone(),
            lease,
            read_at: started,
            generation,
        })
    }

    /// The response, and the generation of the token that read it.
    async fn read(&self, spec: &SecretFileSpec) -> Result<(Bytes, u64), FileError> {
        let read_error = |e: &vault_client::Error| FileError::Read {
            path: spec.path.clone(),
            file: spec.file.clone(),
            message: error_chain(e),
        };
        let token = self.tokens.token().await?;
        let client = self.tokens.client().with_token(token.secret().clone());
        match client.request(http::Method::GET, &spec.path).send().await {
            Ok(r) => Ok((r.body, token.generation())),
            Err(e) if e.is_permission_denied() => {
                // A revoked token heals once; a policy denial stays an error.
                match self.tokens.recover_from_403(&token).await? {
                    Some(fresh) => self
                        .tokens
                        .client()
                        .with_token(fresh.secret().clone())
                        .request(http::Method::GET, &spec.path)
                        .send()
                        .await
                        .map(|r| (r.body, fresh.generation()))
                        .map_err(|e| read_error(&e)),
                    None => Err(read_error(&e)),
                }
            }
            Err(e) => Err(read_error(&e)),
        }
    }
}

fn lease_of(body: &[u8], started: Instant) -> Option<Lease> {
    #[derive(serde::Deserialize)]
    struct Envelope {
        #[serde(default)]
        lease_id: String,
        #[serde(default)]
        lease_duration: u64,
        #[serde(default)]
        renewable: bool,
    }
    let e: Envelope = serde_json::from_slice(body).ok()?;
    if e.lease_id.is_empty() || e.lease_duration == 0 {
        return None;
    }
    let duration = Duration::from_secs(e.lease_duration);
    Some(Lease {
        id: e.lease_id,
        renewable: e.renewable,
        increment: duration,
        since: started,
        expires: started + duration,
        capped: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn leases_are_parsed_from_the_envelope() {
        let now = vault_client::clock::now();
        let l = lease_of(
            br#"{"lease_id":"database/creds/app/x","lease_duration":300,"renewable":true}"#,
            now,
        )
        .unwrap();
        assert_eq!(l.increment, Duration::from_secs(300));
        assert!(l.renewable);
        assert!(lease_of(br#"{"lease_id":"","lease_duration":0,"data":{}}"#, now).is_none());
    }
}
