/**
 * The page's only door to the game logic: a thin wrapper over the shared engine compiled to wasm
 * (`shared-engine/wasm`, built by `scripts/build-engine-wasm.sh` and copied to `./generated/`
 * by `scripts/prepare-engine.mjs`). Nothing here decides a break: every tick comes from the
 * engine. The wrapper turns the engine's wasm-owned objects into plain frozen values (and frees
 * the wasm side at once), and follows a running game tick by tick with the engine's O(1)
 * `GameCounter`.
 *
 * No React here; the engine must be initialized once (`loadEngine()` in a browser,
 * `initEngineSync(bytes)` in node) before any other call.
 */
import init, {
  GameCounter,
  initSync,
  stateAt as wasmStateAt,
  tickAt as wasmTickAt,
  defaultAlgorithm as wasmDefaultAlgorithm,
  type JsState,
  type JsTick,
} from './generated/shared_engine.js';

/** Everything that determines a game's timeline (the origin's game fields). */
export interface GameParams {
  readonly seed: number;
  /** Unix ms at which step 0 begins. */
  readonly startAt: number;
  readonly tickMs: number;
  /** Break odds (1 in `breakEvery`); validated for every algorithm, unused by `interval-v0`. */
  readonly breakEvery: number;
  /**
   * The engine's wire name: `'mix32-v1'` (the default), `'lcg32'` or `'interval-v0'`. Kept a
   * string so that a name this page does not know yet is passed to the engine, which decides.
   */
  readonly algorithm: string;
}

/** One step of a game. */
export interface Tick {
  readonly step: number;
  /** Steps since the last break (0 at a break). */
  readonly value: number;
  /** Breaks so far, this step included. */
  readonly round: number;
  /** Whether this step broke. */
  readonly broken: boolean;
}

export type GameState =
  | { readonly phase: 'countdown'; readonly msUntilStart: number }
  | { readonly phase: 'running'; readonly tick: Tick }
  | { readonly phase: 'ended'; readonly tick: Tick | null };

let ready = false;
let loading: Promise<void> | null = null;
let memory: WebAssembly.Memory | null = null;

/** Loads the engine in a browser (fetches the `.wasm` next to the bundle). Idempotent. */
export function loadEngine(wasmUrl?: string | URL): Promise<void> {
  if (ready) return Promise.resolve();
  if (!loading) {
    loading = (wasmUrl === undefined ? init() : init({ module_or_path: wasmUrl })).then(
      (output) => {
        memory = output.memory;
        ready = true;
      },
      (err: unknown) => {
        loading = null;
        throw new Error(`could not load the game engine (wasm): ${err instanceof Error ? err.message : String(err)}`);
      },
    );
  }
  return loading;
}

/** Initializes the engine from the `.wasm` bytes (node, tests). Idempotent. */
export function initEngineSync(bytes: BufferSource | WebAssembly.Module): void {
  if (ready) return;
  memory = initSync({ module: bytes }).memory;
  ready = true;
}

/** The engine's linear memory size in bytes (diagnostics: it must not grow as a game runs). */
export function engineMemoryBytes(): number {
  return memory?.buffer.byteLength ?? 0;
}

export function engineReady(): boolean {
  return ready;
}

function assertReady(): void {
  if (!ready) throw new Error('the game engine is not loaded yet');
}

/** Copies a wasm tick into a plain object and frees the wasm side. */
function takeTick(tick: JsTick): Tick {
  try {
    return Object.freeze({ step: tick.step, value: tick.value, round: tick.round, broken: tick.broken });
  } finally {
    tick.free();
  }
}

function takeState(state: JsState): GameState {
  try {
    const phase = state.phase;
    if (phase === 'countdown') {
      return Object.freeze({ phase, msUntilStart: state.msUntilStart ?? 0 });
    }
    const raw = state.tick; // a clone owned by JS: freed by takeTick
    const tick = raw ? takeTick(raw) : null;
    if (phase === 'running') {
      if (!tick) throw new Error('engine returned a running state without a tick');
      return Object.freeze({ phase, tick });
    }
    if (phase === 'ended') return Object.freeze({ phase, tick });
    throw new Error(`engine returned an unknown phase "${phase}"`);
  } finally {
    state.free();
  }
}

/** The engine's default algorithm name. */
export function defaultAlgorithm(): string {
  assertReady();
  return wasmDefaultAlgorithm();
}

