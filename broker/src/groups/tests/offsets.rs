//! Offset tests: durability across reopen, torn tails, group commit, compaction, retention,
//! topic removal, OffsetDelete and DeleteGroups rules.

use super::*;

#[test]
fn given_committed_offsets_when_coordinator_reopens_should_still_have_offsets_and_group() {
    run(|| async {
        let dir = tempdir();
        let c = GroupCoordinator::open(dir.path().into(), test_config())
            .await
            .unwrap();
        let joins = form_group(&c, "g", 2, &["t"]).await;
        let (generation, member) = (joins[0].generation_id, joins[0].member_id.as_str().to_owned());
        let r = c
            .offset_commit(
                commit_req("g", generation, &member, &[("t", 0, 42), ("t", 1, 7)]),
                8,
            )
            .await;
        assert_eq!(commit_codes(&r), vec![0, 0]);
        let r = c
            .offset_commit(commit_req("simple", -1, "", &[("u", 3, 99)]), 8)
            .await;
        assert_eq!(commit_codes(&r), vec![0]);
        let r = c
            .offset_commit(commit_req("g", generation + 5, &member, &[("t", 0, 1)]), 8)
            .await;
        assert_eq!(commit_codes(&r), vec![ResponseError::IllegalGeneration.code()]);
        c.close().await.unwrap();
        drop(c);

        let c = GroupCoordinator::open(dir.path().into(), test_config())
            .await
            .unwrap();
        assert_eq!(
            fetch_all(&c, "g").await,
            vec![("t".into(), 0, 42), ("t".into(), 1, 7)]
        );
        assert_eq!(fetch_all(&c, "simple").await, vec![("u".into(), 3, 99)]);
        let some = c
            .offset_fetch_group("g", Some(vec![("t".into(), vec![0, 5])]), false, None)
            .await
            .unwrap();
        assert_eq!((some[0].offset, some[0].metadata.as_str()), (42, "meta"));
        assert_eq!(some[1].offset, -1);
        // Group metadata came back too: the members may keep heartbeating.
        assert_eq!(c.group_state("g"), Some(GroupState::Stable));
        assert_eq!(
            c.heartbeat(heartbeat_req("g", generation, &member), 4)
                .await
                .error_code,
            0
        );
        let listed: Vec<String> = c
            .list_groups(&[], &[])
            .iter()
            .map(|l| l.group_id.as_str().to_owned())
            .collect();
        assert_eq!(listed, vec!["g".to_owned(), "simple".to_owned()]);
        let empty_only = c.list_groups(&["empty".to_owned()], &[]);
        assert_eq!(empty_only.len(), 1);
        c.close().await.unwrap();
    });
}

#[test]
fn given_torn_tail_in_offsets_file_when_reopening_should_keep_valid_prefix_and_truncate() {
    run(|| async {
        let dir = tempdir();
        let c = GroupCoordinator::open(dir.path().into(), test_config())
            .await
            .unwrap();
        for i in 0..3 {
            let r = c
                .offset_commit(commit_req("simple", -1, "", &[("t", i, 100 + i as i64)]), 8)
                .await;
            assert_eq!(commit_codes(&r), vec![0]);
        }
        c.close().await.unwrap();
        drop(c);
        let path = dir.path().join(store::FILE_NAME);
        let good = std::fs::read(&path).unwrap();
        // A torn append: half a frame header and some body bytes.
        let mut torn = good.clone();
        torn.extend_from_slice(&[0, 0, 0, 40, 1, 2, 3, 4, 5, 6]);
        std::fs::write(&path, &torn).unwrap();
        let c = GroupCoordinator::open(dir.path().into(), test_config())
            .await
            .unwrap();
        assert_eq!(fetch_all(&c, "simple").await.len(), 3);
        assert_eq!(
            std::fs::metadata(&path).unwrap().len(),
            good.len() as u64,
            "tail truncated"
        );
        let r = c
            .offset_commit(commit_req("simple", -1, "", &[("t", 9, 9)]), 8)
            .await;
        assert_eq!(commit_codes(&r), vec![0]);
        c.close().await.unwrap();
        drop(c);
        // A flipped bit in the last record: its CRC fails, the record is dropped.
        let mut bytes = std::fs::read(&path).unwrap();
        let last = bytes.len() - 3;
        bytes[last] ^= 0x40;
        std::fs::write(&path, &bytes).unwrap();
        let c = GroupCoordinator::open(dir.path().into(), test_config())
            .await
            .unwrap();
        assert_eq!(fetch_all(&c, "simple").await.len(), 3);
        c.close().await.unwrap();
    });
}

