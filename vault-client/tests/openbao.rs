//! vault-client against a real OpenBao dev server (and PostgreSQL for leases),
//! started by testkit on free ports. Needs `scripts/install-peers`.

// Test helpers fail loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::time::Duration;

use serde_json::json;
use testkit::{OpenBao, Postgres};
use vault_client::{
    ClientConfig, ExposeSecret, GeneratedSecretId, RoleConfig, SecretIdRequest, SecretMap,
    SecretString, TokenAuth, TokenRequest, VaultAuth, VaultClient,
};

fn root_client(bao: &OpenBao) -> VaultClient {
    let config = ClientConfig::new(&bao.addr())
        .unwrap()
        .with_token(SecretString::from(bao.root_token()))
        .with_backoff(Duration::from_millis(10), Duration::from_millis(100));
    VaultClient::new(config).unwrap()
}

fn map(value: serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
    value.as_object().unwrap().clone()
}

const APP_POLICY: &str = r#"
path "secret/data/app/*" { capabilities = ["read"] }
"#;

#[tokio::test]
async fn health_of_a_dev_server() {
    let bao = OpenBao::start().await;
    let health = root_client(&bao).without_token().health().await.unwrap();
    assert_eq!(health.status, 200);
    assert!(health.initialized && !health.sealed && !health.standby);
    assert!(health.is_ready());
    assert!(
        health.version.starts_with("2."),
        "version {:?}",
        health.version
    );
}

#[tokio::test]
async fn approle_role_secret_id_and_login() {
    let bao = OpenBao::start().await;
    let root = root_client(&bao);
    root.enable_auth_method("approle", "approle").await.unwrap();
    root.write_policy("shop-dev", APP_POLICY).await.unwrap();
    let policy = root.read_policy("shop-dev").await.unwrap().unwrap();
    assert_eq!(policy.name, "shop-dev");
    assert!(policy.policy.contains("secret/data/app/*"));
    assert!(root.read_policy("no-such-policy").await.unwrap().is_none());

    let approle = root.approle("approle");
    let role = RoleConfig {
        token_policies: vec!["shop-dev".into()],
        token_ttl: Some(600),
        token_max_ttl: Some(1200),
        secret_id_ttl: Some(3600),
        secret_id_num_uses: Some(5),
        ..RoleConfig::default()
    };
    approle.write_role("shop-task-role", &role).await.unwrap();
    let read = approle.read_role("shop-task-role").await.unwrap().unwrap();
    assert_eq!(read.token_policies, ["shop-dev"]);
    assert_eq!(read.token_ttl, Some(600));
    assert_eq!(read.token_max_ttl, Some(1200));
    assert_eq!(read.secret_id_ttl, Some(3600));
    assert_eq!(read.secret_id_num_uses, Some(5));
    assert_eq!(approle.list_roles().await.unwrap(), ["shop-task-role"]);
    assert!(approle.read_role("missing").await.unwrap().is_none());

    let role_id = approle.role_id("shop-task-role").await.unwrap();
    assert!(!role_id.is_empty());
    let request = SecretIdRequest {
        metadata: HashMap::from([("service".to_owned(), "shop".to_owned())]),
        cidr_list: vec!["127.0.0.0/8".into()],
        ..SecretIdRequest::default()
    };
    let GeneratedSecretId::Plain(secret) = approle
        .generate_secret_id("shop-task-role", &request)
        .await
        .unwrap()
    else {
        panic!("asked for a plain secret id");
    };
    assert_eq!(secret.num_uses, 5);
    assert_eq!(
        approle
            .list_secret_id_accessors("shop-task-role")
            .await
            .unwrap(),
        std::slice::from_ref(&secret.accessor)
    );
    let info = approle
        .lookup_secret_id_accessor("shop-task-role", &secret.accessor)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(info.cidr_list, ["127.0.0.0/8"]);
    assert_eq!(
        info.metadata.get("service").map(String::as_str),
        Some("shop")
    );

    // Log in as the service: the token carries the policy and can read only its path.
    let anonymous = root.without_token();
    let auth = anonymous
        .approle("approle")
        .login(&role_id, Some(&secret.secret_id))
        .await
        .unwrap();
    assert!(
        auth.policies.contains(&"shop-dev".to_owned()),
        "{:?}",
        auth.policies
    );
    assert_eq!(auth.ttl(), Some(Duration::from_secs(600)));
    assert!(auth.renewable);
    root.kv2("secret")
        .write("app/db", &map(json!({"password": "pw"})), None)
        .await
        .unwrap();
    root.kv2("secret")
        .write("other/db", &map(json!({"password": "pw"})), None)
        .await
        .unwrap();
    let service = root.with_token(auth.client_token.clone());
    assert!(
        service
            .kv2("secret")
            .read("app/db")
            .await
            .unwrap()
            .is_some()
    );
    let denied = service.kv2("secret").read("other/db").await.unwrap_err();
    assert!(denied.is_permission_denied(), "{denied}");
    assert!(!denied.is_retryable());
    assert!(denied.to_string().contains("permission denied"), "{denied}");

    // A wrong secret id is refused with Vault's words, without retries.
    let wrong = anonymous
        .approle("approle")
        .login(
            &role_id,
            Some(&SecretString::from("00000000-0000-0000-0000-000000000000")),
        )
        .await
        .unwrap_err();
    assert_eq!(wrong.status(), Some(400));
    assert!(wrong.to_string().contains("invalid"), "{wrong}");

    // Destroyed by accessor: gone from the list and no longer usable.
    approle
        .destroy_secret_id_accessor("shop-task-role", &secret.accessor)
        .await
        .unwrap();
    assert!(
        approle
            .list_secret_id_accessors("shop-task-role")
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        approle
            .lookup_secret_id_accessor("shop-task-role", &secret.accessor)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        anonymous
            .approle("approle")
            .login(&role_id, Some(&secret.secret_id))
            .await
            .is_err()
    );

    approle.delete_role("shop-task-role").await.unwrap();
    assert!(approle.read_role("shop-task-role").await.unwrap().is_none());
    approle.delete_role("shop-task-role").await.unwrap(); // idempotent
}

