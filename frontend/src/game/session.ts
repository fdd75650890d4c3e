/**
 * One game on this page, as the player who started it or as a viewer who joined it: runs the
 * engine on the estimated server time, one update per tick, keeps the break log, learns from
 * the edge when the game ended, and stops every timer when it is over.
 *
 * No React: the page subscribes with `subscribe`/`getSnapshot` (useSyncExternalStore).
 */
import { describeError, type EdgeClient, type Game } from '../api/edge';
import { GameFollower, type GameState, type Tick } from '../engine/engine';
import type { Hello, Latency, LiveEvents, Presence } from './live';

export type Role = 'player' | 'viewer';

export interface BreakEntry {
  readonly step: number;
  readonly round: number;
  /** Server Unix ms at which the step began. */
  readonly at: number;
}

export interface SessionSnapshot {
  readonly game: Game;
  readonly role: Role;
  readonly state: GameState;
  /** Newest first, at most {@link MAX_LOG} entries. */
  readonly breaks: readonly BreakEntry[];
  /** Increments on every break, to restart the flash animation. */
  readonly flashKey: number;
  /** The server Unix ms at which the game ended (exit), if known. */
  readonly endedAt: number | null;
  /** True once nothing more will change: the game ended, or this page stopped watching. */
  readonly stopped: boolean;
  /** True if this page stopped watching while the game may go on. */
  readonly leftEarly: boolean;
  readonly exiting: boolean;
  /** The last failed action (exit), readable. */
  readonly error: string | null;
  /** The last failed status poll, readable; cleared by the next success. */
  readonly pollWarning: string | null;
  /** The estimated server time of this snapshot. */
  readonly serverNow: number;
  /** Who is in the game's live room (null until the room answers). */
  readonly presence: Presence | null;
  /** The live room's connection: `off` (none), `connecting`, `open`, `down` (polling instead). */
  readonly liveStatus: 'off' | 'connecting' | 'open' | 'down';
  /** This connection's latency to the room. */
  readonly latency: Latency | null;
  /** The room's last latency warning, readable. */
  readonly latencyWarning: string | null;
  /** Why the room did not let this tab join as player (it watches instead), readable. */
  readonly liveNotice: string | null;
}

/** A live room connection, as the session uses it (see `./live`). */
export interface LiveConnection {
  start(): void;
  close(): void;
}

export type LiveFactory = (gameId: string, hello: Hello, events: LiveEvents) => LiveConnection;

export const MAX_LOG = 100;

export interface SessionDeps {
  readonly clock: { serverNow(): number };
  readonly api: Pick<EdgeClient, 'getGame' | 'exitGame'>;
  /** How often the game's status is re-read from the edge (ms). */
  readonly pollMs?: number;
  readonly setTimer?: (fn: () => void, ms: number) => unknown;
  readonly clearTimer?: (handle: unknown) => void;
  /** Opens the game's live room; without it the session only polls. */
  readonly live?: LiveFactory | null;
}

type Listener = () => void;

export class GameSession {
  private readonly follower: GameFollower;
  private snapshot: SessionSnapshot;
  private readonly listeners = new Set<Listener>();
  private readonly deps: Required<SessionDeps>;
  private liveRoom: LiveConnection | null = null;
  private tickTimer: unknown = null;
  private pollTimer: unknown = null;
  private pollAbort: AbortController | null = null;
  private disposed = false;

  constructor(game: Game, role: Role, deps: SessionDeps) {
    this.deps = {
      pollMs: 3_000,
      setTimer: (fn, ms) => setTimeout(fn, ms),
      clearTimer: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
      live: null,
      ...deps,
    };
    const endedAt = game.exitedAt ?? null;
    this.follower = new GameFollower(
      { seed: game.seed, startAt: game.startAt, tickMs: game.tickMs, breakEvery: game.breakEvery, algorithm: game.algorithm },
      endedAt,
    );
    const now = this.deps.clock.serverNow();
    const { state, breaks } = this.follower.at(now);
    this.snapshot = {
      game,
      role,
      state,
      breaks: breaks.map((t) => this.entry(t)).reverse(),
      flashKey: breaks.length,
      endedAt,
      stopped: state.phase === 'ended',
      leftEarly: false,
      exiting: false,
      error: null,
      pollWarning: null,
      serverNow: now,
      presence: null,
      liveStatus: 'off',
      latency: null,
      latencyWarning: null,
      liveNotice: null,
    };
  }

  subscribe = (listener: Listener): (() => void) => {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  };

  getSnapshot = (): SessionSnapshot => this.snapshot;

  private set(patch: Partial<SessionSnapshot>): void {
    this.snapshot = { ...this.snapshot, ...patch };
    for (const listener of this.listeners) listener();
  }

  private entry(tick: Tick): BreakEntry {
    const p = this.follower.params;
    return { step: tick.step, round: tick.round, at: p.startAt + tick.step * p.tickMs };
  }

  /** Starts the timers (no-op if the game already ended). */
  run(): void {
    if (this.disposed || this.snapshot.stopped) return;
    this.scheduleTick();
    this.schedulePoll();
    this.openLive();
  }

