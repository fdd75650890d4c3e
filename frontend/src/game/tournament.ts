/**
 * A tournament on the page (`api::tournament`): where each round stands at the server's time,
 * what happens next and when (the countdown), which rounds take joins, and when the standings
 * are worth reading again. Pure functions of the schedule and a server time, plus
 * {@link TournamentWatch}, which keeps the schedule and the standings current with timers.
 *
 * The schedule's `state`s are the origin's at its `asOf` (an answer the edge may have cached for
 * a few seconds): the page recomputes them from the grid on its own synced clock instead, as the
 * origin does (`api::tournament::round_view`).
 *
 * No React: the page subscribes with `subscribe`/`getSnapshot` (useSyncExternalStore).
 */
import { describeError, EdgeError, type EdgeClient, type RoundState, type RoundView, type StandingsView, type TournamentView } from '../api/edge';
import { stateAt, type GameParams } from '../engine/engine';

/** How long the edge (and the origin's `Cache-Control`) may keep a schedule or standings (`api::tournament::MAX_AGE_SECONDS`). */
export const CACHE_MS = 5_000;
/** A read this long after a cached copy expires, or after a round's end, sees the newer one. */
export const REFRESH_MARGIN_MS = 250;
/** Never read the standings again sooner than this after the last read. */
export const MIN_REFRESH_MS = 1_000;
/** After a failed read, the next one comes this much later. */
export const RETRY_MS = 3_000;

/** Where round `r` stands at server time `now` (as the origin computes it). */
export function roundStateAt(r: Pick<RoundView, 'joinsOpenAt' | 'startAt' | 'endAt'>, now: number): RoundState {
  if (now < r.joinsOpenAt) return 'upcoming';
  if (now < r.startAt) return 'open';
  if (now < r.endAt) return 'playing';
  return 'finished';
}

/** The schedule with every round's state at `now`. */
export function scheduleAt(schedule: readonly RoundView[], now: number): RoundView[] {
  return schedule.map((r) => ({ ...r, state: roundStateAt(r, now) }));
}

/** The rounds taking joins at `now` (at most one on the grid: round i+1 opens when round i starts). */
export function openRounds(schedule: readonly RoundView[], now: number): number[] {
  return schedule.filter((r) => roundStateAt(r, now) === 'open').map((r) => r.round);
}

/** One thing the schedule makes happen: a round's joins open, it starts, or it ends. */
export interface Moment {
  readonly round: number;
  readonly kind: 'joins-open' | 'start' | 'end';
}

/** The next instant anything happens after `now`, and everything that happens then. */
export interface NextMoment {
  readonly at: number;
  readonly moments: readonly Moment[];
}

/**
 * The first instant after `now` at which a round's joins open, a round starts or one ends, with
 * every such change at that instant (on the grid round i ends, and round i+1 starts, and round
 * i+2's joins open, all at once); `null` once the last round is over.
 */
export function nextMoment(schedule: readonly RoundView[], now: number): NextMoment | null {
  let at = Infinity;
  let moments: Moment[] = [];
  for (const r of schedule) {
    for (const [kind, when] of [
      ['joins-open', r.joinsOpenAt],
      ['start', r.startAt],
      ['end', r.endAt],
    ] as const) {
      if (when <= now || when > at) continue;
      if (when < at) {
        at = when;
        moments = [];
      }
      moments.push({ round: r.round, kind });
    }
  }
  return moments.length === 0 ? null : { at, moments };
}

/** What happens at a {@link NextMoment}, as a sentence head: `Round 1 starts, round 0 ends`. */
export function describeMoment(next: NextMoment): string {
  const order = { start: 0, 'joins-open': 1, end: 2 };
  const words = { start: 'starts', 'joins-open': 'opens for joins', end: 'ends' };
  const parts = [...next.moments]
    .sort((a, b) => order[a.kind] - order[b.kind] || a.round - b.round)
    .map((m) => `round ${m.round} ${words[m.kind]}`);
  const text = parts.join(', ');
  return text.charAt(0).toUpperCase() + text.slice(1);
}

/** A countdown: `42.3 s` under a minute, `3 min 05 s` under an hour, then `2 h 07 min`. */
export function formatCountdownLong(ms: number): string {
  const clamped = Math.max(0, ms);
  if (clamped < 60_000) return `${(clamped / 1000).toFixed(1)} s`;
  const seconds = Math.floor(clamped / 1000);
  if (seconds < 3_600) return `${Math.floor(seconds / 60)} min ${String(seconds % 60).padStart(2, '0')} s`;
  const minutes = Math.floor(seconds / 60);
  return `${Math.floor(minutes / 60)} h ${String(minutes % 60).padStart(2, '0')} min`;
}

/**
 * A seat's score in a round, as the origin scores it: the value of its exit at `exitedAt` (0 for
 * an exit during the countdown), or, still seated at the round's end `endAt`, the engine's value
 * then (the last step that began before it). From this page's engine, no server data.
 */
export function roundScore(game: GameParams, endAt: number, exitedAt: number | null = null): number {
  const at = exitedAt !== null && exitedAt < endAt ? exitedAt : endAt;
  const s = stateAt(game, at + 1, at);
  return s.phase === 'ended' && s.tick ? s.tick.value : 0;
}

/** Whether the standings are the final ones: every round over, read after the last one ended. */
export function standingsFinal(standings: StandingsView | null, schedule: readonly RoundView[]): boolean {
  const last = schedule[schedule.length - 1];
  return standings !== null && last !== undefined && standings.roundsFinished >= schedule.length && standings.asOf >= last.endAt;
}

