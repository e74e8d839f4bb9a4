//! Durable catalog snapshots: `catalog.rkyv` in the data directory, written
//! atomically (temp file, fdatasync, rename, fsync of the directory) so a
//! crash leaves either the old or the new catalog, never a torn one.
//! Only shard 0 saves. Loading happens once, before the executors start.

use std::path::{Path, PathBuf};

use super::legacy::{CatalogV1, CatalogV2, CatalogV3, CatalogV4};
use super::Catalog;

const FILE_NAME: &str = "catalog.rkyv";
const TEMP_NAME: &str = "catalog.rkyv.tmp";
/// File layout: magic, u32 length, u32 CRC-32C of the payload, rkyv payload.
/// The magic names the payload's layout: format 2 added replica lists and
/// `compression.type`, format 3 the SASL users' SCRAM credentials, format 4
/// the client quotas and the ACL bindings, format 5 the topics' queue and
/// backlog settings; files of formats 1 to 4 are still read (`legacy.rs`).
const MAGIC: &[u8; 8] = b"WEIRCAT5";
const MAGIC_V4: &[u8; 8] = b"WEIRCAT4";
const MAGIC_V3: &[u8; 8] = b"WEIRCAT3";
const MAGIC_V2: &[u8; 8] = b"WEIRCAT2";
const MAGIC_V1: &[u8; 8] = b"WEIRCAT1";
const HEADER_BYTES: usize = 16;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("catalog I/O on {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("catalog file {path} is corrupt: {reason}")]
    Corrupt { path: PathBuf, reason: String },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

pub fn encode(catalog: &Catalog) -> Vec<u8> {
    let payload = rkyv::to_bytes::<rkyv::rancor::Error>(catalog).expect("catalog serializes");
    frame(MAGIC, &payload)
}

fn frame(magic: &[u8; 8], payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_BYTES + payload.len());
    out.extend_from_slice(magic);
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(&crc32c::crc32c(payload).to_be_bytes());
    out.extend_from_slice(payload);
    out
}

pub fn decode(bytes: &[u8], path: &Path) -> Result<Catalog, StoreError> {
    let corrupt = |reason: &str| StoreError::Corrupt {
        path: path.to_path_buf(),
        reason: reason.into(),
    };
    if bytes.len() < HEADER_BYTES
        || ![&MAGIC[..], MAGIC_V4, MAGIC_V3, MAGIC_V2, MAGIC_V1].contains(&&bytes[..8])
    {
        return Err(corrupt("bad magic"));
    }
    let len = u32::from_be_bytes(bytes[8..12].try_into().expect("4 bytes")) as usize;
    let crc = u32::from_be_bytes(bytes[12..16].try_into().expect("4 bytes"));
    let payload = bytes
        .get(HEADER_BYTES..HEADER_BYTES + len)
        .ok_or_else(|| corrupt("truncated"))?;
    if crc32c::crc32c(payload) != crc {
        return Err(corrupt("crc mismatch"));
    }
    let mut aligned = rkyv::util::AlignedVec::<16>::with_capacity(payload.len());
    aligned.extend_from_slice(payload);
    let corrupt_rkyv = |e: rkyv::rancor::Error| corrupt(&e.to_string());
    match &bytes[..8] {
        m if m == MAGIC_V1 => rkyv::from_bytes::<CatalogV1, _>(&aligned)
            .map(Catalog::from)
            .map_err(corrupt_rkyv),
        m if m == MAGIC_V2 => rkyv::from_bytes::<CatalogV2, _>(&aligned)
            .map(Catalog::from)
            .map_err(corrupt_rkyv),
        m if m == MAGIC_V3 => rkyv::from_bytes::<CatalogV3, _>(&aligned)
            .map(Catalog::from)
            .map_err(corrupt_rkyv),
        m if m == MAGIC_V4 => rkyv::from_bytes::<CatalogV4, _>(&aligned)
            .map(Catalog::from)
            .map_err(corrupt_rkyv),
        _ => rkyv::from_bytes::<Catalog, _>(&aligned).map_err(corrupt_rkyv),
    }
}

