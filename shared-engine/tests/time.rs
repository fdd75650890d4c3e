//! Step arithmetic around the start and at the extremes of the clock: floor division, no
//! overflow, and the end of a game.

use shared_engine::{Algorithm, Params, State, StepAt, state_at, step_at, tick_at};

fn game(start: i64, tick_ms: u32) -> Params {
    Params::new(1234, start, tick_ms, 50, Algorithm::Mix32V1).unwrap()
}

#[test]
fn floor_division_around_the_start() {
    assert_eq!(step_at(1_000, 100, 999), StepAt::Before(1));
    assert_eq!(step_at(1_000, 100, 1_000), StepAt::At(0));
    assert_eq!(step_at(1_000, 100, 1_099), StepAt::At(0));
    assert_eq!(step_at(1_000, 100, 1_100), StepAt::At(1));
    assert_eq!(step_at(1_000, 100, 0), StepAt::Before(1_000));
    // Negative start times work the same way (floor, not truncation toward zero).
    assert_eq!(step_at(-250, 100, -151), StepAt::At(0));
    assert_eq!(step_at(-250, 100, -150), StepAt::At(1));
    assert_eq!(step_at(-250, 100, -251), StepAt::Before(1));
}

#[test]
fn countdown_reports_ms_left() {
    assert_eq!(
        state_at(&game(5_000, 100), 2_000),
        State::Countdown {
            ms_until_start: 3_000
        }
    );
    assert!(matches!(state_at(&game(5_000, 100), 5_000), State::Running(t) if t.step == 0));
}

#[test]
fn extremes_do_not_overflow() {
    assert_eq!(step_at(i64::MAX, 1, i64::MIN), StepAt::Before(u64::MAX));
    assert_eq!(
        step_at(i64::MIN, u32::MAX, i64::MAX),
        StepAt::At(u64::MAX / u64::from(u32::MAX))
    );
    assert_eq!(step_at(i64::MIN, 1, i64::MAX), StepAt::At(u64::MAX));
    assert_eq!(
        step_at(0, u32::MAX, i64::MAX),
        StepAt::At((i64::MAX as u64) / u64::from(u32::MAX))
    );
    // A huge tick keeps the game at step 0 for ~50 days.
    let slow = game(0, u32::MAX);
    assert!(matches!(state_at(&slow, i64::from(u32::MAX) - 1), State::Running(t) if t.step == 0));
    assert!(matches!(state_at(&slow, i64::from(u32::MAX)), State::Running(t) if t.step == 1));
    // Countdown from the far past of the clock.
    assert_eq!(
        state_at(&game(i64::MAX, 100), i64::MIN),
        State::Countdown {
            ms_until_start: u64::MAX
        }
    );
    // An end at i64::MIN cannot underflow.
    let ended = game(0, 100).with_end(Some(i64::MIN));
    assert_eq!(state_at(&ended, i64::MIN), State::Ended(None));
}

#[test]
fn ended_game_freezes_at_the_last_step_before_its_end() {
    let params = game(0, 100).with_end(Some(1_000));
    // Step 9 began at 900 < 1000; step 10 would begin exactly at the end.
    assert_eq!(
        state_at(&params, 1_000),
        State::Ended(Some(tick_at(&params, 9)))
    );
    assert_eq!(
        state_at(&params, 1_000_000),
        State::Ended(Some(tick_at(&params, 9)))
    );
    assert_eq!(state_at(&params, 999), State::Running(tick_at(&params, 9)));
    let mid_tick = game(0, 100).with_end(Some(1_001));
    assert_eq!(
        state_at(&mid_tick, 5_000),
        State::Ended(Some(tick_at(&mid_tick, 10)))
    );
    // Ended during the countdown: nothing ever ran.
    let early = game(1_000, 100).with_end(Some(1_000));
    assert_eq!(state_at(&early, 2_000), State::Ended(None));
    assert_eq!(
        state_at(&early, 500),
        State::Countdown {
            ms_until_start: 500
        }
    );
}

#[test]
fn invalid_params_are_rejected() {
    assert!(Params::new(1, 0, 0, 50, Algorithm::Mix32V1).is_err());
    assert!(Params::new(1, 0, 100, 1, Algorithm::Mix32V1).is_err());
    assert!(Params::new(1, 0, 100, 0, Algorithm::Lcg32).is_err());
    assert!(Params::new(1, 0, 1, 2, Algorithm::Lcg32).is_ok());
}
