//! What the server needs from Secrets Manager at start: the static seal key
//! and the PostgreSQL connection URL.

use aws_sdk_secretsmanager::Client;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use secrecy::SecretString;
use zeroize::Zeroizing;

use crate::config::{PgConnection, Seal, ServerConfig, Storage};
use crate::server::ServerSecrets;

/// A secret that could not be read or used. Never holds a secret's value.
#[derive(Debug, thiserror::Error)]
#[error("{variable}: secret {secret_id}: {problem}")]
pub struct SecretError {
    /// The variable that names the secret.
    pub variable: &'static str,
    /// The secret's name or ARN.
    pub secret_id: String,
    /// What went wrong (never the value).
    pub problem: String,
    /// Secrets Manager answered ResourceNotFound.
    pub not_found: bool,
}

impl SecretError {
    /// A secret that was read but cannot be used.
    fn invalid(variable: &'static str, secret_id: &str, problem: String) -> Self {
        Self {
            variable,
            secret_id: secret_id.to_owned(),
            problem,
            not_found: false,
        }
    }
}

/// Reads the secrets `config` names.
pub async fn fetch(client: &Client, config: &ServerConfig) -> Result<ServerSecrets, SecretError> {
    let mut secrets = ServerSecrets::default();
    if let Seal::Static {
        key_secret_id,
        key_id,
    } = &config.seal
    {
        const VARIABLE: &str = "VAULT_SERVER_SEAL_KEY_SECRET_ID";
        let invalid = |problem: String| SecretError::invalid(VARIABLE, key_secret_id, problem);
        let current = get(client, VARIABLE, key_secret_id, None).await?;
        secrets.seal_key = Some(seal_key(current.string, current.binary).map_err(invalid)?);
        match key_id {
            // A pinned key id: one key, no rotation.
            Some(id) => secrets.seal_key_ids.current = id.clone(),
            None => {
                secrets.seal_key_ids.current = current.version_id.ok_or_else(|| {
                    invalid(
                        "Secrets Manager returned no VersionId; set VAULT_SERVER_SEAL_KEY_ID"
                            .into(),
                    )
                })?;
                // After a rotation of the secret, its AWSPREVIOUS version
                // unseals what the old key wrapped.
                match get(client, VARIABLE, key_secret_id, Some("AWSPREVIOUS")).await {
                    Ok(previous) => {
                        if let Some(id) = previous.version_id {
                            let key = seal_key(previous.string, previous.binary)
                                .map_err(|p| invalid(format!("its AWSPREVIOUS version: {p}")))?;
                            secrets.previous_seal_key = Some(key);
                            secrets.seal_key_ids.previous = Some(id);
                        }
                    }
                    Err(e) if e.not_found => {}
                    Err(e) => return Err(e),
                }
            }
        }
    }
    if let Storage::Postgresql { connection, .. } = &config.storage {
        secrets.pg_connection_url = Some(match connection {
            PgConnection::Url(url) => url.clone(),
            PgConnection::Secret(id) => {
                let string = get(client, "VAULT_SERVER_PG_CONNECTION_URL_SECRET_ID", id, None)
                    .await?
                    .string;
                let string = string.ok_or_else(|| {
                    SecretError::invalid(
                        "VAULT_SERVER_PG_CONNECTION_URL_SECRET_ID",
                        id,
                        "it has no SecretString; expected a postgres:// URL or an RDS \
                              secret's JSON"
                            .into(),
                    )
                })?;
                pg_url(&string).map_err(|problem| {
                    SecretError::invalid("VAULT_SERVER_PG_CONNECTION_URL_SECRET_ID", id, problem)
                })?
            }
        });
    }
    Ok(secrets)
}

/// One version of a secret.
struct Version {
    string: Option<Zeroizing<String>>,
    binary: Option<Zeroizing<Vec<u8>>>,
    version_id: Option<String>,
}

async fn get(
    client: &Client,
    variable: &'static str,
    secret_id: &str,
    stage: Option<&str>,
) -> Result<Version, SecretError> {
    let out = client
        .get_secret_value()
        .secret_id(secret_id)
        .set_version_stage(stage.map(str::to_owned))
        .send()
        .await
        .map_err(|e| SecretError {
            variable,
            secret_id: secret_id.to_owned(),
            not_found: e
                .as_service_error()
                .is_some_and(|s| s.is_resource_not_found_exception()),
            problem: format!(
                "cannot read {}: {}",
                stage.unwrap_or("it"),
                vault_client::error_chain(&e)
            ),
        })?;
    Ok(Version {
        string: out.secret_string.map(Zeroizing::new),
        binary: out.secret_binary.map(|b| Zeroizing::new(b.into_inner())),
        version_id: out.version_id,
    })
}

