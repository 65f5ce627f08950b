//! How the bench turns samples into the figures it prints.

use std::time::Duration;

/// The `p` quantile of `samples` (sorted here).
pub(crate) fn percentile(samples: &[Duration], p: f64) -> Duration {
    let mut sorted = samples.to_vec();
    sorted.sort();
    let sorted = &sorted;
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Prints p50/p95/p99 of `samples` and, given the floor's p50, the ratio of their p50 to it.
pub(crate) fn report(label: &str, mut samples: Vec<Duration>, floor: Option<Duration>) {
    samples.sort();
    let p50 = percentile(&samples, 0.50);
    println!(
        "{label:<44} p50 {:>6.0} ms  p95 {:>6.0} ms  p99 {:>6.0} ms  ({} starts){}",
        p50.as_secs_f64() * 1e3,
        percentile(&samples, 0.95).as_secs_f64() * 1e3,
        percentile(&samples, 0.99).as_secs_f64() * 1e3,
        samples.len(),
        floor.map_or(String::new(), |f| format!("  {:.2}x floor", ratio(p50, f)))
    );
}

pub(crate) fn ratio(a: Duration, b: Duration) -> f64 {
    a.as_secs_f64() / b.as_secs_f64().max(1e-9)
}

pub(crate) fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "MISSED" }
}
