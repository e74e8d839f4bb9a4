use super::*;

fn tid(n: u8) -> Uuid {
    Uuid::from_bytes([n; 16])
}

struct Spec {
    id: String,
    instance: Option<String>,
    subscribed: BTreeSet<Uuid>,
    previous: Assignment,
}

fn spec(id: &str, topics: &[u8], previous: &Assignment) -> Spec {
    Spec {
        id: id.to_owned(),
        instance: None,
        subscribed: topics.iter().map(|&t| tid(t)).collect(),
        previous: previous.clone(),
    }
}

fn run(name: &str, specs: &[Spec], topics: &BTreeMap<Uuid, i32>) -> BTreeMap<String, Assignment> {
    let members: Vec<AssignorMember<'_>> = specs
        .iter()
        .map(|s| AssignorMember {
            member_id: &s.id,
            instance_id: s.instance.as_deref(),
            subscribed: &s.subscribed,
            previous: &s.previous,
        })
        .collect();
    let out = assign(name, &members, topics);
    check_complete(specs, topics, &out);
    out
}

/// Every partition of a subscribed topic is owned exactly once, by a subscriber.
fn check_complete(specs: &[Spec], topics: &BTreeMap<Uuid, i32>, out: &BTreeMap<String, Assignment>) {
    let mut seen = BTreeSet::new();
    for s in specs {
        for (t, ps) in &out[&s.id] {
            assert!(s.subscribed.contains(t), "{} got an unsubscribed topic", s.id);
            for p in ps {
                assert!(seen.insert((*t, *p)), "partition {t}:{p} assigned twice");
            }
        }
    }
    let subscribed: BTreeSet<Uuid> = specs.iter().flat_map(|s| s.subscribed.iter().copied()).collect();
    let expected: usize = topics
        .iter()
        .filter(|(t, _)| subscribed.contains(t))
        .map(|(_, &c)| c as usize)
        .sum();
    assert_eq!(seen.len(), expected, "every partition assigned");
}

fn count(a: &Assignment) -> usize {
    a.values().map(BTreeSet::len).sum()
}

fn moved(before: &BTreeMap<String, Assignment>, after: &BTreeMap<String, Assignment>) -> usize {
    let owner = |m: &BTreeMap<String, Assignment>| -> BTreeMap<(Uuid, i32), String> {
        m.iter()
            .flat_map(|(id, a)| {
                a.iter()
                    .flat_map(move |(t, ps)| ps.iter().map(move |p| ((*t, *p), id.clone())))
            })
            .collect()
    };
    let (b, a) = (owner(before), owner(after));
    a.iter()
        .filter(|(tp, id)| b.get(tp).is_some_and(|o| o != *id))
        .count()
}

#[test]
fn given_three_members_and_six_partitions_when_uniform_should_give_two_each() {
    let topics = BTreeMap::from([(tid(1), 6)]);
    let none = Assignment::new();
    let specs = [
        spec("a", &[1], &none),
        spec("b", &[1], &none),
        spec("c", &[1], &none),
    ];
    let out = run("uniform", &specs, &topics);
    for s in &specs {
        assert_eq!(count(&out[&s.id]), 2, "{}", s.id);
    }
}

#[test]
fn given_a_member_joins_when_uniform_should_move_only_the_new_members_share() {
    let topics = BTreeMap::from([(tid(1), 6), (tid(2), 3)]);
    let none = Assignment::new();
    let two = run(
        "uniform",
        &[spec("a", &[1, 2], &none), spec("b", &[1, 2], &none)],
        &topics,
    );
    let specs = [
        spec("a", &[1, 2], &two["a"]),
        spec("b", &[1, 2], &two["b"]),
        spec("c", &[1, 2], &none),
    ];
    let three = run("uniform", &specs, &topics);
    assert_eq!(moved(&two, &three), 3, "only c's 3 partitions move");
    assert!(specs.iter().all(|s| count(&three[&s.id]) == 3));
}

