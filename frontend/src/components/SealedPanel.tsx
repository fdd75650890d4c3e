import type { SealedView } from '../game/sealed';
import { formatServerTime } from '../format';

/** `abcd1234…ef90` */
function short(key: string): string {
  return `${key.slice(0, 12)}…${key.slice(-8)}`;
}

/**
 * A sealed game's proof, as it builds up: the commitment shown from the start, each round as it
 * settles (its break step, and the ticks this page had shown past it), any key rejected, and
 * after the game whether everything verified against the commitment.
 */
export function SealedPanel({ view, settled, stopped }: { view: SealedView; settled: boolean; stopped: boolean }) {
  const v = view.verification;
  return (
    <section
      className="sealed"
      aria-labelledby="sealed-title"
      data-testid="sealed"
      data-revealed={view.revealed}
      data-settled={settled ? 'true' : 'false'}
      data-verification={v.status}
      data-rejected={view.rejected}
      data-max-rollback={view.maxRollback}
    >
      <h3 id="sealed-title">Sealed breaks</h3>
      <p className="muted">
        Nobody can compute this game&rsquo;s breaks ahead: each round&rsquo;s key is revealed at its break, and every key
        must hash to the one before it, down to this commitment, published at the start.
      </p>
      <dl className="facts">
        <div className="wide">
          <dt>Commitment</dt>
          <dd>
            <code data-testid="sealed-commitment" title={view.commitment}>
              {view.commitment}
            </code>
          </dd>
        </div>
        <div>
          <dt>Rounds settled</dt>
          <dd data-testid="sealed-revealed">
            {view.revealed} of at most {view.chainRounds.toLocaleString('en')}
          </dd>
        </div>
        <div>
          <dt>Counter</dt>
          <dd data-testid="sealed-counter-state">
            {settled ? 'settled by the keys' : 'provisional: counting until the next key'}
          </dd>
        </div>
        <div>
          <dt>Last settle</dt>
          <dd data-testid="sealed-rollback">
            {view.lastRollback === null
              ? '—'
              : view.lastRollback === 0
                ? 'on time (nothing rolled back)'
                : `rolled back ${view.lastRollback} tick${view.lastRollback === 1 ? '' : 's'} shown past the break`}
          </dd>
        </div>
      </dl>

      {view.error && (
        <p className="error" role="alert" data-testid="sealed-error">
          Key rejected ({view.rejected} so far): {view.error}
        </p>
      )}

      {v.status === 'verified' && (
        <p className="verified" role="status" data-testid="sealed-verified">
          ✔ Verified against the commitment: {v.rounds} round key{v.rounds === 1 ? '' : 's'} chain to it and settle every step
          up to the end
          {v.root ? '; the published root hashes down to them.' : '.'}
        </p>
      )}
      {v.status === 'failed' && (
        <p className="error" role="alert" data-testid="sealed-failed">
          ✘ Not verified: {v.reason}.
        </p>
      )}
      {v.status === 'pending' && stopped && (
        <p className="muted" role="status" data-testid="sealed-pending">
          Verifying: {v.reason}…
        </p>
      )}

      {view.recent.length > 0 && (
        <ol className="log sealed-rounds" aria-label="Settled rounds" data-testid="sealed-rounds">
          {view.recent.map((r) => (
            <li key={r.round} data-round={r.round} data-step={r.breakStep} data-rolled-back={r.rolledBack}>
              round <strong>{r.round}</strong>{' '}
              {view.finalStep !== null && r.breakStep > view.finalStep ? 'under way at the end; would have broken' : 'broke'} at step{' '}
              <strong>{r.breakStep}</strong>{' '}
              <span className="log-time">{formatServerTime(r.at)}</span>
              {r.rolledBack > 0 && <span className="muted"> · {r.rolledBack} rolled back</span>}
              {!r.direct && <span className="muted"> · from a later key</span>}
            </li>
          ))}
        </ol>
      )}
      {view.latestKey && (
        <p className="muted">
          Round {view.revealed}&rsquo;s key: <code title={view.latestKey}>{short(view.latestKey)}</code>
        </p>
      )}
    </section>
  );
}
