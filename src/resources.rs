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

/// The memory this process can count on now, in bytes: the smaller of [`memory_limit`] and the
/// machine's `MemAvailable` (memory free or reclaimable without swapping).
pub fn memory_available() -> Option<u64> {
    let available = (|| {
        let text = std::fs::read_to_string("/proc/meminfo").ok()?;
        let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
        let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        kib.checked_mul(1024)
    })();
    match (memory_limit(), available) {
        (Some(l), Some(a)) => Some(l.min(a)),
        (l, a) => l.or(a),
    }
}

/// The tightest memory limit of the cgroups this process is in, if any is set: its own cgroup's
/// and every ancestor's, read along the path `/proc/self/cgroup` gives (cgroup v2 `memory.max`
/// under `/sys/fs/cgroup`; v1 `memory.limit_in_bytes` under `/sys/fs/cgroup/memory`).
fn cgroup_limit() -> Option<u64> {
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    let mut limits = Vec::new();
    for line in own.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(id), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let (root, file) = if controllers.split(',').any(|c| c == "memory") {
            ("/sys/fs/cgroup/memory", "memory.limit_in_bytes")
        } else if id == "0" && controllers.is_empty() {
            ("/sys/fs/cgroup", "memory.max")
        } else {
            continue;
        };
        let mut dir = Path::new(root).join(path.trim_start_matches('/'));
        loop {
            limits.extend(read_limit(&dir.join(file)));
            if !dir.pop() || !dir.starts_with(root) {
                break;
            }
        }
    }
    // cgroup v1: "no limit" is a huge number, which `min` with the physical memory discards.
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
            let available = memory_available().expect("a limit, so an availability");
            assert!(available <= m, "{available} available of a {m} limit");
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
