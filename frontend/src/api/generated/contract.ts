// GENERATED FILE, do not edit. Rendered from the Rust types of the `api` crate
// (api/src/ts.rs) by `UPDATE_CONTRACT=1 cargo test -p api ts`; change the Rust types and rerun it.

/** A break algorithm's wire name (`shared_engine::Algorithm::ALL`). */
export type Algorithm = "mix32-v1" | "lcg32" | "interval-v0";

/** Every algorithm the engine knows, in its order. */
export const ALGORITHMS: readonly Algorithm[] = ["mix32-v1", "lcg32", "interval-v0"];

/** A game's algorithm: a seeded one, or `sealed-v1` (`api::GameAlgorithm`). */
export type GameAlgorithm = Algorithm | "sealed-v1";

/** The HTTP status of every error code (`ErrorCode::status`). */
export const ERROR_STATUS: { readonly [C in ErrorCode]: number } = {
  bad_request: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  method_not_allowed: 405,
  conflict: 409,
  game_full: 409,
  already_playing: 409,
  not_joinable: 409,
  join_closed: 410,
  game_ended: 410,
  payload_too_large: 413,
  unsupported_media_type: 415,
  validation_failed: 422,
  too_early: 425,
  rate_limited: 429,
  internal: 500,
  bad_gateway: 502,
  storage_unavailable: 503,
  timeout: 503,
  not_ready: 503,
  origins_unavailable: 503,
};

/** The bounds the servers enforce (`api::limits`). */
export const LIMITS = {
  maxBodyBytes: 16384,
  maxUserIdLen: 64,
  maxRegionLen: 32,
  maxIdempotencyKeyLen: 128,
  minTickMs: 1,
  maxTickMs: 60000,
  minBreakEvery: 2,
  maxBreakEvery: 1000000,
  maxMetadataBytes: 4096,
  maxReplaySteps: 10000,
  minAtMs: 0,
  maxAtMs: 253402300799999,
  maxLiveMessageBytes: 4096,
} as const;

/** The rule of a user id, as a regular expression (`UserId::PATTERN`). */
export const USER_ID_PATTERN = "^[A-Za-z0-9._:@-]{1,64}$";

/** The rule of a region name (`RegionName::PATTERN`). */
export const REGION_NAME_PATTERN = "^[a-z0-9-]{1,32}$";

/**
 * A player's id: 1 to 64 of `A-Z a-z 0-9 . _ : @ -`. Never trimmed: what the client sends is
 * the id, or it is refused.
 */
export type UserId = string;

/**
 * A region name: 1 to 32 of `a-z 0-9 -` (it appears in URLs, metrics labels and config).
 */
export type RegionName = string;

/**
 * A game id: a UUID, written in its canonical hyphenated lowercase form.
 */
export type GameId = string;

/**
 * An `Idempotency-Key` (or client `x-request-id`): 1 to 128 visible ASCII characters.
 */
export type IdempotencyKey = string;

/**
 * Milliseconds per step, `1..=60000`.
 */
export type TickMs = number;

/**
 * Break odds `1/n`, `n` in `2..=1000000`.
 */
export type BreakEvery = number;

/**
 * A client's free-form JSON object, at most 4 KiB serialized.
 */
export type Metadata = Record<string, unknown>;

/**
 * Seats of a shared game, `2..=100` (the creator's seat included).
 */
export type MaxPlayers = number;

/**
 * Every error code, with its one HTTP status ([`ErrorCode::status`]).
 */
export type ErrorCode = "bad_request" | "unauthorized" | "forbidden" | "not_found" | "method_not_allowed" | "conflict" | "game_full" | "already_playing" | "not_joinable" | "join_closed" | "game_ended" | "payload_too_large" | "unsupported_media_type" | "validation_failed" | "too_early" | "rate_limited" | "internal" | "bad_gateway" | "storage_unavailable" | "timeout" | "not_ready" | "origins_unavailable";

/**
 * The inside of an [`ErrorBody`].
 */
export type ErrorDetail = { 
/**
 * Stable machine-readable code.
 */
code: ErrorCode, 
/**
 * For people; no internals.
 */
message: string, 
/**
 * The offending input of a `validation_failed` (a JSON path like `userId` or `metadata`,
 * a query parameter, a path segment or a header name).
 */
field?: string, 
/**
 * `too_early` only: the Unix ms at which asking again may succeed.
 */
retryAt?: number, };

/**
 * The JSON body of every error of the `/game/*` and `/edge/*` APIs.
 */
