//! `sealed-v1`: games whose breaks no client can compute ahead, and every one of which is
//! provable afterwards.
//!
//! The other algorithms give every client the seed, so any client can run the engine ahead of
//! the clock. A sealed game instead draws a secret 32-byte **root** and builds a SHA-256 hash
//! chain from it; only the chain's head, the **commitment**, is published at start:
//!
//! ```text
//! k_N = root,   k_(r-1) = H(k_r)   for r = N, ..., 1,   commitment = k_0 = H(k_1)
//! ```
//!
//! Round `r` (1-based) is governed by key `k_r`, which is revealed only once the round has
//! broken. Revealed in order, each key checks against the one before it (`H(k_r) == k_(r-1)`,
//! the first against the commitment), and nobody can compute `k_r` from `k_(r-1)` (a SHA-256
//! preimage), so the next round's length is unpredictable until its key is out.
//!
//! ## Rounds (normative)
//! - `m = ceil(MIN_ROUND_MS / tick_ms)` steps is the shortest round ([`min_round_steps`]);
//!   `break_every` (the mean round length, in steps) must be at least `2 m`.
//! - The chain has `N = ceil(ceil(LIFETIME_MS / tick_ms) / m)` rounds ([`chain_rounds`]); since
//!   every round lasts at least `m` steps, the N rounds cover a game of [`LIFETIME_MS`].
//! - Round `r` lasts `L_r = m + G(k_r)` steps, the last of which breaks, where `G` is a
//!   geometric variable on `{0, 1, ...}` with `P(G >= g) ~= q^g`, `q = (n - 1) / n`,
//!   `n = break_every - m + 1`, so `E[L_r] = break_every`. `G` is computed with integers only:
//!   ```text
//!   U    = the first 8 bytes of k_r, big-endian (uniform on 0..2^64)
//!   P[0] = floor(2^64 * (n - 1) / n),  P[i + 1] = floor(P[i]^2 / 2^64)   (P[i] ~= q^(2^i) * 2^64)
//!   acc  = 2^64, G = 0
//!   for i = 39 down to 0: c = floor(acc * P[i] / 2^64); if c > U { acc = c; G += 2^i }
//!   ```
//!   (`acc <= 2^64` and `P[i] < 2^64`, so every product fits in 128 bits.)
//! - The break of round `r` is at step `B_r = L_1 + ... + L_r - 1`. Ticks follow the same
//!   semantics as every algorithm ([`crate::Tick`]): value 0 at a break, `round` counts breaks.
//! - A key is revealed at `reveal_at_ms(r) = start_at_ms + B_r * tick_ms + 1` ([`reveal_at_ms`]):
//!   one millisecond after the break step begins, the first instant at which an exit is judged
//!   broken (an exit at `t` freezes the game at the last step that began before `t`). So no
//!   exit can be judged before the break by a player who has seen the key.
//!
//! Cost: the origin derives `k_r` from the root with `N - r` hashes (at most about 86,400, some
//! 20 ms); [`descend`] from a checkpoint (the origin keeps one every few hundred keys) makes it
//! a few hundred. Verifying a whole game costs `N` hashes plus one draw per round.
//!
//! ```
//! use shared_engine::sealed::{self, Key, SealedParams};
//!
//! let root = Key([7; 32]);
//! let params = SealedParams::new(0, 60_000, 5, Key([0; 32])).unwrap();
//! let commitment = sealed::commitment(&root, params.rounds());
//! let params = SealedParams::new(0, 60_000, 5, commitment).unwrap();
//! let k1 = sealed::key_of_round(&root, params.rounds(), 1).unwrap();
//! assert_eq!(sealed::hash(&k1), commitment);
//! assert_eq!(sealed::verify_chain(&commitment, &[k1]), Ok(()));
//! let first_break = params.round_length(&k1) - 1;
//! let tick = sealed::tick_at(&params, &[k1], first_break);
//! assert!(tick.settled && tick.tick.broken && tick.tick.round == 1);
//! ```

