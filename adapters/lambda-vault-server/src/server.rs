//! The server as a child process: started with the rendered configuration
//! and its secrets in its environment, watched until it answers, stopped
//! with SIGTERM.

use std::collections::VecDeque;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::config::{PREVIOUS_SEAL_KEY_ENV, SEAL_KEY_ENV, ServerConfig, StaticKeyIds};

/// Lines of the server's own output kept for error messages.
const KEPT_LINES: usize = 40;

/// What the server needs besides its configuration file, fetched from
/// Secrets Manager by the function; handed over in the child's environment.
#[derive(Default)]
pub struct ServerSecrets {
    /// The static seal key, base64 (`None` for the awskms seal).
    pub seal_key: Option<SecretString>,
    /// The static seal's previous key (after a rotation), base64.
    pub previous_seal_key: Option<SecretString>,
    /// The static seal's key ids.
    pub seal_key_ids: StaticKeyIds,
    /// The PostgreSQL connection URL (`None` for s3 storage).
    pub pg_connection_url: Option<SecretString>,
}

impl std::fmt::Debug for ServerSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerSecrets")
            .field("seal_key", &self.seal_key.as_ref().map(|_| "[redacted]"))
            .field(
                "previous_seal_key",
                &self.previous_seal_key.as_ref().map(|_| "[redacted]"),
            )
            .field("seal_key_ids", &self.seal_key_ids)
            .field(
                "pg_connection_url",
                &self.pg_connection_url.as_ref().map(|_| "[redacted]"),
            )
            .finish()
    }
}

/// The state the server answered with once it was up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Readiness {
    /// Initialized and unsealed: serving.
    Unsealed,
    /// Not initialized yet: only `server init` can move it on.
    NotInitialized,
}

/// Why the server did not come up.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The binary could not be started.
    #[error("cannot start {binary}: {source}")]
    Spawn {
        /// The binary.
        binary: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The configuration file could not be written.
    #[error("cannot write the server configuration: {0}")]
    Config(#[source] std::io::Error),
    /// The server exited before it was ready.
    #[error("the server exited ({status}) before it was ready; its last output:\n{output}")]
    Exited {
        /// Its exit status.
        status: String,
        /// Its last lines of output.
        output: String,
    },
    /// The server did not answer unsealed in time.
    #[error(
        "the server was not ready after {waited:?} (last state: {state}); its last output:\n{output}"
    )]
    Timeout {
        /// How long the function waited.
        waited: Duration,
        /// The last answer of `sys/health`, or why there was none.
        state: String,
        /// Its last lines of output.
        output: String,
    },
}

/// A running server.
pub struct Server {
    child: Child,
    base_url: String,
    http: reqwest::Client,
    output: Arc<Mutex<VecDeque<String>>>,
    _dir: tempfile::TempDir,
}

