//! Game events: what each origin publishes to the event stream when a game starts and when it
//! exits, for analytics, leaderboards and fraud detection, off the game path.
//!
//! One JSON object per event (camelCase, no `null`s), the [`GameEvent`] envelope:
//!
//! - `schema` is [`SCHEMA_VERSION`]. Fields may be added within a version and consumers ignore
//!   fields they do not know; removing a field or changing its meaning bumps the version.
//! - `eventId` is a UUID v5 of the game id and the event type ([`EventId::of`]), so every relay,
//!   retry or crash-restart that publishes the same event gives it the same id: the broker's
//!   duplicate window and consumers dedupe by it (at-least-once delivery, exactly-once effect).
//! - Every field is derived from the committed game, never from the moment of publishing, so
//!   two publications of one event are byte-identical.
//! - `game.exited` adds `exitedAt` and `final`, the step the game froze at, computed by the
//!   shared engine from the game's parameters (absent if it exited during the countdown).
//!
//! The subject of an event is `<type>.<region>` ([`GameEvent::subject`]), e.g.
//! `game.started.eu`, so a consumer can subscribe to one kind or one region.
//! `docs/events/*.json` holds a golden example of each type (checked by the tests below).

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::game::{GameStatus, GameView, TickView};
use crate::ids::{GameId, InvalidValue, RegionName, UserId};
use crate::limits::MAX_COMPUTED_STEP;

/// The version of the event schema this crate writes and reads.
pub const SCHEMA_VERSION: u32 = 1;

/// The namespace of [`EventId`]s (UUID v5). Fixed forever: changing it changes every event id.
pub const EVENT_ID_NAMESPACE: uuid::Uuid = uuid::Uuid::from_bytes([
    0xb0, 0x04, 0x4b, 0xeb, 0xbf, 0x79, 0x45, 0x36, 0x89, 0x03, 0xd4, 0xc6, 0x53, 0x61, 0x4b, 0x6c,
]);

/// What happened to a game.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub enum EventType {
    /// A game was created (the start request that created it was committed).
    #[serde(rename = "game.started")]
    Started,
    /// A game was exited (first exit only; repeats of an exit publish nothing new).
    #[serde(rename = "game.exited")]
    Exited,
}

impl EventType {
    /// Every type.
    pub const ALL: [EventType; 2] = [EventType::Started, EventType::Exited];

