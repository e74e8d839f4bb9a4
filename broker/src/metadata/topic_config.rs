//! Per-topic configuration with Kafka's names (segment.bytes, retention.ms, …)
//! and its translation into the partition log's `LogConfig`. Immutable once in
//! a catalog snapshot; any shard may read it. Part of the durable catalog: a
//! field change needs a new catalog format (`metadata/legacy.rs`).

use rkyv::{Archive, Deserialize, Serialize};

use crate::log::{FlushPolicy, LogConfig};

#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct TopicConfig {
    pub segment_bytes: u64,
    /// -1: never roll by age.
    pub segment_ms: i64,
    /// -1: keep forever.
    pub retention_ms: i64,
    /// -1: unlimited.
    pub retention_bytes: i64,
    /// 1 forces an fdatasync per append (`flush.messages=1`); otherwise the
    /// interval policy below applies.
    pub flush_messages: i64,
    pub flush_ms: i64,
    pub max_message_bytes: i32,
    /// Recorded and reported only: batches are stored as the producer sent
    /// them whatever this says (docs/protocol.md, `compression.type`).
    pub compression_type: CompressionType,
    /// Weir's queue and backlog settings (catalog format 5); all off by default.
    pub queue: QueueConfig,
}

/// Per-topic settings beyond Kafka's: delayed delivery and TTL (docs/queues.md),
/// the dead-letter topic of share groups, and the backlog bound that makes a
/// topic a fail-fast buffer in front of a database (docs/peak-shaving.md).
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct QueueConfig {
    /// `delivery.delay.ms`: 0 delivers at once; otherwise records without a
    /// delay header of their own become visible this long after their timestamp.
    pub delivery_delay_ms: i64,
    /// `message.ttl.ms`: -1 never expires. Share groups
    /// never deliver a record past it; for other readers retention rules.
    pub message_ttl_ms: i64,
    /// `errors.deadletterqueue.topic.name`: empty for none.
    pub dead_letter_topic: String,
    /// `backlog.bytes.max`: -1 unbounded.
    pub backlog_bytes_max: i64,
    /// `backlog.records.max`: -1 unbounded.
    pub backlog_records_max: i64,
    /// `backlog.policy`: what a produce past the bound gets.
    pub backlog_policy: BacklogPolicy,
}

/// What happens to a produce past a topic's backlog bound.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BacklogPolicy {
    /// Fail fast: the partition gets an error the producer surfaces at once.
    #[default]
    Reject,
    /// Accept, and ask the producer to slow down with `throttle_time_ms`.
    Throttle,
}

impl BacklogPolicy {
    pub fn name(self) -> &'static str {
        match self {
            Self::Reject => "reject",
            Self::Throttle => "throttle",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        [Self::Reject, Self::Throttle]
            .into_iter()
            .find(|p| p.name() == value)
    }
}

impl QueueConfig {
    /// A new topic's settings: everything off, in Kafka's spelling of "off".
    pub fn unset() -> Self {
        Self {
            delivery_delay_ms: 0,
            message_ttl_ms: -1,
            dead_letter_topic: String::new(),
            backlog_bytes_max: -1,
            backlog_records_max: -1,
            backlog_policy: BacklogPolicy::Reject,
        }
    }

    /// The TTL in force, if any (`message.ttl.ms` <= 0 means none).
    pub fn ttl_ms(&self) -> Option<i64> {
        (self.message_ttl_ms > 0).then_some(self.message_ttl_ms)
    }

    /// The default delivery delay, if any.
    pub fn delay_ms(&self) -> Option<i64> {
        (self.delivery_delay_ms > 0).then_some(self.delivery_delay_ms)
    }

    pub fn dead_letter_topic(&self) -> Option<&str> {
        (!self.dead_letter_topic.is_empty()).then_some(self.dead_letter_topic.as_str())
    }

    /// The backlog bounds in force: (bytes, records), each `None` when off.
    pub fn backlog_bounds(&self) -> (Option<u64>, Option<u64>) {
        let bound = |v: i64| u64::try_from(v).ok().filter(|v| *v > 0);
        (bound(self.backlog_bytes_max), bound(self.backlog_records_max))
    }

    fn set(&mut self, name: &str, value: &str, int: i64) -> Result<(), String> {
        match name {
            "delivery.delay.ms" if int >= 0 => self.delivery_delay_ms = int,
            "delivery.delay.ms" => return Err("delivery.delay.ms must be 0 or more".into()),
            "message.ttl.ms" => self.message_ttl_ms = positive_or_unlimited(name, int)?,
            "backlog.bytes.max" => self.backlog_bytes_max = positive_or_unlimited(name, int)?,
            "backlog.records.max" => self.backlog_records_max = positive_or_unlimited(name, int)?,
            _ => return Err(format!("unsupported config {name}={value}")),
        }
        Ok(())
    }
}

