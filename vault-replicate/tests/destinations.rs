//! Several destinations (regions, another account through AssumeRole with
//! an external id, each with its own prefix and KMS key), failure isolation
//! and native replica regions, against OpenBao and moto.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
// Test helpers fail loudly.

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use common::proxy::Proxy;
use common::*;
use serde_json::json;
use testkit::{Moto, OpenBao};
use vault_replicate::{ReplicateConfig, Report};

async fn names_in(sm: &aws_sdk_secretsmanager::Client) -> Vec<String> {
    all_names(sm).await
}

fn sm_in(sdk: &aws_config::SdkConfig, region: &str) -> aws_sdk_secretsmanager::Client {
    let conf = sdk
        .to_builder()
        .region(aws_config::Region::new(region.to_owned()))
        .build();
    aws_sdk_secretsmanager::Client::new(&conf)
}

#[tokio::test]
async fn several_destinations_each_with_its_own_account_region_prefix_and_key() {
    let (bao, moto) = tokio::join!(OpenBao::start(), Moto::start());
    let v = vault(&bao.addr(), bao.root_token());
    for (p, val) in [("app/db", "p1"), ("app/api", "t1"), ("top", "s1")] {
        write(&v, p, json!({ "value": val })).await;
    }
    // Everything AWS goes through a recording pass-through to moto.
    let proxy = Proxy::start(&moto.endpoint(), Duration::ZERO).await;
    let base = sdk(&proxy.url(), 1).await;
    let unreachable = format!("http://127.0.0.1:{}", testkit::free_port());
    let destinations = json!([
        {"name": "eu", "region": "eu-west-1", "prefix": "eu", "kms_key_id": "alias/eu-key"},
        {"name": "other", "role_arn": "arn:aws:iam::111111111111:role/replicator",
         "external_id": "ext-42", "prefix": "acct"},
        {"name": "broken", "endpoint_url": unreachable, "prefix": "x"}
    ])
    .to_string();
    let env: HashMap<&str, String> = [
        ("REPLICATE_SOURCES", "secret".to_owned()),
        ("REPLICATE_REPLICA_REGIONS", "us-west-2".to_owned()),
        ("REPLICATE_WRITE_TPS", "0".to_owned()),
        ("REPLICATE_READ_TPS", "0".to_owned()),
        ("REPLICATE_DESTINATIONS", destinations),
    ]
    .into_iter()
    .collect();
    let config = ReplicateConfig::from_lookup(|k| env.get(k).cloned()).unwrap();
    let source = Arc::new(config.source(v.clone(), None).unwrap());
    let replicators = config.replicators(source, &base).await.unwrap();
    assert_eq!(replicators.len(), 4);
    let run_all = || futures_util::future::join_all(replicators.iter().map(|r| r.run(false)));
    let by_target = |reports: Vec<Report>| -> HashMap<String, Report> {
        reports.into_iter().map(|r| (r.target.clone(), r)).collect()
    };

    let reports = by_target(run_all().await);
    for name in [
        "secretsmanager",
        "secretsmanager:eu",
        "secretsmanager:other",
    ] {
        let r = &reports[name];
        assert!(r.is_success(), "{name}: {}", r.table());
        assert_eq!(r.count("create"), 3, "{name}: {}", r.table());
    }
    let broken = &reports["secretsmanager:broken"];
    assert!(
        broken
            .error
            .as_deref()
            .is_some_and(|e| e.contains("ListSecrets")),
        "{}",
        broken.table()
    );

    // Default destination: us-east-1, prefix vault, replicated to us-west-2.
    let east = sm_in(&base, "us-east-1");
    assert_eq!(
        names_in(&east).await,
        vec!["vault/app/api", "vault/app/db", "vault/top"]
    );
    let d = east
        .describe_secret()
        .secret_id("vault/app/db")
        .send()
        .await
        .unwrap();
    let replicas: Vec<&str> = d
        .replication_status()
        .iter()
        .filter_map(|s| s.region())
        .collect();
    assert_eq!(replicas, vec!["us-west-2"], "{d:?}");
    let west = sm_in(&base, "us-west-2");
    let w = west
        .describe_secret()
        .secret_id("vault/app/db")
        .send()
        .await
        .unwrap();
    assert_eq!(w.primary_region(), Some("us-east-1"));

    // eu: another region, its own prefix and KMS key.
    let eu = sm_in(&base, "eu-west-1");
    assert_eq!(
        names_in(&eu).await,
        vec!["eu/app/api", "eu/app/db", "eu/top"]
    );
    let d = eu
        .describe_secret()
        .secret_id("eu/app/db")
        .send()
        .await
        .unwrap();
    assert_eq!(d.kms_key_id(), Some("alias/eu-key"));
    assert_eq!(value(&eu, "eu/app/db").await, r#"{"value":"p1"}"#);

    // other: an AssumeRole with the external id, into another account
    // (moto keeps one backend per account: the default account sees nothing).
    let log = proxy.stats.log.lock().unwrap().clone();
    let assume: Vec<&String> = log
        .iter()
        .filter(|l| l.contains("Action=AssumeRole"))
        .collect();
    assert!(
        !assume.is_empty(),
        "no AssumeRole call: {:?}",
        log.iter()
            .map(|l| l.chars().take(150).collect::<String>())
            .collect::<Vec<_>>()
    );
    assert!(
        assume.iter().all(|l| l.contains("ExternalId=ext-42")
            && l.contains("RoleArn=arn%3Aaws%3Aiam%3A%3A111111111111%3Arole%2Freplicator")),
        "{assume:?}"
    );
    assert!(!names_in(&east).await.iter().any(|n| n.starts_with("acct/")));
    let provider =
        aws_config::sts::AssumeRoleProvider::builder("arn:aws:iam::111111111111:role/replicator")
            .external_id("ext-42")
            .configure(&base)
            .build()
            .await;
    let other = aws_sdk_secretsmanager::Client::new(
        &base
            .to_builder()
            .credentials_provider(
                aws_credential_types::provider::SharedCredentialsProvider::new(provider),
            )
            .build(),
    );
    assert_eq!(
        names_in(&other).await,
        vec!["acct/app/api", "acct/app/db", "acct/top"]
    );
    assert!(
        other
            .describe_secret()
            .secret_id("acct/app/db")
            .send()
            .await
            .unwrap()
            .arn()
            .unwrap()
            .contains(":111111111111:")
    );

    // A change reaches every destination that works; the broken one still
    // fails alone.
    write(&v, "app/db", json!({"value": "p2"})).await;
    let reports = by_target(run_all().await);
    for name in [
        "secretsmanager",
        "secretsmanager:eu",
        "secretsmanager:other",
    ] {
        let r = &reports[name];
        assert_eq!(
            (r.count("update"), r.count("unchanged")),
            (1, 2),
            "{name}: {}",
            r.table()
        );
    }
    assert!(reports["secretsmanager:broken"].error.is_some());
    assert_eq!(value(&east, "vault/app/db").await, r#"{"value":"p2"}"#);
    assert_eq!(value(&eu, "eu/app/db").await, r#"{"value":"p2"}"#);
    assert_eq!(value(&other, "acct/app/db").await, r#"{"value":"p2"}"#);
}
