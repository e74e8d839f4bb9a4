//! Start-up and shutdown: one glommio executor per shard pinned to its CPU, the
//! mesh between them, and signal handling on the main thread (SIGINT/SIGTERM:
//! stop accepting, drain in-flight requests, flush, write clean-shutdown
//! markers, exit 0).

use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use glommio::{LocalExecutorBuilder, Placement};

use crate::config::ServeArgs;
use crate::handlers::ShardContext;
use crate::limits;
use crate::metadata::producer_ids::{self, ProducerIds};
use crate::metadata::{store, Catalog};
use crate::network::listener;
use crate::shard::mesh::{self, MeshEnds};
use crate::shard::stall_probe;
use crate::shard::watchdog::{self, Heartbeats};

static STOP: AtomicBool = AtomicBool::new(false);

/// The shards share the bootstrap port through SO_REUSEPORT, which also lets a second broker
/// bind a port another process already listens on: the kernel then splits connections between
/// the two, silently. Refuse to start when a socket already LISTENs on one of our ports. (A plain
/// bind probe is not usable: right after a restart it trips over the previous run's closing
/// connections, which are harmless.) Blocking std reads: start-up only, before any executor.
///
/// A listener of a process that just died can outlive it briefly: io_uring tears a ring
/// down in a kernel worker after exit, and a pending accept holds the socket until then
/// (seen when the crash harness restarts right after SIGKILL). So a port still taken is
/// re-checked for up to `PORT_RELEASE_WAIT_MS` before start-up is refused.
fn ensure_ports_free(args: &ServeArgs) -> Result<(), String> {
    const PORT_RELEASE_WAIT_MS: u64 = 5_000;
    let ip = args.listen.ip();
    let shard_ports = (0..args.shard_count()).map(|s| std::net::SocketAddr::new(ip, args.shard_port(s)));
    let tls_ports = args.tls_listen.into_iter().flat_map(|t| {
        let own =
            (0..args.shard_count()).map(move |s| std::net::SocketAddr::new(t.ip(), args.tls_shard_port(s)));
        std::iter::once(t).chain(own)
    });
    let ports: Vec<std::net::SocketAddr> = std::iter::once(args.listen)
        .chain(shard_ports)
        .chain(tls_ports)
        .chain(args.metrics_listen)
        .collect();
    let started = Instant::now();
    let deadline = started + Duration::from_millis(PORT_RELEASE_WAIT_MS);
    loop {
        let Some(taken) = ports.iter().find(|a| listening(**a)) else {
            if started.elapsed() >= Duration::from_millis(100) {
                // Start-up time a restart benchmark would otherwise not see in the log.
                tracing::info!(
                    waited_ms = started.elapsed().as_millis() as u64,
                    "ports released by the previous process"
                );
            }
            return Ok(());
        };
        if Instant::now() >= deadline {
            return Err(format!(
                "cannot listen on {taken}: another process already listens there (another broker?)"
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether a socket in LISTEN state holds `addr`'s port on its IP or a wildcard, per
/// /proc/net/tcp and /proc/net/tcp6 (local address as native-order u32 words, hex).
fn listening(addr: std::net::SocketAddr) -> bool {
    const TCP_LISTEN: &str = "0A";
    let wanted = match addr.ip() {
        std::net::IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map_or(std::net::IpAddr::V6(v6), std::net::IpAddr::V4),
        v4 => v4,
    };
    let holds = |local: &str| -> Option<bool> {
        let (ip_hex, port_hex) = local.split_once(':')?;
        if u16::from_str_radix(port_hex, 16).ok()? != addr.port() {
            return Some(false);
        }
        let mut bytes = Vec::with_capacity(16);
        for word in ip_hex.as_bytes().chunks(8) {
            let word = u32::from_str_radix(std::str::from_utf8(word).ok()?, 16).ok()?;
            bytes.extend_from_slice(&word.to_ne_bytes());
        }
        let ip = match bytes.len() {
            4 => std::net::IpAddr::from(<[u8; 4]>::try_from(bytes).ok()?),
            16 => {
                let v6 = std::net::Ipv6Addr::from(<[u8; 16]>::try_from(bytes).ok()?);
                v6.to_ipv4_mapped()
                    .map_or(std::net::IpAddr::V6(v6), std::net::IpAddr::V4)
            }
            _ => return None,
        };
        Some(ip == wanted || ip.is_unspecified() || wanted.is_unspecified())
    };
    ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|path| std::fs::read_to_string(path).ok())
        .any(|table| {
            table.lines().skip(1).any(|line| {
                let mut fields = line.split_whitespace();
                let (Some(local), Some(state)) = (fields.nth(1), fields.nth(1)) else {
                    return false;
                };
                state == TCP_LISTEN && holds(local) == Some(true)
            })
        })
}

/// Checks before anything is opened: the flags, free ports, the TLS certificate and key.
fn preflight(args: &ServeArgs) -> Result<(), String> {
    args.validate()?;
    ensure_ports_free(args)?;
    crate::network::tls::init(args)
}

pub fn run(mut args: ServeArgs) -> Result<(), String> {
    preflight(&args)?;
    abort_on_panic();
    // An absolute data directory: glommio's directory and rename calls failed on
    // a relative one (the default ./weir-data), so resolve it once here.
    std::fs::create_dir_all(&args.data_dir)
        .map_err(|e| format!("creating {}: {e}", args.data_dir.display()))?;
    args.data_dir = std::fs::canonicalize(&args.data_dir)
        .map_err(|e| format!("resolving {}: {e}", args.data_dir.display()))?;
    let catalog = store::load_or_init(&args.data_dir).map_err(|e| crate::error::chain(&e))?;
    let first_producer_id = producer_ids::load(&args.data_dir).map_err(|e| crate::error::chain(&e))?;
    let shard_count = args.shard_count();
    log_limits(&args, &catalog, shard_count);
    let signals = block_signals();
    let args = Arc::new(args);
    let catalog = Arc::new(catalog);
    let mut handles = Vec::with_capacity(shard_count);
    let (beats, nudges) = Heartbeats::new(shard_count);
    let watchdog = watchdog::spawn(beats.clone()).map_err(|e| format!("cannot start the watchdog: {e}"))?;
    for ((cpu, mesh), nudge) in mesh::build::<ShardContext>(shard_count, limits::MESH_CHANNEL_CAPACITY)
        .into_iter()
        .enumerate()
        .zip(nudges)
    {
        let (args, catalog, beats) = (args.clone(), catalog.clone(), beats.clone());
        let handle = shard_executor(cpu)
            .spawn(move || async move {
                watchdog::start_on_shard(cpu, beats.clone(), nudge);
                let result =
                    shard_main(args, catalog, mesh, shard_count, beats.clone(), first_producer_id).await;
                beats.retire(cpu);
                if let Err(e) = &result {
                    // One shard down means partitions without an owner: stop them all.
                    tracing::error!(shard = cpu, error = %e, "shard failed; stopping the broker");
                    STOP.store(true, Ordering::SeqCst);
                }
                result
            })
            .map_err(|e| format!("cannot start shard on cpu {cpu}: {e}"))?;
        handles.push(handle);
    }
    tracing::info!(
        listen = %args.listen,
        shards = shard_count,
        data_dir = %args.data_dir.display(),
        zero_hop = !args.single_address,
        "weir started"
    );
    std::thread::spawn(move || {
        wait_for_signal(&signals);
        tracing::info!("signal received; shutting down");
        STOP.store(true, Ordering::SeqCst);
    });
    let mut failed = false;
    for h in handles {
        match h.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::error!(error = %e, "shard failed");
                failed = true;
            }
            Err(e) => {
                tracing::error!(error = ?e, "shard thread failed");
                failed = true;
            }
        }
    }
    beats.stop();
    let _ = watchdog.join();
    if failed {
        return Err("a shard failed".into());
    }
    tracing::info!("weir stopped cleanly");
    Ok(())
}

async fn shard_main(
    args: Arc<ServeArgs>,
    catalog: Arc<Catalog>,
    mesh: MeshEnds<ShardContext>,
    shard_count: usize,
    beats: Arc<Heartbeats>,
    first_producer_id: i64,
) -> Result<(), String> {
    let (mesh, inbound) = mesh.split();
    let shard = Rc::new(ShardContext::new(args.clone(), shard_count, mesh));
    tracing::debug!("start-up: probing direct I/O");
    // Before any segment is opened on this executor: glommio's polled-I/O
    // probe on a new empty file breaks Direct-I/O reads (log/probe.rs).
    crate::log::direct_io_probe(&args.data_dir)
        .await
        .map_err(|e| format!("direct I/O probe: {e}"))?;
    let stop = event_listener::Event::new();
    // Before the partitions open, so /health can say "not ready" during recovery.
    if let (0, Some(addr)) = (shard.id, args.metrics_listen) {
        let listener =
            crate::network::metrics::http::bind(addr).map_err(|e| format!("bind metrics {addr}: {e}"))?;
        glommio::spawn_local(crate::network::metrics::http::serve(
            shard.clone(),
            listener,
            beats.clone(),
            stop.listen(),
        ))
        .detach();
    }
    tracing::debug!("start-up: opening partitions");
    shard
        .apply_catalog(catalog)
        .await
        .map_err(|e| format!("opening partitions: {e}"))?;
    open_coordinators(&shard, &args, first_producer_id).await?;
    mesh::serve_inbound(shard.clone(), inbound);
    tracing::debug!("start-up: binding listeners");
    let listeners = listener::bind(&shard).map_err(|e| format!("bind {}: {e}", args.listen))?;
    let mut accept_tasks = Vec::new();
    for bound in listeners {
        accept_tasks.push(glommio::spawn_local(listener::accept_loop(
            shard.clone(),
            bound,
            stop.listen(),
        )));
    }
    if let Some(threshold) = stall_probe::threshold() {
        glommio::spawn_local(stall_probe::run(shard.id, threshold, stop.listen())).detach();
    }
    glommio::spawn_local(retention_loop(shard.clone())).detach();
    glommio::spawn_local(crate::handlers::backlog::refresh_loop(shard.clone())).detach();
    // Recovery writes markers through other shards: they serve their mesh ends
    // once their partitions are open, so a call to one still starting waits.
    glommio::spawn_local(crate::handlers::txn_timer::run(shard.clone())).detach();
    if let Some(timers) = shard.timers() {
        glommio::spawn_local(crate::handlers::timer_fire::run(shard.clone(), timers)).detach();
    }
    glommio::spawn_local(crate::handlers::share_dead_letter::background(shard.clone())).detach();
    // The shard's thread is pinned, so the CPU it runs on now is its CPU (the
    // shard-th allowed one, `allowed_cpu`, not always CPU number `shard.id`).
    // SAFETY: sched_getcpu takes no arguments and touches no memory of ours.
    let cpu = unsafe { libc::sched_getcpu() };
    tracing::info!(shard = shard.id, cpu, "shard ready");
    beats.set_ready(shard.id, true);
    while !STOP.load(Ordering::SeqCst) {
        glommio::timer::sleep(Duration::from_millis(50)).await;
    }
    shard.stopping.set(true);
    beats.set_ready(shard.id, false);
    stop.notify(usize::MAX);
    shard.stop_event.notify(usize::MAX);
    for t in accept_tasks {
        t.await;
    }
    let deadline = Instant::now() + Duration::from_millis(limits::SHUTDOWN_DRAIN_MS);
    while shard.connections.get() > 0 && Instant::now() < deadline {
        glommio::timer::sleep(Duration::from_millis(10)).await;
    }
    shard.close().await;
    // Let peers finish calls into this shard before the mesh closes.
    glommio::timer::sleep(Duration::from_millis(100)).await;
    shard.mesh.close();
    Ok(())
}

/// The group and transaction coordinators of this shard, and on shard 0 the
/// producer-id allocator.
async fn open_coordinators(
    shard: &Rc<ShardContext>,
    args: &ServeArgs,
    first_producer_id: i64,
) -> Result<(), String> {
    tracing::debug!("start-up: opening the group coordinator");
    let groups_dir = args.data_dir.join("__groups").join(format!("shard-{}", shard.id));
    let coordinator = crate::groups::GroupCoordinator::open(groups_dir, args.group_config())
        .await
        .map_err(|e| format!("opening the group coordinator: {e}"))?;
    shard.set_groups(coordinator);
    tracing::debug!("start-up: opening the transaction coordinator");
    let txn_dir = args
        .data_dir
        .join("__transactions")
        .join(format!("shard-{}", shard.id));
    let txns = crate::txn::TxnCoordinator::open(&txn_dir, crate::txn::LOG_COMPACT_BYTES)
        .await
        .map_err(|e| format!("opening the transaction coordinator: {e}"))?;
    shard.set_txns(txns);
    tracing::debug!("start-up: opening the share state");
    let share_dir = args.data_dir.join("__share").join(format!("shard-{}", shard.id));
    let share = crate::share::ShareState::open(&share_dir, args.share_config())
        .await
        .map_err(|e| format!("opening the share state: {e}"))?;
    shard.set_share(share);
    tracing::debug!("start-up: opening the timer store");
    let timer_dir = args.data_dir.join("__timers").join(format!("shard-{}", shard.id));
    let pid = crate::timer::producer_id(shard.id);
    let partitions = shard.partitions.clone();
    let timers = crate::timer::TimerStore::open(&timer_dir, shard.id, |topic, partition| {
        partitions.log(topic, partition)?.last_sequence(pid)
    })
    .await
    .map_err(|e| format!("opening the timer store: {e}"))?;
    shard.set_timers(timers);
    if shard.id == 0 {
        shard.set_producer_ids(ProducerIds::new(args.data_dir.clone(), first_producer_id));
    }
    Ok(())
}

async fn retention_loop(shard: Rc<ShardContext>) {
    loop {
        glommio::timer::sleep(Duration::from_millis(shard.args.retention_check_ms)).await;
        if shard.stopping.get() {
            return;
        }
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        for log in shard.partitions.all() {
            if let Err(e) = log.enforce_retention(now_ms).await {
                tracing::warn!(shard = shard.id, error = %e, "retention failed");
            }
        }
    }
}

/// A panic on any thread of a serving broker ends the process (SIGABRT) instead of
/// leaving it half alive. A shard whose executor died left its partitions without an
/// owner while the other shards served on: requests routed to it waited out their
/// deadlines until someone stopped the broker (CI saw a fetch time out that way,
/// docs/reliability.md, "A shard panic"). A supervisor restarts weir, and recovery runs
/// as after a kill -9, which loses nothing acknowledged with acks=all.
fn abort_on_panic() {
    let print = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        print(info);
        let thread = std::thread::current();
        tracing::error!(
            thread = thread.name().unwrap_or("unnamed"),
            panic = %info,
            "a broker thread panicked; aborting (restart weir: recovery runs as after a kill -9)"
        );
        std::process::abort();
    }));
}

