// Tournaments on the page: the schedule, standings and round-join answers' validation, every
// round-join refusal as a sentence, the schedule's states and countdown on the synced clock, when
// the standings are read again (the edge's 5 s cache, each round's end), the watch's timers, the
// engine's round score, the addresses, and the panel's markup.
import { createElement } from 'react';
import { renderToStaticMarkup } from 'react-dom/server';
import { afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { EdgeClient, EdgeError, errorFromResponse, parseRoundJoin, parseStandings, parseTournament, roundJoinRefusal, type StandingsView, type TournamentView } from '../src/api/edge';
import { gameAddress, tableOf, tournamentIdFrom } from '../src/App';
import { TournamentPanel } from '../src/components/TournamentPanel';
import { stateAt, tickAt } from '../src/engine/engine';
import {
  CACHE_MS,
  describeMoment,
  formatCountdownLong,
  MIN_REFRESH_MS,
  nextMoment,
  openRounds,
  REFRESH_MARGIN_MS,
  RETRY_MS,
  roundScore,
  roundStateAt,
  scheduleAt,
  standingsFinal,
  standingsRefreshAt,
  TournamentWatch,
} from '../src/game/tournament';
import { loadEngineForTests } from './helpers';

beforeAll(loadEngineForTests);

const T0 = 1_760_000_000_000;
const ID = '0b7c4d2e-5f6a-4b8c-9d0e-1f2a3b4c5d6e';
const GAME_ID = '3f2b8c1e-9d4a-4f6b-8e2a-1c5d7e9f0a3b';
const FIRST = T0 + 10_000;
const INTERVAL = 10_000;

/** The origin's schedule of a 3-round tournament, round 0 starting at FIRST, as at T0 + 5 s. */
function view(): TournamentView {
  return {
    tournamentId: ID,
    name: 'Friday cup',
    rounds: 3,
    firstStartAt: FIRST,
    intervalMs: INTERVAL,
    tickMs: 100,
    breakEvery: 20,
    algorithm: 'mix32-v1',
    seatsPerTable: 2,
    maxTables: 10,
    createdAt: T0,
    asOf: T0 + 5_000,
    schedule: [0, 1, 2].map((i) => ({
      round: i,
      joinsOpenAt: FIRST + (i - 1) * INTERVAL,
      startAt: FIRST + i * INTERVAL,
      endAt: FIRST + (i + 1) * INTERVAL,
      state: i === 0 ? 'open' : 'upcoming',
    })),
  } as TournamentView;
}

function standings(asOf: number, roundsFinished = 0, entries = [{ rank: 1, userId: 'alice', total: 12, roundsPlayed: 1 }]): StandingsView {
  return { tournamentId: ID, asOf, roundsFinished, players: entries.length, entries };
}

function bad(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(EdgeError);
    expect((err as EdgeError).code).toBe('bad_response');
    return (err as EdgeError).message;
  }
  throw new Error('expected a bad_response');
}

