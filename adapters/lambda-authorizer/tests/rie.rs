//! The `lambda-authorizer` binary under the AWS Lambda Runtime Interface
//! Emulator, fed real API Gateway event shapes (tests/fixtures), with tokens
//! from the environment and from a moto Secrets Manager secret that rotates.

// Test helpers fail loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::time::Duration;

use aws_sdk_secretsmanager::config::{BehaviorVersion, Credentials, Region};
use serde_json::{Value, json};
use testkit::{Moto, Rie, RieConfig};

const ENV: &str = "env-token-4f9c2a7e1b";
const WEB_OLD: &str = "web-token-old-8d1e5b3c";
const WEB_NEW: &str = "web-token-new-2a6f9d4e";
const MOBILE: &str = "mobile-token-7c3b1e9f";
const WRONG: &str = "wrong-token-0000000000";
const SECRET: &str = "api/authorizer-tokens";
const STAGE: &str = "arn:aws:execute-api:eu-west-1:111122223333:r7t4u1v8cd/prod/*/*";

fn fixture(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// HTTP API 2.0 event with extra lower-case `headers` and `cookies` entries.
fn http(headers: &[(&str, &str)], cookies: &[&str]) -> Value {
    let mut e = fixture("http-v2-request.json");
    for (n, v) in headers {
        e["headers"][*n] = json!(v);
    }
    for c in cookies {
        e["cookies"].as_array_mut().unwrap().push(json!(c));
    }
    e
}

/// REST API REQUEST event with a header in `headers` and `multiValueHeaders`.
fn rest(headers: &[(&str, &str)]) -> Value {
    let mut e = fixture("rest-request.json");
    for (n, v) in headers {
        e["headers"][*n] = json!(v);
        e["multiValueHeaders"][*n] = json!([v]);
    }
    e
}

async fn invoke(rie: &Rie, event: &Value) -> Value {
    let (status, body) = rie.invoke(event).await;
    assert_eq!(status, 200, "{body}\n{}", rie.logs());
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}\n{}", rie.logs()))
}

async fn http_decision(rie: &Rie, event: &Value) -> (bool, Value) {
    let r = invoke(rie, event).await;
    let allowed = r["isAuthorized"]
        .as_bool()
        .unwrap_or_else(|| panic!("not a simple response: {r}"));
    (allowed, r["context"].clone())
}