export type ErrorBody = { 
/**
 * What went wrong.
 */
error: ErrorDetail, };

/**
 * `POST /game/start` and `POST /edge/game/start`.
 */
export type StartRequest = { 
/**
 * The player.
 */
userId: UserId, 
/**
 * The region the client would like (edge routing; origins accept and ignore it).
 */
preferredRegion?: RegionName, 
/**
 * Break algorithm (default `mix32-v1`; `sealed-v1` for breaks nobody can compute ahead).
 */
algorithm?: GameAlgorithm, 
/**
 * Milliseconds per step (default: the region's `TICK_MS`).
 */
tickMs?: TickMs, 
/**
 * Break odds `1/n` (default: the region's `BREAK_EVERY`).
 */
breakEvery?: BreakEvery, 
/**
 * Free-form JSON object, at most 4 KiB.
 */
metadata?: Metadata, 
/**
 * Creates a shared game with this many seats (the creator's included, `2..=100`): others
 * join it with `POST /game/{id}/join` (see [`crate::seats`]).
 */
maxPlayers?: MaxPlayers, 
/**
 * Shared games: Unix ms from which joins are refused (default: `startAt`, the end of the
 * countdown); after the server's clock, at most an hour after `startAt`.
 */
joinDeadline?: number, };

/**
 * `POST /game/exit` and `POST /edge/game/exit`.
 */
export type ExitRequest = { 
/**
 * The game.
 */
gameId: GameId, 
/**
 * Its player.
 */
userId: UserId, 
/**
 * Where the game lives, if the client knows (edge routing; origins ignore it).
 */
backendRegion?: RegionName, };

/**
 * Whether a game still runs.
 */
export type GameStatus = "active" | "exited";

/**
 * A game as the API shows it: everything a client needs to compute its timeline.
 */
export type GameView = { 
/**
 * Its id.
 */
gameId: GameId, 
/**
 * The player who started it.
 */
userId: UserId, 
/**
 * The region whose origin created it.
 */
region: RegionName, 
/**
 * Engine seed (from the OS CSPRNG).
 */
seed: number, 
/**
 * Unix ms of step 0.
 */
startAt: number, 
/**
 * Milliseconds per step.
 */
tickMs: number, 
/**
 * Break odds `1/n`.
 */
breakEvery: number, 
/**
 * Break algorithm.
 */
algorithm: GameAlgorithm, 
/**
 * Active or exited.
 */
status: GameStatus, 
/**
 * Unix ms of creation.
 */
createdAt: number, 
/**
 * Unix ms of the exit, once exited.
 */
exitedAt?: number, 
/**
 * The client's metadata, if it sent any.
 */
metadata?: Metadata, 
/**
 * Shared games only: their seats and join deadline.
 */
shared?: SharedGame, 
/**
 * Starts only, and only to the request that created the game or one carrying the
 * `Idempotency-Key` that did: the credential its exit needs (`Authorization: Bearer`).
 * Reads never carry it.
 */
ownerToken?: string, 
/**
 * `sealed-v1` only: the head of the game's hash chain (64 hex digits), from the start.
 */
commitment?: string, 
/**
 * `sealed-v1` only: the number of rounds of the chain (`shared_engine::sealed::chain_rounds`).
 */
rounds?: number, 
/**
 * `sealed-v1` only, and only once the game has ended: the chain's secret root, from which
 * every key follows (`replay --verify` checks it against the commitment).
 */
root?: string, };

/**
 * Why the edge sent a start to the region it did.
 */
export type RoutedBy = "preference" | "header" | "geo" | "latency" | "load" | "default" | "failover";

/**
 * A game as the edge answers it: the origin's view plus where it was served from.
 */
