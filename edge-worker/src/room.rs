//! The decisions of a live game room (the Durable Object behind `GET /edge/game/{id}/live`),
//! as plain Rust: what each connection carries across hibernation ([`Attachment`]), who is
//! there ([`presence`]), who may play and end the game ([`authorize_hello`],
//! [`authorize_exit`]), when latency deserves a warning ([`Thresholds`]), and the room's
//! counters ([`RoomStats`]). The runtime glue is `wasm::live_room` (the Durable Object) and
//! `wasm::room_routes` (its Worker side).
//!
//! The owner proves itself with the game's owner token (`owner-token` crate), verified here
//! with the very keyring the origins use (same variables, same `verify_for_game`): the edge
//! holds `OWNER_TOKEN_SECRET` for that. Asking the origin instead would add a route and an
//! origin round trip to every player's join, and a join would fail with the origin; a
//! stateless HMAC check is local and exact. The origin stays the authority for the exit
//! itself: a socket's exit carries the token to it as `Authorization: Bearer`.

use api::room::{Hello, LatencyWarning, LiveRole, Member, Presence};
use api::{ApiError, ErrorCode, GameView, UserId};
use kernel::SettingsError;
use kernel::gcra::Rate;
use owner_token::Keyring;
use owner_token::env::KeySource;
use serde::{Deserialize, Serialize};

use crate::roster::RoomCaps;

/// What a socket carries through hibernation (`serializeAttachment`): the room's memory may be
/// dropped between messages, the sockets and their attachments are not.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Attachment {
    /// The connection's id.
    pub conn_id: String,
    /// Set by an accepted `hello`; `None` until then (not counted in presence).
    pub role: Option<LiveRole>,
    /// The proved player's user id.
    pub user_id: Option<UserId>,
    /// A shared game's proved player: their seat (`0` is the creator's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seat: Option<u32>,
    /// The proved player's owner token, sent with the socket's `exit` (the origin verifies it
    /// again). Server-side only: never part of what others see ([`Attachment::member`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner_token: Option<String>,
    /// The client's address (`cf-connecting-ip` of the upgrade), sent as `x-forwarded-for`
    /// with the socket's `exit` so the origin's per-client limits count the client, not the
    /// edge. Server-side only, like the token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_ip: Option<String>,
    /// The last reported round trip, ms.
    pub rtt_ms: Option<u32>,
    /// The last reported jitter, ms.
    pub jitter_ms: Option<u32>,
    /// Whether an rtt warning was sent and not yet cleared (one warning per excursion).
    pub warned_rtt: bool,
    /// Same for jitter.
    pub warned_jitter: bool,
    /// The room's game (without metadata): every socket carries it, so a room woken from
    /// hibernation knows its game without a storage read.
    pub game: Option<GameView>,
    /// The socket's message budget ([`spend_message`]): its theoretical arrival time, Unix ms.
    #[serde(default, skip_serializing_if = "is_default")]
    pub message_tat: u64,
    /// Messages refused in a row for being over budget.
    #[serde(default, skip_serializing_if = "is_default")]
    pub refused_in_a_row: u32,
    /// When the socket was accepted (Unix ms): its `hello` is due
    /// `LIVE_HELLO_TIMEOUT_SECONDS` later (`crate::roster`). 0 in attachments written before
    /// the field existed.
    #[serde(default, skip_serializing_if = "is_default")]
    pub opened_at: u64,
    /// Whether this overload was already answered with an error frame. Cleared only once the
    /// budget is full again, so a flood that a slow room serves across a refill still gets one
    /// frame, not one per refill.
    #[serde(default, skip_serializing_if = "is_default")]
    pub told_over_budget: bool,
}

fn is_default<T: Default + PartialEq>(value: &T) -> bool {
    *value == T::default()
}

/// Messages a socket may send at once...
pub const MESSAGE_BURST: i64 = 30;
/// ...and then one per this many milliseconds (5 per second).
pub const MESSAGE_INTERVAL_MS: i64 = 200;
/// A socket refused this many times in a row is closed (1008, policy violation).
pub const MAX_REFUSED_IN_A_ROW: u32 = 50;
/// The message budget as the workspace's one token bucket: [`MESSAGE_BURST`] refilled at one
/// per [`MESSAGE_INTERVAL_MS`].
const MESSAGE_RATE: Rate = Rate::new(
    MESSAGE_BURST as u32,
    (MESSAGE_BURST * MESSAGE_INTERVAL_MS) as u64,
);

/// What the room does with a socket's next message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Budget {
    /// Within the budget: handle it.
    Allowed,
    /// Over it: drop it; the first refusal of a run is answered with an error frame.
    Refused {
        /// Milliseconds until the next message would be allowed.
        retry_after_ms: i64,
        /// The first refusal since the socket's budget was last full.
        first: bool,
    },
    /// Still sending after [`MAX_REFUSED_IN_A_ROW`] refusals: close the socket.
    Close,
}

/// Spends one message of `att`'s budget at `now` (Unix ms) from the workspace's one token
/// bucket ([`kernel::gcra`]): a burst of [`MESSAGE_BURST`], then one message per
/// [`MESSAGE_INTERVAL_MS`]. Every message counts, valid or not, so a flood of garbage costs
/// the room no more than a flood of pings.
pub fn spend_message(att: &mut Attachment, now: i64) -> Budget {
    let now = u64::try_from(now).unwrap_or(0);
    if MESSAGE_RATE.is_full(att.message_tat, now) {
        att.told_over_budget = false;
    }
    match MESSAGE_RATE.spend(&mut att.message_tat, now) {
        Ok(_) => {
            att.refused_in_a_row = 0;
            Budget::Allowed
        }
        Err(refused) => {
            att.refused_in_a_row = att.refused_in_a_row.saturating_add(1);
            if att.refused_in_a_row >= MAX_REFUSED_IN_A_ROW {
                return Budget::Close;
            }
            let first = !att.told_over_budget;
            att.told_over_budget = true;
            Budget::Refused {
                retry_after_ms: i64::try_from(refused.retry_after_ms).unwrap_or(i64::MAX),
                first,
            }
        }
    }
}

