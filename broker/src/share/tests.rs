use std::rc::Rc;
use std::time::{Duration, Instant};

use super::partition::*;

fn limits() -> Limits {
    Limits {
        max_locks: 10,
        delivery_limit: 2,
        lock: Duration::from_millis(100),
    }
}

fn acquire(p: &mut SharePartition, m: &Rc<str>, lo: i64, hi: i64, now: Instant) -> Vec<AcquiredRun> {
    let mut changes = Vec::new();
    p.acquire(m, lo..hi, usize::MAX, now, &limits(), &[], &mut changes)
}

fn ack(
    p: &mut SharePartition,
    m: &str,
    first: i64,
    last: i64,
    t: i8,
    now: Instant,
) -> Result<Vec<ArchivedRecord>, AckError> {
    let mut archived = Vec::new();
    let mut changes = Vec::new();
    let types = [t];
    let b = [AckBatch {
        first,
        last,
        types: &types,
    }];
    p.acknowledge(m, &b, now, &limits(), &mut archived, &mut changes)?;
    Ok(archived)
}

#[test]
fn given_two_members_when_acquiring_should_never_hand_one_record_to_both() {
    let now = Instant::now();
    let (a, b): (Rc<str>, Rc<str>) = ("a".into(), "b".into());
    let mut p = SharePartition::new(0);
    assert_eq!(acquire(&mut p, &a, 0, 4, now), vec![(0, 3, 1)]);
    assert_eq!(acquire(&mut p, &b, 0, 6, now), vec![(4, 5, 1)]);
    assert_eq!(
        ack(&mut p, "b", 0, 0, ACK_ACCEPT, now),
        Err(AckError::InvalidRecordState)
    );
    ack(&mut p, "a", 0, 3, ACK_ACCEPT, now).expect("own records");
    assert_eq!(p.start_offset(), 4, "the SPSO moves past accepted records");
}

#[test]
fn given_the_window_bound_when_acquiring_should_stop_at_max_locks() {
    let now = Instant::now();
    let a: Rc<str> = "a".into();
    let mut p = SharePartition::new(100);
    assert_eq!(acquire(&mut p, &a, 100, 1000, now), vec![(100, 109, 1)]);
    assert_eq!(p.end_offset(), 110);
    assert!(acquire(&mut p, &a, 110, 1000, now).is_empty());
}

#[test]
fn given_release_and_expiry_when_the_limit_is_reached_should_archive() {
    let now = Instant::now();
    let (a, b): (Rc<str>, Rc<str>) = ("a".into(), "b".into());
    let mut p = SharePartition::new(0);
    acquire(&mut p, &a, 0, 2, now);
    assert!(ack(&mut p, "a", 0, 1, ACK_RELEASE, now)
        .expect("release")
        .is_empty());
    assert_eq!(
        acquire(&mut p, &b, 0, 2, now),
        vec![(0, 1, 2)],
        "redelivered, count 2"
    );
    let mut archived = Vec::new();
    assert!(p.expire(now + Duration::from_millis(200), &limits(), &mut archived));
    assert_eq!(archived.len(), 2, "limit 2 reached: archived, not redelivered");
    assert_eq!(archived[0].reason, ArchiveReason::DeliveryLimit);
    assert_eq!(
        p.start_offset(),
        0,
        "held back until the dead-letter move is done"
    );
    assert_eq!(
        p.dead_letters(10),
        vec![
            (0, ArchiveReason::DeliveryLimit, 2),
            (1, ArchiveReason::DeliveryLimit, 2)
        ]
    );
    p.dead_lettered(&[0, 1], &mut Vec::new());
    assert_eq!(p.start_offset(), 2);
}

#[test]
fn given_renew_when_the_old_lock_would_expire_should_keep_the_record() {
    let now = Instant::now();
    let a: Rc<str> = "a".into();
    let mut p = SharePartition::new(0);
    acquire(&mut p, &a, 0, 1, now);
    ack(&mut p, "a", 0, 0, ACK_RENEW, now + Duration::from_millis(80)).expect("renew");
    let mut archived = Vec::new();
    assert!(!p.expire(now + Duration::from_millis(150), &limits(), &mut archived));
    assert_eq!(p.acquired_count(), 1);
    ack(&mut p, "a", 0, 0, ACK_REJECT, now).expect("reject");
    assert_eq!(p.dead_letters(10), vec![(0, ArchiveReason::Rejected, 1)]);
    p.dead_lettered(&[0], &mut Vec::new());
    assert_eq!(p.start_offset(), 1);
}

#[test]
fn given_expired_offsets_when_acquiring_should_skip_them_for_a_dead_letter_move() {
    let a: Rc<str> = "a".into();
    let mut p = SharePartition::new(0);
    let mut changes = Vec::new();
    let runs = p.acquire(
        &a,
        0..5,
        usize::MAX,
        Instant::now(),
        &limits(),
        &[1, 3],
        &mut changes,
    );
    assert_eq!(runs, vec![(0, 0, 1), (2, 2, 1), (4, 4, 1)]);
    assert_eq!(
        p.dead_letters(10),
        vec![(1, ArchiveReason::Expired, 0), (3, ArchiveReason::Expired, 0)]
    );
    assert_eq!(changes.len(), 5);
}

#[test]
fn given_a_restore_when_records_were_acquired_should_make_them_available_with_their_count() {
    let mut p = SharePartition::new(0);
    p.restore(0, RecordState::Acknowledged, 1, &limits());
    p.restore(1, RecordState::Acquired, 1, &limits());
    p.restore(2, RecordState::Acquired, 2, &limits());
    p.settle();
    assert_eq!(p.start_offset(), 1);
    let a: Rc<str> = "a".into();
    assert_eq!(
        acquire(&mut p, &a, 1, 3, Instant::now()),
        vec![(1, 1, 2)],
        "offset 2 hit the limit"
    );
}