/// Shard `cpu`'s executor, pinned; with `WEIR_STALL_MS` set, stall detection on.
fn shard_executor(cpu: usize) -> LocalExecutorBuilder {
    let pinned = allowed_cpu(cpu);
    let builder = LocalExecutorBuilder::new(Placement::Fixed(pinned))
        .name(&format!("weir-shard-{cpu}"))
        .blocking_thread_pool_placement(blocking_pool(pinned));
    match stall_probe::threshold() {
        // glommio's detector fires at the preempt timer plus the threshold (the timer
        // is 100 ms by default): diagnosis shortens it to the threshold.
        Some(threshold) => builder
            .preempt_timer(threshold)
            .detect_stalls(Some(Box::new(stall_probe::StallLog { threshold }))),
        None => builder,
    }
}

/// glommio's blocking-thread pool of a shard: `BLOCKING_THREADS` threads on the shard's
/// own CPU. The pool runs every file operation io_uring cannot (directory listings,
/// small `std::fs` reads and writes, rename, unlink, truncate). glommio's default is one
/// thread, so opening 5,000 partitions on a shard after a reboot waited for their cold
/// metadata reads one at a time. The threads mostly sleep in those syscalls, so they
/// share the shard's CPU.
fn blocking_pool(cpu: usize) -> glommio::PoolPlacement {
    match glommio::CpuSet::online() {
        Ok(all) => glommio::PoolPlacement::Custom(vec![all.filter(|l| l.cpu == cpu); BLOCKING_THREADS]),
        Err(_) => glommio::PoolPlacement::Unbound(BLOCKING_THREADS),
    }
}

