//! Moving stacks from kickstarter's serverless AppRole manager to the
//! vault-aws orchestrator, starting from state shaped like the old tool's:
//! a Vault role named after the IAM role, its credentials at
//! `vault/appRole/<IamRole as given>` (case preserved), and custom
//! resources whose physical ids are Lambda log stream names. Each test is a
//! step of docs/migrating-from-serverless-approle-manager.md.

// Test helpers fail loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde_json::{Value, json};
use testkit::{AppRolePeers, Moto, OpenBao};
use vault_approle::cfn::CfnHandler;
use vault_approle::{
    AppRoleAuth, Provisioner, ProvisionerOptions, S3Access, S3CredentialStore, StoreLayout,
};
use vault_client::{ClientConfig, SecretString, TokenAuth, VaultAuth, VaultClient};
use wiremock::MockServer;

const BUCKET: &str = "approle-creds";
const STACK: &str = "arn:aws:cloudformation:us-east-1:123456789012:stack/shop/guid";
/// A physical id of the old tool: the log stream of the invocation that
/// created the resource.
const OLD_ID: &str = "2025/03/14/[$LATEST]0f1e2d3c4b5a69788796a5b4c3d2e1f0";
const OLD_TOKEN: &str = "arn:aws:lambda:us-east-1:123456789012:function:serverless-approle-manager";
const NEW_TOKEN: &str = "arn:aws:lambda:us-east-1:123456789012:function:vault-aws-approle";

struct Env {
    bao: OpenBao,
    _moto: Moto,
    s3: aws_sdk_s3::Client,
    root: VaultClient,
    cfn: MockServer,
    calls: std::sync::atomic::AtomicUsize,
}

async fn setup() -> Env {
    let AppRolePeers { bao, moto, s3 } = AppRolePeers::shop_dev(BUCKET).await;
    let root = VaultClient::new(ClientConfig::new(&bao.addr()).unwrap())
        .unwrap()
        .with_token(SecretString::from(bao.root_token()));
    let cfn = testkit::cfn::response_listener().await;
    Env {
        bao,
        _moto: moto,
        s3,
        root,
        cfn,
        calls: Default::default(),
    }
}

impl Env {
    /// What the old tool left: the role `shoptask` and its credentials at
    /// `vault/appRole/ShopTask`. Returns the old secret_id.
    async fn old_tool_state(&self) -> String {
        self.root
            .request(vault_client::Method::POST, "auth/approle/role/shoptask")
            .json(&json!({"token_policies": ["shop-dev"], "secret_id_ttl": 2_592_000}))
            .send()
            .await
            .unwrap();
        let approle = self.root.approle("approle");
        let role_id = approle.role_id("shoptask").await.unwrap();
        let generated = approle
            .generate_secret_id("shoptask", &vault_client::SecretIdRequest::default())
            .await
            .unwrap();
        let vault_client::GeneratedSecretId::Plain(plain) = generated else {
            panic!("wrapped")
        };
        use secrecy::ExposeSecret;
        let secret_id = plain.secret_id.expose_secret().to_owned();
        self.s3
            .put_object()
            .bucket(BUCKET)
            .key("vault/appRole/ShopTask")
            .body(
                json!({"role_id": role_id, "secret_id": secret_id})
                    .to_string()
                    .into_bytes()
                    .into(),
            )
            .send()
            .await
            .unwrap();
        secret_id
    }

    fn handler(&self, layout: StoreLayout) -> CfnHandler {
        let access = S3Access::from_client(self.s3.clone());
        let mut builder = S3CredentialStore::builder(BUCKET).access(access);
        if layout == StoreLayout::ServerlessAppRoleManager {
            builder = builder.prefix("vault/appRole/");
        }
        let admin: Arc<dyn VaultAuth> =
            Arc::new(TokenAuth::new(SecretString::from(self.bao.root_token())));
        let provisioner = Provisioner::new(
            self.client(),
            admin,
            Arc::new(builder.build().unwrap()),
            ProvisionerOptions::default()
                .rotation_grace(Duration::from_millis(100))
                .layout(layout),
        );
        CfnHandler::new(Arc::new(provisioner)).allow_response_url_hosts(["127.0.0.1"])
    }

    fn client(&self) -> VaultClient {
        VaultClient::new(ClientConfig::new(&self.bao.addr()).unwrap()).unwrap()
    }

