//! Client quotas (KIP-13/KIP-55, KIP-219 throttling): produce and fetch byte
//! rates per user and client id, enforced per shard as Kafka enforces them per
//! broker (in zero-hop mode every shard is an advertised broker).
//! `ShardQuotas` is one shard's index of the catalog's quotas and its rate
//! sensors; `ConnectionQuota` is one connection's cached match and its mute.
//! Everything here is shard-local (`Rc`, `Cell`): no locks, no cross-shard
//! traffic. Cost on the hot path: one generation compare and one client-id
//! compare per request, then one `Rate` update; nothing per record.

pub mod rate;

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::metadata::client_quotas::{ClientQuota, QuotaEntity, QuotaName};
use rate::Rate;

/// The quota user of a connection that did not authenticate (Kafka's principal name).
pub const ANONYMOUS: &str = "ANONYMOUS";

/// Sensors that no connection holds and that saw nothing for this long are
/// dropped (their samples have all expired by then).
const IDLE_SENSOR_MS: u64 = rate::SAMPLES * rate::WINDOW_MS;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QuotaKind {
    Produce,
    Fetch,
}

/// A matched quota: its limit and the rate it is metered by.
#[derive(Clone)]
struct Meter {
    limit: f64,
    rate: Rc<RefCell<Rate>>,
}

/// Which sensor a matched quota meters by: Kafka's metric tags (user, client
/// id), "" for a part the quota does not distinguish.
type SensorKey = (QuotaKind, String, String);

/// An entity's (producer_byte_rate, consumer_byte_rate).
type Rates = (Option<u64>, Option<u64>);

/// One shard's copy of the quotas and its sensors.
pub struct ShardQuotas {
    generation: Cell<u64>,
    quotas: RefCell<Vec<ClientQuota>>,
    index: RefCell<HashMap<QuotaEntity, Rates>>,
    sensors: RefCell<HashMap<SensorKey, Rc<RefCell<Rate>>>>,
    epoch: Instant,
}

impl Default for ShardQuotas {
    fn default() -> Self {
        Self::new()
    }
}

impl ShardQuotas {
    pub fn new() -> Self {
        Self {
            generation: Cell::new(0),
            quotas: RefCell::new(Vec::new()),
            index: RefCell::new(HashMap::new()),
            sensors: RefCell::new(HashMap::new()),
            epoch: Instant::now(),
        }
    }