impl Server {
    /// Writes the configuration into a private directory, starts the server
    /// and waits (at most `config.ready_timeout`) until it answers unsealed
    /// or uninitialized. A sealed answer is waited out: an auto-unseal takes
    /// a moment after start.
    pub async fn start(config: &ServerConfig, secrets: ServerSecrets) -> Result<Self, StartError> {
        let dir = tempfile::Builder::new()
            .prefix("vault-server-")
            .tempdir()
            .map_err(StartError::Config)?;
        let file = dir.path().join("server.hcl");
        write_private(&file, &config.render_hcl(&secrets.seal_key_ids))
            .map_err(StartError::Config)?;

        let mut command = Command::new(&config.binary);
        command
            .arg("server")
            .arg(format!("-config={}", file.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if let Some(key) = &secrets.seal_key {
            command.env(SEAL_KEY_ENV, key.expose_secret());
        }
        if let Some(key) = &secrets.previous_seal_key {
            command.env(PREVIOUS_SEAL_KEY_ENV, key.expose_secret());
        }
        if let Some(url) = &secrets.pg_connection_url {
            // OpenBao reads BAO_PG_CONNECTION_URL, HashiCorp Vault VAULT_PG_CONNECTION_URL.
            command
                .env("BAO_PG_CONNECTION_URL", url.expose_secret())
                .env("VAULT_PG_CONNECTION_URL", url.expose_secret());
        }
        drop(secrets);
        let mut child = command.spawn().map_err(|source| StartError::Spawn {
            binary: config.binary.display().to_string(),
            source,
        })?;
        let output = Arc::new(Mutex::new(VecDeque::with_capacity(KEPT_LINES)));
        if let Some(stdout) = child.stdout.take() {
            tokio::spawn(relay(BufReader::new(stdout), output.clone()));
        }
        if let Some(stderr) = child.stderr.take() {
            tokio::spawn(relay(BufReader::new(stderr), output.clone()));
        }
        let http = reqwest::Client::builder()
            .no_proxy()
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        let mut server = Self {
            child,
            base_url: format!("http://{}", config.address()),
            http,
            output,
            _dir: dir,
        };
        server.wait_ready(config.ready_timeout).await?;
        Ok(server)
    }

    /// The server's process id (while it runs).
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The HTTP client for the server (no proxy).
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// The server's last lines of output.
    pub fn last_output(&self) -> String {
        self.output
            .lock()
            .map(|lines| lines.iter().cloned().collect::<Vec<_>>().join("\n"))
            .unwrap_or_default()
    }

    /// `Some(status)` once the server has exited.
    pub fn exited(&mut self) -> Option<String> {
        match self.child.try_wait() {
            Ok(Some(status)) => Some(status.to_string()),
            Ok(None) => None,
            Err(e) => Some(format!("unknown: {e}")),
        }
    }

    /// Waits until the server answers `sys/health` unsealed or
    /// uninitialized.
    pub async fn wait_ready(&mut self, timeout: Duration) -> Result<Readiness, StartError> {
        let started = vault_client::clock::now();
        let mut state;
        loop {
            if let Some(status) = self.exited() {
                // Let the relays catch the last lines.
                tokio::time::sleep(Duration::from_millis(50)).await;
                return Err(StartError::Exited {
                    status,
                    output: self.last_output(),
                });
            }
            match self.health().await {
                Ok(200) => return Ok(Readiness::Unsealed),
                Ok(501) => return Ok(Readiness::NotInitialized),
                Ok(503) => state = "sealed".into(),
                Ok(code) => state = format!("sys/health answered {code}"),
                Err(e) => state = e,
            }
            if started.elapsed() >= timeout {
                return Err(StartError::Timeout {
                    waited: timeout,
                    state,
                    output: self.last_output(),
                });
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// The status code of `sys/health` (200 active, 429 standby, 501 not
    /// initialized, 503 sealed).
    pub async fn health(&self) -> Result<u16, String> {
        self.http
            .get(format!("{}/v1/sys/health", self.base_url))
            .timeout(Duration::from_secs(2))
            .send()
            .await
            .map(|r| r.status().as_u16())
            .map_err(|e| format!("no answer: {}", vault_client::error_chain(&e)))
    }

    /// Stops the server: SIGTERM (it seals and closes its storage), then
    /// SIGKILL after `grace`.
    pub async fn stop(&mut self, grace: Duration) -> Option<std::process::ExitStatus> {
        if let Some(pid) = self
            .child
            .id()
            .and_then(|id| rustix::process::Pid::from_raw(id as i32))
        {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        }
        match tokio::time::timeout(grace, self.child.wait()).await {
            Ok(status) => status.ok(),
            Err(_) => {
                let _ = self.child.kill().await;
                self.child.wait().await.ok()
            }
        }
    }
}

/// Copies the server's output lines to stderr (CloudWatch Logs) and keeps
/// the last few for error messages.
async fn relay<R>(mut reader: BufReader<R>, kept: Arc<Mutex<VecDeque<String>>>)
where
    R: tokio::io::AsyncRead + Unpin,
{
    let mut line = String::new();
    while matches!(reader.read_line(&mut line).await, Ok(n) if n > 0) {
        let text = line.trim_end().to_owned();
        eprintln!("[server] {text}");
        if let Ok(mut lines) = kept.lock() {
            if lines.len() == KEPT_LINES {
                lines.pop_front();
            }
            lines.push_back(text);
        }
        line.clear();
    }
}

/// Writes `text` to a new file only its owner can read (0600).
fn write_private(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(text.as_bytes())
}
