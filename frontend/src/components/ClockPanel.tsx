import { useSyncExternalStore } from 'react';
import type { ClockSync } from '../clock/clockSync';
import { formatBound, formatOffset, formatServerTime } from '../format';

/** The clock-sync status: offset to the server, its error bound, and a re-sync button. */
export function ClockPanel({ clock }: { clock: ClockSync }) {
  const status = useSyncExternalStore(clock.subscribe, clock.getStatus);
  const est = status.estimate;
  // When the last round finished, in server time like every other time on the page.
  const lastSync = status.lastSyncAt === null ? null : formatServerTime(status.lastSyncAt + (est?.offset ?? 0));

  return (
    <section className="card clock" aria-labelledby="clock-title">
      <h2 id="clock-title">Clock sync</h2>
      <dl className="facts">
        <div>
          <dt>Offset to server</dt>
          <dd
            data-testid="clock-offset"
            data-offset={est ? est.offset.toFixed(1) : ''}
            data-bound={est ? est.bound.toFixed(1) : ''}
          >
            {est ? (
              <>
                <strong>{formatOffset(est.offset)}</strong> <span className="muted">{formatBound(est.bound)}</span>
              </>
            ) : status.syncing ? (
              'measuring…'
            ) : (
              'not synced'
            )}
          </dd>
        </div>
        <div>
          <dt>Samples</dt>
          <dd>{est ? `${est.used} best of ${est.samples}, min round trip ${est.minRtt.toFixed(1)} ms` : '—'}</dd>
        </div>
        <div>
          <dt>Last sync</dt>
          <dd>
            {status.syncing
              ? 'syncing now…'
              : lastSync === null
                ? 'never'
                : `${status.rounds} round${status.rounds === 1 ? '' : 's'}, last at ${lastSync.replace(/\.\d+ /, ' ')}`}
          </dd>
        </div>
      </dl>
      {status.lastError && (
        <p className="warning" role="alert">
          Clock sync failed: {status.lastError}. {est ? 'Using the last good estimate.' : 'Using this device’s clock until it succeeds.'}
        </p>
      )}
      {est && !est.consistent && (
        <p className="warning">The clock samples disagree; the estimate may be off by more than its bound.</p>
      )}
      <button type="button" className="secondary" onClick={() => void clock.syncNow()} disabled={status.syncing}>
        Re-sync clock
      </button>
    </section>
  );
}
