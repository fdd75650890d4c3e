//! Who is in a live room, held in the room's memory, and the room's caps: plain Rust, generic
//! over the socket handle so it is unit-tested natively (the room, `wasm::live_room`, holds
//! `worker::WebSocket`s in it).
//!
//! Why: a room used to deserialize every socket's attachment on each `hello`, close and
//! broadcast, so N sockets joining cost O(N²) and an exit push waited behind it. The
//! [`Roster`] is built once when the room object is constructed (from the attachments, which
//! stay the truth across hibernation) and then updated per event: a `hello` or a close costs
//! O(players + log N), a broadcast O(recipients), presence O(players). Viewers hear only about
//! players ([`crate::room::hears_about`]), so a viewer's join reaches the players alone.
//!
//! Caps ([`RoomCaps`]): at most `LIVE_MAX_SOCKETS_PER_ROOM` sockets in a room and
//! `LIVE_MAX_SOCKETS_PER_ADDRESS` from one client address (IPv6 by /64, as the rate limits
//! key it) in one room, refused with HTTP 429 before the upgrade ([`Refusal`]); a socket that
//! has not said `hello` within `LIVE_HELLO_TIMEOUT_SECONDS` is closed with [`HELLO_TIMEOUT_CODE`]
//! (the room sets an alarm for the earliest deadline, so it may still hibernate meanwhile).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use api::room::{LiveRole, Member, Presence};
use api::{ApiError, ErrorCode};
use kernel::SettingsError;

use crate::config::vars::bounded_u64;
use crate::room::Attachment;

/// `LIVE_MAX_SOCKETS_PER_ROOM`: open sockets one room accepts.
pub const MAX_PER_ROOM_VAR: &str = "LIVE_MAX_SOCKETS_PER_ROOM";
/// `LIVE_MAX_SOCKETS_PER_ADDRESS`: open sockets one client address may hold in one room.
pub const MAX_PER_ADDRESS_VAR: &str = "LIVE_MAX_SOCKETS_PER_ADDRESS";
/// `LIVE_HELLO_TIMEOUT_SECONDS`: how long a socket may stay open without a `hello`.
pub const HELLO_TIMEOUT_VAR: &str = "LIVE_HELLO_TIMEOUT_SECONDS";

/// Defaults: a large watch party, a household behind one address, a slow page's first frame.
pub const DEFAULT_MAX_PER_ROOM: u64 = 1_000;
/// See [`DEFAULT_MAX_PER_ROOM`].
pub const DEFAULT_MAX_PER_ADDRESS: u64 = 8;
/// See [`DEFAULT_MAX_PER_ROOM`].
pub const DEFAULT_HELLO_TIMEOUT_SECONDS: u64 = 10;

/// The close code of a socket that said no `hello` in time (4000-4999: the application's own;
/// 4408 after HTTP's 408 Request Timeout).
pub const HELLO_TIMEOUT_CODE: u16 = 4408;
/// Seconds a refused upgrade is told to wait (`Retry-After`).
pub const REFUSAL_RETRY_AFTER_SECS: u64 = 5;

/// A room's caps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoomCaps {
    /// Open sockets per room.
    pub max_sockets: u32,
    /// Open sockets per client address (IPv6 /64) per room.
    pub max_per_address: u32,
    /// Milliseconds a socket may stay open without a `hello`.
    pub hello_timeout_ms: u64,
}

impl Default for RoomCaps {
    fn default() -> Self {
        RoomCaps {
            max_sockets: DEFAULT_MAX_PER_ROOM as u32,
            max_per_address: DEFAULT_MAX_PER_ADDRESS as u32,
            hello_timeout_ms: DEFAULT_HELLO_TIMEOUT_SECONDS * 1000,
        }
    }
}

