//! A game's timeline, computed by the shared engine: the state at an instant and replays of
//! step ranges, within the bounds the server is willing to compute.

use api::ApiError;
use api::limits::{DEFAULT_REPLAY_SPAN, MAX_COMPUTED_STEP, MAX_REPLAY_STEPS};
use shared_engine::{Counter, State, StepAt, Tick};

use crate::domain::Game;
use crate::error::AppError;

/// Beyond this many steps the computation moves off the async workers.
const INLINE_STEPS: u64 = 1_000_000;

/// Refuses steps beyond [`MAX_COMPUTED_STEP`] (O(step) work), naming `field`.
fn check_step(step: u64, field: &'static str) -> Result<(), AppError> {
    if step > MAX_COMPUTED_STEP {
        return Err(ApiError::invalid(
            field,
            format!("step {step} is beyond the {MAX_COMPUTED_STEP} steps the server computes"),
        )
        .into());
    }
    Ok(())
}

/// Runs an engine computation of about `steps` steps, off the async workers when it is long.
async fn compute<T: Send + 'static>(
    steps: u64,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, AppError> {
    if steps <= INLINE_STEPS {
        Ok(work())
    } else {
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|e| AppError::Internal(format!("engine computation failed: {e}")))
    }
}

/// The engine's state of `game` at `at_ms` (frozen at its exit, once exited).
pub(super) async fn state_at(game: &Game, at_ms: i64) -> Result<State, AppError> {
    let params = game.params();
    let end = game.exited_at_ms.map_or(at_ms, |end| end.min(at_ms));
    let steps = match shared_engine::step_at(params.start_at_ms(), params.tick_ms(), end) {
        StepAt::Before(_) => 0,
        StepAt::At(step) => step,
    };
    check_step(steps, "at")?;
    compute(steps, move || shared_engine::state_at(&params, at_ms)).await
}

/// The last step of a replay starting at `from`, checked: `to` (default `from + 99`) must not
/// be before `from`, nor more than [`MAX_REPLAY_STEPS`] after it, nor beyond what the server
/// computes.
pub(super) fn replay_range(from: u64, to: Option<u64>) -> Result<u64, AppError> {
    let to = to.unwrap_or(from.saturating_add(DEFAULT_REPLAY_SPAN - 1));
    if to < from {
        return Err(ApiError::invalid("to", "must not be less than from").into());
    }
    if to - from >= MAX_REPLAY_STEPS {
        return Err(ApiError::invalid(
            "to",
            format!("at most {MAX_REPLAY_STEPS} steps per request"),
        )
        .into());
    }
    check_step(to, "to")?;
    Ok(to)
}

/// Steps `from..=to` of `game` (an exited game has no steps after the one it froze at).
pub(super) async fn replay(game: &Game, from: u64, to: u64) -> Result<Vec<Tick>, AppError> {
    let params = game.params();
    let last = match game.exited_at_ms {
        None => Some(u64::MAX),
        Some(end) => match shared_engine::step_at(
            params.start_at_ms(),
            params.tick_ms(),
            end.saturating_sub(1),
        ) {
            StepAt::At(step) => Some(step),
            StepAt::Before(_) => None,
        },
    };
    match last {
        Some(last) if from <= last => {
            let to = to.min(last);
            compute(to, move || {
                let mut counter = Counter::at_step(params, from);
                (from..=to)
                    .map(|step| counter.advance_to(step))
                    .collect::<Vec<_>>()
            })
            .await
        }
        _ => Ok(Vec::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replay_ranges() {
        assert_eq!(replay_range(0, None).unwrap(), 99);
        assert_eq!(replay_range(5, Some(5)).unwrap(), 5);
        assert_eq!(
            replay_range(u64::MAX - 3, None).ok(),
            None,
            "beyond the computed steps"
        );
        for (from, to) in [(10, 5), (0, 10_000), (0, 999_999_999_999)] {
            let e = replay_range(from, Some(to)).unwrap_err().to_api();
            assert_eq!(e.field.as_deref(), Some("to"), "{from}..{to}");
        }
    }
}