#[tokio::test]
async fn wrapped_secret_id_unwraps_once() {
    let bao = OpenBao::start().await;
    let root = root_client(&bao);
    root.enable_auth_method("approle", "approle").await.unwrap();
    let approle = root.approle("approle");
    approle
        .write_role(
            "web",
            &RoleConfig {
                token_policies: vec!["default".into()],
                ..RoleConfig::default()
            },
        )
        .await
        .unwrap();
    let request = SecretIdRequest {
        num_uses: Some(1),
        wrap_ttl: Some(Duration::from_secs(120)),
        ..SecretIdRequest::default()
    };
    let GeneratedSecretId::Wrapped(wrap) =
        approle.generate_secret_id("web", &request).await.unwrap()
    else {
        panic!("asked for a wrapped secret id");
    };
    assert_eq!(wrap.ttl, 120);
    assert!(!wrap.wrapped_accessor.is_empty());

    let anonymous = root.without_token();
    let lookup = anonymous.wrap_lookup(&wrap.token).await.unwrap();
    assert_eq!(lookup.creation_path, "auth/approle/role/web/secret-id");
    assert_eq!(lookup.creation_ttl, 120);

    #[derive(serde::Deserialize)]
    struct Unwrapped {
        secret_id: SecretString,
        secret_id_accessor: String,
    }
    let unwrapped = anonymous
        .unwrap::<Unwrapped>(&wrap.token)
        .await
        .unwrap()
        .data
        .unwrap();
    assert_eq!(unwrapped.secret_id_accessor, wrap.wrapped_accessor);
    let role_id = approle.role_id("web").await.unwrap();
    anonymous
        .approle("approle")
        .login(&role_id, Some(&unwrapped.secret_id))
        .await
        .unwrap();
    // num_uses = 1: the secret id is spent.
    assert!(
        anonymous
            .approle("approle")
            .login(&role_id, Some(&unwrapped.secret_id))
            .await
            .is_err()
    );

    let again = anonymous
        .unwrap::<serde_json::Value>(&wrap.token)
        .await
        .unwrap_err();
    assert_eq!(again.status(), Some(400));
    assert!(!again.is_retryable());
    assert!(
        again
            .to_string()
            .contains("wrapping token is not valid or does not exist"),
        "{again}"
    );
    assert!(!again.to_string().contains(wrap.token.expose_secret()));
}