  /** Joins the game's live room: presence, the exit pushed the moment it is committed. */
  private openLive(): void {
    if (!this.deps.live || this.liveRoom) return;
    const { game, role } = this.snapshot;
    // A player proves itself with the owner token this tab holds (the start's, kept in
    // sessionStorage); without one the page can only watch.
    const hello: Hello =
      role === 'player' && game.ownerToken ? { role, userId: game.userId, ownerToken: game.ownerToken } : { role: 'viewer' };
    this.liveRoom = this.deps.live(game.gameId, hello, {
      onPresence: (presence) => {
        if (!this.disposed) this.set({ presence });
      },
      onStatus: (liveStatus) => {
        if (!this.disposed && !this.snapshot.stopped) this.set({ liveStatus });
      },
      onExited: (exitedAt) => {
        if (!this.disposed && this.snapshot.endedAt === null) this.end(exitedAt);
      },
      onLatency: (latency) => {
        if (!this.disposed) this.set({ latency });
      },
      onWarning: (w) => {
        if (!this.disposed) this.set({ latencyWarning: w.message });
      },
      onRefused: (message) => {
        if (!this.disposed) this.set({ liveNotice: `live room: joined as viewer (${message})` });
      },
    });
    this.liveRoom.start();
  }

  /** Recomputes the state now (also called by the tick timer and on tab focus). */
  refresh(): void {
    if (this.disposed || this.snapshot.stopped) return;
    const now = this.deps.clock.serverNow();
    const { state, breaks } = this.follower.at(now);
    const patch: { -readonly [K in keyof SessionSnapshot]?: SessionSnapshot[K] } = { state, serverNow: now };
    if (breaks.length > 0) {
      patch.breaks = [...breaks.map((t) => this.entry(t)).reverse(), ...this.snapshot.breaks].slice(0, MAX_LOG);
      patch.flashKey = this.snapshot.flashKey + breaks.length;
    }
    if (state.phase === 'ended') {
      patch.stopped = true;
      this.stopTimers();
    }
    this.set(patch);
  }

  private scheduleTick(): void {
    if (this.disposed || this.snapshot.stopped) return;
    const { state, serverNow } = this.snapshot;
    const p = this.follower.params;
    let delay: number;
    if (state.phase === 'countdown') {
      delay = Math.min(100, state.msUntilStart);
    } else {
      const intoTick = (((serverNow - p.startAt) % p.tickMs) + p.tickMs) % p.tickMs;
      delay = p.tickMs - intoTick;
    }
    const endedAt = this.follower.endedAtMs;
    if (endedAt !== null) delay = Math.min(delay, endedAt - serverNow);
    // A little late rather than early, so the timer lands inside the next step; never a busy loop.
    delay = Math.min(1_000, Math.max(15, delay + 2));
    this.tickTimer = this.deps.setTimer(() => {
      this.tickTimer = null;
      this.refresh();
      this.scheduleTick();
    }, delay);
  }

  private schedulePoll(): void {
    if (this.disposed || this.snapshot.stopped) return;
    this.pollTimer = this.deps.setTimer(() => {
      this.pollTimer = null;
      void this.poll().finally(() => this.schedulePoll());
    }, this.deps.pollMs);
  }

  /** Re-reads the game from the edge; ends the session if the game was exited. */
  async poll(): Promise<void> {
    if (this.disposed || this.snapshot.stopped) return;
    // The live room pushes the exit; poll only as a fallback while it is not open.
    if (this.snapshot.liveStatus === 'open') return;
    const abort = new AbortController();
    this.pollAbort = abort;
    try {
      const game = await this.deps.api.getGame(this.snapshot.game.gameId, { signal: abort.signal, timeoutMs: 5_000 });
      if (this.disposed) return;
      if (game.exitedAt !== undefined) {
        this.end(game.exitedAt, { ...this.snapshot.game, ...game, backendRegion: this.snapshot.game.backendRegion ?? game.backendRegion });
      } else if (this.snapshot.pollWarning !== null) {
        this.set({ pollWarning: null });
      }
    } catch (err) {
      if (!this.disposed && !abort.signal.aborted) {
        this.set({ pollWarning: `Could not refresh the game's status: ${describeError(err)}` });
      }
    } finally {
      if (this.pollAbort === abort) this.pollAbort = null;
    }
  }

  /** The game ended at server Unix ms `endedAt`: freeze at the engine's final step. */
  end(endedAt: number, game?: Game): void {
    if (this.disposed) return;
    this.follower.end(endedAt);
    const { state } = this.follower.at(Math.max(endedAt, this.deps.clock.serverNow()));
    this.stopTimers();
    this.set({
      state,
      endedAt,
      stopped: true,
      exiting: false,
      game: game ?? { ...this.snapshot.game, status: 'exited', exitedAt: endedAt },
    });
  }

  /** The player ends the game for everyone. Never rejects: failures land in `error`. */
  async exit(): Promise<void> {
    const { game, role, stopped, exiting } = this.snapshot;
    if (role !== 'player' || stopped || exiting || this.disposed) return;
    this.set({ exiting: true, error: null });
    try {
      const result = game.ownerToken
        ? await this.deps.api.exitGame(game.gameId, game.userId, game.backendRegion, game.ownerToken)
        : await this.deps.api.exitGame(game.gameId, game.userId, game.backendRegion);
      this.end(result.exitedAt);
    } catch (err) {
      if (!this.disposed) this.set({ exiting: false, error: describeError(err) });
    }
  }

  /** A viewer stops watching: the timers stop, the last state stays on screen. */
  leave(): void {
    if (this.snapshot.stopped) return;
    this.refresh();
    this.stopTimers();
    this.set({ stopped: true, leftEarly: true });
  }

  private stopTimers(): void {
    if (this.tickTimer !== null) this.deps.clearTimer(this.tickTimer);
    if (this.pollTimer !== null) this.deps.clearTimer(this.pollTimer);
    this.tickTimer = null;
    this.pollTimer = null;
    this.pollAbort?.abort();
    this.pollAbort = null;
    this.liveRoom?.close();
    this.liveRoom = null;
  }

  /** Stops everything and frees the engine's memory. */
  dispose(): void {
    if (this.disposed) return;
    this.stopTimers();
    this.disposed = true;
    this.follower.free();
    this.listeners.clear();
  }
}
