//! CPU time and resident memory of a process, read from /proc.

use std::time::Duration;

/// Clock ticks per second of /proc/<pid>/stat times (USER_HZ; 100 on every Linux we target).
const TICKS_PER_SECOND: f64 = 100.0;

/// One process's CPU time and resident memory, from /proc.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcSample {
    user_ticks: u64,
    system_ticks: u64,
    pub rss_kib: u64,
}

/// `pid` is a process id, or `self`.
pub fn sample(pid: &str) -> Option<ProcSample> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss_kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())?;
    Some(ProcSample {
        user_ticks: utime,
        system_ticks: stime,
        rss_kib,
    })
}

/// CPU used between two samples, in percent of one core: in all, in user space, in the kernel.
pub fn cpu_percent(before: ProcSample, after: ProcSample, elapsed: Duration) -> [f64; 3] {
    let percent = |ticks: u64| 100.0 * ticks as f64 / TICKS_PER_SECOND / elapsed.as_secs_f64();
    let user = after.user_ticks.saturating_sub(before.user_ticks);
    let system = after.system_ticks.saturating_sub(before.system_ticks);
    [percent(user + system), percent(user), percent(system)]
}
