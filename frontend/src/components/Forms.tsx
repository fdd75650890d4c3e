import { useId, useState, type FormEvent } from 'react';
import { MAX_PLAYERS, MIN_PLAYERS, type Region } from '../api/edge';
import { LIMITS, USER_ID_PATTERN } from '../api/generated/contract';

export type RegionChoice = 'auto' | Region;

const CHOICES: { value: RegionChoice; label: string }[] = [
  { value: 'auto', label: 'Auto' },
  { value: 'eu', label: 'EU' },
  { value: 'us', label: 'US' },
  { value: 'asia', label: 'Asia' },
];

const USER_ID = new RegExp(USER_ID_PATTERN);

/**
 * Checks a user id before it is sent, by the contract's rule (`api::UserId`); returns a message or
 * null. Surrounding spaces typed into the box are dropped before sending (the servers never trim).
 */
export function validateUserId(userId: string): string | null {
  const id = userId.trim();
  if (id === '') return 'Enter a user id.';
  if (id.length > LIMITS.maxUserIdLen) return `A user id has at most ${LIMITS.maxUserIdLen} characters.`;
  if (!USER_ID.test(id)) return 'A user id may contain only letters, digits and . _ : @ -';
  return null;
}

/** A shared game as the start form asks for it: seats, and how long after the start players may join. */
export interface SharedChoice {
  maxPlayers: number;
  /** ms from the start request during which players may join; `null`: until the game's start (the default). */
  joinForMs: number | null;
}

/** How long a shared game takes players, as the start form offers it. */
export const JOIN_WINDOWS: readonly { label: string; ms: number | null }[] = [
  { label: 'until the countdown ends', ms: null },
  { label: 'for 1 minute', ms: 60_000 },
  { label: 'for 10 minutes', ms: 600_000 },
];

/** Checks the seats asked for (`api::MaxPlayers`, the creator's included); a message or null. */
export function validateMaxPlayers(text: string): string | null {
  const n = Number(text.trim());
  if (text.trim() === '' || !Number.isInteger(n)) return 'Enter the number of players, a whole number.';
  if (n < MIN_PLAYERS || n > MAX_PLAYERS) return `A shared game has ${MIN_PLAYERS} to ${MAX_PLAYERS} players (you included).`;
  return null;
}

export function StartForm(props: {
  busy: boolean;
  /** `sealed`: a `sealed-v1` game (breaks revealed one round at a time); `shared`: open for players. */
  onStart: (userId: string, region: RegionChoice, sealed: boolean, shared: SharedChoice | null) => void;
  initialUserId?: string;
  /** The user id this browser is signed in as (a guest identity): shown, not editable. */
  fixedUserId?: string;
}) {
  const [typed, setUserId] = useState(props.initialUserId ?? '');
  const userId = props.fixedUserId ?? typed;
  const [region, setRegion] = useState<RegionChoice>('auto');
  const [sealed, setSealed] = useState(false);
  const [shared, setShared] = useState(false);
  const [players, setPlayers] = useState('2');
  const [joinWindow, setJoinWindow] = useState(0);
  const [problem, setProblem] = useState<string | null>(null);
  const [playersProblem, setPlayersProblem] = useState<string | null>(null);
  const ids = useId();

  function submit(e: FormEvent) {
    e.preventDefault();
    const msg = validateUserId(userId);
    const seats = shared ? validateMaxPlayers(players) : null;
    setProblem(msg);
    setPlayersProblem(seats);
    if (msg || seats) return;
    const choice = shared ? { maxPlayers: Number(players.trim()), joinForMs: JOIN_WINDOWS[joinWindow]?.ms ?? null } : null;
    props.onStart(userId.trim(), region, sealed, choice);
  }

  return (
    <form className="card" onSubmit={submit} aria-labelledby={`${ids}-title`} noValidate>
      <h2 id={`${ids}-title`}>Start a game</h2>
      <div className="field">
        <label htmlFor={`${ids}-user`}>User id</label>
        <input
          id={`${ids}-user`}
          name="userId"
          autoComplete="username"
          value={userId}
          readOnly={props.fixedUserId !== undefined}
          data-testid="user-id"
          maxLength={LIMITS.maxUserIdLen}
          onChange={(e) => setUserId(e.target.value)}
          aria-invalid={problem ? true : undefined}
          aria-describedby={problem ? `${ids}-problem` : undefined}
          placeholder="e.g. alice"
        />
        {props.fixedUserId !== undefined && (
          <p className="muted" data-testid="guest-note">
            Your guest identity, kept in this browser: any tab here can start or take back your game.
          </p>
        )}
        {problem && (
          <p id={`${ids}-problem`} className="field-error" role="alert">
            {problem}
          </p>
        )}
      </div>
      <fieldset className="segmented">
        <legend>Region</legend>
        {CHOICES.map((c) => (
          <label key={c.value} className={region === c.value ? 'selected' : undefined}>
            <input
              type="radio"
              name={`${ids}-region`}
              value={c.value}
              checked={region === c.value}
              onChange={() => setRegion(c.value)}
            />
            <span>{c.label}</span>
          </label>
        ))}
      </fieldset>
      <button type="submit" disabled={props.busy}>
        {props.busy ? 'Starting…' : 'Start'}
      </button>
      <label className="option">
        <input type="checkbox" checked={sealed} onChange={(e) => setSealed(e.target.checked)} data-testid="sealed-option" /> Sealed
        breaks: nobody can compute them ahead, each is proven as it happens (<code>sealed-v1</code>)
      </label>
      <label className="option">
        <input type="checkbox" checked={shared} onChange={(e) => setShared(e.target.checked)} data-testid="shared-option" /> Shared
        game: others join it as players, each with their own seat and exit
      </label>
      {shared && (
        <div className="shared-options">
          <div className="field">
            <label htmlFor={`${ids}-players`}>Players (you included)</label>
            <input
              id={`${ids}-players`}
              type="number"
              inputMode="numeric"
              min={MIN_PLAYERS}
              max={MAX_PLAYERS}
              value={players}
              data-testid="max-players"
              onChange={(e) => setPlayers(e.target.value)}
              aria-invalid={playersProblem ? true : undefined}
              aria-describedby={playersProblem ? `${ids}-players-problem` : undefined}
            />
            {playersProblem && (
              <p id={`${ids}-players-problem`} className="field-error" role="alert">
                {playersProblem}
              </p>
            )}
          </div>
          <div className="field">
            <label htmlFor={`${ids}-window`}>Players may join</label>
            <select id={`${ids}-window`} value={joinWindow} data-testid="join-window" onChange={(e) => setJoinWindow(Number(e.target.value))}>
              {JOIN_WINDOWS.map((w, i) => (
                <option key={w.label} value={i}>
                  {w.label}
                </option>
              ))}
            </select>
          </div>
        </div>
      )}
    </form>
  );
}

