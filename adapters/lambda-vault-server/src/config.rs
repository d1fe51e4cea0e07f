//! The function's configuration (`VAULT_SERVER_*`) and the server
//! configuration file rendered from it.
//!
//! The rendered file never holds a secret: the seal key and the PostgreSQL
//! connection URL reach the server through its environment (`env://` for the
//! static seal key, `BAO_PG_CONNECTION_URL` / `VAULT_PG_CONNECTION_URL`).

use std::path::PathBuf;
use std::time::Duration;

use vault_client::{ConfigError, non_blank, parse_bool, parse_duration};

/// The environment variable through which the static seal key reaches the
/// server (`current_key = "env://…"`); set on the child only.
pub const SEAL_KEY_ENV: &str = "VAULT_AWS_STATIC_SEAL_KEY";

/// The environment variable of the previous static seal key (after a
/// rotation of the secret: its `AWSPREVIOUS` version).
pub const PREVIOUS_SEAL_KEY_ENV: &str = "VAULT_AWS_STATIC_SEAL_PREVIOUS_KEY";

/// The static seal's key ids as resolved at start: by default the Secrets
/// Manager version ids of the secret's `AWSCURRENT` and `AWSPREVIOUS`
/// versions, so rotating the secret rotates the seal key.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StaticKeyIds {
    /// `current_key_id`.
    pub current: String,
    /// `previous_key_id`, when there is a previous key.
    pub previous: Option<String>,
}

/// Where the server keeps its data.
#[derive(Clone, Debug)]
pub enum Storage {
    /// PostgreSQL (OpenBao and HashiCorp Vault): the connection URL comes
    /// from Secrets Manager or, for tests, from the environment.
    Postgresql {
        /// Where the connection URL comes from.
        connection: PgConnection,
        /// The table (the server's default when `None`).
        table: Option<String>,
    },
    /// Amazon S3 (HashiCorp Vault only; OpenBao has no S3 storage).
    S3 {
        /// The bucket.
        bucket: String,
    },
}

/// Where the PostgreSQL connection URL comes from.
#[derive(Clone)]
pub enum PgConnection {
    /// A Secrets Manager secret (name or ARN): a `postgres://` URL, or the
    /// JSON an RDS secret attachment writes (`username`, `password`, `host`,
    /// `port`, `dbname`).
    Secret(String),
    /// The URL itself (`VAULT_SERVER_PG_CONNECTION_URL`).
    Url(secrecy::SecretString),
}

impl std::fmt::Debug for PgConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Secret(id) => f.debug_tuple("Secret").field(id).finish(),
            Self::Url(_) => f.write_str("Url([redacted])"),
        }
    }
}

/// How the server unseals itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Seal {
    /// OpenBao's `static` seal: a 32-byte key kept in Secrets Manager
    /// (encrypted there with a KMS key), read at start and handed to the
    /// server in its environment; never written to disk.
    Static {
        /// The secret holding the key.
        key_secret_id: String,
        /// A fixed `current_key_id` (`VAULT_SERVER_SEAL_KEY_ID`; no rotation).
        /// `None`: the secret's version ids, current and previous.
        key_id: Option<String>,
    },
    /// HashiCorp Vault's `awskms` seal (OpenBao builds without it answer
    /// `unknown wrapper: awskms`).
    AwsKms {
        /// The KMS key (id, ARN or alias).
        kms_key_id: String,
    },
}

/// Everything the function reads from its environment.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// The server binary (`bao` or `vault`).
    pub binary: PathBuf,
    /// Storage.
    pub storage: Storage,
    /// Seal.
    pub seal: Seal,
    /// Loopback port the server listens on.
    pub port: u16,
    /// How long the init phase waits for the server to answer unsealed.
    pub ready_timeout: Duration,
    /// Refuse API Gateway events that carry no authorizer context.
    pub require_authorizer: bool,
    /// Declare a file audit device writing to the server's stdout (which the
    /// function copies to CloudWatch Logs). OpenBao only accepts audit
    /// devices from its configuration, not through the API.
    pub audit_to_stdout: bool,
    /// The Secrets Manager secret `server init` creates.
    pub init_secret_name: String,
    /// The KMS key of that secret (Secrets Manager's own key when `None`).
    pub init_kms_key_id: Option<String>,
}

