//! ACL bindings as the catalog stores them, with Kafka's codes for resource
//! types, pattern types, operations and permissions, the per-binding checks of
//! CreateAcls and the filter matching of DescribeAcls and DeleteAcls (Kafka's
//! `AclBindingFilter.matches`). Pure values: the compiled form checked on every
//! request is the `acl` module's `Authorizer`. Invariant: a stored binding passed
//! `validate` (concrete type, LITERAL or PREFIXED, concrete operation, ALLOW or
//! DENY, non-empty name and `Type:name` principal).

use rkyv::{Archive, Deserialize, Serialize};

/// Kafka's ResourceType codes.
pub mod resource {
    pub const ANY: i8 = 1;
    pub const TOPIC: i8 = 2;
    pub const GROUP: i8 = 3;
    pub const CLUSTER: i8 = 4;
    pub const TRANSACTIONAL_ID: i8 = 5;
    pub const DELEGATION_TOKEN: i8 = 6;
    pub const USER: i8 = 7;
}

/// Kafka's PatternType codes.
pub mod pattern {
    pub const ANY: i8 = 1;
    pub const MATCH: i8 = 2;
    pub const LITERAL: i8 = 3;
    pub const PREFIXED: i8 = 4;
}

/// Kafka's AclOperation codes.
pub mod op {
    pub const ANY: i8 = 1;
    pub const ALL: i8 = 2;
    pub const READ: i8 = 3;
    pub const WRITE: i8 = 4;
    pub const CREATE: i8 = 5;
    pub const DELETE: i8 = 6;
    pub const ALTER: i8 = 7;
    pub const DESCRIBE: i8 = 8;
    pub const CLUSTER_ACTION: i8 = 9;
    pub const DESCRIBE_CONFIGS: i8 = 10;
    pub const ALTER_CONFIGS: i8 = 11;
    pub const IDEMPOTENT_WRITE: i8 = 12;
    pub const CREATE_TOKENS: i8 = 13;
    pub const DESCRIBE_TOKENS: i8 = 14;
}

/// Kafka's AclPermissionType codes.
pub mod permission {
    pub const ANY: i8 = 1;
    pub const DENY: i8 = 2;
    pub const ALLOW: i8 = 3;
}

/// The name of the one CLUSTER resource.
pub const CLUSTER_NAME: &str = "kafka-cluster";
/// A LITERAL name or a principal/host that matches every one.
pub const WILDCARD: &str = "*";

#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AclBinding {
    pub resource_type: i8,
    pub resource_name: String,
    pub pattern_type: i8,
    /// `User:alice`, or `User:*` for every principal.
    pub principal: String,
    /// A client IP address, or `*`.
    pub host: String,
    pub operation: i8,
    pub permission: i8,
}

/// A DescribeAcls or DeleteAcls filter: `None` strings match anything, ANY
/// codes likewise; pattern MATCH also matches the wildcard and prefixes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AclFilter {
    pub resource_type: i8,
    pub resource_name: Option<String>,
    pub pattern_type: i8,
    pub principal: Option<String>,
    pub host: Option<String>,
    pub operation: i8,
    pub permission: i8,
}

impl AclBinding {
    /// CreateAcls' per-binding checks (Kafka's AclControlManager.validateNewAcl
    /// and AclApis): the message for INVALID_REQUEST when refused.
    pub fn validate(&self) -> Result<(), String> {
        if !(resource::TOPIC..=resource::USER).contains(&self.resource_type) {
            return Err(format!("Invalid resourceType {}", self.resource_type));
        }
        if ![pattern::LITERAL, pattern::PREFIXED].contains(&self.pattern_type) {
            return Err(format!("Invalid patternType {}", self.pattern_type));
        }
        if !(op::ALL..=op::DESCRIBE_TOKENS).contains(&self.operation) {
            return Err(format!("Invalid operation {}", self.operation));
        }
        if ![permission::ALLOW, permission::DENY].contains(&self.permission) {
            return Err(format!("Invalid permissionType {}", self.permission));
        }
        if self.resource_name.is_empty() {
            return Err("Resource name should not be empty".into());
        }
        if self.resource_type == resource::CLUSTER && self.resource_name != CLUSTER_NAME {
            return Err(format!(
                "The only valid name for the CLUSTER resource is {CLUSTER_NAME}"
            ));
        }
        match self.principal.split_once(':') {
            Some((kind, name)) if !kind.is_empty() && !name.is_empty() => {}
            _ => {
                return Err(format!(
                    "Invalid principal '{}': expected principalType:principalName, e.g. User:alice",
                    self.principal
                ))
            }
        }
        if self.host.is_empty() {
            return Err("Invalid empty host: use * for every host".into());
        }
        Ok(())
    }
}

