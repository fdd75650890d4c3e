//! The service's side of `sealed-v1` games (see [`crate::sealed`] for the rule of what is
//! public when): drawing the root at start, the revealed keys, and state and replay reads that
//! answer only what those keys prove.

use std::sync::Arc;

use api::sealed::{MAX_ROUNDS_PAGE, RoundKey, RoundsView};
use api::{ApiError, BreakEvery, GameId, TickMs};
use kernel::clock::now_ms;
use shared_engine::sealed::{self, Key};
use shared_engine::{State, StepAt, step_at};

use super::GameService;
use crate::domain::{Game, SealedSecret};
use crate::error::AppError;
use crate::sealed::Chain;

/// A fresh root from the OS CSPRNG, and its commitment (`N` hashes, off the async workers).
pub(super) async fn draw_secret(
    tick_ms: TickMs,
    break_every: BreakEvery,
) -> Result<SealedSecret, AppError> {
    let mut secrets = draw_secrets(tick_ms, break_every, 1).await?;
    secrets
        .pop()
        .ok_or_else(|| AppError::Internal("no sealed secret drawn".into()))
}

/// `count` fresh roots and their commitments, as [`draw_secret`]: `count * N` hashes in one
/// blocking task (at most 100 rounds of a tournament times [`sealed::chain_rounds`], 86,400
/// at most: about 8.6 million SHA-256 of 32 bytes, a few seconds of one core at worst).
pub(super) async fn draw_secrets(
    tick_ms: TickMs,
    break_every: BreakEvery,
    count: usize,
) -> Result<Vec<SealedSecret>, AppError> {
    let min = sealed::min_break_every(tick_ms.get());
    if u64::from(break_every.get()) < min {
        return Err(ApiError::invalid(
            "breakEvery",
            format!(
                "must be at least {min} for sealed-v1 at tickMs {} (twice the shortest round of {} ms)",
                tick_ms.get(),
                sealed::MIN_ROUND_MS
            ),
        )
        .into());
    }
    let roots = (0..count)
        .map(|_| {
            let mut root = [0u8; 32];
            getrandom::fill(&mut root)
                .map_err(|e| AppError::Internal(format!("no OS randomness: {e}")))?;
            Ok(Key(root))
        })
        .collect::<Result<Vec<_>, AppError>>()?;
    let rounds = sealed::chain_rounds(tick_ms.get());
    tokio::task::spawn_blocking(move || {
        roots
            .into_iter()
            .map(|root| SealedSecret {
                root,
                commitment: sealed::commitment(&root, rounds),
            })
            .collect()
    })
    .await
    .map_err(|e| AppError::Internal(format!("commitment computation failed: {e}")))
}

/// A page of public rounds, and whether it can never change (a full page, or an ended game's).
#[derive(Debug, Clone)]
pub struct Rounds {
    /// The answer.
    pub view: RoundsView,
    /// Whether the same request will always get the same answer (cacheable forever).
    pub immutable: bool,
}

/// What the edge's room is told besides a page (never a public client: the next reveal
/// instant says when the next break is): how many rounds are public, and the round whose key
/// comes out next with its reveal instant (Unix ms; `None` once the game has ended or past
/// its chain).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    /// Rounds public now.
    pub public: u64,
    /// The next reveal: round and instant.
    pub next_reveal: Option<(u64, i64)>,
}

impl GameService {
    /// The chain of a sealed game (`None` for any other), built off the async workers on the
    /// first read in this process, then cached.
    pub(super) async fn chain(&self, game: &Game) -> Result<Option<Arc<Chain>>, AppError> {
        let Some((params, secret)) = game.sealed_params() else {
            return Ok(None);
        };
        if let Some(chain) = self.chains.get(game.id) {
            return Ok(Some(chain));
        }
        let root = secret.root;
        let id = game.id;
        let chain = tokio::task::spawn_blocking(move || Chain::build(&params, &root))
            .await
            .map_err(|e| AppError::Internal(format!("chain computation failed: {e}")))?
            .map_err(|_| {
                AppError::Internal(format!("game {id}: the root does not match the commitment"))
            })?;
        let chain = Arc::new(chain);
        self.chains.insert(id, chain.clone());
        Ok(Some(chain))
    }