/// Threads in a shard's blocking pool (`blocking_pool`).
const BLOCKING_THREADS: usize = 8;

/// The CPU shard `shard` runs on: the `shard`-th CPU this process may use (its
/// affinity mask, as `taskset` sets it). glommio's `Placement::Fixed` takes an
/// absolute CPU number and overrides the mask, so `taskset -c 1 weir serve
/// --shards 1` would otherwise run its shard on CPU 0.
/// Descriptors besides partitions, segment files and connections, per shard: its
/// io_uring rings and eventfds, listeners, the timer, offsets and transaction logs.
/// Measured: a 2-shard broker with no topic and no client holds 22 in all (stdio
/// included), so 16 leaves room for the files written now and then.
const FIXED_FILES_PER_SHARD: u64 = 16;

/// The log's per-shard budgets and the buffer reuse bound, set before the shards
/// start, and the descriptor check.
fn log_limits(args: &ServeArgs, catalog: &Catalog, shard_count: usize) {
    // Before any shard allocates: read buffers are reused, not faulted in anew.
    crate::buffer_reuse::keep_freed_buffers(args.read_ahead_bytes);
    crate::log::set_read_ahead_budget(args.read_ahead_bytes);
    crate::log::set_fetch_verify_crc(args.fetch_verify_crc);
    crate::log::set_zero_ahead(args.zero_ahead);
    crate::log::set_unwritten_bytes_max(args.unwritten_bytes_max);
    crate::log::set_write_hold_ms(args.write_hold_ms);
    crate::log::set_open_segment_files_limit(args.max_open_segment_files.div_ceil(shard_count));
    open_files_limit(args, catalog, shard_count);
}

