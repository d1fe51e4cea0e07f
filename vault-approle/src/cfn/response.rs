//! The answer to CloudFormation: [`CfnResponse`], its JSON body within
//! [`MAX_BODY`] bytes, and the PUT to `ResponseURL`.

use std::time::{Duration, SystemTime};

use serde::Serialize;
use serde_json::{Map, Value};

use super::request::CfnRequest;

/// Largest response body CloudFormation accepts.
pub const MAX_BODY: usize = 4096;

/// `Status` of a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Status {
    /// The operation succeeded.
    Success,
    /// It failed; `Reason` says why.
    Failed,
}

/// The response PUT to `ResponseURL`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
#[non_exhaustive]
pub struct CfnResponse {
    /// SUCCESS or FAILED.
    pub status: Status,
    /// What happened or failed.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub reason: String,
    /// The Vault role name (or the failed-create placeholder).
    pub physical_resource_id: String,
    /// Copied from the request.
    pub stack_id: String,
    /// Copied from the request.
    pub request_id: String,
    /// Copied from the request.
    pub logical_resource_id: String,
    /// Always false: `Data` holds nothing secret.
    pub no_echo: bool,
    /// `RoleName`, `RoleId`, `CredentialsLocation`.
    pub data: Map<String, Value>,
}

pub(super) fn truncate(s: &str, max_bytes: usize) -> String {
    if s.len() <= max_bytes {
        return s.to_owned();
    }
    let mut end = max_bytes;
    while end > 0 && !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_owned()
}

impl CfnResponse {
    /// A response to `request`.
    pub fn new(
        request: &CfnRequest,
        status: Status,
        physical_resource_id: String,
        reason: String,
    ) -> Self {
        Self {
            status,
            reason,
            physical_resource_id,
            stack_id: request.stack_id.clone(),
            request_id: request.request_id.clone(),
            logical_resource_id: request.logical_resource_id.clone(),
            no_echo: false,
            data: Map::new(),
        }
    }

    /// The JSON body, at most [`MAX_BODY`] bytes: the reason is shortened
    /// first (ending in `...`), then over-long ids, then `Data`.
    pub fn to_body(&self) -> Vec<u8> {
        let mut r = self.clone();
        r.physical_resource_id = truncate(&r.physical_resource_id, 1024);
        if r.physical_resource_id.is_empty() {
            r.physical_resource_id = "vault-aws-unknown".into();
        }
        for _ in 0..64 {
            let body = serde_json::to_vec(&r).unwrap_or_default();
            if body.len() <= MAX_BODY && !body.is_empty() {
                return body;
            }
            let over = body.len().saturating_sub(MAX_BODY);
            if r.reason.len() > 3 {
                let keep = r.reason.len().saturating_sub(over.max(16) + 3);
                r.reason = format!("{}...", truncate(&r.reason, keep));
            } else if r.stack_id.len() > 1024
                || r.request_id.len() > 1024
                || r.logical_resource_id.len() > 1024
            {
                r.stack_id = truncate(&r.stack_id, 1024);
                r.request_id = truncate(&r.request_id, 1024);
                r.logical_resource_id = truncate(&r.logical_resource_id, 1024);
            } else if !r.data.is_empty() {
                r.data.clear();
            } else {
                r.stack_id = truncate(&r.stack_id, r.stack_id.len() / 2);
                r.request_id = truncate(&r.request_id, r.request_id.len() / 2);
                r.logical_resource_id =
                    truncate(&r.logical_resource_id, r.logical_resource_id.len() / 2);
                r.physical_resource_id =
                    truncate(&r.physical_resource_id, r.physical_resource_id.len() / 2);
            }
        }
        br#"{"Status":"FAILED","Reason":"response too large","PhysicalResourceId":"vault-aws-unknown"}"#.to_vec()
    }
}

/// PUTs `response` (empty Content-Type), retrying transport errors and
/// 5xx up to three times while the deadline allows.
pub(super) async fn send(
    http: &reqwest::Client,
    request: &CfnRequest,
    response: &CfnResponse,
    deadline: Option<SystemTime>,
) -> std::result::Result<(), String> {
    let body = response.to_body();
    let mut last = String::new();
    for attempt in 0..3u32 {
        if attempt > 0 {
            let delay = Duration::from_millis(500 * u64::from(attempt));
            let left = deadline.map(|d| {
                d.duration_since(vault_client::clock::wall())
                    .unwrap_or_default()
            });
            if left.is_some_and(|l| l < delay + Duration::from_secs(1)) {
                break;
            }
            tokio::time::sleep(delay).await;
        }
        let result = http
            .put(&request.response_url)
            .header(reqwest::header::CONTENT_TYPE, "")
            .body(body.clone())
            .send()
            .await;
        match result {
            Ok(r) if r.status().is_success() => return Ok(()),
            Ok(r) if r.status().is_server_error() => {
                last = format!("ResponseURL answered {}", r.status())
            }
            Ok(r) => return Err(format!("ResponseURL answered {}", r.status())),
            Err(e) if e.is_builder() => return Err(format!("invalid ResponseURL: {e}")),
            // reqwest's message may carry the URL, whose query is a signature: drop it.
            Err(e) => last = format!("cannot PUT the response: {}", e.without_url()),
        }
    }
    Err(last)
}

#[cfg(test)]
mod tests {
    use super::super::request::tests::request;
    use super::*;

    #[test]
    fn bodies_never_exceed_4096_bytes() {
        let req = request();
        for reason in ["x".repeat(10_000), "\u{0}".repeat(5000), "é".repeat(4000)] {
            let mut r = CfnResponse::new(&req, Status::Failed, "id".into(), reason);
            r.stack_id = "s".repeat(3000);
            let body = r.to_body();
            assert!(body.len() <= MAX_BODY, "{}", body.len());
            let v: Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(v["Status"], "FAILED");
            assert!(v["Reason"].as_str().unwrap().ends_with("..."));
        }
    }
}
