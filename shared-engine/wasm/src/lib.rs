//! JavaScript bindings of `shared-engine`, for the browser page and node tools.
//!
//! Built with `scripts/build-engine-wasm.sh` (cargo + `wasm-bindgen` CLI from crates.io). The
//! bindings only convert numbers and names; every decision is the shared engine's, so a page
//! computes exactly what the origin and the edge compute.
//!
//! JavaScript numbers are IEEE doubles: times and steps are accepted and returned as integers
//! that must be exactly representable (|x| <= 2^53 - 1); anything else is rejected with an
//! `Error` instead of being rounded silently.

use shared_engine::{Algorithm, Counter, Params, State, Tick, sealed};
use wasm_bindgen::prelude::*;

/// The largest integer a JavaScript number holds exactly.
const MAX_SAFE_INTEGER: f64 = 9_007_199_254_740_991.0;

fn safe_integer(name: &str, value: f64) -> Result<i64, JsError> {
    if value.is_finite() && value.fract() == 0.0 && value.abs() <= MAX_SAFE_INTEGER {
        Ok(value as i64)
    } else {
        Err(JsError::new(&format!(
            "{name} must be a safe integer, got {value}"
        )))
    }
}

fn bounded_u32(name: &str, value: f64) -> Result<u32, JsError> {
    let integer = safe_integer(name, value)?;
    u32::try_from(integer)
        .map_err(|_| JsError::new(&format!("{name} must be in 0..=4294967295, got {value}")))
}

fn params(
    seed: f64,
    start_at_ms: f64,
    tick_ms: f64,
    break_every: f64,
    algorithm: &str,
) -> Result<Params, JsError> {
    let algorithm = Algorithm::parse(algorithm).map_err(|e| JsError::new(&e.to_string()))?;
    Params::new(
        bounded_u32("seed", seed)?,
        safe_integer("startAtMs", start_at_ms)?,
        bounded_u32("tickMs", tick_ms)?,
        bounded_u32("breakEvery", break_every)?,
        algorithm,
    )
    .map_err(|e| JsError::new(&e.to_string()))
}

/// One step of a game, as JavaScript sees it.
#[wasm_bindgen]
#[derive(Debug, Clone, Copy)]
pub struct JsTick {
    /// Step index (0 at `startAt`).
    pub step: f64,
    /// Steps since the last break.
    pub value: f64,
    /// Breaks so far, this step included.
    pub round: f64,
    /// Whether this step broke.
    pub broken: bool,
}

impl From<Tick> for JsTick {
    fn from(tick: Tick) -> JsTick {
        // Steps beyond 2^53 would take 28 centuries of 10 ms ticks; precision is not a concern.
        JsTick {
            step: tick.step as f64,
            value: tick.value as f64,
            round: tick.round as f64,
            broken: tick.broken,
        }
    }
}

/// A game's state at an instant: `phase` is `"countdown"`, `"running"` or `"ended"`; `tick` is
/// set when running, or ended after step 0; `msUntilStart` is set during the countdown.
#[wasm_bindgen(getter_with_clone)]
#[derive(Debug, Clone)]
pub struct JsState {
    /// `"countdown"`, `"running"` or `"ended"`.
    pub phase: String,
    /// The current (or frozen) step, if any.
    pub tick: Option<JsTick>,
    /// Milliseconds until step 0, during the countdown.
    #[wasm_bindgen(js_name = msUntilStart)]
    pub ms_until_start: Option<f64>,
}

impl From<State> for JsState {
    fn from(state: State) -> JsState {
        match state {
            State::Countdown { ms_until_start } => JsState {
                phase: "countdown".into(),
                tick: None,
                ms_until_start: Some(ms_until_start as f64),
            },
            State::Running(tick) => JsState {
                phase: "running".into(),
                tick: Some(tick.into()),
                ms_until_start: None,
            },
            State::Ended(tick) => JsState {
                phase: "ended".into(),
                tick: tick.map(JsTick::from),
                ms_until_start: None,
            },
        }
    }
}

/// The state of a game at Unix millisecond `nowMs` (see `shared_engine::state_at`).
#[wasm_bindgen(js_name = stateAt)]
#[allow(clippy::too_many_arguments)]
pub fn state_at(
    seed: f64,
    start_at_ms: f64,
    tick_ms: f64,
    break_every: f64,
    algorithm: &str,
    now_ms: f64,
    ended_at_ms: Option<f64>,
) -> Result<JsState, JsError> {
    let ended_at_ms = ended_at_ms
        .map(|end| safe_integer("endedAtMs", end))
        .transpose()?;
    let params = params(seed, start_at_ms, tick_ms, break_every, algorithm)?.with_end(ended_at_ms);
    Ok(shared_engine::state_at(&params, safe_integer("nowMs", now_ms)?).into())
}

