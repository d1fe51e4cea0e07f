//! What a container entrypoint spends before the app starts: read the
//! delivered AppRole credentials from S3, log in, read two secrets.
//!
//! ours: `vault_approle::AppRoleAuth` over `S3CredentialStore` (what
//! `vault-exec` does), in process. peer: the `bao` CLI doing login + two
//! `kv get`s with role_id/secret_id already at hand (a shell entrypoint's way;
//! it does not even read S3). Same OpenBao, same moto, same run.
//!
//! `cargo bench -p vault-aws-benches --bench approle_login`

// Benchmark helpers fail loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Instant;

use serde_json::json;
use testkit::AppRolePeers;
use vault_approle::{
    AppRoleAuth, CredentialStore, Provisioner, ProvisionerOptions, RoleSpec, S3Access,
    S3CredentialStore,
};
use vault_aws_benches::{Latencies, Table, fmt_duration};
use vault_client::{ClientConfig, ExposeSecret, SecretString, TokenAuth, VaultAuth, VaultClient};

const ROUNDS: usize = 40;

#[tokio::main]
async fn main() {
    let AppRolePeers {
        bao,
        moto: _moto,
        s3,
    } = AppRolePeers::shop_dev("bench").await;
    let root = VaultClient::new(ClientConfig::new(&bao.addr()).unwrap())
        .unwrap()
        .with_token(SecretString::from(bao.root_token()));
    for (path, data) in [
        ("shop/dev/db", json!({"password": "p"})),
        ("shop/dev/app", json!({"key": "k"})),
    ] {
        root.kv2("secret")
            .write(path, data.as_object().unwrap(), None)
            .await
            .unwrap();
    }
    let store: Arc<dyn CredentialStore> = Arc::new(
        S3CredentialStore::builder("bench")
            .access(S3Access::from_client(s3))
            .build()
            .unwrap(),
    );
    let client = VaultClient::new(ClientConfig::new(&bao.addr()).unwrap()).unwrap();
    let provisioner = Provisioner::new(
        client.clone(),
        Arc::new(TokenAuth::new(SecretString::from(bao.root_token()))),
        store.clone(),
        ProvisionerOptions::default(),
    );
    let mut provision = Latencies::new();
    let spec = RoleSpec::builder("shop", "dev", "arn:aws:iam::1:role/ShopTask")
        .build()
        .unwrap();
    for _ in 0..10 {
        let t = Instant::now();
        provisioner.provision(&spec).await.unwrap();
        provision.push(t.elapsed());
        provisioner.deprovision("shoptask").await.unwrap();
    }
    provisioner.provision(&spec).await.unwrap();
    let creds = store.get("shoptask").await.unwrap().unwrap();

    let mut ours = Latencies::new();
    let auth = AppRoleAuth::from_store("approle", store.clone(), "shoptask");
    for _ in 0..ROUNDS {
        let t = Instant::now();
        let login = auth.login(&client).await.unwrap();
        let c = client.with_token(login.client_token);
        for p in ["shop/dev/db", "shop/dev/app"] {
            assert!(c.kv2("secret").read(p).await.unwrap().is_some());
        }
        ours.push(t.elapsed());
    }

    let bao_bin = testkit::peer_bin("bao");
    let secret_id = creds.secret_id.as_ref().unwrap().expose_secret().to_owned();
    let mut peer = Latencies::new();
    for _ in 0..ROUNDS {
        let t = Instant::now();
        let login = tokio::process::Command::new(&bao_bin)
            .args(["write", "-field=token", "auth/approle/login"])
            .arg(format!("role_id={}", creds.role_id))
            .arg(format!("secret_id={secret_id}"))
            .env("BAO_ADDR", bao.addr())
            .output()
            .await
            .unwrap();
        assert!(
            login.status.success(),
            "{}",
            String::from_utf8_lossy(&login.stderr)
        );
        let token = String::from_utf8(login.stdout).unwrap();
        for p in ["secret/shop/dev/db", "secret/shop/dev/app"] {
            let out = tokio::process::Command::new(&bao_bin)
                .args(["kv", "get", "-format=json", p])
                .env("BAO_ADDR", bao.addr())
                .env("BAO_TOKEN", token.trim())
                .output()
                .await
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        peer.push(t.elapsed());
    }

    let mut table = Table::new(["scenario", "n", "p50", "p90", "p99"]);
    for (name, l) in [
        (
            "provision (policy check, role, role-id, secret-id, S3 put)",
            &mut provision,
        ),
        (
            "ours: S3 creds + AppRole login + 2 KV reads (in process)",
            &mut ours,
        ),
        ("peer: bao CLI login + 2 kv get (creds at hand)", &mut peer),
    ] {
        let n = l.len().to_string();
        table.row([
            name.to_owned(),
            n,
            fmt_duration(l.quantile(0.5)),
            fmt_duration(l.quantile(0.9)),
            fmt_duration(l.quantile(0.99)),
        ]);
    }
    println!("{table}");
    println!(
        "entrypoint overhead ratio peer/ours (p50): {:.1}x",
        peer.quantile(0.5).as_secs_f64() / ours.quantile(0.5).as_secs_f64()
    );
}
