//! The set of valid tokens: parsing from `AUTHORIZER_TOKENS` and from the
//! Secrets Manager secret, and the constant-time lookup.

use std::fmt;

use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use subtle::{ConditionallySelectable, ConstantTimeEq};

use crate::TokenError;

/// Shortest accepted token (bytes). Shorter tokens are rejected when the set
/// is loaded: a guessable shared secret is a misconfiguration.
pub const MIN_TOKEN_LEN: usize = 16;
/// Longest accepted token (bytes), configured or presented.
pub const MAX_TOKEN_LEN: usize = 4096;
/// Longest accepted client name (JSON object form of the secret).
pub const MAX_CLIENT_NAME_LEN: usize = 128;

/// `true` when `s` uses only characters a token may hold: visible ASCII
/// without `"`, `,`, `;` and `\` (so it travels unchanged in an
/// `Authorization` header, a cookie, and a comma-separated variable).
pub(crate) fn is_token_text(s: &str) -> bool {
    s.bytes()
        .all(|b| (0x21..=0x7e).contains(&b) && !matches!(b, b'"' | b',' | b';' | b'\\'))
}

fn is_client_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_CLIENT_NAME_LEN
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-:@/+=".contains(&b))
}

fn digest(token: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(&Sha256::digest(token.as_bytes()));
    out
}

/// One valid token with its non-secret client label.
pub struct ValidToken {
    label: String,
    // Kept so the set owns the secret in a zeroizing, redacting wrapper; the
    // comparison uses the digest (fixed length, so no length leak).
    _token: SecretString,
    digest: [u8; 32],
}

impl ValidToken {
    /// A token for client `label`. `origin` names where it came from, for
    /// the error message (never the value itself).
    pub fn new(label: &str, token: &str, origin: &str) -> Result<Self, TokenError> {
        if token.len() < MIN_TOKEN_LEN || token.len() > MAX_TOKEN_LEN {
            return Err(TokenError::invalid(format!(
                "{origin}: a token must be {MIN_TOKEN_LEN} to {MAX_TOKEN_LEN} bytes long (got {} bytes)",
                token.len()
            )));
        }
        if !is_token_text(token) {
            return Err(TokenError::invalid(format!(
                "{origin}: a token may only hold visible ASCII characters other than \" , ; \\"
            )));
        }
        Ok(Self {
            label: label.to_owned(),
            digest: digest(token),
            _token: SecretString::from(token.to_owned()),
        })
    }

    /// The client label (principalId / context `client`).
    pub fn label(&self) -> &str {
        &self.label
    }
}

impl fmt::Debug for ValidToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ValidToken")
            .field("label", &self.label)
            .field("token", &"<redacted>")
            .finish()
    }
}

/// The valid tokens, looked up in constant time.
#[derive(Debug, Default)]
pub struct TokenSet {
    tokens: Vec<ValidToken>,
}

impl TokenSet {
    /// A set holding `tokens`.
    pub fn new(tokens: Vec<ValidToken>) -> Self {
        Self { tokens }
    }

    /// Tokens of `AUTHORIZER_TOKENS`: comma-separated, blanks around each
    /// ignored, empty entries skipped; labels `env-1`, `env-2`, ... (the
    /// 1-based position).
    pub fn from_env_list(value: &SecretString) -> Result<Self, TokenError> {
        let mut tokens = Vec::new();
        for (i, t) in value
            .expose_secret()
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .enumerate()
        {
            let label = format!("env-{}", i + 1);
            tokens.push(ValidToken::new(
                &label,
                t,
                &format!("AUTHORIZER_TOKENS entry {}", i + 1),
            )?);
        }
        Ok(Self { tokens })
    }

