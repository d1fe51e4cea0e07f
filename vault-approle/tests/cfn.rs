//! The CloudFormation custom resource against a real OpenBao and moto S3,
//! with a wiremock server standing in for the pre-signed ResponseURL.

// Test helpers fail loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde_json::{Value, json};
use testkit::{AppRolePeers, Moto, OpenBao};
use vault_approle::cfn::{CfnHandler, FAILED_CREATE_PREFIX};
use vault_approle::{
    AppRoleAuth, CredentialStore, DeliveryMode, Provisioner, ProvisionerOptions, RoleSpec,
    S3Access, S3CredentialStore, S3Encryption, S3TokenAuth,
};
use vault_client::{ClientConfig, SecretString, TokenAuth, VaultAuth, VaultClient};
use wiremock::MockServer;

const BUCKET: &str = "approle-creds";
const KMS_KEY: &str = "alias/vault-approle";
const STACK: &str = "arn:aws:cloudformation:us-east-1:123456789012:stack/shop/guid";

struct Env {
    bao: OpenBao,
    _moto: Moto,
    s3: aws_sdk_s3::Client,
    root: VaultClient,
    store: Arc<S3CredentialStore>,
    cfn: MockServer,
    handler: CfnHandler,
    /// The same provisioner with the default ResponseURL rule (CloudFormation's hosts only).
    strict: CfnHandler,
    calls: std::sync::atomic::AtomicUsize,
}

async fn setup() -> Env {
    let AppRolePeers { bao, moto, s3 } = AppRolePeers::shop_dev(BUCKET).await;
    let root = VaultClient::new(ClientConfig::new(&bao.addr()).unwrap())
        .unwrap()
        .with_token(SecretString::from(bao.root_token()));
    // The orchestrator's token is kept in S3, as the original did.
    s3.put_object()
        .bucket(BUCKET)
        .key("orchestrator/token")
        .body(format!("{}\n", bao.root_token()).into_bytes().into())
        .send()
        .await
        .unwrap();
    let access = S3Access::from_client(s3.clone());
    let admin: Arc<dyn VaultAuth> = Arc::new(S3TokenAuth::new(
        access.clone(),
        BUCKET,
        "orchestrator/token",
    ));
    let store = Arc::new(
        S3CredentialStore::builder(BUCKET)
            .access(access)
            .encryption(S3Encryption::Kms(KMS_KEY.into()))
            .build()
            .unwrap(),
    );
    let client = VaultClient::new(ClientConfig::new(&bao.addr()).unwrap()).unwrap();
    let provisioner = Arc::new(Provisioner::new(
        client,
        admin,
        store.clone(),
        ProvisionerOptions::default().rotation_grace(Duration::from_millis(200)),
    ));
    let cfn = testkit::cfn::response_listener().await;
    Env {
        bao,
        _moto: moto,
        s3,
        root,
        store,
        cfn,
        handler: CfnHandler::new(Arc::clone(&provisioner)).allow_response_url_hosts(["127.0.0.1"]),
        strict: CfnHandler::new(provisioner),
        calls: Default::default(),
    }
}

impl Env {
    /// Sends one event and returns the response body CloudFormation received.
    async fn send(
        &self,
        kind: &str,
        physical: Option<&str>,
        props: Value,
        old: Option<Value>,
    ) -> Value {
        self.send_as(STACK, "ShopVaultAuth", kind, physical, props, old)
            .await
    }

    /// [`Env::send`] from the resource `logical` of the stack `stack`.
    async fn send_as(
        &self,
        stack: &str,
        logical: &str,
        kind: &str,
        physical: Option<&str>,
        props: Value,
        old: Option<Value>,
    ) -> Value {
        self.send_to(&self.handler, stack, logical, kind, physical, props, old)
            .await
    }

    /// [`Env::send_as`] to another orchestrator's `handler`.
    #[allow(clippy::too_many_arguments)]
    async fn send_to(
        &self,
        handler: &CfnHandler,
        stack: &str,
        logical: &str,
        kind: &str,
        physical: Option<&str>,
        props: Value,
        old: Option<Value>,
    ) -> Value {
        let n = self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let mut event = testkit::cfn::event(kind, n, &self.cfn.uri(), physical, props);
        event["StackId"] = json!(stack);
        event["LogicalResourceId"] = json!(logical);
        if let Some(o) = old {
            event["OldResourceProperties"] = o;
        }
        let deadline = SystemTime::now() + Duration::from_secs(60);
        let outcome = handler.handle(event, Some(deadline)).await;
        assert!(outcome.delivered.is_ok(), "{:?}", outcome.delivered);
        let received = self.cfn.received_requests().await.unwrap();
        let req = received
            .iter()
            .find(|r| r.url.path() == format!("/cfn/{n}"))
            .expect("a response was PUT to the ResponseURL");
        assert_eq!(req.method.as_str(), "PUT");
        assert_eq!(
            req.headers.get("content-type").map(|v| v.as_bytes()),
            Some(&b""[..])
        );
        assert!(req.body.len() <= 4096);
        let body: Value = serde_json::from_slice(&req.body).unwrap();
        assert_eq!(body["StackId"], stack);
        assert_eq!(body["RequestId"], format!("req-{n}"));
        assert_eq!(body["LogicalResourceId"], logical);
        assert!(!body["PhysicalResourceId"].as_str().unwrap().is_empty());
        body
    }

