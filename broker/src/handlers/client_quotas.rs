//! DescribeClientQuotas and AlterClientQuotas: the client quotas in the
//! catalog (`metadata::client_quotas`). Describe reads the local catalog
//! snapshot; Alter is a catalog change on shard 0 (`admin.rs`), saved, then
//! applied on every shard, whose connections re-match on their next request.
//! Entity types `user` and `client-id` (a null name is `<default>`), keys
//! `producer_byte_rate` and `consumer_byte_rate`; `ip` entities and the keys
//! Weir does not enforce (`request_percentage`, `controller_mutation_rate`)
//! are refused with INVALID_REQUEST. Checks, codes and messages follow
//! Kafka's ClientQuotaControlManager and ClientQuotasImage; a refused entry
//! changes nothing.

use std::collections::HashMap;
use std::rc::Rc;

use kafka_protocol::messages::{
    alter_client_quotas_request, alter_client_quotas_response, describe_client_quotas_response,
    AlterClientQuotasRequest, AlterClientQuotasResponse, DescribeClientQuotasRequest,
    DescribeClientQuotasResponse,
};
use kafka_protocol::ResponseError;

use super::admin::{admin, outcome, AdminRequest, Refusal, TopicOutcome};
use super::ShardContext;
use crate::metadata::client_quotas::{with_rates, ClientQuota, QuotaEntity, QuotaName};
use crate::metadata::Catalog;

pub const USER: &str = "user";
pub const CLIENT_ID: &str = "client-id";
pub const IP: &str = "ip";
pub const PRODUCER_BYTE_RATE: &str = "producer_byte_rate";
pub const CONSUMER_BYTE_RATE: &str = "consumer_byte_rate";
/// Kafka's other user/client-id keys: valid there, not enforced here.
const NOT_ENFORCED: [&str; 2] = ["request_percentage", "controller_mutation_rate"];

/// One checked alteration, for shard 0: per key, `Some(None)` removes it.
#[derive(Debug, Clone)]
pub struct QuotaChange {
    pub entity: QuotaEntity,
    pub producer: Option<Option<u64>>,
    pub consumer: Option<Option<u64>>,
}

pub async fn alter(shard: &Rc<ShardContext>, req: AlterClientQuotasRequest) -> AlterClientQuotasResponse {
    let mut seen: HashMap<Result<QuotaEntity, ()>, usize> = HashMap::new();
    let checked: Vec<Result<QuotaChange, Refusal>> = req.entries.iter().map(check_entry).collect();
    for c in &checked {
        *seen
            .entry(c.as_ref().map(|c| c.entity.clone()).map_err(|_| ()))
            .or_default() += 1;
    }
    let checked: Vec<Result<QuotaChange, Refusal>> = checked
        .into_iter()
        .map(|c| match c {
            Ok(c) if seen.get(&Ok(c.entity.clone())).copied().unwrap_or(0) > 1 => Err((
                ResponseError::InvalidRequest,
                format!("Ignoring duplicate entity {}", describe_entity(&c.entity)),
            )),
            other => other,
        })
        .collect();
    let changes: Vec<QuotaChange> = checked.iter().filter_map(|c| c.as_ref().ok().cloned()).collect();
    let mut outcomes = if changes.is_empty() || req.validate_only {
        Vec::new()
    } else {
        admin(shard, AdminRequest::AlterQuotas { changes }).await
    }
    .into_iter();
    let entries = req
        .entries
        .iter()
        .zip(checked)
        .map(|(entry, checked)| {
            let (code, message) = match checked {
                Err((e, m)) => (e.code(), Some(m)),
                Ok(_) if req.validate_only => (0, None),
                Ok(_) => outcomes
                    .next()
                    .map_or((ResponseError::RequestTimedOut.code(), None), |o| {
                        (o.error_code, o.error_message)
                    }),
            };
            let entity = entry
                .entity
                .iter()
                .map(|e| {
                    alter_client_quotas_response::EntityData::default()
                        .with_entity_type(e.entity_type.clone())
                        .with_entity_name(e.entity_name.clone())
                })
                .collect();
            alter_client_quotas_response::EntryData::default()
                .with_entity(entity)
                .with_error_code(code)
                .with_error_message(message.map(Into::into))
        })
        .collect();
    AlterClientQuotasResponse::default().with_entries(entries)
}

fn invalid(m: String) -> Refusal {
    (ResponseError::InvalidRequest, m)
}

