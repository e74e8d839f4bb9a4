//! The server-side assignors of KIP-848: `uniform` (the default) and `range`.
//! Pure functions from (members, their subscriptions, the previous target assignment,
//! topic sizes) to a new target assignment; no I/O, no clock, deterministic (members and
//! topics are visited in sorted order), so every coordinator computes the same answer.
//! Invariants of the result: every partition of a subscribed topic goes to exactly one member
//! subscribed to its topic, and no member gets a partition of a topic it does not subscribe to.

use std::collections::{BTreeMap, BTreeSet};

use uuid::Uuid;

/// Partitions by topic id.
pub type Assignment = BTreeMap<Uuid, BTreeSet<i32>>;

/// The assignor Kafka uses when a member names none.
pub const DEFAULT_ASSIGNOR: &str = "uniform";
/// The assignors a heartbeat's ServerAssignor may name.
pub const ASSIGNORS: [&str; 2] = ["uniform", "range"];

/// One member as an assignor sees it.
pub struct AssignorMember<'a> {
    pub member_id: &'a str,
    /// The member's group instance id (static membership): the range assignor orders by it.
    pub instance_id: Option<&'a str>,
    /// Topic ids the member subscribes to (names and regex already resolved).
    pub subscribed: &'a BTreeSet<Uuid>,
    /// The member's previous target assignment: the uniform assignor keeps as much of it as
    /// balance allows, so a join or a leave moves few partitions.
    pub previous: &'a Assignment,
}

