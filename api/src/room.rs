//! Live game rooms: the JSON messages of the WebSocket at `GET /edge/game/{id}/live`, and the
//! origin's notices to the edge (`POST /edge/internal/game/{id}/exited`, and
//! `.../joined` with a [`SeatJoin`]).
//!
//! A room never streams ticks: every client computes the steps itself with the shared engine.
//! The socket carries only what a client cannot compute: who else is there (`welcome`,
//! `presence`, `joined`, `left`), a shared game's seats as they are taken (`seated`) and their
//! results (`seat`), the moment the game ends (`exited`), the server's clock
//! (`ping`/`pong`), problems (`warning`, `error`) and, for a `sealed-v1` game, each round's
//! key at its break (`round`), which no client can compute ahead.
//!
//! Every message is an object with a `type` tag. [`parse_client_message`] is the one parser of
//! what a client sends, with the HTTP contract's error codes: too big → `payload_too_large`,
//! not JSON → `bad_request`, wrong shape or unknown `type` → `validation_failed` naming the field.

use serde::{Deserialize, Serialize};

use crate::error::{ApiError, ErrorDetail};
use crate::game::GameStatus;
use crate::ids::{GameId, UserId};
use crate::sealed::RoundKey;
use crate::seats::SeatResult;

/// The largest message a client may send, in bytes (a `hello` with a token is far smaller).
pub const MAX_CLIENT_MESSAGE_BYTES: usize = 4096;

/// The header carrying the shared secret of `POST /edge/internal/game/{id}/exited`.
pub const NOTIFY_SECRET_HEADER: &str = "x-edge-notify-secret";

/// What a connection is in a room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(test, derive(ts_rs::TS))]
pub enum LiveRole {
    /// A player of the game, proved by an owner token (see [`Hello`]): the creator's, or, in a
    /// shared game, a seat's.
    Player,
    /// Anyone watching.
    Viewer,
}

/// A client's first message: who it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct Hello {
    /// Player or viewer.
    pub role: LiveRole,
    /// The player's user id (optional: the owner token names the player; if sent, it must match).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub user_id: Option<UserId>,
    /// The owner's proof, required for role `player`: the game's owner token (what the start
    /// answered as `ownerToken`). Verified by the room exactly as the origin verifies an exit's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub owner_token: Option<String>,
    /// A shared game: the seat the player means to play (optional: the token names the player,
    /// who holds one seat; if sent, it must be that seat).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub seat: Option<u32>,
}

/// A client's clock probe, answered by a [`Pong`]. Also reports the client's last measured
/// round trip and jitter, so the room can warn about a poor connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct ClientPing {
    /// The client's clock when it sent this, ms (echoed back).
    #[cfg_attr(test, ts(type = "number"))]
    pub client_time: i64,
    /// The client's last round-trip time on this socket, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub rtt_ms: Option<u32>,
    /// The client's round-trip jitter on this socket, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub jitter_ms: Option<u32>,
}

/// A client asks to end the game (the player only).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct ExitCommand {
    /// The owner's proof (see [`Hello::owner_token`]); the `hello`'s proof is used if absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub owner_token: Option<String>,
}

/// What a client sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
#[cfg_attr(test, derive(ts_rs::TS))]
pub enum ClientMessage {
    /// Joins the room as player or viewer.
    Hello(Hello),
    /// Clock probe.
    Ping(ClientPing),
    /// Ends the game (player only).
    Exit(ExitCommand),
}

impl ClientMessage {
    /// Every `type` a client may send.
    pub const TYPES: [&'static str; 3] = ["hello", "ping", "exit"];

    /// The wire name of this message's `type`.
    pub const fn kind(&self) -> &'static str {
        match self {
            ClientMessage::Hello(_) => "hello",
            ClientMessage::Ping(_) => "ping",
            ClientMessage::Exit(_) => "exit",
        }
    }
}

/// One connection in a room, as others see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct Member {
    /// The connection (stable across hibernation, new on reconnect).
    pub conn_id: String,
    /// Player or viewer.
    pub role: LiveRole,
    /// A player's user id (never shown for viewers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub user_id: Option<UserId>,
    /// A shared game's player: the seat its token proved (`0` is the creator's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub seat: Option<u32>,
    /// The connection's last reported round trip, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub rtt_ms: Option<u32>,
}

/// Who is in a room: the players' connections, and how many viewers.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct Presence {
    /// The players' connections (one per open page of a player), by seat, then by arrival.
    pub players: Vec<Member>,
    /// Connections watching.
    pub viewers: u32,
}