export type EdgeGameView = { 
/**
 * The region whose origin holds the game (its home region).
 */
backendRegion: RegionName, 
/**
 * Starts only: why that region was chosen.
 */
routedBy?: RoutedBy, 
/**
 * Its id.
 */
gameId: GameId, 
/**
 * The player who started it.
 */
userId: UserId, 
/**
 * The region whose origin created it.
 */
region: RegionName, 
/**
 * Engine seed (from the OS CSPRNG).
 */
seed: number, 
/**
 * Unix ms of step 0.
 */
startAt: number, 
/**
 * Milliseconds per step.
 */
tickMs: number, 
/**
 * Break odds `1/n`.
 */
breakEvery: number, 
/**
 * Break algorithm.
 */
algorithm: GameAlgorithm, 
/**
 * Active or exited.
 */
status: GameStatus, 
/**
 * Unix ms of creation.
 */
createdAt: number, 
/**
 * Unix ms of the exit, once exited.
 */
exitedAt?: number, 
/**
 * The client's metadata, if it sent any.
 */
metadata?: Metadata, 
/**
 * Shared games only: their seats and join deadline.
 */
shared?: SharedGame, 
/**
 * Starts only, and only to the request that created the game or one carrying the
 * `Idempotency-Key` that did: the credential its exit needs (`Authorization: Bearer`).
 * Reads never carry it.
 */
ownerToken?: string, 
/**
 * `sealed-v1` only: the head of the game's hash chain (64 hex digits), from the start.
 */
commitment?: string, 
/**
 * `sealed-v1` only: the number of rounds of the chain (`shared_engine::sealed::chain_rounds`).
 */
rounds?: number, 
/**
 * `sealed-v1` only, and only once the game has ended: the chain's secret root, from which
 * every key follows (`replay --verify` checks it against the commitment).
 */
root?: string, };

/**
 * The answer to an exit (also to a repeated one, with the first exit's time).
 */
export type ExitView = { 
/**
 * Always `true`: the exit is committed (the architecture document's `{"ok": true}`).
 */
ok: boolean, 
/**
 * The game.
 */
gameId: GameId, 
/**
 * Its player.
 */
userId: UserId, 
/**
 * Unix ms of the first exit.
 */
exitedAt: number, 
/**
 * Always `exited`.
 */
status: GameStatus, 
/**
 * Shared games: the seat's result, frozen at `exitedAt` (the game itself ends when its
 * last seat exits).
 */
result?: SeatResult, };

/**
 * An exit as the edge answers it.
 */
export type EdgeExitView = { 
/**
 * The region whose origin exited it.
 */
backendRegion: RegionName, 
/**
 * Always `true`: the exit is committed (the architecture document's `{"ok": true}`).
 */
ok: boolean, 
/**
 * The game.
 */
gameId: GameId, 
/**
 * Its player.
 */
userId: UserId, 
/**
 * Unix ms of the first exit.
 */
exitedAt: number, 
/**
 * Always `exited`.
 */
status: GameStatus, 
/**
 * Shared games: the seat's result, frozen at `exitedAt` (the game itself ends when its
 * last seat exits).
 */
result?: SeatResult, };

/**
 * One step of a timeline.
 */
export type TickView = { 
/**
 * Step index, 0 at `startAt`.
 */
step: number, 
/**
 * Steps since the last break (0 at a break).
 */
value: number, 
/**
 * Breaks in `[0, step]`.
 */
round: number, 
/**
 * Whether this step broke.
 */
broken: boolean, };

/**
 * Where a game is at an instant, tagged by `phase`.
 */
export type Phase = { "phase": "countdown", 
/**
 * Milliseconds until step 0 (at least 1).
 */
msUntilStart: number, } | { "phase": "running", 
/**
 * Step index.
 */
step: number, 
/**
 * Steps since the last break.
 */
value: number, 
/**
 * Breaks so far.
 */
round: number, 
/**
 * Whether this step broke.
 */
broken: boolean, } | { "phase": "ended", 
/**
 * Step index.
 */
step?: number, 
/**
 * Steps since the last break.
 */
value?: number, 
/**
 * Breaks so far.
 */
round?: number, 
/**
 * Whether that step broke.
 */
broken?: boolean, };

/**
 * `GET /game/{id}/state?at=`: the engine's state of a game at an instant.
 */
export type StateView = { 
/**
 * The game.
 */
gameId: GameId, 
/**
 * The instant, Unix ms.
 */
at: number, } & ({ "phase": "countdown", 
/**
 * Milliseconds until step 0 (at least 1).
 */
msUntilStart: number, } | { "phase": "running", 
/**
 * Step index.
 */
step: number, 
/**
 * Steps since the last break.
 */
value: number, 
/**
 * Breaks so far.
 */
round: number, 
/**
 * Whether this step broke.
 */
broken: boolean, } | { "phase": "ended", 
/**
 * Step index.
 */
step?: number, 
/**
 * Steps since the last break.
 */
value?: number, 
/**
 * Breaks so far.
 */
round?: number, 
/**
 * Whether that step broke.
 */
broken?: boolean, });

/**
 * `GET /game/{id}/replay?from=&to=`: a piece of the timeline.
 */
