//! A stable-Rust, in-process mutation fuzzer over the same targets as cargo-fuzz, for
//! CI machines without a nightly toolchain or time to install cargo-fuzz. No coverage
//! feedback: it applies AFL-style stacked mutations (bit flips, interesting integers
//! at random positions, inserts, deletes, splices) to the real-client seeds. A panic
//! saves the input under the artifacts directory and fails the run.
//!
//! Usage: `<target> [--seconds N] [--seed N] [--seeds DIR]... [--artifacts DIR] [FILE]...`
//! With FILE arguments it only replays those inputs (to reproduce a crash).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// Inputs never grow past the targets' frame limit.
const INPUT_BYTES_MAX: usize = crate::FRAME_BYTES_MAX;
/// Mutations stacked on one input (AFL's havoc stage uses up to 2^7; fewer keep most
/// of a real frame intact, which is what reaches the deep decoders).
const STACKED_MUTATIONS_MAX: u64 = 8;
/// Peak RSS allowed for a whole run: the targets' own bound is per input (see lib.rs);
/// this catches growth outside the counted Rust heap (C codecs, leaks).
const RSS_BYTES_MAX: u64 = 1024 * 1024 * 1024;

struct Options {
    seconds: u64,
    seed: u64,
    seed_dirs: Vec<PathBuf>,
    artifacts: PathBuf,
    replay: Vec<PathBuf>,
}

fn parse_args(name: &str) -> Options {
    let mut o = Options {
        seconds: 10,
        seed: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64),
        seed_dirs: Vec::new(),
        artifacts: PathBuf::from("artifacts").join(name),
        replay: Vec::new(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| panic!("{arg} needs a value"));
        match arg.as_str() {
            "--seconds" => o.seconds = value().parse().expect("--seconds N"),
            "--seed" => o.seed = value().parse().expect("--seed N"),
            "--seeds" => o.seed_dirs.push(PathBuf::from(value())),
            "--artifacts" => o.artifacts = PathBuf::from(value()),
            _ => o.replay.push(PathBuf::from(arg)),
        }
    }
    o
}

/// Every regular file under `dir`, recursively (seed corpora are client/scenario trees).
fn files_under(dir: &Path, out: &mut Vec<Vec<u8>>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        eprintln!("seed dir {} not readable; skipped", dir.display());
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            files_under(&path, out);
        } else if let Ok(bytes) = std::fs::read(&path) {
            if path.extension().is_none_or(|e| e != "json") && bytes.len() <= INPUT_BYTES_MAX {
                out.push(bytes);
            }
        }
    }
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const INTERESTING_32: [i32; 10] = [
    0,
    -1,
    1,
    0x7f,
    0x80,
    0xff,
    0x7fff,
    0x7fff_ffff,
    i32::MIN,
    0x0100_0000,
];

fn mutate(input: &mut Vec<u8>, seeds: &[Vec<u8>], rng: &mut Rng) {
    for _ in 0..=rng.next() % STACKED_MUTATIONS_MAX {
        let len = input.len();
        match rng.next() % 9 {
            0 if len > 0 => {
                let at = rng.below(len);
                input[at] ^= 1 << (rng.next() % 8);
            }
            1 if len > 0 => {
                let at = rng.below(len);
                input[at] = rng.next() as u8;
            }
            2 if len >= 4 => {
                let at = rng.below(len - 3);
                let v = INTERESTING_32[rng.below(INTERESTING_32.len())];
                input[at..at + 4].copy_from_slice(&v.to_be_bytes());
            }
            3 if len >= 2 => {
                let at = rng.below(len - 1);
                let v = INTERESTING_32[rng.below(INTERESTING_32.len())] as i16;
                input[at..at + 2].copy_from_slice(&v.to_be_bytes());
            }
            4 if len > 0 => {
                // A varint continuation byte: stretches or breaks compact lengths.
                let at = rng.below(len);
                input[at] |= 0x80;
            }
            5 => {
                let at = rng.below(len + 1);
                let n = 1 + rng.below(16);
                let bytes: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
                input.splice(at..at, bytes);
            }
            6 if len > 1 => {
                let at = rng.below(len);
                let n = 1 + rng.below((len - at).min(64));
                input.drain(at..at + n);
            }
            7 if len > 0 => input.truncate(rng.below(len)),
            8 => {
                let other = &seeds[rng.below(seeds.len())];
                let cut = rng.below(len + 1);
                let from = rng.below(other.len() + 1);
                input.truncate(cut);
                input.extend_from_slice(&other[from..]);
            }
            _ => {}
        }
    }
    input.truncate(INPUT_BYTES_MAX);
}

