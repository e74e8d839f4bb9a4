//! `weir group ...` and `weir topic ...`: admin commands that talk to a running broker over
//! the Kafka protocol with `weir_client::blocking`, and print human-readable tables.
//! Runs on the `weir` process's main thread (blocking sockets), never on a shard. Refuses to
//! reset the offsets of a group that has members; every error becomes a non-zero exit with a
//! message (`main`).

use std::collections::BTreeMap;
use std::io::Write;
use std::time::Duration;

use weir_client::blocking::{Client, ClientError, CommittedOffset, GroupDescription};
use weir_client::requests::{EARLIEST, LATEST};

use crate::args::{Bootstrap, GroupArgs, GroupCommand, TopicArgs, TopicCommand};

/// How long an admin command waits to connect: a broker that does not answer in 5 s is
/// reported unreachable rather than leaving an operator staring at a silent terminal.
const CONNECT_TIMEOUT_MS: u64 = 5_000;

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("cannot reach the broker at {addr}: {source}")]
    Unreachable {
        addr: String,
        #[source]
        source: ClientError,
    },
    #[error("{context}: {source}")]
    Broker {
        context: String,
        #[source]
        source: ClientError,
    },
    #[error("group {0:?} not found")]
    UnknownGroup(String),
    #[error("group {0:?} has members: stop its consumers before deleting it")]
    GroupInUse(String),
    #[error("topic {0:?} not found")]
    UnknownTopic(String),
    #[error(
        "group {group:?} is {state} with {members} member(s): offsets can only be reset while it is \
         Empty; stop its consumers first"
    )]
    GroupNotEmpty {
        group: String,
        state: String,
        members: usize,
    },
    #[error("invalid argument: {0}")]
    Usage(String),
    #[error("writing the output failed: {0}")]
    Output(#[from] std::io::Error),
}

/// Where a reset moves each partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResetTo {
    Earliest,
    Latest,
    Timestamp(i64),
    Offset(i64),
}

impl std::str::FromStr for ResetTo {
    type Err = CliError;
    fn from_str(s: &str) -> Result<Self, CliError> {
        let bad = || {
            CliError::Usage(format!(
                "--to {s:?}: expected earliest, latest, timestamp:<ms> or offset:<n>"
            ))
        };
        match s {
            "earliest" => Ok(Self::Earliest),
            "latest" => Ok(Self::Latest),
            _ => match s.split_once(':') {
                Some(("timestamp", v)) => v.parse().map(Self::Timestamp).map_err(|_| bad()),
                Some(("offset", v)) => match v.parse::<i64>() {
                    Ok(n) if n >= 0 => Ok(Self::Offset(n)),
                    _ => Err(bad()),
                },
                _ => Err(bad()),
            },
        }
    }
}

/// Connect, and authenticate when `--sasl-user` is given.
pub fn connect(bootstrap: &Bootstrap) -> Result<Client, CliError> {
    let mut client = Client::connect(
        bootstrap.bootstrap.as_str(),
        Duration::from_millis(CONNECT_TIMEOUT_MS),
    )
    .map_err(|source| CliError::Unreachable {
        addr: bootstrap.bootstrap.clone(),
        source,
    })?;
    if let Some(user) = &bootstrap.sasl_user {
        let password = bootstrap.sasl_password.as_deref().unwrap_or_default();
        client
            .sasl_authenticate(&bootstrap.sasl_mechanism, user, password)
            .map_err(broker(format!("authenticating as {user}")))?;
    }
    Ok(client)
}

pub fn broker(context: impl Into<String>) -> impl FnOnce(ClientError) -> CliError {
    let context = context.into();
    move |source| CliError::Broker { context, source }
}

pub fn run_group(args: GroupArgs, out: &mut impl Write) -> Result<(), CliError> {
    let mut client = connect(&args.bootstrap)?;
    match args.command {
        GroupCommand::List => group_list(&mut client, out),
        GroupCommand::Describe { group } => group_describe(&mut client, &group, out),
        GroupCommand::Delete { group } => crate::group_delete::run(&mut client, &group, out),
        GroupCommand::ResetOffsets { group, topic, to } => {
            let to: ResetTo = to.parse()?;
            group_reset(&mut client, &group, &topic, to, out)
        }
    }
}