/// The answer to a `hello`: the connection, the game's status and who is there, at once (also
/// after a reconnect).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct Welcome {
    /// This connection's id.
    pub conn_id: String,
    /// The role granted.
    pub role: LiveRole,
    /// The game.
    pub game_id: GameId,
    /// Active or exited.
    pub status: GameStatus,
    /// Unix ms of the exit, once exited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional, type = "number"))]
    pub exited_at: Option<i64>,
    /// The server's clock, Unix ms.
    #[cfg_attr(test, ts(type = "number"))]
    pub server_time: i64,
    /// Who is there (this connection included).
    pub presence: Presence,
}

/// Someone joined or left, with the presence after it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct MemberEvent {
    /// Who.
    pub member: Member,
    /// Who is there now.
    pub presence: Presence,
}

/// Which path an exit reached the room by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(test, derive(ts_rs::TS))]
pub enum ExitSource {
    /// `POST /edge/game/exit` at this edge.
    Edge,
    /// The origin's notice (an exit that bypassed the edge: `/game/exit`, `/v1` stop).
    Origin,
    /// A player's `exit` message on the socket.
    Socket,
    /// The room found the game exited when it loaded it.
    Load,
}

/// The game ended: freeze at the engine's last step before `exitedAt`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct Exited {
    /// The game.
    pub game_id: GameId,
    /// Unix ms of the committed exit.
    #[cfg_attr(test, ts(type = "number"))]
    pub exited_at: i64,
    /// How the room learned it.
    pub source: ExitSource,
}

/// One seat of a shared game exited: `{"type":"seat","seat":N,"userId":"…","result":{…}}`,
/// pushed to every socket the moment the origin committed it (the same result
/// `GET /edge/game/{id}/results` lists for that seat). The game goes on for the other seats;
/// its `exited` follows when the last seat exits. Only the origin's authenticated notice
/// causes this push; a client cannot send it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct SeatExit {
    /// The seat's number (`0` is the creator's).
    pub seat: u32,
    /// Its player.
    pub user_id: UserId,
    /// The committed result.
    pub result: SeatResult,
}

/// A seat of a shared game was taken: `{"type":"seated","seat":N,"userId":"…","joinedAt":MS}`,
/// pushed to every socket the moment the origin committed the join (the same seat
/// `GET /edge/game/{id}/results` lists), and to a socket that says `hello` later, right after its
/// `welcome` (every join so far, in push order, before any `seat` result). The creator's seat 0
/// is never pushed: it is the game's. Only the origin's authenticated notice causes this push.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct SeatJoin {
    /// The seat's number (`1..maxPlayers`).
    pub seat: u32,
    /// Its player.
    pub user_id: UserId,
    /// Unix ms the seat was taken (the seat's owner token is issued at this instant).
    #[cfg_attr(test, ts(type = "number"))]
    pub joined_at: i64,
}

/// The answer to a [`ClientPing`]: NTP-style timestamps. With the client's receive time `t3`:
/// round trip `(t3 - clientTime) - (serverSent - serverReceived)`, clock offset (server minus
/// client) `((serverReceived - clientTime) + (serverSent - t3)) / 2`, within ± round trip / 2.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct Pong {
    /// The ping's `clientTime`, echoed.
    #[cfg_attr(test, ts(type = "number"))]
    pub client_time: i64,
    /// Server clock when the ping arrived, Unix ms.
    #[cfg_attr(test, ts(type = "number"))]
    pub server_received: i64,
    /// Server clock when this pong left, Unix ms.
    #[cfg_attr(test, ts(type = "number"))]
    pub server_sent: i64,
}

/// A connection's latency passed a threshold (a report only; nothing is cut off).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct LatencyWarning {
    /// `rtt` or `jitter`.
    pub metric: String,
    /// The reported value, ms.
    pub value_ms: u32,
    /// The configured threshold, ms.
    pub threshold_ms: u32,
    /// For people.
    pub message: String,
}

/// A refused message; the socket stays open.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct LiveError {
    /// The contract's error detail (same codes as HTTP).
    pub error: ErrorDetail,
}

impl From<&ApiError> for LiveError {
    fn from(e: &ApiError) -> Self {
        LiveError {
            error: e.body().error,
        }
    }
}

