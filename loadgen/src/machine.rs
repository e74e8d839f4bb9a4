//! The machine a run happened on (CPU model, cores, kernel) and the CPU time
//! this process used. Read from /proc at start-up or report time, on the main
//! thread only (std::fs is fine there: no executor is blocked).

/// Where the run happened; part of every report.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Machine {
    pub cpu_model: String,
    pub cores: usize,
    pub kernel: String,
    pub memory_bytes: u64,
}

impl Machine {
    pub fn probe() -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu_model = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .and_then(|rest| rest.split_once(':'))
            .map_or_else(|| "unknown".to_string(), |(_, v)| v.trim().to_string());
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map_or_else(|_| "unknown".to_string(), |s| s.trim().to_string());
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let memory_bytes = meminfo
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map_or(0, |kb| kb * 1024);
        Self {
            cpu_model,
            cores: available_cores(),
            kernel,
            memory_bytes,
        }
    }
}

/// CPUs this process may run on (the default shard count).
pub fn available_cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The CPU the `index`-th executor runs on: the `index`-th CPU this process may
/// use (its affinity mask, as `taskset` sets it), wrapping around. glommio's
/// `Placement::Fixed` takes an absolute CPU number and overrides the mask, so
/// `taskset -c 1 weir-loadgen` with one thread would otherwise run on CPU 0.
pub fn allowed_cpu(index: usize) -> usize {
    match allowed_cpus() {
        Ok(allowed) if !allowed.is_empty() => allowed[index % allowed.len()],
        _ => index,
    }
}

/// The CPUs this process may use, in order (its affinity mask).
pub fn allowed_cpus() -> std::io::Result<Vec<usize>> {
    // SAFETY: cpu_set_t is plain data; sched_getaffinity writes into the zeroed set
    // we own, and CPU_ISSET only reads it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok((0..libc::CPU_SETSIZE as usize)
            .filter(|&c| libc::CPU_ISSET(c, &set))
            .collect())
    }
}

/// User + system CPU seconds used so far by this process (all threads).
pub fn cpu_seconds() -> f64 {
    usage_seconds(libc::RUSAGE_SELF)
}

/// User + system CPU seconds used so far by the calling thread.
pub fn thread_cpu_seconds() -> f64 {
    usage_seconds(libc::RUSAGE_THREAD)
}

fn usage_seconds(who: libc::c_int) -> f64 {
    // SAFETY: getrusage writes into the zeroed struct we own; `who` is RUSAGE_SELF or
    // RUSAGE_THREAD, both valid.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(who, &mut usage);
        usage
    };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_this_machine_when_probing_should_find_cores_and_kernel() {
        let m = Machine::probe();
        assert!(m.cores >= 1);
        assert_ne!(m.kernel, "unknown");
        let before = cpu_seconds();
        let mut x = 0u64;
        for i in 0..5_000_000u64 {
            x = x.wrapping_add(i * i);
        }
        assert!(x > 0);
        assert!(cpu_seconds() >= before);
    }
}
