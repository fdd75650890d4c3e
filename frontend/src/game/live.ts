/**
 * The page's side of a live game room (`/edge/game/{id}/live`, a WebSocket): joins as player or
 * viewer, keeps the room's presence, learns the exit the moment it is committed, and measures
 * this connection's latency (round trip, jitter, clock offset with its error bound) from
 * ping/pong timestamps. Reconnects with backoff; after `maxFailures` failed opens in a row it
 * reports `down` so the session falls back to polling.
 *
 * A player proves itself with its owner token in its `hello` (the creator's, or a shared game's
 * seat's, with its seat number). If the room refuses that
 * proof (an `error` frame before the `welcome`: a stale token, an edge without the secret), the
 * page says `hello` again as viewer, so it still sees presence and the pushed exit, and reports
 * the refusal through `onRefused`.
 *
 * The room never streams ticks: the engine computes every step on the page. For a sealed game
 * it pushes one message per round, the round's key at its break (`onRound`); for a shared game,
 * each join (`onSeated`) and each seat's result (`onSeat`) the moment it is committed, and every
 * earlier one right after the `welcome`.
 */
import type { ClientMessage, Hello, LatencyWarning, Presence, SeatExit, SeatJoin, ServerMessage } from '../api/generated/contract';
import { isSeatExit, isSeatJoin } from './seats';

export type { Hello, LiveRole, Presence } from '../api/generated/contract';

export interface Latency {
  /** Last round trip, ms. */
  readonly rttMs: number;
  /** Mean absolute change of the round trip, ms. */
  readonly jitterMs: number;
  /** Server clock minus this page's clock, ms (from the best sample: the smallest round trip). */
  readonly offsetMs: number;
  /** The offset is within ± this, ms (half that sample's round trip). */
  readonly boundMs: number;
}

export interface LiveEvents {
  onPresence?(presence: Presence): void;
  onStatus?(status: 'connecting' | 'open' | 'down'): void;
  onExited?(exitedAt: number): void;
  onLatency?(latency: Latency): void;
  onWarning?(warning: LatencyWarning): void;
  /** The room refused the player's proof; the connection continues as viewer. */
  onRefused?(message: string): void;
  /**
   * A sealed game's round broke: the room pushes its key at the break instant. Unchecked here
   * (the session checks that it chains); only its shape is.
   */
  onRound?(round: number, key: string): void;
  /** A shared game's seat exited: its committed result, pushed by the room (shape-checked). */
  onSeat?(seat: SeatExit): void;
  /** A shared game's seat was taken: the committed join, pushed by the room (shape-checked). */
  onSeated?(join: SeatJoin): void;
}

/** The room's push of a sealed game's revealed key: `{"type":"round","round":R,"key":"<hex>"}`. */
export interface RoundMessage {
  readonly type: 'round';
  readonly round: number;
  readonly key: string;
}

/** What a room may send: the contract's messages and a sealed game's round push. */
type RoomMessage = ServerMessage | RoundMessage;

export interface LiveOptions {
  /** Base URL of the edge (default: this page's origin). */
  readonly baseUrl?: string;
  /** Ping period once the first `burst` pings (1 s apart) have measured the connection. */
  readonly pingMs?: number;
  readonly burst?: number;
  readonly maxFailures?: number;
  /** Injected for tests. */
  readonly WebSocketImpl?: typeof WebSocket;
  readonly now?: () => number;
}

export function liveUrl(baseUrl: string, gameId: string): string {
  const base = baseUrl === '' && typeof location !== 'undefined' ? location.origin : baseUrl;
  return `${base.replace(/^http/, 'ws')}/edge/game/${encodeURIComponent(gameId)}/live`;
}

export class LiveRoom {
  private ws: WebSocket | null = null;
  private failures = 0;
  private closed = false;
  private pingTimer: ReturnType<typeof setTimeout> | null = null;
  /** Whether this socket's `hello` was answered by a `welcome`. */
  private welcomed = false;
  /** The role this socket's last `hello` asked for. */
  private asked: Hello['role'] = 'viewer';
  private pings = 0;
  private retryTimer: ReturnType<typeof setTimeout> | null = null;
  private latency: Latency | null = null;
  private best: { rtt: number; offset: number } | null = null;
  private readonly opts: Required<Omit<LiveOptions, 'WebSocketImpl'>> & { WebSocketImpl?: typeof WebSocket };

  constructor(
    private readonly gameId: string,
    private readonly hello: Hello,
    private readonly events: LiveEvents,
    options: LiveOptions = {},
  ) {
    // Few pings: each costs the room a pong, and the room's whole budget is a couple of
    // messages per viewer-minute (see scripts/bench-live.mjs).
    this.opts = { baseUrl: '', pingMs: 60_000, burst: 3, maxFailures: 3, now: () => Date.now(), ...options };
  }

  start(): void {
    this.connect();
  }

