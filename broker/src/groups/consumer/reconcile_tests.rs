use std::collections::BTreeSet;

use super::*;

fn t() -> Uuid {
    Uuid::from_bytes([7; 16])
}

fn parts(ps: &[i32]) -> Assignment {
    if ps.is_empty() {
        return Assignment::new();
    }
    Assignment::from([(t(), ps.iter().copied().collect::<BTreeSet<i32>>())])
}

fn stable(epoch: i32, ps: &[i32]) -> Reconciled {
    Reconciled {
        state: MemberState::Stable,
        epoch,
        previous_epoch: epoch - 1,
        assigned: parts(ps),
        pending_revocation: Assignment::new(),
    }
}

const FREE: &dyn Fn(Uuid, i32) -> bool = &|_, _| false;

#[test]
fn given_a_new_member_and_free_partitions_when_reconciling_should_assign_them_at_the_target_epoch() {
    let next = reconcile(
        &Reconciled::joining(),
        3,
        &parts(&[0, 1]),
        Some(&parts(&[])),
        FREE,
    );
    assert_eq!(
        next,
        Reconciled {
            previous_epoch: 0,
            ..stable(3, &[0, 1])
        }
    );
}

#[test]
fn given_partitions_held_by_another_member_when_reconciling_should_wait_unreleased() {
    let held = |_: Uuid, p: i32| p == 1;
    let next = reconcile(
        &Reconciled::joining(),
        3,
        &parts(&[0, 1]),
        Some(&parts(&[])),
        &held,
    );
    assert_eq!(next.state, MemberState::UnreleasedPartitions);
    assert_eq!(next.epoch, 3);
    assert_eq!(next.assigned, parts(&[0]));
    // Once the other member lets go, the next heartbeat claims it.
    let after = reconcile(&next, 3, &parts(&[0, 1]), Some(&parts(&[0])), FREE);
    assert_eq!(after.state, MemberState::Stable);
    assert_eq!(after.assigned, parts(&[0, 1]));
}

#[test]
fn given_a_target_without_owned_partitions_when_reconciling_should_revoke_first_at_the_old_epoch() {
    let current = stable(2, &[0, 1, 2]);
    let target = parts(&[0, 3]);
    let next = reconcile(&current, 4, &target, Some(&parts(&[0, 1, 2])), FREE);
    assert_eq!(next.state, MemberState::UnrevokedPartitions);
    assert_eq!(next.epoch, 2, "epoch stays until the revocation is acknowledged");
    assert_eq!(
        next.assigned,
        parts(&[0]),
        "new partitions wait for the revocation"
    );
    assert_eq!(next.pending_revocation, parts(&[1, 2]));
    // A heartbeat without owned partitions says nothing: still waiting.
    assert_eq!(reconcile(&next, 4, &target, None, FREE), next);
    // Still owning one of them: still waiting.
    assert_eq!(reconcile(&next, 4, &target, Some(&parts(&[0, 2])), FREE), next);
    // Revoked: moves to the target epoch and gets the new partition.
    let done = reconcile(&next, 4, &target, Some(&parts(&[0])), FREE);
    assert_eq!(done.state, MemberState::Stable);
    assert_eq!(done.epoch, 4);
    assert_eq!(done.previous_epoch, 2);
    assert_eq!(done.assigned, parts(&[0, 3]));
    assert!(done.pending_revocation.is_empty());
}

#[test]
fn given_a_stable_member_at_the_target_epoch_when_reconciling_should_change_nothing() {
    let current = stable(5, &[1]);
    assert_eq!(reconcile(&current, 5, &parts(&[1, 2]), None, FREE), current);
}

#[test]
fn given_a_member_that_already_dropped_revoked_partitions_when_reconciling_should_skip_the_revocation() {
    // The member's owned list no longer has partition 1: no need to wait for it.
    let next = reconcile(&stable(1, &[0, 1]), 2, &parts(&[0]), Some(&parts(&[0])), FREE);
    assert_eq!(next.state, MemberState::Stable);
    assert_eq!(next.epoch, 2);
    assert_eq!(next.assigned, parts(&[0]));
}
