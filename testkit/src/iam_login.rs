//! A test-only server that implements the server side of Vault's `aws` auth
//! method, `iam` login (`POST /v1/auth/<mount>/login`), against moto's STS.
//!
//! OpenBao has no aws auth method, so this does what Vault's server does with
//! a login: decode the four `iam_*` fields, check the
//! `X-Vault-AWS-IAM-Server-ID` header (present, equal, among SignedHeaders)
//! when configured, check that the URL is an STS endpoint, forward the signed
//! request (with its own headers and `Host`) to moto's STS — which verifies
//! the signature once [`Moto::enable_sigv4_verification`](crate::Moto::enable_sigv4_verification)
//! ran — parse `GetCallerIdentityResult`, resolve an assumed-role ARN to its
//! role ARN, compare it with the role's bound ARNs, and answer with a
//! Vault-shaped `auth` block or Vault-shaped `{"errors": [...]}`.
//!
//! One thing real STS checks and moto does not: the credential scope region
//! must be the endpoint's region (the global endpoint is `us-east-1`). This
//! server rejects a mismatch the way Vault relays STS's refusal.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Value, json};

use crate::moto::url_encode;

/// Header Vault checks when `iam_server_id_header_value` is set.
pub const SERVER_ID_HEADER: &str = "X-Vault-AWS-IAM-Server-ID";

/// What the server saw of one login that reached STS.
#[derive(Debug, Clone)]
pub struct ObservedLogin {
    /// The role asked for.
    pub role: String,
    /// The decoded `iam_request_url`.
    pub url: String,
    /// The decoded headers (lower-case names).
    pub headers: HashMap<String, String>,
    /// The `SignedHeaders` list of the Authorization header.
    pub signed_headers: Vec<String>,
    /// The caller's ARN as STS named it.
    pub caller_arn: String,
}

/// Builder of [`IamLoginServer`].
#[derive(Debug, Clone)]
pub struct IamLoginServerBuilder {
    sts_endpoint: String,
    mount: String,
    server_id: Option<String>,
    roles: HashMap<String, Vec<String>>,
    policies: Vec<String>,
    ttl: u64,
    sts_region: Option<String>,
}

impl IamLoginServerBuilder {
    /// Like Vault's `sts_endpoint`/`sts_region` config: forward every login to
    /// the STS of this region, whatever URL the client signed; a signature
    /// scoped to another region is then refused as real STS refuses it.
    pub fn sts_region(mut self, region: &str) -> Self {
        self.sts_region = Some(region.to_owned());
        self
    }
    /// The mount (default `aws`).
    pub fn mount(mut self, mount: &str) -> Self {
        self.mount = mount.trim_matches('/').to_owned();
        self
    }
    /// Require `X-Vault-AWS-IAM-Server-ID` with this value, signed.
    pub fn server_id(mut self, value: &str) -> Self {
        self.server_id = Some(value.to_owned());
        self
    }
    /// A role bound to these IAM principal ARNs (a trailing `*` matches a prefix).
    pub fn role(mut self, name: &str, bound_iam_principal_arns: &[&str]) -> Self {
        self.roles.insert(
            name.to_owned(),
            bound_iam_principal_arns
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
        );
        self
    }
    /// Policies of the issued tokens (default `default`).
    pub fn policies(mut self, policies: &[&str]) -> Self {
        self.policies = policies.iter().map(|s| (*s).to_owned()).collect();
        self
    }

    /// Binds 127.0.0.1 on a free port and serves until dropped.
    pub async fn start(self) -> IamLoginServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the login server");
        let addr = listener.local_addr().expect("local address");
        let state = Arc::new(ServerState {
            config: self,
            http: crate::http_client(),
            observed: Mutex::new(Vec::new()),
            counter: AtomicU64::new(0),
        });
        let app = axum::Router::new()
            .route("/v1/auth/{*path}", axum::routing::post(login))
            .with_state(Arc::clone(&state));
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.expect("login server");
        });
        IamLoginServer {
            addr: format!("http://{addr}"),
            state,
            task,
        }
    }
}