impl RoomCaps {
    /// From a variable lookup; absent or empty means the default, a bad value names its
    /// variable.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<RoomCaps, SettingsError> {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let max_sockets = bounded_u64(
            MAX_PER_ROOM_VAR,
            get(MAX_PER_ROOM_VAR).as_deref(),
            DEFAULT_MAX_PER_ROOM,
            1..=100_000,
        )?;
        let max_per_address = bounded_u64(
            MAX_PER_ADDRESS_VAR,
            get(MAX_PER_ADDRESS_VAR).as_deref(),
            DEFAULT_MAX_PER_ADDRESS,
            1..=100_000,
        )?;
        let hello_timeout = bounded_u64(
            HELLO_TIMEOUT_VAR,
            get(HELLO_TIMEOUT_VAR).as_deref(),
            DEFAULT_HELLO_TIMEOUT_SECONDS,
            1..=3_600,
        )?;
        Ok(RoomCaps {
            max_sockets: u32::try_from(max_sockets).unwrap_or(u32::MAX),
            max_per_address: u32::try_from(max_per_address).unwrap_or(u32::MAX),
            hello_timeout_ms: hello_timeout * 1000,
        })
    }
}

/// Why an upgrade is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The room holds `max` sockets already.
    RoomFull {
        /// The cap.
        max: u32,
    },
    /// This address holds `max` sockets in this room already.
    AddressFull {
        /// The cap.
        max: u32,
    },
}

impl Refusal {
    /// The client's answer: 429 `rate_limited` (with `Retry-After`,
    /// [`REFUSAL_RETRY_AFTER_SECS`]), before any upgrade.
    pub fn error(self) -> ApiError {
        let message = match self {
            Refusal::RoomFull { max } => format!(
                "this game's live room is full ({max} connections); retry later or poll \
                 GET /edge/game/{{id}}"
            ),
            Refusal::AddressFull { max } => format!(
                "too many connections to this game's live room from this address (at most \
                 {max}); close one first"
            ),
        };
        ApiError::new(ErrorCode::RateLimited, message)
    }
}

/// One open socket as the room remembers it.
#[derive(Debug, Clone)]
pub struct Entry<S> {
    /// The socket handle.
    pub socket: S,
    /// Its client address key (IPv6 by /64; `unknown` when none was given).
    pub address: String,
    /// Arrival order (presence lists one seat's players in it).
    seq: u64,
    /// Player or viewer, once it said `hello`.
    pub role: Option<LiveRole>,
    /// How others see it (set by its `hello`).
    member: Option<Member>,
    /// When it must have said `hello` (Unix ms); `None` once it has.
    deadline: Option<u64>,
}

impl<S> Entry<S> {
    /// How others see it, once it said `hello`.
    pub fn member(&self) -> Option<&Member> {
        self.member.as_ref()
    }
}

/// The room's sockets, by connection id, with running counts.
#[derive(Debug, Clone)]
pub struct Roster<S> {
    entries: HashMap<String, Entry<S>>,
    per_address: HashMap<String, u32>,
    /// Joined players by seat (a one-player game's are all 0), then by arrival.
    players: BTreeMap<(u32, u64), String>,
    /// Joined viewers.
    viewers: u32,
    /// Sockets still owing a `hello`, by deadline.
    waiting: BTreeSet<(u64, String)>,
    next_seq: u64,
}

impl<S> Default for Roster<S> {
    fn default() -> Self {
        Roster {
            entries: HashMap::new(),
            per_address: HashMap::new(),
            players: BTreeMap::new(),
            viewers: 0,
            waiting: BTreeSet::new(),
            next_seq: 0,
        }
    }
}

/// The address key of a client address (`None`: `unknown`), as the rate limits key it.
pub fn address_key(ip: Option<&str>) -> String {
    crate::rate_limit::ip_key(ip.unwrap_or("unknown")).into_owned()
}

impl<S> Roster<S> {
    /// An empty roster.
    pub fn new() -> Self {
        Roster::default()
    }

    /// Rebuilt from the open sockets and their attachments, once per room object (after a
    /// wake-up). A socket that has not said `hello` keeps the deadline its `opened_at` gives
    /// (or `now + timeout` for one opened before attachments carried it).
    pub fn rebuild(
        sockets: impl IntoIterator<Item = (S, Attachment)>,
        caps: &RoomCaps,
        now_ms: u64,
    ) -> Self {
        let mut roster = Roster::new();
        for (socket, att) in sockets {
            roster.insert(socket, &att, caps, now_ms);
        }
        roster
    }

