//! Consumer-group membership: JoinGroup/SyncGroup with the range assignor
//! (run by whichever member the coordinator makes leader), a heartbeat
//! thread, and the best-effort OffsetCommit that shows progress to
//! `weir group describe`.
//!
//! The main thread owns `Membership`; the heartbeat thread shares only
//! `Shared`. Invariants: the heartbeat thread never heartbeats a generation
//! the main thread is replacing (it reads generation -1 during a join); it
//! raises `rejoin` only for the generation it heartbeated. The group decides
//! who reads a partition; the database's conditional offset update decides
//! whose rows land, so a member that has not noticed a rebalance yet cannot
//! duplicate rows.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use bytes::Bytes;
use weir_client::blocking::{
    decode_assignment, decode_subscription, encode_assignment, encode_subscription, Client,
};

use crate::source::{chain, Source};

const ASSIGNOR: &str = "range";
const UNKNOWN_MEMBER_ID: i16 = 25;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug)]
struct HeartbeatState {
    addr: Option<String>,
    generation: i32,
    member_id: String,
}

struct Shared {
    state: Mutex<HeartbeatState>,
    rejoin: AtomicBool,
    stop: AtomicBool,
}

pub struct Membership {
    group: String,
    topic: String,
    session_timeout_ms: i32,
    coordinator: Option<Client>,
    member_id: String,
    generation: i32,
    shared: Arc<Shared>,
    heartbeat: Option<JoinHandle<()>>,
}

impl Membership {
    pub fn new(group: &str, topic: &str, session_timeout_ms: i32) -> Self {
        let shared = Arc::new(Shared {
            state: Mutex::new(HeartbeatState {
                addr: None,
                generation: -1,
                member_id: String::new(),
            }),
            rejoin: AtomicBool::new(true),
            stop: AtomicBool::new(false),
        });
        let interval = Duration::from_millis(u64::try_from(session_timeout_ms / 6).unwrap_or(1000).max(200));
        let hb = Arc::clone(&shared);
        let group_id = group.to_string();
        let heartbeat = std::thread::Builder::new()
            .name("heartbeat".into())
            .spawn(move || heartbeat_loop(&hb, &group_id, interval))
            .expect("spawn the heartbeat thread");
        Self {
            group: group.to_string(),
            topic: topic.to_string(),
            session_timeout_ms,
            coordinator: None,
            member_id: String::new(),
            generation: -1,
            shared,
            heartbeat: Some(heartbeat),
        }
    }

    /// The group asks for a new JoinGroup (or this member has none yet).
    pub fn needs_rejoin(&self) -> bool {
        self.shared.rejoin.load(Ordering::Acquire)
    }

    pub fn generation(&self) -> i32 {
        self.generation
    }

    /// Join (or rejoin) and return this member's partitions of the topic.
    pub fn join(&mut self, source: &mut Source) -> Result<Vec<i32>, String> {
        self.shared.state.lock().expect("heartbeat state").generation = -1;
        let result = self.join_once(source);
        if result.is_err() {
            self.coordinator = None;
        }
        let partitions = result?;
        let mut state = self.shared.state.lock().expect("heartbeat state");
        state.generation = self.generation;
        state.member_id = self.member_id.clone();
        self.shared.rejoin.store(false, Ordering::Release);
        Ok(partitions)
    }

    fn coordinator(&mut self, source: &Source) -> Result<&mut Client, String> {
        if self.coordinator.is_none() {
            let mut boot = source
                .bootstrap()
                .map_err(|e| format!("bootstrap: {}", chain(&e)))?;
            let (_, host, port) = boot
                .find_coordinator(&self.group)
                .map_err(|e| format!("find coordinator: {}", chain(&e)))?;
            let addr = format!("{host}:{port}");
            let c = Client::connect(addr.as_str(), CONNECT_TIMEOUT)
                .map_err(|e| format!("coordinator {addr}: {}", chain(&e)))?;
            self.shared.state.lock().expect("heartbeat state").addr = Some(addr);
            self.coordinator = Some(c);
        }
        Ok(self.coordinator.as_mut().expect("set above"))
    }

    fn join_once(&mut self, source: &mut Source) -> Result<Vec<i32>, String> {
        source.refresh()?;
        let partitions = i32::try_from(source.partition_count()).unwrap_or(i32::MAX);
        let subscription = encode_subscription(&[self.topic.as_str()]);
        let (group, member_id, timeout) = (
            self.group.clone(),
            self.member_id.clone(),
            self.session_timeout_ms,
        );
        let topic = self.topic.clone();
        let c = self.coordinator(source)?;
        let joined = match c.join_group(&group, &member_id, timeout, &[(ASSIGNOR, subscription.clone())]) {
            Err(e) if e.code() == Some(UNKNOWN_MEMBER_ID) => {
                c.join_group(&group, "", timeout, &[(ASSIGNOR, subscription)])
            }
            r => r,
        }
        .map_err(|e| format!("join group {group}: {}", chain(&e)))?;
        let assignments = if joined.is_leader() {
            range_assign(&joined.members, &topic, partitions)
        } else {
            Vec::new()
        };
        let mine = c
            .sync_group(&group, &joined, &assignments)
            .map_err(|e| format!("sync group {group}: {}", chain(&e)))?;
        self.member_id = joined.member_id.clone();
        self.generation = joined.generation_id;
        let mut parts: Vec<i32> = decode_assignment(&mine)
            .unwrap_or_default()
            .into_iter()
            .filter(|(t, _)| *t == self.topic)
            .flat_map(|(_, ps)| ps)
            .collect();
        parts.sort_unstable();
        Ok(parts)
    }

