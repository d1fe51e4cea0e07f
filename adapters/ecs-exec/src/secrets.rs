//! Which secrets go into the app's environment, and the environment itself.

use std::collections::{BTreeMap, HashMap};

use anyhow::bail;
use secrecy::{ExposeSecret, SecretString};
use vault_client::VaultClient;

/// Prefix of the mapping variables: `VAULT_ENV_<NAME>=<mount>/<path>#<key>`.
pub const PREFIX: &str = "VAULT_ENV_";

/// Variables vault-exec reads for itself and never passes on.
pub const OWN_VARIABLES: [&str; 8] = [
    "VAULT_ROLE_ID",
    "VAULT_ROLE_ID_FILE",
    "VAULT_SECRET_ID",
    "VAULT_SECRET_ID_FILE",
    "VAULT_SECRET_ID_WRAPPED",
    "VAULT_TOKEN",
    "VAULT_TOKEN_FILE",
    "VAULT_EXEC_SECRETS_PATH",
];

/// One `VAULT_ENV_<NAME>=<mount>/<path>#<key>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapping {
    /// The variable the app gets.
    pub name: String,
    /// KV v2 mount (first segment).
    pub mount: String,
    /// Path inside the mount.
    pub path: String,
    /// Key inside the secret.
    pub key: String,
}