/// The static seal key as base64 of exactly 32 bytes: `SecretBinary` raw, or
/// `SecretString` base64 or hex.
pub fn seal_key(
    string: Option<Zeroizing<String>>,
    binary: Option<Zeroizing<Vec<u8>>>,
) -> Result<SecretString, String> {
    const EXPECTED: &str = "expected 32 bytes: raw in SecretBinary, or base64 or hex in SecretString \
                            (e.g. `openssl rand -base64 32`)";
    let bytes: Zeroizing<Vec<u8>> = match (string, binary) {
        (_, Some(binary)) => binary,
        (Some(text), None) => {
            let text = text.trim();
            if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
                Zeroizing::new(
                    (0..32)
                        .map(|i| u8::from_str_radix(&text[2 * i..2 * i + 2], 16).unwrap_or(0))
                        .collect(),
                )
            } else {
                Zeroizing::new(
                    B64.decode(text)
                        .map_err(|_| format!("the value is neither base64 nor hex; {EXPECTED}"))?,
                )
            }
        }
        (None, None) => return Err(format!("it has no value; {EXPECTED}")),
    };
    if bytes.len() != 32 {
        return Err(format!("the key is {} bytes; {EXPECTED}", bytes.len()));
    }
    Ok(SecretString::from(B64.encode(bytes.as_slice())))
}

/// A `postgres://` URL as is, or one built from an RDS secret's JSON
/// (`username`, `password`, `host`, `port`, `dbname`).
pub fn pg_url(value: &str) -> Result<SecretString, String> {
    let value = value.trim();
    if value.starts_with("postgres://") || value.starts_with("postgresql://") {
        return Ok(SecretString::from(value.to_owned()));
    }
    let json: serde_json::Value = serde_json::from_str(value).map_err(|_| {
        "the value is neither a postgres:// URL nor JSON; expected one of them".to_owned()
    })?;
    let field = |name: &str| -> Result<String, String> {
        match json.get(name) {
            Some(serde_json::Value::String(s)) if !s.is_empty() => Ok(s.clone()),
            Some(serde_json::Value::Number(n)) => Ok(n.to_string()),
            _ => Err(format!(
                "the JSON has no {name:?}; expected username, password, host, port (default \
                 5432) and dbname (default postgres), as an RDS secret attachment writes"
            )),
        }
    };
    let mut url = url::Url::parse("postgres://localhost/").map_err(|e| e.to_string())?;
    url.set_host(Some(&field("host")?))
        .map_err(|_| "the JSON's host is not a host name".to_owned())?;
    let port = match json.get("port") {
        None => 5432,
        Some(_) => field("port")?
            .parse::<u16>()
            .map_err(|_| "the JSON's port is not a TCP port".to_owned())?,
    };
    let _ = url.set_port(Some(port));
    let _ = url.set_username(&field("username")?);
    let _ = url.set_password(Some(&field("password")?));
    url.set_path(
        json.get("dbname")
            .and_then(|d| d.as_str())
            .unwrap_or("postgres"),
    );
    Ok(SecretString::from(url.to_string()))
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;

    fn s(text: &str) -> Option<Zeroizing<String>> {
        Some(Zeroizing::new(text.to_owned()))
    }

    #[test]
    fn a_seal_key_is_32_bytes_in_any_of_the_three_forms() {
        let raw: Vec<u8> = (0u8..32).collect();
        let b64 = B64.encode(&raw);
        let hex: String = raw.iter().map(|b| format!("{b:02x}")).collect();
        for key in [
            seal_key(None, Some(Zeroizing::new(raw.clone()))),
            seal_key(s(&format!(" {b64}\n")), None),
            seal_key(s(&hex.to_uppercase()), None),
        ] {
            assert_eq!(key.expect("valid").expose_secret(), b64);
        }
        for (string, problem) in [
            (s("c2hvcnQ="), "the key is 5 bytes"),
            (s("not base64 at all!"), "neither base64 nor hex"),
            (None, "no value"),
        ] {
            let err = seal_key(string, None).expect_err("refused");
            assert!(
                err.contains(problem) && err.contains("expected 32 bytes"),
                "{err}"
            );
            assert!(!err.contains("c2hvcnQ"), "never the value: {err}");
        }
    }

    #[test]
    fn an_rds_secret_becomes_a_connection_url() {
        let url = pg_url(
            r#"{"engine":"postgres","username":"vault","password":"p@ss/w:rd","host":"db.cluster-x.eu-west-1.rds.amazonaws.com","port":5432,"dbname":"vault"}"#,
        )
        .expect("valid");
        assert_eq!(
            url.expose_secret(),
            "postgres://vault:p%40ss%2Fw%3Ard@db.cluster-x.eu-west-1.rds.amazonaws.com:5432/vault"
        );
        assert_eq!(
            pg_url(" postgres://a:b@h/db ")
                .expect("url")
                .expose_secret(),
            "postgres://a:b@h/db"
        );
        let err = pg_url(r#"{"username":"vault","password":"hunter2"}"#).expect_err("no host");
        assert!(
            err.contains("\"host\"") && !err.contains("hunter2"),
            "{err}"
        );
        assert!(pg_url("hunter2").expect_err("neither").contains("neither"));
    }
}
