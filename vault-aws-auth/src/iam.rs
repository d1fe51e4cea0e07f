//! [`AwsIamAuth`]: the `iam` login of Vault's `aws` auth method.

use std::collections::BTreeMap;
use std::fmt;
use std::time::SystemTime;

use async_trait::async_trait;
use aws_credential_types::Credentials;
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use secrecy::{ExposeSecret, SecretString};
use vault_client::{AuthInfo, ConfigError, VaultAuth, VaultClient};

use crate::credentials::{AssumeRoleConfig, CredentialSource};
use crate::error::AwsAuthError;
use crate::hints::login_refused;

/// The header Vault's `iam_server_id_header_value` checks.
pub const IAM_SERVER_ID_HEADER: &str = "X-Vault-AWS-IAM-Server-ID";
/// The global STS endpoint; it is signed for `us-east-1`.
pub const GLOBAL_STS_ENDPOINT: &str = "https://sts.amazonaws.com/";
/// The body of `sts:GetCallerIdentity`.
pub const GET_CALLER_IDENTITY_BODY: &str = "Action=GetCallerIdentity&Version=2011-06-15";
/// The content type of the signed request.
pub const FORM_CONTENT_TYPE: &str = "application/x-www-form-urlencoded; charset=utf-8";
/// The default mount of the aws auth method.
pub const DEFAULT_MOUNT: &str = "aws";
/// Session name used for `VAULT_ASSUMED_ROLE_ARN`.
pub const ASSUME_ROLE_SESSION_NAME: &str = "vault-aws-auth";

/// The URL of the regional STS endpoint of `region`
/// (`https://sts.<region>.amazonaws.com/`, `.amazonaws.com.cn` in China).
pub fn regional_sts_endpoint(region: &str) -> String {
    if region.starts_with("cn-") {
        format!("https://sts.{region}.amazonaws.com.cn/")
    } else {
        format!("https://sts.{region}.amazonaws.com/")
    }
}

/// The region an AWS STS host name belongs to: `Some("us-east-1")` for the
/// global endpoint, `Some(r)` for `sts.<r>.amazonaws.com[.cn]` (also
/// `sts-fips.<r>...`), `None` for any other host (a VPC endpoint, a test server).
pub fn sts_host_region(host: &str) -> Option<String> {
    let host = host.to_ascii_lowercase();
    if host == "sts.amazonaws.com" {
        return Some("us-east-1".into());
    }
    let rest = host
        .strip_prefix("sts.")
        .or_else(|| host.strip_prefix("sts-fips."))?;
    let region = rest
        .strip_suffix(".amazonaws.com")
        .or_else(|| rest.strip_suffix(".amazonaws.com.cn"))?;
    (!region.is_empty() && !region.contains('.')).then(|| region.to_owned())
}

/// The login body of an IAM login: the role and the four `iam_*` fields,
/// each base64 encoded as Vault expects.
///
/// `Debug` redacts `iam_request_headers`: they hold the signature and, with
/// session credentials, the session token.
#[derive(Clone)]
#[non_exhaustive]
pub struct IamLoginPayload {
    /// The Vault role.
    pub role: String,
    /// Always `POST`.
    pub iam_http_request_method: String,
    /// base64 of the STS URL.
    pub iam_request_url: String,
    /// base64 of [`GET_CALLER_IDENTITY_BODY`].
    pub iam_request_body: String,
    /// base64 of the JSON map `header -> [values]` of the signed request.
    pub iam_request_headers: SecretString,
}

impl fmt::Debug for IamLoginPayload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IamLoginPayload")
            .field("role", &self.role)
            .field("iam_http_request_method", &self.iam_http_request_method)
            .field("iam_request_url", &self.iam_request_url)
            .field("iam_request_body", &self.iam_request_body)
            .field("iam_request_headers", &"<redacted>")
            .finish()
    }
}

impl IamLoginPayload {
    /// The JSON body of `POST /v1/auth/<mount>/login`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "role": self.role,
            "iam_http_request_method": self.iam_http_request_method,
            "iam_request_url": self.iam_request_url,
            "iam_request_body": self.iam_request_body,
            "iam_request_headers": self.iam_request_headers.expose_secret(),
        })
    }
}