use core::fmt;

use sha2::{Digest, Sha256};

use crate::{StepAt, Tick, step_at};

/// The wire name of the algorithm.
pub const SEALED_V1: &str = "sealed-v1";
/// The longest a sealed game lasts (24 h): its chain covers that many milliseconds of steps.
pub const LIFETIME_MS: u64 = 24 * 60 * 60 * 1_000;
/// The shortest round, in milliseconds (rounded up to whole steps).
pub const MIN_ROUND_MS: u32 = 1_000;
/// Bits of the geometric draw: `G < 2^40`.
const DRAW_BITS: usize = 40;

/// A 32-byte chain value: the root, a round key or the commitment.
///
/// Displays (and with the `serde` feature serializes) as 64 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Key(pub [u8; 32]);

impl Key {
    /// Parses 64 hex digits (either case); `None` for anything else.
    ///
    /// ```
    /// use shared_engine::sealed::Key;
    /// let key = Key::from_hex(&"ab".repeat(32)).unwrap();
    /// assert_eq!(key, Key([0xab; 32]));
    /// assert!(Key::from_hex("ab").is_none());
    /// ```
    pub fn from_hex(text: &str) -> Option<Key> {
        let bytes = text.as_bytes();
        if bytes.len() != 64 {
            return None;
        }
        let mut key = [0u8; 32];
        for (i, pair) in bytes.chunks_exact(2).enumerate() {
            key[i] = (hex_digit(pair[0])? << 4) | hex_digit(pair[1])?;
        }
        Some(Key(key))
    }

    /// Writes the 64 lowercase hex digits into `out`.
    pub fn to_hex(&self, out: &mut [u8; 64]) {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        for (i, byte) in self.0.iter().enumerate() {
            out[2 * i] = DIGITS[usize::from(byte >> 4)];
            out[2 * i + 1] = DIGITS[usize::from(byte & 15)];
        }
    }

    /// The uniform 64-bit value a round's length is drawn from: the first 8 bytes, big-endian.
    fn draw_value(&self) -> u64 {
        let mut first = [0u8; 8];
        first.copy_from_slice(&self.0[..8]);
        u64::from_be_bytes(first)
    }
}

fn hex_digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = [0u8; 64];
        self.to_hex(&mut out);
        // Hex digits are ASCII.
        f.write_str(core::str::from_utf8(&out).map_err(|_| fmt::Error)?)
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Key({self})")
    }
}

/// SHA-256 of the 32 key bytes.
///
/// ```
/// use shared_engine::sealed::{Key, hash};
/// // SHA-256 of 32 zero bytes.
/// assert_eq!(
///     hash(&Key([0; 32])).to_string(),
///     "66687aadf862bd776c8fc18b8e9f8e20089714856ee233b3902a591d0d5f2925"
/// );
/// ```
pub fn hash(key: &Key) -> Key {
    Key(Sha256::digest(key.0).into())
}

/// `H` applied `times` times: the key `times` rounds before `key` (`k_(r - times)` from `k_r`).
pub fn descend(key: &Key, times: u64) -> Key {
    let mut key = *key;
    for _ in 0..times {
        key = hash(&key);
    }
    key
}

/// The commitment of a chain of `rounds` rounds from `root`: `H^rounds(root)`.
pub fn commitment(root: &Key, rounds: u64) -> Key {
    descend(root, rounds)
}

/// `k_r = H^(rounds - r)(root)`, for `r` in `1..=rounds`; `None` outside.
pub fn key_of_round(root: &Key, rounds: u64, round: u64) -> Option<Key> {
    (1..=rounds)
        .contains(&round)
        .then(|| descend(root, rounds - round))
}