    /// Open sockets.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the room has no socket.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether the socket of `conn_id` is held.
    pub fn contains(&self, conn_id: &str) -> bool {
        self.entries.contains_key(conn_id)
    }

    /// Sockets from `address` (a key from [`address_key`]).
    pub fn count_for(&self, address: &str) -> u32 {
        self.per_address.get(address).copied().unwrap_or(0)
    }

    /// Whether one more socket from `address` may open.
    pub fn admit(&self, address: &str, caps: &RoomCaps) -> Result<(), Refusal> {
        if self.entries.len() >= caps.max_sockets as usize {
            return Err(Refusal::RoomFull {
                max: caps.max_sockets,
            });
        }
        if self.count_for(address) >= caps.max_per_address {
            return Err(Refusal::AddressFull {
                max: caps.max_per_address,
            });
        }
        Ok(())
    }

    /// Adds a socket with its attachment (a repeat of a known connection id replaces it).
    pub fn insert(&mut self, socket: S, att: &Attachment, caps: &RoomCaps, now_ms: u64) {
        self.remove(&att.conn_id);
        let address = address_key(att.client_ip.as_deref());
        *self.per_address.entry(address.clone()).or_insert(0) += 1;
        let seq = self.next_seq;
        self.next_seq += 1;
        let member = att.member();
        let deadline = match member {
            Some(_) => None,
            None => {
                let opened = if att.opened_at > 0 {
                    att.opened_at
                } else {
                    now_ms
                };
                Some(opened.saturating_add(caps.hello_timeout_ms))
            }
        };
        if let Some(d) = deadline {
            self.waiting.insert((d, att.conn_id.clone()));
        }
        self.entries.insert(
            att.conn_id.clone(),
            Entry {
                socket,
                address,
                seq,
                role: None,
                member: None,
                deadline,
            },
        );
        if let Some(m) = member {
            self.count_in(&att.conn_id, m);
        }
    }

    /// Counts a joined member in presence.
    fn count_in(&mut self, conn_id: &str, member: Member) {
        let Some(e) = self.entries.get_mut(conn_id) else {
            return;
        };
        match member.role {
            LiveRole::Player => {
                self.players
                    .insert((member.seat.unwrap_or(0), e.seq), conn_id.to_owned());
            }
            LiveRole::Viewer => self.viewers += 1,
        }
        e.role = Some(member.role);
        e.member = Some(member);
    }

    /// Takes a member out of presence.
    fn count_out(&mut self, conn_id: &str) {
        let Some(e) = self.entries.get_mut(conn_id) else {
            return;
        };
        match e.role.take() {
            Some(LiveRole::Player) => {
                let seat = e.member.as_ref().and_then(|m| m.seat).unwrap_or(0);
                self.players.remove(&(seat, e.seq));
            }
            Some(LiveRole::Viewer) => self.viewers = self.viewers.saturating_sub(1),
            None => {}
        }
        e.member = None;
    }

    /// A socket's accepted `hello`: it joins presence and owes nothing any more.
    pub fn joined(&mut self, conn_id: &str, member: Member) {
        let Some(e) = self.entries.get_mut(conn_id) else {
            return;
        };
        if let Some(d) = e.deadline.take() {
            self.waiting.remove(&(d, conn_id.to_owned()));
        }
        self.count_out(conn_id);
        self.count_in(conn_id, member);
    }

    /// A joined socket's reported round trip changed (presence shows players' round trips).
    pub fn set_rtt(&mut self, conn_id: &str, rtt_ms: Option<u32>) {
        if let Some(m) = self
            .entries
            .get_mut(conn_id)
            .and_then(|e| e.member.as_mut())
        {
            m.rtt_ms = rtt_ms;
        }
    }