/// Logs in with Vault's `aws` auth method, `iam` type: signs
/// `POST sts:GetCallerIdentity` with the workload's AWS credentials and lets
/// Vault replay it to STS to learn who is calling.
///
/// Credentials come from the `aws-config` default chain (environment, shared
/// profile, web identity, ECS container endpoint, IMDSv2; on Lambda the
/// environment) unless a provider is injected. Each login gets credentials
/// that stay valid for at least five more minutes (cached ones are reused
/// only until then). With an assumed role, `sts:AssumeRole` runs first and
/// the request is signed with the role's credentials.
///
/// ```no_run
/// use vault_aws_auth::AwsIamAuth;
/// use vault_client::{VaultAuth, VaultClient};
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let auth = AwsIamAuth::builder().role("my-function").server_id("vault.example.com").build()?;
/// let client = VaultClient::from_env()?;
/// let token = auth.login(&client).await?.client_token;
/// # Ok(()) }
/// ```
pub struct AwsIamAuth {
    mount: String,
    role: String,
    server_id: Option<String>,
    endpoint: String,
    signing_region: String,
    credentials: CredentialSource,
}

impl fmt::Debug for AwsIamAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AwsIamAuth")
            .field("mount", &self.mount)
            .field("role", &self.role)
            .field("server_id", &self.server_id)
            .field("endpoint", &self.endpoint)
            .field("signing_region", &self.signing_region)
            .field("credentials", &self.credentials)
            .finish()
    }
}

/// Builder of [`AwsIamAuth`]; see [`AwsIamAuth::builder`].
#[derive(Default)]
pub struct AwsIamAuthBuilder {
    mount: Option<String>,
    role: Option<String>,
    server_id: Option<String>,
    sts_region: Option<String>,
    sts_endpoint: Option<String>,
    region: Option<String>,
    assumed_role_arn: Option<String>,
    assume_role_endpoint_url: Option<String>,
    provider: Option<SharedCredentialsProvider>,
}

impl fmt::Debug for AwsIamAuthBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AwsIamAuthBuilder")
            .field("mount", &self.mount)
            .field("role", &self.role)
            .field("server_id", &self.server_id)
            .field("sts_region", &self.sts_region)
            .field("sts_endpoint", &self.sts_endpoint)
            .field("region", &self.region)
            .field("assumed_role_arn", &self.assumed_role_arn)
            .field("assume_role_endpoint_url", &self.assume_role_endpoint_url)
            .field("provider", &self.provider.as_ref().map(|_| "<injected>"))
            .finish()
    }
}

fn check_region(variable: &'static str, region: &str) -> Result<(), ConfigError> {
    let ok = !region.is_empty()
        && region.len() <= 32
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && region.contains('-');
    if ok {
        Ok(())
    } else {
        Err(ConfigError::invalid(
            variable,
            "an AWS region such as us-east-1 or eu-west-1",
            format!("{region:?} is not a region name"),
        ))
    }
}

