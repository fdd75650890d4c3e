//! Game events: what each origin publishes to the event stream about its games (a game
//! started, a player joined, a player exited, the game ended, a round broke), for analytics,
//! leaderboards and fraud detection, off the game path.
//!
//! One JSON object per event (camelCase, no `null`s), the [`GameEvent`] envelope:
//!
//! - `schema` is [`SCHEMA_VERSION`] (2). Fields may be added within a version and consumers
//!   ignore fields they do not know; removing a field or changing its meaning bumps the version.
//!   This crate reads schemas 1 and 2 ([`READS_SCHEMAS`]); see "Schema 2" below.
//! - `eventId` is a UUID v5 derived from the game and what happened ([`GameEvent::expected_id`]),
//!   so every relay, retry or crash-restart that publishes the same event gives it the same id:
//!   the broker's duplicate window and consumers dedupe by it (at-least-once delivery,
//!   exactly-once effect).
//! - Every field is derived from the committed game (and its seats), never from the moment of
//!   publishing, so two publications of one event are byte-identical.
//!
//! The types, each with the fields it adds to the common ones (game, its creator as `userId`
//! unless said otherwise, region, engine parameters, `createdAt`, `occurredAt`):
//!
//! | type | when | adds | `occurredAt` |
//! | --- | --- | --- | --- |
//! | `game.started` | the game was created | `maxPlayers` (shared games) | `createdAt` |
//! | `game.joined` | a player took a seat (seat 0, the creator's, with the start of a shared game) | `seat`, `joinedAt`, `userId` = the player | `joinedAt` |
//! | `game.exited` | one player exited (every game: a one-player game's player is seat 0) | `seat`, `userId` = the player, `exitedAt`, `final` (the engine's tick the player froze at: `step`, `value`, ...), `brokeFirst` | `exitedAt` |
//! | `game.ended` | the last player exited, or the game reached its maximum age | `endedAt`, `final` at the end, `breaks` (how many rounds broke before the end), `reason` (`lastExit` or `maxAge`), and at `maxAge` `unexited` (the seats that never exited: `[{seat, userId}]`) | `endedAt` |
//! | `game.break` | a round broke before the end | `round` (1 for the first break), `step` | the breaking step's start |
//!
//! Every game ends exactly once, so every game has exactly one `game.ended`. A game nobody
//! exits ends at its maximum age (`GAME_MAX_AGE`; a sealed game also at its chain's end): its
//! `game.ended` has `reason: "maxAge"`, `endedAt` the expiry, and lists in `unexited` the seats
//! whose players never exited. Those seats get no invented result and no `game.exited` (the
//! results stay as `GET /game/{id}/results` shows them: no `result`); `final` and `breaks` are
//! the game's engine state at the expiry, like any end's.
//!
//! `game.break` events are published with their game's `game.ended`, for the first
//! [`MAX_BREAK_EVENTS`] breaks only (`breaks` on `game.ended` tells whether some were left
//! out), so a long game cannot flood the stream.
//!
//! Sealed games (`sealed-v1`) have no seed to compute from: the origin computes their `final`
//! ticks, `brokeFirst`, `breaks` and `game.break` events from the game's chain, which it holds
//! ([`GameEvent::breaks`] and [`GameEvent::exited`] give none for them). Every such event is
//! about an instant at or before a committed exit, so it tells nothing the keys public by then
//! do not; no event carries a key or the root.
//!
//! Event ids: `<gameId>/<type>` for `game.started`, `game.ended`, and the `game.exited` of
//! seat 0 (schema 1's ids, unchanged); `<gameId>/<type>/<userId>` for `game.joined` and the
//! other seats' `game.exited` (a user holds at most one seat of a game); `<gameId>/game.break/
//! <round>` for breaks ([`EventId::of`], [`EventId::of_player`], [`EventId::of_round`]).
//!
//! ## Schema 2
//!
//! Schema 1 had `game.started` and one `game.exited` per game. Schema 2 adds the types
//! `game.joined`, `game.ended` and `game.break`, and the fields above; every schema-1 field
//! keeps its name and meaning, and seat 0's `game.exited` keeps its id. A schema-1 `game.exited`
//! (no `seat`) reads as seat 0's. `reason` and `unexited` were added to `game.ended` within
//! schema 2 (additive: readers ignore fields they do not know, and an end without `reason` reads
//! as a `lastExit`, the only end published before it). Migration: deploy consumers first (this crate reads both),
//! then the origins; a consumer of schema 1 that skips unknown schemas or types keeps working
//! for one-player games, whose `game.started` and `game.exited` carry every schema-1 field.
//!
//! The subject of an event is `<type>.<region>` ([`GameEvent::subject`]), e.g.
//! `game.started.eu`, so a consumer can subscribe to one kind or one region.
//! `docs/events/*.json` holds a golden example of each type (checked by the tests below).

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::game::{GameStatus, GameView, TickView};
use crate::ids::{GameId, InvalidValue, RegionName, UserId};
use crate::limits::MAX_COMPUTED_STEP;
use crate::seats::SeatResult;

