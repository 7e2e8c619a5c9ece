//! Latency statistics over the per-request samples a run collects.

use serde::Serialize;

/// The nearest-rank percentile `p` (0–100) of an ascending-sorted slice: the smallest sample
/// such that at least `p`% of the samples are less than or equal to it. `None` when empty.
///
/// Nearest-rank always returns an observed sample (no interpolation), so p100 is the maximum
/// and p50 of an even-sized set is the lower of the two middle samples.
pub fn percentile(sorted: &[u64], p: f64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let p = if p.is_nan() { 0.0 } else { p.clamp(0.0, 100.0) };
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// The summary of one set of latencies, in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct LatencySummary {
    /// Samples summarised.
    pub count: usize,
    pub p50_us: u64,
    pub p99_us: u64,
    pub max_us: u64,
}

impl LatencySummary {
    /// Sorts `samples` in place and summarises them; `None` when there are none.
    pub fn from_samples(samples: &mut [u64]) -> Option<Self> {
        samples.sort_unstable();
        Some(Self {
            count: samples.len(),
            p50_us: percentile(samples, 50.0)?,
            p99_us: percentile(samples, 99.0)?,
            max_us: *samples.last()?,
        })
    }
}

/// Microseconds as milliseconds with two decimals, for tables.
pub(crate) fn us_to_ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_of_empty_is_none() {
        assert_eq!(percentile(&[], 50.0), None);
        assert_eq!(LatencySummary::from_samples(&mut []), None);
    }

    #[test]
    fn percentile_of_one_sample_is_that_sample() {
        for p in [0.0, 1.0, 50.0, 99.0, 100.0] {
            assert_eq!(percentile(&[7], p), Some(7));
        }
    }

    #[test]
    fn percentile_is_nearest_rank() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 0.0), Some(1));
        assert_eq!(percentile(&v, 1.0), Some(1));
        assert_eq!(percentile(&v, 50.0), Some(50));
        assert_eq!(percentile(&v, 50.5), Some(51));
        assert_eq!(percentile(&v, 99.0), Some(99));
        assert_eq!(percentile(&v, 99.9), Some(100));
        assert_eq!(percentile(&v, 100.0), Some(100));
        // Out-of-range and NaN requests are clamped rather than panicking.
        assert_eq!(percentile(&v, -5.0), Some(1));
        assert_eq!(percentile(&v, 250.0), Some(100));
        assert_eq!(percentile(&v, f64::NAN), Some(1));
    }

    #[test]
    fn percentile_on_small_sets() {
        // Classic nearest-rank example: 15, 20, 35, 40, 50.
        let v = [15, 20, 35, 40, 50];
        assert_eq!(percentile(&v, 5.0), Some(15));
        assert_eq!(percentile(&v, 30.0), Some(20));
        assert_eq!(percentile(&v, 40.0), Some(20));
        assert_eq!(percentile(&v, 50.0), Some(35));
        assert_eq!(percentile(&v, 100.0), Some(50));
        // Even count: p50 is the lower middle sample.
        assert_eq!(percentile(&[1, 2, 3, 4], 50.0), Some(2));
    }

    #[test]
    fn summary_sorts_and_reports() {
        let mut v: Vec<u64> = (1..=1000).rev().collect();
        let s = LatencySummary::from_samples(&mut v).unwrap();
        assert_eq!(
            s,
            LatencySummary {
                count: 1000,
                p50_us: 500,
                p99_us: 990,
                max_us: 1000
            }
        );
        assert_eq!(v.first(), Some(&1));
    }

    #[test]
    fn us_to_ms_converts() {
        assert_eq!(us_to_ms(1500), 1.5);
        assert_eq!(us_to_ms(0), 0.0);
    }
}