    async fn role(&self, name: &str) -> Option<Value> {
        self.root
            .request(
                vault_client::Method::GET,
                &format!("auth/approle/role/{name}"),
            )
            .data_optional::<Value>()
            .await
            .unwrap()
    }

    async fn object(&self, role: &str) -> Option<Value> {
        match self
            .s3
            .get_object()
            .bucket(BUCKET)
            .key(format!("vault/approle/{role}"))
            .send()
            .await
        {
            Ok(o) => {
                Some(serde_json::from_slice(&o.body.collect().await.unwrap().into_bytes()).unwrap())
            }
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => None,
            Err(e) => panic!("{e:?}"),
        }
    }

    async fn accessors(&self, role: &str) -> Vec<String> {
        self.root
            .approle("approle")
            .list_secret_id_accessors(role)
            .await
            .unwrap()
    }

    fn client(&self) -> VaultClient {
        VaultClient::new(ClientConfig::new(&self.bao.addr()).unwrap()).unwrap()
    }
}

fn props(iam: &str, extra: Value) -> Value {
    let mut p = json!({
        "ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:vault-auth",
        "Service": "shop", "Environment": "dev", "Iam": iam,
    });
    for (k, v) in extra.as_object().unwrap() {
        p[k] = v.clone();
    }
    p
}