/// Kafka's rule for topic names: 1 to 249 of `[a-zA-Z0-9._-]`, not `.` or `..`.
pub fn is_valid_topic_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 249
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
}

/// Kafka's topic-level `compression.type` values.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompressionType {
    Producer,
    Uncompressed,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

impl CompressionType {
    const ALL: [Self; 6] = [
        Self::Producer,
        Self::Uncompressed,
        Self::Gzip,
        Self::Snappy,
        Self::Lz4,
        Self::Zstd,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::Producer => "producer",
            Self::Uncompressed => "uncompressed",
            Self::Gzip => "gzip",
            Self::Snappy => "snappy",
            Self::Lz4 => "lz4",
            Self::Zstd => "zstd",
        }
    }

    /// Exact (case-sensitive) names, as Kafka's validator takes them.
    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.name() == value)
    }
}

/// Names DescribeConfigs reports and CreateTopics accepts.
pub const CONFIG_NAMES: &[&str] = &[
    "segment.bytes",
    "segment.ms",
    "retention.ms",
    "retention.bytes",
    "flush.messages",
    "flush.ms",
    "max.message.bytes",
    "cleanup.policy",
    "message.timestamp.type",
    "compression.type",
    "delivery.delay.ms",
    "message.ttl.ms",
    "errors.deadletterqueue.topic.name",
    "backlog.bytes.max",
    "backlog.records.max",
    "backlog.policy",
];

/// Bytes of appended data after which an interval-flushed partition syncs even
/// if `flush.ms` has not passed: bounds what a power cut can take.
const FLUSH_BYTES_DEFAULT: u64 = 64 * 1024 * 1024;

/// The broker-wide defaults a new topic starts from (before its CreateTopics
/// configs apply). Plain values, so this module needs nothing from the command
/// line: `ServeArgs::topic_defaults` fills it from `weir serve`'s flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TopicDefaults {
    pub segment_bytes: u64,
    /// -1: keep forever.
    pub retention_ms: i64,
    /// -1: unlimited.
    pub retention_bytes: i64,
    pub flush_ms: u64,
    pub max_message_bytes: i32,
}

impl TopicConfig {
    pub fn defaults(defaults: &TopicDefaults) -> Self {
        Self {
            segment_bytes: defaults.segment_bytes,
            segment_ms: 7 * 24 * 3_600_000,
            retention_ms: defaults.retention_ms,
            retention_bytes: defaults.retention_bytes,
            flush_messages: i64::MAX,
            flush_ms: i64::try_from(defaults.flush_ms).unwrap_or(i64::MAX),
            max_message_bytes: defaults.max_message_bytes,
            compression_type: CompressionType::Producer,
            queue: QueueConfig::unset(),
        }
    }

    /// Apply one `name=value` from CreateTopics; the error is the message for
    /// INVALID_CONFIG.
    pub fn set(&mut self, name: &str, value: &str) -> Result<(), String> {
        let int = || {
            value
                .trim()
                .parse::<i64>()
                .map_err(|_| format!("{name}: '{value}' is not an integer"))
        };
        match name {
            "segment.bytes" => {
                let v = int()?;
                if v < 64 * 1024 {
                    return Err("segment.bytes must be at least 65536".into());
                }
                self.segment_bytes = v as u64;
            }
            "segment.ms" => self.segment_ms = positive_or_unlimited(name, int()?)?,
            "retention.ms" => self.retention_ms = positive_or_unlimited(name, int()?)?,
            "retention.bytes" => self.retention_bytes = positive_or_unlimited(name, int()?)?,
            "flush.messages" => self.flush_messages = positive_or_unlimited(name, int()?)?,
            "flush.ms" => self.flush_ms = positive_or_unlimited(name, int()?)?,
            "max.message.bytes" => {
                let v = int()?;
                self.max_message_bytes = i32::try_from(v)
                    .ok()
                    .filter(|v| *v > 0)
                    .ok_or("max.message.bytes out of range")?;
            }
            // Accepted for compatibility with tools that always send them;
            // only the values Weir implements are allowed.
            "cleanup.policy" if value == "delete" => {}
            "message.timestamp.type" if value == "CreateTime" => {}
            "compression.type" => {
                self.compression_type = CompressionType::parse(value).ok_or_else(|| {
                    format!(
                        "compression.type must be one of producer, uncompressed, gzip, snappy, lz4, zstd; got '{value}'"
                    )
                })?;
            }
            "errors.deadletterqueue.topic.name" => {
                if !value.is_empty() && !is_valid_topic_name(value) {
                    return Err(format!(
                        "errors.deadletterqueue.topic.name: '{value}' is not a valid topic name"
                    ));
                }
                self.queue.dead_letter_topic = value.to_string();
            }
            "backlog.policy" => {
                self.queue.backlog_policy = BacklogPolicy::parse(value)
                    .ok_or_else(|| format!("backlog.policy must be reject or throttle; got '{value}'"))?;
            }
            "delivery.delay.ms" | "message.ttl.ms" | "backlog.bytes.max" | "backlog.records.max" => {
                self.queue.set(name, value, int()?)?;
            }
            _ => return Err(format!("unsupported config {name}={value}")),
        }
        Ok(())
    }

