//! What the edge accepts from an origin: the contract's views on success, the contract's
//! [`ErrorBody`] on a 4xx (passed through to the client), and nothing else. Anything off
//! contract becomes a 502 `bad_gateway` rather than being relayed to a client that trusts the
//! contract. (5xx answers never get here: they count as a failed attempt and fail over.)

use std::fmt;

use api::{
    ApiError, ErrorBody, ExitView, GameId, GameStatus, GameView, JoinView, RegionName, ResultsView,
    RoundsView, SeatResult, StateView, UserId,
};
use serde::Deserialize;
use serde::de::DeserializeOwned;

/// An origin answer the edge can use.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer<T> {
    /// A success with one of the expected statuses, and its view.
    Ok(u16, T),
    /// A 4xx with a contract error body, to pass through with its status.
    Refused(u16, ErrorBody),
}

/// An origin answer that is not the contract.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffContract {
    /// The region whose origin answered.
    pub region: RegionName,
    /// Its HTTP status.
    pub status: u16,
    /// What is wrong, for the log (not for the client).
    pub detail: String,
}

impl fmt::Display for OffContract {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "origin {} answered HTTP {} off contract: {}",
            self.region, self.status, self.detail
        )
    }
}

impl From<OffContract> for ApiError {
    /// 502 `bad_gateway` naming the region and status only.
    fn from(e: OffContract) -> ApiError {
        ApiError::bad_gateway(format!(
            "the {} origin answered HTTP {} with a body that is not the API contract",
            e.region, e.status
        ))
    }
}

/// Reads an origin answer: a `T` when `status` is one of `ok`, a contract error body on a 4xx
/// whose code carries that very status, anything else is [`OffContract`].
pub fn parse<T: DeserializeOwned>(
    region: &RegionName,
    status: u16,
    body: &[u8],
    ok: &[u16],
) -> Result<Answer<T>, OffContract> {
    let off = |detail: String| OffContract {
        region: region.clone(),
        status,
        detail,
    };
    if ok.contains(&status) {
        return serde_json::from_slice(body)
            .map(|view| Answer::Ok(status, view))
            .map_err(|e| off(e.to_string()));
    }
    if (400..500).contains(&status) {
        let error: ErrorBody = serde_json::from_slice(body).map_err(|e| off(e.to_string()))?;
        if error.error.code.status() != status {
            return Err(off(format!(
                "error code {} belongs with HTTP {}",
                error.error.code,
                error.error.code.status()
            )));
        }
        return Ok(Answer::Refused(status, error));
    }
    Err(off(format!("unexpected status (expected one of {ok:?})")))
}

/// A game read (`GET /game/{id}`, 200) of game `id`.
pub fn game(
    region: &RegionName,
    status: u16,
    body: &[u8],
    id: &GameId,
) -> Result<Answer<GameView>, OffContract> {
    let answer = parse::<GameView>(region, status, body, &[200])?;
    same_game(region, status, &answer, id, |g| g.game_id)?;
    Ok(answer)
}

/// A start (`POST /game/start`: 201 created, 200 existing).
pub fn started(
    region: &RegionName,
    status: u16,
    body: &[u8],
) -> Result<Answer<GameView>, OffContract> {
    parse(region, status, body, &[200, 201])
}

/// A join (`POST /game/{id}/join`: 201 seated, 200 the seat already held) of game `id`.
pub fn joined(
    region: &RegionName,
    status: u16,
    body: &[u8],
    id: &GameId,
) -> Result<Answer<JoinView>, OffContract> {
    let answer = parse::<JoinView>(region, status, body, &[200, 201])?;
    same_game(region, status, &answer, id, |j| j.game.game_id)?;
    Ok(answer)
}

