//! A minimal glommio program that exercises every way a sleeping executor is woken:
//! its own short timers, wake-ups from another executor's thread (a flume channel),
//! wake-ups from a plain thread, and glommio's blocking pool. Each loop is one round
//! of all of them; a watchdog thread fails the run (exit 2, after gdb stacks of every
//! thread) when no loop completes for `--stall-ms`. It exists to reproduce the lost
//! wake-up of glommio 0.9.0's reactor sleep and to show the patched sleep does not
//! lose one (docs/reliability.md, "Shard hang").
//!
//!   glommio-wakeup --loops 100000 [--stall-ms 5000] [--io DIR [--no-probe]]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use glommio::io::{DmaFile, OpenOptions};
use glommio::{timer, LocalExecutorBuilder, Placement};

/// A loop this slow means some wake-up came late (the patched reactor bounds a
/// sleep without a timer at 250 ms).
const SLOW_LOOP_US: u64 = 100_000;

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map_or(default, |v| v.parse().expect("a number"))
}

/// A cheap deterministic jitter so sleeps land at many different points of the
/// reactor's loop (no rand dependency: the sequence only needs to vary).
fn jitter(state: &mut u64, max: u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state % max.max(1)
}

fn main() {
    let loops = arg("--loops", 10_000);
    // With --io DIR, executor A also writes 4 KiB with Direct I/O each loop and
    // fdatasyncs every 8th: main-ring completions beside the timers (the log's mix).
    let io_dir = std::env::args()
        .skip_while(|a| a != "--io")
        .nth(1)
        .map(std::path::PathBuf::from);
    let stall_ms = arg("--stall-ms", 5_000);
    let done = Arc::new(AtomicU64::new(0));

    // Executor B answers every ping after its own short timer.
    let (ping_tx, ping_rx) = flume::bounded::<u64>(1);
    let (pong_tx, pong_rx) = flume::bounded::<u64>(1);
    // A plain thread pokes executor A at random moments.
    let (poke_tx, poke_rx) = flume::bounded::<u64>(64);

    let b = LocalExecutorBuilder::new(Placement::Unbound)
        .name("wake-b")
        .spawn(move || async move {
            let mut seed = 0x9E37_79B9_7F4A_7C15u64;
            while let Ok(n) = ping_rx.recv_async().await {
                timer::sleep(Duration::from_micros(jitter(&mut seed, 300))).await;
                if pong_tx.send_async(n).await.is_err() {
                    break;
                }
            }
        })
        .expect("executor b");

    let poker_done = done.clone();
    let poker = std::thread::spawn(move || {
        let mut seed = 0x2545_F491_4F6C_DD1Du64;
        let mut n = 0;
        while poker_done.load(Ordering::Relaxed) < loops {
            std::thread::sleep(Duration::from_micros(50 + jitter(&mut seed, 500)));
            n += 1;
            if poke_tx.try_send(n).is_err() && poke_tx.is_disconnected() {
                break;
            }
        }
    });

    let a_done = done.clone();
    // A wake-up that is lost but recovered (by a timer, or the patched sleep's
    // bound) shows as a slow loop rather than a hang: count those too.
    let slowest_us = Arc::new(AtomicU64::new(0));
    let slow_loops = Arc::new(AtomicU64::new(0));
    let (a_slowest, a_slow) = (slowest_us.clone(), slow_loops.clone());
    let a = LocalExecutorBuilder::new(Placement::Unbound)
        .name("wake-a")
        .spawn(move || async move {
            // Drain pokes in a task of their own: each wakes A from another thread.
            let pokes = glommio::spawn_local(async move {
                let mut count = 0u64;
                while poke_rx.recv_async().await.is_ok() {
                    count += 1;
                }
                count
            })
            .detach();
            let mut seed = 0xD1B5_4A32_D192_ED03u64;
            let file = match &io_dir {
                Some(dir) => {
                    if !std::env::args().any(|a| a == "--no-probe") {
                        probe_direct_io(dir).await;
                    }
                    let path = dir.join(format!("wakeup-{}.dat", std::process::id()));
                    let f = OpenOptions::new()
                        .create(true)
                        .read(true)
                        .write(true)
                        .dma_open(&path)
                        .await
                        .expect("open the I/O file");
                    let _ = std::fs::remove_file(&path);
                    Some(f)
                }
                None => None,
            };
            for n in 0..loops {
                let loop_started = Instant::now();
                if let Some(f) = &file {
                    write_block(f, n).await;
                }
                // 1. Our own timer, 0-200 us.
                timer::sleep(Duration::from_micros(jitter(&mut seed, 200))).await;
                // 2. A wake-up from executor B's thread.
                ping_tx.send_async(n).await.expect("b alive");
                assert_eq!(pong_rx.recv_async().await.expect("b alive"), n);
                // 3. Every 16th loop, a round trip through the blocking pool.
                if n % 16 == 0 {
                    glommio::executor()
                        .spawn_blocking(move || std::thread::sleep(Duration::from_micros(20)))
                        .await;
                }
                a_done.store(n + 1, Ordering::Relaxed);
                let took_us = loop_started.elapsed().as_micros() as u64;
                a_slowest.fetch_max(took_us, Ordering::Relaxed);
                if took_us > SLOW_LOOP_US {
                    a_slow.fetch_add(1, Ordering::Relaxed);
                }
            }
            drop(ping_tx);
            drop(pokes);
        })
        .expect("executor a");

    // The watchdog: progress must move at least once per stall_ms.
    let started = Instant::now();
    let mut last = (0u64, Instant::now());
    loop {
        std::thread::sleep(Duration::from_millis(50));
        let now = done.load(Ordering::Relaxed);
        if now >= loops {
            break;
        }
        if now != last.0 {
            last = (now, Instant::now());
        } else if last.1.elapsed() > Duration::from_millis(stall_ms) {
            eprintln!(
                "HANG: no loop completed for {stall_ms} ms, at loop {now} of {loops} ({:.1} s in)",
                started.elapsed().as_secs_f64()
            );
            dump_stacks();
            std::process::exit(2);
        }
    }
    a.join().expect("a");
    b.join().expect("b");
    poker.join().expect("poker");
    println!(
        "ok: {loops} loops in {:.2} s, 0 hangs, slowest loop {} us, {} loops over {} ms",
        started.elapsed().as_secs_f64(),
        slowest_us.load(Ordering::Relaxed),
        slow_loops.load(Ordering::Relaxed),
        SLOW_LOOP_US / 1000
    );
}