#[test]
fn given_a_member_leaves_when_uniform_should_keep_the_survivors_partitions() {
    let topics = BTreeMap::from([(tid(1), 7)]);
    let none = Assignment::new();
    let three = run(
        "uniform",
        &[
            spec("a", &[1], &none),
            spec("b", &[1], &none),
            spec("c", &[1], &none),
        ],
        &topics,
    );
    let specs = [spec("a", &[1], &three["a"]), spec("c", &[1], &three["c"])];
    let two = run("uniform", &specs, &topics);
    for s in &specs {
        assert!(
            three[&s.id][&tid(1)].is_subset(&two[&s.id][&tid(1)]),
            "{} keeps its own",
            s.id
        );
    }
    let loads: Vec<usize> = specs.iter().map(|s| count(&two[&s.id])).collect();
    assert_eq!(loads.iter().sum::<usize>(), 7);
    assert!(
        loads.iter().max().unwrap() - loads.iter().min().unwrap() <= 1,
        "{loads:?}"
    );
}

#[test]
fn given_different_subscriptions_when_uniform_should_respect_them_and_balance() {
    let topics = BTreeMap::from([(tid(1), 4), (tid(2), 4)]);
    let none = Assignment::new();
    let specs = [
        spec("a", &[1], &none),
        spec("b", &[1, 2], &none),
        spec("c", &[2], &none),
    ];
    let out = run("uniform", &specs, &topics);
    let loads: Vec<usize> = specs.iter().map(|s| count(&out[&s.id])).collect();
    assert!(
        loads.iter().max().unwrap() - loads.iter().min().unwrap() <= 1,
        "{loads:?}"
    );
}

#[test]
fn given_seven_partitions_and_three_members_when_range_should_give_contiguous_ranges() {
    let topics = BTreeMap::from([(tid(1), 7)]);
    let none = Assignment::new();
    let specs = [
        spec("b", &[1], &none),
        spec("a", &[1], &none),
        spec("c", &[1], &none),
    ];
    let out = run("range", &specs, &topics);
    let parts = |id: &str| out[id][&tid(1)].iter().copied().collect::<Vec<_>>();
    assert_eq!(parts("a"), vec![0, 1, 2]);
    assert_eq!(parts("b"), vec![3, 4]);
    assert_eq!(parts("c"), vec![5, 6]);
}

#[test]
fn given_a_deleted_topic_in_the_previous_assignment_when_uniform_should_drop_it() {
    let topics = BTreeMap::from([(tid(1), 2)]);
    let previous = Assignment::from([(tid(9), BTreeSet::from([0])), (tid(1), BTreeSet::from([5]))]);
    let specs = [spec("a", &[1, 9], &previous)];
    let out = run("uniform", &specs, &topics);
    assert_eq!(out["a"], Assignment::from([(tid(1), BTreeSet::from([0, 1]))]));
}

#[test]
fn given_static_members_when_range_should_order_by_instance_id_so_a_replaced_member_keeps_its_range() {
    let topics = BTreeMap::from([(tid(1), 6)]);
    let static_spec = |id: &str, instance: &str| Spec {
        instance: Some(instance.to_owned()),
        ..spec(id, &[1], &Assignment::new())
    };
    // Static members come first by instance id, then dynamic ones by member id.
    let specs = [
        static_spec("zz", "i-1"),
        static_spec("aa", "i-2"),
        spec("bb", &[1], &Assignment::new()),
    ];
    let before = run("range", &specs, &topics);
    let parts =
        |out: &BTreeMap<String, Assignment>, id: &str| out[id][&tid(1)].iter().copied().collect::<Vec<_>>();
    assert_eq!(parts(&before, "zz"), vec![0, 1]);
    assert_eq!(parts(&before, "aa"), vec![2, 3]);
    assert_eq!(parts(&before, "bb"), vec![4, 5]);
    // i-1 restarts under a member id that sorts last: it keeps partitions 0 and 1.
    let specs = [
        static_spec("zzz-new", "i-1"),
        static_spec("aa", "i-2"),
        spec("bb", &[1], &Assignment::new()),
    ];
    let after = run("range", &specs, &topics);
    assert_eq!(parts(&after, "zzz-new"), vec![0, 1]);
    assert_eq!(parts(&after, "aa"), vec![2, 3]);
}
