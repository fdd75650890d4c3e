// Prints the e2e figures (report.json) and the closing 'e2e: N passed, N failed' line.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const [dir, rcArg] = process.argv.slice(2);
const rc = Number(rcArg ?? 1);
const read = (name) => {
  const p = join(dir, name);
  try {
    return existsSync(p) ? JSON.parse(readFileSync(p, 'utf8')) : null;
  } catch {
    return null;
  }
};

const report = read('report.json');
if (report) {
  const fmt = (o) => (o ? `${o.offset.toFixed(1)} ms ± ${o.bound.toFixed(1)} ms` : 'n/a');
  console.log(`e2e: clock offsets estimated: A ${fmt(report.offsets?.A)}, B (Date.now +5 s) ${fmt(report.offsets?.B)}`);
  if (report.game) {
    const g = report.game;
    console.log(`e2e: game ${g.gameId} region=${g.region} seed=${g.seed} tickMs=${g.tickMs} breakEvery=${g.breakEvery} ${g.algorithm}`);
  }
  for (const i of report.instants ?? []) {
    const c = (x) => `step ${x.step} value ${x.value} round ${x.round}`;
    const s = i.server ? `server ${c(i.server)}` : 'server n/a';
    console.log(`e2e: instant ${i.instant}: A ${c(i.a)} | B ${c(i.b)} | ${s} | real-clock step ${i.expectedSteps.join('..')}${i.attempts > 1 ? ` (read ${i.attempts}x)` : ''}`);
  }
  if (report.breakChecked) console.log(`e2e: break at step ${report.breakChecked.step} (round ${report.breakChecked.round}) logged and flashed on both`);
  if (report.final) {
    const f = report.final;
    console.log(
      `e2e: exit at ${f.exitedAt}: A stopped at step ${f.a.step} value ${f.a.value}, B at step ${f.b.step} value ${f.b.value} ` +
        `(engine: step ${f.engine?.tick?.step}); B saw the end ${f.viewerLagMs} ms after the click`,
    );
  }
  if (report.errorMessage) console.log(`e2e: errors shown: "${report.errorMessage}"`);
  if (report.pageErrors?.length) console.log(`e2e: page errors: ${report.pageErrors.join(' | ')}`);
}

const sealed = read('sealed-report.json');
if (sealed?.game) {
  const g = sealed.game;
  console.log(`e2e: sealed game ${g.gameId} tickMs=${g.tickMs} breakEvery=${g.breakEvery} commitment ${g.commitment}`);
  for (const page of ['A', 'B']) {
    const s = sealed.settles.filter((x) => x.page === page && x.live);
    const lags = s.map((x) => x.seenAtMs - x.breakAtMs).sort((x, y) => x - y);
    const max = s.reduce((m, x) => Math.max(m, x.rolledBack), 0);
    if (s.length) console.log(`e2e: sealed ${page}: ${s.length} rounds settled while watched, break-to-seen ${lags[0]}..${lags.at(-1)} ms (polled every ~40 ms), max rollback ${max} ticks`);
  }
  if (sealed.final) console.log(`e2e: sealed exit at ${sealed.final.exitedAt}: ${sealed.final.keys} keys; A ${sealed.final.a.verification} at step ${sealed.final.a.step}, B ${sealed.final.b.verification} at step ${sealed.final.b.step}`);
}

const tournament = read('tournament-report.json');
if (tournament?.tournament) {
  const t = tournament.tournament;
  const shown = Object.entries(tournament.buttonShownAt ?? {}).map(([p, ms]) => `${p} ${ms} ms`).join(', ');
  console.log(`e2e: tournament ${t.tournamentId}: ${t.schedule.length} rounds; "Join round 0" shown after its joinsOpenAt: ${shown}`);
  const scores = Object.entries(tournament.scores ?? {}).map(([k, s]) => `${k} ${s.engine}${s.exitedAt === null ? ' (at the end)' : ''}`);
  if (scores.length) console.log(`e2e: tournament round scores (engine = page): ${scores.join(', ')}`);
  for (const [page, rows] of Object.entries(tournament.standings ?? {})) {
    console.log(`e2e: tournament standings on ${page}: ${rows.map((r) => `#${r.rank} ${r.userId} ${r.total} (${r.roundsPlayed})`).join(', ')}`);
  }
  if (tournament.refusal) console.log(`e2e: tournament refusal shown: "${tournament.refusal}"`);
}

const results = read('results.json');
let passed = 0;
let failed = 0;
let skipped = 0;
if (results) {
  passed = results.numPassedTests ?? 0;
  failed = results.numFailedTests ?? 0;
  // Tests not run after a failure (bail) are 'pending' in the per-test list, not in the totals.
  skipped = Math.max(0, (results.numTotalTests ?? 0) - passed - failed);
}
if (rc !== 0 && failed === 0) failed = 1; // a crash or timeout before any result
console.log(`e2e: ${rc === 0 && failed === 0 ? 'PASS' : 'FAIL'}`);
console.log(`e2e: ${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
