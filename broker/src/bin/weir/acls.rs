//! `weir acl add|remove|list`: ACL bindings through CreateAcls, DeleteAcls and
//! DescribeAcls on a running broker, with kafka-acls.sh's notions (principal,
//! host, resource, pattern, operation, permission). Main thread, blocking sockets.

use std::io::Write;

use weir_client::blocking::{acl_names as names, Acl};

use crate::admin::{broker, connect, print_table, CliError};
use crate::args::{AclArgs, AclCommand, AclSpec};

const ANY: i8 = 1;

pub fn run(args: AclArgs, out: &mut impl Write) -> Result<(), CliError> {
    match args.command {
        AclCommand::Add(spec) => {
            let acls = bindings(&spec)?;
            let mut client = connect(&args.bootstrap)?;
            let results = client.create_acls(&acls).map_err(broker("creating ACLs"))?;
            for (acl, r) in acls.iter().zip(results) {
                if r.code != 0 {
                    let m = r.message.unwrap_or_default();
                    return Err(CliError::Usage(format!("ACL refused: error {}: {m}", r.code)));
                }
                writeln!(out, "added: {}", describe(acl))?;
            }
            Ok(())
        }
        AclCommand::Remove(spec) => {
            let mut client = connect(&args.bootstrap)?;
            for filter in filters(&spec)? {
                let removed = client.delete_acls(&filter).map_err(broker("deleting ACLs"))?;
                let removed = removed.map_err(|e| {
                    let m = e.message.unwrap_or_default();
                    CliError::Usage(format!("filter refused: error {}: {m}", e.code))
                })?;
                for acl in &removed {
                    writeln!(out, "removed: {}", describe(acl))?;
                }
            }
            Ok(())
        }
        AclCommand::List(spec) => {
            let mut client = connect(&args.bootstrap)?;
            let mut rows = Vec::new();
            for filter in filters(&spec)? {
                let acls = client.describe_acls(&filter).map_err(broker("listing ACLs"))?;
                rows.extend(acls.iter().map(row));
            }
            let header = [
                "RESOURCE",
                "NAME",
                "PATTERN",
                "PRINCIPAL",
                "HOST",
                "OPERATION",
                "PERMISSION",
            ];
            print_table(out, &header, &rows)?;
            Ok(())
        }
    }
}

fn code(table: &[(i8, &'static str)], what: &str, name: &str) -> Result<i8, CliError> {
    names::code(table, name).ok_or_else(|| CliError::Usage(format!("unknown {what} {name:?}")))
}

/// The resource's type and name, if one was given.
fn resource(spec: &AclSpec) -> Option<(i8, String)> {
    if let Some(t) = &spec.topic {
        return Some((2, t.clone()));
    }
    if let Some(g) = &spec.group {
        return Some((3, g.clone()));
    }
    if let Some(t) = &spec.transactional_id {
        return Some((5, t.clone()));
    }
    spec.cluster.then(|| (4, "kafka-cluster".to_string()))
}

fn bindings(spec: &AclSpec) -> Result<Vec<Acl>, CliError> {
    let usage = |m: &str| CliError::Usage(m.to_string());
    let principal = spec
        .principal
        .clone()
        .ok_or_else(|| usage("--principal is required"))?;
    let (resource_type, name) = resource(spec)
        .ok_or_else(|| usage("a resource is required: --topic, --group, --transactional-id or --cluster"))?;
    if spec.operation.is_empty() {
        return Err(usage("at least one --operation is required"));
    }
    let pattern_type = code(
        names::PATTERN_TYPES,
        "pattern",
        spec.pattern.as_deref().unwrap_or("literal"),
    )?;
    let permission = code(
        names::PERMISSIONS,
        "permission",
        spec.permission.as_deref().unwrap_or("allow"),
    )?;
    spec.operation
        .iter()
        .map(|o| {
            Ok(Acl {
                resource_type,
                resource_name: Some(name.clone()),
                pattern_type,
                principal: Some(principal.clone()),
                host: Some(spec.host.clone().unwrap_or_else(|| "*".into())),
                operation: code(names::OPERATIONS, "operation", o)?,
                permission,
            })
        })
        .collect()
}

/// One filter per --operation (one matching any operation when none is given).
fn filters(spec: &AclSpec) -> Result<Vec<Acl>, CliError> {
    let (resource_type, name) = resource(spec).map_or((ANY, None), |(t, n)| (t, Some(n)));
    let pattern_type = code(
        names::PATTERN_TYPES,
        "pattern",
        spec.pattern.as_deref().unwrap_or("any"),
    )?;
    let permission = code(
        names::PERMISSIONS,
        "permission",
        spec.permission.as_deref().unwrap_or("any"),
    )?;
    let operations = if spec.operation.is_empty() {
        vec![ANY]
    } else {
        spec.operation
            .iter()
            .map(|o| code(names::OPERATIONS, "operation", o))
            .collect::<Result<_, _>>()?
    };
    Ok(operations
        .into_iter()
        .map(|operation| Acl {
            resource_type,
            resource_name: name.clone(),
            pattern_type,
            principal: spec.principal.clone(),
            host: spec.host.clone(),
            operation,
            permission,
        })
        .collect())
}

fn row(a: &Acl) -> Vec<String> {
    vec![
        names::name(names::RESOURCE_TYPES, a.resource_type).to_string(),
        a.resource_name.clone().unwrap_or_default(),
        names::name(names::PATTERN_TYPES, a.pattern_type).to_string(),
        a.principal.clone().unwrap_or_default(),
        a.host.clone().unwrap_or_default(),
        names::name(names::OPERATIONS, a.operation).to_string(),
        names::name(names::PERMISSIONS, a.permission).to_string(),
    ]
}

fn describe(a: &Acl) -> String {
    row(a).join(" ")
}
