//! API Gateway events in, HTTP requests to the local server out, and back.
//!
//! Two event shapes (both documented by AWS as "Lambda proxy integration"):
//!
//! - HTTP API, payload format **2.0**: `version: "2.0"`, `rawPath`,
//!   `rawQueryString`, `headers` (repeated headers joined with commas),
//!   `cookies`, `requestContext.http.method` / `.sourceIp`,
//!   `requestContext.authorizer`; the answer is `statusCode`, `headers`,
//!   `cookies`, `body`, `isBase64Encoded`.
//! - REST API (payload format 1.0): `httpMethod`, `path`,
//!   `multiValueHeaders`, `multiValueQueryStringParameters`,
//!   `requestContext.identity.sourceIp`, `requestContext.authorizer`; the
//!   answer is `statusCode`, `multiValueHeaders`, `body`, `isBase64Encoded`.
//!
//! Bodies that are not UTF-8 text travel base64 both ways.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Map, Value, json};

/// Largest response the function returns: Lambda's synchronous response
/// limit is 6 MB; keep room for the JSON envelope.
pub const MAX_RESPONSE_BYTES: usize = 6 * 1024 * 1024 - 64 * 1024;

/// Which API Gateway sent the event (the answer has that flavour's shape).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavour {
    /// HTTP API, payload format 2.0.
    HttpV2,
    /// REST API (payload format 1.0).
    Rest,
}

/// An API Gateway request, as the server will see it.
#[derive(Clone, Debug)]
pub struct ApiRequest {
    /// Which API sent it.
    pub flavour: Flavour,
    /// `GET`, `PUT`, `LIST`, ...
    pub method: String,
    /// The path (`/v1/...`), the stage taken off.
    pub path: String,
    /// The query string, encoded, without `?`.
    pub query: String,
    /// Headers to forward (lower-case names; hop-by-hop headers, the gateway
    /// credentials and cookies removed).
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
    /// The caller's address as API Gateway saw it.
    pub source_ip: Option<String>,
    /// Whether API Gateway ran an authorizer on it (a `requestContext.authorizer`).
    pub authorized: bool,
}

/// An answer to give back to API Gateway.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiResponse {
    /// HTTP status.
    pub status: u16,
    /// Headers (lower-case names, in order; repeated names kept).
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Vec<u8>,
}

impl ApiResponse {
    /// An answer in Vault's error shape, `{"errors": [message]}`.
    pub fn error(status: u16, message: impl Into<String>) -> Self {
        Self {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: json!({ "errors": [message.into()] })
                .to_string()
                .into_bytes(),
        }
    }
}

/// What a direct invocation or an API Gateway event asks for.
#[derive(Debug)]
pub enum Event {
    /// An API Gateway request.
    Api(ApiRequest),
    /// `{"vault_aws_server": "init", ...}` from `vault-aws server init`.
    Init(crate::init::InitRequest),
}

/// Why an event could not be understood.
#[derive(Debug, thiserror::Error)]
#[error(
    "unsupported event: {0}; expected an API Gateway proxy event (HTTP API payload 2.0 or REST) or {{\"vault_aws_server\": \"init\"}}"
)]
pub struct EventError(String);

/// Headers never forwarded to the server: hop-by-hop headers, what the
/// function sets itself, and the gateway's credentials (the authorizer
/// already checked them; the server takes its token from `X-Vault-Token`).
const DROPPED: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
    "authorization",
    "cookie",
    "x-forwarded-for",
];

