//! The broker's configuration: `ServeArgs`, the `weir serve` flags (a clap
//! `Args` the `weir` binary's command line embeds). Every flag can also be set
//! as a `WEIR_*` environment variable. Parsed once in `main`, then shared
//! read-only (`Arc`) by every shard.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;

use crate::limits;

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Bootstrap address every shard accepts on (SO_REUSEPORT).
    #[arg(long, env = "WEIR_LISTEN", default_value = "127.0.0.1:9092")]
    pub listen: SocketAddr,
    /// A TLS listener beside the plaintext one (bootstrap address; zero-hop
    /// per-shard TLS ports follow from `--tls-shard-port-base`). Needs
    /// `--tls-cert` and `--tls-key`. Default: no TLS listener.
    #[arg(long, env = "WEIR_TLS_LISTEN")]
    pub tls_listen: Option<SocketAddr>,
    /// First per-shard TLS port in zero-hop mode; shard k listens on base + k.
    /// Default: TLS listen port + 1.
    #[arg(long, env = "WEIR_TLS_SHARD_PORT_BASE")]
    pub tls_shard_port_base: Option<u16>,
    /// PEM certificate chain of the TLS listener (server certificate first).
    #[arg(long, env = "WEIR_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1) of the TLS listener.
    #[arg(long, env = "WEIR_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
    /// Enable SASL with these mechanisms (comma separated: SCRAM-SHA-512,
    /// SCRAM-SHA-256, PLAIN). Default: none, SASL off.
    #[arg(long, env = "WEIR_SASL_MECHANISMS", value_delimiter = ',')]
    pub sasl_mechanisms: Vec<String>,
    /// Which listeners require SASL when it is enabled: `all`, `tls` (plaintext
    /// stays unauthenticated, e.g. on a loopback address for administration) or
    /// `plaintext`.
    #[arg(long, env = "WEIR_SASL_LISTENERS", value_enum, default_value = "all")]
    pub sasl_listeners: SaslListeners,
    /// Principals that pass every ACL check, `;` separated as Kafka's
    /// `super.users` (e.g. `User:admin;User:ops`). Connections without SASL
    /// are never checked; authenticated ones need an ACL or this list.
    #[arg(long, env = "WEIR_SUPER_USERS", value_delimiter = ';')]
    pub super_users: Vec<String>,
    /// Serve Prometheus metrics on `/metrics` and readiness on `/health` at this
    /// address (HTTP, from shard 0). Default: off.
    #[arg(long, env = "WEIR_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
    /// Host name advertised in Metadata (default: the listen IP).
    #[arg(long, env = "WEIR_ADVERTISED_HOST")]
    pub advertised_host: Option<String>,
    /// Data directory: one sub-directory per partition plus the catalog.
    #[arg(long, env = "WEIR_DATA_DIR", default_value = "./weir-data")]
    pub data_dir: PathBuf,
    /// Number of shards (one glommio executor pinned per CPU). Default: available CPUs.
    #[arg(long, env = "WEIR_SHARDS")]
    pub shards: Option<usize>,
    /// Advertise one broker address only and forward requests between shards
    /// (for NAT/containers). Default: zero-hop, each shard is its own broker id
    /// on its own port, so clients connect straight to the owning shard.
    #[arg(long, env = "WEIR_SINGLE_ADDRESS")]
    pub single_address: bool,
    /// First per-shard port in zero-hop mode; shard k listens on base + k.
    /// Default: listen port + 1.
    #[arg(long, env = "WEIR_SHARD_PORT_BASE")]
    pub shard_port_base: Option<u16>,
    /// Create topics on first use (Metadata with allow_auto_topic_creation).
    #[arg(long, env = "WEIR_AUTO_CREATE_TOPICS", default_value_t = true, action = clap::ArgAction::Set)]
    pub auto_create_topics: bool,
    /// Partition count of auto-created topics and of CreateTopics with -1.
    #[arg(long, env = "WEIR_DEFAULT_PARTITIONS", default_value_t = 1)]
    pub default_partitions: i32,
    /// Largest request frame accepted; larger ones close the connection.
    #[arg(long, env = "WEIR_FRAME_BYTES_MAX", default_value_t = weir_protocol::frame::FRAME_BYTES_MAX_DEFAULT)]
    pub frame_bytes_max: usize,
    /// Connection limit for the whole broker.
    #[arg(long, env = "WEIR_CONNECTIONS_MAX", default_value_t = limits::CONNECTIONS_DEFAULT)]
    pub connections_max: usize,
    /// Pipelined requests in flight per connection before the broker stops reading.
    #[arg(long, env = "WEIR_IN_FLIGHT_MAX", default_value_t = limits::IN_FLIGHT_PER_CONNECTION_DEFAULT)]
    pub in_flight_max: usize,
    /// Delayed records one shard's timer store holds (each costs about 25 bytes of
    /// memory); a delayed produce part beyond it is refused with POLICY_VIOLATION.
    #[arg(long, env = "WEIR_TIMERS_PENDING_MAX", default_value_t = 10_000_000)]
    pub timers_pending_max: usize,
    /// Default segment.bytes of new topics.
    #[arg(long, env = "WEIR_SEGMENT_BYTES", default_value_t = 1 << 30)]
    pub segment_bytes: u64,
    /// Default retention.ms of new topics (-1: keep forever).
    #[arg(long, env = "WEIR_RETENTION_MS", default_value_t = 7 * 24 * 3_600_000)]
    pub retention_ms: i64,
    /// Default retention.bytes per partition of new topics (-1: unlimited).
    #[arg(long, env = "WEIR_RETENTION_BYTES", default_value_t = -1)]
    pub retention_bytes: i64,
    /// Default flush.ms of new topics: about the longest an appended batch waits
    /// to be synced when nobody asks for durability (one shard-wide syncfs per
    /// filesystem covers every partition due; acks=all always syncs).
    #[arg(long, env = "WEIR_FLUSH_MS", default_value_t = 1000)]
    pub flush_ms: u64,
    /// group.initial.rebalance.delay.ms: how long a new group waits for more
    /// members before its first rebalance.
    #[arg(long, env = "WEIR_GROUP_INITIAL_REBALANCE_DELAY_MS", default_value_t = 3000)]
    pub group_initial_rebalance_delay_ms: u64,
    /// group.min.session.timeout.ms
    #[arg(long, env = "WEIR_GROUP_MIN_SESSION_TIMEOUT_MS", default_value_t = 6000)]
    pub group_min_session_timeout_ms: i32,
    /// group.max.session.timeout.ms
    #[arg(long, env = "WEIR_GROUP_MAX_SESSION_TIMEOUT_MS", default_value_t = 1_800_000)]
    pub group_max_session_timeout_ms: i32,
    /// group.consumer.heartbeat.interval.ms: how often KIP-848 consumers (group.protocol=consumer)
    /// are told to heartbeat.
    #[arg(long, env = "WEIR_GROUP_CONSUMER_HEARTBEAT_INTERVAL_MS", default_value_t = 5000,
          value_parser = clap::value_parser!(i32).range(1..))]
    pub group_consumer_heartbeat_interval_ms: i32,
    /// group.consumer.session.timeout.ms: a KIP-848 consumer that does not heartbeat for this
    /// long is removed and its partitions go to the others.
    #[arg(long, env = "WEIR_GROUP_CONSUMER_SESSION_TIMEOUT_MS", default_value_t = 45000,
          value_parser = clap::value_parser!(i32).range(1..))]
    pub group_consumer_session_timeout_ms: i32,
    /// group.consumer.migration.policy: whether a non-empty classic group converts to a
    /// consumer group when a KIP-848 member joins (upgrade), back when its last KIP-848 member
    /// leaves (downgrade), both (bidirectional, Kafka 4's default) or neither (disabled).
    #[arg(long, env = "WEIR_GROUP_CONSUMER_MIGRATION_POLICY", default_value = "bidirectional",
          value_parser = ["bidirectional", "upgrade", "downgrade", "disabled"])]
    pub group_consumer_migration_policy: String,
    /// group.share.record.lock.duration.ms: how long a share consumer holds the records it
    /// fetched before they go back to the group for redelivery.
    #[arg(long, env = "WEIR_GROUP_SHARE_RECORD_LOCK_DURATION_MS", default_value_t = 30_000,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub group_share_record_lock_duration_ms: u64,
    /// group.share.delivery.count.limit: a record delivered this many times without being
    /// accepted is archived (not delivered again).
    #[arg(long, env = "WEIR_GROUP_SHARE_DELIVERY_COUNT_LIMIT", default_value_t = 5,
          value_parser = clap::value_parser!(u16).range(1..))]
    pub group_share_delivery_count_limit: u16,
    /// group.share.partition.max.record.locks: records in flight per share-partition.
    #[arg(long, env = "WEIR_GROUP_SHARE_PARTITION_MAX_RECORD_LOCKS", default_value_t = 2000,
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub group_share_partition_max_record_locks: u32,
    /// share.auto.offset.reset for share groups without state: `latest` (Kafka's default) or
    /// `earliest`.
    #[arg(long, env = "WEIR_GROUP_SHARE_AUTO_OFFSET_RESET", default_value = "latest",
          value_parser = ["latest", "earliest"])]
    pub group_share_auto_offset_reset: String,
    /// group.share.heartbeat.interval.ms
    #[arg(long, env = "WEIR_GROUP_SHARE_HEARTBEAT_INTERVAL_MS", default_value_t = 5000,
          value_parser = clap::value_parser!(i32).range(1..))]
    pub group_share_heartbeat_interval_ms: i32,
    /// group.share.session.timeout.ms: a share consumer silent this long leaves the group.
    #[arg(long, env = "WEIR_GROUP_SHARE_SESSION_TIMEOUT_MS", default_value_t = 45000,
          value_parser = clap::value_parser!(i32).range(1..))]
    pub group_share_session_timeout_ms: i32,
    /// offsets.retention.minutes: committed offsets of a group that stays empty this long expire.
    #[arg(long, env = "WEIR_OFFSETS_RETENTION_MINUTES", default_value_t = 7 * 24 * 60)]
    pub offsets_retention_minutes: i64,
    /// Default max.message.bytes (largest batch) of new topics.
    #[arg(long, env = "WEIR_MAX_MESSAGE_BYTES", default_value_t = 1_048_588)]
    pub max_message_bytes: i32,
    /// Bytes per shard that segment-file reads may read ahead of consumers
    /// reading in order (docs/architecture.md, "Read-ahead"); 0 turns it off.
    #[arg(long, env = "WEIR_READ_AHEAD_BYTES", default_value_t = crate::log::READ_AHEAD_BYTES_DEFAULT)]
    pub read_ahead_bytes: usize,
    /// How a fetch from a segment file becomes the answer: `dma` hands the
    /// Direct-I/O read buffer to the socket, `copy` copies it into a new buffer
    /// first (the former default; docs/benchmarks.md, "Zero-copy read path").
    #[arg(long, env = "WEIR_FETCH_READ_PATH", value_enum, default_value_t = crate::log::FileReadPath::Dma)]
    pub fetch_read_path: crate::log::FileReadPath,
    /// Check each batch's CRC-32C again when a fetch reads it from a segment file
    /// (the tail cache holds batches checked when appended). `false` leaves the
    /// check to the consumer, as Kafka does (`check.crcs`): cheaper catch-up reads,
    /// but disk corruption then reaches consumers instead of failing the fetch
    /// (docs/benchmarks.md, "Catch-up reads: CPU per GB").
    #[arg(long, env = "WEIR_FETCH_VERIFY_CRC", default_value_t = true, action = clap::ArgAction::Set)]
    pub fetch_verify_crc: bool,
    /// A partition whose writes are small (a slow partition) writes zeros past the end
    /// of its data, so its next writes overwrite blocks the file has and complete
    /// without an io-wq worker thread (docs/architecture.md, "Write path"). `false`
    /// writes each small batch as an extending write, as before.
    #[arg(long, env = "WEIR_ZERO_AHEAD", default_value_t = true, action = clap::ArgAction::Set)]
    pub zero_ahead: bool,
    /// Appended bytes a partition may hold that its writer has not handed to the disk
    /// yet; beyond it appends wait (back-pressure to the producer). It is the runway
    /// through a disk that stalls its writes (a virtual disk stalled them up to 455 ms:
    /// docs/benchmarks.md), staging memory per partition (a producer-bound partition
    /// keeps it full), and what an acks=1 producer can lose to a kill -9
    /// (docs/reliability.md).
    #[arg(long, env = "WEIR_UNWRITTEN_BYTES_MAX", default_value_t = crate::log::UNWRITTEN_BYTES_DEFAULT,
          value_parser = clap::builder::RangedU64ValueParser::<u64>::new()
              .range(crate::log::UNWRITTEN_BYTES_MIN..=crate::log::UNWRITTEN_BYTES_LIMIT))]
    pub unwritten_bytes_max: u64,
    /// Milliseconds a partition's writer keeps a partly filled 1 MiB write buffer in
    /// memory once no more input is queued, before writing it: a partition fed small
    /// batches then writes a few large pieces instead of many small ones, each of which
    /// cost an io-wq worker wake-up (docs/benchmarks.md, "The write hold"). acks=all
    /// never waits for it (a sync that is due writes at once); an acks=1 producer can
    /// lose this much more to a kill -9, still within `--unwritten-bytes-max`
    /// (docs/reliability.md). 0 writes as soon as the input runs dry.
    #[arg(long, env = "WEIR_WRITE_HOLD_MS", default_value_t = crate::log::WRITE_HOLD_MS_DEFAULT,
          value_parser = clap::builder::RangedU64ValueParser::<u64>::new()
              .range(0..=crate::log::WRITE_HOLD_MS_LIMIT))]
    pub write_hold_ms: u64,
    /// Sealed-segment files the broker keeps open at most, split evenly among the
    /// shards (an LRU cache per shard; reads of older segments reopen them). Active
    /// segments are open besides: one per partition (docs/operations.md, "Open files").
    #[arg(long, env = "WEIR_MAX_OPEN_SEGMENT_FILES", default_value_t = crate::log::OPEN_SEGMENT_FILES_DEFAULT,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub max_open_segment_files: usize,
    /// How often each shard enforces retention. Lowered by the crash harness so
    /// kills land while segments are being deleted.
    #[arg(long, env = "WEIR_RETENTION_CHECK_MS", default_value_t = limits::RETENTION_CHECK_INTERVAL_MS, hide = true)]
    pub retention_check_ms: u64,
}