    async fn send(
        &self,
        handler: &CfnHandler,
        kind: &str,
        physical: Option<&str>,
        props: Value,
        old: Option<Value>,
    ) -> Value {
        let n = self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let mut event = testkit::cfn::event(kind, n, &self.cfn.uri(), physical, props);
        if let Some(o) = old {
            event["OldResourceProperties"] = o;
        }
        let outcome = handler
            .handle(event, Some(SystemTime::now() + Duration::from_secs(60)))
            .await;
        assert!(outcome.delivered.is_ok(), "{:?}", outcome.delivered);
        serde_json::to_value(outcome.response.unwrap()).unwrap()
    }

    async fn object(&self, key: &str) -> Option<Value> {
        let o = self
            .s3
            .get_object()
            .bucket(BUCKET)
            .key(key)
            .send()
            .await
            .ok()?;
        Some(serde_json::from_slice(&o.body.collect().await.unwrap().into_bytes()).unwrap())
    }

    async fn role_exists(&self) -> bool {
        self.root
            .approle("approle")
            .read_role("shoptask")
            .await
            .unwrap()
            .is_some()
    }

    /// Logs in the way a seed-era entrypoint does: role_id and secret_id
    /// from `vault/appRole/ShopTask`.
    async fn old_entrypoint_login(&self) -> vault_client::Result<vault_client::AuthInfo> {
        let object = self.object("vault/appRole/ShopTask").await.unwrap();
        AppRoleAuth::new(
            "approle",
            object["role_id"].as_str().unwrap(),
            Some(SecretString::from(object["secret_id"].as_str().unwrap())),
        )
        .login(&self.client())
        .await
    }
}

fn props(token: &str) -> Value {
    json!({"ServiceToken": token, "Service": "shop", "Environment": "dev",
        "Iam": "arn:aws:iam::123456789012:role/ShopTask"})
}

/// Step 2 and 3 of the guide: the stack's ServiceToken is switched to the
/// new orchestrator, run with the old tool's layout. The Update adopts the
/// role (new physical id), the old entrypoints keep working with the
/// object at the old key, and the Delete CloudFormation then sends for the
/// old id is harmless. Later, the stack's own Delete removes everything.
#[tokio::test]
async fn switching_the_service_token_adopts_the_role_in_the_old_layout() {
    let env = setup().await;
    let old_secret_id = env.old_tool_state().await;
    assert!(env.old_entrypoint_login().await.is_ok());
    let handler = env.handler(StoreLayout::ServerlessAppRoleManager);

    let body = env
        .send(
            &handler,
            "Update",
            Some(OLD_ID),
            props(NEW_TOKEN),
            Some(props(OLD_TOKEN)),
        )
        .await;
    assert_eq!(body["Status"], "SUCCESS", "{body}");
    assert_eq!(body["PhysicalResourceId"], "shoptask");
    assert_eq!(
        body["Data"]["CredentialsLocation"],
        format!("s3://{BUCKET}/vault/appRole/ShopTask")
    );
    let object = env.object("vault/appRole/ShopTask").await.unwrap();
    assert_eq!(object["owner"]["stack_id"], STACK);
    assert_ne!(object["secret_id"], old_secret_id, "a fresh secret_id");
    assert!(env.object("vault/approle/shoptask").await.is_none());
    let login = env.old_entrypoint_login().await.unwrap();
    assert!(login.policies.contains(&"shop-dev".to_owned()));

    // CloudFormation deletes the old physical id: nothing happens.
    let body = env
        .send(&handler, "Delete", Some(OLD_ID), props(OLD_TOKEN), None)
        .await;
    assert_eq!(body["Status"], "SUCCESS", "{body}");
    assert!(env.role_exists().await);
    assert!(env.old_entrypoint_login().await.is_ok());

    // The scheduled rotation finds the role in the old layout.
    let rotated = handler.scheduled(None).await.unwrap();
    assert_eq!(rotated["failed"], json!([]), "{rotated}");
    assert_eq!(rotated["skipped"][0]["role"], "ShopTask", "{rotated}");

    // The stack is deleted: the role and the object go.
    let body = env
        .send(&handler, "Delete", Some("shoptask"), props(NEW_TOKEN), None)
        .await;
    assert_eq!(body["Status"], "SUCCESS", "{body}");
    assert!(!env.role_exists().await);
    assert!(env.object("vault/appRole/ShopTask").await.is_none());
}

