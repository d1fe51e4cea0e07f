//! A local stand-in for an API Gateway HTTP API (payload format 2.0) with a
//! Lambda `REQUEST` authorizer (simple responses, identity source
//! `$request.header.Authorization`) in front of a Lambda proxy integration,
//! both functions running under the RIE. Real HTTP clients (the `bao` CLI,
//! client libraries) talk to it as they would talk to an `execute-api` URL.
//!
//! What it does with a request, in API Gateway's order:
//! 1. no `Authorization` header: 401 `{"message":"Unauthorized"}`, no
//!    function is called;
//! 2. the authorizer function gets the request as a `REQUEST` event
//!    (`routeArn`, `identitySource`); `isAuthorized: false`: 403
//!    `{"message":"Forbidden"}`;
//! 3. the integration function gets the payload 2.0 event with
//!    `requestContext.authorizer.lambda` = the authorizer's `context`; its
//!    `statusCode`, `headers`, `cookies`, `body` and `isBase64Encoded` become
//!    the HTTP response.
//!
//! Bodies always travel base64 (API Gateway does so for any content type it
//! does not consider text; the function must handle both).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::Response;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Value, json};

use crate::http_client;

const ROUTE_ARN: &str = "arn:aws:execute-api:eu-west-1:111122223333:r7t4u1v8cd/$default/ANY/proxy";

struct Backends {
    authorizer: String,
    integration: String,
    client: reqwest::Client,
    integration_calls: AtomicUsize,
}

/// The running stand-in; stopped on drop.
pub struct ApiGateway {
    addr: SocketAddr,
    backends: Arc<Backends>,
    task: tokio::task::JoinHandle<()>,
}

impl ApiGateway {
    /// Listens on 127.0.0.1:P in front of the functions whose RIE invoke
    /// endpoints are `authorizer` and `integration` (`Rie::emulator_addr`).
    pub async fn start(authorizer: &str, integration: &str) -> ApiGateway {
        let backends = Arc::new(Backends {
            authorizer: authorizer.to_owned(),
            integration: integration.to_owned(),
            client: http_client(),
            integration_calls: AtomicUsize::new(0),
        });
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(backends.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the API Gateway stand-in");
        let addr = listener.local_addr().expect("local address");
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        ApiGateway {
            addr,
            backends,
            task,
        }
    }

    /// `http://127.0.0.1:P`, what `execute-api` would be.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// How many requests reached the integration function.
    pub fn integration_calls(&self) -> usize {
        self.backends.integration_calls.load(Ordering::SeqCst)
    }
}

impl Drop for ApiGateway {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn handle(State(backends): State<Arc<Backends>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = to_bytes(body, 10 * 1024 * 1024).await.unwrap_or_default();
    let mut headers = serde_json::Map::new();
    let mut cookies = Vec::new();
    for (name, value) in &parts.headers {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        if name == "cookie" {
            cookies.extend(value.split("; ").map(|c| Value::from(c.to_owned())));
            continue;
        }
        match headers.get_mut(name.as_str()) {
            Some(Value::String(joined)) => {
                joined.push(',');
                joined.push_str(&value);
            }
            _ => {
                headers.insert(name.as_str().to_owned(), Value::from(value));
            }
        }
    }
    let path = parts.uri.path().to_owned();
    let mut event = json!({
        "version": "2.0",
        "routeKey": "ANY /{proxy+}",
        "rawPath": path,
        "rawQueryString": parts.uri.query().unwrap_or_default(),
        "headers": headers,
        "requestContext": {
            "accountId": "111122223333",
            "apiId": "r7t4u1v8cd",
            "domainName": "r7t4u1v8cd.execute-api.eu-west-1.amazonaws.com",
            "http": {
                "method": parts.method.as_str(),
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": parts.headers.get("user-agent").and_then(|v| v.to_str().ok()).unwrap_or_default(),
            },
            "requestId": "testkit",
            "routeKey": "ANY /{proxy+}",
            "stage": "$default",
        },
        "isBase64Encoded": false,
    });
    if !cookies.is_empty() {
        event["cookies"] = Value::Array(cookies);
    }
    if !body.is_empty() {
        event["body"] = Value::from(B64.encode(&body));
        event["isBase64Encoded"] = Value::Bool(true);
    }

    let Some(identity) = parts
        .headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
    else {
        return message(StatusCode::UNAUTHORIZED, "Unauthorized");
    };
    let mut authorizer_event = event.clone();
    authorizer_event["type"] = json!("REQUEST");
    authorizer_event["routeArn"] = json!(ROUTE_ARN);
    authorizer_event["identitySource"] = json!([identity]);
    let decision = match invoke(&backends.client, &backends.authorizer, &authorizer_event).await {
        Ok(decision) => decision,
        Err(problem) => return message(StatusCode::INTERNAL_SERVER_ERROR, &problem),
    };
    if decision["isAuthorized"] != true {
        return message(StatusCode::FORBIDDEN, "Forbidden");
    }
    event["requestContext"]["authorizer"] = json!({ "lambda": decision["context"] });

    backends.integration_calls.fetch_add(1, Ordering::SeqCst);
    let answer = match invoke(&backends.client, &backends.integration, &event).await {
        Ok(answer) => answer,
        Err(problem) => return message(StatusCode::INTERNAL_SERVER_ERROR, &problem),
    };
    let Some(status) = answer["statusCode"]
        .as_u64()
        .and_then(|s| StatusCode::from_u16(s as u16).ok())
    else {
        // API Gateway's answer to an integration that failed or answered
        // something that is not a proxy response.
        return message(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error");
    };
    let text = answer["body"].as_str().unwrap_or_default();
    let bytes = if answer["isBase64Encoded"] == true {
        B64.decode(text).unwrap_or_default()
    } else {
        text.as_bytes().to_vec()
    };
    let mut response = Response::new(Body::from(bytes));
    *response.status_mut() = status;
    if let Some(map) = answer["headers"].as_object() {
        for (name, value) in map {
            if let (Ok(name), Some(Ok(value))) = (
                HeaderName::from_bytes(name.as_bytes()),
                value.as_str().map(HeaderValue::from_str),
            ) {
                response.headers_mut().append(name, value);
            }
        }
    }
    for cookie in answer["cookies"].as_array().into_iter().flatten() {
        if let Some(Ok(value)) = cookie.as_str().map(HeaderValue::from_str) {
            response.headers_mut().append("set-cookie", value);
        }
    }
    response
}

async fn invoke(client: &reqwest::Client, addr: &str, event: &Value) -> Result<Value, String> {
    let url = format!("http://{addr}/2015-03-31/functions/function/invocations");
    let response = client
        .post(&url)
        .json(event)
        .send()
        .await
        .map_err(|e| format!("invoke {url}: {e}"))?;
    let text = response
        .text()
        .await
        .map_err(|e| format!("invoke {url}: {e}"))?;
    serde_json::from_str(&text).map_err(|e| format!("invoke {url}: {e}: {text}"))
}

fn message(status: StatusCode, text: &str) -> Response {
    let mut response = Response::new(Body::from(json!({ "message": text }).to_string()));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert("content-type", HeaderValue::from_static("application/json"));
    response
}
