//! The two file read paths (`FileReadPath`) on a multi-segment log read back
//! from the files: the same bytes as appended, in offset order, and on the DMA
//! path the read-ahead budget counts the buffers answers hold, so held answers
//! stay within it.

use bytes::Bytes;

use super::read_ahead::{set_thread_budget_bytes, used_bytes};
use super::test_support::{append_many, data_dir, read_to_end, run, small_config};
use super::{FileReadPath, Offset, PartitionLog};

/// Every batch from offset 0 on `path`, all answers kept alive until the end
/// (as answers queued on slow sockets would be); checks the budget after each read.
async fn read_all_holding(log: &PartitionLog, path: FileReadPath, budget: usize) -> Vec<Bytes> {
    read_to_end(log, 0, 3000, path, |offset, r| {
        assert!(!r.from_cache, "read from the file at {offset}");
        assert!(
            used_bytes() <= budget,
            "{} bytes held past the {budget} budget",
            used_bytes()
        );
    })
    .await
}

#[test]
fn given_rolled_segments_when_reading_on_each_path_should_return_appended_bytes_in_order_within_budget() {
    let dir = data_dir();
    let path = dir.path().join("p0");
    run(async move {
        // Room for about one segment read ahead (segments are 16 KiB).
        const BUDGET: usize = 20 * 1024;
        set_thread_budget_bytes(BUDGET);
        let log = PartitionLog::open(path.clone(), small_config())
            .await
            .expect("open");
        let appended = append_many(&log, 60, 700).await;
        log.close().await.expect("close");
        // Reopened: the tail cache is empty, every read goes to the files.
        let log = PartitionLog::open(path, small_config()).await.expect("reopen");
        assert!(log.segment_count() > 3, "{} segments", log.segment_count());
        for file_path in [FileReadPath::Copy, FileReadPath::Dma, FileReadPath::Copy] {
            let read = read_all_holding(&log, file_path, BUDGET).await;
            assert_eq!(read.len(), appended.len(), "{file_path:?}");
            assert!(read == appended, "{file_path:?}: bytes or order differ");
            drop(read);
            log.read_aheads.clear();
            assert_eq!(used_bytes(), 0, "{file_path:?}: budget given back");
        }

        // A DMA answer taken from a read-ahead keeps its reservation until
        // dropped; a copied one gives it back at once.
        for (file_path, holds) in [(FileReadPath::Dma, true), (FileReadPath::Copy, false)] {
            log.read_aheads.clear();
            let first = log.read_with(Offset(0), 3000, file_path).await.expect("read");
            let h = weir_protocol::record_batch::validate(&first.batches[0]).expect("valid");
            let second = log
                .read_with(Offset(h.last_offset() + 1), 3000, file_path)
                .await
                .expect("read");
            assert_eq!(second.batches[0], appended[1], "{file_path:?}");
            log.read_aheads.clear();
            assert_eq!(
                used_bytes() > 0,
                holds,
                "{file_path:?}: {} bytes held",
                used_bytes()
            );
            drop(second);
            assert_eq!(used_bytes(), 0, "{file_path:?}");
        }
        log.close().await.expect("close");
    });
}
