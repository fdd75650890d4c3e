/**
 * A shared game's seats and their results, as the page shows them: read once from
 * `GET /edge/game/{id}/results` (on load, and again after the game ended), and updated the
 * moment the live room pushes a committed join (`{"type":"seated",...}`) or a seat's committed
 * result (`{"type":"seat",...}`). Pure functions over an immutable list sorted by seat number; a
 * push for a seat the page has not read yet adds it (a join after the page loaded).
 */
import type { ResultsView, SeatExit, SeatJoin, SeatResult } from '../api/generated/contract';

export type { ResultsView, SeatExit, SeatJoin, SeatResult } from '../api/generated/contract';

export interface SeatRow {
  readonly seat: number;
  readonly userId: string;
  /** Unix ms the seat was taken (unknown for a seat learned from a push only). */
  readonly joinedAt: number | null;
  /** The committed result, once the player exited. */
  readonly result: SeatResult | null;
}

function sorted(rows: SeatRow[]): readonly SeatRow[] {
  return rows.sort((a, b) => a.seat - b.seat);
}

/**
 * The rows after a `/results` read: every seat it lists; a result the page already holds from a
 * push is kept when the read (older, or from a cache) does not have it yet.
 */
export function mergeResults(rows: readonly SeatRow[], view: ResultsView): readonly SeatRow[] {
  const byseat = new Map(rows.map((r) => [r.seat, r]));
  for (const s of view.seats) {
    const held = byseat.get(s.seat);
    byseat.set(s.seat, {
      seat: s.seat,
      userId: s.userId,
      joinedAt: s.joinedAt,
      result: s.result ?? (held && held.userId === s.userId ? held.result : null),
    });
  }
  return sorted([...byseat.values()]);
}

/** The rows after a pushed seat result (the first result of a seat stays: results are final). */
export function applySeat(rows: readonly SeatRow[], push: SeatExit): readonly SeatRow[] {
  const held = rows.find((r) => r.seat === push.seat);
  if (held && held.result !== null && held.userId === push.userId) return rows;
  const row: SeatRow = { seat: push.seat, userId: push.userId, joinedAt: held?.joinedAt ?? null, result: push.result };
  return sorted([...rows.filter((r) => r.seat !== push.seat), row]);
}

/** The rows after a pushed join: a new seat without a result (a seat already held stays as it is). */
export function applyJoin(rows: readonly SeatRow[], push: SeatJoin): readonly SeatRow[] {
  const held = rows.find((r) => r.seat === push.seat);
  if (held && held.userId === push.userId) {
    return held.joinedAt === null ? sorted(rows.map((r) => (r === held ? { ...r, joinedAt: push.joinedAt } : r))) : rows;
  }
  if (held) return rows;
  return sorted([...rows, { seat: push.seat, userId: push.userId, joinedAt: push.joinedAt, result: null }]);
}

/** Whether `msg` has the shape of a join push (checked before it reaches the rows). */
export function isSeatJoin(msg: unknown): msg is SeatJoin {
  if (typeof msg !== 'object' || msg === null) return false;
  const m = msg as Record<string, unknown>;
  return (
    typeof m.seat === 'number' &&
    Number.isSafeInteger(m.seat) &&
    m.seat >= 0 &&
    typeof m.userId === 'string' &&
    typeof m.joinedAt === 'number' &&
    Number.isSafeInteger(m.joinedAt)
  );
}

/** Whether `msg` has the shape of a seat push (checked before it reaches the rows). */
export function isSeatExit(msg: unknown): msg is SeatExit {
  if (typeof msg !== 'object' || msg === null) return false;
  const m = msg as Record<string, unknown>;
  const r = m.result as Record<string, unknown> | null | undefined;
  return (
    typeof m.seat === 'number' &&
    Number.isSafeInteger(m.seat) &&
    m.seat >= 0 &&
    typeof m.userId === 'string' &&
    typeof r === 'object' &&
    r !== null &&
    typeof r.exitedAt === 'number' &&
    typeof r.breakFirst === 'boolean' &&
    (r.final === undefined || (typeof r.final === 'object' && r.final !== null))
  );
}

/** How many seats have a result. */
export function exitedCount(rows: readonly SeatRow[]): number {
  return rows.filter((r) => r.result !== null).length;
}
