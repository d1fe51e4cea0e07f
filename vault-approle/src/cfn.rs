//! The CloudFormation custom resource protocol (`Custom::VaultAuth`):
//! event parsing, response building and the [`CfnHandler`] that always
//! answers.
//!
//! Properties (strings, as CloudFormation sends them; names are
//! case-insensitive):
//!
//! | property | meaning | default |
//! |---|---|---|
//! | `Service` | service name (policy `<Service>-<Environment>`) | required |
//! | `Environment` | environment name | required |
//! | `Iam` | IAM role name or ARN of the consumers; gives the Vault role name | required |
//! | `TokenTtl`, `TokenMaxTtl`, `SecretIdTtl` | durations: seconds or `30m`, `1h`, `7d` | `1h`, `4h`, `30d` |
//! | `SecretIdNumUses` | integer (0 = unlimited) | `0` shared, `1` wrapped |
//! | `SecretIdBoundCidrs`, `TokenBoundCidrs` | comma-separated CIDRs or a list | none |
//! | `Policies` | extra policies, comma-separated or a list | none |
//! | `Delivery` | `shared` or `wrapped` | the handler's default (`shared`) |
//! | `RoleName` | the Vault role name (two roles for one IAM role name) | derived from `Iam` |
//!
//! CloudFormation's own properties ([`CLOUDFORMATION_PROPERTIES`]:
//! `ServiceToken`, `ServiceTimeout`) are accepted and ignored; an Update
//! changing only them changes and rotates nothing.
//!
//! Ownership: the resource (StackId + LogicalResourceId) that creates a role
//! is recorded with its credentials; a Create or Update onto another
//! resource's role answers FAILED naming the owner, and a Delete from a
//! non-owner answers SUCCESS touching nothing.
//!
//! EventBridge scheduled events ([`is_scheduled_event`]) run the scheduled
//! rotation ([`CfnHandler::scheduled`]).
//!
//! Responses: `PhysicalResourceId` is the Vault role name (stable across
//! updates of the same IAM role); `Data` has `RoleName`, `RoleId` and
//! `CredentialsLocation`. A Create that fails gets the physical id
//! `vault-aws-failed-create-<LogicalResourceId>-<RequestId>`, which Delete
//! recognises and acknowledges without touching Vault.
//!
//! `ResponseURL` must be a pre-signed S3 URL of CloudFormation: `https://`
//! and a host under `amazonaws.com` (or `amazonaws.com.cn`). An event naming
//! any other URL is not acted on and not answered, so whoever can invoke the
//! function cannot make it send requests to hosts of their choice. Other
//! hosts (the Lambda emulator's listener in tests, a private endpoint) are
//! allowed one by one with [`CfnHandler::allow_response_url_hosts`].

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::error::{Error, Result};
use crate::provision::Provisioner;
use crate::spec::{DeliveryMode, RoleSpec, is_valid_role_name};
use crate::store::Owner;

/// Largest response body CloudFormation accepts.
pub const MAX_BODY: usize = 4096;
/// Prefix of the physical id of a failed Create.
pub const FAILED_CREATE_PREFIX: &str = "vault-aws-failed-create-";
/// Default time kept free before the Lambda deadline to send the response.
pub const DEFAULT_DEADLINE_MARGIN: Duration = Duration::from_secs(5);

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

fn text(v: &Value) -> Option<String> {
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

fn truncate(s: &str, max_bytes: usize) -> String {
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

fn prop<'a>(props: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    props
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
}

/// Properties CloudFormation itself adds to `ResourceProperties`: accepted,
/// ignored, and never a change of the resource.
pub const CLOUDFORMATION_PROPERTIES: [&str; 2] = ["ServiceToken", "ServiceTimeout"];

const KNOWN: [&str; 12] = [
    "Service",
    "RoleName",
    "Environment",
    "Iam",
    "TokenTtl",
    "TokenMaxTtl",
    "SecretIdTtl",
    "SecretIdNumUses",
    "SecretIdBoundCidrs",
    "TokenBoundCidrs",
    "Policies",
    "Delivery",
];

fn prop_string(props: &Map<String, Value>, name: &str) -> Result<Option<String>> {
    match prop(props, name) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => text(v).map(|s| Some(s.trim().to_owned())).ok_or_else(|| {
            Error::invalid(format!("property {name}"), "it is not a string", "a string")
        }),
    }
}

