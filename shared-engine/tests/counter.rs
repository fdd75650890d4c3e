//! The incremental counter and the pure functions agree for arbitrary games.

use proptest::prelude::*;
use shared_engine::{Algorithm, Counter, Params, State, state_at, tick_at};

fn algorithm() -> impl Strategy<Value = Algorithm> {
    prop_oneof![Just(Algorithm::Mix32V1), Just(Algorithm::Lcg32)]
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
    fn value_and_round_follow_the_definition(seed: u32, break_every in 2u32..20, steps in 1u64..500) {
        // Checked against the definition itself, step by step.
        let params = Params::new(seed, 0, 1, break_every, Algorithm::Mix32V1).unwrap();
        let (mut value, mut round) = (0u64, 0u64);
        for step in 0..steps {
            let broken = shared_engine::is_break(Algorithm::Mix32V1, seed, step, break_every);
            if broken { value = 0; round += 1; } else { value += 1; }
            let tick = tick_at(&params, step);
            prop_assert_eq!((tick.value, tick.round, tick.broken), (value, round, broken));
        }
    }
}

#[test]
fn counter_at_step_resumes_where_tick_at_is() {
    let params = Params::new(99, 0, 100, 50, Algorithm::Mix32V1).unwrap();
    let mut resumed = Counter::at_step(params, 10_000);
    let mut fresh = Counter::new(params);
    fresh.advance_to(10_000);
    for _ in 0..1_000 {
        assert_eq!(resumed.advance(), fresh.advance());
    }
}
