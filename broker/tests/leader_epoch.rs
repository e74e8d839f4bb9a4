//! OffsetForLeaderEpoch (issue 12): clients call it after a leader change and to validate
//! a position. Each partition has had one leader, at epoch 0: epoch 0 ends at the log end
//! offset; a later epoch is undefined; a current epoch other than 0 is fenced or unknown;
//! an unknown partition says so. librdkafka's consumer also validates through it.

mod common;

use common::{batch, Broker};
use kafka_protocol::messages::offset_for_leader_epoch_request::{
    OffsetForLeaderPartition, OffsetForLeaderTopic,
};
use kafka_protocol::messages::{OffsetForLeaderEpochRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use weir_protocol::record_batch::Compression;

fn ask(topic: &str, parts: &[(i32, i32, i32)]) -> OffsetForLeaderEpochRequest {
    let partitions = parts
        .iter()
        .map(|&(partition, current, epoch)| {
            OffsetForLeaderPartition::default()
                .with_partition(partition)
                .with_current_leader_epoch(current)
                .with_leader_epoch(epoch)
        })
        .collect();
    OffsetForLeaderEpochRequest::default().with_topics(vec![OffsetForLeaderTopic::default()
        .with_topic(TopicName(StrBytes::from_string(topic.to_string())))
        .with_partitions(partitions)])
}

#[test]
fn given_one_leader_epoch_when_asked_for_epoch_ends_should_answer_as_kafkas_leader() {
    let broker = Broker::start(&["--shards", "2"]);
    let mut c = broker.client();
    c.create_topic("epochs", 2, &[]).unwrap();
    c.produce("epochs", 0, batch(0, 5, Compression::None), -1)
        .unwrap();
    c.produce("epochs", 1, batch(0, 2, Compression::None), -1)
        .unwrap();
    for version in [2, 3, 4] {
        let request = ask(
            "epochs",
            &[(0, 0, 0), (1, -1, 0), (0, 0, 7), (0, 3, 0), (0, -2, 0), (9, 0, 0)],
        );
        let r = c.call_at(version, request).unwrap();
        let got: Vec<(i32, i16, i32, i64)> = r.topics[0]
            .partitions
            .iter()
            .map(|p| (p.partition, p.error_code, p.leader_epoch, p.end_offset))
            .collect();
        assert_eq!(
            got,
            vec![
                (0, 0, 0, 5),
                (1, 0, 0, 2),
                (0, 0, -1, -1),
                (0, 75, -1, -1),
                (0, 74, -1, -1),
                (9, 3, -1, -1),
            ],
            "v{version}: end of epoch 0; later epoch undefined; UNKNOWN_LEADER_EPOCH; FENCED_LEADER_EPOCH; unknown partition"
        );
    }
}
