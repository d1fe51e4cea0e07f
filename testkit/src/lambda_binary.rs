//! Checks shared by the tests of the Lambda binaries.

use std::path::Path;

/// Starts the Lambda binary at `path` by hand (no Lambda variables except
/// `AWS_LAMBDA_FUNCTION_NAME`) and asserts that it exits 1 with a message
/// naming the missing variables, instead of panicking in `lambda_runtime`.
/// `name` is how the binary calls itself in that message.
pub fn assert_refuses_to_run_outside_lambda(path: impl AsRef<Path>, name: &str) {
    let out = std::process::Command::new(path.as_ref())
        .env_clear()
        .env("AWS_LAMBDA_FUNCTION_NAME", "by-hand")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", path.as_ref().display()));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("{name} is an AWS Lambda function")),
        "{stderr}"
    );
    assert!(
        stderr.contains("AWS_LAMBDA_RUNTIME_API is not set"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("AWS_LAMBDA_FUNCTION_NAME is not set"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}
