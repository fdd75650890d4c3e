//! `origin replay --verify RECORD.json`: checks a finished `sealed-v1` game from its public
//! record alone, with [`shared_engine::sealed::verify_game`].
//!
//! The record is what the game API answers once the game has ended, put together in one JSON
//! object:
//!
//! ```json
//! { "game":   <GET /game/{id}: the view, with commitment, rounds, exitedAt and root>,
//!   "rounds": [<RoundKey>, ...]   (GET /game/{id}/rounds, every page, from round 1),
//!   "final":  <GET /game/{id}/state: the ended state>,
//!   "ticks":  [<TickView>, ...]   (optional: GET /game/{id}/replay pages, from step 0) }
//! ```
//!
//! It fails if any key does not chain to the commitment, the root does not hash down to the
//! last key, the final state is not the keys' state at the exit, or any tick (and so any
//! break) differs from what the keys give. It lives in the origin's CLI rather than the
//! engine's `replay` tool because the record is the API's JSON (the `api` crate's types), and
//! the `no_std` engine crate stays free of a JSON dependency.

use api::{GameView, RoundKey, StateView, TickView};
use serde::Deserialize;
use shared_engine::Tick;
use shared_engine::sealed::{self, GameRecord, Key, SealedParams};

/// The record's JSON.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Record {
    /// The game's view (ended).
    pub game: GameView,
    /// The revealed keys, from round 1, in order.
    pub rounds: Vec<RoundKey>,
    /// The ended state.
    #[serde(rename = "final")]
    pub final_state: StateView,
    /// Claimed ticks from step 0 (optional).
    #[serde(default)]
    pub ticks: Option<Vec<TickView>>,
}

/// What a verified record proves, for the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// Keys checked.
    pub keys: usize,
    /// Breaks up to the final step.
    pub breaks: usize,
    /// The final tick.
    pub final_tick: Option<Tick>,
    /// Whether the root was in the record (and checked).
    pub root_checked: bool,
}

fn key(text: &str, what: &str) -> Result<Key, String> {
    Key::from_hex(text).ok_or_else(|| format!("{what} is not 64 hex digits"))
}

/// Verifies the record's JSON text.
pub fn verify_text(text: &str) -> Result<Verified, String> {
    let record: Record =
        serde_json::from_str(text).map_err(|e| format!("not a sealed game record: {e}"))?;
    verify(&record)
}

