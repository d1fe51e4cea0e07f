//! `vault-aws login aws|ec2`: log in with Vault's aws auth method and print
//! the token (or JSON, or write a 0600 token file).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{Args, Subcommand};
use vault_aws_auth::{AwsIamAuth, Ec2Auth};
use vault_client::{ExposeSecret, VaultAuth, VaultClient};

use crate::Format;

/// The login methods.
#[derive(Subcommand, Debug)]
pub enum LoginCommand {
    /// IAM login: sign sts:GetCallerIdentity with this machine's AWS credentials
    /// (environment, profile, web identity, ECS task role, EC2 instance role).
    Aws {
        /// Vault role; default VAULT_AUTH_ROLE.
        #[arg(long)]
        role: Option<String>,
        /// Mount of the aws auth method; default VAULT_AUTH_PROVIDER, else `aws`.
        #[arg(long)]
        mount: Option<String>,
        /// X-Vault-AWS-IAM-Server-ID value; default VAULT_IAM_SERVER_ID.
        #[arg(long, value_name = "ID")]
        server_id: Option<String>,
        /// Sign for the regional STS endpoint of this region; default
        /// VAULT_STS_ENDPOINT_REGION, else the global endpoint (us-east-1).
        #[arg(long, value_name = "REGION")]
        sts_region: Option<String>,
        /// Assume this role first; default VAULT_ASSUMED_ROLE_ARN.
        #[arg(long, value_name = "ARN")]
        assume_role: Option<String>,
        #[command(flatten)]
        output: Output,
    },
    /// EC2 login: the instance's PKCS7 identity document from IMDSv2.
    Ec2 {
        /// Vault role; default VAULT_AUTH_ROLE, else Vault's default (the AMI id).
        #[arg(long)]
        role: Option<String>,
        /// Mount of the aws auth method; default VAULT_AUTH_PROVIDER, else `aws`.
        #[arg(long)]
        mount: Option<String>,
        /// Keep Vault's nonce in this file (0600) for the next login;
        /// default VAULT_EC2_NONCE_FILE.
        #[arg(long, value_name = "PATH")]
        nonce_file: Option<PathBuf>,
        #[command(flatten)]
        output: Output,
    },
}

/// Where the token goes (the global `--format`: `table` prints the bare
/// token, or a summary with --token-file; `json` the token's properties).
#[derive(Args, Debug)]
pub struct Output {
    /// Write the token to this file (mode 0600, replaced atomically) instead
    /// of printing it.
    #[arg(long, value_name = "PATH")]
    token_file: Option<PathBuf>,
}

fn lookup_with(overrides: Vec<(&'static str, Option<String>)>) -> impl Fn(&str) -> Option<String> {
    move |name| {
        overrides
            .iter()
            .find(|(n, v)| *n == name && v.is_some())
            .and_then(|(_, v)| v.clone())
            .or_else(|| std::env::var(name).ok())
    }
}

/// Builds the auth method of `command` from its flags and the environment.
fn auth(command: LoginCommand) -> anyhow::Result<(Arc<dyn VaultAuth>, Output)> {
    Ok(match command {
        LoginCommand::Aws {
            role,
            mount,
            server_id,
            sts_region,
            assume_role,
            output,
        } => {
            let lookup = lookup_with(vec![
                ("VAULT_AUTH_ROLE", role),
                ("VAULT_AUTH_PROVIDER", mount),
                ("VAULT_IAM_SERVER_ID", server_id),
                ("VAULT_STS_ENDPOINT_REGION", sts_region),
                ("VAULT_ASSUMED_ROLE_ARN", assume_role),
            ]);
            let auth = AwsIamAuth::from_lookup(lookup)
                .context("invalid aws login settings (use --role or VAULT_AUTH_ROLE)")?;
            (Arc::new(auth), output)
        }
        LoginCommand::Ec2 {
            role,
            mount,
            nonce_file,
            output,
        } => {
            let lookup = lookup_with(vec![
                ("VAULT_AUTH_ROLE", role),
                ("VAULT_AUTH_PROVIDER", mount),
                (
                    "VAULT_EC2_NONCE_FILE",
                    nonce_file.map(|p| p.display().to_string()),
                ),
            ]);
            (
                Arc::new(Ec2Auth::from_lookup(lookup).context("invalid ec2 login settings")?),
                output,
            )
        }
    })
}

/// Runs `vault-aws login ...`.
pub async fn run(
    client: &VaultClient,
    command: LoginCommand,
    format: Format,
) -> anyhow::Result<ExitCode> {
    let (auth, output) = auth(command)?;
    // The error's own text already holds Vault's words and the hint; its
    // source chain would repeat them.
    let login = auth
        .login(client)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    tracing::info!(accessor = %login.accessor, method = auth.method(), "logged in");
    if let Some(path) = &output.token_file {
        vault_aws_auth::write_private_file(path, login.client_token.expose_secret().as_bytes())
            .with_context(|| format!("cannot write the token file {}", path.display()))?;
    }
    let token = output
        .token_file
        .is_none()
        .then(|| login.client_token.expose_secret().to_owned());
    match format {
        Format::Json => {
            let mut json = serde_json::json!({
                "method": auth.method(),
                "accessor": login.accessor,
                "policies": login.policies,
                "token_policies": login.token_policies,
                "lease_duration": login.lease_duration,
                "renewable": login.renewable,
                "entity_id": login.entity_id,
                "metadata": login.metadata,
            });
            match (&token, &output.token_file) {
                (Some(t), _) => json["client_token"] = t.clone().into(),
                (None, Some(p)) => json["token_file"] = p.display().to_string().into(),
                (None, None) => {}
            }
            println!("{json}");
        }
        Format::Table => match (&token, &output.token_file) {
            (Some(t), _) => println!("{t}"),
            (None, Some(p)) => println!(
                "token written to {} (accessor {}, ttl {} s, policies {})",
                p.display(),
                login.accessor,
                login.lease_duration,
                login.policies.join(",")
            ),
            (None, None) => {}
        },
    }
    Ok(ExitCode::SUCCESS)
}
