//! The `LiveRoom` Durable Object: one per game id, holding that game's sockets. The Worker side
//! of its routes is [`super::room_routes`]; the decisions (presence, owner proof, budgets,
//! warnings) are in `crate::room`.
//!
//! A room learns its game once (the Worker sends it along with the first upgrade; then every
//! socket's attachment carries it) and accepts sockets with the hibernation API
//! (`state.acceptWebSocket`): an idle room is evicted from memory while its sockets stay
//! open, and every message wakes it through `webSocketMessage`. What a socket must remember
//! lives in its attachment (`crate::room::Attachment`), never only in the room's memory.
//!
//! A `hello` as player must carry the game's owner token, which the room verifies with the
//! origins' secret (`OWNER_TOKEN_SECRET`, see `crate::room::keyring`); a socket's `exit` runs
//! the same exit core as `POST /edge/game/exit` ([`super::games::exit`]) with that token, so
//! the origin checks it again, and the room then pushes `exited` itself.
//!
//! A room never sends per-tick messages: clients compute steps with the shared engine. A
//! `sealed-v1` game's room sends one message per round instead, `{"type":"round","round":R,
//! "key":"<hex>"}` at the round's reveal instant: the alarm rings then, the room asks the
//! game's origin for the key (which refuses before that instant by its own clock) and pushes
//! it to every socket; the origin's private schedule headers say when to ring next, and the
//! room sleeps in between (`crate::reveal` has the rules; its state is kept in storage, so an
//! evicted room resumes). A socket that says `hello` later gets the latest key after its
//! `welcome`.
//!
//! A shared game's room pushes each committed join (`{"type":"seated",...}`) and each seat's
//! committed result (`{"type":"seat",...}`), both on the origin's notices, and keeps them in
//! storage (`crate::room::SeatLog`, one entry per seat each): a socket that says `hello` later
//! gets every join, then every result pushed so far right after its `welcome`, in push order.
//! A seat's owner token says `hello` as that seat's player: the room verifies it as it does the
//! creator's and finds the seat it was issued for among the joins (`crate::room::seat_hello`);
//! a join it has not heard of (a lost notice) is read once from the origin's `/results`.
//!
//! Who is in the room lives in memory too, as a [`Roster`] built once per room object from the
//! attachments and kept by the events, so a `hello`, a close or a broadcast never deserializes
//! every socket's attachment (`crate::roster` has the costs). The room caps its sockets (per
//! room and per client address, 429 before the upgrade) and closes a socket that has not said
//! `hello` in time (close code 4408), from a Durable Object alarm set for the earliest such
//! deadline: an alarm does not keep the room awake, so it still hibernates between events.

use std::cell::{Cell, RefCell};

use api::room::{
    ClientMessage, ExitSource, Exited, ExitedNotice, LiveRole, MemberEvent, Pong, SeatExit,
    SeatJoin, ServerMessage, Welcome,
};
use api::{ApiError, ErrorCode, ExitRequest, GameId, GameStatus, GameView};
use worker::js_sys;
use worker::wasm_bindgen::JsValue;
use worker::worker_sys::ext::WebSocketExt;
use worker::{
    DurableObject, Env, Request, Response, State, WebSocket, WebSocketIncomingMessage,
    WebSocketPair, durable_object,
};

use super::context::{Trace, header, load_config, now_ms};
use super::games::{self, ExitOutcome, Location, game_id};
use super::reply::Reply;
use super::upstream::{self, OriginCall};
use crate::ids;
use crate::origin::{self, Answer};
use crate::reveal::{self, Fetched, RevealState, Schedule};
use crate::room::{
    self as rules, Attachment, RoomStats, RoomStatsView, SEATS_STORAGE_KEY, SeatLog,
};
use crate::roster::{self, RoomCaps, Roster};
use crate::routes::Route;
use crate::routing;

/// Worker → room: the game (`EdgeGameView` JSON, URI-encoded) on a socket's upgrade request.
pub(super) const GAME_HEADER: &str = "x-live-game";

/// Worker → room: which path an exit notice came by (`edge` or `origin`).
pub(super) const SOURCE_HEADER: &str = "x-live-source";

/// How early the `hello` deadline alarm may close a socket (the runtime's clock is coarse).
const ALARM_SLACK_MS: u64 = 250;

/// Logs what failed and answers a 500 that names no internals.
pub(super) fn internal(what: &str, e: impl std::fmt::Display) -> ApiError {
    worker::console_error!("live room: {what}: {e}");
    ApiError::internal(format!("the edge could not {what}"))
}

