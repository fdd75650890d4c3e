//! The edge's URL space: maps a method and path to a [`Route`], or to why none matches. Path
//! parameters come out raw; the handlers validate them with the contract's parsers (a game id
//! that is not a UUID is a 422 `validation_failed` on `gameId`, not a 404).

/// A matched edge endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `POST /edge/game/start`.
    Start,
    /// `POST /edge/game/exit`.
    Exit,
    /// `POST /edge/auth/guest` (a new guest identity, `USER_AUTH=guest`).
    GuestAuth,
    /// `GET /edge/game/{id}`, with the raw id.
    Game(String),
    /// `GET /edge/game/{id}/state`, with the raw id.
    GameState(String),
    /// `POST /edge/game/{id}/join` (a seat in a shared game), with the raw id.
    Join(String),
    /// `GET /edge/game/{id}/results` (every seat's result), with the raw id.
    Results(String),
    /// `GET /edge/game/{id}/rounds` (a sealed game's revealed keys), with the raw id.
    Rounds(String),
    /// `GET /edge/leaderboard` (best exit values and games played, per period and algorithm).
    Leaderboard,
    /// `GET /edge/tournament/{id}` (a tournament's schedule), with the raw id.
    Tournament(String),
    /// `GET /edge/tournament/{id}/standings`, with the raw id.
    Standings(String),
    /// `POST /edge/tournament/{id}/rounds/{round}/join` (a seat at a table of the round), with
    /// the raw id and round.
    TournamentJoin(String, String),
    /// `GET /edge/time`.
    Time,
    /// `GET /edge/regions`.
    Regions,
    /// `GET /edge/health`.
    Health,
    /// CORS preflight for any `/edge/*` path.
    Preflight,
    /// `GET /edge/game/{id}/live` (WebSocket upgrade to the game's room), with the raw id.
    Room(String),
    /// `GET /edge/game/{id}/live/stats` (the room's counters), with the raw id.
    RoomStats(String),
    /// `POST /edge/internal/game/{id}/exited` (origin → edge exit notice), with the raw id.
    ExitedNotice(String),
    /// `POST /edge/internal/game/{id}/joined` (origin → edge notice of a shared game's
    /// committed join), with the raw id.
    JoinedNotice(String),
}

impl Route {
    /// Whether the live-room glue (`wasm::room_routes`) answers this route rather than a handler.
    pub fn is_room(&self) -> bool {
        matches!(
            self,
            Route::Room(_) | Route::RoomStats(_) | Route::ExitedNotice(_) | Route::JoinedNotice(_)
        )
    }
}

/// Why no route matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoRoute {
    /// No such path: 404.
    NotFound,
    /// The path exists, with these methods (the `Allow` header): 405.
    MethodNotAllowed(&'static str),
}

/// Splits an absolute request URL into its path and raw query (without `?`; empty if none).
/// Done by hand because parsing with the `url` crate would pull its IDNA tables into the wasm.
pub fn split_url(url: &str) -> (&str, &str) {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    let rest = &url[after_scheme..];
    let rest = match rest.find('/') {
        Some(i) => &rest[i..],
        None => "/",
    };
    let rest = rest.split('#').next().unwrap_or(rest);
    match rest.split_once('?') {
        Some((path, query)) => (path, query),
        None => (rest, ""),
    }
}

