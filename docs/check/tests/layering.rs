//! The layering rules of ARCHITECTURE.md, read from `cargo metadata`:
//!
//! 1. `vault-client` is the base: it depends on no other crate of the workspace.
//! 2. The capability crates (`vault-aws-auth`, `vault-approle`,
//!    `vault-replicate`, `vault-proxy`) are independent of each other, tests
//!    included (dev-dependencies count): a proxy test that links the AppRole
//!    crate would let the proxy's code grow a use of it unnoticed.
//! 3. No library depends on an adapter (a binary's crate) or on `testkit`
//!    (as a normal or build dependency; tests may use `testkit`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
// Test helpers fail loudly.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use serde_json::Value;

const BASE: &str = "vault-client";
const CAPABILITIES: [&str; 4] = [
    "vault-aws-auth",
    "vault-approle",
    "vault-replicate",
    "vault-proxy",
];
/// The libraries above the capability crates: `vault-auth-env` (the login
/// registry, at the root) and `vault-aws-lambda-env` (Lambda-only wiring,
/// under adapters/); neither may depend on an adapter binary.
const ADAPTER_LIBRARIES: [&str; 2] = ["vault-auth-env", "vault-aws-lambda-env"];

/// Workspace package -> (its manifest path, its workspace dependencies as
/// (name, kind) with kind "normal", "dev" or "build").
type Graph = BTreeMap<String, (String, BTreeSet<(String, String)>)>;

fn workspace_graph() -> Graph {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let out = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--no-deps", "--locked"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo metadata runs");
    assert!(
        out.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: Value = serde_json::from_slice(&out.stdout).unwrap();
    let packages = meta["packages"].as_array().unwrap();
    let names: BTreeSet<String> = packages
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_owned())
        .collect();
    packages
        .iter()
        .map(|p| {
            let deps = p["dependencies"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|d| names.contains(d["name"].as_str().unwrap()))
                .map(|d| {
                    (
                        d["name"].as_str().unwrap().to_owned(),
                        d["kind"].as_str().unwrap_or("normal").to_owned(),
                    )
                })
                .collect();
            let manifest = p["manifest_path"].as_str().unwrap().to_owned();
            (p["name"].as_str().unwrap().to_owned(), (manifest, deps))
        })
        .collect()
}

/// The violations of the three rules in a graph.
fn violations(graph: &Graph) -> Vec<String> {
    let mut found = Vec::new();
    let adapters: BTreeSet<&str> = graph
        .iter()
        .filter(|(name, (manifest, _))| {
            manifest.contains("/adapters/") && !ADAPTER_LIBRARIES.contains(&name.as_str())
        })
        .map(|(name, _)| name.as_str())
        .collect();
    let libraries: Vec<&str> = std::iter::once(BASE)
        .chain(CAPABILITIES)
        .chain(ADAPTER_LIBRARIES)
        .collect();
    for (name, (_, deps)) in graph {
        for (dep, kind) in deps {
            if name == BASE && kind != "dev" {
                found.push(format!(
                    "{BASE} depends on {dep}: it is the base of every crate"
                ));
            }
            if CAPABILITIES.contains(&name.as_str())
                && CAPABILITIES.contains(&dep.as_str())
                && dep != name
            {
                found.push(format!(
                    "{name} depends on {dep} ({kind}): capability crates are independent"
                ));
            }
            if libraries.contains(&name.as_str()) && kind != "dev" {
                if adapters.contains(dep.as_str()) {
                    found.push(format!("library {name} depends on the adapter {dep}"));
                }
                if dep == "testkit" {
                    found.push(format!("library {name} depends on testkit ({kind})"));
                }
            }
        }
    }
    found
}

#[test]
fn the_workspace_keeps_its_layers() {
    let graph = workspace_graph();
    for name in std::iter::once(BASE)
        .chain(CAPABILITIES)
        .chain(ADAPTER_LIBRARIES)
    {
        assert!(
            graph.contains_key(name),
            "{name} is not a workspace package any more: update this test and ARCHITECTURE.md"
        );
    }
    let found = violations(&graph);
    assert!(
        found.is_empty(),
        "layering rules broken:\n  {}",
        found.join("\n  ")
    );
}

#[test]
fn a_broken_layer_is_reported() {
    // The check itself must see each kind of violation.
    let mut graph = workspace_graph();
    let mut add = |from: &str, to: &str, kind: &str| {
        graph
            .get_mut(from)
            .unwrap()
            .1
            .insert((to.to_owned(), kind.to_owned()));
    };
    add("vault-proxy", "vault-aws-auth", "dev");
    add("vault-replicate", "vault-aws-cli", "normal");
    add("vault-approle", "testkit", "normal");
    add("vault-client", "vault-proxy", "normal");
    let found = violations(&graph).join("\n");
    assert!(
        found.contains("vault-proxy depends on vault-aws-auth (dev)"),
        "{found}"
    );
    assert!(
        found.contains("library vault-replicate depends on the adapter vault-aws-cli"),
        "{found}"
    );
    assert!(
        found.contains("library vault-approle depends on testkit"),
        "{found}"
    );
    assert!(
        found.contains("vault-client depends on vault-proxy"),
        "{found}"
    );
}
