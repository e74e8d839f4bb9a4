//! ShareFetch (78), and the plan ShareAcknowledge (79, `share_acknowledge.rs`) shares: the
//! share session is checked and moved on the shard serving the connection
//! (`share::session`); each partition's acknowledgements and acquisitions run on the
//! partition's owner shard as a `ShareTask`, which applies the acknowledgements, acquires a
//! batch of records (Kafka's AcquiredRecords ranges), makes both durable (fdatasync of the
//! shard's share-state log) and only then returns the records. A fetch with nothing to
//! acquire long-polls on the owner's append event and on the next lock expiry, up to
//! MaxWaitMs. Errors are Kafka's: INVALID_RECORD_STATE for an acknowledgement of a record
//! this member does not hold, SHARE_SESSION_NOT_FOUND, INVALID_SHARE_SESSION_EPOCH,
//! UNKNOWN_MEMBER_ID for a session opened by a non-member.

use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use futures_lite::future;
use kafka_protocol::messages::share_fetch_response::{
    AcquiredRecords, LeaderIdAndEpoch, PartitionData, ShareFetchableTopicResponse,
};
use kafka_protocol::messages::{ShareFetchRequest, ShareFetchResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use uuid::Uuid;

use super::fetch::DataListeners;
use super::groups::call;
use super::share_acquire::acquire_part;
use super::share_wait;
use super::{ownership_error, ShardContext};
use crate::groups::call::{GroupAnswer, GroupCall};
use crate::limits;
use crate::shard::router::{owner_of, split_by_owner};
use crate::shard::{fan_out, Task};
use crate::share::partition::{AckBatch, AckError, AcquiredRun};
use crate::share::session::FINAL_EPOCH;
use crate::share::store::{Key, StoreError};
use crate::share::ShareState;

/// Records one ShareFetch acquires when the client names no MaxRecords.
const MAX_RECORDS_DEFAULT: usize = 500;
/// Bytes read for a session partition the request does not name (Kafka's fetch default).
const SESSION_PARTITION_BYTES: usize = 1024 * 1024;
/// Acknowledgement batches one partition may carry in one request.
const ACK_BATCHES_MAX: usize = 10_000;

/// One partition's work for its owner.
#[derive(Clone)]
pub struct SharePart {
    index: usize,
    pub(super) topic: String,
    pub(super) partition: i32,
    acks: Vec<(i64, i64, Vec<i8>)>,
    fetch: bool,
    release: bool,
    pub(super) max_bytes: usize,
}

impl SharePart {
    /// The same partition asked again: acquisition only (its acknowledgements and release
    /// were applied by the first pass).
    fn fetch_only(&self) -> Self {
        Self {
            acks: Vec::new(),
            release: false,
            ..self.clone()
        }
    }
}

#[derive(Default)]
pub struct SharePartOut {
    index: usize,
    pub(super) error_code: i16,
    pub(super) ack_error_code: i16,
    pub(super) batches: Vec<Bytes>,
    pub(super) acquired: Vec<AcquiredRun>,
}

/// Runs on the owner shard of every part.
pub struct ShareTask {
    group: String,
    member: String,
    parts: Vec<SharePart>,
    max_wait_ms: u64,
    max_records: usize,
}

impl Task<ShardContext> for ShareTask {
    type Output = Vec<SharePartOut>;

    async fn run(self, shard: Rc<ShardContext>) -> Vec<SharePartOut> {
        let mut out: Vec<SharePartOut> = self
            .parts
            .iter()
            .map(|p| SharePartOut {
                index: p.index,
                ..Default::default()
            })
            .collect();
        let Some(share) = shard.share() else {
            out.iter_mut()
                .for_each(|o| o.error_code = ResponseError::CoordinatorNotAvailable.code());
            return out;
        };
        let keys: Vec<Key> = self
            .parts
            .iter()
            .map(|p| (self.group.clone(), p.topic.clone(), p.partition))
            .collect();
        let fetching = self.parts.iter().any(|p| p.fetch);
        let staged = self.settle(&shard, &share, &keys, &mut out);
        if fetching {
            // The acknowledgements ride on the first acquisition's fdatasync (staged in
            // order before it); `durable` below is then already met.
            self.acquire_loop(
                &shard,
                &share,
                &keys,
                &mut out,
                staged.as_ref().ok().copied().flatten(),
            )
            .await;
        }
        let acks_durable = match staged {
            Ok(ticket) => share.durable(ticket).await,
            Err(e) => Err(e),
        };
        if let Err(e) = acks_durable {
            tracing::error!(error = %e, "share state: acknowledgements not durable");
            for (p, o) in self.parts.iter().zip(out.iter_mut()) {
                if !p.acks.is_empty() && o.ack_error_code == 0 {
                    o.ack_error_code = ResponseError::KafkaStorageError.code();
                }
            }
        }
        out
    }
}

impl ShareTask {
    /// Acknowledgements and releases, staged in the share-state log before anything else
    /// happens; made durable before the answer (`run`).
    fn settle(
        &self,
        shard: &ShardContext,
        share: &ShareState,
        keys: &[Key],
        out: &mut [SharePartOut],
    ) -> Result<Option<u64>, StoreError> {
        let now = Instant::now();
        let mut records = Vec::new();
        for ((p, key), o) in self.parts.iter().zip(keys).zip(out.iter_mut()) {
            if let Err(own) = shard.partitions.owned(&p.topic, p.partition) {
                o.error_code = ownership_error(own).code();
                o.ack_error_code = o.error_code;
                continue;
            }
            if !p.acks.is_empty() {
                let batches: Vec<AckBatch<'_>> = p
                    .acks
                    .iter()
                    .map(|(first, last, types)| AckBatch {
                        first: *first,
                        last: *last,
                        types,
                    })
                    .collect();
                match share.acknowledge(key, &self.member, &batches, now) {
                    Ok(r) => records.extend(r),
                    Err(AckError::InvalidRecordState) => {
                        o.ack_error_code = ResponseError::InvalidRecordState.code();
                    }
                    Err(AckError::InvalidRequest) => o.ack_error_code = ResponseError::InvalidRequest.code(),
                }
            }
            if p.release {
                records.extend(share.release_member(key, &self.member));
            }
        }
        share.stage(records)
    }

    async fn acquire_loop(
        &self,
        shard: &Rc<ShardContext>,
        share: &ShareState,
        keys: &[Key],
        out: &mut [SharePartOut],
        mut staged: Option<u64>,
    ) {
        let member: Rc<str> = Rc::from(self.member.as_str());
        let deadline = Instant::now() + Duration::from_millis(self.max_wait_ms);
        loop {
            let stop = shard.stop_event.listen();
            let data = DataListeners::of(shard, self.parts.iter().map(|p| (p.topic.as_str(), p.partition)));
            let released = share.released.listen();
            let mut left = self.max_records;
            for ((p, key), o) in self.parts.iter().zip(keys).zip(out.iter_mut()) {
                if !p.fetch || o.error_code != 0 || left == 0 {
                    continue;
                }
                left -= acquire_part(shard, share, key, &member, p, o, left).await;
            }
            if let Some(ticket) = staged.take() {
                // Nothing acquired to share it with: the acknowledgements go alone, before
                // any wait (their answer must not wait for the long poll).
                let _ = share.durable(Some(ticket)).await;
            }
            let now = Instant::now();
            if left < self.max_records || now >= deadline || shard.stopping.get() {
                return;
            }
            let woken = future::or(future::or(data, stop), released);
            share_wait::sleep_until(share, keys, now, deadline, woken).await;
        }
    }
}

pub(super) fn batches_of<T>(
    ack: impl Iterator<Item = T>,
    f: impl Fn(T) -> (i64, i64, Vec<i8>),
) -> Result<Vec<(i64, i64, Vec<i8>)>, ResponseError> {
    let v: Vec<_> = ack.take(ACK_BATCHES_MAX + 1).map(f).collect();
    if v.len() > ACK_BATCHES_MAX {
        return Err(ResponseError::InvalidRequest);
    }
    Ok(v)
}

/// What the connection shard sends out: parts by slot, with their topic id for the answer.
pub(super) struct Plan {
    slots: Vec<(Uuid, i32, SharePartOut)>,
    work: Vec<(usize, SharePart)>,
}

/// One partition a request names: its acknowledgements and byte limit.
pub(super) struct Named {
    pub(super) id: Uuid,
    pub(super) partition: i32,
    pub(super) acks: Vec<(i64, i64, Vec<i8>)>,
    pub(super) max_bytes: usize,
}

impl Plan {
    /// The partitions the request names, then the rest of the session (named in earlier
    /// requests: incremental fetch) with `session_bytes` each.
    pub(super) fn build(
        shard: &ShardContext,
        named: Vec<Named>,
        fetching: &[(Uuid, i32)],
        releasing: &[(Uuid, i32)],
        session_bytes: usize,
    ) -> Self {
        let mut plan = Self {
            slots: Vec::new(),
            work: Vec::new(),
        };
        let mut seen = std::collections::BTreeSet::new();
        let part = |partition, acks, max_bytes, k: &(Uuid, i32)| SharePart {
            index: 0,
            topic: String::new(),
            partition,
            acks,
            fetch: fetching.contains(k),
            release: releasing.contains(k),
            max_bytes,
        };
        for n in named {
            let k = (n.id, n.partition);
            seen.insert(k);
            plan.add(
                shard,
                n.id,
                n.partition,
                part(n.partition, n.acks, n.max_bytes, &k),
            );
        }
        for k in fetching.iter().chain(releasing) {
            if seen.insert(*k) {
                plan.add(shard, k.0, k.1, part(k.1, Vec::new(), session_bytes, k));
            }
        }
        plan
    }

    /// Adds a partition: routed to its owner, or answered here when unknown.
    fn add(&mut self, shard: &ShardContext, topic_id: Uuid, partition: i32, part: SharePart) {
        let catalog = shard.catalog();
        let meta = catalog.topic_by_id(topic_id);
        let index = self.slots.len();
        let mut out = SharePartOut {
            index,
            ..Default::default()
        };
        match (meta, owner_of(meta, partition, shard.count)) {
            (Some(meta), Some(owner)) => self.work.push((
                owner,
                SharePart {
                    index,
                    topic: meta.name.clone(),
                    ..part
                },
            )),
            _ => {
                out.error_code = ResponseError::UnknownTopicOrPartition.code();
                out.ack_error_code = out.error_code;
            }
        }
        self.slots.push((topic_id, partition, out));
    }

    /// Runs the parts on their owners: first without waiting. When nothing was acquired and
    /// the request may wait, a share-partition of the same topics on another shard that has
    /// records for the group ends the fetch at once (empty): in zero-hop mode that shard is
    /// another "broker" to the client, and librdkafka fetches from one broker at a time,
    /// moving on only once this one answers, so a long poll here would hold the member for
    /// MaxWaitMs while records wait there. Otherwise one owner long-polls on its own; several
    /// owners each wait without acquiring (`share_wait`) and are all asked again once one of
    /// them may have records, so that a cancelled wait never holds acquired records.
    pub(super) async fn run(
        mut self,
        shard: &Rc<ShardContext>,
        group: &str,
        member: &str,
        wait_ms: u64,
        max_records: usize,
    ) -> Vec<(Uuid, i32, SharePartOut)> {
        let work = split_by_owner(std::mem::take(&mut self.work), shard.count);
        let fetching = work.iter().any(|w| w.iter().any(|p| p.fetch));
        if wait_ms == 0 || !fetching {
            let answers = self.call(shard, group, member, work, wait_ms, max_records).await;
            self.gather(answers, false);
            return self.slots;
        }
        let deadline = Instant::now() + Duration::from_millis(wait_ms);
        let again: Vec<Vec<SharePart>> = work
            .iter()
            .map(|w| w.iter().filter(|p| p.fetch).map(SharePart::fetch_only).collect())
            .collect();
        let owners = again.iter().filter(|w| !w.is_empty()).count();
        let answers = self.call(shard, group, member, work, 0, max_records).await;
        self.gather(answers, false);
        if self.acquired_any() || share_wait::available_elsewhere(shard, group, &again).await {
            return self.slots;
        }
        loop {
            let now = Instant::now();
            if self.acquired_any() || now >= deadline || shard.stopping.get() {
                return self.slots;
            }
            let left = deadline - now;
            if owners == 1 {
                let wait = u64::try_from(left.as_millis()).unwrap_or(u64::MAX).max(1);
                let answers = self.call(shard, group, member, again, wait, max_records).await;
                self.gather(answers, true);
                return self.slots;
            }
            share_wait::wait_for_any(shard, group, &again, left).await;
            let answers = self
                .call(shard, group, member, again.clone(), 0, max_records)
                .await;
            self.gather(answers, true);
        }
    }

    fn acquired_any(&self) -> bool {
        self.slots.iter().any(|s| !s.2.acquired.is_empty())
    }

    async fn call(
        &self,
        shard: &Rc<ShardContext>,
        group: &str,
        member: &str,
        work: Vec<Vec<SharePart>>,
        wait_ms: u64,
        max_records: usize,
    ) -> Vec<(usize, Result<Vec<SharePartOut>, crate::shard::mesh::MeshError>)> {
        fan_out(shard, work, |parts| ShareTask {
            group: group.to_owned(),
            member: member.to_owned(),
            parts,
            max_wait_ms: wait_ms,
            max_records,
        })
        .await
    }

    /// Puts the owners' answers in their slots; a later pass (`again`) keeps the first
    /// pass's acknowledgement errors.
    fn gather(
        &mut self,
        answers: Vec<(usize, Result<Vec<SharePartOut>, crate::shard::mesh::MeshError>)>,
        again: bool,
    ) {
        for (owner, answer) in answers {
            match answer {
                Ok(parts) => parts.into_iter().for_each(|mut o| {
                    let slot = &mut self.slots[o.index].2;
                    if again {
                        o.ack_error_code = slot.ack_error_code;
                    }
                    *slot = o;
                }),
                Err(e) => tracing::warn!(owner, error = %e, "share forward failed"),
            }
        }
    }
}

pub(super) fn ids(
    req_group: Option<&str>,
    req_member: Option<&str>,
) -> Result<(String, String), ResponseError> {
    match (req_group, req_member) {
        (Some(g), Some(m)) if !g.is_empty() && !m.is_empty() => Ok((g.to_owned(), m.to_owned())),
        _ => Err(ResponseError::InvalidRequest),
    }
}

async fn member_known(shard: &Rc<ShardContext>, group: &str, member: &str) -> Result<(), ResponseError> {
    let ask = GroupCall::ShareMemberKnown {
        group_id: group.to_owned(),
        member_id: member.to_owned(),
    };
    match call(shard, group, ask).await {
        Ok(GroupAnswer::ShareMemberKnown(true)) => Ok(()),
        Ok(_) => Err(ResponseError::UnknownMemberId),
        Err(_) => Err(ResponseError::CoordinatorNotAvailable),
    }
}

fn lock_ms(shard: &ShardContext) -> i32 {
    shard.share().map_or(30_000, |s| {
        i32::try_from(s.config.limits.lock.as_millis()).unwrap_or(i32::MAX)
    })
}

fn fetch_error(code: ResponseError) -> ShareFetchResponse {
    ShareFetchResponse::default()
        .with_error_code(code.code())
        .with_error_message(Some(StrBytes::from_string(code.to_string())))
}

pub async fn share_fetch(shard: &Rc<ShardContext>, req: ShareFetchRequest) -> ShareFetchResponse {
    match share_fetch_inner(shard, req).await {
        Ok(r) => r.with_acquisition_lock_timeout_ms(lock_ms(shard)),
        Err(code) => fetch_error(code),
    }
}

async fn share_fetch_inner(
    shard: &Rc<ShardContext>,
    req: ShareFetchRequest,
) -> Result<ShareFetchResponse, ResponseError> {
    let (group, member) = ids(
        req.group_id.as_deref().map(|g| g.as_str()),
        req.member_id.as_deref(),
    )?;
    let epoch = req.share_session_epoch;
    let has_acks = req
        .topics
        .iter()
        .any(|t| t.partitions.iter().any(|p| !p.acknowledgement_batches.is_empty()));
    if epoch == 0 && has_acks {
        return Err(ResponseError::InvalidRequest);
    }
    if epoch == 0 {
        member_known(shard, &group, &member).await?;
    }
    let (requested, forget) = session_changes(&req);
    let releasing = if epoch == FINAL_EPOCH {
        shard.share_sessions.borrow().partitions(&group, &member)
    } else {
        Vec::new()
    };
    let fetching = shard
        .share_sessions
        .borrow_mut()
        .advance(&group, &member, epoch, &requested, &forget)?;
    let max_bytes = usize::try_from(req.max_bytes)
        .ok()
        .filter(|b| *b > 0)
        .map_or(limits::FETCH_BYTES_MAX, |b| b.min(limits::FETCH_BYTES_MAX));
    let mut named = Vec::new();
    for t in &req.topics {
        for p in &t.partitions {
            named.push(Named {
                id: t.topic_id,
                partition: p.partition_index,
                acks: batches_of(p.acknowledgement_batches.iter(), |b| {
                    (b.first_offset, b.last_offset, b.acknowledge_types.clone())
                })?,
                // v1 has no PartitionMaxBytes (KIP-1105): the request's MaxBytes bounds it.
                max_bytes: usize::try_from(p.partition_max_bytes)
                    .ok()
                    .filter(|b| *b > 0)
                    .unwrap_or(SESSION_PARTITION_BYTES)
                    .min(max_bytes),
            });
        }
    }
    let plan = Plan::build(
        shard,
        named,
        &fetching,
        &releasing,
        SESSION_PARTITION_BYTES.min(max_bytes),
    );
    let wait_ms = u64::try_from(req.max_wait_ms.clamp(0, limits::FETCH_WAIT_MS_MAX)).unwrap_or(0);
    let max_records = usize::try_from(req.max_records)
        .ok()
        .filter(|n| *n > 0)
        .unwrap_or(MAX_RECORDS_DEFAULT);
    let slots = plan.run(shard, &group, &member, wait_ms, max_records).await;
    Ok(ShareFetchResponse::default().with_responses(fetch_topics(slots, &requested)))
}

/// (topic id, partition)
type TopicPartition = (Uuid, i32);

/// The partitions a ShareFetch names, and those it forgets.
fn session_changes(req: &ShareFetchRequest) -> (Vec<TopicPartition>, Vec<TopicPartition>) {
    let requested: Vec<(Uuid, i32)> = req
        .topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(move |p| (t.topic_id, p.partition_index)))
        .collect();
    let forget: Vec<(Uuid, i32)> = req
        .forgotten_topics_data
        .iter()
        .flat_map(|t| t.partitions.iter().map(move |p| (t.topic_id, *p)))
        .collect();
    (requested, forget)
}