/// Why a chain of keys was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChainError {
    /// The key of this round (1-based) does not hash to the previous key (the commitment for
    /// round 1): tampered, swapped, or from another chain.
    Mismatch {
        /// The first round that fails.
        round: u64,
    },
    /// The revealed root does not hash down to the last key (or the commitment).
    Root,
    /// More keys than the chain has rounds.
    TooManyKeys,
}

impl fmt::Display for ChainError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChainError::Mismatch { round } => write!(
                f,
                "the key of round {round} does not hash to the key before it (or the commitment)"
            ),
            ChainError::Root => f.write_str("the root does not hash down to the last key"),
            ChainError::TooManyKeys => f.write_str("more keys than the chain has rounds"),
        }
    }
}

/// Checks `keys = [k_1, k_2, ...]` (a prefix of the chain, in round order) against the
/// commitment: `H(k_1) == commitment` and `H(k_r) == k_(r-1)`. One hash per key.
pub fn verify_chain(commitment: &Key, keys: &[Key]) -> Result<(), ChainError> {
    let mut previous = *commitment;
    for (i, key) in keys.iter().enumerate() {
        if hash(key) != previous {
            return Err(ChainError::Mismatch {
                round: i as u64 + 1,
            });
        }
        previous = *key;
    }
    Ok(())
}

/// Checks the latest key alone (a late joiner's view): `H^round(k_round) == commitment`.
pub fn verify_latest(commitment: &Key, round: u64, key: &Key) -> bool {
    descend(key, round) == *commitment
}

/// The shortest round of a game with this tick, in steps: `ceil(MIN_ROUND_MS / tick_ms)`.
pub fn min_round_steps(tick_ms: u32) -> u64 {
    u64::from(MIN_ROUND_MS).div_ceil(u64::from(tick_ms.max(1)))
}

/// The number of rounds `N` of a game's chain with this tick (see the module docs).
///
/// ```
/// use shared_engine::sealed::chain_rounds;
/// assert_eq!(chain_rounds(100), 86_400); // 864,000 steps, rounds of at least 10
/// assert_eq!(chain_rounds(60_000), 1_440);
/// assert_eq!(chain_rounds(1), 86_400);
/// ```
pub fn chain_rounds(tick_ms: u32) -> u64 {
    let steps = LIFETIME_MS.div_ceil(u64::from(tick_ms.max(1)));
    steps.div_ceil(min_round_steps(tick_ms))
}

/// Why sealed parameters were rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SealedParamError {
    /// `tick_ms` must be at least 1.
    TickMsZero,
    /// `break_every` must be at least twice the shortest round (`min` here).
    BreakEveryTooSmall {
        /// The smallest `break_every` this tick allows.
        min: u64,
    },
}

impl fmt::Display for SealedParamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SealedParamError::TickMsZero => f.write_str("tickMs must be at least 1"),
            SealedParamError::BreakEveryTooSmall { min } => write!(
                f,
                "breakEvery must be at least {min} for sealed-v1 at this tickMs (twice the \
                 shortest round of {MIN_ROUND_MS} ms)"
            ),
        }
    }
}

/// The smallest `break_every` a sealed game with this tick may have: `2 * min_round_steps`.
pub fn min_break_every(tick_ms: u32) -> u64 {
    2 * min_round_steps(tick_ms)
}

/// Everything that determines a sealed game's public timeline, except the keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedParams {
    start_at_ms: i64,
    tick_ms: u32,
    break_every: u32,
    commitment: Key,
    ended_at_ms: Option<i64>,
    min_round: u64,
    /// `P[i] ~= q^(2^i) * 2^64` (see the module docs).
    powers: [u128; DRAW_BITS],
}

