//! The init phase of the Lambda Extensions API: what is done before
//! `register` (configuration, the proxy's listener, and when there are secret
//! files the login and the files, so the function can read them during its
//! own init), and the failures reported through `init/error` with their type.

use std::sync::Arc;

use lambda_extension::Extension;
use vault_client::VaultClient;
use vault_proxy::{
    Listener, Metrics, SecretFiles, Settings, TokenManager, lambda_client_config_from_lookup,
};

use crate::auth;

/// A variable is malformed, no login is configured, or the listen address
/// cannot be bound.
const CONFIG_ERROR: &str = "Extension.ConfigError";
/// File mode's first login failed.
const AUTH_ERROR: &str = "Extension.AuthError";
/// File mode could not read a secret or write its file.
const SECRET_ERROR: &str = "Extension.SecretError";

/// A failure during init, with the type reported to Lambda.
#[derive(Debug)]
pub(crate) struct InitFailure {
    error_type: &'static str,
    message: String,
}

impl InitFailure {
    /// `Extension.ConfigError`.
    pub(crate) fn config(e: impl std::fmt::Display) -> Self {
        Self {
            error_type: CONFIG_ERROR,
            message: format!("vault-aws-extension configuration: {e}"),
        }
    }

    /// `Extension.AuthError`.
    fn auth(e: impl std::fmt::Display) -> Self {
        Self {
            error_type: AUTH_ERROR,
            message: format!("vault-aws-extension: {e}"),
        }
    }

    /// `Extension.SecretError`.
    fn secret(e: impl std::fmt::Display) -> Self {
        Self {
            error_type: SECRET_ERROR,
            message: format!("vault-aws-extension: {e}"),
        }
    }
}

/// What is done before `register`.
pub(crate) struct Early {
    /// The proxy's settings and the rest of the configuration.
    pub(crate) settings: Settings,
    client_config: vault_client::ClientConfig,
    auth: Arc<dyn vault_client::VaultAuth>,
    /// The proxy's listener, bound (proxy and default modes).
    pub(crate) listener: Option<Listener>,
    tokens: Option<TokenManager>,
    /// The secret files, written (file and default modes, when there are any).
    pub(crate) files: Option<(SecretFiles, Vec<vault_proxy::SecretFileState>)>,
}

impl Early {
    /// The token manager: the one that logged in for the secret files before
    /// `register`, or else a new one, started now. In proxy mode the HTTP
    /// client (TLS roots) is thus built after registering; early requests
    /// wait in the listener's backlog, then for the login.
    pub(crate) fn take_tokens(&mut self) -> Result<TokenManager, InitFailure> {
        if let Some(tokens) = self.tokens.take() {
            return Ok(tokens);
        }
        let client = VaultClient::new(self.client_config.clone()).map_err(InitFailure::config)?;
        Ok(self.start_tokens(client))
    }

    fn start_tokens(&self, client: VaultClient) -> TokenManager {
        let tokens = TokenManager::new(
            client,
            Arc::clone(&self.auth),
            self.settings.token.clone(),
            Arc::new(Metrics::new()),
        );
        tokens.start();
        tokens
    }
}

/// Everything before `register`: configuration, the proxy's listener, and
/// when there are secret files, the login and the files.
pub(crate) async fn before_register<F>(settings: Settings, lookup: F) -> Result<Early, InitFailure>
where
    F: Fn(&str) -> Option<String> + Copy,
{
    let client_config = lambda_client_config_from_lookup(lookup).map_err(InitFailure::config)?;
    let auth = auth::auth_from_lookup(lookup).map_err(InitFailure::config)?;
    let listener = if settings.run_mode.proxy() {
        Some(Listener::bind(&settings.proxy.listen).await.map_err(|e| {
            InitFailure::config(format!("cannot listen on {}: {e}", settings.proxy.listen))
        })?)
    } else {
        None
    };
    let mut early = Early {
        client_config,
        auth,
        listener,
        tokens: None,
        files: None,
        settings,
    };
    if early.settings.run_mode.files() && !early.settings.files.secrets.is_empty() {
        let client = VaultClient::new(early.client_config.clone()).map_err(InitFailure::config)?;
        let tokens = early.start_tokens(client);
        tokens
            .wait_ready(early.settings.token.login_wait)
            .await
            .map_err(InitFailure::auth)?;
        let secret_files = SecretFiles::new(tokens.clone(), early.settings.files.clone());
        let states = secret_files
            .write_all()
            .await
            .map_err(InitFailure::secret)?;
        early.files = Some((secret_files, states));
        early.tokens = Some(tokens);
    }
    Ok(early)
}

/// Registers (the API accepts errors only from registered extensions) and
/// posts `init/error`; Lambda then fails the init with this type.
pub(crate) async fn report_init_error(failure: &InitFailure) {
    match Extension::new().with_events(&["SHUTDOWN"]).register().await {
        Ok(registered) => post_init_error(&registered.extension_id, failure).await,
        Err(e) => {
            // The init error itself must not be lost with the registration.
            tracing::error!(error_type = failure.error_type, "{}", failure.message);
            tracing::error!(error = %e, "cannot register to report the init error");
        }
    }
}

