/**
 * A sealed game (`sealed-v1`, issue 24) as this page follows it: pure logic, no timers, no
 * network, no React.
 *
 * The page cannot compute a sealed game's breaks ahead: round `r` breaks after a number of steps
 * drawn from key `k_r` of a SHA-256 hash chain, and `k_r` is revealed only once round `r` has
 * broken (pushed by the game's live room, or read from `GET /edge/game/{id}/rounds`). So:
 *
 * - Between breaks the page counts up from the last settled break, as for any game; such a tick
 *   is *provisional* (the engine's `settled == false`) once it is past the shortest round.
 * - When round `r`'s key arrives, {@link SealedGame.offer} checks that it chains: `H(k_r)` must be
 *   the previous key (`k_(r-1)`, the commitment shown from the start for round 1), or, for a key
 *   further ahead (a late joiner, a missed push), `H^(r-R)(k_r) == k_R`, the earlier keys then
 *   being its hashes. A key that does not chain is rejected (tampered, swapped, another game's)
 *   and reported; nothing of it is used.
 * - The accepted key gives where round `r` broke (`B_r = B_(r-1) + L(k_r)`, the engine's
 *   `sealedRoundLength`); the round is settled: the ticks shown past `B_r` as round `r - 1` are
 *   rolled back (counted in {@link SettledRound.rolledBack}) and the next tick shown is the right
 *   one. The step shown never goes back.
 * - After the end, once the keys cover the final step and (when published) the root hashes down
 *   to the last key, the game is verified against the commitment.
 *
 * Every hash and every round length is the shared engine's (wasm); this file only keeps the
 * list of keys and their break steps.
 */
import {
  sealedChainRounds,
  sealedHash,
  sealedRoundLength,
  sealedVerifyLatest,
} from '../engine/generated/shared_engine.js';
import type { FollowResult, GameState, Tick } from '../engine/engine';

/** The wire name of the algorithm. */
export const SEALED_V1 = 'sealed-v1';
/** The shortest round, in ms (the engine's `MIN_ROUND_MS`): `m = ceil(1000 / tickMs)` steps. */
export const MIN_ROUND_MS = 1_000;

const KEY = /^[0-9a-fA-F]{64}$/;

/** Whether `text` is a 64-hex-digit key. */
export function isKey(text: unknown): text is string {
  return typeof text === 'string' && KEY.test(text);
}

/** What determines a sealed game's public timeline (the game view's fields). */
export interface SealedParams {
  /** Unix ms at which step 0 begins. */
  readonly startAt: number;
  readonly tickMs: number;
  /** The mean round length, in steps. */
  readonly breakEvery: number;
  /** The chain's head, shown from the start. */
  readonly commitment: string;
}

/** A settled round, as the page shows it. */
export interface SettledRound {
  readonly round: number;
  /** The step at which it broke. */
  readonly breakStep: number;
  /** Server Unix ms at which that step began. */
  readonly at: number;
  /** How many ticks the page had shown past the break as the previous round (0: on time). */
  readonly rolledBack: number;
  /** Whether this page received the key itself (false: derived by hashing a later one). */
  readonly direct: boolean;
}

/** What {@link SealedGame.offer} did with a key. */
export type OfferResult =
  | { readonly kind: 'settled'; readonly rounds: readonly SettledRound[] }
  | { readonly kind: 'known' }
  | { readonly kind: 'rejected'; readonly message: string };

/** Whether the whole game checks against the commitment (after the end). */
export type Verification =
  | { readonly status: 'running' }
  | { readonly status: 'pending'; readonly reason: string }
  | { readonly status: 'verified'; readonly rounds: number; readonly root: boolean }
  | { readonly status: 'failed'; readonly reason: string };

/** The SealedPanel's view: a plain, frozen value that changes only when something happened. */
export interface SealedView {
  readonly commitment: string;
  /** Rounds in the chain (`N`). */
  readonly chainRounds: number;
  /** Rounds settled so far (every key up to this one is known and chains). */
  readonly revealed: number;
  /** The latest settled round's key. */
  readonly latestKey: string | null;
  /** The step the game froze at, once it has ended (null while running, or ended before step 0). */
  readonly finalStep: number | null;
  /** The last settled rounds, newest first (at most {@link MAX_SHOWN_ROUNDS}). */
  readonly recent: readonly SettledRound[];
  /** Ticks rolled back at the last settle, if any round settled while this page watched. */
  readonly lastRollback: number | null;
  /** The largest rollback seen. */
  readonly maxRollback: number;
  /** Keys rejected so far, and the last rejection, readable. */
  readonly rejected: number;
  readonly error: string | null;
  readonly verification: Verification;
}

