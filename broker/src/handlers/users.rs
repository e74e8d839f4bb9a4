//! DescribeUserScramCredentials and AlterUserScramCredentials: the SASL users'
//! salted SCRAM credentials in the catalog. Describe reads the local catalog
//! snapshot; Alter is a catalog change on shard 0 (`admin.rs`), saved, then
//! applied on every shard, so the next authentication on any shard sees it.
//! The request carries salt and salted password (the client derives them, as
//! Kafka's); only StoredKey and ServerKey are kept. Errors and messages follow
//! Kafka's ScramControlManager.

use std::collections::HashSet;
use std::rc::Rc;

use kafka_protocol::messages::{
    alter_user_scram_credentials_response::AlterUserScramCredentialsResult,
    describe_user_scram_credentials_response::{CredentialInfo, DescribeUserScramCredentialsResult},
    AlterUserScramCredentialsRequest, AlterUserScramCredentialsResponse, DescribeUserScramCredentialsRequest,
    DescribeUserScramCredentialsResponse,
};
use kafka_protocol::ResponseError;
use weir_protocol::scram::{Credential, Mechanism, MAX_ITERATIONS, MIN_ITERATIONS};

use super::admin::{admin, outcome, AdminRequest, Refusal, TopicOutcome};
use super::ShardContext;
use crate::metadata::catalog::ScramCredential;
use crate::metadata::Catalog;

/// One checked change, for shard 0.
#[derive(Debug, Clone)]
pub enum UserChange {
    Upsert {
        user: String,
        credential: ScramCredential,
    },
    Delete {
        user: String,
        mechanism: i8,
    },
}

pub fn describe(
    shard: &ShardContext,
    req: &DescribeUserScramCredentialsRequest,
) -> DescribeUserScramCredentialsResponse {
    let catalog = shard.catalog();
    let results = match req.users.as_ref().filter(|u| !u.is_empty()) {
        None => catalog
            .users
            .keys()
            .map(|u| describe_one(&catalog, u, false))
            .collect(),
        Some(users) => {
            let mut seen = HashSet::new();
            let twice: HashSet<&str> = users
                .iter()
                .filter(|u| !seen.insert(u.name.as_str()))
                .map(|u| u.name.as_str())
                .collect();
            let mut reported = HashSet::new();
            users
                .iter()
                .filter(|u| reported.insert(u.name.as_str()))
                .map(|u| describe_one(&catalog, &u.name, twice.contains(u.name.as_str())))
                .collect()
        }
    };
    DescribeUserScramCredentialsResponse::default().with_results(results)
}

fn describe_one(catalog: &Catalog, user: &str, duplicate: bool) -> DescribeUserScramCredentialsResult {
    let result = DescribeUserScramCredentialsResult::default().with_user(user.to_string().into());
    let error = |e: ResponseError, m: &str| {
        DescribeUserScramCredentialsResult::default()
            .with_user(user.to_string().into())
            .with_error_code(e.code())
            .with_error_message(Some(m.to_string().into()))
    };
    if duplicate {
        return error(
            ResponseError::DuplicateResource,
            "Cannot describe SCRAM credentials for the same user twice in a single request",
        );
    }
    let Some(list) = catalog.users.get(user) else {
        return error(
            ResponseError::ResourceNotFound,
            "Attempt to describe a user credential that does not exist",
        );
    };
    let infos = list
        .iter()
        .map(|c| {
            CredentialInfo::default()
                .with_mechanism(c.mechanism)
                .with_iterations(c.iterations)
        })
        .collect();
    result.with_credential_infos(infos)
}

