//! Step 1: CloudFormation `Custom::VaultAuth` Create → the AppRole Lambda
//! (`bootstrap`) under the Runtime Interface Emulator → role in OpenBao,
//! credentials in S3, response PUT to the pre-signed URL.

use std::time::Duration;

use anyhow::Context;
use serde_json::{Value, json};
use testkit::{Rie, RieConfig};

use crate::env::{Bins, World};
use crate::listeners::Capture;
use crate::report::{block, check, excerpt, fact, mask, mask_json, tail};

/// Bucket of the delivered credentials.
pub const BUCKET: &str = "shop-vault-credentials";
/// The task role of the shop service; also the Vault AppRole's name.
pub const IAM_ROLE: &str = "shop-task-role";

/// What step 2 needs from step 1.
pub struct Provisioned {
    /// `s3://bucket/key` of the delivered credentials.
    pub location: String,
}

/// Runs step 1.
pub async fn run(world: &World, bins: &Bins) -> anyhow::Result<Provisioned> {
    let s3 = world.s3();
    s3.create_bucket()
        .bucket(BUCKET)
        .send()
        .await
        .context("moto: cannot create the S3 bucket")?;
    let cfn = Capture::start().await?;
    let mut env = world.aws_env();
    env.extend(
        [
            ("VAULT_ADDR", world.bao.addr()),
            ("VAULT_TOKEN", world.bao.root_token().to_owned()),
            ("AWS_ENDPOINT_URL_S3", world.moto.endpoint()),
            ("VAULT_APPROLE_S3_BUCKET", BUCKET.to_owned()),
            // The local listener stands in for CloudFormation's S3 URL.
            ("VAULT_APPROLE_RESPONSE_URL_HOSTS", "127.0.0.1".to_owned()),
        ]
        .map(|(k, v)| (k.to_owned(), v)),
    );
    let rie = Rie::start(RieConfig {
        bootstrap: bins.approle.clone(),
        env,
        ..RieConfig::default()
    })
    .await;
    fact(format!(
        "AppRole manager Lambda (`bootstrap`, package vault-aws-lambda-approle) under the Lambda RIE at {}",
        rie.emulator_addr()
    ));

    let response_path = "/cfn-response/shop-dev";
    let event = json!({
        "RequestType": "Create",
        "ResponseURL": format!("{}{response_path}?X-Amz-Signature=demo", cfn.url()),
        "StackId": "arn:aws:cloudformation:us-east-1:123456789012:stack/shop-dev/1",
        "RequestId": "demo-create-1",
        "ResourceType": "Custom::VaultAuth",
        "LogicalResourceId": "ShopVaultAuth",
        "ResourceProperties": {
            "ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:vault-approle",
            "Service": "shop", "Environment": "dev", "Iam": IAM_ROLE,
        },
    });
    fact(
        "sent: CloudFormation Create event for Custom::VaultAuth (Service=shop, Environment=dev, Iam=shop-task-role)",
    );
    let (status, body) = rie.invoke(&event).await;
    check(
        status == 200,
        "the Lambda handled the event (HTTP 200 from the RIE)",
        || {
            format!(
                "status {status}: {body}\nRIE output:\n{}",
                tail(&rie.logs(), 30)
            )
        },
    )?;

    let put = cfn.wait_for(response_path, Duration::from_secs(10)).await;
    let put = match put {
        Some(p) => p,
        None => anyhow::bail!(
            "check failed: no response PUT reached the CloudFormation URL within 10 s\nRIE output:\n{}",
            tail(&rie.logs(), 30)
        ),
    };
    let answer: Value =
        serde_json::from_slice(&put.body).context("the response body is not JSON")?;
    fact(format!(
        "response {} {} (Content-Type: {:?}, {} bytes), secrets masked:\n{}",
        put.method,
        put.uri,
        put.content_type.as_deref().unwrap_or(""),
        put.body.len(),
        serde_json::to_string_pretty(&mask_json(&answer))?
    ));
    let location = format!("s3://{BUCKET}/vault/approle/{IAM_ROLE}");
    check(
        put.method == "PUT"
            && put.content_type.as_deref().unwrap_or("").is_empty()
            && put.body.len() <= 4096,
        "the answer is a PUT with an empty Content-Type, under 4 KiB (as CloudFormation requires)",
        || format!("{put:?}"),
    )?;
    check(
        answer["Status"] == "SUCCESS"
            && answer["PhysicalResourceId"] == IAM_ROLE
            && answer["RequestId"] == "demo-create-1"
            && answer["Data"]["CredentialsLocation"] == location.as_str(),
        format!("Status SUCCESS, PhysicalResourceId {IAM_ROLE}, CredentialsLocation {location}"),
        || answer.to_string(),
    )?;

    let role = world
        .bao
        .root_request("GET", &format!("auth/approle/role/{IAM_ROLE}"), Value::Null)
        .await;
    let policies = role["data"]["token_policies"].clone();
    check(
        policies
            .as_array()
            .is_some_and(|p| p.iter().any(|p| p == "shop-dev")),
        format!(
            "OpenBao has AppRole `{IAM_ROLE}` with policy shop-dev (token_policies {policies})"
        ),
        || role.to_string(),
    )?;

    let key = format!("vault/approle/{IAM_ROLE}");
    let object = s3
        .get_object()
        .bucket(BUCKET)
        .key(&key)
        .send()
        .await
        .with_context(|| format!("check failed: no S3 object {location}"))?;
    let sse = object
        .server_side_encryption()
        .map(|s| s.as_str().to_owned())
        .unwrap_or_default();
    let bytes = object
        .body
        .collect()
        .await
        .context("read the S3 object")?
        .into_bytes();
    let delivered: Value = serde_json::from_slice(&bytes).context("the S3 object is not JSON")?;
    fact(format!(
        "S3 object {location} (server-side encryption {sse}), secrets masked:\n{}",
        serde_json::to_string_pretty(&mask_json(&delivered))?
    ));
    let secret_id = delivered["secret_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    check(
        !sse.is_empty()
            && delivered["role_id"].as_str().is_some_and(|s| !s.is_empty())
            && !secret_id.is_empty()
            && delivered["vault_addr"] == world.bao.addr().as_str(),
        format!(
            "it holds role_id, secret_id {} and vault_addr {}, encrypted at rest",
            mask(&secret_id),
            world.bao.addr()
        ),
        || format!("sse {sse:?}, object {}", mask_json(&delivered)),
    )?;

    let logs = rie.shutdown().await;
    fact("Lambda log (excerpt):");
    block("| ", &excerpt(&logs, &["credentials delivered"]));
    check(
        logs.contains("credentials delivered") && !logs.contains(&secret_id),
        "the Lambda logged the delivery, never the secret_id",
        || tail(&logs, 30),
    )?;
    Ok(Provisioned { location })
}