export type ReplayView = { 
/**
 * The game.
 */
gameId: GameId, 
/**
 * First step asked for.
 */
from: number, 
/**
 * Last step asked for (inclusive).
 */
to: number, 
/**
 * The steps (fewer than asked if the game exited before `to`).
 */
ticks: Array<TickView>, };

/**
 * What makes a game shared: its seats and until when it takes players.
 */
export type SharedGame = { 
/**
 * Seats, the creator's included.
 */
maxPlayers: number, 
/**
 * Unix ms from which joins are refused (`join_closed`).
 */
joinDeadline: number, };

/**
 * `POST /game/{id}/join` and `POST /edge/game/{id}/join`.
 */
export type JoinRequest = { 
/**
 * The joining player.
 */
userId: UserId, 
/**
 * Where the game lives, if the client knows (edge routing; origins ignore it).
 */
backendRegion?: RegionName, };

/**
 * One player's result: the engine's state at the instant their exit was committed.
 */
export type SeatResult = { 
/**
 * Unix ms of the exit, by the server's clock.
 */
exitedAt: number, 
/**
 * The step the player's game froze at (the last step that began before the exit);
 * absent if they exited during the countdown.
 */
final?: TickView, 
/**
 * Whether a break came before the exit (at least one break in `[0, final.step]`).
 */
breakFirst: boolean, };

/**
 * A seat of a shared game.
 */
export type SeatView = { 
/**
 * `0` is the creator's; joiners get `1..maxPlayers`.
 */
seat: number, 
/**
 * Its player.
 */
userId: UserId, 
/**
 * Unix ms the seat was taken.
 */
joinedAt: number, 
/**
 * The player's result, once they exited.
 */
result?: SeatResult, };

/**
 * The answer to a join (201 for a new seat, 200 for the user's seat found again).
 */
export type JoinView = { 
/**
 * The game (everything a client needs to compute its timeline).
 */
game: GameView, 
/**
 * Only to the request that took the seat, or one carrying the `Idempotency-Key` that
 * did: the credential that exits this seat and no other (`Authorization: Bearer`).
 */
ownerToken?: string, 
/**
 * `0` is the creator's; joiners get `1..maxPlayers`.
 */
seat: number, 
/**
 * Its player.
 */
userId: UserId, 
/**
 * Unix ms the seat was taken.
 */
joinedAt: number, 
/**
 * The player's result, once they exited.
 */
result?: SeatResult, };

/**
 * A join as the edge answers it.
 */
export type EdgeJoinView = { 
/**
 * The region whose origin seated the player.
 */
backendRegion: RegionName, 
/**
 * The game (everything a client needs to compute its timeline).
 */
game: GameView, 
/**
 * Only to the request that took the seat, or one carrying the `Idempotency-Key` that
 * did: the credential that exits this seat and no other (`Authorization: Bearer`).
 */
ownerToken?: string, 
/**
 * `0` is the creator's; joiners get `1..maxPlayers`.
 */
seat: number, 
/**
 * Its player.
 */
userId: UserId, 
/**
 * Unix ms the seat was taken.
 */
joinedAt: number, 
/**
 * The player's result, once they exited.
 */
result?: SeatResult, };

/**
 * `GET /game/{id}/results`: every seat of a game and its result.
 */
export type ResultsView = { 
/**
 * The game.
 */
gameId: GameId, 
/**
 * `exited` once every seat exited (or the game reached its maximum age): the results
 * are final and may be cached.
 */
status: GameStatus, 
/**
 * Seats, the creator's included (absent for a one-player game).
 */
maxPlayers?: number, 
/**
 * Every taken seat, by seat number.
 */
seats: Array<SeatView>, };

/**
 * Which games count.
 */
export type Period = "day" | "all";

/**
 * One player's line.
 */
export type LeaderboardEntry = { 
/**
 * 1 for the best.
 */
rank: number, 
/**
 * The player.
 */
userId: UserId, 
/**
 * The highest `final.value` of their exits (absent if every exit was in a countdown).
 */
bestValue?: number, 
/**
 * Games played (exits counted).
 */
games: number, };

/**
 * `GET /leaderboard`.
 */
export type LeaderboardView = { 
/**
 * The period.
 */
period: Period, 
/**
 * `period=day`: the day (UTC).
 */
day?: string, 
/**
 * The algorithm.
 */
algorithm: GameAlgorithm, 
/**
 * Best first, at most `limit`.
 */
entries: Array<LeaderboardEntry>, };

/**
 * One revealed round: its key, 64 lowercase hex digits (`H(key)` is the previous round's key,
 * the commitment for round 1).
 */
