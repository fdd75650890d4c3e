import type { ChartModel } from '../game/chart';

const W = 600;
const H = 160;
const PAD = 4;

/** The value over the steps (SVG): the curve, a red line at each break, a dot at each exit. */
export function ValueChart({ model }: { model: ChartModel }) {
  const span = Math.max(1, model.to - model.from);
  const x = (step: number) => PAD + ((step - model.from) / span) * (W - 2 * PAD);
  const y = (value: number) => H - PAD - (value / model.maxValue) * (H - 2 * PAD);
  const path = model.points.map(([s, v]) => `${x(s).toFixed(1)},${y(v).toFixed(1)}`).join(' ');
  return (
    <figure className="chart" data-testid="value-chart">
      <svg viewBox={`0 0 ${W} ${H}`} width="100%" role="img" aria-label={`Value over steps ${model.from} to ${model.to}`}>
        {model.breaks.map((b) => (
          <line key={`b${b}`} data-break={b} x1={x(b)} x2={x(b)} y1={PAD} y2={H - PAD} stroke="#c0392b" strokeWidth="1" />
        ))}
        <polyline points={path} fill="none" stroke="currentColor" strokeWidth="1.5" />
        {model.exits.map((e) => (
          <circle key={`e${e.seat}`} data-exit={e.seat} cx={x(e.step)} cy={y(e.value)} r="4" fill="#2e86de">
            <title>{`seat ${e.seat} (${e.userId}) exited at step ${e.step}, value ${e.value}`}</title>
          </circle>
        ))}
      </svg>
      <figcaption>
        Steps {model.from}–{model.to}: {model.breaks.length} break{model.breaks.length === 1 ? '' : 's'}, {model.exits.length} exit
        {model.exits.length === 1 ? '' : 's'} marked
      </figcaption>
    </figure>
  );
}
