import { useId, useState, type FormEvent } from 'react';
import type { Region } from '../api/edge';
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

export function StartForm(props: {
  busy: boolean;
  /** `sealed`: a `sealed-v1` game (breaks revealed one round at a time). */
  onStart: (userId: string, region: RegionChoice, sealed: boolean) => void;
  initialUserId?: string;
  /** The user id this browser is signed in as (a guest identity): shown, not editable. */
  fixedUserId?: string;
}) {
  const [typed, setUserId] = useState(props.initialUserId ?? '');
  const userId = props.fixedUserId ?? typed;
  const [region, setRegion] = useState<RegionChoice>('auto');
  const [sealed, setSealed] = useState(false);
  const [problem, setProblem] = useState<string | null>(null);
  const ids = useId();

  function submit(e: FormEvent) {
    e.preventDefault();
    const msg = validateUserId(userId);
    setProblem(msg);
    if (!msg) props.onStart(userId.trim(), region, sealed);
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
    </form>
  );
}

export function JoinForm(props: { busy: boolean; onJoin: (gameId: string) => void; initialGameId?: string }) {
  const [gameId, setGameId] = useState(props.initialGameId ?? '');
  const [problem, setProblem] = useState<string | null>(null);
  const ids = useId();

  function submit(e: FormEvent) {
    e.preventDefault();
    const id = gameId.trim();
    if (id === '') {
      setProblem('Enter a game id, or open a shared link.');
      return;
    }
    setProblem(null);
    props.onJoin(id);
  }

  return (
    <form className="card" onSubmit={submit} aria-labelledby={`${ids}-title`} noValidate>
      <h2 id={`${ids}-title`}>Join a game</h2>
      <div className="field">
        <label htmlFor={`${ids}-game`}>Game id</label>
        <input
          id={`${ids}-game`}
          name="gameId"
          value={gameId}
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
      <button type="submit" className="secondary" disabled={props.busy}>
        {props.busy ? 'Joining…' : 'Join'}
      </button>
    </form>
  );
}
