//! Game states computed at the edge with the shared engine, from a cached game record.
//!
//! The origin's `GET /game/{id}/state?at=` is a pure function of the game record and `at`, so
//! the edge can answer it without an origin call whenever the answer can no longer change:
//! - the record says the game exited: its timeline is frozen for good, every `at` is final;
//! - the record says active and `at` lies [`STATE_SETTLE_MS`] before the record was fetched: an
//!   exit recorded later cannot reach back that far.
//!
//! Otherwise (the present or future of an active game) the origin is asked, since an exit may
//! have happened since the record was cached. The JSON is exactly the origin's.

use serde_json::{Map, Value, json};
use shared_engine::{Algorithm, Params, State, StepAt, Tick};

use crate::cache_policy::STATE_SETTLE_MS;

/// Furthest step computed here; beyond it the origin answers (it refuses such steps with a 422
/// the edge passes through, and the work is O(step)).
pub const MAX_LOCAL_STEP: u64 = 100_000_000;

/// A cached game record, reduced to what its timeline needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeline {
    /// Engine parameters, with the end when the game exited.
    pub params: Params,
    /// Whether the record says the game exited.
    pub exited: bool,
}

impl Timeline {
    /// Reads the origin's game JSON; `None` if it lacks or garbles a field (then the origin is
    /// asked instead of guessing).
    pub fn from_record(record: &Map<String, Value>) -> Option<Timeline> {
        let u32_field = |name: &str| {
            record
                .get(name)?
                .as_u64()
                .and_then(|v| u32::try_from(v).ok())
        };
        let algorithm = Algorithm::parse(record.get("algorithm")?.as_str()?).ok()?;
        let exited_at = match record.get("exitedAt") {
            None | Some(Value::Null) => None,
            Some(v) => Some(v.as_i64()?),
        };
        let exited = match record.get("status")?.as_str()? {
            "exited" => exited_at.is_some(),
            "active" => false,
            _ => return None,
        };
        let params = Params::new(
            u32_field("seed")?,
            record.get("startAt")?.as_i64()?,
            u32_field("tickMs")?,
            u32_field("breakEvery")?,
            algorithm,
        )
        .ok()?
        .with_end(exited_at);
        Some(Timeline { params, exited })
    }

    /// Whether the state at `at_ms` is final given a record fetched at `stored_at_ms`.
    pub fn is_final_at(&self, at_ms: u64, stored_at_ms: u64) -> bool {
        self.exited || at_ms.saturating_add(STATE_SETTLE_MS) <= stored_at_ms
    }

    /// The origin's state JSON at `at_ms`, or `None` if the step is too far to compute here.
    pub fn state_json(&self, game_id: &str, at_ms: u64) -> Option<Value> {
        let at = i64::try_from(at_ms).ok()?;
        let horizon = self.params.ended_at_ms().map_or(at, |end| end.min(at));
        if let StepAt::At(step) =
            shared_engine::step_at(self.params.start_at_ms(), self.params.tick_ms(), horizon)
            && step > MAX_LOCAL_STEP
        {
            return None;
        }
        let mut state = match shared_engine::state_at(&self.params, at) {
            State::Countdown { ms_until_start } => {
                json!({"phase": "countdown", "msUntilStart": ms_until_start})
            }
            State::Running(tick) => tick_json(&tick, "running"),
            State::Ended(Some(tick)) => tick_json(&tick, "ended"),
            State::Ended(None) => json!({"phase": "ended"}),
        };
        state["gameId"] = game_id.into();
        state["at"] = at.into();
        Some(state)
    }
}

