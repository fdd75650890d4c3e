//! Percentiles, one definition for every figure the workspace prints or reports (the origin's
//! heartbeat load, the events tail, benchmarks and tests): nearest rank, so a percentile is
//! always a value that was observed.

/// The `percent` percentile (nearest rank: the value at rank `ceil(len * percent / 100)`, at
/// least 1) of `sorted`, which must be in ascending order; `None` without samples.
///
/// ```
/// let sorted = [10, 20, 30, 40];
/// assert_eq!(kernel::stats::nearest_rank(&sorted, 50), Some(20));
/// assert_eq!(kernel::stats::nearest_rank(&sorted, 99), Some(40));
/// assert_eq!(kernel::stats::nearest_rank(&sorted, 0), Some(10));
/// assert_eq!(kernel::stats::nearest_rank::<u32>(&[], 99), None);
/// ```
pub fn nearest_rank<T: Copy>(sorted: &[T], percent: u32) -> Option<T> {
    if sorted.is_empty() {
        return None;
    }
    let percent = percent.min(100) as usize;
    let rank = (sorted.len() * percent).div_ceil(100).max(1);
    Some(sorted[rank - 1])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_of_a_hundred_samples() {
        let sorted: Vec<u32> = (1..=100).collect();
        assert_eq!(nearest_rank(&sorted, 50), Some(50));
        assert_eq!(nearest_rank(&sorted, 99), Some(99));
        assert_eq!(nearest_rank(&sorted, 100), Some(100));
        assert_eq!(nearest_rank(&sorted, 250), Some(100), "clamped");
        assert_eq!(nearest_rank(&[7], 99), Some(7));
    }
}
