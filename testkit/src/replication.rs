//! Replication from OpenBao into moto: the AWS settings and environment the
//! replication tests and benchmarks share.

use crate::Moto;

/// The access key id of the test credentials: `AKIDTEST` (moto accepts
/// any key until SigV4 verification is turned on).
pub const ACCESS_KEY_ID: &str = "AKIDTEST";

/// The secret access key of the test credentials: `test-secret`.
pub const SECRET_ACCESS_KEY: &str = "test-secret";

/// The region of every replication test: `us-east-1`.
pub const REGION: &str = "us-east-1";

/// The environment of a replication binary (`vault-aws replicate`, the
/// replication Lambda) reading OpenBao at `vault_addr` with the dev
/// server's root token and writing to `moto`: `VAULT_ADDR`, `VAULT_TOKEN`,
/// `AWS_ENDPOINT_URL`, `AWS_REGION`, `AWS_ACCESS_KEY_ID`,
/// `AWS_SECRET_ACCESS_KEY`. Add the `REPLICATE_*` settings of the test.
pub fn env(vault_addr: &str, moto: &Moto) -> Vec<(String, String)> {
    [
        ("VAULT_ADDR", vault_addr.to_owned()),
        ("VAULT_TOKEN", crate::openbao::ROOT_TOKEN.to_owned()),
        ("AWS_ENDPOINT_URL", moto.endpoint()),
        ("AWS_REGION", REGION.to_owned()),
        ("AWS_ACCESS_KEY_ID", ACCESS_KEY_ID.to_owned()),
        ("AWS_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY.to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}