/// Parses every `VAULT_ENV_*` variable; all malformed ones are reported.
pub fn mappings(vars: &[(String, String)]) -> anyhow::Result<Vec<Mapping>> {
    let mut out = Vec::new();
    let mut problems = Vec::new();
    for (var, value) in vars {
        let Some(name) = var.strip_prefix(PREFIX) else {
            continue;
        };
        match parse_ref(value.trim()) {
            Some((mount, path, Some(key))) if !name.is_empty() => out.push(Mapping {
                name: name.to_owned(),
                mount,
                path,
                key,
            }),
            _ => problems.push(format!(
                "{var}={value:?} is not <mount>/<path>#<key> (e.g. secret/shop/dev/db#password)"
            )),
        }
    }
    if !problems.is_empty() {
        bail!("{}", problems.join("; "));
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// `<mount>/<path>[#<key>]` -> (mount, path, key).
pub fn parse_ref(s: &str) -> Option<(String, String, Option<String>)> {
    let (location, key) = match s.split_once('#') {
        Some((l, k)) if !k.is_empty() => (l, Some(k.to_owned())),
        Some(_) => return None,
        None => (s, None),
    };
    let (mount, path) = location.trim_matches('/').split_once('/')?;
    if mount.is_empty() || path.trim_matches('/').is_empty() {
        return None;
    }
    Some((mount.to_owned(), path.trim_matches('/').to_owned(), key))
}

/// An environment variable name for a secret key: upper case, other
/// characters `_`, never starting with a digit.
pub fn env_name(key: &str) -> String {
    let mut name: String = key
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
        name.insert(0, '_');
    }
    name
}

fn value_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Reads every mapped secret and every key of each `secrets_paths` secret.
/// Fails, listing everything missing, when any secret or key is absent.
pub async fn collect(
    client: &VaultClient,
    mappings: &[Mapping],
    secrets_paths: &[String],
) -> anyhow::Result<BTreeMap<String, SecretString>> {
    let mut cache: HashMap<(String, String), Option<vault_client::KvSecret>> = HashMap::new();
    let mut read =
        async |mount: &str, path: &str| -> anyhow::Result<Option<vault_client::KvSecret>> {
            let k = (mount.to_owned(), path.to_owned());
            if let Some(hit) = cache.get(&k) {
                return Ok(hit.clone());
            }
            let got = client
                .kv2(mount)
                .read(path)
                .await
                .map_err(|e| anyhow::anyhow!("cannot read {mount}/{path}: {e}"))?;
            cache.insert(k, got.clone());
            Ok(got)
        };
    let mut env = BTreeMap::new();
    let mut missing = Vec::new();
    for raw in secrets_paths {
        let Some((mount, path, None)) = parse_ref(raw.trim()) else {
            bail!("--secrets-path {raw:?} is not <mount>/<path> (e.g. secret/shop/dev/app)");
        };
        match read(&mount, &path).await? {
            Some(secret) => {
                for (k, v) in secret.data.expose_secret() {
                    env.insert(env_name(k), SecretString::from(value_text(v)));
                }
            }
            None => missing.push(format!(
                "secret {mount}/{path} (--secrets-path) does not exist"
            )),
        }
    }
    for m in mappings {
        match read(&m.mount, &m.path).await? {
            Some(secret) => match secret.data.expose_secret().get(&m.key) {
                Some(v) => {
                    env.insert(m.name.clone(), SecretString::from(value_text(v)));
                }
                None => missing.push(format!(
                    "key {} is not in secret {}/{} ({PREFIX}{})",
                    m.key, m.mount, m.path, m.name
                )),
            },
            None => missing.push(format!(
                "secret {}/{} does not exist or is deleted ({PREFIX}{})",
                m.mount, m.path, m.name
            )),
        }
    }
    if !missing.is_empty() {
        bail!("not starting the command: {}", missing.join("; "));
    }
    Ok(env)
}

/// The app's environment: the parent's, minus `VAULT_ENV_*` and vault-exec's
/// own credentials variables, plus the secrets, plus `VAULT_TOKEN` when
/// `token` is given.
pub fn child_env(
    parent: Vec<(String, String)>,
    secrets: BTreeMap<String, SecretString>,
    token: Option<&SecretString>,
) -> Vec<(String, String)> {
    let mut env: BTreeMap<String, String> = parent
        .into_iter()
        .filter(|(k, _)| !k.starts_with(PREFIX) && !OWN_VARIABLES.contains(&k.as_str()))
        .collect();
    for (k, v) in secrets {
        env.insert(k, v.expose_secret().to_owned());
    }
    if let Some(token) = token {
        env.insert("VAULT_TOKEN".into(), token.expose_secret().to_owned());
    }
    env.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect()
    }

    #[test]
    fn mappings_parse_and_report_every_malformed_one() {
        let m = mappings(&vars(&[
            ("VAULT_ENV_DB_PASSWORD", "secret/shop/dev/db#password"),
            ("PATH", "/bin"),
        ]))
        .unwrap();
        assert_eq!(
            m,
            vec![Mapping {
                name: "DB_PASSWORD".into(),
                mount: "secret".into(),
                path: "shop/dev/db".into(),
                key: "password".into()
            }]
        );
        let err = mappings(&vars(&[
            ("VAULT_ENV_A", "secret/x"),
            ("VAULT_ENV_B", "nomount#k"),
        ]))
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("VAULT_ENV_A") && err.contains("VAULT_ENV_B"),
            "{err}"
        );
        assert_eq!(env_name("log-level"), "LOG_LEVEL");
        assert_eq!(env_name("1x"), "_1X");
    }

    #[test]
    fn child_env_drops_credentials_and_mappings() {
        let secrets = BTreeMap::from([("DB".to_owned(), SecretString::from("pw"))]);
        let env = child_env(
            vars(&[
                ("PATH", "/bin"),
                ("VAULT_ENV_DB", "secret/a#b"),
                ("VAULT_TOKEN", "t"),
                ("VAULT_SECRET_ID", "s"),
                ("VAULT_ADDR", "http://v"),
            ]),
            secrets.clone(),
            None,
        );
        assert_eq!(
            env,
            vars(&[("DB", "pw"), ("PATH", "/bin"), ("VAULT_ADDR", "http://v")])
        );
        let env = child_env(vec![], secrets, Some(&SecretString::from("tok")));
        assert!(env.contains(&("VAULT_TOKEN".into(), "tok".into())));
    }
}
