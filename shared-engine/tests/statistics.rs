//! `mix32-v1` must be statistically sound: for every seed the gaps between breaks follow
//! Geometric(1/break_every). The same checks run on `lcg32` must fail, which shows they have
//! the power to catch a bad generator.

use shared_engine::{Algorithm, is_break};

const BREAK_EVERY: u32 = 50;
const STEPS_PER_SEED: u64 = 60_000;

/// 300 seeds: small integers, a multiplicative spread, and bit-pattern edge cases.
fn seeds() -> Vec<u32> {
    let mut seeds: Vec<u32> = (0..100).collect();
    seeds.extend((1..=100u32).map(|i| i.wrapping_mul(0x9E37_79B9)));
    seeds.extend((0..32).map(|k| 1u32 << k));
    seeds.extend((0..32).map(|k| (1u32 << k).wrapping_sub(1) | 0x8000_0000));
    seeds.extend((0..36).map(|i| u32::MAX - i));
    assert_eq!(seeds.len(), 300);
    seeds
}

struct SeedStats {
    breaks: u64,
    /// Non-breaking steps between consecutive breaks.
    gaps: Vec<u64>,
    /// Longest run of steps without a break, including the run before the first one.
    longest_run: u64,
}

fn run(algorithm: Algorithm, seed: u32) -> SeedStats {
    let (mut breaks, mut gaps, mut run, mut longest_run) = (0, Vec::new(), 0u64, 0u64);
    let mut seen_break = false;
    for step in 0..STEPS_PER_SEED {
        if is_break(algorithm, seed, step, BREAK_EVERY) {
            if seen_break {
                gaps.push(run);
            }
            seen_break = true;
            breaks += 1;
            run = 0;
        } else {
            run += 1;
            longest_run = longest_run.max(run);
        }
    }
    SeedStats {
        breaks,
        gaps,
        longest_run,
    }
}

/// Bins `[edge_i, edge_{i+1})` of the gap length with roughly equal Geometric probability,
/// and each bin's exact probability.
fn geometric_bins(bins: usize) -> Vec<(u64, u64, f64)> {
    let q = 1.0 - 1.0 / f64::from(BREAK_EVERY);
    let survival = |g: u64| q.powf(g as f64);
    let mut edges = vec![0u64];
    for k in 1..bins {
        // Smallest g with P(G >= g) <= 1 - k/bins.
        let target = 1.0 - k as f64 / bins as f64;
        let g = (target.ln() / q.ln()).ceil() as u64;
        if g > *edges.last().unwrap() {
            edges.push(g);
        }
    }
    let mut out = Vec::new();
    for (i, &lo) in edges.iter().enumerate() {
        let (hi, p) = match edges.get(i + 1) {
            Some(&hi) => (hi, survival(lo) - survival(hi)),
            None => (u64::MAX, survival(lo)),
        };
        out.push((lo, hi, p));
    }
    out
}

fn chi_square(gaps: &[u64], bins: &[(u64, u64, f64)]) -> f64 {
    let n = gaps.len() as f64;
    bins.iter()
        .map(|&(lo, hi, p)| {
            let observed = gaps.iter().filter(|&&g| g >= lo && g < hi).count() as f64;
            let expected = n * p;
            (observed - expected).powi(2) / expected
        })
        .sum()
}

/// Chi-square critical values at alpha = 0.001 (df 9) and alpha = 0.01 (df 4).
const CRITICAL_DF9_P001: f64 = 27.877;
const CRITICAL_DF4_P01: f64 = 13.277;

struct Verdict {
    rate_error: f64,
    pooled_chi2: f64,
    seeds_failing: usize,
    longest_run: u64,
}

fn judge(algorithm: Algorithm) -> Verdict {
    let pooled_bins = geometric_bins(10);
    let seed_bins = geometric_bins(5);
    assert_eq!(pooled_bins.len(), 10);
    assert_eq!(seed_bins.len(), 5);
    let (mut breaks, mut all_gaps, mut seeds_failing, mut longest_run) = (0u64, Vec::new(), 0, 0);
    let seeds = seeds();
    for &seed in &seeds {
        let stats = run(algorithm, seed);
        breaks += stats.breaks;
        longest_run = longest_run.max(stats.longest_run);
        if stats.gaps.len() < 50 || chi_square(&stats.gaps, &seed_bins) > CRITICAL_DF4_P01 {
            seeds_failing += 1;
        }
        all_gaps.extend(stats.gaps);
    }
    let rate = breaks as f64 / (STEPS_PER_SEED as f64 * seeds.len() as f64);
    Verdict {
        rate_error: (rate * f64::from(BREAK_EVERY) - 1.0).abs(),
        pooled_chi2: chi_square(&all_gaps, &pooled_bins),
        seeds_failing,
        longest_run,
    }
}

#[test]
fn mix32_v1_gaps_are_geometric_for_every_seed() {
    let verdict = judge(Algorithm::Mix32V1);
    println!(
        "mix32-v1: rate error {:.4}, pooled chi2 {:.2} (critical {CRITICAL_DF9_P001}), seeds failing at 1%: {}/300, longest run {}",
        verdict.rate_error, verdict.pooled_chi2, verdict.seeds_failing, verdict.longest_run
    );
    assert!(
        verdict.rate_error < 0.05,
        "break rate off by {:.3}",
        verdict.rate_error
    );
    assert!(
        verdict.pooled_chi2 < CRITICAL_DF9_P001,
        "pooled chi2 {}",
        verdict.pooled_chi2
    );
    // At alpha = 0.01 about 3 of 300 honest seeds fail by chance; 12 or more would be a
    // p < 0.001 event for a sound generator.
    assert!(
        verdict.seeds_failing < 12,
        "{} seeds fail",
        verdict.seeds_failing
    );
    assert!(
        verdict.longest_run < 20_000,
        "a seed ran {} steps without a break",
        verdict.longest_run
    );
}

#[test]
fn lcg32_fails_the_same_checks() {
    let verdict = judge(Algorithm::Lcg32);
    println!(
        "lcg32: rate error {:.4}, pooled chi2 {:.2}, seeds failing: {}/300, longest run {}",
        verdict.rate_error, verdict.pooled_chi2, verdict.seeds_failing, verdict.longest_run
    );
    assert!(verdict.pooled_chi2 > CRITICAL_DF9_P001);
    assert!(verdict.seeds_failing > 100);
    assert!(verdict.longest_run >= 20_000);
}

#[test]
fn lcg32_only_breaks_when_seed_xor_step_is_odd() {
    // The document's LCG: an even `seed ^ step` gives an odd result (c is odd, a * even is
    // even), and an odd number is never divisible by 50.
    for seed in [0u32, 1, 2, 987_654_321] {
        for step in 0..10_000u64 {
            if (seed ^ step as u32).is_multiple_of(2) {
                assert!(!is_break(Algorithm::Lcg32, seed, step, 50));
            }
        }
    }
}
