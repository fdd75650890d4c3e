//! Sealed games (`sealed-v1`, issue 24) at the origin: the break schedule of a game's secret
//! chain, and what of it is public at an instant.
//!
//! The origin holds the root, so it knows every break; it must only ever *answer* what the
//! revealed keys already prove. The rule ([`Chain::public_rounds`]): round `r`'s key is public
//! once `reveal_at(B_r) <= now` by this server's clock (one millisecond after the break step
//! begins), and every key once the game has ended (its root is published then). Because a key
//! is out one millisecond after its break step begins, the state at any instant before now is
//! exactly what the public keys settle, so state and replay reads answer instants up to
//! `now - 1` and refuse later ones (`425`); nothing a read answers depends on an unrevealed key.
//!
//! Cost: deriving `k_r` takes `N - r` hashes from the root (N up to 86,400: about 29 ms at the
//! measured 335 ns per hash). A [`Chain`] is built once per game and process in one pass over
//! the whole chain (the same cost), keeping the key and the first step of every
//! [`SEGMENT`]-th round: 338 segments, about 14 KB, for the longest chain. After that a key
//! costs at most `SEGMENT - 1` hashes and a schedule question at most one segment's hashes and
//! draws (about 90 µs). [`ChainCache`] keeps [`CACHED_CHAINS`] of them (about 14 MB).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use api::GameId;
use shared_engine::sealed::{self, Key, SealedParams};
use shared_engine::{StepAt, Tick, step_at};

/// Rounds per checkpoint: the most hashes a key or a schedule question costs once built.
pub const SEGMENT: u64 = 256;
/// Chains kept per process (about 14 KB each); a game past them is rebuilt (about 29 ms).
pub const CACHED_CHAINS: usize = 1_024;

/// A sealed game's whole break schedule, in checkpoints (see the module docs).
#[derive(Debug, Clone)]
pub struct Chain {
    params: SealedParams,
    rounds: u64,
    /// `tops[j]`: the key of the last round of segment `j` (rounds `j * SEGMENT + 1 ..=
    /// min((j + 1) * SEGMENT, N)`).
    tops: Vec<Key>,
    /// `starts[j]`: the first step of segment `j`'s first round; `starts[segments]` is the
    /// step after the chain's last break.
    starts: Vec<u64>,
}

/// The root does not hash down to the stored commitment (a corrupt row).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommitmentMismatch;

impl Chain {
    /// Walks the chain from `root` once. `params` carries the commitment the chain must end
    /// at (its end, if any, is ignored: see [`Chain::public_rounds`]).
    pub fn build(params: &SealedParams, root: &Key) -> Result<Chain, CommitmentMismatch> {
        let rounds = params.rounds();
        let segments = rounds.div_ceil(SEGMENT) as usize;
        let mut tops = vec![Key::default(); segments];
        let mut lengths = vec![0u64; segments];
        let mut key = *root;
        for round in (1..=rounds).rev() {
            let segment = ((round - 1) / SEGMENT) as usize;
            if round == rounds || round % SEGMENT == 0 {
                tops[segment] = key;
            }
            lengths[segment] = lengths[segment].saturating_add(params.round_length(&key));
            key = sealed::hash(&key);
        }
        if key != *params.commitment() {
            return Err(CommitmentMismatch);
        }
        let mut starts = Vec::with_capacity(segments + 1);
        starts.push(0u64);
        for length in lengths {
            let last = *starts.last().unwrap_or(&0);
            starts.push(last.saturating_add(length));
        }
        Ok(Chain {
            params: params.clone().with_end(None),
            rounds,
            tops,
            starts,
        })
    }

    /// The number of rounds `N`.
    pub fn rounds(&self) -> u64 {
        self.rounds
    }

    /// The rounds of segment `j`: first and last.
    fn segment_rounds(&self, j: usize) -> (u64, u64) {
        let first = j as u64 * SEGMENT + 1;
        (first, (first + SEGMENT - 1).min(self.rounds))
    }

    /// The keys of segment `j`, in round order (at most [`SEGMENT`] - 1 hashes).
    fn segment_keys(&self, j: usize) -> Vec<Key> {
        let (first, last) = self.segment_rounds(j);
        let mut keys = Vec::with_capacity((last - first + 1) as usize);
        let mut key = self.tops[j];
        keys.push(key);
        for _ in first..last {
            key = sealed::hash(&key);
            keys.push(key);
        }
        keys.reverse();
        keys
    }