impl SealedParams {
    /// Validates and builds the parameters of a sealed game that has not ended.
    pub fn new(
        start_at_ms: i64,
        tick_ms: u32,
        break_every: u32,
        commitment: Key,
    ) -> Result<SealedParams, SealedParamError> {
        if tick_ms == 0 {
            return Err(SealedParamError::TickMsZero);
        }
        let min_round = min_round_steps(tick_ms);
        if u64::from(break_every) < 2 * min_round {
            return Err(SealedParamError::BreakEveryTooSmall {
                min: min_break_every(tick_ms),
            });
        }
        // n = break_every - m + 1 >= m + 1 >= 2, so 0 < P[0] < 2^64.
        let n = u128::from(break_every) - u128::from(min_round) + 1;
        let mut powers = [0u128; DRAW_BITS];
        powers[0] = ((1u128 << 64) * (n - 1)) / n;
        for i in 1..DRAW_BITS {
            powers[i] = (powers[i - 1] * powers[i - 1]) >> 64;
        }
        Ok(SealedParams {
            start_at_ms,
            tick_ms,
            break_every,
            commitment,
            ended_at_ms: None,
            min_round,
            powers,
        })
    }

    /// The same game, ended at Unix millisecond `ended_at_ms` (or not ended, for `None`).
    pub fn with_end(self, ended_at_ms: Option<i64>) -> SealedParams {
        SealedParams {
            ended_at_ms,
            ..self
        }
    }

    /// Unix millisecond at which step 0 begins.
    pub fn start_at_ms(&self) -> i64 {
        self.start_at_ms
    }
    /// Milliseconds per step.
    pub fn tick_ms(&self) -> u32 {
        self.tick_ms
    }
    /// The mean round length, in steps.
    pub fn break_every(&self) -> u32 {
        self.break_every
    }
    /// The chain's head.
    pub fn commitment(&self) -> &Key {
        &self.commitment
    }
    /// Unix millisecond at which the game ended, if it did.
    pub fn ended_at_ms(&self) -> Option<i64> {
        self.ended_at_ms
    }
    /// The shortest round, in steps.
    pub fn min_round_steps(&self) -> u64 {
        self.min_round
    }
    /// The number of rounds in the chain ([`chain_rounds`]).
    pub fn rounds(&self) -> u64 {
        chain_rounds(self.tick_ms)
    }

    /// The length in steps of the round governed by `key` (its last step breaks).
    ///
    /// ```
    /// use shared_engine::sealed::{Key, SealedParams};
    /// // breakEvery 2 at one-minute ticks: m = 1, n = 2, q = 1/2 exactly, so G is the number
    /// // of leading zero bits of the key's first 8 bytes.
    /// let params = SealedParams::new(0, 60_000, 2, Key::default()).unwrap();
    /// let mut key = Key([0xff; 32]);
    /// assert_eq!(params.round_length(&key), 1);
    /// key.0[0] = 0x1f;
    /// assert_eq!(params.round_length(&key), 4);
    /// ```
    pub fn round_length(&self, key: &Key) -> u64 {
        self.min_round + self.geometric(key.draw_value())
    }

    fn geometric(&self, u: u64) -> u64 {
        let u = u128::from(u);
        let (mut acc, mut g) = (1u128 << 64, 0u64);
        for i in (0..DRAW_BITS).rev() {
            let candidate = (acc * self.powers[i]) >> 64;
            if candidate > u {
                acc = candidate;
                g |= 1 << i;
            }
        }
        g
    }

    /// The break steps of the rounds governed by `keys` (`k_1, k_2, ...`), in order.
    pub fn breaks<'a>(&'a self, keys: &'a [Key]) -> Breaks<'a> {
        Breaks {
            params: self,
            keys: keys.iter(),
            next_start: Some(0),
        }
    }

    /// The instant round `round`'s key may be revealed, given its break step: one millisecond
    /// after the break step begins (see the module docs). Saturates at `i64::MAX`.
    pub fn reveal_at_ms(&self, break_step: u64) -> i64 {
        let offset = i128::from(break_step) * i128::from(self.tick_ms) + 1;
        i64::try_from(i128::from(self.start_at_ms) + offset).unwrap_or(i64::MAX)
    }