impl ServerConfig {
    /// Reads the configuration; `lookup` is `std::env::var` in the binary.
    pub fn from_lookup<F>(lookup: F) -> Result<Self, ConfigError>
    where
        F: Fn(&str) -> Option<String>,
    {
        let get = non_blank(|n: &str| lookup(n).map(|v| v.trim().to_owned()));
        let binary = match get("VAULT_SERVER_BINARY") {
            Some(path) => PathBuf::from(path),
            None => find_on_path(&lookup).ok_or_else(|| {
                ConfigError::invalid(
                    "VAULT_SERVER_BINARY",
                    "the path of the `bao` or `vault` server binary",
                    "it is not set and neither `bao` nor `vault` is on PATH",
                )
            })?,
        };
        let storage = match get("VAULT_SERVER_STORAGE")
            .as_deref()
            .unwrap_or("postgresql")
        {
            "postgresql" | "postgres" => {
                let connection = match (
                    get("VAULT_SERVER_PG_CONNECTION_URL_SECRET_ID"),
                    get("VAULT_SERVER_PG_CONNECTION_URL"),
                ) {
                    (Some(secret), None) => PgConnection::Secret(secret),
                    (None, Some(url)) => PgConnection::Url(url.into()),
                    (Some(_), Some(_)) => {
                        return Err(ConfigError::Inconsistent(
                            "VAULT_SERVER_PG_CONNECTION_URL_SECRET_ID and \
                             VAULT_SERVER_PG_CONNECTION_URL are both set; set one"
                                .into(),
                        ));
                    }
                    (None, None) => {
                        return Err(ConfigError::invalid(
                            "VAULT_SERVER_PG_CONNECTION_URL_SECRET_ID",
                            "the Secrets Manager secret (name or ARN) holding the PostgreSQL \
                             connection URL or an RDS secret's JSON",
                            "it is not set (nor VAULT_SERVER_PG_CONNECTION_URL) and the storage \
                             is postgresql",
                        ));
                    }
                };
                Storage::Postgresql {
                    connection,
                    table: get("VAULT_SERVER_PG_TABLE"),
                }
            }
            "s3" => Storage::S3 {
                bucket: get("VAULT_SERVER_S3_BUCKET").ok_or_else(|| {
                    ConfigError::invalid(
                        "VAULT_SERVER_S3_BUCKET",
                        "the bucket of the s3 storage",
                        "it is not set and VAULT_SERVER_STORAGE is s3",
                    )
                })?,
            },
            other => {
                return Err(ConfigError::invalid(
                    "VAULT_SERVER_STORAGE",
                    "postgresql (OpenBao and Vault) or s3 (HashiCorp Vault)",
                    format!("got {other:?}"),
                ));
            }
        };
        let seal = match get("VAULT_SERVER_SEAL").as_deref().unwrap_or("static") {
            "static" => Seal::Static {
                key_secret_id: get("VAULT_SERVER_SEAL_KEY_SECRET_ID").ok_or_else(|| {
                    ConfigError::invalid(
                        "VAULT_SERVER_SEAL_KEY_SECRET_ID",
                        "the Secrets Manager secret (name or ARN) holding the 32-byte seal key",
                        "it is not set and VAULT_SERVER_SEAL is static",
                    )
                })?,
                key_id: get("VAULT_SERVER_SEAL_KEY_ID"),
            },
            "awskms" => Seal::AwsKms {
                kms_key_id: get("VAULT_SERVER_KMS_KEY_ID").ok_or_else(|| {
                    ConfigError::invalid(
                        "VAULT_SERVER_KMS_KEY_ID",
                        "the KMS key (id, ARN or alias) of the awskms seal",
                        "it is not set and VAULT_SERVER_SEAL is awskms",
                    )
                })?,
            },
            other => {
                return Err(ConfigError::invalid(
                    "VAULT_SERVER_SEAL",
                    "static (OpenBao, key in Secrets Manager) or awskms (HashiCorp Vault)",
                    format!("got {other:?}"),
                ));
            }
        };
        let port = match get("VAULT_SERVER_PORT") {
            None => 8200,
            Some(raw) => raw.parse::<u16>().ok().filter(|p| *p > 0).ok_or_else(|| {
                ConfigError::invalid(
                    "VAULT_SERVER_PORT",
                    "a TCP port, 1 to 65535",
                    format!("got {raw:?}"),
                )
            })?,
        };
        let ready_timeout = match get("VAULT_SERVER_READY_TIMEOUT") {
            None => Duration::from_secs(30),
            Some(raw) => parse_duration("VAULT_SERVER_READY_TIMEOUT", &raw)?,
        };
        let require_authorizer = match get("VAULT_SERVER_REQUIRE_AUTHORIZER") {
            None => true,
            Some(raw) => parse_bool("VAULT_SERVER_REQUIRE_AUTHORIZER", &raw)?,
        };
        let audit_to_stdout = match get("VAULT_SERVER_AUDIT").as_deref() {
            None | Some("stdout") => true,
            Some("off") => false,
            Some(other) => {
                return Err(ConfigError::invalid(
                    "VAULT_SERVER_AUDIT",
                    "stdout (audit entries in the function's logs) or off",
                    format!("got {other:?}"),
                ));
            }
        };
        let init_secret_name = match get("VAULT_SERVER_INIT_SECRET_NAME") {
            Some(name) => name,
            None => format!(
                "{}/init",
                get("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_else(|| "vault-server".into())
            ),
        };
        Ok(Self {
            binary,
            storage,
            seal,
            port,
            ready_timeout,
            require_authorizer,
            audit_to_stdout,
            init_secret_name,
            init_kms_key_id: get("VAULT_SERVER_INIT_KMS_KEY_ID"),
        })
    }

    /// The server's address on the loopback interface.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The server configuration file (HCL), with the static seal's key ids
    /// `ids` (ignored by other seals). It holds no secret.
    pub fn render_hcl(&self, ids: &StaticKeyIds) -> String {
        let mut hcl = String::new();
        match &self.storage {
            Storage::Postgresql { table, .. } => {
                // connection_url comes from BAO_PG_CONNECTION_URL / VAULT_PG_CONNECTION_URL.
                hcl.push_str("storage \"postgresql\" {\n");
                if let Some(table) = table {
                    hcl.push_str(&format!("  table = {}\n", hcl_string(table)));
                }
                hcl.push_str("}\n");
            }
            Storage::S3 { bucket } => {
                hcl.push_str(&format!(
                    "storage \"s3\" {{\n  bucket = {}\n}}\n",
                    hcl_string(bucket)
                ));
            }
        }
        match &self.seal {
            Seal::Static { .. } => {
                hcl.push_str(&format!(
                    "seal \"static\" {{\n  current_key_id = {}\n  current_key = \"env://{SEAL_KEY_ENV}\"\n",
                    hcl_string(&ids.current)
                ));
                if let Some(previous) = &ids.previous {
                    hcl.push_str(&format!(
                        "  previous_key_id = {}\n  previous_key = \"env://{PREVIOUS_SEAL_KEY_ENV}\"\n",
                        hcl_string(previous)
                    ));
                }
                hcl.push_str("}\n");
            }
            Seal::AwsKms { kms_key_id } => hcl.push_str(&format!(
                "seal \"awskms\" {{\n  kms_key_id = {}\n}}\n",
                hcl_string(kms_key_id)
            )),
        }
        if self.audit_to_stdout {
            hcl.push_str(
                "audit \"file\" \"stdout\" {\n  options {\n    file_path = \"stdout\"\n  }\n}\n",
            );
        }
        // Plain HTTP on the loopback interface only: TLS ends at API Gateway,
        // and nothing outside the sandbox can reach 127.0.0.1. The function
        // puts the caller's address (API Gateway's sourceIp) in
        // X-Forwarded-For, which the server trusts from the loopback only, so
        // audit logs show the real client. No storage cache: Lambda may keep
        // an older execution environment frozen while a newer one writes, and
        // a thawed one must read PostgreSQL, not what it cached before. No
        // cluster listener: one node, nothing to forward to (and its
        // shutdown alone took 350 ms of Lambda's 500 ms shutdown budget).
        hcl.push_str(&format!(
            "listener \"tcp\" {{\n  address = \"{addr}\"\n  tls_disable = true\n  \
             x_forwarded_for_authorized_addrs = \"127.0.0.1/32\"\n  \
             x_forwarded_for_reject_not_present = false\n}}\n\
             api_addr = \"http://{addr}\"\n\
             ui = false\n\
             disable_cache = true\n\
             disable_clustering = true\n",
            addr = self.address()
        ));
        // Lambda gives no CAP_IPC_LOCK; HashiCorp Vault refuses to start
        // without this (OpenBao has no mlock and would warn about the field).
        if self.binary.file_name().is_some_and(|n| n == "vault") {
            hcl.push_str("disable_mlock = true\n");
        }
        hcl
    }
}

/// `bao`, else `vault`, in the directories of `PATH`.
fn find_on_path<F: Fn(&str) -> Option<String>>(lookup: &F) -> Option<PathBuf> {
    let path = lookup("PATH")?;
    ["bao", "vault"].iter().find_map(|name| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(name))
            .find(|candidate| candidate.is_file())
    })
}

