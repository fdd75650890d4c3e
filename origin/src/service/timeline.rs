//! A game's timeline, computed by the shared engine: the state at an instant and replays of
//! step ranges, within the bounds the server is willing to compute.
//!
//! Reading step `s` costs O(s) engine work (the number of breaks before it cannot be known
//! otherwise), and the cost of a step differs by algorithm: `lcg32` takes a division per
//! step, `mix32-v1` a hash, `interval-v0` one draw per round of 101 to 301 steps. So each
//! algorithm has its own horizon ([`horizon`]), chosen so that one read costs at most about
//! 10 ms of CPU; a read past it is refused with 422 `validation_failed` naming `at` (or `to`).
//!
//! Long computations run on the blocking pool. Dropping the request's future (timed out by
//! `REQUEST_TIMEOUT_SECONDS`, or the client went away) raises a flag that the computation
//! checks: a computation not yet started never starts, and `lcg32`, the slowest per step, is
//! stepped in chunks of [`CHUNK`] steps with the flag checked between them, so an abandoned
//! read frees its core within one chunk (counted in `seedsync_engine_cancelled_total`). The other
//! algorithms use the engine's vectorized count, which is not interruptible but costs at most
//! about 10 ms at their horizon.
//!
//! Long computations also take a permit of the [`EnginePool`] first: one fewer than the cores
//! (at least one), so however many horizon reads arrive at once, from one client or many, the
//! engine never holds every core and starts, exits and cheap reads keep one. A request waiting
//! for a permit costs no CPU, holds its in-flight slot (so one client's waiting reads are capped
//! by `MAX_IN_FLIGHT_PER_CLIENT`), and gives its place up if it is abandoned.
//!
//! Figures (`cargo run --release -p shared-engine --example ns_per_step`, 2 shared cores under
//! a load average of 8, so pessimistic): `mix32-v1` 2.1-4.4 ns/step (`tick_at`), `lcg32`
//! 22-23 ns/step (`tick_at`) and 28-43 ns/step (chunked), `interval-v0` 0.012-0.016 ns/step.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use api::ApiError;
use api::limits::{DEFAULT_REPLAY_SPAN, MAX_COMPUTED_STEP, MAX_REPLAY_STEPS};
use prometheus::IntCounter;
use shared_engine::{Algorithm, Counter, Params, State, StepAt, Tick};
use tokio::sync::Semaphore;

use crate::domain::Game;
use crate::error::AppError;

/// Beyond this many steps the computation moves off the async workers (at most about 1 ms of
/// the slowest algorithm).
const INLINE_STEPS: u64 = 50_000;

/// `lcg32` steps computed between two checks of the cancellation flag (about 2 ms).
pub(crate) const CHUNK: u64 = 1 << 16;

/// The furthest step the server computes for `algorithm`: about 10 ms of one core at the
/// measured cost per step (see `measure::ns_per_step`, `cargo test -p origin --release --lib
/// ns_per_step -- --nocapture`), and never beyond [`MAX_COMPUTED_STEP`].
pub(crate) const fn horizon(algorithm: Algorithm) -> u64 {
    match algorithm {
        Algorithm::Mix32V1 => MIX32_V1_HORIZON,
        Algorithm::Lcg32 => LCG32_HORIZON,
        Algorithm::IntervalV0 => MAX_COMPUTED_STEP,
    }
}

/// `mix32-v1`'s horizon: 2.5 million steps (about 70 hours of 100 ms ticks), 5-11 ms at the
/// measured 2.1-4.4 ns/step.
pub(crate) const MIX32_V1_HORIZON: u64 = 2_500_000;
/// `lcg32`'s horizon: 500,000 steps (about 14 hours of 100 ms ticks), 14-21 ms at the
/// measured 28-43 ns/step under load (a few ms on an idle core).
pub(crate) const LCG32_HORIZON: u64 = 500_000;

/// Bounds the engine computations that run at once (the long ones, on the blocking pool).
#[derive(Debug)]
pub(crate) struct EnginePool {
    permits: Arc<Semaphore>,
    cancelled: IntCounter,
}