/// Which listeners require SASL authentication (`--sasl-listeners`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SaslListeners {
    All,
    Tls,
    Plaintext,
}

impl ServeArgs {
    /// The port clients are told to use for `node` (`None`: the bootstrap
    /// address) on the plaintext or the TLS listener.
    pub fn advertised_port(&self, node: Option<usize>, tls: bool) -> u16 {
        match (node, tls, self.tls_listen) {
            (None, true, Some(t)) => t.port(),
            (Some(s), true, Some(_)) => self.tls_shard_port(s),
            (None, _, _) => self.listen.port(),
            (Some(s), _, _) => self.shard_port(s),
        }
    }

    /// Shard `shard`'s own TLS port (when a TLS listener is configured).
    pub fn tls_shard_port(&self, shard: usize) -> u16 {
        let tls_port = self.tls_listen.map_or(0, |t| t.port());
        let base = self.tls_shard_port_base.unwrap_or(tls_port.saturating_add(1));
        base.saturating_add(u16::try_from(shard).unwrap_or(u16::MAX))
    }

    /// Whether connections on the plaintext (`tls` false) or TLS listener must
    /// authenticate with SASL first.
    pub fn sasl_required(&self, tls: bool) -> bool {
        !self.sasl_mechanisms.is_empty()
            && match self.sasl_listeners {
                SaslListeners::All => true,
                SaslListeners::Tls => tls,
                SaslListeners::Plaintext => !tls,
            }
    }