pub fn run_topic(args: TopicArgs, out: &mut impl Write) -> Result<(), CliError> {
    let mut client = connect(&args.bootstrap)?;
    match args.command {
        TopicCommand::List => topic_list(&mut client, out),
        TopicCommand::Create {
            name,
            partitions,
            configs,
        } => topic_create(&mut client, &name, partitions, &configs, out),
        TopicCommand::Describe { name } => topic_describe(&mut client, &name, out),
        TopicCommand::Backlog { name } => crate::backlog::topic_backlog(&mut client, &name, out),
        TopicCommand::Delete { name } => {
            client
                .delete_topic(&name)
                .map_err(|e| unknown_topic_or(e, &name, "deleting the topic"))?;
            writeln!(out, "deleted topic {name}")?;
            Ok(())
        }
        other => crate::topic_changes::run(&mut client, other, out),
    }
}

/// Prints rows as columns padded to their widest cell (the last column is not padded).
pub fn print_table(out: &mut impl Write, header: &[&str], rows: &[Vec<String>]) -> std::io::Result<()> {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let line = |cells: Vec<&str>| -> String {
        let last = cells.len().saturating_sub(1);
        let mut s = String::new();
        for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
            if i == last {
                s.push_str(cell);
            } else {
                s.push_str(&format!("{cell:<w$}  "));
            }
        }
        s
    };
    writeln!(out, "{}", line(header.to_vec()))?;
    for row in rows {
        writeln!(out, "{}", line(row.iter().map(String::as_str).collect()))?;
    }
    Ok(())
}

fn group_list(client: &mut Client, out: &mut impl Write) -> Result<(), CliError> {
    let groups = client.list_groups().map_err(broker("listing groups"))?;
    let rows: Vec<Vec<String>> = groups
        .into_iter()
        .map(|g| vec![g.group_id, g.state, g.protocol_type])
        .collect();
    print_table(out, &["GROUP", "STATE", "PROTOCOL-TYPE"], &rows)?;
    Ok(())
}

/// One row of `group describe`'s offsets table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionLag {
    pub topic: String,
    pub partition: i32,
    /// None: the group never committed this partition.
    pub committed: Option<i64>,
    pub log_end: i64,
    pub member: Option<String>,
}

impl PartitionLag {
    pub fn lag(&self) -> Option<i64> {
        self.committed.map(|c| (self.log_end - c).max(0))
    }
}

fn group_describe(client: &mut Client, group: &str, out: &mut impl Write) -> Result<(), CliError> {
    let d = client
        .describe_group(group)
        .map_err(broker("describing the group"))?;
    let committed = client
        .fetch_offsets(group, None)
        .map_err(broker("fetching committed offsets"))?;
    if d.state == "Dead" && committed.is_empty() {
        return Err(CliError::UnknownGroup(group.to_string()));
    }
    let lags = partition_lags(client, &d, &committed)?;
    let backlog = group_backlog_bytes(client, &lags)?;
    writeln!(
        out,
        "group {group}: state {}, protocol {}, {} member(s)\n",
        d.state,
        if d.protocol.is_empty() { "-" } else { &d.protocol },
        d.members.len()
    )?;
    let dash = || "-".to_string();
    let rows: Vec<Vec<String>> = lags
        .iter()
        .zip(backlog)
        .map(|(l, bytes)| {
            vec![
                l.topic.clone(),
                l.partition.to_string(),
                l.committed.map_or_else(dash, |c| c.to_string()),
                l.log_end.to_string(),
                l.lag().map_or_else(dash, |c| c.to_string()),
                crate::backlog::show_estimate(bytes),
                l.member.clone().unwrap_or_else(dash),
            ]
        })
        .collect();
    print_table(
        out,
        &[
            "TOPIC",
            "PARTITION",
            "CURRENT-OFFSET",
            "LOG-END-OFFSET",
            "LAG",
            "BACKLOG-BYTES",
            "MEMBER-ID",
        ],
        &rows,
    )?;
    if !d.members.is_empty() {
        writeln!(out)?;
        let rows: Vec<Vec<String>> = d
            .members
            .iter()
            .map(|m| {
                vec![
                    m.member_id.clone(),
                    m.client_id.clone(),
                    m.client_host.clone(),
                    format_assignment(&m.assignment),
                ]
            })
            .collect();
        print_table(out, &["MEMBER-ID", "CLIENT-ID", "HOST", "ASSIGNMENT"], &rows)?;
    }
    Ok(())
}

