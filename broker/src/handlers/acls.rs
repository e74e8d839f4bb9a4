//! CreateAcls, DescribeAcls and DeleteAcls: the ACL bindings in the catalog.
//! Describe reads the local catalog snapshot; Create and Delete are catalog
//! changes on shard 0 under the admin lock (`AlterAcls`), saved, then applied
//! on every shard, whose `apply_catalog` recompiles its authorizer: the next
//! request on any shard is checked against them. Bindings are checked one by
//! one (Kafka's AclControlManager): a bad one gets INVALID_REQUEST with a
//! message, the others are still created. Creating an existing binding
//! succeeds and keeps one copy; each delete filter reports every binding it
//! matched in the catalog before the request.

use std::collections::BTreeMap;
use std::rc::Rc;

use kafka_protocol::messages::{
    create_acls_response::AclCreationResult,
    delete_acls_response::{DeleteAclsFilterResult, DeleteAclsMatchingAcl},
    describe_acls_response::{AclDescription, DescribeAclsResource},
    CreateAclsRequest, CreateAclsResponse, DeleteAclsRequest, DeleteAclsResponse, DescribeAclsRequest,
    DescribeAclsResponse,
};
use kafka_protocol::ResponseError;

use super::ShardContext;
use crate::metadata::acl::{AclBinding, AclFilter};
use crate::shard::{run_on, Task};

/// An ACL change, for shard 0: bindings to add, filters whose matches to remove.
pub struct AlterAcls {
    pub create: Vec<AclBinding>,
    pub delete: Vec<AclFilter>,
}

/// Per delete filter, the bindings it matched; `Err` when the new catalog
/// could not be saved.
type Altered = Result<Vec<Vec<AclBinding>>, String>;

impl Task<ShardContext> for AlterAcls {
    type Output = Altered;

    async fn run(self, shard: Rc<ShardContext>) -> Altered {
        assert_eq!(shard.id, 0, "only shard 0 writes the catalog");
        let _permit = shard
            .admin_lock
            .acquire_permit(1)
            .await
            .expect("admin lock never closes");
        let before = shard.catalog();
        let matched: Vec<Vec<AclBinding>> = self
            .delete
            .iter()
            .map(|f| before.acls.iter().filter(|b| f.matches(b)).cloned().collect())
            .collect();
        let mut acls: Vec<AclBinding> = before
            .acls
            .iter()
            .filter(|b| !self.delete.iter().any(|f| f.matches(b)))
            .cloned()
            .collect();
        acls.extend(self.create);
        let next = before.with_acls(acls);
        if next.acls != before.acls {
            if let Err(e) = super::admin::publish(&shard, next).await {
                tracing::error!(error = %crate::error::chain(&e), "saving the catalog failed");
                return Err(e.to_string());
            }
        }
        Ok(matched)
    }
}

async fn alter(shard: &Rc<ShardContext>, change: AlterAcls) -> Altered {
    run_on(shard, 0, change).await.unwrap_or_else(|e| {
        tracing::warn!(error = %e, "ACL change forward failed");
        Err(e.to_string())
    })
}

pub async fn create(shard: &Rc<ShardContext>, req: CreateAclsRequest) -> CreateAclsResponse {
    let checked: Vec<Result<AclBinding, String>> = req
        .creations
        .into_iter()
        .map(|c| {
            let b = AclBinding {
                resource_type: c.resource_type,
                resource_name: c.resource_name.to_string(),
                pattern_type: c.resource_pattern_type,
                principal: c.principal.to_string(),
                host: c.host.to_string(),
                operation: c.operation,
                permission: c.permission_type,
            };
            b.validate().map(|()| b)
        })
        .collect();
    let valid: Vec<AclBinding> = checked.iter().filter_map(|c| c.as_ref().ok().cloned()).collect();
    let saved = if valid.is_empty() {
        Ok(Vec::new())
    } else {
        alter(
            shard,
            AlterAcls {
                create: valid,
                delete: Vec::new(),
            },
        )
        .await
    };
    let results = checked
        .into_iter()
        .map(|c| {
            let error = match (c, &saved) {
                (Err(m), _) => Some((ResponseError::InvalidRequest, m)),
                (Ok(_), Err(m)) => Some((ResponseError::KafkaStorageError, m.clone())),
                (Ok(_), Ok(_)) => None,
            };
            AclCreationResult::default()
                .with_error_code(error.as_ref().map_or(0, |(e, _)| e.code()))
                .with_error_message(error.map(|(_, m)| m.into()))
        })
        .collect();
    CreateAclsResponse::default().with_results(results)
}

