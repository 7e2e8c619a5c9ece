//! Prometheus metrics for HTTP requests: a counter and a latency histogram per method, route
//! template and status. Lock-free on the hot path once a series exists.

use std::collections::HashMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

const BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

#[derive(Default)]
struct Series {
    count: AtomicU64,
    /// Sum of latencies in nanoseconds.
    sum_ns: AtomicU64,
    buckets: [AtomicU64; BUCKETS.len()],
}

type Key = (String, String, u16);

/// The registry of request series.
#[derive(Default)]
pub struct Metrics {
    series: RwLock<HashMap<Key, Arc<Series>>>,
}

impl Metrics {
    /// Records one request.
    pub fn observe(&self, method: &str, route: &str, status: u16, seconds: f64) {
        let key = (method.to_string(), route.to_string(), status);
        let existing = self.series.read().expect("metrics lock").get(&key).cloned();
        let s = match existing {
            Some(s) => s,
            None => self
                .series
                .write()
                .expect("metrics lock")
                .entry(key)
                .or_default()
                .clone(),
        };
        s.count.fetch_add(1, Ordering::Relaxed);
        s.sum_ns
            .fetch_add((seconds * 1e9) as u64, Ordering::Relaxed);
        for (i, le) in BUCKETS.iter().enumerate() {
            if seconds <= *le {
                s.buckets[i].fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let map = self.series.read().expect("metrics lock");
        let mut keys: Vec<&Key> = map.keys().collect();
        keys.sort();
        let mut out = String::new();
        out.push_str(
            "# HELP strata_http_requests_total HTTP requests by method, route and status.\n",
        );
        out.push_str("# TYPE strata_http_requests_total counter\n");
        for k in &keys {
            let s = &map[*k];
            let _ = writeln!(
                out,
                "strata_http_requests_total{{{}}} {}",
                labels(k),
                s.count.load(Ordering::Relaxed)
            );
        }
        out.push_str(
            "# HELP strata_http_request_duration_seconds HTTP request latency by method, route and status.\n",
        );
        out.push_str("# TYPE strata_http_request_duration_seconds histogram\n");
        for k in &keys {
            let s = &map[*k];
            let l = labels(k);
            for (i, le) in BUCKETS.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "strata_http_request_duration_seconds_bucket{{{l},le=\"{le}\"}} {}",
                    s.buckets[i].load(Ordering::Relaxed)
                );
            }
            let count = s.count.load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "strata_http_request_duration_seconds_bucket{{{l},le=\"+Inf\"}} {count}"
            );
            let _ = writeln!(
                out,
                "strata_http_request_duration_seconds_sum{{{l}}} {}",
                s.sum_ns.load(Ordering::Relaxed) as f64 / 1e9
            );
            let _ = writeln!(
                out,
                "strata_http_request_duration_seconds_count{{{l}}} {count}"
            );
        }
        out
    }
}

fn labels((method, route, status): &Key) -> String {
    format!(
        "method=\"{}\",route=\"{}\",status=\"{status}\"",
        escape(method),
        escape(route)
    )
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_histograms() {
        let m = Metrics::default();
        m.observe("GET", "/identity/v3/users/{user_id}", 200, 0.002);
        m.observe("GET", "/identity/v3/users/{user_id}", 200, 0.2);
        m.observe("POST", "/identity/v3/auth/tokens", 401, 0.01);
        let text = m.render();
        assert!(text.contains(
            "strata_http_requests_total{method=\"GET\",route=\"/identity/v3/users/{user_id}\",status=\"200\"} 2"
        ));
        assert!(text.contains("status=\"200\",le=\"0.0025\"} 1"));
        assert!(text.contains("status=\"200\",le=\"0.25\"} 2"));
        assert!(text.contains("status=\"401\",le=\"+Inf\"} 1"));
    }
}