describe('the tournament answers', () => {
  it('a schedule is read as the origin sends it (any case of the id)', () => {
    expect(parseTournament(view(), ID, 'Loading the tournament')).toEqual(view());
    expect(parseTournament(view(), ID.toUpperCase(), 'l').tournamentId).toBe(ID);
  });

  it('a schedule off its grid, of another tournament, or that the engine cannot play is refused, naming the field', () => {
    const with_ = (patch: Record<string, unknown>) => ({ ...view(), ...patch });
    const round = (i: number, patch: Record<string, unknown>) => {
      const v = view();
      return { ...v, schedule: v.schedule.map((r) => (r.round === i ? { ...r, ...patch } : r)) };
    };
    expect(bad(() => parseTournament(null, ID, 'Loading the tournament'))).toBe("Loading the tournament failed: the edge's answer is not a tournament");
    expect(bad(() => parseTournament(view(), GAME_ID, 'l'))).toContain('"tournamentId"');
    expect(bad(() => parseTournament(with_({ algorithm: 'sealed-v1' }), ID, 'l'))).toContain('"algorithm"');
    expect(bad(() => parseTournament(with_({ algorithm: 'dice' }), ID, 'l'))).toContain('"algorithm"');
    expect(bad(() => parseTournament(with_({ rounds: 0 }), ID, 'l'))).toContain('"rounds"');
    expect(bad(() => parseTournament(with_({ rounds: 2 }), ID, 'l'))).toContain('"schedule"');
    expect(bad(() => parseTournament(with_({ intervalMs: 0 }), ID, 'l'))).toContain('"intervalMs"');
    expect(bad(() => parseTournament(with_({ tickMs: 0 }), ID, 'l'))).toContain('"tickMs"');
    expect(bad(() => parseTournament(with_({ seatsPerTable: 2.5 }), ID, 'l'))).toContain('"seatsPerTable"');
    expect(bad(() => parseTournament(with_({ name: '' }), ID, 'l'))).toContain('"name"');
    expect(bad(() => parseTournament(with_({ asOf: 'now' }), ID, 'l'))).toContain('"asOf"');
    expect(bad(() => parseTournament(with_({ schedule: 'soon' }), ID, 'l'))).toContain('"schedule"');
    expect(bad(() => parseTournament(round(1, { startAt: FIRST + INTERVAL + 1 }), ID, 'l'))).toContain('"schedule"');
    expect(bad(() => parseTournament(round(2, { joinsOpenAt: FIRST }), ID, 'l'))).toContain('"schedule"');
    expect(bad(() => parseTournament(round(0, { endAt: FIRST }), ID, 'l'))).toContain('"schedule"');
    expect(bad(() => parseTournament(round(1, { round: 2 }), ID, 'l'))).toContain('"schedule"');
    expect(bad(() => parseTournament(round(1, { state: 'paused' }), ID, 'l'))).toContain('"schedule"');
  });

  it('standings are read best first; a line out of order or out of range is refused', () => {
    const entries = [
      { rank: 1, userId: 'alice', total: 30, roundsPlayed: 2 },
      { rank: 2, userId: 'bob', total: 12, roundsPlayed: 1 },
      { rank: 2, userId: 'carol', total: 12, roundsPlayed: 2 },
      { rank: 4, userId: 'dave', total: 0, roundsPlayed: 1 },
    ];
    const ok = standings(T0, 1, entries);
    expect(parseStandings({ ...ok, players: 5 }, ID, 'Reading the standings')).toEqual({ ...ok, players: 5 });
    const line = (i: number, patch: Record<string, unknown>) => ({ ...ok, entries: entries.map((e, j) => (j === i ? { ...e, ...patch } : e)) });
    expect(bad(() => parseStandings({ entries: 'x' }, ID, 'Reading the standings'))).toBe("Reading the standings failed: the edge's answer is not a standings table");
    expect(bad(() => parseStandings(ok, GAME_ID, 'r'))).toContain('"tournamentId"');
    for (const patch of [{ rank: 0 }, { rank: 1.5 }, { total: -1 }, { total: '12' }, { roundsPlayed: null }, { userId: '' }]) {
      expect(bad(() => parseStandings(line(1, patch), ID, 'r'))).toContain('"entries"');
    }
    // Ranks never go down, totals never go up.
    expect(bad(() => parseStandings(line(3, { rank: 1 }), ID, 'r'))).toContain('"entries"');
    expect(bad(() => parseStandings(line(3, { total: 31 }), ID, 'r'))).toContain('"entries"');
    expect(bad(() => parseStandings({ ...ok, players: 3 }, ID, 'r'))).toContain('"players"');
    expect(bad(() => parseStandings({ ...ok, roundsFinished: -1 }, ID, 'r'))).toContain('"roundsFinished"');
    expect(bad(() => parseStandings({ ...ok, asOf: undefined }, ID, 'r'))).toContain('"asOf"');
  });

  const table = {
    gameId: GAME_ID,
    userId: 'alice',
    region: 'eu',
    seed: 7,
    startAt: FIRST,
    tickMs: 100,
    breakEvery: 20,
    algorithm: 'mix32-v1',
    status: 'active',
    createdAt: T0,
    metadata: { tournamentId: ID, round: 0, table: 0 },
    shared: { maxPlayers: 2, joinDeadline: FIRST },
  };
  const seat = { seat: 1, userId: 'bob', joinedAt: T0 + 1_000, game: table, ownerToken: 'st1.k.bob.mac', backendRegion: 'us' };
  const sent = { tournamentId: ID, round: 0, userId: 'bob' };

  it("a round's join is a seat at a table of that tournament and round", () => {
    const joined = parseRoundJoin(seat, sent, 'Joining round 0');
    expect(joined).toEqual({ game: { ...table, backendRegion: 'us' }, seat: 1, userId: 'bob', joinedAt: T0 + 1_000, ownerToken: 'st1.k.bob.mac' });
    expect(tableOf(joined.game)).toEqual({ tournamentId: ID, round: 0 });
    expect(bad(() => parseRoundJoin(seat, { ...sent, tournamentId: GAME_ID }, 'J'))).toContain('"game.metadata.tournamentId"');
    expect(bad(() => parseRoundJoin({ ...seat, game: { ...table, metadata: undefined } }, sent, 'J'))).toContain('"game.metadata.tournamentId"');
    expect(bad(() => parseRoundJoin(seat, { ...sent, round: 1 }, 'J'))).toContain('"game.metadata.round"');
    expect(bad(() => parseRoundJoin(seat, { ...sent, userId: 'carol' }, 'J'))).toContain('"userId"');
    expect(bad(() => parseRoundJoin({ ...seat, seat: 2 }, sent, 'J'))).toContain('"seat"');
    expect(bad(() => parseRoundJoin({ ...seat, game: { ...table, shared: undefined } }, sent, 'J'))).toContain('"game.shared"');
  });
});

