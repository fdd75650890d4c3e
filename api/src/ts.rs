//! The page's TypeScript view of the contract.
//!
//! `frontend/src/api/generated/contract.ts` is rendered here from the Rust types (ts-rs), so the
//! page compiles against exactly the shapes the servers answer. The test fails when the
//! committed file differs from what the types render; `UPDATE_CONTRACT=1 cargo test -p api ts`
//! rewrites it (commit the result with the Rust change).

use std::fmt::Write as _;
use std::path::PathBuf;

use ts_rs::{Config, TS};

use crate::error::{ErrorBody, ErrorCode, ErrorDetail};
use crate::game::{
    EdgeExitView, EdgeGameView, ExitRequest, ExitView, GameStatus, GameView, Phase, ReplayView,
    RoutedBy, StartRequest, StateView, TickView,
};
use crate::ids::{
    BreakEvery, GameId, IdempotencyKey, MaxPlayers, Metadata, RegionName, TickMs, UserId,
};
use crate::limits;
use crate::regions::{
    DrainView, LegacyRegion, LegacyRegionList, RegionList, RegionLoad, RegionRecord, RegionStatus,
    RegisterRequest,
};
use crate::room::{
    ClientMessage, ClientPing, ExitCommand, ExitSource, Exited, ExitedNotice, Hello,
    LatencyWarning, LiveError, LiveRole, Member, MemberEvent, Pong, Presence, SeatExit, SeatJoin,
    ServerMessage, Welcome,
};
use crate::sealed::{RoundKey, RoundsView};
use crate::seats::{
    EdgeJoinView, JoinRequest, JoinView, ResultsView, SeatResult, SeatView, SharedGame,
};
use crate::tournament::{
    CreateTournamentRequest, RoundState, RoundView, StandingEntry, StandingsView, TournamentView,
};
use crate::v1::{
    CreateSessionRequest, SessionId, SessionPhase, SessionStateView, SessionStatus, SessionView,
    StopView, Timestamp, V1ErrorBody,
};
use shared_engine::Algorithm;

/// The command that regenerates the file, quoted in its header and in the drift message.
const UPDATE_COMMAND: &str = "UPDATE_CONTRACT=1 cargo test -p api ts";

fn contract_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../frontend/src/api/generated/contract.ts")
}

/// Appends `export type T = ...;` with T's doc comment, as ts-rs would write it to a file of
/// its own (all types share one file here, so there are no imports to write).
fn declare<T: TS + ?Sized>(cfg: &Config, out: &mut String) {
    out.push('\n');
    if let Some(docs) = T::docs() {
        out.push_str(&docs);
    }
    out.push_str("export ");
    out.push_str(&T::decl(cfg));
    out.push('\n');
}

/// A JSON string literal (names are ASCII, but quote properly anyway).
fn quoted(text: &str) -> String {
    serde_json::Value::from(text).to_string()
}