impl EnginePool {
    /// A pool of `size` (at least 1) computations at once, counting abandoned ones in
    /// `cancelled`.
    pub(crate) fn new(size: usize, cancelled: IntCounter) -> EnginePool {
        EnginePool {
            permits: Arc::new(Semaphore::new(size.max(1))),
            cancelled,
        }
    }

    /// One fewer than this machine's cores, at least 1.
    pub(crate) fn default_size() -> usize {
        std::thread::available_parallelism().map_or(1, |n| n.get().saturating_sub(1).max(1))
    }
}

/// Refuses steps beyond the algorithm's [`horizon`] (O(step) work), naming `field`.
fn check_step(algorithm: Algorithm, step: u64, field: &'static str) -> Result<(), AppError> {
    let horizon = horizon(algorithm);
    if step > horizon {
        return Err(ApiError::invalid(
            field,
            format!(
                "step {step} is beyond the {horizon} steps the server computes for {algorithm} games \
                 (compute it with the shared engine instead)"
            ),
        )
        .into());
    }
    Ok(())
}

/// Raises its flag when dropped: held by the request's future, so that abandoning the request
/// (a timeout, a disconnect) tells the blocking computation to stop.
struct CancelOnDrop(Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Runs an engine computation of about `steps` steps, off the async workers (with a permit of
/// `pool`) when it is long. `work` gets the cancellation flag and answers `None` when it saw it
/// raised; that is counted in the pool's `cancelled`.
async fn compute<T: Send + 'static>(
    steps: u64,
    pool: &EnginePool,
    work: impl FnOnce(&AtomicBool) -> Option<T> + Send + 'static,
) -> Result<T, AppError> {
    let stopped = || AppError::Internal("engine computation stopped".into());
    if steps <= INLINE_STEPS {
        return work(&AtomicBool::new(false)).ok_or_else(stopped);
    }
    // Moved into the blocking task: held exactly as long as the computation runs, even when
    // the request is abandoned meanwhile.
    let permit = pool
        .permits
        .clone()
        .acquire_owned()
        .await
        .map_err(|_| AppError::Internal("engine pool closed".into()))?;
    let flag = Arc::new(AtomicBool::new(false));
    let _guard = CancelOnDrop(flag.clone());
    let cancelled = pool.cancelled.clone();
    tokio::task::spawn_blocking(move || {
        let _permit = permit;
        let answer = work(&flag);
        if answer.is_none() {
            cancelled.inc();
        }
        answer
    })
    .await
    .map_err(|e| AppError::Internal(format!("engine computation failed: {e}")))?
    .ok_or_else(stopped)
}

/// Moves `counter` to `step` (never backward) in chunks of [`CHUNK`] steps, checking `cancel`
/// between them; `None` once it is raised.
pub(crate) fn advance_cancellable(
    counter: &mut Counter,
    step: u64,
    cancel: &AtomicBool,
) -> Option<Tick> {
    let mut tick = match counter.current() {
        Some(tick) => tick,
        None => counter.advance(),
    };
    while tick.step < step {
        if cancel.load(Ordering::Relaxed) {
            return None;
        }
        tick = counter.advance_to(step.min(tick.step.saturating_add(CHUNK)));
    }
    Some(tick)
}

/// The tick at `step`, `None` if `cancel` was raised first: `lcg32` in chunks, the others with
/// the engine's (faster, uninterruptible) count.
pub(crate) fn tick_cancellable(params: &Params, step: u64, cancel: &AtomicBool) -> Option<Tick> {
    if params.algorithm() == Algorithm::Lcg32 {
        advance_cancellable(&mut Counter::new(*params), step, cancel)
    } else if cancel.load(Ordering::Relaxed) {
        None
    } else {
        Some(shared_engine::tick_at(params, step))
    }
}

/// [`shared_engine::state_at`], stopping early once `cancel` is raised.
pub(crate) fn state_cancellable(params: &Params, at_ms: i64, cancel: &AtomicBool) -> Option<State> {
    let tick = |step| tick_cancellable(params, step, cancel);
    if let Some(end) = params.ended_at_ms()
        && at_ms >= end
    {
        // Frozen at the last step that began strictly before the end.
        return Some(State::Ended(
            match shared_engine::step_at(
                params.start_at_ms(),
                params.tick_ms(),
                end.saturating_sub(1),
            ) {
                StepAt::Before(_) => None,
                StepAt::At(step) => Some(tick(step)?),
            },
        ));
    }
    Some(
        match shared_engine::step_at(params.start_at_ms(), params.tick_ms(), at_ms) {
            StepAt::Before(ms_until_start) => State::Countdown { ms_until_start },
            StepAt::At(step) => State::Running(tick(step)?),
        },
    )
}

/// The seeded engine's parameters of `game` (the service sends sealed games elsewhere).
fn seeded(game: &Game) -> Result<Params, AppError> {
    game.params()
        .ok_or_else(|| AppError::Internal(format!("game {} has no seeded timeline", game.id)))
}

/// The engine's state of `game` at `at_ms` (frozen at its exit, once exited).
pub(super) async fn state_at(
    game: &Game,
    at_ms: i64,
    pool: &EnginePool,
) -> Result<State, AppError> {
    let params = seeded(game)?;
    let end = game.exited_at_ms.map_or(at_ms, |end| end.min(at_ms));
    let steps = match shared_engine::step_at(params.start_at_ms(), params.tick_ms(), end) {
        StepAt::Before(_) => 0,
        StepAt::At(step) => step,
    };
    check_step(params.algorithm(), steps, "at")?;
    compute(steps, pool, move |cancel| {
        state_cancellable(&params, at_ms, cancel)
    })
    .await
}

/// The last step of a replay starting at `from`, checked: `to` (default `from + 99`) must not
/// be before `from`, nor more than [`MAX_REPLAY_STEPS`] after it, nor beyond what the server
/// computes for any algorithm (the game's own horizon is checked by [`replay`]).
pub(super) fn replay_range(from: u64, to: Option<u64>) -> Result<u64, AppError> {
    let to = to.unwrap_or(from.saturating_add(DEFAULT_REPLAY_SPAN - 1));
    if to < from {
        return Err(ApiError::invalid("to", "must not be less than from").into());
    }
    if to - from >= MAX_REPLAY_STEPS {
        return Err(ApiError::invalid(
            "to",
            format!("at most {MAX_REPLAY_STEPS} steps per request"),
        )
        .into());
    }
    if to > MAX_COMPUTED_STEP {
        return Err(ApiError::invalid(
            "to",
            format!("step {to} is beyond the {MAX_COMPUTED_STEP} steps the server computes"),
        )
        .into());
    }
    Ok(to)
}

/// Steps `from..=to` of `game` (an exited game has no steps after the one it froze at).
pub(super) async fn replay(
    game: &Game,
    from: u64,
    to: u64,
    pool: &EnginePool,
) -> Result<Vec<Tick>, AppError> {
    let params = seeded(game)?;
    check_step(params.algorithm(), to, "to")?;
    let last = match game.exited_at_ms {
        None => Some(u64::MAX),
        Some(end) => match shared_engine::step_at(
            params.start_at_ms(),
            params.tick_ms(),
            end.saturating_sub(1),
        ) {
            StepAt::At(step) => Some(step),
            StepAt::Before(_) => None,
        },
    };
    match last {
        Some(last) if from <= last => {
            let to = to.min(last);
            compute(to, pool, move |cancel| {
                // Positioned at `from` as `tick_cancellable` would compute it.
                let mut counter = if params.algorithm() == Algorithm::Lcg32 {
                    let mut counter = Counter::new(params);
                    advance_cancellable(&mut counter, from, cancel)?;
                    counter
                } else if cancel.load(Ordering::Relaxed) {
                    return None;
                } else {
                    Counter::at_step(params, from)
                };
                let first = counter.current()?;
                let mut ticks = Vec::with_capacity((to - from + 1) as usize);
                ticks.push(first);
                ticks.extend((from + 1..=to).map(|step| counter.advance_to(step)));
                Some(ticks)
            })
            .await
        }
        _ => Ok(Vec::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::time::Duration;

    /// The most long computations that overlapped when `tasks` of them ran on a pool of `size`.
    async fn most_at_once(size: usize, tasks: usize) -> usize {
        let pool = Arc::new(EnginePool::new(size, IntCounter::new("c", "c").unwrap()));
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let handles: Vec<_> = (0..tasks)
            .map(|_| {
                let (pool, running, most) = (pool.clone(), running.clone(), most.clone());
                tokio::spawn(async move {
                    compute(INLINE_STEPS + 1, &pool, move |_| {
                        let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(now, Ordering::SeqCst);
                        std::thread::sleep(Duration::from_millis(30));
                        running.fetch_sub(1, Ordering::SeqCst);
                        Some(())
                    })
                    .await
                })
            })
            .collect();
        for handle in handles {
            handle.await.unwrap().unwrap();
        }
        most.load(Ordering::SeqCst)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_engine_pool_bounds_long_computations_at_once() {
        assert_eq!(most_at_once(1, 6).await, 1);
        assert_eq!(most_at_once(2, 6).await, 2);
        // Short computations run inline and take no permit.
        let pool = EnginePool::new(1, IntCounter::new("c", "c").unwrap());
        let _held = pool.permits.clone().acquire_owned().await.unwrap();
        let short = compute(INLINE_STEPS, &pool, |_| Some(7));
        assert_eq!(
            tokio::time::timeout(Duration::from_secs(1), short)
                .await
                .unwrap()
                .unwrap(),
            7
        );
    }

    #[test]
    fn the_engine_pool_leaves_a_core() {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        assert_eq!(EnginePool::default_size(), cores.saturating_sub(1).max(1));
    }

    #[test]
    fn replay_ranges() {
        assert_eq!(replay_range(0, None).unwrap(), 99);
        assert_eq!(replay_range(5, Some(5)).unwrap(), 5);
        assert_eq!(
            replay_range(u64::MAX - 3, None).ok(),
            None,
            "beyond the computed steps"
        );
        for (from, to) in [(10, 5), (0, 10_000), (0, 999_999_999_999)] {
            let e = replay_range(from, Some(to)).unwrap_err().to_api();
            assert_eq!(e.field.as_deref(), Some("to"), "{from}..{to}");
        }
    }

    #[test]
    fn chunked_states_equal_the_engine() {
        let never = AtomicBool::new(false);
        for algorithm in Algorithm::ALL {
            let params = Params::new(11, 1_000, 1, 7, algorithm).unwrap();
            for at in [0, 999, 1_000, 1_001, 5_000, 1_000 + 3 * CHUNK as i64 + 17] {
                assert_eq!(
                    state_cancellable(&params, at, &never),
                    Some(shared_engine::state_at(&params, at)),
                    "{algorithm} at {at}"
                );
                let ended = params.with_end(Some(4_000));
                assert_eq!(
                    state_cancellable(&ended, at, &never),
                    Some(shared_engine::state_at(&ended, at)),
                    "{algorithm} ended, at {at}"
                );
            }
        }
    }

    #[test]
    fn a_raised_flag_stops_between_chunks() {
        let params = Params::new(3, 0, 1, 7, Algorithm::Lcg32).unwrap();
        let raised = AtomicBool::new(true);
        // Step 0 needs no stepping; anything further stops before its first chunk.
        assert!(advance_cancellable(&mut Counter::new(params), 0, &raised).is_some());
        assert!(advance_cancellable(&mut Counter::new(params), 10, &raised).is_none());
        let mut counter = Counter::new(params);
        assert_eq!(advance_cancellable(&mut counter, 50 * CHUNK, &raised), None);
        assert_eq!(
            counter.current().map(|t| t.step),
            Some(0),
            "nothing computed"
        );
    }

    #[test]
    fn horizons_per_algorithm() {
        for algorithm in Algorithm::ALL {
            let h = horizon(algorithm);
            assert!(h <= MAX_COMPUTED_STEP);
            assert!(check_step(algorithm, h, "at").is_ok());
            let e = check_step(algorithm, h + 1, "at").unwrap_err().to_api();
            assert_eq!(e.field.as_deref(), Some("at"));
            assert!(e.message.contains(algorithm.as_str()), "{}", e.message);
        }
        assert!(horizon(Algorithm::Lcg32) < horizon(Algorithm::IntervalV0));
    }
}