impl AwsIamAuthBuilder {
    /// Mount path of the aws auth method (default `aws`).
    pub fn mount(mut self, mount: impl Into<String>) -> Self {
        self.mount = Some(mount.into());
        self
    }
    /// The Vault role to log in as (required).
    pub fn role(mut self, role: impl Into<String>) -> Self {
        self.role = Some(role.into());
        self
    }
    /// Value of `X-Vault-AWS-IAM-Server-ID`, added and signed when set
    /// (the mount's `iam_server_id_header_value`).
    pub fn server_id(mut self, server_id: impl Into<String>) -> Self {
        self.server_id = Some(server_id.into());
        self
    }
    /// Use the regional STS endpoint of this region, signed for it, instead
    /// of the global endpoint (signed for `us-east-1`).
    pub fn sts_region(mut self, region: impl Into<String>) -> Self {
        self.sts_region = Some(region.into());
        self
    }
    /// Any STS endpoint URL to put in the signed request (a FIPS or VPC
    /// endpoint). The signing region comes from [`sts_region`](Self::sts_region)
    /// or, for `sts.<region>.amazonaws.com`, from the host.
    pub fn sts_endpoint(mut self, url: impl Into<String>) -> Self {
        self.sts_endpoint = Some(url.into());
        self
    }
    /// The workload's own region (`AWS_REGION`): used by the credential chain
    /// and, with an assumed role, by the STS client.
    pub fn region(mut self, region: impl Into<String>) -> Self {
        self.region = Some(region.into());
        self
    }
    /// Assume this role first (`sts:AssumeRole`) and sign with its credentials.
    pub fn assumed_role_arn(mut self, arn: impl Into<String>) -> Self {
        self.assumed_role_arn = Some(arn.into());
        self
    }
    /// Where `sts:AssumeRole` is sent (default: the SDK's endpoint for the
    /// region; `AWS_ENDPOINT_URL_STS` in [`AwsIamAuth::from_lookup`]).
    pub fn assume_role_endpoint_url(mut self, url: impl Into<String>) -> Self {
        self.assume_role_endpoint_url = Some(url.into());
        self
    }
    /// Use this credentials provider instead of the default chain.
    pub fn credentials_provider(mut self, provider: SharedCredentialsProvider) -> Self {
        self.provider = Some(provider);
        self
    }

    /// Checks the settings.
    pub fn build(self) -> Result<AwsIamAuth, ConfigError> {
        let mount = self
            .mount
            .unwrap_or_else(|| DEFAULT_MOUNT.to_owned())
            .trim()
            .trim_matches('/')
            .to_owned();
        if mount.is_empty() || mount.contains(char::is_whitespace) || mount.contains("..") {
            return Err(ConfigError::invalid(
                "mount",
                "the mount path of the aws auth method, e.g. aws",
                "it is empty or contains spaces or ..",
            ));
        }
        let role = self.role.map(|r| r.trim().to_owned()).unwrap_or_default();
        if role.is_empty() {
            return Err(ConfigError::invalid(
                "role",
                "the name of a role of the aws auth method",
                "no role is set",
            ));
        }
        let server_id = self
            .server_id
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty());
        if let Some(id) = &server_id
            && http::HeaderValue::from_str(id).is_err()
        {
            return Err(ConfigError::invalid(
                "server_id",
                "printable ASCII text (the mount's iam_server_id_header_value)",
                "it contains characters a header cannot carry",
            ));
        }
        if let Some(r) = &self.sts_region {
            check_region("sts_region", r)?;
        }
        if let Some(r) = &self.region {
            check_region("region", r)?;
        }
        let (endpoint, signing_region) = match (&self.sts_endpoint, &self.sts_region) {
            (Some(url), region) => {
                let parsed = url::Url::parse(url).map_err(|e| {
                    ConfigError::invalid(
                        "sts_endpoint",
                        "an URL such as https://sts.eu-west-1.amazonaws.com/",
                        e.to_string(),
                    )
                })?;
                let host = match (parsed.scheme(), parsed.host_str()) {
                    ("https" | "http", Some(h)) => h.to_owned(),
                    _ => {
                        return Err(ConfigError::invalid(
                            "sts_endpoint",
                            "an http(s) URL with a host",
                            "the scheme is not http(s) or the host is missing",
                        ));
                    }
                };
                let host_region = sts_host_region(&host);
                let region = match (region, host_region) {
                    (Some(r), Some(h)) if *r != h => {
                        return Err(ConfigError::Inconsistent(format!(
                            "region/endpoint mismatch: the STS endpoint {host} belongs to {h} but the \
                             signing region is {r}; STS rejects such a signature. Use the endpoint of {r} \
                             or sign for {h}"
                        )));
                    }
                    (Some(r), _) => r.clone(),
                    (None, Some(h)) => h,
                    (None, None) => {
                        return Err(ConfigError::Inconsistent(format!(
                            "the STS endpoint {host} does not name its region: set the signing region \
                             (sts_region / VAULT_STS_ENDPOINT_REGION) too"
                        )));
                    }
                };
                (parsed.to_string(), region)
            }
            (None, Some(region)) => (regional_sts_endpoint(region), region.clone()),
            (None, None) => (GLOBAL_STS_ENDPOINT.to_owned(), "us-east-1".to_owned()),
        };
        let assume = match self.assumed_role_arn.map(|a| a.trim().to_owned()) {
            None => None,
            Some(arn) if arn.is_empty() => None,
            Some(arn) => {
                if !(arn.starts_with("arn:") && arn.contains(":role/")) {
                    return Err(ConfigError::invalid(
                        "assumed_role_arn",
                        "a role ARN such as arn:aws:iam::123456789012:role/name",
                        "it is not an IAM role ARN",
                    ));
                }
                if let Some(url) = &self.assume_role_endpoint_url {
                    url::Url::parse(url).map_err(|e| {
                        ConfigError::invalid(
                            "assume_role_endpoint_url",
                            "an http(s) URL",
                            e.to_string(),
                        )
                    })?;
                }
                Some(AssumeRoleConfig {
                    role_arn: arn,
                    session_name: ASSUME_ROLE_SESSION_NAME.to_owned(),
                    region: self
                        .sts_region
                        .clone()
                        .or_else(|| self.region.clone())
                        .unwrap_or_else(|| "us-east-1".to_owned()),
                    endpoint_url: self.assume_role_endpoint_url,
                })
            }
        };
        Ok(AwsIamAuth {
            mount,
            role,
            server_id,
            endpoint,
            signing_region,
            credentials: CredentialSource::new(self.provider, self.region, assume),
        })
    }
}