#[tokio::test]
async fn cfn_lifecycle_create_update_replace_delete() {
    let env = setup().await;
    let iam = "arn:aws:iam::123456789012:role/ecs/ShopTask";

    // --- A ResponseURL that is not CloudFormation's: no action, no request --
    let outcome = env
        .strict
        .handle(
            json!({
                "RequestType": "Create",
                "ResponseURL": format!("{}/elsewhere?X-Amz-Signature=abc", env.cfn.uri()),
                "StackId": "s", "RequestId": "r", "LogicalResourceId": "ShopVaultAuth",
                "ResourceProperties": props(iam, json!({})),
            }),
            Some(SystemTime::now() + Duration::from_secs(60)),
        )
        .await;
    let refused = outcome.delivered.unwrap_err();
    assert!(refused.contains("not CloudFormation's"), "{refused}");
    assert!(!refused.contains("Signature"), "{refused}");
    assert!(outcome.response.is_none());
    assert!(env.role("shoptask").await.is_none(), "nothing provisioned");
    assert!(env.object("shoptask").await.is_none(), "nothing delivered");
    assert!(
        env.cfn.received_requests().await.unwrap().is_empty(),
        "nothing sent"
    );

    // --- Create ---------------------------------------------------------
    let body = env
        .send(
            "Create",
            None,
            props(
                iam,
                json!({"TokenTtl": "20m", "SecretIdBoundCidrs": "127.0.0.0/8"}),
            ),
            None,
        )
        .await;
    assert_eq!(body["Status"], "SUCCESS", "{body}");
    assert_eq!(body["PhysicalResourceId"], "shoptask");
    assert_eq!(body["Data"]["RoleName"], "shoptask");
    assert_eq!(
        body["Data"]["CredentialsLocation"],
        format!("s3://{BUCKET}/vault/approle/shoptask")
    );
    let role = env.role("shoptask").await.expect("role exists");
    assert_eq!(role["token_policies"], json!(["shop-dev"]));
    assert_eq!(role["token_ttl"], 1200);
    assert_eq!(role["secret_id_bound_cidrs"], json!(["127.0.0.0/8"]));
    let object = env.object("shoptask").await.expect("credentials delivered");
    let role_id = env
        .root
        .approle("approle")
        .role_id("shoptask")
        .await
        .unwrap();
    assert_eq!(body["Data"]["RoleId"], role_id.as_str());
    assert_eq!(object["role_id"], role_id.as_str());
    assert_eq!(object["role"], "shoptask");
    assert_eq!(object["mount"], "approle");
    assert_eq!(object["vault_addr"], env.bao.addr());
    assert!(object["secret_id"].is_string() && object.get("wrapping_token").is_none());
    assert!(!object["created_at"].as_str().unwrap().is_empty());
    let head = env
        .s3
        .head_object()
        .bucket(BUCKET)
        .key("vault/approle/shoptask")
        .send()
        .await
        .unwrap();
    assert_eq!(
        head.server_side_encryption().map(|s| s.as_str()),
        Some("aws:kms")
    );
    assert_eq!(head.ssekms_key_id(), Some(KMS_KEY));
    // No secret in the response.
    assert!(
        !body
            .to_string()
            .contains(object["secret_id"].as_str().unwrap())
    );

    // The consumer logs in with what was delivered.
    let consumer = AppRoleAuth::from_store("approle", env.store.clone(), "shoptask");
    let login = consumer.login(&env.client()).await.unwrap();
    assert!(login.policies.contains(&"shop-dev".to_owned()), "{login:?}");

    // A repeated Create (CloudFormation retry) converges without a new delivery.
    let again = env
        .send(
            "Create",
            None,
            props(
                iam,
                json!({"TokenTtl": "20m", "SecretIdBoundCidrs": "127.0.0.0/8"}),
            ),
            None,
        )
        .await;
    assert_eq!(again["Status"], "SUCCESS");
    assert_eq!(
        env.object("shoptask").await.unwrap()["secret_id"],
        object["secret_id"]
    );
    assert_eq!(env.accessors("shoptask").await.len(), 1);

    // --- Update in place (same IAM role) -------------------------------------
    let old_accessor = object["secret_id_accessor"].as_str().unwrap().to_owned();
    let body = env
        .send(
            "Update",
            Some("shoptask"),
            props(iam, json!({"TokenTtl": "30m", "SecretIdTtl": "7d"})),
            Some(props(iam, json!({"TokenTtl": "20m"}))),
        )
        .await;
    assert_eq!(body["Status"], "SUCCESS", "{body}");
    assert_eq!(body["PhysicalResourceId"], "shoptask");
    let role = env.role("shoptask").await.unwrap();
    assert_eq!(role["token_ttl"], 1800);
    assert_eq!(role["secret_id_ttl"], 7 * 86400);
    assert!(
        role["secret_id_bound_cidrs"]
            .as_array()
            .is_none_or(|a| a.is_empty()),
        "the removed CIDR binding is cleared: {role}"
    );
    let updated = env.object("shoptask").await.unwrap();
    assert_ne!(
        updated["secret_id"], object["secret_id"],
        "a new secret_id is delivered"
    );
    assert_eq!(
        env.accessors("shoptask").await,
        vec![updated["secret_id_accessor"].as_str().unwrap().to_owned()]
    );
    assert!(
        !env.accessors("shoptask").await.contains(&old_accessor),
        "the old secret_id is destroyed"
    );
    let old_login = AppRoleAuth::new(
        "approle",
        role_id.clone(),
        Some(SecretString::from(object["secret_id"].as_str().unwrap())),
    )
    .login(&env.client())
    .await;
    assert!(old_login.is_err(), "the old secret_id no longer works");
    consumer
        .login(&env.client())
        .await
        .expect("the store's new secret_id works");

    // --- Update with a new IAM role: a new role, a new physical id, nothing deleted.
    let new_iam = "arn:aws:iam::123456789012:role/ShopTaskV2";
    let body = env
        .send(
            "Update",
            Some("shoptask"),
            props(new_iam, json!({})),
            Some(props(iam, json!({}))),
        )
        .await;
    assert_eq!(body["Status"], "SUCCESS", "{body}");
    assert_eq!(body["PhysicalResourceId"], "shoptaskv2");
    assert!(env.role("shoptaskv2").await.is_some());
    assert!(env.object("shoptaskv2").await.is_some());
    assert!(env.role("shoptask").await.is_some(), "Update never deletes");
    assert!(env.object("shoptask").await.is_some());

    // --- Delete of the old id (CloudFormation's cleanup after replacement).
    let body = env
        .send("Delete", Some("shoptask"), props(iam, json!({})), None)
        .await;
    assert_eq!(body["Status"], "SUCCESS", "{body}");
    assert_eq!(body["PhysicalResourceId"], "shoptask");
    assert!(env.role("shoptask").await.is_none());
    assert!(env.object("shoptask").await.is_none());
    assert!(env.role("shoptaskv2").await.is_some(), "the new role stays");

    // Delete is idempotent.
    let body = env
        .send("Delete", Some("shoptask"), props(iam, json!({})), None)
        .await;
    assert_eq!(body["Status"], "SUCCESS", "{body}");

    // --- Missing policy: FAILED, clear reason, nothing created, Delete of it succeeds.
    let body = env
        .send(
            "Create",
            None,
            json!({"Service": "cart", "Environment": "prod", "Iam": "CartTask"}),
            None,
        )
        .await;
    assert_eq!(body["Status"], "FAILED");
    assert!(
        body["Reason"]
            .as_str()
            .unwrap()
            .contains("policy cart-prod does not exist in Vault; create it first"),
        "{body}"
    );
    let failed_id = body["PhysicalResourceId"].as_str().unwrap().to_owned();
    assert!(failed_id.starts_with(FAILED_CREATE_PREFIX), "{failed_id}");
    assert!(env.role("carttask").await.is_none());
    assert!(env.object("carttask").await.is_none());
    let body = env
        .send(
            "Delete",
            Some(&failed_id),
            json!({"Service": "cart", "Environment": "prod", "Iam": "CartTask"}),
            None,
        )
        .await;
    assert_eq!(body["Status"], "SUCCESS", "{body}");
    assert_eq!(body["PhysicalResourceId"], failed_id.as_str());

    // --- Invalid properties: FAILED naming the property, placeholder id, nothing written.
    let body = env
        .send(
            "Create",
            None,
            json!({"Service": "shop", "Environment": "dev", "Iam": "arn:aws:iam::1:user/bob"}),
            None,
        )
        .await;
    assert_eq!(body["Status"], "FAILED");
    assert!(
        body["Reason"].as_str().unwrap().contains("IAM role"),
        "{body}"
    );
    let body = env
        .send(
            "Create",
            None,
            json!({"Service": "shop", "Environment": "dev", "Iam": "X", "TokenTtl": "forever"}),
            None,
        )
        .await;
    assert_eq!(body["Status"], "FAILED");
    assert!(
        body["Reason"]
            .as_str()
            .unwrap()
            .contains("property TokenTtl"),
        "{body}"
    );
    assert!(env.role("x").await.is_none());
    let body = env
        .send(
            "Update",
            Some("shoptaskv2"),
            json!({"Service": "shop"}),
            Some(props(new_iam, json!({}))),
        )
        .await;
    assert_eq!(body["Status"], "FAILED");
    assert_eq!(
        body["PhysicalResourceId"], "shoptaskv2",
        "a failed Update keeps the physical id"
    );
    assert!(
        body["Reason"]
            .as_str()
            .unwrap()
            .contains("property Environment"),
        "{body}"
    );
    assert!(env.role("shoptaskv2").await.is_some());

    // Clean up the replacement.
    let body = env
        .send(
            "Delete",
            Some("shoptaskv2"),
            props(new_iam, json!({})),
            None,
        )
        .await;
    assert_eq!(body["Status"], "SUCCESS");
    assert!(env.role("shoptaskv2").await.is_none());
    assert!(env.object("shoptaskv2").await.is_none());
}

