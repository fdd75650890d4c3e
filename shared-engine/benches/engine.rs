//! Engine benchmark: ns per step and the cost of `state_at` 24 hours into a 100 ms game.
//!
//! `cargo bench -p shared-engine` prints figures (not pass/fail): the targets are `state_at` at
//! step 864,000 <= 200 us natively for the default algorithm, and <= 50 us for `interval-v0`
//! (which is also timed at step 86,400,000, a day of 1 ms ticks). The wasm build's figures come
//! from `scripts/bench-engine.sh`, which runs both and prints the ratios.
//!
//! `sealed-v1`: the cost of verifying a whole 24 h game of 100 ms ticks from its public record
//! (every key chained to the commitment, the root to the last key, every break and the final
//! tick), against `mix32-v1`'s `state_at` at the same step measured in the same run.

use std::hint::black_box;
use std::time::{Duration, Instant};

use shared_engine::sealed::{self, GameRecord, Key, SealedParams};
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
    let mut mix32_day = Duration::ZERO;
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
            Algorithm::Mix32V1 => {
                mix32_day = full;
                println!(
                    "BENCH native_state_at_864000_us={:.1} target_us=200 within_target={}",
                    full.as_nanos() as f64 / 1000.0,
                    full <= Duration::from_micros(200)
                )
            }
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
    sealed_day(mix32_day);
}

/// Verifies a finished 24 h `sealed-v1` game (100 ms ticks, breakEvery 50): about 17,000
/// revealed keys plus the root, i.e. the whole chain of 86,400 hashes, and 17,000 draws.
fn sealed_day(mix32_day: Duration) {
    let root = Key([0x5e; 32]);
    let rounds = sealed::chain_rounds(100);
    let commitment = sealed::commitment(&root, rounds);
    let end = (DAY_OF_TICKS * 100) as i64;
    let params = SealedParams::new(0, 100, 50, commitment)
        .expect("valid")
        .with_end(Some(end));
    let mut keys = Vec::with_capacity(rounds as usize);
    let mut key = root;
    for _ in 0..rounds {
        keys.push(key);
        key = sealed::hash(&key);
    }
    keys.reverse(); // k_1 first; the last one is the root
    let last_step = DAY_OF_TICKS - 1;
    let breaks: Vec<u64> = params
        .breaks(&keys)
        .take_while(|&b| b <= last_step)
        .collect();
    let keys = &keys[..breaks.len() + 1];
    let State::Ended(final_tick) = sealed::state_at(&params, keys, end).state else {
        panic!("ended")
    };
    let record = GameRecord {
        params: &params,
        root: Some(&root),
        keys,
        breaks: &breaks,
        final_tick,
    };
    assert_eq!(sealed::verify_game(&record), Ok(()));
    let verify = measure(Duration::from_millis(3000), || {
        black_box(sealed::verify_game(black_box(&record))).expect("verifies");
    });
    let hash_cost = measure(Duration::from_millis(500), || {
        black_box(sealed::hash(black_box(&root)));
    });
    let derive = measure(Duration::from_millis(1500), || {
        black_box(sealed::commitment(black_box(&root), rounds));
    });
    println!(
        "sealed-v1 verify 24 h game = {:>9.1} us   ({} keys revealed, {} breaks, {rounds} hashes in all; {:.0} ns/hash)",
        verify.as_nanos() as f64 / 1000.0,
        keys.len(),
        breaks.len(),
        hash_cost.as_nanos() as f64,
    );
    println!(
        "sealed-v1 commitment from the root (the origin at start) = {:.1} us",
        derive.as_nanos() as f64 / 1000.0
    );
    println!(
        "BENCH native_sealed_v1_verify_day_us={:.1} native_sealed_v1_commitment_us={:.1} ratio_vs_mix32_state_at_day={:.1}",
        verify.as_nanos() as f64 / 1000.0,
        derive.as_nanos() as f64 / 1000.0,
        verify.as_nanos() as f64 / mix32_day.as_nanos().max(1) as f64,
    );
}