#[test]
fn given_not_our_file_when_opening_should_refuse_without_truncating() {
    run(|| async {
        let dir = tempdir();
        let path = dir.path().join(store::FILE_NAME);
        std::fs::write(&path, b"something else entirely").unwrap();
        let result = GroupCoordinator::open(dir.path().into(), test_config()).await;
        assert!(matches!(result, Err(GroupError::Corrupt { .. })));
        assert_eq!(std::fs::read(&path).unwrap(), b"something else entirely");
    });
}

#[test]
fn given_many_concurrent_commits_when_flushing_should_share_fdatasyncs() {
    run(|| async {
        let dir = tempdir();
        let c = GroupCoordinator::open(dir.path().into(), test_config())
            .await
            .unwrap();
        let commit_count = 200;
        let tasks: Vec<_> = (0..commit_count)
            .map(|i| {
                let c = Rc::clone(&c);
                glommio::spawn_local(async move {
                    c.offset_commit(commit_req("simple", -1, "", &[("t", i, i as i64)]), 8)
                        .await
                })
            })
            .collect();
        for t in tasks {
            assert_eq!(commit_codes(&t.await), vec![0]);
        }
        let stats = c.offsets_file_stats();
        assert!(
            stats.flush_count < commit_count as u64 / 4,
            "group commit: {stats:?}"
        );
        assert_eq!(fetch_all(&c, "simple").await.len(), commit_count as usize);
        c.close().await.unwrap();
    });
}

#[test]
fn given_file_past_compaction_bound_when_committing_should_compact_and_keep_latest_offsets() {
    run(|| async {
        let dir = tempdir();
        let config = GroupConfig {
            offsets_file_compact_bytes: 4096,
            ..test_config()
        };
        let c = GroupCoordinator::open(dir.path().into(), config.clone())
            .await
            .unwrap();
        for i in 0..300 {
            let r = c
                .offset_commit(commit_req("simple", -1, "", &[("t", i % 3, i as i64)]), 8)
                .await;
            assert_eq!(commit_codes(&r), vec![0]);
        }
        let stats = c.offsets_file_stats();
        assert!(stats.compaction_count > 0, "{stats:?}");
        assert!(stats.file_bytes < 8192, "{stats:?}");
        c.close().await.unwrap();
        drop(c);
        assert!(!dir.path().join("group-offsets.log.compact").exists());
        let c = GroupCoordinator::open(dir.path().into(), config).await.unwrap();
        assert_eq!(
            fetch_all(&c, "simple").await,
            vec![("t".into(), 0, 297), ("t".into(), 1, 298), ("t".into(), 2, 299)]
        );
        c.close().await.unwrap();
    });
}

#[test]
fn given_empty_group_past_retention_when_timer_runs_should_expire_offsets_but_keep_live_groups() {
    run(|| async {
        let dir = tempdir();
        let config = GroupConfig {
            offsets_retention_ms: 150,
            offsets_retention_check_interval_ms: 20,
            ..test_config()
        };
        let c = GroupCoordinator::open(dir.path().into(), config.clone())
            .await
            .unwrap();
        let joins = form_group(&c, "live", 1, &["t"]).await;
        let (generation, member) = (joins[0].generation_id, joins[0].member_id.as_str().to_owned());
        let r = c
            .offset_commit(commit_req("live", generation, &member, &[("t", 0, 5)]), 8)
            .await;
        assert_eq!(commit_codes(&r), vec![0]);
        let r = c
            .offset_commit(commit_req("idle", -1, "", &[("t", 0, 5)]), 8)
            .await;
        assert_eq!(commit_codes(&r), vec![0]);
        for _ in 0..8 {
            sleep(Duration::from_millis(50)).await;
            assert_eq!(
                c.heartbeat(heartbeat_req("live", generation, &member), 4)
                    .await
                    .error_code,
                0
            );
        }
        assert_eq!(fetch_all(&c, "idle").await, vec![]);
        assert_eq!(c.group_state("idle"), None);
        assert_eq!(fetch_all(&c, "live").await, vec![("t".into(), 0, 5)]);
        c.close().await.unwrap();
        drop(c);
        let c = GroupCoordinator::open(dir.path().into(), config).await.unwrap();
        assert_eq!(fetch_all(&c, "idle").await, vec![], "expiry is durable");
        c.close().await.unwrap();
    });
}