/// Load at start-up (blocking std::fs is fine: no executor runs yet). A
/// missing file means a new data directory: a fresh catalog with a new
/// cluster id is created and saved.
pub fn load_or_init(data_dir: &Path) -> Result<Catalog, StoreError> {
    std::fs::create_dir_all(data_dir).map_err(io(data_dir))?;
    let path = data_dir.join(FILE_NAME);
    match std::fs::read(&path) {
        Ok(bytes) => decode(&bytes, &path),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let id = uuid::Uuid::from_bytes(super::catalog::random_id());
            let catalog = Catalog::new(format!("weir-{}", id.simple()));
            save_blocking(data_dir, &catalog)?;
            Ok(catalog)
        }
        Err(e) => Err(io(&path)(e)),
    }
}

/// Blocking std::fs: only `load_or_init` calls it, before any executor runs. At
/// runtime (CreateTopics on shard 0) the catalog goes through `save`.
pub fn save_blocking(data_dir: &Path, catalog: &Catalog) -> Result<(), StoreError> {
    use std::io::Write;
    let temp = data_dir.join(TEMP_NAME);
    let mut f = std::fs::File::create(&temp).map_err(io(&temp))?;
    f.write_all(&encode(catalog)).map_err(io(&temp))?;
    f.sync_data().map_err(io(&temp))?;
    std::fs::rename(&temp, data_dir.join(FILE_NAME)).map_err(io(&temp))?;
    std::fs::File::open(data_dir)
        .and_then(|d| d.sync_all())
        .map_err(io(data_dir))
}