fn filter(
    resource_type: i8,
    name: Option<&kafka_protocol::protocol::StrBytes>,
    pattern_type: i8,
    principal: Option<&kafka_protocol::protocol::StrBytes>,
    host: Option<&kafka_protocol::protocol::StrBytes>,
    operation: i8,
    permission: i8,
) -> AclFilter {
    AclFilter {
        resource_type,
        resource_name: name.map(ToString::to_string),
        pattern_type,
        principal: principal.map(ToString::to_string),
        host: host.map(ToString::to_string),
        operation,
        permission,
    }
}

pub fn describe(shard: &ShardContext, r: &DescribeAclsRequest) -> DescribeAclsResponse {
    let f = filter(
        r.resource_type_filter,
        r.resource_name_filter.as_ref(),
        r.pattern_type_filter,
        r.principal_filter.as_ref(),
        r.host_filter.as_ref(),
        r.operation,
        r.permission_type,
    );
    if let Err(m) = f.validate() {
        return DescribeAclsResponse::default()
            .with_error_code(ResponseError::InvalidRequest.code())
            .with_error_message(Some(m.into()));
    }
    let catalog = shard.catalog();
    let mut resources: BTreeMap<(i8, &str, i8), Vec<AclDescription>> = BTreeMap::new();
    for b in catalog.acls.iter().filter(|b| f.matches(b)) {
        let key = (b.resource_type, b.resource_name.as_str(), b.pattern_type);
        resources.entry(key).or_default().push(
            AclDescription::default()
                .with_principal(b.principal.clone().into())
                .with_host(b.host.clone().into())
                .with_operation(b.operation)
                .with_permission_type(b.permission),
        );
    }
    let resources = resources
        .into_iter()
        .map(|((rt, name, pt), acls)| {
            DescribeAclsResource::default()
                .with_resource_type(rt)
                .with_resource_name(name.to_string().into())
                .with_pattern_type(pt)
                .with_acls(acls)
        })
        .collect();
    DescribeAclsResponse::default().with_resources(resources)
}

pub async fn delete(shard: &Rc<ShardContext>, req: DeleteAclsRequest) -> DeleteAclsResponse {
    let filters: Vec<Result<AclFilter, String>> = req
        .filters
        .iter()
        .map(|r| {
            let f = filter(
                r.resource_type_filter,
                r.resource_name_filter.as_ref(),
                r.pattern_type_filter,
                r.principal_filter.as_ref(),
                r.host_filter.as_ref(),
                r.operation,
                r.permission_type,
            );
            f.validate().map(|()| f)
        })
        .collect();
    let valid: Vec<AclFilter> = filters.iter().filter_map(|f| f.as_ref().ok().cloned()).collect();
    let outcome = if valid.is_empty() {
        Ok(Vec::new())
    } else {
        alter(
            shard,
            AlterAcls {
                create: Vec::new(),
                delete: valid,
            },
        )
        .await
    };
    let mut matched = outcome.as_ref().map(|m| m.iter()).ok().into_iter().flatten();
    let results = filters
        .into_iter()
        .map(|f| match (f, &outcome) {
            (Err(m), _) => error_result(ResponseError::InvalidRequest, m),
            (Ok(_), Err(m)) => error_result(ResponseError::KafkaStorageError, m.clone()),
            (Ok(_), Ok(_)) => {
                let acls = matched.next().map_or(&[][..], Vec::as_slice);
                DeleteAclsFilterResult::default().with_matching_acls(acls.iter().map(matching).collect())
            }
        })
        .collect();
    DeleteAclsResponse::default().with_filter_results(results)
}

fn error_result(e: ResponseError, m: String) -> DeleteAclsFilterResult {
    DeleteAclsFilterResult::default()
        .with_error_code(e.code())
        .with_error_message(Some(m.into()))
}

fn matching(b: &AclBinding) -> DeleteAclsMatchingAcl {
    DeleteAclsMatchingAcl::default()
        .with_resource_type(b.resource_type)
        .with_resource_name(b.resource_name.clone().into())
        .with_pattern_type(b.pattern_type)
        .with_principal(b.principal.clone().into())
        .with_host(b.host.clone().into())
        .with_operation(b.operation)
        .with_permission_type(b.permission)
}
