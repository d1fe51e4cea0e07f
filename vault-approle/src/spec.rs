//! What a service's AppRole looks like: [`RoleSpec`], [`DeliveryMode`], and
//! the role name derived from an IAM role.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;
use std::time::Duration;

use crate::error::{Error, Result};

/// Default token TTL (1 hour).
pub const DEFAULT_TOKEN_TTL: Duration = Duration::from_secs(3600);
/// Default token max TTL (4 hours).
pub const DEFAULT_TOKEN_MAX_TTL: Duration = Duration::from_secs(4 * 3600);
/// Default secret_id TTL (30 days; rotate before it ends).
pub const DEFAULT_SECRET_ID_TTL: Duration = Duration::from_secs(30 * 24 * 3600);

/// How the secret_id reaches the consumer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeliveryMode {
    /// A reusable secret_id with a TTL (optionally CIDR-bound), replaced by
    /// rotation. Every task of the service logs in with it.
    #[default]
    Shared,
    /// A single-use secret_id, response-wrapped: the store holds a wrapping
    /// token that the consumer unwraps once. Each new consumer needs a fresh
    /// delivery (rotation).
    Wrapped,
}

impl DeliveryMode {
    /// `shared` or `wrapped`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Shared => "shared",
            Self::Wrapped => "wrapped",
        }
    }
}

impl fmt::Display for DeliveryMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for DeliveryMode {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "shared" | "" => Ok(Self::Shared),
            "wrapped" => Ok(Self::Wrapped),
            other => Err(Error::invalid(
                "delivery mode",
                "shared or wrapped",
                format!("got {other:?}"),
            )),
        }
    }
}

/// One service's AppRole: who (IAM role), what (policy
/// `<service>-<environment>` plus extra policies) and for how long.
///
/// Build it with [`RoleSpec::builder`]; `build()` validates everything.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RoleSpec {
    /// Service name (policy prefix).
    pub service: String,
    /// Environment name (policy suffix).
    pub environment: String,
    /// The IAM role (name or ARN) the consumers run as.
    pub iam_role: String,
    /// TTL of the tokens issued at login.
    pub token_ttl: Duration,
    /// Max TTL of the tokens issued at login.
    pub token_max_ttl: Duration,
    /// TTL of a secret_id (0 = never expires; not recommended).
    pub secret_id_ttl: Duration,
    /// Uses of a secret_id (0 = unlimited; always 1 for [`DeliveryMode::Wrapped`]).
    pub secret_id_num_uses: u64,
    /// CIDRs a secret_id may be used from.
    pub secret_id_bound_cidrs: Vec<String>,
    /// CIDRs the issued tokens may be used from.
    pub token_bound_cidrs: Vec<String>,
    /// Policies added to `<service>-<environment>`.
    pub extra_policies: Vec<String>,
    /// How the secret_id is delivered.
    pub delivery: DeliveryMode,
    /// The Vault role name, when it is not the one derived from the IAM
    /// role (e.g. two roles for one IAM role name in two accounts).
    pub vault_role: Option<String>,
    /// The resource that owns the role; another owner's role is never
    /// changed (see [`crate::Provisioner::provision`]).
    pub owner: Option<crate::store::Owner>,
}

/// Builder of a [`RoleSpec`].
#[derive(Debug, Clone)]
pub struct RoleSpecBuilder {
    spec: RoleSpec,
    num_uses_set: bool,
}

impl RoleSpec {
    /// Starts a spec for `service` in `environment`, used by the IAM role
    /// `iam_role` (a name such as `shop-task`, or an ARN
    /// `arn:aws:iam::123456789012:role/path/shop-task`).
    pub fn builder(
        service: impl Into<String>,
        environment: impl Into<String>,
        iam_role: impl Into<String>,
    ) -> RoleSpecBuilder {
        RoleSpecBuilder {
            spec: RoleSpec {
                service: service.into().trim().to_owned(),
                environment: environment.into().trim().to_owned(),
                iam_role: iam_role.into().trim().to_owned(),
                token_ttl: DEFAULT_TOKEN_TTL,
                token_max_ttl: DEFAULT_TOKEN_MAX_TTL,
                secret_id_ttl: DEFAULT_SECRET_ID_TTL,
                secret_id_num_uses: 0,
                secret_id_bound_cidrs: Vec::new(),
                token_bound_cidrs: Vec::new(),
                extra_policies: Vec::new(),
                delivery: DeliveryMode::Shared,
                vault_role: None,
                owner: None,
            },
            num_uses_set: false,
        }
    }