/// The version of the event schema this crate writes.
pub const SCHEMA_VERSION: u32 = 2;

/// The schema versions this crate reads.
pub const READS_SCHEMAS: [u32; 2] = [1, 2];

/// At most this many `game.break` events are published per game (the first breaks).
pub const MAX_BREAK_EVENTS: usize = 1_000;

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
    /// A player exited (first exit of their seat only; repeats publish nothing new).
    #[serde(rename = "game.exited")]
    Exited,
    /// A player took a seat of a shared game.
    #[serde(rename = "game.joined")]
    Joined,
    /// The game's last player exited.
    #[serde(rename = "game.ended")]
    Ended,
    /// A round broke (published with the game's end).
    #[serde(rename = "game.break")]
    Break,
}

impl EventType {
    /// Every type.
    pub const ALL: [EventType; 5] = [
        EventType::Started,
        EventType::Exited,
        EventType::Joined,
        EventType::Ended,
        EventType::Break,
    ];

    /// The wire name, also the first two tokens of the subject.
    pub const fn as_str(self) -> &'static str {
        match self {
            EventType::Started => "game.started",
            EventType::Exited => "game.exited",
            EventType::Joined => "game.joined",
            EventType::Ended => "game.ended",
            EventType::Break => "game.break",
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

/// An event's id: the UUID v5 (namespace [`EVENT_ID_NAMESPACE`]) of a text naming the event,
/// e.g. `3f2b8c1e-9d4a-4f6b-8e2a-1c5d7e9f0a3b/game.started` (see the module docs for each
/// type's). Any language with a UUID v5 function derives the same id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
#[cfg_attr(test, derive(ts_rs::TS))]
#[cfg_attr(test, ts(type = "string"))]
pub struct EventId(uuid::Uuid);

impl EventId {
    /// The id of the `kind` event of `game` (`<gameId>/<type>`): starts, ends, seat 0's exit.
    pub fn of(game: GameId, kind: EventType) -> EventId {
        EventId::named(&format!("{game}/{kind}"))
    }

    /// The id of `user`'s `kind` event in `game` (`<gameId>/<type>/<userId>`): joins, and the
    /// exits of seats other than 0.
    pub fn of_player(game: GameId, kind: EventType, user: &UserId) -> EventId {
        EventId::named(&format!("{game}/{kind}/{user}"))
    }

    /// The id of the break of `round` in `game` (`<gameId>/game.break/<round>`).
    pub fn of_round(game: GameId, round: u64) -> EventId {
        EventId::named(&format!("{game}/{}/{round}", EventType::Break))
    }

    fn named(name: &str) -> EventId {
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
    /// [`SCHEMA_VERSION`] (1 in events written before schema 2).
    pub schema: u32,
    /// Derived from the game and what happened ([`GameEvent::expected_id`]); dedupe by it.
    pub event_id: EventId,
    /// What happened.
    #[serde(rename = "type")]
    pub kind: EventType,
    /// The game.
    pub game_id: GameId,
    /// The game's creator; on `game.joined` and `game.exited`, the seat's player.
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
    /// Unix ms of what the event reports (see the module docs). Consumers measure the event's
    /// lag from it.
    #[cfg_attr(test, ts(type = "number"))]
    pub occurred_at: i64,
    /// `game.started` of a shared game: its seats.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub max_players: Option<u32>,
    /// `game.joined` and `game.exited`: the seat (0 is the creator's, also in a one-player
    /// game). Absent on schema-1 exits, which are seat 0's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub seat: Option<u32>,
    /// `game.joined` only: Unix ms the seat was taken.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional, type = "number"))]
    pub joined_at: Option<i64>,
    /// `game.exited` only: Unix ms of the player's exit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional, type = "number"))]
    pub exited_at: Option<i64>,
    /// `game.exited`: the step the player's game froze at (the last step that began before
    /// the exit), from the shared engine (for a sealed game, from its chain: the origin's
    /// judgement); `game.ended`: the same at the end. Absent if it
    /// happened during the countdown, or in the theoretical case of a last
    /// step beyond [`MAX_COMPUTED_STEP`] (115 days of 100 ms ticks), which no server computes.
    #[serde(rename = "final", default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional, rename = "final"))]
    pub final_tick: Option<TickView>,
    /// `game.exited` (schema 2): whether a break came before the player's exit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub broke_first: Option<bool>,
    /// `game.ended` only: Unix ms of the end (the last exit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional, type = "number"))]
    pub ended_at: Option<i64>,
    /// `game.ended` only: rounds that broke before the end (`game.break` events exist for the
    /// first [`MAX_BREAK_EVENTS`] of them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional, type = "number"))]
    pub breaks: Option<u64>,
    /// `game.ended` only: why the game ended (absent on ends published before this field
    /// existed, which were all [`EndReason::LastExit`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub reason: Option<EndReason>,
    /// `game.ended` at [`EndReason::MaxAge`] only: the seats whose player never exited, by seat
    /// number (they have no result and no `game.exited`; a one-player game's player is seat 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub unexited: Option<Vec<UnexitedSeat>>,
    /// `game.break` only: which break (1 for the first).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional, type = "number"))]
    pub round: Option<u64>,
    /// `game.break` only: the step that broke.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional, type = "number"))]
    pub step: Option<u64>,
}

/// Why a game ended (`game.ended`'s `reason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(test, derive(ts_rs::TS))]
pub enum EndReason {
    /// Its last player exited (a one-player game's player, or a shared game's last seat):
    /// `endedAt` is that exit.
    LastExit,
    /// It reached its maximum age (`GAME_MAX_AGE`, or a sealed game's chain end) with players
    /// who never exited: `endedAt` is the expiry, and `unexited` lists their seats.
    MaxAge,
}

/// A seat whose player had not exited when the game ended at its maximum age.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct UnexitedSeat {
    /// The seat (0 is the creator's).
    pub seat: u32,
    /// Its player.
    pub user_id: UserId,
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
                "game event schema {v} is not supported (this build reads schemas {READS_SCHEMAS:?})"
            ),
            EventError::Inconsistent(m) => write!(f, "inconsistent game event: {m}"),
        }
    }
}

