/**
 * The edge Worker's HTTP API (`/edge/*`), as the page uses it. Every request has a timeout and
 * every failure becomes an {@link EdgeError} whose `message` is fit to show to a person.
 */

import {
  ALGORITHMS,
  type EdgeExitView,
  type EdgeGameView,
  type ErrorCode,
  type ExitRequest,
  type GameAlgorithm,
  type GameStatus,
  type JoinRequest,
  type RoundKey,
  type ResultsView,
  type RoundState,
  type RoundsView,
  type RoundView,
  type RoutedBy,
  type SeatResult,
  type StandingEntry,
  type StandingsView,
  type StartRequest,
  type TournamentView,
} from './generated/contract';
import { isSeatExit, type SeatExit } from '../game/seats';
import { formatServerTime } from '../format';

export type {
  Algorithm,
  EdgeExitView,
  EdgeGameView,
  ErrorCode,
  GameAlgorithm,
  GameStatus,
  ResultsView,
  RoundKey,
  RoundsView,
  RoundState,
  RoundView,
  RoutedBy,
  SeatResult,
  StandingEntry,
  StandingsView,
  TournamentView,
} from './generated/contract';

/** The sealed algorithm's wire name (`api::GameAlgorithm::Sealed`). */
export const SEALED_ALGORITHM = 'sealed-v1' satisfies GameAlgorithm;

/** The regions this page offers to pick (any `RegionName` is valid on the wire). */
export type Region = 'eu' | 'us' | 'asia';
export const REGIONS: readonly Region[] = ['eu', 'us', 'asia'];

/** A game as the edge answers it (`api::EdgeGameView`: the origin's view + `backendRegion`, `routedBy`). */
export type Game = EdgeGameView;

/** The edge's answer to an exit (`api::EdgeExitView`). */
export type ExitResult = EdgeExitView;

export interface TimeResult {
  now: number;
}

/** Why a request failed: the contract's `ErrorCode`, or what went wrong before an answer. */
export type EdgeErrorCode = ErrorCode | 'timeout' | 'network' | 'aborted' | 'bad_response' | `http_${number}`;

/** A failed edge request, with a readable message. */
export class EdgeError extends Error {
  /** The edge's error code (`not_found`, ...), or `timeout`, `network`, `aborted`, `bad_response`, `http_<status>`. */
  readonly code: EdgeErrorCode;
  /** HTTP status, 0 if no response arrived. */
  readonly status: number;
  /** For `validation_failed`: the offending input (`userId`, `gameId`, ...). */
  readonly field?: string;
  /** For 429 (and 503): seconds the edge asked to wait (`Retry-After`). */
  readonly retryAfterSeconds?: number;
  /** For 425 `too_early`: the server Unix ms after which to ask again (`error.retryAt`). */
  retryAt?: number;

  constructor(code: EdgeErrorCode, message: string, status = 0, field?: string, retryAfterSeconds?: number) {
    super(message);
    this.name = 'EdgeError';
    this.code = code;
    this.status = status;
    if (field !== undefined) this.field = field;
    if (retryAfterSeconds !== undefined) this.retryAfterSeconds = retryAfterSeconds;
  }
}

export const DEFAULT_TIMEOUT_MS = 8_000;

/** What a start's errors are prefixed with (and how `explain` knows an error is a start's). */
const START = 'Starting the game';
/** What a join's errors are prefixed with (and how `explain` knows an error is a join's). */
export const JOIN = 'Joining the game';
/** What a tournament round join's errors are prefixed with: `Joining round 2`. */
export const ROUND_JOIN = 'Joining round';

/** Seats of a shared game, the creator's included (`api::MaxPlayers`). */
export const MIN_PLAYERS = 2;
export const MAX_PLAYERS = 100;

/** A start's request for a shared game: its seats, and until when (server Unix ms) it takes players. */
export interface SharedStart {
  maxPlayers: number;
  joinDeadline?: number;
}

/**
 * A seat taken in a shared game (`api::EdgeJoinView`): the game (with the region that seated
 * the player as its `backendRegion`), the seat, and the seat's owner token when this request
 * took it (absent for a seat found again without proof that it is this browser's).
 */
export interface Joined {
  game: Game;
  seat: number;
  userId: string;
  joinedAt: number;
  ownerToken?: string;
  /** The seat's result, if its player already exited it. */
  result?: SeatResult;
}

/**
 * A guest identity the edge issued (`POST /edge/auth/guest`, when the edge runs
 * `USER_AUTH=guest`): starts as `userId` carry `Authorization: Bearer <userToken>`.
 */