fn format_assignment(assignment: &[(String, Vec<i32>)]) -> String {
    if assignment.is_empty() {
        return "-".to_string();
    }
    let parts: Vec<String> = assignment
        .iter()
        .map(|(t, ps)| {
            let ps: Vec<String> = ps.iter().map(ToString::to_string).collect();
            format!("{t}:{}", ps.join(","))
        })
        .collect();
    parts.join(" ")
}

/// Every partition of every topic the group committed or is assigned, with its lag.
fn partition_lags(
    client: &mut Client,
    d: &GroupDescription,
    committed: &[CommittedOffset],
) -> Result<Vec<PartitionLag>, CliError> {
    let mut owner: BTreeMap<(String, i32), String> = BTreeMap::new();
    for m in &d.members {
        for (t, ps) in &m.assignment {
            for p in ps {
                owner.insert((t.clone(), *p), m.member_id.clone());
            }
        }
    }
    let mut topics: Vec<String> = committed.iter().map(|c| c.0.clone()).collect();
    topics.extend(owner.keys().map(|k| k.0.clone()));
    topics.sort();
    topics.dedup();
    let mut out = Vec::new();
    for topic in topics {
        // A deleted topic still listed in old commits shows only its committed partitions.
        let partitions = topic_partitions(client, &topic)?
            .unwrap_or_else(|| committed.iter().filter(|c| c.0 == topic).map(|c| c.1).collect());
        for partition in partitions {
            let log_end = client
                .list_offset(&topic, partition, LATEST)
                .map_or(-1, |(o, _)| o);
            let committed = committed
                .iter()
                .find(|c| c.0 == topic && c.1 == partition && c.2 >= 0)
                .map(|c| c.2);
            let member = owner.get(&(topic.clone(), partition)).cloned();
            out.push(PartitionLag {
                topic: topic.clone(),
                partition,
                committed,
                log_end,
                member,
            });
        }
    }
    Ok(out)
}

/// Per row, the bytes between the group's committed offset and the log end
/// (estimated: backlog.rs); `None` where the group has not committed.
fn group_backlog_bytes(client: &mut Client, lags: &[PartitionLag]) -> Result<Vec<Option<u64>>, CliError> {
    let mut extents: BTreeMap<String, BTreeMap<i32, crate::backlog::Extent>> = BTreeMap::new();
    for l in lags {
        if !extents.contains_key(&l.topic) {
            let partitions: Vec<i32> = lags
                .iter()
                .filter(|x| x.topic == l.topic)
                .map(|x| x.partition)
                .collect();
            let e = crate::backlog::extents(client, &l.topic, &partitions)?;
            extents.insert(l.topic.clone(), e);
        }
    }
    Ok(lags
        .iter()
        .map(|l| {
            let extent = extents.get(&l.topic)?.get(&l.partition)?;
            crate::backlog::estimate_bytes(*extent, l.committed?)
        })
        .collect())
}

