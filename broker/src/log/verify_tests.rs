//! The CRC re-check of batches read from segment files (`--fetch-verify-crc`):
//! on, a byte flipped on disk fails the read at that batch; off, the batch is
//! served as it is on disk (the consumer's own check is then what catches it)
//! and every other batch still comes back intact and in offset order.

use std::os::unix::fs::FileExt;

use bytes::Bytes;
use weir_protocol::record_batch::header;

use super::reader::set_thread_verify_crc;
use super::test_support::{append_many, data_dir, run, small_config};
use super::{FileReadPath, LogError, Offset, PartitionLog};

/// Every batch from offset 0 to the log end on `path`, in the order read,
/// without checking them (one is corrupt on purpose).
async fn read_all_unchecked(log: &PartitionLog, path: FileReadPath) -> Vec<Bytes> {
    let mut out = Vec::new();
    let mut offset = 0;
    while offset < log.log_end_offset().0 {
        let result = log.read_with(Offset(offset), 3000, path).await.expect("read");
        assert!(!result.batches.is_empty(), "no batch at {offset}");
        assert!(!result.from_cache, "read from the file at {offset}");
        for b in result.batches {
            let h = header(&b).expect("header");
            assert_eq!(h.base_offset.get(), offset, "batches in offset order");
            offset = h.base_offset.get() + i64::from(h.last_offset_delta.get()) + 1;
            out.push(b);
        }
    }
    out
}

#[test]
fn given_a_flipped_byte_on_disk_when_reading_should_fail_with_the_check_and_serve_it_without() {
    let dir = data_dir();
    let path = dir.path().join("p0");
    run(async move {
        let log = PartitionLog::open(path.clone(), small_config())
            .await
            .expect("open");
        let mut appended: Vec<Vec<u8>> = (append_many(&log, 30, 700).await)
            .into_iter()
            .map(|b| b.to_vec())
            .collect();
        log.close().await.expect("close");
        // A record value byte of the second batch of the first (sealed) segment:
        // its length, magic and header stay valid, only the CRC no longer matches.
        let second_at = appended[0].len();
        let flip_at = second_at + 200;
        let segment = path.join(format!("{:020}.log", 0));
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&segment)
            .expect("segment file");
        let mut byte = [0u8; 1];
        file.read_exact_at(&mut byte, flip_at as u64).expect("read byte");
        byte[0] ^= 0xff;
        file.write_all_at(&byte, flip_at as u64).expect("flip byte");
        file.sync_all().expect("sync");
        drop(file);
        appended[1][200] ^= 0xff;

        let log = PartitionLog::open(path, small_config()).await.expect("reopen");
        for path in [FileReadPath::Dma, FileReadPath::Copy] {
            set_thread_verify_crc(true);
            // Room for the first three batches: the second fails the read.
            match log.read_with(Offset(0), 8000, path).await {
                Err(LogError::Corrupt { position, .. }) => {
                    assert_eq!(position, second_at as u64, "{path:?}: the second batch");
                }
                Err(e) => panic!("{path:?}: expected a corrupt batch, got {e}"),
                Ok(r) => panic!(
                    "{path:?}: expected a corrupt batch, got {} batches",
                    r.batches.len()
                ),
            }
            log.read_aheads.clear();

            set_thread_verify_crc(false);
            let read = read_all_unchecked(&log, path).await;
            assert_eq!(read.len(), appended.len(), "{path:?}");
            for (i, (got, want)) in read.iter().zip(&appended).enumerate() {
                assert!(
                    got[..] == want[..],
                    "{path:?}: batch {i} differs from what is on disk"
                );
            }
            log.read_aheads.clear();
        }
        set_thread_verify_crc(true);
        log.close().await.expect("close");
    });
}