/// The variable each builder field is read from in [`AwsIamAuth::from_lookup`].
fn variable_of(field: &str) -> String {
    match field {
        "mount" => "VAULT_AUTH_PROVIDER",
        "role" => "VAULT_AUTH_ROLE",
        "server_id" => "VAULT_IAM_SERVER_ID",
        "sts_region" => "VAULT_STS_ENDPOINT_REGION",
        "region" => "AWS_REGION",
        "assumed_role_arn" => "VAULT_ASSUMED_ROLE_ARN",
        "assume_role_endpoint_url" => "AWS_ENDPOINT_URL_STS",
        other => other,
    }
    .to_owned()
}

impl AwsIamAuth {
    /// A builder; only the role is required.
    pub fn builder() -> AwsIamAuthBuilder {
        AwsIamAuthBuilder::default()
    }

    /// Reads the configuration through `lookup` (pass
    /// `|k| std::env::var(k).ok()` for the process environment), with the
    /// variable names of hashicorp/vault-lambda-extension:
    ///
    /// | variable | meaning | default |
    /// |---|---|---|
    /// | `VAULT_AUTH_ROLE` | Vault role (required) | — |
    /// | `VAULT_AUTH_PROVIDER` | mount of the aws auth method | `aws` |
    /// | `VAULT_IAM_SERVER_ID` | `X-Vault-AWS-IAM-Server-ID` value, signed | none |
    /// | `VAULT_STS_ENDPOINT_REGION` | sign for the regional STS endpoint of this region | global endpoint, `us-east-1` |
    /// | `AWS_STS_REGIONAL_ENDPOINTS` | `regional`: use the regional endpoint of `AWS_REGION` (`legacy` = global) | `legacy` |
    /// | `AWS_REGION`, `AWS_DEFAULT_REGION` | the workload's region | none |
    /// | `VAULT_ASSUMED_ROLE_ARN` | assume this role first, sign with its credentials | none |
    /// | `AWS_ENDPOINT_URL_STS` | where `sts:AssumeRole` goes | the SDK's regional endpoint |
    ///
    /// AWS credentials are not read here: the `aws-config` default chain
    /// reads them (from the process environment, profile files, the ECS
    /// container endpoint, IMDSv2) at each login.
    pub fn from_lookup<F>(lookup: F) -> Result<Self, ConfigError>
    where
        F: Fn(&str) -> Option<String>,
    {
        let get = vault_client::trimmed(&lookup);
        let role = get("VAULT_AUTH_ROLE").ok_or_else(|| {
            ConfigError::invalid(
                "VAULT_AUTH_ROLE",
                "the name of a role of the aws auth method",
                "it is not set",
            )
        })?;
        let mut b = Self::builder().role(role);
        if let Some(m) = get("VAULT_AUTH_PROVIDER") {
            b = b.mount(m);
        }
        if let Some(s) = get("VAULT_IAM_SERVER_ID") {
            b = b.server_id(s);
        }
        let region = get("AWS_REGION").or_else(|| get("AWS_DEFAULT_REGION"));
        if let Some(r) = &region {
            b = b.region(r.clone());
        }
        let sts_region = match get("VAULT_STS_ENDPOINT_REGION") {
            Some(r) => Some(r),
            None => match get("AWS_STS_REGIONAL_ENDPOINTS").map(|v| v.to_ascii_lowercase()) {
                None => None,
                Some(v) if v == "legacy" => None,
                Some(v) if v == "regional" => Some(region.clone().ok_or_else(|| {
                    ConfigError::invalid(
                        "AWS_STS_REGIONAL_ENDPOINTS",
                        "AWS_REGION (or AWS_DEFAULT_REGION) to be set with `regional`",
                        "it is `regional` but no region is set",
                    )
                })?),
                Some(_) => {
                    return Err(ConfigError::invalid(
                        "AWS_STS_REGIONAL_ENDPOINTS",
                        "`regional` or `legacy`",
                        "it has another value",
                    ));
                }
            },
        };
        if let Some(r) = sts_region {
            b = b.sts_region(r);
        }
        if let Some(a) = get("VAULT_ASSUMED_ROLE_ARN") {
            b = b.assumed_role_arn(a);
        }
        if let Some(u) = get("AWS_ENDPOINT_URL_STS") {
            b = b.assume_role_endpoint_url(u);
        }
        b.build().map_err(|e| {
            let field = e.variable().map(str::to_owned).unwrap_or_default();
            e.for_variable(variable_of(&field))
        })
    }

