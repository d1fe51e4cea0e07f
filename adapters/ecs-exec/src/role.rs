//! Finding the IAM role this task or instance runs as.

use std::time::Duration;

use anyhow::{Context, bail};

/// Default host of the ECS container credentials endpoint (relative URIs).
const ECS_HOST: &str = "http://169.254.170.2";
/// Default IMDS endpoint.
const IMDS: &str = "http://169.254.169.254";

fn http() -> anyhow::Result<reqwest::Client> {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(2))
        .timeout(Duration::from_secs(5))
        .no_proxy()
        .build()
        .context("cannot build an HTTP client")
}

/// The role ARN (ECS) or role name (EC2) of this workload:
/// 1. the ECS container credentials endpoint (`AWS_CONTAINER_CREDENTIALS_FULL_URI`
///    or `AWS_CONTAINER_CREDENTIALS_RELATIVE_URI`, with
///    `AWS_CONTAINER_AUTHORIZATION_TOKEN[_FILE]`), whose answer carries `RoleArn`;
/// 2. else IMDSv2 (`AWS_EC2_METADATA_SERVICE_ENDPOINT`, default
///    `http://169.254.169.254`; skipped when `AWS_EC2_METADATA_DISABLED=true`):
///    the first name under `/latest/meta-data/iam/security-credentials/`.
pub async fn discover<F>(lookup: F) -> anyhow::Result<String>
where
    F: Fn(&str) -> Option<String>,
{
    let get = |name: &str| {
        lookup(name)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    let http = http()?;
    let ecs_url = get("AWS_CONTAINER_CREDENTIALS_FULL_URI").or_else(|| {
        get("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI").map(|rel| format!("{ECS_HOST}{rel}"))
    });
    if let Some(url) = ecs_url {
        let token = match get("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE") {
            Some(file) => Some(
                std::fs::read_to_string(&file)
                    .with_context(|| {
                        format!("cannot read AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE {file}")
                    })?
                    .trim()
                    .to_owned(),
            ),
            None => get("AWS_CONTAINER_AUTHORIZATION_TOKEN"),
        };
        let mut req = http.get(&url);
        if let Some(token) = token {
            req = req.header(reqwest::header::AUTHORIZATION, token);
        }
        let resp = req.send().await.with_context(|| {
            format!("cannot reach the ECS container credentials endpoint {url}")
        })?;
        let status = resp.status();
        if !status.is_success() {
            bail!("the ECS container credentials endpoint {url} answered {status}");
        }
        #[derive(serde::Deserialize)]
        struct Answer {
            #[serde(rename = "RoleArn", default)]
            role_arn: String,
        }
        let answer: Answer = resp.json().await.with_context(|| {
            format!("the ECS container credentials endpoint {url} did not answer JSON")
        })?;
        if answer.role_arn.is_empty() {
            bail!(
                "the ECS container credentials endpoint {url} answered without RoleArn; pass --iam-role"
            );
        }
        return Ok(answer.role_arn);
    }
    if get("AWS_EC2_METADATA_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
        bail!(
            "cannot find the IAM role: no ECS container credentials endpoint and IMDS is disabled; pass --iam-role"
        );
    }
    let imds = get("AWS_EC2_METADATA_SERVICE_ENDPOINT").unwrap_or_else(|| IMDS.to_owned());
    let imds = imds.trim_end_matches('/');
    let token = http
        .put(format!("{imds}/latest/api/token"))
        .header("X-aws-ec2-metadata-token-ttl-seconds", "60")
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .with_context(|| format!("cannot find the IAM role: no ECS container credentials endpoint, and IMDSv2 at {imds} does not answer; pass --iam-role"))?
        .text()
        .await?;
    let names = http
        .get(format!("{imds}/latest/meta-data/iam/security-credentials/"))
        .header("X-aws-ec2-metadata-token", token.trim())
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .with_context(|| format!("IMDS at {imds} has no instance profile role"))?
        .text()
        .await?;
    names
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .map(str::to_owned)
        .context("IMDS lists no IAM role for this instance; pass --iam-role")
}
