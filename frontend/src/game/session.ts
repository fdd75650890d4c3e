/**
 * One game on this page, as the player who started it or as a viewer who joined it: runs the
 * engine on the estimated server time, one update per tick, keeps the break log, learns from
 * the edge when the game ended, and stops every timer when it is over.
 *
 * A sealed game (`sealed-v1`) cannot be computed ahead: the session counts up from the last
 * settled break and settles each round when its key arrives (pushed by the live room, or read
 * from the rounds endpoint when the room is not open or to fill a gap), checking that every key
 * chains to the commitment (see `./sealed`). After its end it reads the remaining keys and the
 * root, and says whether the whole game verified against the commitment.
 *
 * No React: the page subscribes with `subscribe`/`getSnapshot` (useSyncExternalStore).
 */
import { describeError, EdgeError, retryDelayMs, SEALED_ALGORITHM, type EdgeClient, type Game } from '../api/edge';
import { GameFollower, type FollowResult, type GameState, type Tick } from '../engine/engine';
import type { Hello, Latency, LiveEvents, Presence } from './live';
import { SealedGame, type SealedView } from './sealed';
import { applyJoin, applySeat, mergeResults, type SeatResult, type SeatRow } from './seats';

export type Role = 'player' | 'viewer';

/**
 * The seat this page plays in a shared game it joined (not the creator's): its number and
 * player. The seat's owner token is the game's `ownerToken` in the session (it exits this seat
 * and no other).
 */
export interface MySeat {
  readonly seat: number;
  readonly userId: string;
}

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
  /** Whether the shown tick is proven (always for seeded games; see `./sealed` for sealed ones). */
  readonly settled: boolean;
  /** A sealed game's rounds, keys and verification (null for a seeded game). */
  readonly sealed: SealedView | null;
  /** The last failed read of a sealed game's keys, readable; cleared by the next success. */
  readonly roundsWarning: string | null;
  /**
   * A shared game's seats and results (null for a one-player game): read from `/results` on
   * load and after the end, updated by the room's `seated` (join) and `seat` (result) pushes the
   * moment each is committed. No polling: a join reaches the page through the room.
   */
  readonly seats: readonly SeatRow[] | null;
  /** The seat this page joined and plays (null: the creator's page, or a viewer). */
  readonly mySeat: MySeat | null;
  /**
   * A shared game: this player's committed result (from the exit's answer, or the seat's row),
   * null until they exited.
   */
  readonly myResult: SeatResult | null;
}

/** Who this page plays as: a joined seat's player, else the game's creator (`null` for a viewer). */
export function playerOf(snap: Pick<SessionSnapshot, 'game' | 'role' | 'mySeat'>): string | null {
  if (snap.role !== 'player') return null;
  return snap.mySeat?.userId ?? snap.game.userId;
}

/** A live room connection, as the session uses it (see `./live`). */
export interface LiveConnection {
  start(): void;
  close(): void;
}

export type LiveFactory = (gameId: string, hello: Hello, events: LiveEvents) => LiveConnection;

export const MAX_LOG = 100;
/** While the live room is open (it pushes every key), the rounds are re-read this often anyway. */
export const LIVE_ROUNDS_CHECK_MS = 10_000;
/** A rounds page this long is full: more may follow it (`api::MAX_ROUNDS_PAGE`). */
const FULL_ROUNDS_PAGE = 1_000;
/** After the end: reads of the final keys and the root before the page stops asking. */
const FINAL_TRIES = 8;

/** What a session follows: a seeded game's engine counter, or a sealed game's keys. */
interface Follower {
  readonly params: { readonly startAt: number; readonly tickMs: number };
  readonly endedAtMs: number | null;
  at(nowMs: number): FollowResult & { readonly settled?: boolean };
  end(endedAt: number): void;
  free(): void;
}

