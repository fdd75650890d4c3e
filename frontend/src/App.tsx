import { useCallback, useEffect, useRef, useState, useSyncExternalStore } from 'react';
import { describeError, EdgeError, SEALED_ALGORITHM, type EdgeClient, type Game, type GuestIdentity, type SharedStart } from './api/edge';
import type { ClockSync } from './clock/clockSync';
import { ClockPanel } from './components/ClockPanel';
import { JoinForm, StartForm, type RegionChoice, type SharedChoice } from './components/Forms';
import { GamePanel, type TableRound } from './components/GamePanel';
import { TournamentPanel, type MyTable } from './components/TournamentPanel';
import { loadEngine } from './engine/engine';
import { LiveRoom } from './game/live';
import { mergeResults } from './game/seats';
import { GameSession, playerOf, type MySeat, type Role } from './game/session';
import { TournamentWatch } from './game/tournament';
import type { Joined } from './api/edge';

/** How long a start/join waits for the first clock sync before running on what it has. */
const CLOCK_WAIT_MS = 4_000;
/**
 * The owner token of a game this tab started (or reclaimed), in this tab's sessionStorage only:
 * another tab, a reload in another tab, or a viewer's link never sees it.
 */
const PLAYER_KEY = (gameId: string) => `seedsync:owner:${gameId}`;

/**
 * This browser's guest identity (when the edge issues them), in localStorage: the same player
 * in every tab and after a reload, so the edge can hand this player's owner token back.
 */
const IDENTITY_KEY = 'seedsync:guest';
/** A stored identity this close to its expiry is replaced rather than used. */
const IDENTITY_MARGIN_MS = 60 * 60 * 1000;

function storedIdentity(): GuestIdentity | null {
  try {
    const raw = localStorage.getItem(IDENTITY_KEY);
    const parsed: unknown = raw ? JSON.parse(raw) : null;
    if (
      typeof parsed === 'object' &&
      parsed !== null &&
      typeof (parsed as GuestIdentity).userId === 'string' &&
      typeof (parsed as GuestIdentity).userToken === 'string' &&
      typeof (parsed as GuestIdentity).expiresAt === 'number' &&
      (parsed as GuestIdentity).expiresAt > Date.now() + IDENTITY_MARGIN_MS
    ) {
      return parsed as GuestIdentity;
    }
    return null;
  } catch {
    return null;
  }
}

function storeIdentity(identity: GuestIdentity | null) {
  try {
    if (identity) localStorage.setItem(IDENTITY_KEY, JSON.stringify(identity));
    else localStorage.removeItem(IDENTITY_KEY);
  } catch {
    // Storage may be unavailable (private mode): the identity then lasts as long as the tab.
  }
}

interface Ownership {
  userId: string;
  ownerToken: string;
  /** A seat this tab joined in a shared game (absent: the game's creator). */
  seat?: number;
}

const noSubscription = () => () => {};

function sleep(ms: number) {
  return new Promise<void>((resolve) => setTimeout(resolve, ms));
}

function gameIdFromUrl(): string | null {
  const id = new URLSearchParams(window.location.search).get('game');
  return id && id.trim() !== '' ? id.trim() : null;
}

/** The tournament of the address (`?tournament=<id>`, also beside `?game=` for one of its tables). */
export function tournamentIdFrom(search: string): string | null {
  const id = new URLSearchParams(search).get('tournament')?.trim();
  return id ? id : null;
}

/** The tournament and round whose table `game` is (its metadata, `api::tournament`), if any. */
export function tableOf(game: Pick<Game, 'metadata'>): { tournamentId: string; round: number } | null {
  const about = game.metadata;
  if (!about || typeof about.tournamentId !== 'string' || typeof about.round !== 'number' || !Number.isSafeInteger(about.round)) return null;
  return { tournamentId: about.tournamentId, round: about.round };
}

/** The page's address of a game: `?game=<id>`, with `&tournament=<id>` for a tournament's table. */
export function gameAddress(game: Pick<Game, 'gameId' | 'metadata'>): string {
  const table = tableOf(game);
  const base = `?game=${encodeURIComponent(game.gameId)}`;
  return table ? `${base}&tournament=${encodeURIComponent(table.tournamentId)}` : base;
}

/** A join link (`?join=<gameId>&region=<backendRegion>`): the game to take a seat in, and where it lives. */
export interface JoinLink {
  gameId: string;
  region?: string;
}