    /// The instant a step begins (saturating).
    pub fn step_start_ms(&self, step: u64) -> i64 {
        let offset = i128::from(step) * i128::from(self.tick_ms);
        i64::try_from(i128::from(self.start_at_ms) + offset).unwrap_or(i64::MAX)
    }
}

/// The instant a key whose round broke at `break_step` may be revealed (see
/// [`SealedParams::reveal_at_ms`]).
pub fn reveal_at_ms(params: &SealedParams, break_step: u64) -> i64 {
    params.reveal_at_ms(break_step)
}

/// Iterator over the break steps of successive rounds (see [`SealedParams::breaks`]); stops
/// early if a break would be past `u64::MAX`.
#[derive(Debug, Clone)]
pub struct Breaks<'a> {
    params: &'a SealedParams,
    keys: core::slice::Iter<'a, Key>,
    next_start: Option<u64>,
}

impl Iterator for Breaks<'_> {
    type Item = u64;

    fn next(&mut self) -> Option<u64> {
        let start = self.next_start?;
        let key = self.keys.next()?;
        // round_length >= 1, so the break is start + length - 1 >= start.
        let at = start.checked_add(self.params.round_length(key) - 1)?;
        self.next_start = at.checked_add(1);
        Some(at)
    }
}

/// A tick of a sealed game as far as the revealed keys tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SealedTick {
    /// The tick, assuming no break after the last revealed one.
    pub tick: Tick,
    /// Whether the keys prove it: the step is at or before the last revealed break, or among
    /// the first `m - 1` steps after it (the next round cannot break sooner). A client shows an unsettled tick provisionally and rolls
    /// back when the next key arrives.
    pub settled: bool,
}

/// The tick at `step` given the revealed keys `k_1, k_2, ...` (not verified here: see
/// [`verify_chain`]). O(keys before `step`), one integer draw per round, no hashing.
pub fn tick_at(params: &SealedParams, keys: &[Key], step: u64) -> SealedTick {
    let (mut round, mut last_break) = (0u64, None);
    let mut after_all = true;
    for at in params.breaks(keys) {
        if at > step {
            after_all = false;
            break;
        }
        round += 1;
        last_break = Some(at);
    }
    // Past every revealed break, the next round cannot break before its m-th step (its break
    // is at `start + L - 1` with `L >= m`).
    let settled = !after_all || {
        match last_break.map_or(Some(0), |at| at.checked_add(1)) {
            // `step` is the last revealed break itself when it precedes `start`.
            Some(start) => step
                .checked_sub(start)
                .is_none_or(|d| d + 1 < params.min_round),
            None => true,
        }
    };
    SealedTick {
        tick: Tick::from_breaks(step, round, last_break),
        settled,
    }
}

/// A sealed game's state at an instant, as far as the revealed keys tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SealedState {
    /// The state, assuming no break after the last revealed one.
    pub state: crate::State,
    /// Whether the keys prove it (always true during the countdown and before step 0).
    pub settled: bool,
}

/// The state at Unix millisecond `now_ms` given the revealed keys (semantics of
/// [`crate::state_at`]: an ended game freezes at the last step that began before its end).
pub fn state_at(params: &SealedParams, keys: &[Key], now_ms: i64) -> SealedState {
    use crate::State;
    if let Some(end) = params.ended_at_ms()
        && now_ms >= end
    {
        return match step_at(params.start_at_ms, params.tick_ms, end.saturating_sub(1)) {
            StepAt::Before(_) => SealedState {
                state: State::Ended(None),
                settled: true,
            },
            StepAt::At(step) => {
                let tick = tick_at(params, keys, step);
                SealedState {
                    state: State::Ended(Some(tick.tick)),
                    settled: tick.settled,
                }
            }
        };
    }
    match step_at(params.start_at_ms, params.tick_ms, now_ms) {
        StepAt::Before(ms_until_start) => SealedState {
            state: State::Countdown { ms_until_start },
            settled: true,
        },
        StepAt::At(step) => {
            let tick = tick_at(params, keys, step);
            SealedState {
                state: State::Running(tick.tick),
                settled: tick.settled,
            }
        }
    }
}

