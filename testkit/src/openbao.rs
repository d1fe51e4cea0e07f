//! OpenBao dev server (in memory, unsealed, root token `root`).

use std::process::Output;
use std::time::Duration;

use crate::process::{PeerProcess, guarded_command};
use crate::{Postgres, http_client, http_ok, peer_bin, ports, run_ok, temp_dir};

pub(crate) const ROOT_TOKEN: &str = "root";

/// A running `bao server -dev` on 127.0.0.1; stopped on drop.
pub struct OpenBao {
    // Field order matters: the process stops before its HOME is deleted.
    process: PeerProcess,
    port: u16,
    tls: bool,
    /// A second TLS listener that requires a client certificate.
    mtls: bool,
    home: tempfile::TempDir,
}

impl OpenBao {
    /// Starts `bao server -dev -dev-root-token-id=root
    /// -dev-listen-address=127.0.0.1:P` (it also binds P+1, the cluster
    /// listener; both are free) and waits until `GET /v1/sys/health` answers
    /// 200. Its HOME is a fresh temporary directory (the dev server writes a
    /// token file there).
    pub async fn start() -> OpenBao {
        Self::start_with(false, None, false, None).await
    }

    /// Like [`OpenBao::start`] plus a server configuration file holding
    /// `hcl` (passed with `-config`), e.g. audit devices, which OpenBao 2.x
    /// only accepts from the configuration:
    /// `audit "socket" "watch" { options { address = "127.0.0.1:P" socket_type = "tcp" } }`.
    /// A socket device's listener must be up before this is called.
    pub async fn start_with_config(hcl: &str) -> OpenBao {
        Self::start_with(false, None, false, Some(hcl)).await
    }

    /// Like [`OpenBao::start_with_config`] but on `port` (and `port + 1`),
    /// e.g. from [`OpenBao::reserve_port`], for a client that must know the
    /// address before the server starts (a socket audit device's listener
    /// that needs `VAULT_ADDR`).
    pub async fn start_on_with_config(port: u16, hcl: &str) -> OpenBao {
        Self::start_with(false, Some(port), false, Some(hcl)).await
    }

    /// A free port P for [`OpenBao::start_on_with_config`] (P + 1, the
    /// cluster listener, is free too); never handed out again.
    pub fn reserve_port() -> u16 {
        ports::free_ports(2)
    }

    /// Like [`OpenBao::start`] but on `port` (and `port + 1`), e.g. the port
    /// of a server stopped before, to test clients that must reconnect. The
    /// new server has none of the old one's state.
    pub async fn start_on(port: u16) -> OpenBao {
        Self::start_with(false, Some(port), false, None).await
    }

    /// The port of [`OpenBao::addr`].
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Like [`OpenBao::start`] but with TLS (`-dev-tls`): the server makes its
    /// own CA and a certificate for `localhost` and `127.0.0.1`;
    /// [`OpenBao::ca_cert`] is the CA's PEM file, and `vault-cert.pem` /
    /// `vault-key.pem` lie beside it. [`OpenBao::addr`] is `https://`.
    pub async fn start_tls() -> OpenBao {
        Self::start_with(true, None, false, None).await
    }

    /// Like [`OpenBao::start_tls`] plus a second TLS listener,
    /// [`OpenBao::mtls_addr`], with `tls_require_and_verify_client_cert =
    /// true`: it refuses the TLS handshake without a client certificate
    /// signed by the dev CA (`vault-cert.pem`/`vault-key.pem` beside
    /// [`OpenBao::ca_cert`] are one: the dev certificate allows client
    /// authentication).
    pub async fn start_mutual_tls() -> OpenBao {
        Self::start_with(true, None, true, None).await
    }

