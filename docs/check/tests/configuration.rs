//! docs/configuration.md must name every environment variable the code
//! reads and every command-line flag the binaries declare.
//!
//! The scan reads the non-test source of the libraries (`vault-*/src`), the
//! adapters (`adapters/*/src`) and the examples (`examples/src`):
//! - environment variables: every string literal that looks like one
//!   (`"VAULT_ADDR"`, `env = "VAULT_EXEC_IAM_ROLE"`, constants such as
//!   `METHOD_VARIABLE`); a literal ending in `_` is a prefix
//!   (`VAULT_ENV_<NAME>`); `EnvFilter::try_from_default_env` reads `RUST_LOG`;
//! - flags: every clap `#[arg(long ...)]` field (`--field-name` or the
//!   `long = "..."` given);
//! - CLI subcommands: every variant of a `#[derive(Subcommand)]` enum must
//!   appear in a `vault-aws ...` usage line.
//!
//! Variables of the API Gateway authorizer and of the server in Lambda may be
//! documented on their own pages (docs/authorizer.md, docs/vault-in-lambda.md),
//! which docs/configuration.md links to.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
// Test helpers fail loudly.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Every `.rs` file below `dir`.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The source files the guide documents: libraries, adapters, examples.
fn sources() -> Vec<PathBuf> {
    let root = root();
    let mut dirs = Vec::new();
    for entry in fs::read_dir(&root).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with("vault-") && path.join("Cargo.toml").is_file() {
            dirs.push(path.join("src"));
        }
    }
    for entry in fs::read_dir(root.join("adapters")).unwrap() {
        dirs.push(entry.unwrap().path().join("src"));
    }
    dirs.push(root.join("examples/src"));
    let mut files = Vec::new();
    for dir in dirs {
        rust_files(&dir, &mut files);
    }
    files.sort();
    files
}

/// The file without its `#[cfg(test)] mod ...` (unit tests sit at the end
/// of a file and use made-up variable names).
fn without_tests(text: &str) -> &str {
    let mut offset = 0;
    let mut lines = text.split_inclusive('\n').peekable();
    while let Some(line) = lines.next() {
        if line.trim() == "#[cfg(test)]"
            && lines
                .peek()
                .is_some_and(|next| next.trim_start().starts_with("mod "))
        {
            return &text[..offset];
        }
        offset += line.len();
    }
    text
}

fn looks_like_variable(s: &str) -> bool {
    s.len() >= 4
        && s.contains('_')
        && s.starts_with(|c: char| c.is_ascii_uppercase())
        && s.chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
}

/// Names that look like variables but are not read from the environment.
const NOT_VARIABLES: &[&str] = &[
    "CARGO_PKG_VERSION", // env!() at compile time
];

/// (variable, file) for every variable-like string literal.
fn variables(files: &[PathBuf]) -> Vec<(String, String)> {
    let mut found = Vec::new();
    for file in files {
        let text = fs::read_to_string(file).unwrap();
        let code = without_tests(&text);
        let shown = file
            .strip_prefix(root())
            .unwrap_or(file)
            .display()
            .to_string();
        let parts: Vec<&str> = code.split('"').collect();
        // Odd parts are between a quote and the next one.
        for part in parts.iter().skip(1).step_by(2) {
            if looks_like_variable(part) && !NOT_VARIABLES.contains(part) {
                found.push(((*part).to_owned(), shown.clone()));
            }
        }
        if code.contains("try_from_default_env") {
            found.push(("RUST_LOG".to_owned(), shown.clone()));
        }
    }
    found
}