export function joinLinkFrom(search: string): JoinLink | null {
  const params = new URLSearchParams(search);
  const id = params.get('join')?.trim();
  if (!id) return null;
  const region = params.get('region')?.trim();
  return region ? { gameId: id, region } : { gameId: id };
}

function rememberPlayer(gameId: string, owner: Ownership) {
  try {
    sessionStorage.setItem(PLAYER_KEY(gameId), JSON.stringify(owner));
  } catch {
    // Storage may be unavailable (private mode); the page then treats a reload as a viewer.
  }
}

function rememberedPlayer(gameId: string): Ownership | null {
  try {
    const raw = sessionStorage.getItem(PLAYER_KEY(gameId));
    const parsed: unknown = raw ? JSON.parse(raw) : null;
    if (
      typeof parsed === 'object' &&
      parsed !== null &&
      typeof (parsed as Ownership).userId === 'string' &&
      typeof (parsed as Ownership).ownerToken === 'string' &&
      ((parsed as Ownership).seat === undefined || typeof (parsed as Ownership).seat === 'number')
    ) {
      return parsed as Ownership;
    }
    return null;
  } catch {
    return null;
  }
}

/**
 * The player an owner token names (its payload's `uid`), read without checking the signature:
 * only to know which seat the token is for. The room and the origin verify it.
 */
export function ownerTokenUser(token: string): string | null {
  const parts = token.trim().split('.');
  if (parts.length !== 4) return null;
  try {
    const b64 = parts[2].replace(/-/g, '+').replace(/_/g, '/');
    const claims: unknown = JSON.parse(atob(b64 + '='.repeat((4 - (b64.length % 4)) % 4)));
    const uid = typeof claims === 'object' && claims !== null ? (claims as { uid?: unknown }).uid : undefined;
    return typeof uid === 'string' && uid !== '' ? uid : null;
  } catch {
    return null;
  }
}

/** Whether a pasted text looks like an owner token (the origin decides whether it is one). */
export function looksLikeOwnerToken(text: string): boolean {
  return /^st1\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{43}$/.test(text.trim());
}