impl std::error::Error for EventError {}

impl GameEvent {
    /// The `game.started` event of a game.
    pub fn started(game: &GameView) -> GameEvent {
        let mut event = GameEvent::envelope(game, EventType::Started, game.created_at);
        event.max_players = game.shared.map(|s| s.max_players);
        event
    }

    /// The `game.joined` event of `user` taking `seat` of `game` at `joined_at`.
    pub fn joined(game: &GameView, seat: u32, user: &UserId, joined_at: i64) -> GameEvent {
        let mut event = GameEvent::envelope(game, EventType::Joined, joined_at);
        event.event_id = EventId::of_player(game.game_id, EventType::Joined, user);
        event.user_id = user.clone();
        event.seat = Some(seat);
        event.joined_at = Some(joined_at);
        event
    }

    /// The `game.exited` event of `user`'s exit from `seat` of `game` with `result`.
    pub fn seat_exited(
        game: &GameView,
        seat: u32,
        user: &UserId,
        result: &SeatResult,
    ) -> GameEvent {
        let mut event = GameEvent::envelope(game, EventType::Exited, result.exited_at);
        if seat != 0 {
            event.event_id = EventId::of_player(game.game_id, EventType::Exited, user);
        }
        event.user_id = user.clone();
        event.seat = Some(seat);
        event.exited_at = Some(result.exited_at);
        event.final_tick = result.final_tick;
        event.broke_first = Some(result.break_first);
        event
    }