#[tokio::test]
async fn wrapped_delivery_is_unwrapped_once_and_rotation_delivers_afresh() {
    let env = setup().await;
    let client = VaultClient::new(ClientConfig::new(&env.bao.addr()).unwrap()).unwrap();
    let admin: Arc<dyn VaultAuth> =
        Arc::new(TokenAuth::new(SecretString::from(env.bao.root_token())));
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn CredentialStore> =
        Arc::new(vault_approle::DirectoryCredentialStore::new(dir.path()));
    let provisioner = Provisioner::new(
        client.clone(),
        admin,
        store.clone(),
        ProvisionerOptions::default().rotation_grace(Duration::ZERO),
    );
    let spec = RoleSpec::builder("shop", "dev", "ShopBatch")
        .delivery(DeliveryMode::Wrapped)
        .build()
        .unwrap();
    let done = provisioner.provision(&spec).await.unwrap();
    assert!(done.delivered);
    let creds = store.get("shopbatch").await.unwrap().unwrap();
    assert!(creds.is_wrapped() && creds.secret_id.is_none());
    let role = env.role("shopbatch").await.unwrap();
    assert_eq!(role["secret_id_num_uses"], 1);

    let consumer = AppRoleAuth::from_store("approle", store.clone(), "shopbatch");
    let token = consumer.login(&client).await.unwrap();
    assert!(token.policies.contains(&"shop-dev".to_owned()));
    let err = consumer.login(&client).await.unwrap_err().to_string();
    assert!(
        err.contains("already unwrapped") && err.contains("fresh delivery"),
        "{err}"
    );

    // Another process holding the same (used) wrapping token is refused by Vault.
    let other = AppRoleAuth::from_store("approle", store.clone(), "shopbatch");
    let err = other.login(&client).await.unwrap_err().to_string();
    assert!(err.contains("fresh delivery"), "{err}");

    // Provision again: the old wrapped secret_id is spent, so a new one is delivered.
    let again = provisioner.provision(&spec).await.unwrap();
    assert!(again.delivered);
    consumer
        .login(&client)
        .await
        .expect("a fresh delivery works");

    // Rotation of a role that does not exist is a clear error.
    let ghost = RoleSpec::builder("shop", "dev", "Ghost").build().unwrap();
    let err = provisioner
        .rotate_secret_id(&ghost)
        .await
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "approle role ghost does not exist in Vault; provision it first"
    );

    // A forged wrapping token (not from an AppRole secret-id) is refused before unwrapping.
    let forged = env
        .root
        .request(vault_client::Method::POST, "sys/wrapping/wrap")
        .json(&json!({"secret_id": "nope"}))
        .wrap_ttl(Duration::from_secs(60))
        .send()
        .await
        .unwrap()
        .wrap_info()
        .unwrap();
    let auth = AppRoleAuth::wrapped("approle", done.role_id.clone(), forged.token);
    let err = auth.login(&client).await.unwrap_err().to_string();
    assert!(err.contains("refusing to unwrap"), "{err}");

    provisioner.deprovision("shopbatch").await.unwrap();
    assert!(store.get("shopbatch").await.unwrap().is_none());
    assert!(env.role("shopbatch").await.is_none());
}

/// A Vault that accepts connections and never answers.
async fn silent_server() -> (tokio::task::JoinHandle<()>, String) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            held.push(s);
        }
    });
    (task, addr)
}

