//! Finding the IAM role this task or instance runs as.
//!
//! IMDSv2 goes through `vault_aws_auth::Imds` (aws-config's client). The ECS
//! container credentials endpoint is read here by hand: aws-config's
//! `EcsCredentialsProvider` returns credentials but drops the answer's
//! `RoleArn`, which is the one field this needs.

use std::time::Duration;

use anyhow::{Context, bail};

/// Default host of the ECS container credentials endpoint (relative URIs).
const ECS_HOST: &str = "http://169.254.170.2";

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
    let get = vault_client::trimmed(&lookup);
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
    let endpoint = get("AWS_EC2_METADATA_SERVICE_ENDPOINT")
        .unwrap_or_else(|| vault_aws_auth::DEFAULT_IMDS_ENDPOINT.to_owned());
    let imds = vault_aws_auth::Imds::new(&endpoint, Duration::from_secs(2))
        .map_err(anyhow::Error::msg)
        .context("AWS_EC2_METADATA_SERVICE_ENDPOINT")?;
    let names = imds
        .get(
            "/latest/meta-data/iam/security-credentials/",
            "the instance profile role",
        )
        .await
        .context(
            "cannot find the IAM role: no ECS container credentials endpoint, and IMDSv2 gave no \
             instance profile role; pass --iam-role",
        )?;
    names
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .map(str::to_owned)
        .context("IMDS lists no IAM role for this instance; pass --iam-role")
}

#[cfg(test)]
mod tests {
    use super::*;
    use wiremock::matchers::{header, method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    #[tokio::test]
    async fn imdsv2_gives_the_instance_role_and_ecs_without_role_arn_is_an_error() {
        let imds = MockServer::start().await;
        Mock::given(method("PUT"))
            .and(path("/latest/api/token"))
            .respond_with(
                ResponseTemplate::new(200)
                    .insert_header("x-aws-ec2-metadata-token-ttl-seconds", "21600")
                    .set_body_string("imds-token"),
            )
            .expect(1)
            .mount(&imds)
            .await;
        Mock::given(method("GET"))
            .and(path("/latest/meta-data/iam/security-credentials/"))
            .and(header("x-aws-ec2-metadata-token", "imds-token"))
            .respond_with(ResponseTemplate::new(200).set_body_string("ShopInstanceRole\n"))
            .expect(1)
            .mount(&imds)
            .await;
        let uri = imds.uri();
        let role = discover(|k| (k == "AWS_EC2_METADATA_SERVICE_ENDPOINT").then(|| uri.clone()))
            .await
            .unwrap();
        assert_eq!(role, "ShopInstanceRole");

        let ecs = MockServer::start().await;
        Mock::given(method("GET"))
            .respond_with(ResponseTemplate::new(200).set_body_string(r#"{"AccessKeyId":"A"}"#))
            .expect(1)
            .mount(&ecs)
            .await;
        let full = format!("{}/creds", ecs.uri());
        let err = discover(|k| (k == "AWS_CONTAINER_CREDENTIALS_FULL_URI").then(|| full.clone()))
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("without RoleArn") && err.contains("--iam-role"),
            "{err}"
        );

        let err = discover(|k| (k == "AWS_EC2_METADATA_DISABLED").then(|| "true".into()))
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("IMDS is disabled"), "{err}");
    }
}