export type RoundKey = { 
/**
 * The round, from 1.
 */
round: number, 
/**
 * Its key.
 */
key: string, };

/**
 * `GET /game/{id}/rounds?from=R`: the revealed keys from round `R` on (at most
 * [`MAX_ROUNDS_PAGE`]).
 */
export type RoundsView = { 
/**
 * The game.
 */
gameId: GameId, 
/**
 * The chain's head, as in the game's view.
 */
commitment: string, 
/**
 * The first round asked for.
 */
from: number, 
/**
 * The public keys of rounds `from ..`, in order: at most [`MAX_ROUNDS_PAGE`] (a full page
 * may have more after it: ask again from the round after its last). A full page, and any
 * page of an ended game, never changes.
 */
rounds: Array<RoundKey>, };

/**
 * `POST /admin/tournaments`.
 */
export type CreateTournamentRequest = { 
/**
 * Shown to players: 1 to 100 characters, not only spaces.
 */
name: string, 
/**
 * Rounds, `1..=100`.
 */
rounds: number, 
/**
 * Unix ms of round 0's first step: in the future, at most 7 days ahead.
 */
firstStartAt: number, 
/**
 * Milliseconds between two rounds' starts, each round's length: `2000..=86400000`.
 */
intervalMs: number, 
/**
 * Every table's tick, else the region default.
 */
tickMs?: TickMs, 
/**
 * Every table's break odds, else the region default.
 */
breakEvery?: BreakEvery, 
/**
 * Every table's algorithm, else `sealed-v1` (whatever the region default: a seeded one
 * makes every round predictable to a seated player).
 */
algorithm?: GameAlgorithm, 
/**
 * Seats of each table, `2..=100`.
 */
seatsPerTable: MaxPlayers, };

/**
 * Where a round stands at an instant.
 */
export type RoundState = "upcoming" | "open" | "playing" | "finished";

/**
 * One round of the schedule.
 */
export type RoundView = { 
/**
 * Its index, from 0.
 */
round: number, 
/**
 * Unix ms from which joins are taken (one interval before the start).
 */
joinsOpenAt: number, 
/**
 * Unix ms of its tables' step 0; joins close then.
 */
startAt: number, 
/**
 * Unix ms of its end (the next round's start): a seat not exited by then scores the
 * engine's value at this instant.
 */
endAt: number, 
/**
 * At the answer's `asOf`.
 */
state: RoundState, };

/**
 * `GET /tournaments/{id}` and `GET /edge/tournament/{id}`: the schedule (never a seed).
 */
export type TournamentView = { 
/**
 * Its id.
 */
tournamentId: GameId, 
/**
 * Its name.
 */
name: string, 
/**
 * Round count.
 */
rounds: number, 
/**
 * Unix ms of round 0's start.
 */
firstStartAt: number, 
/**
 * Between two rounds' starts (each round's length).
 */
intervalMs: number, 
/**
 * Every table's tick.
 */
tickMs: number, 
/**
 * Every table's break odds.
 */
breakEvery: number, 
/**
 * Every table's algorithm.
 */
algorithm: GameAlgorithm, 
/**
 * Seats per table.
 */
seatsPerTable: number, 
/**
 * Tables per round at most.
 */
maxTables: number, 
/**
 * Unix ms of its creation.
 */
createdAt: number, 
/**
 * Unix ms the `state`s are given at.
 */
asOf: number, 
/**
 * Every round.
 */
schedule: Array<RoundView>, };

/**
 * One player's line of the standings.
 */
export type StandingEntry = { 
/**
 * 1 + the number of players with a larger total (ties share a rank).
 */
rank: number, 
/**
 * The player.
 */
userId: UserId, 
/**
 * The sum of their round scores.
 */
total: number, 
/**
 * Rounds that counted for them: exited, or over.
 */
roundsPlayed: number, };

/**
 * `GET /tournaments/{id}/standings` and `GET /edge/tournament/{id}/standings`.
 */
export type StandingsView = { 
/**
 * The tournament.
 */
tournamentId: GameId, 
/**
 * Unix ms the standings are computed at.
 */
asOf: number, 
/**
 * Rounds whose scores are final (over).
 */
roundsFinished: number, 
/**
 * Players with at least one counted round.
 */
players: number, 
/**
 * Best first, at most [`MAX_STANDINGS`]: by total, then fewer rounds, then user id.
 */
entries: Array<StandingEntry>, };

/**
 * Whether a region takes new games.
 */
export type RegionStatus = "active" | "draining";

