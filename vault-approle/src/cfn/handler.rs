//! [`CfnHandler`]: answers every event it can answer, within the Lambda
//! deadline less a margin, whatever happens to the operation; and the
//! scheduled rotation.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde_json::{Value, json};

use super::operation::{Done, process};
use super::request::{CfnRequest, salvage_response_url};
use super::response::{CfnResponse, Status, send};
use crate::provision::Provisioner;
use crate::spec::DeliveryMode;
use vault_client::error_chain;

/// Default time kept free before the Lambda deadline to send the response.
pub const DEFAULT_DEADLINE_MARGIN: Duration = Duration::from_secs(5);

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
            let left = d
                .duration_since(vault_client::clock::wall())
                .unwrap_or_default();
            vault_client::clock::wall() + left.saturating_sub(self.margin_for(left))
        });
        let report = match provisioner.rotate_due(self.rotate_below, until).await {
            Ok(r) => r,
            Err(e) => {
                let message = format!("scheduled rotation failed: {}", error_chain(&e));
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
                let delivered = send(&self.http, &request, &response, deadline).await;
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
                let left = d
                    .duration_since(vault_client::clock::wall())
                    .unwrap_or_default();
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
        let delivered = send(&self.http, &request, &response, deadline).await;
        if let Err(e) = &delivered {
            tracing::error!(error = %e, "cannot deliver the response to CloudFormation");
        }
        HandleOutcome {
            response: Some(response),
            delivered,
        }
    }
}

/// Whether `event` is an EventBridge scheduled event (`"detail-type":
/// "Scheduled Event"`), which runs [`CfnHandler::scheduled`].
pub fn is_scheduled_event(event: &Value) -> bool {
    event.get("detail-type").and_then(Value::as_str) == Some("Scheduled Event")
        && event.get("ResponseURL").is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