    /// The Vault role name: [`RoleSpec::vault_role`] (lower-cased) when set,
    /// else derived from the IAM role (see [`role_name_from_iam`]).
    pub fn role_name(&self) -> Result<String> {
        match &self.vault_role {
            Some(name) => {
                let name = name.trim().to_ascii_lowercase();
                if is_valid_role_name(&name) {
                    Ok(name)
                } else {
                    Err(Error::invalid(
                        "role name",
                        "1-128 letters, digits, '_', '-' or '.', starting and ending with a letter, digit or '_'",
                        format!(
                            "{:?} is not a Vault role name",
                            name.chars().take(80).collect::<String>()
                        ),
                    ))
                }
            }
            None => role_name_from_iam(&self.iam_role),
        }
    }

    /// The policy the role is bound to: `<service>-<environment>`, lower case.
    pub fn policy_name(&self) -> String {
        format!("{}-{}", self.service, self.environment).to_ascii_lowercase()
    }

    /// All policies of the issued tokens: the main one, then the extra ones.
    pub fn policies(&self) -> Vec<String> {
        let mut all = vec![self.policy_name()];
        for p in &self.extra_policies {
            if !all.contains(p) {
                all.push(p.clone());
            }
        }
        all
    }

    /// The same spec with `owner` as its owner (none: unchanged).
    pub fn owned_by(mut self, owner: Option<crate::store::Owner>) -> Self {
        if owner.is_some() {
            self.owner = owner;
        }
        self
    }

    /// Checks every field; the error names the field and the expected form.
    pub fn validate(&self) -> Result<()> {
        check_name("service", &self.service)?;
        check_name("environment", &self.environment)?;
        self.role_name()?;
        for p in &self.extra_policies {
            check_name("extra policy", p)?;
        }
        if self.token_ttl.is_zero() {
            return Err(Error::invalid(
                "token_ttl",
                "a positive duration such as 1h",
                "it is zero",
            ));
        }
        if !self.token_max_ttl.is_zero() && self.token_max_ttl < self.token_ttl {
            return Err(Error::invalid(
                "token_max_ttl",
                "a duration at least as long as token_ttl (or 0 for the mount's maximum)",
                format!(
                    "{}s is shorter than token_ttl {}s",
                    self.token_max_ttl.as_secs(),
                    self.token_ttl.as_secs()
                ),
            ));
        }
        for c in &self.secret_id_bound_cidrs {
            check_cidr("secret_id_bound_cidrs", c)?;
        }
        for c in &self.token_bound_cidrs {
            check_cidr("token_bound_cidrs", c)?;
        }
        if self.delivery == DeliveryMode::Wrapped && self.secret_id_num_uses != 1 {
            return Err(Error::invalid(
                "secret_id_num_uses",
                "1 (a wrapped secret_id is single-use) or shared delivery",
                format!("{} with wrapped delivery", self.secret_id_num_uses),
            ));
        }
        Ok(())
    }
}

impl RoleSpecBuilder {
    /// Token TTL (default 1h).
    pub fn token_ttl(mut self, ttl: Duration) -> Self {
        self.spec.token_ttl = ttl;
        self
    }
    /// Token max TTL (default 4h).
    pub fn token_max_ttl(mut self, ttl: Duration) -> Self {
        self.spec.token_max_ttl = ttl;
        self
    }
    /// Secret_id TTL (default 30 days).
    pub fn secret_id_ttl(mut self, ttl: Duration) -> Self {
        self.spec.secret_id_ttl = ttl;
        self
    }
    /// Secret_id uses (default 0 = unlimited for shared, 1 for wrapped).
    pub fn secret_id_num_uses(mut self, uses: u64) -> Self {
        self.spec.secret_id_num_uses = uses;
        self.num_uses_set = true;
        self
    }
    /// CIDRs a secret_id may be used from.
    pub fn secret_id_bound_cidrs(mut self, cidrs: Vec<String>) -> Self {
        self.spec.secret_id_bound_cidrs = cidrs;
        self
    }
    /// CIDRs the issued tokens may be used from.
    pub fn token_bound_cidrs(mut self, cidrs: Vec<String>) -> Self {
        self.spec.token_bound_cidrs = cidrs;
        self
    }
    /// Policies in addition to `<service>-<environment>`.
    pub fn extra_policies(mut self, policies: Vec<String>) -> Self {
        self.spec.extra_policies = policies;
        self
    }
    /// Delivery mode (default shared).
    pub fn delivery(mut self, mode: DeliveryMode) -> Self {
        self.spec.delivery = mode;
        self
    }
    /// The Vault role name (default: derived from the IAM role).
    pub fn vault_role(mut self, name: impl Into<String>) -> Self {
        let name = name.into();
        self.spec.vault_role = (!name.trim().is_empty()).then_some(name);
        self
    }
    /// The resource that owns the role.
    pub fn owner(mut self, owner: crate::store::Owner) -> Self {
        self.spec.owner = Some(owner);
        self
    }

