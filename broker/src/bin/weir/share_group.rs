//! `weir share-group list|describe`: share groups (KIP-932) of a running broker. `list` is
//! ListGroups with the "share" type filter; `describe` is ShareGroupDescribe (members) and
//! DescribeShareGroupOffsets (per partition: the share-partition start offset, the records in
//! flight and the log end, the last two from Weir's tagged fields; lag = log end - start
//! offset, the records not yet settled). Main thread, blocking sockets.

use std::io::Write;

use kafka_protocol::messages::describe_share_group_offsets_request::DescribeShareGroupOffsetsRequestGroup;
use kafka_protocol::messages::{
    ApiKey, DescribeShareGroupOffsetsRequest, GroupId, ListGroupsRequest, ShareGroupDescribeRequest,
};
use kafka_protocol::protocol::StrBytes;
use weir_broker::handlers::share_groups::{TAG_IN_FLIGHT, TAG_LOG_END};
use weir_client::blocking::{Client, ClientError};

use crate::admin::{broker, connect, print_table, CliError};
use crate::args::{ShareGroupArgs, ShareGroupCommand};

pub fn run(args: ShareGroupArgs, out: &mut impl Write) -> Result<(), CliError> {
    let mut client = connect(&args.bootstrap)?;
    match args.command {
        ShareGroupCommand::List => list(&mut client, out),
        ShareGroupCommand::Describe { group } => describe(&mut client, &group, out),
    }
}

fn checked(api: ApiKey, code: i16) -> Result<(), ClientError> {
    weir_client::error::check(api, code).map_err(ClientError::from)
}

fn list(client: &mut Client, out: &mut impl Write) -> Result<(), CliError> {
    let req = ListGroupsRequest::default().with_types_filter(vec![StrBytes::from_static_str("share")]);
    let r = client.call_at(5, req).map_err(broker("listing share groups"))?;
    checked(ApiKey::ListGroups, r.error_code).map_err(broker("listing share groups"))?;
    let rows: Vec<Vec<String>> = r
        .groups
        .iter()
        .map(|g| vec![g.group_id.to_string(), g.group_state.to_string()])
        .collect();
    print_table(out, &["GROUP", "STATE"], &rows)?;
    Ok(())
}

fn tagged(fields: &std::collections::BTreeMap<i32, bytes::Bytes>, tag: i32) -> Option<i64> {
    let b = fields.get(&tag)?;
    Some(i64::from_be_bytes(b.as_ref().try_into().ok()?))
}

fn describe(client: &mut Client, group: &str, out: &mut impl Write) -> Result<(), CliError> {
    let id = GroupId(StrBytes::from_string(group.to_owned()));
    let d = client
        .call_at(
            1,
            ShareGroupDescribeRequest::default().with_group_ids(vec![id.clone()]),
        )
        .map_err(broker("describing the share group"))?;
    let g = &d.groups[0];
    let state = if g.error_code == 0 {
        g.group_state.to_string()
    } else {
        "Empty".to_owned() // no members now (membership is not kept across restarts)
    };
    writeln!(out, "group {group}: {state}, {} members", g.members.len())?;
    let members: Vec<Vec<String>> = g
        .members
        .iter()
        .map(|m| {
            vec![
                m.member_id.to_string(),
                m.client_id.to_string(),
                m.client_host.to_string(),
            ]
        })
        .collect();
    if !members.is_empty() {
        print_table(out, &["MEMBER", "CLIENT-ID", "HOST"], &members)?;
    }
    let mut req = DescribeShareGroupOffsetsRequestGroup::default();
    req.group_id = id;
    req.topics = None;
    let r = client
        .call_at(
            0,
            DescribeShareGroupOffsetsRequest::default().with_groups(vec![req]),
        )
        .map_err(broker("describing the share group's offsets"))?;
    let mut rows = Vec::new();
    for t in &r.groups[0].topics {
        for p in &t.partitions {
            let end = tagged(&p.unknown_tagged_fields, TAG_LOG_END);
            let in_flight = tagged(&p.unknown_tagged_fields, TAG_IN_FLIGHT);
            let lag = end
                .filter(|_| p.start_offset >= 0)
                .map(|e| (e - p.start_offset).max(0));
            let show = |v: Option<i64>| v.map_or("-".to_owned(), |v| v.to_string());
            rows.push(vec![
                t.topic_name.to_string(),
                p.partition_index.to_string(),
                p.start_offset.to_string(),
                show(in_flight),
                show(end),
                show(lag),
            ]);
        }
    }
    print_table(
        out,
        &[
            "TOPIC",
            "PARTITION",
            "START-OFFSET",
            "IN-FLIGHT",
            "LOG-END",
            "LAG",
        ],
        &rows,
    )?;
    Ok(())
}