    /// Tokens of the secret's `SecretString`: a JSON array of strings
    /// (labels `secret-1`, `secret-2`, ...) or a JSON object mapping a client
    /// name to its token (the name is the label). An empty set is an error.
    pub fn from_secret(secret: &SecretString) -> Result<Self, TokenError> {
        const EXPECTED: &str = "expected a JSON array of token strings or a JSON object mapping client names to tokens";
        let value: serde_json::Value = serde_json::from_str(secret.expose_secret())
            // The serde error can quote the input: say only where it failed.
            .map_err(|e| {
                TokenError::invalid(format!(
                    "the secret is not valid JSON (line {}, column {}): {EXPECTED}",
                    e.line(),
                    e.column()
                ))
            })?;
        let mut tokens = Vec::new();
        match value {
            serde_json::Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    let Some(t) = item.as_str() else {
                        return Err(TokenError::invalid(format!(
                            "secret array element {}: not a string; {EXPECTED}",
                            i + 1
                        )));
                    };
                    let label = format!("secret-{}", i + 1);
                    tokens.push(ValidToken::new(
                        &label,
                        t,
                        &format!("secret array element {}", i + 1),
                    )?);
                }
            }
            serde_json::Value::Object(map) => {
                for (name, item) in &map {
                    if !is_client_name(name) {
                        return Err(TokenError::invalid(format!(
                            "secret object key {name:?}: a client name must be 1 to {MAX_CLIENT_NAME_LEN} characters of A-Z a-z 0-9 . _ - : @ / + ="
                        )));
                    }
                    let Some(t) = item.as_str() else {
                        return Err(TokenError::invalid(format!(
                            "secret object key {name:?}: the value is not a string; {EXPECTED}"
                        )));
                    };
                    tokens.push(ValidToken::new(
                        name,
                        t,
                        &format!("secret object key {name:?}"),
                    )?);
                }
            }
            _ => return Err(TokenError::invalid(EXPECTED.to_owned())),
        }
        if tokens.is_empty() {
            return Err(TokenError::invalid(format!(
                "the secret holds no token; {EXPECTED}"
            )));
        }
        Ok(Self { tokens })
    }

    /// This set followed by `other`'s tokens.
    pub fn merged(&self, other: &TokenSet) -> TokenSet {
        let copy = |t: &ValidToken| ValidToken {
            label: t.label.clone(),
            _token: t._token.clone(),
            digest: t.digest,
        };
        TokenSet {
            tokens: self.tokens.iter().chain(&other.tokens).map(copy).collect(),
        }
    }

    /// Number of tokens.
    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    /// `true` when the set holds no token.
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    /// The labels, in order (safe to log).
    pub fn labels(&self) -> Vec<&str> {
        self.tokens.iter().map(|t| t.label.as_str()).collect()
    }

    /// The label of the token equal to `presented`, if any.
    ///
    /// Both sides are compared as SHA-256 digests with
    /// [`subtle::ConstantTimeEq`], and every token of the set is compared
    /// (no early exit), so the time taken depends neither on which token
    /// matched nor on how much of a wrong token was right.
    pub fn find(&self, presented: &str) -> Option<&str> {
        let wanted = digest(presented);
        let mut found = subtle::Choice::from(0u8);
        let mut index = 0u32;
        for (i, t) in self.tokens.iter().enumerate() {
            let eq = t.digest.ct_eq(&wanted);
            found |= eq;
            let i = u32::try_from(i).unwrap_or(u32::MAX);
            index.conditional_assign(&i, eq);
        }
        if bool::from(found) {
            self.tokens
                .get(usize::try_from(index).unwrap_or(usize::MAX))
                .map(|t| t.label.as_str())
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "tok-aaaaaaaaaaaaaaaa";
    const B: &str = "tok-bbbbbbbbbbbbbbbb";

    fn s(v: &str) -> SecretString {
        SecretString::from(v.to_owned())
    }

    #[test]
    fn env_list_labels_by_position_and_skips_blanks() {
        let set = TokenSet::from_env_list(&s(&format!(" {A} ,, {B},"))).unwrap();
        assert_eq!(set.labels(), ["env-1", "env-2"]);
        assert_eq!(set.find(A), Some("env-1"));
        assert_eq!(set.find(B), Some("env-2"));
        assert_eq!(set.find("tok-cccccccccccccccc"), None);
        assert_eq!(set.find(""), None);
        assert_eq!(set.find(&A[..A.len() - 1]), None, "a prefix is not a match");
        assert_eq!(set.find(&format!("{A}x")), None);
    }

    #[test]
    fn secret_array_and_object_forms() {
        let set = TokenSet::from_secret(&s(&format!(r#"["{A}","{B}"]"#))).unwrap();
        assert_eq!(set.labels(), ["secret-1", "secret-2"]);
        assert_eq!(set.find(B), Some("secret-2"));

        let set =
            TokenSet::from_secret(&s(&format!(r#"{{"billing":"{A}","shop-web":"{B}"}}"#))).unwrap();
        assert_eq!(set.find(A), Some("billing"));
        assert_eq!(set.find(B), Some("shop-web"));
        assert_eq!(set.len(), 2);
    }

    #[test]
    fn bad_secrets_are_rejected_without_quoting_tokens() {
        let cases = [
            ("not json".to_owned(), "not valid JSON"),
            (format!(r#""{A}""#), "expected a JSON array"),
            ("[]".to_owned(), "holds no token"),
            ("{}".to_owned(), "holds no token"),
            (r#"[1]"#.to_owned(), "element 1: not a string"),
            (r#"["short"]"#.to_owned(), "16 to 4096 bytes"),
            (
                r#"["has space in the token!!"]"#.to_owned(),
                "visible ASCII",
            ),
            (format!(r#"{{"bad name":"{A}"}}"#), "client name"),
            (
                r#"{"x":"secret-value-xyz-1234 5"}"#.to_owned(),
                "visible ASCII",
            ),
        ];
        for (secret, expected) in cases {
            let e = TokenSet::from_secret(&s(&secret)).unwrap_err().to_string();
            assert!(e.contains(expected), "{secret}: {e}");
            assert!(!e.contains(A), "{e}");
            assert!(!e.contains("has space"), "{e}");
            assert!(!e.contains("secret-value-xyz"), "{e}");
        }
        let e = TokenSet::from_env_list(&s(&format!("{A},short")))
            .unwrap_err()
            .to_string();
        assert!(e.contains("AUTHORIZER_TOKENS entry 2"), "{e}");
        assert!(!e.contains("short,") && !e.contains(A), "{e}");
    }

    #[test]
    fn debug_redacts_and_merge_keeps_order() {
        let env = TokenSet::from_env_list(&s(A)).unwrap();
        let secret = TokenSet::from_secret(&s(&format!(r#"{{"web":"{B}"}}"#))).unwrap();
        let all = env.merged(&secret);
        assert_eq!(all.labels(), ["env-1", "web"]);
        assert_eq!(all.find(B), Some("web"));
        let debug = format!("{all:?}");
        assert!(!debug.contains(A) && !debug.contains(B), "{debug}");
        assert!(debug.contains("redacted"), "{debug}");
    }
}