    pub fn get(&self, name: &str) -> Option<String> {
        Some(match name {
            "segment.bytes" => self.segment_bytes.to_string(),
            "segment.ms" => self.segment_ms.to_string(),
            "retention.ms" => self.retention_ms.to_string(),
            "retention.bytes" => self.retention_bytes.to_string(),
            "flush.messages" => self.flush_messages.to_string(),
            "flush.ms" => self.flush_ms.to_string(),
            "max.message.bytes" => self.max_message_bytes.to_string(),
            "cleanup.policy" => "delete".to_string(),
            "message.timestamp.type" => "CreateTime".to_string(),
            "compression.type" => self.compression_type.name().to_string(),
            "delivery.delay.ms" => self.queue.delivery_delay_ms.to_string(),
            "message.ttl.ms" => self.queue.message_ttl_ms.to_string(),
            "errors.deadletterqueue.topic.name" => self.queue.dead_letter_topic.clone(),
            "backlog.bytes.max" => self.queue.backlog_bytes_max.to_string(),
            "backlog.records.max" => self.queue.backlog_records_max.to_string(),
            "backlog.policy" => self.queue.backlog_policy.name().to_string(),
            _ => return None,
        })
    }

    pub fn log_config(&self) -> LogConfig {
        let flush = if self.flush_messages == 1 {
            FlushPolicy::EveryAppend
        } else {
            FlushPolicy::Interval {
                ms: u64::try_from(self.flush_ms).unwrap_or(u64::MAX),
                bytes: FLUSH_BYTES_DEFAULT,
            }
        };
        LogConfig {
            segment_bytes: self.segment_bytes,
            segment_ms: u64::try_from(self.segment_ms).ok(),
            retention_bytes: u64::try_from(self.retention_bytes).ok(),
            retention_ms: u64::try_from(self.retention_ms).ok(),
            flush,
            max_batch_bytes: self.max_message_bytes as usize,
            ..LogConfig::default()
        }
    }
}

fn positive_or_unlimited(name: &str, v: i64) -> Result<i64, String> {
    if v == -1 || v > 0 {
        Ok(v)
    } else {
        Err(format!("{name} must be positive or -1"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A config as a new topic gets it (compression.type "producer").
    fn defaults() -> TopicConfig {
        crate::metadata::test_topic_config()
    }

    #[test]
    fn given_each_kafka_compression_type_when_set_should_store_it_and_report_it() {
        let mut c = defaults();
        assert_eq!(c.get("compression.type").as_deref(), Some("producer"));
        for name in ["uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"] {
            c.set("compression.type", name).unwrap();
            assert_eq!(c.get("compression.type").as_deref(), Some(name));
        }
        for bad in ["brotli", "LZ4", "", "none"] {
            assert!(c.set("compression.type", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn given_queue_configs_when_set_should_store_them_and_refuse_bad_values() {
        let mut c = defaults();
        assert_eq!(c.get("message.ttl.ms").as_deref(), Some("-1"));
        assert_eq!(c.get("backlog.policy").as_deref(), Some("reject"));
        assert_eq!(c.queue.backlog_bounds(), (None, None));
        for (name, value) in [
            ("delivery.delay.ms", "5000"),
            ("message.ttl.ms", "60000"),
            ("errors.deadletterqueue.topic.name", "orders.dlq"),
            ("backlog.bytes.max", "1048576"),
            ("backlog.records.max", "1000"),
            ("backlog.policy", "throttle"),
        ] {
            c.set(name, value).unwrap();
            assert_eq!(c.get(name).as_deref(), Some(value), "{name}");
        }
        assert_eq!(c.queue.delay_ms(), Some(5000));
        assert_eq!(c.queue.ttl_ms(), Some(60000));
        assert_eq!(c.queue.dead_letter_topic(), Some("orders.dlq"));
        assert_eq!(c.queue.backlog_bounds(), (Some(1 << 20), Some(1000)));
        for (name, bad) in [
            ("delivery.delay.ms", "-1"),
            ("message.ttl.ms", "0"),
            ("backlog.bytes.max", "x"),
            ("backlog.policy", "drop"),
            ("errors.deadletterqueue.topic.name", "bad name"),
        ] {
            assert!(c.set(name, bad).is_err(), "{name}={bad}");
        }
        c.set("errors.deadletterqueue.topic.name", "").unwrap();
        assert_eq!(c.queue.dead_letter_topic(), None);
    }
}