#[test]
fn given_offsets_of_a_deleted_topic_when_removing_topic_should_drop_them_durably() {
    run(|| async {
        let dir = tempdir();
        let c = GroupCoordinator::open(dir.path().into(), test_config())
            .await
            .unwrap();
        for group in ["a", "b"] {
            let r = c
                .offset_commit(commit_req(group, -1, "", &[("gone", 0, 1), ("kept", 0, 2)]), 8)
                .await;
            assert_eq!(commit_codes(&r), vec![0, 0]);
        }
        let r = c
            .offset_commit(commit_req("only-gone", -1, "", &[("gone", 1, 1)]), 8)
            .await;
        assert_eq!(commit_codes(&r), vec![0]);
        c.remove_topic("gone").await.unwrap();
        assert_eq!(fetch_all(&c, "a").await, vec![("kept".into(), 0, 2)]);
        assert_eq!(
            c.group_state("only-gone"),
            None,
            "a group left with nothing is forgotten"
        );
        c.close().await.unwrap();
        drop(c);
        let c = GroupCoordinator::open(dir.path().into(), test_config())
            .await
            .unwrap();
        assert_eq!(fetch_all(&c, "b").await, vec![("kept".into(), 0, 2)]);
        assert_eq!(fetch_all(&c, "only-gone").await, vec![]);
        c.close().await.unwrap();
    });
}

fn delete_req(group: &str, topics: &[(&str, i32)]) -> OffsetDeleteRequest {
    let mut r = OffsetDeleteRequest::default();
    r.group_id = GroupId(s(group));
    for (topic, partition) in topics {
        let mut t = OffsetDeleteRequestTopic::default();
        t.name = TopicName(s(topic));
        let mut p = OffsetDeleteRequestPartition::default();
        p.partition_index = *partition;
        t.partitions.push(p);
        r.topics.push(t);
    }
    r
}

#[test]
fn given_live_group_subscribed_to_topic_when_deleting_offsets_should_refuse_that_topic_only() {
    run(|| async {
        let dir = tempdir();
        let c = GroupCoordinator::open(dir.path().into(), test_config())
            .await
            .unwrap();
        let joins = form_group(&c, "g", 1, &["subscribed"]).await;
        let (generation, member) = (joins[0].generation_id, joins[0].member_id.as_str().to_owned());
        let offsets = [("subscribed", 0, 1), ("old", 0, 2)];
        let r = c
            .offset_commit(commit_req("g", generation, &member, &offsets), 8)
            .await;
        assert_eq!(commit_codes(&r), vec![0, 0]);
        let r = c
            .offset_delete(delete_req("g", &[("subscribed", 0), ("old", 0)]))
            .await;
        assert_eq!(r.error_code, 0);
        assert_eq!(
            r.topics[0].partitions[0].error_code,
            ResponseError::GroupSubscribedToTopic.code()
        );
        assert_eq!(r.topics[1].partitions[0].error_code, 0);
        assert_eq!(fetch_all(&c, "g").await, vec![("subscribed".into(), 0, 1)]);
        let reset = c.reset_offsets("g", vec![("subscribed".into(), 0, 0)]).await;
        assert_eq!(reset, Err(ResponseError::NonEmptyGroup));
        let r = c.offset_delete(delete_req("unknown", &[("x", 0)])).await;
        assert_eq!(r.error_code, ResponseError::GroupIdNotFound.code());
        // Once the group is empty, reset and delete are allowed.
        let mut leave = LeaveGroupRequest::default();
        leave.group_id = GroupId(s("g"));
        leave.member_id = s(&member);
        assert_eq!(c.leave_group(leave, 1).await.error_code, 0);
        assert_eq!(c.group_state("g"), Some(GroupState::Empty));
        c.reset_offsets("g", vec![("subscribed".into(), 0, 0)])
            .await
            .unwrap();
        assert_eq!(fetch_all(&c, "g").await, vec![("subscribed".into(), 0, 0)]);
        let r = c.offset_delete(delete_req("g", &[("subscribed", 0)])).await;
        assert_eq!(r.topics[0].partitions[0].error_code, 0);
        assert_eq!(fetch_all(&c, "g").await, vec![]);
        c.close().await.unwrap();
    });
}

#[test]
fn given_live_group_of_other_protocol_type_when_deleting_offsets_should_answer_non_empty_group() {
    run(|| async {
        let dir = tempdir();
        let c = GroupCoordinator::open(dir.path().into(), test_config())
            .await
            .unwrap();
        let mut r = join_req("conn", "", None, &[("p", Bytes::new())]);
        r.protocol_type = s("connect");
        let joined = c.join_group(r, 3).await;
        assert_eq!(joined.error_code, 0);
        let r = c.offset_delete(delete_req("conn", &[("t", 0)])).await;
        assert_eq!(r.error_code, ResponseError::NonEmptyGroup.code());
        c.close().await.unwrap();
    });
}