    /// OffsetCommit after the database committed: progress for `weir group
    /// describe` and for backlog bounds. Failure is harmless (the database
    /// holds the real offsets) and only reported.
    pub fn commit(&mut self, offsets: &[(i32, i64)]) -> Result<(), String> {
        let Some(c) = self.coordinator.as_mut() else {
            return Ok(());
        };
        let triples: Vec<(&str, i32, i64)> = offsets
            .iter()
            .map(|&(p, o)| (self.topic.as_str(), p, o))
            .collect();
        c.commit_offsets(&self.group, self.generation, &self.member_id, &triples)
            .map_err(|e| {
                let message = format!("offset commit: {}", chain(&e));
                if e.code().is_none() {
                    self.coordinator = None;
                }
                message
            })
    }

    /// Leave the group so the others take over at once.
    pub fn leave(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        if let Some(c) = self.coordinator.as_mut() {
            let _ = c.leave_group(&self.group, &self.member_id);
        }
        if let Some(h) = self.heartbeat.take() {
            let _ = h.join();
        }
    }
}

/// Kafka's range assignor for one topic: members sorted by id, each gets a
/// contiguous run, the first `partitions % members` one more.
fn range_assign(members: &[(String, Bytes)], topic: &str, partitions: i32) -> Vec<(String, Bytes)> {
    let mut subscribed: Vec<&String> = members
        .iter()
        .filter(|(_, meta)| decode_subscription(meta).is_some_and(|ts| ts.iter().any(|t| t == topic)))
        .map(|(id, _)| id)
        .collect();
    subscribed.sort();
    let n = i32::try_from(subscribed.len()).unwrap_or(i32::MAX).max(1);
    let (each, extra) = (partitions / n, partitions % n);
    let mut next = 0;
    let mut out: Vec<(String, Bytes)> = Vec::with_capacity(members.len());
    for (i, id) in subscribed.iter().enumerate() {
        let i = i32::try_from(i).unwrap_or(i32::MAX);
        let count = each + i32::from(i < extra);
        let parts: Vec<i32> = (next..next + count).collect();
        next += count;
        out.push(((*id).clone(), encode_assignment(&[(topic.to_string(), parts)])));
    }
    for (id, _) in members {
        if !out.iter().any(|(o, _)| o == id) {
            out.push((id.clone(), encode_assignment(&[])));
        }
    }
    out
}

fn heartbeat_loop(shared: &Shared, group: &str, interval: Duration) {
    let mut conn: Option<(String, Client)> = None;
    let mut last = std::time::Instant::now();
    while !shared.stop.load(Ordering::Acquire) {
        // Short naps, so a leaving drain is not held up by a whole interval.
        std::thread::sleep(Duration::from_millis(50));
        if last.elapsed() < interval {
            continue;
        }
        last = std::time::Instant::now();
        let (addr, generation, member_id) = {
            let s = shared.state.lock().expect("heartbeat state");
            (s.addr.clone(), s.generation, s.member_id.clone())
        };
        let Some(addr) = addr.filter(|_| generation >= 0) else {
            continue;
        };
        if conn.as_ref().is_none_or(|(a, _)| *a != addr) {
            conn = Client::connect(addr.as_str(), CONNECT_TIMEOUT)
                .ok()
                .map(|c| (addr.clone(), c));
        }
        let ok = match conn.as_mut() {
            Some((_, c)) => match c.heartbeat(group, generation, &member_id) {
                Ok(()) => true,
                Err(e) => {
                    if e.code().is_none() {
                        conn = None;
                    }
                    false
                }
            },
            None => false,
        };
        if !ok {
            let s = shared.state.lock().expect("heartbeat state");
            if s.generation == generation {
                shared.rejoin.store(true, Ordering::Release);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_three_members_and_eight_partitions_when_range_assigned_should_split_3_3_2() {
        let sub = encode_subscription(&["t"]);
        let members: Vec<(String, Bytes)> = ["m-b", "m-a", "m-c"]
            .iter()
            .map(|m| (m.to_string(), sub.clone()))
            .collect();
        let out = range_assign(&members, "t", 8);
        let get = |id: &str| {
            let (_, a) = out.iter().find(|(m, _)| m == id).unwrap();
            decode_assignment(a).unwrap()[0].1.clone()
        };
        assert_eq!(get("m-a"), vec![0, 1, 2]);
        assert_eq!(get("m-b"), vec![3, 4, 5]);
        assert_eq!(get("m-c"), vec![6, 7]);
    }
}
