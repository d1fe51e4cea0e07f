//! The peers of an AppRole provisioner (the CloudFormation orchestrator,
//! `vault-exec`): OpenBao with AppRole and a policy, moto with a bucket.

use crate::{Moto, OpenBao};

/// OpenBao and moto as a provisioner of AppRoles finds them (feature
/// `s3`): AppRole enabled at `approle/`, one ACL policy written, and an
/// empty S3 bucket in moto for the delivered credentials. No role exists
/// yet: creating roles is what the code under test does.
pub struct AppRolePeers {
    /// OpenBao dev server (root token `root`).
    pub bao: OpenBao,
    /// moto, holding the bucket.
    pub moto: Moto,
    /// [`Moto::s3_client`] for `moto`.
    pub s3: aws_sdk_s3::Client,
}

impl AppRolePeers {
    /// Starts OpenBao and moto, enables AppRole, writes the ACL policy
    /// `policy` with `policy_hcl` ([`OpenBao::approle_and_policy`]) and
    /// creates the S3 bucket `bucket`.
    pub async fn start(bucket: &str, policy: &str, policy_hcl: &str) -> AppRolePeers {
        let (bao, moto) = tokio::join!(OpenBao::start(), Moto::start());
        bao.approle_and_policy(policy, policy_hcl).await;
        let s3 = moto.s3_client();
        s3.create_bucket()
            .bucket(bucket)
            .send()
            .await
            .unwrap_or_else(|e| panic!("create bucket {bucket} in moto: {e:?}"));
        AppRolePeers { bao, moto, s3 }
    }

    /// [`AppRolePeers::start`] with the policy `shop-dev` reading
    /// `secret/data/shop/dev/*`: the policy a provisioner binds the role of
    /// service `shop`, environment `dev` to.
    pub async fn shop_dev(bucket: &str) -> AppRolePeers {
        Self::start(
            bucket,
            "shop-dev",
            r#"path "secret/data/shop/dev/*" { capabilities = ["read"] }"#,
        )
        .await
    }
}
