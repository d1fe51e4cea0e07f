//! TLS settings against a real OpenBao dev server with TLS (`-dev-tls`: its
//! own CA, a certificate for localhost and 127.0.0.1).

// Test helpers fail loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;

use testkit::OpenBao;
use vault_client::{ClientConfig, ConfigError, Error, TransportKind, VaultClient};

fn config(vars: &[(&str, String)]) -> Result<ClientConfig, ConfigError> {
    let map: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect();
    ClientConfig::from_lookup(move |k| map.get(k).cloned()).map(|c| c.with_max_retries(0))
}

async fn health(vars: &[(&str, String)]) -> Result<vault_client::Health, Error> {
    VaultClient::new(config(vars)?)?.health().await
}

#[tokio::test]
async fn tls_settings_against_a_real_server() {
    let bao = OpenBao::start_mutual_tls().await;
    let addr = bao.addr();
    assert!(addr.starts_with("https://127.0.0.1:"), "{addr}");
    let ca = bao.ca_cert().expect("a TLS dev server has a CA");
    let cert_dir = ca.parent().unwrap().to_path_buf();

    // Verification is on by default: the dev CA is not a system root.
    let err = health(&[("VAULT_ADDR", addr.clone())]).await.unwrap_err();
    assert_eq!(
        err.transport_kind(),
        Some(TransportKind::Connect),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .starts_with("cannot reach vault for GET /v1/sys/health"),
        "{err}"
    );

    // VAULT_CACERT trusts the dev CA.
    let ok = health(&[
        ("VAULT_ADDR", addr.clone()),
        ("VAULT_CACERT", ca.display().to_string()),
    ])
    .await;
    assert!(ok.unwrap().is_ready());

    // VAULT_CAPATH: a directory holding the CA.
    let capath = tempfile::tempdir().unwrap();
    std::fs::copy(&ca, capath.path().join("ca.pem")).unwrap();
    let ok = health(&[
        ("VAULT_ADDR", addr.clone()),
        ("VAULT_CAPATH", capath.path().display().to_string()),
    ])
    .await;
    assert!(ok.unwrap().is_ready());

    // VAULT_SKIP_VERIFY accepts the unknown CA.
    let ok = health(&[
        ("VAULT_ADDR", addr.clone()),
        ("VAULT_SKIP_VERIFY", "true".into()),
    ])
    .await;
    assert!(ok.unwrap().is_ready());

    // VAULT_TLS_SERVER_NAME: the certificate is checked against that name while
    // the connection goes to VAULT_ADDR's host. The dev certificate names
    // localhost (good) and not vault.invalid (refused).
    let with_name = |name: &str| {
        vec![
            ("VAULT_ADDR", addr.clone()),
            ("VAULT_CACERT", ca.display().to_string()),
            ("VAULT_TLS_SERVER_NAME", name.to_owned()),
        ]
    };
    assert!(health(&with_name("localhost")).await.unwrap().is_ready());
    let err = health(&with_name("vault.invalid")).await.unwrap_err();
    assert_eq!(
        err.transport_kind(),
        Some(TransportKind::Connect),
        "{err:?}"
    );

    // Mutual TLS: the second listener requires a client certificate signed
    // by the dev CA. Without one the handshake fails; with
    // VAULT_CLIENT_CERT/VAULT_CLIENT_KEY it succeeds.
    let mtls = bao.mtls_addr().expect("a mutual TLS listener");
    let err = health(&[
        ("VAULT_ADDR", mtls.clone()),
        ("VAULT_CACERT", ca.display().to_string()),
    ])
    .await
    .unwrap_err();
    // TLS 1.3: the server's alert (CertificateRequired) arrives after the
    // client's side of the handshake, so the request fails while sending.
    assert!(err.transport_kind().is_some(), "{err:?}");
    let ok = health(&[
        ("VAULT_ADDR", mtls.clone()),
        ("VAULT_CACERT", ca.display().to_string()),
        (
            "VAULT_CLIENT_CERT",
            cert_dir.join("vault-cert.pem").display().to_string(),
        ),
        (
            "VAULT_CLIENT_KEY",
            cert_dir.join("vault-key.pem").display().to_string(),
        ),
    ])
    .await;
    assert!(ok.unwrap().is_ready());
}

#[test]
fn unusable_tls_files_are_config_errors_naming_the_variable() {
    let dir = tempfile::tempdir().unwrap();
    let not_pem = dir.path().join("ca.pem");
    std::fs::write(&not_pem, "this is not a certificate").unwrap();
    let missing = dir.path().join("missing.pem");
    let empty_dir = tempfile::tempdir().unwrap();
    let cases: Vec<(Vec<(&str, String)>, &str)> = vec![
        (
            vec![("VAULT_CACERT", missing.display().to_string())],
            "VAULT_CACERT: cannot use",
        ),
        (
            vec![("VAULT_CACERT", not_pem.display().to_string())],
            "no PEM certificate",
        ),
        (
            vec![("VAULT_CAPATH", empty_dir.path().display().to_string())],
            "VAULT_CAPATH: cannot use",
        ),
        (
            vec![
                ("VAULT_CLIENT_CERT", not_pem.display().to_string()),
                ("VAULT_CLIENT_KEY", not_pem.display().to_string()),
            ],
            "VAULT_CLIENT_CERT: cannot use",
        ),
    ];
    for (vars, want) in cases {
        let err = VaultClient::new(config(&vars).unwrap()).unwrap_err();
        assert!(err.to_string().contains(want), "{vars:?}: {err}");
    }
}