/// Save from shard 0 without blocking its executor: glommio's buffered file
/// and directory calls go through io_uring, its rename through its
/// blocking-thread pool.
pub async fn save(data_dir: &Path, catalog: &Catalog) -> Result<(), StoreError> {
    let temp = data_dir.join(TEMP_NAME);
    let file = glommio::io::BufferedFile::create(&temp)
        .await
        .map_err(|e| io(&temp)(e.into()))?;
    let bytes = encode(catalog);
    let len = bytes.len();
    let written = file.write_at(bytes, 0).await.map_err(|e| io(&temp)(e.into()))?;
    if written != len {
        return Err(io(&temp)(std::io::Error::other("short write of catalog")));
    }
    file.fdatasync().await.map_err(|e| io(&temp)(e.into()))?;
    file.close().await.map_err(|e| io(&temp)(e.into()))?;
    glommio::io::rename(&temp, data_dir.join(FILE_NAME))
        .await
        .map_err(|e| io(&temp)(e.into()))?;
    let dir = glommio::io::Directory::open(data_dir)
        .await
        .map_err(|e| io(data_dir)(e.into()))?;
    dir.sync().await.map_err(|e| io(data_dir)(e.into()))?;
    dir.close().await.map_err(|e| io(data_dir)(e.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_a_catalog_when_encoded_and_decoded_should_round_trip_and_detect_damage() {
        let dir = tempfile::tempdir().unwrap();
        let c = load_or_init(dir.path()).unwrap();
        assert!(c.cluster_id.starts_with("weir-"));
        assert_eq!(load_or_init(dir.path()).unwrap(), c);
        let mut bytes = encode(&c);
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        assert!(matches!(
            decode(&bytes, dir.path()),
            Err(StoreError::Corrupt { .. })
        ));
    }

    #[test]
    fn given_a_format_1_catalog_when_decoded_should_give_replication_factor_1_and_producer_compression() {
        use crate::metadata::legacy::{TopicConfigV1, TopicMetaV1};
        use crate::metadata::topic_config::CompressionType;
        let config = TopicConfigV1 {
            segment_bytes: 1 << 20,
            segment_ms: -1,
            retention_ms: 5000,
            retention_bytes: -1,
            flush_messages: 1,
            flush_ms: 1000,
            max_message_bytes: 1 << 20,
        };
        let topic = TopicMetaV1 {
            name: "t".into(),
            id: [7; 16],
            partition_shards: vec![1, 0, 1],
            config,
        };
        let v1 = CatalogV1 {
            cluster_id: "weir-x".into(),
            version: 3,
            topics: [("t".to_string(), topic)].into_iter().collect(),
        };
        let payload = rkyv::to_bytes::<rkyv::rancor::Error>(&v1).unwrap();
        let c = decode(&frame(MAGIC_V1, &payload), Path::new("catalog.rkyv")).unwrap();
        assert_eq!((c.cluster_id.as_str(), c.version), ("weir-x", 3));
        let t = c.topic("t").unwrap();
        assert_eq!(t.partition_shards, vec![1, 0, 1]);
        assert_eq!(t.partition_replicas, vec![vec![1], vec![0], vec![1]]);
        assert_eq!(t.config.retention_ms, 5000);
        assert_eq!(t.config.flush_messages, 1);
        assert_eq!(t.config.compression_type, CompressionType::Producer);
        // Saved again, it is the current format.
        assert_eq!(&encode(&c)[..8], MAGIC);
        assert_eq!(decode(&encode(&c), Path::new("catalog.rkyv")).unwrap(), c);
    }

    /// The topics as formats 2 to 4 stored them (no queue settings).
    fn downgrade(
        topics: &std::collections::BTreeMap<String, crate::metadata::catalog::TopicMeta>,
    ) -> std::collections::BTreeMap<String, crate::metadata::legacy::TopicMetaV4> {
        use crate::metadata::legacy::{TopicConfigV4, TopicMetaV4};
        topics
            .iter()
            .map(|(name, t)| {
                let c = &t.config;
                let v4 = TopicMetaV4 {
                    name: t.name.clone(),
                    id: t.id,
                    partition_shards: t.partition_shards.clone(),
                    partition_replicas: t.partition_replicas.clone(),
                    config: TopicConfigV4 {
                        segment_bytes: c.segment_bytes,
                        segment_ms: c.segment_ms,
                        retention_ms: c.retention_ms,
                        retention_bytes: c.retention_bytes,
                        flush_messages: c.flush_messages,
                        flush_ms: c.flush_ms,
                        max_message_bytes: c.max_message_bytes,
                        compression_type: c.compression_type,
                    },
                };
                (name.clone(), v4)
            })
            .collect()
    }

    #[test]
    fn given_a_format_4_catalog_when_decoded_should_keep_everything_and_have_queue_settings_off() {
        use crate::metadata::catalog::{random_id, Placement};
        let placement = Placement::Balanced {
            partitions: 3,
            replication_factor: 1,
        };
        let c = Catalog::new("weir-q".into()).with_topic(
            "orders",
            random_id(),
            placement,
            crate::metadata::test_topic_config(),
            2,
        );
        let v4 = CatalogV4 {
            cluster_id: c.cluster_id.clone(),
            version: c.version,
            topics: downgrade(&c.topics),
            users: c.users.clone(),
            quotas: c.quotas.clone(),
            acls: c.acls.clone(),
        };
        let payload = rkyv::to_bytes::<rkyv::rancor::Error>(&v4).unwrap();
        let mut back = decode(&frame(MAGIC_V4, &payload), Path::new("catalog.rkyv")).unwrap();
        assert_eq!(back, c);
        let orders = back.topics.get_mut("orders").unwrap();
        assert_eq!(orders.config.queue.dead_letter_topic(), None);
        orders
            .config
            .set("errors.deadletterqueue.topic.name", "orders.dlq")
            .unwrap();
        let bytes = encode(&back);
        assert_eq!(&bytes[..8], MAGIC);
        let again = decode(&bytes, Path::new("catalog.rkyv")).unwrap();
        assert_eq!(
            again.topics["orders"].config.queue.dead_letter_topic(),
            Some("orders.dlq")
        );
    }

    #[test]
    fn given_a_format_2_catalog_when_decoded_should_keep_topics_and_have_no_users() {
        use crate::metadata::catalog::{random_id, Placement, ScramCredential};
        let placement = Placement::Balanced {
            partitions: 2,
            replication_factor: 1,
        };
        let c = Catalog::new("weir-y".into()).with_topic(
            "t",
            random_id(),
            placement,
            crate::metadata::test_topic_config(),
            2,
        );
        let v2 = CatalogV2 {
            cluster_id: c.cluster_id.clone(),
            version: c.version,
            topics: downgrade(&c.topics),
        };
        let payload = rkyv::to_bytes::<rkyv::rancor::Error>(&v2).unwrap();
        let back = decode(&frame(MAGIC_V2, &payload), Path::new("catalog.rkyv")).unwrap();
        assert_eq!(back, c);
        assert!(back.users.is_empty());
        let cred = ScramCredential {
            mechanism: 2,
            salt: vec![1; 16],
            iterations: 4096,
            stored_key: vec![2; 64],
            server_key: vec![3; 64],
        };
        let with_user = back.with_credential("alice", cred.clone());
        let again = decode(&encode(&with_user), Path::new("catalog.rkyv")).unwrap();
        assert_eq!(again.credential("alice", 2), Some(&cred));
        assert_eq!(again.credential("alice", 1), None);
        assert!(again.without_credential("alice", 2).unwrap().users.is_empty());
    }

    #[test]
    fn given_a_format_3_catalog_when_decoded_should_keep_users_and_store_quotas_as_format_4() {
        use crate::metadata::catalog::ScramCredential;
        use crate::metadata::client_quotas::{with_rates, QuotaEntity, QuotaName};
        let cred = ScramCredential {
            mechanism: 1,
            salt: vec![1; 16],
            iterations: 4096,
            stored_key: vec![2; 32],
            server_key: vec![3; 32],
        };
        let c = Catalog::new("weir-z".into()).with_credential("bob", cred.clone());
        let v3 = CatalogV3 {
            cluster_id: c.cluster_id.clone(),
            version: c.version,
            topics: downgrade(&c.topics),
            users: c.users.clone(),
        };
        let payload = rkyv::to_bytes::<rkyv::rancor::Error>(&v3).unwrap();
        let mut back = decode(&frame(MAGIC_V3, &payload), Path::new("catalog.rkyv")).unwrap();
        assert_eq!(back, c);
        assert!(back.quotas.is_empty());
        let slow = QuotaEntity {
            user: None,
            client_id: Some(QuotaName::Named("slow".into())),
        };
        back.quotas = with_rates(&back.quotas, &slow, Some(Some(10 << 20)), None);
        let bytes = encode(&back);
        assert_eq!(&bytes[..8], MAGIC);
        let again = decode(&bytes, Path::new("catalog.rkyv")).unwrap();
        assert_eq!(again.quotas[0].producer_byte_rate, Some(10 << 20));
        assert_eq!(again.credential("bob", 1), Some(&cred));
    }

    #[test]
    fn given_a_format_3_catalog_when_decoded_should_keep_users_and_have_no_acls() {
        use crate::metadata::acl::{op, pattern, permission, resource, AclBinding};
        use crate::metadata::catalog::ScramCredential;
        let cred = ScramCredential {
            mechanism: 1,
            salt: vec![1; 16],
            iterations: 4096,
            stored_key: vec![2; 32],
            server_key: vec![3; 32],
        };
        let v3 = CatalogV3 {
            cluster_id: "weir-z".into(),
            version: 5,
            topics: Default::default(),
            users: [("bob".to_string(), vec![cred.clone()])].into_iter().collect(),
        };
        let payload = rkyv::to_bytes::<rkyv::rancor::Error>(&v3).unwrap();
        let back = decode(&frame(MAGIC_V3, &payload), Path::new("catalog.rkyv")).unwrap();
        assert_eq!((back.version, back.credential("bob", 1)), (5, Some(&cred)));
        assert!(back.acls.is_empty());
        let acl = AclBinding {
            resource_type: resource::TOPIC,
            resource_name: "orders".into(),
            pattern_type: pattern::LITERAL,
            principal: "User:bob".into(),
            host: "*".into(),
            operation: op::WRITE,
            permission: permission::ALLOW,
        };
        let with_acl = back.with_acls(vec![acl.clone(), acl.clone()]);
        let again = decode(&encode(&with_acl), Path::new("catalog.rkyv")).unwrap();
        assert_eq!(&encode(&with_acl)[..8], MAGIC);
        assert_eq!(again.acls, vec![acl]);
    }
}
