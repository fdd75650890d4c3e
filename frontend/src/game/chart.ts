/**
 * The live chart of a seeded game: the value over the steps, computed by this page's engine
 * (no server data), with the breaks and each seat's exit marked. A long game shows its last
 * `window` steps. Sealed games have no chart (their steps cannot be computed ahead of the keys).
 */
import { tickAt, type GameParams } from '../engine/engine';
import type { SeatRow } from './seats';

export interface ChartExit {
  readonly seat: number;
  readonly userId: string;
  readonly step: number;
  readonly value: number;
}

export interface ChartModel {
  /** First and last step shown. */
  readonly from: number;
  readonly to: number;
  /** `[step, value]` for every step shown. */
  readonly points: readonly (readonly [number, number])[];
  /** Steps that broke. */
  readonly breaks: readonly number[];
  /** Exits at a step shown (an exit in the countdown has no step). */
  readonly exits: readonly ChartExit[];
  /** The largest value shown (at least 1). */
  readonly maxValue: number;
}

export const CHART_WINDOW = 600;

/** The chart up to step `upTo` (inclusive), or null before step 0. */
export function chartModel(
  params: Omit<GameParams, 'startAt'>,
  upTo: number | null,
  seats: readonly SeatRow[],
  window = CHART_WINDOW,
): ChartModel | null {
  if (upTo === null || upTo < 0) return null;
  const from = Math.max(0, upTo - window + 1);
  const points: [number, number][] = [];
  const breaks: number[] = [];
  let maxValue = 1;
  for (let step = from; step <= upTo; step++) {
    const t = tickAt(params, step);
    points.push([step, t.value]);
    if (t.broken) breaks.push(step);
    if (t.value > maxValue) maxValue = t.value;
  }
  const exits: ChartExit[] = [];
  for (const s of seats) {
    const f = s.result?.final;
    if (f && f.step >= from && f.step <= upTo) exits.push({ seat: s.seat, userId: s.userId, step: f.step, value: f.value });
  }
  return { from, to: upTo, points, breaks, exits, maxValue };
}
