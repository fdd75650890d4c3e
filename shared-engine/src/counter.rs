//! An incremental counter for clients that follow a game tick by tick.

use crate::{Algorithm, Params, Tick, interval_v0_interval, is_break, tick_at};

/// Follows a game one step at a time in O(1) per step.
///
/// For `interval-v0` the counter keeps the step of the next break, so a step costs a comparison,
/// and [`Counter::advance_to`] jumps a round at a time.
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
    /// `interval-v0` only: the step of the next break after `current` (`None` if it would be
    /// past `u64::MAX`). Unused by the other algorithms.
    next_break: Option<u64>,
}

impl Counter {
    /// A counter positioned before step 0.
    pub fn new(params: Params) -> Counter {
        Counter {
            params,
            current: None,
            // Round 0 breaks after interval(0) non-breaking steps 0..interval(0).
            next_break: match params.algorithm() {
                Algorithm::IntervalV0 => Some(interval_v0_interval(u64::from(params.seed()), 0)),
                _ => None,
            },
        }
    }

    /// A counter positioned at `step`, computed once with [`tick_at`] (O(step), or O(rounds)
    /// for `interval-v0`).
    pub fn at_step(params: Params, step: u64) -> Counter {
        let tick = tick_at(&params, step);
        Counter {
            params,
            current: Some(tick),
            next_break: match params.algorithm() {
                Algorithm::IntervalV0 => interval_next_break(&params, &tick),
                _ => None,
            },
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
        if self.params.algorithm() == Algorithm::IntervalV0 {
            return self.advance_interval();
        }
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
        if self.params.algorithm() == Algorithm::IntervalV0 {
            return self.advance_interval_to(step);
        }
        loop {
            match self.current {
                Some(tick) if tick.step >= step => return tick,
                _ => {
                    self.advance();
                }
            }
        }
    }

    /// [`Counter::advance`] for `interval-v0`: a break exactly at the tracked step.
    fn advance_interval(&mut self) -> Tick {
        let step = match self.current {
            None => 0,
            Some(tick) => tick.step.saturating_add(1),
        };
        let broken = self.next_break == Some(step);
        let (value, round) = match self.current {
            None => (u64::from(!broken), u64::from(broken)),
            Some(tick) if broken => (0, tick.round + 1),
            Some(tick) => (tick.value + 1, tick.round),
        };
        let next = Tick {
            step,
            value,
            round,
            broken,
        };
        if broken {
            self.next_break = interval_next_break(&self.params, &next);
        }
        self.current = Some(next);
        next
    }

    /// [`Counter::advance_to`] for `interval-v0`: O(rounds moved), jumping from break to break.
    fn advance_interval_to(&mut self, step: u64) -> Tick {
        loop {
            let Some(tick) = self.current else {
                self.advance_interval();
                continue;
            };
            if tick.step >= step {
                return tick;
            }
            match self.next_break {
                Some(at) if at <= step => {
                    // Land just before the break, then take it like a single step would.
                    self.current = Some(Tick {
                        step: at - 1,
                        value: tick.value + (at - 1 - tick.step),
                        round: tick.round,
                        broken: false,
                    });
                    self.advance_interval();
                }
                _ => {
                    // No break in (tick.step, step]: the value just keeps counting.
                    let tick = Tick {
                        step,
                        value: tick.value + (step - tick.step),
                        round: tick.round,
                        broken: false,
                    };
                    self.current = Some(tick);
                    return tick;
                }
            }
        }
    }
}

/// The step of the first `interval-v0` break after `tick` (`None` past `u64::MAX`).
///
/// Round `tick.round` has had `tick.value` non-breaking steps so far (0 right at a break); it
/// breaks once it has had `interval(round)` of them.
fn interval_next_break(params: &Params, tick: &Tick) -> Option<u64> {
    let interval = interval_v0_interval(u64::from(params.seed()), tick.round);
    // value <= interval always holds, since the round breaks when value reaches interval.
    tick.step.checked_add(interval - tick.value)?.checked_add(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_break_past_u64_max_is_none() {
        let params = Params::new(0, 0, 1, 50, Algorithm::IntervalV0).unwrap();
        // Seed 0, round 0 lasts 100 steps.
        let tick = |step, value| Tick {
            step,
            value,
            round: 0,
            broken: false,
        };
        assert_eq!(interval_next_break(&params, &tick(10, 11)), Some(100));
        assert_eq!(interval_next_break(&params, &tick(99, 100)), Some(100));
        assert_eq!(
            interval_next_break(&params, &tick(u64::MAX - 3, 98)),
            Some(u64::MAX)
        );
        assert_eq!(interval_next_break(&params, &tick(u64::MAX - 2, 98)), None);
        let mut counter = Counter {
            params,
            current: Some(tick(u64::MAX - 2, 98)),
            next_break: None,
        };
        assert_eq!(counter.advance_to(u64::MAX), tick(u64::MAX, 100));
        let mut counter = Counter {
            params,
            current: Some(tick(u64::MAX - 3, 98)),
            next_break: Some(u64::MAX),
        };
        let at_max = counter.advance_to(u64::MAX);
        assert_eq!((at_max.step, at_max.value, at_max.round), (u64::MAX, 0, 1));
        assert!(at_max.broken);
    }
}