/// The whole file.
fn render() -> String {
    // Every 64-bit field carries `ts(type = "number")` (JSON numbers reach the page as numbers);
    // ts-rs's default `bigint` would be a lie, so a field that forgets the override is caught by
    // the check in the test below rather than silently typed `bigint`.
    let cfg = Config::new();
    let mut out = String::new();
    out.push_str(&format!(
        "// GENERATED FILE, do not edit. Rendered from the Rust types of the `api` crate\n\
         // (api/src/ts.rs) by `{UPDATE_COMMAND}`; change the Rust types and rerun it.\n"
    ));

    out.push_str("\n/** A break algorithm's wire name (`shared_engine::Algorithm::ALL`). */\n");
    let names: Vec<String> = Algorithm::ALL.iter().map(|a| quoted(a.as_str())).collect();
    let _ = writeln!(out, "export type Algorithm = {};", names.join(" | "));
    out.push_str("\n/** Every algorithm the engine knows, in its order. */\n");
    let _ = writeln!(
        out,
        "export const ALGORITHMS: readonly Algorithm[] = [{}];",
        names.join(", ")
    );

    out.push_str(
        "\n/** A game's algorithm: a seeded one, or `sealed-v1` (`api::GameAlgorithm`). */\n",
    );
    let _ = writeln!(
        out,
        "export type GameAlgorithm = Algorithm | {};",
        quoted(shared_engine::sealed::SEALED_V1)
    );

    out.push_str("\n/** The HTTP status of every error code (`ErrorCode::status`). */\n");
    out.push_str("export const ERROR_STATUS: { readonly [C in ErrorCode]: number } = {\n");
    for code in ErrorCode::ALL {
        let _ = writeln!(out, "  {}: {},", code.as_str(), code.status());
    }
    out.push_str("};\n");

    out.push_str("\n/** The bounds the servers enforce (`api::limits`). */\n");
    out.push_str("export const LIMITS = {\n");
    for (name, value) in [
        ("maxBodyBytes", limits::MAX_BODY_BYTES as i64),
        ("maxUserIdLen", limits::MAX_USER_ID_LEN as i64),
        ("maxRegionLen", limits::MAX_REGION_LEN as i64),
        (
            "maxIdempotencyKeyLen",
            limits::MAX_IDEMPOTENCY_KEY_LEN as i64,
        ),
        ("minTickMs", i64::from(limits::MIN_TICK_MS)),
        ("maxTickMs", i64::from(limits::MAX_TICK_MS)),
        ("minBreakEvery", i64::from(limits::MIN_BREAK_EVERY)),
        ("maxBreakEvery", i64::from(limits::MAX_BREAK_EVERY)),
        ("maxMetadataBytes", limits::MAX_METADATA_BYTES as i64),
        ("maxReplaySteps", limits::MAX_REPLAY_STEPS as i64),
        ("minAtMs", limits::MIN_AT_MS),
        ("maxAtMs", limits::MAX_AT_MS),
        (
            "maxLiveMessageBytes",
            crate::room::MAX_CLIENT_MESSAGE_BYTES as i64,
        ),
    ] {
        let _ = writeln!(out, "  {name}: {value},");
    }
    out.push_str("} as const;\n");
    out.push_str("\n/** The rule of a user id, as a regular expression (`UserId::PATTERN`). */\n");
    let _ = writeln!(
        out,
        "export const USER_ID_PATTERN = {};",
        quoted(UserId::PATTERN)
    );
    out.push_str("\n/** The rule of a region name (`RegionName::PATTERN`). */\n");
    let _ = writeln!(
        out,
        "export const REGION_NAME_PATTERN = {};",
        quoted(RegionName::PATTERN)
    );

    // Validated values (ids, bounded numbers).
    declare::<UserId>(&cfg, &mut out);
    declare::<RegionName>(&cfg, &mut out);
    declare::<GameId>(&cfg, &mut out);
    declare::<IdempotencyKey>(&cfg, &mut out);
    declare::<TickMs>(&cfg, &mut out);
    declare::<BreakEvery>(&cfg, &mut out);
    declare::<Metadata>(&cfg, &mut out);
    declare::<MaxPlayers>(&cfg, &mut out);
    // Errors of /game/* and /edge/*.
    declare::<ErrorCode>(&cfg, &mut out);
    declare::<ErrorDetail>(&cfg, &mut out);
    declare::<ErrorBody>(&cfg, &mut out);
    // /game/* and /edge/game/*.
    declare::<StartRequest>(&cfg, &mut out);
    declare::<ExitRequest>(&cfg, &mut out);
    declare::<GameStatus>(&cfg, &mut out);
    declare::<GameView>(&cfg, &mut out);
    declare::<RoutedBy>(&cfg, &mut out);
    declare::<EdgeGameView>(&cfg, &mut out);
    declare::<ExitView>(&cfg, &mut out);
    declare::<EdgeExitView>(&cfg, &mut out);
    declare::<TickView>(&cfg, &mut out);
    declare::<Phase>(&cfg, &mut out);
    declare::<StateView>(&cfg, &mut out);
    declare::<ReplayView>(&cfg, &mut out);
    declare::<SharedGame>(&cfg, &mut out);
    declare::<JoinRequest>(&cfg, &mut out);
    declare::<SeatResult>(&cfg, &mut out);
    declare::<SeatView>(&cfg, &mut out);
    declare::<JoinView>(&cfg, &mut out);
    declare::<EdgeJoinView>(&cfg, &mut out);
    declare::<ResultsView>(&cfg, &mut out);
    declare::<crate::leaderboard::Period>(&cfg, &mut out);
    declare::<crate::leaderboard::LeaderboardEntry>(&cfg, &mut out);
    declare::<crate::leaderboard::LeaderboardView>(&cfg, &mut out);
    declare::<RoundKey>(&cfg, &mut out);
    declare::<RoundsView>(&cfg, &mut out);
    // Tournaments: /tournaments/* and /edge/tournament/*.
    declare::<CreateTournamentRequest>(&cfg, &mut out);
    declare::<RoundState>(&cfg, &mut out);
    declare::<RoundView>(&cfg, &mut out);
    declare::<TournamentView>(&cfg, &mut out);
    declare::<StandingEntry>(&cfg, &mut out);
    declare::<StandingsView>(&cfg, &mut out);
    // The live region registry.
    declare::<RegionStatus>(&cfg, &mut out);
    declare::<RegionLoad>(&cfg, &mut out);
    declare::<RegionRecord>(&cfg, &mut out);
    declare::<RegionList>(&cfg, &mut out);
    declare::<DrainView>(&cfg, &mut out);
    declare::<RegisterRequest>(&cfg, &mut out);
    declare::<LegacyRegion>(&cfg, &mut out);
    declare::<LegacyRegionList>(&cfg, &mut out);
    // Live rooms: the /edge/game/{id}/live WebSocket.
    declare::<LiveRole>(&cfg, &mut out);
    declare::<Hello>(&cfg, &mut out);
    declare::<ClientPing>(&cfg, &mut out);
    declare::<ExitCommand>(&cfg, &mut out);
    declare::<ClientMessage>(&cfg, &mut out);
    declare::<Member>(&cfg, &mut out);
    declare::<Presence>(&cfg, &mut out);
    declare::<Welcome>(&cfg, &mut out);
    declare::<MemberEvent>(&cfg, &mut out);
    declare::<ExitSource>(&cfg, &mut out);
    declare::<Exited>(&cfg, &mut out);
    declare::<Pong>(&cfg, &mut out);
    declare::<LatencyWarning>(&cfg, &mut out);
    declare::<LiveError>(&cfg, &mut out);
    declare::<SeatExit>(&cfg, &mut out);
    declare::<SeatJoin>(&cfg, &mut out);
    declare::<ServerMessage>(&cfg, &mut out);
    declare::<ExitedNotice>(&cfg, &mut out);
    // The /v1 session-service dialect.
    declare::<Timestamp>(&cfg, &mut out);
    declare::<SessionId>(&cfg, &mut out);
    declare::<CreateSessionRequest>(&cfg, &mut out);
    declare::<SessionStatus>(&cfg, &mut out);
    declare::<SessionView>(&cfg, &mut out);
    declare::<SessionPhase>(&cfg, &mut out);
    declare::<SessionStateView>(&cfg, &mut out);
    declare::<StopView>(&cfg, &mut out);
    declare::<V1ErrorBody>(&cfg, &mut out);
    out
}

