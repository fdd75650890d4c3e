//! Starting and exiting games: the orderings of Cassandra writes that keep one active game
//! per user and one game per idempotency key, even under concurrent requests and crashes.
//!
//! Start:
//! 1. With an `Idempotency-Key`, claim the key for a fresh game id (LWT). If the key is taken,
//!    its game is the answer; if that game was never written (the first attempt died), finish
//!    the first attempt under the same id.
//! 2. Write the game row (an LWT when a key is involved, since two retries may race on one id).
//! 3. Claim the user's active slot (LWT). If another game holds it, that game is the answer:
//!    drop this request's row and point the key at the answer. A slot that points at an exited
//!    or missing game (a crash mid-exit) is released and claimed again.
//!
//! Because the game row is written before the slot is claimed, a slot never points at a game
//! that does not exist, and a success is only sent after every write was acknowledged.

use crate::config::GameDefaults;
use crate::domain::{Game, GameId, GameStatus, IdempotencyKey, NewGame, Region, UserId};
use crate::error::AppError;
use crate::store::{Claim, ExitOutcome, Store};

/// The answer to a start request.
#[derive(Debug, Clone)]
pub struct Started {
    /// The game the user now plays.
    pub game: Game,
    /// Whether this request created it (201) or found it (200).
    pub created: bool,
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    let elapsed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX)
}

/// A seed from the operating system's CSPRNG.
fn secure_seed() -> Result<u32, AppError> {
    let mut bytes = [0u8; 4];
    getrandom::fill(&mut bytes).map_err(|e| {
        AppError::Storage(crate::store::StoreError::Corrupt(format!(
            "no OS randomness: {e}"
        )))
    })?;
    Ok(u32::from_le_bytes(bytes))
}

fn build_game(
    id: GameId,
    request: &NewGame,
    region: &Region,
    defaults: &GameDefaults,
) -> Result<Game, AppError> {
    let now = now_ms();
    Ok(Game {
        id,
        user_id: request.user_id.clone(),
        region: region.clone(),
        seed: secure_seed()?,
        start_at_ms: now + i64::from(defaults.start_delay_ms),
        tick_ms: request.tick_ms.unwrap_or(defaults.tick_ms),
        break_every: request.break_every.unwrap_or(defaults.break_every),
        algorithm: request.algorithm,
        status: GameStatus::Active,
        created_at_ms: now,
        exited_at_ms: None,
        metadata: request.metadata.clone(),
    })
}

/// Starts a game for `request.user_id`, or returns the one that user already plays.
pub async fn start_game(
    store: &Store,
    region: &Region,
    defaults: &GameDefaults,
    request: &NewGame,
    key: Option<&IdempotencyKey>,
) -> Result<Started, AppError> {
    let mut game = build_game(GameId::random(), request, region, defaults)?;
    let mut inserted_here = true;
    if let Some(key) = key {
        match store
            .claim_idempotency_key(key, &request.user_id, game.id)
            .await?
        {
            Claim::Claimed => {}
            // Our own claim, seen again by a retried LWT whose first run was applied.
            Claim::Held((id, _)) if id == game.id => {}
            Claim::Held((id, owner)) => {
                if owner != request.user_id.as_str() {
                    return Err(AppError::Conflict(
                        "this Idempotency-Key was already used by another user; use a fresh key"
                            .into(),
                    ));
                }
                if let Some(existing) = store.game(id).await? {
                    return finish_existing(store, existing, request).await;
                }
                game.id = id;
            }
        }
        if let Some(existing) = store.insert_game_if_absent(&game).await? {
            game = existing;
            inserted_here = false;
        }
    } else {
        store.insert_game(&game).await?;
    }

    // A stale slot is released and claimed again; twice is plenty, since only a crash or a
    // concurrent exit can make a slot stale.
    for _ in 0..3 {
        match store.claim_active(&request.user_id, game.id).await? {
            Claim::Claimed => {
                return Ok(Started {
                    game,
                    created: inserted_here,
                });
            }
            // Our own claim, seen again by a retried LWT whose first run was applied.
            Claim::Held(id) if id == game.id => {
                return Ok(Started {
                    game,
                    created: inserted_here,
                });
            }
            Claim::Held(other_id) => match store.game(other_id).await? {
                Some(other) if other.status == GameStatus::Active => {
                    if inserted_here {
                        store.delete_game(game.id).await?;
                    }
                    if let Some(key) = key {
                        store
                            .repoint_idempotency_key(key, &request.user_id, other.id)
                            .await?;
                    }
                    return Ok(Started {
                        game: other,
                        created: false,
                    });
                }
                _ => store.release_active(&request.user_id, other_id).await?,
            },
        }
    }
    Err(AppError::Conflict(
        "the user's active game changed while starting; retry".into(),
    ))
}