export const MAX_SHOWN_ROUNDS = 12;

/** `m`: the shortest round in steps at this tick. */
export function minRoundSteps(tickMs: number): number {
  return Math.ceil(MIN_ROUND_MS / Math.max(1, tickMs));
}

/** Same semantics as the engine's `Tick::from_breaks`. */
function tickFrom(step: number, round: number, lastBreak: number | null): Tick {
  return Object.freeze({
    step,
    value: lastBreak === null ? step + 1 : step - lastBreak,
    round,
    broken: lastBreak === step,
  });
}

/**
 * One sealed game's client state. `at(now)` has the shape of `GameFollower.at` (state and the
 * breaks passed since the previous call), so the session drives either the same way.
 */
export class SealedGame {
  readonly params: SealedParams;
  /** `N`: rounds in the chain. */
  readonly chainRounds: number;
  /** `m`: the shortest round, in steps. */
  readonly minRound: number;
  private readonly commitment: string;
  /** `keys[i]` is round `i + 1`'s key (lowercase hex). */
  private readonly keys: string[] = [];
  /** `breaks[i]` is round `i + 1`'s break step. */
  private readonly breaks: number[] = [];
  private readonly settled: SettledRound[] = [];
  private endedAt: number | null;
  /** The largest step shown (by `at`) since {@link markSynced}, -1 before any. */
  private shownStep = -1;
  /** Whether the page has the latest key it could get (see {@link markSynced}). */
  private synced = false;
  /** Rounds whose break `at` has already reported. */
  private emitted = 0;
  private readonly maxBackfill: number;
  private rejectedCount = 0;
  private lastError: string | null = null;
  private lastRollback: number | null = null;
  private maxRollback = 0;
  private root: { readonly key: string; readonly ok: boolean } | null = null;
  /** The page has read everything public after the end (see {@link markFinal}). */
  private final = false;
  private cachedView: SealedView | null = null;

  constructor(params: SealedParams, endedAt: number | null = null, maxBackfill = 600) {
    if (!isKey(params.commitment)) throw new Error('a sealed game needs its 64-hex-digit commitment');
    if (!(params.tickMs >= 1) || !Number.isSafeInteger(params.tickMs)) throw new Error('tickMs must be a positive integer');
    this.params = params;
    this.commitment = params.commitment.toLowerCase();
    this.chainRounds = sealedChainRounds(params.tickMs);
    this.minRound = minRoundSteps(params.tickMs);
    this.endedAt = endedAt;
    this.maxBackfill = maxBackfill;
    // Rejects a breakEvery the engine does not allow for this tick, up front.
    sealedRoundLength(this.commitment, params.tickMs, params.breakEvery);
  }

  /**
   * The page holds every key it can get for now (its first rounds read answered, or the game
   * had not started): from here on, the steps `at` shows count as shown, so a key arriving
   * after its break rolls them back. Before that, a late joiner's provisional count is not
   * shown as a rollback when its first keys arrive.
   */
  markSynced(): void {
    this.synced = true;
  }

  get isSynced(): boolean {
    return this.synced;
  }

  /** Rounds whose keys are known (all verified). */
  get revealed(): number {
    return this.keys.length;
  }

  /** Round `round`'s key, if known. */
  keyOf(round: number): string | undefined {
    return this.keys[round - 1];
  }

  /** Round `round`'s break step, if known. */
  breakOf(round: number): number | undefined {
    return this.breaks[round - 1];
  }

  /** Every known break step, round 1 first. */
  breakSteps(): readonly number[] {
    return this.breaks;
  }

  get endedAtMs(): number | null {
    return this.endedAt;
  }

  /** The game ended at server Unix ms `endedAt`. */
  end(endedAt: number): void {
    if (this.endedAt === endedAt) return;
    this.endedAt = endedAt;
    this.cachedView = null;
  }

