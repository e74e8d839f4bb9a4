//! Membership and rebalance tests: JoinGroup/SyncGroup/Heartbeat/LeaveGroup, static members,
//! session and rebalance timeouts.

use super::*;

#[test]
fn given_join_v4_without_member_id_when_joining_should_require_member_id_then_accept_it() {
    run(|| async {
        let dir = tempdir();
        let c = GroupCoordinator::open(dir.path().into(), test_config())
            .await
            .unwrap();
        let protocols = [("range", subscription(&["t"]))];
        let id = member_id_for(&c, "g", &protocols).await;
        assert_eq!(c.group_state("g"), Some(GroupState::Empty));
        let r = c.join_group(join_req("g", &id, None, &protocols), 5).await;
        assert_eq!(r.error_code, 0);
        assert_eq!(r.member_id.as_str(), id);
        assert_eq!(r.leader.as_str(), id);
        assert_eq!(r.generation_id, 1);
        assert_eq!(r.protocol_name.as_deref(), Some("range"));
        // A made-up member id is refused.
        let r = c.join_group(join_req("g", "made-up", None, &protocols), 5).await;
        assert_eq!(r.error_code, ResponseError::UnknownMemberId.code());
        // v3 clients get an id straight away, without the extra round trip.
        let r = c.join_group(join_req("g2", "", None, &protocols), 3).await;
        assert_eq!(r.error_code, 0);
        assert!(!r.member_id.is_empty());
        c.close().await.unwrap();
    });
}

#[test]
fn given_three_members_when_joining_together_should_form_one_generation_and_relay_assignments() {
    run(|| async {
        let dir = tempdir();
        let c = GroupCoordinator::open(dir.path().into(), test_config())
            .await
            .unwrap();
        let protocols: Vec<Vec<(&str, Bytes)>> = (0..3)
            .map(|i| vec![("range", Bytes::from(format!("meta-{i}")))])
            .collect();
        let mut joiners = Vec::new();
        for p in &protocols {
            joiners.push((member_id_for(&c, "g", p).await, None, p.clone()));
        }
        let ids: Vec<String> = joiners.iter().map(|j| j.0.clone()).collect();
        let joins = join_all(&c, "g", joiners).await;
        assert!(joins.iter().all(|j| j.error_code == 0 && j.generation_id == 1));
        assert!(joins.iter().all(|j| j.leader == joins[0].leader));
        let leader = joins.iter().find(|j| j.leader == j.member_id).unwrap();
        let mut seen: Vec<(String, Bytes)> = leader
            .members
            .iter()
            .map(|m| (m.member_id.as_str().to_owned(), m.metadata.clone()))
            .collect();
        seen.sort();
        let mut expected: Vec<(String, Bytes)> = ids
            .iter()
            .enumerate()
            .map(|(i, id)| (id.clone(), Bytes::from(format!("meta-{i}"))))
            .collect();
        expected.sort();
        assert_eq!(seen, expected, "the leader sees every member's metadata");
        assert!(joins
            .iter()
            .filter(|j| j.leader != j.member_id)
            .all(|j| j.members.is_empty()));
        assert_eq!(c.group_state("g"), Some(GroupState::CompletingRebalance));
        let syncs = sync_all(&c, "g", &joins).await;
        for (join, sync) in joins.iter().zip(&syncs) {
            assert_eq!(sync.error_code, 0);
            assert_eq!(
                sync.assignment,
                Bytes::from(format!("a-{}", join.member_id.as_str()))
            );
        }
        assert_eq!(c.group_state("g"), Some(GroupState::Stable));
        let described = c.describe_group("g");
        assert_eq!(described.group_state.as_str(), "Stable");
        assert_eq!(described.members.len(), 3);
        assert_eq!(described.protocol_data.as_str(), "range");
        c.close().await.unwrap();
    });
}