/// An HCL string literal (JSON's escaping is a subset HCL reads).
fn hcl_string(value: &str) -> String {
    serde_json::Value::from(value).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(vars: &[(&str, &str)]) -> Result<ServerConfig, ConfigError> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        ServerConfig::from_lookup(move |n| {
            vars.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone())
        })
    }

    const BASE: [(&str, &str); 3] = [
        ("VAULT_SERVER_BINARY", "/usr/local/bin/bao"),
        ("VAULT_SERVER_PG_CONNECTION_URL_SECRET_ID", "vault/pg"),
        ("VAULT_SERVER_SEAL_KEY_SECRET_ID", "vault/seal-key"),
    ];

    #[test]
    fn the_defaults_are_postgresql_and_the_static_seal_on_the_loopback() {
        let c = config(&BASE).expect("valid");
        assert!(
            matches!(&c.storage, Storage::Postgresql { connection: PgConnection::Secret(id), table: None } if id == "vault/pg"),
            "{:?}",
            c.storage
        );
        assert_eq!(c.port, 8200);
        assert!(c.require_authorizer);
        let ids = StaticKeyIds {
            current: "v2".into(),
            previous: Some("v1".into()),
        };
        let hcl = c.render_hcl(&ids);
        assert!(hcl.contains("storage \"postgresql\""), "{hcl}");
        assert!(hcl.contains("current_key_id = \"v2\""), "{hcl}");
        assert!(
            hcl.contains("previous_key_id = \"v1\"\n  previous_key = \"env://VAULT_AWS_STATIC_SEAL_PREVIOUS_KEY\""),
            "{hcl}"
        );
        assert!(
            hcl.contains("current_key = \"env://VAULT_AWS_STATIC_SEAL_KEY\""),
            "{hcl}"
        );
        assert!(hcl.contains("address = \"127.0.0.1:8200\""), "{hcl}");
        assert!(
            !hcl.contains("connection_url"),
            "no secret in the file: {hcl}"
        );
        assert!(hcl.contains("audit \"file\" \"stdout\""), "{hcl}");
        let mut quiet = BASE.to_vec();
        quiet.push(("VAULT_SERVER_AUDIT", "off"));
        assert!(
            !config(&quiet)
                .expect("valid")
                .render_hcl(&StaticKeyIds::default())
                .contains("audit")
        );
    }

    #[test]
    fn vault_s3_storage_and_the_awskms_seal_render() {
        let c = config(&[
            ("VAULT_SERVER_BINARY", "/usr/local/bin/vault"),
            ("VAULT_SERVER_STORAGE", "s3"),
            ("VAULT_SERVER_S3_BUCKET", "my-vault-data"),
            ("VAULT_SERVER_SEAL", "awskms"),
            ("VAULT_SERVER_KMS_KEY_ID", "alias/vault \"seal\""),
        ])
        .expect("valid");
        let hcl = c.render_hcl(&StaticKeyIds::default());
        assert!(
            hcl.contains("storage \"s3\" {\n  bucket = \"my-vault-data\""),
            "{hcl}"
        );
        assert!(
            hcl.contains("kms_key_id = \"alias/vault \\\"seal\\\"\""),
            "{hcl}"
        );
        assert!(hcl.contains("disable_mlock = true"), "{hcl}");
    }

    #[test]
    fn a_wrong_or_missing_setting_names_the_variable() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (
                &[("VAULT_SERVER_STORAGE", "file")],
                "VAULT_SERVER_STORAGE is invalid",
            ),
            (
                &[("VAULT_SERVER_SEAL", "shamir")],
                "VAULT_SERVER_SEAL is invalid",
            ),
            (
                &[("VAULT_SERVER_PORT", "0")],
                "VAULT_SERVER_PORT is invalid",
            ),
            (
                &[("VAULT_SERVER_AUDIT", "syslog")],
                "VAULT_SERVER_AUDIT is invalid",
            ),
            (
                &[("VAULT_SERVER_READY_TIMEOUT", "soon")],
                "VAULT_SERVER_READY_TIMEOUT",
            ),
            (
                &[("VAULT_SERVER_REQUIRE_AUTHORIZER", "maybe")],
                "VAULT_SERVER_REQUIRE_AUTHORIZER",
            ),
            (
                &[("VAULT_SERVER_PG_CONNECTION_URL", "postgres://u:p@h/db")],
                "both set",
            ),
        ];
        for (extra, expected) in cases {
            let mut vars = BASE.to_vec();
            vars.extend_from_slice(extra);
            let err = config(&vars).expect_err("invalid").to_string();
            assert!(err.contains(expected), "{extra:?}: {err}");
            assert!(!err.contains("u:p@h"), "no secret in the error: {err}");
        }
        let err = config(&[
            ("VAULT_SERVER_BINARY", "/bao"),
            ("VAULT_SERVER_SEAL_KEY_SECRET_ID", "k"),
        ])
        .expect_err("no storage")
        .to_string();
        assert!(
            err.contains("VAULT_SERVER_PG_CONNECTION_URL_SECRET_ID"),
            "{err}"
        );
        let err = config(&[
            ("VAULT_SERVER_BINARY", "/bao"),
            ("VAULT_SERVER_PG_CONNECTION_URL", "x"),
        ])
        .expect_err("no seal key")
        .to_string();
        assert!(err.contains("VAULT_SERVER_SEAL_KEY_SECRET_ID"), "{err}");
    }

    #[test]
    fn the_connection_url_never_appears_in_debug_output() {
        let c = config(&[
            ("VAULT_SERVER_BINARY", "/bao"),
            (
                "VAULT_SERVER_PG_CONNECTION_URL",
                "postgres://vault:hunter2@db/vault",
            ),
            ("VAULT_SERVER_SEAL_KEY_SECRET_ID", "k"),
        ])
        .expect("valid");
        let debug = format!("{c:?}");
        assert!(!debug.contains("hunter2"), "{debug}");
    }
}