/// Reads an event.
pub fn parse_event(event: &Value) -> Result<Event, EventError> {
    let object = event
        .as_object()
        .ok_or_else(|| EventError(format!("a JSON {}, not an object", kind(event))))?;
    if let Some(action) = object.get("vault_aws_server") {
        return match action.as_str() {
            Some("init") => serde_json::from_value(event.clone())
                .map(Event::Init)
                .map_err(|e| EventError(format!("an init request that does not parse: {e}"))),
            _ => Err(EventError(format!(
                "vault_aws_server = {action}, not \"init\""
            ))),
        };
    }
    let context = object.get("requestContext").and_then(Value::as_object);
    let authorized = context
        .and_then(|c| c.get("authorizer"))
        .is_some_and(|a| a.as_object().is_some_and(|a| !a.is_empty()));
    if object.get("version").and_then(Value::as_str) == Some("2.0") {
        let method = context
            .and_then(|c| c.get("http"))
            .and_then(|h| h.get("method"))
            .and_then(Value::as_str)
            .ok_or_else(|| EventError("payload 2.0 without requestContext.http.method".into()))?;
        let raw_path = str_field(object, "rawPath")
            .ok_or_else(|| EventError("payload 2.0 without rawPath".into()))?;
        // A named stage (not `$default`) is the first segment of rawPath.
        let stage = context.and_then(|c| c.get("stage")).and_then(Value::as_str);
        let path = match stage {
            Some(stage) if stage != "$default" => raw_path
                .strip_prefix(&format!("/{stage}"))
                .filter(|rest| rest.is_empty() || rest.starts_with('/'))
                .map(|rest| if rest.is_empty() { "/" } else { rest })
                .unwrap_or(raw_path),
            _ => raw_path,
        };
        let mut headers = Vec::new();
        if let Some(map) = object.get("headers").and_then(Value::as_object) {
            for (name, value) in map {
                if let Some(value) = value.as_str() {
                    headers.push((name.to_ascii_lowercase(), value.to_owned()));
                }
            }
        }
        return Ok(Event::Api(ApiRequest {
            flavour: Flavour::HttpV2,
            method: method.to_owned(),
            path: path.to_owned(),
            query: str_field(object, "rawQueryString")
                .unwrap_or_default()
                .to_owned(),
            headers: forwarded(headers),
            body: body(object)?,
            source_ip: context
                .and_then(|c| c.get("http"))
                .and_then(|h| h.get("sourceIp"))
                .and_then(Value::as_str)
                .map(str::to_owned),
            authorized,
        }));
    }
    if let Some(method) = str_field(object, "httpMethod") {
        let path = str_field(object, "path")
            .ok_or_else(|| EventError("a REST event without path".into()))?;
        let mut headers = Vec::new();
        if let Some(map) = object.get("multiValueHeaders").and_then(Value::as_object) {
            for (name, values) in map {
                for value in values
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                {
                    headers.push((name.to_ascii_lowercase(), value.to_owned()));
                }
            }
        } else if let Some(map) = object.get("headers").and_then(Value::as_object) {
            for (name, value) in map {
                if let Some(value) = value.as_str() {
                    headers.push((name.to_ascii_lowercase(), value.to_owned()));
                }
            }
        }
        // REST decodes the query string; encode it again.
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        if let Some(map) = object
            .get("multiValueQueryStringParameters")
            .and_then(Value::as_object)
        {
            for (name, values) in map {
                for value in values
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                {
                    query.append_pair(name, value);
                }
            }
        } else if let Some(map) = object
            .get("queryStringParameters")
            .and_then(Value::as_object)
        {
            for (name, value) in map {
                if let Some(value) = value.as_str() {
                    query.append_pair(name, value);
                }
            }
        }
        return Ok(Event::Api(ApiRequest {
            flavour: Flavour::Rest,
            method: method.to_owned(),
            path: path.to_owned(),
            query: query.finish(),
            headers: forwarded(headers),
            body: body(object)?,
            source_ip: context
                .and_then(|c| c.get("identity"))
                .and_then(|i| i.get("sourceIp"))
                .and_then(Value::as_str)
                .map(str::to_owned),
            authorized,
        }));
    }
    Err(EventError(
        "an object with neither version \"2.0\" nor httpMethod".into(),
    ))
}

/// Turns an answer into the Lambda response of `flavour`.
pub fn to_lambda_response(flavour: Flavour, response: &ApiResponse) -> Value {
    let content_type = response
        .headers
        .iter()
        .find(|(n, _)| n == "content-type")
        .map(|(_, v)| v.to_ascii_lowercase())
        .unwrap_or_default();
    let text = if content_type.starts_with("application/octet-stream") {
        None
    } else {
        std::str::from_utf8(&response.body).ok()
    };
    let (body, base64) = match text {
        Some(text) => (text.to_owned(), false),
        None => (B64.encode(&response.body), true),
    };
    match flavour {
        Flavour::HttpV2 => {
            let mut headers = Map::new();
            let mut cookies = Vec::new();
            for (name, value) in &response.headers {
                if name == "set-cookie" {
                    cookies.push(Value::from(value.as_str()));
                    continue;
                }
                match headers.get_mut(name) {
                    Some(Value::String(joined)) => {
                        joined.push_str(", ");
                        joined.push_str(value);
                    }
                    _ => {
                        headers.insert(name.clone(), Value::from(value.as_str()));
                    }
                }
            }
            let mut answer = json!({
                "statusCode": response.status,
                "headers": headers,
                "body": body,
                "isBase64Encoded": base64,
            });
            if !cookies.is_empty() {
                answer["cookies"] = Value::Array(cookies);
            }
            answer
        }
        Flavour::Rest => {
            let mut headers: Map<String, Value> = Map::new();
            for (name, value) in &response.headers {
                let entry = headers
                    .entry(name.clone())
                    .or_insert_with(|| Value::Array(Vec::new()));
                if let Value::Array(values) = entry {
                    values.push(Value::from(value.as_str()));
                }
            }
            json!({
                "statusCode": response.status,
                "multiValueHeaders": headers,
                "body": body,
                "isBase64Encoded": base64,
            })
        }
    }
}

