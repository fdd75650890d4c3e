//! Engine benchmark: ns per step and the cost of `state_at` 24 hours into a 100 ms game.
//!
//! `cargo bench -p shared-engine` prints figures (not pass/fail): the targets are `state_at` at
//! step 864,000 <= 200 us natively for the default algorithm, and <= 50 us for `interval-v0`
//! (which is also timed at step 86,400,000, a day of 1 ms ticks). The wasm build's figures come
//! from `scripts/bench-engine.sh`, which runs both and prints the ratios.

use std::hint::black_box;
use std::time::{Duration, Instant};

use shared_engine::{Algorithm, Counter, Params, State, state_at};

const DAY_OF_TICKS: u64 = 864_000;
/// A day of 1 ms ticks.
const DAY_OF_MS_TICKS: u64 = 86_400_000;

/// Runs `f` repeatedly for about `budget` and returns the median of per-call times over
/// several batches, which resists a noisy neighbour on a shared machine.
fn measure(budget: Duration, mut f: impl FnMut()) -> Duration {
    f(); // warm-up
    let one = {
        let t = Instant::now();
        f();
        t.elapsed().max(Duration::from_nanos(1))
    };
    let per_batch = ((budget.as_nanos() / 15) / one.as_nanos()).clamp(1, 1_000_000) as u32;
    let mut samples: Vec<Duration> = (0..15)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..per_batch {
                f();
            }
            t.elapsed() / per_batch
        })
        .collect();
    samples.sort();
    samples[samples.len() / 2]
}

fn main() {
    // `cargo bench` passes `--bench`; ignore arguments.
    println!("shared-engine benchmark (median of 15 batches)");
    for algorithm in Algorithm::ALL {
        let params = Params::new(0x5EED_CAFE, 0, 100, 50, algorithm).expect("valid");
        let now = (DAY_OF_TICKS * 100) as i64;
        let mut result = State::Countdown { ms_until_start: 0 };
        let full = measure(Duration::from_millis(1500), || {
            result = state_at(black_box(&params), black_box(now));
        });
        let State::Running(tick) = result else {
            panic!("expected a running game")
        };
        assert_eq!(tick.step, DAY_OF_TICKS);
        let per_step_ns = full.as_nanos() as f64 / DAY_OF_TICKS as f64;

        let mut counter = Counter::new(params);
        let tick_cost = measure(Duration::from_millis(500), || {
            black_box(counter.advance());
        });
        println!(
            "{:<9} state_at(step 864000) = {:>9.1} us   {:>6.3} ns/step   Counter::advance = {:>6.1} ns/tick",
            algorithm.as_str(),
            full.as_nanos() as f64 / 1000.0,
            per_step_ns,
            tick_cost.as_nanos() as f64,
        );
        match algorithm {
            Algorithm::Mix32V1 => println!(
                "BENCH native_state_at_864000_us={:.1} target_us=200 within_target={}",
                full.as_nanos() as f64 / 1000.0,
                full <= Duration::from_micros(200)
            ),
            Algorithm::IntervalV0 => println!(
                "BENCH native_interval_v0_state_at_864000_us={:.2} target_us=50 within_target={}",
                full.as_nanos() as f64 / 1000.0,
                full <= Duration::from_micros(50)
            ),
            Algorithm::Lcg32 => {}
        }
    }

    // interval-v0 costs one draw per round, so a day of 1 ms ticks (~430,000 rounds) is
    // practical too.
    let params = Params::new(0x5EED_CAFE, 0, 1, 50, Algorithm::IntervalV0).expect("valid");
    let mut result = State::Countdown { ms_until_start: 0 };
    let full = measure(Duration::from_millis(1500), || {
        result = state_at(black_box(&params), black_box(DAY_OF_MS_TICKS as i64));
    });
    let State::Running(tick) = result else {
        panic!("expected a running game")
    };
    assert_eq!(tick.step, DAY_OF_MS_TICKS);
    println!(
        "{:<9} state_at(step {DAY_OF_MS_TICKS}) = {:>9.1} us   {:>6.1} ns/round   ({} rounds)",
        Algorithm::IntervalV0.as_str(),
        full.as_nanos() as f64 / 1000.0,
        full.as_nanos() as f64 / tick.round as f64,
        tick.round,
    );
    println!(
        "BENCH native_interval_v0_state_at_86400000_us={:.1}",
        full.as_nanos() as f64 / 1000.0,
    );
}