    /// Adopt the catalog's quotas; connections re-match on their next request.
    /// Sensors are kept, so a changed limit applies to the rate measured so far.
    pub fn apply(&self, quotas: &[ClientQuota]) {
        if *self.quotas.borrow() == quotas {
            return;
        }
        *self.quotas.borrow_mut() = quotas.to_vec();
        *self.index.borrow_mut() = quotas
            .iter()
            .map(|q| (q.entity(), (q.producer_byte_rate, q.consumer_byte_rate)))
            .collect();
        self.generation.set(self.generation.get() + 1);
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// The quota that applies to `user`/`client_id` for `kind`, in Kafka's order
    /// of precedence, and the sensor it meters by (Kafka's
    /// `DefaultQuotaCallback`: a default entity meters each name separately).
    fn resolve(&self, kind: QuotaKind, user: &str, client_id: &str) -> Option<Meter> {
        let index = self.index.borrow();
        if index.is_empty() {
            return None;
        }
        let (limit, user_tag, client_tag) =
            precedence(user, client_id)
                .into_iter()
                .find_map(|(entity, tags)| {
                    let (produce, fetch) = index.get(&entity)?;
                    let limit = match kind {
                        QuotaKind::Produce => produce,
                        QuotaKind::Fetch => fetch,
                    };
                    limit.map(|l| (l, tags.0, tags.1))
                })?;
        let key: SensorKey = (
            kind,
            if user_tag { user.to_string() } else { String::new() },
            if client_tag {
                client_id.to_string()
            } else {
                String::new()
            },
        );
        let mut sensors = self.sensors.borrow_mut();
        if !sensors.contains_key(&key) {
            let now = self.now_ms();
            sensors.retain(|_, r| {
                Rc::strong_count(r) > 1 || now.saturating_sub(r.borrow().last_event_ms()) < IDLE_SENSOR_MS
            });
            if sensors.len() >= crate::limits::QUOTA_SENSORS_MAX {
                sensors.retain(|_, r| Rc::strong_count(r) > 1);
            }
        }
        let rate = sensors.entry(key).or_default().clone();
        Some(Meter {
            limit: limit as f64,
            rate,
        })
    }
}

/// Kafka's eight quota entities for a user and a client id, most specific
/// first, each with the metric tags it meters by (user?, client id?).
fn precedence(user: &str, client_id: &str) -> [(QuotaEntity, (bool, bool)); 8] {
    let named = |s: &str| Some(QuotaName::Named(s.to_string()));
    let default = || Some(QuotaName::Default);
    let entity = |user, client_id| QuotaEntity { user, client_id };
    [
        (entity(named(user), named(client_id)), (true, true)),
        (entity(named(user), default()), (true, true)),
        (entity(named(user), None), (true, false)),
        (entity(default(), named(client_id)), (true, true)),
        (entity(default(), default()), (true, true)),
        (entity(default(), None), (true, false)),
        (entity(None, named(client_id)), (false, true)),
        (entity(None, default()), (false, true)),
    ]
}

struct Matched {
    generation: u64,
    client_id: String,
    produce: Option<Meter>,
    fetch: Option<Meter>,
}

/// One connection's quota state: its user, its cached matches, and until when
/// it is muted (KIP-219: not read while throttled).
pub struct ConnectionQuota {
    user: String,
    matched: RefCell<Option<Matched>>,
    muted_until: Cell<Option<Instant>>,
}

impl ConnectionQuota {
    /// `principal` is `User:name` after SASL, `None` for an unauthenticated
    /// connection (user `ANONYMOUS`, as Kafka).
    pub fn new(principal: Option<&str>) -> Self {
        let user = principal.map_or(ANONYMOUS, |p| p.strip_prefix("User:").unwrap_or(p));
        Self {
            user: user.to_string(),
            matched: RefCell::new(None),
            muted_until: Cell::new(None),
        }
    }

    fn meter(&self, shard: &ShardQuotas, kind: QuotaKind, client_id: &str) -> Option<Meter> {
        let mut matched = self.matched.borrow_mut();
        let fresh = matched
            .as_ref()
            .is_some_and(|m| m.generation == shard.generation.get() && m.client_id == client_id);
        if !fresh {
            *matched = Some(Matched {
                generation: shard.generation.get(),
                client_id: client_id.to_string(),
                produce: shard.resolve(QuotaKind::Produce, &self.user, client_id),
                fetch: shard.resolve(QuotaKind::Fetch, &self.user, client_id),
            });
        }
        let m = matched.as_ref().expect("just set");
        match kind {
            QuotaKind::Produce => m.produce.clone(),
            QuotaKind::Fetch => m.fetch.clone(),
        }
    }

    /// Record `bytes` against the matching quota; the throttle time in ms (0
    /// when none applies or the rate is within it). A throttled connection is
    /// muted for that long.
    pub fn record(&self, shard: &ShardQuotas, kind: QuotaKind, client_id: &str, bytes: usize) -> i32 {
        let Some(meter) = self.meter(shard, kind, client_id) else {
            return 0;
        };
        let throttle = meter
            .rate
            .borrow_mut()
            .record_and_throttle(bytes as f64, meter.limit, shard.now_ms());
        let throttle = i32::try_from(throttle).unwrap_or(i32::MAX);
        if throttle > 0 {
            self.mute_for(throttle);
            crate::metrics::with(|m| m.throttled(kind == QuotaKind::Fetch, throttle as u64));
        }
        throttle
    }

    /// Read nothing more from this connection for `ms` (KIP-219); a mute
    /// already longer stays. Quotas and the backlog bound (handlers/backlog.rs) both use it.
    pub fn mute_for(&self, ms: i32) {
        if ms <= 0 {
            return;
        }
        let until = Instant::now() + Duration::from_millis(ms as u64);
        self.muted_until
            .set(Some(self.muted_until.get().map_or(until, |u| u.max(until))));
    }

    /// Take back a recorded amount (a throttled fetch answers no records).
    pub fn unrecord(&self, shard: &ShardQuotas, kind: QuotaKind, client_id: &str, bytes: usize) {
        if let Some(meter) = self.meter(shard, kind, client_id) {
            meter.rate.borrow_mut().record(-(bytes as f64), shard.now_ms());
        }
    }