/// Sends `request` to the server at `base_url` and reads its answer
/// (`timeout`: what is left of the invocation, less a margin).
pub async fn forward(
    http: &reqwest::Client,
    base_url: &str,
    request: &ApiRequest,
    timeout: std::time::Duration,
) -> ApiResponse {
    let method = match reqwest::Method::from_bytes(request.method.as_bytes()) {
        Ok(m) => m,
        Err(_) => return ApiResponse::error(400, format!("invalid method {:?}", request.method)),
    };
    let mut url = format!("{base_url}{}", request.path);
    if !request.query.is_empty() {
        url.push('?');
        url.push_str(&request.query);
    }
    let mut builder = http.request(method, &url).timeout(timeout);
    for (name, value) in &request.headers {
        builder = builder.header(name, value);
    }
    if let Some(ip) = &request.source_ip {
        builder = builder.header("x-forwarded-for", ip);
    }
    let response = match builder.body(request.body.clone()).send().await {
        Ok(r) => r,
        Err(e) if e.is_timeout() => {
            return ApiResponse::error(
                504,
                "the server did not answer before the function's deadline",
            );
        }
        Err(e) => {
            return ApiResponse::error(
                502,
                format!(
                    "the server did not answer: {}",
                    vault_client::error_chain(&e)
                ),
            );
        }
    };
    let status = response.status().as_u16();
    let headers: Vec<(String, String)> = response
        .headers()
        .iter()
        .filter(|(name, _)| {
            !matches!(
                name.as_str(),
                "connection" | "keep-alive" | "transfer-encoding" | "content-length"
            )
        })
        .filter_map(|(name, value)| {
            value
                .to_str()
                .ok()
                .map(|v| (name.as_str().to_owned(), v.to_owned()))
        })
        .collect();
    match response.bytes().await {
        Ok(body) if body.len() > MAX_RESPONSE_BYTES => ApiResponse::error(
            502,
            format!(
                "the server's answer is {} bytes; a Lambda function can return at most {MAX_RESPONSE_BYTES}",
                body.len()
            ),
        ),
        Ok(body) => ApiResponse {
            status,
            headers,
            body: body.to_vec(),
        },
        Err(e) => ApiResponse::error(
            502,
            format!(
                "the server's answer was cut: {}",
                vault_client::error_chain(&e)
            ),
        ),
    }
}

fn forwarded(headers: Vec<(String, String)>) -> Vec<(String, String)> {
    headers
        .into_iter()
        .filter(|(name, _)| !DROPPED.contains(&name.as_str()))
        .collect()
}

fn body(object: &Map<String, Value>) -> Result<Vec<u8>, EventError> {
    let Some(body) = object.get("body").and_then(Value::as_str) else {
        return Ok(Vec::new());
    };
    if object
        .get("isBase64Encoded")
        .and_then(Value::as_bool)
        .unwrap_or(false)
    {
        B64.decode(body).map_err(|e| {
            EventError(format!(
                "isBase64Encoded is true but the body is not base64: {e}"
            ))
        })
    } else {
        Ok(body.as_bytes().to_vec())
    }
}