export interface GuestIdentity {
  userId: string;
  userToken: string;
  /** Unix ms after which the edge no longer accepts the token. */
  expiresAt: number;
}

export interface EdgeClientOptions {
  /** Prefix of every path (default: same origin). */
  readonly baseUrl?: string;
  readonly timeoutMs?: number;
  /** Injected for tests. */
  readonly fetch?: typeof fetch;
}

type Json = Record<string, unknown>;

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Membership tables typed by the generated unions: the compiler fails if the contract gains or loses a value. */
const ERROR_CODES: { readonly [C in ErrorCode]: true } = {
  bad_request: true,
  unauthorized: true,
  forbidden: true,
  not_found: true,
  method_not_allowed: true,
  conflict: true,
  game_full: true,
  already_playing: true,
  not_joinable: true,
  join_closed: true,
  game_ended: true,
  payload_too_large: true,
  unsupported_media_type: true,
  validation_failed: true,
  too_early: true,
  rate_limited: true,
  internal: true,
  bad_gateway: true,
  storage_unavailable: true,
  timeout: true,
  not_ready: true,
  origins_unavailable: true,
};
const GAME_STATUSES: { readonly [S in GameStatus]: true } = { active: true, exited: true };
const ROUTED_BY: { readonly [R in RoutedBy]: true } = {
  preference: true,
  header: true,
  latency: true,
  load: true,
  geo: true,
  default: true,
  failover: true,
};

function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && Object.hasOwn(ERROR_CODES, value);
}

function isAlgorithm(value: unknown): value is GameAlgorithm {
  return typeof value === 'string' && (value === SEALED_ALGORITHM || (ALGORITHMS as readonly string[]).includes(value));
}

const KEY_HEX = /^[0-9a-fA-F]{64}$/;

function isKeyHex(value: unknown): value is string {
  return typeof value === 'string' && KEY_HEX.test(value);
}

function describeStatus(status: number): string {
  if (status === 404) return 'not found';
  if (status === 429) return 'too many requests';
  if (status >= 500) return 'server error';
  return 'request rejected';
}

/**
 * What a person should read for the answers that are about who may do what: 401 (this tab has
 * no owner token), 403 (the token it has does not allow this), 429 (too fast; wait).
 */
function explain(status: number, retryAfterSeconds: number | undefined, what = '', code?: string, retryAt?: number): string | undefined {
  if (what.startsWith(ROUND_JOIN)) {
    const refusal = roundJoinRefusal(status, code, retryAt);
    if (refusal !== undefined) return refusal;
  }
  if (what === JOIN) {
    const refusal = joinRefusal(status, code);
    if (refusal !== undefined) return refusal;
  }
  if (status === 401 && what === START) {
    return "the edge did not accept this browser's identity (it may have expired or been replaced); reload the page to get a new one";
  }
  if (status === 403 && what === START) {
    return 'a game can only be started as the user this browser is signed in as';
  }
  if (status === 401) {
    return 'only the tab that started this game can end it, and this tab has no owner token for it (paste the token under "Take control" to reclaim it)';
  }
  if (status === 403) {
    return "this tab's owner token does not allow that: it belongs to another game, has expired, or was issued under a key that has since been replaced";
  }
  if (status === 429) {
    const wait = retryAfterSeconds !== undefined ? `${retryAfterSeconds} s` : 'a moment';
    return `too many requests from this browser or player; try again in ${wait}`;
  }
  return undefined;
}

/**
 * Why a join was refused, as a person should read it: each refusal of `POST /edge/game/{id}/join`
 * (the seat rules of `api::seats`), or `undefined` for an answer that is not about joining.
 */
export function joinRefusal(status: number, code?: string): string | undefined {
  switch (code) {
    case 'game_full':
      return 'every seat of this game is taken; you can still watch it';
    case 'already_playing':
      return 'you already play another game (one game or seat at a time): exit it first, then join';
    case 'not_joinable':
      return 'this is a one-player game (started without players): it can be watched, not joined';
    case 'join_closed':
      return 'this game no longer takes players: joins closed at the time its creator chose (by default, its start)';
    case 'game_ended':
      return 'this game has ended: every seat exited; open it to see the results';
    default:
  }
  if (status === 401) {
    return "the edge did not accept this browser's identity (it may have expired or been replaced); reload the page to get a new one";
  }
  if (status === 403) return 'a seat can only be taken as the user this browser is signed in as';
  if (status === 404) return 'no game has this id (check the link)';
  return undefined;
}