/**
 * The load an origin reports with each heartbeat.
 */
export type RegionLoad = { 
/**
 * Requests being served at the heartbeat.
 */
inFlight: number, 
/**
 * p99 request latency over the last interval, ms (0 without requests).
 */
p99Ms: number, 
/**
 * Games started per second over the last interval.
 */
startsPerSec: number, };

/**
 * One live region, as `GET /regions` lists it.
 */
export type RegionRecord = { 
/**
 * The region.
 */
name: RegionName, 
/**
 * Its origin's public base URL (`PUBLIC_URL`).
 */
url: string, 
/**
 * The origin's version.
 */
version: string, 
/**
 * Active or draining.
 */
status: RegionStatus, 
/**
 * What it reported at its last heartbeat.
 */
load: RegionLoad, 
/**
 * Unix ms of its last heartbeat.
 */
heartbeatAt: number, 
/**
 * Seconds until the record expires unless another heartbeat comes.
 */
ttlSeconds: number, 
/**
 * The origin's `REGISTRY_SECRET` signature of `(name, url, version, expiresAt)` (see the
 * `trust` crate); absent when the origins run without one (development). The edge and the
 * origins use a record only if it verifies.
 */
signature?: string, 
/**
 * Unix ms after which the signature is void (the heartbeat's expiry).
 */
expiresAt?: number, };

/**
 * `GET /regions`: the live regions (expired ones are gone), by name.
 */
export type RegionList = { 
/**
 * The region of the origin that answered.
 */
servedBy: RegionName, 
/**
 * Unix ms at the answering origin.
 */
now: number, 
/**
 * Live regions, by name.
 */
regions: Array<RegionRecord>, };

/**
 * `POST /regions/{name}/drain` and `/undrain`: the region's new status.
 */
export type DrainView = { 
/**
 * The region.
 */
region: RegionName, 
/**
 * Its status now.
 */
status: RegionStatus, };

/**
 * `POST /api/regions/register`, in the architecture document's shape (snake_case).
 */
export type RegisterRequest = { 
/**
 * The region.
 */
region: RegionName, 
/**
 * Its origin's base URL (http or https).
 */
base_url: string, };

/**
 * One region in the architecture document's shape.
 */
export type LegacyRegion = { 
/**
 * The region.
 */
region: RegionName, 
/**
 * Its origin's base URL.
 */
base_url: string, 
/**
 * Active or draining.
 */
status: RegionStatus, 
/**
 * Unix ms of its last heartbeat or registration.
 */
last_seen: number, };

/**
 * `GET /api/regions` (and the answer to a registration): the live regions in the
 * architecture document's shape.
 */
export type LegacyRegionList = { 
/**
 * Live regions, by name.
 */
regions: Array<LegacyRegion>, };

/**
 * What a connection is in a room.
 */
export type LiveRole = "player" | "viewer";

/**
 * A client's first message: who it is.
 */
export type Hello = { 
/**
 * Player or viewer.
 */
role: LiveRole, 
/**
 * The player's user id (optional: the owner token names the player; if sent, it must match).
 */
userId?: UserId, 
/**
 * The owner's proof, required for role `player`: the game's owner token (what the start
 * answered as `ownerToken`). Verified by the room exactly as the origin verifies an exit's.
 */
ownerToken?: string, 
/**
 * A shared game: the seat the player means to play (optional: the token names the player,
 * who holds one seat; if sent, it must be that seat).
 */
seat?: number, };

/**
 * A client's clock probe, answered by a [`Pong`]. Also reports the client's last measured
 * round trip and jitter, so the room can warn about a poor connection.
 */
export type ClientPing = { 
/**
 * The client's clock when it sent this, ms (echoed back).
 */
clientTime: number, 
/**
 * The client's last round-trip time on this socket, ms.
 */
rttMs?: number, 
/**
 * The client's round-trip jitter on this socket, ms.
 */
jitterMs?: number, };

/**
 * A client asks to end the game (the player only).
 */
export type ExitCommand = { 
/**
 * The owner's proof (see [`Hello::owner_token`]); the `hello`'s proof is used if absent.
 */
ownerToken?: string, };

/**
 * What a client sends.
 */
export type ClientMessage = { "type": "hello" } & Hello | { "type": "ping" } & ClientPing | { "type": "exit" } & ExitCommand;

/**
 * One connection in a room, as others see it.
 */