    /// Removes a socket; what it was, if it was there (so a second close finds nothing).
    /// The entry keeps its member, so the room can tell the others who left.
    pub fn remove(&mut self, conn_id: &str) -> Option<Entry<S>> {
        let e = self.entries.remove(conn_id)?;
        match e.role {
            Some(LiveRole::Player) => {
                let seat = e.member.as_ref().and_then(|m| m.seat).unwrap_or(0);
                self.players.remove(&(seat, e.seq));
            }
            Some(LiveRole::Viewer) => self.viewers = self.viewers.saturating_sub(1),
            None => {}
        }
        if let Some(d) = e.deadline {
            self.waiting.remove(&(d, conn_id.to_owned()));
        }
        if let Some(n) = self.per_address.get_mut(&e.address) {
            *n -= 1;
            if *n == 0 {
                self.per_address.remove(&e.address);
            }
        }
        Some(e)
    }

    /// The member a socket is (after its `hello`).
    pub fn member(&self, conn_id: &str) -> Option<&Member> {
        self.entries.get(conn_id)?.member.as_ref()
    }

    /// Who is in the room: players by seat, then in order of arrival, and the viewer count.
    /// O(players).
    pub fn presence(&self) -> Presence {
        let mut p = Presence {
            viewers: self.viewers,
            ..Presence::default()
        };
        for conn_id in self.players.values() {
            if let Some(m) = self.member(conn_id) {
                p.players.push(m.clone());
            }
        }
        p
    }