    /// Validates and returns the spec.
    pub fn build(mut self) -> Result<RoleSpec> {
        if self.spec.delivery == DeliveryMode::Wrapped && !self.num_uses_set {
            self.spec.secret_id_num_uses = 1;
        }
        self.spec.extra_policies = self
            .spec
            .extra_policies
            .iter()
            .map(|p| p.trim().to_ascii_lowercase())
            .filter(|p| !p.is_empty())
            .collect();
        self.spec.validate()?;
        Ok(self.spec)
    }
}

fn check_name(field: &str, value: &str) -> Result<()> {
    const EXPECTED: &str = "1-64 characters: letters, digits, '_', '-' or '.'";
    if value.is_empty() {
        return Err(Error::invalid(field.to_owned(), EXPECTED, "it is empty"));
    }
    if value.len() > 64 {
        return Err(Error::invalid(
            field.to_owned(),
            EXPECTED,
            format!("it has {} characters", value.len()),
        ));
    }
    if let Some(c) = value
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')))
    {
        return Err(Error::invalid(
            field.to_owned(),
            EXPECTED,
            format!("{value:?} contains {c:?}"),
        ));
    }
    Ok(())
}

/// Checks `a.b.c.d/n`, an IPv6 CIDR, or a bare address.
fn check_cidr(field: &str, cidr: &str) -> Result<()> {
    const EXPECTED: &str = "CIDR blocks such as 10.0.0.0/16 or 2001:db8::/32";
    let (addr, prefix) = match cidr.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (cidr, None),
    };
    let ip: IpAddr = addr.parse().map_err(|_| {
        Error::invalid(
            field.to_owned(),
            EXPECTED,
            format!("{cidr:?} is not an IP address or CIDR"),
        )
    })?;
    if let Some(p) = prefix {
        let max = if ip.is_ipv4() { 32 } else { 128 };
        match p.parse::<u8>() {
            Ok(n) if n <= max => {}
            _ => {
                return Err(Error::invalid(
                    field.to_owned(),
                    EXPECTED,
                    format!("{cidr:?} has an invalid prefix length"),
                ));
            }
        }
    }
    Ok(())
}

/// The Vault role name for an IAM role: the role name itself, or the last
/// segment of a role ARN (`arn:aws:iam::123456789012:role/path/Name` and
/// `arn:aws:sts::123456789012:assumed-role/Name/session` both give `name`),
/// lower-cased, with IAM's `+=,@` turned into `-`, so that it matches Vault's
/// `\w(([\w-.]+)?\w)?`. Anything that cannot be made valid is an error.
pub fn role_name_from_iam(iam: &str) -> Result<String> {
    const EXPECTED: &str = "an IAM role name or ARN (arn:aws:iam::<account>:role/[path/]<name>)";
    let s = iam.trim();
    if s.is_empty() {
        return Err(Error::invalid("IAM role", EXPECTED, "it is empty"));
    }
    let name = if s.starts_with("arn:") {
        let parts: Vec<&str> = s.splitn(6, ':').collect();
        let (service, resource) = match parts.as_slice() {
            [_, _, service, _, _, resource] => (*service, *resource),
            _ => {
                return Err(Error::invalid(
                    "IAM role",
                    EXPECTED,
                    format!("{s:?} is not a complete ARN"),
                ));
            }
        };
        match (service, resource.split_once('/')) {
            ("iam", Some(("role", rest))) => rest.rsplit('/').next().unwrap_or(""),
            ("sts", Some(("assumed-role", rest))) => rest.split('/').next().unwrap_or(""),
            _ => {
                return Err(Error::invalid(
                    "IAM role",
                    EXPECTED,
                    format!("{s:?} is not an IAM role ARN"),
                ));
            }
        }
    } else {
        s.rsplit('/').next().unwrap_or("")
    };
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        match c {
            'A'..='Z' | 'a'..='z' | '0'..='9' | '_' | '-' | '.' => out.push(c.to_ascii_lowercase()),
            '+' | '=' | ',' | '@' => out.push('-'),
            other => {
                return Err(Error::invalid(
                    "IAM role",
                    EXPECTED,
                    format!("{s:?} contains {other:?}"),
                ));
            }
        }
    }
    let trimmed = out.trim_matches(|c| c == '-' || c == '.');
    if trimmed.is_empty() {
        return Err(Error::invalid(
            "IAM role",
            EXPECTED,
            format!("{s:?} has no usable role name"),
        ));
    }
    if trimmed.len() > 128 {
        return Err(Error::invalid(
            "IAM role",
            "at most 128 characters",
            format!("the role name has {} characters", trimmed.len()),
        ));
    }
    Ok(trimmed.to_owned())
}