#[tokio::test]
async fn answers_before_the_deadline_and_for_random_or_truncated_events() {
    let cfn = testkit::cfn::response_listener().await;
    let (_task, silent) = silent_server().await;
    let client = VaultClient::new(ClientConfig::new(&silent).unwrap().with_max_retries(0)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let provisioner = Provisioner::new(
        client,
        Arc::new(TokenAuth::new(SecretString::from("hvs.test"))),
        Arc::new(vault_approle::DirectoryCredentialStore::new(dir.path())),
        ProvisionerOptions::default(),
    );
    let handler = CfnHandler::new(Arc::new(provisioner))
        .deadline_margin(Duration::from_secs(1))
        .allow_response_url_hosts(["127.0.0.1"]);
    let url = format!("{}/deadline", cfn.uri());
    let event = json!({
        "RequestType": "Create", "ResponseURL": url, "StackId": "s", "RequestId": "r",
        "LogicalResourceId": "L", "ResourceProperties": props("ShopTask", json!({})),
    });
    let started = std::time::Instant::now();
    let outcome = handler
        .handle(event, Some(SystemTime::now() + Duration::from_secs(3)))
        .await;
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "answered before the deadline"
    );
    assert!(outcome.delivered.is_ok());
    let response = outcome.response.unwrap();
    assert!(response.reason.contains("timed out"), "{}", response.reason);
    let received = cfn.received_requests().await.unwrap();
    let body: Value = serde_json::from_slice(&received.last().unwrap().body).unwrap();
    assert_eq!(body["Status"], "FAILED");
    assert!(
        body["PhysicalResourceId"]
            .as_str()
            .unwrap()
            .starts_with(FAILED_CREATE_PREFIX)
    );

    // Random and truncated events: never a panic; an answer whenever there is a ResponseURL.
    let fast = CfnHandler::unconfigured("VAULT_ADDR is not set (test)")
        .allow_response_url_hosts(["127.0.0.1"]);
    let mut rng = fastrand::Rng::with_seed(4);
    let base = json!({
        "RequestType": "Update", "ResponseURL": format!("{}/fuzz", cfn.uri()), "StackId": "s",
        "RequestId": "r", "LogicalResourceId": "L", "PhysicalResourceId": "shoptask",
        "ResourceProperties": props("ShopTask", json!({"TokenTtl": "1h"})),
        "OldResourceProperties": props("ShopTask", json!({})),
    });
    let text = base.to_string();
    let before = cfn.received_requests().await.unwrap().len();
    let mut expected = 0;
    for i in 0..150 {
        let mut event = base.clone();
        let obj = event.as_object_mut().unwrap();
        let keys: Vec<String> = obj.keys().cloned().collect();
        for _ in 0..rng.usize(1..4) {
            let key = &keys[rng.usize(..keys.len())];
            if key == "ResponseURL" && i % 10 != 0 {
                continue;
            }
            let junk = match rng.u8(..6) {
                0 => Value::Null,
                1 => json!(rng.i64(..)),
                2 => json!("x".repeat(rng.usize(..6000))),
                3 => json!([1, {"a": []}]),
                4 => json!({"Service": rng.u32(..), "Iam": "\u{0}\u{fffd}"}),
                _ => json!(["Create", "Update", "Delete", "Bogus"][rng.usize(..4)]),
            };
            obj.insert(key.clone(), junk);
        }
        let answerable = obj
            .get("ResponseURL")
            .and_then(Value::as_str)
            .is_some_and(|u| u.starts_with("http"));
        let outcome = fast
            .handle(event, Some(SystemTime::now() + Duration::from_secs(30)))
            .await;
        assert_eq!(
            outcome.response.is_some(),
            answerable,
            "{:?}",
            outcome.delivered
        );
        if answerable {
            assert!(outcome.delivered.is_ok(), "{:?}", outcome.delivered);
            expected += 1;
        }
        // Truncated bytes.
        let cut = rng.usize(..text.len());
        let outcome = fast.handle_bytes(&text.as_bytes()[..cut], None).await;
        if outcome.response.is_some() {
            assert!(outcome.delivered.is_ok(), "{:?}", outcome.delivered);
            expected += 1;
        }
    }
    let received = cfn.received_requests().await.unwrap();
    assert_eq!(received.len() - before, expected);
    for r in &received[before..] {
        assert!(r.body.len() <= 4096);
        let body: Value = serde_json::from_slice(&r.body).unwrap();
        assert!(
            body["Status"] == "FAILED" || body["Status"] == "SUCCESS",
            "{body}"
        );
        if body["Status"] == "FAILED" {
            assert!(!body["Reason"].as_str().unwrap().is_empty());
        }
    }
    assert!(expected > 100, "most events were answerable: {expected}");
}

