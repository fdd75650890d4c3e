//! Defaults for new games (`START_DELAY_MS`, `TICK_MS`, `BREAK_EVERY`, `DEFAULT_ALGORITHM`,
//! `GAME_MAX_AGE`), owned by the service that applies them. All but `GAME_MAX_AGE` may also be
//! changed while running ([`crate::runtime`]), through this same parser.

use api::limits::{MAX_BREAK_EVERY, MAX_TICK_MS, MIN_BREAK_EVERY, MIN_TICK_MS};
use api::{Algorithm, BreakEvery, TickMs};
use kernel::SettingsError;
use shared_engine::DEFAULT_BREAK_EVERY;

use crate::env::Env;

/// What new games look like when a request does not say.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GameDefaults {
    /// Countdown before step 0.
    pub start_delay_ms: u32,
    /// Milliseconds per step.
    pub tick_ms: TickMs,
    /// Break odds.
    pub break_every: BreakEvery,
    /// The algorithm of a game API start that names none (`/v1` has its own default).
    pub algorithm: Algorithm,
    /// `GAME_MAX_AGE`: how long a game may live (its slot's TTL, and reads end it then).
    pub max_age: crate::max_age::MaxAge,
    /// `GAME_RETENTION`: how long a finished game stays stored (the TTLs of its rows).
    pub retention: crate::retention::Retention,
}

impl GameDefaults {
    /// Reads `START_DELAY_MS`, `TICK_MS`, `BREAK_EVERY`, `DEFAULT_ALGORITHM`, `GAME_MAX_AGE` and
    /// `GAME_RETENTION`.
    pub fn from_env(env: &Env<'_>) -> Result<GameDefaults, SettingsError> {
        Ok(GameDefaults {
            start_delay_ms: env.parse(
                "START_DELAY_MS",
                3_000u32,
                |v| *v <= 600_000,
                "0..=600000",
            )?,
            tick_ms: env.number(
                "TICK_MS",
                100,
                TickMs::parse,
                &format!("{MIN_TICK_MS}..={MAX_TICK_MS}"),
            )?,
            break_every: env.number(
                "BREAK_EVERY",
                u64::from(DEFAULT_BREAK_EVERY),
                BreakEvery::parse,
                &format!("{MIN_BREAK_EVERY}..={MAX_BREAK_EVERY}"),
            )?,
            algorithm: match env.get("DEFAULT_ALGORITHM") {
                None => Algorithm::default(),
                Some(raw) => Algorithm::parse(raw.trim())
                    .map_err(|e| SettingsError::new("DEFAULT_ALGORITHM", e.to_string()))?,
            },
            max_age: crate::max_age::MaxAge::parse(env.get(crate::max_age::GAME_MAX_AGE))?,
            retention: crate::retention::Retention::parse(
                env.get(crate::retention::GAME_RETENTION),
            )?,
        })
    }
}