/// One game's room (WebSocket events and the `hello` deadline alarm).
#[durable_object]
pub struct LiveRoom {
    state: State,
    env: Env,
    /// The game, once known (also in every socket's attachment, which survives hibernation).
    game: RefCell<Option<GameView>>,
    /// Counters since this instance was constructed.
    stats: RefCell<RoomStats>,
    /// The open sockets, built from their attachments at first use (`None` until then).
    roster: RefCell<Option<Roster<WebSocket>>>,
    /// When this instance last set the alarm (Unix ms); `None`: not set by this instance.
    alarm_at: Cell<Option<u64>>,
    /// A sealed game's reveal state (storage `crate::reveal::STORAGE_KEY`), once read.
    reveal: RefCell<Option<RevealState>>,
    /// Whether storage was read for it (a room of any other game reads it once, not per event).
    reveal_loaded: Cell<bool>,
    /// The seat results pushed so far (storage `crate::room::SEATS_STORAGE_KEY`), once read.
    seats: RefCell<Option<SeatLog>>,
}

impl std::fmt::Debug for LiveRoom {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveRoom")
            .field("game", &self.game)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl DurableObject for LiveRoom {
    fn new(state: State, env: Env) -> Self {
        Self {
            state,
            env,
            game: RefCell::new(None),
            stats: RefCell::new(RoomStats {
                since: now_ms(),
                wakeups: 1,
                ..RoomStats::default()
            }),
            roster: RefCell::new(None),
            alarm_at: Cell::new(None),
            reveal: RefCell::new(None),
            reveal_loaded: Cell::new(false),
            seats: RefCell::new(None),
        }
    }

    async fn fetch(&self, mut req: Request) -> worker::Result<Response> {
        let trace = Trace::of(&req);
        let raw_url = req.inner().url();
        let (path, _) = crate::routes::split_url(&raw_url);
        let method = req.method().to_string();
        let result = match crate::routes::route(&method, path) {
            Ok(Route::Room(raw)) => self.accept(&req, &trace, &raw).await,
            Ok(Route::RoomStats(raw)) => self.stats_reply(&trace, &raw).await,
            Ok(Route::ExitedNotice(raw)) => self.on_room_exit(&mut req, &trace, &raw).await,
            Ok(Route::JoinedNotice(raw)) => self.on_room_join(&mut req, &trace, &raw).await,
            _ => Err(ApiError::not_found("no such room route")),
        };
        match result {
            Ok(resp) => Ok(resp),
            Err(e) => Reply::error(&e).into_response(&trace),
        }
    }

    async fn websocket_message(
        &self,
        ws: WebSocket,
        message: WebSocketIncomingMessage,
    ) -> worker::Result<()> {
        self.on_message(&ws, message).await;
        Ok(())
    }

    async fn websocket_close(
        &self,
        ws: WebSocket,
        _code: usize,
        _reason: String,
        _was_clean: bool,
    ) -> worker::Result<()> {
        self.on_close(&ws);
        Ok(())
    }

    async fn websocket_error(&self, ws: WebSocket, _error: worker::Error) -> worker::Result<()> {
        self.on_close(&ws);
        Ok(())
    }

    /// The `hello` deadline and a sealed game's next reveal: closes the sockets that are
    /// past their deadline, asks the origin for a key that is due (and pushes it), then rings
    /// again for whichever comes next (if anything).
    async fn alarm(&self) -> worker::Result<Response> {
        self.alarm_at.set(None);
        let caps = self.caps().unwrap_or_default();
        // The runtime's clock may read a little before the time the alarm was set for.
        self.close_overdue(now_ms() + ALARM_SLACK_MS, &caps);
        self.reveal_if_due().await;
        self.schedule_alarm().await;
        Response::ok("")
    }
}

impl LiveRoom {
    /// The game: memory, else any socket's attachment (after a wake-up), else the copy the
    /// Worker sent along with an upgrade (`given`). `None`: not known.
    ///
    /// Attachments hold JSON text rather than structured values: the structured path
    /// (serde-wasm-bindgen) would cost the upload more code.
    fn game(&self, given: Option<&Request>) -> Option<GameView> {
        if let Some(g) = self.game.borrow().clone() {
            return Some(g);
        }
        let known = self
            .state
            .get_websockets()
            .iter()
            .find_map(|ws| attachment_of(ws).game)
            .or_else(|| {
                let raw = header(given?, GAME_HEADER)?;
                let text = String::from(js_sys::decode_uri_component(&raw).ok()?);
                let mut game: GameView = serde_json::from_slice(text.as_bytes()).ok()?;
                // Attachments are small (2 KiB at most); the room has no use for metadata.
                game.metadata = None;
                Some(game)
            })?;
        *self.game.borrow_mut() = Some(known.clone());
        Some(known)
    }

    /// The room's caps (a bad variable: the 500 naming it).
    fn caps(&self) -> Result<RoomCaps, ApiError> {
        load_config(&self.env)?
            .room
            .caps
            .clone()
            .map_err(|e| crate::config::misconfigured(&e))
    }

