//! Started by hand, outside Lambda, the binary exits 1 with a message naming
//! the missing Lambda variables (lambda_runtime would panic).

#[test]
fn started_by_hand_it_names_the_missing_lambda_variables_instead_of_panicking() {
    testkit::assert_refuses_to_run_outside_lambda(
        env!("CARGO_BIN_EXE_lambda-vault-server"),
        "lambda-vault-server",
    );
}