    /// The most one answer may carry and still possibly be within the quota
    /// (Kafka's `getMaxValueInQuotaWindow`: limit x 10 windows); `None` when
    /// no quota applies.
    pub fn max_bytes_in_window(
        &self,
        shard: &ShardQuotas,
        kind: QuotaKind,
        client_id: &str,
    ) -> Option<usize> {
        let meter = self.meter(shard, kind, client_id)?;
        let bytes = meter.limit * ((rate::SAMPLES - 1) * rate::WINDOW_MS) as f64 / 1000.0;
        Some(bytes.min(usize::MAX as f64) as usize)
    }

    /// Wait out a throttle: the connection reads nothing meanwhile.
    pub async fn unmuted(&self) {
        while let Some(until) = self.muted_until.get() {
            let now = Instant::now();
            if until <= now {
                self.muted_until.set(None);
                return;
            }
            glommio::timer::sleep(until - now).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quota(user: Option<QuotaName>, client_id: Option<QuotaName>, rate: u64) -> ClientQuota {
        ClientQuota {
            user,
            client_id,
            producer_byte_rate: Some(rate),
            consumer_byte_rate: None,
        }
    }

    fn named(s: &str) -> Option<QuotaName> {
        Some(QuotaName::Named(s.into()))
    }

    #[test]
    fn given_every_entity_when_removed_one_by_one_should_follow_kafkas_precedence() {
        let d = || Some(QuotaName::Default);
        // Most specific first; rate i+1 marks precedence rank i.
        let all = [
            quota(named("u"), named("c"), 1),
            quota(named("u"), d(), 2),
            quota(named("u"), None, 3),
            quota(d(), named("c"), 4),
            quota(d(), d(), 5),
            quota(d(), None, 6),
            quota(None, named("c"), 7),
            quota(None, d(), 8),
        ];
        let shard = ShardQuotas::new();
        for skip in 0..all.len() {
            shard.apply(&all[skip..]);
            let m = shard.resolve(QuotaKind::Produce, "u", "c").unwrap();
            assert_eq!(m.limit, (skip + 1) as f64);
            assert!(shard.resolve(QuotaKind::Fetch, "u", "c").is_none());
        }
        shard.apply(&[]);
        assert!(shard.resolve(QuotaKind::Produce, "u", "c").is_none());
    }

    #[test]
    fn given_a_user_quota_when_two_clients_connect_should_share_one_sensor_but_client_defaults_should_not() {
        let shard = ShardQuotas::new();
        shard.apply(&[
            quota(named("u"), None, 100),
            quota(None, Some(QuotaName::Default), 50),
        ]);
        let a = shard.resolve(QuotaKind::Produce, "u", "a").unwrap();
        let b = shard.resolve(QuotaKind::Produce, "u", "b").unwrap();
        assert!(Rc::ptr_eq(&a.rate, &b.rate));
        let x = shard.resolve(QuotaKind::Produce, ANONYMOUS, "x").unwrap();
        let y = shard.resolve(QuotaKind::Produce, ANONYMOUS, "y").unwrap();
        assert_eq!(x.limit, 50.0);
        assert!(!Rc::ptr_eq(&x.rate, &y.rate));
    }

    #[test]
    fn given_a_connection_when_over_its_quota_should_throttle_and_rematch_on_change() {
        let shard = ShardQuotas::new();
        let conn = ConnectionQuota::new(Some("User:u"));
        assert_eq!(conn.record(&shard, QuotaKind::Produce, "c", 1 << 30), 0);
        shard.apply(&[quota(named("u"), None, 1000)]);
        assert_eq!(conn.record(&shard, QuotaKind::Produce, "c", 10_000), 0);
        assert!(conn.record(&shard, QuotaKind::Produce, "c", 10_000) >= 9_000);
        assert!(conn.muted_until.get().is_some());
        assert_eq!(
            conn.max_bytes_in_window(&shard, QuotaKind::Produce, "c"),
            Some(10_000)
        );
        assert_eq!(conn.max_bytes_in_window(&shard, QuotaKind::Fetch, "c"), None);
    }
}
