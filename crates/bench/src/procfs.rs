//! What the benchmarks read from `/proc`: a process's resident memory and the CPU model.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// `VmRSS` from the text of `/proc/<pid>/status`, in KiB (the kernel's `kB` are KiB).
pub fn parse_vmrss_kib(status: &str) -> Option<u64> {
    status.lines().find_map(|line| {
        let rest = line.strip_prefix("VmRSS:")?;
        let mut parts = rest.split_whitespace();
        let value: u64 = parts.next()?.parse().ok()?;
        match parts.next() {
            Some("kB") | None => Some(value),
            Some(_) => None,
        }
    })
}

/// The current resident memory of `pid` in KiB; `None` if it is gone or unreadable.
pub fn read_vmrss_kib(pid: u32) -> Option<u64> {
    // Reading procfs does not block on I/O, so a plain read is fine inside async code.
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    parse_vmrss_kib(&status)
}

/// User plus system CPU time, in clock ticks, from the text of `/proc/<pid>/stat` (fields 14
/// and 15, counted after the parenthesised command name, which may itself hold spaces).
pub fn parse_cpu_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// The CPU time `pid` (all its threads) has used so far, in seconds; `None` if it is gone.
/// Ticks are taken to be Linux's `USER_HZ` of 100, which every mainstream architecture uses.
pub fn read_cpu_secs(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_cpu_ticks(&stat).map(|t| t as f64 / 100.0)
}

/// The first `model name` in the text of `/proc/cpuinfo` (x86), else the first `Model` or
/// `Hardware` line (ARM boards), else `None`.
pub fn cpu_model(cpuinfo: &str) -> Option<String> {
    let field = |name: &str| {
        cpuinfo.lines().find_map(|line| {
            let (k, v) = line.split_once(':')?;
            (k.trim() == name && !v.trim().is_empty()).then(|| v.trim().to_string())
        })
    };
    field("model name")
        .or_else(|| field("Model"))
        .or_else(|| field("Hardware"))
}

/// KiB as MiB, for reports.
pub(crate) fn kib_to_mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// Samples a process's resident memory in the background and keeps the maximum seen.
///
/// Dropping the sampler without calling [`RssSampler::stop`] leaves its task running until the
/// process it watches disappears from the runtime; always call `stop`.
pub struct RssSampler {
    pid: u32,
    max_kib: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl RssSampler {
    /// Starts sampling `pid` every `every` (first sample immediately).
    pub fn start(pid: u32, every: Duration) -> Self {
        let max_kib = Arc::new(AtomicU64::new(0));
        let max = Arc::clone(&max_kib);
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                if let Some(kib) = read_vmrss_kib(pid) {
                    max.fetch_max(kib, Ordering::Relaxed);
                }
            }
        });
        Self { pid, max_kib, task }
    }

    /// Stops sampling, takes one last sample and returns the maximum in KiB (`None` if the
    /// process could never be read).
    pub async fn stop(self) -> Option<u64> {
        self.task.abort();
        // The task only ever ends by abort; its JoinError says so and carries nothing.
        let _ = self.task.await;
        if let Some(kib) = read_vmrss_kib(self.pid) {
            self.max_kib.fetch_max(kib, Ordering::Relaxed);
        }
        Some(self.max_kib.load(Ordering::Relaxed)).filter(|k| *k > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATUS: &str = "Name:\tstrata\nUmask:\t0022\nState:\tS (sleeping)\n\
        VmPeak:\t  123456 kB\nVmHWM:\t   40000 kB\nVmRSS:\t   34816 kB\nRssAnon:\t   20000 kB\n";

    #[test]
    fn parses_vmrss() {
        assert_eq!(parse_vmrss_kib(STATUS), Some(34816));
        assert_eq!(parse_vmrss_kib("VmRSS: 12"), Some(12));
        assert_eq!(kib_to_mib(34816), 34.0);
    }

    #[test]
    fn vmrss_missing_or_malformed() {
        // Kernel threads and zombies have no VmRSS line.
        assert_eq!(parse_vmrss_kib("Name:\tkthreadd\nState:\tS\n"), None);
        assert_eq!(parse_vmrss_kib("VmRSS:\tlots kB\n"), None);
        assert_eq!(parse_vmrss_kib("VmRSS:\t12 MB\n"), None);
        assert_eq!(parse_vmrss_kib("VmRSSX:\t12 kB\n"), None);
        assert_eq!(parse_vmrss_kib(""), None);
    }

    #[test]
    fn reads_own_rss() {
        let kib = read_vmrss_kib(std::process::id()).expect("own VmRSS");
        assert!(kib > 0);
        assert_eq!(read_vmrss_kib(u32::MAX), None);
    }

    #[test]
    fn cpu_ticks() {
        let stat = "4242 (strata (x) y) S 1 4242 4242 0 -1 4194560 2553 0 0 0 \
            1234 56 0 0 20 0 9 0 123456 1000000 5000 18446744073709551615";
        assert_eq!(parse_cpu_ticks(stat), Some(1290));
        assert_eq!(parse_cpu_ticks("1 (x) S 1 2"), None);
        assert_eq!(parse_cpu_ticks("no parenthesis"), None);
        assert!(read_cpu_secs(std::process::id()).is_some());
        assert_eq!(read_cpu_secs(u32::MAX), None);
    }

    #[test]
    fn cpu_models() {
        let x86 = "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel\t\t: 1\n\
            model name\t: AMD EPYC 7B13\nprocessor\t: 1\nmodel name\t: AMD EPYC 7B13\n";
        assert_eq!(cpu_model(x86).as_deref(), Some("AMD EPYC 7B13"));
        let arm = "processor\t: 0\nBogoMIPS\t: 108.00\n\nModel\t\t: Raspberry Pi 4 Model B\n";
        assert_eq!(cpu_model(arm).as_deref(), Some("Raspberry Pi 4 Model B"));
        assert_eq!(cpu_model("processor : 0\nmodel name :\n"), None);
        assert_eq!(cpu_model(""), None);
    }

    #[tokio::test]
    async fn sampler_sees_own_rss() {
        let s = RssSampler::start(std::process::id(), Duration::from_millis(5));
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(s.stop().await.is_some_and(|k| k > 0));
        let gone = RssSampler::start(u32::MAX, Duration::from_millis(5));
        assert_eq!(gone.stop().await, None);
    }
}
