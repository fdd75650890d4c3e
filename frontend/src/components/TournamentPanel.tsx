import { useEffect, useId, useRef, useState, useSyncExternalStore } from 'react';
import { LIMITS } from '../api/generated/contract';
import { formatServerTime } from '../format';
import { describeMoment, formatCountdownLong, nextMoment, roundStateAt, type TournamentWatch } from '../game/tournament';
import { validateUserId } from './Forms';

/** The estimated server time, re-read every `everyMs` (for countdowns). */
function useServerNow(clock: { serverNow(): number }, everyMs = 100): number {
  const [now, setNow] = useState(() => clock.serverNow());
  useEffect(() => {
    const timer = setInterval(() => setNow(clock.serverNow()), everyMs);
    return () => clearInterval(timer);
  }, [clock, everyMs]);
  return now;
}

const STATE_WORDS = { upcoming: 'upcoming', open: 'taking joins', playing: 'playing', finished: 'finished' } as const;

/** The table this page holds in the tournament (a joined round), to go back to. */
export interface MyTable {
  round: number;
  gameId: string;
  /** The seat's player. */
  userId: string;
  /** Whether the seat exited (its result is in the standings). */
  exited: boolean;
}

/**
 * A tournament: its name and rules, the round schedule with each round's state on the synced
 * clock and a countdown to the next change, a "Join round i" button while a round takes joins,
 * and the standings (rank, player, total, rounds played), kept current by the watch.
 */
