import { useEffect, useMemo, useRef, useState, useSyncExternalStore } from 'react';
import { playerOf, type GameSession } from '../game/session';
import { formatCountdown, formatRoutedBy, formatServerTime, joinLink, regionName, shareLink } from '../format';
import { SealedPanel } from './SealedPanel';
import { SeatsTable } from './SeatsTable';
import { ValueChart } from './ValueChart';
import { chartModel } from '../game/chart';
import { formatCountdownLong, roundScore } from '../game/tournament';

/** A tournament table's round, as the game view shows it (see `TournamentPanel`). */
export interface TableRound {
  /** The tournament's name. */
  name: string;
  round: number;
  /** Server Unix ms of the round's end: a seat still in then scores the value at it. */
  endAt: number;
  /** Back to the tournament (the session goes on). */
  onBack: () => void;
}

function useSession(session: GameSession) {
  return useSyncExternalStore(session.subscribe, session.getSnapshot);
}

/** One game: its facts, the countdown or the counter, the break log and the exit button. */
export function GamePanel({
  session,
  onClose,
  onReclaim,
  tableRound,
}: {
  session: GameSession;
  onClose: () => void;
  /** A viewer pasted the game's owner token. */
  onReclaim?: (token: string) => void;
  /** The game is a table of a tournament's round. */
  tableRound?: TableRound;
}) {
  const snap = useSession(session);
  const { game, state, role } = snap;
  const titleRef = useRef<HTMLHeadingElement>(null);
  const [copyNote, setCopyNote] = useState<string | null>(null);
  const [pasted, setPasted] = useState('');
  const link = shareLink(game.gameId, window.location.origin);
  const me = playerOf(snap);
  const shared = game.shared;
  // A shared game takes players until its deadline (server time); the join link is shown until then.
  const seatLink = shared && !snap.stopped && snap.serverNow < shared.joinDeadline ? joinLink(game.gameId, window.location.origin, game.backendRegion ?? game.region) : null;
  const allExited = snap.seats !== null && snap.seats.length > 0 && snap.seats.every((r) => r.result !== null);
  const tick = state.phase === 'countdown' ? null : state.tick;
  const step = tick?.step ?? null;
  // A shared seeded game: the value over the steps from this page's engine, exits marked.
  const chart = useMemo(
    () =>
      snap.seats && !snap.sealed
        ? chartModel(
            { seed: game.seed, tickMs: game.tickMs, breakEvery: game.breakEvery, algorithm: game.algorithm },
            step,
            snap.seats,
            undefined,
            snap.myResult !== null,
          )
        : null,
    [snap.seats, snap.sealed, snap.myResult, game.seed, game.tickMs, game.breakEvery, game.algorithm, step],
  );

  useEffect(() => titleRef.current?.focus(), []);

  // A tournament table: the round's end, and what this seat scores if still in at it.
  const roundOver = tableRound !== undefined && snap.serverNow >= tableRound.endAt;
  const endScore = useMemo(
    () =>
      tableRound && roundOver && !snap.sealed
        ? roundScore({ seed: game.seed, startAt: game.startAt, tickMs: game.tickMs, breakEvery: game.breakEvery, algorithm: game.algorithm }, tableRound.endAt)
        : null,
    [tableRound, roundOver, snap.sealed, game.seed, game.startAt, game.tickMs, game.breakEvery, game.algorithm],
  );

  // Announce phase changes (not every tick) to screen readers.
  const announcement =
    state.phase === 'countdown'
      ? 'Game starting soon.'
      : state.phase === 'running'
        ? snap.leftEarly
          ? `Stopped watching at step ${tick?.step}.`
          : 'Game running.'
        : tick
          ? `Game over. Final step ${tick.step}, value ${tick.value}, round ${tick.round}.`
          : 'Game over before it started.';

  async function copyToken() {
    try {
      await navigator.clipboard.writeText(game.ownerToken ?? '');
      setCopyNote(snap.mySeat ? 'Seat token copied: whoever has it can exit your seat.' : 'Owner token copied: whoever has it can end this game.');
    } catch {
      setCopyNote('Could not copy the owner token.');
    }
  }

  async function copy(text = link) {
    try {
      await navigator.clipboard.writeText(text);
      setCopyNote('Link copied.');
    } catch {
      setCopyNote('Could not copy: select the link and copy it.');
    }
  }

  return (
    <section className="card game" aria-labelledby="game-title">
      <div className="game-head">
        <h2 id="game-title" ref={titleRef} tabIndex={-1}>
          {role !== 'player' ? 'Watching a game' : snap.mySeat ? `Your seat (seat ${snap.mySeat.seat})` : 'Your game'}
        </h2>
        <span className={`badge phase-${snap.leftEarly ? 'left' : state.phase}`} data-testid="phase">
          {snap.leftEarly ? 'stopped watching' : state.phase}
        </span>
      </div>

      {tableRound && (
        <div className="table-round" data-testid="table-round" data-round={tableRound.round} data-end-at={tableRound.endAt} data-end-score={endScore ?? ''}>
          <p>
            Tournament <strong>{tableRound.name}</strong>, round {tableRound.round}:{' '}
            {roundOver ? (
              <>
                over at {formatServerTime(tableRound.endAt)}.
                {role === 'player' && snap.myResult === null && endScore !== null && (
                  <> You were still seated, so it scores the value then: <strong data-testid="end-score">{endScore}</strong>.</>
                )}
              </>
            ) : (
              <>
                ends at {formatServerTime(tableRound.endAt)} (in {formatCountdownLong(tableRound.endAt - snap.serverNow)}); exit before it to
                score your value, or score the value at the end.
              </>
            )}
          </p>
          <button type="button" className="secondary" onClick={tableRound.onBack} data-testid="back-to-tournament">
            Back to the tournament
          </button>
        </div>
      )}

      <dl className="facts">
        <div className="wide">
          <dt>Game id</dt>
          <dd>
            <code data-testid="game-id">{game.gameId}</code>
          </dd>
        </div>
        <div>
          <dt>{shared ? 'Started by' : 'Player'}</dt>
          <dd data-testid="creator">{game.userId || 'unknown'}</dd>
        </div>
        {shared && (
          <div>
            <dt>Shared game</dt>
            <dd data-testid="shared-facts">
              up to {shared.maxPlayers} players; joins {snap.serverNow < shared.joinDeadline ? 'close' : 'closed'} at{' '}
              {formatServerTime(shared.joinDeadline)}
              {me !== null && <> · you play as {me}</>}
            </dd>
          </div>
        )}
        <div>
          <dt>Backend region</dt>
          <dd data-testid="backend-region">{regionName(game.backendRegion ?? game.region)}</dd>
        </div>
        <div>
          <dt>Why this region</dt>
          <dd data-testid="routed-by">
            {role === 'player' || game.routedBy !== undefined ? formatRoutedBy(game.routedBy) : 'the game’s home region (joined by id)'}
          </dd>
        </div>
        <div>
          <dt>Rules</dt>
          <dd>
            tick {game.tickMs} ms, a break about every {game.breakEvery} steps, <code>{game.algorithm}</code>
          </dd>
        </div>
        <div className="share">
          <dt>Share</dt>
          <dd>
            <a href={link} data-testid="share-link">
              {link}
            </a>{' '}
            <button type="button" className="link-button" onClick={() => void copy()}>
              Copy link
            </button>
            {copyNote && <span className="muted"> {copyNote}</span>}
          </dd>
        </div>
        {seatLink && (
          <div className="share">
            <dt>Invite players</dt>
            <dd>
              <a href={seatLink} data-testid="join-link">
                {seatLink}
              </a>{' '}
              <button type="button" className="link-button" onClick={() => void copy(seatLink)}>
                Copy join link
              </button>
            </dd>
          </div>
        )}
      </dl>

      <div
        className={`stage stage-${state.phase}`}
        data-testid="counter"
        data-phase={state.phase}
        data-step={tick ? tick.step : ''}
        data-value={tick ? tick.value : ''}
        data-round={tick ? tick.round : ''}
        data-server-now={snap.serverNow}
        data-stopped={snap.stopped ? 'true' : 'false'}
        data-flashes={snap.flashKey}
        data-settled={snap.settled ? 'true' : 'false'}
      >
        {snap.flashKey > 0 && (
          <div key={snap.flashKey} className="flash" aria-hidden="true">
            Break!
          </div>
        )}
        {state.phase === 'countdown' ? (
          <div className="countdown">
            <span className="label">Starts in</span>
            <span className="big" data-testid="countdown">
              {formatCountdown(state.msUntilStart)}
            </span>
            <span className="muted">at {formatServerTime(game.startAt)} (server time)</span>
          </div>
        ) : tick ? (
          <div className="numbers">
            <div className="value">
              <span className="label">Value</span>
              <span className={snap.settled ? 'big' : 'big provisional'} data-testid="value" title={snap.settled ? undefined : 'provisional: the next key settles it'}>
                {tick.value}
              </span>
            </div>
            <div>
              <span className="label">Step</span>
              <span className="mid" data-testid="step">
                {tick.step}
              </span>
            </div>
            <div>
              <span className="label">Round</span>
              <span className="mid" data-testid="round">
                {tick.round}
              </span>
            </div>
          </div>
        ) : (
          <p className="big-note">The game ended before its first step.</p>
        )}
        {state.phase === 'ended' && (
          <p className="final" data-testid="final">
            {shared && role === 'player' ? 'You exited' : 'Game over'}
            {snap.endedAt !== null ? ` at ${formatServerTime(snap.endedAt)}` : ''}
            {tick ? `: final step ${tick.step}, value ${tick.value}, round ${tick.round}.` : '.'}
            {shared && role === 'player' && !allExited ? ' The game goes on for the other seats.' : ''}
          </p>
        )}
        {snap.leftEarly && state.phase !== 'ended' && (
          <p className="final">You stopped watching; the game may still be running for others.</p>
        )}
      </div>

      <p className="sr-only" role="status" aria-live="polite">
        {announcement}
      </p>

      {snap.error && (
        <p className="error" role="alert" data-testid="game-error">
          {snap.error}
        </p>
      )}
      <div className="live" data-testid="live">
        <span className="badge" data-testid="live-status">
          live: {snap.liveStatus}
          {snap.latency && (
            <>
              {' '}
              · rtt {Math.round(snap.latency.rttMs)} ms · jitter {Math.round(snap.latency.jitterMs)} ms · offset{' '}
              {Math.round(snap.latency.offsetMs)} ± {Math.round(snap.latency.boundMs)} ms
            </>
          )}
        </span>
        {snap.presence && (
          <ul className="presence" data-testid="presence">
            {snap.presence.players.map((p) => (
              <li key={p.connId} data-testid="presence-player" data-seat={p.seat ?? ''}>
                player {p.userId ?? '?'}
                {p.seat !== undefined && ` (seat ${p.seat})`}
                {p.rttMs !== undefined && <span className="badge"> {p.rttMs} ms</span>}
              </li>
            ))}
            <li data-testid="viewer-count">
              {snap.presence.viewers} viewer{snap.presence.viewers === 1 ? '' : 's'}
            </li>
          </ul>
        )}
        {snap.liveNotice && (
          <p className="warning" role="status" data-testid="live-notice">
            {snap.liveNotice}
          </p>
        )}
        {snap.latencyWarning && !snap.stopped && (
          <p className="warning" role="status">
            {snap.latencyWarning}
          </p>
        )}
      </div>
      {chart && <ValueChart model={chart} />}
      {snap.myResult && (
        <p
          className="card result"
          role="status"
          data-testid="my-result"
          data-exited-at={snap.myResult.exitedAt}
          data-step={snap.myResult.final ? snap.myResult.final.step : ''}
          data-value={snap.myResult.final ? snap.myResult.final.value : ''}
          data-break-first={snap.myResult.breakFirst ? 'true' : 'false'}
        >
          Your result: exited at {formatServerTime(snap.myResult.exitedAt)},{' '}
          {snap.myResult.final
            ? `step ${snap.myResult.final.step}, value ${snap.myResult.final.value}`
            : 'during the countdown'}
          {snap.myResult.breakFirst ? ' (a break came first).' : ' (before any break).'}
        </p>
      )}
      {snap.seats && <SeatsTable seats={snap.seats} maxPlayers={shared?.maxPlayers} you={me ?? undefined} final={allExited} />}
      {snap.sealed && <SealedPanel view={snap.sealed} settled={snap.settled} stopped={snap.stopped} />}
      {snap.roundsWarning && (
        <p className="warning" role="status" data-testid="rounds-warning">
          {snap.roundsWarning}
        </p>
      )}
      {snap.pollWarning && !snap.stopped && (
        <p className="warning" role="status">
          {snap.pollWarning}
        </p>
      )}

      <div className="actions">
        {!snap.stopped && role === 'player' && (
          <button type="button" className="danger" onClick={() => void session.exit()} disabled={snap.exiting}>
            {snap.exiting ? 'Exiting…' : shared ? 'Exit my seat' : 'Exit game'}
          </button>
        )}
        {!snap.stopped && role === 'viewer' && (
          <button type="button" className="secondary" onClick={() => session.leave()}>
            Stop watching
          </button>
        )}
        {!snap.stopped && role === 'player' && game.ownerToken && (
          <button type="button" className="secondary" onClick={() => void copyToken()} data-testid="copy-owner-token">
            Copy owner token
          </button>
        )}
        {snap.stopped && !tableRound && (
          <button type="button" onClick={onClose}>
            New game
          </button>
        )}
      </div>
      {!snap.stopped && role === 'viewer' && onReclaim && (
        <form
          className="reclaim"
          data-testid="reclaim"
          onSubmit={(e) => {
            e.preventDefault();
            onReclaim(pasted);
          }}
        >
          <label>
            Take control: this game's owner token{' '}
            <input
              type="password"
              autoComplete="off"
              value={pasted}
              onChange={(e) => setPasted(e.target.value)}
              placeholder="st1.…"
            />
          </label>{' '}
          <button type="submit" className="secondary" disabled={pasted.trim() === ''}>
            Take control
          </button>
        </form>
      )}

      <h3 id="log-title">Breaks</h3>
      {snap.breaks.length === 0 ? (
        <p className="muted">
          {state.phase === 'countdown'
            ? 'No break yet: the game has not started.'
            : tick && tick.round > 0
              ? `No break since you opened the game (${tick.round} before).`
              : 'No break yet.'}
        </p>
      ) : null}
      <ol className="log" aria-labelledby="log-title" aria-live="polite" aria-relevant="additions" data-testid="break-log">
        {snap.breaks.map((b) => (
          <li key={b.step}>
            <span className="log-time">{formatServerTime(b.at)}</span> break at step <strong>{b.step}</strong> → round{' '}
            {b.round}
          </li>
        ))}
      </ol>
    </section>
  );
}
