//! Per-region circuit breaker (closed -> open -> half-open -> closed), so a dead region is skipped
//! at once instead of costing every request a timeout. Time is passed in (`now_ms`), which keeps
//! the state machine pure and testable; the Worker keeps one [`Breakers`] per isolate.

use std::collections::BTreeMap;

/// Breaker parameters (`BREAKER_FAILURE_THRESHOLD`, `BREAKER_COOLDOWN_MS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerConfig {
    /// Consecutive failures that open the circuit.
    pub failure_threshold: u32,
    /// How long an open circuit rejects calls before letting one probe through.
    pub cooldown_ms: u64,
}

/// Where a breaker is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    /// Calls flow.
    Closed {
        /// Consecutive failures so far.
        failures: u32,
    },
    /// Calls are skipped.
    Open {
        /// Until when (ms since the epoch).
        until_ms: u64,
    },
    /// One probe call is in flight; others are skipped until it reports.
    HalfOpen {
        /// When the probe went out (ms since the epoch).
        probe_started_ms: u64,
    },
}

/// The circuit breaker of one region.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Breaker {
    /// Its state.
    pub state: BreakerState,
}

impl Default for Breaker {
    fn default() -> Self {
        Self {
            state: BreakerState::Closed { failures: 0 },
        }
    }
}

impl Breaker {
    /// Whether a call may go out now. An open circuit whose cooldown has passed turns half-open
    /// and lets this one call through as the probe. A probe that never reported back (its request
    /// was cancelled) is given up after another cooldown, so the breaker cannot stick half-open.
    pub fn allow(&mut self, now_ms: u64, cfg: &BreakerConfig) -> bool {
        match self.state {
            BreakerState::Closed { .. } => true,
            BreakerState::Open { until_ms } if now_ms >= until_ms => {
                self.state = BreakerState::HalfOpen {
                    probe_started_ms: now_ms,
                };
                true
            }
            BreakerState::Open { .. } => false,
            BreakerState::HalfOpen { probe_started_ms }
                if now_ms >= probe_started_ms.saturating_add(cfg.cooldown_ms) =>
            {
                self.state = BreakerState::HalfOpen {
                    probe_started_ms: now_ms,
                };
                true
            }
            BreakerState::HalfOpen { .. } => false,
        }
    }

    /// A call succeeded (any answer that is not a 5xx): the circuit closes.
    pub fn on_success(&mut self) {
        self.state = BreakerState::Closed { failures: 0 };
    }

    /// A call failed (connect error, timeout, 5xx): counts towards opening, or re-opens.
    pub fn on_failure(&mut self, now_ms: u64, cfg: &BreakerConfig) {
        let open = BreakerState::Open {
            until_ms: now_ms.saturating_add(cfg.cooldown_ms),
        };
        self.state = match self.state {
            BreakerState::Closed { failures } => {
                let failures = failures.saturating_add(1);
                if failures >= cfg.failure_threshold {
                    open
                } else {
                    BreakerState::Closed { failures }
                }
            }
            // A failed probe (or a late failure report) re-opens for a full cooldown.
            BreakerState::HalfOpen { .. } | BreakerState::Open { .. } => open,
        };
    }

    /// `closed`, `open` or `half-open` as seen at `now_ms` (an open circuit past its cooldown
    /// reports half-open: the next call will probe).
    pub fn state_name(&self, now_ms: u64) -> &'static str {
        match self.state {
            BreakerState::Closed { .. } => "closed",
            BreakerState::Open { until_ms } if now_ms < until_ms => "open",
            BreakerState::Open { .. } | BreakerState::HalfOpen { .. } => "half-open",
        }
    }
}

/// The breakers of all regions, created closed on first use.
#[derive(Debug, Default, Clone)]
pub struct Breakers {
    by_region: BTreeMap<String, Breaker>,
}

impl Breakers {
    /// [`Breaker::allow`] for `region`.
    pub fn allow(&mut self, region: &str, now_ms: u64, cfg: &BreakerConfig) -> bool {
        self.entry(region).allow(now_ms, cfg)
    }