/// (flag, file) for every clap `#[arg(...)]` with `long`.
fn flags(files: &[PathBuf]) -> Vec<(String, String)> {
    let mut found = Vec::new();
    for file in files {
        let text = fs::read_to_string(file).unwrap();
        let code = without_tests(&text);
        let shown = file
            .strip_prefix(root())
            .unwrap_or(file)
            .display()
            .to_string();
        let lines: Vec<&str> = code.lines().map(str::trim).collect();
        let mut i = 0;
        while i < lines.len() {
            if !lines[i].starts_with("#[arg(") {
                i += 1;
                continue;
            }
            // The attribute may span several lines.
            let mut attr = lines[i].to_owned();
            while !attr.ends_with(")]") && i + 1 < lines.len() {
                i += 1;
                attr.push(' ');
                attr.push_str(lines[i]);
            }
            i += 1;
            let inner = attr.trim_start_matches("#[arg(").trim_end_matches(")]");
            let mut long = None;
            for item in inner.split(',').map(str::trim) {
                if item == "long" {
                    long = Some(None);
                } else if let Some(v) = item.strip_prefix("long =") {
                    long = Some(Some(v.trim().trim_matches('"').to_owned()));
                }
            }
            let Some(long) = long else { continue };
            // The field: the next line that is not an attribute or a comment.
            while i < lines.len() && (lines[i].starts_with("#[") || lines[i].starts_with("//")) {
                i += 1;
            }
            let field = lines
                .get(i)
                .and_then(|l| l.trim_start_matches("pub ").split(':').next())
                .map(str::trim)
                .unwrap_or_default();
            if field.starts_with('$') {
                // A macro's field: the flags it declares are found below.
                continue;
            }
            let name = long.unwrap_or_else(|| field.replace('_', "-"));
            found.push((format!("--{name}"), shown.clone()));
        }
        // `vault-aws replicate`'s settings: `field => "REPLICATE_VAR", ...` lines
        // of its `settings!` macro, one flag each (`--field-name`).
        for line in &lines {
            if let Some((field, rest)) = line.split_once(" => \"REPLICATE_")
                && field
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            {
                // Documented by one rule (checked below), not one by one.
                let variable = rest.split('"').next().unwrap_or_default();
                replicate_flag_pairs()
                    .lock()
                    .unwrap()
                    .push((field.to_owned(), format!("REPLICATE_{variable}")));
            }
        }
    }
    found
}

/// (field, variable) of every `vault-aws replicate` setting the scan saw.
fn replicate_flag_pairs() -> &'static std::sync::Mutex<Vec<(String, String)>> {
    static PAIRS: std::sync::Mutex<Vec<(String, String)>> = std::sync::Mutex::new(Vec::new());
    &PAIRS
}

/// (subcommand, file) for every variant of a clap `#[derive(Subcommand)]`
/// enum (variants sit at one indentation level inside the enum).
fn subcommands(files: &[PathBuf]) -> Vec<(String, String)> {
    let mut found = Vec::new();
    for file in files {
        let text = fs::read_to_string(file).unwrap();
        let code = without_tests(&text);
        let shown = file
            .strip_prefix(root())
            .unwrap_or(file)
            .display()
            .to_string();
        let mut lines = code.lines();
        while let Some(line) = lines.next() {
            if !(line.starts_with("#[derive(") && line.contains("Subcommand")) {
                continue;
            }
            for line in lines.by_ref() {
                if line.starts_with('}') {
                    break;
                }
                // A variant: four spaces, then an upper-case identifier.
                let Some(rest) = line.strip_prefix("    ") else {
                    continue;
                };
                if !rest.starts_with(|c: char| c.is_ascii_uppercase()) {
                    continue;
                }
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric())
                    .collect();
                // clap's kebab case: `Ec2` -> `ec2`, `DryRun` -> `dry-run`.
                let mut kebab = String::new();
                for (i, c) in name.chars().enumerate() {
                    if c.is_ascii_uppercase() && i > 0 {
                        kebab.push('-');
                    }
                    kebab.push(c.to_ascii_lowercase());
                }
                found.push((kebab, shown.clone()));
            }
        }
    }
    found
}

fn documentation() -> String {
    let docs = root().join("docs");
    let mut text = fs::read_to_string(docs.join("configuration.md"))
        .expect("docs/configuration.md is missing");
    // The authorizer and the server in Lambda document their own variables;
    // configuration.md links there.
    for page in ["authorizer.md", "vault-in-lambda.md"] {
        if let Ok(more) = fs::read_to_string(docs.join(page)) {
            text.push_str(&more);
        }
    }
    text
}

fn documented(doc: &str, name: &str) -> bool {
    if let Some(prefix) = name.strip_suffix('_') {
        // `VAULT_ENV_` is documented as `VAULT_ENV_<NAME>`.
        return doc.contains(&format!("{prefix}_<"));
    }
    // Whole names only: `VAULT_SECRET_ID` must not pass on `VAULT_SECRET_ID_FILE`.
    doc.match_indices(name).any(|(at, _)| {
        let next = doc[at + name.len()..].chars().next();
        let prev = doc[..at].chars().next_back();
        !next.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            && !prev.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    })
}

