//! The process's resident memory and threads, read when scraped, where the OS tells them
//! without a system call of its own: `/proc/self/status` (Linux). Elsewhere they are
//! unknown, and reported without a sample rather than as a made-up zero.

/// The process's resources, as far as they are known.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Process {
    /// Resident memory (`VmRSS`), in bytes.
    pub(crate) resident_bytes: Option<u64>,
    /// Threads.
    pub(crate) threads: Option<u64>,
}

/// Reads `/proc/self/status`; all `None` where it cannot be read.
pub(crate) fn read() -> Process {
    std::fs::read_to_string("/proc/self/status")
        .map(|status| parse(&status))
        .unwrap_or_default()
}

/// The fields of a `/proc/<pid>/status` text.
fn parse(status: &str) -> Process {
    let field = |name: &str| {
        let line = status.lines().find_map(|l| l.strip_prefix(name))?;
        line.split_whitespace().next()?.parse::<u64>().ok()
    };
    Process {
        resident_bytes: field("VmRSS:").and_then(|kb| kb.checked_mul(1024)),
        threads: field("Threads:"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_resident_memory_and_threads() {
        let status = "Name:\tx\nVmRSS:\t    2048 kB\nThreads:\t7\n";
        let p = parse(status);
        assert_eq!(p.resident_bytes, Some(2048 * 1024));
        assert_eq!(p.threads, Some(7));
        assert_eq!(parse("garbage"), Process::default());
        if cfg!(target_os = "linux") {
            let me = read();
            assert!(me.resident_bytes.unwrap() > 0 && me.threads.unwrap() >= 1);
        }
    }
}
