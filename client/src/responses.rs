//! Checked reads of decoded responses: find the partition or group a request
//! asked about by its key, never by position, and turn its absence into
//! `ProtocolError::Missing` instead of a panic. Error codes stay with the
//! caller, which knows which ones it tolerates.
//!
//! Pure; any thread.

use kafka_protocol::messages::describe_groups_response::DescribedGroup;
use kafka_protocol::messages::fetch_response::PartitionData;
use kafka_protocol::messages::list_offsets_response::ListOffsetsPartitionResponse;
use kafka_protocol::messages::metadata_response::MetadataResponseTopic;
use kafka_protocol::messages::produce_response::PartitionProduceResponse;
use kafka_protocol::messages::{
    ApiKey, CreateTopicsResponse, DescribeGroupsResponse, FetchResponse, ListOffsetsResponse,
    MetadataResponse, ProduceResponse,
};

use crate::error::ProtocolError;
use crate::requests::already_exists;

fn missing(api: ApiKey, what: impl Into<String>) -> ProtocolError {
    ProtocolError::Missing {
        api,
        what: what.into(),
    }
}

/// The answer for `partition` in a one-topic Produce.
pub fn produce_partition(
    r: &ProduceResponse,
    partition: i32,
) -> Result<&PartitionProduceResponse, ProtocolError> {
    r.responses
        .iter()
        .flat_map(|t| &t.partition_responses)
        .find(|p| p.index == partition)
        .ok_or_else(|| missing(ApiKey::Produce, format!("partition {partition}")))
}

/// The answer for `partition` in a one-topic Fetch (the top-level error code
/// is the caller's to check first).
pub fn fetch_partition(r: &FetchResponse, partition: i32) -> Result<&PartitionData, ProtocolError> {
    r.responses
        .iter()
        .flat_map(|t| &t.partitions)
        .find(|p| p.partition_index == partition)
        .ok_or_else(|| missing(ApiKey::Fetch, format!("partition {partition}")))
}

/// The answer for `partition` in a one-topic ListOffsets.
pub fn list_offsets_partition(
    r: &ListOffsetsResponse,
    partition: i32,
) -> Result<&ListOffsetsPartitionResponse, ProtocolError> {
    r.topics
        .iter()
        .flat_map(|t| &t.partitions)
        .find(|p| p.partition_index == partition)
        .ok_or_else(|| missing(ApiKey::ListOffsets, format!("partition {partition}")))
}

/// The topic named `name` in a Metadata answer, if listed (whatever its error code).
pub fn metadata_topic<'a>(r: &'a MetadataResponse, name: &str) -> Option<&'a MetadataResponseTopic> {
    r.topics
        .iter()
        .find(|t| t.name.as_ref().is_some_and(|n| n.0.as_str() == name))
}

/// The one group a one-group DescribeGroups asked about.
pub fn described_group(r: DescribeGroupsResponse) -> Result<DescribedGroup, ProtocolError> {
    r.groups
        .into_iter()
        .next()
        .ok_or_else(|| missing(ApiKey::DescribeGroups, "the group"))
}