    /// Runs `f` on the roster, building it first from the open sockets' attachments (once per
    /// room object: after a wake-up, the only time every attachment is read).
    fn with_roster<R>(&self, f: impl FnOnce(&mut Roster<WebSocket>) -> R) -> R {
        let mut slot = self.roster.borrow_mut();
        let roster = slot.get_or_insert_with(|| self.rebuild_roster());
        f(roster)
    }

    /// The roster as the attachments of the open sockets say (and the game, if not known).
    fn rebuild_roster(&self) -> Roster<WebSocket> {
        let caps = self.caps().unwrap_or_default();
        let sockets: Vec<(WebSocket, Attachment)> = self
            .state
            .get_websockets()
            .into_iter()
            .map(|ws| {
                let att = attachment_of(&ws);
                (ws, att)
            })
            .collect();
        if self.game.borrow().is_none()
            && let Some(game) = sockets.iter().find_map(|(_, a)| a.game.clone())
        {
            *self.game.borrow_mut() = Some(game);
        }
        Roster::rebuild(sockets, &caps, now_ms())
    }

    /// Closes the sockets whose `hello` is overdue at `now` (close code 4408). They never
    /// joined, so nobody hears of them leaving.
    fn close_overdue(&self, now: u64, caps: &RoomCaps) {
        let closed: Vec<WebSocket> = self.with_roster(|r| {
            r.overdue(now)
                .iter()
                .filter_map(|id| r.remove(id))
                .map(|e| e.socket)
                .collect()
        });
        if closed.is_empty() {
            return;
        }
        let reason = format!("no hello within {} s", caps.hello_timeout_ms / 1000);
        for ws in &closed {
            let _ = ws.close(Some(roster::HELLO_TIMEOUT_CODE), Some(reason.as_str()));
        }
        self.stats.borrow_mut().hello_timeouts += closed.len() as u64;
    }

    /// Sets the room's alarm to the earliest pending `hello` deadline or a sealed game's next
    /// ask of its origin (while sockets are open), unless this instance already set it at or
    /// before that time. A storage write, so only when it changes.
    async fn schedule_alarm(&self) {
        let reveal = self.reveal_state().await;
        let (deadline, sockets) = self.with_roster(|r| (r.next_deadline(), r.len()));
        let Some(next) = reveal::alarm_at(deadline, reveal.as_ref(), sockets) else {
            return;
        };
        if self.alarm_at.get().is_some_and(|at| at <= next) {
            return;
        }
        let at = worker::ScheduledTime::new(js_sys::Date::new(&JsValue::from_f64(next as f64)));
        match self.state.storage().set_alarm(at).await {
            Ok(()) => self.alarm_at.set(Some(next)),
            Err(e) => worker::console_error!("live room: set the hello alarm: {e}"),
        }
    }

    /// Accepts a socket (hibernation API) once the game is known and the caps allow it: at
    /// most `LIVE_MAX_SOCKETS_PER_ROOM` sockets, `LIVE_MAX_SOCKETS_PER_ADDRESS` from one
    /// client address (IPv6 by /64); over either, 429 before any upgrade.
    async fn accept(&self, req: &Request, trace: &Trace, raw: &str) -> Result<Response, ApiError> {
        let id = game_id(raw)?;
        let game = match self.game(Some(req)) {
            Some(g) if g.game_id == id => g,
            _ => return Err(ApiError::internal("the room could not load its game")),
        };
        let caps = self.caps()?;
        let now = now_ms();
        // Overdue sockets go first (the alarm may not have rung yet): they must not hold slots.
        self.close_overdue(now, &caps);
        let client_ip = req
            .headers()
            .get("cf-connecting-ip")
            .ok()
            .flatten()
            .filter(|ip| !ip.is_empty() && ip.len() <= 64);
        let address = roster::address_key(client_ip.as_deref());
        let mut admitted = self.with_roster(|r| r.admit(&address, &caps));
        if admitted.is_err() {
            // Before refusing, make sure the roster has not drifted from the runtime's sockets
            // (a close event that never came): compare counts, rebuild if they differ.
            let runtime = self.state.get_websockets().len();
            if self.with_roster(|r| r.len()) != runtime {
                *self.roster.borrow_mut() = Some(self.rebuild_roster());
                admitted = self.with_roster(|r| r.admit(&address, &caps));
            }
        }
        if let Err(refusal) = admitted {
            self.stats.borrow_mut().upgrades_refused += 1;
            return Reply::error(&refusal.error())
                .with("retry-after", roster::REFUSAL_RETRY_AFTER_SECS.to_string())
                .into_response(trace)
                .map_err(|e| internal("answer", e));
        }
        let pair = WebSocketPair::new().map_err(|e| internal("open a socket", e))?;
        self.state.accept_web_socket(&pair.server);
        let attachment = Attachment {
            conn_id: ids::new_id(),
            game: Some(game),
            client_ip,
            opened_at: now,
            ..Attachment::default()
        };
        set_attachment(&pair.server, &attachment).map_err(|e| internal("open a socket", e))?;
        let sealed_active = attachment
            .game
            .as_ref()
            .is_some_and(|g| g.algorithm.is_sealed() && g.status == GameStatus::Active);
        self.with_roster(|r| r.insert(pair.server.clone(), &attachment, &caps, now));
        self.stats.borrow_mut().sockets_accepted += 1;
        if sealed_active && self.reveal_state().await.is_none() {
            // The room's first socket of a sealed game: ask the origin at once.
            self.save_reveal(RevealState::fresh(now as i64)).await;
        }
        self.schedule_alarm().await;
        Response::from_websocket(pair.client).map_err(|e| internal("open a socket", e))
    }