    /// [`Breaker::on_success`] for `region`.
    pub fn on_success(&mut self, region: &str) {
        self.entry(region).on_success();
    }

    /// [`Breaker::on_failure`] for `region`.
    pub fn on_failure(&mut self, region: &str, now_ms: u64, cfg: &BreakerConfig) {
        self.entry(region).on_failure(now_ms, cfg);
    }

    /// The breaker of `region` (closed if never used).
    pub fn get(&self, region: &str) -> Breaker {
        self.by_region.get(region).copied().unwrap_or_default()
    }

    fn entry(&mut self, region: &str) -> &mut Breaker {
        self.by_region.entry(region.to_string()).or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CFG: BreakerConfig = BreakerConfig {
        failure_threshold: 3,
        cooldown_ms: 1_000,
    };

    #[test]
    fn opens_after_threshold_consecutive_failures() {
        let mut b = Breaker::default();
        assert!(b.allow(0, &CFG));
        b.on_failure(0, &CFG);
        b.on_failure(1, &CFG);
        assert_eq!(b.state, BreakerState::Closed { failures: 2 });
        assert!(b.allow(2, &CFG));
        b.on_failure(2, &CFG);
        assert_eq!(b.state, BreakerState::Open { until_ms: 1_002 });
        assert_eq!(b.state_name(3), "open");
        assert!(!b.allow(500, &CFG));
        assert!(!b.allow(1_001, &CFG));
    }

    #[test]
    fn a_success_resets_the_failure_count() {
        let mut b = Breaker::default();
        b.on_failure(0, &CFG);
        b.on_failure(0, &CFG);
        b.on_success();
        b.on_failure(0, &CFG);
        b.on_failure(0, &CFG);
        assert_eq!(b.state_name(0), "closed");
    }

    #[test]
    fn half_open_allows_exactly_one_probe() {
        let mut b = Breaker {
            state: BreakerState::Open { until_ms: 1_000 },
        };
        assert_eq!(b.state_name(1_000), "half-open");
        assert!(b.allow(1_000, &CFG), "first call after cooldown probes");
        assert_eq!(
            b.state,
            BreakerState::HalfOpen {
                probe_started_ms: 1_000
            }
        );
        assert!(!b.allow(1_001, &CFG), "second concurrent call is skipped");
        assert!(!b.allow(1_999, &CFG));
    }

    #[test]
    fn probe_success_closes_probe_failure_reopens() {
        let mut b = Breaker {
            state: BreakerState::HalfOpen {
                probe_started_ms: 5,
            },
        };
        b.on_success();
        assert_eq!(b.state, BreakerState::Closed { failures: 0 });

        let mut b = Breaker {
            state: BreakerState::HalfOpen {
                probe_started_ms: 5,
            },
        };
        b.on_failure(10, &CFG);
        assert_eq!(b.state, BreakerState::Open { until_ms: 1_010 });
    }

    #[test]
    fn a_lost_probe_is_replaced_after_a_cooldown() {
        let mut b = Breaker {
            state: BreakerState::HalfOpen {
                probe_started_ms: 0,
            },
        };
        assert!(!b.allow(999, &CFG));
        assert!(b.allow(1_000, &CFG));
        assert_eq!(
            b.state,
            BreakerState::HalfOpen {
                probe_started_ms: 1_000
            }
        );
    }

    #[test]
    fn threshold_one_opens_on_first_failure() {
        let cfg = BreakerConfig {
            failure_threshold: 1,
            cooldown_ms: 10,
        };
        let mut b = Breaker::default();
        b.on_failure(0, &cfg);
        assert!(!b.allow(9, &cfg));
        assert!(b.allow(10, &cfg));
    }

    #[test]
    fn breakers_are_per_region() {
        let mut all = Breakers::default();
        for _ in 0..3 {
            all.on_failure("eu", 0, &CFG);
        }
        assert!(!all.allow("eu", 1, &CFG));
        assert!(all.allow("us", 1, &CFG));
        assert_eq!(all.get("eu").state_name(1), "open");
        assert_eq!(all.get("asia").state_name(1), "closed");
        all.on_success("eu");
        assert!(all.allow("eu", 2, &CFG));
    }
}