#[test]
fn given_members_with_different_preferences_when_selecting_should_pick_a_common_protocol_by_votes() {
    run(|| async {
        let dir = tempdir();
        let c = GroupCoordinator::open(dir.path().into(), test_config())
            .await
            .unwrap();
        let m = Bytes::from_static(b"m");
        let prefs: Vec<Vec<(&'static str, Bytes)>> = vec![
            vec![
                ("range", m.clone()),
                ("roundrobin", m.clone()),
                ("sticky", m.clone()),
            ],
            vec![("roundrobin", m.clone()), ("range", m.clone())],
            vec![
                ("roundrobin", m.clone()),
                ("range", m.clone()),
                ("sticky", m.clone()),
            ],
        ];
        let mut joiners = Vec::new();
        for p in &prefs {
            joiners.push((member_id_for(&c, "g", p).await, None, p.clone()));
        }
        let joins = join_all(&c, "g", joiners).await;
        // "sticky" is not supported by member 2; "roundrobin" has two first-choice votes.
        assert!(
            joins
                .iter()
                .all(|j| j.protocol_name.as_deref() == Some("roundrobin")),
            "{joins:?}"
        );
        // A joiner supporting none of the group's protocols is refused.
        let r = c
            .join_group(join_req("g", "", None, &[("cooperative-sticky", m.clone())]), 5)
            .await;
        assert_eq!(r.error_code, ResponseError::InconsistentGroupProtocol.code());
        c.close().await.unwrap();
    });
}

#[test]
fn given_stable_group_when_a_member_leaves_should_rebalance_into_a_new_generation() {
    run(|| async {
        let dir = tempdir();
        let c = GroupCoordinator::open(dir.path().into(), test_config())
            .await
            .unwrap();
        let joins = form_group(&c, "g", 2, &["t"]).await;
        let generation = joins[0].generation_id;
        let (stay, go) = (&joins[0].member_id, &joins[1].member_id);
        let mut leave = LeaveGroupRequest::default();
        leave.group_id = GroupId(s("g"));
        let mut who = MemberIdentity::default();
        who.member_id = go.clone();
        leave.members.push(who);
        let r = c.leave_group(leave, 4).await;
        assert_eq!(r.error_code, 0);
        assert_eq!(r.members[0].error_code, 0);
        assert_eq!(c.group_state("g"), Some(GroupState::PreparingRebalance));
        let hb = c.heartbeat(heartbeat_req("g", generation, stay), 4).await;
        assert_eq!(hb.error_code, ResponseError::RebalanceInProgress.code());
        let protocols = [("range", subscription(&["t"]))];
        let r = c.join_group(join_req("g", stay, None, &protocols), 5).await;
        assert_eq!(r.error_code, 0);
        assert_eq!(r.generation_id, generation + 1);
        assert_eq!(r.leader, r.member_id);
        assert_eq!(r.members.len(), 1);
        // The departed member is gone for good.
        let hb = c.heartbeat(heartbeat_req("g", generation + 1, go), 4).await;
        assert_eq!(hb.error_code, ResponseError::UnknownMemberId.code());
        let hb = c.heartbeat(heartbeat_req("g", generation, stay), 4).await;
        assert_eq!(hb.error_code, ResponseError::IllegalGeneration.code());
        c.close().await.unwrap();
    });
}

#[test]
fn given_member_that_stops_heartbeating_when_session_times_out_should_expire_and_rebalance() {
    run(|| async {
        let dir = tempdir();
        let c = GroupCoordinator::open(dir.path().into(), test_config())
            .await
            .unwrap();
        let protocols = vec![("range", subscription(&["t"]))];
        let mut joiners = Vec::new();
        for _ in 0..2 {
            joiners.push((
                member_id_for(&c, "g", &protocols).await,
                None::<String>,
                protocols.clone(),
            ));
        }
        let reqs: Vec<JoinGroupRequest> = joiners
            .iter()
            .map(|(id, _, p)| {
                let mut r = join_req("g", id, None, p);
                r.session_timeout_ms = 200;
                r
            })
            .collect();
        let tasks: Vec<_> = reqs
            .into_iter()
            .map(|r| {
                let c = Rc::clone(&c);
                glommio::spawn_local(async move { c.join_group(r, 5).await })
            })
            .collect();
        let mut joins = Vec::new();
        for t in tasks {
            joins.push(t.await);
        }
        sync_all(&c, "g", &joins).await;
        let generation = joins[0].generation_id;
        let alive = joins[0].member_id.clone();
        let mut code = 0;
        for _ in 0..20 {
            sleep(Duration::from_millis(40)).await;
            code = c
                .heartbeat(heartbeat_req("g", generation, &alive), 4)
                .await
                .error_code;
            if code != 0 {
                break;
            }
        }
        assert_eq!(
            code,
            ResponseError::RebalanceInProgress.code(),
            "the silent member expired"
        );
        let r = c.join_group(join_req("g", &alive, None, &protocols), 5).await;
        assert_eq!(r.generation_id, generation + 1);
        assert_eq!(r.members.len(), 1);
        c.close().await.unwrap();
    });
}