/// The response: every partition the request named, and the session's others that got records
/// or an error.
fn fetch_topics(
    slots: Vec<(Uuid, i32, SharePartOut)>,
    requested: &[(Uuid, i32)],
) -> Vec<ShareFetchableTopicResponse> {
    let mut topics: Vec<ShareFetchableTopicResponse> = Vec::new();
    for (id, partition, o) in slots {
        let named = requested.contains(&(id, partition));
        if !named && o.acquired.is_empty() && o.error_code == 0 {
            continue;
        }
        let records = concat(o.batches);
        let data = PartitionData::default()
            .with_partition_index(partition)
            .with_error_code(o.error_code)
            .with_acknowledge_error_code(o.ack_error_code)
            .with_current_leader(
                LeaderIdAndEpoch::default()
                    .with_leader_id(-1)
                    .with_leader_epoch(-1),
            )
            .with_records(Some(records))
            .with_acquired_records(
                o.acquired
                    .iter()
                    .map(|(first, last, count)| {
                        AcquiredRecords::default()
                            .with_first_offset(*first)
                            .with_last_offset(*last)
                            .with_delivery_count(i16::try_from(*count).unwrap_or(i16::MAX))
                    })
                    .collect(),
            );
        match topics.iter_mut().find(|t| t.topic_id == id) {
            Some(t) => t.partitions.push(data),
            None => topics.push(
                ShareFetchableTopicResponse::default()
                    .with_topic_id(id)
                    .with_partitions(vec![data]),
            ),
        }
    }
    topics
}

fn concat(batches: Vec<Bytes>) -> Bytes {
    match batches.len() {
        0 => Bytes::new(),
        1 => batches.into_iter().next().expect("one"),
        _ => {
            let mut all = BytesMut::with_capacity(batches.iter().map(Bytes::len).sum());
            batches.iter().for_each(|b| all.extend_from_slice(b));
            all.freeze()
        }
    }
}
