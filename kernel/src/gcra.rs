//! One token bucket for every limiter that keeps its own state (the edge's per-client
//! buckets, a live room's per-socket message budget), as the generic cell rate algorithm:
//! the whole state of a bucket is one number, its theoretical arrival time (TAT), so it fits
//! in a map entry or a socket attachment and survives hibernation.
//!
//! A [`Rate`] of `burst` per `period_ms` lets `burst` requests through at once, then one every
//! `period_ms / burst`. The caller passes the time; nothing here reads a clock.

/// `burst` requests at once, refilled at `burst` per `period_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// Requests allowed at once (at least 1).
    pub burst: u32,
    /// Milliseconds to refill from empty to `burst` (at least 1).
    pub period_ms: u64,
}

/// A refusal: the next request can succeed in `retry_after_ms` (at least 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refused {
    /// Milliseconds until the next token.
    pub retry_after_ms: u64,
}

impl Rate {
    /// A rate (zeroes are raised to 1).
    pub const fn new(burst: u32, period_ms: u64) -> Rate {
        Rate {
            burst: if burst == 0 { 1 } else { burst },
            period_ms: if period_ms == 0 { 1 } else { period_ms },
        }
    }

    /// Milliseconds per token (at least 1).
    pub fn interval_ms(self) -> u64 {
        (self.period_ms / u64::from(self.burst)).max(1)
    }

    /// Spends one token of the bucket whose TAT is `tat` (0 for a new, full bucket) at
    /// `now_ms`: moves `tat` on and answers how many whole tokens are left, or leaves `tat`
    /// as it is and answers when to retry.
    pub fn spend(self, tat: &mut u64, now_ms: u64) -> Result<u32, Refused> {
        let interval = self.interval_ms();
        let window = interval * u64::from(self.burst - 1);
        let start = (*tat).max(now_ms);
        let ahead = start - now_ms;
        if ahead > window {
            return Err(Refused {
                retry_after_ms: (ahead - window).max(1),
            });
        }
        *tat = start + interval;
        let left = (window - ahead) / interval;
        Ok(u32::try_from(left).unwrap_or(u32::MAX))
    }

    /// Whether a bucket with this TAT is full again at `now_ms` (forgetting it changes
    /// nothing: a new bucket starts full).
    pub fn is_full(self, tat: u64, now_ms: u64) -> bool {
        tat <= now_ms
    }

    /// Whether a bucket with this TAT would refuse a request at `now_ms` (its client is under
    /// penalty: forgetting the bucket would hand it a full one).
    pub fn is_empty(self, tat: u64, now_ms: u64) -> bool {
        let window = self.interval_ms() * u64::from(self.burst - 1);
        tat.saturating_sub(now_ms) > window
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_means_the_next_request_is_refused() {
        let rate = Rate::new(3, 3_000);
        let mut tat = 0;
        for _ in 0..3 {
            assert!(!rate.is_empty(tat, 10_000));
            rate.spend(&mut tat, 10_000).unwrap();
        }
        assert!(rate.is_empty(tat, 10_000));
        assert!(rate.spend(&mut tat, 10_000).is_err());
        assert!(
            !rate.is_empty(tat, 11_000),
            "one token back after one interval"
        );
    }

    #[test]
    fn bursts_then_refills_one_per_interval() {
        let rate = Rate::new(3, 3_000);
        let mut tat = 0;
        assert_eq!(rate.spend(&mut tat, 10_000), Ok(2));
        assert_eq!(rate.spend(&mut tat, 10_000), Ok(1));
        assert_eq!(rate.spend(&mut tat, 10_000), Ok(0));
        assert_eq!(
            rate.spend(&mut tat, 10_000),
            Err(Refused {
                retry_after_ms: 1_000
            })
        );
        // A refusal does not cost a token.
        assert_eq!(
            rate.spend(&mut tat, 10_400),
            Err(Refused {
                retry_after_ms: 600
            })
        );
        assert_eq!(rate.spend(&mut tat, 11_000), Ok(0));
        assert!(!rate.is_full(tat, 11_000));
        assert!(rate.is_full(tat, 14_000));
        assert_eq!(rate.spend(&mut tat, 14_000), Ok(2));
    }

    #[test]
    fn zeroes_are_raised() {
        let rate = Rate::new(0, 0);
        assert_eq!(rate, Rate::new(1, 1));
        let mut tat = 0;
        assert_eq!(rate.spend(&mut tat, 5), Ok(0));
        assert!(rate.spend(&mut tat, 5).is_err());
        assert_eq!(rate.spend(&mut tat, 6), Ok(0));
    }

    #[test]
    fn a_clock_going_back_never_frees_tokens() {
        let rate = Rate::new(1, 1_000);
        let mut tat = 0;
        assert!(rate.spend(&mut tat, 5_000).is_ok());
        assert!(rate.spend(&mut tat, 4_000).is_err());
    }
}