    /// The `game.exited` event of an exited one-player game (its player is seat 0); `None` if
    /// the game has not exited.
    pub fn exited(game: &GameView) -> Option<GameEvent> {
        let exited_at = game.exited_at?;
        if game.status != GameStatus::Exited {
            return None;
        }
        let final_tick = final_tick(game, exited_at);
        let result = SeatResult {
            exited_at,
            final_tick,
            break_first: final_tick.is_some_and(|t| t.round > 0),
        };
        Some(GameEvent::seat_exited(game, 0, &game.user_id, &result))
    }

    /// The `game.ended` event of an ended game; `None` if it has not ended.
    pub fn ended(game: &GameView) -> Option<GameEvent> {
        let ended_at = game.exited_at?;
        if game.status != GameStatus::Exited {
            return None;
        }
        let mut event = GameEvent::envelope(game, EventType::Ended, ended_at);
        event.ended_at = Some(ended_at);
        event.final_tick = final_tick(game, ended_at);
        event.breaks = Some(event.final_tick.map_or(0, |t| t.round));
        event.reason = Some(EndReason::LastExit);
        Some(event)
    }

    /// The `game.ended` event of a game that ended at its maximum age (its `exitedAt` is the
    /// expiry) while the players of `unexited` still played; `None` if it has not ended.
    pub fn ended_at_max_age(game: &GameView, mut unexited: Vec<UnexitedSeat>) -> Option<GameEvent> {
        let mut event = GameEvent::ended(game)?;
        unexited.sort();
        event.reason = Some(EndReason::MaxAge);
        event.unexited = Some(unexited);
        Some(event)
    }

    /// The `game.break` events of an ended game: one per round that broke before the end, the
    /// first [`MAX_BREAK_EVENTS`] only; none for a game that has not ended or is sealed.
    pub fn breaks(game: &GameView) -> Vec<GameEvent> {
        let Some(last) = GameEvent::ended(game).and_then(|e| e.final_tick) else {
            return Vec::new();
        };
        let Some(params) = game.params() else {
            return Vec::new();
        };
        let mut events = Vec::new();
        let mut counter = shared_engine::Counter::new(params);
        while events.len() < MAX_BREAK_EVENTS && events.len() < last.round as usize {
            let tick = counter.advance();
            if tick.step > last.step {
                break;
            }
            if tick.broken {
                events.push(GameEvent::broke(game, tick.round, tick.step));
            }
        }
        events
    }

    /// The `game.break` event of round `round` of `game`, which broke at `step` (its
    /// `occurredAt` is the breaking step's start). It carries no key: for a sealed game the
    /// origin builds these from its chain, only for rounds that broke before the end.
    pub fn broke(game: &GameView, round: u64, step: u64) -> GameEvent {
        let at = game.start_at.saturating_add(
            i64::try_from(step)
                .unwrap_or(i64::MAX)
                .saturating_mul(i64::from(game.tick_ms)),
        );
        let mut event = GameEvent::envelope(game, EventType::Break, at);
        event.event_id = EventId::of_round(game.game_id, round);
        event.round = Some(round);
        event.step = Some(step);
        event
    }

    /// The `game.started` or (one-player) `game.exited` / `game.ended` event of `game`, if
    /// the game is in a state that has it; `None` for the per-seat and per-round types.
    pub fn of(game: &GameView, kind: EventType) -> Option<GameEvent> {
        match kind {
            EventType::Started => Some(GameEvent::started(game)),
            EventType::Exited => GameEvent::exited(game),
            EventType::Ended => GameEvent::ended(game),
            EventType::Joined | EventType::Break => None,
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
            max_players: None,
            seat: None,
            joined_at: None,
            exited_at: None,
            final_tick: None,
            broke_first: None,
            ended_at: None,
            breaks: None,
            reason: None,
            unexited: None,
            round: None,
            step: None,
        }
    }

    /// The subject to publish on: `<type>.<region>`.
    pub fn subject(&self) -> String {
        self.kind.subject(&self.region)
    }

    /// The seat an exit or join is of (schema-1 exits: seat 0).
    pub fn seat_or_creator(&self) -> u32 {
        self.seat.unwrap_or(0)
    }

