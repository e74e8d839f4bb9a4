//! `weir topic add-partitions | delete-records | alter-config`: CreatePartitions,
//! DeleteRecords and IncrementalAlterConfigs through the weir-client crate, one
//! blocking request each, printing one line on success.

use std::io::Write;

use weir_client::blocking::Client;

use crate::admin::{unknown_topic_or, CliError};
use crate::args::TopicCommand;

pub fn run(client: &mut Client, command: TopicCommand, out: &mut impl Write) -> Result<(), CliError> {
    match command {
        TopicCommand::AddPartitions { name, count } => {
            client
                .create_partitions(&name, count)
                .map_err(|e| unknown_topic_or(e, &name, "adding partitions"))?;
            writeln!(out, "topic {name} now has {count} partition(s)")?;
        }
        TopicCommand::DeleteRecords {
            name,
            partition,
            before,
        } => {
            let start = client
                .delete_records(&name, partition, before)
                .map_err(|e| unknown_topic_or(e, &name, "deleting records"))?;
            writeln!(
                out,
                "topic {name} partition {partition} now starts at offset {start}"
            )?;
        }
        TopicCommand::AlterConfig { name, set, delete } => {
            let mut pairs = Vec::with_capacity(set.len());
            for c in &set {
                let (k, v) = c
                    .split_once('=')
                    .ok_or_else(|| CliError::Usage(format!("--set {c:?}: expected KEY=VALUE")))?;
                pairs.push((k, v));
            }
            if pairs.is_empty() && delete.is_empty() {
                return Err(CliError::Usage(
                    "nothing to change: give --set KEY=VALUE or --delete KEY".into(),
                ));
            }
            let delete: Vec<&str> = delete.iter().map(String::as_str).collect();
            client
                .alter_topic_configs(&name, &pairs, &delete)
                .map_err(|e| unknown_topic_or(e, &name, "altering configs"))?;
            writeln!(
                out,
                "altered {} config(s) of topic {name}",
                pairs.len() + delete.len()
            )?;
        }
        TopicCommand::List
        | TopicCommand::Create { .. }
        | TopicCommand::Describe { .. }
        | TopicCommand::Backlog { .. }
        | TopicCommand::Delete { .. } => {
            // `admin::run_topic` handles these itself.
            return Err(CliError::Usage("not a topic change command".into()));
        }
    }
    Ok(())
}
