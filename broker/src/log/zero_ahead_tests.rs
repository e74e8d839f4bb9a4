//! Zero-ahead on real ext4 files (`zero_ahead.rs`): a slow partition's segment file
//! runs ahead of its log end with zeros; the zeros never become part of the log, after
//! a crash, a clean close or a roll; every batch reads back whole and in offset order.

use std::path::Path;

use bytes::Bytes;

use super::segment::BLOCK_BYTES;
use super::test_support::{append_many, data_dir, read_to_end, run, small_config};
use super::zero_ahead::set_thread_enabled;
use super::{FileReadPath, LogConfig, Offset, PartitionLog};

fn log_file_bytes(dir: &Path) -> Vec<u64> {
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .expect("partition dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    names.sort();
    names
        .iter()
        .map(|p| std::fs::metadata(p).expect("segment").len())
        .collect()
}

async fn read_all(log: &PartitionLog) -> Vec<Bytes> {
    read_to_end(log, 0, 3000, FileReadPath::Copy, |_, _| {}).await
}

#[test]
fn given_small_appends_when_crashing_and_closing_should_write_zeros_ahead_and_keep_exactly_the_batches() {
    let dir = data_dir();
    let path = dir.path().join("p0");
    let config = LogConfig::default();
    let (appended, size) = run({
        let (path, config) = (path.clone(), config.clone());
        async move {
            set_thread_enabled(true);
            let log = PartitionLog::open(path.clone(), config).await.expect("open");
            let mut appended = Vec::new();
            for _ in 0..12 {
                // One small batch per write, as a slow partition's.
                appended.extend(append_many(&log, 1, 300).await);
                log.flush().await.expect("flush");
            }
            let size = log.size_bytes();
            let file = log_file_bytes(&path)[0];
            assert!(
                file > size.next_multiple_of(BLOCK_BYTES),
                "zeros ahead of the log end: file {file} bytes, log {size}"
            );
            assert_eq!(read_all(&log).await, appended);
            drop(log); // crash: no clean close, the zeros stay on the file
            (appended, size)
        }
    });
    let appended = run({
        let (path, config) = (path.clone(), config.clone());
        async move {
            set_thread_enabled(true);
            let log = PartitionLog::open(path.clone(), config).await.expect("reopen");
            assert_eq!(log.log_end_offset(), Offset(36));
            assert_eq!(log.size_bytes(), size);
            assert_eq!(log_file_bytes(&path), [size], "recovery cut the zeros");
            assert_eq!(read_all(&log).await, appended);
            let mut appended = appended;
            for _ in 0..5 {
                appended.extend(append_many(&log, 1, 300).await);
                log.flush().await.expect("flush");
            }
            assert!(log_file_bytes(&path)[0] > log.size_bytes().next_multiple_of(BLOCK_BYTES));
            assert_eq!(read_all(&log).await, appended);
            let size = log.size_bytes();
            log.close().await.expect("close");
            assert_eq!(log_file_bytes(&path), [size], "a clean close cuts the zeros");
            appended
        }
    });
    run(async move {
        let log = PartitionLog::open(path, config).await.expect("reopen");
        assert_eq!(log.log_end_offset(), Offset(51));
        assert_eq!(read_all(&log).await, appended);
        log.close().await.expect("close");
    });
}

#[test]
fn given_small_appends_across_rolls_when_reopening_should_leave_sealed_files_exact() {
    let dir = data_dir();
    let path = dir.path().join("p0");
    let config = small_config();
    let appended = run({
        let (path, config) = (path.clone(), config.clone());
        async move {
            set_thread_enabled(true);
            let log = PartitionLog::open(path.clone(), config).await.expect("open");
            let mut appended = Vec::new();
            for _ in 0..60 {
                appended.extend(append_many(&log, 1, 700).await);
                log.flush().await.expect("flush");
            }
            let files = log_file_bytes(&path);
            assert!(files.len() >= 3, "rolled: {files:?}");
            let sealed: u64 = files[..files.len() - 1].iter().sum();
            let active = *files.last().expect("active");
            assert!(
                active > (log.size_bytes() - sealed).next_multiple_of(BLOCK_BYTES),
                "the active file runs ahead: {files:?}, log {}",
                log.size_bytes()
            );
            assert_eq!(read_all(&log).await, appended, "sealed files read back");
            drop(log); // crash
            appended
        }
    });
    run(async move {
        set_thread_enabled(true);
        let log = PartitionLog::open(path.clone(), config).await.expect("reopen");
        assert_eq!(read_all(&log).await, appended);
        let files = log_file_bytes(&path);
        assert_eq!(files.iter().sum::<u64>(), log.size_bytes(), "{files:?}");
        log.close().await.expect("close");
    });
}
