//! The offsets file codec: any prefix of a valid file replays exactly its whole records;
//! consumer subscription parsing.

use proptest::prelude::*;

use super::super::consumer::persist::{StoredConsumerGroup, StoredConsumerMember};
use super::super::consumer::reconcile::{MemberState, Reconciled};
use super::super::record::{
    self as store, CommittedOffset, StoreRecord, StoreState, StoredGroup, StoredMember,
};

fn record() -> impl Strategy<Value = StoreRecord> {
    let name = "[a-c]{1,3}";
    prop_oneof![
        (name, name, 0..4i32, any::<i64>(), "[ -~]{0,8}").prop_map(
            |(group, topic, partition, offset, metadata)| {
                StoreRecord::Commit {
                    group,
                    topic,
                    partition,
                    value: CommittedOffset {
                        offset,
                        leader_epoch: -1,
                        metadata,
                        commit_timestamp_ms: 7,
                    },
                }
            }
        ),
        (name, name, 0..4i32).prop_map(|(group, topic, partition)| StoreRecord::Delete {
            group,
            topic,
            partition
        }),
        (name, 0..3usize, any::<i32>()).prop_map(|(group, n, generation_id)| StoreRecord::Group {
            group,
            value: StoredGroup {
                protocol_type: "consumer".into(),
                protocol_name: Some("range".into()),
                generation_id,
                assignments_complete: n % 2 == 0,
                leader_id: (n > 0).then(|| "m0".into()),
                state_timestamp_ms: 1,
                members: (0..n)
                    .map(|i| StoredMember {
                        member_id: format!("m{i}"),
                        group_instance_id: (i == 1).then(|| "static".into()),
                        client_id: "c".into(),
                        client_host: "/127.0.0.1".into(),
                        session_timeout_ms: 10,
                        rebalance_timeout_ms: 20,
                        subscription: bytes::Bytes::from(vec![i as u8; i]),
                        assignment: bytes::Bytes::from_static(b"a"),
                    })
                    .collect(),
            },
        }),
        (name, 1..3i64, 0..2i16, name, 0..4i32, any::<i64>()).prop_map(
            |(group, producer_id, producer_epoch, topic, partition, offset)| StoreRecord::TxnCommit {
                group,
                producer_id,
                producer_epoch,
                topic,
                partition,
                value: CommittedOffset {
                    offset,
                    leader_epoch: -1,
                    metadata: String::new(),
                    commit_timestamp_ms: 8,
                },
            }
        ),
        consumer_record(),
        (name, 1..3i64, 0..2i16, any::<bool>()).prop_map(|(group, producer_id, producer_epoch, commit)| {
            StoreRecord::TxnEnd {
                group,
                producer_id,
                producer_epoch,
                commit,
            }
        }),
    ]
}

/// Group deletes and KIP-848 group and member records (upserts and removals).
fn consumer_record() -> impl Strategy<Value = StoreRecord> {
    let name = "[a-c]{1,3}";
    prop_oneof![
        name.prop_map(|group| StoreRecord::GroupDelete { group }),
        (name, any::<i32>(), any::<bool>()).prop_map(|(group, group_epoch, present)| {
            StoreRecord::ConsumerGroup {
                group,
                value: present.then(|| StoredConsumerGroup {
                    group_epoch,
                    assignment_epoch: group_epoch / 2,
                    topics: vec![("t".into(), uuid::Uuid::from_u128(7), 3)],
                }),
            }
        }),
        (name, "m[0-2]", any::<i32>(), 0..3u8).prop_map(|(group, member_id, epoch, kind)| {
            StoreRecord::ConsumerMember {
                group,
                member_id,
                value: (kind > 0).then(|| Box::new(consumer_member(epoch, kind))),
            }
        }),
    ]
}

fn consumer_member(epoch: i32, kind: u8) -> StoredConsumerMember {
    let t = uuid::Uuid::from_u128(7);
    let parts = |ps: &[i32]| std::collections::BTreeMap::from([(t, ps.iter().copied().collect())]);
    StoredConsumerMember {
        instance_id: (kind == 2).then(|| "i".into()),
        rack_id: None,
        client_id: "c".into(),
        client_host: "/127.0.0.1".into(),
        rebalance_timeout_ms: 30_000,
        topic_names: vec!["t".into()],
        regex: (kind == 2).then(|| "t.*".into()),
        assignor: Some("range".into()),
        r: Reconciled {
            state: if kind == 2 {
                MemberState::UnrevokedPartitions
            } else {
                MemberState::Stable
            },
            epoch,
            previous_epoch: epoch - 1,
            assigned: parts(&[0, 2]),
            pending_revocation: parts(&[1]),
        },
        target: parts(&[0]),
        classic: (kind == 2).then(|| super::super::consumer::classic::ClassicMember {
            session_timeout_ms: 10_000,
            protocols: vec![("range".into(), bytes::Bytes::from_static(b"sub"))],
        }),
    }
}