fn peak_rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let line = status.lines().find(|l| l.starts_with("VmHWM:"));
    line.and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |kib| kib * 1024)
}

/// Run `target` on one input; on a panic, save it and report where.
fn run_one(target: fn(&[u8]), input: &[u8], artifacts: &Path) -> bool {
    if std::panic::catch_unwind(|| target(input)).is_ok() {
        return true;
    }
    let _ = std::fs::create_dir_all(artifacts);
    let path = artifacts.join(format!("crash-{:016x}", crc32c::crc32c(input)));
    match std::fs::write(&path, input) {
        Ok(()) => eprintln!("panic on input saved to {}", path.display()),
        Err(e) => eprintln!("panic; could not save the input to {}: {e}", path.display()),
    }
    false
}

/// Rewrite a big-endian i32 length at `at` to cover the rest of the input, as a client
/// would: without it most length-changing mutations only exercise "truncated".
fn fix_length(input: &mut [u8], at: usize) {
    if input.len() >= at + 4 {
        let len = (input.len() - at - 4) as u32;
        input[at..at + 4].copy_from_slice(&len.to_be_bytes());
    }
}

/// Size prefix of a request frame (bytes 0..4).
pub fn fix_frame_prefix(input: &mut [u8]) {
    fix_length(input, 0);
}

/// batch_length of a RecordBatch (bytes 8..12, counting from byte 12).
pub fn fix_batch_length(input: &mut [u8]) {
    fix_length(input, 8);
}

/// `fixup` runs after mutation on 7 inputs of 8, repairing the outer length field so
/// the mutations reach the decoders; the 8th keeps the broken length.
pub fn main(name: &str, target: fn(&[u8]), fixup: fn(&mut [u8])) -> ExitCode {
    let o = parse_args(name);
    if !o.replay.is_empty() {
        let all_ok = o
            .replay
            .iter()
            .all(|p| run_one(target, &std::fs::read(p).expect("replay file"), &o.artifacts));
        return if all_ok {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        };
    }
    let mut seeds = Vec::new();
    o.seed_dirs.iter().for_each(|d| files_under(d, &mut seeds));
    if seeds.is_empty() {
        seeds.push(Vec::new());
    }
    // Seeds first, unmutated: real client bytes must pass.
    for seed in &seeds {
        if !run_one(target, seed, &o.artifacts) {
            return ExitCode::FAILURE;
        }
    }
    let mut rng = Rng(o.seed | 1);
    let started = Instant::now();
    let budget = Duration::from_secs(o.seconds);
    let mut executions = 0u64;
    let mut input = Vec::new();
    while started.elapsed() < budget {
        for _ in 0..256 {
            input.clear();
            input.extend_from_slice(&seeds[rng.below(seeds.len())]);
            mutate(&mut input, &seeds, &mut rng);
            if !rng.next().is_multiple_of(8) {
                fixup(&mut input);
            }
            executions += 1;
            if !run_one(target, &input, &o.artifacts) {
                eprintln!("{name}: FAILED after {executions} executions (seed {})", o.seed);
                return ExitCode::FAILURE;
            }
        }
    }
    let rss = peak_rss_bytes();
    println!(
        "FUZZ-SUMMARY target={name} engine=smoke seeds={} executions={executions} seconds={:.1} \
         exec_per_s={:.0} peak_rss_mib={} panics=0 seed={}",
        seeds.len(),
        started.elapsed().as_secs_f64(),
        executions as f64 / started.elapsed().as_secs_f64(),
        rss >> 20,
        o.seed
    );
    if rss > RSS_BYTES_MAX {
        eprintln!(
            "{name}: peak RSS {} MiB over {} MiB",
            rss >> 20,
            RSS_BYTES_MAX >> 20
        );
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