/// Every topic of a CreateTopics answer created (or, with `allow_existing`,
/// already there); otherwise the first error with the broker's message.
pub fn topics_created(r: &CreateTopicsResponse, allow_existing: bool) -> Result<(), ProtocolError> {
    for t in &r.topics {
        if t.error_code == 0 || (allow_existing && already_exists(t.error_code)) {
            continue;
        }
        let message = t.error_message.as_ref().map_or("", |m| m.as_str());
        let detail = format!(" for topic '{}': {message}", t.name.0.as_str());
        return Err(ProtocolError::broker(ApiKey::CreateTopics, t.error_code, detail));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{correlation_id, decode_body, response_body, response_size, RESPONSE_BYTES_MAX};
    use bytes::Bytes;
    use kafka_protocol::protocol::Decodable;

    /// Real answers (size prefix included) captured from a broker.
    const PRODUCE_V10: &[u8] = include_bytes!("../fixtures/005-Produce-v10.resp");
    const FETCH_V16: &[u8] = include_bytes!("../fixtures/008-Fetch-v16.resp");
    const LIST_OFFSETS_V7: &[u8] = include_bytes!("../fixtures/005-ListOffsets-v7.resp");
    const METADATA_V12: &[u8] = include_bytes!("../fixtures/002-Metadata-v12.resp");
    const API_VERSIONS_V3: &[u8] = include_bytes!("../fixtures/001-ApiVersions-v3.resp");

    const FIXTURES: [(&[u8], ApiKey, i16); 5] = [
        (PRODUCE_V10, ApiKey::Produce, 10),
        (FETCH_V16, ApiKey::Fetch, 16),
        (LIST_OFFSETS_V7, ApiKey::ListOffsets, 7),
        (METADATA_V12, ApiKey::Metadata, 12),
        (API_VERSIONS_V3, ApiKey::ApiVersions, 3),
    ];

    /// Size check, correlation check, header strip, body decode: what a
    /// transport does with a frame it read.
    fn decode<T: Decodable>(frame: &[u8], api: ApiKey, version: i16) -> Result<T, ProtocolError> {
        let prefix: [u8; 4] =
            frame
                .get(..4)
                .and_then(|p| p.try_into().ok())
                .ok_or(ProtocolError::FrameSize {
                    size_bytes: frame.len() as i64,
                    limit_bytes: 4,
                })?;
        let size = response_size(prefix, RESPONSE_BYTES_MAX)?;
        let rest = Bytes::copy_from_slice(&frame[4..]);
        if rest.len() < size {
            return Err(missing(api, "bytes: the frame is truncated"));
        }
        let corr = correlation_id(&rest).unwrap_or(-1);
        decode_body(response_body(rest, corr, api, version)?, api, version)
    }

    #[test]
    fn given_real_answers_when_decoded_should_find_their_partitions() {
        let produce: ProduceResponse = decode(PRODUCE_V10, ApiKey::Produce, 10).unwrap();
        let p = produce.responses[0].partition_responses[0].index;
        assert_eq!(produce_partition(&produce, p).unwrap().error_code, 0);
        assert!(produce_partition(&produce, p + 1).is_err());
        let fetch: FetchResponse = decode(FETCH_V16, ApiKey::Fetch, 16).unwrap();
        assert!(fetch_partition(&fetch, 0).unwrap().records.is_some());
        assert!(fetch_partition(&fetch, 99).is_err());
        let offsets: ListOffsetsResponse = decode(LIST_OFFSETS_V7, ApiKey::ListOffsets, 7).unwrap();
        assert!(list_offsets_partition(&offsets, 0).is_ok());
        let metadata: MetadataResponse = decode(METADATA_V12, ApiKey::Metadata, 12).unwrap();
        let name = metadata.topics[0].name.clone().unwrap();
        assert!(metadata_topic(&metadata, name.0.as_str()).is_some());
        assert!(metadata_topic(&metadata, "no-such-topic").is_none());
    }

    fn decode_any(frame: &[u8], api: ApiKey, version: i16) -> Result<(), ProtocolError> {
        match api {
            ApiKey::Produce => decode::<ProduceResponse>(frame, api, version).map(drop),
            ApiKey::Fetch => decode::<FetchResponse>(frame, api, version).map(drop),
            ApiKey::ListOffsets => decode::<ListOffsetsResponse>(frame, api, version).map(drop),
            ApiKey::Metadata => decode::<MetadataResponse>(frame, api, version).map(drop),
            _ => decode::<kafka_protocol::messages::ApiVersionsResponse>(frame, api, version).map(drop),
        }
    }

    #[test]
    fn given_truncated_real_answers_when_decoded_should_fail_without_panicking() {
        for (frame, api, version) in FIXTURES {
            assert!(decode_any(frame, api, version).is_ok(), "{api:?} whole");
            for len in 0..frame.len() {
                assert!(
                    decode_any(&frame[..len], api, version).is_err(),
                    "{api:?} cut at {len}"
                );
                // The prefix rewritten to match the cut: a short body, not a short read.
                let mut short = frame[..len.max(4)].to_vec();
                short[..4].copy_from_slice(&((len.max(4) - 4) as i32).to_be_bytes());
                if len < frame.len() && len > 4 {
                    assert!(
                        decode_any(&short, api, version).is_err(),
                        "{api:?} body cut at {len}"
                    );
                }
            }
        }
    }

    #[test]
    fn given_empty_answers_when_read_should_report_what_is_missing() {
        let e = produce_partition(&ProduceResponse::default(), 0).unwrap_err();
        assert!(e.to_string().contains("partition 0"), "{e}");
        assert!(fetch_partition(&FetchResponse::default(), 0).is_err());
        assert!(list_offsets_partition(&ListOffsetsResponse::default(), 0).is_err());
        assert!(described_group(DescribeGroupsResponse::default()).is_err());
    }
}