/// The public record of a finished sealed game, as [`verify_game`] checks it.
#[derive(Debug, Clone, Copy)]
pub struct GameRecord<'a> {
    /// The parameters, with the commitment and the end (required).
    pub params: &'a SealedParams,
    /// The revealed root (revealed after the end), if published.
    pub root: Option<&'a Key>,
    /// The revealed keys `k_1, k_2, ...`, in order.
    pub keys: &'a [Key],
    /// The claimed break steps, every one at or before the final step, in order.
    pub breaks: &'a [u64],
    /// The claimed final tick (`None` if the game ended during the countdown).
    pub final_tick: Option<Tick>,
}

/// Why a game record failed verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerifyError {
    /// The record has no end.
    NotEnded,
    /// The keys (or the root) do not chain to the commitment.
    Chain(ChainError),
    /// The keys do not reach the end of the game, so its final round is unproven.
    Unsettled,
    /// The claimed breaks differ from the keys' schedule at this index.
    Break {
        /// Index into the claimed breaks (equal to their count if a break is missing).
        index: usize,
        /// The break the keys prove there (`None` if there is none).
        expected: Option<u64>,
    },
    /// The claimed final tick differs from the keys' tick at the end.
    FinalTick {
        /// The tick the keys prove.
        expected: Option<Tick>,
    },
}

impl fmt::Display for VerifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VerifyError::NotEnded => f.write_str("the game has not ended"),
            VerifyError::Chain(e) => write!(f, "chain: {e}"),
            VerifyError::Unsettled => {
                f.write_str("the revealed keys do not reach the game's final step")
            }
            VerifyError::Break { index, expected } => match expected {
                Some(at) => write!(f, "break #{index}: the keys put it at step {at}"),
                None => write!(f, "break #{index}: the keys have no such break"),
            },
            VerifyError::FinalTick { expected } => {
                write!(f, "final tick: the keys give {expected:?}")
            }
        }
    }
}

