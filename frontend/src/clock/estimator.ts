/**
 * Estimates the offset between this page's clock and the server's from `/edge/time` samples.
 *
 * One sample is one request: the page reads its own wall clock `t0` (Unix ms, as `Date.now()`
 * gives it) just before sending, the server answers with its clock `now` (integer Unix ms, read
 * once while handling the request), and the page measures the round trip `rtt` with a monotonic
 * timer. In NTP terms t1 = t2 = now and t3 = t0 + rtt, so
 *
 *     offset = ((t1 - t0) + (t2 - t3)) / 2 = now - (t0 + t3) / 2
 *
 * and, whatever the split of the round trip between the two directions, the true offset lies in
 * an interval of half-width rtt/2 around it (plus the clocks' 1 ms resolution): that is each
 * sample's error bound.
 *
 * Several samples are combined by keeping the lowest round trips (queueing only ever adds delay,
 * so the fastest exchanges are the most symmetric), weighting them by 1/rtt^2, and checking the
 * result against the intersection of the samples' intervals, which must contain the true offset
 * as long as neither clock stepped. The reported bound is a guarantee, not a standard deviation.
 *
 * No React, no timers, no I/O: {@link ClockSync} does the requests.
 */

/** The clocks' resolution: both sides report whole milliseconds. */
export const CLOCK_RESOLUTION_MS = 1;

/** One `/edge/time` exchange. */
export interface ClockSample {
  /** Local wall clock (Unix ms) when the request was sent. */
  readonly t0: number;
  /** Round trip measured with a monotonic timer (ms, may be fractional, >= 0). */
  readonly rtt: number;
  /** The server's clock (Unix ms) in the response. */
  readonly server: number;
  /** When the sample was taken, on the local monotonic timer (ms), to let old samples expire. */
  readonly takenAt?: number;
}

/** What one sample says on its own. */
export interface SampleOffset {
  /** server clock - local clock, estimated (ms). */
  readonly offset: number;
  /** The true offset lies within `offset ± bound` (ms). */
  readonly bound: number;
  readonly rtt: number;
}

/** The combined estimate. */
export interface OffsetEstimate {
  /** server clock - local clock (ms): server time = `Date.now() + offset`. */
  readonly offset: number;
  /** The true offset lies within `offset ± bound` (ms), if the clocks did not step. */
  readonly bound: number;
  /** Samples the estimate was made from (the best ones of the window). */
  readonly used: number;
  /** Samples in the window. */
  readonly samples: number;
  /** The lowest round trip in the window (ms). */
  readonly minRtt: number;
  /** False if the samples' intervals do not overlap (a clock stepped or the server misbehaves). */
  readonly consistent: boolean;
}

/** The offset and guaranteed bound of a single sample. */
export function sampleOffset(sample: ClockSample): SampleOffset {
  const rtt = Math.max(0, sample.rtt);
  // The server read its clock somewhere in [t0, t0 + rtt] on the local clock; the midpoint
  // minimizes the worst case. Each whole-ms clock may read up to 1 ms low.
  return {
    offset: sample.server - (sample.t0 + rtt / 2),
    bound: rtt / 2 + CLOCK_RESOLUTION_MS,
    rtt,
  };
}

export interface EstimatorOptions {
  /** How many of the lowest-RTT samples are combined. */
  readonly best?: number;
  /** How many recent samples are kept. */
  readonly window?: number;
  /** Samples older than this (ms, on the `takenAt` timer) are dropped; 0 keeps them all. */
  readonly maxAgeMs?: number;
}

/**
 * Combines samples into one estimate: the 1/rtt^2-weighted mean of the `best` lowest-RTT
 * samples, clamped into the intersection of their intervals. Returns `null` without samples.
 */
export function estimateOffset(
  samples: readonly ClockSample[],
  best = 4,
): OffsetEstimate | null {
  if (samples.length === 0) return null;
  const ranked = samples
    .map(sampleOffset)
    .sort((a, b) => a.rtt - b.rtt)
    .slice(0, Math.max(1, best));

  let weightSum = 0;
  let weighted = 0;
  let weightedBound = 0;
  let low = -Infinity;
  let high = Infinity;
  for (const s of ranked) {
    // The +1 keeps a 0 ms round trip (same machine, coarse timer) from taking all the weight.
    const w = 1 / (s.rtt + 1) ** 2;
    weightSum += w;
    weighted += w * s.offset;
    weightedBound += w * s.bound;
    low = Math.max(low, s.offset - s.bound);
    high = Math.min(high, s.offset + s.bound);
  }
  const mean = weighted / weightSum;
  const minRtt = ranked[0].rtt;

  if (low <= high) {
    // Every interval holds the true offset, so their intersection does: clamp the mean into it
    // and report the distance to the intersection's farther end (at most its width, and so at
    // most twice the best sample's bound; usually much less).
    const offset = Math.min(high, Math.max(low, mean));
    const bound = Math.max(offset - low, high - offset);
    return { offset, bound, used: ranked.length, samples: samples.length, minRtt, consistent: true };
  }
  // The intervals contradict each other: each sample's own bound holds only for itself, so the
  // mean's error is at most the weighted mean of the bounds plus the spread; report it honestly.
  const spread = Math.max(...ranked.map((s) => Math.abs(s.offset - mean)));
  return {
    offset: mean,
    bound: Math.max(weightedBound / weightSum, spread),
    used: ranked.length,
    samples: samples.length,
    minRtt,
    consistent: false,
  };
}

/**
 * A sliding window of samples. When a new sample's interval does not overlap the current
 * estimate's, one of the clocks stepped (a user changed the time, a VM resumed): the old samples
 * describe a clock that no longer exists and are dropped.
 */
export class OffsetEstimator {
  private samples: ClockSample[] = [];
  private readonly best: number;
  private readonly window: number;
  private readonly maxAgeMs: number;

  constructor(options: EstimatorOptions = {}) {
    this.best = options.best ?? 4;
    this.window = options.window ?? 24;
    this.maxAgeMs = options.maxAgeMs ?? 0;
  }

  /** Adds a sample; returns true if it caused older samples to be discarded (a clock step). */
  add(sample: ClockSample): boolean {
    if (!Number.isFinite(sample.t0) || !Number.isFinite(sample.rtt) || !Number.isFinite(sample.server)) {
      throw new Error('clock sample must be finite numbers');
    }
    let stepped = false;
    const current = estimateOffset(this.samples, this.best);
    const fresh = sampleOffset(sample);
    if (current && Math.abs(fresh.offset - current.offset) > fresh.bound + current.bound) {
      this.samples = [];
      stepped = true;
    }
    this.samples.push(sample);
    if (this.maxAgeMs > 0 && sample.takenAt !== undefined) {
      const oldest = sample.takenAt - this.maxAgeMs;
      this.samples = this.samples.filter((s) => s.takenAt === undefined || s.takenAt >= oldest);
    }
    if (this.samples.length > this.window) {
      this.samples = this.samples.slice(this.samples.length - this.window);
    }
    return stepped;
  }

  estimate(): OffsetEstimate | null {
    return estimateOffset(this.samples, this.best);
  }

  get size(): number {
    return this.samples.length;
  }

  clear(): void {
    this.samples = [];
  }
}