/// A running Vault-like IAM login server; stops when dropped.
pub struct IamLoginServer {
    addr: String,
    state: Arc<ServerState>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for IamLoginServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl IamLoginServer {
    /// A builder forwarding STS requests to `sts_endpoint` (moto's endpoint).
    pub fn builder(sts_endpoint: &str) -> IamLoginServerBuilder {
        IamLoginServerBuilder {
            sts_endpoint: sts_endpoint.trim_end_matches('/').to_owned(),
            mount: "aws".to_owned(),
            server_id: None,
            roles: HashMap::new(),
            policies: vec!["default".to_owned()],
            ttl: 768 * 3600,
            sts_region: None,
        }
    }

    /// Base URL, `http://127.0.0.1:P` (use it as `VAULT_ADDR`).
    pub fn addr(&self) -> String {
        self.addr.clone()
    }

    /// Logins that reached STS, oldest first.
    pub fn observed(&self) -> Vec<ObservedLogin> {
        self.state.observed.lock().unwrap().clone()
    }
}

struct ServerState {
    config: IamLoginServerBuilder,
    http: reqwest::Client,
    observed: Mutex<Vec<ObservedLogin>>,
    counter: AtomicU64,
}

/// A Vault-shaped refusal: status and `{"errors": [message]}`.
struct Refusal(StatusCode, String);

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "errors": [self.1] }))).into_response()
    }
}

fn vault_error(status: StatusCode, message: impl Into<String>) -> Refusal {
    Refusal(status, message.into())
}

fn field<'a>(body: &'a Value, name: &str) -> Result<&'a str, Refusal> {
    body.get(name)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| vault_error(StatusCode::BAD_REQUEST, format!("missing {name}")))
}

fn b64(body: &Value, name: &str) -> Result<String, Refusal> {
    let raw = B64.decode(field(body, name)?).map_err(|e| {
        vault_error(
            StatusCode::BAD_REQUEST,
            format!("failed to base64 decode {name}: {e}"),
        )
    })?;
    String::from_utf8(raw)
        .map_err(|_| vault_error(StatusCode::BAD_REQUEST, format!("{name} is not UTF-8")))
}

/// The region of an STS host (`sts.amazonaws.com` = us-east-1).
fn sts_region(host: &str) -> Option<String> {
    if host == "sts.amazonaws.com" {
        return Some("us-east-1".to_owned());
    }
    let rest = host.strip_prefix("sts.")?;
    let region = rest
        .strip_suffix(".amazonaws.com")
        .or_else(|| rest.strip_suffix(".amazonaws.com.cn"))?;
    (!region.contains('.')).then(|| region.to_owned())
}

/// `arn:aws:sts::A:assumed-role/N/S` -> `arn:aws:iam::A:role/N` (as Vault resolves it).
pub fn canonical_arn(arn: &str) -> String {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    if parts.len() == 6 && parts[2] == "sts" {
        let resource: Vec<&str> = parts[5].split('/').collect();
        if resource.len() >= 2 && resource[0] == "assumed-role" {
            return format!("arn:{}:iam::{}:role/{}", parts[1], parts[4], resource[1]);
        }
    }
    arn.to_owned()
}

fn xml_text(xml: &str, tag: &str) -> Option<String> {
    let open = format!("<{tag}>");
    let start = xml.find(&open)? + open.len();
    let end = xml[start..].find('<')?;
    Some(xml[start..start + end].to_owned())
}

