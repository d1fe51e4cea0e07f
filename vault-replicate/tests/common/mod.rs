//! Helpers shared by the integration tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]
// Test helpers fail loudly.

pub mod proxy;

use std::collections::HashMap;
use std::sync::Arc;

use testkit::{Moto, OpenBao};
use vault_client::{ClientConfig, SecretString, VaultClient};
use vault_replicate::{
    DeletionPolicy, Granularity, Naming, PlanPolicy, Replicator, SecretsManagerTarget, Source,
    SourceScope, Target, VaultKvSource,
};

pub fn vault(addr: &str, token: &str) -> VaultClient {
    let config = ClientConfig::new(addr)
        .unwrap()
        .with_token(SecretString::from(token.to_owned()));
    VaultClient::new(config).unwrap()
}

pub async fn sdk(endpoint: &str, max_attempts: u32) -> aws_config::SdkConfig {
    vault_replicate::aws::test_sdk_config(endpoint, max_attempts).await
}

/// OpenBao and moto (running while this lives), a root client of OpenBao
/// and a Secrets Manager client for moto ([`sdk`], 3 attempts a call).
pub struct SmPeers {
    pub bao: OpenBao,
    pub moto: Moto,
    pub v: VaultClient,
    pub sm: aws_sdk_secretsmanager::Client,
}

pub async fn sm_peers() -> SmPeers {
    let (bao, moto) = tokio::join!(OpenBao::start(), Moto::start());
    let v = vault(&bao.addr(), bao.root_token());
    let sm = aws_sdk_secretsmanager::Client::new(&sdk(&moto.endpoint(), 3).await);
    SmPeers { bao, moto, v, sm }
}

pub async fn write(v: &VaultClient, path: &str, data: serde_json::Value) -> u64 {
    v.kv2("secret")
        .write(path, data.as_object().unwrap(), None)
        .await
        .unwrap()
        .version
}

pub fn source(v: &VaultClient) -> Arc<VaultKvSource> {
    Arc::new(
        VaultKvSource::builder(v.clone())
            .scope(SourceScope::new("secret", ""))
            .build()
            .unwrap(),
    )
}

pub fn sm_target(sm: &aws_sdk_secretsmanager::Client, adopt: bool) -> Arc<SecretsManagerTarget> {
    Arc::new(
        SecretsManagerTarget::builder(sm.clone())
            .kms_key_id(Some("alias/vault-replicate-test".into()))
            .adopt(adopt)
            .write_tps(0)
            .read_tps(0)
            .build()
            .unwrap(),
    )
}

pub fn policy(granularity: Granularity, deletion: DeletionPolicy) -> PlanPolicy {
    PlanPolicy {
        naming: Naming::new(None, "vault", granularity, false).unwrap(),
        deletion,
    }
}

pub fn replicator(
    source: Arc<dyn Source>,
    target: Arc<dyn Target>,
    granularity: Granularity,
    deletion: DeletionPolicy,
) -> Replicator {
    Replicator::new(source, target, policy(granularity, deletion), 8).unwrap()
}

pub async fn value(sm: &aws_sdk_secretsmanager::Client, name: &str) -> String {
    sm.get_secret_value()
        .secret_id(name)
        .send()
        .await
        .unwrap_or_else(|e| panic!("get {name}: {e:?}"))
        .secret_string()
        .unwrap()
        .to_owned()
}

pub async fn tags(sm: &aws_sdk_secretsmanager::Client, name: &str) -> HashMap<String, String> {
    sm.describe_secret()
        .secret_id(name)
        .send()
        .await
        .unwrap_or_else(|e| panic!("describe {name}: {e:?}"))
        .tags()
        .iter()
        .map(|t| (t.key().unwrap().to_owned(), t.value().unwrap().to_owned()))
        .collect()
}

pub async fn all_names(sm: &aws_sdk_secretsmanager::Client) -> Vec<String> {
    let mut names = Vec::new();
    let mut token = None;
    loop {
        let page = sm
            .list_secrets()
            .max_results(100)
            .set_next_token(token)
            .send()
            .await
            .unwrap();
        names.extend(
            page.secret_list()
                .iter()
                .filter_map(|s| s.name().map(str::to_owned)),
        );
        match page.next_token() {
            Some(t) => token = Some(t.to_owned()),
            None => break,
        }
    }
    names.sort();
    names
}
