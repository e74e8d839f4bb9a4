//! Incremental reconciliation (Kafka's CurrentAssignmentBuilder): moves one member from its
//! current assignment towards its target, one safe step at a time. Pure: the caller says which
//! partitions other members still hold. Invariants: a partition is given to a member only when
//! no other member holds it (assigned or pending revocation); a member whose target drops
//! partitions it still owns keeps its epoch until it reports them revoked; a member's epoch
//! only reaches the target epoch once it owns no partition outside the target.

use uuid::Uuid;

use super::assignor::Assignment;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemberState {
    /// The member owns its target (at its epoch) and nothing else.
    Stable,
    /// The member must revoke `pending_revocation` before going on.
    UnrevokedPartitions,
    /// The member is at the target epoch but waits for partitions others still hold.
    UnreleasedPartitions,
}

impl MemberState {
    pub fn name(self) -> &'static str {
        match self {
            MemberState::Stable => "stable",
            MemberState::UnrevokedPartitions => "unrevoked_partitions",
            MemberState::UnreleasedPartitions => "unreleased_partitions",
        }
    }
}

/// The part of a member that reconciliation changes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reconciled {
    pub state: MemberState,
    pub epoch: i32,
    pub previous_epoch: i32,
    /// What the member is told it owns.
    pub assigned: Assignment,
    /// Partitions the member must give up; nobody else gets them meanwhile.
    pub pending_revocation: Assignment,
}

impl Reconciled {
    /// A member joining with epoch 0: owns nothing yet.
    pub fn joining() -> Self {
        Self {
            state: MemberState::Stable,
            epoch: 0,
            previous_epoch: 0,
            assigned: Assignment::new(),
            pending_revocation: Assignment::new(),
        }
    }
}

/// Whether the member may still own any of `partitions`: a heartbeat without owned partitions
/// (`None`) says nothing, so the member is assumed to still own them.
fn still_owns(owned: Option<&Assignment>, partitions: &Assignment) -> bool {
    let Some(owned) = owned else {
        return !partitions.is_empty();
    };
    partitions
        .iter()
        .any(|(t, ps)| owned.get(t).is_some_and(|o| !o.is_disjoint(ps)))
}

/// One reconciliation step for `current` towards `target` at `target_epoch`.
/// `owned` is the member's OwnedTopicPartitions from this heartbeat, if sent;
/// `held_by_other(topic, partition)` says whether another member still holds a partition.
pub fn reconcile(
    current: &Reconciled,
    target_epoch: i32,
    target: &Assignment,
    owned: Option<&Assignment>,
    held_by_other: &dyn Fn(Uuid, i32) -> bool,
) -> Reconciled {
    match current.state {
        MemberState::Stable if current.epoch == target_epoch => current.clone(),
        MemberState::UnrevokedPartitions if still_owns(owned, &current.pending_revocation) => current.clone(),
        _ => next_step(current, target_epoch, target, owned, held_by_other),
    }
}

fn next_step(
    current: &Reconciled,
    target_epoch: i32,
    target: &Assignment,
    owned: Option<&Assignment>,
    held_by_other: &dyn Fn(Uuid, i32) -> bool,
) -> Reconciled {
    let mut assigned = Assignment::new();
    let mut revoke = Assignment::new();
    let mut unreleased = false;
    let topics: std::collections::BTreeSet<&Uuid> = target.keys().chain(current.assigned.keys()).collect();
    for topic in topics {
        let empty = Default::default();
        let want = target.get(topic).unwrap_or(&empty);
        let have = current.assigned.get(topic).unwrap_or(&empty);
        let mut keep: std::collections::BTreeSet<i32> = have.intersection(want).copied().collect();
        let gone: std::collections::BTreeSet<i32> = have.difference(want).copied().collect();
        for &p in want.difference(have) {
            if held_by_other(*topic, p) {
                unreleased = true;
            } else {
                keep.insert(p);
            }
        }
        if !keep.is_empty() {
            assigned.insert(*topic, keep);
        }
        if !gone.is_empty() {
            revoke.insert(*topic, gone);
        }
    }
    if !revoke.is_empty() && still_owns(owned, &revoke) {
        // Revoke first, at the old epoch; what is newly free is given only afterwards, so
        // the member is told one change at a time. Keep only partitions it already had.
        assigned.retain(|t, ps| {
            if let Some(had) = current.assigned.get(t) {
                ps.retain(|p| had.contains(p));
            } else {
                ps.clear();
            }
            !ps.is_empty()
        });
        return Reconciled {
            state: MemberState::UnrevokedPartitions,
            epoch: current.epoch,
            previous_epoch: current.previous_epoch,
            assigned,
            pending_revocation: revoke,
        };
    }
    Reconciled {
        state: if unreleased {
            MemberState::UnreleasedPartitions
        } else {
            MemberState::Stable
        },
        epoch: target_epoch,
        previous_epoch: current.epoch,
        assigned,
        pending_revocation: Assignment::new(),
    }
}

#[cfg(test)]
#[path = "reconcile_tests.rs"]
mod tests;