/**
 * When (server Unix ms) to read the standings again, given the last ones read (`null`: none
 * yet) and the time of that read, `now`; `null` once they are final.
 *
 * The edge may answer a copy up to {@link CACHE_MS} old, so a read before the copy of `asOf`
 * expires would answer the same: the next regular read is just after `asOf + CACHE_MS`, or, if
 * that moment has passed (the copy outlived it), {@link CACHE_MS} after this read. A round that
 * ends before then is read just after its end, once: its scores are final from then on, and an
 * answer still from before the end is read again at the regular pace. Never sooner than
 * {@link MIN_REFRESH_MS} after this read.
 */
export function standingsRefreshAt(standings: StandingsView | null, schedule: readonly RoundView[], now: number): number | null {
  if (standings === null) return now;
  if (standingsFinal(standings, schedule)) return null;
  const expires = standings.asOf + CACHE_MS + REFRESH_MARGIN_MS;
  let next = expires > now ? expires : now + CACHE_MS;
  const ended = schedule.find((r) => r.endAt > standings.asOf);
  if (ended !== undefined && ended.endAt + REFRESH_MARGIN_MS > now) next = Math.min(next, ended.endAt + REFRESH_MARGIN_MS);
  return Math.max(next, now + MIN_REFRESH_MS);
}

export interface TournamentSnapshot {
  readonly tournamentId: string;
  /** The schedule, once read. */
  readonly tournament: TournamentView | null;
  /** The standings, once read. */
  readonly standings: StandingsView | null;
  /** Whether the standings are final (see {@link standingsFinal}). */
  readonly final: boolean;
  /** Why the schedule cannot be shown (a 404 stops the watch), readable. */
  readonly error: string | null;
  /** The last failed standings read, readable; cleared by the next success. */
  readonly standingsWarning: string | null;
}

export interface TournamentDeps {
  readonly api: Pick<EdgeClient, 'getTournament' | 'getStandings'>;
  readonly clock: { serverNow(): number };
  readonly setTimer?: (fn: () => void, ms: number) => unknown;
  readonly clearTimer?: (handle: unknown) => void;
}

type Listener = () => void;

/**
 * Keeps a tournament's schedule and standings: reads the schedule once (again after a failure,
 * unless the tournament does not exist), and the standings at {@link standingsRefreshAt}, until
 * they are final or the watch is disposed. `refreshStandings()` reads them now (after a seat's
 * exit, say).
 */
export class TournamentWatch {
  private snapshot: TournamentSnapshot;
  private readonly listeners = new Set<Listener>();
  private timer: unknown = null;
  private disposed = false;
  private reading = false;
  private readonly setTimer: (fn: () => void, ms: number) => unknown;
  private readonly clearTimer: (handle: unknown) => void;

  constructor(
    tournamentId: string,
    private readonly deps: TournamentDeps,
  ) {
    this.snapshot = { tournamentId, tournament: null, standings: null, final: false, error: null, standingsWarning: null };
    this.setTimer = deps.setTimer ?? ((fn, ms) => setTimeout(fn, ms));
    this.clearTimer = deps.clearTimer ?? ((h) => clearTimeout(h as ReturnType<typeof setTimeout>));
  }

  subscribe = (listener: Listener): (() => void) => {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  };

  getSnapshot = (): TournamentSnapshot => this.snapshot;

  run(): void {
    void this.step();
  }

  /** Reads the standings now (unless a read is under way or they are final). */
  refreshStandings(): void {
    if (this.disposed || this.snapshot.tournament === null || this.snapshot.final) return;
    this.schedule(0);
  }

  dispose(): void {
    this.disposed = true;
    if (this.timer !== null) this.clearTimer(this.timer);
    this.timer = null;
    this.listeners.clear();
  }

  private update(patch: Partial<TournamentSnapshot>) {
    this.snapshot = { ...this.snapshot, ...patch };
    for (const l of [...this.listeners]) l();
  }

  private schedule(ms: number) {
    if (this.disposed) return;
    if (this.timer !== null) this.clearTimer(this.timer);
    this.timer = this.setTimer(() => {
      this.timer = null;
      void this.step();
    }, Math.max(0, ms));
  }

  private async step(): Promise<void> {
    if (this.disposed || this.reading) return;
    this.reading = true;
    try {
      await this.read();
    } finally {
      this.reading = false;
    }
  }

  private async read(): Promise<void> {
    const id = this.snapshot.tournamentId;
    let tournament = this.snapshot.tournament;
    if (tournament === null) {
      try {
        tournament = await this.deps.api.getTournament(id);
      } catch (err) {
        if (this.disposed) return;
        const gone = err instanceof EdgeError && (err.status === 404 || err.code === 'validation_failed');
        this.update({ error: gone ? `${describeError(err)}. Check the tournament link.` : describeError(err) });
        if (!gone) this.schedule(RETRY_MS);
        return;
      }
      if (this.disposed) return;
      this.update({ tournament, error: null });
    }
    try {
      const standings = await this.deps.api.getStandings(id);
      if (this.disposed) return;
      // An older answer (a cached copy) never replaces a newer one.
      const kept = this.snapshot.standings !== null && this.snapshot.standings.asOf > standings.asOf ? this.snapshot.standings : standings;
      const final = standingsFinal(kept, tournament.schedule);
      this.update({ standings: kept, final, standingsWarning: null });
      const at = standingsRefreshAt(kept, tournament.schedule, this.deps.clock.serverNow());
      if (at !== null) this.schedule(at - this.deps.clock.serverNow());
    } catch (err) {
      if (this.disposed) return;
      this.update({ standingsWarning: `${describeError(err)}; trying again.` });
      this.schedule(RETRY_MS);
    }
  }
}