/**
 * Why a tournament round's join was refused, as a person should read it: each refusal of
 * `POST /edge/tournament/{id}/rounds/{i}/join` (`api::tournament`), `retryAt` (server Unix ms)
 * saying when a `too_early` round opens; `undefined` for an answer that is not about joining.
 */
export function roundJoinRefusal(status: number, code?: string, retryAt?: number): string | undefined {
  switch (code) {
    case 'too_early':
      return retryAt !== undefined
        ? `this round does not take players yet: its joins open at ${formatServerTime(retryAt)} (server time)`
        : 'this round does not take players yet: its joins open one round before its start';
    case 'join_closed':
      return 'this round no longer takes players: joins closed at its start';
    case 'already_playing':
      return 'you are still seated in another game (a table of an earlier round, or a game of your own): exit it first, then join';
    case 'game_full':
      return 'every table of this round is full';
    case 'game_ended':
      return 'the table this round gave you has ended; try again';
    case 'conflict':
      return 'a table of this round is still being opened; try again in a moment';
    default:
  }
  if (status === 401) {
    return "the edge did not accept this browser's identity (it may have expired or been replaced); reload the page to get a new one";
  }
  if (status === 403) return 'a round can only be joined as the user this browser is signed in as';
  if (status === 404) return 'no tournament has this id, or it has no such round (check the link)';
  return undefined;
}

/** Turns an error response into a readable message (the contract's `ErrorBody`, or text). */
export function errorFromResponse(status: number, body: string, what: string, retryAfterSeconds?: number): EdgeError {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    parsed = undefined;
  }
  const sentCode = isObject(parsed) && isObject(parsed.error) && typeof parsed.error.code === 'string' ? parsed.error.code : undefined;
  const sentRetryAt =
    isObject(parsed) && isObject(parsed.error) && typeof parsed.error.retryAt === 'number' && Number.isFinite(parsed.error.retryAt)
      ? parsed.error.retryAt
      : undefined;
  const plain = explain(status, retryAfterSeconds, what, sentCode, sentRetryAt);
  if (isObject(parsed) && isObject(parsed.error)) {
    const detail = parsed.error;
    const code: EdgeErrorCode = isErrorCode(detail.code) ? detail.code : `http_${status}`;
    const shown = typeof detail.code === 'string' && detail.code !== '' ? detail.code : code;
    const message =
      typeof detail.message === 'string' && detail.message.trim() !== '' ? detail.message.trim() : describeStatus(status);
    const field = typeof detail.field === 'string' ? detail.field : undefined;
    const said = plain ?? message;
    const error = new EdgeError(code, `${what} failed: ${said} (${shown}, HTTP ${status})`, status, field, retryAfterSeconds);
    if (typeof detail.retryAt === 'number' && Number.isFinite(detail.retryAt)) error.retryAt = detail.retryAt;
    return error;
  }
  const text = body.replace(/\s+/g, ' ').trim().slice(0, 160);
  return new EdgeError(
    `http_${status}`,
    `${what} failed: ${plain ?? describeStatus(status)} (HTTP ${status})${text ? `: ${text}` : ''}`,
    status,
  );
}

function invalid(what: string, key: string): EdgeError {
  return new EdgeError('bad_response', `${what} failed: the edge's answer has no valid "${key}"`);
}

function requireNumber(obj: Json, key: string, what: string): number {
  const value = obj[key];
  if (typeof value !== 'number' || !Number.isFinite(value)) throw invalid(what, key);
  return value;
}

function requireString(obj: Json, key: string, what: string): string {
  const value = obj[key];
  if (typeof value !== 'string' || value === '') throw invalid(what, key);
  return value;
}

/**
 * Validates a game body against `EdgeGameView`: everything the engine needs must be present and
 * well-typed (an algorithm this page's engine does not know is refused). `backendRegion` falls
 * back to `region` (the same thing: the game's home region), `routedBy` is kept only if it is
 * one the contract names.
 */