/// Two stacks, one IAM role name: stack A creates the role, stack B's
/// Create onto the same name fails naming A, B's Deletes touch nothing, and
/// A's role, policies and secret_id stay as they were. `RoleName` gives B a
/// role of its own.
#[tokio::test]
async fn a_role_belongs_to_the_resource_that_created_it() {
    let env = setup().await;
    let a = "arn:aws:cloudformation:us-east-1:123456789012:stack/shop-a/1111";
    let b = "arn:aws:cloudformation:eu-west-1:210987654321:stack/shop-b/2222";
    env.root
        .write_policy(
            "other-dev",
            r#"path "secret/data/*" { capabilities = ["read", "update"] }"#,
        )
        .await
        .unwrap();
    let a_props = props("ShopTask", json!({}));
    let body = env
        .send_as(a, "Auth", "Create", None, a_props.clone(), None)
        .await;
    assert_eq!(body["Status"], "SUCCESS", "{body}");
    assert_eq!(body["PhysicalResourceId"], "shoptask");
    let delivered = env.object("shoptask").await.unwrap();
    let role = env.role("shoptask").await.unwrap();
    let accessors = env.accessors("shoptask").await;

    // CloudFormation retries A's Create: the same answer, nothing new.
    let again = env
        .send_as(a, "Auth", "Create", None, a_props.clone(), None)
        .await;
    assert_eq!(again["Status"], "SUCCESS", "{again}");
    assert_eq!(
        env.object("shoptask").await.unwrap()["secret_id"],
        delivered["secret_id"]
    );

    // Stack B maps to the same name with its own policy: refused, naming A.
    let mut b_props = props("arn:aws:iam::210987654321:role/ShopTask", json!({}));
    b_props["Service"] = json!("other");
    let refused = env
        .send_as(b, "Auth", "Create", None, b_props.clone(), None)
        .await;
    assert_eq!(refused["Status"], "FAILED", "{refused}");
    let reason = refused["Reason"].as_str().unwrap();
    assert!(
        reason.contains("shoptask") && reason.contains(a) && reason.contains("Auth"),
        "{reason}"
    );
    let failed_id = refused["PhysicalResourceId"].as_str().unwrap().to_owned();
    assert!(failed_id.starts_with(FAILED_CREATE_PREFIX), "{failed_id}");
    // So is a resource of A's own stack with another logical id.
    let sibling = env
        .send_as(a, "Auth2", "Create", None, a_props.clone(), None)
        .await;
    assert_eq!(sibling["Status"], "FAILED", "{sibling}");

    // B's rollback deletes its failed Create; a Delete naming A's role
    // (as after a replacement) is acknowledged and changes nothing.
    for physical in [failed_id.as_str(), "shoptask"] {
        let deleted = env
            .send_as(b, "Auth", "Delete", Some(physical), b_props.clone(), None)
            .await;
        assert_eq!(deleted["Status"], "SUCCESS", "{deleted}");
    }
    assert_eq!(env.role("shoptask").await.unwrap(), role);
    assert_eq!(env.accessors("shoptask").await, accessors);
    let kept = env.object("shoptask").await.unwrap();
    assert_eq!(kept["secret_id"], delivered["secret_id"]);
    // The owner is recorded with the credentials.
    assert_eq!(kept["owner"]["stack_id"], a, "{kept:?}");
    assert_eq!(kept["owner"]["logical_resource_id"], "Auth");
    let auth = AppRoleAuth::from_store("approle", env.store.clone(), "shoptask");
    let login = auth.login(&env.client()).await.unwrap();
    assert!(login.policies.contains(&"shop-dev".to_owned()), "{login:?}");
    assert!(
        !login.policies.contains(&"other-dev".to_owned()),
        "{login:?}"
    );

    // RoleName: B gets a role of its own for the same IAM role name.
    let mut named = b_props.clone();
    named["RoleName"] = json!("ShopTask-EU");
    let own = env.send_as(b, "Auth", "Create", None, named, None).await;
    assert_eq!(own["Status"], "SUCCESS", "{own}");
    assert_eq!(own["PhysicalResourceId"], "shoptask-eu");
    assert_eq!(
        env.object("shoptask-eu").await.unwrap()["owner"]["stack_id"],
        b
    );
    assert_eq!(
        env.object("shoptask").await.unwrap()["secret_id"],
        delivered["secret_id"]
    );

    // The owner's Delete removes its role.
    let gone = env
        .send_as(a, "Auth", "Delete", Some("shoptask"), a_props, None)
        .await;
    assert_eq!(gone["Status"], "SUCCESS", "{gone}");
    assert!(env.role("shoptask").await.is_none());
    assert!(env.role("shoptask-eu").await.is_some());
}