    /// The mount path (e.g. `aws`).
    pub fn mount(&self) -> &str {
        &self.mount
    }

    /// The Vault role.
    pub fn role(&self) -> &str {
        &self.role
    }

    /// The STS URL that is signed (and that Vault is asked to call).
    pub fn sts_endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The region the request is signed for.
    pub fn signing_region(&self) -> &str {
        &self.signing_region
    }

    /// Gets credentials and builds the signed login body, for callers that
    /// send the login themselves.
    pub async fn login_payload(&self) -> Result<IamLoginPayload, AwsAuthError> {
        let creds = self.credentials.credentials().await?;
        self.sign_with(&creds, vault_client::clock::wall())
    }

    /// Builds the signed login body with the given credentials and signing time.
    pub fn sign_with(
        &self,
        creds: &Credentials,
        time: SystemTime,
    ) -> Result<IamLoginPayload, AwsAuthError> {
        let mut unsigned: Vec<(&str, &str)> = vec![("content-type", FORM_CONTENT_TYPE)];
        if let Some(id) = &self.server_id {
            unsigned.push((IAM_SERVER_ID_HEADER, id.as_str()));
        }
        let signable = SignableRequest::new(
            "POST",
            self.endpoint.as_str(),
            unsigned.iter().copied(),
            SignableBody::Bytes(GET_CALLER_IDENTITY_BODY.as_bytes()),
        )
        .map_err(|e| AwsAuthError::Signing(e.to_string()))?;
        let identity = creds.clone().into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.signing_region)
            .name("sts")
            .time(time)
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| AwsAuthError::Signing(e.to_string()))?
            .into();
        let (instructions, _signature) = sign(signable, &params)
            .map_err(|e| AwsAuthError::Signing(e.to_string()))?
            .into_parts();
        let mut headers: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (name, value) in unsigned {
            let name = if name == IAM_SERVER_ID_HEADER {
                name.to_owned()
            } else {
                canonical_header_name(name)
            };
            headers.entry(name).or_default().push(value.to_owned());
        }
        for (name, value) in instructions.headers() {
            headers
                .entry(canonical_header_name(name))
                .or_default()
                .push(value.to_owned());
        }
        let json = zeroize::Zeroizing::new(
            serde_json::to_vec(&headers).map_err(|e| AwsAuthError::Signing(e.to_string()))?,
        );
        drop(headers);
        Ok(IamLoginPayload {
            role: self.role.clone(),
            iam_http_request_method: "POST".to_owned(),
            iam_request_url: B64.encode(self.endpoint.as_bytes()),
            iam_request_body: B64.encode(GET_CALLER_IDENTITY_BODY.as_bytes()),
            iam_request_headers: SecretString::from(B64.encode(json.as_slice())),
        })
    }
}