#[test]
fn contract_ts_is_current() {
    let rendered = render();
    assert!(
        !rendered.contains("bigint"),
        "a 64-bit field lacks #[cfg_attr(test, ts(type = \"number\"))]:\n{rendered}"
    );
    let path = contract_path();
    if std::env::var_os("UPDATE_CONTRACT").is_some_and(|v| v == "1") {
        std::fs::create_dir_all(path.parent().expect("a parent directory"))
            .expect("create frontend/src/api/generated");
        std::fs::write(&path, &rendered).expect("write contract.ts");
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    if committed != rendered {
        let first = committed
            .lines()
            .zip(rendered.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| committed.lines().count().min(rendered.lines().count()));
        panic!(
            "{} is not what the api types render (first difference at line {}:\n  committed: {:?}\n  rendered:  {:?}).\n\
             Run `{UPDATE_COMMAND}` and commit the result.",
            path.display(),
            first + 1,
            committed.lines().nth(first).unwrap_or("<end of file>"),
            rendered.lines().nth(first).unwrap_or("<end of file>"),
        );
    }
}

#[test]
fn every_algorithm_and_code_is_rendered() {
    let rendered = render();
    for algorithm in Algorithm::ALL {
        assert!(
            rendered.contains(&quoted(algorithm.as_str())),
            "{algorithm:?}"
        );
    }
    for code in ErrorCode::ALL {
        assert!(
            rendered.contains(&format!("\"{}\"", code.as_str())),
            "{code}"
        );
    }
    assert!(rendered.contains("export type EdgeGameView = "));
}
