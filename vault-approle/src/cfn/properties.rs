//! The resource's properties (`ResourceProperties`): names matched
//! case-insensitively, strings, lists and durations read tolerantly, and the
//! [`RoleSpec`] they describe.

use std::time::Duration;

use serde_json::{Map, Value};

use super::request::text;
use super::response::truncate;
use crate::error::{Error, Result};
use crate::spec::{DeliveryMode, RoleSpec};

fn prop<'a>(props: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    props
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
}

/// Properties CloudFormation itself adds to `ResourceProperties`: accepted,
/// ignored, and never a change of the resource.
pub const CLOUDFORMATION_PROPERTIES: [&str; 2] = ["ServiceToken", "ServiceTimeout"];

const KNOWN: [&str; 12] = [
    "Service",
    "RoleName",
    "Environment",
    "Iam",
    "TokenTtl",
    "TokenMaxTtl",
    "SecretIdTtl",
    "SecretIdNumUses",
    "SecretIdBoundCidrs",
    "TokenBoundCidrs",
    "Policies",
    "Delivery",
];

fn prop_string(props: &Map<String, Value>, name: &str) -> Result<Option<String>> {
    match prop(props, name) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => text(v).map(|s| Some(s.trim().to_owned())).ok_or_else(|| {
            Error::invalid(format!("property {name}"), "a string", "it is not a string")
        }),
    }
}

fn prop_list(props: &Map<String, Value>, name: &str) -> Result<Vec<String>> {
    match prop(props, name) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| {
                text(v).map(|s| s.trim().to_owned()).ok_or_else(|| {
                    Error::invalid(
                        format!("property {name}"),
                        "a list of strings",
                        "a list item is not a string",
                    )
                })
            })
            .filter(|r| r.as_ref().map_or(true, |s| !s.is_empty()))
            .collect(),
        Some(v) => text(v)
            .map(|s| {
                s.split(',')
                    .map(|p| p.trim().to_owned())
                    .filter(|p| !p.is_empty())
                    .collect()
            })
            .ok_or_else(|| {
                Error::invalid(
                    format!("property {name}"),
                    "comma-separated values or a list",
                    "it is neither a string nor a list",
                )
            }),
    }
}

fn prop_duration(props: &Map<String, Value>, name: &'static str) -> Result<Option<Duration>> {
    let Some(raw) = prop_string(props, name)? else {
        return Ok(None);
    };
    if raw.is_empty() {
        return Ok(None);
    }
    const EXPECTED: &str = "seconds or a duration such as 30m, 1h, 7d";
    if let Some(days) = raw.strip_suffix('d') {
        return days
            .trim()
            .parse::<u64>()
            .ok()
            .and_then(|d| d.checked_mul(86_400))
            .map(|s| Some(Duration::from_secs(s)))
            .ok_or_else(|| {
                Error::invalid(
                    format!("property {name}"),
                    EXPECTED,
                    format!("got {:?}", truncate(&raw, 64)),
                )
            });
    }
    vault_client::parse_duration(name, &raw)
        .map(Some)
        .map_err(|_| {
            Error::invalid(
                format!("property {name}"),
                EXPECTED,
                format!("got {:?}", truncate(&raw, 64)),
            )
        })
}

/// The properties that describe the resource: `props` without
/// [`CLOUDFORMATION_PROPERTIES`], keys lower-cased (property names are
/// case-insensitive).
pub(super) fn own_properties(
    props: &Map<String, Value>,
) -> std::collections::BTreeMap<String, &Value> {
    props
        .iter()
        .filter(|(k, _)| {
            !CLOUDFORMATION_PROPERTIES
                .iter()
                .any(|c| c.eq_ignore_ascii_case(k))
        })
        .map(|(k, v)| (k.to_ascii_lowercase(), v))
        .collect()
}