export interface SessionDeps {
  readonly clock: { serverNow(): number };
  /** `getRounds` is needed only to follow sealed games. */
  readonly api: Pick<EdgeClient, 'getGame' | 'exitGame'> & Partial<Pick<EdgeClient, 'getRounds' | 'getResults'>>;
  /** How often the game's status is re-read from the edge (ms). */
  readonly pollMs?: number;
  readonly setTimer?: (fn: () => void, ms: number) => unknown;
  readonly clearTimer?: (handle: unknown) => void;
  /** Opens the game's live room; without it the session only polls. */
  readonly live?: LiveFactory | null;
}

type Listener = () => void;

export class GameSession {
  private readonly follower: Follower;
  /** The same object as `follower` for a sealed game. */
  private readonly sealed: SealedGame | null;
  private roundsTimer: unknown = null;
  private roundsAbort: AbortController | null = null;
  /** Increments per rounds read, so a stale one stops after its await. */
  private roundsGen = 0;
  private finalTries = 0;
  private snapshot: SessionSnapshot;
  private readonly listeners = new Set<Listener>();
  private readonly deps: Required<SessionDeps>;
  private liveRoom: LiveConnection | null = null;
  private tickTimer: unknown = null;
  private pollTimer: unknown = null;
  private pollAbort: AbortController | null = null;
  private disposed = false;