    /// The reveal state: memory, else storage (after an eviction); `None` for a room that
    /// never had a sealed game's socket.
    async fn reveal_state(&self) -> Option<RevealState> {
        if let Some(state) = self.reveal.borrow().clone() {
            return Some(state);
        }
        if self.reveal_loaded.get() {
            return None;
        }
        let stored = match self
            .state
            .storage()
            .get::<String>(reveal::STORAGE_KEY)
            .await
        {
            Ok(stored) => {
                // Read (there or not): memory answers from now on.
                self.reveal_loaded.set(true);
                stored?
            }
            Err(e) => {
                worker::console_error!("live room: read the reveal state: {e}");
                return None;
            }
        };
        let state: RevealState = serde_json::from_str(&stored).ok()?;
        *self.reveal.borrow_mut() = Some(state.clone());
        Some(state)
    }

    /// Keeps `state` in memory and storage.
    async fn save_reveal(&self, state: RevealState) {
        let text = serde_json::to_string(&state).unwrap_or_default();
        *self.reveal.borrow_mut() = Some(state);
        if let Err(e) = self
            .state
            .storage()
            .put_raw(reveal::STORAGE_KEY, JsValue::from_str(&text))
            .await
        {
            worker::console_error!("live room: store the reveal state: {e}");
        }
    }

    /// A sealed game's ask, when due and someone is watching: the next keys from the game's
    /// origin (with the schedule, which only the edge gets), each pushed to every socket, and
    /// when to ask next.
    async fn reveal_if_due(&self) {
        let Some(mut state) = self.reveal_state().await else {
            return;
        };
        let now = now_ms() as i64;
        if !state.due(now) || self.with_roster(|r| r.len()) == 0 {
            return;
        }
        let Some(game) = self.game(None) else {
            return;
        };
        let fetched = match self.fetch_rounds(&game, state.from_round()).await {
            Ok(fetched) => fetched,
            Err(e) => {
                worker::console_error!("live room {}: ask for round keys: {e}", game.game_id);
                Fetched::Failed
            }
        };
        let pushed = state.apply(fetched, now_ms() as i64);
        for key in pushed {
            self.broadcast(&ServerMessage::Round(key), None, None);
        }
        self.save_reveal(state).await;
    }

    /// `GET /game/{id}/rounds?from=R` at the game's region (failing over in order), asking
    /// for the schedule.
    async fn fetch_rounds(&self, game: &GameView, from: u64) -> Result<Fetched, ApiError> {
        let cfg = super::live::effective(&load_config(&self.env)?);
        let trace = Trace::fresh(None);
        let call = OriginCall::get(format!("/game/{}/rounds?from={from}", game.game_id), &trace)
            .with(reveal::SCHEDULE_REQUEST_HEADER, "1".to_owned());
        let order = routing::attempt_order(&cfg, game.region.as_str());
        let served = upstream::call_with_failover(&cfg, &order, &call).await?;
        let schedule = Schedule::from_headers(
            served.header(reveal::PUBLIC_ROUNDS_HEADER),
            served.header(reveal::NEXT_REVEAL_AT_HEADER),
        );
        Ok(
            match origin::rounds(
                &served.region,
                served.status,
                &served.body,
                &game.game_id,
                from,
            )
            .map_err(games::off_contract)?
            {
                Answer::Ok(_, view) => Fetched::Page {
                    rounds: view.rounds,
                    schedule,
                },
                Answer::Refused(425, error) => Fetched::TooEarly {
                    retry_at: error.error.retry_at,
                    schedule,
                },
                Answer::Refused(..) => Fetched::Refused,
            },
        )
    }