    pub fn shard_count(&self) -> usize {
        let cpus = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
        // glommio's Placement::Fixed(n) fails for n >= the number of CPUs (seen with
        // glommio 0.9 on this machine class): never more shards than CPUs.
        self.shards.unwrap_or(cpus).clamp(1, cpus)
    }

    pub fn advertised_host(&self) -> String {
        self.advertised_host
            .clone()
            .unwrap_or_else(|| self.listen.ip().to_string())
    }

    pub fn shard_port(&self, shard: usize) -> u16 {
        let base = self
            .shard_port_base
            .unwrap_or(self.listen.port().saturating_add(1));
        base.saturating_add(u16::try_from(shard).unwrap_or(u16::MAX))
    }

    pub fn group_config(&self) -> crate::groups::GroupConfig {
        crate::groups::GroupConfig {
            initial_rebalance_delay_ms: self.group_initial_rebalance_delay_ms,
            min_session_timeout_ms: self.group_min_session_timeout_ms,
            max_session_timeout_ms: self.group_max_session_timeout_ms,
            offsets_retention_ms: self.offsets_retention_minutes.saturating_mul(60_000),
            consumer_heartbeat_interval_ms: self.group_consumer_heartbeat_interval_ms,
            consumer_session_timeout_ms: self.group_consumer_session_timeout_ms,
            consumer_migration_policy: crate::groups::MigrationPolicy::parse(
                &self.group_consumer_migration_policy,
            ),
            share_heartbeat_interval_ms: self.group_share_heartbeat_interval_ms,
            share_session_timeout_ms: self.group_share_session_timeout_ms,
            ..crate::groups::GroupConfig::default()
        }
    }