fn prop_list(props: &Map<String, Value>, name: &str) -> Result<Vec<String>> {
    match prop(props, name) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| {
                text(v).map(|s| s.trim().to_owned()).ok_or_else(|| {
                    Error::invalid(
                        format!("property {name}"),
                        "a list item is not a string",
                        "a list of strings",
                    )
                })
            })
            .filter(|r| r.as_ref().map_or(true, |s| !s.is_empty()))
            .collect(),
        Some(v) => text(v)
            .map(|s| {
                s.split(',')
                    .map(|p| p.trim().to_owned())
                    .filter(|p| !p.is_empty())
                    .collect()
            })
            .ok_or_else(|| {
                Error::invalid(
                    format!("property {name}"),
                    "it is neither a string nor a list",
                    "comma-separated values or a list",
                )
            }),
    }
}

fn prop_duration(props: &Map<String, Value>, name: &'static str) -> Result<Option<Duration>> {
    let Some(raw) = prop_string(props, name)? else {
        return Ok(None);
    };
    if raw.is_empty() {
        return Ok(None);
    }
    const EXPECTED: &str = "seconds or a duration such as 30m, 1h, 7d";
    if let Some(days) = raw.strip_suffix('d') {
        return days
            .trim()
            .parse::<u64>()
            .ok()
            .and_then(|d| d.checked_mul(86_400))
            .map(|s| Some(Duration::from_secs(s)))
            .ok_or_else(|| {
                Error::invalid(
                    format!("property {name}"),
                    format!("got {:?}", truncate(&raw, 64)),
                    EXPECTED,
                )
            });
    }
    vault_client::parse_duration(name, &raw)
        .map(Some)
        .map_err(|_| {
            Error::invalid(
                format!("property {name}"),
                format!("got {:?}", truncate(&raw, 64)),
                EXPECTED,
            )
        })
}

/// The properties that describe the resource: `props` without
/// [`CLOUDFORMATION_PROPERTIES`], keys lower-cased (property names are
/// case-insensitive).
fn own_properties(props: &Map<String, Value>) -> std::collections::BTreeMap<String, &Value> {
    props
        .iter()
        .filter(|(k, _)| {
            !CLOUDFORMATION_PROPERTIES
                .iter()
                .any(|c| c.eq_ignore_ascii_case(k))
        })
        .map(|(k, v)| (k.to_ascii_lowercase(), v))
        .collect()
}

/// An error with every cause of its chain that its own message does not
/// already say, e.g. `token login failed: cannot look up the token: error
/// sending request for url (https://vault:8200/...): tcp connect error:
/// Connection refused`. The crate's errors never hold a secret, nor do the
/// causes they keep.
pub fn with_causes(error: &(dyn std::error::Error + 'static)) -> String {
    let mut message = error.to_string();
    let mut cause = error.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !text.is_empty() && !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        cause = c.source();
    }
    message
}

/// Builds a [`RoleSpec`] from `ResourceProperties`; `default_delivery` is used
/// when there is no `Delivery` property.
pub fn spec_from_properties(
    props: &Map<String, Value>,
    default_delivery: DeliveryMode,
) -> Result<RoleSpec> {
    if let Some(unknown) = props.keys().find(|k| {
        !KNOWN
            .iter()
            .chain(CLOUDFORMATION_PROPERTIES.iter())
            .any(|known| known.eq_ignore_ascii_case(k))
    }) {
        return Err(Error::invalid(
            format!("property {}", truncate(unknown, 64)),
            "it is not a known property",
            format!("one of {}", KNOWN.join(", ")),
        ));
    }
    let required = |name: &str| -> Result<String> {
        prop_string(props, name)?
            .filter(|s| !s.is_empty())
            .ok_or_else(|| {
                Error::invalid(
                    format!("property {name}"),
                    "it is missing or empty",
                    "a non-empty string",
                )
            })
    };
    let mut builder = RoleSpec::builder(
        required("Service")?,
        required("Environment")?,
        required("Iam")?,
    );
    if let Some(d) = prop_duration(props, "TokenTtl")? {
        builder = builder.token_ttl(d);
    }
    if let Some(d) = prop_duration(props, "TokenMaxTtl")? {
        builder = builder.token_max_ttl(d);
    }
    if let Some(d) = prop_duration(props, "SecretIdTtl")? {
        builder = builder.secret_id_ttl(d);
    }
    if let Some(raw) = prop_string(props, "SecretIdNumUses")?.filter(|s| !s.is_empty()) {
        let uses = raw.parse::<u64>().map_err(|_| {
            Error::invalid(
                "property SecretIdNumUses",
                format!("got {:?}", truncate(&raw, 64)),
                "a non-negative integer",
            )
        })?;
        builder = builder.secret_id_num_uses(uses);
    }
    let delivery = match prop_string(props, "Delivery")?.filter(|s| !s.is_empty()) {
        Some(raw) => raw.parse::<DeliveryMode>().map_err(|_| {
            Error::invalid(
                "property Delivery",
                format!("got {:?}", truncate(&raw, 64)),
                "shared or wrapped",
            )
        })?,
        None => default_delivery,
    };
    if let Some(name) = prop_string(props, "RoleName")?.filter(|s| !s.is_empty()) {
        builder = builder.vault_role(name);
    }
    builder
        .secret_id_bound_cidrs(prop_list(props, "SecretIdBoundCidrs")?)
        .token_bound_cidrs(prop_list(props, "TokenBoundCidrs")?)
        .extra_policies(prop_list(props, "Policies")?)
        .delivery(delivery)
        .build()
}