/// The tick at `step`, independent of any clock (see `shared_engine::tick_at`).
#[wasm_bindgen(js_name = tickAt)]
pub fn tick_at(
    seed: f64,
    tick_ms: f64,
    break_every: f64,
    algorithm: &str,
    step: f64,
) -> Result<JsTick, JsError> {
    let params = params(seed, 0.0, tick_ms, break_every, algorithm)?;
    let step = u64::try_from(safe_integer("step", step)?)
        .map_err(|_| JsError::new("step must be >= 0"))?;
    Ok(shared_engine::tick_at(&params, step).into())
}

/// Whether `step` breaks (see `shared_engine::is_break`).
#[wasm_bindgen(js_name = isBreak)]
pub fn is_break(algorithm: &str, seed: f64, step: f64, break_every: f64) -> Result<bool, JsError> {
    let algorithm = Algorithm::parse(algorithm).map_err(|e| JsError::new(&e.to_string()))?;
    let step = u64::try_from(safe_integer("step", step)?)
        .map_err(|_| JsError::new("step must be >= 0"))?;
    Ok(shared_engine::is_break(
        algorithm,
        bounded_u32("seed", seed)?,
        step,
        bounded_u32("breakEvery", break_every)?,
    ))
}

/// The raw `mix32-v1` hash (for cross-checking ports against the golden vectors).
#[wasm_bindgen(js_name = mix32v1)]
pub fn mix32_v1(seed: f64, step: f64) -> Result<u32, JsError> {
    let step = u64::try_from(safe_integer("step", step)?)
        .map_err(|_| JsError::new("step must be >= 0"))?;
    Ok(shared_engine::mix32_v1(bounded_u32("seed", seed)?, step))
}

/// The name of the default algorithm (`"mix32-v1"`).
#[wasm_bindgen(js_name = defaultAlgorithm)]
pub fn default_algorithm() -> String {
    Algorithm::default().as_str().into()
}

/// An incremental counter: O(1) per tick for a page that follows a game as it runs.
#[wasm_bindgen(js_name = GameCounter)]
#[derive(Debug)]
pub struct GameCounter {
    counter: Counter,
}

#[wasm_bindgen(js_class = GameCounter)]
impl GameCounter {
    /// A counter before step 0 of the given game.
    #[wasm_bindgen(constructor)]
    pub fn new(
        seed: f64,
        tick_ms: f64,
        break_every: f64,
        algorithm: &str,
    ) -> Result<GameCounter, JsError> {
        Ok(GameCounter {
            counter: Counter::new(params(seed, 0.0, tick_ms, break_every, algorithm)?),
        })
    }

    /// Moves forward to `step` (never backward; a step at or before the current one returns
    /// the current tick) and returns the tick there.
    #[wasm_bindgen(js_name = advanceTo)]
    pub fn advance_to(&mut self, step: f64) -> Result<JsTick, JsError> {
        let step = u64::try_from(safe_integer("step", step)?)
            .map_err(|_| JsError::new("step must be >= 0"))?;
        Ok(self.counter.advance_to(step).into())
    }

    /// The last tick produced, if any.
    #[wasm_bindgen(getter)]
    pub fn current(&self) -> Option<JsTick> {
        self.counter.current().map(JsTick::from)
    }
}

/// Computes the tick at `step` `iterations` times and returns a checksum of the rounds, so
/// the wasm benchmark (timed by its node caller) measures the engine, not the JS boundary.
/// `algorithm` defaults to the default algorithm.
#[wasm_bindgen(js_name = benchStateAt)]
pub fn bench_state_at(
    seed: f64,
    step: f64,
    iterations: u32,
    algorithm: Option<String>,
) -> Result<f64, JsError> {
    let algorithm = algorithm
        .as_deref()
        .unwrap_or(Algorithm::default().as_str());
    let params = params(seed, 0.0, 100.0, 50.0, algorithm)?;
    let step = u64::try_from(safe_integer("step", step)?)
        .map_err(|_| JsError::new("step must be >= 0"))?;
    let mut checksum = 0u64;
    for _ in 0..iterations {
        checksum = checksum.wrapping_add(shared_engine::tick_at(&params, step).round);
    }
    Ok(checksum as f64)
}

// ---- sealed-v1 (see `shared_engine::sealed`): keys travel as hex, a list of keys as their
// concatenation (64 hex digits per key, round 1 first).

fn sealed_key(name: &str, hex: &str) -> Result<sealed::Key, JsError> {
    sealed::Key::from_hex(hex).ok_or_else(|| JsError::new(&format!("{name} must be 64 hex digits")))
}

fn sealed_keys(hex: &str) -> Result<Vec<sealed::Key>, JsError> {
    if !hex.len().is_multiple_of(64) || !hex.is_ascii() {
        return Err(JsError::new(
            "keys must be a concatenation of 64-hex-digit keys",
        ));
    }
    (0..hex.len() / 64)
        .map(|i| sealed_key(&format!("key {}", i + 1), &hex[64 * i..64 * (i + 1)]))
        .collect()
}