  /** The step a game that ended at `endedAt` froze at; null if it ended before step 0. */
  finalStep(): number | null {
    if (this.endedAt === null) return null;
    const last = this.endedAt - 1;
    return last < this.params.startAt ? null : Math.floor((last - this.params.startAt) / this.params.tickMs);
  }

  /**
   * The tick at `step` from the known keys, and whether they prove it (the engine's
   * `sealed::tick_at`; the unit tests compare the two on the shared vectors).
   */
  tickAt(step: number): { tick: Tick; settled: boolean } {
    // The number of known breaks at or before `step` (binary search: breaks are increasing).
    let lo = 0;
    let hi = this.breaks.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.breaks[mid] <= step) lo = mid + 1;
      else hi = mid;
    }
    const round = lo;
    const last = round > 0 ? this.breaks[round - 1] : null;
    let settled: boolean;
    if (round < this.breaks.length) {
      settled = true;
    } else {
      const start = last === null ? 0 : last + 1;
      // Past the last known break the next round cannot break before its m-th step.
      settled = step < start || step - start + 1 < this.minRound;
    }
    return { tick: tickFrom(step, round, last), settled };
  }

  /** The state at server Unix ms `nowMs`, whether the keys prove it, and breaks since the last call. */
  at(nowMs: number): FollowResult & { readonly settled: boolean } {
    const now = Math.floor(nowMs);
    const p = this.params;
    let state: GameState;
    let settled = true;
    let step: number | null;
    if (this.endedAt !== null && now >= this.endedAt) {
      step = this.finalStep();
      if (step === null) {
        state = Object.freeze({ phase: 'ended' as const, tick: null });
      } else {
        const t = this.tickAt(step);
        settled = t.settled;
        state = Object.freeze({ phase: 'ended' as const, tick: t.tick });
      }
    } else if (now < p.startAt) {
      step = null;
      state = Object.freeze({ phase: 'countdown' as const, msUntilStart: p.startAt - now });
    } else {
      step = Math.floor((now - p.startAt) / p.tickMs);
      const t = this.tickAt(step);
      settled = t.settled;
      state = Object.freeze({ phase: 'running' as const, tick: t.tick });
    }
    const breaks: Tick[] = [];
    if (step !== null) {
      if (this.synced && step > this.shownStep) this.shownStep = step;
      // Breaks at or before the step shown that have not been reported yet (a key that arrived
      // after its break, or a step that reached a break already known); none further back than
      // `maxBackfill` steps (a late joiner does not replay the whole game into the log).
      while (this.emitted < this.breaks.length && this.breaks[this.emitted] <= this.shownStep) {
        const at = this.breaks[this.emitted];
        this.emitted += 1;
        if (at > this.shownStep - this.maxBackfill) breaks.push(tickFrom(at, this.emitted, at));
      }
    }
    return { state, breaks, settled };
  }

  /**
   * Offers round `round`'s key (from a push or a rounds page). Accepted only if it chains to
   * the keys already known (or the commitment); a key ahead of the next round is checked by
   * hashing it down to the last known key, and the keys in between are its hashes.
   * `direct` says whether this page saw the key on the wire (false for rounds derived here).
   */
  offer(round: number, key: string): OfferResult {
    const result = this.tryOffer(round, key);
    if (result.kind === 'rejected') {
      this.rejectedCount += 1;
      this.lastError = result.message;
      this.cachedView = null;
    }
    return result;
  }

  private tryOffer(round: number, key: string): OfferResult {
    if (!Number.isSafeInteger(round) || round < 1 || round > this.chainRounds) {
      return { kind: 'rejected', message: `a key for round ${String(round)}, outside this chain's rounds 1..${this.chainRounds}: rejected` };
    }
    if (!isKey(key)) return { kind: 'rejected', message: `round ${round}'s key is not 64 hex digits: rejected` };
    const k = key.toLowerCase();
    const known = this.keys.length;
    if (round <= known) {
      if (this.keys[round - 1] === k) return { kind: 'known' };
      return {
        kind: 'rejected',
        message: `round ${round}'s key differs from the one already verified for that round: rejected (tampered or swapped)`,
      };
    }
    const previous = known === 0 ? this.commitment : this.keys[known - 1];
    const gap = round - known;
    if (!sealedVerifyLatest(previous, gap, k)) {
      const against = known === 0 ? 'the commitment' : `round ${known}'s key`;
      const how = gap === 1 ? 'its hash is not' : `hashed ${gap} times it is not`;
      return {
        kind: 'rejected',
        message: `round ${round}'s key does not chain: ${how} ${against} (tampered, swapped or another game's): rejected`,
      };
    }
    // The keys between: k_(r-1) = H(k_r), down to the one after the last known.
    const fresh: string[] = new Array<string>(gap);
    fresh[gap - 1] = k;
    for (let i = gap - 2; i >= 0; i--) fresh[i] = sealedHash(fresh[i + 1]);
    const settledNow: SettledRound[] = [];
    let lastBreak = known === 0 ? -1 : this.breaks[known - 1];
    for (let i = 0; i < gap; i++) {
      const length = sealedRoundLength(fresh[i], this.params.tickMs, this.params.breakEvery);
      lastBreak += length;
      this.keys.push(fresh[i]);
      this.breaks.push(lastBreak);
      const r = known + i + 1;
      const entry: SettledRound = Object.freeze({
        round: r,
        breakStep: lastBreak,
        at: this.params.startAt + lastBreak * this.params.tickMs,
        rolledBack: Math.max(0, this.shownStep - lastBreak),
        direct: r === round,
      });
      this.settled.push(entry);
      settledNow.push(entry);
    }
    // The rollback this page shows: the ticks it had shown past the newest break (only those
    // shown after the previous break count; a late joiner's first keys roll nothing back).
    const newest = settledNow[settledNow.length - 1];
    if (this.shownStep >= 0) {
      this.lastRollback = newest.rolledBack;
      this.maxRollback = Math.max(this.maxRollback, newest.rolledBack);
    }
    this.cachedView = null;
    return { kind: 'settled', rounds: settledNow };
  }

  /**
   * Checks the root published after the end: it is `k_N`, so `H^(N - R)(root)` must be the last
   * known key (the commitment if none), which also proves `H^N(root)` is the commitment.
   */
  checkRoot(root: string): boolean {
    if (!isKey(root)) {
      this.root = { key: String(root), ok: false };
    } else {
      const r = root.toLowerCase();
      const known = this.keys.length;
      const last = known === 0 ? this.commitment : this.keys[known - 1];
      this.root = { key: r, ok: sealedVerifyLatest(last, this.chainRounds - known, r) };
    }
    this.cachedView = null;
    return this.root.ok;
  }

  /**
   * After the end: the page has read every key public after it and asked for the root (which
   * it checked with {@link checkRoot} if published). Until then the game is not called verified,
   * even when the keys already held settle the final step.
   */
  markFinal(): void {
    if (this.final) return;
    this.final = true;
    this.cachedView = null;
  }

  /** Whether the known keys settle the final step (after the end). */
  finalSettled(): boolean {
    const step = this.finalStep();
    if (this.endedAt === null) return false;
    return step === null || this.tickAt(step).settled;
  }

  verification(): Verification {
    if (this.endedAt === null) return { status: 'running' };
    if (this.root && !this.root.ok) {
      return { status: 'failed', reason: 'the published root does not hash down to the verified keys and the commitment' };
    }
    if (!this.finalSettled()) return { status: 'pending', reason: 'waiting for the keys up to the final step' };
    if (!this.final) return { status: 'pending', reason: 'reading the last keys and the root' };
    return { status: 'verified', rounds: this.keys.length, root: this.root?.ok === true };
  }

  /** The panel's view; the same object until something changes. */
  view(): SealedView {
    if (this.cachedView) return this.cachedView;
    const recent: SettledRound[] = [];
    for (let i = this.settled.length - 1; i >= 0 && recent.length < MAX_SHOWN_ROUNDS; i--) recent.push(this.settled[i]);
    this.cachedView = Object.freeze({
      commitment: this.commitment,
      chainRounds: this.chainRounds,
      revealed: this.keys.length,
      latestKey: this.keys.length === 0 ? null : this.keys[this.keys.length - 1],
      finalStep: this.finalStep(),
      recent: Object.freeze(recent),
      lastRollback: this.lastRollback,
      maxRollback: this.maxRollback,
      rejected: this.rejectedCount,
      error: this.lastError,
      verification: this.verification(),
    });
    return this.cachedView;
  }

  /** Nothing to free (kept for the session's follower interface). */
  free(): void {}
}
