//! `hiccup`: the platform's own pauses, with no broker and no Kafka in the picture.
//! One plain thread per CPU, pinned, sleeps a fixed interval again and again and
//! records how late it wakes (jHiccup's method). A vCPU the hypervisor deschedules, an
//! interrupt storm or another process on the core shows up here as it would in any
//! latency run on the same machine.
//!
//! The implied floor turns the pauses into a latency bound for a steady stream: a
//! record sent at time s inside a pause that ends at b waits at least b - s, whatever
//! the broker does. With the pauses of every probed CPU merged (a record crosses the
//! producer's core and the broker's), the count of records waiting at least x at rate R
//! is R * sum(max(0, len - x)) over the merged pauses; the quantile q's floor is the
//! smallest x at which that count drops to (1 - q) of all records.
//!
//! Each CPU's median lateness (timer and scheduler latency on an idle CPU) is taken
//! off its pauses first, so what is left is time the CPU was not there to run it.
//!
//! Memory is bounded: each thread keeps an HDR histogram and at most `PAUSES_MAX` pauses.

use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use crate::machine::allowed_cpus;

/// Pauses kept per thread; a machine pausing more often than this in one run has
/// answered the question already.
const PAUSES_MAX: usize = 100_000;

/// A wake-up later than this past its interval counts as a pause in the floor. The
/// timer's own slack on an idle Linux machine is tens of microseconds.
const PAUSE_MIN: Duration = Duration::from_micros(100);

/// `hiccup` arguments.
#[derive(clap::Args, Debug, Clone)]
pub struct HiccupArgs {
    /// How long to probe.
    #[arg(long, value_parser = crate::cli::parse_duration, default_value = "10s")]
    pub duration: Duration,
    /// How long each sleep asks for.
    #[arg(long, value_parser = crate::cli::parse_duration, default_value = "1ms")]
    pub interval: Duration,
    /// CPUs to probe, one pinned thread each (default: every CPU this process may use).
    #[arg(long, value_delimiter = ',')]
    pub cpus: Vec<usize>,
    /// The steady record rate the implied latency floor is computed for.
    #[arg(long, default_value_t = 100_000)]
    pub rate: u64,
}

/// One probed CPU's result.
#[derive(Debug, Clone)]
pub struct CpuHiccups {
    pub cpu: usize,
    /// Lateness of every wake-up, microseconds.
    pub late_us: Histogram<u64>,
    /// Wake-ups at least `PAUSE_MIN` late: (when the sleep should have ended, relative to
    /// the probe's start; how late it woke).
    pub pauses: Vec<(Duration, Duration)>,
}

/// Every CPU's result and the floor their merged pauses imply.
#[derive(Debug, Clone)]
pub struct Hiccups {
    pub duration: Duration,
    pub cpus: Vec<CpuHiccups>,
    /// The merged pauses' total length.
    pub paused: Duration,
    /// Longest merged pause.
    pub longest: Duration,
    /// Implied end-to-end latency floor at p99 and p99.99 for the given rate.
    pub floor_p99: Duration,
    pub floor_p9999: Duration,
}

/// Probe `args.cpus` (or every allowed CPU) for `args.duration`.
pub fn probe(args: &HiccupArgs) -> std::io::Result<Hiccups> {
    let cpus = if args.cpus.is_empty() {
        allowed_cpus()?
    } else {
        args.cpus.clone()
    };
    let start = Instant::now();
    let threads: Vec<_> = cpus
        .iter()
        .map(|&cpu| {
            let (duration, interval) = (args.duration, args.interval);
            std::thread::spawn(move || probe_cpu(cpu, start, duration, interval))
        })
        .collect();
    let mut results = Vec::with_capacity(threads.len());
    for t in threads {
        results.push(
            t.join()
                .map_err(|_| std::io::Error::other("a probe thread panicked"))??,
        );
    }
    // A wake-up's usual lateness (the timer's and the scheduler's, on an idle CPU) is
    // not a pause: each CPU's median is taken off its pauses, so the floor stays a
    // lower bound.
    let pauses = results.iter().flat_map(|r| {
        let usual = Duration::from_micros(r.late_us.value_at_quantile(0.5));
        r.pauses.iter().filter_map(move |&(start, late)| {
            let late = late.checked_sub(usual).filter(|l| !l.is_zero())?;
            Some((start + usual, late))
        })
    });
    let merged = merge(pauses);
    let paused = merged.iter().map(|(_, len)| *len).sum();
    let longest = merged.iter().map(|(_, len)| *len).max().unwrap_or_default();
    let records = args.rate as f64 * args.duration.as_secs_f64();
    let lengths: Vec<Duration> = merged.iter().map(|(_, len)| *len).collect();
    Ok(Hiccups {
        duration: args.duration,
        cpus: results,
        paused,
        longest,
        floor_p99: floor(&lengths, args.rate, records * 0.01),
        floor_p9999: floor(&lengths, args.rate, records * 0.0001),
    })
}

