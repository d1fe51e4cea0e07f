//! The Lambda run as Lambda runs it (AWS's Runtime Interface Emulator),
//! against a real OpenBao and moto.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
// Test helpers fail loudly.

use serde_json::json;
use testkit::{Moto, OpenBao, Rie, RieConfig};
use vault_replicate::aws;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

/// OpenBao and moto, an SNS topic in moto with a wiremock HTTP subscriber,
/// and the SDK configuration for moto.
struct Peers {
    bao: OpenBao,
    moto: Moto,
    subscriber: MockServer,
    sdk: vault_replicate::aws::SdkConfig,
    topic_arn: String,
}

async fn peers() -> Peers {
    let (bao, moto) = tokio::join!(OpenBao::start(), Moto::start());
    let subscriber = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&subscriber)
        .await;
    let sdk = vault_replicate::aws::test_sdk_config(&moto.endpoint(), 2).await;
    let sns = aws::sns_client(&sdk);
    let topic = sns.create_topic().name("replicate").send().await.unwrap();
    let topic_arn = topic.topic_arn().unwrap().to_owned();
    sns.subscribe()
        .topic_arn(&topic_arn)
        .protocol("http")
        .endpoint(subscriber.uri())
        .send()
        .await
        .unwrap();
    Peers {
        bao,
        moto,
        subscriber,
        sdk,
        topic_arn,
    }
}