/// What [`CfnHandler::handle`] did.
#[derive(Debug)]
#[non_exhaustive]
pub struct HandleOutcome {
    /// The response (absent when the event had no ResponseURL).
    pub response: Option<CfnResponse>,
    /// Whether the response was delivered (`Err` says why not).
    pub delivered: std::result::Result<(), String>,
}

impl HandleOutcome {
    /// A summary for the Lambda result and logs (nothing secret).
    pub fn summary(&self) -> Value {
        match &self.response {
            Some(r) => json!({
                "Status": r.status,
                "PhysicalResourceId": r.physical_resource_id,
                "Reason": r.reason,
                "Delivered": self.delivered.is_ok(),
            }),
            None => json!({ "Delivered": false, "Error": self.delivered.as_ref().err() }),
        }
    }
}

/// Answers custom resource events: runs the operation against a deadline and
/// always PUTs a response to `ResponseURL` (success, failure, invalid
/// properties, configuration error, panic, or the deadline coming near).
#[derive(Debug, Clone)]
pub struct CfnHandler {
    provisioner: std::result::Result<Arc<Provisioner>, String>,
    http: reqwest::Client,
    margin: Duration,
    default_delivery: DeliveryMode,
    extra_response_hosts: Vec<String>,
    rotate_below: f64,
}

struct Done {
    status: Status,
    physical_id: String,
    reason: String,
    data: Map<String, Value>,
}

impl Done {
    fn failed(physical_id: String, reason: impl Into<String>) -> Self {
        Self {
            status: Status::Failed,
            physical_id,
            reason: reason.into(),
            data: Map::new(),
        }
    }
}

impl CfnHandler {
    /// A handler provisioning with `provisioner`.
    pub fn new(provisioner: Arc<Provisioner>) -> Self {
        Self::with(Ok(provisioner))
    }

    /// A handler whose configuration failed: it answers every event FAILED
    /// with `reason` (except Deletes with nothing to delete), so no stack
    /// hangs.
    pub fn unconfigured(reason: impl Into<String>) -> Self {
        Self::with(Err(reason.into()))
    }