    pub fn share_config(&self) -> crate::share::ShareConfig {
        crate::share::ShareConfig {
            limits: crate::share::partition::Limits {
                max_locks: self.group_share_partition_max_record_locks as usize,
                delivery_limit: self.group_share_delivery_count_limit,
                lock: std::time::Duration::from_millis(self.group_share_record_lock_duration_ms),
            },
            start_at_earliest: self.group_share_auto_offset_reset == "earliest",
            heartbeat_interval_ms: self.group_share_heartbeat_interval_ms,
            session_timeout_ms: self.group_share_session_timeout_ms,
        }
    }

    /// The defaults of new topics, from the `--segment-bytes`, `--retention-*`,
    /// `--flush-ms` and `--max-message-bytes` flags.
    pub fn topic_defaults(&self) -> crate::metadata::topic_config::TopicDefaults {
        crate::metadata::topic_config::TopicDefaults {
            segment_bytes: self.segment_bytes,
            retention_ms: self.retention_ms,
            retention_bytes: self.retention_bytes,
            flush_ms: self.flush_ms,
            max_message_bytes: self.max_message_bytes,
        }
    }

    pub fn validate(&self) -> Result<(), String> {
        if self.in_flight_max == 0 || self.in_flight_max > limits::IN_FLIGHT_PER_CONNECTION_MAX {
            return Err(format!(
                "--in-flight-max must be 1..={}",
                limits::IN_FLIGHT_PER_CONNECTION_MAX
            ));
        }
        if self.frame_bytes_max < 1024 || self.frame_bytes_max > i32::MAX as usize {
            return Err("--frame-bytes-max must be between 1 KiB and 2 GiB".into());
        }
        if !(1..=limits::PARTITIONS_PER_TOPIC_MAX).contains(&self.default_partitions) {
            return Err(format!(
                "--default-partitions must be 1..={}",
                limits::PARTITIONS_PER_TOPIC_MAX
            ));
        }
        if self.segment_bytes < 64 * 1024 {
            return Err("--segment-bytes must be at least 64 KiB".into());
        }
        if self.retention_check_ms == 0 {
            return Err("--retention-check-ms must be positive".into());
        }
        if self.max_message_bytes <= 0 {
            return Err("--max-message-bytes must be positive".into());
        }
        if self.tls_listen.is_some() != (self.tls_cert.is_some() && self.tls_key.is_some()) {
            return Err("--tls-listen, --tls-cert and --tls-key go together".into());
        }
        if let Some(bad) = self.super_users.iter().find(|u| !u.trim().contains(':')) {
            return Err(format!(
                "--super-users: '{bad}' is not a principal: expected User:name, ';' separated"
            ));
        }
        for m in &self.sasl_mechanisms {
            if m != "PLAIN" && weir_protocol::scram::Mechanism::from_name(m).is_none() {
                return Err(format!(
                    "unknown SASL mechanism {m}: SCRAM-SHA-512, SCRAM-SHA-256 and PLAIN are supported"
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    /// `weir serve`'s flags alone.
    #[derive(Parser)]
    struct Serve {
        #[command(flatten)]
        args: super::ServeArgs,
    }

    #[test]
    fn given_no_flags_when_parsing_serve_should_give_new_topics_kafkas_defaults() {
        let args = Serve::parse_from(["weir"]).args;
        let defaults = crate::metadata::TopicConfig::defaults(&args.topic_defaults());
        for (name, kafka) in [
            ("compression.type", "producer"),
            ("segment.bytes", "1073741824"),
            ("retention.ms", "604800000"),
            ("retention.bytes", "-1"),
        ] {
            assert_eq!(defaults.get(name).as_deref(), Some(kafka), "{name}");
        }
    }
}
