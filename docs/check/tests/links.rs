//! Every relative link in README.md, docs/*.md and the crate READMEs points to a file that
//! exists, and every `#anchor` into a Markdown file to one of its headings.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
// Test helpers fail loudly.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// GitHub's anchor for a heading: lower case, punctuation dropped, spaces
/// to `-`.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

fn anchors(text: &str) -> BTreeSet<String> {
    let mut in_code = false;
    let mut out = BTreeSet::new();
    for line in text.lines() {
        if line.starts_with("```") {
            in_code = !in_code;
        } else if !in_code && line.starts_with('#') {
            out.insert(slug(line.trim_start_matches('#')));
        }
    }
    out
}

/// `(target, anchor)` of every `](target#anchor)` outside code blocks.
fn links(text: &str) -> Vec<(String, Option<String>)> {
    let mut out = Vec::new();
    let mut in_code = false;
    for line in text.lines() {
        if line.starts_with("```") {
            in_code = !in_code;
            continue;
        }
        if in_code {
            continue;
        }
        for part in line.split("](").skip(1) {
            let Some(end) = part.find(')') else { continue };
            let link = &part[..end];
            if link.contains("://") || link.starts_with("mailto:") || link.contains(' ') {
                continue;
            }
            let (target, anchor) = match link.split_once('#') {
                Some((t, a)) => (t.to_owned(), Some(a.to_owned())),
                None => (link.to_owned(), None),
            };
            out.push((target, anchor));
        }
    }
    out
}

#[test]
fn every_relative_link_resolves() {
    let root = root();
    let mut files = vec![root.join("README.md"), root.join("ARCHITECTURE.md")];
    for entry in fs::read_dir(root.join("docs")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "md") {
            files.push(path);
        }
    }
    // The crate READMEs (what crates.io shows) link into docs/ too.
    for dir in ["", "adapters"] {
        for entry in fs::read_dir(root.join(dir)).unwrap() {
            let readme = entry.unwrap().path().join("README.md");
            if readme.is_file() {
                files.push(readme);
            }
        }
    }
    let mut broken = Vec::new();
    for file in &files {
        let text = fs::read_to_string(file).unwrap();
        let dir = file.parent().unwrap();
        for (target, anchor) in links(&text) {
            let path = if target.is_empty() {
                file.clone()
            } else {
                dir.join(&target)
            };
            let shown = file.strip_prefix(&root).unwrap().display().to_string();
            if !path.exists() {
                broken.push(format!("{shown}: {target} does not exist"));
                continue;
            }
            if let Some(anchor) = anchor
                && path.extension().is_some_and(|e| e == "md")
                && !anchors(&fs::read_to_string(&path).unwrap()).contains(&anchor)
            {
                broken.push(format!("{shown}: {target}#{anchor} names no heading"));
            }
        }
    }
    assert!(
        broken.is_empty(),
        "broken links:\n  {}",
        broken.join("\n  ")
    );
}

#[test]
fn links_and_anchors_are_parsed_like_github() {
    assert_eq!(
        slug(" Replication (`lambda-replicate` and `vault-aws replicate`)"),
        "replication-lambda-replicate-and-vault-aws-replicate"
    );
    assert_eq!(slug(" vault-aws (CLI)"), "vault-aws-cli");
    let text = "see [a](docs/a.md#x-y) and [b](https://e.com)\n```sh\n[c](nope.md)\n```\n";
    assert_eq!(
        links(text),
        vec![("docs/a.md".to_owned(), Some("x-y".to_owned()))]
    );
}
