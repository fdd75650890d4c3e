//! The session-service dialect (`/v1/sessions`, snake_case) of the design documents: its
//! requests, views and its own error shape `{"error": "<message>", "message": "<detail>"}`,
//! over the same games as `/game/*`.

use std::fmt;

use serde::{Deserialize, Serialize};
use shared_engine::Algorithm;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::game::{GameStatus, GameView, Phase};
use crate::ids::{BreakEvery, GameId, InvalidValue, Metadata, RegionName, TickMs, UserId};

/// An instant on the wire: RFC 3339 text, held as Unix milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
#[cfg_attr(test, derive(ts_rs::TS))]
#[cfg_attr(test, ts(type = "string"))]
pub struct Timestamp(i64);

impl Timestamp {
    /// The instant `ms` (Unix milliseconds), if it has an RFC 3339 form (years 0000-9999).
    pub fn from_ms(ms: i64) -> Option<Timestamp> {
        let t = OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok()?;
        (0..=9999).contains(&t.year()).then_some(Timestamp(ms))
    }

    /// Parses RFC 3339 text (`2024-01-15T10:30:03Z`, offsets allowed; sub-ms digits dropped).
    pub fn parse(text: &str) -> Result<Timestamp, InvalidValue> {
        let refused = || {
            InvalidValue(format!(
                "must be an RFC 3339 date-time like 2024-01-15T10:30:03Z, got {text:?}"
            ))
        };
        let t = OffsetDateTime::parse(text, &Rfc3339).map_err(|_| refused())?;
        let ms = t.unix_timestamp_nanos().div_euclid(1_000_000);
        i64::try_from(ms)
            .ok()
            .and_then(Timestamp::from_ms)
            .ok_or_else(refused)
    }

    /// Unix milliseconds.
    pub fn ms(self) -> i64 {
        self.0
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // from_ms/parse only admit instants that format.
        let text = OffsetDateTime::from_unix_timestamp_nanos(i128::from(self.0) * 1_000_000)
            .ok()
            .and_then(|t| t.format(&Rfc3339).ok())
            .unwrap_or_default();
        f.write_str(&text)
    }
}

impl TryFrom<String> for Timestamp {
    type Error = InvalidValue;
    fn try_from(text: String) -> Result<Timestamp, InvalidValue> {
        Timestamp::parse(&text)
    }
}

impl From<Timestamp> for String {
    fn from(t: Timestamp) -> String {
        t.to_string()
    }
}

/// A session id: `sess_<gameId>`. A bare game id is accepted too.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(value_type = String, example = "sess_3f2b8c1e-9d4a-4f6b-8e2a-1c5d7e9f0a3b"))]
#[cfg_attr(test, derive(ts_rs::TS))]
#[cfg_attr(test, ts(type = "string"))]
pub struct SessionId(GameId);

impl SessionId {
    /// Parses `sess_<uuid>` or a bare UUID.
    pub fn parse(text: &str) -> Result<SessionId, InvalidValue> {
        GameId::parse(text.strip_prefix("sess_").unwrap_or(text)).map(SessionId)
    }

    /// The game behind the session.
    pub fn game_id(self) -> GameId {
        self.0
    }
}

impl From<GameId> for SessionId {
    fn from(id: GameId) -> SessionId {
        SessionId(id)
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sess_{}", self.0)
    }
}

impl TryFrom<String> for SessionId {
    type Error = InvalidValue;
    fn try_from(text: String) -> Result<SessionId, InvalidValue> {
        SessionId::parse(&text)
    }
}

impl From<SessionId> for String {
    fn from(id: SessionId) -> String {
        id.to_string()
    }
}

/// `POST /v1/sessions`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct CreateSessionRequest {
    /// Milliseconds per step (required, `1..=60000`).
    pub tick_ms: TickMs,
    /// When step 0 begins (default: now + the region's start delay); see the origin's bounds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub start_at: Option<Timestamp>,
    /// The player (default: an anonymous user of the session's own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub user_id: Option<UserId>,
    /// Break algorithm (default `interval-v0`, the session service's own engine).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    #[cfg_attr(test, ts(optional, type = "Algorithm"))]
    pub algorithm: Option<Algorithm>,
    /// Break odds for `mix32-v1`/`lcg32` (ignored by `interval-v0`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub break_every: Option<BreakEvery>,
    /// Free-form JSON object, at most 4 KiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub metadata: Option<Metadata>,
}