/// `x-amz-date` -> `X-Amz-Date` (Go's canonical form, as Vault's own client sends).
fn canonical_header_name(name: &str) -> String {
    name.split('-')
        .map(|part| {
            let mut chars = part.chars();
            match chars.next() {
                Some(first) => {
                    first.to_ascii_uppercase().to_string() + &chars.as_str().to_ascii_lowercase()
                }
                None => String::new(),
            }
        })
        .collect::<Vec<_>>()
        .join("-")
}

#[async_trait]
impl VaultAuth for AwsIamAuth {
    async fn login(&self, client: &VaultClient) -> vault_client::Result<AuthInfo> {
        let payload = self
            .login_payload()
            .await
            .map_err(|e| e.into_vault_error("aws-iam"))?;
        tracing::debug!(mount = %self.mount, role = %self.role, endpoint = %self.endpoint, "aws-iam login");
        client
            .login(&self.mount, &payload.to_json())
            .await
            .map_err(|e| login_refused("aws-iam", &self.mount, &self.role, e))
    }

    fn method(&self) -> &'static str {
        "aws-iam"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup(vars: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |k| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    fn creds() -> Credentials {
        Credentials::new(
            "AKIDEXAMPLE",
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            Some("SESSIONTOKEN".into()),
            None,
            "test",
        )
    }

    fn decoded_headers(p: &IamLoginPayload) -> BTreeMap<String, Vec<String>> {
        let raw = B64.decode(p.iam_request_headers.expose_secret()).unwrap();
        serde_json::from_slice(&raw).unwrap()
    }

    #[test]
    fn defaults_sign_the_global_endpoint_for_us_east_1() {
        let a = AwsIamAuth::from_lookup(lookup(&[
            ("VAULT_AUTH_ROLE", "app"),
            ("AWS_REGION", "eu-west-1"),
        ]))
        .unwrap();
        assert_eq!(a.mount(), "aws");
        assert_eq!(a.sts_endpoint(), GLOBAL_STS_ENDPOINT);
        assert_eq!(a.signing_region(), "us-east-1");
        let p = a
            .sign_with(
                &creds(),
                SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000),
            )
            .unwrap();
        assert_eq!(
            B64.decode(&p.iam_request_url).unwrap(),
            b"https://sts.amazonaws.com/"
        );
        assert_eq!(
            B64.decode(&p.iam_request_body).unwrap(),
            GET_CALLER_IDENTITY_BODY.as_bytes()
        );
        let h = decoded_headers(&p);
        let auth = &h["Authorization"][0];
        assert!(
            auth.contains("/20231114/us-east-1/sts/aws4_request"),
            "{auth}"
        );
        assert!(
            auth.contains("SignedHeaders=content-type;host;x-amz-date;x-amz-security-token"),
            "{auth}"
        );
        assert_eq!(h["X-Amz-Security-Token"], vec!["SESSIONTOKEN".to_owned()]);
        assert_eq!(h["Content-Type"], vec![FORM_CONTENT_TYPE.to_owned()]);
        let debug = format!("{p:?}");
        assert!(
            !debug.contains("SESSIONTOKEN") && !debug.contains("Signature"),
            "{debug}"
        );
    }

