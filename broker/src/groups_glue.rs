//! Consumer-group calls that travel to the coordinator shard of a group.
//! Filled in when the group coordinator is wired into dispatch.

pub enum GroupCall {}
pub enum GroupAnswer {}