    fn with(provisioner: std::result::Result<Arc<Provisioner>, String>) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap_or_default();
        Self {
            provisioner,
            http,
            margin: DEFAULT_DEADLINE_MARGIN,
            default_delivery: DeliveryMode::Shared,
            extra_response_hosts: Vec::new(),
            rotate_below: crate::provision::DEFAULT_ROTATE_BELOW,
        }
    }

    /// Hosts allowed in `ResponseURL` besides CloudFormation's
    /// (`https://…amazonaws.com`), matched exactly (case-insensitive, port
    /// ignored), over http or https: the listener of a test or of the Lambda
    /// emulator, or a private CloudFormation-compatible endpoint.
    pub fn allow_response_url_hosts<I, S>(mut self, hosts: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.extra_response_hosts.extend(
            hosts
                .into_iter()
                .map(|h| h.into().trim().to_ascii_lowercase()),
        );
        self
    }

    /// `Ok` when `url` may be answered: CloudFormation's pre-signed S3 URLs
    /// or an allowed host. The error names the host, never the signature.
    fn check_response_url(&self, url: &str) -> std::result::Result<(), String> {
        let parsed = reqwest::Url::parse(url)
            .map_err(|e| format!("the event's ResponseURL is not a valid URL ({e})"))?;
        let host = parsed.host_str().unwrap_or_default().to_ascii_lowercase();
        if self.extra_response_hosts.contains(&host) {
            return Ok(());
        }
        let cloudformation = parsed.scheme() == "https"
            && (host.ends_with(".amazonaws.com") || host.ends_with(".amazonaws.com.cn"));
        if cloudformation {
            Ok(())
        } else {
            Err(format!(
                "the event's ResponseURL ({}://{host}) is not CloudFormation's \
                 (https://…amazonaws.com): not acting on it and not answering; \
                 allow other hosts with VAULT_APPROLE_RESPONSE_URL_HOSTS",
                parsed.scheme()
            ))
        }
    }

    /// Time kept free before the deadline to answer (default 5 s). When the
    /// time left is less than twice the margin (Lambda's default timeout is
    /// 3 s), a third of it is kept instead, so the work still gets a budget.
    pub fn deadline_margin(mut self, margin: Duration) -> Self {
        self.margin = margin;
        self
    }

    /// The margin used when `left` is the time until the deadline.
    fn margin_for(&self, left: Duration) -> Duration {
        if left >= self.margin * 2 {
            return self.margin;
        }
        let margin = left / 3;
        tracing::warn!(
            left_ms = left.as_millis() as u64,
            margin_ms = margin.as_millis() as u64,
            configured_margin_ms = self.margin.as_millis() as u64,
            "the invocation has less than twice the deadline margin left (is the function's Timeout short?): working with two thirds of it; raise the Timeout to 30 s or more"
        );
        margin
    }

    /// The fraction of a secret_id's TTL under which the scheduled rotation
    /// replaces it (default one third).
    pub fn rotate_below(mut self, fraction: f64) -> Self {
        self.rotate_below = fraction;
        self
    }

    /// Runs the scheduled rotation ([`Provisioner::rotate_due`]) and logs
    /// its summary as one structured line. `Ok` is the summary
    /// (`{"rotated": [...], "skipped": [...], "failed": [...]}`, each entry
    /// `{role, detail}`); `Err` when the run could not start or a role
    /// failed (the summary is then in the message).
    pub async fn scheduled(
        &self,
        deadline: Option<SystemTime>,
    ) -> std::result::Result<Value, String> {
        let provisioner = match &self.provisioner {
            Ok(p) => p,
            Err(e) => {
                let message = format!("scheduled rotation: the function is misconfigured: {e}");
                tracing::error!(error = %message, "scheduled rotation not run");
                return Err(message);
            }
        };
        let until = deadline.map(|d| {
            let left = d.duration_since(SystemTime::now()).unwrap_or_default();
            SystemTime::now() + left.saturating_sub(self.margin_for(left))
        });
        let report = match provisioner.rotate_due(self.rotate_below, until).await {
            Ok(r) => r,
            Err(e) => {
                let message = format!("scheduled rotation failed: {}", with_causes(&e));
                tracing::error!(error = %message, "scheduled rotation not run");
                return Err(message);
            }
        };
        let summary = serde_json::to_value(&report).unwrap_or_default();
        if report.failed.is_empty() {
            tracing::info!(
                rotated = report.rotated.len(),
                skipped = report.skipped.len(),
                failed = 0,
                summary = %summary,
                "scheduled rotation"
            );
            Ok(summary)
        } else {
            tracing::error!(
                rotated = report.rotated.len(),
                skipped = report.skipped.len(),
                failed = report.failed.len(),
                summary = %summary,
                "scheduled rotation"
            );
            Err(format!(
                "scheduled rotation: {} of {} roles failed: {summary}",
                report.failed.len(),
                report.rotated.len() + report.skipped.len() + report.failed.len()
            ))
        }
    }

    /// Delivery mode when the resource has no `Delivery` property.
    pub fn default_delivery(mut self, mode: DeliveryMode) -> Self {
        self.default_delivery = mode;
        self
    }

    /// Handles raw event bytes. Bytes that are not JSON still get a FAILED
    /// answer when a `ResponseURL` can be found in them.
    pub async fn handle_bytes(&self, bytes: &[u8], deadline: Option<SystemTime>) -> HandleOutcome {
        match serde_json::from_slice::<Value>(bytes) {
            Ok(event) => self.handle(event, deadline).await,
            Err(e) => {
                let text = String::from_utf8_lossy(bytes);
                let Some(url) = salvage_response_url(&text) else {
                    return HandleOutcome {
                        response: None,
                        delivered: Err(format!(
                            "the event is not JSON ({e}) and has no ResponseURL"
                        )),
                    };
                };
                let event = json!({ "ResponseURL": url, "RequestType": "Invalid" });
                let Ok(request) = CfnRequest::parse(&event) else {
                    return HandleOutcome {
                        response: None,
                        delivered: Err("the event's ResponseURL is not usable".into()),
                    };
                };
                if let Err(e) = self.check_response_url(&request.response_url) {
                    tracing::error!(error = %e, "refusing the event");
                    return HandleOutcome {
                        response: None,
                        delivered: Err(e),
                    };
                }
                let response = CfnResponse::new(
                    &request,
                    Status::Failed,
                    request.failed_create_id(),
                    format!("the event is not valid JSON: {e}"),
                );
                let delivered = self.send(&request, &response, deadline).await;
                HandleOutcome {
                    response: Some(response),
                    delivered,
                }
            }
        }
    }

    /// Handles one event and PUTs the response; `deadline` is the Lambda
    /// invocation's deadline.
    pub async fn handle(&self, event: Value, deadline: Option<SystemTime>) -> HandleOutcome {
        let request = match CfnRequest::parse(&event)
            .and_then(|r| self.check_response_url(&r.response_url).map(|()| r))
        {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "cannot answer the event");
                return HandleOutcome {
                    response: None,
                    delivered: Err(e),
                };
            }
        };
        tracing::info!(
            request_type = ?request.request_type,
            stack = %request.stack_id,
            logical = %request.logical_resource_id,
            physical = ?request.physical_resource_id,
            "custom resource event"
        );
        let fallback_id = match (&request.request_type, &request.physical_resource_id) {
            (_, Some(id)) => id.clone(),
            _ => request.failed_create_id(),
        };
        let work = tokio::spawn(process(
            self.provisioner.clone(),
            request.clone(),
            self.default_delivery,
        ));
        let abort = work.abort_handle();
        let (budget, margin) = match deadline {
            Some(d) => {
                let left = d.duration_since(SystemTime::now()).unwrap_or_default();
                let margin = self.margin_for(left);
                (Some(left.saturating_sub(margin)), margin)
            }
            None => (None, self.margin),
        };
        let joined = match budget {
            Some(budget) => match tokio::time::timeout(budget, work).await {
                Ok(j) => Some(j),
                Err(_) => {
                    abort.abort();
                    None
                }
            },
            None => Some(work.await),
        };
        let done = match joined {
            Some(Ok(done)) => done,
            Some(Err(e)) => Done::failed(
                fallback_id,
                format!(
                    "internal error: the operation {}",
                    if e.is_panic() {
                        "panicked"
                    } else {
                        "was cancelled"
                    }
                ),
            ),
            None => Done::failed(
                fallback_id,
                if margin < self.margin {
                    format!(
                        "timed out: the function's timeout is shorter than twice the {:.1}s kept to answer CloudFormation, so the work had only {:.1}s; vault or S3 did not answer in time. Raise the function's Timeout (30 s or more), then retry",
                        self.margin.as_secs_f64(),
                        budget.unwrap_or_default().as_secs_f64()
                    )
                } else {
                    format!(
                        "timed out: the Lambda deadline was near ({:.1}s margin); vault or S3 did not answer in time. Check the function's network access and timeout, then retry",
                        margin.as_secs_f64()
                    )
                },
            ),
        };
        let mut response = CfnResponse::new(&request, done.status, done.physical_id, done.reason);
        response.data = done.data;
        match response.status {
            Status::Success => tracing::info!(physical = %response.physical_resource_id, "SUCCESS"),
            Status::Failed => {
                tracing::error!(physical = %response.physical_resource_id, reason = %response.reason, "FAILED")
            }
        }
        let delivered = self.send(&request, &response, deadline).await;
        if let Err(e) = &delivered {
            tracing::error!(error = %e, "cannot deliver the response to CloudFormation");
        }
        HandleOutcome {
            response: Some(response),
            delivered,
        }
    }

    /// PUTs `response` (empty Content-Type), retrying transport errors and
    /// 5xx up to three times while the deadline allows.
    async fn send(
        &self,
        request: &CfnRequest,
        response: &CfnResponse,
        deadline: Option<SystemTime>,
    ) -> std::result::Result<(), String> {
        let body = response.to_body();
        let mut last = String::new();
        for attempt in 0..3u32 {
            if attempt > 0 {
                let delay = Duration::from_millis(500 * u64::from(attempt));
                let left =
                    deadline.map(|d| d.duration_since(SystemTime::now()).unwrap_or_default());
                if left.is_some_and(|l| l < delay + Duration::from_secs(1)) {
                    break;
                }
                tokio::time::sleep(delay).await;
            }
            let result = self
                .http
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
}

/// Whether `event` is an EventBridge scheduled event (`"detail-type":
/// "Scheduled Event"`), which runs [`CfnHandler::scheduled`].
pub fn is_scheduled_event(event: &Value) -> bool {
    event.get("detail-type").and_then(Value::as_str) == Some("Scheduled Event")
        && event.get("ResponseURL").is_none()
}

fn salvage_response_url(text: &str) -> Option<String> {
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

async fn process(
    provisioner: std::result::Result<Arc<Provisioner>, String>,
    request: CfnRequest,
    default_delivery: DeliveryMode,
) -> Done {
    let request_type = match &request.request_type {
        Ok(t) => *t,
        Err(e) => {
            let id = request
                .physical_resource_id
                .clone()
                .unwrap_or_else(|| request.failed_create_id());
            return Done::failed(id, e.clone());
        }
    };
    match request_type {
        RequestType::Create => {
            let id = request.failed_create_id();
            let provisioner = match provisioner {
                Ok(p) => p,
                Err(e) => return Done::failed(id, format!("the function is misconfigured: {e}")),
            };
            let spec = match spec_from_properties(&request.properties, default_delivery) {
                Ok(s) => s.owned_by(request.owner()),
                Err(e) => return Done::failed(id, e.to_string()),
            };
            match provisioner.provision(&spec).await {
                Ok(p) => success(p, "created"),
                Err(e) => Done::failed(id, format!("create failed: {}", with_causes(&e))),
            }
        }
        RequestType::Update => {
            let old_id = request
                .physical_resource_id
                .clone()
                .unwrap_or_else(|| request.failed_create_id());
            let provisioner = match provisioner {
                Ok(p) => p,
                Err(e) => {
                    return Done::failed(old_id, format!("the function is misconfigured: {e}"));
                }
            };
            let spec = match spec_from_properties(&request.properties, default_delivery) {
                Ok(s) => s.owned_by(request.owner()),
                Err(e) => return Done::failed(old_id, e.to_string()),
            };
            let new_name = match spec.role_name() {
                Ok(n) => n,
                Err(e) => return Done::failed(old_id, e.to_string()),
            };
            let unchanged = request
                .old_properties
                .as_ref()
                .is_some_and(|old| own_properties(old) == own_properties(&request.properties));
            if new_name == old_id && unchanged {
                // Only ServiceToken or ServiceTimeout changed (or nothing):
                // not a change of the resource, nothing is rotated.
                match provisioner.current(&spec).await {
                    Ok(Some(p)) => return success(p, "unchanged"),
                    Ok(None) => {} // gone: converge below
                    Err(e) => {
                        return Done::failed(old_id, format!("update failed: {}", with_causes(&e)));
                    }
                }
            }
            if new_name == old_id {
                match provisioner.update(&spec).await {
                    Ok(p) => success(p, "updated in place"),
                    Err(e) => Done::failed(old_id, format!("update failed: {}", with_causes(&e))),
                }
            } else {
                // A new IAM role: a new Vault role and a new physical id;
                // CloudFormation then deletes the old one. The same for a
                // resource of the serverless AppRole manager: its role is
                // adopted under the new id.
                let what = if is_legacy_physical_id(&old_id) {
                    "adopted from the serverless AppRole manager"
                } else {
                    "replaced (new IAM role)"
                };
                match provisioner.provision(&spec).await {
                    Ok(p) => success(p, what),
                    Err(e) => Done::failed(
                        old_id,
                        format!("update (replacement) failed: {}", with_causes(&e)),
                    ),
                }
            }
        }
        RequestType::Delete => {
            let Some(id) = request.physical_resource_id.clone() else {
                return Done {
                    status: Status::Success,
                    physical_id: request.failed_create_id(),
                    reason: "nothing to delete (no PhysicalResourceId)".into(),
                    data: Map::new(),
                };
            };
            if is_legacy_physical_id(&id) {
                return match provisioner {
                    Ok(p) => delete_legacy(&p, &request, id, default_delivery).await,
                    Err(e) => Done::failed(id, format!("the function is misconfigured: {e}")),
                };
            }
            if id.starts_with(FAILED_CREATE_PREFIX) || !is_valid_role_name(&id) {
                return Done {
                    status: Status::Success,
                    reason: "nothing to delete (the resource was never created)".into(),
                    physical_id: id,
                    data: Map::new(),
                };
            }
            let provisioner = match provisioner {
                Ok(p) => p,
                Err(e) => return Done::failed(id, format!("the function is misconfigured: {e}")),
            };
            // The object's name: the role name, or in the old layout the
            // name the properties give for this role.
            let key = spec_from_properties(&request.properties, default_delivery)
                .ok()
                .filter(|s| s.role_name().ok().as_deref() == Some(id.as_str()))
                .and_then(|s| provisioner.store_key(&s).ok())
                .unwrap_or_else(|| id.clone());
            match provisioner.owner_of_role(&id, &key).await {
                Ok(Some(owner)) if Some(&owner) != request.owner().as_ref() => {
                    // Another resource's role: CloudFormation may delete this
                    // resource, but the role stays.
                    return Done {
                        status: Status::Success,
                        reason: format!(
                            "nothing deleted: role {id} belongs to {owner}, not to this resource"
                        ),
                        physical_id: id,
                        data: Map::new(),
                    };
                }
                Ok(_) => {}
                Err(e) => {
                    return Done::failed(id, format!("delete failed: {}", with_causes(&e)));
                }
            }
            match provisioner.deprovision_keyed(&id, &key).await {
                Ok(()) => Done {
                    status: Status::Success,
                    reason: format!("deleted role {id} and its credentials"),
                    physical_id: id,
                    data: Map::new(),
                },
                Err(e) => Done::failed(id, format!("delete failed: {}", with_causes(&e))),
            }
        }
    }
}

/// Whether `id` is a physical id of kickstarter's serverless AppRole
/// manager: the Lambda log stream name of the invocation that created the
/// resource, `YYYY/MM/DD/[<version>]<hex>`.
pub fn is_legacy_physical_id(id: &str) -> bool {
    let b = id.as_bytes();
    let digits =
        |r: std::ops::Range<usize>| b.get(r).is_some_and(|d| d.iter().all(u8::is_ascii_digit));
    let Some(close) = id.find(']') else {
        return false;
    };
    let hex = &id[close + 1..];
    id.len() > 12
        && digits(0..4)
        && b[4] == b'/'
        && digits(5..7)
        && b[7] == b'/'
        && digits(8..10)
        && b[10] == b'/'
        && b[11] == b'['
        && !hex.is_empty()
        && hex.bytes().all(|c| c.is_ascii_hexdigit())
}

/// A Delete carrying a serverless AppRole manager physical id: when the
/// role named by the properties was adopted (it has an owner record),
/// nothing is deleted (CloudFormation deletes the old id after the Update
/// that adopted it); otherwise the role and its credentials are cleaned up,
/// as the old tool would have done.
async fn delete_legacy(
    provisioner: &Provisioner,
    request: &CfnRequest,
    id: String,
    default_delivery: DeliveryMode,
) -> Done {
    let spec = match spec_from_properties(&request.properties, default_delivery) {
        Ok(s) => s,
        Err(e) => {
            return Done {
                status: Status::Success,
                reason: format!(
                    "nothing deleted: a serverless AppRole manager resource whose properties name no role ({e})"
                ),
                physical_id: id,
                data: Map::new(),
            };
        }
    };
    let (role, key) = match (spec.role_name(), provisioner.store_key(&spec)) {
        (Ok(r), Ok(k)) => (r, k),
        (Err(e), _) | (_, Err(e)) => {
            return Done {
                status: Status::Success,
                reason: format!("nothing deleted: {e}"),
                physical_id: id,
                data: Map::new(),
            };
        }
    };
    match provisioner.owner_of_role(&role, &key).await {
        Ok(Some(owner)) => Done {
            status: Status::Success,
            reason: format!(
                "nothing deleted: role {role} was adopted by {owner} (this is the serverless AppRole manager's old id)"
            ),
            physical_id: id,
            data: Map::new(),
        },
        Ok(None) => match provisioner.deprovision_keyed(&role, &key).await {
            Ok(()) => Done {
                status: Status::Success,
                reason: format!(
                    "deleted role {role} and its credentials (a serverless AppRole manager resource)"
                ),
                physical_id: id,
                data: Map::new(),
            },
            Err(e) => Done::failed(id, format!("delete failed: {}", with_causes(&e))),
        },
        Err(e) => Done::failed(id, format!("delete failed: {}", with_causes(&e))),
    }
}

fn success(p: crate::provision::Provisioned, what: &str) -> Done {
    let mut data = Map::new();
    data.insert("RoleName".into(), json!(p.role_name));
    data.insert("RoleId".into(), json!(p.role_id));
    data.insert("CredentialsLocation".into(), json!(p.location));
    Done {
        status: Status::Success,
        reason: format!(
            "{what}: role {}, credentials at {}",
            p.role_name, p.location
        ),
        physical_id: p.role_name,
        data,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> CfnRequest {
        CfnRequest::parse(&json!({
            "RequestType": "Create", "ResponseURL": "http://127.0.0.1:1/r",
            "StackId": "s", "RequestId": "r-1", "LogicalResourceId": "Auth",
        }))
        .unwrap()
    }

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

    #[test]
    fn properties_parse_tolerantly_with_clear_errors() {
        let props = json!({
            "ServiceToken": "arn:aws:lambda:...", "Service": "Shop", "Environment": "dev",
            "Iam": "arn:aws:iam::1:role/x/ShopTask", "TokenTtl": "30m", "SecretIdTtl": "7d",
            "SecretIdNumUses": "5", "SecretIdBoundCidrs": "10.0.0.0/16, 10.1.0.0/16",
            "policies": ["common-read"], "TokenMaxTtl": 7200
        });
        let spec = spec_from_properties(props.as_object().unwrap(), DeliveryMode::Shared).unwrap();
        assert_eq!(spec.role_name().unwrap(), "shoptask");
        assert_eq!(spec.token_ttl, Duration::from_secs(1800));
        assert_eq!(spec.token_max_ttl, Duration::from_secs(7200));
        assert_eq!(spec.secret_id_ttl, Duration::from_secs(7 * 86400));
        assert_eq!(spec.secret_id_num_uses, 5);
        assert_eq!(spec.secret_id_bound_cidrs.len(), 2);
        assert_eq!(spec.policies(), vec!["shop-dev", "common-read"]);
        for (props, needle) in [
            (
                json!({"Service": "s", "Environment": "d"}),
                "property Iam: it is missing",
            ),
            (
                json!({"Service": "s", "Environment": "d", "Iam": "r", "TokenTTL": "soon"}),
                "property TokenTtl",
            ),
            (
                json!({"Service": "s", "Environment": "d", "Iam": "r", "Colour": "red"}),
                "property Colour: it is not a known property",
            ),
            (
                json!({"Service": {"a": 1}, "Environment": "d", "Iam": "r"}),
                "property Service: it is not a string",
            ),
            (
                json!({"Service": "s", "Environment": "d", "Iam": "r", "Delivery": "pigeon"}),
                "property Delivery",
            ),
        ] {
            let err =
                spec_from_properties(props.as_object().unwrap(), DeliveryMode::Shared).unwrap_err();
            assert!(err.to_string().contains(needle), "{err}");
        }
    }

    #[test]
    fn only_cloudformation_response_urls_are_answered_unless_a_host_is_allowed() {
        let handler = CfnHandler::unconfigured("test");
        for ok in [
            "https://cloudformation-custom-resource-response-useast1.s3.amazonaws.com/arn%3A?X-Amz-Signature=s",
            "https://cloudformation-custom-resource-response-cnnorth1.s3.cn-north-1.amazonaws.com.cn/x",
            "https://CFN.S3-External-1.AmazonAWS.com/x",
        ] {
            assert!(handler.check_response_url(ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://cloudformation-custom-resource-response-useast1.s3.amazonaws.com/x",
            "https://amazonaws.com.evil.example/x",
            "https://evil-amazonaws.com/x",
            "https://169.254.169.254/latest/meta-data/",
            "http://127.0.0.1:8080/r",
            "not a url",
        ] {
            let e = handler.check_response_url(bad).unwrap_err();
            assert!(!e.contains("X-Amz-Signature"), "{e}");
        }
        let e = handler
            .check_response_url("https://example.com/r?X-Amz-Signature=secret")
            .unwrap_err();
        assert!(
            e.contains("https://example.com") && !e.contains("secret"),
            "{e}"
        );
        let local = CfnHandler::unconfigured("test").allow_response_url_hosts([" 127.0.0.1 "]);
        assert!(local.check_response_url("http://127.0.0.1:8080/r").is_ok());
        assert!(local.check_response_url("http://127.0.0.2:8080/r").is_err());
    }

    #[test]
    fn legacy_physical_ids_are_log_stream_names() {
        for id in [
            "2025/03/14/[$LATEST]0f1e2d3c4b5a69788796a5b4c3d2e1f0",
            "2019/11/02/[12]abcdef",
        ] {
            assert!(is_legacy_physical_id(id), "{id}");
        }
        for id in [
            "shoptask",
            "2025/03/14/shoptask",
            "2025/03/14/[$LATEST]",
            "2025/03/14/[$LATEST]xyz",
            "25/03/14/[$LATEST]0f",
            "vault-aws-failed-create-a-b",
            "",
        ] {
            assert!(!is_legacy_physical_id(id), "{id}");
        }
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
