//! CloudFormation custom resource events, shaped as CloudFormation sends
//! them to the `Custom::VaultAuth` provider (the AppRole orchestrator).

use serde_json::{Value, json};

/// The stack every [`event`] comes from:
/// `arn:aws:cloudformation:us-east-1:123456789012:stack/shop/guid`.
pub const STACK_ID: &str = "arn:aws:cloudformation:us-east-1:123456789012:stack/shop/guid";

/// The logical id of the resource of every [`event`]: `ShopVaultAuth`.
pub const LOGICAL_ID: &str = "ShopVaultAuth";

/// Event number `n` of `kind` (`Create`, `Update`, `Delete`) for the
/// `Custom::VaultAuth` resource [`LOGICAL_ID`] of [`STACK_ID`]:
/// `RequestId` `req-<n>`, `ResponseURL`
/// `<response_base>/cfn/<n>?X-Amz-Signature=abc` (the shape of a pre-signed
/// URL; the provider answers it with a PUT), `ResourceProperties` `props`,
/// and `PhysicalResourceId` when `physical` is given (Update, Delete).
/// Set other fields (`OldResourceProperties`, another `StackId`) on the
/// returned value.
pub fn event(
    kind: &str,
    n: impl std::fmt::Display,
    response_base: &str,
    physical: Option<&str>,
    props: Value,
) -> Value {
    let mut event = json!({
        "RequestType": kind,
        "ResponseURL": format!("{response_base}/cfn/{n}?X-Amz-Signature=abc"),
        "StackId": STACK_ID,
        "RequestId": format!("req-{n}"),
        "ResourceType": "Custom::VaultAuth",
        "LogicalResourceId": LOGICAL_ID,
        "ResourceProperties": props,
    });
    if let Some(p) = physical {
        event["PhysicalResourceId"] = json!(p);
    }
    event
}

/// A stand-in for the pre-signed S3 URL CloudFormation reads a custom
/// resource's answer from (feature `cfn`): a wiremock server that answers
/// every PUT with 200. Pass its `uri()` to [`event`]; the answers are in
/// its `received_requests()`.
#[cfg(feature = "cfn")]
pub async fn response_listener() -> wiremock::MockServer {
    use wiremock::{Mock, MockServer, ResponseTemplate, matchers::method};
    let listener = MockServer::start().await;
    Mock::given(method("PUT"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&listener)
        .await;
    listener
}