/// Raise the soft RLIMIT_NOFILE to the hard limit (the soft default is often 1,024)
/// and say how the descriptors divide: one per partition (its active segment), the
/// sealed-segment cache, fixed per-shard files; what is left bounds the connections.
fn open_files_limit(args: &ServeArgs, catalog: &Catalog, shard_count: usize) {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain syscalls on a local struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return;
        }
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: limit.rlim_max,
                rlim_max: limit.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                limit.rlim_cur = limit.rlim_max;
            }
        }
    }
    let partitions: u64 = catalog
        .topics
        .values()
        .map(|t| t.partition_count().max(0) as u64)
        .sum();
    let segments = (crate::log::open_segment_files_limit() * shard_count) as u64;
    let fixed = FIXED_FILES_PER_SHARD * shard_count as u64;
    let needed = partitions + segments + fixed;
    let left = limit.rlim_cur.saturating_sub(needed);
    if needed > limit.rlim_cur || left < args.connections_max as u64 {
        tracing::warn!(
            limit = limit.rlim_cur,
            partitions,
            segment_files = segments,
            fixed,
            connections_max = args.connections_max,
            "RLIMIT_NOFILE leaves room for {left} connections only (docs/operations.md, \"Open files\")"
        );
    } else {
        tracing::info!(
            limit = limit.rlim_cur,
            partitions,
            segment_files = segments,
            fixed,
            "open files"
        );
    }
}