fn check_entry(entry: &alter_client_quotas_request::EntryData) -> Result<QuotaChange, Refusal> {
    let entity = check_entity(
        entry
            .entity
            .iter()
            .map(|e| (e.entity_type.as_str(), e.entity_name.as_deref())),
    )?;
    let mut change = QuotaChange {
        entity,
        producer: None,
        consumer: None,
    };
    let mut keys = std::collections::HashSet::new();
    for op in &entry.ops {
        let key = op.key.as_str();
        if !keys.insert(key) {
            return Err(invalid(format!(
                "Duplicate quota key {key} not updating quota for this entity {}",
                describe_entity(&change.entity)
            )));
        }
        let value = if op.remove {
            None
        } else {
            Some(check_value(key, op.value)?)
        };
        match key {
            PRODUCER_BYTE_RATE => change.producer = Some(value),
            CONSUMER_BYTE_RATE => change.consumer = Some(value),
            // Removing a key that cannot be set is a no-op, as in Kafka.
            _ => {}
        }
    }
    Ok(change)
}

/// Kafka's entity checks, then Weir's: only `user` and `client-id`.
fn check_entity<'a>(parts: impl Iterator<Item = (&'a str, Option<&'a str>)>) -> Result<QuotaEntity, Refusal> {
    let mut entity = QuotaEntity {
        user: None,
        client_id: None,
    };
    let mut any = false;
    let mut ip = false;
    for (entity_type, name) in parts {
        any = true;
        let slot = match entity_type {
            USER => &mut entity.user,
            CLIENT_ID => &mut entity.client_id,
            IP => {
                ip = true;
                continue;
            }
            other => return Err(invalid(format!("Unhandled client quota entity type: {other}"))),
        };
        if slot.is_some() {
            return Err(invalid(format!(
                "Invalid client quota entity, duplicate entity entry {entity_type}"
            )));
        }
        *slot = Some(match name {
            None => QuotaName::Default,
            Some("") => return Err(invalid(format!("Empty {entity_type} not supported"))),
            Some(n) => QuotaName::Named(n.to_string()),
        });
    }
    if ip {
        return Err(invalid("ip quotas are not supported by Weir".into()));
    }
    if !any {
        return Err(invalid("Invalid empty client quota entity".into()));
    }
    Ok(entity)
}

/// Kafka's key and value checks for the LONG byte-rate keys.
fn check_value(key: &str, value: f64) -> Result<u64, Refusal> {
    if NOT_ENFORCED.contains(&key) {
        return Err(invalid(format!("Quota {key} is not enforced by Weir")));
    }
    if key != PRODUCER_BYTE_RATE && key != CONSUMER_BYTE_RATE {
        return Err(invalid(format!("Invalid configuration key {key}")));
    }
    if value.is_nan() || value <= 0.0 {
        return Err(invalid(format!("Quota {key} must be greater than 0")));
    }
    if value > i64::MAX as f64 {
        return Err(invalid(format!(
            "Proposed value for {key} is too large for a LONG."
        )));
    }
    if (value % 1.0).abs() > 1e-6 {
        return Err(invalid(format!("{key} cannot be a fractional value.")));
    }
    Ok(value as u64)
}

fn describe_entity(e: &QuotaEntity) -> String {
    let part = |t: &str, n: &Option<QuotaName>| match n {
        None => None,
        Some(QuotaName::Default) => Some(format!("{t}=<default>")),
        Some(QuotaName::Named(n)) => Some(format!("{t}={n}")),
    };
    let parts: Vec<String> = [part(USER, &e.user), part(CLIENT_ID, &e.client_id)]
        .into_iter()
        .flatten()
        .collect();
    format!("({})", parts.join(", "))
}

/// On shard 0 under the admin lock: apply the checked changes in order.
pub(super) fn apply(before: &Catalog, changes: Vec<QuotaChange>) -> (Catalog, Vec<TopicOutcome>) {
    let mut next = before.clone();
    let mut outcomes = Vec::with_capacity(changes.len());
    for c in changes {
        next.quotas = with_rates(&next.quotas, &c.entity, c.producer, c.consumer);
        outcomes.push(outcome(&describe_entity(&c.entity), [0; 16], (0, 0), None));
    }
    if next.quotas != before.quotas {
        next.version += 1;
    }
    (next, outcomes)
}

/// A Describe filter: exact names (None = the default) and types that must be present.
struct Filter {
    exact: HashMap<String, Option<String>>,
    present: Vec<String>,
    strict: bool,
}

pub fn describe(shard: &ShardContext, req: &DescribeClientQuotasRequest) -> DescribeClientQuotasResponse {
    match filter(req) {
        Err((e, m)) => DescribeClientQuotasResponse::default()
            .with_error_code(e.code())
            .with_error_message(Some(m.into()))
            .with_entries(None),
        Ok(f) => {
            let catalog = shard.catalog();
            let entries = catalog
                .quotas
                .iter()
                .filter(|q| matches(q, &f))
                .map(describe_entry)
                .collect();
            DescribeClientQuotasResponse::default().with_entries(Some(entries))
        }
    }
}