/// Fails unless the scan found every name in `known` (so the scan itself
/// works) and `docs/configuration.md` (or `authorizer.md`) mentions every
/// name it found; `what` names the kind ("environment variables", "flags").
fn assert_scanned_and_documented(found: &[(String, String)], known: &[&str], what: &str) {
    let names: BTreeSet<&str> = found.iter().map(|(n, _)| n.as_str()).collect();
    for known in known {
        assert!(
            names.contains(known),
            "the scan did not find {known}; found {names:?}"
        );
    }
    let doc = documentation();
    let mut missing: Vec<String> = found
        .iter()
        .filter(|(name, _)| !documented(&doc, name))
        .map(|(name, file)| format!("{name} (in {file})"))
        .collect();
    missing.sort();
    missing.dedup();
    assert!(
        missing.is_empty(),
        "docs/configuration.md does not mention these {what}:\n  {}",
        missing.join("\n  ")
    );
}

#[test]
fn every_variable_the_code_reads_is_documented() {
    // The scan itself must work: these are read in known places.
    assert_scanned_and_documented(
        &variables(&sources()),
        &[
            "VAULT_ADDR",
            "VAULT_AUTH_ROLE",
            "VAULT_RUN_MODE",
            "REPLICATE_SOURCES",
            "VAULT_EXEC_IAM_ROLE",
            "VAULT_APPROLE_DEADLINE_MARGIN",
            "VAULT_ENV_",
            "RUST_LOG",
        ],
        "environment variables",
    );
}

#[test]
fn every_command_line_flag_is_documented() {
    assert_scanned_and_documented(
        &flags(&sources()),
        &[
            "--address",
            "--iam-role",
            "--secrets-path",
            "--no-require-request-header",
            "--token-file",
        ],
        "flags",
    );
}

/// docs/configuration.md documents the replication flags by one rule: the
/// variable without `REPLICATE_`, lower case, dashes. Each flag must follow it.
#[test]
fn replication_flags_follow_their_variables() {
    flags(&sources());
    let pairs = replicate_flag_pairs().lock().unwrap().clone();
    assert!(pairs.len() > 20, "the scan found only {pairs:?}");
    for (field, variable) in pairs {
        let expected = variable
            .trim_start_matches("REPLICATE_")
            .to_ascii_lowercase();
        assert_eq!(
            field, expected,
            "the flag of {variable} breaks the documented rule"
        );
    }
    assert!(documentation().contains("`REPLICATE_WRITE_TPS` is `--write-tps`"));
}

#[test]
fn the_scanner_skips_unit_tests_and_reads_prefixes() {
    let code = "let a = get(\"VAULT_ADDR\");\n#[cfg(test)]\nmod tests {\n    const X: &str = \"VAULT_MADE_UP\";\n}\n";
    assert_eq!(without_tests(code), "let a = get(\"VAULT_ADDR\");\n");
    let doc = "`VAULT_ENV_<NAME>` and `VAULT_SECRET_ID_FILE` and `--token-file`";
    assert!(documented(doc, "VAULT_ENV_"));
    assert!(documented(doc, "VAULT_SECRET_ID_FILE"));
    assert!(!documented(doc, "VAULT_SECRET_ID"));
    assert!(documented(doc, "--token-file"));
    assert!(!documented(doc, "--token"));
}

#[test]
fn every_cli_subcommand_is_documented() {
    let found = subcommands(&sources());
    let names: BTreeSet<&str> = found.iter().map(|(n, _)| n.as_str()).collect();
    for known in [
        "vault",
        "health",
        "login",
        "aws",
        "ec2",
        "proxy",
        "replicate",
    ] {
        assert!(
            names.contains(known),
            "the scan did not find the subcommand {known}; found {names:?}"
        );
    }
    let doc = std::fs::read_to_string(root().join("docs/configuration.md")).unwrap();
    // A usage line `vault-aws ... <name> ...` names it.
    let usage: Vec<&str> = doc
        .lines()
        .filter(|l| l.trim_start().starts_with("vault-aws "))
        .collect();
    let mut missing: Vec<String> = found
        .iter()
        .filter(|(name, _)| {
            !usage
                .iter()
                .any(|l| l.split_whitespace().any(|w| w == name.as_str()))
        })
        .map(|(name, file)| format!("{name} (declared in {file})"))
        .collect();
    missing.sort();
    missing.dedup();
    assert!(
        missing.is_empty(),
        "docs/configuration.md has no `vault-aws ...` usage line for these subcommands:\n  {}",
        missing.join("\n  ")
    );
}