  private connect(): void {
    if (this.closed) return;
    const Impl = this.opts.WebSocketImpl ?? globalThis.WebSocket;
    if (!Impl) {
      this.events.onStatus?.('down');
      return;
    }
    this.events.onStatus?.('connecting');
    let opened = false;
    let ws: WebSocket;
    try {
      ws = new Impl(liveUrl(this.opts.baseUrl, this.gameId));
    } catch {
      this.retry(false);
      return;
    }
    this.ws = ws;
    ws.onopen = () => {
      opened = true;
      this.failures = 0;
      this.events.onStatus?.('open');
      this.welcomed = false;
      this.sayHello(ws, this.hello);
      this.pings = 0;
      this.ping();
    };
    ws.onmessage = (ev) => {
      let msg: RoomMessage;
      try {
        msg = JSON.parse(String(ev.data)) as RoomMessage;
      } catch {
        return;
      }
      this.handle(msg);
    };
    ws.onclose = () => {
      if (this.pingTimer !== null) clearTimeout(this.pingTimer);
      this.pingTimer = null;
      if (this.ws === ws) this.ws = null;
      this.retry(opened);
    };
  }

  private retry(wasOpen: boolean): void {
    if (this.closed) return;
    if (!wasOpen) this.failures += 1;
    if (this.failures >= this.opts.maxFailures) {
      this.events.onStatus?.('down');
    }
    // Backoff: 250 ms doubling to 8 s, with jitter; keeps trying even when `down` (polling
    // covers the gap) so the live view comes back when the edge does.
    const base = Math.min(8_000, 250 * 2 ** Math.min(this.failures, 5));
    this.retryTimer = setTimeout(() => this.connect(), base / 2 + Math.random() * (base / 2));
  }

  private sayHello(ws: WebSocket, hello: Hello): void {
    this.asked = hello.role;
    const msg: ClientMessage = {
      type: 'hello',
      role: hello.role,
      ...(hello.userId ? { userId: hello.userId } : {}),
      ...(hello.ownerToken ? { ownerToken: hello.ownerToken } : {}),
      ...(hello.seat !== undefined ? { seat: hello.seat } : {}),
    };
    ws.send(JSON.stringify(msg));
  }

  private ping(): void {
    const ws = this.ws;
    if (!ws || ws.readyState !== 1) return;
    const msg: ClientMessage = {
      type: 'ping',
      clientTime: this.opts.now(),
      ...(this.latency ? { rttMs: Math.round(this.latency.rttMs), jitterMs: Math.round(this.latency.jitterMs) } : {}),
    };
    ws.send(JSON.stringify(msg));
    this.pings += 1;
    this.pingTimer = setTimeout(() => this.ping(), this.pings < this.opts.burst ? 1_000 : this.opts.pingMs);
  }

  private handle(msg: RoomMessage): void {
    if (msg.type === 'round') {
      const { round, key } = msg as Partial<RoundMessage>;
      if (typeof round === 'number' && Number.isSafeInteger(round) && typeof key === 'string') this.events.onRound?.(round, key);
      return;
    }
    switch (msg.type) {
      case 'welcome':
        this.welcomed = true;
        this.events.onPresence?.(msg.presence);
        if (msg.status === 'exited' && msg.exitedAt !== undefined) this.events.onExited?.(msg.exitedAt);
        break;
      case 'presence':
        this.events.onPresence?.(msg);
        break;
      case 'joined':
      case 'left':
        this.events.onPresence?.(msg.presence);
        break;
      case 'exited':
        this.events.onExited?.(msg.exitedAt);
        break;
      case 'seat':
        if (isSeatExit(msg)) this.events.onSeat?.({ seat: msg.seat, userId: msg.userId, result: msg.result });
        break;
      case 'seated':
        if (isSeatJoin(msg)) this.events.onSeated?.({ seat: msg.seat, userId: msg.userId, joinedAt: msg.joinedAt });
        break;
      case 'pong': {
        const t3 = this.opts.now();
        const rtt = Math.max(0, t3 - msg.clientTime - (msg.serverSent - msg.serverReceived));
        const offset = (msg.serverReceived - msg.clientTime + (msg.serverSent - t3)) / 2;
        if (this.best === null || rtt <= this.best.rtt) this.best = { rtt, offset };
        const jitter = this.latency ? this.latency.jitterMs + (Math.abs(rtt - this.latency.rttMs) - this.latency.jitterMs) / 4 : 0;
        this.latency = { rttMs: rtt, jitterMs: jitter, offsetMs: this.best.offset, boundMs: this.best.rtt / 2 };
        this.events.onLatency?.(this.latency);
        break;
      }
      case 'warning':
        this.events.onWarning?.(msg);
        break;
      case 'error': {
        // A refused player's hello: carry on as viewer (presence and the exit still matter).
        const code = msg.error.code;
        if (!this.welcomed && this.asked === 'player' && (code === 'unauthorized' || code === 'forbidden') && this.ws) {
          this.events.onRefused?.(msg.error.message);
          this.sayHello(this.ws, { role: 'viewer' });
        }
        break;
      }
    }
  }

  /** Leaves the room for good. */
  close(): void {
    this.closed = true;
    if (this.pingTimer !== null) clearTimeout(this.pingTimer);
    if (this.retryTimer !== null) clearTimeout(this.retryTimer);
    this.ws?.close();
    this.ws = null;
  }
}