impl Attachment {
    /// How others see this connection; `None` before its `hello`.
    pub fn member(&self) -> Option<Member> {
        let role = self.role?;
        Some(Member {
            conn_id: self.conn_id.clone(),
            role,
            user_id: if role == LiveRole::Player {
                self.user_id.clone()
            } else {
                None
            },
            seat: if role == LiveRole::Player {
                self.seat
            } else {
                None
            },
            rtt_ms: self.rtt_ms,
        })
    }
}

/// Who is in the room, from the attachments of its open sockets: players by seat, then in the
/// runtime's order of the sockets (their order of arrival).
pub fn presence<'a>(sockets: impl IntoIterator<Item = &'a Attachment>) -> Presence {
    let mut p = Presence::default();
    for a in sockets {
        match a.member() {
            Some(m) if m.role == LiveRole::Player => p.players.push(m),
            Some(_) => p.viewers += 1,
            None => {}
        }
    }
    // Stable: one seat's connections keep their order of arrival.
    p.players.sort_by_key(|m| m.seat.unwrap_or(0));
    p
}

/// Whether the connection `to` is sent the join or leave of a connection of role `who`: a
/// player's comings and goings go to everyone; a viewer's only to players (the owner sees who
/// watches). Viewers learn the viewer count in their `welcome`: a room of N viewers would
/// otherwise send N² messages as they arrive, which the per-viewer budget cannot afford.
pub fn hears_about(to: &Attachment, who: LiveRole) -> bool {
    who == LiveRole::Player || to.role == Some(LiveRole::Player)
}

/// The keyring that verifies owner tokens at this edge, from the origins' variables
/// (`OWNER_TOKEN_SECRET`, `OWNER_TOKEN_PREVIOUS_SECRET`; `owner_token::env`). `Ok(None)`: no
/// secret configured, so no player can join (the edge never makes up a key: tokens come from
/// the origins). A set but unusable value is an error naming its variable.
pub fn keyring(lookup: impl Fn(&str) -> Option<String>) -> Result<Option<Keyring>, ApiError> {
    // The random source is only used for an absent secret, which is refused below anyway.
    match owner_token::env::keyring(lookup, || [0u8; 32]) {
        Ok((keyring, KeySource::Configured, _)) => Ok(Some(keyring)),
        Ok((_, KeySource::Ephemeral, _)) => Ok(None),
        Err(e) => Err(ApiError::internal(format!(
            "the edge's owner-token settings are invalid: {e}"
        ))),
    }
}

/// `LIVE_WARN_RTT_MS`: a connection's round trip above this (ms) gets a `warning`.
pub const WARN_RTT_VAR: &str = "LIVE_WARN_RTT_MS";
/// `LIVE_WARN_JITTER_MS`: the same for jitter.
pub const WARN_JITTER_VAR: &str = "LIVE_WARN_JITTER_MS";

/// What a room reads from the configuration, parsed once with the rest of it (see
/// `crate::config::Config`). The keyring keeps its error rather than failing the whole
/// configuration: a bad owner-token secret refuses a `hello` (as it always did), not every
/// HTTP request.
#[derive(Debug, Clone, PartialEq)]
pub struct RoomSettings {
    /// When a connection gets a latency warning.
    pub thresholds: Thresholds,
    /// The keyring that verifies a player's owner token ([`keyring`]).
    pub keyring: OwnerKeys,
    /// Socket caps and the `hello` deadline (`crate::roster::RoomCaps`). A bad value refuses
    /// upgrades with the 500 naming it, not every HTTP request.
    pub caps: Result<RoomCaps, SettingsError>,
}

impl RoomSettings {
    /// From a variable lookup.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> RoomSettings {
        RoomSettings {
            thresholds: Thresholds::from_vars(
                lookup(WARN_RTT_VAR).as_deref(),
                lookup(WARN_JITTER_VAR).as_deref(),
            ),
            keyring: OwnerKeys(keyring(&lookup)),
            caps: RoomCaps::from_lookup(&lookup),
        }
    }
}

/// [`keyring`]'s answer, kept as it came.
#[derive(Clone)]
pub struct OwnerKeys(pub Result<Option<Keyring>, ApiError>);

impl PartialEq for OwnerKeys {
    /// Keyrings compare by their key ids and token lifetime (ids derive from the secrets).
    fn eq(&self, other: &OwnerKeys) -> bool {
        let id = |k: &Keyring| (k.kids().map(str::to_owned).collect::<Vec<_>>(), k.ttl_ms());
        match (&self.0, &other.0) {
            (Ok(a), Ok(b)) => a.as_ref().map(id) == b.as_ref().map(id),
            (Err(a), Err(b)) => a == b,
            _ => false,
        }
    }
}

impl std::fmt::Debug for OwnerKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Ok(Some(_)) => f.write_str("OwnerKeys(configured)"),
            Ok(None) => f.write_str("OwnerKeys(none)"),
            Err(e) => write!(f, "OwnerKeys(invalid: {})", e.message),
        }
    }
}

