//! The `weir` command line (clap): `serve` takes the broker's `ServeArgs`;
//! `group`, `topic` and `txn` are admin commands against a running broker.
//! Parsed once in `main`; plain data.

use clap::{Args, Parser, Subcommand};
use weir_broker::config::ServeArgs;

#[derive(Debug, Parser)]
#[command(
    name = "weir",
    version,
    about = "Weir: a thread-per-core, Kafka-compatible message broker"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the broker.
    Serve(Box<ServeArgs>),
    /// Consumer groups of a running broker: list, describe (lag), delete, reset-offsets.
    Group(GroupArgs),
    /// Topics of a running broker: list, create, describe, delete.
    Topic(TopicArgs),
    /// Share groups (queues, KIP-932) of a running broker: list, describe.
    ShareGroup(ShareGroupArgs),
    /// Transactions of a running broker: list, describe.
    Txn(TxnArgs),
    /// SASL users (SCRAM credentials): add, remove, list.
    User(UserArgs),
    /// Client quotas (produce/fetch byte rates per user and client id): set, remove, list.
    Quota(QuotaArgs),
    /// ACLs: add, remove, list.
    Acl(AclArgs),
}

#[derive(Debug, Clone, Args)]
pub struct Bootstrap {
    /// Address of a running broker.
    #[arg(long, global = true, env = "WEIR_BOOTSTRAP", default_value = "127.0.0.1:9092")]
    pub bootstrap: String,
    /// Authenticate as this SASL user (when the broker's listener requires SASL).
    #[arg(long, global = true, env = "WEIR_SASL_USER")]
    pub sasl_user: Option<String>,
    /// The SASL user's password (prefer the environment variable: a flag shows in `ps`).
    #[arg(long, global = true, env = "WEIR_SASL_PASSWORD", hide_env_values = true)]
    pub sasl_password: Option<String>,
    /// SASL mechanism for --sasl-user: SCRAM-SHA-512, SCRAM-SHA-256 or PLAIN.
    #[arg(
        long,
        global = true,
        env = "WEIR_SASL_MECHANISM",
        default_value = "SCRAM-SHA-512"
    )]
    pub sasl_mechanism: String,
}

#[derive(Debug, Args)]
pub struct ShareGroupArgs {
    #[command(flatten)]
    pub bootstrap: Bootstrap,
    #[command(subcommand)]
    pub command: ShareGroupCommand,
}

#[derive(Debug, Subcommand)]
pub enum ShareGroupCommand {
    /// List every share group with its state.
    List,
    /// Members, and per partition the start offset, records in flight, log end and lag.
    Describe { group: String },
}

#[derive(Debug, Args)]
pub struct GroupArgs {
    #[command(flatten)]
    pub bootstrap: Bootstrap,
    #[command(subcommand)]
    pub command: GroupCommand,
}

#[derive(Debug, Subcommand)]
pub enum GroupCommand {
    /// List every consumer group with its state.
    List,
    /// Members, assignments, committed offsets, log end offsets and lag of a group.
    Describe { group: String },
    /// Delete a group and its committed offsets. The group must have no members.
    Delete { group: String },
    /// Set a group's committed offsets for one topic. The group must have no members.
    ResetOffsets {
        group: String,
        #[arg(long)]
        topic: String,
        /// earliest | latest | timestamp:<ms> | offset:<n>
        #[arg(long)]
        to: String,
    },
}

#[derive(Debug, Args)]
pub struct TopicArgs {
    #[command(flatten)]
    pub bootstrap: Bootstrap,
    #[command(subcommand)]
    pub command: TopicCommand,
}

#[derive(Debug, Subcommand)]
pub enum TopicCommand {
    /// List topics with their partition counts.
    List,
    /// Create a topic.
    Create {
        name: String,
        #[arg(long, default_value_t = 1)]
        partitions: i32,
        /// Topic config as KEY=VALUE (repeatable), e.g. retention.ms=3600000.
        #[arg(long = "config", value_name = "KEY=VALUE")]
        configs: Vec<String>,
    },
    /// Partitions with earliest and latest offsets, and the topic's configs.
    Describe { name: String },
    /// Per partition: log start and end, the slowest consumer group and its offset, and the
    /// backlog after it in records and (estimated) bytes, with the topic's bound and policy.
    Backlog { name: String },
    /// Delete a topic and its data.
    Delete { name: String },
    /// Grow a topic to COUNT partitions (existing partitions are untouched).
    AddPartitions {
        name: String,
        #[arg(long)]
        count: i32,
    },
    /// Delete a partition's records before OFFSET (-1: all, up to the high watermark).
    DeleteRecords {
        name: String,
        #[arg(long)]
        partition: i32,
        #[arg(long, allow_hyphen_values = true)]
        before: i64,
    },
    /// Change topic configs: --set KEY=VALUE and --delete KEY (back to the default), repeatable.
    AlterConfig {
        name: String,
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
        #[arg(long = "delete", value_name = "KEY")]
        delete: Vec<String>,
    },
}

#[derive(Debug, Args)]
pub struct TxnArgs {
    #[command(flatten)]
    pub bootstrap: Bootstrap,
    #[command(subcommand)]
    pub command: TxnCommand,
}

