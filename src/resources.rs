//! What the machine can hold: the memory this process may use and the free space of a disk, so
//! that a command whose need is known up front (`gen`) refuses before it starts rather than
//! failing, or being killed, halfway.
//!
//! Both are read from the operating system each time (no cache: a cgroup limit can change) and
//! are `None` where the system does not tell (then nothing is refused on their account).

use std::path::Path;

/// The memory this process may use, in bytes: the tightest cgroup limit on it where one is set
/// (cgroup v2 `memory.max` along its cgroup path, or v1 `memory.limit_in_bytes`), else the
/// machine's physical memory (`MemTotal` in `/proc/meminfo`).
pub fn memory_limit() -> Option<u64> {
    let physical = meminfo_total();
    let cgroup = cgroup_limit();
    match (physical, cgroup) {
        (Some(p), Some(c)) => Some(p.min(c)),
        (p, c) => p.or(c),
    }
}

/// Bytes available to an unprivileged writer on the file system holding `path`, or its
/// nearest existing ancestor (the directory to be created does not exist yet).
pub fn disk_free(path: &Path) -> Option<u64> {
    let mut p = if path.as_os_str().is_empty() {
        Path::new(".")
    } else {
        path
    };
    while !p.exists() {
        p = match p.parent() {
            Some(q) if q.as_os_str().is_empty() => Path::new("."),
            Some(q) => q,
            None => return None,
        };
    }
    free_space(p)
}

#[cfg(unix)]
fn free_space(p: &Path) -> Option<u64> {
    let s = rustix::fs::statvfs(p).ok()?;
    Some(s.f_bavail.saturating_mul(s.f_frsize))
}

#[cfg(not(unix))]
fn free_space(_: &Path) -> Option<u64> {
    None
}

fn meminfo_total() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

/// The tightest memory limit of the cgroups this process is in, if any is set.
fn cgroup_limit() -> Option<u64> {
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    let mut limits = Vec::new();
    // cgroup v2: the line `0::/path`; every cgroup from there up to the root may set a limit.
    if let Some(path) = own.lines().find_map(|l| l.strip_prefix("0::")) {
        let mut dir = Path::new("/sys/fs/cgroup").join(path.trim_start_matches('/'));
        loop {
            limits.extend(read_limit(&dir.join("memory.max")));
            if !dir.pop() || !dir.starts_with("/sys/fs/cgroup") {
                break;
            }
        }
    }
    // cgroup v1: "no limit" is a huge number, which `min` with the physical memory discards.
    limits.extend(read_limit(Path::new(
        "/sys/fs/cgroup/memory/memory.limit_in_bytes",
    )));
    limits.into_iter().min()
}

/// A limit file's value; `max` (cgroup v2's "no limit") and unreadable files give `None`.
fn read_limit(file: &Path) -> Option<u64> {
    std::fs::read_to_string(file).ok()?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limits_are_plausible_where_the_system_tells_them() {
        if let Some(m) = memory_limit() {
            assert!(m >= 16 << 20, "memory limit of {m} bytes");
        }
        let tmp = tempfile::tempdir().unwrap();
        let here = disk_free(tmp.path());
        // A directory not created yet is on its parent's file system.
        let below = disk_free(&tmp.path().join("a/b/c"));
        assert_eq!(here.is_some(), below.is_some());
        if cfg!(target_os = "linux") {
            assert!(here.is_some());
        }
    }
}
