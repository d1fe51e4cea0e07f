//! The trusted-orchestrator pattern, end to end, with `vault-client`.
//!
//! An administrator (VAULT_TOKEN) creates a policy and an AppRole for a
//! service and hands out a *wrapped, single-use* secret_id; the service checks
//! where the wrapping token comes from, unwraps it once, logs in, and reads
//! only what its policy allows. Run it against a dev server:
//!
//! ```sh
//! VAULT_ADDR=http://127.0.0.1:8200 VAULT_TOKEN=root cargo run -p vault-aws-examples --bin approle-quickstart
//! ```

use std::time::Duration;

use anyhow::{Context, bail, ensure};
use serde_json::json;
use vault_aws_examples::mask;
use vault_client::{
    ExposeSecret, GeneratedSecretId, Method, RoleConfig, SecretIdRequest, SecretString, VaultClient,
};

const ROLE: &str = "shop-task-role";
const POLICY: &str = "shop-dev";

fn step(n: u32, text: &str) {
    println!("[{n}] {text}");
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let admin = VaultClient::from_env().context("reading VAULT_ADDR / VAULT_TOKEN")?;
    ensure!(
        admin.has_token(),
        "set VAULT_TOKEN to an administrator's token"
    );

    let health = admin.health().await?;
    step(
        1,
        &format!(
            "vault {} at {} is ready: {}",
            health.version,
            admin.address(),
            health.is_ready()
        ),
    );

    // --- administrator: policy, secret, role -------------------------------
    admin
        .write_policy(
            POLICY,
            r#"path "secret/data/shop/dev/*" { capabilities = ["read"] }"#,
        )
        .await?;
    let auth_mounts: serde_json::Value = admin
        .request(Method::GET, "sys/auth")
        .send()
        .await?
        .json()?;
    if auth_mounts.get("approle/").is_none() {
        admin.enable_auth_method("approle", "approle").await?;
    }
    let data = json!({ "username": "shop", "password": "correct-horse-battery" });
    let written = admin
        .kv2("secret")
        .write("shop/dev/db", data.as_object().context("object")?, None)
        .await?;
    let role = RoleConfig {
        token_policies: vec![POLICY.into()],
        token_ttl: Some(900),
        token_max_ttl: Some(3600),
        secret_id_ttl: Some(600),
        secret_id_num_uses: Some(1),
        ..RoleConfig::default()
    };
    admin.approle("approle").write_role(ROLE, &role).await?;
    step(
        2,
        &format!(
            "policy {POLICY}, secret shop/dev/db v{}, role {ROLE} (single-use secret_id)",
            written.version
        ),
    );

    let role_id = admin.approle("approle").role_id(ROLE).await?;
    let request = SecretIdRequest {
        wrap_ttl: Some(Duration::from_secs(60)),
        ..SecretIdRequest::default()
    };
    let GeneratedSecretId::Wrapped(wrap) = admin
        .approle("approle")
        .generate_secret_id(ROLE, &request)
        .await?
    else {
        bail!("vault did not wrap the secret_id");
    };
    step(
        3,
        &format!(
            "wrapped secret_id issued: wrapping token {} (ttl {}s, secret_id accessor {})",
            mask(wrap.token.expose_secret()),
            wrap.ttl,
            wrap.wrapped_accessor
        ),
    );

    // --- service: verify, unwrap once, log in -------------------------------
    let anonymous = admin.without_token();
    let lookup = anonymous.wrap_lookup(&wrap.token).await?;
    let expected = format!("auth/approle/role/{ROLE}/secret-id");
    ensure!(
        lookup.creation_path == expected,
        "wrapping token comes from {}",
        lookup.creation_path
    );
    #[derive(serde::Deserialize)]
    struct Unwrapped {
        secret_id: SecretString,
    }
    let secret_id = anonymous
        .unwrap::<Unwrapped>(&wrap.token)
        .await?
        .data
        .context("unwrap returned no data")?
        .secret_id;
    step(
        4,
        &format!("service checked the creation path ({expected}) and unwrapped its secret_id"),
    );
    let again = anonymous.unwrap::<serde_json::Value>(&wrap.token).await;
    ensure!(again.is_err(), "a wrapping token must work only once");
    step(
        5,
        "a second unwrap is refused: an intercepted wrapping token would be noticed",
    );

    let login = anonymous
        .approle("approle")
        .login(&role_id, Some(&secret_id))
        .await?;
    step(
        6,
        &format!(
            "service logged in: accessor {}, policies {:?}, ttl {}s",
            login.accessor, login.policies, login.lease_duration
        ),
    );
    let service = admin.with_token(login.client_token);

    let secret = service
        .kv2("secret")
        .read("shop/dev/db")
        .await?
        .context("secret missing")?;
    let shown: Vec<String> = secret
        .data
        .expose_secret()
        .iter()
        .map(|(k, v)| format!("{k}={}", mask(v.as_str().unwrap_or_default())))
        .collect();
    step(
        7,
        &format!(
            "service read shop/dev/db v{}: {}",
            secret.version(),
            shown.join(" ")
        ),
    );

    match service.kv2("secret").read("shop/prod/db").await {
        Err(e) if e.is_permission_denied() => step(
            8,
            "reading shop/prod/db is denied (403): least privilege holds",
        ),
        other => bail!("expected 403 outside the policy, got {other:?}"),
    }
    ensure!(
        anonymous
            .approle("approle")
            .login(&role_id, Some(&secret_id))
            .await
            .is_err(),
        "the single-use secret_id worked twice"
    );
    step(9, "the single-use secret_id cannot log in again");

    service.revoke_self().await?;
    match service.lookup_self().await {
        Err(e) if e.is_permission_denied() => {
            step(10, "service token revoked; it is refused from now on")
        }
        other => bail!("expected the revoked token to be refused, got {other:?}"),
    }
    println!("all steps checked out");
    Ok(())
}
