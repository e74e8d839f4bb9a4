//! ListOffsets by timestamp answers a record, not a batch (issue 12): with ten records
//! in one batch, a time between the 5th and 6th record's answers the 6th, as Kafka does;
//! and a batch whose header says max timestamp -1 (old sarama writes that) is indexed by
//! its records' real maximum, so a time lookup finds it, also after a restart (the
//! indexes are rebuilt by recovery).

mod common;

use bytes::{BufMut, BytesMut};
use common::Broker;
use weir_protocol::builder::BatchBuilder;
use weir_protocol::record_batch::Compression;

/// Ten records at `first_ms`, +10, ..., +90; with `hide_max` the header's max timestamp
/// is -1 and the CRC recomputed, as an old client would send it.
fn batch(first_ms: i64, hide_max: bool) -> bytes::Bytes {
    let mut b = BatchBuilder::new(Compression::None);
    for i in 0..10 {
        b.push(first_ms + 10 * i, None, Some(format!("v{i}").as_bytes()), &[]);
    }
    let mut out = BytesMut::new();
    b.finish_into(&mut out).unwrap();
    if hide_max {
        // RecordBatch v2: max_timestamp at byte 35, CRC at 17 covering 21.. (attributes on).
        out[35..43].copy_from_slice(&(-1i64).to_be_bytes());
        let crc = crc32c::crc32c(&out[21..]);
        let mut at = &mut out[17..21];
        at.put_u32(crc);
    }
    out.freeze()
}

#[test]
fn given_ten_records_in_one_batch_when_looking_up_a_time_between_two_should_answer_the_later_record() {
    let mut broker = Broker::start(&["--shards", "2"]);
    let mut c = broker.client();
    c.create_topic("times", 1, &[]).unwrap();
    assert_eq!(c.produce("times", 0, batch(1_000, false), -1).unwrap(), 0);
    assert_eq!(c.produce("times", 0, batch(2_000, true), -1).unwrap(), 10);
    let lookups = [
        (1_045, (5, 1_050)),
        (1_000, (0, 1_000)),
        (1_091, (10, 2_000)),
        (2_001, (11, 2_010)),
        (2_090, (19, 2_090)),
    ];
    for (ts, want) in lookups {
        assert_eq!(c.list_offset("times", 0, ts).unwrap(), want, "time {ts}");
    }
    assert_eq!(
        c.list_offset("times", 0, 2_091).unwrap(),
        (-1, -1),
        "past the last record"
    );
    broker.kill();
    broker.start_again();
    let mut c = broker.client();
    for (ts, want) in lookups {
        assert_eq!(
            c.list_offset("times", 0, ts).unwrap(),
            want,
            "time {ts} after a restart"
        );
    }
}