export function parseGame(body: unknown, what: string): Game {
  if (!isObject(body)) throw new EdgeError('bad_response', `${what} failed: the edge's answer is not a game`);
  const algorithm = body.algorithm;
  if (!isAlgorithm(algorithm)) throw invalid(what, 'algorithm');
  const status = body.status;
  if (typeof status !== 'string' || !Object.hasOwn(GAME_STATUSES, status)) throw invalid(what, 'status');
  const region = requireString(body, 'region', what);
  const game: Game = {
    gameId: requireString(body, 'gameId', what),
    userId: requireString(body, 'userId', what),
    region,
    seed: requireNumber(body, 'seed', what),
    startAt: requireNumber(body, 'startAt', what),
    tickMs: requireNumber(body, 'tickMs', what),
    breakEvery: requireNumber(body, 'breakEvery', what),
    algorithm,
    status: status as GameStatus,
    createdAt: requireNumber(body, 'createdAt', what),
    backendRegion: typeof body.backendRegion === 'string' && body.backendRegion !== '' ? body.backendRegion : region,
  };
  if (body.exitedAt !== undefined && body.exitedAt !== null) game.exitedAt = requireNumber(body, 'exitedAt', what);
  if (typeof body.routedBy === 'string' && Object.hasOwn(ROUTED_BY, body.routedBy)) {
    game.routedBy = body.routedBy as RoutedBy;
  }
  if (isObject(body.metadata)) game.metadata = body.metadata;
  if (typeof body.ownerToken === 'string' && body.ownerToken !== '') game.ownerToken = body.ownerToken;
  if (body.shared !== undefined && body.shared !== null) {
    // A shared game: its seats table and join link depend on these.
    const shared = body.shared;
    if (
      !isObject(shared) ||
      typeof shared.maxPlayers !== 'number' ||
      !Number.isSafeInteger(shared.maxPlayers) ||
      shared.maxPlayers < 1 ||
      typeof shared.joinDeadline !== 'number' ||
      !Number.isFinite(shared.joinDeadline)
    ) {
      throw invalid(what, 'shared');
    }
    game.shared = { maxPlayers: shared.maxPlayers, joinDeadline: shared.joinDeadline };
  }
  if (algorithm === SEALED_ALGORITHM) {
    // A sealed game is followed from its commitment: without one the page cannot check a key.
    if (!isKeyHex(body.commitment)) throw invalid(what, 'commitment');
    game.commitment = body.commitment.toLowerCase();
    if (typeof body.rounds === 'number' && Number.isSafeInteger(body.rounds)) game.rounds = body.rounds;
    if (isKeyHex(body.root)) game.root = body.root.toLowerCase();
  }
  return game;
}

/**
 * Validates a rounds page against `RoundsView`. Only the shape: whether the keys chain is the
 * page's own check (`game/sealed.ts`), never the edge's word.
 */
export function parseRounds(body: unknown, what: string): RoundsView {
  if (!isObject(body)) throw new EdgeError('bad_response', `${what} failed: the edge's answer is not a rounds page`);
  const list = body.rounds;
  if (!Array.isArray(list)) throw invalid(what, 'rounds');
  const rounds: RoundKey[] = [];
  for (const item of list) {
    if (!isObject(item) || typeof item.round !== 'number' || !Number.isSafeInteger(item.round) || !isKeyHex(item.key)) {
      throw invalid(what, 'rounds');
    }
    rounds.push({ round: item.round, key: item.key.toLowerCase() });
  }
  const commitment = body.commitment;
  if (!isKeyHex(commitment)) throw invalid(what, 'commitment');
  return {
    gameId: requireString(body, 'gameId', what),
    commitment: commitment.toLowerCase(),
    from: requireNumber(body, 'from', what),
    rounds,
  };
}

/** Validates a results answer: every seat's number, player and (checked) result. */
export function parseResults(body: unknown, what: string): ResultsView {
  if (!isObject(body) || !Array.isArray(body.seats)) throw new EdgeError('bad_response', `${what} failed: the edge's answer is not a results view`);
  const seats: ResultsView['seats'] = [];
  for (const s of body.seats) {
    if (!isObject(s)) throw invalid(what, 'seats');
    const pushLike = { seat: s.seat, userId: s.userId, result: s.result };
    if (s.result !== undefined && !isSeatExit(pushLike)) throw invalid(what, 'seats');
    if (typeof s.seat !== 'number' || typeof s.userId !== 'string') throw invalid(what, 'seats');
    seats.push({
      seat: s.seat,
      userId: s.userId,
      joinedAt: typeof s.joinedAt === 'number' ? s.joinedAt : 0,
      ...(s.result !== undefined ? { result: (pushLike as SeatExit).result } : {}),
    });
  }
  return {
    gameId: requireString(body, 'gameId', what),
    status: body.status === 'exited' ? 'exited' : 'active',
    ...(typeof body.maxPlayers === 'number' ? { maxPlayers: body.maxPlayers } : {}),
    seats,
  };
}