impl AclFilter {
    /// Kafka refuses filters with UNKNOWN (0) or out-of-range codes.
    pub fn validate(&self) -> Result<(), String> {
        let ok = (resource::ANY..=resource::USER).contains(&self.resource_type)
            && (pattern::ANY..=pattern::PREFIXED).contains(&self.pattern_type)
            && (op::ANY..=op::DESCRIBE_TOKENS).contains(&self.operation)
            && (permission::ANY..=permission::ALLOW).contains(&self.permission);
        if ok {
            Ok(())
        } else {
            Err("The filter contains unknown elements".into())
        }
    }

    pub fn matches(&self, b: &AclBinding) -> bool {
        let code = |filter: i8, any: i8, value: i8| filter == any || filter == value;
        let text = |filter: &Option<String>, value: &str| filter.as_deref().is_none_or(|f| f == value);
        code(self.resource_type, resource::ANY, b.resource_type)
            && self.matches_pattern(b)
            && text(&self.principal, &b.principal)
            && text(&self.host, &b.host)
            && code(self.operation, op::ANY, b.operation)
            && code(self.permission, permission::ANY, b.permission)
    }

    /// Kafka's ResourcePatternFilter.matches.
    fn matches_pattern(&self, b: &AclBinding) -> bool {
        let p = self.pattern_type;
        if p != pattern::ANY && p != pattern::MATCH && p != b.pattern_type {
            return false;
        }
        let Some(name) = &self.resource_name else {
            return true;
        };
        if p == pattern::ANY || p == b.pattern_type {
            return *name == b.resource_name;
        }
        match b.pattern_type {
            pattern::LITERAL => *name == b.resource_name || b.resource_name == WILDCARD,
            pattern::PREFIXED => name.starts_with(&b.resource_name),
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binding(rt: i8, name: &str, pt: i8) -> AclBinding {
        AclBinding {
            resource_type: rt,
            resource_name: name.into(),
            pattern_type: pt,
            principal: "User:alice".into(),
            host: "*".into(),
            operation: op::WRITE,
            permission: permission::ALLOW,
        }
    }

    fn filter(rt: i8, name: Option<&str>, pt: i8) -> AclFilter {
        AclFilter {
            resource_type: rt,
            resource_name: name.map(Into::into),
            pattern_type: pt,
            principal: None,
            host: None,
            operation: op::ANY,
            permission: permission::ANY,
        }
    }

    #[test]
    fn given_bad_bindings_when_validated_should_refuse_each_with_a_reason() {
        assert!(binding(resource::TOPIC, "orders", pattern::LITERAL)
            .validate()
            .is_ok());
        let bad = [
            binding(0, "t", pattern::LITERAL),
            binding(resource::ANY, "t", pattern::LITERAL),
            binding(resource::TOPIC, "t", pattern::ANY),
            binding(resource::TOPIC, "t", pattern::MATCH),
            binding(resource::TOPIC, "", pattern::LITERAL),
            binding(resource::CLUSTER, "c", pattern::LITERAL),
            AclBinding {
                principal: String::new(),
                ..binding(resource::TOPIC, "t", pattern::LITERAL)
            },
            AclBinding {
                operation: op::ANY,
                ..binding(resource::TOPIC, "t", pattern::LITERAL)
            },
            AclBinding {
                permission: permission::ANY,
                ..binding(resource::TOPIC, "t", pattern::LITERAL)
            },
        ];
        for b in bad {
            assert!(b.validate().is_err(), "{b:?}");
        }
    }

    #[test]
    fn given_filters_when_matched_should_follow_kafkas_pattern_rules() {
        let lit = binding(resource::TOPIC, "orders", pattern::LITERAL);
        let star = binding(resource::TOPIC, "*", pattern::LITERAL);
        let pre = binding(resource::TOPIC, "ord", pattern::PREFIXED);
        let any = filter(resource::ANY, None, pattern::ANY);
        assert!([&lit, &star, &pre].iter().all(|b| any.matches(b)));
        let exact = filter(resource::TOPIC, Some("orders"), pattern::ANY);
        assert!(exact.matches(&lit) && !exact.matches(&star) && !exact.matches(&pre));
        let m = filter(resource::TOPIC, Some("orders"), pattern::MATCH);
        assert!(m.matches(&lit) && m.matches(&star) && m.matches(&pre));
        let p = filter(resource::TOPIC, Some("ord"), pattern::PREFIXED);
        assert!(p.matches(&pre) && !p.matches(&lit));
        assert!(!filter(resource::GROUP, None, pattern::ANY).matches(&lit));
    }
}
