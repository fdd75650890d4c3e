//! `MemoryStore`: an in-memory [`GameStore`] with the same compare-and-set semantics as the
//! Cassandra store, plus switches to make every operation fail or stall, so the HTTP layer's
//! error mapping is tested in-process without a cluster.
//!
//! What [`StoreChoice::Memory`](super::StoreChoice::Memory) runs the application on: the fast
//! tests get the production wiring without Cassandra. Nothing survives the process and no
//! other origin sees it, so it is never chosen from the environment.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::{Claim, ExitOutcome, GameStore, SeatExit, StoreError};
use crate::domain::{Game, Seat};
use api::{GameId, GameStatus, IdempotencyKey, SeatResult, UserId};
use async_trait::async_trait;

#[derive(Debug, Default)]
struct Tables {
    games: HashMap<GameId, Game>,
    active: HashMap<UserId, GameId>,
    keys: HashMap<IdempotencyKey, (GameId, UserId)>,
    seats: HashMap<(GameId, u32), Seat>,
}

/// Games, active-game claims and idempotency keys in this process's memory.
#[derive(Debug, Default)]
pub struct MemoryStore {
    tables: Mutex<Tables>,
    failing: AtomicBool,
    stalling: AtomicBool,
}

impl MemoryStore {
    /// Every operation fails from now on (as if Cassandra went away), or works again.
    pub fn set_failing(&self, failing: bool) {
        self.failing.store(failing, Ordering::SeqCst);
    }

    /// Every operation hangs for a minute from now on (as if Cassandra stopped answering).
    pub fn set_stalling(&self, stalling: bool) {
        self.stalling.store(stalling, Ordering::SeqCst);
    }

    async fn check(&self, operation: &'static str) -> Result<(), StoreError> {
        if self.stalling.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_secs(60)).await;
        }
        if self.failing.load(Ordering::SeqCst) {
            return Err(StoreError::Query {
                operation,
                message: "injected failure: node 10.0.0.7 unconfigured table".into(),
            });
        }
        Ok(())
    }

    fn tables(&self) -> std::sync::MutexGuard<'_, Tables> {
        self.tables.lock().unwrap()
    }
}

#[async_trait]
impl GameStore for MemoryStore {
    // The fake keeps no TTLs (see `claim_active`); retention is tested on Cassandra.
    async fn insert_game(&self, game: &Game, _ttl_seconds: i32) -> Result<(), StoreError> {
        self.check("insert game").await?;
        self.tables().games.insert(game.id, game.clone());
        Ok(())
    }

    async fn insert_game_if_absent(
        &self,
        game: &Game,
        _ttl_seconds: i32,
    ) -> Result<Option<Game>, StoreError> {
        self.check("insert game (LWT)").await?;
        let mut tables = self.tables();
        if let Some(existing) = tables.games.get(&game.id) {
            return Ok(Some(existing.clone()));
        }
        tables.games.insert(game.id, game.clone());
        Ok(None)
    }

    async fn game(&self, id: GameId) -> Result<Option<Game>, StoreError> {
        self.check("read game").await?;
        Ok(self.tables().games.get(&id).cloned())
    }

    async fn delete_game(&self, id: GameId) -> Result<(), StoreError> {
        self.check("delete game").await?;
        self.tables().games.remove(&id);
        Ok(())
    }

    async fn exit_game(
        &self,
        game: &Game,
        at_ms: i64,
        _ttl_seconds: i32,
    ) -> Result<ExitOutcome, StoreError> {
        self.check("exit game").await?;
        let mut tables = self.tables();
        let Some(game) = tables.games.get_mut(&game.id) else {
            return Ok(ExitOutcome::NotFound);
        };
        if let Some(at) = game.exited_at_ms {
            return Ok(ExitOutcome::AlreadyExited(at));
        }
        game.status = GameStatus::Exited;
        game.exited_at_ms = Some(at_ms);
        Ok(ExitOutcome::Exited(at_ms))
    }