/** Validates an exit answer against `EdgeExitView` (`exitedAt` is what the page needs). */
export function parseExit(body: unknown, sent: ExitRequest, what: string): ExitResult {
  if (!isObject(body)) throw new EdgeError('bad_response', `${what} failed: unexpected answer`);
  const result = body.result === undefined || body.result === null ? undefined : seatResult(body.result, what);
  return {
    ...(result ? { result } : {}),
    ok: true,
    gameId: typeof body.gameId === 'string' ? body.gameId : sent.gameId,
    userId: typeof body.userId === 'string' ? body.userId : sent.userId,
    exitedAt: requireNumber(body, 'exitedAt', what),
    status: 'exited',
    backendRegion:
      typeof body.backendRegion === 'string' && body.backendRegion !== '' ? body.backendRegion : (sent.backendRegion ?? ''),
  };
}

/** A seat's result, shape-checked (`api::SeatResult`). */
function seatResult(value: unknown, what: string): SeatResult {
  if (!isSeatExit({ seat: 0, userId: '', result: value })) throw invalid(what, 'result');
  const r = value as SeatResult;
  if (r.final !== undefined) {
    const f = r.final as unknown as Json;
    if (![f.step, f.value, f.round].every((n) => typeof n === 'number' && Number.isSafeInteger(n)) || typeof f.broken !== 'boolean') {
      throw invalid(what, 'result');
    }
  }
  return r;
}

/**
 * Validates a join answer against `EdgeJoinView`: the game must be one the engine can run (see
 * {@link parseGame}) and shared and the one asked for, the seat one of its seats, and the player
 * the one who asked.
 */
export function parseJoin(body: unknown, sent: JoinRequest & { gameId: string }, what: string): Joined {
  const joined = parseSeat(body, sent.userId, what);
  if (joined.game.gameId !== sent.gameId) throw invalid(what, 'game.gameId');
  return joined;
}

/** A seat answer (`EdgeJoinView`) of a shared game, for `userId`; whose game it is, is the caller's check. */
function parseSeat(body: unknown, userId: string, what: string): Joined {
  if (!isObject(body)) throw new EdgeError('bad_response', `${what} failed: the edge's answer is not a seat`);
  const backendRegion = typeof body.backendRegion === 'string' && body.backendRegion !== '' ? body.backendRegion : undefined;
  const inner = isObject(body.game) ? { ...body.game, ...(backendRegion ? { backendRegion } : {}) } : body.game;
  const game = parseGame(inner, what);
  // A seat's token is the join's, never the game's (a game view never carries one to a joiner).
  delete game.ownerToken;
  if (game.shared === undefined) throw invalid(what, 'game.shared');
  const seat = body.seat;
  if (typeof seat !== 'number' || !Number.isSafeInteger(seat) || seat < 0 || seat >= game.shared.maxPlayers) throw invalid(what, 'seat');
  if (requireString(body, 'userId', what) !== userId) throw invalid(what, 'userId');
  const joined: Joined = { game, seat, userId, joinedAt: requireNumber(body, 'joinedAt', what) };
  if (typeof body.ownerToken === 'string' && body.ownerToken !== '') joined.ownerToken = body.ownerToken;
  if (body.result !== undefined && body.result !== null) joined.result = seatResult(body.result, what);
  return joined;
}

/**
 * Validates a tournament round's join answer (`EdgeJoinView` of a table): a seat as
 * {@link parseJoin} checks it, at a table of the tournament and round asked for (the table
 * game's `metadata` names them; `api::tournament`).
 */
export function parseRoundJoin(body: unknown, sent: { tournamentId: string; round: number; userId: string }, what: string): Joined {
  const joined = parseSeat(body, sent.userId, what);
  const about = joined.game.metadata;
  if (!about || !sameId(about.tournamentId, sent.tournamentId)) throw invalid(what, 'game.metadata.tournamentId');
  if (about.round !== undefined && about.round !== sent.round) throw invalid(what, 'game.metadata.round');
  return joined;
}

/** Two UUIDs are the same id whatever the case of their hex digits. */
function sameId(a: unknown, b: string): boolean {
  return typeof a === 'string' && a.toLowerCase() === b.toLowerCase();
}

const ROUND_STATES: { readonly [S in RoundState]: true } = { upcoming: true, open: true, playing: true, finished: true };

