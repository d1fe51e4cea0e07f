//! A role_id/secret_id pair that Vault refused is never sent again, so a
//! caller that keeps logging in (the proxy's token manager retries in the
//! background, a scheduler restarts a task) cannot trip OpenBao's and
//! Vault's AppRole user lockout, which would then refuse the right
//! secret_id too, for 15 minutes.

// Test helpers fail loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use testkit::OpenBao;
use vault_approle::AppRoleAuth;
use vault_client::{ClientConfig, VaultAuth, VaultClient};

#[tokio::test]
async fn a_refused_secret_id_is_not_sent_again_so_the_approle_never_locks_out() {
    let bao = OpenBao::start().await;
    let (role_id, secret_id) = bao
        .approle_with_policy("app", r#"path "secret/*" { capabilities = ["read"] }"#)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let (role_file, secret_file) = (dir.path().join("role-id"), dir.path().join("secret-id"));
    std::fs::write(&role_file, &role_id).unwrap();
    std::fs::write(&secret_file, "wrong-secret-id-c41d").unwrap();
    let auth = AppRoleAuth::from_files("approle", &role_file, Some(secret_file.clone()), false);
    let client =
        VaultClient::new(ClientConfig::new(&bao.addr()).unwrap().with_max_retries(0)).unwrap();

    // More attempts than the lockout threshold (5): only the first reaches Vault.
    let first = auth.login(&client).await.unwrap_err().to_string();
    assert!(first.contains("vault refused"), "{first}");
    for _ in 0..8 {
        let again = auth.login(&client).await.unwrap_err().to_string();
        assert!(
            again.contains("not sending the role_id/secret_id"),
            "{again}"
        );
        assert!(
            !again.contains("wrong-secret-id"),
            "the secret_id leaked: {again}"
        );
    }

    // The secret_id file is rotated: the next login sends it, and it works.
    std::fs::write(&secret_file, &secret_id).unwrap();
    let login = auth.login(&client).await.unwrap();
    assert!(!login.accessor.is_empty());
}