fn str_field<'a>(object: &'a Map<String, Value>, name: &str) -> Option<&'a str> {
    object.get(name).and_then(Value::as_str)
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(event: Value) -> ApiRequest {
        match parse_event(&event).expect("parses") {
            Event::Api(r) => r,
            other => panic!("not an API request: {other:?}"),
        }
    }

    #[test]
    fn an_http_api_event_becomes_a_request_without_the_gateway_credentials() {
        let r = api(json!({
            "version": "2.0",
            "routeKey": "ANY /{proxy+}",
            "rawPath": "/prod/v1/secret/data/app",
            "rawQueryString": "version=2&x=a%20b",
            "cookies": ["auth=gateway-token-0123456789"],
            "headers": {
                "Authorization": "Bearer gateway-token-0123456789",
                "x-vault-token": "s.abc",
                "content-type": "application/json",
                "host": "abc.execute-api.eu-west-1.amazonaws.com",
                "x-forwarded-for": "6.6.6.6"
            },
            "requestContext": {
                "stage": "prod",
                "http": {"method": "PUT", "sourceIp": "203.0.113.7", "path": "/prod/v1/secret/data/app"},
                "authorizer": {"lambda": {"client": "web"}}
            },
            "body": "eyJkYXRhIjp7ImEiOiJiIn19",
            "isBase64Encoded": true
        }));
        assert_eq!(r.flavour, Flavour::HttpV2);
        assert_eq!(r.method, "PUT");
        assert_eq!(r.path, "/v1/secret/data/app");
        assert_eq!(r.query, "version=2&x=a%20b");
        assert_eq!(r.body, br#"{"data":{"a":"b"}}"#);
        assert_eq!(r.source_ip.as_deref(), Some("203.0.113.7"));
        assert!(r.authorized);
        let names: Vec<&str> = r.headers.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["content-type", "x-vault-token"]);
    }

    #[test]
    fn a_rest_event_becomes_a_request_with_its_query_encoded_again() {
        let r = api(json!({
            "resource": "/{proxy+}",
            "path": "/v1/sys/health",
            "httpMethod": "GET",
            "headers": {"X-Vault-Token": "ignored: multiValueHeaders wins"},
            "multiValueHeaders": {"X-Vault-Token": ["s.abc"], "Accept": ["a", "b"]},
            "queryStringParameters": {"standbyok": "true"},
            "multiValueQueryStringParameters": {"standbyok": ["true"], "q": ["a b&c"]},
            "requestContext": {"identity": {"sourceIp": "198.51.100.1"}, "authorizer": {"principalId": "web"}},
            "body": null,
            "isBase64Encoded": false
        }));
        assert_eq!(r.flavour, Flavour::Rest);
        assert_eq!(r.path, "/v1/sys/health");
        assert_eq!(r.query, "q=a+b%26c&standbyok=true");
        assert!(r.body.is_empty());
        assert!(r.authorized);
        assert_eq!(
            r.headers,
            [
                ("accept".to_owned(), "a".to_owned()),
                ("accept".to_owned(), "b".to_owned()),
                ("x-vault-token".to_owned(), "s.abc".to_owned())
            ]
        );
    }

    #[test]
    fn an_event_without_an_authorizer_context_is_marked_unauthorized() {
        let r = api(json!({
            "version": "2.0", "rawPath": "/v1/sys/health", "rawQueryString": "",
            "requestContext": {"stage": "$default", "http": {"method": "GET"}}
        }));
        assert!(!r.authorized);
        assert_eq!(r.path, "/v1/sys/health");
        let r =
            api(json!({"httpMethod": "GET", "path": "/", "requestContext": {"authorizer": {}}}));
        assert!(!r.authorized);
    }

    #[test]
    fn odd_events_are_refused_with_what_was_expected() {
        for (event, problem) in [
            (json!([1]), "a JSON array"),
            (json!({"hello": "world"}), "neither version"),
            (
                json!({"version": "2.0", "rawPath": "/"}),
                "requestContext.http.method",
            ),
            (json!({"vault_aws_server": "destroy"}), "not \"init\""),
            (
                json!({"httpMethod": "PUT", "path": "/", "body": "%%%", "isBase64Encoded": true}),
                "not base64",
            ),
        ] {
            let err = parse_event(&event).expect_err("refused").to_string();
            assert!(err.contains(problem), "{event}: {err}");
            assert!(err.contains("expected an API Gateway proxy event"), "{err}");
        }
    }

    #[test]
    fn binary_bodies_go_back_base64_and_text_stays_text() {
        let binary = ApiResponse {
            status: 200,
            headers: vec![("content-type".into(), "application/octet-stream".into())],
            body: vec![0, 159, 146, 150],
        };
        let v2 = to_lambda_response(Flavour::HttpV2, &binary);
        assert_eq!(v2["isBase64Encoded"], true);
        assert_eq!(
            B64.decode(v2["body"].as_str().expect("body")).expect("b64"),
            binary.body
        );
        let invalid_utf8 = ApiResponse {
            headers: vec![("content-type".into(), "text/plain".into())],
            ..binary.clone()
        };
        assert_eq!(
            to_lambda_response(Flavour::Rest, &invalid_utf8)["isBase64Encoded"],
            true
        );

        let json_answer = ApiResponse {
            status: 404,
            headers: vec![
                ("content-type".into(), "application/json".into()),
                ("cache-control".into(), "no-store".into()),
                ("set-cookie".into(), "a=1".into()),
                ("set-cookie".into(), "b=2".into()),
                ("vary".into(), "a".into()),
                ("vary".into(), "b".into()),
            ],
            body: br#"{"errors":[]}"#.to_vec(),
        };
        let v2 = to_lambda_response(Flavour::HttpV2, &json_answer);
        assert_eq!(v2["statusCode"], 404);
        assert_eq!(v2["body"], r#"{"errors":[]}"#);
        assert_eq!(v2["isBase64Encoded"], false);
        assert_eq!(v2["cookies"], json!(["a=1", "b=2"]));
        assert_eq!(v2["headers"]["vary"], "a, b");
        let rest = to_lambda_response(Flavour::Rest, &json_answer);
        assert_eq!(
            rest["multiValueHeaders"]["set-cookie"],
            json!(["a=1", "b=2"])
        );
        assert_eq!(rest["multiValueHeaders"]["vary"], json!(["a", "b"]));
    }
}
