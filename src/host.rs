//! What the host gives the process: the memory it may use, the smallest of physical RAM,
//! the cgroup's limit (v2 `memory.max`, v1 `memory.limit_in_bytes`) and `RLIMIT_AS`.
//! Query memory and write buffers are sized from it by default, so a server started
//! under `prlimit --as=8G` or in a container refuses work with a clear error before the
//! kernel or the allocator ends it. A leaf: it imports nothing of Sundial.

/// The memory this process may use, in bytes (`None` if nothing could be read).
pub fn memory_limit() -> Option<u64> {
    [physical_memory(), cgroup_limit(), address_space_limit()]
        .into_iter()
        .flatten()
        .min()
}

/// `MemTotal` of `/proc/meminfo`.
fn physical_memory() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

/// The cgroup's memory limit, if one is set.
fn cgroup_limit() -> Option<u64> {
    for path in [
        "/sys/fs/cgroup/memory.max",
        "/sys/fs/cgroup/memory/memory.limit_in_bytes",
    ] {
        if let Ok(text) = std::fs::read_to_string(path) {
            // "max", or a number; v1 spells "no limit" as a huge number.
            if let Ok(n) = text.trim().parse::<u64>()
                && n < 1 << 60
            {
                return Some(n);
            }
        }
    }
    None
}

/// The soft `RLIMIT_AS` (address space), if set.
fn address_space_limit() -> Option<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes the struct it is given.
    let ok = unsafe { libc::getrlimit(libc::RLIMIT_AS, &mut limit) } == 0;
    (ok && limit.rlim_cur != libc::RLIM_INFINITY).then_some(limit.rlim_cur)
}

/// `fraction` of [`memory_limit`] (or of `fallback` bytes when it is unknown).
pub fn share_of_memory(fraction: f64, fallback: u64) -> u64 {
    (memory_limit().unwrap_or(fallback) as f64 * fraction) as u64
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_limit_is_at_most_physical_memory() {
        let limit = super::memory_limit().expect("Linux exposes /proc/meminfo");
        assert!(limit <= super::physical_memory().unwrap());
        assert!(limit > 16 << 20);
    }
}