    async fn start_with(tls: bool, port: Option<u16>, mtls: bool, extra: Option<&str>) -> OpenBao {
        let bao = peer_bin("bao");
        let width = if mtls { 4 } else { 2 };
        let port = port.unwrap_or_else(|| ports::free_ports(width));
        let home = temp_dir("openbao");
        let mut cmd = guarded_command(&[], &bao);
        cmd.args([
            "server",
            "-dev",
            &format!("-dev-root-token-id={ROOT_TOKEN}"),
            &format!("-dev-listen-address=127.0.0.1:{port}"),
        ]);
        if tls {
            let certs = home.path().join("tls");
            std::fs::create_dir(&certs).expect("create TLS directory");
            cmd.arg("-dev-tls")
                .arg(format!("-dev-tls-cert-dir={}", certs.display()));
            if mtls {
                // The dev server writes its certificates before it opens the
                // listeners of `-config`.
                let d = certs.display();
                let config = format!(
                    "listener \"tcp\" {{\n  address = \"127.0.0.1:{}\"\n  cluster_address = \"127.0.0.1:{}\"\n  \
                     tls_cert_file = \"{d}/vault-cert.pem\"\n  tls_key_file = \"{d}/vault-key.pem\"\n  \
                     tls_client_ca_file = \"{d}/vault-ca.pem\"\n  tls_require_and_verify_client_cert = true\n}}\n",
                    port + 2,
                    port + 3
                );
                let file = home.path().join("mtls.hcl");
                std::fs::write(&file, config).expect("write the mutual TLS listener configuration");
                cmd.arg(format!("-config={}", file.display()));
            }
        }
        if let Some(hcl) = extra {
            let file = home.path().join("extra.hcl");
            std::fs::write(&file, hcl).expect("write the extra server configuration");
            cmd.arg(format!("-config={}", file.display()));
        }
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", home.path());
        let log = home.path().join("bao.log");
        let mut process = PeerProcess::spawn("OpenBao", cmd, log, "TERM", Duration::from_secs(5));
        // Readiness only: the certificate is checked by the tests that use it.
        let client = if tls {
            reqwest::Client::builder()
                .no_proxy()
                .timeout(Duration::from_secs(60))
                .tls_danger_accept_invalid_certs(true)
                .build()
                .expect("build reqwest client")
        } else {
            http_client()
        };
        let scheme = if tls { "https" } else { "http" };
        let health = format!("{scheme}://127.0.0.1:{port}/v1/sys/health");
        process
            .wait_ready(Duration::from_secs(30), async || {
                http_ok(&client, &health).await
            })
            .await;
        OpenBao {
            process,
            port,
            tls,
            mtls,
            home,
        }
    }

    /// The listener that requires a client certificate,
    /// `https://127.0.0.1:P+2` ([`OpenBao::start_mutual_tls`] only).
    pub fn mtls_addr(&self) -> Option<String> {
        self.mtls
            .then(|| format!("https://127.0.0.1:{}", self.port + 2))
    }

    /// Base address, `http://127.0.0.1:P` (`https://` for [`OpenBao::start_tls`]).
    pub fn addr(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    /// The CA certificate (PEM) of a TLS server; `None` without TLS.
    pub fn ca_cert(&self) -> Option<std::path::PathBuf> {
        self.tls
            .then(|| self.home.path().join("tls").join("vault-ca.pem"))
    }

    /// The root token, `root`.
    pub fn root_token(&self) -> &str {
        ROOT_TOKEN
    }

    /// Process id of the server.
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// Everything the server printed so far.
    pub fn logs(&self) -> String {
        self.process.logs()
    }

    /// Runs the `bao` CLI against this server as root, e.g.
    /// `bao(&["auth", "enable", "approle"])`; panics showing stderr when it
    /// fails.
    pub async fn bao(&self, args: &[&str]) -> Output {
        let addr = self.addr();
        let mut cmd = tokio::process::Command::new(peer_bin("bao"));
        cmd.args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.home.path())
            .env("BAO_ADDR", &addr)
            .env("VAULT_ADDR", &addr)
            .env("BAO_TOKEN", ROOT_TOKEN)
            .env("VAULT_TOKEN", ROOT_TOKEN);
        if let Some(ca) = self.ca_cert() {
            cmd.env("BAO_CACERT", &ca).env("VAULT_CACERT", &ca);
        }
        run_ok(&format!("bao {}", args.join(" ")), &mut cmd).await
    }

