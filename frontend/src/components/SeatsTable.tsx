import { formatServerTime } from '../format';
import type { SeatRow } from '../game/seats';

/**
 * A shared game's seats and results, live: one row per seat (player, exit time, final step and
 * value, whether a break came first), updated the moment the room pushes a seat's result.
 */
export function SeatsTable({
  seats,
  maxPlayers,
  you,
  final = false,
}: {
  seats: readonly SeatRow[];
  maxPlayers?: number;
  you?: string;
  /** Every seat has exited: these are the game's final results. */
  final?: boolean;
}) {
  const exited = seats.filter((s) => s.result !== null).length;
  return (
    <table className="seats" data-testid="seats" data-final={final ? 'true' : 'false'}>
      <caption>
        Seats: {seats.length}
        {maxPlayers !== undefined ? ` of ${maxPlayers}` : ''} taken, {exited} exited{final ? ' — final results' : ''}
      </caption>
      <thead>
        <tr>
          <th scope="col">Seat</th>
          <th scope="col">Player</th>
          <th scope="col">Exited at</th>
          <th scope="col">Step</th>
          <th scope="col">Value</th>
          <th scope="col">Break first</th>
        </tr>
      </thead>
      <tbody>
        {seats.map((s) => (
          <tr
            key={s.seat}
            data-testid={`seat-${s.seat}`}
            className={s.result ? 'exited' : 'playing'}
            data-user={s.userId}
            data-exited-at={s.result ? s.result.exitedAt : ''}
            data-step={s.result?.final ? s.result.final.step : ''}
            data-value={s.result?.final ? s.result.final.value : ''}
          >
            <td>{s.seat}</td>
            <td>
              {s.userId}
              {you !== undefined && s.userId === you ? ' (you)' : ''}
            </td>
            {s.result ? (
              <>
                <td>{formatServerTime(s.result.exitedAt)}</td>
                <td>{s.result.final ? s.result.final.step : '–'}</td>
                <td>{s.result.final ? s.result.final.value : 'countdown'}</td>
                <td>{s.result.breakFirst ? 'yes' : 'no'}</td>
              </>
            ) : (
              <td colSpan={4}>playing</td>
            )}
          </tr>
        ))}
      </tbody>
    </table>
  );
}