export type Member = { 
/**
 * The connection (stable across hibernation, new on reconnect).
 */
connId: string, 
/**
 * Player or viewer.
 */
role: LiveRole, 
/**
 * A player's user id (never shown for viewers).
 */
userId?: UserId, 
/**
 * A shared game's player: the seat its token proved (`0` is the creator's).
 */
seat?: number, 
/**
 * The connection's last reported round trip, ms.
 */
rttMs?: number, };

/**
 * Who is in a room: the players' connections, and how many viewers.
 */
export type Presence = { 
/**
 * The players' connections (one per open page of a player), by seat, then by arrival.
 */
players: Array<Member>, 
/**
 * Connections watching.
 */
viewers: number, };

/**
 * The answer to a `hello`: the connection, the game's status and who is there, at once (also
 * after a reconnect).
 */
export type Welcome = { 
/**
 * This connection's id.
 */
connId: string, 
/**
 * The role granted.
 */
role: LiveRole, 
/**
 * The game.
 */
gameId: GameId, 
/**
 * Active or exited.
 */
status: GameStatus, 
/**
 * Unix ms of the exit, once exited.
 */
exitedAt?: number, 
/**
 * The server's clock, Unix ms.
 */
serverTime: number, 
/**
 * Who is there (this connection included).
 */
presence: Presence, };

/**
 * Someone joined or left, with the presence after it.
 */
export type MemberEvent = { 
/**
 * Who.
 */
member: Member, 
/**
 * Who is there now.
 */
presence: Presence, };

/**
 * Which path an exit reached the room by.
 */
export type ExitSource = "edge" | "origin" | "socket" | "load";

/**
 * The game ended: freeze at the engine's last step before `exitedAt`.
 */
export type Exited = { 
/**
 * The game.
 */
gameId: GameId, 
/**
 * Unix ms of the committed exit.
 */
exitedAt: number, 
/**
 * How the room learned it.
 */
source: ExitSource, };

/**
 * The answer to a [`ClientPing`]: NTP-style timestamps. With the client's receive time `t3`:
 * round trip `(t3 - clientTime) - (serverSent - serverReceived)`, clock offset (server minus
 * client) `((serverReceived - clientTime) + (serverSent - t3)) / 2`, within ± round trip / 2.
 */
export type Pong = { 
/**
 * The ping's `clientTime`, echoed.
 */
clientTime: number, 
/**
 * Server clock when the ping arrived, Unix ms.
 */
serverReceived: number, 
/**
 * Server clock when this pong left, Unix ms.
 */
serverSent: number, };

/**
 * A connection's latency passed a threshold (a report only; nothing is cut off).
 */
export type LatencyWarning = { 
/**
 * `rtt` or `jitter`.
 */
metric: string, 
/**
 * The reported value, ms.
 */
valueMs: number, 
/**
 * The configured threshold, ms.
 */
thresholdMs: number, 
/**
 * For people.
 */
message: string, };

/**
 * A refused message; the socket stays open.
 */
export type LiveError = { 
/**
 * The contract's error detail (same codes as HTTP).
 */
error: ErrorDetail, };

/**
 * One seat of a shared game exited: `{"type":"seat","seat":N,"userId":"…","result":{…}}`,
 * pushed to every socket the moment the origin committed it (the same result
 * `GET /edge/game/{id}/results` lists for that seat). The game goes on for the other seats;
 * its `exited` follows when the last seat exits. Only the origin's authenticated notice
 * causes this push; a client cannot send it.
 */
export type SeatExit = { 
/**
 * The seat's number (`0` is the creator's).
 */
seat: number, 
/**
 * Its player.
 */
userId: UserId, 
/**
 * The committed result.
 */
result: SeatResult, };

/**
 * A seat of a shared game was taken: `{"type":"seated","seat":N,"userId":"…","joinedAt":MS}`,
 * pushed to every socket the moment the origin committed the join (the same seat
 * `GET /edge/game/{id}/results` lists), and to a socket that says `hello` later, right after its
 * `welcome` (every join so far, in push order, before any `seat` result). The creator's seat 0
 * is never pushed: it is the game's. Only the origin's authenticated notice causes this push.
 */
export type SeatJoin = { 
/**
 * The seat's number (`1..maxPlayers`).
 */
seat: number, 
/**
 * Its player.
 */
userId: UserId, 
/**
 * Unix ms the seat was taken (the seat's owner token is issued at this instant).
 */
joinedAt: number, };

/**
 * What the room sends.
 */
