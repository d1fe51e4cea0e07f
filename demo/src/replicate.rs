//! Step 4: the replication Lambda (`lambda-replicate`) under the RIE copies
//! `secret/shop` from OpenBao to Secrets Manager (moto); a second run writes
//! nothing; a changed secret is replicated with its new `vault-version` tag.

use std::collections::BTreeMap;

use anyhow::Context;
use serde_json::{Value, json};
use testkit::{Rie, RieConfig};

use crate::env::World;
use crate::env::random_secret;
use crate::report::{check, fact, mask, tail};

/// The Secrets Manager write APIs a run may call.
const WRITES: &[&str] = &[
    "secretsmanager.CreateSecret",
    "secretsmanager.PutSecretValue",
    "secretsmanager.TagResource",
    "secretsmanager.DeleteSecret",
    "secretsmanager.RestoreSecret",
];

/// One run's report, from the Lambda's JSON answer.
struct Run {
    counts: BTreeMap<String, u64>,
    calls: BTreeMap<String, u64>,
    raw: Value,
}

impl Run {
    fn count(&self, k: &str) -> u64 {
        self.counts.get(k).copied().unwrap_or(0)
    }
    fn calls(&self, k: &str) -> u64 {
        self.calls.get(k).copied().unwrap_or(0)
    }
    fn writes(&self) -> u64 {
        WRITES.iter().map(|w| self.calls(w)).sum()
    }
    fn summary(&self) -> String {
        let counts: Vec<String> = self
            .counts
            .iter()
            .filter(|(_, v)| **v > 0)
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        format!(
            "{}; Secrets Manager writes {}, vault reads of a value {}, {} ms",
            counts.join(", "),
            self.writes(),
            self.calls("vault.read"),
            self.raw["duration_ms"]
        )
    }
}

async fn invoke(rie: &Rie, n: u32) -> anyhow::Result<Run> {
    let scheduled = json!({"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}});
    let (status, body) = rie.invoke(&scheduled).await;
    let parsed: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    let report = parsed["reports"][0].clone();
    if status != 200 || !report.is_object() {
        anyhow::bail!(
            "check failed: run {n} returned no report (status {status}): {body}\nRIE output:\n{}",
            tail(&rie.logs(), 30)
        );
    }
    let map = |v: &Value| -> BTreeMap<String, u64> {
        v.as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), v.as_u64().unwrap_or(0)))
                    .collect()
            })
            .unwrap_or_default()
    };
    Ok(Run {
        counts: map(&report["counts"]),
        calls: map(&report["api_calls"]),
        raw: report,
    })
}

/// Runs step 4.
pub async fn run(world: &World, bins: &crate::env::Bins) -> anyhow::Result<()> {
    let (role_id, secret_id) = world
        .bao
        .approle_with_policy(
            "replicator",
            r#"path "secret/*" { capabilities = ["read", "list"] }"#,
        )
        .await;
    let mut env = world.aws_env();
    env.extend(
        [
            ("VAULT_ADDR", world.bao.addr()),
            ("VAULT_ROLE_ID", role_id),
            ("VAULT_SECRET_ID", secret_id.clone()),
            ("AWS_ENDPOINT_URL", world.moto.endpoint()),
            ("REPLICATE_SOURCES", "secret/shop".to_owned()),
            ("REPLICATE_TARGET_PREFIX", "vault".to_owned()),
            ("REPLICATE_WRITE_TPS", "0".to_owned()),
        ]
        .map(|(k, v)| (k.to_owned(), v)),
    );
    let rie = Rie::start(RieConfig {
        bootstrap: bins.replicate.clone(),
        env,
        ..RieConfig::default()
    })
    .await;
    fact(
        "replication Lambda `lambda-replicate` under the RIE (AppRole `replicator`, read+list on secret/), REPLICATE_SOURCES=secret/shop",
    );
    let sm = world.secretsmanager();
    let tags_and_value = async |name: &str| -> anyhow::Result<(BTreeMap<String, String>, Value)> {
        let d = sm
            .describe_secret()
            .secret_id(name)
            .send()
            .await
            .with_context(|| format!("check failed: Secrets Manager has no secret {name}"))?;
        let tags = d
            .tags()
            .iter()
            .map(|t| {
                (
                    t.key().unwrap_or_default().to_owned(),
                    t.value().unwrap_or_default().to_owned(),
                )
            })
            .collect();
        let v = sm
            .get_secret_value()
            .secret_id(name)
            .send()
            .await
            .with_context(|| format!("read {name} from Secrets Manager"))?;
        let value =
            serde_json::from_str(v.secret_string().unwrap_or_default()).unwrap_or(Value::Null);
        Ok((tags, value))
    };

    let first = invoke(&rie, 1).await?;
    fact(format!("run 1 (scheduled event): {}", first.summary()));
    check(
        first.count("create") == 2 && first.count("failed") == 0,
        "run 1 created vault/shop/dev/app and vault/shop/dev/db",
        || first.raw.to_string(),
    )?;
    let (tags, value) = tags_and_value("vault/shop/dev/db").await?;
    fact(format!(
        "Secrets Manager vault/shop/dev/db: password {}, tags managed-by={} vault-path={} vault-version={}",
        mask(value["password"].as_str().unwrap_or_default()),
        tags.get("managed-by").map_or("-", String::as_str),
        tags.get("vault-path").map_or("-", String::as_str),
        tags.get("vault-version").map_or("-", String::as_str),
    ));
    check(
        value["password"] == world.db_password.as_str()
            && tags.get("managed-by").map(String::as_str) == Some("vault-replicate")
            && tags.get("vault-version").map(String::as_str) == Some("1"),
        "its value is OpenBao's, tagged managed-by=vault-replicate, vault-version=1",
        || format!("tags {tags:?}"),
    )?;

    let second = invoke(&rie, 2).await?;
    fact(format!("run 2 (nothing changed): {}", second.summary()));
    check(
        second.writes() == 0 && second.count("unchanged") == 2 && second.calls("vault.read") == 0,
        "run 2 wrote nothing and read no secret value (metadata and tags only)",
        || second.raw.to_string(),
    )?;

    let new_password = random_secret("db-");
    let written = world
        .bao
        .root_request(
            "POST",
            "secret/data/shop/dev/db",
            json!({"data": {"password": new_password, "user": "shop"}}),
        )
        .await;
    fact(format!(
        "changed secret/shop/dev/db in OpenBao: password {} (now version {})",
        mask(&new_password),
        written["data"]["version"]
    ));
    let third = invoke(&rie, 3).await?;
    fact(format!("run 3 (one secret changed): {}", third.summary()));
    let (tags, value) = tags_and_value("vault/shop/dev/db").await?;
    check(
        third.count("update") == 1
            && third.count("unchanged") == 1
            && value["password"] == new_password.as_str()
            && tags.get("vault-version").map(String::as_str) == Some("2"),
        "run 3 updated only vault/shop/dev/db: new value, tag vault-version=2",
        || format!("{}\ntags {tags:?}", third.raw),
    )?;

    let logs = rie.shutdown().await;
    check(
        !logs.contains(&secret_id)
            && !logs.contains(&new_password)
            && !logs.contains(&world.db_password),
        "no secret_id or secret value in the Lambda's logs",
        || "a secret appeared in the logs".to_owned(),
    )?;
    Ok(())
}
