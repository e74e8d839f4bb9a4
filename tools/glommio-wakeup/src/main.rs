//! A minimal glommio program that exercises every way a sleeping executor is woken:
//! its own short timers, wake-ups from another executor's thread (a flume channel),
//! wake-ups from a plain thread, and glommio's blocking pool. Each loop is one round
//! of all of them; a watchdog thread fails the run (exit 2, after gdb stacks of every
//! thread) when no loop completes for `--stall-ms`. It exists to reproduce the lost
//! wake-up of glommio 0.9.0's reactor sleep and to show the patched sleep does not
//! lose one (docs/reliability.md, "Shard hang").
//!
//!   glommio-wakeup --loops 100000 [--stall-ms 5000]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use glommio::{timer, LocalExecutorBuilder, Placement};

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
            for n in 0..loops {
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
        "ok: {loops} loops in {:.2} s, 0 hangs",
        started.elapsed().as_secs_f64()
    );
}

fn dump_stacks() {
    let pid = std::process::id().to_string();
    match std::process::Command::new("gdb")
        .args(["-p", &pid, "-batch", "-ex", "thread apply all bt 30"])
        .output()
    {
        Ok(out) => eprintln!("{}", String::from_utf8_lossy(&out.stdout)),
        Err(e) => eprintln!("gdb unavailable: {e}"),
    }
}
