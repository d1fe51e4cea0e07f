//! Step 2: `vault-exec` as an ECS task's entrypoint: finds the task role
//! (ECS credentials endpoint), reads the credentials step 1 delivered to S3,
//! logs in, and execs a child with the secrets in its environment.

use std::process::Stdio;
use std::time::Duration;

use anyhow::Context;

use crate::env::{Bins, World};
use crate::listeners::EcsEndpoint;
use crate::provision::{BUCKET, IAM_ROLE, Provisioned};
use crate::report::{block, check, fact, mask, strip_ansi};

/// The child: prints its pid, then each variable of interest masked exactly
/// like [`mask`] (the length and a SHA-256 prefix, no character of the
/// value), or `unset`.
const CHILD: &str = r#"echo "pid $$"
for n in DB_PASSWORD API_KEY WEBHOOK_SECRET VAULT_ENV_DB_PASSWORD VAULT_TOKEN VAULT_ROLE_ID VAULT_SECRET_ID; do
  if eval "[ -n \"\${$n+x}\" ]"; then
    eval "v=\$$n"
    if [ ${#v} -lt 12 ]; then printf '%s=**** (%d chars)\n' "$n" "${#v}"
    else printf '%s=**** (%d chars, sha256:%.8s)\n' "$n" "${#v}" "$(printf '%s' "$v" | sha256sum)"; fi
  else
    printf '%s unset\n' "$n"
  fi
done"#;

/// Runs step 2.
pub async fn run(world: &World, bins: &Bins, provisioned: &Provisioned) -> anyhow::Result<()> {
    let role_arn = format!("arn:aws:iam::123456789012:role/{IAM_ROLE}");
    let ecs_token = crate::env::random_secret("ecs-");
    let ecs = EcsEndpoint::start(&role_arn, &ecs_token).await?;
    fact(format!(
        "ECS credentials endpoint {} answers for task role {role_arn}",
        ecs.uri()
    ));
    let mut cmd = tokio::process::Command::new(&bins.vault_exec);
    cmd.args([
        "--secrets-path",
        "secret/shop/dev/app",
        "--",
        "sh",
        "-c",
        CHILD,
    ])
    .env_clear()
    .env("PATH", std::env::var_os("PATH").unwrap_or_default())
    .envs(world.aws_env())
    .env("AWS_CONTAINER_CREDENTIALS_FULL_URI", ecs.uri())
    .env("AWS_CONTAINER_AUTHORIZATION_TOKEN", &ecs_token)
    .env("AWS_ENDPOINT_URL_S3", world.moto.endpoint())
    .env("VAULT_APPROLE_S3_BUCKET", BUCKET)
    .env("VAULT_ENV_DB_PASSWORD", "secret/shop/dev/db#password")
    .env("NO_COLOR", "1")
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .kill_on_drop(true);
    fact(format!(
        "ran: vault-exec --secrets-path secret/shop/dev/app -- sh -c '<print variables>'\n\
         with VAULT_ENV_DB_PASSWORD=secret/shop/dev/db#password, VAULT_APPROLE_S3_BUCKET={BUCKET},\n\
         no VAULT_ADDR and no token: both come from {}",
        provisioned.location
    ));
    let child = cmd.spawn().context("cannot start vault-exec")?;
    let pid = child.id().unwrap_or_default();
    let out = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .context("check failed: vault-exec did not finish within 30 s")?
        .context("vault-exec")?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = strip_ansi(&String::from_utf8_lossy(&out.stderr));
    fact("vault-exec logged:");
    block("| ", &stderr);
    fact("the child printed:");
    block("> ", &stdout);

    check(out.status.success(), "the child ran and exited 0", || {
        format!("exit {}\nstderr:\n{stderr}\nstdout:\n{stdout}", out.status)
    })?;
    check(
        stdout.lines().next() == Some(format!("pid {pid}").as_str()),
        format!(
            "the child IS the entrypoint process (exec, same pid {pid}): signals reach the app"
        ),
        || stdout.clone(),
    )?;
    let lines: Vec<&str> = stdout.lines().collect();
    let expected = [
        format!("DB_PASSWORD={}", mask(&world.db_password)),
        format!("API_KEY={}", mask(&world.api_key)),
        format!("WEBHOOK_SECRET={}", mask(&world.webhook_secret)),
    ];
    check(
        expected.iter().all(|e| lines.contains(&e.as_str())),
        "DB_PASSWORD, API_KEY, WEBHOOK_SECRET match the values in OpenBao (length and SHA-256)",
        || format!("expected {expected:?}\ngot:\n{stdout}"),
    )?;
    let gone = [
        "VAULT_ENV_DB_PASSWORD",
        "VAULT_TOKEN",
        "VAULT_ROLE_ID",
        "VAULT_SECRET_ID",
    ];
    check(
        gone.iter()
            .all(|n| lines.contains(&format!("{n} unset").as_str())),
        "no Vault credential and no VAULT_ENV_* mapping reached the app",
        || stdout.clone(),
    )?;
    check(
        ecs.calls() >= 1 && stderr.contains("logged in") && stderr.contains(IAM_ROLE),
        format!("it found its role through the ECS endpoint and logged in as AppRole {IAM_ROLE}"),
        || format!("ECS endpoint calls: {}\n{stderr}", ecs.calls()),
    )?;
    let leaked = [&world.db_password, &world.api_key, &world.webhook_secret]
        .iter()
        .any(|s| stderr.contains(s.as_str()) || stdout.contains(s.as_str()));
    check(
        !leaked,
        "no secret value in vault-exec's log or the demo's output",
        || "a secret value was printed".to_owned(),
    )?;
    Ok(())
}