#[test]
fn given_rebalance_when_a_member_does_not_rejoin_in_time_should_complete_without_it() {
    run(|| async {
        let dir = tempdir();
        let c = GroupCoordinator::open(dir.path().into(), test_config())
            .await
            .unwrap();
        let joins = form_group(&c, "g", 2, &["t"]).await;
        let generation = joins[0].generation_id;
        let leader = joins
            .iter()
            .find(|j| j.leader == j.member_id)
            .unwrap()
            .member_id
            .clone();
        let other = joins
            .iter()
            .find(|j| j.leader != j.member_id)
            .unwrap()
            .member_id
            .clone();
        // The leader rejoins (that alone starts a rebalance); the other only heartbeats, so the
        // rebalance ends at the largest rebalance timeout (300 ms), without it.
        let req = join_req("g", &leader, None, &[("range", subscription(&["t"]))]);
        let started = std::time::Instant::now();
        let c2 = Rc::clone(&c);
        let pending = glommio::spawn_local(async move { c2.join_group(req, 5).await });
        sleep(Duration::from_millis(20)).await;
        assert_eq!(c.group_state("g"), Some(GroupState::PreparingRebalance));
        let hb = c.heartbeat(heartbeat_req("g", generation, &other), 4).await;
        assert_eq!(
            hb.error_code,
            ResponseError::RebalanceInProgress.code(),
            "told to rejoin"
        );
        let r = pending.await;
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_millis(250),
            "waited for the straggler: {waited:?}"
        );
        assert_eq!(
            (r.error_code, r.generation_id, r.members.len()),
            (0, generation + 1, 1)
        );
        let hb = c.heartbeat(heartbeat_req("g", generation + 1, &other), 4).await;
        assert_eq!(
            hb.error_code,
            ResponseError::UnknownMemberId.code(),
            "the straggler was removed"
        );
        c.close().await.unwrap();
    });
}

#[test]
fn given_stable_static_group_when_member_restarts_with_same_instance_id_should_not_rebalance() {
    run(|| async {
        let dir = tempdir();
        let c = GroupCoordinator::open(dir.path().into(), test_config())
            .await
            .unwrap();
        let protocols = vec![("range", subscription(&["t"]))];
        let joiners = vec![
            (String::new(), Some("instance-a".to_owned()), protocols.clone()),
            (String::new(), Some("instance-b".to_owned()), protocols.clone()),
        ];
        let joins = join_all(&c, "g", joiners).await;
        assert!(
            joins.iter().all(|j| j.error_code == 0),
            "static members skip MEMBER_ID_REQUIRED"
        );
        sync_all(&c, "g", &joins).await;
        let generation = joins[0].generation_id;
        let follower = joins.iter().find(|j| j.leader != j.member_id).unwrap();
        let instance = if follower.member_id == joins[0].member_id {
            "instance-a"
        } else {
            "instance-b"
        };
        let r = c
            .join_group(join_req("g", "", Some(instance), &protocols), 5)
            .await;
        assert_eq!(r.error_code, 0);
        assert_eq!(r.generation_id, generation, "no new generation");
        assert_ne!(r.member_id, follower.member_id);
        assert_eq!(c.group_state("g"), Some(GroupState::Stable));
        let sync = c
            .sync_group(sync_req("g", generation, &r.member_id, &[]), 5)
            .await;
        assert_eq!(
            sync.assignment,
            Bytes::from(format!("a-{}", follower.member_id.as_str()))
        );
        // The old incarnation is fenced.
        let mut hb = heartbeat_req("g", generation, &follower.member_id);
        hb.group_instance_id = Some(s(instance));
        assert_eq!(
            c.heartbeat(hb, 4).await.error_code,
            ResponseError::FencedInstanceId.code()
        );
        let leader = joins.iter().find(|j| j.leader == j.member_id).unwrap();
        assert_eq!(
            c.heartbeat(heartbeat_req("g", generation, &leader.member_id), 4)
                .await
                .error_code,
            0
        );
        c.close().await.unwrap();
    });
}

