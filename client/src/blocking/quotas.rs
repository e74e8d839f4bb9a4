//! Client quota administration (Describe/AlterClientQuotas): entities are
//! (entity type, name) pairs, a `None` name being the default (`<default>`).

use kafka_protocol::messages::{
    alter_client_quotas_request, describe_client_quotas_request::ComponentData, AlterClientQuotasRequest,
    ApiKey, DescribeClientQuotasRequest,
};

use super::{Client, ClientError};
use crate::error::check;

/// One entity's quotas as DescribeClientQuotas reports them.
#[derive(Debug, Clone, PartialEq)]
pub struct QuotaEntry {
    /// (entity type, name; `None` = the default)
    pub entity: Vec<(String, Option<String>)>,
    /// (key, value)
    pub values: Vec<(String, f64)>,
}

/// The answer for one altered entity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuotaAltered {
    pub error_code: i16,
    pub error_message: Option<String>,
}

impl Client {
    /// Every quota whose entity matches `filter`: per entity type, `Some(name)`
    /// an exact name, `None` the default; an empty filter matches all.
    pub fn describe_quotas(
        &mut self,
        filter: &[(&str, Option<&str>)],
        strict: bool,
    ) -> Result<Vec<QuotaEntry>, ClientError> {
        let components = filter
            .iter()
            .map(|(t, name)| {
                ComponentData::default()
                    .with_entity_type(t.to_string().into())
                    .with_match_type(if name.is_some() { 0 } else { 1 })
                    .with_match(name.map(|n| n.to_string().into()))
            })
            .collect();
        let req = DescribeClientQuotasRequest::default()
            .with_components(components)
            .with_strict(strict);
        let r = self.call(req)?;
        check(ApiKey::DescribeClientQuotas, r.error_code)?;
        Ok(r.entries
            .unwrap_or_default()
            .into_iter()
            .map(|e| QuotaEntry {
                entity: e
                    .entity
                    .iter()
                    .map(|d| {
                        (
                            d.entity_type.to_string(),
                            d.entity_name.as_ref().map(ToString::to_string),
                        )
                    })
                    .collect(),
                values: e.values.iter().map(|v| (v.key.to_string(), v.value)).collect(),
            })
            .collect())
    }

    /// Set (`Some(value)`) or remove (`None`) quota keys of one entity.
    pub fn alter_quotas(
        &mut self,
        entity: &[(&str, Option<&str>)],
        ops: &[(&str, Option<f64>)],
    ) -> Result<QuotaAltered, ClientError> {
        use alter_client_quotas_request::{EntityData, EntryData, OpData};
        let entity = entity
            .iter()
            .map(|(t, n)| {
                EntityData::default()
                    .with_entity_type(t.to_string().into())
                    .with_entity_name(n.map(|n| n.to_string().into()))
            })
            .collect();
        let ops = ops
            .iter()
            .map(|(k, v)| {
                OpData::default()
                    .with_key(k.to_string().into())
                    .with_value(v.unwrap_or(0.0))
                    .with_remove(v.is_none())
            })
            .collect();
        let req = AlterClientQuotasRequest::default()
            .with_entries(vec![EntryData::default().with_entity(entity).with_ops(ops)]);
        let r = self.call(req)?;
        let first = r
            .entries
            .into_iter()
            .next()
            .ok_or_else(|| std::io::Error::other("no entry in AlterClientQuotas response"))?;
        Ok(QuotaAltered {
            error_code: first.error_code,
            error_message: first.error_message.map(|m| m.to_string()),
        })
    }
}
