//! Client quotas as the catalog stores them (KIP-546 entities): per entity (a
//! user, a client id, or both; each named or `<default>`), the produce and
//! fetch byte rates. A value type inside `Catalog`, written by shard 0 only
//! (`handlers::client_quotas`); shards index it in `quota::ShardQuotas`.
//! Invariant: at most one entry per entity, entries sorted by entity, every
//! entry has a user or a client id and at least one rate (an entry whose last
//! rate is removed goes).

use rkyv::{Archive, Deserialize, Serialize};

/// One entity type's part of a quota entity: a name, or the default
/// (`<default>`, a null name on the wire).
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum QuotaName {
    Default,
    Named(String),
}

/// `None` = the entity has no part of that type (`/clients/x` has no user).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct QuotaEntity {
    pub user: Option<QuotaName>,
    pub client_id: Option<QuotaName>,
}

/// The rates of one entity, bytes per second; `None` = not set.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct ClientQuota {
    pub user: Option<QuotaName>,
    pub client_id: Option<QuotaName>,
    pub producer_byte_rate: Option<u64>,
    pub consumer_byte_rate: Option<u64>,
}

impl ClientQuota {
    pub fn entity(&self) -> QuotaEntity {
        QuotaEntity {
            user: self.user.clone(),
            client_id: self.client_id.clone(),
        }
    }
}

/// `quotas` with `entity`'s rates replaced by `set` (a key's `Some(None)`
/// removes it, `None` leaves it); kept sorted, the entry dropped when no rate
/// is left.
pub fn with_rates(
    quotas: &[ClientQuota],
    entity: &QuotaEntity,
    producer: Option<Option<u64>>,
    consumer: Option<Option<u64>>,
) -> Vec<ClientQuota> {
    let mut next: Vec<ClientQuota> = quotas.to_vec();
    let at = next.iter().position(|q| &q.entity() == entity);
    let mut entry = at.map(|i| next.remove(i)).unwrap_or(ClientQuota {
        user: entity.user.clone(),
        client_id: entity.client_id.clone(),
        producer_byte_rate: None,
        consumer_byte_rate: None,
    });
    if let Some(p) = producer {
        entry.producer_byte_rate = p;
    }
    if let Some(c) = consumer {
        entry.consumer_byte_rate = c;
    }
    if entry.producer_byte_rate.is_some() || entry.consumer_byte_rate.is_some() {
        next.push(entry);
    }
    next.sort_by_key(ClientQuota::entity);
    next
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_rates_when_set_and_removed_should_keep_one_sorted_entry_per_entity() {
        let alice = QuotaEntity {
            user: Some(QuotaName::Named("alice".into())),
            client_id: None,
        };
        let default_client = QuotaEntity {
            user: None,
            client_id: Some(QuotaName::Default),
        };
        let q = with_rates(&[], &alice, Some(Some(10)), None);
        let q = with_rates(&q, &default_client, None, Some(Some(5)));
        let q = with_rates(&q, &alice, None, Some(Some(7)));
        assert_eq!(q.len(), 2);
        assert_eq!(q[0].entity(), default_client);
        assert_eq!(
            (q[1].producer_byte_rate, q[1].consumer_byte_rate),
            (Some(10), Some(7))
        );
        let q = with_rates(&q, &alice, Some(None), Some(None));
        assert_eq!(q.len(), 1);
        assert_eq!(with_rates(&q, &default_client, None, Some(None)), vec![]);
    }
}