    /// The id this event must carry, from its game, type, seat, player and round.
    pub fn expected_id(&self) -> EventId {
        match self.kind {
            EventType::Started | EventType::Ended => EventId::of(self.game_id, self.kind),
            EventType::Exited if self.seat_or_creator() == 0 => {
                EventId::of(self.game_id, self.kind)
            }
            EventType::Exited | EventType::Joined => {
                EventId::of_player(self.game_id, self.kind, &self.user_id)
            }
            EventType::Break => EventId::of_round(self.game_id, self.round.unwrap_or(0)),
        }
    }

    /// The event as compact JSON.
    pub fn to_json(&self) -> String {
        // Only strings, integers and enums: serialization cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Parses and checks an event: a schema this crate reads, an id derived from what it
    /// reports, and exactly the fields of its type.
    pub fn from_json(bytes: &[u8]) -> Result<GameEvent, EventError> {
        #[derive(Deserialize)]
        struct Version {
            schema: u32,
        }
        let version: Version =
            serde_json::from_slice(bytes).map_err(|e| EventError::Malformed(e.to_string()))?;
        if !READS_SCHEMAS.contains(&version.schema) {
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
        if self.event_id != self.expected_id() {
            return wrong(format!(
                "eventId {} is not the id of {} of game {}",
                self.event_id, self.kind, self.game_id
            ));
        }
        if self.schema == 1 && !matches!(self.kind, EventType::Started | EventType::Exited) {
            return wrong(format!("schema 1 has no {}", self.kind));
        }
        // Which optional fields each type carries.
        let has = [
            ("maxPlayers", self.max_players.is_some()),
            ("seat", self.seat.is_some()),
            ("joinedAt", self.joined_at.is_some()),
            ("exitedAt", self.exited_at.is_some()),
            ("final", self.final_tick.is_some()),
            ("brokeFirst", self.broke_first.is_some()),
            ("endedAt", self.ended_at.is_some()),
            ("breaks", self.breaks.is_some()),
            ("reason", self.reason.is_some()),
            ("unexited", self.unexited.is_some()),
            ("round", self.round.is_some()),
            ("step", self.step.is_some()),
        ];
        let (allowed, required, at): (&[&str], &[&str], Option<i64>) = match self.kind {
            EventType::Started => (&["maxPlayers"], &[], Some(self.created_at)),
            EventType::Joined => (&["seat", "joinedAt"], &["seat", "joinedAt"], self.joined_at),
            EventType::Exited if self.schema == 1 => {
                (&["exitedAt", "final"], &["exitedAt"], self.exited_at)
            }
            EventType::Exited => (
                &["seat", "exitedAt", "final", "brokeFirst"],
                &["seat", "exitedAt", "brokeFirst"],
                self.exited_at,
            ),
            EventType::Ended => (
                &["endedAt", "final", "breaks", "reason", "unexited"],
                &["endedAt", "breaks"],
                self.ended_at,
            ),
            EventType::Break => (&["round", "step"], &["round", "step"], None),
        };
        for (name, present) in has {
            if present && !allowed.contains(&name) {
                return wrong(format!("a {} has no {name}", self.kind));
            }
            if !present && required.contains(&name) {
                return wrong(format!("a {} has {name}", self.kind));
            }
        }
        if let Some(at) = at
            && self.occurred_at != at
        {
            return wrong(format!("a {} occurs at the time it reports", self.kind));
        }
        // Seats that never exited exist only in an end at the maximum age, which lists them
        // (possibly none).
        if self.unexited.is_some() != (self.reason == Some(EndReason::MaxAge)) {
            return wrong(format!(
                "a {} lists its unexited seats exactly when it ended at its maximum age",
                self.kind
            ));
        }
        Ok(())
    }
}

/// The tick a game froze at when it ended at `at`, from the shared engine; `None` during the
/// countdown.
fn final_tick(game: &GameView, at: i64) -> Option<TickView> {
    let params = game.params()?;
    // Bound the engine's O(step) work before computing (see the field's docs).
    if let shared_engine::StepAt::At(step) =
        shared_engine::step_at(game.start_at, game.tick_ms, at.saturating_sub(1))
        && step > MAX_COMPUTED_STEP
    {
        return None;
    }
    match shared_engine::state_at(&params.with_end(Some(at)), at) {
        shared_engine::State::Ended(tick) => tick.map(TickView::from),
        // with_end(at) makes every instant from at on Ended.
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
        newer["schema"] = serde_json::json!(3);
        assert_eq!(
            GameEvent::from_json(newer.to_string().as_bytes()),
            Err(EventError::UnknownSchema(3))
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

    fn shared_game(exited_at: Option<i64>) -> GameView {
        let mut view = game(exited_at);
        view.shared = Some(crate::SharedGame {
            max_players: 4,
            join_deadline: view.start_at,
        });
        view
    }

    #[test]
    fn seat_events_golden() {
        let view = shared_game(None);
        let started = GameEvent::started(&view);
        assert_eq!(started.max_players, Some(4));
        assert_eq!(
            started.event_id,
            EventId::of(view.game_id, EventType::Started)
        );
        let bob = UserId::parse("player-2").unwrap();
        let joined = GameEvent::joined(&view, 2, &bob, 1_705_314_601_500);
        assert_eq!(joined.subject(), "game.joined.eu");
        assert_eq!(joined.occurred_at, 1_705_314_601_500);
        check_golden("game.joined.json", &joined);
        let params = view.params().unwrap();
        let result = SeatResult::at(&params, 1_705_314_603_000 + 12_345);
        let exited = GameEvent::seat_exited(&view, 2, &bob, &result);
        assert_eq!(
            exited.event_id,
            EventId::of_player(view.game_id, EventType::Exited, &bob)
        );
        assert_eq!(exited.final_tick.map(|t| t.step), Some(123));
        assert_eq!(exited.broke_first, Some(result.break_first));
        check_golden("game.exited.seat.json", &exited);
        // Seat 0 (the creator's) keeps schema 1's id.
        let creator = GameEvent::seat_exited(&view, 0, &view.user_id, &result);
        assert_eq!(
            creator.event_id,
            EventId::of(view.game_id, EventType::Exited)
        );
        // A seat's exit under another seat's id is refused.
        let mut forged = exited.clone();
        forged.seat = Some(0);
        assert!(matches!(forged.check(), Err(EventError::Inconsistent(_))));
        let mut no_seat = exited;
        no_seat.seat = None;
        assert!(no_seat.check().is_err());
    }

    #[test]
    fn an_end_publishes_its_breaks_as_the_engine_has_them() {
        let exited_at = 1_705_314_603_000 + 12_345;
        let view = game(Some(exited_at));
        let ended = GameEvent::ended(&view).unwrap();
        assert_eq!(ended.ended_at, Some(exited_at));
        let last = ended.final_tick.unwrap();
        assert_eq!(ended.breaks, Some(last.round));
        check_golden("game.ended.json", &ended);
        let breaks = GameEvent::breaks(&view);
        assert_eq!(breaks.len() as u64, last.round);
        let params = view.params().unwrap();
        let expected: Vec<(u64, u64)> = (0..=last.step)
            .map(|s| shared_engine::tick_at(&params, s))
            .filter(|t| t.broken)
            .map(|t| (t.round, t.step))
            .collect();
        let got: Vec<(u64, u64)> = breaks
            .iter()
            .map(|b| (b.round.unwrap(), b.step.unwrap()))
            .collect();
        assert_eq!(got, expected);
        assert!(!breaks.is_empty());
        for b in &breaks {
            b.check().unwrap();
            assert_eq!(b.occurred_at, view.start_at + b.step.unwrap() as i64 * 100);
        }
        check_golden("game.break.json", &breaks[0]);
        // An active game has neither.
        assert!(GameEvent::ended(&game(None)).is_none());
        assert!(GameEvent::breaks(&game(None)).is_empty());
    }

    #[test]
    fn an_end_at_the_maximum_age_names_its_reason_and_the_seats_that_never_exited() {
        let expiry = 1_705_314_603_000 + 24 * 3_600_000;
        let mut view = shared_game(Some(expiry));
        view.tick_ms = 1_000;
        let host = view.user_id.clone();
        let bob = UserId::parse("player-2").unwrap();
        let unexited = vec![
            UnexitedSeat {
                seat: 2,
                user_id: bob,
            },
            UnexitedSeat {
                seat: 0,
                user_id: host,
            },
        ];
        let ended = GameEvent::ended_at_max_age(&view, unexited).unwrap();
        assert_eq!(ended.reason, Some(EndReason::MaxAge));
        assert_eq!(ended.event_id, EventId::of(view.game_id, EventType::Ended));
        assert_eq!((ended.ended_at, ended.occurred_at), (Some(expiry), expiry));
        // Sorted by seat; the game's state at the expiry, like any end.
        let seats: Vec<u32> = ended.unexited.iter().flatten().map(|s| s.seat).collect();
        assert_eq!(seats, vec![0, 2]);
        assert_eq!(
            ended.final_tick,
            GameEvent::ended(&view).unwrap().final_tick
        );
        check_golden("game.ended.maxAge.json", &ended);
        // An end by the last exit says so and lists no seat.
        let by_exit = GameEvent::ended(&view).unwrap();
        assert_eq!(
            (by_exit.reason, &by_exit.unexited),
            (Some(EndReason::LastExit), &None)
        );
        // Unexited seats only with the maximum age, and the other way round.
        let mut forged = by_exit.clone();
        forged.unexited = Some(Vec::new());
        assert!(matches!(forged.check(), Err(EventError::Inconsistent(_))));
        let mut unlisted = ended.clone();
        unlisted.unexited = None;
        assert!(unlisted.check().is_err());
        let mut on_exit = GameEvent::exited(&game(Some(expiry))).unwrap();
        on_exit.reason = Some(EndReason::MaxAge);
        assert!(on_exit.check().is_err());
        // An end published before `reason` existed still reads (as a last exit's).
        let mut old: serde_json::Value = serde_json::from_str(&by_exit.to_json()).unwrap();
        old.as_object_mut().unwrap().remove("reason");
        let read = GameEvent::from_json(old.to_string().as_bytes()).unwrap();
        assert_eq!(read.reason, None);
        assert_eq!(read.ended_at, by_exit.ended_at);
    }

    #[test]
    fn a_long_game_publishes_at_most_a_thousand_breaks() {
        let mut view = game(None);
        view.break_every = 2;
        view.status = GameStatus::Exited;
        view.exited_at = Some(view.start_at + 100 * 10_000);
        let ended = GameEvent::ended(&view).unwrap();
        assert!(ended.breaks.unwrap() > 3_000, "{ended:?}");
        let breaks = GameEvent::breaks(&view);
        assert_eq!(breaks.len(), MAX_BREAK_EVENTS);
        assert_eq!(breaks.last().unwrap().round, Some(MAX_BREAK_EVENTS as u64));
        let ids: std::collections::HashSet<EventId> = breaks.iter().map(|b| b.event_id).collect();
        assert_eq!(ids.len(), MAX_BREAK_EVENTS);
    }

    #[test]
    fn schema_one_events_still_parse() {
        // As published before schema 2 (docs/events at schema 1): an exit without a seat is
        // seat 0's, under the same id.
        let v1 = r#"{"schema":1,"eventId":"0c5ce5a0-92e6-533d-a5b1-ae8e715f5184","type":"game.exited","gameId":"3f2b8c1e-9d4a-4f6b-8e2a-1c5d7e9f0a3b","userId":"player-1","region":"eu","seed":42,"startAt":1705314603000,"tickMs":100,"breakEvery":50,"algorithm":"mix32-v1","createdAt":1705314600000,"occurredAt":1705314615345,"exitedAt":1705314615345,"final":{"step":123,"value":4,"round":3,"broken":false}}"#;
        let event = GameEvent::from_json(v1.as_bytes()).unwrap();
        assert_eq!((event.schema, event.seat_or_creator()), (1, 0));
        let now = GameEvent::exited(&game(Some(1_705_314_615_345))).unwrap();
        assert_eq!(now.event_id, event.event_id);
        assert_eq!(now.final_tick, event.final_tick);
        // Schema 1 knew no joins.
        let mut joined: serde_json::Value = serde_json::from_str(
            &GameEvent::joined(&game(None), 1, &UserId::parse("b").unwrap(), 5).to_json(),
        )
        .unwrap();
        joined["schema"] = serde_json::json!(1);
        assert!(matches!(
            GameEvent::from_json(joined.to_string().as_bytes()),
            Err(EventError::Inconsistent(_))
        ));
    }
}
