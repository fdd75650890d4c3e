//! Break-decision algorithms: which steps of a game reset its counter.
//!
//! `mix32-v1` and `lcg32` are pure functions of `(seed, step, break_every)` built from 32-bit
//! integer operations only, so ports to JavaScript (`Math.imul`, `>>>`) or C# are exact.
//! `interval-v0` draws the length of each round from a 64-bit xorshift of `(seed, round)`, so
//! whether a step breaks depends on the rounds before it; it is computed round by round.

use core::fmt;

use crate::{Params, Tick};

/// How a game decides, at each step, whether its counter breaks.
///
/// With the `serde` feature it serializes as its wire name ([`Algorithm::as_str`]), and
/// deserializing an unknown name fails with a message that lists the valid ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Algorithm {
    /// `mix32-v1`, the default: a keyed counter-based hash with exact `1/break_every` odds.
    #[default]
    Mix32V1,
    /// `lcg32`: the architecture document's LCG, kept bit-exact for clients written from it.
    ///
    /// Statistically broken (only odd `seed ^ step` can break, and breaks come in bands); never
    /// use it for new games.
    Lcg32,
    /// `interval-v0`: the session service's interval game, kept bit-exact for its clients.
    ///
    /// Round `r` (the number of breaks so far) lasts [`interval_v0_interval`]`(seed, r)` steps,
    /// between 100 and 300, and then one breaking step; `break_every` is ignored. See
    /// [`interval_v0_tick`] for the full definition.
    IntervalV0,
}

/// An algorithm name that this engine does not know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnknownAlgorithm;

/// Writes `unknown algorithm: expected "mix32-v1", "lcg32" or "interval-v0"` (every name in
/// [`Algorithm::ALL`]).
///
/// ```
/// assert_eq!(
///     shared_engine::UnknownAlgorithm.to_string(),
///     r#"unknown algorithm: expected "mix32-v1", "lcg32" or "interval-v0""#
/// );
/// ```
impl fmt::Display for UnknownAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("unknown algorithm: expected ")?;
        write_names(f, " or ")
    }
}

/// Writes every wire name, quoted: `"a", "b" or "c"` (`last` joins the final two).
pub(crate) fn write_names(f: &mut dyn fmt::Write, last: &str) -> fmt::Result {
    let count = Algorithm::ALL.len();
    for (i, algorithm) in Algorithm::ALL.into_iter().enumerate() {
        if i > 0 {
            f.write_str(if i + 1 == count { last } else { ", " })?;
        }
        write!(f, "\"{}\"", algorithm.as_str())?;
    }
    Ok(())
}

impl Algorithm {
    /// Every algorithm, default first.
    pub const ALL: [Algorithm; 3] = [Algorithm::Mix32V1, Algorithm::Lcg32, Algorithm::IntervalV0];