    /// The wire name, also the first two tokens of the subject.
    pub const fn as_str(self) -> &'static str {
        match self {
            EventType::Started => "game.started",
            EventType::Exited => "game.exited",
        }
    }

    /// Parses the wire name.
    pub fn parse(name: &str) -> Option<EventType> {
        EventType::ALL.into_iter().find(|t| t.as_str() == name)
    }

    /// The subject events of this type from `region` are published on: `game.started.eu`.
    pub fn subject(self, region: &RegionName) -> String {
        format!("{}.{}", self.as_str(), region)
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An event's id: the UUID v5 (namespace [`EVENT_ID_NAMESPACE`]) of the text
/// `<gameId>/<type>`, e.g. `3f2b8c1e-9d4a-4f6b-8e2a-1c5d7e9f0a3b/game.started`. Any language
/// with a UUID v5 function derives the same id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
#[cfg_attr(test, derive(ts_rs::TS))]
#[cfg_attr(test, ts(type = "string"))]
pub struct EventId(uuid::Uuid);

impl EventId {
    /// The id of the `kind` event of `game`.
    pub fn of(game: GameId, kind: EventType) -> EventId {
        let name = format!("{game}/{kind}");
        EventId(uuid::Uuid::new_v5(&EVENT_ID_NAMESPACE, name.as_bytes()))
    }

    /// Parses the hyphenated form.
    pub fn parse(value: &str) -> Result<EventId, InvalidValue> {
        if value.len() == 36
            && let Ok(id) = uuid::Uuid::try_parse(value)
        {
            return Ok(EventId(id));
        }
        Err(InvalidValue("must be a UUID".into()))
    }

    /// The UUID.
    pub fn uuid(&self) -> uuid::Uuid {
        self.0
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

impl TryFrom<String> for EventId {
    type Error = InvalidValue;
    fn try_from(value: String) -> Result<EventId, InvalidValue> {
        EventId::parse(&value)
    }
}

impl From<EventId> for String {
    fn from(value: EventId) -> String {
        value.to_string()
    }
}

/// One game event (see the module docs for the rules of the envelope).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct GameEvent {
    /// [`SCHEMA_VERSION`].
    pub schema: u32,
    /// Deterministic per game and type ([`EventId::of`]); dedupe by it.
    pub event_id: EventId,
    /// `game.started` or `game.exited`.
    #[serde(rename = "type")]
    pub kind: EventType,
    /// The game.
    pub game_id: GameId,
    /// Its player.
    pub user_id: UserId,
    /// The region whose origin created the game.
    pub region: RegionName,
    /// Engine seed.
    pub seed: u32,
    /// Unix ms of step 0.
    #[cfg_attr(test, ts(type = "number"))]
    pub start_at: i64,
    /// Milliseconds per step.
    pub tick_ms: u32,
    /// Break odds `1/n`.
    pub break_every: u32,
    /// Break algorithm.
    #[cfg_attr(test, ts(type = "GameAlgorithm"))]
    pub algorithm: crate::sealed::GameAlgorithm,
    /// Unix ms the game was created.
    #[cfg_attr(test, ts(type = "number"))]
    pub created_at: i64,
    /// Unix ms of what the event reports: `createdAt` for a start, `exitedAt` for an exit.
    /// Consumers measure the event's lag from it.
    #[cfg_attr(test, ts(type = "number"))]
    pub occurred_at: i64,
    /// `game.exited` only: Unix ms of the exit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional, type = "number"))]
    pub exited_at: Option<i64>,
    /// `game.exited` only: the step the game froze at (the last step that began before the
    /// exit), from the shared engine. Absent if the game exited during the countdown, or in the
    /// theoretical case of a last step beyond [`MAX_COMPUTED_STEP`] (115 days of 100 ms ticks),
    /// which no server computes.
    #[serde(rename = "final", default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional, rename = "final"))]
    pub final_tick: Option<TickView>,
}

/// Why bytes are not a [`GameEvent`] this crate understands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventError {
    /// Not JSON, or not the envelope's shape.
    Malformed(String),
    /// A schema version this crate does not know (a newer producer).
    UnknownSchema(u32),
    /// Well-formed, but inconsistent (an id that is not the game's, exit fields on a start...).
    Inconsistent(String),
}

impl fmt::Display for EventError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EventError::Malformed(m) => write!(f, "not a game event: {m}"),
            EventError::UnknownSchema(v) => write!(
                f,
                "game event schema {v} is not supported (this build reads schema {SCHEMA_VERSION})"
            ),
            EventError::Inconsistent(m) => write!(f, "inconsistent game event: {m}"),
        }
    }
}

impl std::error::Error for EventError {}

impl GameEvent {
    /// The `game.started` event of a game.
    pub fn started(game: &GameView) -> GameEvent {
        GameEvent::envelope(game, EventType::Started, game.created_at)
    }

    /// The `game.exited` event of an exited game; `None` if the game has not exited.
    pub fn exited(game: &GameView) -> Option<GameEvent> {
        let exited_at = game.exited_at?;
        if game.status != GameStatus::Exited {
            return None;
        }
        let mut event = GameEvent::envelope(game, EventType::Exited, exited_at);
        event.exited_at = Some(exited_at);
        event.final_tick = final_tick(game, exited_at);
        Some(event)
    }

    /// The event of `kind` for `game`, if the game is in a state that has it.
    pub fn of(game: &GameView, kind: EventType) -> Option<GameEvent> {
        match kind {
            EventType::Started => Some(GameEvent::started(game)),
            EventType::Exited => GameEvent::exited(game),
        }
    }

    fn envelope(game: &GameView, kind: EventType, occurred_at: i64) -> GameEvent {
        GameEvent {
            schema: SCHEMA_VERSION,
            event_id: EventId::of(game.game_id, kind),
            kind,
            game_id: game.game_id,
            user_id: game.user_id.clone(),
            region: game.region.clone(),
            seed: game.seed,
            start_at: game.start_at,
            tick_ms: game.tick_ms,
            break_every: game.break_every,
            algorithm: game.algorithm,
            created_at: game.created_at,
            occurred_at,
            exited_at: None,
            final_tick: None,
        }
    }

    /// The subject to publish on: `<type>.<region>`.
    pub fn subject(&self) -> String {
        self.kind.subject(&self.region)
    }