    /// Sends `method /v1/<path>` with the root token and a JSON body (`Null`
    /// sends none); panics showing Vault's answer unless it is a 2xx. Returns
    /// the JSON reply, or `Null` for an empty one.
    pub async fn root_request(
        &self,
        method: &str,
        path: &str,
        body: serde_json::Value,
    ) -> serde_json::Value {
        let method: reqwest::Method = method.parse().expect("an HTTP method");
        let mut req = http_client()
            .request(method.clone(), format!("{}/v1/{path}", self.addr()))
            .header("X-Vault-Token", ROOT_TOKEN);
        if !body.is_null() {
            req = req.json(&body);
        }
        let resp = req.send().await.expect("request to OpenBao");
        let status = resp.status();
        let text = resp.text().await.expect("OpenBao reply body");
        assert!(status.is_success(), "{method} {path}: {status} {text}");
        serde_json::from_str(&text).unwrap_or(serde_json::Value::Null)
    }

    /// Enables the database secrets engine at `database/` with connection
    /// `pg` to `pg` ([`Postgres::vault_database_config`]) and role `app`
    /// ([`Postgres::vault_database_role`]): `database/creds/app` then hands
    /// out PostgreSQL logins leased for `default_ttl` (at most `max_ttl`).
    pub async fn enable_postgres_database(&self, pg: &Postgres, default_ttl: &str, max_ttl: &str) {
        self.root_request(
            "POST",
            "sys/mounts/database",
            serde_json::json!({"type": "database"}),
        )
        .await;
        self.root_request("POST", "database/config/pg", pg.vault_database_config())
            .await;
        self.root_request(
            "POST",
            "database/roles/app",
            Postgres::vault_database_role(default_ttl, max_ttl),
        )
        .await;
    }

    /// Enables the AppRole auth method at `approle/` unless it is enabled.
    pub async fn enable_approle(&self) {
        let mounts = self
            .root_request("GET", "sys/auth", serde_json::Value::Null)
            .await;
        if mounts.get("approle/").is_none() && mounts["data"].get("approle/").is_none() {
            self.root_request(
                "POST",
                "sys/auth/approle",
                serde_json::json!({"type": "approle"}),
            )
            .await;
        }
    }

    /// Writes the ACL policy `name` with `policy_hcl`
    /// (`PUT sys/policies/acl/<name>`).
    pub async fn write_policy(&self, name: &str, policy_hcl: &str) {
        self.root_request(
            "PUT",
            &format!("sys/policies/acl/{name}"),
            serde_json::json!({ "policy": policy_hcl }),
        )
        .await;
    }

    /// [`OpenBao::enable_approle`] and [`OpenBao::write_policy`]: the
    /// state a provisioner of AppRoles starts from (it creates the roles).
    pub async fn approle_and_policy(&self, name: &str, policy_hcl: &str) {
        self.enable_approle().await;
        self.write_policy(name, policy_hcl).await;
    }

    /// Enables AppRole at `approle/` (once), writes the ACL policy `name`
    /// with `policy_hcl` and the AppRole `name` bound to it (1 h tokens), and
    /// returns a fresh `(role_id, secret_id)`.
    pub async fn approle_with_policy(&self, name: &str, policy_hcl: &str) -> (String, String) {
        self.approle_and_policy(name, policy_hcl).await;
        self.root_request(
            "POST",
            &format!("auth/approle/role/{name}"),
            serde_json::json!({"token_policies": [name], "token_ttl": "1h"}),
        )
        .await;
        let role = self
            .root_request(
                "GET",
                &format!("auth/approle/role/{name}/role-id"),
                serde_json::Value::Null,
            )
            .await;
        let secret = self
            .root_request(
                "POST",
                &format!("auth/approle/role/{name}/secret-id"),
                serde_json::json!({}),
            )
            .await;
        let field = |v: &serde_json::Value, k: &str| {
            v["data"][k]
                .as_str()
                .unwrap_or_else(|| panic!("no data.{k} in {v}"))
                .to_owned()
        };
        (field(&role, "role_id"), field(&secret, "secret_id"))
    }
}
