//! Share sessions (KIP-932's ShareFetch sessions): per (group, member), the partitions the
//! member fetches from this broker node and the epoch its next request must carry. Kept by the
//! shard that serves the member's connection (a node in zero-hop mode is one shard, so a
//! client's session for that node lives there). Invariants: at most `SESSIONS_MAX` sessions
//! and `SESSION_PARTITIONS_MAX` partitions per session; epochs go 1, 2, ... and a request
//! with another epoch changes nothing.

use std::collections::{BTreeSet, HashMap};

use kafka_protocol::ResponseError;
use uuid::Uuid;

pub const SESSIONS_MAX: usize = 10_000;
pub const SESSION_PARTITIONS_MAX: usize = 10_000;

/// Kafka's special share-session epochs.
pub const INITIAL_EPOCH: i32 = 0;
pub const FINAL_EPOCH: i32 = -1;

#[derive(Default)]
pub struct Session {
    pub epoch: i32,
    pub partitions: BTreeSet<(Uuid, i32)>,
}

#[derive(Default)]
pub struct Sessions {
    by_member: HashMap<(String, String), Session>,
}

impl Sessions {
    /// Checks `epoch` against the member's session and moves the session on: a new session for
    /// epoch 0, the next epoch otherwise, removal for the final epoch. `add`/`forget` update
    /// the partitions. Returns the partitions to fetch from (none for the final epoch).
    pub fn advance(
        &mut self,
        group: &str,
        member: &str,
        epoch: i32,
        add: &[(Uuid, i32)],
        forget: &[(Uuid, i32)],
    ) -> Result<Vec<(Uuid, i32)>, ResponseError> {
        let id = (group.to_owned(), member.to_owned());
        if epoch == INITIAL_EPOCH {
            if !self.by_member.contains_key(&id) && self.by_member.len() >= SESSIONS_MAX {
                return Err(ResponseError::ShareSessionLimitReached);
            }
            if add.len() > SESSION_PARTITIONS_MAX {
                return Err(ResponseError::InvalidRequest);
            }
            let session = Session {
                epoch: 1,
                partitions: add.iter().copied().collect(),
            };
            let parts = session.partitions.iter().copied().collect();
            self.by_member.insert(id, session);
            return Ok(parts);
        }
        if epoch == FINAL_EPOCH {
            return match self.by_member.remove(&id) {
                Some(_) => Ok(Vec::new()),
                None => Err(ResponseError::ShareSessionNotFound),
            };
        }
        let Some(session) = self.by_member.get_mut(&id) else {
            return Err(ResponseError::ShareSessionNotFound);
        };
        if session.epoch != epoch {
            return Err(ResponseError::InvalidShareSessionEpoch);
        }
        if session.partitions.len() + add.len() > SESSION_PARTITIONS_MAX {
            return Err(ResponseError::InvalidRequest);
        }
        forget.iter().for_each(|p| {
            session.partitions.remove(p);
        });
        session.partitions.extend(add.iter().copied());
        session.epoch = if epoch == i32::MAX { 1 } else { epoch + 1 };
        Ok(session.partitions.iter().copied().collect())
    }

    /// The partitions of a session, for releasing its locks when it ends.
    pub fn partitions(&self, group: &str, member: &str) -> Vec<(Uuid, i32)> {
        self.by_member
            .get(&(group.to_owned(), member.to_owned()))
            .map(|s| s.partitions.iter().copied().collect())
            .unwrap_or_default()
    }

    /// ShareAcknowledge: checks and moves the epoch on without changing partitions.
    pub fn acknowledge(&mut self, group: &str, member: &str, epoch: i32) -> Result<(), ResponseError> {
        if epoch == INITIAL_EPOCH {
            return Err(ResponseError::InvalidShareSessionEpoch);
        }
        self.advance(group, member, epoch, &[], &[]).map(|_| ())
    }

    pub fn len(&self) -> usize {
        self.by_member.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_member.is_empty()
    }
}
