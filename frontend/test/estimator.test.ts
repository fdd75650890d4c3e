import { describe, expect, it } from 'vitest';
import { estimateOffset, OffsetEstimator, sampleOffset, type ClockSample } from '../src/clock/estimator';
import { prng } from './helpers';

/**
 * One simulated `/edge/time` exchange. True time is the server's clock; the page's wall clock
 * reads `trueTime - theta` (so server - local = theta). Both clocks report whole ms (floor), the
 * round trip is timed exactly (a monotonic timer), and the request takes `up` ms to reach the
 * server, which answers after `proc` ms, and the answer takes `down` ms to come back.
 */
function exchange(theta: number, sendAt: number, up: number, proc: number, down: number): ClockSample {
  const t0 = Math.floor(sendAt - theta);
  const server = Math.floor(sendAt + up);
  return { t0, rtt: up + proc + down, server, takenAt: sendAt };
}

describe('sampleOffset', () => {
  it('is exact (to the clock resolution) for symmetric delays', () => {
    const s = sampleOffset(exchange(-5000, 1_700_000_000_000, 10, 0, 10));
    expect(s.rtt).toBe(20);
    expect(s.bound).toBe(11);
    expect(Math.abs(s.offset - -5000)).toBeLessThanOrEqual(1);
  });

  it('is off by half the asymmetry, and says so in its bound', () => {
    // All of the 80 ms round trip on the way up: the midpoint guess is 40 ms off.
    const s = sampleOffset(exchange(250, 1_700_000_000_000, 80, 0, 0));
    expect(s.offset - 250).toBeGreaterThan(38);
    expect(Math.abs(s.offset - 250)).toBeLessThanOrEqual(s.bound);
  });
});

describe('estimateOffset', () => {
  it('returns null without samples', () => {
    expect(estimateOffset([])).toBeNull();
  });

  it('keeps the true offset within the reported bound under random asymmetric delays', () => {
    const rand = prng(7);
    let worstRatio = 0;
    for (let trial = 0; trial < 2000; trial++) {
      const theta = (rand() - 0.5) * 20_000 + rand(); // up to ±10 s, fractional
      const samples: ClockSample[] = [];
      let t = 1_700_000_000_000 + rand() * 1e9;
      const n = 1 + Math.floor(rand() * 12);
      for (let i = 0; i < n; i++) {
        // Heavily asymmetric: a congested uplink (0-300 ms, exponential tail), a quick downlink.
        const up = -Math.log(1 - rand()) * 40 + (rand() < 0.2 ? rand() * 300 : 0);
        const down = rand() * 4;
        const proc = rand() * 2;
        samples.push(exchange(theta, t, up, proc, down));
        t += 50 + rand() * 500;
      }
      for (const s of samples) {
        const one = sampleOffset(s);
        expect(Math.abs(one.offset - theta)).toBeLessThanOrEqual(one.bound);
      }
      const est = estimateOffset(samples, 4)!;
      expect(est.consistent).toBe(true);
      const err = Math.abs(est.offset - theta);
      expect(err).toBeLessThanOrEqual(est.bound);
      // Never worse than twice the best single sample's guarantee.
      const bestBound = Math.min(...samples.map((s) => sampleOffset(s).bound));
      expect(est.bound).toBeLessThanOrEqual(2 * bestBound + 1e-9);
      worstRatio = Math.max(worstRatio, err / est.bound);
    }
    expect(worstRatio).toBeLessThanOrEqual(1);
  });

  it('prefers the lowest round trips: one fast sample beats many slow asymmetric ones', () => {
    const theta = 5000;
    const t = 1_800_000_000_000;
    const slow = Array.from({ length: 10 }, (_, i) => exchange(theta, t + i * 100, 150, 0, 5));
    const fast = exchange(theta, t + 2000, 1, 0, 1);
    const est = estimateOffset([...slow, fast], 4)!;
    expect(est.minRtt).toBe(2);
    expect(Math.abs(est.offset - theta)).toBeLessThanOrEqual(2);
    expect(est.bound).toBeLessThanOrEqual(2 * sampleOffset(fast).bound);
    // The slow samples alone are ~72 ms off (and say so).
    const slowEst = estimateOffset(slow, 4)!;
    expect(Math.abs(slowEst.offset - theta)).toBeGreaterThan(60);
    expect(Math.abs(slowEst.offset - theta)).toBeLessThanOrEqual(slowEst.bound);
  });

  it('narrows the bound by intersecting intervals of differently skewed samples', () => {
    const theta = -1234.5;
    const t = 1_800_000_000_000;
    const upHeavy = exchange(theta, t, 40, 0, 0); // says theta + ~20
    const downHeavy = exchange(theta, t + 100, 0, 0, 40); // says theta - ~20
    const est = estimateOffset([upHeavy, downHeavy], 4)!;
    expect(est.consistent).toBe(true);
    expect(Math.abs(est.offset - theta)).toBeLessThanOrEqual(est.bound);
    expect(est.bound).toBeLessThan(sampleOffset(upHeavy).bound);
  });

  it('flags samples that contradict each other', () => {
    const est = estimateOffset(
      [
        { t0: 1000, rtt: 2, server: 1001 },
        { t0: 2000, rtt: 2, server: 7001 },
      ],
      4,
    )!;
    expect(est.consistent).toBe(false);
    expect(est.bound).toBeGreaterThanOrEqual(2500);
  });
});

describe('OffsetEstimator', () => {
  it('drops old samples when a clock steps', () => {
    const e = new OffsetEstimator();
    const t = 1_900_000_000_000;
    for (let i = 0; i < 5; i++) expect(e.add(exchange(0, t + i * 100, 3, 0, 3))).toBe(false);
    expect(Math.abs(e.estimate()!.offset)).toBeLessThanOrEqual(4);
    // The page's clock jumps 5 s back: server - local becomes +5000.
    expect(e.add(exchange(5000, t + 1000, 3, 0, 3))).toBe(true);
    expect(e.size).toBe(1);
    expect(Math.abs(e.estimate()!.offset - 5000)).toBeLessThanOrEqual(4);
  });

  it('keeps a bounded window and expires old samples', () => {
    const e = new OffsetEstimator({ window: 5, maxAgeMs: 1000 });
    for (let i = 0; i < 8; i++) e.add(exchange(10, 100 * i, 2, 0, 2));
    expect(e.size).toBe(5);
    e.add(exchange(10, 5000, 2, 0, 2));
    expect(e.size).toBe(1);
    expect(() => e.add({ t0: NaN, rtt: 1, server: 1 })).toThrow(/finite/);
  });
});
