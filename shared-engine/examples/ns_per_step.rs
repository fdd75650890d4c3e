//! Measures the engine's cost per step for each algorithm, the figures behind the origin's
//! per-algorithm horizons (`origin/src/service/timeline.rs`):
//! `cargo run --release -p shared-engine --example ns_per_step`.

use std::time::Instant;

use shared_engine::{Algorithm, Counter, Params, tick_at};

fn main() {
    const STEPS: u64 = 20_000_000;
    // The origin's chunk between two checks of its cancellation flag.
    const CHUNK: u64 = 1 << 19;
    for algorithm in Algorithm::ALL {
        let params = Params::new(7, 0, 1, 50, algorithm).unwrap();
        let started = Instant::now();
        let direct = tick_at(&params, STEPS);
        let direct_ns = started.elapsed().as_nanos() as f64 / STEPS as f64;
        let started = Instant::now();
        let mut counter = Counter::new(params);
        let mut tick = counter.advance();
        while tick.step < STEPS {
            tick = counter.advance_to(STEPS.min(tick.step + CHUNK));
        }
        let chunked_ns = started.elapsed().as_nanos() as f64 / STEPS as f64;
        assert_eq!(direct, tick);
        println!(
            "{algorithm}: tick_at {direct_ns:.3} ns/step, chunked Counter {chunked_ns:.3} ns/step \
             ({:.0} steps per 10 ms)",
            1e7 / chunked_ns
        );
    }
}