export function App({ api, clock }: { api: EdgeClient; clock: ClockSync }) {
  const [engine, setEngine] = useState<'loading' | 'ready' | { error: string }>('loading');
  const [session, setSession] = useState<GameSession | null>(null);
  const [busy, setBusy] = useState<null | 'start' | 'join' | 'seat' | 'round'>(null);
  const [error, setError] = useState<string | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const [initialGameId] = useState(gameIdFromUrl);
  const [initialJoin] = useState(() => joinLinkFrom(window.location.search));
  // A tournament (`?tournament=`): its view, or one of its tables with a way back to it.
  const [tournamentId, setTournamentId] = useState(() => tournamentIdFrom(window.location.search));
  const [tournamentView, setTournamentView] = useState(() => tournamentId !== null && gameIdFromUrl() === null);
  const [watch, setWatch] = useState<TournamentWatch | null>(null);
  useEffect(() => {
    if (tournamentId === null) return;
    const next = new TournamentWatch(tournamentId, { api, clock });
    next.run();
    setWatch(next);
    return () => next.dispose();
  }, [api, clock, tournamentId]);
  const watchedTournament = useSyncExternalStore(
    watch?.subscribe ?? noSubscription,
    () => watch?.getSnapshot().tournament ?? null,
  );
  // The guest identity: stored, being asked for, or none (the edge issues none: anyone may
  // start as any user id, or the game's own sign-in provides the token).
  const [identity, setIdentity] = useState<GuestIdentity | null | 'loading'>(() => storedIdentity() ?? 'loading');

  useEffect(() => {
    if (identity !== 'loading') return;
    let live = true;
    api.guestIdentity().then(
      (issued) => {
        if (!live) return;
        storeIdentity(issued);
        setIdentity(issued);
      },
      () => live && setIdentity(null),
    );
    return () => {
      live = false;
    };
  }, [api, identity]);
  const autoJoined = useRef(false);

  useEffect(() => {
    void clock.start();
    return () => clock.stop();
  }, [clock]);

  useEffect(() => {
    loadEngine().then(
      () => setEngine('ready'),
      (err: unknown) => setEngine({ error: describeError(err) }),
    );
  }, []);

  // A session is disposed (timers stopped, engine memory freed) when replaced or unmounted.
  const current = useRef<GameSession | null>(null);
  const replaceSession = useCallback((next: GameSession | null) => {
    current.current?.dispose();
    current.current = next;
    setSession(next);
  }, []);
  useEffect(() => () => current.current?.dispose(), []);

  // A tab coming back from the background catches up at once instead of at its next timer.
  useEffect(() => {
    if (!session) return;
    const onVisible = () => {
      if (document.visibilityState === 'visible') session.refresh();
    };
    document.addEventListener('visibilitychange', onVisible);
    return () => document.removeEventListener('visibilitychange', onVisible);
  }, [session]);

  const open = useCallback(
    (game: Game, role: Role, mySeat: MySeat | null = null) => {
      const next = new GameSession(
        game,
        role,
        {
          clock,
          api,
          live: (id, hello, events) => new LiveRoom(id, hello, events),
        },
        mySeat,
      );
      next.run();
      replaceSession(next);
      setTournamentView(false);
      // A tournament's table: its tournament is one click away.
      const table = tableOf(game);
      if (table) setTournamentId((id) => (id !== null && id.toLowerCase() === table.tournamentId.toLowerCase() ? id : table.tournamentId));
      window.history.replaceState(null, '', `${window.location.pathname}${gameAddress(game)}`);
    },
    [api, clock, replaceSession],
  );

  const waitForClock = useCallback(() => Promise.race([clock.start(), sleep(CLOCK_WAIT_MS)]), [clock]);

  const start = useCallback(
    async (userId: string, region: RegionChoice, sealed = false, sharedChoice: SharedChoice | null = null) => {
      setBusy('start');
      setError(null);
      setNotice(null);
      try {
        const signedIn = typeof identity === 'object' && identity !== null && identity.userId === userId ? identity : null;
        let shared: SharedStart | undefined;
        if (sharedChoice) {
          shared = { maxPlayers: sharedChoice.maxPlayers };
          if (sharedChoice.joinForMs !== null) {
            // The deadline is server time: read it from a synced clock.
            await waitForClock();
            shared.joinDeadline = clock.serverNow() + sharedChoice.joinForMs;
          }
        }
        let game: Game;
        try {
          game = await api.startGame(
            userId,
            region === 'auto' ? undefined : region,
            signedIn?.userToken,
            sealed ? SEALED_ALGORITHM : undefined,
            shared,
          );
        } catch (err) {
          // The edge no longer accepts the stored identity (expired, or its secret replaced):
          // forget it, so the next attempt gets a fresh one.
          if (signedIn && err instanceof EdgeError && err.status === 401) {
            storeIdentity(null);
            setIdentity('loading');
          }
          throw err;
        }
        await waitForClock();
        const mine = game.ownerToken ? { userId: game.userId, ownerToken: game.ownerToken } : rememberedPlayer(game.gameId);
        if (mine) {
          rememberPlayer(game.gameId, mine);
          open({ ...game, ownerToken: mine.ownerToken }, 'player');
        } else {
          // The player already has a game, started elsewhere: only its owner token controls it.
          open(game, 'viewer');
          setNotice(
            `${game.userId} already has a game running, started on another tab or device. This tab is watching it; to end it here, paste its owner token under "Take control".`,
          );
        }
      } catch (err) {
        setError(describeError(err));
      } finally {
        setBusy(null);
      }
    },
    [api, clock, identity, open, waitForClock],
  );

  /** Plays a seat just taken (a shared game's, or a tournament table's) with its token, if this tab has it. */
  const openSeat = useCallback(
    (joined: Joined) => {
      const held = rememberedPlayer(joined.game.gameId);
      const token = joined.ownerToken ?? (held?.userId === joined.userId ? held.ownerToken : undefined);
      const mySeat = { seat: joined.seat, userId: joined.userId };
      if (token) {
        rememberPlayer(joined.game.gameId, { userId: joined.userId, ownerToken: token, seat: joined.seat });
        open({ ...joined.game, ownerToken: token }, 'player', joined.userId === joined.game.userId ? null : mySeat);
      } else {
        // The seat was taken before, from another tab or device: only its token exits it.
        open(joined.game, 'viewer');
        setNotice(
          `${joined.userId} already holds seat ${joined.seat} of this game, taken on another tab or device: only that tab can exit it. This tab is watching.`,
        );
      }
    },
    [open],
  );

  /**
   * Takes a seat with `join` (given the user token when `userId` is the signed-in identity)
   * and plays it; a 401 on that token forgets the identity so a fresh one is made.
   */
  const seatWith = useCallback(
    async (what: 'seat' | 'round', userId: string, join: (userToken?: string) => Promise<Joined>) => {
      setBusy(what);
      setError(null);
      setNotice(null);
      try {
        const signedIn = typeof identity === 'object' && identity !== null && identity.userId === userId ? identity : null;
        let joined;
        try {
          joined = await join(signedIn?.userToken);
        } catch (err) {
          if (signedIn && err instanceof EdgeError && err.status === 401) {
            storeIdentity(null);
            setIdentity('loading');
          }
          throw err;
        }
        await waitForClock();
        openSeat(joined);
      } catch (err) {
        setError(describeError(err));
      } finally {
        setBusy(null);
      }
    },
    [identity, openSeat, waitForClock],
  );

  /** Takes a seat in a shared game as `userId` (from the join form or a join link). */
  const takeSeat = useCallback(
    (gameId: string, userId: string, region?: string) =>
      seatWith('seat', userId, (userToken) => api.joinGame(gameId, userId, region, userToken)),
    [api, seatWith],
  );

  /** Takes a seat at a table of round `round` of the tournament as `userId`, and plays it. */
  const joinRound = useCallback(
    async (round: number, userId: string) => {
      if (tournamentId === null) return;
      await seatWith('round', userId, (userToken) => api.joinRound(tournamentId, round, userId, userToken));
    },
    [api, seatWith, tournamentId],
  );

  const join = useCallback(
    async (gameId: string) => {
      setBusy('join');
      setError(null);
      try {
        const game = await api.getGame(gameId);
        await waitForClock();
        const mine = rememberedPlayer(game.gameId);
        if (mine !== null && mine.userId === game.userId) {
          open({ ...game, ownerToken: mine.ownerToken }, 'player');
        } else if (mine !== null && mine.seat !== undefined && game.shared) {
          // This tab's seat in a shared game (a reload): play it again.
          open({ ...game, ownerToken: mine.ownerToken }, 'player', { seat: mine.seat, userId: mine.userId });
        } else {
          open(game, 'viewer');
        }
      } catch (err) {
        setError(describeError(err));
      } finally {
        setBusy(null);
      }
    },
    [api, open, waitForClock],
  );

  useEffect(() => {
    if (engine === 'ready' && initialGameId && !autoJoined.current) {
      autoJoined.current = true;
      void join(initialGameId);
    }
  }, [engine, initialGameId, join]);

  /**
   * A viewer pastes an owner token: this tab becomes that player's, the creator's or (in a shared
   * game) a seat's, found by the token's player (the room checks the token on hello, the edge on
   * exit).
   */
  const reclaim = useCallback(
    async (token: string) => {
      const snap = current.current?.getSnapshot();
      const game = snap?.game;
      if (!game) return;
      if (!looksLikeOwnerToken(token)) {
        setError('That is not an owner token: it starts with "st1." and was shown to the tab that started the game or took the seat.');
        return;
      }
      setError(null);
      setNotice(null);
      const ownerToken = token.trim();
      const player = ownerTokenUser(ownerToken);
      if (game.shared && player !== null && player !== game.userId) {
        let row = snap.seats?.find((r) => r.userId === player);
        if (row === undefined) {
          try {
            row = mergeResults([], await api.getResults(game.gameId, { timeoutMs: 5_000 })).find((r) => r.userId === player);
          } catch (err) {
            setError(`Could not read the game's seats: ${describeError(err)}`);
            return;
          }
        }
        if (row === undefined) {
          setError(`That owner token is ${player}'s, who holds no seat in this game.`);
          return;
        }
        rememberPlayer(game.gameId, { userId: player, ownerToken, seat: row.seat });
        open({ ...game, ownerToken }, 'player', { seat: row.seat, userId: player });
        return;
      }
      const mine = { userId: game.userId, ownerToken };
      rememberPlayer(game.gameId, mine);
      open({ ...game, ownerToken: mine.ownerToken }, 'player');
    },
    [api, open],
  );

  const backToTournament = useCallback(() => {
    if (tournamentId === null) return;
    setTournamentView(true);
    watch?.refreshStandings();
    window.history.replaceState(null, '', `${window.location.pathname}?tournament=${encodeURIComponent(tournamentId)}`);
  }, [tournamentId, watch]);

  const openTable = useCallback(() => {
    const game = current.current?.getSnapshot().game;
    if (!game) return;
    setTournamentView(false);
    window.history.replaceState(null, '', `${window.location.pathname}${gameAddress(game)}`);
  }, []);

  const close = useCallback(() => {
    replaceSession(null);
    window.history.replaceState(null, '', window.location.pathname);
  }, [replaceSession]);

  // This tab's table in the tournament shown (the session's game, when it is one of its tables).
  const snap = session?.getSnapshot() ?? null;
  const table = snap && tournamentId !== null ? tableOf(snap.game) : null;
  const ours = table !== null && table.tournamentId.toLowerCase() === tournamentId?.toLowerCase() ? table : null;
  const player = snap ? playerOf(snap) : null;
  const myTable: MyTable | null =
    snap && ours && player !== null ? { round: ours.round, gameId: snap.game.gameId, userId: player, exited: snap.myResult !== null || snap.stopped } : null;
  const roundView = ours ? watchedTournament?.schedule[ours.round] : undefined;
  const tableRound: TableRound | undefined =
    ours && watchedTournament && roundView ? { name: watchedTournament.name, round: ours.round, endAt: roundView.endAt, onBack: backToTournament } : undefined;
  const showTournament = watch !== null && (tournamentView || !session);

  const engineError = typeof engine === 'object' ? engine.error : null;
  const canAct = engine === 'ready' && busy === null;
  // A join link puts the join form first: the visitor came to take a seat.
  const startForm = (
    <StartForm
      busy={(!canAct && busy === 'start') || identity === 'loading'}
      onStart={(u, r, sealed, shared) => canAct && identity !== 'loading' && void start(u, r, sealed, shared)}
      fixedUserId={typeof identity === 'object' && identity !== null ? identity.userId : undefined}
    />
  );
  const joinForm = (
    <JoinForm
      busy={!canAct && (busy === 'join' || busy === 'seat')}
      onJoin={(id) => canAct && void join(id)}
      onTakeSeat={(id, userId) =>
        canAct && identity !== 'loading' && void takeSeat(id, userId, initialJoin?.gameId === id ? initialJoin.region : undefined)
      }
      initialGameId={initialJoin?.gameId ?? initialGameId ?? undefined}
      fixedUserId={typeof identity === 'object' && identity !== null ? identity.userId : undefined}
      joinLink={initialJoin !== null}
    />
  );

  return (
    <div className="app">
      <header className="top">
        <h1>
          seed<span>sync</span>
        </h1>
        <p className="tagline">One seed, one clock: every player sees the counter break at the same moment — no tick stream.</p>
      </header>

      <main className={session || showTournament ? 'layout has-session' : 'layout'}>
        <div className="side">
          {!session && !showTournament && (
            <>
              {initialJoin === null && startForm}
              {joinForm}
              {initialJoin !== null && startForm}
            </>
          )}
          <ClockPanel clock={clock} />
        </div>

        <div className="primary">
          {engine === 'loading' && (
            <p className="card muted" role="status">
              Loading the game engine…
            </p>
          )}
          {engineError && (
            <p className="error" role="alert">
              {engineError}. Reload the page to try again.
            </p>
          )}
          {notice && (
            <p className="card muted" role="status" data-testid="page-notice">
              {notice}
            </p>
          )}
          {error && (
            <div className="error" role="alert" data-testid="page-error">
              <p>{error}</p>
              <button type="button" className="link-button" onClick={() => setError(null)}>
                Dismiss
              </button>
            </div>
          )}
          {busy && (
            <p className="card muted" role="status">
              {busy === 'start'
                ? 'Asking the edge for a game…'
                : busy === 'seat'
                  ? 'Asking for a seat…'
                  : busy === 'round'
                    ? 'Asking for a seat at a table of the round…'
                    : 'Looking the game up…'}
            </p>
          )}
          {showTournament ? (
            <TournamentPanel
              key={tournamentId ?? ''}
              watch={watch}
              clock={clock}
              busy={!canAct}
              onJoinRound={(round, userId) => canAct && identity !== 'loading' && void joinRound(round, userId)}
              fixedUserId={typeof identity === 'object' && identity !== null ? identity.userId : undefined}
              myTable={myTable}
              onOpenTable={openTable}
            />
          ) : session ? (
            <GamePanel
              key={`${session.getSnapshot().game.gameId}:${session.getSnapshot().role}`}
              session={session}
              onClose={close}
              onReclaim={(token) => void reclaim(token)}
              tableRound={tableRound}
            />
          ) : (
            !busy && (
              <section className="card intro" aria-labelledby="intro-title">
                <h2 id="intro-title">How it works</h2>
                <ol>
                  <li>Start a game: the edge picks a region, whose server answers with a seed and a start time.</li>
                  <li>Every page runs the same deterministic engine (Rust, compiled to WebAssembly) on the server’s clock.</li>
                  <li>Share the link: anyone who opens it sees the same step, value and breaks, in lockstep.</li>
                </ol>
              </section>
            )
          )}
        </div>
      </main>
    </div>
  );
}
