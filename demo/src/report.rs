//! What the demo prints: step headers, facts, checks, masking, the summary.

use std::fmt::Display;
use std::time::Duration;

use serde_json::Value;
use sha2::{Digest, Sha256};

/// Keys whose values are secrets wherever they appear in a JSON document.
const SECRET_KEYS: &[&str] = &[
    "secret_id",
    "wrapping_token",
    "client_token",
    "token",
    "password",
    "api-key",
    "webhook-secret",
    "role_id",
    "RoleId",
    "SecretId",
    "SecretString",
];

/// `**** (36 chars, sha256:1a2b3c4d)`: no character of the value, only its
/// length and the first 8 hex digits of its SHA-256, enough to see that two
/// places hold the same value (or that a value changed). Values shorter
/// than 12 characters show only their length: a short value could be
/// guessed from its digest.
pub fn mask(value: &str) -> String {
    let len = value.chars().count();
    if len < 12 {
        return format!("**** ({len} chars)");
    }
    let digest = Sha256::digest(value.as_bytes());
    let short: String = digest[..4].iter().map(|b| format!("{b:02x}")).collect();
    format!("**** ({len} chars, sha256:{short})")
}

/// A copy of `value` with every string under a [`SECRET_KEYS`] key masked.
pub fn mask_json(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let v = match v {
                        Value::String(s) if SECRET_KEYS.contains(&k.as_str()) => {
                            Value::String(mask(s))
                        }
                        other => mask_json(other),
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(mask_json).collect()),
        other => other.clone(),
    }
}

/// Prints the header of step `n`.
pub fn header(n: usize, title: &str, what: &str) {
    println!();
    println!("[{n}/4] {title}: {what}");
}

/// Prints a fact: something done or seen.
pub fn fact(text: impl Display) {
    for (i, line) in text.to_string().lines().enumerate() {
        if i == 0 {
            println!("    - {line}");
        } else {
            println!("      {line}");
        }
    }
}

/// Prints an indented block (e.g. a child's output), each line prefixed.
pub fn block(prefix: &str, text: &str) {
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        println!("        {prefix}{line}");
    }
}

/// Prints `ok` and the claim when `holds`, else returns an error naming the
/// claim and `detail()` (what was found instead).
pub fn check(
    holds: bool,
    claim: impl Display,
    detail: impl FnOnce() -> String,
) -> anyhow::Result<()> {
    if holds {
        println!("    ok  {claim}");
        Ok(())
    } else {
        anyhow::bail!("check failed: {claim}\n{}", detail())
    }
}

/// `1.23 s` or `456 ms`.
pub fn secs(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{} ms", d.as_millis())
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

/// The last `n` lines of `text`, for failure reports.
pub fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// The first line of `logs` containing each of `needles`, in log order.
pub fn excerpt(logs: &str, needles: &[&str]) -> String {
    let mut wanted: Vec<&str> = needles.to_vec();
    let mut out = Vec::new();
    for line in logs.lines() {
        if let Some(i) = wanted.iter().position(|n| line.contains(n)) {
            wanted.remove(i);
            out.push(line.trim());
        }
    }
    out.join("\n")
}

/// Removes ANSI colour sequences (ESC [ ... letter).
pub fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' && chars.peek() == Some(&'[') {
            chars.next();
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn masks_secrets_and_keeps_the_rest() {
        assert_eq!(mask("short"), "**** (5 chars)");
        // printf %s 0123456789abcdef | sha256sum → 9f9f5111…
        assert_eq!(mask("0123456789abcdef"), "**** (16 chars, sha256:9f9f5111)");
        let v = mask_json(&json!({"role": "shop", "secret_id": "0123456789abcdef",
            "nested": [{"password": "hunter2-hunter2"}]}));
        assert_eq!(
            v,
            json!({"role": "shop", "secret_id": "**** (16 chars, sha256:9f9f5111)",
                "nested": [{"password": "**** (15 chars, sha256:84ca4458)"}]})
        );
        assert_eq!(strip_ansi("\u{1b}[2mINFO\u{1b}[0m x"), "INFO x");
        assert_eq!(tail("a\nb\nc", 2), "b\nc");
        assert_eq!(excerpt("x1\ny\nx2\nz", &["z", "x"]), "x1\nz");
    }
}