/// Two orchestrators (two accounts, each with its own delivery bucket)
/// share one Vault. The owner is recorded in Vault too (the secret_id's
/// metadata), so the second one refuses a Create onto the first one's role,
/// and its Delete of that role changes nothing, although its own bucket has
/// no record of the role.
#[tokio::test]
async fn a_second_orchestrator_sharing_the_vault_cannot_take_a_role_over() {
    let env = setup().await;
    let a = "arn:aws:cloudformation:us-east-1:123456789012:stack/shop-a/1111";
    let b = "arn:aws:cloudformation:eu-west-1:210987654321:stack/shop-b/2222";
    let a_props = props("ShopTask", json!({}));
    let body = env.send_as(a, "Auth", "Create", None, a_props, None).await;
    assert_eq!(body["Status"], "SUCCESS", "{body}");
    let delivered = env.object("shoptask").await.unwrap();
    let role = env.role("shoptask").await.unwrap();
    let accessors = env.accessors("shoptask").await;

    // The second orchestrator: its own bucket, the same Vault.
    let other_bucket = "approle-creds-eu";
    env.s3
        .create_bucket()
        .bucket(other_bucket)
        .send()
        .await
        .unwrap();
    let other_store = Arc::new(
        S3CredentialStore::builder(other_bucket)
            .access(S3Access::from_client(env.s3.clone()))
            .build()
            .unwrap(),
    );
    let admin: Arc<dyn VaultAuth> = Arc::new(vault_client::TokenAuth::new(SecretString::from(
        env.bao.root_token(),
    )));
    let other = CfnHandler::new(Arc::new(Provisioner::new(
        env.client(),
        admin,
        other_store,
        ProvisionerOptions::default().rotation_grace(Duration::from_millis(200)),
    )))
    .allow_response_url_hosts(["127.0.0.1"]);

    let b_props = props("arn:aws:iam::210987654321:role/ShopTask", json!({}));
    let refused = env
        .send_to(&other, b, "Auth", "Create", None, b_props.clone(), None)
        .await;
    assert_eq!(refused["Status"], "FAILED", "{refused}");
    let reason = refused["Reason"].as_str().unwrap();
    assert!(
        reason.contains("shoptask") && reason.contains(a),
        "{reason}"
    );
    let failed_id = refused["PhysicalResourceId"].as_str().unwrap().to_owned();
    for physical in [failed_id.as_str(), "shoptask"] {
        let deleted = env
            .send_to(
                &other,
                b,
                "Auth",
                "Delete",
                Some(physical),
                b_props.clone(),
                None,
            )
            .await;
        assert_eq!(deleted["Status"], "SUCCESS", "{deleted}");
    }
    // An Update that changes the role (a no-change Update touches nothing).
    let mut changed = b_props.clone();
    changed["TokenTtl"] = json!("30m");
    let updated = env
        .send_to(
            &other,
            b,
            "Auth",
            "Update",
            Some("shoptask"),
            changed,
            Some(b_props),
        )
        .await;
    assert_eq!(updated["Status"], "FAILED", "{updated}");

    // A's role, secret_ids and delivery are as they were, and still log in.
    assert_eq!(env.role("shoptask").await.unwrap(), role);
    assert_eq!(env.accessors("shoptask").await, accessors);
    assert_eq!(
        env.object("shoptask").await.unwrap()["secret_id"],
        delivered["secret_id"]
    );
    let auth = AppRoleAuth::from_store("approle", env.store.clone(), "shoptask");
    auth.login(&env.client()).await.unwrap();
}

/// Any JSON value: random types, lengths, unicode and nesting.
fn junk(rng: &mut fastrand::Rng, depth: u32) -> Value {
    const CHARS: [char; 16] = [
        'a', 'Z', '0', '-', '_', '.', '/', ' ', ',', '"', '\\', '\u{0}', 'é', '😀', '\u{202e}',
        '\u{fffd}',
    ];
    let text = |rng: &mut fastrand::Rng, n: usize| -> String {
        (0..n).map(|_| CHARS[rng.usize(..CHARS.len())]).collect()
    };
    match rng.u8(..11) {
        0 => Value::Null,
        1 => json!(rng.bool()),
        2 => json!(rng.i64(..)),
        3 => json!(rng.f64() * 1e300),
        4 => {
            let n = rng.usize(..300);
            json!(text(rng, n))
        }
        5 => json!("x".repeat(rng.usize(..5000))),
        6 if depth < 4 => Value::Array((0..rng.usize(..4)).map(|_| junk(rng, depth + 1)).collect()),
        7 if depth < 4 => {
            let mut map = serde_json::Map::new();
            for _ in 0..rng.usize(..4) {
                let n = rng.usize(..12);
                map.insert(text(rng, n), junk(rng, depth + 1));
            }
            Value::Object(map)
        }
        8 => json!(
            [
                "1h",
                "30d",
                "0",
                "-5",
                "1e9",
                "99999999999999999999d",
                "10.0.0.0/33",
                "a,b,,c",
                "",
                " "
            ][rng.usize(..10)]
        ),
        _ => json!(
            [
                "shop",
                "dev",
                "ShopTask",
                "shop task",
                "ä",
                "arn:aws:iam::1:role/x/Shop",
                "shared",
                "wrapped",
                "-",
                "arn:aws:iam::1:user/x"
            ][rng.usize(..10)]
        ),
    }
}

/// The state a FAILED event must not change: the roles in Vault and the
/// objects in the bucket.
async fn state(env: &Env) -> (Vec<String>, Vec<String>) {
    let roles = env
        .root
        .approle("approle")
        .list_roles()
        .await
        .unwrap_or_default();
    let objects = env
        .s3
        .list_objects_v2()
        .bucket(BUCKET)
        .send()
        .await
        .unwrap()
        .contents()
        .iter()
        .filter_map(|o| o.key().map(str::to_owned))
        .collect();
    (roles, objects)
}

