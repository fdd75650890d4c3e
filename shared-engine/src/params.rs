//! Validated game parameters.

use core::fmt;

use crate::Algorithm;

/// The break odds used when a game does not choose its own: one break in 50 steps.
pub const DEFAULT_BREAK_EVERY: u32 = 50;

/// Why a set of game parameters was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamError {
    /// `tick_ms` must be at least 1.
    TickMsZero,
    /// `break_every` must be at least 2.
    BreakEveryTooSmall,
}

impl fmt::Display for ParamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ParamError::TickMsZero => "tickMs must be at least 1",
            ParamError::BreakEveryTooSmall => "breakEvery must be at least 2",
        })
    }
}

/// Everything that determines a game's timeline. Built only through [`Params::new`], so every
/// value is valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Params {
    seed: u32,
    start_at_ms: i64,
    tick_ms: u32,
    break_every: u32,
    algorithm: Algorithm,
    ended_at_ms: Option<i64>,
}

impl Params {
    /// Validates and builds the parameters of a game that has not ended.
    pub fn new(
        seed: u32,
        start_at_ms: i64,
        tick_ms: u32,
        break_every: u32,
        algorithm: Algorithm,
    ) -> Result<Params, ParamError> {
        if tick_ms == 0 {
            return Err(ParamError::TickMsZero);
        }
        if break_every < 2 {
            return Err(ParamError::BreakEveryTooSmall);
        }
        Ok(Params {
            seed,
            start_at_ms,
            tick_ms,
            break_every,
            algorithm,
            ended_at_ms: None,
        })
    }

    /// The same game, ended at Unix millisecond `ended_at_ms` (or not ended, for `None`).
    pub fn with_end(self, ended_at_ms: Option<i64>) -> Params {
        Params {
            ended_at_ms,
            ..self
        }
    }

    /// The seed.
    pub fn seed(&self) -> u32 {
        self.seed
    }
    /// Unix millisecond at which step 0 begins.
    pub fn start_at_ms(&self) -> i64 {
        self.start_at_ms
    }
    /// Milliseconds per step (at least 1).
    pub fn tick_ms(&self) -> u32 {
        self.tick_ms
    }
    /// A step breaks with probability `1 / break_every` (at least 2).
    pub fn break_every(&self) -> u32 {
        self.break_every
    }
    /// The break algorithm.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }
    /// Unix millisecond at which the game ended, if it did.
    pub fn ended_at_ms(&self) -> Option<i64> {
        self.ended_at_ms
    }
}
