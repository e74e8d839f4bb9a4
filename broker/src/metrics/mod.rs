//! Metrics counters: shard-local `Cell`s on the hot path (`counters`,
//! `histogram`), one add per request or batch. A leaf module: the log, the
//! network and the handlers count into it; the Prometheus endpoint that reads
//! them at scrape time lives in `network::metrics`.

mod counters;
mod histogram;

pub use counters::{batch_records, with, Flow, InFlight, ShardCounters, API_KEY_SLOTS};
pub use histogram::Buckets;
