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
    use clap::Parser;

    /// `weir serve`'s flags alone, so the defaults below are the CLI's.
    #[derive(Parser)]
    struct Serve {
        #[command(flatten)]
        args: crate::config::ServeArgs,
    }

    fn defaults() -> TopicConfig {
        TopicConfig::defaults(&Serve::parse_from(["weir"]).args.topic_defaults())
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
}