#[derive(Debug, Subcommand)]
pub enum TxnCommand {
    /// List transactional ids with their producer id and state.
    List {
        /// Only these states (repeatable): Empty, Ongoing, PrepareCommit,
        /// PrepareAbort, CompleteCommit, CompleteAbort.
        #[arg(long = "state")]
        states: Vec<String>,
        /// Only these producer ids (repeatable).
        #[arg(long = "producer-id")]
        producer_ids: Vec<i64>,
    },
    /// State, producer, timeout, start time and partitions of transactional ids.
    Describe {
        #[arg(required = true)]
        ids: Vec<String>,
    },
}

#[derive(Debug, Args)]
pub struct UserArgs {
    #[command(flatten)]
    pub bootstrap: Bootstrap,
    #[command(subcommand)]
    pub command: UserCommand,
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Add a user or change its password (a salted SCRAM credential; the
    /// password itself is never sent nor stored).
    Add {
        name: String,
        /// The password (prefer WEIR_USER_PASSWORD: a flag shows in `ps`).
        #[arg(long, env = "WEIR_USER_PASSWORD", hide_env_values = true)]
        password: String,
        /// SCRAM-SHA-512 or SCRAM-SHA-256.
        #[arg(long, default_value = "SCRAM-SHA-512")]
        mechanism: String,
        /// PBKDF2 iterations, 4096..=16384.
        #[arg(long, default_value_t = 8192)]
        iterations: i32,
        /// Write into the catalog of this data directory instead of asking a
        /// broker: the first user's bootstrap. The broker must be stopped.
        #[arg(long)]
        data_dir: Option<std::path::PathBuf>,
    },
    /// Remove a user's credential (every mechanism unless --mechanism).
    Remove {
        name: String,
        #[arg(long)]
        mechanism: Option<String>,
    },
    /// Every user with its mechanisms and iterations.
    List,
}

#[derive(Debug, Args)]
pub struct QuotaArgs {
    #[command(flatten)]
    pub bootstrap: Bootstrap,
    #[command(subcommand)]
    pub command: QuotaCommand,
}

/// A quota entity: a user, a client id, or both; each named or the default.
#[derive(Debug, Clone, Args)]
pub struct QuotaEntityArgs {
    /// The user (SASL user name; ANONYMOUS for unauthenticated connections).
    #[arg(long, conflicts_with = "default_user")]
    pub user: Option<String>,
    /// The default user (`<default>`): every user without a quota of its own.
    #[arg(long)]
    pub default_user: bool,
    /// The client id (`client.id` of the client).
    #[arg(long = "client", conflicts_with = "default_client")]
    pub client: Option<String>,
    /// The default client id (`<default>`).
    #[arg(long)]
    pub default_client: bool,
}

#[derive(Debug, Subcommand)]
pub enum QuotaCommand {
    /// Set byte rates (bytes per second) for an entity.
    Set {
        #[command(flatten)]
        entity: QuotaEntityArgs,
        #[arg(long)]
        producer_byte_rate: Option<u64>,
        #[arg(long)]
        consumer_byte_rate: Option<u64>,
    },
    /// Remove an entity's byte rates (both unless one is named).
    Remove {
        #[command(flatten)]
        entity: QuotaEntityArgs,
        /// Remove producer_byte_rate only.
        #[arg(long)]
        producer: bool,
        /// Remove consumer_byte_rate only.
        #[arg(long)]
        consumer: bool,
    },
    /// Every quota (or those of the entity given, exactly).
    List {
        #[command(flatten)]
        entity: QuotaEntityArgs,
    },
}

#[derive(Debug, Args)]
pub struct AclArgs {
    #[command(flatten)]
    pub bootstrap: Bootstrap,
    #[command(subcommand)]
    pub command: AclCommand,
}

#[derive(Debug, Subcommand)]
pub enum AclCommand {
    /// Add bindings: PRINCIPAL may do each --operation on the resource (or,
    /// with --permission deny, may not: deny wins over allow).
    Add(AclSpec),
    /// Remove every binding the filter matches (unset options match any).
    Remove(AclSpec),
    /// List the bindings the filter matches (unset options match any).
    List(AclSpec),
}

/// A binding (add) or a filter (remove, list), in kafka-acls.sh's terms.
#[derive(Debug, Clone, Args)]
pub struct AclSpec {
    /// `User:name`, or `User:*` for every authenticated user.
    #[arg(long)]
    pub principal: Option<String>,
    /// Client IP address; add: `*` (every host) by default.
    #[arg(long)]
    pub host: Option<String>,
    /// The resource: a topic.
    #[arg(long, group = "resource")]
    pub topic: Option<String>,
    /// The resource: a consumer group.
    #[arg(long, group = "resource")]
    pub group: Option<String>,
    /// The resource: a transactional id.
    #[arg(long, group = "resource")]
    pub transactional_id: Option<String>,
    /// The resource: the cluster (CREATE for topics, IDEMPOTENT_WRITE, ACL administration).
    #[arg(long, group = "resource")]
    pub cluster: bool,
    /// literal or prefixed (add; default literal); filters also take any
    /// (default) and match.
    #[arg(long)]
    pub pattern: Option<String>,
    /// READ, WRITE, CREATE, DELETE, ALTER, DESCRIBE, CLUSTER_ACTION,
    /// DESCRIBE_CONFIGS, ALTER_CONFIGS, IDEMPOTENT_WRITE or ALL; repeat for several.
    #[arg(long)]
    pub operation: Vec<String>,
    /// allow (add's default) or deny.
    #[arg(long)]
    pub permission: Option<String>,
}