  constructor(game: Game, role: Role, deps: SessionDeps, mySeat: MySeat | null = null) {
    this.deps = {
      pollMs: 3_000,
      setTimer: (fn, ms) => setTimeout(fn, ms),
      clearTimer: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
      live: null,
      ...deps,
    };
    const endedAt = game.exitedAt ?? null;
    if (game.algorithm === SEALED_ALGORITHM) {
      if (!game.commitment) throw new Error('this sealed game has no commitment: its keys cannot be checked');
      this.sealed = new SealedGame(
        { startAt: game.startAt, tickMs: game.tickMs, breakEvery: game.breakEvery, commitment: game.commitment },
        endedAt,
      );
      this.follower = this.sealed;
    } else {
      this.sealed = null;
      this.follower = new GameFollower(
        { seed: game.seed, startAt: game.startAt, tickMs: game.tickMs, breakEvery: game.breakEvery, algorithm: game.algorithm },
        endedAt,
      );
    }
    const now = this.deps.clock.serverNow();
    // Before the first round could have broken there is nothing to fetch: the count is exact.
    if (this.sealed && endedAt === null && now < this.earliestReveal()) this.sealed.markSynced();
    const { state, breaks, settled } = this.follower.at(now);
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
      settled: settled ?? true,
      sealed: this.sealed?.view() ?? null,
      roundsWarning: null,
      seats: game.shared ? [] : null,
      mySeat: role === 'player' && game.shared ? mySeat : null,
      myResult: null,
    };
  }

  /** The rows changed: this player's result is their seat's row's, once it has one. */
  private withSeats(seats: readonly SeatRow[]): Partial<SessionSnapshot> {
    const me = playerOf(this.snapshot);
    const mine = this.snapshot.myResult === null && me !== null ? seats.find((r) => r.userId === me && r.result !== null) : undefined;
    return mine?.result ? { seats, myResult: mine.result } : { seats };
  }

  /** A shared game: reads its seats and results (a failure keeps what the page has). */
  private async loadResults(): Promise<void> {
    const getResults = this.deps.api.getResults?.bind(this.deps.api);
    if (!getResults || this.snapshot.seats === null || this.disposed) return;
    try {
      const view = await getResults(this.snapshot.game.gameId, { timeoutMs: 5_000 });
      if (this.disposed || this.snapshot.seats === null) return;
      this.set(this.withSeats(mergeResults(this.snapshot.seats, view)));
    } catch {
      // The pushes still update the table; the next load or end reads again.
    }
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

  /** Starts the timers (for an ended sealed game: reads its keys and root once to verify it). */
  run(): void {
    if (this.disposed) return;
    void this.loadResults();
    if (this.snapshot.stopped) {
      if (this.sealed && !this.snapshot.leftEarly) void this.fetchRounds();
      return;
    }
    this.scheduleTick();
    this.schedulePoll();
    this.openLive();
    if (this.sealed) {
      if (this.sealed.isSynced) this.scheduleRounds(this.untilNextReveal());
      else void this.fetchRounds();
    }
  }

  /** Joins the game's live room: presence, the exit pushed the moment it is committed. */
  private openLive(): void {
    if (!this.deps.live || this.liveRoom) return;
    const { game, role, mySeat } = this.snapshot;
    // A player proves itself with the owner token this tab holds (the start's or the seat's
    // join's, kept in sessionStorage); without one the page can only watch. A joined seat's
    // token makes this socket that seat's player (the room checks the token is that seat's).
    const hello: Hello =
      role === 'player' && game.ownerToken
        ? mySeat === null
          ? { role, userId: game.userId, ownerToken: game.ownerToken }
          : { role, userId: mySeat.userId, ownerToken: game.ownerToken, seat: mySeat.seat }
        : { role: 'viewer' };
    this.liveRoom = this.deps.live(game.gameId, hello, {
      onPresence: (presence) => {
        if (!this.disposed) this.set({ presence });
      },
      onStatus: (liveStatus) => {
        if (this.disposed || this.snapshot.stopped) return;
        this.set({ liveStatus });
        // A sealed game: on (re)open, fill any gap the room's pushes left; when the room goes
        // away, read the keys instead (not before the next key can be out at all).
        if (this.sealed && liveStatus !== 'connecting') {
          this.scheduleRounds(this.sealed.isSynced ? this.earliestReveal() - this.deps.clock.serverNow() : 0);
        }
      },
      onRound: (round, key) => {
        if (!this.disposed) this.acceptKey(round, key);
      },
      onSeat: (seat) => {
        if (!this.disposed && this.snapshot.seats !== null) this.set(this.withSeats(applySeat(this.snapshot.seats, seat)));
      },
      onSeated: (join) => {
        if (this.disposed || this.snapshot.seats === null) return;
        const seats = applyJoin(this.snapshot.seats, join);
        if (seats !== this.snapshot.seats) this.set({ seats });
      },
      onExited: (exitedAt) => {
        if (this.disposed) return;
        if (this.snapshot.endedAt === null) this.end(exitedAt);
        else if (this.snapshot.seats !== null) {
          // This player's seat exited earlier; the whole game now has: final results, room closed.
          void this.loadResults();
          this.liveRoom?.close();
          this.liveRoom = null;
        }
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
    this.update();
  }

  private update(extra: Partial<SessionSnapshot> = {}): void {
    const now = this.deps.clock.serverNow();
    const { state, breaks, settled } = this.follower.at(this.snapshot.stopped && this.snapshot.endedAt !== null ? Math.max(now, this.snapshot.endedAt) : now);
    const patch: { -readonly [K in keyof SessionSnapshot]?: SessionSnapshot[K] } = {
      state,
      serverNow: now,
      settled: settled ?? true,
      ...extra,
    };
    if (this.sealed) patch.sealed = this.sealed.view();
    if (breaks.length > 0) {
      patch.breaks = [...breaks.map((t) => this.entry(t)).reverse(), ...this.snapshot.breaks].slice(0, MAX_LOG);
      patch.flashKey = this.snapshot.flashKey + breaks.length;
    }
    if (state.phase === 'ended' && !this.snapshot.stopped) {
      patch.stopped = true;
      this.stopTimers();
      if (this.sealed) {
        this.set(patch);
        void this.fetchRounds();
        return;
      }
    }
    this.set(patch);
  }

  /** A sealed game's key arrived (push or rounds page): checked, then the round settles at once. */
  private acceptKey(round: number, key: string): void {
    const sealed = this.sealed;
    if (!sealed || this.disposed || this.snapshot.leftEarly) return;
    const result = sealed.offer(round, key);
    if (result.kind === 'known') return;
    this.update();
  }

  /** Server Unix ms of the earliest instant the next round's key can be out (public facts only). */
  private earliestReveal(): number {
    const sealed = this.sealed as SealedGame;
    const p = sealed.params;
    const last = sealed.revealed === 0 ? -1 : (sealed.breakOf(sealed.revealed) as number);
    return p.startAt + (last + sealed.minRound) * p.tickMs + 1;
  }

  private untilNextReveal(): number {
    const wait = this.earliestReveal() - this.deps.clock.serverNow();
    return this.snapshot.liveStatus === 'open' ? Math.max(wait, LIVE_ROUNDS_CHECK_MS) : wait;
  }

  private scheduleRounds(delayMs: number): void {
    if (this.disposed || !this.sealed) return;
    if (this.roundsTimer !== null) this.deps.clearTimer(this.roundsTimer);
    this.roundsTimer = this.deps.setTimer(
      () => {
        this.roundsTimer = null;
        void this.fetchRounds();
      },
      Math.min(60_000, Math.max(0, delayMs)),
    );
  }

  /**
   * Reads the keys not held yet from the rounds endpoint. A late joiner asks from a guess below
   * the likely number of rounds (lower on a 425) and checks only the page's latest key against
   * the commitment: the earlier ones are its hashes. A 425 says when to ask again. After the
   * end, it reads until the keys cover the final step, then the root from the game's view.
   */
  async fetchRounds(): Promise<void> {
    const sealed = this.sealed;
    const getRounds = this.deps.api.getRounds;
    if (!sealed || this.disposed || this.snapshot.leftEarly) return;
    if (this.roundsTimer !== null) this.deps.clearTimer(this.roundsTimer);
    this.roundsTimer = null;
    if (!getRounds) {
      this.set({ roundsWarning: "this page cannot read a sealed game's keys (no rounds client)" });
      return;
    }
    const gen = ++this.roundsGen;
    this.roundsAbort?.abort();
    const abort = new AbortController();
    this.roundsAbort = abort;
    const gameId = this.snapshot.game.gameId;
    const ended = () => sealed.endedAtMs !== null;
    let retryIn: number | null = null;
    try {
      let from = sealed.revealed + 1;
      if (sealed.revealed === 0 && !ended()) {
        const p = sealed.params;
        const steps = Math.floor((this.deps.clock.serverNow() - p.startAt) / p.tickMs);
        from = Math.max(1, Math.floor(steps / p.breakEvery / 2));
      }
      while (from <= sealed.chainRounds) {
        let page;
        try {
          page = await getRounds.call(this.deps.api, gameId, from, { signal: abort.signal, timeoutMs: 5_000 });
        } catch (err) {
          if (err instanceof EdgeError && err.status === 425) {
            if (from > sealed.revealed + 1) {
              // A late joiner guessed too far: ask from lower down.
              from = Math.max(sealed.revealed + 1, Math.floor(from / 2));
              continue;
            }
            retryIn = retryDelayMs(err, this.deps.clock.serverNow(), 1_000, 50, 10_000);
            break;
          }
          throw err;
        }
        if (gen !== this.roundsGen || this.disposed) return;
        if (page.rounds.length === 0) break;
        // The latest key first (it checks against what is held, the others are its hashes),
        // then every other key of the page must be the one derived.
        const last = page.rounds[page.rounds.length - 1];
        this.acceptKey(last.round, last.key);
        for (const rk of page.rounds) if (rk !== last) this.acceptKey(rk.round, rk.key);
        if (page.rounds.length < FULL_ROUNDS_PAGE || sealed.revealed < last.round) break;
        from = last.round + 1;
      }
      if (gen !== this.roundsGen || this.disposed) return;
      sealed.markSynced();
      if (this.snapshot.roundsWarning !== null) this.set({ roundsWarning: null });
      if (ended()) {
        await this.finish(gen, abort.signal);
        return;
      }
      this.update();
      if (!this.snapshot.stopped) this.scheduleRounds(retryIn !== null && this.snapshot.liveStatus !== 'open' ? retryIn : this.untilNextReveal());
    } catch (err) {
      if (gen !== this.roundsGen || this.disposed || abort.signal.aborted) return;
      this.set({ roundsWarning: `Could not read the game's keys: ${describeError(err)}` });
      if (!ended() || this.finalTries++ < FINAL_TRIES) this.scheduleRounds(2_000);
      else sealed.markFinal();
    } finally {
      if (this.roundsAbort === abort) this.roundsAbort = null;
    }
  }

  /** After the end: the final keys are in (or asked again); then the root, from the game's view. */
  private async finish(gen: number, signal: AbortSignal): Promise<void> {
    const sealed = this.sealed as SealedGame;
    if (!sealed.finalSettled()) {
      // The origin publishes the round under way at the end once the end is stored: ask again.
      this.update();
      if (this.finalTries++ < FINAL_TRIES) this.scheduleRounds(500);
      return;
    }
    let root = this.snapshot.game.root;
    if (root === undefined) {
      const game = await this.deps.api.getGame(this.snapshot.game.gameId, { signal, timeoutMs: 5_000 });
      if (gen !== this.roundsGen || this.disposed) return;
      root = game.root;
    }
    if (root !== undefined) {
      sealed.checkRoot(root);
      sealed.markFinal();
      this.update({ game: { ...this.snapshot.game, root } });
    } else if (this.finalTries++ < FINAL_TRIES) {
      // The edge may still serve a cached view from before the end: ask again a few times.
      this.update();
      this.scheduleRounds(1_000);
    } else {
      // No root published: the keys alone verify the game.
      sealed.markFinal();
      this.update();
    }
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
      // Seats are never re-read here: the room pushes each join and result (and replays them
      // to a socket that reconnects).
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
  end(endedAt: number, game?: Game, keepRoom = false, extra: Partial<SessionSnapshot> = {}): void {
    if (this.disposed) return;
    this.follower.end(endedAt);
    const { state, settled } = this.follower.at(Math.max(endedAt, this.deps.clock.serverNow()));
    this.stopTimers(keepRoom);
    this.set({
      state,
      endedAt,
      stopped: true,
      exiting: false,
      settled: settled ?? true,
      sealed: this.sealed?.view() ?? null,
      game: game ?? { ...this.snapshot.game, status: 'exited', exitedAt: endedAt },
      ...extra,
    });
    // A sealed game: the keys up to the final step and the root are public now.
    if (this.sealed && !this.snapshot.leftEarly) void this.fetchRounds();
    // A shared game: the final results (every seat's, also those pushed while this page was away).
    void this.loadResults();
  }

  /** The player ends the game for everyone. Never rejects: failures land in `error`. */
  async exit(): Promise<void> {
    const { game, role, stopped, exiting } = this.snapshot;
    const me = playerOf(this.snapshot);
    if (role !== 'player' || me === null || stopped || exiting || this.disposed) return;
    this.set({ exiting: true, error: null });
    try {
      // A joined seat exits as its own player, with its seat's token (it exits no other seat).
      const result = game.ownerToken
        ? await this.deps.api.exitGame(game.gameId, me, game.backendRegion, game.ownerToken)
        : await this.deps.api.exitGame(game.gameId, me, game.backendRegion);
      if (this.disposed) return;
      // A shared game goes on for the other seats: keep the room, so their results still arrive.
      const shared = this.snapshot.seats !== null;
      this.end(result.exitedAt, undefined, shared, shared && result.result ? { myResult: result.result } : {});
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

  private stopTimers(keepRoom = false): void {
    if (this.tickTimer !== null) this.deps.clearTimer(this.tickTimer);
    if (this.pollTimer !== null) this.deps.clearTimer(this.pollTimer);
    if (this.roundsTimer !== null) this.deps.clearTimer(this.roundsTimer);
    this.tickTimer = null;
    this.pollTimer = null;
    this.roundsTimer = null;
    this.pollAbort?.abort();
    this.pollAbort = null;
    this.roundsGen++;
    this.roundsAbort?.abort();
    this.roundsAbort = null;
    if (keepRoom) return;
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