#[test]
fn given_bad_requests_when_joining_should_answer_with_kafka_errors() {
    run(|| async {
        let dir = tempdir();
        let c = GroupCoordinator::open(dir.path().into(), test_config())
            .await
            .unwrap();
        let protocols = [("range", Bytes::new())];
        let mut r = join_req("g", "", None, &protocols);
        r.session_timeout_ms = 5;
        assert_eq!(
            c.join_group(r, 5).await.error_code,
            ResponseError::InvalidSessionTimeout.code()
        );
        let r = join_req("", "", None, &protocols);
        assert_eq!(
            c.join_group(r, 5).await.error_code,
            ResponseError::InvalidGroupId.code()
        );
        let r = join_req("g", "", None, &[]);
        assert_eq!(
            c.join_group(r, 5).await.error_code,
            ResponseError::InconsistentGroupProtocol.code()
        );
        let hb = c.heartbeat(heartbeat_req("nope", 1, "m"), 4).await;
        assert_eq!(hb.error_code, ResponseError::UnknownMemberId.code());
        let sync = c.sync_group(sync_req("nope", 1, "m", &[]), 5).await;
        assert_eq!(sync.error_code, ResponseError::UnknownMemberId.code());
        c.close().await.unwrap();
    });
}

#[test]
fn given_waiting_join_when_coordinator_closes_should_answer_coordinator_not_available() {
    run(|| async {
        let dir = tempdir();
        let config = GroupConfig {
            initial_rebalance_delay_ms: 10_000,
            ..test_config()
        };
        let c = GroupCoordinator::open(dir.path().into(), config).await.unwrap();
        let c2 = Rc::clone(&c);
        let req = join_req("g", "", None, &[("range", Bytes::new())]);
        let pending = glommio::spawn_local(async move { c2.join_group(req, 3).await });
        sleep(Duration::from_millis(20)).await;
        assert_eq!(
            c.group_state("g"),
            Some(GroupState::PreparingRebalance),
            "held by the initial delay"
        );
        c.close().await.unwrap();
        assert_eq!(
            pending.await.error_code,
            ResponseError::CoordinatorNotAvailable.code()
        );
        let r = c
            .offset_commit(commit_req("simple", -1, "", &[("t", 0, 1)]), 8)
            .await;
        assert_eq!(
            commit_codes(&r),
            vec![ResponseError::CoordinatorNotAvailable.code()]
        );
    });
}

#[test]
fn given_commit_during_completing_rebalance_or_with_huge_metadata_when_committing_should_refuse() {
    run(|| async {
        let dir = tempdir();
        let c = GroupCoordinator::open(dir.path().into(), test_config())
            .await
            .unwrap();
        let protocols = vec![("range", subscription(&["t"]))];
        let id = member_id_for(&c, "g", &protocols).await;
        let joined = c.join_group(join_req("g", &id, None, &protocols), 5).await;
        assert_eq!(c.group_state("g"), Some(GroupState::CompletingRebalance));
        let r = c
            .offset_commit(commit_req("g", joined.generation_id, &id, &[("t", 0, 1)]), 8)
            .await;
        assert_eq!(commit_codes(&r), vec![ResponseError::RebalanceInProgress.code()]);
        let mut req = commit_req("simple", -1, "", &[("t", 0, 1)]);
        req.topics[0].partitions[0].committed_metadata = Some(s(&"x".repeat(OFFSET_METADATA_BYTES_MAX + 1)));
        let r = c.offset_commit(req, 8).await;
        assert_eq!(
            commit_codes(&r),
            vec![ResponseError::OffsetMetadataTooLarge.code()]
        );
        assert_eq!(fetch_all(&c, "simple").await, vec![]);
        c.close().await.unwrap();
    });
}

#[test]
fn given_restart_between_join_and_sync_when_reopening_should_rebalance_into_a_newer_generation() {
    run(|| async {
        let dir = tempdir();
        let c = GroupCoordinator::open(dir.path().into(), test_config())
            .await
            .unwrap();
        let protocols = vec![("range", subscription(&["t"]))];
        let id = member_id_for(&c, "g", &protocols).await;
        let joined = c.join_group(join_req("g", &id, None, &protocols), 5).await;
        assert_eq!(c.group_state("g"), Some(GroupState::CompletingRebalance));
        c.close().await.unwrap();
        drop(c);
        let c = GroupCoordinator::open(dir.path().into(), test_config())
            .await
            .unwrap();
        assert_eq!(
            c.group_state("g"),
            Some(GroupState::PreparingRebalance),
            "assignments were lost"
        );
        let hb = c
            .heartbeat(heartbeat_req("g", joined.generation_id, &id), 4)
            .await;
        assert_eq!(hb.error_code, ResponseError::RebalanceInProgress.code());
        let rejoined = c.join_group(join_req("g", &id, None, &protocols), 5).await;
        assert_eq!(rejoined.error_code, 0);
        assert_eq!(
            rejoined.generation_id,
            joined.generation_id + 1,
            "generations never repeat"
        );
        c.close().await.unwrap();
    });
}
