//! What the machine can hold: the memory this process may use and the free space of a disk, so
//! that a command whose need is known up front (`gen`) refuses before it starts rather than
//! failing, or being killed, halfway.
//!
//! Both are read from the operating system each time (no cache: a cgroup limit can change) and
//! are `None` where the system does not tell (then nothing is refused on their account).

use std::path::{Path, PathBuf};

use crate::setting::ByteSize;

/// The memory this process may use, in bytes: see [`MemoryLimit::find`] (without an override).
pub fn memory_limit() -> Option<u64> {
    MemoryLimit::find(None).map(|l| l.bytes)
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

/// The memory a run may use, and where that number comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemoryLimit {
    /// The limit.
    pub bytes: u64,
    /// Where it comes from: `--max-memory`, a cgroup file, or physical memory.
    pub source: String,
}

impl MemoryLimit {
    /// `--max-memory` when given, else the smaller of the memory cgroup's limit (where one is set)
    /// and the physical memory; `None` when neither can be read (then nothing is refused).
    pub fn find(max_memory: Option<ByteSize>) -> Option<MemoryLimit> {
        if let Some(m) = max_memory {
            return Some(MemoryLimit {
                bytes: m.0,
                source: "--max-memory".into(),
            });
        }
        let read = |p: &Path| std::fs::read_to_string(p).ok();
        let physical = read(Path::new("/proc/meminfo"))
            .and_then(|t| mem_total(&t))
            .map(|bytes| MemoryLimit {
                bytes,
                source: "physical memory".into(),
            });
        let cgroup = match (
            read(Path::new("/proc/self/cgroup")),
            read(Path::new("/proc/self/mountinfo")),
        ) {
            (Some(c), Some(m)) => cgroup_limit(&c, &m, read),
            _ => None,
        };
        match (cgroup, physical) {
            (Some(c), Some(p)) if c.bytes < p.bytes => Some(c),
            (c, None) => c,
            (_, p) => p,
        }
    }
}

/// `MemTotal` of `/proc/meminfo`'s `text`, in bytes.
fn mem_total(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib.saturating_mul(1024))
}

/// The tightest memory limit of this process's cgroups, from the texts of `/proc/self/cgroup`
/// and `/proc/self/mountinfo`, reading the limit files with `read`: for cgroup v1 the memory
/// controller's `memory.limit_in_bytes`, for v2 `memory.max`, of the process's cgroup and of
/// each ancestor up to the mount point (a parent's limit binds its children). "No limit"
/// (`max`, or v1's near-2⁶³ value) counts as none.
fn cgroup_limit(
    cgroup: &str,
    mountinfo: &str,
    read: impl Fn(&Path) -> Option<String>,
) -> Option<MemoryLimit> {
    let mut best: Option<MemoryLimit> = None;
    for line in cgroup.lines() {
        let mut f = line.splitn(3, ':');
        let (Some(_), Some(controllers), Some(path)) = (f.next(), f.next(), f.next()) else {
            continue;
        };
        let (fstype, file) = if controllers.is_empty() {
            ("cgroup2", "memory.max")
        } else if controllers.split(',').any(|c| c == "memory") {
            ("cgroup", "memory.limit_in_bytes")
        } else {
            continue;
        };
        for (root, mount) in mounts(mountinfo, fstype) {
            let rel = Path::new(path)
                .strip_prefix(&root)
                .unwrap_or(Path::new(""))
                .to_path_buf();
            let mut dir = mount.join(rel);
            loop {
                let f = dir.join(file);
                if let Some(bytes) = read(&f).and_then(|t| limit_value(&t))
                    && best.as_ref().is_none_or(|b| bytes < b.bytes)
                {
                    best = Some(MemoryLimit {
                        bytes,
                        source: format!("the cgroup limit in {}", f.display()),
                    });
                }
                if dir == mount || !dir.pop() {
                    break;
                }
            }
        }
    }
    best
}

/// `(root, mount point)` of every mount of `fstype` in a mountinfo text; for v1 only the
/// memory controller's.
fn mounts(mountinfo: &str, fstype: &str) -> Vec<(PathBuf, PathBuf)> {
    mountinfo
        .lines()
        .filter_map(|line| {
            let (before, after) = line.split_once(" - ")?;
            let mut after = after.split_whitespace();
            let ty = after.next()?;
            let _source = after.next();
            let options = after.next().unwrap_or("");
            if ty != fstype || (ty == "cgroup" && !options.split(',').any(|o| o == "memory")) {
                return None;
            }
            let mut f = before.split_whitespace();
            let root = f.nth(3)?;
            let mount = f.next()?;
            Some((PathBuf::from(root), PathBuf::from(mount)))
        })
        .collect()
}

/// A limit file's value: `None` for "max" or v1's "unlimited" (≥ 2⁶²).
fn limit_value(text: &str) -> Option<u64> {
    let v: u64 = text.trim().parse().ok()?;
    (v < 1 << 62).then_some(v)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    const MOUNTINFO: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 31 0:33 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    fn reader(files: &[(&str, &str)]) -> impl Fn(&Path) -> Option<String> {
        let files: HashMap<PathBuf, String> = files
            .iter()
            .map(|(p, t)| (PathBuf::from(p), t.to_string()))
            .collect();
        move |p| files.get(p).cloned()
    }

    #[test]
    fn a_v1_limit_of_the_process_cgroup_or_an_ancestor_binds() {
        let cgroup = "4:memory:/jobs/task7\n0::/\n";
        let read = reader(&[
            (
                "/sys/fs/cgroup/memory/jobs/task7/memory.limit_in_bytes",
                "9223372036854771712\n",
            ),
            (
                "/sys/fs/cgroup/memory/jobs/memory.limit_in_bytes",
                "2147483648\n",
            ),
        ]);
        let l = cgroup_limit(cgroup, MOUNTINFO, read).unwrap();
        assert_eq!(l.bytes, 2 << 30);
        assert!(
            l.source
                .contains("/sys/fs/cgroup/memory/jobs/memory.limit_in_bytes")
        );
    }

    #[test]
    fn a_v2_memory_max_binds_and_max_means_none() {
        let mountinfo = "30 1 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n";
        let cgroup = "0::/user.slice/job\n";
        let read = reader(&[
            ("/sys/fs/cgroup/user.slice/job/memory.max", "1073741824\n"),
            ("/sys/fs/cgroup/user.slice/memory.max", "max\n"),
        ]);
        let l = cgroup_limit(cgroup, mountinfo, read).unwrap();
        assert_eq!(l.bytes, 1 << 30);
        let none = reader(&[("/sys/fs/cgroup/user.slice/job/memory.max", "max\n")]);
        assert_eq!(cgroup_limit(cgroup, mountinfo, none), None);
    }

    #[test]
    fn a_container_whose_cgroup_is_the_mount_root_reads_the_mount_point() {
        // Inside a cgroup namespace the mount's root is the container's own cgroup.
        let mountinfo = "30 1 0:26 /docker/abc /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n";
        let read = reader(&[("/sys/fs/cgroup/memory.max", "536870912")]);
        let l = cgroup_limit("0::/docker/abc\n", mountinfo, read).unwrap();
        assert_eq!(l.bytes, 512 << 20);
    }

    #[test]
    fn physical_memory_is_mem_total() {
        let meminfo = "MemTotal:       24684092 kB\nMemFree:  100 kB\n";
        assert_eq!(mem_total(meminfo), Some(24684092 * 1024));
        assert_eq!(
            MemoryLimit::find(Some(ByteSize(5))).unwrap().source,
            "--max-memory"
        );
    }

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
