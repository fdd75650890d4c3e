/**
 * The edge Worker's HTTP API (`/edge/*`), as the page uses it. Every request has a timeout and
 * every failure becomes an {@link EdgeError} whose `message` is fit to show to a person.
 */

export type Region = 'eu' | 'us' | 'asia';
export const REGIONS: readonly Region[] = ['eu', 'us', 'asia'];

/** A game as the origin stores it (passed through by the edge). */
export interface Game {
  gameId: string;
  userId: string;
  region: string;
  seed: number;
  startAt: number;
  tickMs: number;
  breakEvery: number;
  algorithm: string;
  status: 'active' | 'exited' | string;
  createdAt?: number;
  exitedAt?: number;
  /** Set by the edge: the region whose origin answered. */
  backendRegion?: string;
  /** Set by the edge on start: why that region was chosen. */
  routedBy?: unknown;
}

export interface ExitResult {
  gameId: string;
  userId: string;
  exitedAt: number;
  status: string;
}

export interface TimeResult {
  now: number;
}

/** A failed edge request, with a readable message. */
export class EdgeError extends Error {
  /** The edge's error code (`not_found`, ...), or `timeout`, `network`, `bad_response`. */
  readonly code: string;
  /** HTTP status, 0 if no response arrived. */
  readonly status: number;

  constructor(code: string, message: string, status = 0) {
    super(message);
    this.name = 'EdgeError';
    this.code = code;
    this.status = status;
  }
}

export const DEFAULT_TIMEOUT_MS = 8_000;

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

function describeStatus(status: number): string {
  if (status === 404) return 'not found';
  if (status === 429) return 'too many requests';
  if (status >= 500) return 'server error';
  return 'request rejected';
}

/** Turns an error response into a readable message (JSON `{"error":{code,message}}` or text). */
export function errorFromResponse(status: number, body: string, what: string): EdgeError {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    parsed = undefined;
  }
  if (isObject(parsed) && isObject(parsed.error)) {
    const code = typeof parsed.error.code === 'string' ? parsed.error.code : `http_${status}`;
    const message =
      typeof parsed.error.message === 'string' && parsed.error.message.trim() !== ''
        ? parsed.error.message.trim()
        : describeStatus(status);
    return new EdgeError(code, `${what} failed: ${message} (${code}, HTTP ${status})`, status);
  }
  const text = body.replace(/\s+/g, ' ').trim().slice(0, 160);
  return new EdgeError(
    `http_${status}`,
    `${what} failed: ${describeStatus(status)} (HTTP ${status})${text ? `: ${text}` : ''}`,
    status,
  );
}

function requireNumber(obj: Json, key: string, what: string): number {
  const value = obj[key];
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    throw new EdgeError('bad_response', `${what} failed: the edge's answer has no valid "${key}"`);
  }
  return value;
}

function requireString(obj: Json, key: string, what: string): string {
  const value = obj[key];
  if (typeof value !== 'string' || value === '') {
    throw new EdgeError('bad_response', `${what} failed: the edge's answer has no valid "${key}"`);
  }
  return value;
}

/** Validates a game body: every field the engine needs must be present and numeric. */
export function parseGame(body: unknown, what: string): Game {
  if (!isObject(body)) throw new EdgeError('bad_response', `${what} failed: the edge's answer is not a game`);
  const game: Game = {
    ...(body as object),
    gameId: requireString(body, 'gameId', what),
    userId: typeof body.userId === 'string' ? body.userId : '',
    region: typeof body.region === 'string' ? body.region : '',
    seed: requireNumber(body, 'seed', what),
    startAt: requireNumber(body, 'startAt', what),
    tickMs: requireNumber(body, 'tickMs', what),
    breakEvery: requireNumber(body, 'breakEvery', what),
    algorithm: requireString(body, 'algorithm', what),
    status: typeof body.status === 'string' ? body.status : 'active',
  };
  if (body.exitedAt !== undefined && body.exitedAt !== null) {
    game.exitedAt = requireNumber(body, 'exitedAt', what);
  } else {
    delete game.exitedAt;
  }
  return game;
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
    options: { timeoutMs?: number; signal?: AbortSignal } = {},
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
          headers: body === undefined ? { accept: 'application/json' } : { accept: 'application/json', 'content-type': 'application/json' },
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
      if (!response.ok) throw errorFromResponse(response.status, text, what);
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

  async startGame(userId: string, preferredRegion?: Region): Promise<Game> {
    const what = 'Starting the game';
    const body = preferredRegion ? { userId, preferredRegion } : { userId };
    return parseGame(await this.request('POST', '/edge/game/start', what, body), what);
  }

  async exitGame(gameId: string, userId: string, backendRegion?: string): Promise<ExitResult> {
    const what = 'Exiting the game';
    const body = backendRegion ? { gameId, userId, backendRegion } : { gameId, userId };
    const answer = await this.request('POST', '/edge/game/exit', what, body);
    if (!isObject(answer)) throw new EdgeError('bad_response', `${what} failed: unexpected answer`);
    return {
      gameId: typeof answer.gameId === 'string' ? answer.gameId : gameId,
      userId: typeof answer.userId === 'string' ? answer.userId : userId,
      exitedAt: requireNumber(answer, 'exitedAt', what),
      status: typeof answer.status === 'string' ? answer.status : 'exited',
    };
  }

  async getGame(gameId: string, options: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<Game> {
    const what = 'Loading the game';
    return parseGame(
      await this.request('GET', `/edge/game/${encodeURIComponent(gameId)}`, what, undefined, options),
      what,
    );
  }

  async getTime(options: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<TimeResult> {
    const what = 'Reading the server clock';
    const answer = await this.request('GET', '/edge/time', what, undefined, options);
    if (!isObject(answer)) throw new EdgeError('bad_response', `${what} failed: unexpected answer`);
    return { now: requireNumber(answer, 'now', what) };
  }
}

/** A readable sentence for any thrown value. */
export function describeError(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