describe('round join refusals', () => {
  const opensAt = Date.UTC(2026, 11, 6, 23, 41, 7, 250);
  const cases: [string, number, RegExp][] = [
    ['too_early', 425, /does not take players yet: its joins open at 23:41:07\.250 UTC \(server time\)/],
    ['join_closed', 410, /no longer takes players: joins closed at its start/],
    ['already_playing', 409, /still seated in another game .*exit it first/],
    ['game_full', 409, /every table of this round is full/],
    ['conflict', 409, /still being opened; try again/],
    ['unauthorized', 401, /did not accept this browser's identity/],
    ['forbidden', 403, /only be joined as the user this browser is signed in as/],
    ['not_found', 404, /no tournament has this id, or it has no such round/],
  ];

  it.each(cases)('%s (HTTP %i) reads as a sentence naming the code', (code, status, pattern) => {
    const body = JSON.stringify({ error: { code, message: `server words for ${code}`, ...(code === 'too_early' ? { retryAt: opensAt } : {}) } });
    const err = errorFromResponse(status, body, 'Joining round 1');
    expect(err.code).toBe(code);
    expect(err.status).toBe(status);
    expect(err.message).toMatch(pattern);
    expect(err.message).toMatch(new RegExp(`^Joining round 1 failed: .+ \\(${code}, HTTP ${status}\\)$`));
    expect(err.message).not.toContain('server words');
    if (code === 'too_early') expect(err.retryAt).toBe(opensAt);
  });

  it('a too_early without retryAt still says when, a validation error keeps the server words, a game join is not a round join', () => {
    expect(roundJoinRefusal(425, 'too_early')).toMatch(/open one round before its start/);
    const invalid = errorFromResponse(400, JSON.stringify({ error: { code: 'bad_request', message: 'round: must be a round index', field: 'round' } }), 'Joining round 1');
    expect(invalid.message).toBe('Joining round 1 failed: round: must be a round index (bad_request, HTTP 400)');
    expect(errorFromResponse(409, JSON.stringify({ error: { code: 'game_full', message: 'x' } }), 'Joining the game').message).toMatch(/every seat of this game/);
  });
});

describe('EdgeClient and tournaments', () => {
  it('joins a round with the user and their token, reads the schedule and the standings', async () => {
    const calls: { url: string; init: RequestInit }[] = [];
    const answers: Record<string, unknown> = {
      [`/edge/tournament/${ID}/rounds/0/join`]: {
        seat: 0,
        userId: 'alice',
        joinedAt: T0,
        game: { gameId: GAME_ID, userId: 'alice', region: 'eu', seed: 7, startAt: FIRST, tickMs: 100, breakEvery: 20, algorithm: 'mix32-v1', status: 'active', createdAt: T0, metadata: { tournamentId: ID, round: 0, table: 0 }, shared: { maxPlayers: 2, joinDeadline: FIRST } },
        ownerToken: 'st1.k.alice.mac',
      },
      [`/edge/tournament/${ID}`]: view(),
      [`/edge/tournament/${ID}/standings`]: standings(T0),
    };
    const fetch = (async (url: RequestInfo | URL, init?: RequestInit) => {
      calls.push({ url: String(url), init: init ?? {} });
      return new Response(JSON.stringify(answers[String(url)]), { status: 200 });
    }) as typeof globalThis.fetch;
    const api = new EdgeClient({ fetch });
    const joined = await api.joinRound(ID, 0, 'alice', 'gt1.user.token');
    expect(joined.seat).toBe(0);
    expect(calls[0].init.method).toBe('POST');
    expect(JSON.parse(String(calls[0].init.body))).toEqual({ userId: 'alice' });
    expect((calls[0].init.headers as Record<string, string>).authorization).toBe('Bearer gt1.user.token');
    expect((await api.getTournament(ID)).name).toBe('Friday cup');
    expect((await api.getStandings(ID)).entries[0].userId).toBe('alice');
    expect(calls.map((c) => `${c.init.method} ${c.url}`)).toEqual([
      `POST /edge/tournament/${ID}/rounds/0/join`,
      `GET /edge/tournament/${ID}`,
      `GET /edge/tournament/${ID}/standings`,
    ]);
  });

  it('a refused join rejects with its sentence and keeps retryAt', async () => {
    const fetch = (async () =>
      new Response(JSON.stringify({ error: { code: 'too_early', message: 'later', retryAt: FIRST } }), { status: 425 })) as typeof globalThis.fetch;
    const err = await new EdgeClient({ fetch }).joinRound(ID, 1, 'bob').then(
      () => null,
      (e: unknown) => e as EdgeError,
    );
    expect(err?.status).toBe(425);
    expect(err?.retryAt).toBe(FIRST);
    expect(err?.message).toMatch(/^Joining round 1 failed: this round does not take players yet: its joins open at .* UTC \(server time\) \(too_early, HTTP 425\)$/);
  });
});

describe('the schedule on the synced clock', () => {
  const schedule = view().schedule;

  it("each round's state follows the grid, as the origin computes it", () => {
    const r = schedule[1];
    expect([r.joinsOpenAt - 1, r.joinsOpenAt, r.startAt - 1, r.startAt, r.endAt - 1, r.endAt].map((t) => roundStateAt(r, t))).toEqual([
      'upcoming',
      'open',
      'open',
      'playing',
      'playing',
      'finished',
    ]);
    // The origin's (possibly cached) states are replaced by the clock's.
    expect(scheduleAt(schedule, FIRST + 15_000).map((x) => x.state)).toEqual(['finished', 'playing', 'open']);
    expect(openRounds(schedule, T0)).toEqual([0]);
    expect(openRounds(schedule, FIRST)).toEqual([1]);
    expect(openRounds(schedule, FIRST + 2 * INTERVAL)).toEqual([]);
    expect(openRounds(schedule, T0 - 1)).toEqual([]);
  });

  it('the countdown is to the next change, with every change at that instant', () => {
    expect(nextMoment(schedule, T0 - 5)).toEqual({ at: T0, moments: [{ round: 0, kind: 'joins-open' }] });
    const atFirst = nextMoment(schedule, T0)!;
    expect(atFirst.at).toBe(FIRST);
    expect(atFirst.moments).toEqual([
      { round: 0, kind: 'start' },
      { round: 1, kind: 'joins-open' },
    ]);
    expect(describeMoment(atFirst)).toBe('Round 0 starts, round 1 opens for joins');
    const mid = nextMoment(schedule, FIRST + 3_000)!;
    expect(mid.at).toBe(FIRST + INTERVAL);
    expect(describeMoment(mid)).toBe('Round 1 starts, round 2 opens for joins, round 0 ends');
    expect(describeMoment(nextMoment(schedule, FIRST + 2 * INTERVAL)!)).toBe('Round 2 ends');
    expect(nextMoment(schedule, FIRST + 3 * INTERVAL)).toBeNull();
    expect(nextMoment([], T0)).toBeNull();
  });

  it('countdowns read in seconds, minutes or hours', () => {
    expect(formatCountdownLong(-5)).toBe('0.0 s');
    expect(formatCountdownLong(8_249)).toBe('8.2 s');
    expect(formatCountdownLong(59_999)).toBe('60.0 s');
    expect(formatCountdownLong(65_000)).toBe('1 min 05 s');
    expect(formatCountdownLong(3_599_999)).toBe('59 min 59 s');
    expect(formatCountdownLong(2 * 3_600_000 + 7 * 60_000)).toBe('2 h 07 min');
  });
});

describe('when the standings are read again', () => {
  const schedule = view().schedule;

  it('first at once, then just after the cached copy expires', () => {
    expect(standingsRefreshAt(null, schedule, T0)).toBe(T0);
    expect(standingsRefreshAt(standings(T0), schedule, T0 + 100)).toBe(T0 + CACHE_MS + REFRESH_MARGIN_MS);
    // A copy that outlived the 5 s (an edge keeping it longer) is read again 5 s later, not in a burst.
    expect(standingsRefreshAt(standings(T0), schedule, T0 + 9_000)).toBe(T0 + 9_000 + CACHE_MS);
    // Never sooner than a second after a read.
    expect(standingsRefreshAt(standings(T0), schedule, T0 + 4_800)).toBe(T0 + 4_800 + MIN_REFRESH_MS);
  });

  it("just after a round's end, once; then at the regular pace until an answer from after it", () => {
    const end0 = schedule[0].endAt;
    expect(standingsRefreshAt(standings(end0 - 2_000), schedule, end0 - 1_900)).toBe(end0 + REFRESH_MARGIN_MS);
    // Read at end + 250 ms, the copy was from before the end: again when it expires...
    expect(standingsRefreshAt(standings(end0 - 2_000), schedule, end0 + 260)).toBe(end0 - 2_000 + CACHE_MS + REFRESH_MARGIN_MS);
    // ... or, if it outlived its 5 s, at the regular pace (no burst of reads after an end).
    expect(standingsRefreshAt(standings(end0 - 9_000), schedule, end0 + 260)).toBe(end0 + 260 + CACHE_MS);
    // From after the end: the regular pace.
    expect(standingsRefreshAt(standings(end0 + 10, 1), schedule, end0 + 300)).toBe(end0 + 10 + CACHE_MS + REFRESH_MARGIN_MS);
  });

  it('never again once final: every round over, read after the last end', () => {
    const last = schedule[2].endAt;
    expect(standingsFinal(standings(last + 1, 3), schedule)).toBe(true);
    expect(standingsRefreshAt(standings(last + 1, 3), schedule, last + 2)).toBeNull();
    expect(standingsFinal(standings(last - 1, 2), schedule)).toBe(false);
    expect(standingsFinal(null, schedule)).toBe(false);
    expect(standingsRefreshAt(standings(last - 2_000, 2), schedule, last - 2_000)).toBe(last + REFRESH_MARGIN_MS);
  });
});

describe('the watch', () => {
  beforeEach(() => {
    vi.useFakeTimers();
    vi.setSystemTime(T0);
  });
  afterEach(() => vi.useRealTimers());

  it('reads the schedule once and the standings at their refresh times, until final', async () => {
    let asOf = () => Date.now();
    const getTournament = vi.fn(async () => view());
    const getStandings = vi.fn(async () => {
      const now = asOf();
      const finished = view().schedule.filter((r) => r.endAt <= now).length;
      return standings(now, finished);
    });
    const watch = new TournamentWatch(ID, { api: { getTournament, getStandings }, clock: { serverNow: () => Date.now() } });
    const seen: number[] = [];
    watch.subscribe(() => seen.push(watch.getSnapshot().standings?.asOf ?? 0));
    watch.run();
    await vi.advanceTimersByTimeAsync(0);
    expect(watch.getSnapshot().tournament?.name).toBe('Friday cup');
    expect(getStandings).toHaveBeenCalledTimes(1);
    await vi.advanceTimersByTimeAsync(CACHE_MS + REFRESH_MARGIN_MS);
    expect(getStandings).toHaveBeenCalledTimes(2);
    // Read a second before round 0's end, then just after it: the edge answers its copy from
    // before the end, so it is read again when that copy expires, and then has the round.
    const end0 = FIRST + INTERVAL;
    vi.setSystemTime(end0 - 1_000);
    watch.refreshStandings();
    await vi.advanceTimersByTimeAsync(0);
    const frozen = end0 - 1_000;
    asOf = () => Math.min(Date.now(), frozen);
    const before = getStandings.mock.calls.length;
    await vi.advanceTimersByTimeAsync(1_000 + REFRESH_MARGIN_MS);
    expect(getStandings.mock.calls.length).toBe(before + 1);
    expect(watch.getSnapshot().standings?.roundsFinished).toBe(0);
    asOf = () => Date.now();
    await vi.advanceTimersByTimeAsync(CACHE_MS - 1_000 - 1);
    expect(getStandings.mock.calls.length).toBe(before + 1);
    await vi.advanceTimersByTimeAsync(1);
    expect(getStandings.mock.calls.length).toBe(before + 2);
    expect(watch.getSnapshot().standings?.roundsFinished).toBe(1);
    // To the end: final, and no read after it.
    await vi.advanceTimersByTimeAsync(3 * INTERVAL);
    expect(watch.getSnapshot().final).toBe(true);
    const reads = getStandings.mock.calls.length;
    await vi.advanceTimersByTimeAsync(60_000);
    expect(getStandings.mock.calls.length).toBe(reads);
    expect(getTournament).toHaveBeenCalledTimes(1);
    watch.dispose();
  });

  it('an older answer never replaces a newer one; a failed read is retried and shown', async () => {
    const answers = [standings(T0 + 2_000), standings(T0 + 1_000)];
    let fail = false;
    const getStandings = vi.fn(async () => {
      if (fail) throw new EdgeError('network', 'Reading the standings failed: could not reach the edge (x)');
      return answers.shift() ?? standings(Date.now());
    });
    const watch = new TournamentWatch(ID, { api: { getTournament: async () => view(), getStandings }, clock: { serverNow: () => Date.now() } });
    watch.run();
    await vi.advanceTimersByTimeAsync(0);
    watch.refreshStandings();
    await vi.advanceTimersByTimeAsync(0);
    expect(watch.getSnapshot().standings?.asOf).toBe(T0 + 2_000);
    fail = true;
    watch.refreshStandings();
    await vi.advanceTimersByTimeAsync(0);
    expect(watch.getSnapshot().standingsWarning).toBe('Reading the standings failed: could not reach the edge (x); trying again.');
    fail = false;
    await vi.advanceTimersByTimeAsync(RETRY_MS);
    expect(watch.getSnapshot().standingsWarning).toBeNull();
    watch.dispose();
  });

  it('an unknown tournament stops the watch with a sentence; a failed schedule read is retried', async () => {
    const gone = vi.fn(async () => {
      throw new EdgeError('not_found', `Loading the tournament failed: no tournament with id ${ID} (not_found, HTTP 404)`, 404);
    });
    const getStandings = vi.fn(async () => standings(T0));
    const watch = new TournamentWatch(ID, { api: { getTournament: gone, getStandings }, clock: { serverNow: () => Date.now() } });
    watch.run();
    await vi.advanceTimersByTimeAsync(30_000);
    expect(gone).toHaveBeenCalledTimes(1);
    expect(getStandings).not.toHaveBeenCalled();
    expect(watch.getSnapshot().error).toBe(`Loading the tournament failed: no tournament with id ${ID} (not_found, HTTP 404). Check the tournament link.`);
    watch.dispose();

    let calls = 0;
    const flaky = vi.fn(async () => {
      calls++;
      if (calls === 1) throw new EdgeError('timeout', 'Loading the tournament failed: the edge did not answer within 8.0 s');
      return view();
    });
    const again = new TournamentWatch(ID, { api: { getTournament: flaky, getStandings }, clock: { serverNow: () => Date.now() } });
    again.run();
    await vi.advanceTimersByTimeAsync(0);
    expect(again.getSnapshot().error).toMatch(/did not answer/);
    await vi.advanceTimersByTimeAsync(RETRY_MS);
    expect(again.getSnapshot().tournament?.name).toBe('Friday cup');
    expect(again.getSnapshot().error).toBeNull();
    again.dispose();
    // Disposed: nothing more is read.
    const n = getStandings.mock.calls.length;
    await vi.advanceTimersByTimeAsync(60_000);
    expect(getStandings.mock.calls.length).toBe(n);
  });
});

describe("a round's score from the page's engine", () => {
  const game = { seed: 7, startAt: FIRST, tickMs: 100, breakEvery: 5, algorithm: 'mix32-v1' };
  const endAt = FIRST + INTERVAL;

  it('is the value at the exit, or at the round end for a seat still in, or 0 in the countdown', () => {
    const exitedAt = FIRST + 3_456;
    const atExit = stateAt(game, exitedAt + 1, exitedAt);
    expect(atExit.phase).toBe('ended');
    expect(roundScore(game, endAt, exitedAt)).toBe(atExit.phase === 'ended' ? atExit.tick?.value : NaN);
    // The origin's rule: the last step that began before the instant.
    expect(roundScore(game, endAt, exitedAt)).toBe(tickAt(game, Math.floor((exitedAt - 1 - FIRST) / 100)).value);
    expect(roundScore(game, endAt)).toBe(tickAt(game, Math.floor((endAt - 1 - FIRST) / 100)).value);
    // An exit after the end scores the end.
    expect(roundScore(game, endAt, endAt + 5_000)).toBe(roundScore(game, endAt));
    expect(roundScore(game, endAt, FIRST - 1)).toBe(0);
    // Some step of the round scores more than 0 (the test means something).
    expect([...Array(100).keys()].some((s) => roundScore(game, endAt, FIRST + 1 + s * 100) > 0)).toBe(true);
  });
});

describe('the addresses and the panel', () => {
  it('a table of a tournament is addressed with its tournament, read back', () => {
    expect(tournamentIdFrom(`?tournament=${ID}`)).toBe(ID);
    expect(tournamentIdFrom('?tournament=%20')).toBeNull();
    expect(tournamentIdFrom(`?game=${GAME_ID}`)).toBeNull();
    expect(gameAddress({ gameId: GAME_ID, metadata: { tournamentId: ID, round: 1 } })).toBe(`?game=${GAME_ID}&tournament=${ID}`);
    expect(gameAddress({ gameId: GAME_ID })).toBe(`?game=${GAME_ID}`);
    expect(tableOf({ metadata: { tournamentId: ID, round: '1' } })).toBeNull();
    expect(tableOf({ metadata: { about: 'x' } })).toBeNull();
  });

  it('shows the rounds with a join button for the open one, the countdown and the standings', async () => {
    const watch = new TournamentWatch(ID, {
      api: { getTournament: async () => view(), getStandings: async () => standings(T0 + 4_000, 0, [{ rank: 1, userId: 'alice', total: 12, roundsPlayed: 1 }]) },
      clock: { serverNow: () => T0 + 5_000 },
    });
    watch.run();
    await vi.waitFor(() => expect(watch.getSnapshot().standings).not.toBeNull());
    const html = renderToStaticMarkup(
      createElement(TournamentPanel, { watch, clock: { serverNow: () => T0 + 5_000 }, busy: false, onJoinRound: () => {}, myTable: null, onOpenTable: () => {} }),
    );
    expect(html).toContain('Friday cup');
    expect(html).toContain('data-testid="join-round-0"');
    expect(html).toContain('Join round 0');
    expect(html).not.toContain('join-round-1');
    expect(html).toContain('data-testid="round-1" data-state="upcoming"');
    expect(html).toContain('Round 0 starts, round 1 opens for joins in');
    expect(html).toContain('5.0 s');
    expect(html).toMatch(/data-testid="standing" data-user="alice" data-rank="1" data-total="12" data-rounds="1"/);
    expect(html).toContain('data-final="false"');
    expect(html).toContain('data-testid="tournament-user-id"');
    // Once the last round started nothing is left to join: no "Play as", no button.
    const after = (at: number) =>
      renderToStaticMarkup(createElement(TournamentPanel, { watch, clock: { serverNow: () => at }, busy: false, onJoinRound: () => {}, myTable: null, onOpenTable: () => {} }));
    expect(after(FIRST + 2 * INTERVAL)).not.toContain('tournament-user-id');
    expect(after(FIRST + 2 * INTERVAL)).toContain('Round 2 ends in');
    expect(after(FIRST + 3 * INTERVAL)).toContain('Every round is over.');
    expect(after(FIRST + 3 * INTERVAL)).not.toContain('join-round-');
    watch.dispose();
  });
});
