//! Game states computed at the edge with the shared engine, from a cached game record.
//!
//! The origin's `GET /game/{id}/state?at=` is a pure function of the game record and `at`, so
//! the edge can answer it without an origin call whenever the answer can no longer change:
//! - the record says the game exited: its timeline is frozen for good, every `at` is final;
//! - the record says active and `at` lies [`STATE_SETTLE_MS`] before the record was fetched: an
//!   exit recorded later cannot reach back that far.
//!
//! Otherwise (the present or future of an active game) the origin is asked, since an exit may
//! have happened since the record was cached. The answer is the contract's [`StateView`], built
//! exactly as the origin builds it.

use api::limits::MAX_COMPUTED_STEP;
use api::{GameId, GameStatus, GameView, StateView};
use shared_engine::{Params, StepAt};

use crate::cache_policy::STATE_SETTLE_MS;

/// A cached game record, reduced to what its timeline needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeline {
    /// The game.
    pub game_id: GameId,
    /// Engine parameters, with the end when the game exited.
    pub params: Params,
    /// Whether the record says the game exited (with a time).
    pub exited: bool,
}

impl Timeline {
    /// The timeline of a game view; `None` if the engine refuses its parameters (then the
    /// origin is asked instead of guessing).
    pub fn of(game: &GameView) -> Option<Timeline> {
        Some(Timeline {
            game_id: game.game_id,
            params: game.params()?,
            exited: game.status == GameStatus::Exited && game.exited_at.is_some(),
        })
    }

    /// Whether the state at `at_ms` is final given a record fetched at `stored_at_ms`.
    pub fn is_final_at(&self, at_ms: i64, stored_at_ms: u64) -> bool {
        let settle = i64::try_from(STATE_SETTLE_MS).unwrap_or(i64::MAX);
        let stored = i64::try_from(stored_at_ms).unwrap_or(i64::MAX);
        self.exited || at_ms.saturating_add(settle) <= stored
    }

    /// The instant a state read without `at` is answered for: the edge's `now`, but never
    /// before an exited game's end, since the origin answers for its own "now", which is past
    /// the exit even if this edge's clock lags the origin's.
    pub fn default_at(&self, now_ms: i64) -> i64 {
        now_ms.max(self.params.ended_at_ms().unwrap_or(i64::MIN))
    }

    /// The state at `at_ms`, or `None` if its step is beyond what servers compute
    /// ([`MAX_COMPUTED_STEP`]: the origin refuses it, and its answer is passed on instead).
    pub fn state(&self, at_ms: i64) -> Option<StateView> {
        let horizon = self
            .params
            .ended_at_ms()
            .map_or(at_ms, |end| end.min(at_ms));
        if let StepAt::At(step) =
            shared_engine::step_at(self.params.start_at_ms(), self.params.tick_ms(), horizon)
            && step > MAX_COMPUTED_STEP
        {
            return None;
        }
        Some(StateView::new(
            self.game_id,
            at_ms,
            shared_engine::state_at(&self.params, at_ms),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    const ID: &str = "3f2b8c1e-9d4a-4f6b-8e2a-1c5d7e9f0a3b";

    fn view(value: Value) -> GameView {
        serde_json::from_value(value).expect("a GameView")
    }

    fn active_json() -> Value {
        json!({
            "gameId": ID, "userId": "u", "region": "eu", "seed": 42, "startAt": 1_000_000,
            "tickMs": 100, "breakEvery": 50, "algorithm": "mix32-v1", "status": "active",
            "createdAt": 997_000
        })
    }

    fn active() -> GameView {
        view(active_json())
    }

    fn state_json(t: &Timeline, at: i64) -> Value {
        serde_json::to_value(t.state(at).expect("computable")).unwrap()
    }

    #[test]
    fn matches_the_shared_golden_vectors() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../shared-engine/vectors/golden.json"
        ))
        .expect("golden vectors");
        let golden: Value = serde_json::from_str(&text).expect("json");
        let rows = golden["ticks"].as_array().expect("ticks");
        for row in rows {
            let mut game = active_json();
            for field in ["seed", "tickMs", "breakEvery", "algorithm"] {
                game[field] = row[field].clone();
            }
            game["startAt"] = json!(0);
            let timeline = Timeline::of(&view(game)).expect("valid record");
            let step = row["step"].as_i64().unwrap();
            let at = step * row["tickMs"].as_i64().unwrap();
            let state = state_json(&timeline, at);
            for field in ["step", "value", "round", "broken"] {
                assert_eq!(state[field], row[field], "{row}");
            }
            assert_eq!(state["phase"], "running");
        }
        assert!(rows.len() > 400);
    }

    #[test]
    fn same_shape_as_the_origin() {
        let timeline = Timeline::of(&active()).unwrap();
        assert_eq!(
            state_json(&timeline, 999_000),
            json!({"gameId": ID, "at": 999_000, "phase": "countdown", "msUntilStart": 1_000})
        );
        let running = state_json(&timeline, 1_000_250);
        assert_eq!(running["phase"], "running");
        assert_eq!(running["step"], 2);
        assert_eq!(running.as_object().unwrap().len(), 7);
    }

    #[test]
    fn exited_games_freeze_and_are_always_final() {
        let mut game = active_json();
        game["status"] = json!("exited");
        game["exitedAt"] = json!(1_001_000);
        let timeline = Timeline::of(&view(game.clone())).unwrap();
        assert!(timeline.exited);
        assert!(timeline.is_final_at(i64::MAX / 2, 0));
        let ended = state_json(&timeline, 5_000_000);
        assert_eq!(
            (ended["phase"].as_str(), ended["step"].as_u64()),
            (Some("ended"), Some(9))
        );
        assert_eq!(
            timeline.default_at(1_000_500),
            1_001_000,
            "never before the end"
        );
        assert_eq!(timeline.default_at(2_000_000), 2_000_000);
        // Ended during the countdown: no step at all.
        game["exitedAt"] = json!(999_999);
        let early = Timeline::of(&view(game)).unwrap();
        assert_eq!(
            state_json(&early, 5_000_000),
            json!({"gameId": ID, "at": 5_000_000, "phase": "ended"})
        );
    }

    #[test]
    fn active_games_are_final_only_well_before_the_record_was_fetched() {
        let timeline = Timeline::of(&active()).unwrap();
        let fetched: u64 = 1_010_000;
        let settled = i64::try_from(fetched - STATE_SETTLE_MS).unwrap();
        assert!(timeline.is_final_at(settled, fetched));
        assert!(!timeline.is_final_at(settled + 1, fetched));
        assert!(!timeline.is_final_at(1_070_000, fetched));
        assert_eq!(timeline.default_at(5), 5);
    }

    #[test]
    fn records_the_engine_refuses_are_left_to_the_origin() {
        for (field, value) in [("tickMs", json!(0)), ("breakEvery", json!(1))] {
            let mut game = active_json();
            game[field] = value.clone();
            assert!(Timeline::of(&view(game)).is_none(), "{field}={value}");
        }
        let mut no_end = active_json();
        no_end["status"] = json!("exited");
        assert!(
            !Timeline::of(&view(no_end)).unwrap().exited,
            "an exit without a time is not trusted as final"
        );
    }

    #[test]
    fn far_steps_go_to_the_origin() {
        let mut game = active_json();
        game["tickMs"] = json!(1);
        let timeline = Timeline::of(&view(game)).unwrap();
        let max = i64::try_from(MAX_COMPUTED_STEP).unwrap();
        assert!(timeline.state(1_000_000 + max).is_some());
        assert!(timeline.state(1_000_000 + max + 1).is_none());
    }
}
