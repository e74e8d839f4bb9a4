//! DescribeLogDirs: one log dir, the data dir, with each partition's size in
//! bytes (the sum of its segments, read on the owning shard), offset lag 0 and
//! is_future false (there is one copy and no replica movement). On a shard's
//! advertised port (zero-hop mode) a node reports the partitions it leads, so
//! admin clients that ask every broker and merge see each partition once; on
//! the bootstrap address and in single-address mode, every partition. The
//! topics filter is honoured (null: all); partitions a node does not hold are
//! left out, as Kafka leaves out replicas a broker does not host.

use std::collections::BTreeMap;
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::rc::Rc;

use kafka_protocol::messages::describe_log_dirs_response::{
    DescribeLogDirsPartition, DescribeLogDirsResult, DescribeLogDirsTopic,
};
use kafka_protocol::messages::{DescribeLogDirsRequest, DescribeLogDirsResponse, TopicName};

use super::ShardContext;
use crate::shard::{fan_out, Task};

/// Topics (with their partitions) to describe; `None`: every topic.
type Filter = Option<Vec<(String, Vec<i32>)>>;

/// Sizes of the partitions one shard owns that pass the filter.
pub struct LogDirSizes(pub Filter);

/// (topic, partition, size in bytes).
pub type PartitionSize = (String, i32, u64);

impl Task<ShardContext> for LogDirSizes {
    type Output = Vec<PartitionSize>;

    async fn run(self, shard: Rc<ShardContext>) -> Vec<PartitionSize> {
        let catalog = shard.catalog();
        let wanted: Vec<(String, Vec<i32>)> = match self.0 {
            Some(topics) => topics,
            None => catalog
                .topics
                .values()
                .map(|t| (t.name.clone(), (0..t.partition_count()).collect()))
                .collect(),
        };
        let mut out = Vec::new();
        for (topic, partitions) in wanted {
            for p in partitions {
                // Not owned here (or unknown): another node reports it, or none does.
                if let Ok(log) = shard.partitions.owned(&topic, p) {
                    out.push((topic.clone(), p, log.size_bytes()));
                }
            }
        }
        out
    }
}

pub async fn handle(
    shard: &Rc<ShardContext>,
    req: DescribeLogDirsRequest,
    node: Option<usize>,
) -> DescribeLogDirsResponse {
    let filter: Filter = req.topics.map(|topics| {
        topics
            .into_iter()
            .map(|t| (t.topic.to_string(), t.partitions))
            .collect()
    });
    let owners: Vec<usize> = match node {
        Some(s) => vec![s],
        None => (0..shard.count).collect(),
    };
    let work: Vec<Vec<()>> = (0..shard.count)
        .map(|s| if owners.contains(&s) { vec![()] } else { Vec::new() })
        .collect();
    let answers = fan_out(shard, work, |_| LogDirSizes(filter.clone())).await;
    let mut by_topic: BTreeMap<String, Vec<(i32, u64)>> = BTreeMap::new();
    let mut error_code = 0;
    for (owner, answer) in answers {
        match answer {
            Ok(sizes) => {
                for (topic, p, size) in sizes {
                    by_topic.entry(topic).or_default().push((p, size));
                }
            }
            Err(e) => {
                tracing::warn!(owner, error = %e, "describe-log-dirs forward failed");
                error_code = kafka_protocol::ResponseError::KafkaStorageError.code();
            }
        }
    }
    let data_dir = &shard.args.data_dir;
    let (total_bytes, usable_bytes) = disk_space(data_dir);
    let result = DescribeLogDirsResult::default()
        .with_error_code(error_code)
        .with_log_dir(absolute(data_dir).into())
        .with_topics(topics(by_topic))
        .with_total_bytes(total_bytes)
        .with_usable_bytes(usable_bytes);
    DescribeLogDirsResponse::default().with_results(vec![result])
}

fn topics(by_topic: BTreeMap<String, Vec<(i32, u64)>>) -> Vec<DescribeLogDirsTopic> {
    by_topic
        .into_iter()
        .map(|(name, mut partitions)| {
            partitions.sort_unstable();
            partitions.dedup_by_key(|(p, _)| *p);
            let partitions = partitions
                .into_iter()
                .map(|(p, size)| {
                    DescribeLogDirsPartition::default()
                        .with_partition_index(p)
                        .with_partition_size(i64::try_from(size).unwrap_or(i64::MAX))
                        .with_offset_lag(0)
                        .with_is_future_key(false)
                })
                .collect();
            DescribeLogDirsTopic::default()
                .with_name(TopicName(name.into()))
                .with_partitions(partitions)
        })
        .collect()
}

fn absolute(dir: &Path) -> String {
    std::path::absolute(dir)
        .unwrap_or_else(|_| dir.to_path_buf())
        .display()
        .to_string()
}

/// (total, usable) bytes of the file system holding `dir`, -1 each when
/// unknown (Kafka's value for "not reported"). One statvfs call: no I/O wait.
fn disk_space(dir: &Path) -> (i64, i64) {
    let Ok(path) = CString::new(dir.as_os_str().as_bytes()) else {
        return (-1, -1);
    };
    let mut stats = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `path` is NUL-terminated and `stats` is a valid out-pointer for statvfs.
    let rc = unsafe { libc::statvfs(path.as_ptr(), stats.as_mut_ptr()) };
    if rc != 0 {
        return (-1, -1);
    }
    // SAFETY: statvfs returned 0, so it filled `stats`.
    let stats = unsafe { stats.assume_init() };
    let fragment = stats.f_frsize as u128;
    let clamp = |blocks: u128| i64::try_from(blocks * fragment).unwrap_or(i64::MAX);
    (clamp(stats.f_blocks as u128), clamp(stats.f_bavail as u128))
}