/// What the room sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
#[cfg_attr(test, derive(ts_rs::TS))]
pub enum ServerMessage {
    /// The answer to `hello`.
    Welcome(Welcome),
    /// Who is there (sent on request-free changes, e.g. after the room reloads).
    Presence(Presence),
    /// Someone joined.
    Joined(MemberEvent),
    /// Someone left.
    Left(MemberEvent),
    /// The game ended.
    Exited(Exited),
    /// The answer to `ping`.
    Pong(Pong),
    /// Latency report.
    Warning(LatencyWarning),
    /// A refused message.
    Error(LiveError),
    /// A `sealed-v1` game's round broke: its key, `{"type":"round","round":R,"key":"<64 hex>"}`,
    /// pushed to every socket at the round's reveal instant by the origin's clock (never
    /// before: the room fetches it from the origin, which refuses early), and to a socket
    /// after its `welcome` for the latest round already out. `SHA-256(key)` is the previous
    /// round's key (the game's `commitment` for round 1); a client that missed rounds hashes
    /// down to the last key it holds.
    Round(RoundKey),
    /// A shared game's seat exited (see [`SeatExit`]); the game goes on for the others.
    Seat(SeatExit),
    /// A shared game's seat was taken (see [`SeatJoin`]). Not `joined`, which is a socket's
    /// arrival in the room.
    Seated(SeatJoin),
}

impl ServerMessage {
    /// The wire name of this message's `type` (metrics).
    pub const fn kind(&self) -> &'static str {
        match self {
            ServerMessage::Welcome(_) => "welcome",
            ServerMessage::Presence(_) => "presence",
            ServerMessage::Joined(_) => "joined",
            ServerMessage::Left(_) => "left",
            ServerMessage::Exited(_) => "exited",
            ServerMessage::Pong(_) => "pong",
            ServerMessage::Warning(_) => "warning",
            ServerMessage::Error(_) => "error",
            ServerMessage::Round(_) => "round",
            ServerMessage::Seat(_) => "seat",
            ServerMessage::Seated(_) => "seated",
        }
    }
}

/// The body of `POST /edge/internal/game/{id}/exited` (origin → edge): the game's exit, or,
/// with `seat`, one seat's exit of a shared game (the room pushes `seat` and the game goes on).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct ExitedNotice {
    /// Unix ms of the committed exit (the seat's, for a seat notice).
    #[cfg_attr(test, ts(type = "number"))]
    pub exited_at: i64,
    /// A seat's exit: pushed as `{"type":"seat",…}`; the game does not end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub seat: Option<SeatExit>,
}

