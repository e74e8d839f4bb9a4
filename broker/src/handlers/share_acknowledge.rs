//! ShareAcknowledge: a member's acknowledgements sent apart from a ShareFetch (and,
//! at the final session epoch, the release of everything its session still holds).
//! Runs on the connection's shard and settles each share-partition on its owner
//! through the same plan as ShareFetch (`share_fetch::Plan`), acquiring nothing; the
//! answer carries one error code per partition (the acknowledgement's own, else the
//! partition's).

use std::rc::Rc;

use kafka_protocol::messages::share_acknowledge_response as ack_resp;
use kafka_protocol::messages::{ShareAcknowledgeRequest, ShareAcknowledgeResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use uuid::Uuid;

use super::share_fetch::{batches_of, ids, Named, Plan};
use super::ShardContext;
use crate::share::session::FINAL_EPOCH;

pub async fn share_acknowledge(
    shard: &Rc<ShardContext>,
    req: ShareAcknowledgeRequest,
) -> ShareAcknowledgeResponse {
    match share_acknowledge_inner(shard, req).await {
        Ok(r) => r,
        Err(code) => ShareAcknowledgeResponse::default()
            .with_error_code(code.code())
            .with_error_message(Some(StrBytes::from_string(code.to_string()))),
    }
}

async fn share_acknowledge_inner(
    shard: &Rc<ShardContext>,
    req: ShareAcknowledgeRequest,
) -> Result<ShareAcknowledgeResponse, ResponseError> {
    let (group, member) = ids(
        req.group_id.as_deref().map(|g| g.as_str()),
        req.member_id.as_deref(),
    )?;
    let epoch = req.share_session_epoch;
    let releasing = if epoch == FINAL_EPOCH {
        shard.share_sessions.borrow().partitions(&group, &member)
    } else {
        Vec::new()
    };
    shard
        .share_sessions
        .borrow_mut()
        .acknowledge(&group, &member, epoch)?;
    let mut named = Vec::new();
    for t in &req.topics {
        for p in &t.partitions {
            named.push(Named {
                id: t.topic_id,
                partition: p.partition_index,
                acks: batches_of(p.acknowledgement_batches.iter(), |b| {
                    (b.first_offset, b.last_offset, b.acknowledge_types.clone())
                })?,
                max_bytes: 0,
            });
        }
    }
    let seen: std::collections::BTreeSet<(Uuid, i32)> = named.iter().map(|n| (n.id, n.partition)).collect();
    let plan = Plan::build(shard, named, &[], &releasing, 0);
    let slots = plan.run(shard, &group, &member, 0, 0).await;
    let mut topics: Vec<ack_resp::ShareAcknowledgeTopicResponse> = Vec::new();
    for (id, partition, o) in slots.into_iter().filter(|(id, p, _)| seen.contains(&(*id, *p))) {
        let data = ack_resp::PartitionData::default()
            .with_partition_index(partition)
            .with_error_code(if o.ack_error_code != 0 {
                o.ack_error_code
            } else {
                o.error_code
            })
            .with_current_leader(
                ack_resp::LeaderIdAndEpoch::default()
                    .with_leader_id(-1)
                    .with_leader_epoch(-1),
            );
        match topics.iter_mut().find(|t| t.topic_id == id) {
            Some(t) => t.partitions.push(data),
            None => topics.push(
                ack_resp::ShareAcknowledgeTopicResponse::default()
                    .with_topic_id(id)
                    .with_partitions(vec![data]),
            ),
        }
    }
    Ok(ShareAcknowledgeResponse::default().with_responses(topics))
}