    /// The event as compact JSON.
    pub fn to_json(&self) -> String {
        // Only strings, integers and enums: serialization cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Parses and checks an event: known schema, an id derived from its game and type, exit
    /// fields exactly on exits.
    pub fn from_json(bytes: &[u8]) -> Result<GameEvent, EventError> {
        #[derive(Deserialize)]
        struct Version {
            schema: u32,
        }
        let version: Version =
            serde_json::from_slice(bytes).map_err(|e| EventError::Malformed(e.to_string()))?;
        if version.schema != SCHEMA_VERSION {
            return Err(EventError::UnknownSchema(version.schema));
        }
        let event: GameEvent =
            serde_json::from_slice(bytes).map_err(|e| EventError::Malformed(e.to_string()))?;
        event.check()?;
        Ok(event)
    }

    /// The envelope's invariants (what [`GameEvent::from_json`] enforces).
    pub fn check(&self) -> Result<(), EventError> {
        let wrong = |m: String| Err(EventError::Inconsistent(m));
        if self.event_id != EventId::of(self.game_id, self.kind) {
            return wrong(format!(
                "eventId {} is not the id of {} of game {}",
                self.event_id, self.kind, self.game_id
            ));
        }
        match (self.kind, self.exited_at) {
            (EventType::Started, None) if self.final_tick.is_none() => {
                if self.occurred_at != self.created_at {
                    return wrong("a start occurs at createdAt".into());
                }
            }
            (EventType::Started, _) => return wrong("a start has no exitedAt or final".into()),
            (EventType::Exited, None) => return wrong("an exit has exitedAt".into()),
            (EventType::Exited, Some(at)) => {
                if self.occurred_at != at {
                    return wrong("an exit occurs at exitedAt".into());
                }
            }
        }
        Ok(())
    }
}

/// The tick an exited game froze at, from the shared engine; `None` during the countdown.
fn final_tick(game: &GameView, exited_at: i64) -> Option<TickView> {
    let params = game.params()?;
    // Bound the engine's O(step) work before computing (see the field's docs).
    if let shared_engine::StepAt::At(step) =
        shared_engine::step_at(game.start_at, game.tick_ms, exited_at.saturating_sub(1))
        && step > MAX_COMPUTED_STEP
    {
        return None;
    }
    match shared_engine::state_at(&params, exited_at) {
        shared_engine::State::Ended(tick) => tick.map(TickView::from),
        // with_end(exited_at) makes every instant from exited_at on Ended.
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared_engine::Algorithm;

    const GAME: &str = "3f2b8c1e-9d4a-4f6b-8e2a-1c5d7e9f0a3b";

    fn game(exited_at: Option<i64>) -> GameView {
        GameView {
            game_id: GameId::parse(GAME).unwrap(),
            user_id: UserId::parse("player-1").unwrap(),
            region: RegionName::parse("eu").unwrap(),
            seed: 42,
            start_at: 1_705_314_603_000,
            tick_ms: 100,
            break_every: 50,
            algorithm: Algorithm::Mix32V1.into(),
            status: if exited_at.is_some() {
                GameStatus::Exited
            } else {
                GameStatus::Active
            },
            created_at: 1_705_314_600_000,
            exited_at,
            metadata: None,
            shared: None,
            owner_token: None,
            commitment: None,
            rounds: None,
            root: None,
        }
    }

    fn golden_path(name: &str) -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../docs/events")
            .join(name)
    }

    /// Compares `event` with the golden file `name` (`UPDATE_GOLDEN=1` rewrites it).
    fn check_golden(name: &str, event: &GameEvent) {
        let pretty = serde_json::to_string_pretty(event).unwrap() + "\n";
        let path = golden_path(name);
        if std::env::var_os("UPDATE_GOLDEN").is_some() {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &pretty).unwrap();
        }
        let stored = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e} (UPDATE_GOLDEN=1 writes it)", path.display()));
        assert_eq!(
            stored,
            pretty,
            "{} is stale; UPDATE_GOLDEN=1 cargo test -p api events rewrites it",
            path.display()
        );
        // The golden text parses back to the same event.
        assert_eq!(&GameEvent::from_json(stored.as_bytes()).unwrap(), event);
    }

    #[test]
    fn event_ids_are_deterministic_uuid_v5() {
        let id = GameId::parse(GAME).unwrap();
        let started = EventId::of(id, EventType::Started);
        assert_eq!(started, EventId::of(id, EventType::Started));
        assert_ne!(started, EventId::of(id, EventType::Exited));
        assert_eq!(started.uuid().get_version_num(), 5);
        // Pinned: any change here changes every id ever published. The literal is Python's
        // `uuid.uuid5(UUID("b0044beb-..."), "<gameId>/game.started")`, an independent check.
        assert_eq!(started.to_string(), "3e024453-c383-5396-993b-07853ae10b8e");
        assert_eq!(
            EVENT_ID_NAMESPACE.to_string(),
            "b0044beb-bf79-4536-8903-d4c653614b6c"
        );
        let other = GameId::parse("3f2b8c1e-9d4a-4f6b-8e2a-1c5d7e9f0a3c").unwrap();
        assert_ne!(started, EventId::of(other, EventType::Started));
        assert_eq!(EventId::parse(&started.to_string()).unwrap(), started);
        assert!(EventId::parse("nope").is_err());
    }

    #[test]
    fn started_event_golden() {
        let event = GameEvent::started(&game(None));
        assert_eq!(event.subject(), "game.started.eu");
        assert_eq!(event.occurred_at, event.created_at);
        check_golden("game.started.json", &event);
        // No nulls, no exit fields.
        let json = event.to_json();
        assert!(!json.contains("null") && !json.contains("exitedAt") && !json.contains("final"));
    }

    #[test]
    fn exited_event_golden_has_the_engines_final_tick() {
        // Exited 12.345 s after step 0: frozen at step 123.
        let exited_at = 1_705_314_603_000 + 12_345;
        let view = game(Some(exited_at));
        let event = GameEvent::exited(&view).unwrap();
        assert_eq!(event.subject(), "game.exited.eu");
        assert_eq!(
            (event.exited_at, event.occurred_at),
            (Some(exited_at), exited_at)
        );
        let tick = shared_engine::tick_at(&view.params().unwrap(), 123);
        assert_eq!(event.final_tick, Some(TickView::from(tick)));
        check_golden("game.exited.json", &event);
    }

    #[test]
    fn an_exit_during_the_countdown_has_no_final_tick() {
        let event = GameEvent::exited(&game(Some(1_705_314_601_000))).unwrap();
        assert_eq!(event.final_tick, None);
        let json = event.to_json();
        assert!(!json.contains("null") && !json.contains("final"), "{json}");
        assert_eq!(GameEvent::from_json(json.as_bytes()).unwrap(), event);
        // Exactly at startAt: step 0 has not begun before the exit either.
        let at_start = GameEvent::exited(&game(Some(1_705_314_603_000))).unwrap();
        assert_eq!(at_start.final_tick, None);
        let one_ms_in = GameEvent::exited(&game(Some(1_705_314_603_001))).unwrap();
        assert_eq!(one_ms_in.final_tick.map(|t| t.step), Some(0));
    }

    #[test]
    fn an_active_game_has_no_exit_event() {
        assert_eq!(GameEvent::exited(&game(None)), None);
        assert_eq!(GameEvent::of(&game(None), EventType::Exited), None);
        assert!(GameEvent::of(&game(None), EventType::Started).is_some());
    }

    #[test]
    fn huge_final_steps_are_not_computed() {
        let mut view = game(None);
        view.tick_ms = 1;
        view.status = GameStatus::Exited;
        view.exited_at = Some(view.start_at + MAX_COMPUTED_STEP as i64 + 10);
        assert_eq!(GameEvent::exited(&view).unwrap().final_tick, None);
        view.exited_at = Some(view.start_at + 1_000);
        assert_eq!(
            GameEvent::exited(&view).unwrap().final_tick.map(|t| t.step),
            Some(999)
        );
    }

    #[test]
    fn parsing_checks_the_envelope() {
        let started = GameEvent::started(&game(None)).to_json();
        let mut value: serde_json::Value = serde_json::from_str(&started).unwrap();
        // Unknown fields are ignored (additive changes within a schema version).
        value["futureField"] = serde_json::json!({"x": 1});
        assert!(GameEvent::from_json(value.to_string().as_bytes()).is_ok());

        let mut newer = value.clone();
        newer["schema"] = serde_json::json!(2);
        assert_eq!(
            GameEvent::from_json(newer.to_string().as_bytes()),
            Err(EventError::UnknownSchema(2))
        );
        let mut forged = value.clone();
        forged["type"] = serde_json::json!("game.exited");
        assert!(matches!(
            GameEvent::from_json(forged.to_string().as_bytes()),
            Err(EventError::Inconsistent(_))
        ));
        let mut with_exit = value.clone();
        with_exit["exitedAt"] = serde_json::json!(1);
        assert!(matches!(
            GameEvent::from_json(with_exit.to_string().as_bytes()),
            Err(EventError::Inconsistent(_))
        ));
        for bad in [&b""[..], b"[]", b"{}", b"{\"schema\":1}", b"not json"] {
            assert!(
                matches!(GameEvent::from_json(bad), Err(EventError::Malformed(_))),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        assert_eq!(EventType::parse("game.exited"), Some(EventType::Exited));
        assert_eq!(EventType::parse("game.paused"), None);
    }
}