export function TournamentPanel({
  watch,
  clock,
  busy,
  onJoinRound,
  fixedUserId,
  myTable,
  onOpenTable,
}: {
  watch: TournamentWatch;
  clock: { serverNow(): number };
  busy: boolean;
  onJoinRound: (round: number, userId: string) => void;
  /** The user id this browser is signed in as (a guest identity): shown, not editable. */
  fixedUserId?: string;
  myTable: MyTable | null;
  onOpenTable: () => void;
}) {
  const snap = useSyncExternalStore(watch.subscribe, watch.getSnapshot, watch.getSnapshot);
  const now = useServerNow(clock);
  const [typed, setTyped] = useState(myTable?.userId ?? '');
  const userId = fixedUserId ?? typed;
  const [problem, setProblem] = useState<string | null>(null);
  const titleRef = useRef<HTMLHeadingElement>(null);
  const ids = useId();
  const t = snap.tournament;

  useEffect(() => titleRef.current?.focus(), [t !== null]);

  const next = t ? nextMoment(t.schedule, now) : null;
  const nextAt = next?.at ?? null;

  function join(round: number) {
    const msg = validateUserId(userId);
    setProblem(msg);
    if (!msg) onJoinRound(round, userId.trim());
  }

  if (!t) {
    return (
      <section className="card tournament" aria-labelledby={`${ids}-title`} data-testid="tournament">
        <h2 id={`${ids}-title`}>Tournament</h2>
        {snap.error ? (
          <p className="error" role="alert" data-testid="tournament-error">
            {snap.error}
          </p>
        ) : (
          <p className="muted" role="status">
            Loading the tournament…
          </p>
        )}
      </section>
    );
  }

  const standings = snap.standings;
  // "Play as" while a round is still to be joined (upcoming or taking joins).
  const joinable = t.schedule.some((r) => now < r.startAt);
  const you = myTable?.userId ?? (userId.trim() || undefined);
  return (
    <section className="card tournament" aria-labelledby={`${ids}-title`} data-testid="tournament" data-tournament-id={t.tournamentId}>
      <div className="game-head">
        <h2 id={`${ids}-title`} ref={titleRef} tabIndex={-1} data-testid="tournament-name">
          {t.name}
        </h2>
        <span className="badge">tournament</span>
      </div>
      <dl className="facts">
        <div className="wide">
          <dt>Tournament id</dt>
          <dd>
            <code data-testid="tournament-id">{t.tournamentId}</code>
          </dd>
        </div>
        <div>
          <dt>Rounds</dt>
          <dd>
            {t.rounds} of {formatCountdownLong(t.intervalMs)} each
          </dd>
        </div>
        <div>
          <dt>Tables</dt>
          <dd>
            {t.seatsPerTable} seats each, up to {t.maxTables} per round
          </dd>
        </div>
        <div>
          <dt>Rules</dt>
          <dd>
            tick {t.tickMs} ms, a break about every {t.breakEvery} steps, <code>{t.algorithm}</code>
          </dd>
        </div>
        <div className="wide">
          <dt>Scoring</dt>
          <dd>
            each round scores your value when you exit, or the value at the round&apos;s end if you are still seated; the
            standings rank the totals
          </dd>
        </div>
      </dl>

      <div className="stage tournament-next" data-testid="next-moment" data-at={nextAt ?? ''}>
        {next ? (
          <div className="countdown">
            <span className="label">{describeMoment(next)} in</span>
            <span className="big" data-testid="tournament-countdown">
              {formatCountdownLong(next.at - now)}
            </span>
            <span className="muted">at {formatServerTime(next.at)} (server time)</span>
          </div>
        ) : (
          <p className="big-note">Every round is over.</p>
        )}
      </div>

      {myTable && (
        <p className="card muted my-table" data-testid="my-table">
          You {myTable.exited ? 'played' : 'have a seat in'} round {myTable.round}.{' '}
          <button type="button" className="link-button" onClick={onOpenTable} data-testid="open-table">
            {myTable.exited ? 'See my table' : 'Back to my table'}
          </button>
        </p>
      )}

      {joinable && (
        <div className="field">
          <label htmlFor={`${ids}-player`}>Play as</label>
          <input
            id={`${ids}-player`}
            name="player"
            value={userId}
            readOnly={fixedUserId !== undefined}
            data-testid="tournament-user-id"
            maxLength={LIMITS.maxUserIdLen}
            onChange={(e) => setTyped(e.target.value)}
            aria-invalid={problem ? true : undefined}
            aria-describedby={problem ? `${ids}-problem` : undefined}
            placeholder="your user id, to join a round"
            autoComplete="username"
          />
          {problem && (
            <p id={`${ids}-problem`} className="field-error" role="alert">
              {problem}
            </p>
          )}
        </div>
      )}

      <table className="seats schedule" data-testid="schedule">
        <caption>Schedule (server time)</caption>
        <thead>
          <tr>
            <th scope="col">Round</th>
            <th scope="col">Joins open</th>
            <th scope="col">Starts</th>
            <th scope="col">Ends</th>
            <th scope="col">State</th>
            <th scope="col">
              <span className="sr-only">Action</span>
            </th>
          </tr>
        </thead>
        <tbody>
          {t.schedule.map((r) => {
            const state = roundStateAt(r, now);
            return (
              <tr key={r.round} data-testid={`round-${r.round}`} data-state={state} className={`round-${state}`}>
                <td>{r.round}</td>
                <td>{formatServerTime(r.joinsOpenAt)}</td>
                <td>{formatServerTime(r.startAt)}</td>
                <td>{formatServerTime(r.endAt)}</td>
                <td>{STATE_WORDS[state]}</td>
                <td>
                  {state === 'open' && (
                    <button type="button" disabled={busy} onClick={() => join(r.round)} data-testid={`join-round-${r.round}`}>
                      {busy ? 'Joining…' : `Join round ${r.round}`}
                    </button>
                  )}
                </td>
              </tr>
            );
          })}
        </tbody>
      </table>

      <table
        className="seats standings"
        data-testid="standings"
        data-final={snap.final ? 'true' : 'false'}
        data-as-of={standings?.asOf ?? ''}
        data-rounds-finished={standings?.roundsFinished ?? ''}
      >
        <caption>
          Standings
          {standings
            ? `: ${standings.players} player${standings.players === 1 ? '' : 's'}, ${standings.roundsFinished} of ${t.rounds} rounds finished, as of ${formatServerTime(standings.asOf)}${snap.final ? ' — final' : ''}`
            : ' (loading…)'}
        </caption>
        <thead>
          <tr>
            <th scope="col">Rank</th>
            <th scope="col">Player</th>
            <th scope="col">Total</th>
            <th scope="col">Rounds played</th>
          </tr>
        </thead>
        <tbody>
          {standings?.entries.map((e) => (
            <tr key={e.userId} data-testid="standing" data-user={e.userId} data-rank={e.rank} data-total={e.total} data-rounds={e.roundsPlayed}>
              <td>{e.rank}</td>
              <td>
                {e.userId}
                {you !== undefined && e.userId === you ? ' (you)' : ''}
              </td>
              <td>{e.total}</td>
              <td>{e.roundsPlayed}</td>
            </tr>
          ))}
          {standings && standings.entries.length === 0 && (
            <tr>
              <td colSpan={4} className="muted">
                Nobody has scored yet: a round counts once a player exits it or it ends.
              </td>
            </tr>
          )}
        </tbody>
      </table>
      {snap.standingsWarning && (
        <p className="warning" role="status" data-testid="standings-warning">
          {snap.standingsWarning}
        </p>
      )}
    </section>
  );
}