pub async fn alter(
    shard: &Rc<ShardContext>,
    req: AlterUserScramCredentialsRequest,
) -> AlterUserScramCredentialsResponse {
    let mut counts = std::collections::HashMap::<&str, usize>::new();
    let names = req
        .deletions
        .iter()
        .map(|d| d.name.as_str())
        .chain(req.upsertions.iter().map(|u| u.name.as_str()));
    for n in names {
        *counts.entry(n).or_default() += 1;
    }
    let twice = |n: &str| counts.get(n).copied().unwrap_or(0) > 1;
    let mut pre: Vec<(String, Result<UserChange, Refusal>)> = Vec::new();
    for d in &req.deletions {
        let user = d.name.to_string();
        let checked = check_name(&user, twice(&user)).and_then(|()| {
            mechanism(d.mechanism).map(|_| UserChange::Delete {
                user: user.clone(),
                mechanism: d.mechanism,
            })
        });
        pre.push((user, checked));
    }
    for u in &req.upsertions {
        let user = u.name.to_string();
        let checked = check_name(&user, twice(&user)).and_then(|()| {
            let m = mechanism(u.mechanism)?;
            check_upsertion(m, u.iterations, &u.salt, &u.salted_password)?;
            let c = Credential::from_salted(m, u.salt.to_vec(), u.iterations, &u.salted_password);
            let credential = ScramCredential {
                mechanism: u.mechanism,
                salt: c.salt,
                iterations: c.iterations,
                stored_key: c.stored_key,
                server_key: c.server_key,
            };
            Ok(UserChange::Upsert {
                user: user.clone(),
                credential,
            })
        });
        pre.push((user, checked));
    }
    let changes: Vec<UserChange> = pre.iter().filter_map(|(_, c)| c.as_ref().ok().cloned()).collect();
    let mut outcomes = if changes.is_empty() {
        Vec::new()
    } else {
        admin(shard, AdminRequest::AlterUsers { changes }).await
    }
    .into_iter();
    let results = pre
        .into_iter()
        .map(|(user, checked)| {
            let (code, message) = match checked {
                Err((e, m)) => (e.code(), Some(m)),
                Ok(_) => outcomes
                    .next()
                    .map_or((ResponseError::RequestTimedOut.code(), None), |o| {
                        (o.error_code, o.error_message)
                    }),
            };
            AlterUserScramCredentialsResult::default()
                .with_user(user.into())
                .with_error_code(code)
                .with_error_message(message.map(Into::into))
        })
        .collect();
    AlterUserScramCredentialsResponse::default().with_results(results)
}

fn check_name(user: &str, duplicate: bool) -> Result<(), Refusal> {
    if user.is_empty() {
        return Err((
            ResponseError::UnacceptableCredential,
            "Username must not be empty".into(),
        ));
    }
    if duplicate {
        let m = "A user credential cannot be altered twice in the same request";
        return Err((ResponseError::DuplicateResource, m.into()));
    }
    Ok(())
}

fn mechanism(t: i8) -> Result<Mechanism, Refusal> {
    Mechanism::from_kafka_type(t).ok_or((
        ResponseError::UnsupportedSaslMechanism,
        "Unknown SCRAM mechanism".into(),
    ))
}

fn check_upsertion(
    m: Mechanism,
    iterations: i32,
    salt: &[u8],
    salted_password: &[u8],
) -> Result<(), Refusal> {
    let unacceptable = |msg: &str| Err((ResponseError::UnacceptableCredential, msg.to_string()));
    if iterations < MIN_ITERATIONS {
        return unacceptable("Too few iterations");
    }
    if iterations > MAX_ITERATIONS {
        return unacceptable("Too many iterations");
    }
    if salt.is_empty() || salted_password.len() != m.hash(b"").len() {
        return unacceptable("Salt must not be empty and the salted password must be one hash long");
    }
    Ok(())
}

/// On shard 0 under the admin lock: apply the checked changes in order.
pub(super) fn apply(before: &Catalog, changes: Vec<UserChange>) -> (Catalog, Vec<TopicOutcome>) {
    let mut next = before.clone();
    let mut outcomes = Vec::with_capacity(changes.len());
    for change in changes {
        match change {
            UserChange::Upsert { user, credential } => {
                next = next.with_credential(&user, credential);
                outcomes.push(outcome(&user, [0; 16], (0, 0), None));
            }
            UserChange::Delete { user, mechanism } => match next.without_credential(&user, mechanism) {
                Some(n) => {
                    next = n;
                    outcomes.push(outcome(&user, [0; 16], (0, 0), None));
                }
                None => {
                    let m = "Attempt to delete a user credential that does not exist";
                    let e = (ResponseError::ResourceNotFound, m.to_string());
                    outcomes.push(outcome(&user, [0; 16], (0, 0), Some(e)));
                }
            },
        }
    }
    (next, outcomes)
}