/// Random events and random properties against a configured handler (with
/// OpenBao and moto behind it): every event with a ResponseURL is
/// answered, nothing panics, and a FAILED event creates nothing.
#[tokio::test]
async fn configured_handler_answers_random_properties_and_creates_nothing_on_failure() {
    let env = setup().await;
    let mut rng = fastrand::Rng::with_seed(6);
    let names = [
        "Service",
        "Environment",
        "Iam",
        "RoleName",
        "TokenTtl",
        "TokenMaxTtl",
        "SecretIdTtl",
        "SecretIdNumUses",
        "SecretIdBoundCidrs",
        "TokenBoundCidrs",
        "Policies",
        "Delivery",
        "ServiceTimeout",
        "ServiceToken",
        "Colour",
    ];
    let (mut succeeded, mut failed) = (0, 0);
    for i in 0..160u32 {
        let kind = ["Create", "Create", "Update", "Delete"][rng.usize(..4)];
        let mut props = props(
            ["ShopTask", "ShopBatch", "arn:aws:iam::1:role/p/ShopCron"][rng.usize(..3)],
            json!({}),
        );
        // Mostly a few junk properties; sometimes none (a valid event);
        // sometimes no object at all.
        let changes = [0, 1, 1, 2, 3][rng.usize(..5)];
        for _ in 0..changes {
            let name = names[rng.usize(..names.len())];
            props[name] = junk(&mut rng, 0);
        }
        if i % 23 == 0 {
            props = junk(&mut rng, 0);
        }
        let mut event = json!({
            "RequestType": kind,
            "ResponseURL": format!("{}/fuzz/{i}?X-Amz-Signature=abc", env.cfn.uri()),
            "StackId": STACK, "RequestId": format!("fuzz-{i}"),
            "ResourceType": "Custom::VaultAuth", "LogicalResourceId": "ShopVaultAuth",
            "ResourceProperties": props,
        });
        if kind != "Create" {
            event["PhysicalResourceId"] = if rng.u8(..4) == 0 {
                junk(&mut rng, 0)
            } else {
                json!(["shoptask", "shopbatch", "shopcron"][rng.usize(..3)])
            };
        }
        if kind == "Update" {
            event["OldResourceProperties"] = props_for_old(&mut rng);
        }
        let before = state(&env).await;
        let outcome = env
            .handler
            .handle(
                event.clone(),
                Some(SystemTime::now() + Duration::from_secs(30)),
            )
            .await;
        let response = outcome
            .response
            .unwrap_or_else(|| panic!("no answer to {event}"));
        assert!(outcome.delivered.is_ok(), "{:?}", outcome.delivered);
        assert!(response.to_body().len() <= 4096);
        match response.status {
            vault_approle::cfn::Status::Success => succeeded += 1,
            vault_approle::cfn::Status::Failed => {
                failed += 1;
                assert!(!response.reason.is_empty());
                assert!(
                    !response.reason.contains("panicked"),
                    "{}\n{event}",
                    response.reason
                );
                let (roles, objects) = state(&env).await;
                assert!(
                    roles.iter().all(|r| before.0.contains(r))
                        && objects.iter().all(|o| before.1.contains(o)),
                    "a FAILED {kind} created something: {roles:?} {objects:?} (before {before:?})\n{}\n{event}",
                    response.reason
                );
            }
        }
    }
    // Truncated events (not JSON) against the configured handler: answered
    // FAILED when a ResponseURL survives the cut, and nothing is created.
    let text = json!({
        "RequestType": "Create",
        "ResponseURL": format!("{}/cut?X-Amz-Signature=abc", env.cfn.uri()),
        "StackId": STACK, "RequestId": "cut", "LogicalResourceId": "ShopVaultAuth",
        "ResourceProperties": props("ShopTruncated", json!({})),
    })
    .to_string();
    let before = state(&env).await;
    let mut cut_answers = 0;
    for _ in 0..40 {
        let cut = rng.usize(..text.len());
        let outcome = env
            .handler
            .handle_bytes(&text.as_bytes()[..cut], None)
            .await;
        if let Some(response) = outcome.response {
            assert!(outcome.delivered.is_ok(), "{:?}", outcome.delivered);
            assert_eq!(response.status, vault_approle::cfn::Status::Failed);
            cut_answers += 1;
        }
    }
    assert_eq!(
        state(&env).await,
        before,
        "a truncated event created something"
    );
    let received = env.cfn.received_requests().await.unwrap();
    let answered = received
        .iter()
        .filter(|r| r.url.path().starts_with("/fuzz/"))
        .count();
    assert_eq!(answered, 160);
    assert_eq!(
        received.iter().filter(|r| r.url.path() == "/cut").count(),
        cut_answers
    );
    println!("{succeeded} SUCCESS, {failed} FAILED");
    assert!(
        succeeded >= 10 && failed >= 50,
        "{succeeded} SUCCESS, {failed} FAILED"
    );
}

fn props_for_old(rng: &mut fastrand::Rng) -> Value {
    if rng.bool() {
        props("ShopTask", json!({}))
    } else {
        junk(rng, 0)
    }
}