/// Names the message field an error is about (the contract's `field`).
trait About {
    fn about(self, field: &str) -> Self;
}

impl About for ApiError {
    fn about(mut self, field: &str) -> Self {
        self.field = Some(field.to_owned());
        self
    }
}

/// What an accepted `hello` grants a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Granted {
    /// Player or viewer.
    pub role: LiveRole,
    /// The player's user id (from the token).
    pub user_id: Option<UserId>,
    /// The player's verified owner token.
    pub owner_token: Option<String>,
    /// A shared game's player: their seat, once placed ([`seat_hello`]; the creator's 0 at
    /// once).
    pub seat: Option<u32>,
    /// The token's issued-at (Unix ms): a seat's token is issued at the seat's `joinedAt`.
    pub issued_at: Option<i64>,
}

/// What a `hello` is granted in `game`'s room at `now_ms`, before its seat is placed
/// ([`seat_hello`]).
///
/// A viewer needs nothing. A player must carry an owner token of `game`, verified with
/// `keyring` exactly as the origin verifies an exit's: none or malformed is `unauthorized`,
/// another game's, forged, expired or rotated-out is `forbidden`, and so is every player's
/// `hello` at an edge without the secret. In a one-player game only the creator's token is a
/// player's; in a shared game any seat's is (the origins sign tokens only for the creator and
/// for seats they committed), and [`seat_hello`] then finds the seat it was issued for. A
/// refused `hello` leaves the connection open and not joined (in no presence): it gets an
/// `error` frame and may say `hello` again, as viewer or with a valid token. It is never
/// silently turned into a viewer, so a page that believes it plays learns at once that it does
/// not.
pub fn authorize_hello(
    game: &GameView,
    hello: &Hello,
    keyring: Option<&Keyring>,
    now_ms: i64,
) -> Result<Granted, ApiError> {
    if hello.role == LiveRole::Viewer {
        return Ok(Granted {
            role: LiveRole::Viewer,
            user_id: None,
            owner_token: None,
            seat: None,
            issued_at: None,
        });
    }
    let forbidden = |message: &str| ApiError::new(ErrorCode::Forbidden, message);
    let Some(token) = hello
        .owner_token
        .as_deref()
        .filter(|t| !t.trim().is_empty())
    else {
        return Err(ApiError::new(
            ErrorCode::Unauthorized,
            "a hello as player needs the game's owner token in `ownerToken` (the start \
             answered it); join as viewer otherwise",
        )
        .about("ownerToken"));
    };
    let Some(keyring) = keyring else {
        return Err(forbidden(
            "this edge cannot verify owner tokens (no OWNER_TOKEN_SECRET); join as viewer",
        ));
    };
    let claims = keyring
        .verify_for_game(token.trim(), &game.game_id.to_string(), now_ms)
        .map_err(|e| {
            if e.is_unauthenticated() {
                ApiError::new(
                    ErrorCode::Unauthorized,
                    "`ownerToken` is not an owner token this service issued",
                )
                .about("ownerToken")
            } else {
                forbidden(e.message())
            }
        })?;
    // Only the origins sign tokens, for the game's creator and its seats; checked anyway, so a
    // room never shows a player who is not the game's (a one-player game has no other).
    let user = UserId::parse(&claims.user_id)
        .ok()
        .filter(|u| *u == game.user_id || game.shared.is_some())
        .ok_or_else(|| forbidden("the owner token does not allow this action on this game"))?;
    if hello.user_id.as_ref().is_some_and(|u| *u != user) {
        return Err(forbidden("`userId` is not the owner token's player").about("userId"));
    }
    let creator = user == game.user_id;
    Ok(Granted {
        role: LiveRole::Player,
        seat: (creator && game.shared.is_some()).then_some(0),
        user_id: Some(user),
        owner_token: Some(token.trim().to_owned()),
        issued_at: Some(claims.issued_at_ms),
    })
}

/// Places a granted player of a shared game in their seat from the seats the room knows were
/// taken (`joins`, the origin's join notices): the token's player must hold a seat whose
/// `joinedAt` is the token's issued-at (the instant the origin issued it for that seat), so a
/// token is one seat's and no other's. `Ok(false)`: the room knows no seat of that player (a
/// notice it missed; the caller may read the seats from the origin and ask again, then refuse
/// with [`no_seat`]). A `seat` in the `hello` must be the token's. Viewers, one-player games'
/// players and the creator (seat 0) are placed already.
pub fn seat_hello(
    game: &GameView,
    granted: &mut Granted,
    hello: &Hello,
    joins: &[api::room::SeatJoin],
) -> Result<bool, ApiError> {
    if granted.role == LiveRole::Viewer {
        return Ok(true);
    }
    if game.shared.is_some() && granted.seat.is_none() {
        let Some(join) = joins
            .iter()
            .find(|j| Some(&j.user_id) == granted.user_id.as_ref())
        else {
            return Ok(false);
        };
        if granted.issued_at != Some(join.joined_at) {
            return Err(ApiError::new(
                ErrorCode::Forbidden,
                "the owner token is not the one issued for this player's seat",
            ));
        }
        granted.seat = Some(join.seat);
    }
    if hello.seat.is_some() && hello.seat != granted.seat {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            match granted.seat {
                Some(_) => "`seat` is not the owner token's seat",
                None => "a one-player game has no seats: leave `seat` out",
            },
        )
        .about("seat"));
    }
    Ok(true)
}

/// The refusal of a valid token of a shared game whose player holds no seat in it.
pub fn no_seat() -> ApiError {
    ApiError::new(
        ErrorCode::Forbidden,
        "the owner token's player holds no seat in this game",
    )
}