    #[test]
    fn regional_endpoints_and_the_server_id_header() {
        let a = AwsIamAuth::from_lookup(lookup(&[
            ("VAULT_AUTH_ROLE", "app"),
            ("VAULT_AUTH_PROVIDER", "/aws-prod/"),
            ("VAULT_IAM_SERVER_ID", "vault.example.com"),
            ("AWS_STS_REGIONAL_ENDPOINTS", "regional"),
            ("AWS_DEFAULT_REGION", "eu-central-1"),
        ]))
        .unwrap();
        assert_eq!(a.mount(), "aws-prod");
        assert_eq!(a.sts_endpoint(), "https://sts.eu-central-1.amazonaws.com/");
        let p = a.sign_with(&creds(), vault_client::clock::wall()).unwrap();
        let h = decoded_headers(&p);
        assert_eq!(
            h[IAM_SERVER_ID_HEADER],
            vec!["vault.example.com".to_owned()]
        );
        assert!(h["Authorization"][0].contains("eu-central-1/sts/aws4_request"));
        assert!(h["Authorization"][0].contains("x-vault-aws-iam-server-id"));

        let b = AwsIamAuth::from_lookup(lookup(&[
            ("VAULT_AUTH_ROLE", "app"),
            ("VAULT_STS_ENDPOINT_REGION", "cn-north-1"),
            ("AWS_STS_REGIONAL_ENDPOINTS", "legacy"),
        ]))
        .unwrap();
        assert_eq!(b.sts_endpoint(), "https://sts.cn-north-1.amazonaws.com.cn/");
        assert_eq!(b.signing_region(), "cn-north-1");
    }

    #[test]
    fn bad_settings_name_the_variable() {
        let e = AwsIamAuth::from_lookup(lookup(&[]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("VAULT_AUTH_ROLE"), "{e}");
        let e = AwsIamAuth::from_lookup(lookup(&[
            ("VAULT_AUTH_ROLE", "a"),
            ("AWS_STS_REGIONAL_ENDPOINTS", "regional"),
        ]))
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("AWS_STS_REGIONAL_ENDPOINTS") && e.contains("AWS_REGION"),
            "{e}"
        );
        let e = AwsIamAuth::from_lookup(lookup(&[
            ("VAULT_AUTH_ROLE", "a"),
            ("VAULT_STS_ENDPOINT_REGION", "Europe"),
        ]))
        .unwrap_err()
        .to_string();
        assert!(e.starts_with("VAULT_STS_ENDPOINT_REGION is invalid"), "{e}");
        let e = AwsIamAuth::from_lookup(lookup(&[
            ("VAULT_AUTH_ROLE", "a"),
            ("VAULT_ASSUMED_ROLE_ARN", "my-role"),
        ]))
        .unwrap_err()
        .to_string();
        assert!(e.starts_with("VAULT_ASSUMED_ROLE_ARN is invalid"), "{e}");
        let e = AwsIamAuth::builder()
            .role("a")
            .sts_endpoint("https://sts.eu-west-1.amazonaws.com/")
            .sts_region("us-west-2")
            .build()
            .unwrap_err()
            .to_string();
        assert!(e.contains("region/endpoint mismatch"), "{e}");
        let e = AwsIamAuth::builder()
            .role("a")
            .sts_endpoint("https://vpce-1.sts.example/")
            .build()
            .unwrap_err()
            .to_string();
        assert!(e.contains("does not name its region"), "{e}");
        let ok = AwsIamAuth::builder()
            .role("a")
            .sts_endpoint("https://sts-fips.us-east-2.amazonaws.com/")
            .build()
            .unwrap();
        assert_eq!(ok.signing_region(), "us-east-2");
    }

    #[test]
    fn host_regions() {
        assert_eq!(
            sts_host_region("sts.amazonaws.com").as_deref(),
            Some("us-east-1")
        );
        assert_eq!(
            sts_host_region("STS.eu-west-3.amazonaws.com").as_deref(),
            Some("eu-west-3")
        );
        assert_eq!(sts_host_region("sts.a.b.amazonaws.com"), None);
        assert_eq!(sts_host_region("example.com"), None);
        assert_eq!(
            canonical_header_name("x-amz-security-token"),
            "X-Amz-Security-Token"
        );
    }
}