fn probe_cpu(
    cpu: usize,
    start: Instant,
    duration: Duration,
    interval: Duration,
) -> std::io::Result<CpuHiccups> {
    pin(cpu)?;
    // The default 50 us timer slack would read as lateness on every wake-up.
    // SAFETY: PR_SET_TIMERSLACK takes one integer argument and touches this thread only.
    unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong) };
    let mut late_us =
        Histogram::<u64>::new_with_max(60_000_000, 3).map_err(|e| std::io::Error::other(e.to_string()))?;
    let mut pauses = Vec::new();
    // At least one sleep, however late this thread started (a loaded machine).
    loop {
        let asleep = Instant::now();
        std::thread::sleep(interval);
        let late = asleep.elapsed().saturating_sub(interval);
        late_us.saturating_record(late.as_micros() as u64);
        if late >= PAUSE_MIN && pauses.len() < PAUSES_MAX {
            pauses.push((asleep.duration_since(start) + interval, late));
        }
        if start.elapsed() >= duration {
            break;
        }
    }
    Ok(CpuHiccups { cpu, late_us, pauses })
}

/// The union of possibly overlapping (start, length) intervals, sorted by start.
pub fn merge(pauses: impl Iterator<Item = (Duration, Duration)>) -> Vec<(Duration, Duration)> {
    let mut all: Vec<(Duration, Duration)> = pauses.collect();
    all.sort_unstable();
    let mut out: Vec<(Duration, Duration)> = Vec::with_capacity(all.len());
    for (start, len) in all {
        match out.last_mut() {
            Some((s, l)) if start <= *s + *l => *l = (*l).max(start + len - *s),
            _ => out.push((start, len)),
        }
    }
    out
}

/// The smallest wait x such that at most `allowed` records of a steady stream at
/// `rate` wait x or longer because of pauses of these `lengths`.
pub fn floor(lengths: &[Duration], rate: u64, allowed: f64) -> Duration {
    let waiting = |x: f64| -> f64 {
        lengths
            .iter()
            .map(|l| (l.as_secs_f64() - x).max(0.0))
            .sum::<f64>()
            * rate as f64
    };
    let (mut low, mut high) = (0.0f64, lengths.iter().max().map_or(0.0, |l| l.as_secs_f64()));
    if waiting(low) <= allowed {
        return Duration::ZERO;
    }
    // `waiting` falls as x grows; 60 halvings reach well under a nanosecond.
    for _ in 0..60 {
        let mid = (low + high) / 2.0;
        if waiting(mid) <= allowed {
            high = mid;
        } else {
            low = mid;
        }
    }
    Duration::from_secs_f64(high)
}

fn pin(cpu: usize) -> std::io::Result<()> {
    if cpu >= libc::CPU_SETSIZE as usize {
        return Err(std::io::Error::other(format!("no CPU {cpu}")));
    }
    // SAFETY: cpu_set_t is plain data, zeroed, naming one CPU below CPU_SETSIZE.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn given_overlapping_pauses_when_merging_should_keep_their_union() {
        let merged = merge([(ms(10), ms(5)), (ms(12), ms(10)), (ms(40), ms(1))].into_iter());
        assert_eq!(merged, vec![(ms(10), ms(12)), (ms(40), ms(1))]);
    }

    #[test]
    fn given_one_10ms_pause_in_a_second_at_100k_when_flooring_should_bound_the_tail() {
        // 100,000 records; one 10 ms pause holds 1,000 of them, the oldest for 10 ms.
        // p99 allows 1,000 records at or above the floor: the floor is 0. p99.99 allows
        // 10: (10 ms - x) * 100k = 10 gives x = 9.9 ms.
        let lengths = [ms(10)];
        assert_eq!(floor(&lengths, 100_000, 1_000.0), Duration::ZERO);
        let p9999 = floor(&lengths, 100_000, 10.0);
        assert!(
            (p9999.as_secs_f64() - 0.0099).abs() < 1e-6,
            "p99.99 floor {p9999:?}"
        );
    }

    #[test]
    fn given_no_pauses_when_flooring_should_be_zero() {
        assert_eq!(floor(&[], 100_000, 10.0), Duration::ZERO);
    }

    #[test]
    fn given_a_short_probe_when_probing_one_cpu_should_count_its_wakeups() {
        let h = probe(&HiccupArgs {
            duration: ms(50),
            interval: ms(1),
            cpus: vec![allowed_cpus().unwrap()[0]],
            rate: 100_000,
        })
        .unwrap();
        assert_eq!(h.cpus.len(), 1);
        // About 50 sleeps of 1 ms at most; a loaded machine gets fewer, never none.
        let n = h.cpus[0].late_us.len();
        assert!((1..=51).contains(&n), "{n} wake-ups");
    }
}