export function JoinForm(props: {
  busy: boolean;
  /** Watch the game (anyone may). */
  onJoin: (gameId: string) => void;
  /** Take a seat in the shared game as `userId`. */
  onTakeSeat?: (gameId: string, userId: string) => void;
  initialGameId?: string;
  /** The user id this browser is signed in as (a guest identity): shown, not editable. */
  fixedUserId?: string;
  /** Opened from a join link: the seat button comes first. */
  joinLink?: boolean;
}) {
  const [gameId, setGameId] = useState(props.initialGameId ?? '');
  const [typed, setUserId] = useState('');
  const userId = props.fixedUserId ?? typed;
  const [problem, setProblem] = useState<string | null>(null);
  const [userProblem, setUserProblem] = useState<string | null>(null);
  const ids = useId();

  function checkedId(): string | null {
    const id = gameId.trim();
    if (id === '') {
      setProblem('Enter a game id, or open a shared link.');
      return null;
    }
    setProblem(null);
    return id;
  }

  function submit(e: FormEvent) {
    e.preventDefault();
    const id = checkedId();
    if (id !== null) props.onJoin(id);
  }

  function takeSeat() {
    const id = checkedId();
    const msg = validateUserId(userId);
    setUserProblem(msg);
    if (id !== null && !msg) props.onTakeSeat?.(id, userId.trim());
  }

  return (
    <form className="card" onSubmit={submit} aria-labelledby={`${ids}-title`} noValidate data-testid="join-form">
      <h2 id={`${ids}-title`}>{props.joinLink ? 'Join this game' : 'Join a game'}</h2>
      <div className="field">
        <label htmlFor={`${ids}-game`}>Game id</label>
        <input
          id={`${ids}-game`}
          name="gameId"
          value={gameId}
          data-testid="join-game-id"
          onChange={(e) => setGameId(e.target.value)}
          aria-invalid={problem ? true : undefined}
          aria-describedby={problem ? `${ids}-problem` : undefined}
          autoComplete="off"
          spellCheck={false}
        />
        {problem && (
          <p id={`${ids}-problem`} className="field-error" role="alert">
            {problem}
          </p>
        )}
      </div>
      {props.onTakeSeat && (
        <div className="field">
          <label htmlFor={`${ids}-player`}>Play as</label>
          <input
            id={`${ids}-player`}
            name="player"
            value={userId}
            readOnly={props.fixedUserId !== undefined}
            data-testid="join-user-id"
            maxLength={LIMITS.maxUserIdLen}
            onChange={(e) => setUserId(e.target.value)}
            aria-invalid={userProblem ? true : undefined}
            aria-describedby={userProblem ? `${ids}-player-problem` : undefined}
            placeholder="your user id, to take a seat"
            autoComplete="username"
          />
          {userProblem && (
            <p id={`${ids}-player-problem`} className="field-error" role="alert">
              {userProblem}
            </p>
          )}
        </div>
      )}
      <div className="actions">
        {props.onTakeSeat && (
          <button type="button" disabled={props.busy} onClick={takeSeat} data-testid="take-seat">
            {props.busy ? 'Joining…' : 'Take a seat'}
          </button>
        )}
        <button type="submit" className="secondary" disabled={props.busy}>
          {props.busy ? 'Looking…' : 'Watch'}
        </button>
      </div>
    </form>
  );
}