/// A resource of the old tool deleted through the new orchestrator (its
/// ServiceToken switched and the resource removed in the same change):
/// the role named by `Iam` and its object in the old layout are cleaned up.
#[tokio::test]
async fn a_delete_with_an_old_physical_id_cleans_up_a_role_never_adopted() {
    let env = setup().await;
    env.old_tool_state().await;
    let handler = env.handler(StoreLayout::ServerlessAppRoleManager);
    let body = env
        .send(&handler, "Delete", Some(OLD_ID), props(NEW_TOKEN), None)
        .await;
    assert_eq!(body["Status"], "SUCCESS", "{body}");
    assert_eq!(body["PhysicalResourceId"], OLD_ID);
    assert!(!env.role_exists().await);
    assert!(env.object("vault/appRole/ShopTask").await.is_none());
}

/// Step 4 of the guide: moving to the vault-aws layout. With the default
/// layout the Update adopts the role and delivers to
/// `vault/approle/shoptask`; `vault-exec` reads it there.
#[tokio::test]
async fn adopting_into_the_vault_aws_layout() {
    let env = setup().await;
    env.old_tool_state().await;
    let handler = env.handler(StoreLayout::VaultAws);
    let body = env
        .send(
            &handler,
            "Update",
            Some(OLD_ID),
            props(NEW_TOKEN),
            Some(props(OLD_TOKEN)),
        )
        .await;
    assert_eq!(body["Status"], "SUCCESS", "{body}");
    assert_eq!(body["PhysicalResourceId"], "shoptask");
    let object = env.object("vault/approle/shoptask").await.unwrap();
    assert_eq!(object["owner"]["logical_resource_id"], "ShopVaultAuth");
    let access = S3Access::from_client(env.s3.clone());
    let store = Arc::new(
        S3CredentialStore::builder(BUCKET)
            .access(access)
            .build()
            .unwrap(),
    );
    AppRoleAuth::from_store("approle", store, "shoptask")
        .login(&env.client())
        .await
        .unwrap();
}

/// During a migration the store holds roles the orchestrator does not own.
/// One scheduled run over `vault/appRole/`: the old tool's role (no owner
/// record, secret_id not made by vault-aws) is left as it is, an object that
/// cannot be read fails alone, and the role this orchestrator owns is still
/// rotated, although the failing object is listed before it.
#[tokio::test]
async fn a_scheduled_run_rotates_its_roles_skips_others_and_isolates_a_failure() {
    let env = setup().await;
    let old_secret_id = env.old_tool_state().await;
    let handler = env
        .handler(StoreLayout::ServerlessAppRoleManager)
        .rotate_below(1.0);
    let mut cart = props(NEW_TOKEN);
    cart["Iam"] = json!("arn:aws:iam::123456789012:role/CartTask");
    cart["SecretIdTtl"] = json!("1h");
    let body = env.send(&handler, "Create", None, cart, None).await;
    assert_eq!(body["Status"], "SUCCESS", "{body}");
    let before = env.object("vault/appRole/CartTask").await.unwrap();
    // Listed first: an object that is not JSON.
    env.s3
        .put_object()
        .bucket(BUCKET)
        .key("vault/appRole/Broken")
        .body(b"not json".to_vec().into())
        .send()
        .await
        .unwrap();
    // Vault's expiry times have a one-second resolution: let the delivered
    // secret_id lose a second of its life, so it is due at fraction 1.
    tokio::time::sleep(Duration::from_millis(1100)).await;

    let message = handler.scheduled(None).await.unwrap_err();
    assert!(message.contains("1 of 3 roles failed"), "{message}");
    let summary: Value = serde_json::from_str(&message[message.find('{').unwrap()..]).unwrap();
    assert_eq!(summary["failed"][0]["role"], "Broken", "{summary}");
    assert_eq!(summary["rotated"][0]["role"], "CartTask", "{summary}");
    assert_eq!(summary["skipped"][0]["role"], "ShopTask", "{summary}");
    assert!(
        summary["skipped"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("not managed by vault-aws"),
        "{summary}"
    );

    // Ours: a new secret_id was delivered, and it logs in.
    let after = env.object("vault/appRole/CartTask").await.unwrap();
    assert_ne!(after["secret_id"], before["secret_id"]);
    AppRoleAuth::new(
        "approle",
        after["role_id"].as_str().unwrap(),
        Some(SecretString::from(after["secret_id"].as_str().unwrap())),
    )
    .login(&env.client())
    .await
    .unwrap();
    // Not ours: its object and its secret_id are untouched.
    let theirs = env.object("vault/appRole/ShopTask").await.unwrap();
    assert_eq!(theirs["secret_id"], old_secret_id.as_str());
    assert!(theirs.get("owner").is_none(), "{theirs}");
    assert!(env.old_entrypoint_login().await.is_ok());
}