fn aws_env(moto: &Moto) -> Vec<(String, String)> {
    [
        ("AWS_ENDPOINT_URL_SECRETS_MANAGER", moto.endpoint()),
        ("AWS_REGION", "eu-west-1".to_owned()),
        ("AWS_ACCESS_KEY_ID", "AKIATEST".to_owned()),
        ("AWS_SECRET_ACCESS_KEY", "test-secret-key".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

/// The authorizer under RIE, reading Secrets Manager from `moto`, with
/// `extra` in its environment.
async fn start_authorizer(moto: &Moto, extra: &[(&str, &str)]) -> Rie {
    let mut env = aws_env(moto);
    env.extend(
        extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    Rie::start(RieConfig {
        bootstrap: PathBuf::from(env!("CARGO_BIN_EXE_lambda-authorizer")),
        env,
        ..RieConfig::default()
    })
    .await
}

fn assert_no_token(logs: &str) {
    for t in [ENV, WEB_OLD, WEB_NEW, MOBILE, WRONG] {
        assert!(!logs.contains(t), "a token is in the logs:\n{logs}");
    }
}

#[tokio::test]
async fn authorizer_under_rie_decides_real_events_and_follows_secret_rotation() {
    let moto = Moto::start().await;
    let sm = aws_sdk_secretsmanager::Client::from_conf(
        aws_sdk_secretsmanager::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("eu-west-1"))
            .credentials_provider(Credentials::new(
                "AKIATEST",
                "test-secret-key",
                None,
                None,
                "t",
            ))
            .endpoint_url(moto.endpoint())
            .build(),
    );
    sm.create_secret()
        .name(SECRET)
        .secret_string(json!({ "web": WEB_OLD }).to_string())
        .send()
        .await
        .unwrap();
    let rie = start_authorizer(
        &moto,
        &[
            ("AUTHORIZER_TOKENS", ENV),
            ("AUTHORIZER_TOKENS_SECRET_ID", SECRET),
            ("AUTHORIZER_TOKENS_REFRESH_SECONDS", "1"),
            // Even at TRACE (AWS SDK, hyper, lambda_runtime) no token is logged.
            ("AUTHORIZER_LOG_LEVEL", "trace"),
        ],
    )
    .await;

    // HTTP API 2.0: bearer (environment token), cookie (secret token).
    let (ok, ctx) = http_decision(
        &rie,
        &http(&[("authorization", &format!("Bearer {ENV}"))], &[]),
    )
    .await;
    assert!(ok, "{ctx}\n{}", rie.logs());
    assert_eq!(ctx, json!({ "client": "env-1" }));
    let (ok, ctx) = http_decision(&rie, &http(&[], &[&format!("auth={WEB_OLD}")])).await;
    assert!(ok, "{ctx}");
    assert_eq!(ctx, json!({ "client": "web" }));
    // A Cookie header works too.
    let (ok, _) = http_decision(
        &rie,
        &http(&[("cookie", &format!("theme=dark; auth={WEB_OLD}"))], &[]),
    )
    .await;
    assert!(ok);
    // Denied: wrong token, no token, wrong scheme, empty bearer.
    for (event, reason) in [
        (
            http(&[("authorization", &format!("Bearer {WRONG}"))], &[]),
            "unknown-token",
        ),
        (http(&[], &[]), "no-credentials"),
        (
            http(&[("authorization", &format!("Basic {ENV}"))], &[]),
            "unsupported-scheme",
        ),
        (
            http(&[("authorization", "Bearer ")], &[&format!("auth={ENV}")]),
            "empty-token",
        ),
    ] {
        let (ok, ctx) = http_decision(&rie, &event).await;
        assert!(!ok, "{event}");
        assert_eq!(ctx, json!({ "reason": reason }));
    }

    // REST API: Allow and Deny policies over the stage.
    let r = invoke(
        &rie,
        &rest(&[("Authorization", &format!("bearer {WEB_OLD}"))]),
    )
    .await;
    assert_eq!(
        r,
        json!({
            "principalId": "web",
            "policyDocument": {"Version": "2012-10-17", "Statement": [{
                "Action": "execute-api:Invoke", "Effect": "Allow", "Resource": STAGE}]},
            "context": {"client": "web"}
        })
    );
    let r = invoke(&rie, &rest(&[("Cookie", &format!("auth={ENV}"))])).await;
    assert_eq!(r["principalId"], "env-1");
    assert_eq!(r["policyDocument"]["Statement"][0]["Effect"], "Allow");
    let r = invoke(&rie, &rest(&[("Cookie", &format!("auth={WRONG}"))])).await;
    assert_eq!(
        r,
        json!({
            "principalId": "anonymous",
            "policyDocument": {"Version": "2012-10-17", "Statement": [{
                "Action": "execute-api:Invoke", "Effect": "Deny", "Resource": STAGE}]},
            "context": {"reason": "unknown-token"}
        })
    );

    // Rotation with overlap: add the new token, then retire the old one.
    let rotate = async |value: Value| {
        sm.put_secret_value()
            .secret_id(SECRET)
            .secret_string(value.to_string())
            .send()
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(1100)).await;
    };
    rotate(json!({ "web": WEB_OLD, "web-next": WEB_NEW, "mobile": MOBILE })).await;
    for (t, client) in [(WEB_OLD, "web"), (WEB_NEW, "web-next"), (MOBILE, "mobile")] {
        let (ok, ctx) = http_decision(
            &rie,
            &http(&[("authorization", &format!("Bearer {t}"))], &[]),
        )
        .await;
        assert!(ok, "{client}: {ctx}\n{}", rie.logs());
        assert_eq!(ctx["client"], client);
    }
    rotate(json!([WEB_NEW, MOBILE])).await;
    let (ok, ctx) = http_decision(&rie, &http(&[], &[&format!("auth={WEB_OLD}")])).await;
    assert!(!ok, "the retired token is denied");
    assert_eq!(ctx["reason"], "unknown-token");
    let (ok, ctx) = http_decision(&rie, &http(&[], &[&format!("auth={WEB_NEW}")])).await;
    assert!(ok);
    assert_eq!(ctx["client"], "secret-1");

    // The secret disappears: the last good set stays in force.
    sm.delete_secret()
        .secret_id(SECRET)
        .force_delete_without_recovery(true)
        .send()
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (ok, _) = http_decision(
        &rie,
        &http(&[("authorization", &format!("Bearer {MOBILE}"))], &[]),
    )
    .await;
    assert!(ok, "{}", rie.logs());
    let (ok, _) = http_decision(
        &rie,
        &http(&[("authorization", &format!("Bearer {WEB_OLD}"))], &[]),
    )
    .await;
    assert!(!ok);

    let logs = rie.shutdown().await;
    assert!(logs.contains("valid tokens loaded"), "{logs}");
    assert!(logs.contains("keeping the last good set"), "{logs}");
    assert!(
        logs.contains("decision=\"allow\" client=web via=cookie"),
        "{logs}"
    );
    assert!(
        logs.contains("decision=\"allow\" client=env-1 via=bearer"),
        "{logs}"
    );
    assert!(
        logs.contains("decision=\"deny\" reason=unknown-token"),
        "{logs}"
    );
    assert!(logs.contains("source_ip=\"203.0.113.77\""), "{logs}");
    assert_no_token(&logs);

    // Cold start without the secret: everything is denied, the error names
    // the variable.
    let rie = start_authorizer(
        &moto,
        &[
            ("AUTHORIZER_TOKENS", ENV),
            ("AUTHORIZER_TOKENS_SECRET_ID", "api/missing"),
        ],
    )
    .await;
    let (ok, ctx) = http_decision(
        &rie,
        &http(&[("authorization", &format!("Bearer {ENV}"))], &[]),
    )
    .await;
    assert!(!ok);
    assert_eq!(ctx["reason"], "tokens-unavailable");
    let r = invoke(&rie, &rest(&[("Authorization", &format!("Bearer {ENV}"))])).await;
    assert_eq!(r["policyDocument"]["Statement"][0]["Effect"], "Deny");
    let logs = rie.shutdown().await;
    assert!(
        logs.contains("cannot read the valid tokens from AUTHORIZER_TOKENS_SECRET_ID")
            && logs.contains("api/missing")
            && logs.contains("ResourceNotFoundException"),
        "{logs}"
    );
    assert_no_token(&logs);

    // Misconfigured (a token too short to be safe): every invocation fails
    // naming the variable; nothing is allowed.
    let rie = start_authorizer(&moto, &[("AUTHORIZER_TOKENS", &format!("{ENV},short"))]).await;
    let (_, body) = rie
        .invoke(&http(&[("authorization", &format!("Bearer {ENV}"))], &[]))
        .await;
    assert!(
        body.contains("AUTHORIZER_TOKENS entry 2"),
        "{body}\n{}",
        rie.logs()
    );
    assert!(
        !body.contains("isAuthorized") && !body.contains("short"),
        "{body}"
    );
    let logs = rie.shutdown().await;
    assert!(
        logs.contains("lambda-authorizer is misconfigured"),
        "{logs}"
    );
    assert_no_token(&logs);
}

/// Lambda's logging configuration (`LoggingConfig` → `AWS_LAMBDA_LOG_FORMAT`,
/// `AWS_LAMBDA_LOG_LEVEL`) is followed: JSON lines with the level, the
/// message, the target and the invocation's request id; the level filters.
#[tokio::test]
async fn logs_follow_lambdas_logging_configuration() {
    let moto = Moto::start().await;
    let start = async |level: &'static str| {
        start_authorizer(
            &moto,
            &[
                ("AUTHORIZER_TOKENS", ENV),
                ("AWS_LAMBDA_LOG_FORMAT", "JSON"),
                ("AWS_LAMBDA_LOG_LEVEL", level),
            ],
        )
        .await
    };

    let rie = start("INFO").await;
    let (ok, _) = http_decision(
        &rie,
        &http(&[("authorization", &format!("Bearer {ENV}"))], &[]),
    )
    .await;
    assert!(ok);
    let logs = rie.shutdown().await;
    let lines: Vec<Value> = logs
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let decision = lines
        .iter()
        .find(|l| l["decision"] == "allow")
        .unwrap_or_else(|| panic!("no JSON decision line:\n{logs}"));
    assert_eq!(decision["level"], "INFO", "{decision}");
    assert!(decision["message"].is_string(), "{decision}");
    assert!(
        decision["target"]
            .as_str()
            .unwrap()
            .starts_with("vault_aws_lambda_authorizer"),
        "{decision}"
    );
    let request_id = decision["span"]["requestId"].as_str().unwrap_or_default();
    assert_eq!(
        request_id.len(),
        36,
        "the request id of the invocation: {decision}"
    );
    assert!(!lines.iter().any(|l| l["level"] == "DEBUG"), "{logs}");
    assert_no_token(&logs);

    // DEBUG: lines below INFO appear (the subscriber's own level does not cap them).
    let rie = start("DEBUG").await;
    let (ok, _) = http_decision(
        &rie,
        &http(&[("authorization", &format!("Bearer {ENV}"))], &[]),
    )
    .await;
    assert!(ok);
    let logs = rie.shutdown().await;
    assert!(logs.contains("\"level\":\"DEBUG\""), "{logs}");
    assert_no_token(&logs);

    // ERROR: the decision (INFO) is filtered out.
    let rie = start("ERROR").await;
    let (ok, _) = http_decision(
        &rie,
        &http(&[("authorization", &format!("Bearer {ENV}"))], &[]),
    )
    .await;
    assert!(ok);
    let logs = rie.shutdown().await;
    assert!(!logs.contains("\"decision\""), "{logs}");
}
