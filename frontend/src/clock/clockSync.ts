/**
 * Keeps an estimate of the server's clock: samples `/edge/time` several times at start, then a
 * few times every `resyncIntervalMs`, and feeds the samples to an {@link OffsetEstimator}.
 * The game runs on {@link ClockSync.serverNow}, never on raw `Date.now()`.
 *
 * No React: components subscribe with `subscribe`/`getStatus` (useSyncExternalStore).
 */
import { describeError } from '../api/edge';
import { OffsetEstimator, type OffsetEstimate } from './estimator';

export interface ClockStatus {
  readonly estimate: OffsetEstimate | null;
  readonly syncing: boolean;
  /** Local wall time (Unix ms) of the last completed sync round, or null. */
  readonly lastSyncAt: number | null;
  /** The last sync round's failure, if it failed entirely. */
  readonly lastError: string | null;
  /** Completed sync rounds (with at least one sample). */
  readonly rounds: number;
  /** Set when a new sample contradicted the old ones (a clock stepped) and they were dropped. */
  readonly stepDetected: boolean;
}

export interface ClockSyncOptions {
  /** One request to the server's clock. */
  readonly getTime: (options: { timeoutMs: number; signal: AbortSignal }) => Promise<{ now: number }>;
  /** The local wall clock (Unix ms). Default: `Date.now`. */
  readonly wallClock?: () => number;
  /** A monotonic timer (ms) for round trips. Default: `performance.now`. */
  readonly monotonic?: () => number;
  readonly initialSamples?: number;
  readonly resyncSamples?: number;
  readonly resyncIntervalMs?: number;
  /** Pause between the samples of one round. */
  readonly sampleGapMs?: number;
  readonly sampleTimeoutMs?: number;
  readonly estimator?: OffsetEstimator;
}

type Listener = () => void;

export class ClockSync {
  private readonly opts: Required<Omit<ClockSyncOptions, 'estimator'>>;
  private readonly estimator: OffsetEstimator;
  private status: ClockStatus = {
    estimate: null,
    syncing: false,
    lastSyncAt: null,
    lastError: null,
    rounds: 0,
    stepDetected: false,
  };
  private readonly listeners = new Set<Listener>();
  private timer: ReturnType<typeof setTimeout> | null = null;
  private running = false;
  private inFlight: Promise<void> | null = null;
  private abort: AbortController | null = null;

  constructor(options: ClockSyncOptions) {
    this.opts = {
      getTime: options.getTime,
      wallClock: options.wallClock ?? (() => Date.now()),
      monotonic: options.monotonic ?? (() => performance.now()),
      initialSamples: options.initialSamples ?? 8,
      resyncSamples: options.resyncSamples ?? 4,
      resyncIntervalMs: options.resyncIntervalMs ?? 30_000,
      sampleGapMs: options.sampleGapMs ?? 40,
      sampleTimeoutMs: options.sampleTimeoutMs ?? 3_000,
    };
    this.estimator = options.estimator ?? new OffsetEstimator({ best: 4, window: 24, maxAgeMs: 10 * 60_000 });
  }

  subscribe = (listener: Listener): (() => void) => {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  };

  getStatus = (): ClockStatus => this.status;

  /** Estimated server offset (ms), 0 before the first sample. */
  get offset(): number {
    return this.status.estimate?.offset ?? 0;
  }

  get synced(): boolean {
    return this.status.estimate !== null;
  }

  /** The estimated server time, whole Unix ms. */
  serverNow(): number {
    return Math.floor(this.opts.wallClock() + this.offset);
  }

  private update(patch: Partial<ClockStatus>): void {
    this.status = { ...this.status, ...patch };
    for (const listener of this.listeners) listener();
  }

  private async sample(signal: AbortSignal): Promise<boolean> {
    const t0 = this.opts.wallClock();
    const m0 = this.opts.monotonic();
    const { now } = await this.opts.getTime({ timeoutMs: this.opts.sampleTimeoutMs, signal });
    const rtt = this.opts.monotonic() - m0;
    return this.estimator.add({ t0, rtt, server: now, takenAt: m0 });
  }

  /** One sync round of `count` samples; resolves when done (never rejects). */
  syncNow(count = this.opts.initialSamples): Promise<void> {
    if (this.inFlight) return this.inFlight;
    const abort = new AbortController();
    this.abort = abort;
    this.update({ syncing: true });
    const round = (async () => {
      let ok = 0;
      let stepped = false;
      let lastError: string | null = null;
      for (let i = 0; i < count && !abort.signal.aborted; i++) {
        if (i > 0 && this.opts.sampleGapMs > 0) {
          await new Promise((r) => setTimeout(r, this.opts.sampleGapMs));
        }
        if (abort.signal.aborted) break;
        try {
          stepped = (await this.sample(abort.signal)) || stepped;
          ok++;
        } catch (err) {
          lastError = describeError(err);
        }
      }
      if (abort.signal.aborted) return; // stop() already reset the state
      this.inFlight = null;
      this.abort = null;
      this.update({
        syncing: false,
        estimate: this.estimator.estimate(),
        lastSyncAt: ok > 0 ? this.opts.wallClock() : this.status.lastSyncAt,
        lastError: ok > 0 ? null : lastError,
        rounds: ok > 0 ? this.status.rounds + 1 : this.status.rounds,
        stepDetected: stepped || this.status.stepDetected,
      });
    })();
    this.inFlight = round;
    return round;
  }

  /** Syncs now, then every `resyncIntervalMs` (sooner, after a failed round). */
  start(): Promise<void> {
    if (this.running) return this.inFlight ?? Promise.resolve();
    this.running = true;
    const first = this.syncNow(this.opts.initialSamples).then(() => this.schedule());
    return first;
  }

  private schedule(): void {
    if (!this.running) return;
    const failed = this.status.lastError !== null || !this.synced;
    const delay = failed ? Math.min(5_000, this.opts.resyncIntervalMs) : this.opts.resyncIntervalMs;
    this.timer = setTimeout(() => {
      this.timer = null;
      const count = this.synced ? this.opts.resyncSamples : this.opts.initialSamples;
      void this.syncNow(count).then(() => this.schedule());
    }, delay);
  }

  /** Stops the periodic re-sync and abandons a round in progress. */
  stop(): void {
    this.running = false;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    if (this.abort) {
      this.abort.abort();
      this.abort = null;
      this.inFlight = null;
      this.update({ syncing: false });
    }
  }
}
