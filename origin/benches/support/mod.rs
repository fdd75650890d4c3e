//! The load harness the origin's benchmarks share (`mod support;` in each): their knobs from the
//! environment, the loop that keeps N concurrent workers calling an operation for a while, and
//! the figures of a phase (throughput, p50/p99 latency, errors) with their printed line.
//!
//! Each benchmark keeps its own phases, baselines and ratios; only the measuring is here, so
//! every benchmark measures and rounds the same way.

// Each benchmark is its own crate and uses a different part of this module.
#![allow(dead_code)]

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A numeric knob from the environment (`BENCH_SECONDS`, `BENCH_CONCURRENCY`, ...), else
/// `default`.
pub(crate) fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// What one phase of load measured.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Figures {
    /// Calls completed, failed ones included.
    pub(crate) ops: usize,
    /// Calls that failed.
    pub(crate) errors: usize,
    /// From the first worker's start to the last worker's end.
    pub(crate) elapsed: Duration,
    pub(crate) p50: Duration,
    pub(crate) p99: Duration,
}

impl Figures {
    /// Calls per second, failed ones included.
    pub(crate) fn rate(&self) -> f64 {
        self.ops as f64 / self.elapsed.as_secs_f64()
    }

    /// Calls that succeeded.
    pub(crate) fn succeeded(&self) -> usize {
        self.ops - self.errors
    }

    /// Successful calls per second.
    pub(crate) fn ok_rate(&self) -> f64 {
        self.succeeded() as f64 / self.elapsed.as_secs_f64()
    }

    /// Prints the phase's line:
    /// `<name> <rate> <unit>/s   p50 <ms> ms   p99 <ms> ms   (<count> <unit>, <errors> errors)`.
    pub(crate) fn print(&self, name: &str, line: &Line) {
        let (count, rate) = if line.count_failures {
            (self.ops, self.rate())
        } else {
            (self.succeeded(), self.ok_rate())
        };
        println!(
            "{name:<name_width$} {rate:>rate_width$.0} {unit}/s   p50 {:>7.2} ms   p99 {:>7.2} ms   ({count} {unit}, {} errors)",
            millis(self.p50),
            millis(self.p99),
            self.errors,
            name_width = line.name_width,
            rate_width = line.rate_width,
            unit = line.unit,
        );
    }
}

/// How a benchmark's phase lines look: the columns line up within one benchmark's output.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Line {
    pub(crate) name_width: usize,
    pub(crate) rate_width: usize,
    /// What one call is (`ops`, `starts`).
    pub(crate) unit: &'static str,
    /// Whether failed calls count in the rate and the count (else only successful ones do).
    pub(crate) count_failures: bool,
}

/// Milliseconds, for printing.
pub(crate) fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The `percent` percentile of ascending `sorted` latencies ([`kernel::stats::nearest_rank`]);
/// zero without samples.
pub(crate) fn percentile(sorted: &[Duration], percent: u32) -> Duration {
    kernel::stats::nearest_rank(sorted, percent).unwrap_or_default()
}

/// Runs `op(worker, seq)` from `concurrency` tasks, each calling it again as soon as the last
/// call returns, for `duration`, and times every call. `worker` is the task's index;
/// `seq` is unique across every call of the process (phases included), so an operation can
/// derive fresh user ids from it. `op` answers whether the call succeeded.
pub(crate) async fn drive<F, Fut>(concurrency: usize, duration: Duration, op: F) -> Figures
where
    F: Fn(usize, u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = bool> + Send,
{
    // A reused user id would find that user's active game and answer 200 instead of creating
    // one: sequence numbers never repeat, not even across phases.
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let op = Arc::new(op);
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let tasks: Vec<_> = (0..concurrency)
        .map(|worker| {
            let (op, stop) = (op.clone(), stop.clone());
            tokio::spawn(async move {
                let (mut latencies, mut errors) = (Vec::new(), 0usize);
                while !stop.load(Ordering::Relaxed) {
                    let seq = SEQ.fetch_add(1, Ordering::Relaxed);
                    let t = Instant::now();
                    let ok = op(worker, seq).await;
                    latencies.push(t.elapsed());
                    errors += usize::from(!ok);
                }
                (latencies, errors)
            })
        })
        .collect();
    tokio::time::sleep(duration).await;
    stop.store(true, Ordering::Relaxed);
    let (mut latencies, mut errors) = (Vec::new(), 0);
    for task in tasks {
        let (l, e) = task.await.expect("worker");
        latencies.extend(l);
        errors += e;
    }
    let elapsed = started.elapsed();
    latencies.sort_unstable();
    Figures {
        ops: latencies.len(),
        errors,
        elapsed,
        p50: percentile(&latencies, 50),
        p99: percentile(&latencies, 99),
    }
}