#[tokio::test]
async fn kv2_versions_metadata_listing_and_deletion() {
    let bao = OpenBao::start().await;
    let root = root_client(&bao);
    let kv = root.kv2("secret");

    let v1 = kv
        .write(
            "app/db",
            &map(json!({"user": "app", "password": "one"})),
            None,
        )
        .await
        .unwrap();
    let v2 = kv
        .write(
            "app/db",
            &map(json!({"user": "app", "password": "two"})),
            None,
        )
        .await
        .unwrap();
    assert_eq!((v1.version, v2.version), (1, 2));
    kv.write("app/api", &map(json!({"key": "k"})), None)
        .await
        .unwrap();
    kv.write("app/nested/deeper/leaf", &map(json!({"x": "1"})), None)
        .await
        .unwrap();
    kv.write("app with space/x", &map(json!({"x": "1"})), None)
        .await
        .unwrap();

    let latest = kv.read("app/db").await.unwrap().unwrap();
    assert_eq!(latest.version(), 2);
    assert_eq!(latest.data.get_str("password"), Some("two"));
    let first = kv.read_version("app/db", 1).await.unwrap().unwrap();
    assert_eq!(first.version(), 1);
    assert_eq!(first.data.get_str("password"), Some("one"));
    assert!(kv.read_version("app/db", 9).await.unwrap().is_none());
    assert!(kv.read("app/missing").await.unwrap().is_none());
    assert_eq!(
        kv.read("app with space/x")
            .await
            .unwrap()
            .unwrap()
            .version(),
        1
    );

    let meta = kv.read_metadata("app/db").await.unwrap().unwrap();
    assert_eq!(meta.current_version, 2);
    assert_eq!(meta.versions.keys().copied().collect::<Vec<_>>(), [1, 2]);
    assert!(meta.current_is_live());
    assert!(kv.read_metadata("app/missing").await.unwrap().is_none());

    kv.write_custom_metadata("app/db", &HashMap::from([("owner".into(), "shop".into())]))
        .await
        .unwrap();
    let meta = kv.read_metadata("app/db").await.unwrap().unwrap();
    assert_eq!(
        meta.custom_metadata.get("owner").map(String::as_str),
        Some("shop")
    );

    assert_eq!(kv.list("app").await.unwrap(), ["api", "db", "nested/"]);
    assert!(kv.list("nothing/here").await.unwrap().is_empty());
    assert_eq!(
        kv.walk("").await.unwrap(),
        [
            "app with space/x",
            "app/api",
            "app/db",
            "app/nested/deeper/leaf"
        ]
    );
    assert_eq!(
        kv.walk("app/nested").await.unwrap(),
        ["app/nested/deeper/leaf"]
    );

    let detailed = kv.list_detailed("app/").await.unwrap();
    let keys: Vec<&str> = detailed.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(keys, ["api", "db", "nested/"]);
    let db = detailed.iter().find(|e| e.key == "db").unwrap();
    assert_eq!(db.metadata.as_ref().unwrap().current_version, 2);
    assert!(
        detailed
            .iter()
            .find(|e| e.key == "nested/")
            .unwrap()
            .is_folder()
    );
    assert!(kv.list_detailed("nothing/").await.unwrap().is_empty());

    // Check-and-set: a stale version is refused (400), not retried.
    let stale = kv
        .write("app/db", &map(json!({"password": "x"})), Some(1))
        .await
        .unwrap_err();
    assert_eq!(stale.status(), Some(400), "{stale}");
    assert!(!stale.is_retryable());
    assert_eq!(
        kv.write("app/db", &map(json!({"password": "three"})), Some(2))
            .await
            .unwrap()
            .version,
        3
    );

    // Soft delete of the latest: unreadable, metadata says so, older versions stay.
    kv.delete_latest("app/db").await.unwrap();
    assert!(kv.read("app/db").await.unwrap().is_none());
    let meta = kv.read_metadata("app/db").await.unwrap().unwrap();
    assert!(!meta.current_is_live());
    assert!(kv.read_version("app/db", 2).await.unwrap().is_some());
    kv.destroy_versions("app/db", &[2]).await.unwrap();
    assert!(kv.read_version("app/db", 2).await.unwrap().is_none());
    assert!(kv.read_metadata("app/db").await.unwrap().unwrap().versions[&2].destroyed);
    kv.delete_versions("app/db", &[1]).await.unwrap();
    assert!(kv.read_version("app/db", 1).await.unwrap().is_none());
    kv.delete_metadata("app/db").await.unwrap();
    assert!(kv.read_metadata("app/db").await.unwrap().is_none());
}