/**
 * The state of a game at Unix ms `nowMs` (server time), frozen at `endedAtMs` if given.
 * Costs one break check per step up to `nowMs`: use {@link GameFollower} to follow a game.
 */
export function stateAt(params: GameParams, nowMs: number, endedAtMs?: number | null): GameState {
  assertReady();
  return takeState(
    wasmStateAt(
      params.seed,
      params.startAt,
      params.tickMs,
      params.breakEvery,
      params.algorithm,
      Math.floor(nowMs),
      endedAtMs === undefined || endedAtMs === null ? undefined : Math.floor(endedAtMs),
    ),
  );
}

/** The tick at `step`, independent of any clock. */
export function tickAt(params: Omit<GameParams, 'startAt'>, step: number): Tick {
  assertReady();
  return takeTick(wasmTickAt(params.seed, params.tickMs, params.breakEvery, params.algorithm, step));
}

/** What {@link GameFollower.at} saw. */
export interface FollowResult {
  readonly state: GameState;
  /** Breaks since the previous call, oldest first (only those within `maxBackfill` steps). */
  readonly breaks: readonly Tick[];
}

/**
 * Follows one game as time goes on, asking the engine for one tick per step (O(1) each) instead
 * of recounting every break since step 0. `at(now)` returns exactly what `stateAt(now)` returns
 * (the unit tests check that), plus the breaks passed since the previous call, for the log.
 */
export class GameFollower {
  readonly params: GameParams;
  private endedAt: number | null;
  private counter: GameCounter | null = null;
  private last: Tick | null = null;
  private frozen: GameState | null = null;
  /** Breaks further back than this many steps in one jump are not listed (a tab was asleep). */
  private readonly maxBackfill: number;

  constructor(params: GameParams, endedAt: number | null = null, maxBackfill = 600) {
    assertReady();
    this.params = params;
    this.endedAt = endedAt;
    this.maxBackfill = maxBackfill;
    // Rejects invalid parameters (tickMs 0, unknown algorithm, ...) up front.
    stateAt(params, params.startAt - 1);
  }

  /** Marks the game ended at server Unix ms `endedAt` (from the exit or a poll). */
  end(endedAt: number): void {
    if (this.endedAt === endedAt) return;
    this.endedAt = endedAt;
    this.frozen = null;
  }

  get endedAtMs(): number | null {
    return this.endedAt;
  }

  /** The state at server Unix ms `nowMs` and the breaks since the previous call. */
  at(nowMs: number): FollowResult {
    const now = Math.floor(nowMs);
    if (this.endedAt !== null && now >= this.endedAt) {
      // Once, at the end: the engine freezes the game at the last step begun before the end.
      this.frozen ??= stateAt(this.params, now, this.endedAt);
      return { state: this.frozen, breaks: [] };
    }
    if (now < this.params.startAt) {
      // The engine says how long the countdown has left (cheap: no step yet).
      return { state: stateAt(this.params, now, this.endedAt), breaks: [] };
    }
    // The step index is the engine's clock formula, floor((now - startAt) / tickMs); the tick at
    // that step (value, round, break) is the engine's counter.
    const step = Math.floor((now - this.params.startAt) / this.params.tickMs);
    const breaks: Tick[] = [];
    if (!this.counter || !this.last || step < this.last.step) {
      // First call, or the clock estimate moved back across a tick: counters only go forward.
      const first = !this.counter;
      this.counter?.free();
      this.counter = new GameCounter(this.params.seed, this.params.tickMs, this.params.breakEvery, this.params.algorithm);
      this.last = takeTick(this.counter.advanceTo(step));
      if (first && this.last.broken) breaks.push(this.last);
    } else if (step > this.last.step) {
      const from = Math.max(this.last.step + 1, step - this.maxBackfill + 1);
      if (from > this.last.step + 1) takeTick(this.counter.advanceTo(from - 1));
      for (let s = from; s <= step; s++) {
        const tick = takeTick(this.counter.advanceTo(s));
        if (tick.broken) breaks.push(tick);
        this.last = tick;
      }
    }
    const tick = this.last as Tick;
    return { state: Object.freeze({ phase: 'running' as const, tick }), breaks };
  }

  /** Frees the engine's counter. The follower must not be used afterwards. */
  free(): void {
    this.counter?.free();
    this.counter = null;
  }
}