/// An idempotent retry found its game: make sure the rest of the first attempt happened.
async fn finish_existing(
    store: &Store,
    existing: Game,
    request: &NewGame,
) -> Result<Started, AppError> {
    if existing.status == GameStatus::Active {
        match store.claim_active(&request.user_id, existing.id).await? {
            Claim::Claimed => {}
            Claim::Held(id) if id == existing.id => {}
            Claim::Held(other_id) => {
                // The first attempt lost the slot to another game between its writes.
                if let Some(other) = store.game(other_id).await?
                    && other.status == GameStatus::Active
                {
                    return Ok(Started {
                        game: other,
                        created: false,
                    });
                }
            }
        }
    }
    Ok(Started {
        game: existing,
        created: false,
    })
}

/// The answer to an exit request.
#[derive(Debug, Clone)]
pub struct Exited {
    /// The game.
    pub game_id: GameId,
    /// Its player.
    pub user_id: UserId,
    /// When it was exited (the first exit's time on repeats).
    pub exited_at_ms: i64,
    /// Whether this request exited it.
    pub first: bool,
}

/// Exits a game on behalf of `user` (`None` skips the ownership check, for the v1 API).
pub async fn exit_game(
    store: &Store,
    id: GameId,
    user: Option<&UserId>,
) -> Result<Exited, AppError> {
    let game = store
        .game(id)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("no game with id {id}")))?;
    if let Some(user) = user
        && *user != game.user_id
    {
        return Err(AppError::Forbidden(format!(
            "game {id} belongs to another user"
        )));
    }
    let (exited_at_ms, first) = match game.exited_at_ms {
        Some(at) => (at, false),
        None => match store.exit_game(id, now_ms()).await? {
            ExitOutcome::Exited(at) => (at, true),
            ExitOutcome::AlreadyExited(at) => (at, false),
            ExitOutcome::NotFound => {
                return Err(AppError::NotFound(format!("no game with id {id}")));
            }
        },
    };
    // Also on repeats, so an exit that died between its two writes is completed by a retry.
    store.release_active(&game.user_id, id).await?;
    Ok(Exited {
        game_id: id,
        user_id: game.user_id,
        exited_at_ms,
        first,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_come_from_the_os_and_vary() {
        let seeds: std::collections::HashSet<u32> =
            (0..64).map(|_| secure_seed().unwrap()).collect();
        assert!(
            seeds.len() > 60,
            "64 CSPRNG draws collided: {}",
            64 - seeds.len()
        );
    }

    #[test]
    fn new_games_start_after_the_delay() {
        let request = NewGame::parse(
            UserId::parse("userId", "u").unwrap(),
            None,
            Some(16),
            None,
            None,
            ["algorithm", "tickMs", "breakEvery", "metadata"],
        )
        .unwrap();
        let defaults = GameDefaults {
            start_delay_ms: 3_000,
            tick_ms: 100,
            break_every: 50,
        };
        let before = now_ms();
        let game = build_game(
            GameId::random(),
            &request,
            &Region::parse("eu").unwrap(),
            &defaults,
        )
        .unwrap();
        assert!(game.start_at_ms >= before + 3_000 && game.start_at_ms <= now_ms() + 3_000);
        assert_eq!((game.tick_ms, game.break_every), (16, 50));
        assert_eq!(game.status, GameStatus::Active);
    }
}
