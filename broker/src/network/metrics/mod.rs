//! The Prometheus endpoint (`--metrics-listen`): a snapshot of each shard's
//! counters and gauges taken on that shard (`snapshot`), rendered as text
//! exposition (`exposition`) and served over HTTP from shard 0 (`http`).

mod exposition;
pub mod http;
mod snapshot;
