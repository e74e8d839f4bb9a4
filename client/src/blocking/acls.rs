//! ACL administration of a blocking connection: CreateAcls, DescribeAcls and
//! DeleteAcls, with bindings and filters as Kafka's codes (resource type,
//! pattern type, operation, permission; `names` maps them to Kafka's names).

use kafka_protocol::messages::{
    create_acls_request::AclCreation, delete_acls_request::DeleteAclsFilter, ApiKey, CreateAclsRequest,
    DeleteAclsRequest, DescribeAclsRequest,
};

use super::{Client, ClientError};
use crate::error::check;

/// One ACL binding; in a filter, `None` names match any and code 1 is ANY.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Acl {
    pub resource_type: i8,
    pub resource_name: Option<String>,
    pub pattern_type: i8,
    pub principal: Option<String>,
    pub host: Option<String>,
    pub operation: i8,
    pub permission: i8,
}

/// A per-binding or per-filter answer: Kafka's error code and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AclError {
    pub code: i16,
    pub message: Option<String>,
}

/// Kafka's names of the ACL codes, both ways (upper case, as Kafka's enums).
pub mod names {
    pub const RESOURCE_TYPES: &[(i8, &str)] = &[
        (1, "ANY"),
        (2, "TOPIC"),
        (3, "GROUP"),
        (4, "CLUSTER"),
        (5, "TRANSACTIONAL_ID"),
        (6, "DELEGATION_TOKEN"),
        (7, "USER"),
    ];
    pub const PATTERN_TYPES: &[(i8, &str)] = &[(1, "ANY"), (2, "MATCH"), (3, "LITERAL"), (4, "PREFIXED")];
    pub const OPERATIONS: &[(i8, &str)] = &[
        (1, "ANY"),
        (2, "ALL"),
        (3, "READ"),
        (4, "WRITE"),
        (5, "CREATE"),
        (6, "DELETE"),
        (7, "ALTER"),
        (8, "DESCRIBE"),
        (9, "CLUSTER_ACTION"),
        (10, "DESCRIBE_CONFIGS"),
        (11, "ALTER_CONFIGS"),
        (12, "IDEMPOTENT_WRITE"),
        (13, "CREATE_TOKENS"),
        (14, "DESCRIBE_TOKENS"),
    ];
    pub const PERMISSIONS: &[(i8, &str)] = &[(1, "ANY"), (2, "DENY"), (3, "ALLOW")];

    pub fn name(table: &[(i8, &'static str)], code: i8) -> &'static str {
        table
            .iter()
            .find(|(c, _)| *c == code)
            .map_or("UNKNOWN", |(_, n)| n)
    }

    /// The code of `name` (any case, `-` for `_`).
    pub fn code(table: &[(i8, &str)], name: &str) -> Option<i8> {
        let wanted = name.to_ascii_uppercase().replace('-', "_");
        table.iter().find(|(_, n)| *n == wanted).map(|(c, _)| *c)
    }
}

fn text(s: &Option<String>) -> kafka_protocol::protocol::StrBytes {
    s.clone().unwrap_or_default().into()
}

impl Client {
    /// Create `acls`: per binding, its error (code 0 when created).
    pub fn create_acls(&mut self, acls: &[Acl]) -> Result<Vec<AclError>, ClientError> {
        let creations = acls
            .iter()
            .map(|a| {
                AclCreation::default()
                    .with_resource_type(a.resource_type)
                    .with_resource_name(text(&a.resource_name))
                    .with_resource_pattern_type(a.pattern_type)
                    .with_principal(text(&a.principal))
                    .with_host(text(&a.host))
                    .with_operation(a.operation)
                    .with_permission_type(a.permission)
            })
            .collect();
        let r = self.call(CreateAclsRequest::default().with_creations(creations))?;
        Ok(r.results
            .into_iter()
            .map(|r| AclError {
                code: r.error_code,
                message: r.error_message.map(|m| m.to_string()),
            })
            .collect())
    }

    /// The bindings `filter` matches.
    pub fn describe_acls(&mut self, filter: &Acl) -> Result<Vec<Acl>, ClientError> {
        let req = DescribeAclsRequest::default()
            .with_resource_type_filter(filter.resource_type)
            .with_resource_name_filter(filter.resource_name.clone().map(Into::into))
            .with_pattern_type_filter(filter.pattern_type)
            .with_principal_filter(filter.principal.clone().map(Into::into))
            .with_host_filter(filter.host.clone().map(Into::into))
            .with_operation(filter.operation)
            .with_permission_type(filter.permission);
        let r = self.call(req)?;
        check(ApiKey::DescribeAcls, r.error_code)?;
        let mut out: Vec<Acl> = r
            .resources
            .iter()
            .flat_map(|res| {
                res.acls.iter().map(|a| Acl {
                    resource_type: res.resource_type,
                    resource_name: Some(res.resource_name.to_string()),
                    pattern_type: res.pattern_type,
                    principal: Some(a.principal.to_string()),
                    host: Some(a.host.to_string()),
                    operation: a.operation,
                    permission: a.permission_type,
                })
            })
            .collect();
        out.sort();
        Ok(out)
    }

    /// Delete the bindings `filter` matches: those deleted, or the filter's error.
    pub fn delete_acls(&mut self, filter: &Acl) -> Result<Result<Vec<Acl>, AclError>, ClientError> {
        let f = DeleteAclsFilter::default()
            .with_resource_type_filter(filter.resource_type)
            .with_resource_name_filter(filter.resource_name.clone().map(Into::into))
            .with_pattern_type_filter(filter.pattern_type)
            .with_principal_filter(filter.principal.clone().map(Into::into))
            .with_host_filter(filter.host.clone().map(Into::into))
            .with_operation(filter.operation)
            .with_permission_type(filter.permission);
        let r = self.call(DeleteAclsRequest::default().with_filters(vec![f]))?;
        let Some(result) = r.filter_results.into_iter().next() else {
            return Ok(Err(AclError {
                code: -1,
                message: Some("no filter result".into()),
            }));
        };
        if result.error_code != 0 {
            return Ok(Err(AclError {
                code: result.error_code,
                message: result.error_message.map(|m| m.to_string()),
            }));
        }
        Ok(Ok(result
            .matching_acls
            .iter()
            .map(|a| Acl {
                resource_type: a.resource_type,
                resource_name: Some(a.resource_name.to_string()),
                pattern_type: a.pattern_type,
                principal: Some(a.principal.to_string()),
                host: Some(a.host.to_string()),
                operation: a.operation,
                permission: a.permission_type,
            })
            .collect()))
    }
}