fn filter(req: &DescribeClientQuotasRequest) -> Result<Filter, Refusal> {
    let mut f = Filter {
        exact: HashMap::new(),
        present: Vec::new(),
        strict: req.strict,
    };
    for c in &req.components {
        let t = c.entity_type.to_string();
        if t.is_empty() {
            return Err(invalid("Invalid empty entity type.".into()));
        }
        if f.exact.contains_key(&t) || f.present.contains(&t) {
            return Err(invalid(format!(
                "Entity type {t} cannot appear more than once in the filter."
            )));
        }
        if ![USER, CLIENT_ID, IP].contains(&t.as_str()) {
            let m = format!("Unsupported entity type {t}");
            return Err((ResponseError::UnsupportedVersion, m));
        }
        let matched = c._match.as_ref().map(ToString::to_string);
        match (c.match_type, matched) {
            (0, Some(m)) => drop(f.exact.insert(t, Some(m))),
            (0, None) => {
                let m = "Request specified MATCH_TYPE_EXACT, but set match string to null.";
                return Err(invalid(m.into()));
            }
            (1, None) => drop(f.exact.insert(t, None)),
            (2, None) => f.present.push(t),
            (1, Some(_)) => {
                let m = "Request specified MATCH_TYPE_DEFAULT, but also specified a match string.";
                return Err(invalid(m.into()));
            }
            (2, Some(_)) => {
                let m = "Request specified MATCH_TYPE_SPECIFIED, but also specified a match string.";
                return Err(invalid(m.into()));
            }
            (other, _) => return Err(invalid(format!("Unknown match type {other}"))),
        }
    }
    let has = |t: &str| f.exact.contains_key(t) || f.present.iter().any(|p| p == t);
    if has(IP) && (has(USER) || has(CLIENT_ID)) {
        let m = "Invalid entity filter component combination. IP filter component should not be used with user or clientId filter component.";
        return Err(invalid(m.into()));
    }
    Ok(f)
}

fn parts(q: &ClientQuota) -> Vec<(&'static str, Option<&str>)> {
    fn name(n: &QuotaName) -> Option<&str> {
        match n {
            QuotaName::Default => None,
            QuotaName::Named(s) => Some(s.as_str()),
        }
    }
    let mut out = Vec::with_capacity(2);
    if let Some(u) = &q.user {
        out.push((USER, name(u)));
    }
    if let Some(c) = &q.client_id {
        out.push((CLIENT_ID, name(c)));
    }
    out
}

fn matches(q: &ClientQuota, f: &Filter) -> bool {
    let parts = parts(q);
    if f.strict && parts.len() != f.exact.len() + f.present.len() {
        return false;
    }
    let get = |t: &str| parts.iter().find(|(pt, _)| *pt == t).map(|(_, n)| *n);
    f.exact
        .iter()
        .all(|(t, want)| get(t).is_some_and(|n| n == want.as_deref()))
        && f.present.iter().all(|t| get(t).is_some())
}

fn describe_entry(q: &ClientQuota) -> describe_client_quotas_response::EntryData {
    use describe_client_quotas_response::{EntityData, EntryData, ValueData};
    let entity = parts(q)
        .into_iter()
        .map(|(t, n)| {
            EntityData::default()
                .with_entity_type(t.into())
                .with_entity_name(n.map(|n| n.to_string().into()))
        })
        .collect();
    let values = [
        (PRODUCER_BYTE_RATE, q.producer_byte_rate),
        (CONSUMER_BYTE_RATE, q.consumer_byte_rate),
    ]
    .into_iter()
    .filter_map(|(k, v)| v.map(|v| ValueData::default().with_key(k.into()).with_value(v as f64)))
    .collect();
    EntryData::default().with_entity(entity).with_values(values)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_bad_values_when_checked_should_refuse_as_kafka() {
        assert_eq!(check_value(PRODUCER_BYTE_RATE, 1024.0), Ok(1024));
        for (key, value) in [
            (PRODUCER_BYTE_RATE, -1.0),
            (PRODUCER_BYTE_RATE, 0.0),
            (CONSUMER_BYTE_RATE, 1.5),
            (CONSUMER_BYTE_RATE, 1e30),
            ("request_percentage", 50.0),
            ("bogus", 1.0),
        ] {
            assert_eq!(
                check_value(key, value).unwrap_err().0,
                ResponseError::InvalidRequest
            );
        }
    }

    #[test]
    fn given_entities_when_checked_should_accept_user_and_client_id_only() {
        let ok = check_entity([(USER, Some("u")), (CLIENT_ID, None)].into_iter()).unwrap();
        assert_eq!(ok.client_id, Some(QuotaName::Default));
        for bad in [
            vec![],
            vec![("group", Some("g"))],
            vec![(USER, Some(""))],
            vec![(USER, Some("a")), (USER, Some("b"))],
            vec![(IP, Some("1.2.3.4"))],
        ] {
            assert!(check_entity(bad.clone().into_iter()).is_err(), "{bad:?}");
        }
    }
}
