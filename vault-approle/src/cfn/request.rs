//! The event CloudFormation sends: [`CfnRequest`], parsed tolerantly (only
//! `ResponseURL` is required), and the `ResponseURL` salvaged from an event
//! that is not JSON.

use serde_json::{Map, Value};

use super::response::truncate;
use crate::store::Owner;

/// Prefix of the physical id of a failed Create.
pub const FAILED_CREATE_PREFIX: &str = "vault-aws-failed-create-";

/// `RequestType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestType {
    /// A resource is created.
    Create,
    /// Its properties changed.
    Update,
    /// It is deleted (also after a failed Create or a replacement).
    Delete,
}

/// A parsed custom resource event. Only `ResponseURL` is required to answer;
/// everything else missing or malformed is reported in the answer.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct CfnRequest {
    /// The request type, or what was wrong with it.
    pub request_type: std::result::Result<RequestType, String>,
    /// The pre-signed S3 URL the response is PUT to.
    pub response_url: String,
    /// Copied into the response.
    pub stack_id: String,
    /// Copied into the response.
    pub request_id: String,
    /// Copied into the response.
    pub logical_resource_id: String,
    /// Present on Update and Delete.
    pub physical_resource_id: Option<String>,
    /// `ResourceProperties` (string values).
    pub properties: Map<String, Value>,
    /// `OldResourceProperties` (Update only).
    pub old_properties: Option<Map<String, Value>>,
}

pub(super) fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

impl CfnRequest {
    /// Parses an event. `Err` only when there is no usable `ResponseURL`
    /// (nobody can be answered).
    pub fn parse(event: &Value) -> std::result::Result<Self, String> {
        let obj = event
            .as_object()
            .ok_or_else(|| "the event is not a JSON object".to_owned())?;
        let field = |name: &str| obj.get(name).and_then(text).unwrap_or_default();
        let response_url = field("ResponseURL");
        if !(response_url.starts_with("https://") || response_url.starts_with("http://")) {
            return Err("the event has no http(s) ResponseURL: nobody can be answered".into());
        }
        let request_type = match obj.get("RequestType").and_then(text).as_deref() {
            Some("Create") => Ok(RequestType::Create),
            Some("Update") => Ok(RequestType::Update),
            Some("Delete") => Ok(RequestType::Delete),
            Some(other) => Err(format!(
                "unknown RequestType {:?}; expected Create, Update or Delete",
                truncate(other, 64)
            )),
            None => Err("the event has no RequestType".into()),
        };
        let props = |name: &str| obj.get(name).and_then(Value::as_object).cloned();
        Ok(Self {
            request_type,
            response_url,
            stack_id: field("StackId"),
            request_id: field("RequestId"),
            logical_resource_id: field("LogicalResourceId"),
            physical_resource_id: obj
                .get("PhysicalResourceId")
                .and_then(text)
                .filter(|s| !s.is_empty()),
            properties: props("ResourceProperties").unwrap_or_default(),
            old_properties: props("OldResourceProperties"),
        })
    }

    /// The resource as an [`Owner`] (`None` when the event lacks its
    /// StackId or LogicalResourceId).
    pub fn owner(&self) -> Option<Owner> {
        (!self.stack_id.is_empty() && !self.logical_resource_id.is_empty())
            .then(|| Owner::new(&self.stack_id, &self.logical_resource_id))
    }

    /// The deterministic physical id of a failed Create.
    pub fn failed_create_id(&self) -> String {
        let clean = |s: &str| -> String {
            s.chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || c == '-' {
                        c
                    } else {
                        '-'
                    }
                })
                .take(100)
                .collect()
        };
        format!(
            "{FAILED_CREATE_PREFIX}{}-{}",
            clean(&self.logical_resource_id),
            clean(&self.request_id)
        )
    }
}

pub(super) fn salvage_response_url(text: &str) -> Option<String> {
    let start = text.find("\"ResponseURL\"")? + "\"ResponseURL\"".len();
    let rest = text[start..]
        .trim_start()
        .strip_prefix(':')?
        .trim_start()
        .strip_prefix('"')?;
    let end = rest.find('"')?;
    let url = rest[..end].replace("\\/", "/");
    (url.starts_with("https://") || url.starts_with("http://")).then_some(url)
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use serde_json::json;

    /// A Create request, the fixture of the cfn unit tests.
    pub(in crate::cfn) fn request() -> CfnRequest {
        CfnRequest::parse(&json!({
            "RequestType": "Create", "ResponseURL": "http://127.0.0.1:1/r",
            "StackId": "s", "RequestId": "r-1", "LogicalResourceId": "Auth",
        }))
        .unwrap()
    }

    #[test]
    fn events_without_a_response_url_are_refused_and_ids_are_deterministic() {
        assert!(CfnRequest::parse(&json!([1, 2])).is_err());
        assert!(CfnRequest::parse(&json!({"ResponseURL": "ftp://x"})).is_err());
        let a = request().failed_create_id();
        assert_eq!(a, request().failed_create_id());
        assert!(a.starts_with(FAILED_CREATE_PREFIX));
        assert_eq!(
            salvage_response_url(
                r#"{"RequestType":"Cre", "ResponseURL" : "https:\/\/b.s3\/x?sig=1", "Sta"#
            )
            .as_deref(),
            Some("https://b.s3/x?sig=1")
        );
    }
}