export type ServerMessage = { "type": "welcome" } & Welcome | { "type": "presence" } & Presence | { "type": "joined" } & MemberEvent | { "type": "left" } & MemberEvent | { "type": "exited" } & Exited | { "type": "pong" } & Pong | { "type": "warning" } & LatencyWarning | { "type": "error" } & LiveError | { "type": "round" } & RoundKey | { "type": "seat" } & SeatExit | { "type": "seated" } & SeatJoin;

/**
 * The body of `POST /edge/internal/game/{id}/exited` (origin → edge): the game's exit, or,
 * with `seat`, one seat's exit of a shared game (the room pushes `seat` and the game goes on).
 */
export type ExitedNotice = { 
/**
 * Unix ms of the committed exit (the seat's, for a seat notice).
 */
exitedAt: number, 
/**
 * A seat's exit: pushed as `{"type":"seat",…}`; the game does not end.
 */
seat?: SeatExit, };

/**
 * An instant on the wire: RFC 3339 text, held as Unix milliseconds.
 */
export type Timestamp = string;

/**
 * A session id: `sess_<gameId>`. A bare game id is accepted too.
 */
export type SessionId = string;

/**
 * `POST /v1/sessions`.
 */
export type CreateSessionRequest = { 
/**
 * Milliseconds per step (required, `1..=60000`).
 */
tick_ms: TickMs, 
/**
 * When step 0 begins (default: now + the region's start delay); see the origin's bounds.
 */
start_at?: Timestamp, 
/**
 * The player (default: an anonymous user of the session's own).
 */
user_id?: UserId, 
/**
 * Break algorithm (default `interval-v0`, the session service's own engine).
 */
algorithm?: Algorithm, 
/**
 * Break odds for `mix32-v1`/`lcg32` (ignored by `interval-v0`).
 */
break_every?: BreakEvery, 
/**
 * Free-form JSON object, at most 4 KiB.
 */
metadata?: Metadata, };

/**
 * A session's status.
 */
export type SessionStatus = "running" | "stopped";

/**
 * A session.
 */
export type SessionView = { 
/**
 * `sess_<gameId>`.
 */
id: SessionId, 
/**
 * The engine seed as a decimal integer string (`0..=4294967295`, a valid int64).
 */
seed: string, 
/**
 * When step 0 begins.
 */
start_at: Timestamp, 
/**
 * Milliseconds per step.
 */
tick_ms: number, 
/**
 * Running or stopped.
 */
status: SessionStatus, 
/**
 * The player.
 */
user_id: UserId, 
/**
 * Break odds (used by `mix32-v1` and `lcg32`).
 */
break_every: number, 
/**
 * Break algorithm.
 */
algorithm: Algorithm, 
/**
 * The region whose origin created it.
 */
region: RegionName, 
/**
 * When it was created.
 */
created_at: Timestamp, 
/**
 * The client's metadata; absent if it sent none.
 */
metadata?: Metadata, 
/**
 * When it was stopped, once stopped.
 */
stopped_at?: Timestamp, 
/**
 * Creates only (as `ownerToken` of the game API): the credential a stop needs
 * (`Authorization: Bearer`).
 */
owner_token?: string, };

/**
 * The phase of a session's state.
 */
export type SessionPhase = "countdown" | "running" | "ended";

/**
 * `GET /v1/sessions/{id}/state`: always integers and a boolean, as the document's clients
 * expect (zeros and `false` before the start).
 */
export type SessionStateView = { 
/**
 * `sess_<gameId>`.
 */
id: SessionId, 
/**
 * Step index (0 before the start).
 */
step: number, 
/**
 * Steps since the last break.
 */
value: number, 
/**
 * Breaks so far.
 */
round: number, 
/**
 * Whether this step broke.
 */
broken: boolean, 
/**
 * The instant computed for.
 */
computed_at: Timestamp, 
/**
 * Countdown, running or ended.
 */
phase: SessionPhase, 
/**
 * Countdown only: milliseconds until step 0.
 */
ms_until_start?: number, };

/**
 * `POST /v1/sessions/{id}/stop`.
 */
export type StopView = { 
/**
 * Always `true`.
 */
ok: boolean, 
/**
 * `sess_<gameId>`.
 */
id: SessionId, 
/**
 * Always `stopped`.
 */
status: SessionStatus, 
/**
 * When it was stopped.
 */
stopped_at: Timestamp, };

/**
 * The dialect's error body: `{"error": "<message>", "message": "<detail>"}`.
 */
export type V1ErrorBody = { 
/**
 * A short message (`"session not found"`, `"invalid request body"`, ...).
 */
error: string, 
/**
 * The detail.
 */
message: string, };
