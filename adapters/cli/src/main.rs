//! The `vault-aws` command-line tool (being written).
fn main() {}
