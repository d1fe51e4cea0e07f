//! What an event does to Vault and the credentials: Create, Update
//! (in place, unchanged, or a replacement) and Delete, each ending in a
//! [`Done`] for the response.

use std::sync::Arc;

use serde_json::{Map, Value, json};

use super::legacy::{delete_legacy, is_legacy_physical_id};
use super::properties::{own_properties, spec_from_properties};
use super::request::{CfnRequest, FAILED_CREATE_PREFIX, RequestType};
use super::response::Status;
use crate::provision::Provisioner;
use crate::spec::{DeliveryMode, is_valid_role_name};
use vault_client::error_chain;

pub(super) struct Done {
    pub(super) status: Status,
    pub(super) physical_id: String,
    pub(super) reason: String,
    pub(super) data: Map<String, Value>,
}

impl Done {
    pub(super) fn failed(physical_id: String, reason: impl Into<String>) -> Self {
        Self {
            status: Status::Failed,
            physical_id,
            reason: reason.into(),
            data: Map::new(),
        }
    }
}

pub(super) async fn process(
    provisioner: std::result::Result<Arc<Provisioner>, String>,
    request: CfnRequest,
    default_delivery: DeliveryMode,
) -> Done {
    let request_type = match &request.request_type {
        Ok(t) => *t,
        Err(e) => {
            let id = request
                .physical_resource_id
                .clone()
                .unwrap_or_else(|| request.failed_create_id());
            return Done::failed(id, e.clone());
        }
    };
    match request_type {
        RequestType::Create => {
            let id = request.failed_create_id();
            let provisioner = match provisioner {
                Ok(p) => p,
                Err(e) => return Done::failed(id, format!("the function is misconfigured: {e}")),
            };
            let spec = match spec_from_properties(&request.properties, default_delivery) {
                Ok(s) => s.owned_by(request.owner()),
                Err(e) => return Done::failed(id, e.to_string()),
            };
            match provisioner.provision(&spec).await {
                Ok(p) => success(p, "created"),
                Err(e) => Done::failed(id, format!("create failed: {}", error_chain(&e))),
            }
        }
        RequestType::Update => {
            let old_id = request
                .physical_resource_id
                .clone()
                .unwrap_or_else(|| request.failed_create_id());
            let provisioner = match provisioner {
                Ok(p) => p,
                Err(e) => {
                    return Done::failed(old_id, format!("the function is misconfigured: {e}"));
                }
            };
            let spec = match spec_from_properties(&request.properties, default_delivery) {
                Ok(s) => s.owned_by(request.owner()),
                Err(e) => return Done::failed(old_id, e.to_string()),
            };
            let new_name = match spec.role_name() {
                Ok(n) => n,
                Err(e) => return Done::failed(old_id, e.to_string()),
            };
            let unchanged = request
                .old_properties
                .as_ref()
                .is_some_and(|old| own_properties(old) == own_properties(&request.properties));
            if new_name == old_id && unchanged {
                // Only ServiceToken or ServiceTimeout changed (or nothing):
                // not a change of the resource, nothing is rotated.
                match provisioner.current(&spec).await {
                    Ok(Some(p)) => return success(p, "unchanged"),
                    Ok(None) => {} // gone: converge below
                    Err(e) => {
                        return Done::failed(old_id, format!("update failed: {}", error_chain(&e)));
                    }
                }
            }
            if new_name == old_id {
                match provisioner.update(&spec).await {
                    Ok(p) => success(p, "updated in place"),
                    Err(e) => Done::failed(old_id, format!("update failed: {}", error_chain(&e))),
                }
            } else {
                // A new IAM role: a new Vault role and a new physical id;
                // CloudFormation then deletes the old one. The same for a
                // resource of the serverless AppRole manager: its role is
                // adopted under the new id.
                let what = if is_legacy_physical_id(&old_id) {
                    "adopted from the serverless AppRole manager"
                } else {
                    "replaced (new IAM role)"
                };
                match provisioner.provision(&spec).await {
                    Ok(p) => success(p, what),
                    Err(e) => Done::failed(
                        old_id,
                        format!("update (replacement) failed: {}", error_chain(&e)),
                    ),
                }
            }
        }
        RequestType::Delete => {
            let Some(id) = request.physical_resource_id.clone() else {
                return Done {
                    status: Status::Success,
                    physical_id: request.failed_create_id(),
                    reason: "nothing to delete (no PhysicalResourceId)".into(),
                    data: Map::new(),
                };
            };
            if is_legacy_physical_id(&id) {
                return match provisioner {
                    Ok(p) => delete_legacy(&p, &request, id, default_delivery).await,
                    Err(e) => Done::failed(id, format!("the function is misconfigured: {e}")),
                };
            }
            if id.starts_with(FAILED_CREATE_PREFIX) || !is_valid_role_name(&id) {
                return Done {
                    status: Status::Success,
                    reason: "nothing to delete (the resource was never created)".into(),
                    physical_id: id,
                    data: Map::new(),
                };
            }
            let provisioner = match provisioner {
                Ok(p) => p,
                Err(e) => return Done::failed(id, format!("the function is misconfigured: {e}")),
            };
            // The object's name: the role name, or in the old layout the
            // name the properties give for this role.
            let key = spec_from_properties(&request.properties, default_delivery)
                .ok()
                .filter(|s| s.role_name().ok().as_deref() == Some(id.as_str()))
                .and_then(|s| provisioner.store_key(&s).ok())
                .unwrap_or_else(|| id.clone());
            match provisioner.owner_of_role(&id, &key).await {
                Ok(Some(owner)) if Some(&owner) != request.owner().as_ref() => {
                    // Another resource's role: CloudFormation may delete this
                    // resource, but the role stays.
                    return Done {
                        status: Status::Success,
                        reason: format!(
                            "nothing deleted: role {id} belongs to {owner}, not to this resource"
                        ),
                        physical_id: id,
                        data: Map::new(),
                    };
                }
                Ok(_) => {}
                Err(e) => {
                    return Done::failed(id, format!("delete failed: {}", error_chain(&e)));
                }
            }
            match provisioner.deprovision_keyed(&id, &key).await {
                Ok(()) => Done {
                    status: Status::Success,
                    reason: format!("deleted role {id} and its credentials"),
                    physical_id: id,
                    data: Map::new(),
                },
                Err(e) => Done::failed(id, format!("delete failed: {}", error_chain(&e))),
            }
        }
    }
}

fn success(p: crate::provision::Provisioned, what: &str) -> Done {
    let mut data = Map::new();
    data.insert("RoleName".into(), json!(p.role_name));
    data.insert("RoleId".into(), json!(p.role_id));
    data.insert("CredentialsLocation".into(), json!(p.location));
    Done {
        status: Status::Success,
        reason: format!(
            "{what}: role {}, credentials at {}",
            p.role_name, p.location
        ),
        physical_id: p.role_name,
        data,
    }
}
