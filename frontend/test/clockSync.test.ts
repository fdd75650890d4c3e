import { describe, expect, it } from 'vitest';
import { ClockSync } from '../src/clock/clockSync';
import { EdgeError } from '../src/api/edge';
import { prng } from './helpers';

/**
 * A simulated network: true time advances only through the requests. The page's wall clock is
 * `trueTime + skew` (a page whose clock is `skew` ms ahead); the server reports whole-ms true time.
 */
function simulated(skew: number, seed = 1) {
  const rand = prng(seed);
  let trueTime = 1_760_000_000_000.25;
  return {
    wallClock: () => Math.floor(trueTime + skew),
    monotonic: () => trueTime,
    trueNow: () => trueTime,
    getTime: async () => {
      trueTime += 1 + rand() * 60; // uplink: slow, jittery
      const now = Math.floor(trueTime);
      trueTime += 0.5 + rand() * 2; // downlink: quick
      return { now };
    },
  };
}

describe('ClockSync', () => {
  it('estimates a 5 s fast clock within its bound and serves server time', async () => {
    const sim = simulated(5000);
    const clock = new ClockSync({ ...sim, sampleGapMs: 0, initialSamples: 8 });
    await clock.syncNow();
    const st = clock.getStatus();
    expect(st.estimate).not.toBeNull();
    const est = st.estimate!;
    expect(Math.abs(est.offset - -5000)).toBeLessThanOrEqual(est.bound);
    expect(est.samples).toBe(8);
    expect(st.rounds).toBe(1);
    expect(Math.abs(clock.serverNow() - sim.trueNow())).toBeLessThanOrEqual(est.bound + 1);
  });

  it('never rejects: a failing edge leaves a readable error and the local clock', async () => {
    const clock = new ClockSync({
      getTime: async () => {
        throw new EdgeError('network', 'Reading the server clock failed: could not reach the edge');
      },
      sampleGapMs: 0,
    });
    await expect(clock.syncNow(3)).resolves.toBeUndefined();
    const st = clock.getStatus();
    expect(st.estimate).toBeNull();
    expect(st.lastError).toMatch(/could not reach the edge/);
    expect(st.syncing).toBe(false);
    expect(clock.offset).toBe(0);
  });

  it('re-syncs periodically and can be stopped', async () => {
    const sim = simulated(-300, 3);
    let requests = 0;
    const clock = new ClockSync({
      ...sim,
      getTime: async () => {
        requests++;
        return sim.getTime();
      },
      sampleGapMs: 0,
      initialSamples: 4,
      resyncSamples: 2,
      resyncIntervalMs: 20,
    });
    await clock.start();
    expect(requests).toBe(4);
    await new Promise((r) => setTimeout(r, 120));
    expect(clock.getStatus().rounds).toBeGreaterThanOrEqual(3);
    clock.stop();
    const settled = requests;
    await new Promise((r) => setTimeout(r, 80));
    expect(requests).toBe(settled);
    const est = clock.getStatus().estimate!;
    expect(Math.abs(est.offset - 300)).toBeLessThanOrEqual(est.bound);
  });
});