fn allowed_cpu(shard: usize) -> usize {
    // SAFETY: cpu_set_t is plain data; sched_getaffinity writes into the zeroed set
    // we own, and CPU_ISSET only reads it.
    let allowed: Vec<usize> = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return shard;
        }
        (0..libc::CPU_SETSIZE as usize)
            .filter(|&c| libc::CPU_ISSET(c, &set))
            .collect()
    };
    if allowed.is_empty() {
        return shard;
    }
    allowed[shard % allowed.len()]
}

/// Block SIGINT/SIGTERM in this thread before the executors start, so every
/// thread inherits the mask and only `wait_for_signal` sees them.
fn block_signals() -> libc::sigset_t {
    // SAFETY: sigset_t is plain data; the libc calls only write into it.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    }
}

fn wait_for_signal(set: &libc::sigset_t) {
    let mut sig: libc::c_int = 0;
    // SAFETY: `set` is a valid, initialised signal set; sigwait writes `sig`.
    unsafe {
        libc::sigwait(set, &mut sig);
    }
}

#[cfg(test)]
mod port_tests {
    #[test]
    fn given_a_listening_socket_when_checking_its_port_should_report_it_and_not_a_closed_one() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        assert!(super::listening(addr));
        let wildcard = std::net::SocketAddr::new("0.0.0.0".parse().unwrap(), addr.port());
        assert!(super::listening(wildcard), "a wildcard listen overlaps 127.0.0.1");
        drop(listener);
        assert!(!super::listening(addr));
    }
}