/// The IAM role's name as given, case preserved: the last segment of an
/// ARN `arn:aws:iam::<acct>:role/[path/]<name>`, or the name itself (the
/// serverless AppRole manager's object names).
pub fn iam_role_name_as_given(iam: &str) -> Result<String> {
    let name = iam.trim().rsplit('/').next().unwrap_or("").trim();
    let valid = (1..=64).contains(&name.len())
        && !name.starts_with("arn:")
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c));
    if valid {
        Ok(name.to_owned())
    } else {
        Err(Error::invalid(
            "IAM role",
            "an IAM role name (1-64 letters, digits or +=,.@_-) or its ARN",
            format!(
                "{:?} has no IAM role name",
                iam.chars().take(80).collect::<String>()
            ),
        ))
    }
}

/// Whether `name` matches Vault's role name pattern `\w(([\w-.]+)?\w)?`.
pub fn is_valid_role_name(name: &str) -> bool {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let (Some(first), Some(last)) = (name.chars().next(), name.chars().last()) else {
        return false;
    };
    word(first) && word(last) && name.chars().all(|c| word(c) || c == '-' || c == '.')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_names_from_names_and_arns() {
        for (input, want) in [
            ("shop-task", "shop-task"),
            ("Shop_Task", "shop_task"),
            ("arn:aws:iam::123456789012:role/ShopTask", "shoptask"),
            (
                "arn:aws:iam::123456789012:role/ecs/tasks/ShopTask",
                "shoptask",
            ),
            ("arn:aws-cn:iam::123456789012:role/a+b=c,d@e", "a-b-c-d-e"),
            (
                "arn:aws:sts::123456789012:assumed-role/ShopTask/abc123",
                "shoptask",
            ),
            ("-weird.", "weird"),
        ] {
            let got = role_name_from_iam(input).unwrap();
            assert_eq!(got, want, "{input}");
            assert!(is_valid_role_name(&got), "{got}");
        }
    }

    #[test]
    fn unusable_role_names_are_clear_errors() {
        for (input, needle) in [
            ("", "is empty"),
            ("arn:aws:iam::123", "not a complete ARN"),
            (
                "arn:aws:iam::123456789012:user/alice",
                "not an IAM role ARN",
            ),
            ("shop task", "contains ' '"),
            ("-.-", "no usable role name"),
        ] {
            let err = role_name_from_iam(input).unwrap_err().to_string();
            assert!(err.contains(needle), "{input}: {err}");
            assert!(err.contains("IAM role"), "{err}");
        }
    }

    #[test]
    fn spec_validation_names_the_field() {
        let spec = RoleSpec::builder("Shop", "Dev", "arn:aws:iam::1:role/shop")
            .build()
            .unwrap();
        assert_eq!(spec.policy_name(), "shop-dev");
        assert_eq!(spec.role_name().unwrap(), "shop");
        let cases = [
            (
                RoleSpec::builder("", "dev", "r").build(),
                "service is invalid: it is empty",
            ),
            (
                RoleSpec::builder("shop", "dev", "r")
                    .token_ttl(Duration::from_secs(600))
                    .token_max_ttl(Duration::from_secs(60))
                    .build(),
                "token_max_ttl is invalid",
            ),
            (
                RoleSpec::builder("shop", "dev", "r")
                    .secret_id_bound_cidrs(vec!["10.0.0.0/33".into()])
                    .build(),
                "secret_id_bound_cidrs is invalid",
            ),
            (
                RoleSpec::builder("shop", "dev", "r")
                    .delivery(DeliveryMode::Wrapped)
                    .secret_id_num_uses(5)
                    .build(),
                "single-use",
            ),
        ];
        for (result, needle) in cases {
            let err = result.unwrap_err().to_string();
            assert!(err.contains(needle), "{err}");
        }
        let wrapped = RoleSpec::builder("shop", "dev", "r")
            .delivery(DeliveryMode::Wrapped)
            .build()
            .unwrap();
        assert_eq!(wrapped.secret_id_num_uses, 1);
    }
}
