//! DescribeConfigs for the broker resource (type 4): the effective `weir serve`
//! flags under Kafka's broker config names, where Kafka has one. All read-only
//! (Weir's broker config is the static command line). Source: clap's parsed
//! `ServeArgs` does not say whether a value came from the command line, so a value
//! other than the flag's default is reported STATIC_BROKER_CONFIG (4) and one equal
//! to it DEFAULT_CONFIG (5), whether typed or not (a `WEIR_*` environment variable
//! counts as the command line). Any shard may answer: `ServeArgs` is shared read-only.

use clap::Args;
use kafka_protocol::messages::describe_configs_response::DescribeConfigsResourceResult;

use crate::config::ServeArgs;

const SOURCE_STATIC_BROKER: i8 = 4;
const SOURCE_DEFAULT: i8 = 5;

/// (Kafka name, `ServeArgs` field id, value now).
fn entries(args: &ServeArgs) -> Vec<(&'static str, &'static str, String)> {
    vec![
        ("listeners", "listen", format!("PLAINTEXT://{}", args.listen)),
        ("log.dirs", "data_dir", args.data_dir.display().to_string()),
        (
            "auto.create.topics.enable",
            "auto_create_topics",
            args.auto_create_topics.to_string(),
        ),
        (
            "num.partitions",
            "default_partitions",
            args.default_partitions.to_string(),
        ),
        (
            "socket.request.max.bytes",
            "frame_bytes_max",
            args.frame_bytes_max.to_string(),
        ),
        (
            "max.connections",
            "connections_max",
            args.connections_max.to_string(),
        ),
        (
            "log.segment.bytes",
            "segment_bytes",
            args.segment_bytes.to_string(),
        ),
        ("log.retention.ms", "retention_ms", args.retention_ms.to_string()),
        (
            "log.retention.bytes",
            "retention_bytes",
            args.retention_bytes.to_string(),
        ),
        ("log.flush.interval.ms", "flush_ms", args.flush_ms.to_string()),
        (
            "group.initial.rebalance.delay.ms",
            "group_initial_rebalance_delay_ms",
            args.group_initial_rebalance_delay_ms.to_string(),
        ),
        (
            "group.min.session.timeout.ms",
            "group_min_session_timeout_ms",
            args.group_min_session_timeout_ms.to_string(),
        ),
        (
            "group.max.session.timeout.ms",
            "group_max_session_timeout_ms",
            args.group_max_session_timeout_ms.to_string(),
        ),
        (
            "offsets.retention.minutes",
            "offsets_retention_minutes",
            args.offsets_retention_minutes.to_string(),
        ),
        (
            "message.max.bytes",
            "max_message_bytes",
            args.max_message_bytes.to_string(),
        ),
        (
            "log.retention.check.interval.ms",
            "retention_check_ms",
            args.retention_check_ms.to_string(),
        ),
    ]
}

/// The group configs beyond the classic protocol's.
fn group_entries(args: &ServeArgs) -> Vec<(&'static str, &'static str, String)> {
    vec![(
        "group.consumer.migration.policy",
        "group_consumer_migration_policy",
        args.group_consumer_migration_policy.clone(),
    )]
}

/// The flag's default as clap declares it (`None`: it has none).
fn default_of(command: &clap::Command, id: &str) -> Option<String> {
    let arg = command.get_arguments().find(|a| a.get_id() == id)?;
    arg.get_default_values()
        .first()
        .map(|v| v.to_string_lossy().into_owned())
}

/// The topic defaults the `weir serve` flags declare (what a broker started without them
/// gives a topic): a topic value equal to the running broker's default but not to this one
/// comes from a flag, which DescribeConfigs reports STATIC_BROKER_CONFIG as Kafka does.
pub fn flag_topic_defaults() -> crate::metadata::topic_config::TopicDefaults {
    let command = ServeArgs::augment_args(clap::Command::new("serve"));
    let parsed = |id: &str| default_of(&command, id).and_then(|v| v.parse::<i64>().ok());
    let fallback = crate::metadata::topic_config::TopicDefaults {
        segment_bytes: 1 << 30,
        retention_ms: 7 * 24 * 3_600_000,
        retention_bytes: -1,
        flush_ms: u64::MAX,
        max_message_bytes: 1_048_588,
    };
    crate::metadata::topic_config::TopicDefaults {
        segment_bytes: parsed("segment_bytes").map_or(fallback.segment_bytes, |v| v as u64),
        retention_ms: parsed("retention_ms").unwrap_or(fallback.retention_ms),
        retention_bytes: parsed("retention_bytes").unwrap_or(fallback.retention_bytes),
        flush_ms: parsed("flush_ms").map_or(fallback.flush_ms, |v| v as u64),
        max_message_bytes: parsed("max_message_bytes").map_or(fallback.max_message_bytes, |v| v as i32),
    }
}

/// The broker resource's configs, filtered by `keys` (None: all).
pub fn describe(args: &ServeArgs, keys: Option<&[String]>) -> Vec<DescribeConfigsResourceResult> {
    let command = ServeArgs::augment_args(clap::Command::new("serve"));
    entries(args)
        .into_iter()
        .chain(group_entries(args))
        .filter(|(name, _, _)| keys.is_none_or(|k| k.iter().any(|k| k == name)))
        .map(|(name, id, value)| {
            let source = if default_of(&command, id).as_deref() == Some(value.as_str())
                || (id == "listen" && default_of(&command, id).is_some_and(|d| value.ends_with(&d)))
            {
                SOURCE_DEFAULT
            } else {
                SOURCE_STATIC_BROKER
            };
            DescribeConfigsResourceResult::default()
                .with_name(name.to_string().into())
                .with_value(Some(value.into()))
                .with_read_only(true)
                .with_config_source(source)
        })
        .collect()
}
