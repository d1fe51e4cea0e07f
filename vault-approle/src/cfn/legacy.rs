//! Resources created by kickstarter's serverless AppRole manager: their
//! physical ids (Lambda log stream names), and their Delete after an Update
//! adopted the role or when it never was.

use serde_json::Map;

use super::operation::Done;
use super::properties::spec_from_properties;
use super::request::CfnRequest;
use super::response::Status;
use crate::provision::Provisioner;
use crate::spec::DeliveryMode;
use vault_client::error_chain;

/// Whether `id` is a physical id of kickstarter's serverless AppRole
/// manager: the Lambda log stream name of the invocation that created the
/// resource, `YYYY/MM/DD/[<version>]<hex>`.
pub fn is_legacy_physical_id(id: &str) -> bool {
    let b = id.as_bytes();
    let digits =
        |r: std::ops::Range<usize>| b.get(r).is_some_and(|d| d.iter().all(u8::is_ascii_digit));
    let Some(close) = id.find(']') else {
        return false;
    };
    let hex = &id[close + 1..];
    id.len() > 12
        && digits(0..4)
        && b[4] == b'/'
        && digits(5..7)
        && b[7] == b'/'
        && digits(8..10)
        && b[10] == b'/'
        && b[11] == b'['
        && !hex.is_empty()
        && hex.bytes().all(|c| c.is_ascii_hexdigit())
}

/// A Delete carrying a serverless AppRole manager physical id: when the
/// role named by the properties was adopted (it has an owner record),
/// nothing is deleted (CloudFormation deletes the old id after the Update
/// that adopted it); otherwise the role and its credentials are cleaned up,
/// as the old tool would have done.
pub(super) async fn delete_legacy(
    provisioner: &Provisioner,
    request: &CfnRequest,
    id: String,
    default_delivery: DeliveryMode,
) -> Done {
    let spec = match spec_from_properties(&request.properties, default_delivery) {
        Ok(s) => s,
        Err(e) => {
            return Done {
                status: Status::Success,
                reason: format!(
                    "nothing deleted: a serverless AppRole manager resource whose properties name no role ({e})"
                ),
                physical_id: id,
                data: Map::new(),
            };
        }
    };
    let (role, key) = match (spec.role_name(), provisioner.store_key(&spec)) {
        (Ok(r), Ok(k)) => (r, k),
        (Err(e), _) | (_, Err(e)) => {
            return Done {
                status: Status::Success,
                reason: format!("nothing deleted: {e}"),
                physical_id: id,
                data: Map::new(),
            };
        }
    };
    match provisioner.owner_of_role(&role, &key).await {
        Ok(Some(owner)) => Done {
            status: Status::Success,
            reason: format!(
                "nothing deleted: role {role} was adopted by {owner} (this is the serverless AppRole manager's old id)"
            ),
            physical_id: id,
            data: Map::new(),
        },
        Ok(None) => match provisioner.deprovision_keyed(&role, &key).await {
            Ok(()) => Done {
                status: Status::Success,
                reason: format!(
                    "deleted role {role} and its credentials (a serverless AppRole manager resource)"
                ),
                physical_id: id,
                data: Map::new(),
            },
            Err(e) => Done::failed(id, format!("delete failed: {}", error_chain(&e))),
        },
        Err(e) => Done::failed(id, format!("delete failed: {}", error_chain(&e))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_physical_ids_are_log_stream_names() {
        for id in [
            "2025/03/14/[$LATEST]0f1e2d3c4b5a69788796a5b4c3d2e1f0",
            "2019/11/02/[12]abcdef",
        ] {
            assert!(is_legacy_physical_id(id), "{id}");
        }
        for id in [
            "shoptask",
            "2025/03/14/shoptask",
            "2025/03/14/[$LATEST]",
            "2025/03/14/[$LATEST]xyz",
            "25/03/14/[$LATEST]0f",
            "vault-aws-failed-create-a-b",
            "",
        ] {
            assert!(!is_legacy_physical_id(id), "{id}");
        }
    }
}
