//! A consumer whose secret_id was replaced between reading the credentials
//! and logging in: Vault refuses the old one, the consumer reads the
//! credentials once more and retries once; never more.

// Test helpers fail loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use secrecy::ExposeSecret;
use testkit::OpenBao;
use vault_approle::{AppRoleAuth, CredentialStore, Credentials};
use vault_client::{ClientConfig, GeneratedSecretId, SecretIdRequest, VaultAuth, VaultClient};

/// Hands out the queued credentials one `get` at a time (the last one
/// stays), counting the reads.
struct Sequence {
    queue: Mutex<Vec<Credentials>>,
    reads: Mutex<usize>,
}

#[async_trait]
impl CredentialStore for Sequence {
    async fn put(&self, _: &str, _: &Credentials) -> vault_approle::Result<()> {
        Ok(())
    }
    async fn get(&self, _: &str) -> vault_approle::Result<Option<Credentials>> {
        *self.reads.lock().unwrap() += 1;
        let mut queue = self.queue.lock().unwrap();
        let next = if queue.len() > 1 {
            queue.remove(0)
        } else {
            queue[0].clone()
        };
        Ok(Some(next))
    }
    async fn delete(&self, _: &str) -> vault_approle::Result<()> {
        Ok(())
    }
    fn location(&self, role: &str) -> String {
        format!("sequence/{role}")
    }
}

async fn secret_id(root: &VaultClient) -> (String, String) {
    let GeneratedSecretId::Plain(s) = root
        .approle("approle")
        .generate_secret_id("app", &SecretIdRequest::default())
        .await
        .unwrap()
    else {
        panic!("wrapped")
    };
    (s.secret_id.expose_secret().to_owned(), s.accessor.clone())
}

fn credentials(role_id: &str, secret_id: &str) -> Credentials {
    let mut c = Credentials::new("app", role_id, "approle", "");
    c.secret_id = Some(secret_id.into());
    c
}

#[tokio::test]
async fn a_refused_secret_id_is_read_again_and_retried_once() {
    let bao = OpenBao::start().await;
    let (role_id, _) = bao
        .approle_with_policy("app", r#"path "secret/*" { capabilities = ["read"] }"#)
        .await;
    let root = VaultClient::new(ClientConfig::new(&bao.addr()).unwrap())
        .unwrap()
        .with_token(vault_client::SecretString::from(bao.root_token()));
    let (old, old_accessor) = secret_id(&root).await;
    let (new, _) = secret_id(&root).await;
    root.approle("approle")
        .destroy_secret_id_accessor("app", &old_accessor)
        .await
        .unwrap();
    let client = VaultClient::new(ClientConfig::new(&bao.addr()).unwrap()).unwrap();

    // Read the old one, refused; read again: the new one, accepted.
    let store = Arc::new(Sequence {
        queue: Mutex::new(vec![
            credentials(&role_id, &old),
            credentials(&role_id, &new),
        ]),
        reads: Mutex::new(0),
    });
    let auth = AppRoleAuth::from_store("approle", store.clone(), "app");
    auth.login(&client).await.unwrap();
    assert_eq!(*store.reads.lock().unwrap(), 2);

    // The same refused secret_id on the second read: no second attempt.
    let stale = Arc::new(Sequence {
        queue: Mutex::new(vec![credentials(&role_id, &old)]),
        reads: Mutex::new(0),
    });
    let auth = AppRoleAuth::from_store("approle", stale.clone(), "app");
    let err = auth.login(&client).await.unwrap_err().to_string();
    assert!(err.contains("refused"), "{err}");
    assert!(!err.contains(&old), "{err}");
    assert_eq!(*stale.reads.lock().unwrap(), 2);
}
