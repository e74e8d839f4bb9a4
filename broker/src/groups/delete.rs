//! DeleteGroups on the coordinator: an Empty group loses its metadata and every offset it
//! has (committed and pending transactional) through one durable `GroupDelete` record.
//! Runs only on the coordinator's own shard. Invariant: the group leaves the in-memory map
//! before the record is written, so a JoinGroup or OffsetCommit arriving while the record
//! syncs starts a new group whose records follow the delete in the file.

use kafka_protocol::ResponseError;

use super::coordinator::GroupCoordinator;
use super::group::GroupState;
use super::store::StoreRecord;
use super::NAME_BYTES_MAX;

impl GroupCoordinator {
    /// Deletes `group_id` as Kafka's DeleteGroups does: INVALID_GROUP_ID for an empty (or
    /// oversized) id, GROUP_ID_NOT_FOUND for an unknown or Dead group, NON_EMPTY_GROUP for
    /// any state but Empty. Answered once the delete is durable.
    pub async fn delete_group(&self, group_id: &str) -> Result<(), ResponseError> {
        if self.closed.get() {
            return Err(ResponseError::CoordinatorNotAvailable);
        }
        if group_id.is_empty() || group_id.len() > NAME_BYTES_MAX {
            return Err(ResponseError::InvalidGroupId);
        }
        {
            let mut groups = self.groups.borrow_mut();
            let state = match groups.get(group_id) {
                None => GroupState::Dead,
                Some(g) if g.has_consumer_members() => GroupState::Stable,
                Some(g) => g.state,
            };
            match state {
                GroupState::Empty => {}
                GroupState::Dead => return Err(ResponseError::GroupIdNotFound),
                _ => return Err(ResponseError::NonEmptyGroup),
            }
            groups.remove(group_id);
        }
        let record = StoreRecord::GroupDelete {
            group: group_id.to_owned(),
        };
        self.store.append(vec![record]).await.map_err(|e| {
            tracing::warn!(group = %group_id, error = %e, "group delete not persisted");
            e.to_response_error()
        })
    }
}
