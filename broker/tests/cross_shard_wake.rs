//! A stress run of cross-executor wake-ups: two glommio executors ping-pong a counter
//! through shared channels, so each side keeps going to sleep and being woken by the
//! other. Our glommio's sleep publishes "I am asleep" and the waker publishes its work
//! each followed by a SeqCst fence (third_party/glommio/README.weir.md, eighth patch);
//! a wake-up lost between them would cost a round trip the bounded sleep (250 ms).
//!
//! Ignored by default: it proves nothing by passing once, and its bound is a time.
//! Run it after touching the sleep or notify path:
//! `cargo test --release -p weir-broker --test cross_shard_wake -- --ignored --nocapture`

use std::time::{Duration, Instant};

use glommio::channels::shared_channel;
use glommio::{LocalExecutorBuilder, Placement};

const ROUND_TRIPS: u64 = 200_000;
/// Well under the bounded sleep (250 ms), well over a scheduling hiccup of a loaded VM.
const LOST_WAKE_MS: u128 = 200;

#[test]
#[ignore = "a stress run: see the module note"]
fn given_two_executors_ping_ponging_when_each_sleeps_between_messages_should_lose_no_wake_up() {
    let (to_b, from_a) = shared_channel::new_bounded::<u64>(1);
    let (to_a, from_b) = shared_channel::new_bounded::<u64>(1);
    let b = LocalExecutorBuilder::new(Placement::Unbound)
        .name("pong")
        .spawn(move || async move {
            let (rx, tx) = (from_a.connect().await, to_a.connect().await);
            while let Some(n) = rx.recv().await {
                if tx.send(n + 1).await.is_err() {
                    break;
                }
            }
        })
        .unwrap();
    let a = LocalExecutorBuilder::new(Placement::Unbound)
        .name("ping")
        .spawn(move || async move {
            let (tx, rx) = (to_b.connect().await, from_b.connect().await);
            let mut worst = Duration::ZERO;
            let mut slow = 0u64;
            let started = Instant::now();
            for n in 0..ROUND_TRIPS {
                let t = Instant::now();
                tx.send(n * 2).await.unwrap();
                let back = rx.recv().await.expect("pong answers");
                assert_eq!(back, n * 2 + 1, "answers arrive in order");
                let took = t.elapsed();
                worst = worst.max(took);
                if took.as_millis() >= LOST_WAKE_MS {
                    slow += 1;
                }
            }
            (started.elapsed(), worst, slow)
        })
        .unwrap();
    let (total, worst, slow) = a.join().unwrap();
    b.join().unwrap();
    println!(
        "{ROUND_TRIPS} round trips in {total:?}: {:.1} us each, worst {worst:?}, {slow} at {LOST_WAKE_MS} ms or more",
        total.as_secs_f64() * 1e6 / ROUND_TRIPS as f64
    );
    assert_eq!(slow, 0, "round trips as slow as a lost wake-up");
}