/// Partition ids of `topic`, `None` if the broker does not know it.
pub fn topic_partitions(client: &mut Client, topic: &str) -> Result<Option<Vec<i32>>, CliError> {
    let m = client
        .metadata(Some(&[topic]))
        .map_err(broker("reading metadata"))?;
    let Some(t) = m.topics.into_iter().next() else {
        return Ok(None);
    };
    if t.error_code != 0 {
        return Ok(None);
    }
    let mut ps: Vec<i32> = t.partitions.iter().map(|p| p.partition_index).collect();
    ps.sort_unstable();
    Ok(Some(ps))
}

fn group_reset(
    client: &mut Client,
    group: &str,
    topic: &str,
    to: ResetTo,
    out: &mut impl Write,
) -> Result<(), CliError> {
    let d = client
        .describe_group(group)
        .map_err(broker("describing the group"))?;
    if !(d.state == "Empty" || d.state == "Dead") || !d.members.is_empty() {
        return Err(CliError::GroupNotEmpty {
            group: group.to_string(),
            state: d.state,
            members: d.members.len(),
        });
    }
    let partitions =
        topic_partitions(client, topic)?.ok_or_else(|| CliError::UnknownTopic(topic.to_string()))?;
    let before = client
        .fetch_offsets(group, Some(&[(topic, partitions.clone())]))
        .map_err(broker("fetching committed offsets"))?;
    let mut targets = Vec::with_capacity(partitions.len());
    for &p in &partitions {
        targets.push((p, reset_target(client, topic, p, to)?));
    }
    let offsets: Vec<(&str, i32, i64)> = targets.iter().map(|(p, o)| (topic, *p, *o)).collect();
    // Generation -1 and no member id: the coordinator accepts this only while the group is
    // Empty, so a consumer that joined since the check above makes the commit fail instead.
    client
        .commit_offsets(group, -1, "", &offsets)
        .map_err(|e| match e {
            ClientError::Kafka { code, .. }
                if code == kafka_protocol::ResponseError::UnknownMemberId.code() =>
            {
                CliError::GroupNotEmpty {
                    group: group.to_string(),
                    state: "no longer Empty".to_string(),
                    members: 1,
                }
            }
            e => CliError::Broker {
                context: "committing the new offsets".to_string(),
                source: e,
            },
        })?;
    let rows: Vec<Vec<String>> = targets
        .iter()
        .map(|(p, new)| {
            let old = before
                .iter()
                .find(|c| c.1 == *p && c.2 >= 0)
                .map_or("-".to_string(), |c| c.2.to_string());
            vec![topic.to_string(), p.to_string(), old, new.to_string()]
        })
        .collect();
    print_table(out, &["TOPIC", "PARTITION", "OLD-OFFSET", "NEW-OFFSET"], &rows)?;
    Ok(())
}

/// The offset a reset moves `partition` to. Offsets and timestamps past the log end land on
/// the log end, and before its start on the start, as kafka-consumer-groups does.
fn reset_target(client: &mut Client, topic: &str, partition: i32, to: ResetTo) -> Result<i64, CliError> {
    let mut list = |ts: i64| {
        client
            .list_offset(topic, partition, ts)
            .map(|(o, _)| o)
            .map_err(broker(format!("listing offsets of {topic}/{partition}")))
    };
    let earliest = list(EARLIEST)?;
    let latest = list(LATEST)?;
    Ok(match to {
        ResetTo::Earliest => earliest,
        ResetTo::Latest => latest,
        ResetTo::Offset(n) => n.clamp(earliest, latest),
        ResetTo::Timestamp(ms) => match list(ms)? {
            -1 => latest,
            o => o,
        },
    })
}

pub fn unknown_topic_or(e: ClientError, topic: &str, context: &str) -> CliError {
    match e {
        ClientError::Kafka { code, .. }
            if code == kafka_protocol::ResponseError::UnknownTopicOrPartition.code() =>
        {
            CliError::UnknownTopic(topic.to_string())
        }
        e => CliError::Broker {
            context: context.to_string(),
            source: e,
        },
    }
}