    /// The sockets a message goes to: every one but `except`, or, for the join or leave of a
    /// member of role `about`, those who hear about it ([`crate::room::hears_about`]): a
    /// viewer's comings and goings reach the players only, so they cost O(players).
    pub fn recipients<'a>(
        &'a self,
        except: Option<&'a str>,
        about: Option<LiveRole>,
    ) -> Box<dyn Iterator<Item = &'a S> + 'a> {
        let not_except = move |id: &&String| except != Some(id.as_str());
        if about == Some(LiveRole::Viewer) {
            Box::new(
                self.players
                    .values()
                    .filter(not_except)
                    .filter_map(|id| self.entries.get(id))
                    .map(|e| &e.socket),
            )
        } else {
            Box::new(
                self.entries
                    .iter()
                    .filter(move |(id, _)| not_except(id))
                    .map(|(_, e)| &e.socket),
            )
        }
    }

    /// Every socket.
    pub fn sockets(&self) -> impl Iterator<Item = &S> {
        self.entries.values().map(|e| &e.socket)
    }

    /// The connection ids whose `hello` deadline has passed at `now_ms`, earliest first.
    pub fn overdue(&self, now_ms: u64) -> Vec<String> {
        self.waiting
            .iter()
            .take_while(|(d, _)| *d <= now_ms)
            .map(|(_, id)| id.clone())
            .collect()
    }

    /// The earliest `hello` deadline still pending (when the room's alarm should ring).
    pub fn next_deadline(&self) -> Option<u64> {
        self.waiting.first().map(|(d, _)| *d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CAPS: RoomCaps = RoomCaps {
        max_sockets: 5,
        max_per_address: 2,
        hello_timeout_ms: 10_000,
    };

    fn att(id: &str, ip: &str, role: Option<LiveRole>, opened_at: u64) -> Attachment {
        Attachment {
            conn_id: id.into(),
            role,
            user_id: role
                .filter(|r| *r == LiveRole::Player)
                .map(|_| api::UserId::parse("alice").unwrap()),
            client_ip: Some(ip.into()),
            opened_at,
            ..Attachment::default()
        }
    }

    fn member(id: &str, role: LiveRole) -> Member {
        att(id, "", Some(role), 0).member().unwrap()
    }

    #[test]
    fn caps_per_address_then_per_room() {
        let mut r: Roster<&str> = Roster::new();
        r.insert("a1", &att("a1", "203.0.113.1", None, 0), &CAPS, 0);
        assert!(r.admit(&address_key(Some("203.0.113.1")), &CAPS).is_ok());
        r.insert("a2", &att("a2", "203.0.113.1", None, 0), &CAPS, 0);
        // The third from that address is refused; another address still gets in.
        assert_eq!(
            r.admit(&address_key(Some("203.0.113.1")), &CAPS),
            Err(Refusal::AddressFull { max: 2 })
        );
        assert!(r.admit(&address_key(Some("203.0.113.2")), &CAPS).is_ok());
        // IPv6 addresses of one /64 share a count.
        r.insert("v1", &att("v1", "2001:db8::1", None, 0), &CAPS, 0);
        r.insert("v2", &att("v2", "2001:db8::2", None, 0), &CAPS, 0);
        assert_eq!(
            r.admit(&address_key(Some("2001:db8::ffff")), &CAPS),
            Err(Refusal::AddressFull { max: 2 })
        );
        r.insert("b1", &att("b1", "198.51.100.1", None, 0), &CAPS, 0);
        // Five sockets: the room is full for everybody.
        assert_eq!(
            r.admit(&address_key(Some("198.51.100.9")), &CAPS),
            Err(Refusal::RoomFull { max: 5 })
        );
        // A close frees a slot of its address and of the room.
        assert!(r.remove("a1").is_some());
        assert!(r.remove("a1").is_none(), "a second close finds nothing");
        assert_eq!(r.count_for(&address_key(Some("203.0.113.1"))), 1);
        assert!(r.admit(&address_key(Some("203.0.113.1")), &CAPS).is_ok());
        let e = Refusal::AddressFull { max: 2 }.error();
        assert_eq!((e.status(), e.code), (429, ErrorCode::RateLimited));
    }

    #[test]
    fn caps_parse_with_defaults_and_name_their_variable() {
        let caps = RoomCaps::from_lookup(|_| None).unwrap();
        assert_eq!(caps, RoomCaps::default());
        assert_eq!(
            (
                caps.max_sockets,
                caps.max_per_address,
                caps.hello_timeout_ms
            ),
            (1_000, 8, 10_000)
        );
        let set = RoomCaps::from_lookup(|n| {
            Some(
                match n {
                    MAX_PER_ROOM_VAR => "50",
                    MAX_PER_ADDRESS_VAR => "3",
                    _ => "2",
                }
                .into(),
            )
        })
        .unwrap();
        assert_eq!(
            (set.max_sockets, set.max_per_address, set.hello_timeout_ms),
            (50, 3, 2_000)
        );
        for var in [MAX_PER_ROOM_VAR, MAX_PER_ADDRESS_VAR, HELLO_TIMEOUT_VAR] {
            for bad in ["0", "x", "-1"] {
                let e = RoomCaps::from_lookup(|n| (n == var).then(|| bad.to_string())).unwrap_err();
                assert_eq!(e.variable, var);
            }
        }
    }

    #[test]
    fn presence_is_kept_as_members_come_and_go() {
        let mut r: Roster<u32> = Roster::new();
        r.insert(1, &att("p", "10.0.0.1", None, 0), &CAPS, 0);
        r.insert(2, &att("v1", "10.0.0.2", None, 0), &CAPS, 0);
        r.insert(3, &att("v2", "10.0.0.3", None, 0), &CAPS, 0);
        assert_eq!(r.presence(), Presence::default(), "nobody said hello yet");
        r.joined("v1", member("v1", LiveRole::Viewer));
        r.joined("p", member("p", LiveRole::Player));
        r.joined("v2", member("v2", LiveRole::Viewer));
        let p = r.presence();
        assert_eq!((p.players.len(), p.viewers), (1, 2));
        assert_eq!(p.players[0].conn_id, "p");
        r.set_rtt("p", Some(42));
        assert_eq!(r.presence().players[0].rtt_ms, Some(42));
        // A viewer's join or leave reaches the players only; a player's, everyone else.
        let to: Vec<u32> = r
            .recipients(Some("v2"), Some(LiveRole::Viewer))
            .copied()
            .collect();
        assert_eq!(to, [1]);
        let mut to: Vec<u32> = r
            .recipients(Some("p"), Some(LiveRole::Player))
            .copied()
            .collect();
        to.sort();
        assert_eq!(to, [2, 3]);
        let mut all: Vec<u32> = r.recipients(None, None).copied().collect();
        all.sort();
        assert_eq!(all, [1, 2, 3]);
        // Leaving updates the counts; a repeat hello does not count twice.
        r.joined("v1", member("v1", LiveRole::Viewer));
        assert_eq!(r.presence().viewers, 2);
        // The removed entry still says who left (the room's `left` names them).
        let gone = r.remove("v1").expect("v1 was there");
        assert_eq!(gone.member().map(|m| m.conn_id.as_str()), Some("v1"));
        assert_eq!(gone.role, Some(LiveRole::Viewer));
        let gone = r.remove("p").expect("p was there");
        assert_eq!(gone.member().map(|m| m.rtt_ms), Some(Some(42)));
        let p = r.presence();
        assert_eq!((p.players.len(), p.viewers), (0, 1));
        assert_eq!(r.len(), 1);
    }

    #[test]
    fn the_rebuilt_roster_equals_the_one_kept_by_events() {
        // What the attachments say after a wake-up is what the events built.
        let atts = [
            att("p", "10.0.0.1", Some(LiveRole::Player), 5),
            att("v", "10.0.0.1", Some(LiveRole::Viewer), 6),
            att("w", "10.0.0.2", None, 7),
        ];
        let r = Roster::rebuild(
            atts.iter().map(|a| (a.conn_id.clone(), a.clone())),
            &CAPS,
            9,
        );
        let p = r.presence();
        assert_eq!((p.players.len(), p.viewers), (1, 1));
        assert_eq!(p, crate::room::presence(&atts));
        assert_eq!(r.count_for("10.0.0.1"), 2);
        // The one without hello keeps its own deadline (opened_at + timeout).
        assert_eq!(r.next_deadline(), Some(7 + CAPS.hello_timeout_ms));
        // An attachment from before opened_at existed: the deadline counts from the wake-up.
        let old = Roster::rebuild([(0u8, att("o", "10.0.0.3", None, 0))], &CAPS, 1_000);
        assert_eq!(old.next_deadline(), Some(1_000 + CAPS.hello_timeout_ms));
    }

    #[test]
    fn sockets_without_hello_are_due_at_their_deadline() {
        let mut r: Roster<()> = Roster::new();
        r.insert((), &att("a", "10.0.0.1", None, 1_000), &CAPS, 1_000);
        r.insert((), &att("b", "10.0.0.1", None, 3_000), &CAPS, 3_000);
        r.insert((), &att("c", "10.0.0.2", None, 2_000), &CAPS, 2_000);
        assert_eq!(r.next_deadline(), Some(11_000));
        assert!(r.overdue(10_999).is_empty());
        r.joined("a", member("a", LiveRole::Viewer));
        assert_eq!(r.next_deadline(), Some(12_000));
        assert_eq!(r.overdue(13_000), ["c", "b"]);
        r.remove("c");
        assert_eq!(r.overdue(13_000), ["b"]);
        r.remove("b");
        assert_eq!(r.next_deadline(), None);
    }

    #[test]
    fn a_join_costs_the_same_in_a_room_of_10_or_10_000() {
        // The work a viewer's hello does (presence + recipients) does not grow with the room:
        // counted as the entries it touches.
        for n in [10usize, 10_000] {
            let mut r: Roster<usize> = Roster::new();
            for i in 0..n {
                let id = format!("v{i}");
                r.insert(i, &att(&id, "10.0.0.1", None, 0), &CAPS, 0);
                r.joined(&id, member(&id, LiveRole::Viewer));
            }
            r.insert(n, &att("p", "10.0.0.2", None, 0), &CAPS, 0);
            r.joined("p", member("p", LiveRole::Player));
            r.insert(n + 1, &att("new", "10.0.0.3", None, 0), &CAPS, 0);
            r.joined("new", member("new", LiveRole::Viewer));
            assert_eq!(r.presence().players.len(), 1);
            assert_eq!(r.presence().viewers as usize, n + 1);
            assert_eq!(
                r.recipients(Some("new"), Some(LiveRole::Viewer)).count(),
                1,
                "only the player hears about a viewer (n = {n})"
            );
        }
    }
}
