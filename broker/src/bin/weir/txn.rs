//! `weir txn list|describe`: the transaction coordinator's view of every
//! transactional id (ListTransactions) and of chosen ones
//! (DescribeTransactions), printed as tables. Main thread, blocking sockets.

use std::io::Write;

use weir_client::blocking::{Client, TxnDescription};

use crate::admin::{broker, connect, print_table, CliError};
use crate::args::{TxnArgs, TxnCommand};

pub fn run(args: TxnArgs, out: &mut impl Write) -> Result<(), CliError> {
    let mut client = connect(&args.bootstrap)?;
    match args.command {
        TxnCommand::List { states, producer_ids } => list(&mut client, &states, &producer_ids, out),
        TxnCommand::Describe { ids } => describe(&mut client, &ids, out),
    }
}

fn list(
    client: &mut Client,
    states: &[String],
    producer_ids: &[i64],
    out: &mut impl Write,
) -> Result<(), CliError> {
    let states: Vec<&str> = states.iter().map(String::as_str).collect();
    let listed = client
        .list_transactions(&states, producer_ids)
        .map_err(broker("listing transactions"))?;
    let rows: Vec<Vec<String>> = listed
        .into_iter()
        .map(|t| vec![t.transactional_id, t.producer_id.to_string(), t.state])
        .collect();
    print_table(out, &["TRANSACTIONAL-ID", "PRODUCER-ID", "STATE"], &rows)?;
    Ok(())
}

fn describe(client: &mut Client, ids: &[String], out: &mut impl Write) -> Result<(), CliError> {
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    let described = client
        .describe_transactions(&ids)
        .map_err(broker("describing transactions"))?;
    let rows: Vec<Vec<String>> = described.iter().map(row).collect();
    print_table(
        out,
        &[
            "TRANSACTIONAL-ID",
            "STATE",
            "PRODUCER-ID",
            "EPOCH",
            "TIMEOUT-MS",
            "START-TIME-MS",
            "PARTITIONS",
        ],
        &rows,
    )?;
    Ok(())
}

/// One table row; an id the broker could not describe shows its error name in the state column.
fn row(t: &TxnDescription) -> Vec<String> {
    let state = if t.error_code == 0 {
        t.state.clone()
    } else {
        format!("error: {}", weir_client::error_name(t.error_code))
    };
    let partitions = t
        .partitions
        .iter()
        .map(|(topic, p)| format!("{topic}-{p}"))
        .collect::<Vec<_>>()
        .join(",");
    vec![
        t.transactional_id.clone(),
        state,
        t.producer_id.to_string(),
        t.producer_epoch.to_string(),
        t.timeout_ms.to_string(),
        t.start_time_ms.to_string(),
        if partitions.is_empty() {
            "-".to_string()
        } else {
            partitions
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_a_failed_description_when_printed_should_name_the_error_in_the_state_column() {
        let t = TxnDescription {
            error_code: 15,
            transactional_id: "t1".into(),
            state: String::new(),
            timeout_ms: 0,
            start_time_ms: -1,
            producer_id: -1,
            producer_epoch: -1,
            partitions: vec![],
        };
        let r = row(&t);
        assert_eq!(r[1], "error: COORDINATOR_NOT_AVAILABLE");
        assert_eq!(r[6], "-");
    }
}