/// Matches `method` + `path` (no query string). A trailing slash is tolerated.
pub fn route(method: &str, path: &str) -> Result<Route, NoRoute> {
    let path = if path.len() > 1 {
        path.strip_suffix('/').unwrap_or(path)
    } else {
        path
    };
    let Some(rest) = path.strip_prefix("/edge/") else {
        return Err(NoRoute::NotFound);
    };
    if method == "OPTIONS" {
        return Ok(Route::Preflight);
    }
    let segments: Vec<&str> = rest.split('/').collect();
    let (route, allow) = match segments.as_slice() {
        ["time"] => (Route::Time, "GET"),
        ["regions"] => (Route::Regions, "GET"),
        ["health"] => (Route::Health, "GET"),
        ["leaderboard"] => (Route::Leaderboard, "GET"),
        ["tournament", id] if !id.is_empty() => (Route::Tournament((*id).to_string()), "GET"),
        ["tournament", id, "standings"] if !id.is_empty() => {
            (Route::Standings((*id).to_string()), "GET")
        }
        ["tournament", id, "rounds", round, "join"] if !id.is_empty() => (
            Route::TournamentJoin((*id).to_string(), (*round).to_string()),
            "POST",
        ),
        ["game", "start"] => (Route::Start, "POST"),
        ["game", "exit"] => (Route::Exit, "POST"),
        ["auth", "guest"] => (Route::GuestAuth, "POST"),
        ["game", id] if !id.is_empty() => (Route::Game((*id).to_string()), "GET"),
        ["game", id, "state"] if !id.is_empty() => (Route::GameState((*id).to_string()), "GET"),
        ["game", id, "join"] if !id.is_empty() => (Route::Join((*id).to_string()), "POST"),
        ["game", id, "results"] if !id.is_empty() => (Route::Results((*id).to_string()), "GET"),
        ["game", id, "rounds"] if !id.is_empty() => (Route::Rounds((*id).to_string()), "GET"),
        ["game", id, "live"] if !id.is_empty() => (Route::Room((*id).to_string()), "GET"),
        ["game", id, "live", "stats"] if !id.is_empty() => {
            (Route::RoomStats((*id).to_string()), "GET")
        }
        ["internal", "game", id, "exited"] if !id.is_empty() => {
            (Route::ExitedNotice((*id).to_string()), "POST")
        }
        ["internal", "game", id, "joined"] if !id.is_empty() => {
            (Route::JoinedNotice((*id).to_string()), "POST")
        }
        _ => return Err(NoRoute::NotFound),
    };
    let method_ok = method == allow || (allow == "GET" && method == "HEAD");
    if method_ok {
        Ok(route)
    } else {
        Err(NoRoute::MethodNotAllowed(allow))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_every_endpoint() {
        assert_eq!(route("POST", "/edge/game/start"), Ok(Route::Start));
        assert_eq!(route("POST", "/edge/game/exit/"), Ok(Route::Exit));
        assert_eq!(
            route("GET", "/edge/game/g-1"),
            Ok(Route::Game("g-1".into()))
        );
        assert_eq!(
            route("GET", "/edge/game/g-1/state"),
            Ok(Route::GameState("g-1".into()))
        );
        assert_eq!(
            route("POST", "/edge/game/g-1/join"),
            Ok(Route::Join("g-1".into()))
        );
        assert_eq!(
            route("GET", "/edge/game/g-1/results"),
            Ok(Route::Results("g-1".into()))
        );
        assert_eq!(
            route("GET", "/edge/game/g-1/rounds"),
            Ok(Route::Rounds("g-1".into()))
        );
        assert_eq!(
            route("POST", "/edge/game/g-1/rounds"),
            Err(NoRoute::MethodNotAllowed("GET"))
        );
        assert_eq!(
            route("GET", "/edge/game/g-1/join"),
            Err(NoRoute::MethodNotAllowed("POST"))
        );
        assert_eq!(route("GET", "/edge/time"), Ok(Route::Time));
        assert_eq!(route("GET", "/edge/regions"), Ok(Route::Regions));
        assert_eq!(route("GET", "/edge/health"), Ok(Route::Health));
        assert_eq!(route("GET", "/edge/leaderboard"), Ok(Route::Leaderboard));
        assert_eq!(
            route("GET", "/edge/tournament/t-1"),
            Ok(Route::Tournament("t-1".into()))
        );
        assert_eq!(
            route("GET", "/edge/tournament/t-1/standings"),
            Ok(Route::Standings("t-1".into()))
        );
        assert_eq!(
            route("POST", "/edge/tournament/t-1/rounds/3/join"),
            Ok(Route::TournamentJoin("t-1".into(), "3".into()))
        );
        assert_eq!(
            route("GET", "/edge/tournament/t-1/rounds/3/join"),
            Err(NoRoute::MethodNotAllowed("POST"))
        );
        assert_eq!(
            route("POST", "/edge/tournament/t-1"),
            Err(NoRoute::MethodNotAllowed("GET"))
        );
        assert_eq!(
            route("POST", "/edge/leaderboard"),
            Err(NoRoute::MethodNotAllowed("GET"))
        );
        assert_eq!(route("OPTIONS", "/edge/game/start"), Ok(Route::Preflight));
        assert_eq!(
            route("GET", "/edge/game/g/live"),
            Ok(Route::Room("g".into()))
        );
        assert_eq!(
            route("GET", "/edge/game/g/live/stats"),
            Ok(Route::RoomStats("g".into()))
        );
        assert_eq!(
            route("POST", "/edge/internal/game/g/exited"),
            Ok(Route::ExitedNotice("g".into()))
        );
        assert_eq!(
            route("POST", "/edge/internal/game/g/joined"),
            Ok(Route::JoinedNotice("g".into()))
        );
        assert_eq!(
            route("GET", "/edge/internal/game/g/exited"),
            Err(NoRoute::MethodNotAllowed("POST"))
        );
        assert!(Route::Room("g".into()).is_room());
    }

    #[test]
    fn splits_urls() {
        assert_eq!(
            split_url("http://127.0.0.1:8787/edge/time"),
            ("/edge/time", "")
        );
        assert_eq!(
            split_url("https://x.example/edge/game/g1/state?at=5&b=1#frag"),
            ("/edge/game/g1/state", "at=5&b=1")
        );
        assert_eq!(split_url("http://x.example"), ("/", ""));
        assert_eq!(split_url("http://x.example?a=1"), ("/", ""));
        assert_eq!(split_url("/edge/time?x"), ("/edge/time", "x"));
    }

    #[test]
    fn wrong_methods_and_unknown_paths() {
        assert_eq!(
            route("GET", "/edge/game/start"),
            Err(NoRoute::MethodNotAllowed("POST"))
        );
        assert_eq!(
            route("POST", "/edge/time"),
            Err(NoRoute::MethodNotAllowed("GET"))
        );
        assert_eq!(
            route("DELETE", "/edge/game/abc"),
            Err(NoRoute::MethodNotAllowed("GET"))
        );
        for p in [
            "/",
            "/edge",
            "/edge/",
            "/edge/nope",
            "/edge/game",
            "/edge/game//state",
            "/edge/game/a/b",
            "/game/start",
        ] {
            assert_eq!(route("GET", p), Err(NoRoute::NotFound), "{p}");
        }
    }
}
