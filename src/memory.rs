//! How much memory this process may use: the memory cgroup's limit where one is set (v1
//! `memory.limit_in_bytes`, v2 `memory.max`), else the machine's available memory.

/// Bytes this process can count on: the smaller of its memory cgroup's limit and the machine's
/// `MemAvailable`; `None` where neither can be read.
pub fn available_bytes() -> Option<u64> {
    let machine = meminfo_available();
    match (cgroup_limit(), machine) {
        (Some(c), Some(m)) => Some(c.min(m)),
        (c, m) => c.or(m),
    }
}

fn meminfo_available() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

fn cgroup_limit() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (id, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        let file = if controllers.split(',').any(|c| c == "memory") {
            format!("/sys/fs/cgroup/memory{path}/memory.limit_in_bytes")
        } else if id == "0" && controllers.is_empty() {
            format!("/sys/fs/cgroup{path}/memory.max")
        } else {
            continue;
        };
        if let Ok(v) = std::fs::read_to_string(&file)
            && let Ok(n) = v.trim().parse::<u64>()
        {
            // v1 reports "no limit" as a huge number near i64::MAX; v2 as "max" (not a number).
            return (n < 1 << 60).then_some(n);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    #[test]
    fn this_machine_reports_some_memory() {
        let bytes = super::available_bytes().expect("/proc/meminfo is readable on Linux");
        assert!(bytes > 1 << 20, "{bytes} bytes");
    }
}