/// `POST /init/error` for the registered extension `extension_id`.
pub(crate) async fn post_init_error(extension_id: &str, failure: &InitFailure) {
    tracing::error!(error_type = failure.error_type, "{}", failure.message);
    let body = lambda_extension::requests::ErrorRequest {
        error_message: &failure.message,
        error_type: failure.error_type,
        stack_trace: Vec::new(),
    };
    let request = match lambda_extension::requests::init_error(
        extension_id,
        failure.error_type,
        Some(body),
    ) {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "cannot build the init/error request");
            return;
        }
    };
    match lambda_runtime_api_client::Client::builder().build() {
        Ok(client) => {
            if let Err(e) = client.call(request).await {
                tracing::error!(error = %e, "cannot report the init error");
            }
        }
        Err(e) => tracing::error!(error = %e, "cannot reach the Extensions API"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A lookup over `vars`, with Vault at a port nothing listens on.
    fn settings_and_lookup<'a>(
        vars: &'a [(&'static str, String)],
    ) -> (Settings, impl Fn(&str) -> Option<String> + Copy + 'a) {
        let lookup = move |name: &str| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.clone())
                .or_else(|| (name == "VAULT_ADDR").then(|| "http://127.0.0.1:9".to_owned()))
        };
        (Settings::from_lookup(lookup, true).unwrap(), lookup)
    }

    #[test]
    fn each_failure_has_the_type_lambda_reports() {
        let config = InitFailure::config("VAULT_ADDR is not a URL");
        assert_eq!(config.error_type, "Extension.ConfigError");
        assert_eq!(
            config.message,
            "vault-aws-extension configuration: VAULT_ADDR is not a URL"
        );
        let auth = InitFailure::auth("login refused");
        assert_eq!(auth.error_type, "Extension.AuthError");
        assert_eq!(auth.message, "vault-aws-extension: login refused");
        let secret = InitFailure::secret("secret/data/app: 403");
        assert_eq!(secret.error_type, "Extension.SecretError");
        assert_eq!(secret.message, "vault-aws-extension: secret/data/app: 403");
    }

    #[tokio::test]
    async fn without_secret_files_nothing_logs_in_before_register() {
        for (mode, listens) in [("proxy", true), ("default", true), ("file", false)] {
            let vars = [
                ("VAULT_RUN_MODE", mode.to_owned()),
                ("VAULT_PROXY_LISTEN", "127.0.0.1:0".to_owned()),
                ("VAULT_TOKEN", "not-a-real-token".to_owned()),
            ];
            let (settings, lookup) = settings_and_lookup(&vars);
            let Ok(early) = before_register(settings, lookup).await else {
                panic!("{mode}: init failed");
            };
            assert_eq!(early.listener.is_some(), listens, "{mode}");
            assert!(early.tokens.is_none() && early.files.is_none(), "{mode}");
        }
    }

    #[tokio::test]
    async fn configuration_errors_are_config_errors() {
        let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let token = ("VAULT_TOKEN", "not-a-real-token".to_owned());
        let cases = [
            (
                vec![("VAULT_ADDR", "vault:8200".to_owned()), token.clone()],
                "VAULT_ADDR",
            ),
            (vec![], "no Vault login configured"),
            (
                vec![
                    ("VAULT_PROXY_LISTEN", busy.local_addr().unwrap().to_string()),
                    token.clone(),
                ],
                "cannot listen on",
            ),
        ];
        for (vars, needle) in cases {
            let (settings, lookup) = settings_and_lookup(&vars);
            let Err(failure) = before_register(settings, lookup).await else {
                panic!("{needle}: init succeeded");
            };
            assert_eq!(failure.error_type, CONFIG_ERROR, "{failure:?}");
            assert!(failure.message.contains(needle), "{failure:?}");
        }
    }

    #[tokio::test]
    async fn with_secret_files_the_login_comes_before_register_and_its_failure_is_an_auth_error() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("secret.json");
        let secret_id = dir.path().join("secret-id");
        std::fs::write(&secret_id, "not-a-real-secret-id").unwrap();
        let vars = [
            ("VAULT_RUN_MODE", "file".to_owned()),
            ("VAULT_SECRET_PATH", "secret/data/app".to_owned()),
            ("VAULT_SECRET_FILE", file.display().to_string()),
            (
                "VAULT_ROLE_ID_FILE",
                dir.path().join("missing").display().to_string(),
            ),
            ("VAULT_SECRET_ID_FILE", secret_id.display().to_string()),
        ];
        let (settings, lookup) = settings_and_lookup(&vars);
        let Err(failure) = before_register(settings, lookup).await else {
            panic!("init succeeded");
        };
        assert_eq!(failure.error_type, AUTH_ERROR, "{failure:?}");
        assert!(
            failure.message.contains("cannot read the role_id file"),
            "{failure:?}"
        );
        assert!(!file.exists());
    }
}