    /// The stable wire name (`"mix32-v1"`, `"lcg32"` or `"interval-v0"`), stored with every
    /// session.
    pub const fn as_str(self) -> &'static str {
        match self {
            Algorithm::Mix32V1 => "mix32-v1",
            Algorithm::Lcg32 => "lcg32",
            Algorithm::IntervalV0 => "interval-v0",
        }
    }

    /// Parses a wire name.
    ///
    /// ```
    /// use shared_engine::Algorithm;
    /// assert_eq!(Algorithm::parse("lcg32"), Ok(Algorithm::Lcg32));
    /// assert_eq!(Algorithm::parse("interval-v0"), Ok(Algorithm::IntervalV0));
    /// assert!(Algorithm::parse("mix32").is_err());
    /// ```
    pub fn parse(name: &str) -> Result<Algorithm, UnknownAlgorithm> {
        Algorithm::ALL
            .into_iter()
            .find(|algorithm| algorithm.as_str() == name)
            .ok_or(UnknownAlgorithm)
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether step `step` of a game with this seed breaks.
///
/// O(1) for `mix32-v1` and `lcg32`; O(rounds before `step`) for `interval-v0`, whose breaks
/// depend on the rounds before them (a [`crate::Counter`] follows it in O(1) per step).
///
/// ```
/// use shared_engine::{Algorithm, is_break};
/// // Golden values, also in vectors/golden.json.
/// assert!(!is_break(Algorithm::Mix32V1, 42, 0, 50));
/// assert!(is_break(Algorithm::Lcg32, 1, 0, 2) == (shared_engine::lcg32(1, 0) % 2 == 0));
/// assert!(is_break(Algorithm::IntervalV0, 0, 100, 50));
/// ```
pub fn is_break(algorithm: Algorithm, seed: u32, step: u64, break_every: u32) -> bool {
    match algorithm {
        Algorithm::Mix32V1 => {
            Mix32Key::new(seed, (step >> 32) as u32).is_break(step as u32, &Odds::new(break_every))
        }
        Algorithm::Lcg32 => lcg32(seed, step).is_multiple_of(break_every.max(1)),
        Algorithm::IntervalV0 => count_interval(u64::from(seed), step).1 == Some(step),
    }
}

/// The document's LCG: `(1664525 * ((seed ^ step) >>> 0) + 1013904223) mod 2^32`.
///
/// JavaScript's `^` takes both operands modulo 2^32, so only the low 32 bits of `step` count.
///
/// ```
/// assert_eq!(shared_engine::lcg32(0, 0), 1_013_904_223);
/// assert_eq!(shared_engine::lcg32(1, 0), 1_015_568_748);
/// ```
pub const fn lcg32(seed: u32, step: u64) -> u32 {
    1_664_525u32
        .wrapping_mul(seed ^ step as u32)
        .wrapping_add(1_013_904_223)
}

/// The `xorshift64` step of `interval-v0`: `x ^= x << 13; x ^= x >> 7; x ^= x << 17` on u64
/// (bits shifted out are dropped).
const fn xorshift64(mut x: u64) -> u64 {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    x
}

/// The length of round `round` of an `interval-v0` game: `100 + xorshift64(seed ^ round) % 201`
/// non-breaking steps, so between 100 and 300.
///
/// `seed` is the full 64-bit seed: an `int64` seed of another implementation is passed as its
/// two's complement bits (`seed as u64`); this engine's `u32` seeds are zero-extended.
///
/// ```
/// use shared_engine::interval_v0_interval;
/// // xorshift64(0) = 0, and xorshift64(1) = 1_082_269_761 = 201 * 5_384_426 + 135.
/// assert_eq!(interval_v0_interval(0, 0), 100);
/// assert_eq!(interval_v0_interval(0, 1), 235);
/// assert_eq!(interval_v0_interval(1, 0), 235);
/// assert_eq!(interval_v0_interval(-1i64 as u64, 0), 139);
/// ```
pub const fn interval_v0_interval(seed: u64, round: u64) -> u64 {
    100 + xorshift64(seed ^ round) % 201
}

/// The tick at `step` of an `interval-v0` game with the full 64-bit `seed` (see
/// [`interval_v0_interval`]); [`crate::tick_at`] computes the same for a `u32` seed.
///
/// Definition: rounds are numbered `r = 0, 1, 2, ...` (`r` is the number of breaks so far).
/// The value is 1 at step 0 and grows by one each step; once round `r` has had
/// `interval(r) = interval_v0_interval(seed, r)` non-breaking steps, the next step breaks:
/// value 0, round `r + 1`. So the first break is at step `interval(0)`, the next one
/// `interval(1) + 1` steps later, and so on. `break_every` plays no part.
///
/// Costs O(rounds), at least 101 steps each: about 4,300 rounds for a day of 100 ms ticks.
///
/// ```
/// use shared_engine::{Tick, interval_v0_tick};
/// // Seed 0: round 0 lasts 100 steps, round 1 lasts 235 (golden values).
/// assert_eq!(interval_v0_tick(0, 99), Tick { step: 99, value: 100, round: 0, broken: false });
/// assert_eq!(interval_v0_tick(0, 100), Tick { step: 100, value: 0, round: 1, broken: true });
/// assert_eq!(interval_v0_tick(0, 336), Tick { step: 336, value: 0, round: 2, broken: true });
/// assert_eq!(interval_v0_tick(42, 864_000), Tick { step: 864_000, value: 104, round: 4_302, broken: false });
/// ```
pub fn interval_v0_tick(seed: u64, step: u64) -> Tick {
    let (round, last_break) = count_interval(seed, step);
    Tick::from_breaks(step, round, last_break)
}

/// Counts the `interval-v0` breaks in `[0, step]` and finds the last one, round by round.
fn count_interval(seed: u64, step: u64) -> (u64, Option<u64>) {
    const BLOCK: u64 = 32;
    // `start` is the first step of round `round`, whose break is at `start + interval(round)`.
    let (mut round, mut start, mut last_break) = (0u64, 0u64, None);
    // Whole blocks of rounds first, while all their breaks are at or before `step`. The steps
    // of a block's rounds (breaks included) are summed with no branch, so that the compiler
    // keeps many rounds in flight and vectorizes where the target allows.
    loop {
        // `round` is a multiple of BLOCK here, so `round + offset` is `round ^ offset`.
        let base = seed ^ round;
        let mut span = 0u64;
        for offset in 0..BLOCK {
            span += 101 + mod_201(xorshift64(base ^ offset));
        }
        // The block's last break is at `start + span - 1` (span >= 32 * 101).
        match step.checked_sub(start) {
            Some(left) if span - 1 <= left => {
                let at = start + (span - 1);
                last_break = Some(at);
                round += BLOCK;
                match at.checked_add(1) {
                    Some(next) => start = next,
                    None => return (round, last_break),
                }
            }
            _ => break,
        }
    }
    // Then round by round (fewer than BLOCK rounds).
    while let Some(left) = step.checked_sub(start) {
        let interval = interval_v0_interval(seed, round);
        if interval > left {
            break;
        }
        let at = start + interval;
        last_break = Some(at);
        round += 1;
        match at.checked_add(1) {
            Some(next) => start = next,
            None => break,
        }
    }
    (round, last_break)
}

/// `x % 201`, from 32-bit pieces (`2^32 = 100 (mod 201)`) so that it vectorizes, which a 64-bit
/// division does not. Equal to `x % 201` for every `x` (see the unit tests).
#[inline(always)]
const fn mod_201(x: u64) -> u64 {
    const LOW: u64 = 0xFFFF_FFFF;
    let x = (x >> 32) * 100 + (x & LOW); // < 101 * 2^32
    let x = (x >> 32) * 100 + (x & LOW); // < 2^32 + 100 * 100
    let x = (x >> 32) * 100 + (x & LOW); // < 2^32: if the high word is 1, the low one is < 10,100
    (x as u32 % 201) as u64
}

/// The raw 32-bit `mix32-v1` hash of `(seed, step)` (before the odds are applied).
///
/// Specification, with all arithmetic modulo 2^32 (`lo`/`hi` are the low/high words of `step`):
/// ```text
/// fmix(x)  = x ^= x >> 16; x *= 0x85EBCA6B; x ^= x >> 13; x *= 0xC2B2AE35; x ^= x >> 16
/// k1       = fmix(seed ^ 0x9E3779B9 ^ fmix(hi ^ 0x7F4A7C15))
/// k2       = fmix(k1 ^ 0x632BE5AB)
/// round(x) = x ^= k1; x ^= x >> 16; x *= 0x7FEB352D; x ^= x >> 15; x ^= k2;
///            x *= 0x846CA68B; x ^= x >> 16
/// hash     = round(lo)
/// ```
/// Injecting the second key between the two multiplies keeps the sequences of different
/// seeds from being shifts or permutations of one another.
///
/// ```
/// // Golden value, also in vectors/golden.json.
/// assert_eq!(shared_engine::mix32_v1(0, 0), 2_889_678_007);
/// assert_ne!(shared_engine::mix32_v1(0, 0), shared_engine::mix32_v1(1, 0));
/// ```
pub fn mix32_v1(seed: u32, step: u64) -> u32 {
    Mix32Key::new(seed, (step >> 32) as u32).hash(step as u32)
}

const fn fmix(mut x: u32) -> u32 {
    x ^= x >> 16;
    x = x.wrapping_mul(0x85EB_CA6B);
    x ^= x >> 13;
    x = x.wrapping_mul(0xC2B2_AE35);
    x ^= x >> 16;
    x
}

/// The per-(seed, high word of step) keys of `mix32-v1`.
#[derive(Debug, Clone, Copy)]
struct Mix32Key {
    k1: u32,
    k2: u32,
}

impl Mix32Key {
    const fn new(seed: u32, hi: u32) -> Mix32Key {
        let k1 = fmix(seed ^ 0x9E37_79B9 ^ fmix(hi ^ 0x7F4A_7C15));
        Mix32Key {
            k1,
            k2: fmix(k1 ^ 0x632B_E5AB),
        }
    }

    #[inline(always)]
    const fn hash(&self, lo: u32) -> u32 {
        let mut x = lo ^ self.k1;
        x ^= x >> 16;
        x = x.wrapping_mul(0x7FEB_352D);
        x ^= x >> 15;
        x ^= self.k2;
        x = x.wrapping_mul(0x846C_A68B);
        x ^= x >> 16;
        x
    }

    /// Applies the odds to `hash(lo)`, redrawing in the rare case the hash falls in the
    /// remainder zone that would bias the odds.
    #[inline(always)]
    fn is_break(&self, lo: u32, odds: &Odds) -> bool {
        let hash = self.hash(lo);
        if hash <= odds.accept_up_to {
            hash < odds.break_below
        } else {
            self.redraw(hash, odds)
        }
    }

    #[cold]
    fn redraw(&self, mut hash: u32, odds: &Odds) -> bool {
        // Each redraw lands in the remainder zone with probability < break_every / 2^32, so 16
        // redraws fail together with probability < 2^-400; the final fallback is unreachable in
        // practice and only keeps the function total.
        for attempt in 1..=16u32 {
            hash = fmix(hash ^ self.k2 ^ attempt.wrapping_mul(0x9E37_79B9));
            if hash <= odds.accept_up_to {
                return hash < odds.break_below;
            }
        }
        hash < odds.break_below
    }
}

/// `break_every` turned into integer thresholds with exact odds.
///
/// Of the `break_every * floor(2^32 / break_every)` accepted hash values (`0..=accept_up_to`),
/// exactly `break_below = floor(2^32 / break_every)` break, so the odds are exactly
/// `1 / break_every`; hashes above `accept_up_to` are redrawn.
#[derive(Debug, Clone, Copy)]
struct Odds {
    break_below: u32,
    /// Inclusive, so that it fits in a u32 even when every hash is accepted (powers of two).
    accept_up_to: u32,
}

impl Odds {
    fn new(break_every: u32) -> Odds {
        let break_every = u64::from(break_every.max(2));
        let per_outcome = (1u64 << 32) / break_every;
        Odds {
            break_below: per_outcome as u32,
            // 1 <= break_every * floor(2^32 / break_every) <= 2^32.
            accept_up_to: (break_every * per_outcome - 1) as u32,
        }
    }
}

/// Counts the breaks in `[0, step]` and finds the last one.
pub(crate) fn count_breaks(params: &Params, step: u64) -> (u64, Option<u64>) {
    match params.algorithm() {
        Algorithm::Mix32V1 => count_mix32(params.seed(), params.break_every(), step),
        Algorithm::Lcg32 => {
            let (mut round, mut last) = (0, None);
            for s in 0..=step {
                if lcg32(params.seed(), s).is_multiple_of(params.break_every()) {
                    round += 1;
                    last = Some(s);
                }
            }
            (round, last)
        }
        Algorithm::IntervalV0 => count_interval(u64::from(params.seed()), step),
    }
}

/// The hot loop behind [`crate::state_at`]: hashes are computed in blocks of fixed size with
/// no data-dependent branch, which lets the compiler keep several hashes in flight (and
/// vectorize where the target allows); a block that needs a redraw is redone exactly.
fn count_mix32(seed: u32, break_every: u32, last_step: u64) -> (u64, Option<u64>) {
    const BLOCK: u64 = 64;
    let odds = Odds::new(break_every);
    let mut round = 0u64;
    let mut last_break = None;
    let mut block_start = 0u64;
    loop {
        let block_end = last_step.min(block_start.saturating_add(BLOCK - 1));
        let key = Mix32Key::new(seed, (block_start >> 32) as u32);
        let same_hi = (block_start >> 32) == (block_end >> 32);
        let len = (block_end - block_start + 1) as u32;
        if same_hi {
            let lo0 = block_start as u32;
            let scan = if len == BLOCK as u32 {
                scan_block(&key, lo0, BLOCK as u32, &odds)
            } else {
                scan_block(&key, lo0, len, &odds)
            };
            if !scan.needs_redraw {
                round += u64::from(scan.breaks);
                if scan.last_plus_one > 0 {
                    last_break = Some(block_start + u64::from(scan.last_plus_one - 1));
                }
            } else {
                for offset in 0..len {
                    if key.is_break(lo0.wrapping_add(offset), &odds) {
                        round += 1;
                        last_break = Some(block_start + u64::from(offset));
                    }
                }
            }
        } else {
            // A block that straddles a 2^32-step boundary: go step by step (happens at most
            // once per 2^32 steps).
            for s in block_start..=block_end {
                if is_break(Algorithm::Mix32V1, seed, s, break_every) {
                    round += 1;
                    last_break = Some(s);
                }
            }
        }
        if block_end == last_step {
            return (round, last_break);
        }
        block_start = block_end + 1;
    }
}

/// What one block of hashes says before any redraw.
#[derive(Debug, Clone, Copy)]
struct BlockScan {
    breaks: u32,
    /// 1 + offset of the last break in the block, 0 if none.
    last_plus_one: u32,
    /// Some hash fell in the redraw zone: the block must be redone step by step.
    needs_redraw: bool,
}

/// Scans `len` consecutive steps. Written as pure reductions (sum, max, or) with no branch, so
/// the compiler vectorizes it; inlined into its caller, whose full blocks pass the constant 64.
#[inline(always)]
fn scan_block(key: &Mix32Key, lo0: u32, len: u32, odds: &Odds) -> BlockScan {
    let (mut breaks, mut last_plus_one, mut redraw) = (0u32, 0u32, 0u32);
    for offset in 0..len {
        let hash = key.hash(lo0.wrapping_add(offset));
        let broke = u32::from(hash < odds.break_below);
        breaks += broke;
        last_plus_one = last_plus_one.max(broke * (offset + 1));
        redraw |= u32::from(hash > odds.accept_up_to);
    }
    BlockScan {
        breaks,
        last_plus_one,
        needs_redraw: redraw != 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn odds_are_exact_for_small_break_every() {
        for break_every in [2u32, 3, 7, 50, 64, 1000, 3_000_000_000, u32::MAX] {
            let odds = Odds::new(break_every);
            let accepted = u64::from(odds.accept_up_to) + 1;
            assert_eq!(accepted % u64::from(break_every), 0);
            assert_eq!(
                accepted / u64::from(break_every),
                u64::from(odds.break_below)
            );
        }
    }

    #[test]
    fn power_of_two_odds_never_redraw() {
        let odds = Odds::new(2);
        assert_eq!(odds.break_below, 1 << 31);
        assert_eq!(odds.accept_up_to, u32::MAX);
    }

    #[test]
    fn block_counting_matches_step_by_step() {
        // 3e9 puts 30% of hashes in the redraw zone, so blocks with redraws are exercised.
        for (seed, break_every) in [
            (1u32, 2u32),
            (99, 5),
            (123_456, 50),
            (u32::MAX, 1000),
            (8, 3_000_000_000),
        ] {
            let mut round = 0;
            let mut last = None;
            for s in 0..=1_000u64 {
                if is_break(Algorithm::Mix32V1, seed, s, break_every) {
                    round += 1;
                    last = Some(s);
                }
                assert_eq!(
                    count_mix32(seed, break_every, s),
                    (round, last),
                    "seed {seed} step {s}"
                );
            }
        }
    }

    #[test]
    fn mod_201_is_the_remainder() {
        let mut x = 0x0123_4567_89AB_CDEFu64;
        for _ in 0..1_000_000 {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            assert_eq!(mod_201(x), x % 201, "{x}");
            assert_eq!(mod_201(x >> 20), (x >> 20) % 201, "{x}");
        }
        // The edges of each fold: the largest values of each 32-bit piece.
        for hi in [0u64, 1, 100, 200, 201, 0xFFFF_FFFE, 0xFFFF_FFFF] {
            for lo in [
                0u64,
                1,
                200,
                10_099,
                10_100,
                0xFFFF_D8F0,
                0xFFFF_FFFE,
                0xFFFF_FFFF,
            ] {
                let x = (hi << 32) | lo;
                assert_eq!(mod_201(x), x % 201, "{x}");
            }
        }
    }

    #[test]
    fn interval_counting_matches_step_by_step() {
        for seed in [0u64, 1, 42, u64::from(u32::MAX), u64::MAX, 1 << 63] {
            // Step by step, straight from the definition; compared around the first breaks,
            // around the first block boundaries (32 rounds are about 6,500 steps), and far.
            let (mut round, mut run, mut last_break) = (0, 0, None);
            for step in 0..=1_000_000u64 {
                if run == interval_v0_interval(seed, round) {
                    round += 1;
                    run = 0;
                    last_break = Some(step);
                } else {
                    run += 1;
                }
                if step < 700 || (5_000..20_000).contains(&step) || step % 9_973 == 0 {
                    assert_eq!(
                        count_interval(seed, step),
                        (round, last_break),
                        "seed {seed} step {step}"
                    );
                }
            }
        }
    }

    #[test]
    fn interval_first_breaks_by_hand() {
        // Seed 0: xorshift64(0) = 0, so round 0 lasts 100 steps and breaks at step 100;
        // xorshift64(1) = 1_082_269_761 = 201 * 5_384_426 + 135, so round 1 lasts 235 steps
        // and breaks at 100 + 1 + 235 = 336. Seed 1 swaps those two rounds (1 ^ 0 = 1, 1 ^ 1 =
        // 0): breaks at 235 and 336.
        assert_eq!(xorshift64(1), 1_082_269_761);
        for (seed, first, second) in [(0u32, 100u64, 336u64), (1, 235, 336)] {
            for step in 0..=second {
                let expected = step == first || step == second;
                assert_eq!(
                    is_break(Algorithm::IntervalV0, seed, step, 50),
                    expected,
                    "seed {seed} step {step}"
                );
            }
            assert_eq!(count_interval(u64::from(seed), second), (2, Some(second)));
            assert_eq!(count_interval(u64::from(seed), first - 1), (0, None));
        }
    }

    #[test]
    fn block_counting_crosses_the_high_word() {
        let start = (1u64 << 32) - 100;
        let seed = 5;
        let mut expected = 0;
        for s in start..start + 200 {
            expected += u64::from(is_break(Algorithm::Mix32V1, seed, s, 2));
        }
        // count over [start, start + 200) = count(..=start+199) - count(..=start-1), but the
        // full prefix is too long for a unit test, so check the straddling block directly.
        let mut counted = 0;
        for s in start..start + 200 {
            counted +=
                u64::from(Mix32Key::new(seed, (s >> 32) as u32).is_break(s as u32, &Odds::new(2)));
        }
        assert_eq!(expected, counted);
    }
}