async fn login(
    State(state): State<Arc<ServerState>>,
    Path(path): Path<String>,
    body: Option<Json<Value>>,
) -> Response {
    let config = &state.config;
    if path.trim_end_matches('/') != format!("{}/login", config.mount) {
        return vault_error(
            StatusCode::NOT_FOUND,
            format!("no handler for route \"auth/{path}\". route entry not found."),
        )
        .into_response();
    }
    let Some(Json(body)) = body else {
        return vault_error(StatusCode::BAD_REQUEST, "failed to parse JSON input").into_response();
    };
    match handle(&state, &body).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn handle(state: &ServerState, body: &Value) -> Result<Response, Refusal> {
    let config = &state.config;
    let method = field(body, "iam_http_request_method")?;
    if method != "POST" {
        return Err(vault_error(
            StatusCode::BAD_REQUEST,
            "invalid iam_http_request_method; currently only 'POST' is supported",
        ));
    }
    let url = b64(body, "iam_request_url")?;
    let request_body = b64(body, "iam_request_body")?;
    let headers_json = b64(body, "iam_request_headers")?;
    let parsed = reqwest::Url::parse(&url).map_err(|e| {
        vault_error(
            StatusCode::BAD_REQUEST,
            format!("error parsing iam_request_url: {e}"),
        )
    })?;
    let host = parsed.host_str().unwrap_or_default().to_ascii_lowercase();
    let Some(url_region) = sts_region(&host).filter(|_| parsed.scheme() == "https") else {
        return Err(vault_error(
            StatusCode::BAD_REQUEST,
            format!("iam_request_url {url} is not an https STS endpoint"),
        ));
    };
    if !request_body
        .split('&')
        .any(|p| p == "Action=GetCallerIdentity")
    {
        return Err(vault_error(
            StatusCode::BAD_REQUEST,
            "iam_request_body must have 'Action=GetCallerIdentity'",
        ));
    }
    let raw: HashMap<String, Value> = serde_json::from_str(&headers_json).map_err(|e| {
        vault_error(
            StatusCode::BAD_REQUEST,
            format!("error parsing iam_request_headers: {e}"),
        )
    })?;
    let mut headers: HashMap<String, String> = HashMap::new();
    for (k, v) in raw {
        let value = match v {
            Value::String(s) => s,
            Value::Array(items) => items
                .iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(","),
            _ => {
                return Err(vault_error(
                    StatusCode::BAD_REQUEST,
                    format!("header {k} is neither a string nor a list of strings"),
                ));
            }
        };
        headers.insert(k.to_ascii_lowercase(), value);
    }
    let authorization = headers.get("authorization").cloned().unwrap_or_default();
    let signed_headers: Vec<String> = authorization
        .split("SignedHeaders=")
        .nth(1)
        .and_then(|s| s.split(',').next())
        .map(|s| s.trim().split(';').map(str::to_owned).collect())
        .unwrap_or_default();
    if let Some(expected) = &config.server_id {
        let got = headers.get(&SERVER_ID_HEADER.to_ascii_lowercase());
        match got {
            None => {
                return Err(vault_error(
                    StatusCode::BAD_REQUEST,
                    format!(
                        "error validating {SERVER_ID_HEADER} header: missing header \"{SERVER_ID_HEADER}\""
                    ),
                ));
            }
            Some(v) if v != expected => {
                return Err(vault_error(
                    StatusCode::BAD_REQUEST,
                    format!(
                        "error validating {SERVER_ID_HEADER} header: expected \"{expected}\" but got \"{v}\""
                    ),
                ));
            }
            Some(_) => {}
        }
        if !signed_headers.contains(&SERVER_ID_HEADER.to_ascii_lowercase()) {
            return Err(vault_error(
                StatusCode::BAD_REQUEST,
                format!("error validating {SERVER_ID_HEADER} header: vault header wasn't signed"),
            ));
        }
    }
    let endpoint_region = config.sts_region.clone().unwrap_or(url_region);
    // Real STS refuses a credential scope of another region; moto does not check it.
    let scope_region = authorization
        .split("Credential=")
        .nth(1)
        .and_then(|c| c.split(',').next())
        .and_then(|c| c.split('/').nth(2))
        .unwrap_or_default()
        .to_owned();
    if !scope_region.is_empty() && scope_region != endpoint_region {
        return Err(vault_error(
            StatusCode::BAD_REQUEST,
            format!(
                "error making upstream request: received error code 403 from STS: SignatureDoesNotMatch: \
                 Credential should be scoped to a valid region, not '{scope_region}'"
            ),
        ));
    }
    let mut forward = state
        .http
        .post(format!("{}{}", config.sts_endpoint, parsed.path()))
        .header("host", host.as_str())
        .body(request_body);
    for (k, v) in &headers {
        if k != "host" && k != "content-length" {
            forward = forward.header(k.as_str(), v.as_str());
        }
    }
    let resp = forward.send().await.map_err(|e| {
        vault_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("error making upstream request: {e}"),
        )
    })?;
    let status = resp.status();
    let text = resp.text().await.unwrap_or_default();
    if !status.is_success() {
        let code = xml_text(&text, "Code").unwrap_or_default();
        let message = xml_text(&text, "Message").unwrap_or_default();
        return Err(vault_error(
            StatusCode::BAD_REQUEST,
            format!(
                "error making upstream request: received error code {} from STS: {code}: {message}",
                status.as_u16()
            ),
        ));
    }
    let (Some(arn), Some(account), Some(user_id)) = (
        xml_text(&text, "Arn"),
        xml_text(&text, "Account"),
        xml_text(&text, "UserId"),
    ) else {
        return Err(vault_error(
            StatusCode::BAD_REQUEST,
            format!("error parsing STS response: {text}"),
        ));
    };
    let canonical = canonical_arn(&arn);
    let friendly = canonical.rsplit('/').next().unwrap_or_default().to_owned();
    let role = body
        .get("role")
        .and_then(Value::as_str)
        .filter(|r| !r.is_empty())
        .map(str::to_owned)
        .unwrap_or(friendly);
    state.observed.lock().unwrap().push(ObservedLogin {
        role: role.clone(),
        url: url.clone(),
        headers: headers.clone(),
        signed_headers,
        caller_arn: arn.clone(),
    });
    let Some(bound) = config.roles.get(&role) else {
        return Err(vault_error(
            StatusCode::BAD_REQUEST,
            format!("entry for role {role:?} not found"),
        ));
    };
    let matches = bound.iter().any(|b| match b.strip_suffix('*') {
        Some(prefix) => canonical.starts_with(prefix),
        None => *b == canonical,
    });
    if !matches {
        return Err(vault_error(
            StatusCode::FORBIDDEN,
            format!("IAM Principal {arn:?} does not belong to the role {role:?}"),
        ));
    }
    let n = state.counter.fetch_add(1, Ordering::Relaxed) + 1;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    Ok((
        StatusCode::OK,
        Json(json!({
            "request_id": format!("req-{n}"),
            "lease_id": "",
            "renewable": false,
            "lease_duration": 0,
            "data": null,
            "warnings": null,
            "auth": {
                "client_token": format!("hvs.testkit{n:04}{:012x}", nanos & 0xffff_ffff_ffff),
                "accessor": format!("accessor-{n}"),
                "policies": config.policies,
                "token_policies": config.policies,
                "metadata": {
                    "account_id": account,
                    "auth_type": "iam",
                    "canonical_arn": canonical,
                    "client_arn": arn,
                    "client_user_id": user_id,
                    "role": role,
                },
                "lease_duration": config.ttl,
                "renewable": true,
                "entity_id": format!("entity-{canonical}"),
                "token_type": "service",
                "orphan": true,
            }
        })),
    )
        .into_response())
}