fn tick_json(tick: &Tick, phase: &str) -> Value {
    json!({"phase": phase, "step": tick.step, "value": tick.value, "round": tick.round, "broken": tick.broken})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(value: Value) -> Map<String, Value> {
        value.as_object().expect("object").clone()
    }

    fn active() -> Map<String, Value> {
        record(json!({
            "gameId": "g", "userId": "u", "region": "eu", "seed": 42, "startAt": 1_000_000,
            "tickMs": 100, "breakEvery": 50, "algorithm": "mix32-v1", "status": "active", "createdAt": 997_000
        }))
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
            let mut game = active();
            for field in ["seed", "tickMs", "breakEvery", "algorithm"] {
                game.insert(field.into(), row[field].clone());
            }
            game.insert("startAt".into(), json!(0));
            let timeline = Timeline::from_record(&game).expect("valid record");
            let step = row["step"].as_u64().unwrap();
            let at = step * row["tickMs"].as_u64().unwrap();
            let state = timeline.state_json("g", at).expect("computable");
            for field in ["step", "value", "round", "broken"] {
                assert_eq!(state[field], row[field], "{row}");
            }
            assert_eq!(state["phase"], "running");
        }
        assert!(rows.len() > 400);
    }

    #[test]
    fn same_shape_as_the_origin() {
        let timeline = Timeline::from_record(&active()).unwrap();
        assert_eq!(
            timeline.state_json("g", 999_000).unwrap(),
            json!({"gameId": "g", "at": 999_000, "phase": "countdown", "msUntilStart": 1_000})
        );
        let running = timeline.state_json("g", 1_000_250).unwrap();
        assert_eq!(running["phase"], "running");
        assert_eq!(running["step"], 2);
        assert_eq!(running.as_object().unwrap().len(), 7);
    }

    #[test]
    fn exited_games_freeze_and_are_always_final() {
        let mut game = active();
        game.insert("status".into(), json!("exited"));
        game.insert("exitedAt".into(), json!(1_001_000));
        let timeline = Timeline::from_record(&game).unwrap();
        assert!(timeline.exited);
        assert!(timeline.is_final_at(u64::MAX / 2, 0));
        let ended = timeline.state_json("g", 5_000_000).unwrap();
        assert_eq!(
            (ended["phase"].as_str(), ended["step"].as_u64()),
            (Some("ended"), Some(9))
        );
        // Ended during the countdown: no step at all.
        game.insert("exitedAt".into(), json!(999_999));
        let early = Timeline::from_record(&game)
            .unwrap()
            .state_json("g", 5_000_000)
            .unwrap();
        assert_eq!(
            early,
            json!({"gameId": "g", "at": 5_000_000, "phase": "ended"})
        );
    }

    #[test]
    fn active_games_are_final_only_well_before_the_record_was_fetched() {
        let timeline = Timeline::from_record(&active()).unwrap();
        let fetched = 1_010_000;
        assert!(timeline.is_final_at(fetched - STATE_SETTLE_MS, fetched));
        assert!(!timeline.is_final_at(fetched - STATE_SETTLE_MS + 1, fetched));
        assert!(!timeline.is_final_at(fetched + 60_000, fetched));
    }

    #[test]
    fn garbled_records_are_left_to_the_origin() {
        for (field, value) in [
            ("seed", json!(-1)),
            ("seed", json!(4_294_967_296u64)),
            ("tickMs", json!(0)),
            ("breakEvery", json!(1)),
            ("algorithm", json!("md5")),
            ("status", json!("paused")),
            ("startAt", json!("soon")),
        ] {
            let mut game = active();
            game.insert(field.into(), value.clone());
            assert!(Timeline::from_record(&game).is_none(), "{field}={value}");
        }
        let mut no_end = active();
        no_end.insert("status".into(), json!("exited"));
        assert!(
            !Timeline::from_record(&no_end).unwrap().exited,
            "an exit without a time is not trusted as final"
        );
    }

    #[test]
    fn far_steps_go_to_the_origin() {
        let mut game = active();
        game.insert("tickMs".into(), json!(1));
        let timeline = Timeline::from_record(&game).unwrap();
        assert!(
            timeline
                .state_json("g", 1_000_000 + MAX_LOCAL_STEP)
                .is_some()
        );
        assert!(
            timeline
                .state_json("g", 1_000_000 + MAX_LOCAL_STEP + 1)
                .is_none()
        );
    }
}
