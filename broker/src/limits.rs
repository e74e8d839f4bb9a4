//! Named limits of the broker, unit last, each with the reason it exists.
//! Configurable limits have their default here and are checked against the
//! hard bounds at start-up (`config::ServeArgs::validate`).

/// Capacity of each cross-shard mesh channel. A full channel makes the sender
/// await (data plane backpressure) rather than buffer without bound.
pub const MESH_CHANNEL_CAPACITY: usize = 1024;
/// Default in-flight requests per connection: librdkafka pipelines at most 5
/// produce requests per partition leader plus fetches and metadata; 64 keeps a
/// busy client moving and caps the memory one connection can pin at
/// 64 x the frame limit in the worst case.
pub const IN_FLIGHT_PER_CONNECTION_DEFAULT: usize = 64;
/// Hard bound for `--in-flight-max`.
pub const IN_FLIGHT_PER_CONNECTION_MAX: usize = 1024;
/// Default connection limit for the whole broker (split evenly across shards).
pub const CONNECTIONS_DEFAULT: usize = 10_000;
/// A frame is read in chunks of at most this size, so a client that announces
/// a large frame and then trickles bytes pins only what it actually sent.
pub const FRAME_READ_CHUNK_BYTES: usize = 1024 * 1024;
/// Largest frame for every API but Produce. Decoding a request can take far
/// more memory than its wire size (measured in protocol/tests/hostile.rs: up
/// to ~200x for OffsetFetch v8/v9), while only Produce carries bulk data, and
/// that as zero-copy slices. 1 MiB still fits a Metadata request for ~40,000
/// topic names.
pub const CONTROL_FRAME_BYTES_MAX: usize = 1024 * 1024;
/// Client-quota rate sensors one shard keeps (one per metered user/client id).
/// Past it, sensors no connection holds are dropped even if recently used, so
/// a client cycling through client ids under a `<default>` quota cannot grow
/// the map without bound (it gains a fresh window each time, as after an idle).
pub const QUOTA_SENSORS_MAX: usize = 10_000;
/// Longest a Fetch may wait for min_bytes, whatever the client asks: keeps a
/// misbehaving client from parking a request forever.
pub const FETCH_WAIT_MS_MAX: i32 = 30_000;
/// Most bytes one Fetch or ShareFetch may ask for, whatever its max_bytes says: Kafka's
/// broker default `fetch.max.bytes` (55 MiB). A file read allocates a buffer of about
/// the bytes asked, so a client asking for 2 GiB must not get a segment-sized buffer.
/// As in Kafka, a first batch larger than this is still returned whole.
pub const FETCH_BYTES_MAX: usize = 57_671_680;
/// Upper bound of partitions in one topic: the catalog and the per-shard maps
/// are sized from it, and Kafka users rarely need more on one machine.
pub const PARTITIONS_PER_TOPIC_MAX: i32 = 10_000;
/// Kafka's topic name limit (249 chars, so `<topic>-<partition>` fits in 255).
pub const TOPIC_NAME_BYTES_MAX: usize = 249;
/// How often each shard checks retention and segment age.
pub const RETENTION_CHECK_INTERVAL_MS: u64 = 30_000;
/// How long a graceful shutdown waits for in-flight requests.
pub const SHUTDOWN_DRAIN_MS: u64 = 5_000;

const _: () = assert!(IN_FLIGHT_PER_CONNECTION_DEFAULT <= IN_FLIGHT_PER_CONNECTION_MAX);
const _: () = assert!(FRAME_READ_CHUNK_BYTES <= weir_protocol::frame::FRAME_BYTES_MAX_DEFAULT);
