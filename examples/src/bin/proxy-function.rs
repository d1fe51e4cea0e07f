//! A Lambda function that reads its secret through the `vault-aws-extension`
//! proxy, with no Vault token and no Vault address of its own.
//!
//! Event `{"path": "secret/data/app"}`: GETs `/v1/<path>` from the proxy
//! (`VAULT_PROXY_LISTEN`, default 127.0.0.1:8200) and returns
//! `{"status": <http status>, "data": <data of vault's answer>}`.
//! Event `{"file": "/tmp/vault/secret.json"}`: returns the data of a secret
//! file written by the extension in file mode, and whether `VAULT_SECRET_FILE`
//! already existed when the function started (`file_at_init`).
//!
//! The SSRF guard: it sends the function's `AWS_SESSION_TOKEN` in
//! `X-Vault-AWS-Session-Token` when there is one, else `X-Vault-Request: true`.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::{Value, json};

async fn handler(
    http: &reqwest::Client,
    file_at_init: bool,
    event: LambdaEvent<Value>,
) -> Result<Value, Error> {
    let payload = event.payload;
    if let Some(file) = payload.get("file").and_then(Value::as_str) {
        let text = std::fs::read_to_string(file).map_err(|e| format!("cannot read {file}: {e}"))?;
        let secret: Value = serde_json::from_str(&text)?;
        return Ok(json!({ "file": file, "file_at_init": file_at_init, "data": secret["data"] }));
    }
    let path = payload
        .get("path")
        .and_then(Value::as_str)
        .ok_or("the event needs \"path\" (a vault API path) or \"file\"")?;
    let listen = std::env::var("VAULT_PROXY_LISTEN").unwrap_or_else(|_| "127.0.0.1:8200".into());
    let url = format!("http://{listen}/v1/{}", path.trim_start_matches('/'));
    let mut request = http.get(&url);
    request = match std::env::var("AWS_SESSION_TOKEN") {
        Ok(session) if !session.is_empty() => request.header("X-Vault-AWS-Session-Token", session),
        _ => request.header("X-Vault-Request", "true"),
    };
    let response = request.send().await?;
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    Ok(json!({ "status": status, "data": body.get("data").cloned().unwrap_or(body) }))
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    // The proxy is local: never send its traffic through HTTP(S)_PROXY.
    let http = reqwest::Client::builder().no_proxy().build()?;
    let http = &http;
    // In file mode the extension writes the secret before the function's init.
    let file_at_init =
        std::env::var("VAULT_SECRET_FILE").is_ok_and(|f| std::path::Path::new(&f).is_file());
    lambda_runtime::run(service_fn(move |event| handler(http, file_at_init, event))).await
}