    /// `k_round`, for `round` in `1..=N`.
    pub fn key(&self, round: u64) -> Option<Key> {
        if !(1..=self.rounds).contains(&round) {
            return None;
        }
        let j = ((round - 1) / SEGMENT) as usize;
        let (_, last) = self.segment_rounds(j);
        Some(sealed::descend(&self.tops[j], last - round))
    }

    /// The keys of rounds `first..=last` (at most [`SEGMENT`] - 1 hashes more than their
    /// number); empty unless `1 <= first <= last <= N`.
    pub fn keys(&self, first: u64, last: u64) -> Vec<Key> {
        if first == 0 || first > last || last > self.rounds {
            return Vec::new();
        }
        let Some(mut key) = self.key(last) else {
            return Vec::new();
        };
        let mut keys = Vec::with_capacity((last - first + 1) as usize);
        keys.push(key);
        for _ in first..last {
            key = sealed::hash(&key);
            keys.push(key);
        }
        keys.reverse();
        keys
    }

    /// The breaks at or before `step`: how many, and the last of them.
    pub fn breaks_through(&self, step: u64) -> (u64, Option<u64>) {
        // The last segment whose first step is at or before `step`.
        let j = self.starts.partition_point(|&s| s <= step) - 1;
        let before = |j: usize| (j > 0).then(|| self.starts[j] - 1);
        if j >= self.tops.len() {
            return (self.rounds, before(j));
        }
        let (first, _) = self.segment_rounds(j);
        let (mut count, mut last) = (first - 1, before(j));
        let mut start = self.starts[j];
        for key in self.segment_keys(j) {
            let at = start.saturating_add(self.params.round_length(&key) - 1);
            if at > step {
                break;
            }
            count += 1;
            last = Some(at);
            start = at.saturating_add(1);
        }
        (count, last)
    }

    /// The tick at `step`, from the whole schedule (the caller decides whether it is public).
    pub fn tick_at(&self, step: u64) -> Tick {
        let (round, last_break) = self.breaks_through(step);
        Tick {
            step,
            value: match last_break {
                Some(at) => step - at,
                None => step + 1,
            },
            round,
            broken: last_break == Some(step),
        }
    }

    /// The last step whose tick is public at `now_ms` for a game that has not ended: the
    /// step under way at `now_ms - 1` (every break up to it has been revealed by `now_ms`);
    /// `None` before step 0.
    pub fn last_public_step(&self, now_ms: i64) -> Option<u64> {
        match step_at(
            self.params.start_at_ms(),
            self.params.tick_ms(),
            now_ms.saturating_sub(1),
        ) {
            StepAt::Before(_) => None,
            StepAt::At(step) => Some(step),
        }
    }

    /// The step a game that ended at `end_ms` froze at (the last step that began before the
    /// end); `None` if it ended during the countdown.
    pub fn final_step(&self, end_ms: i64) -> Option<u64> {
        match step_at(
            self.params.start_at_ms(),
            self.params.tick_ms(),
            end_ms.saturating_sub(1),
        ) {
            StepAt::Before(_) => None,
            StepAt::At(step) => Some(step),
        }
    }

    /// How many rounds' keys are public at `now_ms`: while the game runs, those revealed by
    /// the clock (`reveal_at(B_r) <= now_ms`); once it has ended at `ended_at_ms`, every round
    /// up to the one under way at its end (enough to settle the final step, and a superset of
    /// those revealed before the end; the root, published then, gives them all anyway).
    pub fn public_rounds(&self, ended_at_ms: Option<i64>, now_ms: i64) -> u64 {
        match ended_at_ms {
            // Every round revealed before the end broke at or before the final step.
            Some(end) => self
                .final_step(end)
                .map_or(0, |step| (self.breaks_through(step).0 + 1).min(self.rounds)),
            None => self
                .last_public_step(now_ms)
                .map_or(0, |step| self.breaks_through(step).0),
        }
    }

    /// The first round that breaks after `step`: its number and break step (`None` past the
    /// chain). The server's own knowledge: never for a public answer before its reveal.
    pub fn next_break_after(&self, step: u64) -> Option<(u64, u64)> {
        let (count, _) = self.breaks_through(step);
        let round = count + 1;
        if round > self.rounds {
            return None;
        }
        let j = ((round - 1) / SEGMENT) as usize;
        let (first, _) = self.segment_rounds(j);
        let mut start = self.starts[j];
        for (i, key) in self.segment_keys(j).iter().enumerate() {
            let at = start.saturating_add(self.params.round_length(key) - 1);
            if first + i as u64 == round {
                return Some((round, at));
            }
            start = at.saturating_add(1);
        }
        None
    }

