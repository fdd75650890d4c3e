//! The deterministic game engine shared by the origin, the edge and the browser.
//!
//! A game is fully described by [`Params`]: a `seed`, the Unix millisecond `start_at_ms` at which
//! step 0 begins, the tick length `tick_ms`, the break odds `break_every` and the [`Algorithm`]
//! that decides breaks (`mix32-v1`, the default; `lcg32`; or `interval-v0`, whose rounds have
//! drawn lengths and which ignores `break_every`). Every client that knows the parameters and the time computes the same
//! [`State`] with [`state_at`], so the server never streams ticks.
//!
//! Semantics (normative, see the repository README):
//! - `step(now) = floor((now - start_at_ms) / tick_ms)`; before step 0 the game is a countdown.
//! - At every step `s >= 0` the game breaks or not ([`is_break`]). `value(s)` is 0 if `s` broke,
//!   else `value(s - 1) + 1` with `value(-1) = 0`; `round(s)` counts the breaks in `[0, s]`.
//! - A game that ended at `ended_at_ms` freezes at the last step that began before its end.
//!
//! [`sealed`] holds `sealed-v1`, whose breaks come from a SHA-256 hash chain revealed round by
//! round, so no client can compute them ahead (its own API: state given the revealed keys).
//!
//! The optional `serde` feature (no_std too) makes [`Algorithm`] serialize as its wire name and
//! [`Tick`] as `{"step", "value", "round", "broken"}`.
//!
//! The crate is `no_std`, allocation-free and float-free, so its outputs are bit-identical on
//! every target. Golden vectors in `vectors/golden.json` pin them down for ports in other
//! languages.
//!
//! ```
//! use shared_engine::{Algorithm, Params, State, state_at};
//!
//! let params = Params::new(42, 1_000, 100, 50, Algorithm::Mix32V1).unwrap();
//! assert_eq!(state_at(&params, 900), State::Countdown { ms_until_start: 100 });
//! match state_at(&params, 1_250) {
//!     State::Running(tick) => assert_eq!(tick.step, 2),
//!     other => panic!("expected a running game, got {other:?}"),
//! }
//! ```
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

#[cfg(feature = "std")]
extern crate std;

mod algorithm;
mod counter;
mod params;
pub mod sealed;
#[cfg(feature = "serde")]
mod serde_impls;

pub use algorithm::{
    Algorithm, UnknownAlgorithm, interval_v0_interval, interval_v0_tick, is_break, lcg32, mix32_v1,
};
pub use counter::Counter;
pub use params::{DEFAULT_BREAK_EVERY, ParamError, Params};

/// What a game shows at one step.
///
/// With the `serde` feature it serializes as `{"step", "value", "round", "broken"}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Tick {
    /// The step index, 0 at `start_at_ms`.
    pub step: u64,
    /// Steps since the last break (0 at a break).
    pub value: u64,
    /// Number of breaks in `[0, step]`.
    pub round: u64,
    /// Whether this step itself broke.
    pub broken: bool,
}

/// The state of a game at an instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    /// Before `start_at_ms`: no step yet, only the milliseconds left.
    Countdown {
        /// Milliseconds until step 0 begins (at least 1).
        ms_until_start: u64,
    },
    /// The game is running; this is the current step.
    Running(Tick),
    /// The game has ended; this is the step it froze at, `None` if it ended during the countdown.
    Ended(Option<Tick>),
}

/// Where an instant falls relative to a game's step grid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepAt {
    /// Before step 0, with the milliseconds left until it begins (at least 1).
    Before(u64),
    /// Inside the given step.
    At(u64),
}

/// `floor((now_ms - start_at_ms) / tick_ms)` without overflow for any `i64` inputs.
///
/// ```
/// use shared_engine::{StepAt, step_at};
/// assert_eq!(step_at(0, 100, -1), StepAt::Before(1));
/// assert_eq!(step_at(0, 100, 0), StepAt::At(0));
/// assert_eq!(step_at(0, 100, 199), StepAt::At(1));
/// ```
pub fn step_at(start_at_ms: i64, tick_ms: u32, now_ms: i64) -> StepAt {
    // i128 holds every difference of two i64s, so no input can overflow.
    let elapsed = i128::from(now_ms) - i128::from(start_at_ms);
    if elapsed < 0 {
        // |elapsed| <= 2^64 - 1 because both ends are i64.
        return StepAt::Before(elapsed.unsigned_abs() as u64);
    }
    // elapsed < 2^64 and tick_ms >= 1, so the quotient fits in u64.
    StepAt::At((elapsed / i128::from(tick_ms.max(1))) as u64)
}

/// The state of the game described by `params` at Unix millisecond `now_ms`.
///
/// For `mix32-v1` and `lcg32`, costs one [`is_break`] evaluation per step up to the current one
/// (the running count of breaks cannot be known otherwise); for `interval-v0`, one draw per
/// round (rounds last 101 to 301 steps). Clients that follow a game tick by tick should use a
/// [`Counter`], which is O(1) per tick.
pub fn state_at(params: &Params, now_ms: i64) -> State {
    if let Some(end) = params.ended_at_ms()
        && now_ms >= end
    {
        // Frozen at the last step that began strictly before the end.
        let frozen = match step_at(
            params.start_at_ms(),
            params.tick_ms(),
            end.saturating_sub(1),
        ) {
            StepAt::Before(_) => None,
            StepAt::At(step) => Some(tick_at(params, step)),
        };
        return State::Ended(frozen);
    }
    match step_at(params.start_at_ms(), params.tick_ms(), now_ms) {
        StepAt::Before(ms_until_start) => State::Countdown { ms_until_start },
        StepAt::At(step) => State::Running(tick_at(params, step)),
    }
}

/// The tick at `step` of the game described by `params`, independent of any clock.
pub fn tick_at(params: &Params, step: u64) -> Tick {
    let (round, last_break) = algorithm::count_breaks(params, step);
    Tick::from_breaks(step, round, last_break)
}

impl Tick {
    /// The tick at `step` given the number of breaks in `[0, step]` and the last of them.
    fn from_breaks(step: u64, round: u64, last_break: Option<u64>) -> Tick {
        Tick {
            step,
            value: match last_break {
                Some(at) => step - at,
                None => step + 1,
            },
            round,
            broken: last_break == Some(step),
        }
    }
}