/// Verifies a parsed record.
pub fn verify(record: &Record) -> Result<Verified, String> {
    let game = &record.game;
    if !game.algorithm.is_sealed() {
        return Err(format!(
            "game {} is a {} game, not sealed-v1",
            game.game_id, game.algorithm
        ));
    }
    let commitment = key(
        game.commitment
            .as_deref()
            .ok_or("the game has no commitment")?,
        "the commitment",
    )?;
    let exited_at = game.exited_at.ok_or("the game has not ended")?;
    let params = SealedParams::new(game.start_at, game.tick_ms, game.break_every, commitment)
        .map_err(|e| format!("the game's parameters: {e}"))?
        .with_end(Some(exited_at));
    if game.rounds != Some(params.rounds()) {
        return Err(format!(
            "the game says {:?} rounds; sealed-v1 at tickMs {} has {}",
            game.rounds,
            game.tick_ms,
            params.rounds()
        ));
    }
    let root = game
        .root
        .as_deref()
        .map(|r| key(r, "the root"))
        .transpose()?;
    let mut keys = Vec::with_capacity(record.rounds.len());
    for (i, round) in record.rounds.iter().enumerate() {
        if round.round != i as u64 + 1 {
            return Err(format!(
                "rounds must run 1, 2, 3, ...: entry {i} is round {}",
                round.round
            ));
        }
        keys.push(key(
            &round.key,
            &format!("the key of round {}", round.round),
        )?);
    }
    let final_tick = match record.final_state.phase {
        api::Phase::Ended {
            step: Some(step),
            value: Some(value),
            round: Some(round),
            broken: Some(broken),
        } => Some(Tick {
            step,
            value,
            round,
            broken,
        }),
        api::Phase::Ended { step: None, .. } => None,
        _ => return Err("the final state is not an ended one".into()),
    };
    let final_step = final_tick.map(|t| t.step);
    // The claimed breaks: from the ticks when given (each tick checked against the keys),
    // else the keys' own.
    let breaks: Vec<u64> = match &record.ticks {
        Some(ticks) => {
            for (i, tick) in ticks.iter().enumerate() {
                if tick.step != i as u64 {
                    return Err(format!(
                        "ticks must run from step 0: entry {i} is step {}",
                        tick.step
                    ));
                }
                let proven = sealed::tick_at(&params, &keys, tick.step);
                if final_step.is_none_or(|last| tick.step > last) {
                    return Err(format!("tick {} is after the game's final step", tick.step));
                }
                if !proven.settled || TickView::from(proven.tick) != *tick {
                    return Err(format!(
                        "step {}: the record says {tick:?}, the keys give {:?}",
                        tick.step, proven.tick
                    ));
                }
            }
            ticks.iter().filter(|t| t.broken).map(|t| t.step).collect()
        }
        None => params
            .breaks(&keys)
            .take_while(|&at| final_step.is_some_and(|last| at <= last))
            .collect(),
    };
    let covered = match (&record.ticks, final_step) {
        (Some(ticks), Some(last)) => ticks.len() as u64 == last + 1,
        (Some(ticks), None) => ticks.is_empty(),
        (None, _) => true,
    };
    if !covered {
        return Err("the ticks must cover every step from 0 to the final one".into());
    }
    sealed::verify_game(&GameRecord {
        params: &params,
        root: root.as_ref(),
        keys: &keys,
        breaks: &breaks,
        final_tick,
    })
    .map_err(|e| e.to_string())?;
    Ok(Verified {
        keys: keys.len(),
        breaks: breaks.len(),
        final_tick,
        root_checked: root.is_some(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A finished game's record, built from a root the way the origin answers.
    fn record(root: Key, tick_ms: u32, break_every: u32, end_step: u64) -> serde_json::Value {
        let rounds = sealed::chain_rounds(tick_ms);
        let commitment = sealed::commitment(&root, rounds);
        let start = 1_000_000i64;
        let exited_at = start + (end_step as i64 + 1) * i64::from(tick_ms) - 1;
        let params = SealedParams::new(start, tick_ms, break_every, commitment)
            .unwrap()
            .with_end(Some(exited_at));
        let mut all = Vec::new();
        let mut k = root;
        for _ in 0..rounds {
            all.push(k);
            k = sealed::hash(&k);
        }
        all.reverse();
        let count = params.breaks(&all).take_while(|&b| b <= end_step).count() + 1;
        let keys = &all[..count];
        let ticks: Vec<TickView> = (0..=end_step)
            .map(|s| sealed::tick_at(&params, keys, s).tick.into())
            .collect();
        let last = *ticks.last().unwrap();
        json!({
            "game": {"gameId": "3f2b8c1e-9d4a-4f6b-8e2a-1c5d7e9f0a3b", "userId": "u", "region": "eu",
                "seed": 0, "startAt": start, "tickMs": tick_ms, "breakEvery": break_every,
                "algorithm": "sealed-v1", "status": "exited", "createdAt": start,
                "exitedAt": exited_at, "commitment": commitment.to_string(), "rounds": rounds,
                "root": root.to_string()},
            "rounds": keys.iter().enumerate()
                .map(|(i, k)| json!({"round": i + 1, "key": k.to_string()})).collect::<Vec<_>>(),
            "final": {"gameId": "3f2b8c1e-9d4a-4f6b-8e2a-1c5d7e9f0a3b", "at": exited_at,
                "phase": "ended", "step": last.step, "value": last.value, "round": last.round,
                "broken": last.broken},
            "ticks": ticks,
        })
    }

    #[test]
    fn an_honest_record_verifies_and_every_tampering_fails() {
        let good = record(Key([5; 32]), 60_000, 3, 40);
        let verified = verify_text(&good.to_string()).unwrap();
        assert!(verified.root_checked && verified.breaks > 0);
        let flip = |v: &serde_json::Value| {
            let text = v.as_str().unwrap();
            let first = if text.starts_with('0') { "1" } else { "0" };
            serde_json::Value::from(format!("{first}{}", &text[1..]))
        };
        let mut tampered = Vec::new();
        let mut t = good.clone();
        t["rounds"][1]["key"] = flip(&t["rounds"][1]["key"]);
        tampered.push(("a key", t));
        let mut t = good.clone();
        let (a, b) = (t["rounds"][0]["key"].clone(), t["rounds"][1]["key"].clone());
        t["rounds"][0]["key"] = b;
        t["rounds"][1]["key"] = a;
        tampered.push(("swapped rounds", t));
        let mut t = good.clone();
        t["game"]["commitment"] = flip(&t["game"]["commitment"]);
        tampered.push(("the commitment", t));
        let mut t = good.clone();
        t["game"]["root"] = flip(&t["game"]["root"]);
        tampered.push(("the root", t));
        let mut t = good.clone();
        t["final"]["broken"] = json!(!t["final"]["broken"].as_bool().unwrap());
        tampered.push(("the final state", t));
        let mut t = good.clone();
        let v = t["ticks"][7]["value"].as_u64().unwrap();
        t["ticks"][7]["value"] = json!(v + 1);
        tampered.push(("a step", t));
        let mut t = good.clone();
        t["ticks"].as_array_mut().unwrap().pop();
        tampered.push(("a missing last step", t));
        let mut t = good.clone();
        t["game"]["exitedAt"] = json!(t["game"]["exitedAt"].as_i64().unwrap() + 60_000);
        tampered.push(("a later exit", t));
        for (what, t) in tampered {
            assert!(verify_text(&t.to_string()).is_err(), "{what} was accepted");
        }
    }
}