/// Parses what a client sent (text frame bytes).
pub fn parse_client_message(bytes: &[u8]) -> Result<ClientMessage, ApiError> {
    if bytes.len() > MAX_CLIENT_MESSAGE_BYTES {
        return Err(ApiError::new(
            crate::ErrorCode::PayloadTooLarge,
            format!("a message may have at most {MAX_CLIENT_MESSAGE_BYTES} bytes"),
        ));
    }
    // One flat struct for every message type: parsed once, with the contract's field paths,
    // then checked per type (one deserializer instead of one per message keeps the edge's
    // wasm small).
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Wire {
        #[serde(rename = "type", default)]
        kind: Option<String>,
        #[serde(default)]
        role: Option<LiveRole>,
        #[serde(default)]
        user_id: Option<UserId>,
        #[serde(default)]
        owner_token: Option<String>,
        #[serde(default)]
        client_time: Option<i64>,
        #[serde(default)]
        rtt_ms: Option<u32>,
        #[serde(default)]
        jitter_ms: Option<u32>,
        #[serde(default)]
        seat: Option<u32>,
    }
    let w: Wire = crate::json::parse_body(bytes)?;
    let missing = |field: &str| ApiError::invalid(field, "missing field");
    match w.kind.as_deref() {
        Some("hello") => Ok(ClientMessage::Hello(Hello {
            role: w.role.ok_or_else(|| missing("role"))?,
            user_id: w.user_id,
            owner_token: w.owner_token,
            seat: w.seat,
        })),
        Some("ping") => Ok(ClientMessage::Ping(ClientPing {
            client_time: w.client_time.ok_or_else(|| missing("clientTime"))?,
            rtt_ms: w.rtt_ms,
            jitter_ms: w.jitter_ms,
        })),
        Some("exit") => Ok(ClientMessage::Exit(ExitCommand {
            owner_token: w.owner_token,
        })),
        Some(other) => Err(ApiError::invalid(
            "type",
            format!(
                "unknown message type {:?}; expected one of {}",
                other.chars().take(32).collect::<String>(),
                ClientMessage::TYPES.join(", ")
            ),
        )),
        None => Err(ApiError::invalid("type", "missing field")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorCode;

    fn refused(text: &str) -> (ErrorCode, Option<String>) {
        let e = parse_client_message(text.as_bytes()).expect_err(text);
        let body = e.body().error;
        (body.code, body.field)
    }

    #[test]
    fn parses_every_client_message() {
        assert_eq!(
            parse_client_message(br#"{"type":"hello","role":"viewer"}"#).unwrap(),
            ClientMessage::Hello(Hello {
                role: LiveRole::Viewer,
                user_id: None,
                owner_token: None,
                seat: None
            })
        );
        assert_eq!(
            parse_client_message(br#"{"type":"hello","role":"player","ownerToken":"t","seat":2}"#)
                .unwrap(),
            ClientMessage::Hello(Hello {
                role: LiveRole::Player,
                user_id: None,
                owner_token: Some("t".into()),
                seat: Some(2)
            })
        );
        let ping = parse_client_message(br#"{"type":"ping","clientTime":5,"rttMs":12}"#).unwrap();
        assert_eq!(ping.kind(), "ping");
        assert_eq!(
            parse_client_message(br#"{"type":"exit"}"#).unwrap(),
            ClientMessage::Exit(ExitCommand::default())
        );
    }

    #[test]
    fn refuses_bad_messages_with_contract_codes() {
        assert_eq!(refused("not json").0, ErrorCode::BadRequest);
        assert_eq!(refused("").0, ErrorCode::BadRequest);
        assert_eq!(
            refused("[1]"),
            (ErrorCode::ValidationFailed, Some("body".into()))
        );
        assert_eq!(
            refused(r#"{"type":"shout"}"#),
            (ErrorCode::ValidationFailed, Some("type".into()))
        );
        assert_eq!(
            refused(r#"{"role":"viewer"}"#),
            (ErrorCode::ValidationFailed, Some("type".into()))
        );
        assert_eq!(
            refused(r#"{"type":"ping"}"#),
            (ErrorCode::ValidationFailed, Some("clientTime".into()))
        );
        assert_eq!(
            refused(r#"{"type":7}"#),
            (ErrorCode::ValidationFailed, Some("type".into()))
        );
        assert_eq!(
            refused(r#"{"type":"hello","role":"admin"}"#),
            (ErrorCode::ValidationFailed, Some("role".into()))
        );
        assert_eq!(
            refused(r#"{"type":"hello","role":"player","userId":" "}"#),
            (ErrorCode::ValidationFailed, Some("userId".into()))
        );
        let huge = format!(
            r#"{{"type":"ping","clientTime":1,"x":"{}"}}"#,
            "a".repeat(5000)
        );
        assert_eq!(refused(&huge).0, ErrorCode::PayloadTooLarge);
    }

    #[test]
    fn server_messages_are_tagged() {
        let m = ServerMessage::Pong(Pong {
            client_time: 1,
            server_received: 2,
            server_sent: 3,
        });
        assert_eq!(
            serde_json::to_string(&m).unwrap(),
            r#"{"type":"pong","clientTime":1,"serverReceived":2,"serverSent":3}"#
        );
        assert_eq!(m.kind(), "pong");
        let round = ServerMessage::Round(RoundKey {
            round: 3,
            key: "ab".repeat(32),
        });
        assert_eq!(
            serde_json::to_string(&round).unwrap(),
            format!(
                r#"{{"type":"round","round":3,"key":"{}"}}"#,
                "ab".repeat(32)
            )
        );
        assert_eq!(round.kind(), "round");
        let seat = ServerMessage::Seat(SeatExit {
            seat: 2,
            user_id: UserId::parse("bo").unwrap(),
            result: SeatResult {
                exited_at: 7,
                final_tick: None,
                break_first: false,
            },
        });
        assert_eq!(
            serde_json::to_string(&seat).unwrap(),
            r#"{"type":"seat","seat":2,"userId":"bo","result":{"exitedAt":7,"breakFirst":false}}"#
        );
        assert_eq!(seat.kind(), "seat");
        let seated = ServerMessage::Seated(SeatJoin {
            seat: 3,
            user_id: UserId::parse("bo").unwrap(),
            joined_at: 9,
        });
        assert_eq!(
            serde_json::to_string(&seated).unwrap(),
            r#"{"type":"seated","seat":3,"userId":"bo","joinedAt":9}"#
        );
        assert_eq!(seated.kind(), "seated");
        // A game's notice has no seat; a seat's carries it.
        let plain: ExitedNotice = serde_json::from_str(r#"{"exitedAt":5}"#).unwrap();
        assert_eq!(plain.seat, None);
    }

    #[test]
    fn a_client_cannot_send_a_seat_result() {
        assert_eq!(
            refused(
                r#"{"type":"seat","seat":0,"userId":"bo","result":{"exitedAt":1,"breakFirst":false}}"#
            ),
            (ErrorCode::ValidationFailed, Some("type".into()))
        );
    }
}