/// Whether a socket may end the game, and the owner token to send the origin: only a
/// connection whose `hello` proved ownership; the `exit`'s own `ownerToken` (if any) wins over
/// the one its `hello` proved.
pub fn authorize_exit(
    attachment: &Attachment,
    exit_token: Option<&str>,
) -> Result<String, ApiError> {
    if attachment.role != Some(LiveRole::Player) {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            "only a player may exit: say hello as player with your owner token first",
        ));
    }
    exit_token
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .or(attachment.owner_token.as_deref())
        .map(str::to_owned)
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::Unauthorized,
                "this connection holds no owner token; say hello as player again",
            )
        })
}

/// Latency thresholds past which a connection gets a `warning` (`LIVE_WARN_RTT_MS`,
/// `LIVE_WARN_JITTER_MS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Thresholds {
    /// Round trip, ms.
    pub rtt_ms: u32,
    /// Jitter, ms.
    pub jitter_ms: u32,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self {
            rtt_ms: 300,
            jitter_ms: 100,
        }
    }
}

impl Thresholds {
    /// From the two variables' raw values (an unset or unreadable one keeps its default).
    pub fn from_vars(rtt: Option<&str>, jitter: Option<&str>) -> Self {
        let d = Self::default();
        let num = |v: Option<&str>, default| {
            v.and_then(|v| v.trim().parse::<u32>().ok())
                .unwrap_or(default)
        };
        Self {
            rtt_ms: num(rtt, d.rtt_ms),
            jitter_ms: num(jitter, d.jitter_ms),
        }
    }

    /// Records a connection's report and returns the warnings it deserves: one when a value
    /// first passes its threshold, none while it stays above, re-armed once it falls back.
    pub fn check(
        &self,
        a: &mut Attachment,
        rtt: Option<u32>,
        jitter: Option<u32>,
    ) -> Vec<LatencyWarning> {
        let mut out = Vec::new();
        let mut one = |metric: &str, value: Option<u32>, limit: u32, warned: &mut bool| {
            let Some(v) = value else { return };
            if v > limit && !*warned {
                *warned = true;
                out.push(LatencyWarning {
                    metric: metric.to_owned(),
                    value_ms: v,
                    threshold_ms: limit,
                    message: format!("{metric} {v} ms is above {limit} ms"),
                });
            } else if v <= limit {
                *warned = false;
            }
        };
        one("rtt", rtt, self.rtt_ms, &mut a.warned_rtt);
        one("jitter", jitter, self.jitter_ms, &mut a.warned_jitter);
        if rtt.is_some() {
            a.rtt_ms = rtt;
        }
        if jitter.is_some() {
            a.jitter_ms = jitter;
        }
        out
    }
}

/// How many messages of one `type`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KindCount {
    /// The message `type` (`invalid` for refused ones).
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// How many.
    pub count: u64,
}

/// Adds one to `kind`'s count (a handful of kinds: a list beats a map in code size).
fn bump(counts: &mut Vec<KindCount>, kind: &'static str) {
    match counts.iter_mut().find(|c| c.kind == kind) {
        Some(c) => c.count += 1,
        None => counts.push(KindCount { kind, count: 1 }),
    }
}

/// A room's counters, served at `GET /edge/game/{id}/live/stats`. Held in the room's memory, so
/// they count since the room last woke (hibernation drops them; the sockets stay).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RoomStats {
    /// Unix ms when these counters started.
    pub since: u64,
    /// How many times this room object was constructed (woke from hibernation or eviction).
    pub wakeups: u64,
    /// Sockets accepted.
    pub sockets_accepted: u64,
    /// Sockets closed.
    pub sockets_closed: u64,
    /// Upgrades refused by the caps (`LIVE_MAX_SOCKETS_PER_ROOM`, `..._PER_ADDRESS`).
    pub upgrades_refused: u64,
    /// Sockets closed for saying no `hello` in time (`LIVE_HELLO_TIMEOUT_SECONDS`).
    pub hello_timeouts: u64,
    /// Messages received, by `type` (`invalid` for refused ones).
    pub messages_in: Vec<KindCount>,
    /// Messages sent, by `type`.
    pub messages_out: Vec<KindCount>,
    /// Bytes sent.
    pub bytes_out: u64,
}

impl RoomStats {
    /// Counts a received message.
    pub fn received(&mut self, kind: &'static str) {
        bump(&mut self.messages_in, kind);
    }

    /// Counts a sent message of `bytes` bytes.
    pub fn sent(&mut self, kind: &'static str, bytes: usize) {
        bump(&mut self.messages_out, kind);
        self.bytes_out += bytes as u64;
    }
}

/// What `GET /edge/game/{id}/live/stats` answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RoomStatsView {
    /// The game.
    pub game_id: String,
    /// Whether the room knows the game (loaded once from the cache or an origin).
    pub loaded: bool,
    /// `active` or `exited`, once loaded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<api::GameStatus>,
    /// Open sockets (joined or not).
    pub sockets: u32,
    /// Who is there.
    pub presence: Presence,
    /// Counters.
    pub stats: RoomStats,
    /// Which WebSocket API the room uses (`hibernation`: `state.acceptWebSocket`).
    pub websocket_api: &'static str,
}

/// Whether a presented secret is the configured one (constant time); an empty configured
/// secret matches nothing.
pub fn secret_matches(presented: &str, configured: &str) -> bool {
    !configured.is_empty() && kernel::constant_time_eq(presented.as_bytes(), configured.as_bytes())
}

/// Durable Object storage key of the room's [`SeatLog`].
pub const SEATS_STORAGE_KEY: &str = "seats";