/// A session's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(test, derive(ts_rs::TS))]
pub enum SessionStatus {
    /// Not stopped.
    Running,
    /// Stopped.
    Stopped,
}

impl From<GameStatus> for SessionStatus {
    fn from(status: GameStatus) -> SessionStatus {
        match status {
            GameStatus::Active => SessionStatus::Running,
            GameStatus::Exited => SessionStatus::Stopped,
        }
    }
}

/// A session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct SessionView {
    /// `sess_<gameId>`.
    pub id: SessionId,
    /// The engine seed as a decimal integer string (`0..=4294967295`, a valid int64).
    pub seed: String,
    /// When step 0 begins.
    pub start_at: Timestamp,
    /// Milliseconds per step.
    pub tick_ms: u32,
    /// Running or stopped.
    pub status: SessionStatus,
    /// The player.
    pub user_id: UserId,
    /// Break odds (used by `mix32-v1` and `lcg32`).
    pub break_every: u32,
    /// Break algorithm.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    #[cfg_attr(test, ts(type = "Algorithm"))]
    pub algorithm: Algorithm,
    /// The region whose origin created it.
    pub region: RegionName,
    /// When it was created.
    pub created_at: Timestamp,
    /// The client's metadata; absent if it sent none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub metadata: Option<Metadata>,
    /// When it was stopped, once stopped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub stopped_at: Option<Timestamp>,
    /// Creates only (as `ownerToken` of the game API): the credential a stop needs
    /// (`Authorization: Bearer`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub owner_token: Option<String>,
}

impl SessionView {
    /// The session view of a game; `None` if one of its instants has no RFC 3339 form, or for a
    /// `sealed-v1` game (which only the game API serves).
    pub fn of(game: &GameView) -> Option<SessionView> {
        Some(SessionView {
            id: game.game_id.into(),
            seed: game.seed.to_string(),
            start_at: Timestamp::from_ms(game.start_at)?,
            tick_ms: game.tick_ms,
            status: game.status.into(),
            user_id: game.user_id.clone(),
            break_every: game.break_every,
            // A sealed game is no session (its breaks come from keys the dialect cannot carry).
            algorithm: game.algorithm.engine()?,
            region: game.region.clone(),
            created_at: Timestamp::from_ms(game.created_at)?,
            metadata: game.metadata.clone(),
            stopped_at: match game.exited_at {
                Some(ms) => Some(Timestamp::from_ms(ms)?),
                None => None,
            },
            owner_token: game.owner_token.clone(),
        })
    }
}

/// The phase of a session's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(test, derive(ts_rs::TS))]
pub enum SessionPhase {
    /// Before step 0 (step, value, round are 0 and broken false).
    Countdown,
    /// Running.
    Running,
    /// Stopped; frozen at its last step (zeros if stopped during the countdown).
    Ended,
}

/// `GET /v1/sessions/{id}/state`: always integers and a boolean, as the document's clients
/// expect (zeros and `false` before the start).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct SessionStateView {
    /// `sess_<gameId>`.
    pub id: SessionId,
    /// Step index (0 before the start).
    #[cfg_attr(test, ts(type = "number"))]
    pub step: u64,
    /// Steps since the last break.
    #[cfg_attr(test, ts(type = "number"))]
    pub value: u64,
    /// Breaks so far.
    #[cfg_attr(test, ts(type = "number"))]
    pub round: u64,
    /// Whether this step broke.
    pub broken: bool,
    /// The instant computed for.
    pub computed_at: Timestamp,
    /// Countdown, running or ended.
    pub phase: SessionPhase,
    /// Countdown only: milliseconds until step 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional, type = "number"))]
    pub ms_until_start: Option<u64>,
}

