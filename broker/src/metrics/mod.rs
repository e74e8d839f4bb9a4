//! Metrics: shard-local counters on the hot path (`counters`, `histogram`), a
//! per-shard snapshot taken on that shard at scrape time (`snapshot`), and the
//! Prometheus endpoint on shard 0 (`http`, `exposition`). Counting is a `Cell`
//! add per request or batch; everything else happens when someone scrapes.

mod counters;
mod exposition;
mod histogram;
pub mod http;
mod snapshot;

pub use counters::{batch_records, with, InFlight};