    /// `GET /game/{id}/rounds?from=R`: the public keys from round `R` (default 1), at most
    /// [`MAX_ROUNDS_PAGE`]. 404 for no game, 422 for a game that is not sealed or an `R`
    /// outside the chain, 425 when round `R` is not public yet (with a retry time computed
    /// from public facts only: [`Chain::retry_at`]).
    ///
    /// With the schedule too (`schedule`, for the edge only: see [`Schedule`]), computed at the
    /// same instant, whatever the answer; `None` when there is no sealed game to tell about.
    #[tracing::instrument(name = "service.rounds", skip_all)]
    pub async fn rounds(
        &self,
        id: GameId,
        from: Option<u64>,
        schedule: bool,
    ) -> (Result<Rounds, AppError>, Option<Schedule>) {
        let game = match self.game(id).await {
            Ok(game) => game,
            Err(e) => return (Err(e), None),
        };
        let chain = match self.chain(&game).await {
            Ok(chain) => chain,
            Err(e) => return (Err(e), None),
        };
        let now = now_ms();
        let told = schedule
            .then(|| {
                let chain = chain.as_ref()?;
                Some(Schedule {
                    public: chain.public_rounds(game.public_end(now), now),
                    next_reveal: match game.public_end(now) {
                        Some(_) => None,
                        None => chain.next_reveal(now),
                    },
                })
            })
            .flatten();
        (Self::rounds_at(&game, chain, from, now), told)
    }

    /// The page of [`GameService::rounds`] at `now`.
    fn rounds_at(
        game: &Game,
        chain: Option<Arc<Chain>>,
        from: Option<u64>,
        now: i64,
    ) -> Result<Rounds, AppError> {
        let id = game.id;
        let Some(chain) = chain else {
            return Err(ApiError::invalid(
                "gameId",
                format!(
                    "game {id} is a {} game: its breaks follow from its seed, it has no rounds to reveal",
                    game.algorithm
                ),
            )
            .into());
        };
        let from = from.unwrap_or(1);
        if from == 0 || from > chain.rounds() {
            return Err(ApiError::invalid(
                "from",
                format!("must be a round from 1 to {}", chain.rounds()),
            )
            .into());
        }
        // A tournament table's end is public only once its round is over (the other tables
        // play the same chain): until then its keys come out break by break, as if running.
        let public = chain.public_rounds(game.public_end(now), now);
        let ended = game.public_end(now).is_some();
        let commitment = chain.params().commitment().to_string();
        if from > public {
            if ended {
                // Nothing more will ever be revealed round by round (the root is public).
                return Ok(Rounds {
                    view: RoundsView {
                        game_id: id,
                        commitment,
                        from,
                        rounds: Vec::new(),
                    },
                    immutable: true,
                });
            }
            return Err(AppError::TooEarly {
                message: format!("round {from} of game {id} has not broken yet"),
                retry_at_ms: chain.retry_at(public, now),
            });
        }
        let last = public.min(from.saturating_add(MAX_ROUNDS_PAGE - 1));
        let rounds: Vec<RoundKey> = chain
            .keys(from, last)
            .into_iter()
            .zip(from..)
            .map(|(key, round)| RoundKey {
                round,
                key: key.to_string(),
            })
            .collect();
        let immutable = ended || rounds.len() as u64 == MAX_ROUNDS_PAGE;
        Ok(Rounds {
            view: RoundsView {
                game_id: id,
                commitment,
                from,
                rounds,
            },
            immutable,
        })
    }

    /// The state of a sealed game at `at` (default: the latest public instant). While the game
    /// runs, only instants before now are public (425 for later ones).
    pub(super) fn sealed_state(
        chain: &Chain,
        game: &Game,
        at: Option<i64>,
        now: i64,
    ) -> Result<(i64, State), AppError> {
        let running = game.exited_at_ms.is_none();
        let at = match at {
            Some(at) if running && at >= now => {
                return Err(AppError::TooEarly {
                    message: format!(
                        "at: {at} is not before the server's clock; a sealed game's state is public only up to now"
                    ),
                    retry_at_ms: at.saturating_add(1),
                });
            }
            Some(at) => at,
            None if running => now.saturating_sub(1),
            None => now,
        };
        let params = chain.params();
        if let Some(end) = game.exited_at_ms
            && at >= end
        {
            return Ok((
                at,
                State::Ended(chain.final_step(end).map(|s| chain.tick_at(s))),
            ));
        }
        Ok((
            at,
            match step_at(params.start_at_ms(), params.tick_ms(), at) {
                StepAt::Before(ms_until_start) => State::Countdown { ms_until_start },
                StepAt::At(step) => State::Running(chain.tick_at(step)),
            },
        ))
    }

    /// Steps `from..=to` of a sealed game, up to its last public step: the frozen one once
    /// ended, else the step under way a millisecond ago (425 when `from` is past it).
    pub(super) fn sealed_replay(
        chain: &Chain,
        game: &Game,
        from: u64,
        to: u64,
        now: i64,
    ) -> Result<Vec<shared_engine::Tick>, AppError> {
        let last = match game.exited_at_ms {
            Some(end) => chain.final_step(end),
            None => chain.last_public_step(now),
        };
        match last {
            Some(last) if from <= last => Ok(chain.ticks(from, to.min(last))),
            _ if game.exited_at_ms.is_some() => Ok(Vec::new()),
            _ => Err(AppError::TooEarly {
                message: format!(
                    "step {from} of game {} has not begun by the server's clock",
                    game.id
                ),
                retry_at_ms: chain.params().step_start_ms(from).saturating_add(1),
            }),
        }
    }
}