/// Runs the assignor `name` (one of [`ASSIGNORS`]). `topics` maps each subscribed topic id
/// to its partition count. Returns one assignment per member, in member-id order.
pub fn assign(
    name: &str,
    members: &[AssignorMember<'_>],
    topics: &BTreeMap<Uuid, i32>,
) -> BTreeMap<String, Assignment> {
    if name == "range" {
        range(members, topics)
    } else {
        uniform(members, topics)
    }
}

fn empty_result(members: &[AssignorMember<'_>]) -> BTreeMap<String, Assignment> {
    members
        .iter()
        .map(|m| (m.member_id.to_owned(), Assignment::new()))
        .collect()
}

fn add(assignment: &mut Assignment, topic: Uuid, partition: i32) {
    assignment.entry(topic).or_default().insert(partition);
}

/// Kafka's range assignor (as rewritten by KAFKA-16944 for Kafka 4), topic by topic: the
/// members subscribed to a topic get contiguous ranges in Kafka's member order (static members
/// first, by instance id, then the others by member id); the first `partitions % members` get
/// one more. Members with the same subscriptions thus get the same partition numbers of
/// co-partitioned topics. Like Kafka's, it recomputes from scratch rather than keeping previous
/// owners (Kafka gave up stickiness for co-partitioning); the instance-id order is what keeps a
/// static member's range across a restart under a new member id.
pub fn range(members: &[AssignorMember<'_>], topics: &BTreeMap<Uuid, i32>) -> BTreeMap<String, Assignment> {
    let mut out = empty_result(members);
    let mut ordered: Vec<&AssignorMember<'_>> = members.iter().collect();
    ordered.sort_unstable_by(|a, b| match (a.instance_id, b.instance_id) {
        (Some(x), Some(y)) => x.cmp(y).then(a.member_id.cmp(b.member_id)),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => a.member_id.cmp(b.member_id),
    });
    for (&topic, &count) in topics {
        let subscribers: Vec<&str> = ordered
            .iter()
            .filter(|m| m.subscribed.contains(&topic))
            .map(|m| m.member_id)
            .collect();
        if subscribers.is_empty() || count <= 0 {
            continue;
        }
        let n = subscribers.len() as i32;
        let (base, extra) = (count / n, count % n);
        let mut next = 0;
        for (i, member) in subscribers.iter().enumerate() {
            let take = base + i32::from((i as i32) < extra);
            let assignment = out.get_mut(*member).expect("every member has an entry");
            for p in next..next + take {
                add(assignment, topic, p);
            }
            next += take;
        }
    }
    out
}

/// Kafka's uniform assignor: balanced (member loads differ by at most one when members
/// subscribe alike) and sticky (a member keeps its previous partitions within its quota).
pub fn uniform(members: &[AssignorMember<'_>], topics: &BTreeMap<Uuid, i32>) -> BTreeMap<String, Assignment> {
    let mut sorted: Vec<&AssignorMember<'_>> = members.iter().collect();
    sorted.sort_unstable_by_key(|m| m.member_id);
    let homogeneous = sorted.windows(2).all(|w| w[0].subscribed == w[1].subscribed);
    if homogeneous {
        uniform_homogeneous(&sorted, topics)
    } else {
        uniform_heterogeneous(&sorted, topics)
    }
}

/// Every partition of `topics` that `member` may own, in (topic, partition) order.
fn eligible(member: &AssignorMember<'_>, topics: &BTreeMap<Uuid, i32>) -> Vec<(Uuid, i32)> {
    topics
        .iter()
        .filter(|(t, _)| member.subscribed.contains(t))
        .flat_map(|(&t, &count)| (0..count.max(0)).map(move |p| (t, p)))
        .collect()
}

/// The previous partitions each member may keep: still subscribed and still existing, each
/// claimed once (the first member in id order wins a partition two members had).
fn kept_partitions(members: &[&AssignorMember<'_>], topics: &BTreeMap<Uuid, i32>) -> Vec<Vec<(Uuid, i32)>> {
    let mut claimed = BTreeSet::new();
    members
        .iter()
        .map(|m| {
            let mut kept = Vec::new();
            for (topic, partitions) in m.previous {
                let Some(&count) = topics.get(topic) else { continue };
                if !m.subscribed.contains(topic) {
                    continue;
                }
                for &p in partitions.iter().filter(|&&p| (0..count).contains(&p)) {
                    if claimed.insert((*topic, p)) {
                        kept.push((*topic, p));
                    }
                }
            }
            kept
        })
        .collect()
}

fn uniform_homogeneous(
    members: &[&AssignorMember<'_>],
    topics: &BTreeMap<Uuid, i32>,
) -> BTreeMap<String, Assignment> {
    let Some(first) = members.first() else {
        return BTreeMap::new();
    };
    let all = eligible(first, topics);
    let n = members.len();
    let (min, mut extra) = (all.len() / n, all.len() % n);
    let mut kept = kept_partitions(members, topics);
    // Extra slots go first to the members that already hold more than the minimum, so
    // fewer partitions move.
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(kept[i].len()));
    let mut quota = vec![min; n];
    for &i in &order {
        if extra > 0 && kept[i].len() > min {
            quota[i] += 1;
            extra -= 1;
        }
    }
    for i in 0..n {
        if extra > 0 && quota[i] == min {
            quota[i] += 1;
            extra -= 1;
        }
        kept[i].truncate(quota[i]);
    }
    let taken: BTreeSet<(Uuid, i32)> = kept.iter().flatten().copied().collect();
    let mut free = all.into_iter().filter(|tp| !taken.contains(tp));
    let mut out = BTreeMap::new();
    for (i, member) in members.iter().enumerate() {
        while kept[i].len() < quota[i] {
            match free.next() {
                Some(tp) => kept[i].push(tp),
                None => break,
            }
        }
        let mut assignment = Assignment::new();
        for &(t, p) in &kept[i] {
            add(&mut assignment, t, p);
        }
        out.insert(member.member_id.to_owned(), assignment);
    }
    out
}

/// Members with different subscriptions: each member keeps its previous partitions up to the
/// fair share of its topics, then every remaining partition (topics with the fewest
/// subscribers first) goes to the least loaded subscriber.
fn uniform_heterogeneous(
    members: &[&AssignorMember<'_>],
    topics: &BTreeMap<Uuid, i32>,
) -> BTreeMap<String, Assignment> {
    let subscribers = |t: &Uuid| members.iter().filter(|m| m.subscribed.contains(t)).count();
    // A member's fair share: for each of its topics, the topic's partitions over its subscribers.
    let share: Vec<usize> = members
        .iter()
        .map(|m| {
            topics
                .iter()
                .filter(|(t, _)| m.subscribed.contains(t))
                .map(|(t, &c)| (c.max(0) as usize).div_ceil(subscribers(t).max(1)))
                .sum()
        })
        .collect();
    let mut kept = kept_partitions(members, topics);
    for (i, k) in kept.iter_mut().enumerate() {
        k.truncate(share[i]);
    }
    let taken: BTreeSet<(Uuid, i32)> = kept.iter().flatten().copied().collect();
    let mut order: Vec<(&Uuid, &i32)> = topics.iter().collect();
    order.sort_by_key(|(t, _)| subscribers(t));
    for (&topic, &count) in order {
        for p in (0..count.max(0)).filter(|p| !taken.contains(&(topic, *p))) {
            let least = (0..members.len())
                .filter(|&i| members[i].subscribed.contains(&topic))
                .min_by_key(|&i| kept[i].len());
            if let Some(i) = least {
                kept[i].push((topic, p));
            }
        }
    }
    members
        .iter()
        .zip(kept)
        .map(|(m, k)| {
            let mut assignment = Assignment::new();
            for (t, p) in k {
                add(&mut assignment, t, p);
            }
            (m.member_id.to_owned(), assignment)
        })
        .collect()
}

#[cfg(test)]
#[path = "assignor_tests.rs"]
mod tests;