/// A tournament join (`POST /tournaments/{id}/rounds/{round}/join`: 201 seated, 200 the seat
/// already held): the table's game must say it belongs to tournament `id`.
pub fn tournament_joined(
    region: &RegionName,
    status: u16,
    body: &[u8],
    id: &GameId,
) -> Result<Answer<JoinView>, OffContract> {
    let answer = parse::<JoinView>(region, status, body, &[200, 201])?;
    if let Answer::Ok(_, join) = &answer {
        let of = join
            .game
            .metadata
            .as_ref()
            .and_then(|m| m.as_map().get("tournamentId"))
            .and_then(|v| v.as_str());
        if of != Some(id.to_string().as_str()) {
            return Err(OffContract {
                region: region.clone(),
                status,
                detail: format!("a table of another tournament ({of:?}, not {id})"),
            });
        }
    }
    Ok(answer)
}

/// A tournament's schedule (`GET /tournaments/{id}`, 200).
pub fn tournament(
    region: &RegionName,
    status: u16,
    body: &[u8],
    id: &GameId,
) -> Result<Answer<api::TournamentView>, OffContract> {
    let answer = parse::<api::TournamentView>(region, status, body, &[200])?;
    same_game(region, status, &answer, id, |t| t.tournament_id)?;
    Ok(answer)
}

/// A tournament's standings (`GET /tournaments/{id}/standings`, 200).
pub fn standings(
    region: &RegionName,
    status: u16,
    body: &[u8],
    id: &GameId,
) -> Result<Answer<api::StandingsView>, OffContract> {
    let answer = parse::<api::StandingsView>(region, status, body, &[200])?;
    same_game(region, status, &answer, id, |s| s.tournament_id)?;
    Ok(answer)
}

/// A leaderboard read (`GET /leaderboard`, 200).
pub fn leaderboard(
    region: &RegionName,
    status: u16,
    body: &[u8],
) -> Result<Answer<api::LeaderboardView>, OffContract> {
    parse::<api::LeaderboardView>(region, status, body, &[200])
}

/// A results read (`GET /game/{id}/results`, 200) of game `id`.
pub fn results(
    region: &RegionName,
    status: u16,
    body: &[u8],
    id: &GameId,
) -> Result<Answer<ResultsView>, OffContract> {
    let answer = parse::<ResultsView>(region, status, body, &[200])?;
    same_game(region, status, &answer, id, |r| r.game_id)?;
    Ok(answer)
}

/// A rounds read (`GET /game/{id}/rounds`, 200) of game `id`: its keys must be 64 hex digits
/// of consecutive rounds from the one asked for.
pub fn rounds(
    region: &RegionName,
    status: u16,
    body: &[u8],
    id: &GameId,
    from: u64,
) -> Result<Answer<RoundsView>, OffContract> {
    let answer = parse::<RoundsView>(region, status, body, &[200])?;
    same_game(region, status, &answer, id, |r| r.game_id)?;
    if let Answer::Ok(_, view) = &answer {
        let hex64 = |k: &str| k.len() == 64 && k.bytes().all(|b| b.is_ascii_hexdigit());
        let ordered = view
            .rounds
            .iter()
            .zip(from..)
            .all(|(k, round)| k.round == round && hex64(&k.key));
        if view.from != from || !ordered || !hex64(&view.commitment) {
            return Err(OffContract {
                region: region.clone(),
                status,
                detail: format!("rounds that are not the keys of consecutive rounds from {from}"),
            });
        }
    }
    Ok(answer)
}

/// A state read (`GET /game/{id}/state`, 200) of game `id`.
pub fn state(
    region: &RegionName,
    status: u16,
    body: &[u8],
    id: &GameId,
) -> Result<Answer<StateView>, OffContract> {
    let answer = parse::<StateView>(region, status, body, &[200])?;
    same_game(region, status, &answer, id, |s| s.game_id)?;
    Ok(answer)
}

/// The origin's exit answer, read leniently: origins built before `ok` joined the contract's
/// [`ExitView`] leave it out, and their 200 means committed just the same. (Read straight from
/// the bytes rather than patched as a `serde_json::Value`, which would cost the Worker a second
/// deserializer.)
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct OriginExit {
    /// Missing reads as `true`.
    #[serde(default = "committed")]
    ok: bool,
    game_id: GameId,
    user_id: UserId,
    exited_at: i64,
    status: GameStatus,
    /// Shared games: the seat's result.
    #[serde(default)]
    result: Option<SeatResult>,
}

/// What a missing `ok` means.
fn committed() -> bool {
    true
}

