//! The incremental counter and the pure functions agree for arbitrary games.

use proptest::prelude::*;
use shared_engine::{Algorithm, Counter, Params, State, Tick, is_break, state_at, tick_at};

/// Any algorithm, drawn from [`Algorithm::ALL`] so that a new one is covered at once.
fn algorithm() -> impl Strategy<Value = Algorithm> {
    proptest::sample::select(Algorithm::ALL.to_vec())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn counter_equals_tick_at(seed: u32, break_every in 2u32..200, algorithm in algorithm(), steps in 1u64..3_000) {
        let params = Params::new(seed, 0, 100, break_every, algorithm).unwrap();
        let mut counter = Counter::new(params);
        for step in 0..steps {
            let tick = counter.advance();
            prop_assert_eq!(tick.step, step);
            if step % 97 == 0 || step + 1 == steps {
                prop_assert_eq!(tick, tick_at(&params, step));
            }
        }
    }

    #[test]
    fn counter_jumps_equal_state_at(
        seed: u32,
        start in -1_000_000_000_000i64..1_000_000_000_000,
        tick_ms in 1u32..5_000,
        break_every in 2u32..1_000,
        algorithm in algorithm(),
        offsets in proptest::collection::vec(0i64..200_000, 1..8),
    ) {
        let params = Params::new(seed, start, tick_ms, break_every, algorithm).unwrap();
        let mut counter = Counter::new(params);
        let mut sorted = offsets.clone();
        sorted.sort_unstable();
        for offset in sorted {
            let now = start + offset;
            let State::Running(expected) = state_at(&params, now) else {
                return Err(TestCaseError::fail("a non-negative offset must be running"));
            };
            prop_assert_eq!(counter.advance_to(expected.step), expected);
        }
    }

    #[test]
    fn value_and_round_follow_the_definition(
        seed: u32,
        break_every in 2u32..20,
        algorithm in algorithm(),
        steps in 1u64..800,
    ) {
        // Checked against the definition itself, step by step.
        let params = Params::new(seed, 0, 1, break_every, algorithm).unwrap();
        let (mut value, mut round) = (0u64, 0u64);
        for step in 0..steps {
            let broken = is_break(algorithm, seed, step, break_every);
            if broken { value = 0; round += 1; } else { value += 1; }
            let tick = tick_at(&params, step);
            prop_assert_eq!((tick.value, tick.round, tick.broken), (value, round, broken));
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// `interval-v0` counters jump round by round, so far jumps are cheap: check them.
    #[test]
    fn interval_counter_far_jumps_equal_tick_at(
        seed: u32,
        resume_at in proptest::option::of(0u64..2_000_000),
        jumps in proptest::collection::vec(0u64..3_000_000, 1..6),
    ) {
        let params = Params::new(seed, 0, 1, 50, Algorithm::IntervalV0).unwrap();
        let mut counter = match resume_at {
            Some(step) => Counter::at_step(params, step),
            None => Counter::new(params),
        };
        let mut sorted = jumps;
        sorted.sort_unstable();
        for step in sorted {
            // advance_to never goes back: it stays where it is for an earlier step.
            let at = counter.current().map_or(step, |tick| tick.step.max(step));
            prop_assert_eq!(counter.advance_to(step), tick_at(&params, at));
            // And single steps go on from there.
            prop_assert_eq!(counter.advance(), tick_at(&params, at + 1));
        }
    }

    /// `interval-v0` ignores `break_every`, and its rounds last 100 to 300 steps plus the break.
    #[test]
    fn interval_rounds_have_their_bounds(seed: u32, break_every in 2u32..1_000, step in 0u64..5_000_000) {
        let tick = tick_at(&Params::new(seed, 0, 1, break_every, Algorithm::IntervalV0).unwrap(), step);
        prop_assert_eq!(tick, tick_at(&Params::new(seed, 0, 1, 50, Algorithm::IntervalV0).unwrap(), step));
        prop_assert!(tick.value <= 300);
        prop_assert!(tick.round * 101 <= step + 1 && step < (tick.round + 1) * 301);
        prop_assert_eq!(tick.broken, tick.value == 0);
        prop_assert_eq!(tick, shared_engine::interval_v0_tick(u64::from(seed), step));
    }
}

#[test]
fn counter_at_step_resumes_where_tick_at_is() {
    for algorithm in Algorithm::ALL {
        let params = Params::new(99, 0, 100, 50, algorithm).unwrap();
        let mut resumed = Counter::at_step(params, 10_000);
        let mut fresh = Counter::new(params);
        fresh.advance_to(10_000);
        for _ in 0..1_000 {
            assert_eq!(resumed.advance(), fresh.advance(), "{algorithm}");
        }
    }
}

#[test]
fn interval_counter_starts_and_breaks_where_hand_computed() {
    // Seed 0: xorshift64(0) = 0, so round 0 lasts 100 steps; xorshift64(1) = 1_082_269_761
    // = 201 * 5_384_426 + 135, so round 1 lasts 235: breaks at 100 and 100 + 235 + 1 = 336.
    // Seed 1 swaps the two rounds (1 ^ 0 = 1, 1 ^ 1 = 0): breaks at 235 and 336.
    for (seed, first, second) in [(0u32, 100u64, 336u64), (1, 235, 336)] {
        let params = Params::new(seed, 0, 100, 50, Algorithm::IntervalV0).unwrap();
        let mut counter = Counter::new(params);
        assert_eq!(
            counter.advance(),
            Tick {
                step: 0,
                value: 1,
                round: 0,
                broken: false
            }
        );
        let breaks: Vec<u64> = (1..=second)
            .map(|_| counter.advance())
            .filter(|tick| tick.broken)
            .map(|tick| tick.step)
            .collect();
        assert_eq!(breaks, [first, second], "seed {seed}");
        assert_eq!(
            tick_at(&params, first - 1),
            Tick {
                step: first - 1,
                value: first,
                round: 0,
                broken: false
            }
        );
        assert_eq!(
            tick_at(&params, second),
            Tick {
                step: second,
                value: 0,
                round: 2,
                broken: true
            }
        );
    }
}
