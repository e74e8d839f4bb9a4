//! `weir topic backlog TOPIC` and the BACKLOG-BYTES column of `weir group describe`: each
//! partition's backlog (docs/peak-shaving.md) from plain Kafka requests: ListOffsets (log
//! start and end), ListGroups + OffsetFetch (the slowest consumer group), DescribeLogDirs (the
//! partition's size) and DescribeConfigs (the bound and policy). Bytes are estimated as the
//! log's size times the share of its records in the backlog (`estimate_bytes`): exact for
//! records of one size, and marked `~`. The broker itself measures from its offset index
//! (within one index interval). Share groups count towards the broker's floor but are not
//! shown here.

use std::collections::BTreeMap;
use std::io::Write;

use kafka_protocol::messages::describe_log_dirs_request::DescribableLogDirTopic;
use kafka_protocol::messages::{DescribeLogDirsRequest, TopicName};
use weir_client::blocking::Client;
use weir_client::requests::{EARLIEST, LATEST};

use crate::admin::{broker, print_table, topic_partitions, CliError};

/// One partition's extent: (log start, log end, size in bytes).
pub type Extent = (i64, i64, i64);

/// Log start, log end and size of each partition of `topic`.
pub fn extents(
    client: &mut Client,
    topic: &str,
    partitions: &[i32],
) -> Result<BTreeMap<i32, Extent>, CliError> {
    let sizes = sizes(client, topic, partitions)?;
    let mut out = BTreeMap::new();
    for &p in partitions {
        let start = client.list_offset(topic, p, EARLIEST).map_or(-1, |(o, _)| o);
        let end = client.list_offset(topic, p, LATEST).map_or(-1, |(o, _)| o);
        out.insert(p, (start, end, sizes.get(&p).copied().unwrap_or(-1)));
    }
    Ok(out)
}

fn sizes(client: &mut Client, topic: &str, partitions: &[i32]) -> Result<BTreeMap<i32, i64>, CliError> {
    let request = DescribeLogDirsRequest::default()
        .with_topics(Some(vec![DescribableLogDirTopic::default()
            .with_topic(TopicName(topic.to_string().into()))
            .with_partitions(partitions.to_vec())]));
    let r = client.call(request).map_err(broker("describing log dirs"))?;
    Ok(r.results
        .iter()
        .flat_map(|d| &d.topics)
        .filter(|t| t.name.as_str() == topic)
        .flat_map(|t| &t.partitions)
        .map(|p| (p.partition_index, p.partition_size))
        .collect())
}

/// Bytes from offset `from` to the end: the size times the share of records after `from`.
pub fn estimate_bytes((start, end, size): Extent, from: i64) -> Option<u64> {
    if size < 0 || end < 0 {
        return None;
    }
    let from = from.clamp(start.max(0), end);
    let records = end - start.max(0);
    if records <= 0 {
        return Some(0);
    }
    Some((size as f64 * (end - from) as f64 / records as f64).round() as u64)
}

/// `~N` for an estimate, `-` when unknown.
pub fn show_estimate(bytes: Option<u64>) -> String {
    bytes.map_or_else(|| "-".to_string(), |b| format!("~{b}"))
}

/// `weir topic backlog TOPIC`.
pub fn topic_backlog(client: &mut Client, topic: &str, out: &mut impl Write) -> Result<(), CliError> {
    let Some(partitions) = topic_partitions(client, topic)? else {
        return Err(CliError::UnknownTopic(topic.to_string()));
    };
    let configs = client
        .topic_configs(topic)
        .map_err(broker("describing the topic's configs"))?;
    let config = |name: &str| {
        configs
            .iter()
            .find(|(k, _)| k == name)
            .map_or_else(|| "-".to_string(), |(_, v)| v.clone())
    };
    let (bytes_max, records_max, policy) = (
        config("backlog.bytes.max"),
        config("backlog.records.max"),
        config("backlog.policy"),
    );
    let slowest = slowest_groups(client, topic)?;
    let extents = extents(client, topic, &partitions)?;
    writeln!(
        out,
        "topic {topic}: backlog.bytes.max {bytes_max}, backlog.records.max {records_max}, backlog.policy {policy}\n"
    )?;
    let rows: Vec<Vec<String>> = partitions
        .iter()
        .map(|p| {
            let extent = extents[p];
            let (start, end, _) = extent;
            let (group, offset) = slowest
                .get(p)
                .map_or(("-".to_string(), None), |(g, o)| (g.clone(), Some(*o)));
            // No group yet: the whole log is backlog, as the broker counts it.
            let from = offset.unwrap_or(start).clamp(start, end);
            vec![
                p.to_string(),
                start.to_string(),
                end.to_string(),
                group,
                offset.map_or_else(|| "-".to_string(), |o| o.to_string()),
                (end - from).max(0).to_string(),
                show_estimate(estimate_bytes(extent, from)),
            ]
        })
        .collect();
    print_table(
        out,
        &[
            "PARTITION",
            "LOG-START",
            "LOG-END",
            "SLOWEST-GROUP",
            "GROUP-OFFSET",
            "BACKLOG-RECORDS",
            "BACKLOG-BYTES",
        ],
        &rows,
    )?;
    Ok(())
}

/// Per partition of `topic`: the group with the lowest committed offset, and that offset.
fn slowest_groups(client: &mut Client, topic: &str) -> Result<BTreeMap<i32, (String, i64)>, CliError> {
    let groups = client.list_groups().map_err(broker("listing groups"))?;
    let mut slowest: BTreeMap<i32, (String, i64)> = BTreeMap::new();
    for g in groups {
        let committed = client
            .fetch_offsets(&g.group_id, None)
            .map_err(broker("fetching committed offsets"))?;
        for (t, p, offset) in committed {
            if t != topic || offset < 0 {
                continue;
            }
            let lower = slowest.get(&p).is_none_or(|(_, o)| offset < *o);
            if lower {
                slowest.insert(p, (g.group_id.clone(), offset));
            }
        }
    }
    Ok(slowest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_even_records_the_estimate_should_be_the_share_of_the_size() {
        assert_eq!(estimate_bytes((0, 100, 10_000), 25), Some(7_500));
        assert_eq!(
            estimate_bytes((50, 100, 5_000), 0),
            Some(5_000),
            "below the start: all"
        );
        assert_eq!(estimate_bytes((0, 100, 10_000), 100), Some(0));
        assert_eq!(estimate_bytes((0, 0, 0), 0), Some(0));
        assert_eq!(estimate_bytes((0, 100, -1), 0), None);
    }
}