/// What Weir does at start-up (log/probe.rs): glommio decides once per device
/// whether to use polled I/O, from the first DmaFile opened; on a new, empty file it
/// wrongly concludes yes. Opening a written 4 KiB file first makes it decide right.
/// `--no-probe` skips it, so the data file's writes go to the polled-I/O ring.
async fn probe_direct_io(dir: &std::path::Path) {
    let path = dir.join(format!("probe-{}", std::process::id()));
    std::fs::write(&path, [0u8; 4096]).expect("write the probe file");
    let f = DmaFile::open(&path).await.expect("open the probe file");
    f.close().await.expect("close the probe file");
    let _ = std::fs::remove_file(&path);
}

/// One aligned 4 KiB Direct-I/O write, cycling over 1 MiB; fdatasync every 8th.
async fn write_block(f: &DmaFile, n: u64) {
    let mut buf = f.alloc_dma_buffer(4096);
    buf.as_bytes_mut().fill(n as u8);
    f.write_at(buf, (n % 256) * 4096).await.expect("write");
    if n % 8 == 0 {
        f.fdatasync().await.expect("fdatasync");
    }
}

/// Per-thread CPU ticks (utime+stime) and wait channel, and the eventfds' counts:
/// tells a thread spinning without progress from one asleep.
fn thread_states() -> String {
    let mut out = String::new();
    if let Ok(tasks) = std::fs::read_dir("/proc/self/task") {
        for t in tasks.flatten() {
            let stat = std::fs::read_to_string(t.path().join("stat")).unwrap_or_default();
            let after_comm = stat.rsplit(')').next().unwrap_or("");
            let f: Vec<&str> = after_comm.split_whitespace().collect();
            let ticks = f.get(11).and_then(|u| u.parse::<u64>().ok()).unwrap_or(0)
                + f.get(12).and_then(|s| s.parse::<u64>().ok()).unwrap_or(0);
            let comm = std::fs::read_to_string(t.path().join("comm")).unwrap_or_default();
            let wchan = std::fs::read_to_string(t.path().join("wchan")).unwrap_or_default();
            out += &format!("  tid {} {} ticks={} state={} wchan={}\n", t.file_name().to_string_lossy(), comm.trim(), ticks, f.first().unwrap_or(&"?"), wchan);
        }
    }
    if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
        for fd in fds.flatten() {
            let target = std::fs::read_link(fd.path()).unwrap_or_default();
            if target.to_string_lossy().contains("eventfd") || target.to_string_lossy().contains("io_uring") {
                let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{}", fd.file_name().to_string_lossy())).unwrap_or_default();
                let keep: Vec<&str> = info.lines().filter(|l| l.starts_with("eventfd-count") || l.starts_with("SqHead") || l.starts_with("SqTail") || l.starts_with("CqHead") || l.starts_with("CqTail") || l.starts_with("CachedCqTail") || l.starts_with("CqOverflowList") || l.starts_with("SqThread")).collect();
                out += &format!("  fd {} -> {}: {}\n", fd.file_name().to_string_lossy(), target.display(), keep.join(" "));
            }
        }
    }
    out
}

fn dump_stacks() {
    eprintln!("threads now:\n{}", thread_states());
    std::thread::sleep(Duration::from_secs(1));
    eprintln!("threads 1 s later:\n{}", thread_states());
    if std::env::var_os("WAKEUP_STRACE").is_some() {
        let out = std::process::Command::new("timeout")
            .args(["0.3", "strace", "-f", "-tt", "-p", &std::process::id().to_string()])
            .output();
        if let Ok(out) = out {
            let text = String::from_utf8_lossy(&out.stderr);
            eprintln!("strace (0.3 s, first 80 lines):");
            for line in text.lines().take(80) {
                eprintln!("{line}");
            }
        }
    }
    let pid = std::process::id().to_string();
    match std::process::Command::new("gdb")
        .args(["-p", &pid, "-batch", "-ex", "thread apply all bt 30"])
        .output()
    {
        Ok(out) => eprintln!("{}", String::from_utf8_lossy(&out.stdout)),
        Err(e) => eprintln!("gdb unavailable: {e}"),
    }
}