#[tokio::test]
async fn token_renew_and_revoke_self() {
    let bao = OpenBao::start().await;
    let root = root_client(&bao);
    let mut request = TokenRequest::new(&["default"], "10m");
    request.explicit_max_ttl = Some("1h".into());
    let child = root.create_token(&request).await.unwrap();
    assert!(child.renewable);
    let client = root.with_token(child.client_token.clone());

    let info = client.lookup_self().await.unwrap();
    assert_eq!(info.accessor, child.accessor);
    assert!(info.ttl > 0 && info.ttl <= 600, "ttl {}", info.ttl);
    assert!(info.renewable);

    let renewed = client
        .renew_self(Some(Duration::from_secs(1800)))
        .await
        .unwrap();
    assert_eq!(renewed.accessor, child.accessor);
    assert!(
        renewed.lease_duration > 600 && renewed.lease_duration <= 1800,
        "{}",
        renewed.lease_duration
    );

    let via_auth = TokenAuth::new(child.client_token.clone())
        .login(&root.without_token())
        .await
        .unwrap();
    assert_eq!(via_auth.accessor, child.accessor);
    assert!(via_auth.lease_duration > 600);

    client.revoke_self().await.unwrap();
    let err = client.lookup_self().await.unwrap_err();
    assert_eq!(err.status(), Some(403));
    assert!(!err.is_retryable());
    let msg = err.to_string();
    assert!(
        msg.contains("vault returned 403 Forbidden for GET /v1/auth/token/lookup-self"),
        "{msg}"
    );
    assert!(msg.contains("expired or revoked"), "{msg}");
    assert!(!msg.contains(child.client_token.expose_secret()));

    let refused = TokenAuth::new(child.client_token.clone())
        .login(&root.without_token())
        .await
        .unwrap_err();
    assert!(
        refused.to_string().contains("token was refused"),
        "{refused}"
    );
}

#[tokio::test]
async fn lease_renew_and_revoke_with_dynamic_postgres_credentials() {
    let (bao, pg) = tokio::join!(OpenBao::start(), Postgres::start());
    let root = root_client(&bao);
    root.enable_secrets_engine("database", "database", None)
        .await
        .unwrap();
    root.request(vault_client::Method::POST, "database/config/pg")
        .json(&pg.vault_database_config())
        .send()
        .await
        .unwrap();
    root.request(vault_client::Method::POST, "database/roles/app")
        .json(&Postgres::vault_database_role("5m", "1h"))
        .send()
        .await
        .unwrap();

    let creds = root
        .request(vault_client::Method::GET, "database/creds/app")
        .send()
        .await
        .unwrap()
        .vault::<SecretMap>()
        .unwrap();
    assert!(
        creds.lease_id.starts_with("database/creds/app/"),
        "{}",
        creds.lease_id
    );
    assert!(creds.renewable);
    assert_eq!(creds.lease_duration, 300);
    let user = creds
        .data
        .as_ref()
        .unwrap()
        .get_str("username")
        .unwrap()
        .to_owned();
    assert!(
        pg.psql(&format!(
            "select count(*) from pg_roles where rolname = '{user}'"
        ))
        .await
        .contains('1')
    );

    let renewed = root
        .renew_lease(&creds.lease_id, Some(Duration::from_secs(1200)))
        .await
        .unwrap();
    assert_eq!(renewed.lease_id, creds.lease_id);
    assert!(renewed.renewable);
    assert_eq!(renewed.lease_duration, Duration::from_secs(1200));

    root.revoke_lease(&creds.lease_id).await.unwrap();
    let err = root.renew_lease(&creds.lease_id, None).await.unwrap_err();
    assert_eq!(err.status(), Some(400), "{err}");
    assert!(
        pg.psql(&format!(
            "select count(*) from pg_roles where rolname = '{user}'"
        ))
        .await
        .contains('0')
    );
}