/// Verifies a finished sealed game from its public record alone: the keys chain to the
/// commitment (and the root, if given, to the last key), the claimed breaks are exactly the
/// keys' breaks up to the final step, and the final tick is the keys' tick there.
///
/// Costs one hash per key (plus `N - keys` for the root) and one draw per round.
pub fn verify_game(record: &GameRecord<'_>) -> Result<(), VerifyError> {
    let params = record.params;
    let end = params.ended_at_ms().ok_or(VerifyError::NotEnded)?;
    let rounds = params.rounds();
    if record.keys.len() as u64 > rounds {
        return Err(VerifyError::Chain(ChainError::TooManyKeys));
    }
    verify_chain(&params.commitment, record.keys).map_err(VerifyError::Chain)?;
    if let Some(root) = record.root {
        let last = record.keys.last().unwrap_or(&params.commitment);
        if descend(root, rounds - record.keys.len() as u64) != *last {
            return Err(VerifyError::Chain(ChainError::Root));
        }
    }
    let final_step = match step_at(params.start_at_ms, params.tick_ms, end.saturating_sub(1)) {
        StepAt::Before(_) => None,
        StepAt::At(step) => Some(step),
    };
    let expected_final = match final_step {
        None => None,
        Some(step) => {
            let tick = tick_at(params, record.keys, step);
            if !tick.settled {
                return Err(VerifyError::Unsettled);
            }
            Some(tick.tick)
        }
    };
    let mut proven = params
        .breaks(record.keys)
        .take_while(|&at| final_step.is_some_and(|last| at <= last));
    for (index, &claimed) in record.breaks.iter().enumerate() {
        let expected = proven.next();
        if expected != Some(claimed) {
            return Err(VerifyError::Break { index, expected });
        }
    }
    if let Some(missing) = proven.next() {
        return Err(VerifyError::Break {
            index: record.breaks.len(),
            expected: Some(missing),
        });
    }
    if record.final_tick != expected_final {
        return Err(VerifyError::FinalTick {
            expected: expected_final,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    extern crate std;
    use std::string::ToString;

    fn params(tick_ms: u32, break_every: u32) -> SealedParams {
        SealedParams::new(0, tick_ms, break_every, Key::default()).unwrap()
    }

    #[test]
    fn sha256_matches_nist_for_one_block_of_32_bytes() {
        // SHA-256 of bytes 0x00..=0x1f, cross-checked with `sha256sum`.
        let mut key = Key::default();
        for (i, b) in key.0.iter_mut().enumerate() {
            *b = i as u8;
        }
        assert_eq!(
            hash(&key).to_string(),
            "630dcd2966c4336691125448bbb25b4ff412a49c732db2c8abc1b8581bd710dd"
        );
    }

    #[test]
    fn half_odds_are_exactly_leading_zeros() {
        let p = params(60_000, 2);
        for u in [0u64, 1, 2, 3, 1 << 62, (1 << 63) - 1, 1 << 63, u64::MAX] {
            assert_eq!(p.geometric(u), u64::from(u.leading_zeros()), "{u}");
        }
    }

    #[test]
    fn draws_are_monotone_in_u() {
        // A larger U never gives a longer round (the inverse CDF is non-increasing).
        let p = params(100, 50);
        let mut previous = u64::MAX;
        let mut u = 0u64;
        for i in 0..10_000u64 {
            let g = p.geometric(u);
            assert!(g <= previous, "U {u}");
            previous = g;
            u = u.saturating_add(1 << 50).saturating_add(i * 977);
        }
        assert_eq!(p.geometric(u64::MAX), 0);
    }

    #[test]
    fn validation() {
        assert_eq!(
            SealedParams::new(0, 0, 50, Key::default()),
            Err(SealedParamError::TickMsZero)
        );
        assert_eq!(
            SealedParams::new(0, 100, 19, Key::default()),
            Err(SealedParamError::BreakEveryTooSmall { min: 20 })
        );
        assert!(SealedParams::new(0, 100, 20, Key::default()).is_ok());
        assert!(SealedParams::new(0, 1, 1_000_000, Key::default()).is_ok());
        assert!(SealedParams::new(0, u32::MAX, 2, Key::default()).is_ok());
    }

    #[test]
    fn chain_covers_the_lifetime_for_every_tick() {
        for tick_ms in [1u32, 7, 99, 100, 333, 999, 1_000, 1_001, 60_000, u32::MAX] {
            let steps = LIFETIME_MS.div_ceil(u64::from(tick_ms));
            let n = chain_rounds(tick_ms);
            assert!(n * min_round_steps(tick_ms) >= steps, "tick {tick_ms}");
            assert!(n <= 86_400, "tick {tick_ms}: {n}");
        }
    }

    #[test]
    fn settled_needs_the_key_once_the_shortest_round_is_over() {
        let p = params(100, 50); // m = 10
        let key = Key([0x80; 32]);
        let length = p.round_length(&key);
        assert!(length >= 10);
        let before = tick_at(&p, &[], 8);
        assert!(before.settled && before.tick.value == 9 && before.tick.round == 0);
        // Step 9 may be the break of a round of the shortest length, 10 steps.
        assert!(!tick_at(&p, &[], 9).settled);
        let at = tick_at(&p, &[key], length - 1);
        assert!(at.settled && at.tick.broken && at.tick.round == 1);
        assert!(tick_at(&p, &[key], length - 1 + 9).settled);
        assert!(!tick_at(&p, &[key], length - 1 + 10).settled);
    }
}