/// The Lambda under RIE, replicating from `bao` into `moto` with
/// `settings`, notifying `topic_arn`.
async fn start_lambda(
    bao: &OpenBao,
    moto: &Moto,
    topic_arn: &str,
    settings: &[(&str, &str)],
) -> Rie {
    let mut env = testkit::replication::env(&bao.addr(), moto);
    env.push(("REPLICATE_SNS_TOPIC_ARN".to_owned(), topic_arn.to_owned()));
    env.extend(
        settings
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    Rie::start(RieConfig {
        bootstrap: env!("CARGO_BIN_EXE_lambda-replicate").into(),
        env,
        ..RieConfig::default()
    })
    .await
}

/// An EventBridge schedule's event.
fn scheduled_event() -> serde_json::Value {
    json!({"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}})
}

#[tokio::test]
async fn scheduled_run_replicates_and_a_failing_run_notifies_sns_and_errors() {
    let Peers {
        bao,
        moto,
        subscriber,
        sdk,
        topic_arn,
    } = peers().await;
    for (path, v) in [("app/db", "p1"), ("app/x/api", "t1"), ("other/skip", "s")] {
        bao.bao(&[
            "kv",
            "put",
            &format!("secret/{path}"),
            &format!("value={v}"),
        ])
        .await;
    }

    let rie = start_lambda(
        &bao,
        &moto,
        &topic_arn,
        &[
            ("REPLICATE_SOURCES", "secret/app"),
            ("REPLICATE_TARGET_PREFIX", "prod"),
            ("REPLICATE_WRITE_TPS", "0"),
            ("REPLICATE_AWS_MAX_ATTEMPTS", "2"),
        ],
    )
    .await;

    let scheduled = scheduled_event();
    let (status, body) = rie.invoke(&scheduled).await;
    assert_eq!(status, 200, "{body}\n{}", rie.logs());
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    let report = &body["reports"][0];
    assert_eq!(report["target"], "secretsmanager", "{body}");
    assert_eq!(report["counts"]["create"], 2, "{body}");
    assert_eq!(report["api_calls"]["vault.list"], 2, "{body}");
    let sm = aws::secretsmanager_client(&sdk);
    let v = sm
        .get_secret_value()
        .secret_id("prod/app/x/api")
        .send()
        .await
        .unwrap();
    assert_eq!(v.secret_string(), Some(r#"{"value":"t1"}"#));
    assert!(
        sm.describe_secret()
            .secret_id("prod/other/skip")
            .send()
            .await
            .is_err()
    );

    // An unmanaged secret in the way: the run fails, SNS hears about it.
    sm.create_secret()
        .name("prod/app/clash")
        .secret_string("theirs")
        .send()
        .await
        .unwrap();
    bao.bao(&["kv", "put", "secret/app/clash", "value=ours"])
        .await;
    let (_, body) = rie.invoke(&scheduled).await;
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    let message = body["errorMessage"].as_str().unwrap_or_default();
    assert!(
        message.contains("1 of 3 secrets failed") && message.contains("app/clash"),
        "{body}\n{}",
        rie.logs()
    );
    let notes: Vec<serde_json::Value> = subscriber
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter_map(|r| serde_json::from_slice::<serde_json::Value>(&r.body).ok())
        .filter(|b| b["Type"] == "Notification")
        .collect();
    assert_eq!(notes.len(), 1);
    assert!(notes[0]["Message"].as_str().unwrap().contains("app/clash"));
    let v = sm
        .get_secret_value()
        .secret_id("prod/app/clash")
        .send()
        .await
        .unwrap();
    assert_eq!(v.secret_string(), Some("theirs"));
    assert!(
        !rie.logs().contains("\"t1\""),
        "no secret value in the logs"
    );
}

/// A function timeout of 3 s and a write rate that cannot finish in one
/// run: every run ends cleanly before the deadline with "partial: N left"
/// (also on SNS), and successive runs converge with every value correct.
#[tokio::test]
async fn runs_stop_before_the_deadline_and_the_next_ones_converge() {
    let Peers {
        bao,
        moto,
        subscriber,
        sdk,
        topic_arn,
    } = peers().await;
    let n = 24;
    for i in 0..n {
        bao.bao(&[
            "kv",
            "put",
            &format!("secret/app/s{i}"),
            &format!("value=v{i}"),
        ])
        .await;
    }
    let rie = start_lambda(
        &bao,
        &moto,
        &topic_arn,
        &[
            ("AWS_LAMBDA_FUNCTION_TIMEOUT", "3"),
            ("REPLICATE_SOURCES", "secret/app"),
            ("REPLICATE_WRITE_TPS", "4"),
            ("REPLICATE_CONCURRENCY", "4"),
            ("REPLICATE_DEADLINE_MARGIN_MS", "800"),
            ("REPLICATE_AWS_MAX_ATTEMPTS", "2"),
        ],
    )
    .await;

    let scheduled = scheduled_event();
    let mut lefts = Vec::new();
    let mut created = 0;
    for _ in 0..12 {
        let (status, body) = rie.invoke(&scheduled).await;
        assert_eq!(status, 200, "{body}\n{}", rie.logs());
        let body: serde_json::Value =
            serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}\n{}", rie.logs()));
        assert!(body.get("errorMessage").is_none(), "{body}\n{}", rie.logs());
        let report = &body["reports"][0];
        assert!(report["error"].is_null(), "{body}");
        created += report["counts"]["create"].as_u64().unwrap_or(0);
        let left = report["left"].as_u64().unwrap_or(0);
        lefts.push(left);
        if left == 0 {
            break;
        }
    }
    assert!(
        lefts.len() >= 3,
        "a run per {{4 writes/s x ~2 s}}: {lefts:?}"
    );
    assert_eq!(lefts.last(), Some(&0), "converged: {lefts:?}");
    assert!(
        lefts.windows(2).all(|w| w[1] < w[0]),
        "progress each run: {lefts:?}"
    );
    assert!(created > 0 && created <= n, "{created} {lefts:?}");

    let (_, body) = rie.invoke(&scheduled).await;
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["reports"][0]["counts"]["unchanged"], n, "{body}");
    let sm = aws::secretsmanager_client(&sdk);
    for i in 0..n {
        let v = sm
            .get_secret_value()
            .secret_id(format!("vault/app/s{i}"))
            .send()
            .await
            .unwrap();
        assert_eq!(
            v.secret_string(),
            Some(format!(r#"{{"value":"v{i}"}}"#).as_str())
        );
    }
    let notes: Vec<String> = subscriber
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter_map(|r| serde_json::from_slice::<serde_json::Value>(&r.body).ok())
        .filter(|b| b["Type"] == "Notification")
        .filter_map(|b| b["Message"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(notes.len(), lefts.len() - 1, "one summary per partial run");
    assert!(
        notes[0].contains(&format!("partial: {} left", lefts[0])),
        "{}",
        notes[0]
    );
}