function isCount(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

/**
 * Validates a tournament's schedule (`TournamentView`): one round per index in order, each on
 * the grid (joins open one interval before the start, the end one interval after it) and in a
 * state the contract names, and table settings the engine can run.
 */
export function parseTournament(body: unknown, tournamentId: string, what: string): TournamentView {
  if (!isObject(body)) throw new EdgeError('bad_response', `${what} failed: the edge's answer is not a tournament`);
  if (!sameId(requireString(body, 'tournamentId', what), tournamentId)) throw invalid(what, 'tournamentId');
  const algorithm = body.algorithm;
  if (!isAlgorithm(algorithm) || algorithm === SEALED_ALGORITHM) throw invalid(what, 'algorithm');
  const rounds = body.rounds;
  if (!isCount(rounds) || rounds < 1) throw invalid(what, 'rounds');
  const intervalMs = requireNumber(body, 'intervalMs', what);
  if (intervalMs <= 0) throw invalid(what, 'intervalMs');
  const firstStartAt = requireNumber(body, 'firstStartAt', what);
  for (const key of ['tickMs', 'breakEvery', 'seatsPerTable', 'maxTables']) {
    if (!isCount(body[key]) || body[key] === 0) throw invalid(what, key);
  }
  if (!Array.isArray(body.schedule) || body.schedule.length !== rounds) throw invalid(what, 'schedule');
  const schedule: RoundView[] = body.schedule.map((item: unknown, i: number) => {
    if (!isObject(item) || item.round !== i || typeof item.state !== 'string' || !Object.hasOwn(ROUND_STATES, item.state)) {
      throw invalid(what, 'schedule');
    }
    const startAt = firstStartAt + i * intervalMs;
    if (item.startAt !== startAt || item.joinsOpenAt !== startAt - intervalMs || item.endAt !== startAt + intervalMs) {
      throw invalid(what, 'schedule');
    }
    return { round: i, joinsOpenAt: startAt - intervalMs, startAt, endAt: startAt + intervalMs, state: item.state as RoundState };
  });
  const name = requireString(body, 'name', what);
  return {
    tournamentId: body.tournamentId as string,
    name,
    rounds,
    firstStartAt,
    intervalMs,
    tickMs: body.tickMs as number,
    breakEvery: body.breakEvery as number,
    algorithm,
    seatsPerTable: body.seatsPerTable as number,
    maxTables: body.maxTables as number,
    createdAt: requireNumber(body, 'createdAt', what),
    asOf: requireNumber(body, 'asOf', what),
    schedule,
  };
}

/**
 * Validates a tournament's standings (`StandingsView`): its lines best first, each a player with
 * a rank of at least 1, a whole total and a count of rounds played, ranks never going down.
 */
export function parseStandings(body: unknown, tournamentId: string, what: string): StandingsView {
  if (!isObject(body) || !Array.isArray(body.entries)) throw new EdgeError('bad_response', `${what} failed: the edge's answer is not a standings table`);
  if (!sameId(requireString(body, 'tournamentId', what), tournamentId)) throw invalid(what, 'tournamentId');
  const entries: StandingEntry[] = [];
  for (const e of body.entries) {
    if (
      !isObject(e) ||
      !isCount(e.rank) ||
      e.rank < 1 ||
      typeof e.userId !== 'string' ||
      e.userId === '' ||
      !isCount(e.total) ||
      !isCount(e.roundsPlayed)
    ) {
      throw invalid(what, 'entries');
    }
    const previous = entries[entries.length - 1];
    if (previous && (e.rank < previous.rank || e.total > previous.total)) throw invalid(what, 'entries');
    entries.push({ rank: e.rank, userId: e.userId, total: e.total, roundsPlayed: e.roundsPlayed });
  }
  if (!isCount(body.roundsFinished)) throw invalid(what, 'roundsFinished');
  if (!isCount(body.players) || body.players < entries.length) throw invalid(what, 'players');
  return {
    tournamentId: body.tournamentId as string,
    asOf: requireNumber(body, 'asOf', what),
    roundsFinished: body.roundsFinished,
    players: body.players,
    entries,
  };
}

export class EdgeClient {
  private readonly baseUrl: string;
  private readonly timeoutMs: number;
  private readonly fetchImpl: typeof fetch;

  constructor(options: EdgeClientOptions = {}) {
    this.baseUrl = options.baseUrl ?? '';
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.fetchImpl = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
  }

  /** One request with a timeout; resolves to the parsed JSON of a 2xx answer. */
  async request(
    method: 'GET' | 'POST',
    path: string,
    what: string,
    body?: unknown,
    options: { timeoutMs?: number; signal?: AbortSignal; authorization?: string } = {},
  ): Promise<unknown> {
    const timeoutMs = options.timeoutMs ?? this.timeoutMs;
    const controller = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      controller.abort();
    }, timeoutMs);
    const onOuterAbort = () => controller.abort();
    options.signal?.addEventListener('abort', onOuterAbort, { once: true });
    try {
      let response: Response;
      try {
        response = await this.fetchImpl(this.baseUrl + path, {
          method,
          headers: {
            accept: 'application/json',
            ...(body === undefined ? {} : { 'content-type': 'application/json' }),
            ...(options.authorization ? { authorization: options.authorization } : {}),
          },
          body: body === undefined ? undefined : JSON.stringify(body),
          signal: controller.signal,
          cache: 'no-store',
        });
      } catch (err) {
        if (timedOut) {
          throw new EdgeError('timeout', `${what} failed: the edge did not answer within ${(timeoutMs / 1000).toFixed(1)} s`);
        }
        if (options.signal?.aborted) throw new EdgeError('aborted', `${what} was cancelled`);
        throw new EdgeError('network', `${what} failed: could not reach the edge (${err instanceof Error ? err.message : String(err)})`);
      }
      let text: string;
      try {
        text = await response.text();
      } catch {
        if (timedOut) {
          throw new EdgeError('timeout', `${what} failed: the edge did not finish its answer within ${(timeoutMs / 1000).toFixed(1)} s`, response.status);
        }
        throw new EdgeError('network', `${what} failed: the connection broke while reading the answer`, response.status);
      }
      if (!response.ok) {
        const retry = Number(response.headers?.get?.('retry-after') ?? NaN);
        throw errorFromResponse(response.status, text, what, Number.isFinite(retry) && retry >= 0 ? retry : undefined);
      }
      try {
        return JSON.parse(text);
      } catch {
        throw new EdgeError('bad_response', `${what} failed: the edge's answer is not JSON (HTTP ${response.status})`, response.status);
      }
    } finally {
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', onOuterAbort);
    }
  }

  /**
   * Starts a game as `userId`; `userToken` (a guest identity's, or the identity provider's JWT)
   * proves the user to an edge that authenticates users.
   */
  async startGame(
    userId: string,
    preferredRegion?: Region,
    userToken?: string,
    algorithm?: GameAlgorithm,
    shared?: SharedStart,
  ): Promise<Game> {
    const what = START;
    const body: StartRequest = preferredRegion ? { userId, preferredRegion } : { userId };
    if (algorithm !== undefined) body.algorithm = algorithm;
    if (shared !== undefined) {
      body.maxPlayers = shared.maxPlayers;
      if (shared.joinDeadline !== undefined) body.joinDeadline = shared.joinDeadline;
    }
    const authorization = userToken ? `Bearer ${userToken}` : undefined;
    return parseGame(await this.request('POST', '/edge/game/start', what, body, { authorization }), what);
  }

  /**
   * A new guest identity, or `null` when this edge issues none (it does not authenticate
   * users, or uses the game's own identity provider): its 404.
   */
  async guestIdentity(): Promise<GuestIdentity | null> {
    const what = 'Getting a guest identity';
    let answer: unknown;
    try {
      answer = await this.request('POST', '/edge/auth/guest', what);
    } catch (err) {
      if (err instanceof EdgeError && err.status === 404) return null;
      throw err;
    }
    if (!isObject(answer)) throw new EdgeError('bad_response', `${what} failed: unexpected answer`);
    return {
      userId: requireString(answer, 'userId', what),
      userToken: requireString(answer, 'userToken', what),
      expiresAt: requireNumber(answer, 'expiresAt', what),
    };
  }

  /**
   * Takes a seat in the shared game `gameId` as `userId` (`POST /edge/game/{id}/join`);
   * `backendRegion` (from a join link) routes it to the game's region first, `userToken` proves
   * the user to an edge that authenticates users. Every refusal (`game_full`, `already_playing`,
   * `not_joinable`, `join_closed`, `game_ended`, 401) is an {@link EdgeError} with a sentence
   * saying why (see {@link joinRefusal}).
   */
  async joinGame(gameId: string, userId: string, backendRegion?: string, userToken?: string): Promise<Joined> {
    const what = JOIN;
    const body: JoinRequest = backendRegion ? { userId, backendRegion } : { userId };
    const authorization = userToken ? `Bearer ${userToken}` : undefined;
    return parseJoin(
      await this.request('POST', `/edge/game/${encodeURIComponent(gameId)}/join`, what, body, { authorization }),
      { ...body, gameId },
      what,
    );
  }

  /**
   * Takes a seat at a table of round `round` of tournament `tournamentId` as `userId`
   * (`POST /edge/tournament/{id}/rounds/{round}/join`), with the user's token as a game join.
   * Every refusal (`too_early` with its `retryAt`, `join_closed`, `already_playing`, `game_full`,
   * 401, 404) is an {@link EdgeError} with a sentence saying why (see {@link roundJoinRefusal}).
   */
  async joinRound(tournamentId: string, round: number, userId: string, userToken?: string): Promise<Joined> {
    const what = `${ROUND_JOIN} ${round}`;
    const body: JoinRequest = { userId };
    const authorization = userToken ? `Bearer ${userToken}` : undefined;
    const path = `/edge/tournament/${encodeURIComponent(tournamentId)}/rounds/${encodeURIComponent(String(round))}/join`;
    return parseRoundJoin(await this.request('POST', path, what, body, { authorization }), { tournamentId, round, userId }, what);
  }

  /** A tournament's schedule (`GET /edge/tournament/{id}`, cached by the edge for a few seconds). */
  async getTournament(tournamentId: string, options: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<TournamentView> {
    const what = 'Loading the tournament';
    const answer = await this.request('GET', `/edge/tournament/${encodeURIComponent(tournamentId)}`, what, undefined, options);
    return parseTournament(answer, tournamentId, what);
  }

  /** A tournament's standings (`GET /edge/tournament/{id}/standings`, cached by the edge for a few seconds). */
  async getStandings(tournamentId: string, options: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<StandingsView> {
    const what = 'Reading the standings';
    const answer = await this.request('GET', `/edge/tournament/${encodeURIComponent(tournamentId)}/standings`, what, undefined, options);
    return parseStandings(answer, tournamentId, what);
  }

  /** Exits as the player: `ownerToken` is what the start answered (sent as a Bearer token). */
  async exitGame(gameId: string, userId: string, backendRegion?: string, ownerToken?: string): Promise<ExitResult> {
    const what = 'Exiting the game';
    const body: ExitRequest = backendRegion ? { gameId, userId, backendRegion } : { gameId, userId };
    const authorization = ownerToken ? `Bearer ${ownerToken}` : undefined;
    return parseExit(await this.request('POST', '/edge/game/exit', what, body, { authorization }), body, what);
  }

  async getGame(gameId: string, options: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<Game> {
    const what = 'Loading the game';
    return parseGame(
      await this.request('GET', `/edge/game/${encodeURIComponent(gameId)}`, what, undefined, options),
      what,
    );
  }

  /**
   * The revealed keys of a sealed game from round `from` on (`GET /edge/game/{id}/rounds`). A
   * round not over yet is an {@link EdgeError} with status 425, `code` `too_early` and
   * `retryAt` (server Unix ms) / `retryAfterSeconds`: see {@link retryDelayMs}.
   */
  async getRounds(gameId: string, from: number, options: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<RoundsView> {
    const what = `Reading the keys of round ${from} on`;
    return parseRounds(
      await this.request('GET', `/edge/game/${encodeURIComponent(gameId)}/rounds?from=${encodeURIComponent(String(from))}`, what, undefined, options),
      what,
    );
  }

  /** A shared game's seats and results (`GET /edge/game/{id}/results`). */
  async getResults(gameId: string, options: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<ResultsView> {
    const what = 'Reading the results';
    return parseResults(await this.request('GET', `/edge/game/${encodeURIComponent(gameId)}/results`, what, undefined, options), what);
  }

  async getTime(options: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<TimeResult> {
    const what = 'Reading the server clock';
    const answer = await this.request('GET', '/edge/time', what, undefined, options);
    if (!isObject(answer)) throw new EdgeError('bad_response', `${what} failed: unexpected answer`);
    return { now: requireNumber(answer, 'now', what) };
  }
}

/**
 * How long to wait before asking again after a 425 `too_early`: until its `retryAt` (server Unix
 * ms, converted with `serverNow`), else its `Retry-After`, else `fallbackMs`; at least `minMs`,
 * at most `maxMs`.
 */
export function retryDelayMs(err: EdgeError, serverNow: number, fallbackMs = 1_000, minMs = 50, maxMs = 10_000): number {
  let delay = fallbackMs;
  if (err.retryAt !== undefined) delay = err.retryAt - serverNow;
  else if (err.retryAfterSeconds !== undefined) delay = err.retryAfterSeconds * 1_000;
  return Math.min(maxMs, Math.max(minMs, delay));
}

/** A readable sentence for any thrown value. */
export function describeError(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