/// Builds a [`RoleSpec`] from `ResourceProperties`; `default_delivery` is used
/// when there is no `Delivery` property.
pub fn spec_from_properties(
    props: &Map<String, Value>,
    default_delivery: DeliveryMode,
) -> Result<RoleSpec> {
    if let Some(unknown) = props.keys().find(|k| {
        !KNOWN
            .iter()
            .chain(CLOUDFORMATION_PROPERTIES.iter())
            .any(|known| known.eq_ignore_ascii_case(k))
    }) {
        return Err(Error::invalid(
            format!("property {}", truncate(unknown, 64)),
            format!("one of {}", KNOWN.join(", ")),
            "it is not a known property",
        ));
    }
    let required = |name: &str| -> Result<String> {
        prop_string(props, name)?
            .filter(|s| !s.is_empty())
            .ok_or_else(|| {
                Error::invalid(
                    format!("property {name}"),
                    "a non-empty string",
                    "it is missing or empty",
                )
            })
    };
    let mut builder = RoleSpec::builder(
        required("Service")?,
        required("Environment")?,
        required("Iam")?,
    );
    if let Some(d) = prop_duration(props, "TokenTtl")? {
        builder = builder.token_ttl(d);
    }
    if let Some(d) = prop_duration(props, "TokenMaxTtl")? {
        builder = builder.token_max_ttl(d);
    }
    if let Some(d) = prop_duration(props, "SecretIdTtl")? {
        builder = builder.secret_id_ttl(d);
    }
    if let Some(raw) = prop_string(props, "SecretIdNumUses")?.filter(|s| !s.is_empty()) {
        let uses = raw.parse::<u64>().map_err(|_| {
            Error::invalid(
                "property SecretIdNumUses",
                "a non-negative integer",
                format!("got {:?}", truncate(&raw, 64)),
            )
        })?;
        builder = builder.secret_id_num_uses(uses);
    }
    let delivery = match prop_string(props, "Delivery")?.filter(|s| !s.is_empty()) {
        Some(raw) => raw.parse::<DeliveryMode>().map_err(|_| {
            Error::invalid(
                "property Delivery",
                "shared or wrapped",
                format!("got {:?}", truncate(&raw, 64)),
            )
        })?,
        None => default_delivery,
    };
    if let Some(name) = prop_string(props, "RoleName")?.filter(|s| !s.is_empty()) {
        builder = builder.vault_role(name);
    }
    builder
        .secret_id_bound_cidrs(prop_list(props, "SecretIdBoundCidrs")?)
        .token_bound_cidrs(prop_list(props, "TokenBoundCidrs")?)
        .extra_policies(prop_list(props, "Policies")?)
        .delivery(delivery)
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn properties_parse_tolerantly_with_clear_errors() {
        let props = json!({
            "ServiceToken": "arn:aws:lambda:...", "Service": "Shop", "Environment": "dev",
            "Iam": "arn:aws:iam::1:role/x/ShopTask", "TokenTtl": "30m", "SecretIdTtl": "7d",
            "SecretIdNumUses": "5", "SecretIdBoundCidrs": "10.0.0.0/16, 10.1.0.0/16",
            "policies": ["common-read"], "TokenMaxTtl": 7200
        });
        let spec = spec_from_properties(props.as_object().unwrap(), DeliveryMode::Shared).unwrap();
        assert_eq!(spec.role_name().unwrap(), "shoptask");
        assert_eq!(spec.token_ttl, Duration::from_secs(1800));
        assert_eq!(spec.token_max_ttl, Duration::from_secs(7200));
        assert_eq!(spec.secret_id_ttl, Duration::from_secs(7 * 86400));
        assert_eq!(spec.secret_id_num_uses, 5);
        assert_eq!(spec.secret_id_bound_cidrs.len(), 2);
        assert_eq!(spec.policies(), vec!["shop-dev", "common-read"]);
        for (props, needle) in [
            (
                json!({"Service": "s", "Environment": "d"}),
                "property Iam is invalid: it is missing",
            ),
            (
                json!({"Service": "s", "Environment": "d", "Iam": "r", "TokenTTL": "soon"}),
                "property TokenTtl",
            ),
            (
                json!({"Service": "s", "Environment": "d", "Iam": "r", "Colour": "red"}),
                "property Colour is invalid: it is not a known property",
            ),
            (
                json!({"Service": {"a": 1}, "Environment": "d", "Iam": "r"}),
                "property Service is invalid: it is not a string",
            ),
            (
                json!({"Service": "s", "Environment": "d", "Iam": "r", "Delivery": "pigeon"}),
                "property Delivery",
            ),
        ] {
            let err =
                spec_from_properties(props.as_object().unwrap(), DeliveryMode::Shared).unwrap_err();
            assert!(err.to_string().contains(needle), "{err}");
        }
    }
}