fn sealed_params(
    start_at_ms: f64,
    tick_ms: f64,
    break_every: f64,
    commitment: &str,
) -> Result<sealed::SealedParams, JsError> {
    sealed::SealedParams::new(
        safe_integer("startAtMs", start_at_ms)?,
        bounded_u32("tickMs", tick_ms)?,
        bounded_u32("breakEvery", break_every)?,
        sealed_key("commitment", commitment)?,
    )
    .map_err(|e| JsError::new(&e.to_string()))
}

/// SHA-256 of a key, as hex (`H` of the chain).
#[wasm_bindgen(js_name = sealedHash)]
pub fn sealed_hash(key: &str) -> Result<String, JsError> {
    Ok(sealed::hash(&sealed_key("key", key)?).to_string())
}

/// The number of rounds `N` in the chain of a sealed game with this tick.
#[wasm_bindgen(js_name = sealedChainRounds)]
pub fn sealed_chain_rounds(tick_ms: f64) -> Result<f64, JsError> {
    Ok(sealed::chain_rounds(bounded_u32("tickMs", tick_ms)?.max(1)) as f64)
}

/// The commitment of the chain from `root` for a game with this tick (`N` hashes).
#[wasm_bindgen(js_name = sealedCommitment)]
pub fn sealed_commitment(root: &str, tick_ms: f64) -> Result<String, JsError> {
    let rounds = sealed::chain_rounds(bounded_u32("tickMs", tick_ms)?.max(1));
    Ok(sealed::commitment(&sealed_key("root", root)?, rounds).to_string())
}

/// Checks revealed keys (round 1 first) against the commitment: 0 if they chain, else the
/// first round whose key does not hash to the one before it.
#[wasm_bindgen(js_name = sealedVerifyChain)]
pub fn sealed_verify_chain(commitment: &str, keys: &str) -> Result<f64, JsError> {
    let commitment = sealed_key("commitment", commitment)?;
    Ok(
        match sealed::verify_chain(&commitment, &sealed_keys(keys)?) {
            Ok(()) => 0.0,
            Err(sealed::ChainError::Mismatch { round }) => round as f64,
            Err(e) => return Err(JsError::new(&e.to_string())),
        },
    )
}

/// Checks a late joiner's latest key alone: `H^round(key) == commitment`.
#[wasm_bindgen(js_name = sealedVerifyLatest)]
pub fn sealed_verify_latest(commitment: &str, round: f64, key: &str) -> Result<bool, JsError> {
    let round = u64::try_from(safe_integer("round", round)?)
        .map_err(|_| JsError::new("round must be >= 0"))?;
    Ok(sealed::verify_latest(
        &sealed_key("commitment", commitment)?,
        round,
        &sealed_key("key", key)?,
    ))
}

/// The length in steps of the round governed by `key`.
#[wasm_bindgen(js_name = sealedRoundLength)]
pub fn sealed_round_length(key: &str, tick_ms: f64, break_every: f64) -> Result<f64, JsError> {
    let params = sealed_params(0.0, tick_ms, break_every, &"0".repeat(64))?;
    Ok(params.round_length(&sealed_key("key", key)?) as f64)
}

/// A sealed tick: the tick assuming no break after the last revealed key, and whether the
/// keys prove it.
#[wasm_bindgen]
#[derive(Debug, Clone, Copy)]
pub struct JsSealedTick {
    /// The tick.
    pub tick: JsTick,
    /// Whether the revealed keys prove it.
    pub settled: bool,
}

/// The tick at `step` given the revealed keys (see `shared_engine::sealed::tick_at`).
#[wasm_bindgen(js_name = sealedTickAt)]
pub fn sealed_tick_at(
    tick_ms: f64,
    break_every: f64,
    keys: &str,
    step: f64,
) -> Result<JsSealedTick, JsError> {
    let params = sealed_params(0.0, tick_ms, break_every, &"0".repeat(64))?;
    let step = u64::try_from(safe_integer("step", step)?)
        .map_err(|_| JsError::new("step must be >= 0"))?;
    let tick = sealed::tick_at(&params, &sealed_keys(keys)?, step);
    Ok(JsSealedTick {
        tick: tick.tick.into(),
        settled: tick.settled,
    })
}

/// The break steps of the revealed rounds, in order.
#[wasm_bindgen(js_name = sealedBreaks)]
pub fn sealed_breaks(tick_ms: f64, break_every: f64, keys: &str) -> Result<Vec<f64>, JsError> {
    let params = sealed_params(0.0, tick_ms, break_every, &"0".repeat(64))?;
    let keys = sealed_keys(keys)?;
    Ok(params.breaks(&keys).map(|at| at as f64).collect())
}