/// The joins and seat results a shared game's room has pushed, each in the order it pushed
/// them, kept in storage so that a socket that says `hello` later gets them right after its
/// `welcome` (joins first), and its table is complete without asking `/results`; the joins also
/// place a seat's player ([`seat_hello`]). One entry per seat each (a repeated notice of a seat
/// changes nothing), so at most `maxPlayers` of each (100).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeatLog {
    /// The results, oldest first.
    pub seats: Vec<api::room::SeatExit>,
    /// The joins (seats `1..maxPlayers`; the creator's 0 is the game's), oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub joins: Vec<api::room::SeatJoin>,
}

impl SeatLog {
    /// Records a join of a game of `max_players` seats; `false` (nothing recorded) for the
    /// creator's seat 0, a seat out of range, a seat already recorded, or a full log.
    pub fn record_join(&mut self, join: &api::room::SeatJoin, max_players: u32) -> bool {
        let max = max_players.min(api::limits::MAX_PLAYERS);
        if join.seat == 0
            || join.seat >= max
            || self.joins.len() + 1 >= max as usize
            || self.joins.iter().any(|j| j.seat == join.seat)
        {
            return false;
        }
        self.joins.push(join.clone());
        true
    }

    /// Records `seat`'s result; `false` (nothing recorded) if that seat's result is already
    /// there, or the log is full.
    pub fn record(&mut self, seat: &api::room::SeatExit) -> bool {
        if self.seats.iter().any(|s| s.seat == seat.seat)
            || self.seats.len() >= api::limits::MAX_PLAYERS as usize
        {
            return false;
        }
        self.seats.push(seat.clone());
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn game(user: &str) -> GameView {
        serde_json::from_value(serde_json::json!({
            "gameId": GAME, "userId": user, "region": "eu",
            "seed": 1, "startAt": 0, "tickMs": 100, "breakEvery": 10, "algorithm": "mix32-v1",
            "status": "active", "createdAt": 0
        }))
        .unwrap()
    }

    fn att(id: &str, role: Option<LiveRole>, user: Option<&str>) -> Attachment {
        Attachment {
            conn_id: id.into(),
            role,
            user_id: user.map(|u| UserId::parse(u).unwrap()),
            ..Attachment::default()
        }
    }

    #[test]
    fn presence_counts_joined_sockets_only() {
        let socks = [
            att("b", Some(LiveRole::Player), Some("alice")),
            att("a", Some(LiveRole::Viewer), Some("bob")),
            att("c", None, None),
            att("d", Some(LiveRole::Viewer), None),
        ];
        let p = presence(&socks);
        assert_eq!(p.viewers, 2);
        assert_eq!(p.players.len(), 1);
        assert_eq!(p.players[0].user_id.as_ref().unwrap().as_str(), "alice");
        // A viewer's user id is never shown.
        assert_eq!(socks[1].member().unwrap().user_id, None);
    }

    #[test]
    fn viewers_hear_only_about_players() {
        let viewer = att("v", Some(LiveRole::Viewer), None);
        let player = att("p", Some(LiveRole::Player), Some("alice"));
        assert!(hears_about(&viewer, LiveRole::Player));
        assert!(!hears_about(&viewer, LiveRole::Viewer));
        assert!(hears_about(&player, LiveRole::Viewer));
    }

    const SECRET: &str = "an edge test secret of 32+ bytes, shared";
    const GAME: &str = "0b6c1f7e-3a52-4a8e-9d4e-0f1a2b3c4d5e";
    const NOW: i64 = 1_000_000;

    fn ring(secret: &str) -> Keyring {
        Keyring::new(secret.as_bytes(), &[], owner_token::DEFAULT_TTL_MS).unwrap()
    }

    fn hello(role: LiveRole, user: Option<&str>, token: Option<&str>) -> Hello {
        Hello {
            role,
            user_id: user.map(|u| UserId::parse(u).unwrap()),
            owner_token: token.map(str::to_owned),
            seat: None,
        }
    }

    fn shared_game(user: &str, max_players: u32) -> GameView {
        let mut g = game(user);
        g.created_at = 500;
        g.shared = Some(api::SharedGame {
            max_players,
            join_deadline: NOW + 60_000,
        });
        g
    }

    fn join(seat: u32, user: &str, at: i64) -> api::room::SeatJoin {
        api::room::SeatJoin {
            seat,
            user_id: UserId::parse(user).unwrap(),
            joined_at: at,
        }
    }

    /// `authorize_hello`, then `seat_hello` with `joins`: the seat, or `None` for a player the
    /// joins do not place.
    fn seated(
        g: &GameView,
        h: &Hello,
        k: &Keyring,
        joins: &[api::room::SeatJoin],
    ) -> Result<Option<u32>, ApiError> {
        let mut granted = authorize_hello(g, h, Some(k), NOW)?;
        Ok(seat_hello(g, &mut granted, h, joins)?
            .then_some(granted.seat)
            .flatten())
    }

    #[test]
    fn a_seats_token_is_that_seats_player_and_no_other() {
        let g = shared_game("alice", 4);
        let k = ring(SECRET);
        let joins = [join(2, "bob", 700), join(1, "carol", 800)];
        let bob = k.issue(GAME, "bob", 700);
        let creator = k.issue(GAME, "alice", 500);
        assert_eq!(
            seated(&g, &hello(LiveRole::Player, None, Some(&bob)), &k, &joins).unwrap(),
            Some(2)
        );
        let granted = authorize_hello(
            &g,
            &hello(LiveRole::Player, Some("bob"), Some(&bob)),
            Some(&k),
            NOW,
        )
        .unwrap();
        assert_eq!(granted.user_id.unwrap().as_str(), "bob");
        // The creator is seat 0 with no join needed.
        assert_eq!(
            seated(&g, &hello(LiveRole::Player, None, Some(&creator)), &k, &[]).unwrap(),
            Some(0)
        );
        // Naming the token's seat is fine; another seat, or another user, is forbidden.
        let mut h = hello(LiveRole::Player, None, Some(&bob));
        h.seat = Some(2);
        assert_eq!(seated(&g, &h, &k, &joins).unwrap(), Some(2));
        h.seat = Some(1);
        assert_eq!(
            code(seated(&g, &h, &k, &joins).map(|_| granted_stub())),
            (ErrorCode::Forbidden, Some("seat".into()))
        );
        assert_eq!(
            code(
                seated(
                    &g,
                    &hello(LiveRole::Player, Some("carol"), Some(&bob)),
                    &k,
                    &joins
                )
                .map(|_| granted_stub())
            ),
            (ErrorCode::Forbidden, Some("userId".into()))
        );
        // The seat's token of another game; forged; expired: forbidden, as the creator's.
        let other = k.issue("3f2b8c1e-9d4a-4f6b-8e2a-1c5d7e9f0a3b", "bob", 700);
        let forged = ring("somebody else's secret of 32+ bytes").issue(GAME, "bob", 700);
        let expired = k.issue(GAME, "bob", NOW - owner_token::DEFAULT_TTL_MS - 1);
        for t in [&other, &forged, &expired] {
            assert_eq!(
                code(
                    seated(&g, &hello(LiveRole::Player, None, Some(t)), &k, &joins)
                        .map(|_| granted_stub())
                )
                .0,
                ErrorCode::Forbidden
            );
        }
        // A token of this game not issued at the seat's join (not the seat's): forbidden.
        let stale = k.issue(GAME, "bob", 699);
        assert_eq!(
            code(
                seated(&g, &hello(LiveRole::Player, None, Some(&stale)), &k, &joins)
                    .map(|_| granted_stub())
            )
            .0,
            ErrorCode::Forbidden
        );
        // A player the joins do not place: not seated (the room asks the origin, then refuses).
        let dave = k.issue(GAME, "dave", 900);
        assert_eq!(
            seated(&g, &hello(LiveRole::Player, None, Some(&dave)), &k, &joins).unwrap(),
            None
        );
        assert_eq!(no_seat().code, ErrorCode::Forbidden);
        // A one-player game takes only its creator's token, and has no seats.
        let solo = game("alice");
        assert_eq!(
            code(authorize_hello(
                &solo,
                &hello(LiveRole::Player, None, Some(&bob)),
                Some(&k),
                NOW
            ))
            .0,
            ErrorCode::Forbidden
        );
        let mut h = hello(LiveRole::Player, None, Some(&creator));
        assert_eq!(seated(&solo, &h, &k, &[]).unwrap(), None);
        h.seat = Some(0);
        assert_eq!(
            code(seated(&solo, &h, &k, &[]).map(|_| granted_stub())),
            (ErrorCode::Forbidden, Some("seat".into()))
        );
    }

    fn granted_stub() -> Granted {
        Granted {
            role: LiveRole::Viewer,
            user_id: None,
            owner_token: None,
            seat: None,
            issued_at: None,
        }
    }

    #[test]
    fn presence_lists_players_by_seat() {
        let mut socks = vec![
            att("a", Some(LiveRole::Player), Some("carol")),
            att("b", Some(LiveRole::Player), Some("alice")),
            att("c", Some(LiveRole::Player), Some("bob")),
        ];
        socks[0].seat = Some(3);
        socks[1].seat = Some(0);
        socks[2].seat = Some(1);
        let p = presence(&socks);
        let seats: Vec<Option<u32>> = p.players.iter().map(|m| m.seat).collect();
        assert_eq!(seats, vec![Some(0), Some(1), Some(3)]);
        // A viewer's seat is never shown.
        let mut v = att("v", Some(LiveRole::Viewer), None);
        v.seat = Some(2);
        assert_eq!(v.member().unwrap().seat, None);
    }

    #[test]
    fn the_join_log_keeps_each_seat_once_within_max_players() {
        let mut log = SeatLog::default();
        assert!(log.record_join(&join(2, "bob", 1), 3));
        assert!(!log.record_join(&join(2, "bob", 1), 3));
        assert!(!log.record_join(&join(0, "alice", 1), 3));
        assert!(!log.record_join(&join(3, "dave", 1), 3));
        assert!(log.record_join(&join(1, "carol", 2), 3));
        assert_eq!(
            log.joins.iter().map(|j| j.seat).collect::<Vec<_>>(),
            vec![2, 1]
        );
        let text = serde_json::to_string(&log).unwrap();
        assert_eq!(serde_json::from_str::<SeatLog>(&text).unwrap(), log);
        // Logs stored before joins were kept still load.
        let older: SeatLog = serde_json::from_str(r#"{"seats":[]}"#).unwrap();
        assert!(older.joins.is_empty());
        let mut big = SeatLog::default();
        for seat in 1..300 {
            big.record_join(&join(seat, &format!("p{seat}"), 1), 1_000);
        }
        assert_eq!(big.joins.len(), api::limits::MAX_PLAYERS as usize - 1);
    }

    fn code(r: Result<Granted, ApiError>) -> (ErrorCode, Option<String>) {
        let e = r.unwrap_err();
        (e.code, e.field)
    }

    #[test]
    fn a_player_needs_the_games_owner_token() {
        let g = game("alice");
        let k = ring(SECRET);
        let token = k.issue(GAME, "alice", NOW - 10);
        let granted = authorize_hello(
            &g,
            &hello(LiveRole::Player, None, Some(&token)),
            Some(&k),
            NOW,
        )
        .unwrap();
        assert_eq!(granted.role, LiveRole::Player);
        assert_eq!(granted.user_id.unwrap().as_str(), "alice");
        assert_eq!(granted.owner_token.as_deref(), Some(token.as_str()));
        // With a matching userId too.
        assert!(
            authorize_hello(
                &g,
                &hello(LiveRole::Player, Some("alice"), Some(&token)),
                Some(&k),
                NOW
            )
            .is_ok()
        );
        // The user id alone (the old proof) is no proof.
        assert_eq!(
            code(authorize_hello(
                &g,
                &hello(LiveRole::Player, Some("alice"), None),
                Some(&k),
                NOW
            )),
            (ErrorCode::Unauthorized, Some("ownerToken".into()))
        );
        assert_eq!(
            code(authorize_hello(
                &g,
                &hello(LiveRole::Player, None, Some("not-a-token")),
                Some(&k),
                NOW
            )),
            (ErrorCode::Unauthorized, Some("ownerToken".into()))
        );
        // Another game's token, a forged one (other secret), an expired one: forbidden.
        let other_game = k.issue("3f2b8c1e-9d4a-4f6b-8e2a-1c5d7e9f0a3b", "alice", NOW);
        let forged = ring("somebody else's secret of 32+ bytes").issue(GAME, "alice", NOW);
        let expired = k.issue(GAME, "alice", NOW - owner_token::DEFAULT_TTL_MS - 1);
        for t in [&other_game, &forged, &expired] {
            assert_eq!(
                code(authorize_hello(
                    &g,
                    &hello(LiveRole::Player, None, Some(t)),
                    Some(&k),
                    NOW
                ))
                .0,
                ErrorCode::Forbidden
            );
        }
        // A token of this game naming another player, or a userId that is not the token's.
        let mallory = k.issue(GAME, "mallory", NOW);
        assert_eq!(
            code(authorize_hello(
                &g,
                &hello(LiveRole::Player, None, Some(&mallory)),
                Some(&k),
                NOW
            ))
            .0,
            ErrorCode::Forbidden
        );
        assert_eq!(
            code(authorize_hello(
                &g,
                &hello(LiveRole::Player, Some("bob"), Some(&token)),
                Some(&k),
                NOW
            )),
            (ErrorCode::Forbidden, Some("userId".into()))
        );
        // An edge without the secret lets nobody play.
        assert_eq!(
            code(authorize_hello(
                &g,
                &hello(LiveRole::Player, None, Some(&token)),
                None,
                NOW
            ))
            .0,
            ErrorCode::Forbidden
        );
        // Viewers need nothing, and a viewer's token is not kept.
        let v =
            authorize_hello(&g, &hello(LiveRole::Viewer, None, Some(&token)), None, NOW).unwrap();
        assert_eq!(
            (v.role, v.user_id, v.owner_token),
            (LiveRole::Viewer, None, None)
        );
    }

    #[test]
    fn keyring_from_the_origins_variables() {
        let vars = |secret: Option<&str>| {
            let secret = secret.map(str::to_owned);
            move |name: &str| {
                (name == "OWNER_TOKEN_SECRET")
                    .then(|| secret.clone())
                    .flatten()
            }
        };
        assert!(keyring(vars(None)).unwrap().is_none());
        let k = keyring(vars(Some(SECRET))).unwrap().unwrap();
        // The same secret verifies what the origins issue.
        let token = ring(SECRET).issue(GAME, "alice", NOW);
        assert!(k.verify_for_game(&token, GAME, NOW).is_ok());
        let e = keyring(vars(Some("short"))).unwrap_err();
        assert!(e.message.contains("OWNER_TOKEN_SECRET"), "{}", e.message);
    }

    #[test]
    fn a_socket_gets_a_burst_then_a_steady_rate_then_is_closed() {
        let mut a = Attachment::default();
        let t = 1_700_000_000_000;
        for i in 0..MESSAGE_BURST {
            assert_eq!(spend_message(&mut a, t), Budget::Allowed, "message {i}");
        }
        assert_eq!(
            spend_message(&mut a, t),
            Budget::Refused {
                retry_after_ms: MESSAGE_INTERVAL_MS,
                first: true
            }
        );
        assert!(matches!(
            spend_message(&mut a, t),
            Budget::Refused { first: false, .. }
        ));
        // One interval later one more is allowed, and the refusal run starts over.
        assert_eq!(
            spend_message(&mut a, t + MESSAGE_INTERVAL_MS),
            Budget::Allowed
        );
        assert_eq!(a.refused_in_a_row, 0);
        // ... but the overload was already answered: no second error frame until the budget
        // has been full again.
        assert!(matches!(
            spend_message(&mut a, t + MESSAGE_INTERVAL_MS),
            Budget::Refused { first: false, .. }
        ));
        let calm = t + MESSAGE_INTERVAL_MS * (MESSAGE_BURST + 1);
        assert_eq!(spend_message(&mut a, calm), Budget::Allowed);
        a.message_tat = u64::try_from(calm).unwrap() + 10_000;
        assert!(matches!(
            spend_message(&mut a, calm),
            Budget::Refused { first: true, .. }
        ));
        // A steady 5 per second is never refused.
        let mut steady = Attachment::default();
        for i in 0..1_000 {
            assert_eq!(
                spend_message(&mut steady, t + i * MESSAGE_INTERVAL_MS),
                Budget::Allowed
            );
        }
        // A flood is closed after MAX_REFUSED_IN_A_ROW refusals.
        let mut flood = Attachment::default();
        let outcomes: Vec<Budget> = (0..200).map(|_| spend_message(&mut flood, t)).collect();
        assert_eq!(
            outcomes.iter().filter(|b| **b == Budget::Allowed).count() as i64,
            MESSAGE_BURST
        );
        let closed_at = outcomes.iter().position(|b| *b == Budget::Close).unwrap();
        assert_eq!(
            closed_at as i64,
            MESSAGE_BURST + i64::from(MAX_REFUSED_IN_A_ROW) - 1
        );
        // The budget rides in the attachment, so hibernation does not reset it.
        let woken: Attachment =
            serde_json::from_str(&serde_json::to_string(&flood).unwrap()).unwrap();
        assert_eq!(woken.message_tat, flood.message_tat);
        assert_eq!(woken.refused_in_a_row, flood.refused_in_a_row);
    }

    #[test]
    fn the_client_address_survives_hibernation_and_stays_server_side() {
        let mut player = att("x", Some(LiveRole::Player), Some("alice"));
        player.client_ip = Some("203.0.113.7".into());
        let stored = serde_json::to_string(&player).unwrap();
        let woken: Attachment = serde_json::from_str(&stored).unwrap();
        assert_eq!(woken.client_ip.as_deref(), Some("203.0.113.7"));
        let seen = serde_json::to_string(&woken.member().unwrap()).unwrap();
        assert!(!seen.contains("203.0.113.7"), "{seen}");
        // Attachments written before the field existed still load.
        let older: Attachment =
            serde_json::from_str(&stored.replace(r#""client_ip":"203.0.113.7","#, "")).unwrap();
        assert_eq!(older.client_ip, None);
    }

    #[test]
    fn only_a_proved_player_exits_with_its_token() {
        let mut player = att("x", Some(LiveRole::Player), Some("alice"));
        player.owner_token = Some("st1.proved".into());
        assert_eq!(authorize_exit(&player, None).unwrap(), "st1.proved");
        assert_eq!(
            authorize_exit(&player, Some(" st1.new ")).unwrap(),
            "st1.new"
        );
        assert_eq!(
            authorize_exit(&att("x", Some(LiveRole::Viewer), None), Some("st1.t"))
                .unwrap_err()
                .code,
            ErrorCode::Forbidden
        );
        assert!(authorize_exit(&att("x", None, None), None).is_err());
        // A player whose attachment lost its token (older room) is asked to prove again.
        assert_eq!(
            authorize_exit(&att("x", Some(LiveRole::Player), Some("alice")), None)
                .unwrap_err()
                .code,
            ErrorCode::Unauthorized
        );
        // The token never shows in what others see.
        assert!(
            !serde_json::to_string(&player.member().unwrap())
                .unwrap()
                .contains("st1")
        );
    }

    #[test]
    fn warns_once_per_excursion() {
        let t = Thresholds::from_vars(Some("100"), Some("bad"));
        assert_eq!(t.jitter_ms, 100);
        let mut a = Attachment::default();
        assert!(t.check(&mut a, Some(50), Some(5)).is_empty());
        let w = t.check(&mut a, Some(150), None);
        assert_eq!(w.len(), 1);
        assert_eq!(w[0].metric, "rtt");
        assert!(t.check(&mut a, Some(170), None).is_empty());
        assert!(t.check(&mut a, Some(20), None).is_empty());
        assert_eq!(t.check(&mut a, Some(120), Some(300)).len(), 2);
        assert_eq!(a.rtt_ms, Some(120));
    }

    #[test]
    fn counts_by_kind() {
        let mut s = RoomStats::default();
        s.received("ping");
        s.received("ping");
        s.sent("pong", 10);
        assert_eq!(
            s.messages_in,
            vec![KindCount {
                kind: "ping",
                count: 2
            }]
        );
        assert_eq!(s.bytes_out, 10);
    }

    #[test]
    fn secrets_compare_exactly() {
        assert!(secret_matches("s3cret", "s3cret"));
        assert!(!secret_matches("s3cre", "s3cret"));
        assert!(!secret_matches("s3creT", "s3cret"));
        assert!(!secret_matches("", ""));
    }

    #[test]
    fn the_seat_log_keeps_each_seat_once_in_push_order_up_to_the_player_cap() {
        let result = |at: i64| api::SeatResult {
            exited_at: at,
            final_tick: None,
            break_first: false,
        };
        let exit = |seat: u32, at: i64| api::room::SeatExit {
            seat,
            user_id: UserId::parse(&format!("p{seat}")).unwrap(),
            result: result(at),
        };
        let mut log = SeatLog::default();
        assert!(log.record(&exit(2, 10)));
        assert!(log.record(&exit(0, 20)));
        // A repeated notice of seat 2 (even with another result) is not a second entry.
        assert!(!log.record(&exit(2, 30)));
        let order: Vec<(u32, i64)> = log
            .seats
            .iter()
            .map(|s| (s.seat, s.result.exited_at))
            .collect();
        assert_eq!(order, vec![(2, 10), (0, 20)]);
        let text = serde_json::to_string(&log).unwrap();
        assert_eq!(serde_json::from_str::<SeatLog>(&text).unwrap(), log);
        for seat in 3..200 {
            log.record(&exit(seat, 40));
        }
        assert_eq!(log.seats.len(), api::limits::MAX_PLAYERS as usize);
    }
}
