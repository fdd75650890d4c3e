//! The decisions of a live game room (the Durable Object behind `GET /edge/game/{id}/live`),
//! as plain Rust: what each connection carries across hibernation ([`Attachment`]), who is
//! there ([`presence`]), who may play ([`authorize_hello`]), when latency deserves a warning
//! ([`Thresholds`]), and the room's counters ([`RoomStats`]). The runtime glue is
//! `wasm::live`.

use api::live::{Hello, LatencyWarning, LiveRole, Member, Presence};
use api::{ApiError, ErrorCode, GameView};
use serde::{Deserialize, Serialize};

/// What a socket carries through hibernation (`serializeAttachment`): the room's memory may be
/// dropped between messages, the sockets and their attachments are not.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Attachment {
    /// The connection's id.
    pub conn_id: String,
    /// Set by an accepted `hello`; `None` until then (not counted in presence).
    pub role: Option<LiveRole>,
    /// The proved player's user id.
    pub user_id: Option<api::UserId>,
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
            rtt_ms: self.rtt_ms,
        })
    }
}

/// Who is in the room, from the attachments of its open sockets (players in the runtime's
/// order of the sockets, which is their order of arrival).
pub fn presence<'a>(sockets: impl IntoIterator<Item = &'a Attachment>) -> Presence {
    let mut p = Presence::default();
    for a in sockets {
        match a.member() {
            Some(m) if m.role == LiveRole::Player => p.players.push(m),
            Some(_) => p.viewers += 1,
            None => {}
        }
    }
    p
}

/// Whether the connection `to` is sent the join or leave of a connection of role `who`: a
/// player's comings and goings go to everyone; a viewer's only to players (the owner sees who
/// watches). Viewers learn the viewer count in their `welcome`: a room of N viewers would
/// otherwise send N² messages as they arrive, which the per-viewer budget cannot afford.
pub fn hears_about(to: &Attachment, who: LiveRole) -> bool {
    who == LiveRole::Player || to.role == Some(LiveRole::Player)
}

/// The role a `hello` is granted in `game`'s room.
///
/// The owner's proof is the seam for owner tokens: until games carry one, a player proves
/// itself by a `userId` equal to the game's. When tokens exist, this is the one function to
/// change (check `hello.owner_token` against the game's token).
pub fn authorize_hello(game: &GameView, hello: &Hello) -> Result<LiveRole, ApiError> {
    match hello.role {
        LiveRole::Viewer => Ok(LiveRole::Viewer),
        LiveRole::Player => {
            if hello.user_id.as_ref() == Some(&game.user_id) {
                Ok(LiveRole::Player)
            } else {
                Err(ApiError::new(
                    ErrorCode::Forbidden,
                    "only the game's owner may join as player",
                ))
            }
        }
    }
}

/// Whether a socket may end the game: only a connection whose `hello` proved ownership.
pub fn authorize_exit(attachment: &Attachment) -> Result<(), ApiError> {
    if attachment.role == Some(LiveRole::Player) {
        Ok(())
    } else {
        Err(ApiError::new(
            ErrorCode::Forbidden,
            "only the game's owner may end it",
        ))
    }
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

/// Constant-time equality of a presented secret and the configured one.
pub fn secret_matches(presented: &str, configured: &str) -> bool {
    let (a, b) = (presented.as_bytes(), configured.as_bytes());
    if a.len() != b.len() || b.is_empty() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use api::UserId;

    fn game(user: &str) -> GameView {
        serde_json::from_value(serde_json::json!({
            "gameId": "0b6c1f7e-3a52-4a8e-9d4e-0f1a2b3c4d5e", "userId": user, "region": "eu",
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

    #[test]
    fn only_the_owner_plays_and_exits() {
        let g = game("alice");
        let hello = |role, user: Option<&str>| Hello {
            role,
            user_id: user.map(|u| UserId::parse(u).unwrap()),
            owner_token: None,
        };
        assert_eq!(
            authorize_hello(&g, &hello(LiveRole::Player, Some("alice"))).unwrap(),
            LiveRole::Player
        );
        for h in [
            hello(LiveRole::Player, Some("mallory")),
            hello(LiveRole::Player, None),
        ] {
            assert_eq!(
                authorize_hello(&g, &h).unwrap_err().body().error.code,
                ErrorCode::Forbidden
            );
        }
        assert_eq!(
            authorize_hello(&g, &hello(LiveRole::Viewer, None)).unwrap(),
            LiveRole::Viewer
        );
        assert!(authorize_exit(&att("x", Some(LiveRole::Player), Some("alice"))).is_ok());
        assert!(authorize_exit(&att("x", Some(LiveRole::Viewer), None)).is_err());
        assert!(authorize_exit(&att("x", None, None)).is_err());
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
}