/// An exit (`POST /game/exit`, 200) of game `id`, as the contract's [`ExitView`]. An explicit
/// `ok: false`, or a status other than `exited`, is off contract.
pub fn exited(
    region: &RegionName,
    status: u16,
    body: &[u8],
    id: &GameId,
) -> Result<Answer<ExitView>, OffContract> {
    let answer = match parse::<OriginExit>(region, status, body, &[200])? {
        Answer::Ok(_, exit) if !exit.ok || exit.status != GameStatus::Exited => {
            return Err(OffContract {
                region: region.clone(),
                status,
                detail: "an exit that is not committed".to_owned(),
            });
        }
        Answer::Ok(status, exit) => Answer::Ok(
            status,
            ExitView {
                ok: true,
                game_id: exit.game_id,
                user_id: exit.user_id,
                exited_at: exit.exited_at,
                status: exit.status,
                result: exit.result,
            },
        ),
        Answer::Refused(status, error) => Answer::Refused(status, error),
    };
    same_game(region, status, &answer, id, |e| e.game_id)?;
    Ok(answer)
}

/// A view of another game than the one asked about is off contract.
fn same_game<T>(
    region: &RegionName,
    status: u16,
    answer: &Answer<T>,
    id: &GameId,
    game_of: impl Fn(&T) -> GameId,
) -> Result<(), OffContract> {
    match answer {
        Answer::Ok(_, view) if game_of(view) != *id => Err(OffContract {
            region: region.clone(),
            status,
            detail: format!("a view of game {} instead of {id}", game_of(view)),
        }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use api::ErrorCode;
    use serde_json::{Value, json};

    const ID: &str = "3f2b8c1e-9d4a-4f6b-8e2a-1c5d7e9f0a3b";

    fn eu() -> RegionName {
        RegionName::parse("eu").unwrap()
    }

    fn id() -> GameId {
        GameId::parse(ID).unwrap()
    }

    fn game_json() -> Value {
        json!({
            "gameId": ID, "userId": "u", "region": "eu", "seed": 42, "startAt": 1000,
            "tickMs": 100, "breakEvery": 50, "algorithm": "mix32-v1", "status": "active",
            "createdAt": 900
        })
    }

    fn bytes(v: &Value) -> Vec<u8> {
        serde_json::to_vec(v).unwrap()
    }

    #[test]
    fn views_on_expected_statuses() {
        let body = bytes(&game_json());
        match started(&eu(), 201, &body).unwrap() {
            Answer::Ok(201, g) => assert_eq!((g.seed, g.region.as_str()), (42, "eu")),
            other => panic!("{other:?}"),
        }
        assert!(matches!(started(&eu(), 200, &body), Ok(Answer::Ok(200, _))));
        assert!(matches!(game(&eu(), 200, &body, &id()), Ok(Answer::Ok(..))));
        let e = started(&eu(), 204, &body).unwrap_err();
        assert_eq!(e.status, 204);
        let e = game(&eu(), 201, &body, &id()).unwrap_err();
        assert!(e.detail.contains("unexpected status"), "{e}");
    }

    #[test]
    fn rounds_must_be_consecutive_keys_of_the_game() {
        let k = |round: u64| json!({"round": round, "key": "a1".repeat(32)});
        let view = |from: u64, rounds: Vec<Value>| {
            bytes(
                &json!({"gameId": ID, "commitment": "0f".repeat(32), "from": from, "rounds": rounds}),
            )
        };
        match rounds(&eu(), 200, &view(3, vec![k(3), k(4)]), &id(), 3).unwrap() {
            Answer::Ok(200, v) => assert_eq!(v.rounds.len(), 2),
            other => panic!("{other:?}"),
        }
        assert!(rounds(&eu(), 200, &view(3, vec![]), &id(), 3).is_ok());
        for (body, from) in [
            (view(3, vec![k(3), k(5)]), 3),
            (view(3, vec![k(3)]), 2),
            (
                view(1, vec![json!({"round": 1, "key": "zz".repeat(32)})]),
                1,
            ),
            (view(1, vec![json!({"round": 1, "key": "ab"})]), 1),
        ] {
            assert!(rounds(&eu(), 200, &body, &id(), from).is_err());
        }
        let early = bytes(&json!({"error": {"code": "too_early", "message": "m", "retryAt": 5}}));
        match rounds(&eu(), 425, &early, &id(), 1).unwrap() {
            Answer::Refused(425, e) => assert_eq!(e.error.retry_at, Some(5)),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn off_contract_bodies_are_bad_gateway() {
        let mut missing = game_json();
        missing.as_object_mut().unwrap().remove("seed");
        let mut bad_region = game_json();
        bad_region["region"] = json!("EU_1");
        for body in [
            b"<html>oops</html>".to_vec(),
            b"".to_vec(),
            bytes(&json!([1])),
            bytes(&missing),
            bytes(&bad_region),
        ] {
            let e = started(&eu(), 201, &body).unwrap_err();
            let api: ApiError = e.clone().into();
            assert_eq!((api.status(), api.code), (502, ErrorCode::BadGateway));
            assert!(api.message.contains("eu origin"), "{}", api.message);
            assert!(!api.message.contains("seed"), "no details for the client");
            assert!(e.to_string().contains("HTTP 201"), "{e}");
        }
        let other = GameId::parse("3f2b8c1e-9d4a-4f6b-8e2a-1c5d7e9f0a3c").unwrap();
        assert!(game(&eu(), 200, &bytes(&game_json()), &other).is_err());
    }

    #[test]
    fn contract_errors_pass_through_with_their_status() {
        let body = bytes(&json!({"error": {"code": "forbidden", "message": "not yours"}}));
        match exited(&eu(), 403, &body, &id()).unwrap() {
            Answer::Refused(403, e) => assert_eq!(e.error.code, ErrorCode::Forbidden),
            other => panic!("{other:?}"),
        }
        let body = bytes(
            &json!({"error": {"code": "validation_failed", "message": "m", "field": "userId"}}),
        );
        match started(&eu(), 422, &body).unwrap() {
            Answer::Refused(422, e) => assert_eq!(e.error.field.as_deref(), Some("userId")),
            other => panic!("{other:?}"),
        }
        // A 4xx that is not the contract's error body, or whose code has another status.
        for (status, body) in [
            (404, b"not found".to_vec()),
            (404, bytes(&json!({"error": "nope"}))),
            (
                404,
                bytes(&json!({"error": {"code": "teapot", "message": "x"}})),
            ),
            (
                400,
                bytes(&json!({"error": {"code": "not_found", "message": "x"}})),
            ),
        ] {
            assert!(game(&eu(), status, &body, &id()).is_err(), "{status}");
        }
        assert!(game(&eu(), 302, b"{}", &id()).is_err());
    }

    #[test]
    fn exits_without_ok_still_count_as_committed() {
        let old = json!({"gameId": ID, "userId": "u", "exitedAt": 5, "status": "exited"});
        match exited(&eu(), 200, &bytes(&old), &id()).unwrap() {
            Answer::Ok(200, v) => assert!(v.ok),
            other => panic!("{other:?}"),
        }
        let mut new = old.clone();
        new["ok"] = json!(true);
        assert!(matches!(
            exited(&eu(), 200, &bytes(&new), &id()),
            Ok(Answer::Ok(..))
        ));
        let mut refused = old.clone();
        refused["ok"] = json!(false);
        assert!(exited(&eu(), 200, &bytes(&refused), &id()).is_err());
        let mut active = old;
        active["status"] = json!("active");
        assert!(exited(&eu(), 200, &bytes(&active), &id()).is_err());
        assert!(exited(&eu(), 200, b"[]", &id()).is_err());
    }

    #[test]
    fn states_are_state_views() {
        let body = bytes(&json!({"gameId": ID, "at": 5, "phase": "countdown", "msUntilStart": 7}));
        assert!(matches!(
            state(&eu(), 200, &body, &id()),
            Ok(Answer::Ok(200, _))
        ));
        let body = bytes(&json!({"gameId": ID, "at": 5, "phase": "paused"}));
        assert!(state(&eu(), 200, &body, &id()).is_err());
    }
}
