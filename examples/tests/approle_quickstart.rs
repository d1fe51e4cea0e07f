//! `approle-quickstart` run as its doc says, against a real OpenBao dev
//! server (scripts/demo used to run it; it now tells the whole story with
//! the adapters).

// Test helpers fail loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use testkit::OpenBao;

#[tokio::test]
async fn quickstart_checks_out_and_masks_the_secret() {
    let bao = OpenBao::start().await;
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_approle-quickstart"))
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("VAULT_ADDR", bao.addr())
        .env("VAULT_TOKEN", bao.root_token())
        .kill_on_drop(true)
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "stdout:\n{stdout}\nstderr:\n{stderr}");
    for step in [
        "[7] service read shop/dev/db",
        "[10] service token revoked",
        "all steps checked out",
    ] {
        assert!(stdout.contains(step), "{step:?} missing:\n{stdout}");
    }
    // The password it wrote and read is masked, wholly: not even a prefix.
    assert!(!stdout.contains("correct-horse-battery"), "{stdout}");
    assert!(!stdout.contains("co*"), "{stdout}");
    assert!(stdout.contains("password=**** (21 chars)"), "{stdout}");

    // A second run against the same server fails nowhere (setup is idempotent).
    let again = tokio::process::Command::new(env!("CARGO_BIN_EXE_approle-quickstart"))
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("VAULT_ADDR", bao.addr())
        .env("VAULT_TOKEN", bao.root_token())
        .kill_on_drop(true)
        .output()
        .await
        .unwrap();
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
}