fn image(records: &[StoreRecord]) -> (Vec<u8>, Vec<usize>) {
    let mut out = b"WEIRGRP1".to_vec();
    let mut ends = vec![out.len()];
    for r in records {
        store::encode_record(r, &mut out);
        ends.push(out.len());
    }
    (out, ends)
}

fn replay(records: &[StoreRecord]) -> StoreState {
    let mut state = StoreState::default();
    records.iter().cloned().for_each(|r| state.apply(r));
    state
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn given_records_when_scanning_any_prefix_should_replay_exactly_the_whole_records(
        records in proptest::collection::vec(record(), 0..12),
        cut in any::<prop::sample::Index>(),
    ) {
        let (bytes, ends) = image(&records);
        let path = std::path::Path::new("mem");
        let full = store::scan(&bytes, path).unwrap();
        prop_assert_eq!(full.valid_bytes, bytes.len());
        prop_assert_eq!(&full.state.offsets, &replay(&records).offsets);
        prop_assert_eq!(&full.state.groups, &replay(&records).groups);
        prop_assert_eq!(&full.state.pending, &replay(&records).pending);
        prop_assert_eq!(&full.state.consumer, &replay(&records).consumer);
        // A compacted file rebuilds the same state.
        let snapshot: Vec<StoreRecord> = full.state.snapshot_records().collect();
        prop_assert_eq!(&replay(&snapshot).consumer, &full.state.consumer);
        prop_assert_eq!(&replay(&snapshot).groups, &full.state.groups);
        let cut_at = 8 + cut.index(bytes.len() - 7);
        let whole = ends.iter().filter(|&&e| e <= cut_at).count() - 1;
        let partial = store::scan(&bytes[..cut_at], path).unwrap();
        prop_assert_eq!(partial.valid_bytes, ends[whole]);
        prop_assert_eq!(&partial.state.offsets, &replay(&records[..whole]).offsets);
        prop_assert_eq!(partial.state.offset_count, replay(&records[..whole]).offset_count);
    }
}

#[test]
fn given_consumer_subscription_bytes_when_parsing_should_return_topics_and_reject_garbage() {
    assert_eq!(
        super::super::group::parse_subscription_topics(&super::subscription(&["a", "bc"])),
        Some(vec!["a".into(), "bc".into()])
    );
    assert_eq!(
        super::super::group::parse_subscription_topics(&[0, 0, 0x7f, 0xff, 0xff, 0xff]),
        None
    );
    assert_eq!(super::super::group::parse_subscription_topics(&[0]), None);
}

#[test]
fn given_pending_txn_offsets_when_the_txn_ends_should_commit_or_drop_them() {
    let pending = |producer_id, offset| StoreRecord::TxnCommit {
        group: "g".into(),
        producer_id,
        producer_epoch: 1,
        topic: "t".into(),
        partition: 0,
        value: CommittedOffset {
            offset,
            leader_epoch: -1,
            metadata: String::new(),
            commit_timestamp_ms: 1,
        },
    };
    let end = |producer_id, commit| StoreRecord::TxnEnd {
        group: "g".into(),
        producer_id,
        producer_epoch: 1,
        commit,
    };
    let state = replay(&[pending(1, 5), pending(2, 9)]);
    assert!(state.has_pending("g", "t", 0));
    assert!(state.offsets.is_empty(), "pending offsets are invisible");
    assert_eq!(state.offset_count, 2);
    let state = replay(&[pending(1, 5), pending(2, 9), end(2, false), end(1, true)]);
    assert!(!state.has_pending("g", "t", 0));
    assert_eq!(state.offsets["g"][&("t".to_string(), 0)].offset, 5);
    assert_eq!(state.offset_count, 1);
    let snapshot: Vec<StoreRecord> = replay(&[pending(1, 5)]).snapshot_records().collect();
    assert_eq!(snapshot, vec![pending(1, 5)]);
}

#[test]
fn given_a_zombies_late_txn_offset_when_its_successor_commits_should_drop_it() {
    let pending = |producer_epoch, offset| StoreRecord::TxnCommit {
        group: "g".into(),
        producer_id: 1,
        producer_epoch,
        topic: "t".into(),
        partition: offset as i32,
        value: CommittedOffset {
            offset,
            leader_epoch: -1,
            metadata: String::new(),
            commit_timestamp_ms: 1,
        },
    };
    let commit = StoreRecord::TxnEnd {
        group: "g".into(),
        producer_id: 1,
        producer_epoch: 3,
        commit: true,
    };
    // Epoch 1's write lands after the fencing abort; epoch 3 commits its own only.
    let state = replay(&[pending(1, 0), pending(3, 1), commit]);
    let committed: Vec<i64> = state.offsets["g"].values().map(|o| o.offset).collect();
    assert_eq!(committed, vec![1]);
    assert_eq!(state.offset_count, 1);
}