    /// The next reveal of a game that has not ended, at `now_ms`: the round whose key comes
    /// out next and its reveal instant (Unix ms, after `now_ms`); `None` past the chain. The
    /// server's own knowledge, told only to the edge (whose room must push the key at that
    /// instant), never in a public answer.
    pub fn next_reveal(&self, now_ms: i64) -> Option<(u64, i64)> {
        let (round, at) = match self.last_public_step(now_ms) {
            Some(step) => self.next_break_after(step)?,
            None => (1, self.breaks_through_round(1)?),
        };
        Some((round, self.params.reveal_at_ms(at)))
    }

    /// When a client that has not got round `revealed + 1`'s key should ask again, from public
    /// facts only: the earliest instant that round could be revealed (its break is at least
    /// `m` steps after the last revealed one), else one tick from now (clamped to 0.1-1 s).
    /// Never the real reveal instant, which would tell when the next break is.
    pub fn retry_at(&self, revealed: u64, now_ms: i64) -> i64 {
        let last_break = if revealed == 0 {
            None
        } else {
            // Public: the keys up to `revealed` give it.
            self.breaks_through_round(revealed)
        };
        let earliest_break = match last_break {
            Some(at) => at.saturating_add(self.params.min_round_steps()),
            None => self.params.min_round_steps() - 1,
        };
        let earliest = self.params.reveal_at_ms(earliest_break);
        let poll = i64::from(self.params.tick_ms()).clamp(100, 1_000);
        earliest.max(now_ms.saturating_add(poll))
    }

    /// The break step of round `round`.
    fn breaks_through_round(&self, round: u64) -> Option<u64> {
        if !(1..=self.rounds).contains(&round) {
            return None;
        }
        let j = ((round - 1) / SEGMENT) as usize;
        let (first, _) = self.segment_rounds(j);
        let mut start = self.starts[j];
        for (i, key) in self.segment_keys(j).iter().enumerate() {
            let at = start.saturating_add(self.params.round_length(key) - 1);
            if first + i as u64 == round {
                return Some(at);
            }
            start = at.saturating_add(1);
        }
        None
    }

    /// The breaks in `(after, through]`, as `(round, step)`: at most [`SEGMENT`] - 1 hashes
    /// per segment crossed and one draw per round.
    pub fn breaks_between(&self, after: u64, through: u64) -> Vec<(u64, u64)> {
        let mut out = Vec::new();
        let round = self.breaks_through(after).0 + 1;
        if round > self.rounds || through <= after {
            return out;
        }
        let mut j = ((round - 1) / SEGMENT) as usize;
        while j < self.tops.len() {
            let (first, _) = self.segment_rounds(j);
            let mut start = self.starts[j];
            for (i, key) in self.segment_keys(j).iter().enumerate() {
                let at = start.saturating_add(self.params.round_length(key) - 1);
                start = at.saturating_add(1);
                let r = first + i as u64;
                if r < round {
                    continue;
                }
                if at > through {
                    return out;
                }
                out.push((r, at));
            }
            j += 1;
        }
        out
    }

    /// The first breaks, in order, as `(round, step)`: those at or before step `through`, at
    /// most `limit` of them (at most [`SEGMENT`] - 1 hashes per segment crossed and one draw
    /// per round, so `limit` bounds the cost whatever `through` is).
    pub fn first_breaks(&self, through: u64, limit: usize) -> Vec<(u64, u64)> {
        let mut out = Vec::new();
        for j in 0..self.tops.len() {
            let (first, _) = self.segment_rounds(j);
            let mut start = self.starts[j];
            for (i, key) in self.segment_keys(j).iter().enumerate() {
                if out.len() >= limit {
                    return out;
                }
                let at = start.saturating_add(self.params.round_length(key) - 1);
                if at > through {
                    return out;
                }
                out.push((first + i as u64, at));
                start = at.saturating_add(1);
            }
        }
        out
    }

    /// The result of a player who left at `exited_at_ms` (by the origin's clock): the tick at
    /// the last step that began before it ([`Chain::final_step`]), none during the countdown;
    /// whether a break came first. Exactly the sealed engine's `Ended` state at that instant,
    /// and public then: every break it counts was revealed by `exited_at_ms`.
    pub fn seat_result(&self, exited_at_ms: i64) -> api::SeatResult {
        let tick = self.final_step(exited_at_ms).map(|s| self.tick_at(s));
        api::SeatResult {
            exited_at: exited_at_ms,
            final_tick: tick.map(api::TickView::from),
            break_first: tick.is_some_and(|t| t.round > 0),
        }
    }