    // The fake keeps no TTL: the service reads a slot's game through `MaxAge::effective`, so an
    // expired game's slot is released by the next start here too.
    async fn claim_active(
        &self,
        user: &UserId,
        game: GameId,
        _ttl_seconds: i32,
    ) -> Result<Claim<GameId>, StoreError> {
        self.check("claim active game").await?;
        let mut tables = self.tables();
        match tables.active.get(user) {
            Some(held) => Ok(Claim::Held(*held)),
            None => {
                tables.active.insert(user.clone(), game);
                Ok(Claim::Claimed)
            }
        }
    }

    async fn release_active(&self, user: &UserId, game: GameId) -> Result<(), StoreError> {
        self.check("release active game").await?;
        let mut tables = self.tables();
        if tables.active.get(user) == Some(&game) {
            tables.active.remove(user);
        }
        Ok(())
    }

    async fn active_game_id(&self, user: &UserId) -> Result<Option<GameId>, StoreError> {
        self.check("read active game").await?;
        Ok(self.tables().active.get(user).copied())
    }

    async fn claim_idempotency_key(
        &self,
        key: &IdempotencyKey,
        user: &UserId,
        game: GameId,
        _ttl_seconds: i32,
    ) -> Result<Claim<(GameId, UserId)>, StoreError> {
        self.check("claim idempotency key").await?;
        let mut tables = self.tables();
        match tables.keys.get(key) {
            Some(held) => Ok(Claim::Held(held.clone())),
            None => {
                tables.keys.insert(key.clone(), (game, user.clone()));
                Ok(Claim::Claimed)
            }
        }
    }

    async fn repoint_idempotency_key(
        &self,
        key: &IdempotencyKey,
        user: &UserId,
        game: GameId,
        _ttl_seconds: i32,
    ) -> Result<(), StoreError> {
        self.check("repoint idempotency key").await?;
        if let Some(held) = self.tables().keys.get_mut(key)
            && held.1 == *user
        {
            held.0 = game;
        }
        Ok(())
    }

    async fn game_serial(&self, id: GameId) -> Result<Option<Game>, StoreError> {
        self.game(id).await
    }

    async fn insert_seat(&self, seat: &Seat) -> Result<(), StoreError> {
        self.check("insert seat").await?;
        self.tables()
            .seats
            .insert((seat.game_id, seat.seat), seat.clone());
        Ok(())
    }

    async fn claim_seat(&self, seat: &Seat) -> Result<Claim<UserId>, StoreError> {
        self.check("claim seat").await?;
        let mut tables = self.tables();
        match tables.seats.get(&(seat.game_id, seat.seat)) {
            Some(held) => Ok(Claim::Held(held.user_id.clone())),
            None => {
                tables.seats.insert((seat.game_id, seat.seat), seat.clone());
                Ok(Claim::Claimed)
            }
        }
    }

    async fn seats(&self, game: GameId, max_players: u32) -> Result<Vec<Seat>, StoreError> {
        self.check("read seats").await?;
        let tables = self.tables();
        Ok((0..max_players)
            .filter_map(|n| tables.seats.get(&(game, n)).cloned())
            .collect())
    }

    async fn exit_seat(
        &self,
        game: GameId,
        seat: u32,
        user: &UserId,
        result: &SeatResult,
    ) -> Result<SeatExit, StoreError> {
        self.check("exit seat").await?;
        let mut tables = self.tables();
        match tables.seats.get_mut(&(game, seat)) {
            Some(held) if held.user_id == *user => match held.result {
                Some(found) => Ok(SeatExit::AlreadyExited(found)),
                None => {
                    held.result = Some(*result);
                    Ok(SeatExit::Exited)
                }
            },
            _ => Ok(SeatExit::NotFound),
        }
    }

    async fn delete_seat(&self, game: GameId, seat: u32, user: &UserId) -> Result<(), StoreError> {
        self.check("free seat").await?;
        let mut tables = self.tables();
        if tables
            .seats
            .get(&(game, seat))
            .is_some_and(|held| held.user_id == *user)
        {
            tables.seats.remove(&(game, seat));
        }
        Ok(())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.check("ping").await
    }
}
