//! An incremental counter for clients that follow a game tick by tick.

use crate::{Params, Tick, is_break, tick_at};

/// Follows a game one step at a time in O(1) per step.
///
/// ```
/// use shared_engine::{Algorithm, Counter, Params, tick_at};
///
/// let params = Params::new(7, 0, 100, 50, Algorithm::Mix32V1).unwrap();
/// let mut counter = Counter::new(params);
/// let mut last = counter.advance();
/// for _ in 0..500 {
///     last = counter.advance();
/// }
/// assert_eq!(last, tick_at(&params, 500));
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Counter {
    params: Params,
    /// The last tick produced, `None` before step 0.
    current: Option<Tick>,
}

impl Counter {
    /// A counter positioned before step 0.
    pub fn new(params: Params) -> Counter {
        Counter {
            params,
            current: None,
        }
    }

    /// A counter positioned at `step`, computed once with [`tick_at`] (O(step)).
    pub fn at_step(params: Params, step: u64) -> Counter {
        Counter {
            params,
            current: Some(tick_at(&params, step)),
        }
    }

    /// The parameters being followed.
    pub fn params(&self) -> &Params {
        &self.params
    }

    /// The last tick produced, `None` before step 0.
    pub fn current(&self) -> Option<Tick> {
        self.current
    }

    /// Moves to the next step and returns it.
    pub fn advance(&mut self) -> Tick {
        let next = match self.current {
            None => {
                let broken = is_break(
                    self.params.algorithm(),
                    self.params.seed(),
                    0,
                    self.params.break_every(),
                );
                Tick {
                    step: 0,
                    value: if broken { 0 } else { 1 },
                    round: u64::from(broken),
                    broken,
                }
            }
            Some(tick) => {
                let step = tick.step.saturating_add(1);
                let broken = is_break(
                    self.params.algorithm(),
                    self.params.seed(),
                    step,
                    self.params.break_every(),
                );
                Tick {
                    step,
                    value: if broken { 0 } else { tick.value + 1 },
                    round: tick.round + u64::from(broken),
                    broken,
                }
            }
        };
        self.current = Some(next);
        next
    }

    /// Moves forward to `step` (never backward) and returns the tick there; O(steps moved).
    ///
    /// A client whose timer fired late calls this with the step its clock says, so skipped
    /// steps still count their breaks.
    pub fn advance_to(&mut self, step: u64) -> Tick {
        loop {
            match self.current {
                Some(tick) if tick.step >= step => return tick,
                _ => {
                    self.advance();
                }
            }
        }
    }
}