    /// The ticks of steps `from..=to` (one schedule question, then [`Chain::breaks_between`]).
    pub fn ticks(&self, from: u64, to: u64) -> Vec<Tick> {
        if from > to {
            return Vec::new();
        }
        let first = self.tick_at(from);
        let mut round = first.round;
        // value = step - last break, or step + 1 before the first one.
        let mut last = (first.value <= from).then(|| from - first.value);
        let mut breaks = self.breaks_between(from, to).into_iter().peekable();
        let mut ticks = Vec::with_capacity((to - from + 1).min(1 << 16) as usize);
        ticks.push(first);
        for step in from + 1..=to {
            if let Some(&(r, at)) = breaks.peek()
                && at == step
            {
                round = r;
                last = Some(at);
                breaks.next();
            }
            ticks.push(Tick {
                step,
                value: last.map_or(step + 1, |at| step - at),
                round,
                broken: last == Some(step),
            });
        }
        ticks
    }

    /// The parameters (without an end).
    pub fn params(&self) -> &SealedParams {
        &self.params
    }
}

/// The cached chains, and their ids oldest first.
type Chains = (HashMap<GameId, Arc<Chain>>, VecDeque<GameId>);

/// The [`Chain`]s of recently read sealed games, at most [`CACHED_CHAINS`], the oldest
/// evicted first. A chain depends only on the game's immutable row, so a cached one is never
/// stale.
#[derive(Debug, Default)]
pub struct ChainCache {
    inner: Mutex<Chains>,
}

impl ChainCache {
    /// The cached chain of `id`.
    pub fn get(&self, id: GameId) -> Option<Arc<Chain>> {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.0.get(&id).cloned()
    }

    /// Keeps `chain` for `id`, evicting the oldest beyond [`CACHED_CHAINS`].
    pub fn insert(&self, id: GameId, chain: Arc<Chain>) {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let (map, order) = &mut *inner;
        if map.insert(id, chain).is_none() {
            order.push_back(id);
        }
        while map.len() > CACHED_CHAINS {
            match order.pop_front() {
                Some(old) => {
                    map.remove(&old);
                }
                None => break,
            }
        }
    }