impl SessionStateView {
    /// The session view of an engine state.
    pub fn new(id: SessionId, computed_at: Timestamp, phase: Phase) -> SessionStateView {
        let zero = |phase, ms_until_start| SessionStateView {
            id,
            step: 0,
            value: 0,
            round: 0,
            broken: false,
            computed_at,
            phase,
            ms_until_start,
        };
        match phase {
            Phase::Countdown { ms_until_start } => {
                zero(SessionPhase::Countdown, Some(ms_until_start))
            }
            Phase::Running {
                step,
                value,
                round,
                broken,
            } => SessionStateView {
                step,
                value,
                round,
                broken,
                ..zero(SessionPhase::Running, None)
            },
            Phase::Ended {
                step,
                value,
                round,
                broken,
            } => SessionStateView {
                step: step.unwrap_or(0),
                value: value.unwrap_or(0),
                round: round.unwrap_or(0),
                broken: broken.unwrap_or(false),
                ..zero(SessionPhase::Ended, None)
            },
        }
    }
}

/// `POST /v1/sessions/{id}/stop`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct StopView {
    /// Always `true`.
    pub ok: bool,
    /// `sess_<gameId>`.
    pub id: SessionId,
    /// Always `stopped`.
    pub status: SessionStatus,
    /// When it was stopped.
    pub stopped_at: Timestamp,
}

/// The dialect's error body: `{"error": "<message>", "message": "<detail>"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct V1ErrorBody {
    /// A short message (`"session not found"`, `"invalid request body"`, ...).
    pub error: String,
    /// The detail.
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps() {
        let t = Timestamp::parse("2024-01-15T10:30:03Z").unwrap();
        assert_eq!(t.ms(), 1_705_314_603_000);
        assert_eq!(t.to_string(), "2024-01-15T10:30:03Z");
        assert_eq!(
            Timestamp::parse("2024-01-15T11:30:03.250+01:00")
                .unwrap()
                .ms(),
            1_705_314_603_250
        );
        for bad in [
            "",
            "yesterday",
            "2024-01-15",
            "2024-13-01T00:00:00Z",
            "1705314603000",
        ] {
            assert!(Timestamp::parse(bad).is_err(), "{bad:?}");
        }
        assert!(Timestamp::from_ms(crate::limits::MAX_AT_MS).is_some());
        assert!(Timestamp::from_ms(crate::limits::MAX_AT_MS + 1).is_none());
        assert_eq!(
            Timestamp::from_ms(crate::limits::MAX_AT_MS)
                .unwrap()
                .to_string(),
            "9999-12-31T23:59:59.999Z"
        );
    }

    #[test]
    fn session_ids() {
        let id = "3f2b8c1e-9d4a-4f6b-8e2a-1c5d7e9f0a3b";
        let s = SessionId::parse(&format!("sess_{id}")).unwrap();
        assert_eq!(s.to_string(), format!("sess_{id}"));
        assert_eq!(SessionId::parse(id).unwrap(), s);
        assert!(SessionId::parse("sess_abc-123-def").is_err());
    }

    #[test]
    fn countdown_state_has_zeros_not_nulls() {
        let id = SessionId::parse("3f2b8c1e-9d4a-4f6b-8e2a-1c5d7e9f0a3b").unwrap();
        let at = Timestamp::from_ms(0).unwrap();
        let v = serde_json::to_value(SessionStateView::new(
            id,
            at,
            Phase::Countdown { ms_until_start: 5 },
        ))
        .unwrap();
        assert_eq!(
            (
                &v["step"],
                &v["value"],
                &v["round"],
                &v["broken"],
                &v["phase"]
            ),
            (
                &serde_json::json!(0),
                &serde_json::json!(0),
                &serde_json::json!(0),
                &serde_json::json!(false),
                &serde_json::json!("countdown")
            )
        );
        assert_eq!(v["computed_at"], "1970-01-01T00:00:00Z");
    }

    #[test]
    fn create_requires_tick_ms() {
        let e = crate::json::parse_body::<CreateSessionRequest>(b"{}").unwrap_err();
        assert_eq!(e.field.as_deref(), Some("body"), "{e}");
        assert!(e.message.contains("tick_ms"), "{e}");
        let r: CreateSessionRequest =
            serde_json::from_str(r#"{"tick_ms": 100, "start_at": "2024-01-15T10:30:03Z"}"#)
                .unwrap();
        assert_eq!(r.start_at.unwrap().ms(), 1_705_314_603_000);
    }
}
