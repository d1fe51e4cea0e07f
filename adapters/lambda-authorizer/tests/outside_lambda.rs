#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
// Test helpers fail loudly.

//! Started by hand, outside Lambda, the binary exits 1 with a message naming
//! the missing Lambda variables (lambda_runtime would panic).

#[test]
fn started_by_hand_it_names_the_missing_lambda_variables_instead_of_panicking() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_lambda-authorizer"))
        .env_clear()
        .env("AWS_LAMBDA_FUNCTION_NAME", "by-hand")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("lambda-authorizer is an AWS Lambda function"),
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