    /// How many chains are kept.
    pub fn len(&self) -> usize {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.0.len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn game(tick_ms: u32, break_every: u32, root: Key) -> (SealedParams, Vec<Key>) {
        let rounds = sealed::chain_rounds(tick_ms);
        let commitment = sealed::commitment(&root, rounds);
        let params = SealedParams::new(1_000, tick_ms, break_every, commitment).unwrap();
        // Every key, k_1 first, the slow way.
        let mut keys = Vec::with_capacity(rounds as usize);
        let mut key = root;
        for _ in 0..rounds {
            keys.push(key);
            key = sealed::hash(&key);
        }
        keys.reverse();
        (params, keys)
    }

    #[test]
    fn the_schedule_equals_the_engine_on_every_key() {
        // One-minute ticks: 1,440 rounds, six segments (the last one short).
        let (params, keys) = game(60_000, 3, Key([9; 32]));
        let chain = Chain::build(&params, &Key([9; 32])).unwrap();
        assert_eq!(chain.rounds(), 1_440);
        assert_eq!(chain.key(1), Some(keys[0]));
        assert_eq!(chain.key(1_440), Some(keys[1_439]));
        assert_eq!(chain.key(0), None);
        assert_eq!(chain.key(1_441), None);
        assert_eq!(chain.keys(250, 260), keys[249..260].to_vec());
        assert!(chain.keys(5, 4).is_empty() && chain.keys(1, 1_441).is_empty());
        let breaks: Vec<u64> = params.breaks(&keys).collect();
        let total = breaks.last().unwrap() + 3;
        for step in (0..total).step_by(7).chain(breaks.iter().copied()) {
            let expected = sealed::tick_at(&params, &keys, step);
            assert!(expected.settled);
            assert_eq!(chain.tick_at(step), expected.tick, "step {step}");
        }
        for (i, &at) in breaks.iter().enumerate() {
            let round = i as u64 + 1;
            assert_eq!(chain.breaks_through_round(round), Some(at));
            if at > 0 {
                assert_eq!(chain.next_break_after(at - 1), Some((round, at)));
            }
        }
        assert_eq!(chain.next_break_after(*breaks.last().unwrap()), None);
        // The first breaks from step 0, bounded by a step and by a count.
        let all: Vec<(u64, u64)> = breaks
            .iter()
            .copied()
            .zip(1..)
            .map(|(s, r)| (r, s))
            .collect();
        assert_eq!(chain.first_breaks(u64::MAX, usize::MAX), all);
        assert_eq!(chain.first_breaks(u64::MAX, 300), all[..300].to_vec());
        let cut = breaks[600];
        assert_eq!(chain.first_breaks(cut, usize::MAX), all[..601].to_vec());
        assert_eq!(chain.first_breaks(cut - 1, usize::MAX), all[..600].to_vec());
        // A seat's result is the engine's ended state at its exit instant.
        for at in [
            900,
            1_000,
            1_001,
            60_000 * breaks[3] as i64 + 1_000,
            60_000 * breaks[3] as i64 + 1_001,
        ] {
            let engine = sealed::state_at(&params.clone().with_end(Some(at)), &keys, at);
            let shared_engine::State::Ended(tick) = engine.state else {
                panic!("{engine:?}");
            };
            let result = chain.seat_result(at);
            assert_eq!(result.final_tick, tick.map(api::TickView::from), "{at}");
            assert_eq!(result.break_first, tick.is_some_and(|t| t.round > 0));
        }
        // Ranges across segment ends, equal to step-by-step ticks.
        for (from, to) in [(0, 0), (0, 40), (700, 900), (total - 30, total + 5)] {
            let expected: Vec<Tick> = (from..=to).map(|s| chain.tick_at(s)).collect();
            assert_eq!(chain.ticks(from, to), expected, "{from}..={to}");
        }
    }

    #[test]
    fn a_wrong_commitment_is_refused() {
        let (params, _) = game(60_000, 3, Key([9; 32]));
        assert_eq!(
            Chain::build(&params, &Key([8; 32])).unwrap_err(),
            CommitmentMismatch
        );
    }

    #[test]
    fn keys_are_public_one_millisecond_into_their_break_step() {
        let (params, keys) = game(1_000, 4, Key([3; 32]));
        let chain = Chain::build(&params, &Key([3; 32])).unwrap();
        let breaks: Vec<u64> = params.breaks(&keys).take(20).collect();
        for (i, &at) in breaks.iter().enumerate() {
            let reveal = params.reveal_at_ms(at);
            assert_eq!(chain.public_rounds(None, reveal - 1), i as u64, "round {i}");
            assert_eq!(chain.public_rounds(None, reveal), i as u64 + 1);
            // Whatever is asked before the reveal, the retry time never points at it
            // unless the shortest round would (the public lower bound).
            let retry = chain.retry_at(i as u64, reveal - 1);
            let last = i.checked_sub(1).map(|p| breaks[p]);
            let earliest = params.reveal_at_ms(last.map_or(params.min_round_steps() - 1, |b| {
                b + params.min_round_steps()
            }));
            assert!(
                retry == earliest.max(reveal - 1 + 1_000),
                "round {i}: {retry}"
            );
        }
        // The schedule the edge is told: the next round and its reveal, never one already out.
        assert_eq!(
            chain.next_reveal(0),
            Some((1, params.reveal_at_ms(breaks[0])))
        );
        for (i, &at) in breaks.iter().enumerate().take(19) {
            let reveal = params.reveal_at_ms(at);
            let round = i as u64 + 1;
            assert_eq!(chain.next_reveal(reveal - 1), Some((round, reveal)));
            let next = params.reveal_at_ms(breaks[i + 1]);
            assert_eq!(chain.next_reveal(reveal), Some((round + 1, next)));
            assert_eq!(chain.public_rounds(None, reveal), round);
        }
        // Ended at the start of the fifth break step: the fifth round is public to settle it.
        let end = params.step_start_ms(breaks[4]);
        assert_eq!(chain.public_rounds(Some(end), end), 5);
        assert_eq!(chain.public_rounds(Some(end), end - 1_000_000), 5);
        // Ended before step 0: nothing.
        assert_eq!(chain.public_rounds(Some(500), 10_000), 0);
    }

    #[test]
    fn the_cache_is_bounded() {
        let (params, _) = game(60_000, 3, Key([1; 32]));
        let chain = Arc::new(Chain::build(&params, &Key([1; 32])).unwrap());
        let cache = ChainCache::default();
        let ids: Vec<GameId> = (0..CACHED_CHAINS + 5)
            .map(|_| GameId::from(uuid::Uuid::new_v4()))
            .collect();
        for id in &ids {
            cache.insert(*id, chain.clone());
        }
        assert_eq!(cache.len(), CACHED_CHAINS);
        assert!(cache.get(ids[0]).is_none());
        assert!(cache.get(ids[CACHED_CHAINS + 4]).is_some());
    }
}
