//! Turning Vault's refusals into errors a user can act on.

use vault_client::Error;

use crate::error::AwsAuthError;

impl AwsAuthError {
    /// Converts into the [`vault_client::Error::Auth`] a `VaultAuth::login`
    /// returns: the message is this error's text, the source its cause.
    pub fn into_vault_error(self, method: &'static str) -> Error {
        let message = self.to_string();
        let source: Option<Box<dyn std::error::Error + Send + Sync + 'static>> = match self {
            // CredentialsFailed already carries its causes' text in the message.
            Self::NoCredentials { source, .. }
            | Self::AssumeRole { source, .. }
            | Self::Imds { source, .. } => source,
            _ => None,
        };
        Error::auth(method, message, source)
    }
}

/// Wraps the error of `POST auth/<mount>/login` with what the user should check.
pub(crate) fn login_refused(method: &'static str, mount: &str, role: &str, e: Error) -> Error {
    let Some(status) = e.status() else {
        return Error::auth(
            method,
            format!("cannot reach vault to log in at auth/{mount}"),
            Some(Box::new(e)),
        );
    };
    if status >= 500 || status == 429 {
        return Error::auth(
            method,
            format!("vault failed to process the login at auth/{mount} ({status}); retry later"),
            Some(Box::new(e)),
        );
    }
    let words = e.vault_errors().join("; ");
    let hint = hint(method, mount, role, status, &words);
    let said = if words.is_empty() {
        String::new()
    } else {
        format!(": {words}")
    };
    Error::auth(
        method,
        format!(
            "vault refused the login as role \"{role}\" at auth/{mount} ({status}){said}{hint}"
        ),
        Some(Box::new(e)),
    )
}

fn hint(method: &str, mount: &str, role: &str, status: u16, words: &str) -> String {
    let w = words.to_ascii_lowercase();
    let h: String = if w.contains("x-vault-aws-iam-server-id") && w.contains("expected") {
        "VAULT_IAM_SERVER_ID does not match the mount's iam_server_id_header_value: set it to that value"
            .into()
    } else if w.contains("x-vault-aws-iam-server-id") || w.contains("server id") {
        "the mount requires X-Vault-AWS-IAM-Server-ID: set VAULT_IAM_SERVER_ID to the mount's \
         iam_server_id_header_value"
            .into()
    } else if w.contains("signaturedoesnotmatch") && !w.contains("credential should be scoped") {
        "STS could not verify the signature: the secret key does not belong to the access key, the \
         clock is off, or the signing region differs from the one Vault forwards to (set \
         VAULT_STS_ENDPOINT_REGION to the region of Vault's sts_endpoint)"
            .into()
    } else if w.contains("credential should be scoped") || w.contains("region") {
        "the STS endpoint and the signing region must match what the Vault server forwards to (its \
         sts_endpoint/sts_region): set VAULT_STS_ENDPOINT_REGION to that region, or unset it for the \
         global endpoint (us-east-1); also check the clock"
            .into()
    } else if w.contains("expiredtoken") || w.contains("expired") {
        "the AWS session credentials have expired: refresh them".into()
    } else if w.contains("invalidclienttokenid") || w.contains("security token") {
        "STS does not know this access key: check the AWS credentials in use".into()
    } else if w.contains("entry for role") || (w.contains("role") && w.contains("not found")) {
        format!(
            "there is no role \"{role}\" at auth/{mount}: check VAULT_AUTH_ROLE (and \
             VAULT_AUTH_PROVIDER for the mount)"
        )
    } else if w.contains("does not belong to the role") || w.contains("bound") {
        "the role's bound_iam_principal_arn does not include this principal; for an assumed role \
         bind arn:aws:iam::<account>:role/<name>"
            .into()
    } else if w.contains("nonce") || w.contains("client nonce") {
        "the EC2 nonce does not match the one of the first login: use the same nonce (nonce file), \
         or ask an operator to clear the instance's identity access list entry"
            .into()
    } else if status == 404 || w.contains("no handler for route") || w.contains("unsupported path")
    {
        format!(
            "no {} auth method is mounted at auth/{mount}: check VAULT_AUTH_PROVIDER",
            if method == "ec2" { "aws (ec2)" } else { "aws" }
        )
    } else if status == 403 {
        "the role does not accept this identity: check the role's bindings".into()
    } else {
        String::new()
    };
    if h.is_empty() {
        h
    } else {
        format!(" (hint: {h})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(status: u16, words: &str) -> Error {
        Error::Api {
            status,
            method: "POST".into(),
            path: "/v1/auth/aws/login".into(),
            errors: vec![words.into()],
        }
    }

    #[test]
    fn server_id_refusals_name_the_variable() {
        let e = login_refused(
            "aws-iam",
            "aws",
            "app",
            api(400, "missing header \"X-Vault-AWS-IAM-Server-ID\""),
        );
        let s = e.to_string();
        assert!(s.contains("missing header"), "{s}");
        assert!(s.contains("set VAULT_IAM_SERVER_ID"), "{s}");
        assert_eq!(e.status(), Some(400));
        assert!(!e.is_retryable());
    }

    #[test]
    fn other_refusals_get_their_own_hints() {
        let cases = [
            ("entry for role app not found", "VAULT_AUTH_ROLE"),
            (
                "error making upstream request: SignatureDoesNotMatch: Credential should be scoped to a valid region",
                "VAULT_STS_ENDPOINT_REGION",
            ),
            (
                "IAM Principal \"arn:aws:iam::1:user/x\" does not belong to the role \"app\"",
                "bound_iam_principal_arn",
            ),
        ];
        for (words, expect) in cases {
            let s = login_refused("aws-iam", "aws", "app", api(400, words)).to_string();
            assert!(s.contains(expect), "{words} -> {s}");
        }
        let e = login_refused("aws-iam", "aws", "app", api(503, "sealed"));
        assert!(e.is_retryable());
    }
}