    /// The game ended: a sealed game's room asks once more at once (the keys up to the end).
    async fn reveal_after_exit(&self) {
        if let Some(mut state) = self.reveal_state().await
            && state.next_at.is_some()
        {
            state.ended(now_ms() as i64);
            self.save_reveal(state).await;
            self.schedule_alarm().await;
        }
    }

    async fn stats_reply(&self, trace: &Trace, raw: &str) -> Result<Response, ApiError> {
        let id = game_id(raw)?;
        let game = self.game(None);
        let (sockets, presence) = self.with_roster(|r| (r.len(), r.presence()));
        let view = RoomStatsView {
            game_id: id.to_string(),
            loaded: game.is_some(),
            status: game.map(|g| g.status),
            sockets: u32::try_from(sockets).unwrap_or(u32::MAX),
            presence,
            stats: self.stats.borrow().clone(),
            websocket_api: "hibernation",
        };
        Reply::json(200, &view)
            .into_response(trace)
            .map_err(|e| internal("answer", e))
    }

    /// An exit committed elsewhere (the Worker side's `notify_exited`).
    async fn on_room_exit(
        &self,
        req: &mut Request,
        trace: &Trace,
        raw: &str,
    ) -> Result<Response, ApiError> {
        let id = game_id(raw)?;
        let source = match header(req, SOURCE_HEADER).as_deref() {
            Some("origin") => ExitSource::Origin,
            _ => ExitSource::Edge,
        };
        let body = req
            .bytes()
            .await
            .map_err(|_| ApiError::bad_request("could not read the notice"))?;
        let notice: ExitedNotice = api::json::parse_body(&body)?;
        match notice.seat {
            // One seat of a shared game: push its result; the game goes on for the others.
            Some(seat) => self.push_seat(&id, seat).await,
            None => {
                self.commit_exit(&id, notice.exited_at, source);
                self.reveal_after_exit().await;
            }
        }
        Reply::raw(200, br#"{"ok":true}"#.to_vec())
            .into_response(trace)
            .map_err(|e| internal("answer", e))
    }

    /// A join committed at an origin (the Worker side checked the notice's secret and shape).
    async fn on_room_join(
        &self,
        req: &mut Request,
        trace: &Trace,
        raw: &str,
    ) -> Result<Response, ApiError> {
        let id = game_id(raw)?;
        let body = req
            .bytes()
            .await
            .map_err(|_| ApiError::bad_request("could not read the notice"))?;
        let join: SeatJoin = api::json::parse_body(&body)?;
        self.push_joins(&id, std::slice::from_ref(&join), None)
            .await;
        Reply::raw(200, br#"{"ok":true}"#.to_vec())
            .into_response(trace)
            .map_err(|e| internal("answer", e))
    }

    /// Pushes committed joins to every socket (the origin's notices, or seats read from its
    /// `/results`) and keeps them for the sockets that say `hello` later and to place seat
    /// players ([`SeatLog::record_join`]: each seat once, up to the game's `maxPlayers`); to
    /// every socket but `except` (a socket whose `welcome` replays them).
    async fn push_joins(&self, id: &GameId, joins: &[SeatJoin], except: Option<&str>) {
        // Kept even while nobody watches (the room is this game's: its name is the game id),
        // bounded by the game's `maxPlayers` once the room knows its game.
        let max_players = match self.game(None) {
            None => api::limits::MAX_PLAYERS,
            Some(game) => match game.shared {
                Some(shared) if game.game_id == *id => shared.max_players,
                _ => return,
            },
        };
        let mut log = self.seat_log().await;
        let mut changed = false;
        for join in joins {
            if log.record_join(join, max_players) {
                self.broadcast(&ServerMessage::Seated(join.clone()), except, None);
                changed = true;
            }
        }
        if changed {
            self.save_seat_log(log).await;
        }
    }

    /// The seats of the game as its origin lists them (`GET /game/{id}/results` at its region,
    /// failing over in order): for a seat's player whose join the room has not heard of.
    async fn fetch_joins(&self, game: &GameView) -> Result<Vec<SeatJoin>, ApiError> {
        let cfg = super::live::effective(&load_config(&self.env)?);
        let trace = Trace::fresh(None);
        let call = OriginCall::get(format!("/game/{}/results", game.game_id), &trace);
        let order = routing::attempt_order(&cfg, game.region.as_str());
        let served = upstream::call_with_failover(&cfg, &order, &call).await?;
        match origin::results(&served.region, served.status, &served.body, &game.game_id)
            .map_err(games::off_contract)?
        {
            Answer::Ok(_, view) => Ok(view
                .seats
                .into_iter()
                .map(|s| SeatJoin {
                    seat: s.seat,
                    user_id: s.user_id,
                    joined_at: s.joined_at,
                })
                .collect()),
            Answer::Refused(_, error) => Err(ApiError::new(error.error.code, error.error.message)),
        }
    }

    /// Pushes a seat's committed result to every socket (the origin's notice only: a client
    /// frame of type `seat` is refused by the parser), and keeps it for the sockets that say
    /// `hello` later ([`SeatLog`]). A repeated notice of a seat is pushed and kept once.
    async fn push_seat(&self, id: &GameId, seat: SeatExit) {
        if self.game(None).is_some_and(|game| game.game_id != *id) {
            return;
        }
        // Kept even while nobody watches (the room is this game's: its name is the game id),
        // so the first socket to come gets it too.
        let mut log = self.seat_log().await;
        if !log.record(&seat) {
            return;
        }
        self.broadcast(&ServerMessage::Seat(seat), None, None);
        self.save_seat_log(log).await;
    }

    /// The seat results pushed so far: memory, else storage (after an eviction).
    async fn seat_log(&self) -> SeatLog {
        if let Some(log) = self.seats.borrow().clone() {
            return log;
        }
        let log = match self.state.storage().get::<String>(SEATS_STORAGE_KEY).await {
            Ok(stored) => stored
                .and_then(|text| serde_json::from_str::<SeatLog>(&text).ok())
                .unwrap_or_default(),
            Err(e) => {
                // Not remembered: the next event reads storage again.
                worker::console_error!("live room: read the seat results: {e}");
                return SeatLog::default();
            }
        };
        *self.seats.borrow_mut() = Some(log.clone());
        log
    }

    /// Keeps `log` in memory and storage.
    async fn save_seat_log(&self, log: SeatLog) {
        let text = serde_json::to_string(&log).unwrap_or_default();
        *self.seats.borrow_mut() = Some(log);
        if let Err(e) = self
            .state
            .storage()
            .put_raw(SEATS_STORAGE_KEY, JsValue::from_str(&text))
            .await
        {
            worker::console_error!("live room: store the seat results: {e}");
        }
    }

    /// Records the exit and pushes `exited` to every socket, once (repeats are ignored).
    fn commit_exit(&self, id: &GameId, exited_at: i64, source: ExitSource) {
        let Some(mut game) = self.game(None) else {
            // The room has no sockets and no game: nobody to tell.
            return;
        };
        if game.game_id != *id || game.status == GameStatus::Exited {
            return;
        }
        game.status = GameStatus::Exited;
        game.exited_at = Some(exited_at);
        // Push first: the sockets are waiting; then remember it for wake-ups.
        self.broadcast(
            &ServerMessage::Exited(Exited {
                game_id: *id,
                exited_at,
                source,
            }),
            None,
            None,
        );
        // Once per game: every attachment carries the game (a woken room reads it there).
        for ws in self.state.get_websockets() {
            let mut att = attachment_of(&ws);
            att.game = Some(game.clone());
            let _ = set_attachment(&ws, &att);
        }
        *self.game.borrow_mut() = Some(game);
    }

    fn send(&self, ws: &WebSocket, msg: &ServerMessage) {
        let Ok(text) = serde_json::to_string(msg) else {
            return;
        };
        if ws.send_with_str(&text).is_ok() {
            self.stats.borrow_mut().sent(msg.kind(), text.len());
        }
    }

    /// Sends `msg` to every socket but the one with conn id `except` (`None`: all), or, for
    /// `about: Some(role)` (a join or leave), to those [`rules::hears_about`] says: from the
    /// roster, so O(recipients), with no attachment read.
    fn broadcast(&self, msg: &ServerMessage, except: Option<&str>, about: Option<LiveRole>) {
        let Ok(text) = serde_json::to_string(msg) else {
            return;
        };
        let sent = self.with_roster(|r| {
            r.recipients(except, about)
                .filter(|ws| ws.send_with_str(&text).is_ok())
                .count()
        });
        let mut stats = self.stats.borrow_mut();
        for _ in 0..sent {
            stats.sent(msg.kind(), text.len());
        }
    }

    fn refuse(&self, ws: &WebSocket, e: &ApiError) {
        self.send(ws, &ServerMessage::Error(e.into()));
    }

    async fn on_message(&self, ws: &WebSocket, message: WebSocketIncomingMessage) {
        // The alarm's backstop: any event closes sockets past their `hello` deadline.
        if self
            .with_roster(|r| r.next_deadline())
            .is_some_and(|d| d <= now_ms())
        {
            self.close_overdue(now_ms(), &self.caps().unwrap_or_default());
        }
        // Read once per message: the budget and the handlers share it.
        let mut att = attachment_of(ws);
        match rules::spend_message(&mut att, now_ms() as i64) {
            rules::Budget::Allowed => {
                let _ = set_attachment(ws, &att);
            }
            rules::Budget::Refused {
                retry_after_ms,
                first,
            } => {
                self.stats.borrow_mut().received("refused");
                let _ = set_attachment(ws, &att);
                if first {
                    self.refuse(
                        ws,
                        &ApiError::new(
                            api::ErrorCode::RateLimited,
                            format!(
                                "too many messages: at most {} at once, then one per {} ms; \
                                 retry in {retry_after_ms} ms",
                                rules::MESSAGE_BURST,
                                rules::MESSAGE_INTERVAL_MS
                            ),
                        ),
                    );
                }
                return;
            }
            rules::Budget::Close => {
                self.stats.borrow_mut().received("refused");
                let _ = ws.close(Some(1008), Some("too many messages"));
                self.on_close(ws);
                // Left once: the runtime's close event for this socket finds no member.
                let _ = set_attachment(
                    ws,
                    &Attachment {
                        conn_id: att.conn_id,
                        ..Attachment::default()
                    },
                );
                return;
            }
        }
        let bytes = match message {
            WebSocketIncomingMessage::String(s) => s.into_bytes(),
            WebSocketIncomingMessage::Binary(_) => {
                self.stats.borrow_mut().received("invalid");
                self.refuse(
                    ws,
                    &ApiError::bad_request("binary frames are not supported"),
                );
                return;
            }
        };
        let msg = match api::room::parse_client_message(&bytes) {
            Ok(m) => m,
            Err(e) => {
                self.stats.borrow_mut().received("invalid");
                self.refuse(ws, &e);
                return;
            }
        };
        self.stats.borrow_mut().received(msg.kind());
        let result = match msg {
            ClientMessage::Ping(p) => {
                let received = now_ms() as i64;
                self.send(
                    ws,
                    &ServerMessage::Pong(Pong {
                        client_time: p.client_time,
                        server_received: received,
                        server_sent: now_ms() as i64,
                    }),
                );
                // Parsed once with the configuration; the defaults when it does not load.
                let thresholds = load_config(&self.env)
                    .map(|cfg| cfg.room.thresholds)
                    .unwrap_or_default();
                let before = att.clone();
                for w in thresholds.check(&mut att, p.rtt_ms, p.jitter_ms) {
                    self.send(ws, &ServerMessage::Warning(w));
                }
                if att != before {
                    let _ = set_attachment(ws, &att);
                    if att.rtt_ms != before.rtt_ms {
                        self.with_roster(|r| r.set_rtt(&att.conn_id, att.rtt_ms));
                    }
                }
                Ok(())
            }
            ClientMessage::Hello(hello) => self.on_hello(ws, att, &hello).await,
            ClientMessage::Exit(cmd) => self.on_exit(ws, &att, cmd.owner_token.as_deref()).await,
        };
        if let Err(e) = result {
            self.refuse(ws, &e);
        }
    }

    async fn on_hello(
        &self,
        ws: &WebSocket,
        mut att: Attachment,
        hello: &api::room::Hello,
    ) -> Result<(), ApiError> {
        if att.role.is_some() {
            return Err(ApiError::new(
                ErrorCode::Conflict,
                "this connection already said hello",
            ));
        }
        let game = self
            .game(None)
            .ok_or_else(|| ApiError::internal("the room lost its game"))?;
        let cfg = load_config(&self.env)?;
        let keyring = cfg.room.keyring.0.as_ref().map_err(|e| {
            worker::console_error!("live room: {}", e.message);
            e.clone()
        })?;
        let mut granted = rules::authorize_hello(&game, hello, keyring.as_ref(), now_ms() as i64)?;
        if !rules::seat_hello(&game, &mut granted, hello, &self.seat_log().await.joins)? {
            // A valid token of this game whose seat the room has not heard of (a notice lost,
            // or sent before the room knew its game): the origin's seats, once.
            let joins = self.fetch_joins(&game).await?;
            self.push_joins(&game.game_id, &joins, Some(&att.conn_id))
                .await;
            if !rules::seat_hello(&game, &mut granted, hello, &self.seat_log().await.joins)? {
                return Err(rules::no_seat());
            }
        }
        let role = granted.role;
        att.role = Some(role);
        att.user_id = granted.user_id;
        att.owner_token = granted.owner_token;
        att.seat = granted.seat;
        set_attachment(ws, &att).map_err(|e| internal("remember the connection", e))?;
        let caps = self.caps().unwrap_or_default();
        let presence = self.with_roster(|r| {
            match att.member() {
                Some(member) if r.contains(&att.conn_id) => r.joined(&att.conn_id, member),
                // Not in the roster (never expected): add it as it is now.
                _ => r.insert(ws.clone(), &att, &caps, now_ms()),
            }
            r.presence()
        });
        self.send(
            ws,
            &ServerMessage::Welcome(Welcome {
                conn_id: att.conn_id.clone(),
                role,
                game_id: game.game_id,
                status: game.status,
                exited_at: game.exited_at,
                server_time: now_ms() as i64,
                presence: presence.clone(),
            }),
        );
        // A shared game: every join, then every seat result pushed before this socket came,
        // in order, so its table is complete without asking `/results` again.
        if game.shared.is_some() {
            let log = self.seat_log().await;
            for join in log.joins {
                self.send(ws, &ServerMessage::Seated(join));
            }
            for seat in log.seats {
                self.send(ws, &ServerMessage::Seat(seat));
            }
        }
        // A sealed game: the latest key already out (earlier ones are its hashes).
        if game.algorithm.is_sealed()
            && let Some(latest) = self.reveal_state().await.and_then(|r| r.latest())
        {
            self.send(ws, &ServerMessage::Round(latest));
        }
        if let Some(member) = att.member() {
            let role = member.role;
            self.broadcast(
                &ServerMessage::Joined(MemberEvent { member, presence }),
                Some(&att.conn_id),
                Some(role),
            );
        }
        Ok(())
    }

    /// A socket's `exit`: only a proved player. The same exit core as `POST /edge/game/exit`
    /// ([`games::exit`]), with the proved owner token as `Authorization: Bearer` (the origin
    /// verifies it again) and the client's address for the origin's per-client limits; then
    /// this room records the exit and pushes `exited` itself.
    async fn on_exit(
        &self,
        ws: &WebSocket,
        att: &Attachment,
        exit_token: Option<&str>,
    ) -> Result<(), ApiError> {
        let token = rules::authorize_exit(att, exit_token)?;
        let game = self
            .game(None)
            .ok_or_else(|| ApiError::internal("the room lost its game"))?;
        if let (GameStatus::Exited, Some(at)) = (game.status, game.exited_at) {
            self.send(
                ws,
                &ServerMessage::Exited(Exited {
                    game_id: game.game_id,
                    exited_at: at,
                    source: ExitSource::Load,
                }),
            );
            return Ok(());
        }
        let cfg = super::live::effective(&load_config(&self.env)?);
        let exit = ExitRequest {
            game_id: game.game_id,
            // The proved player: a seat's exits that seat (the origin checks the token's user).
            user_id: att.user_id.clone().unwrap_or_else(|| game.user_id.clone()),
            backend_region: Some(game.region.clone()),
        };
        let trace = Trace::fresh(att.client_ip.clone());
        // The room is no client: no location hints.
        let location = Location::default();
        let authorization = Some(format!("Bearer {token}"));
        match games::exit(&cfg, &trace, &location, &exit, authorization).await? {
            ExitOutcome::Exited { view, .. } => {
                match (view.exit.result, att.seat) {
                    // A seat of a shared game: its result; the game goes on (the origin tells
                    // the room when the last seat's exit ends it).
                    (Some(result), Some(seat)) => {
                        let exit = SeatExit {
                            seat,
                            user_id: view.exit.user_id,
                            result,
                        };
                        self.push_seat(&game.game_id, exit).await;
                    }
                    _ => {
                        self.commit_exit(&game.game_id, view.exit.exited_at, ExitSource::Edge);
                        self.reveal_after_exit().await;
                    }
                }
                Ok(())
            }
            ExitOutcome::Refused { error, .. } => {
                Err(ApiError::new(error.error.code, error.error.message))
            }
        }
    }

    fn on_close(&self, ws: &WebSocket) {
        let att = attachment_of(ws);
        self.stats.borrow_mut().sockets_closed += 1;
        // Completes the closing handshake (a no-op where the runtime already answered it).
        let _ = ws.close(Some(1000), Some("closed"));
        let (gone, presence) = self.with_roster(|r| {
            let gone = r.remove(&att.conn_id);
            (gone, r.presence())
        });
        // The roster's member (its latest round trip); the attachment's if the roster never
        // had it. A socket closed once already (flood) has neither.
        let Some(member) = gone.map_or_else(|| att.member(), |e| e.member().cloned()) else {
            return;
        };
        let role = member.role;
        self.broadcast(
            &ServerMessage::Left(MemberEvent { member, presence }),
            Some(&att.conn_id),
            Some(role),
        );
    }
}

/// A socket's attachment (a default one if unreadable, which only loses its presence).
fn attachment_of(ws: &WebSocket) -> Attachment {
    ws.as_ref()
        .deserialize_attachment()
        .ok()
        .and_then(|v| v.as_string())
        .and_then(|text| serde_json::from_slice(text.as_bytes()).ok())
        .unwrap_or_default()
}

/// Stores a socket's attachment (as JSON text).
fn set_attachment(ws: &WebSocket, att: &Attachment) -> worker::Result<()> {
    ws.as_ref()
        .serialize_attachment(JsValue::from_str(&serde_json::to_string(att)?))
        .map_err(worker::Error::from)
}