/// Not a pass/fail test: prints commit latency and group-commit throughput on this disk.
/// `cargo test --release -p weir-broker --lib groups::tests::offsets::measure -- --ignored --nocapture`
#[test]
#[ignore = "measurement, run by hand"]
fn measure_offset_commit_latency_and_group_commit() {
    run(|| async {
        let dir = tempdir();
        let c = GroupCoordinator::open(dir.path().into(), test_config())
            .await
            .unwrap();
        let sequential_count = 500u32;
        let started = std::time::Instant::now();
        for i in 0..sequential_count {
            let r = c
                .offset_commit(commit_req("seq", -1, "", &[("t", (i % 8) as i32, i as i64)]), 8)
                .await;
            assert_eq!(commit_codes(&r), vec![0]);
        }
        let per_commit = started.elapsed() / sequential_count;
        let before = c.offsets_file_stats().flush_count;
        let concurrent_count = 5000u32;
        let started = std::time::Instant::now();
        let tasks: Vec<_> = (0..concurrent_count)
            .map(|i| {
                let c = Rc::clone(&c);
                glommio::spawn_local(async move {
                    c.offset_commit(commit_req("conc", -1, "", &[("t", (i % 64) as i32, i as i64)]), 8)
                        .await
                })
            })
            .collect();
        for t in tasks {
            assert_eq!(commit_codes(&t.await), vec![0]);
        }
        let elapsed = started.elapsed();
        let flushes = c.offsets_file_stats().flush_count - before;
        println!("sequential: {sequential_count} commits, {per_commit:?} per commit (one fdatasync each)");
        println!(
            "concurrent: {concurrent_count} commits in {elapsed:?} = {:.0} commits/s, {flushes} fdatasyncs",
            f64::from(concurrent_count) / elapsed.as_secs_f64()
        );
        c.close().await.unwrap();
    });
}

#[test]
fn given_sync_group_answered_when_the_broker_dies_at_once_should_come_back_stable_with_assignments() {
    run(|| async {
        let dir = tempdir();
        let c = GroupCoordinator::open(dir.path().into(), test_config())
            .await
            .unwrap();
        let joins = form_group(&c, "g", 2, &["t"]).await;
        let (generation, member) = (joins[0].generation_id, joins[0].member_id.as_str().to_owned());
        // No close: whatever was not durable when SyncGroup answered is lost, as in a crash.
        drop(c);

        let c = GroupCoordinator::open(dir.path().into(), test_config())
            .await
            .unwrap();
        assert_eq!(c.group_state("g"), Some(GroupState::Stable));
        let again = c.sync_group(sync_req("g", generation, &member, &[]), 5).await;
        assert_eq!(again.error_code, 0);
        assert_eq!(again.assignment.as_ref(), format!("a-{member}").as_bytes());
        c.close().await.unwrap();
    });
}

#[test]
fn given_groups_when_deleted_should_follow_kafkas_rules_and_stay_deleted_after_reopen() {
    run(|| async {
        let dir = tempdir();
        let c = GroupCoordinator::open(dir.path().into(), test_config())
            .await
            .unwrap();
        form_group(&c, "live", 1, &["t"]).await;
        let r = c
            .offset_commit(commit_req("idle", -1, "", &[("t", 0, 5)]), 8)
            .await;
        assert_eq!(commit_codes(&r), vec![0]);
        assert_eq!(c.delete_group("live").await, Err(ResponseError::NonEmptyGroup));
        assert_eq!(c.delete_group("none").await, Err(ResponseError::GroupIdNotFound));
        assert_eq!(c.delete_group("").await, Err(ResponseError::InvalidGroupId));
        // A commit queued while the delete syncs starts a new group after it.
        let (deleted, recommitted) = futures_lite::future::zip(
            c.delete_group("idle"),
            c.offset_commit(commit_req("idle", -1, "", &[("t", 1, 9)]), 8),
        )
        .await;
        assert_eq!(deleted, Ok(()));
        assert_eq!(commit_codes(&recommitted), vec![0]);
        assert_eq!(fetch_all(&c, "idle").await, vec![("t".into(), 1, 9)]);
        c.close().await.unwrap();
        drop(c);

        let c = GroupCoordinator::open(dir.path().into(), test_config())
            .await
            .unwrap();
        assert_eq!(fetch_all(&c, "idle").await, vec![("t".into(), 1, 9)]);
        assert_eq!(c.delete_group("idle").await, Ok(()));
        assert!(fetch_all(&c, "idle").await.is_empty());
        assert_eq!(c.group_state("idle"), None);
        c.close().await.unwrap();
    });
}