/// Creates an IAM role in moto that `user` may assume (trust policy naming
/// the user, plus a user policy allowing `sts:AssumeRole` on it); returns the
/// role's ARN. Call it before SigV4 verification is enabled.
pub async fn create_assumable_role(
    moto: &crate::Moto,
    name: &str,
    user: &crate::AwsUser,
) -> String {
    let trust = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":"{}"}},"Action":"sts:AssumeRole"}}]}}"#,
        user.arn
    );
    let created = moto
        .iam_call(&[
            ("Action", "CreateRole"),
            ("RoleName", name),
            ("AssumeRolePolicyDocument", &trust),
        ])
        .await;
    let arn = xml_text(&created, "Arn").expect("role ARN in CreateRole answer");
    let policy = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"{arn}"}}]}}"#
    );
    moto.iam_call(&[
        ("Action", "PutUserPolicy"),
        ("UserName", &user.user_name),
        ("PolicyName", &format!("assume-{name}")),
        ("PolicyDocument", &policy),
    ])
    .await;
    arn
}

/// Temporary credentials from [`assume_role_unsigned`].
#[derive(Debug, Clone)]
pub struct TempCredentials {
    /// `ASIA...`
    pub access_key_id: String,
    /// The secret key.
    pub secret_access_key: String,
    /// The session token.
    pub session_token: String,
    /// ISO 8601 expiry as moto gives it.
    pub expiration: String,
}

/// `sts:AssumeRole` through moto's query API with a placeholder signature:
/// call it before SigV4 verification is enabled. moto remembers the
/// temporary key, so requests signed with it verify afterwards (the shape of
/// ECS task-role or Lambda credentials).
pub async fn assume_role_unsigned(
    moto: &crate::Moto,
    role_arn: &str,
    session: &str,
) -> TempCredentials {
    let body = format!(
        "Action=AssumeRole&Version=2011-06-15&RoleArn={}&RoleSessionName={}",
        url_encode(role_arn),
        url_encode(session)
    );
    let resp = crate::http_client()
        .post(moto.endpoint())
        .header("Content-Type", "application/x-www-form-urlencoded")
        .header(
            "Authorization",
            "AWS4-HMAC-SHA256 Credential=AKIATESTKIT/20250101/us-east-1/sts/aws4_request, \
             SignedHeaders=host, Signature=0",
        )
        .body(body)
        .send()
        .await
        .expect("moto AssumeRole");
    let status = resp.status();
    let text = resp.text().await.unwrap_or_default();
    assert!(status.is_success(), "moto AssumeRole: {status}: {text}");
    let get = |tag: &str| xml_text(&text, tag).unwrap_or_else(|| panic!("no <{tag}> in {text}"));
    TempCredentials {
        access_key_id: get("AccessKeyId"),
        secret_access_key: get("SecretAccessKey"),
        session_token: get("SessionToken"),
        expiration: get("Expiration"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assumed_role_arns_resolve_to_the_role() {
        assert_eq!(
            canonical_arn("arn:aws:sts::123456789012:assumed-role/app/session-1"),
            "arn:aws:iam::123456789012:role/app"
        );
        assert_eq!(
            canonical_arn("arn:aws:iam::123456789012:user/bob"),
            "arn:aws:iam::123456789012:user/bob"
        );
        assert_eq!(
            sts_region("sts.eu-west-1.amazonaws.com").as_deref(),
            Some("eu-west-1")
        );
        assert_eq!(sts_region("evil.example.com"), None);
    }
}
