//! `weir quota set|remove|list`: client quotas (producer_byte_rate,
//! consumer_byte_rate per user and client id) through Describe/AlterClientQuotas
//! on a running broker. Main thread, blocking sockets.

use std::io::Write;

use crate::admin::{broker, connect, print_table, CliError};
use crate::args::{QuotaArgs, QuotaCommand, QuotaEntityArgs};

const PRODUCER: &str = "producer_byte_rate";
const CONSUMER: &str = "consumer_byte_rate";

pub fn run(args: QuotaArgs, out: &mut impl Write) -> Result<(), CliError> {
    match &args.command {
        QuotaCommand::Set {
            entity,
            producer_byte_rate,
            consumer_byte_rate,
        } => {
            let parts = parts(entity)?;
            let ops: Vec<(&str, Option<f64>)> =
                [(PRODUCER, *producer_byte_rate), (CONSUMER, *consumer_byte_rate)]
                    .into_iter()
                    .filter_map(|(k, v)| v.map(|v| (k, Some(v as f64))))
                    .collect();
            if ops.is_empty() {
                let m = "give --producer-byte-rate and/or --consumer-byte-rate";
                return Err(CliError::Usage(m.into()));
            }
            alter(&args, &parts, &ops, out, "set")
        }
        QuotaCommand::Remove {
            entity,
            producer,
            consumer,
        } => {
            let parts = parts(entity)?;
            let both = !*producer && !*consumer;
            let ops: Vec<(&str, Option<f64>)> =
                [(PRODUCER, *producer || both), (CONSUMER, *consumer || both)]
                    .into_iter()
                    .filter(|(_, on)| *on)
                    .map(|(k, _)| (k, None))
                    .collect();
            alter(&args, &parts, &ops, out, "removed")
        }
        QuotaCommand::List { entity } => {
            let filter = parts(entity).unwrap_or_default();
            let filter: Vec<(&str, Option<&str>)> = filter.iter().map(|(t, n)| (*t, n.as_deref())).collect();
            let mut client = connect(&args.bootstrap)?;
            let entries = client
                .describe_quotas(&filter, !filter.is_empty())
                .map_err(broker("listing quotas"))?;
            let name = |n: &Option<String>| n.clone().unwrap_or_else(|| "<default>".into());
            let rows: Vec<Vec<String>> = entries
                .iter()
                .flat_map(|e| {
                    let of = |t: &str| {
                        e.entity
                            .iter()
                            .find(|(et, _)| et == t)
                            .map_or(String::new(), |(_, n)| name(n))
                    };
                    let (user, client) = (of("user"), of("client-id"));
                    e.values
                        .iter()
                        .map(move |(k, v)| vec![user.clone(), client.clone(), k.clone(), format!("{v:.0}")])
                })
                .collect();
            print_table(out, &["USER", "CLIENT-ID", "KEY", "VALUE"], &rows)?;
            Ok(())
        }
    }
}

/// The entity as (type, name) pairs; at least one part.
fn parts(e: &QuotaEntityArgs) -> Result<Vec<(&'static str, Option<String>)>, CliError> {
    let mut out = Vec::new();
    if e.user.is_some() || e.default_user {
        out.push(("user", e.user.clone()));
    }
    if e.client.is_some() || e.default_client {
        out.push(("client-id", e.client.clone()));
    }
    if out.is_empty() {
        let m = "name an entity: --user NAME or --default-user, and/or --client ID or --default-client";
        return Err(CliError::Usage(m.into()));
    }
    Ok(out)
}

fn alter(
    args: &QuotaArgs,
    parts: &[(&'static str, Option<String>)],
    ops: &[(&str, Option<f64>)],
    out: &mut impl Write,
    done: &str,
) -> Result<(), CliError> {
    let entity: Vec<(&str, Option<&str>)> = parts.iter().map(|(t, n)| (*t, n.as_deref())).collect();
    let shown: Vec<String> = parts
        .iter()
        .map(|(t, n)| format!("{t}={}", n.as_deref().unwrap_or("<default>")))
        .collect();
    let shown = shown.join(",");
    let mut client = connect(&args.bootstrap)?;
    let r = client
        .alter_quotas(&entity, ops)
        .map_err(broker(format!("altering quotas of {shown}")))?;
    if r.error_code != 0 {
        let message = r.error_message.unwrap_or_default();
        return Err(CliError::Usage(format!(
            "quota {shown}: error {}: {message}",
            r.error_code
        )));
    }
    let keys: Vec<String> = ops
        .iter()
        .map(|(k, v)| v.map_or(k.to_string(), |v| format!("{k}={v:.0}")))
        .collect();
    writeln!(out, "quota {shown}: {} {done}", keys.join(" "))?;
    Ok(())
}
