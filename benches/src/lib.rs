//! Shared helpers for Weir benchmarks.
