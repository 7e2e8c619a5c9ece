//! The header every report starts with: when, on what, built how.

use serde::Serialize;

/// Where and when a benchmark ran.
#[derive(Debug, Clone, Serialize)]
pub struct HostInfo {
    /// UTC, `YYYY-MM-DD HH:MM:SS UTC`.
    pub date_utc: String,
    /// Cores this process may use (`available_parallelism`).
    pub nproc: usize,
    /// From `/proc/cpuinfo`, or `unknown`.
    pub cpu_model: String,
    /// `debug` or `release`: the profile this crate (and so the `strata` binary it is linked
    /// into) was built with.
    pub build: &'static str,
}

impl HostInfo {
    /// Reads the clock, the core count and `/proc/cpuinfo`.
    pub fn collect() -> Self {
        let fmt =
            time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second] UTC");
        let date_utc = time::OffsetDateTime::now_utc()
            .format(&fmt)
            .unwrap_or_else(|_| "unknown date".into());
        let nproc = std::thread::available_parallelism().map_or(0, usize::from);
        let cpu_model = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|t| crate::procfs::cpu_model(&t))
            .unwrap_or_else(|| "unknown".into());
        let build = if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        };
        Self {
            date_utc,
            nproc,
            cpu_model,
            build,
        }
    }

    /// The one-line header, e.g. `**identity** — 2026-11-05 10:00:00 UTC · nproc 2 · AMD EPYC
    /// 7B13 · debug build`.
    pub fn header(&self, title: &str) -> String {
        format!(
            "**{title}** — {} · nproc {} · {} · {} build",
            self.date_utc, self.nproc, self.cpu_model, self.build
        )
    }
}

/// `Some(x)` to `x` with `decimals` decimals, `None` to `-`.
pub(crate) fn opt(x: Option<f64>, decimals: usize) -> String {
    x.map_or_else(|| "-".into(), |v| format!("{v:.decimals$}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_names_everything() {
        let h = HostInfo::collect();
        assert!(h.nproc >= 1);
        assert!(h.date_utc.ends_with(" UTC"), "{}", h.date_utc);
        let line = h.header("identity");
        assert!(line.starts_with("**identity** — "));
        assert!(line.contains(&format!("nproc {}", h.nproc)));
    }

    #[test]
    fn optional_numbers() {
        assert_eq!(opt(None, 2), "-");
        assert_eq!(opt(Some(1.23456), 2), "1.23");
        assert_eq!(opt(Some(2.0), 0), "2");
    }
}
