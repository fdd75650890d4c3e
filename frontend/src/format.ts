/** Small formatting helpers for the page (no React). */

/** `+12.3 ms`, `−5 000.4 ms`, `+1.20 s` style offsets. */
export function formatOffset(ms: number): string {
  const sign = ms < 0 ? '−' : '+';
  const abs = Math.abs(ms);
  if (abs >= 10_000) return `${sign}${(abs / 1000).toFixed(2)} s`;
  return `${sign}${abs.toFixed(1)} ms`;
}

export function formatBound(ms: number): string {
  return ms >= 10_000 ? `± ${(ms / 1000).toFixed(2)} s` : `± ${ms.toFixed(1)} ms`;
}

/** `3.4 s` for a countdown. */
export function formatCountdown(ms: number): string {
  return `${(Math.max(0, ms) / 1000).toFixed(1)} s`;
}

/** A server Unix ms as a local wall-clock time with milliseconds (UTC, to be the same for all). */
export function formatServerTime(ms: number): string {
  const d = new Date(ms);
  const pad = (n: number, w = 2) => String(n).padStart(w, '0');
  return `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}.${pad(d.getUTCMilliseconds(), 3)} UTC`;
}

const REGION_NAMES: Record<string, string> = { eu: 'Europe (eu)', us: 'United States (us)', asia: 'Asia (asia)' };

export function regionName(region: string | undefined): string {
  if (!region) return 'unknown';
  return REGION_NAMES[region] ?? region;
}

function humanize(word: string): string {
  return word
    .replace(/([a-z])([A-Z])/g, '$1 $2')
    .replace(/[_-]+/g, ' ')
    .trim()
    .toLowerCase();
}

const ROUTED_BY: Record<string, string> = {
  preference: 'you picked this region',
  header: 'a region header on the request',
  geo: 'closest to you (by your country)',
  latency: 'the fastest healthy region (measured round trip)',
  load: 'a region with spare capacity (the fastest was busy)',
  default: 'the edge’s default region (no preference, location unknown)',
  failover: 'failover: the first choice did not answer',
};

/**
 * Why the edge chose the backend region, as a sentence fragment. The edge sends `routedBy` as a
 * short code (`preference`, `header`, `geo`, `default`, `failover`); anything else is shown as
 * it came.
 */
export function formatRoutedBy(routedBy: unknown): string {
  if (routedBy === undefined || routedBy === null || routedBy === '') return 'not reported by the edge';
  if (typeof routedBy === 'string') return ROUTED_BY[routedBy] ?? humanize(routedBy);
  if (typeof routedBy === 'number' || typeof routedBy === 'boolean') return String(routedBy);
  if (Array.isArray(routedBy)) return routedBy.map(formatRoutedBy).join(', ');
  if (typeof routedBy === 'object') {
    return Object.entries(routedBy as Record<string, unknown>)
      .filter(([, v]) => v !== undefined && v !== null && v !== '')
      .map(([k, v]) => `${humanize(k)}: ${typeof v === 'object' ? JSON.stringify(v) : String(v)}`)
      .join(', ');
  }
  return String(routedBy);
}

/** The page's address for a game, to share. */
export function shareLink(gameId: string, origin: string): string {
  return `${origin}/?game=${encodeURIComponent(gameId)}`;
}

/**
 * The page's address for taking a seat in a shared game: `?join=<gameId>&region=<backendRegion>`
 * (the region sends the join to the game's home origin first).
 */
export function joinLink(gameId: string, origin: string, region?: string): string {
  const base = `${origin}/?join=${encodeURIComponent(gameId)}`;
  return region ? `${base}&region=${encodeURIComponent(region)}` : base;
}