fn topic_list(client: &mut Client, out: &mut impl Write) -> Result<(), CliError> {
    let m = client.metadata(None).map_err(broker("reading metadata"))?;
    let mut rows: Vec<Vec<String>> = m
        .topics
        .iter()
        .filter(|t| t.error_code == 0)
        .map(|t| {
            let name = t.name.as_ref().map(|n| n.0.to_string()).unwrap_or_default();
            vec![name, t.partitions.len().to_string()]
        })
        .collect();
    rows.sort();
    print_table(out, &["TOPIC", "PARTITIONS"], &rows)?;
    Ok(())
}

fn topic_create(
    client: &mut Client,
    name: &str,
    partitions: i32,
    configs: &[String],
    out: &mut impl Write,
) -> Result<(), CliError> {
    let mut pairs = Vec::with_capacity(configs.len());
    for c in configs {
        let (k, v) = c
            .split_once('=')
            .ok_or_else(|| CliError::Usage(format!("--config {c:?}: expected KEY=VALUE")))?;
        pairs.push((k, v));
    }
    client
        .create_topic(name, partitions, &pairs)
        .map_err(broker(format!("creating topic {name:?}")))?;
    writeln!(out, "created topic {name} with {partitions} partition(s)")?;
    Ok(())
}

fn topic_describe(client: &mut Client, name: &str, out: &mut impl Write) -> Result<(), CliError> {
    let m = client
        .metadata(Some(&[name]))
        .map_err(broker("reading metadata"))?;
    let t = m
        .topics
        .into_iter()
        .next()
        .filter(|t| t.error_code == 0)
        .ok_or_else(|| CliError::UnknownTopic(name.to_string()))?;
    let mut partitions: Vec<(i32, i32)> = t
        .partitions
        .iter()
        .map(|p| (p.partition_index, p.leader_id.0))
        .collect();
    partitions.sort_unstable();
    writeln!(out, "topic {name}: {} partition(s)\n", partitions.len())?;
    let mut rows = Vec::with_capacity(partitions.len());
    for (p, leader) in partitions {
        let earliest = client
            .list_offset(name, p, EARLIEST)
            .map_err(broker("listing offsets"))?
            .0;
        let latest = client
            .list_offset(name, p, LATEST)
            .map_err(broker("listing offsets"))?
            .0;
        rows.push(vec![
            p.to_string(),
            leader.to_string(),
            earliest.to_string(),
            latest.to_string(),
            (latest - earliest).to_string(),
        ]);
    }
    print_table(
        out,
        &["PARTITION", "LEADER", "EARLIEST", "LATEST", "RECORDS"],
        &rows,
    )?;
    let configs = client.topic_configs(name).map_err(broker("describing configs"))?;
    if !configs.is_empty() {
        writeln!(out)?;
        let rows: Vec<Vec<String>> = configs.into_iter().map(|(k, v)| vec![k, v]).collect();
        print_table(out, &["CONFIG", "VALUE"], &rows)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_reset_specs_when_parsed_should_accept_the_four_forms_and_refuse_the_rest() {
        assert_eq!("earliest".parse::<ResetTo>().unwrap(), ResetTo::Earliest);
        assert_eq!("latest".parse::<ResetTo>().unwrap(), ResetTo::Latest);
        assert_eq!(
            "timestamp:1700000000000".parse::<ResetTo>().unwrap(),
            ResetTo::Timestamp(1_700_000_000_000)
        );
        assert_eq!("offset:42".parse::<ResetTo>().unwrap(), ResetTo::Offset(42));
        for bad in ["", "first", "offset:-1", "offset:x", "timestamp:", "at:5"] {
            assert!(bad.parse::<ResetTo>().is_err(), "{bad:?} must be refused");
        }
    }

    #[test]
    fn given_rows_when_printed_should_align_columns_to_the_widest_cell() {
        let mut out = Vec::new();
        let rows = vec![
            vec!["a-long-name".to_string(), "1".to_string()],
            vec!["b".to_string(), "22".to_string()],
        ];
        print_table(&mut out, &["TOPIC", "N"], &rows).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text, "TOPIC        N\na-long-name  1\nb            22\n");
    }
}
