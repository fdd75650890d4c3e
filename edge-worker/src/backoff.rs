//! Exponential backoff between attempts of one request (capped, with "equal jitter" so many
//! clients failing over at once do not retry in lockstep).

/// Backoff parameters (`RETRY_BACKOFF_BASE_MS`, `RETRY_BACKOFF_MAX_MS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Ceiling of the first retry's delay.
    pub base_ms: u64,
    /// Largest ceiling, however many retries.
    pub max_ms: u64,
}

impl Backoff {
    /// The ceiling for retry number `retry` (1 = the first retry): `base * 2^(retry-1)`, capped
    /// at `max`. No delay before the first attempt (`retry` 0).
    pub fn ceiling_ms(&self, retry: u32) -> u64 {
        if retry == 0 {
            return 0;
        }
        let factor = 1u64.checked_shl(retry - 1).unwrap_or(u64::MAX);
        self.base_ms.saturating_mul(factor).min(self.max_ms)
    }

    /// The delay actually waited: half the ceiling plus a random share of the other half.
    /// `random` is any uniformly random `u32`.
    pub fn delay_ms(&self, retry: u32, random: u32) -> u64 {
        let ceiling = self.ceiling_ms(retry);
        let half = ceiling / 2;
        let spread = ceiling - half;
        half + (u64::from(random) * spread) / u64::from(u32::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const B: Backoff = Backoff {
        base_ms: 50,
        max_ms: 400,
    };

    #[test]
    fn doubles_then_caps() {
        let got: Vec<u64> = (0..7).map(|r| B.ceiling_ms(r)).collect();
        assert_eq!(got, [0, 50, 100, 200, 400, 400, 400]);
        assert_eq!(B.ceiling_ms(200), 400, "no overflow on huge retry counts");
    }

    #[test]
    fn jitter_stays_within_half_and_full_ceiling() {
        assert_eq!(B.delay_ms(0, u32::MAX), 0);
        assert_eq!(B.delay_ms(2, 0), 50);
        assert_eq!(B.delay_ms(2, u32::MAX), 100);
        let mid = B.delay_ms(3, u32::MAX / 2);
        assert!((149..=151).contains(&mid), "{mid}");
    }

    #[test]
    fn zero_base_means_no_waiting() {
        let b = Backoff {
            base_ms: 0,
            max_ms: 0,
        };
        assert_eq!(b.delay_ms(5, 12345), 0);
    }
}
