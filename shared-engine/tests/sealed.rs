//! `sealed-v1`: golden vectors (native, and an independent Python transcription with its own
//! SHA-256), chain and whole-game verification against tampering, the round-length
//! distribution, and that nothing public before a break predicts it.

use std::io::Write as _;
use std::process::{Command, Stdio};

use serde_json::Value;
use shared_engine::sealed::{
    self, ChainError, GameRecord, Key, SealedParams, VerifyError, chain_rounds, tick_at,
    verify_chain, verify_game,
};
use shared_engine::{State, Tick};

const VECTORS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/vectors/sealed-v1.json");

fn vectors() -> Value {
    serde_json::from_str(&std::fs::read_to_string(VECTORS).expect("sealed-v1.json is checked in"))
        .expect("valid JSON")
}

fn key(v: &Value) -> Key {
    Key::from_hex(v.as_str().expect("hex string")).expect("64 hex digits")
}

fn num(row: &Value, name: &str) -> u64 {
    row[name]
        .as_u64()
        .unwrap_or_else(|| panic!("{name} in {row}"))
}

/// The keys of each chain in the vectors, by chain index.
fn chain_keys(v: &Value) -> Vec<Vec<Key>> {
    v["chains"]
        .as_array()
        .expect("chains")
        .iter()
        .map(|c| {
            c["keys"]
                .as_array()
                .expect("keys")
                .iter()
                .map(key)
                .collect()
        })
        .collect()
}

#[test]
fn chains_match_golden_vectors() {
    let v = vectors();
    for c in v["chains"].as_array().expect("chains") {
        let root = key(&c["root"]);
        let tick_ms = num(c, "tickMs") as u32;
        let rounds = chain_rounds(tick_ms);
        assert_eq!(rounds, num(c, "rounds"), "{c}");
        let commitment = sealed::commitment(&root, rounds);
        assert_eq!(commitment, key(&c["commitment"]));
        let keys: Vec<Key> = c["keys"].as_array().unwrap().iter().map(key).collect();
        assert_eq!(verify_chain(&commitment, &keys), Ok(()));
        for (i, k) in keys.iter().enumerate() {
            let round = i as u64 + 1;
            assert_eq!(sealed::key_of_round(&root, rounds, round), Some(*k));
            assert!(sealed::verify_latest(&commitment, round, k));
        }
    }
}

#[test]
fn lengths_and_ticks_match_golden_vectors() {
    let v = vectors();
    let lengths = v["lengths"].as_array().expect("lengths");
    assert!(lengths.len() >= 100);
    for row in lengths {
        let params = SealedParams::new(
            0,
            num(row, "tickMs") as u32,
            num(row, "breakEvery") as u32,
            Key::default(),
        )
        .unwrap();
        assert_eq!(
            params.round_length(&key(&row["key"])),
            num(row, "length"),
            "{row}"
        );
    }
    let keys = chain_keys(&v);
    let ticks = v["ticks"].as_array().expect("ticks");
    let (mut broken, mut unsettled) = (0, 0);
    for row in ticks {
        let params = SealedParams::new(
            0,
            num(row, "tickMs") as u32,
            num(row, "breakEvery") as u32,
            Key::default(),
        )
        .unwrap();
        let revealed = &keys[num(row, "chain") as usize][..num(row, "revealed") as usize];
        let t = tick_at(&params, revealed, num(row, "step"));
        assert_eq!(t.tick.value, num(row, "value"), "{row}");
        assert_eq!(t.tick.round, num(row, "round"), "{row}");
        assert_eq!(t.tick.broken, row["broken"].as_bool().unwrap(), "{row}");
        assert_eq!(t.settled, row["settled"].as_bool().unwrap(), "{row}");
        broken += usize::from(t.tick.broken);
        unsettled += usize::from(!t.settled);
    }
    assert!(
        broken >= 40 && unsettled >= 40,
        "{broken} breaks, {unsettled} unsettled"
    );
}

#[test]
fn vectors_file_is_what_the_generator_writes() {
    let output = Command::new(env!("CARGO_BIN_EXE_gen-vectors"))
        .arg("sealed")
        .output()
        .expect("run gen-vectors sealed");
    assert!(output.status.success());
    assert!(
        output.stdout == std::fs::read(VECTORS).unwrap(),
        "vectors/sealed-v1.json is stale or sealed-v1 changed its outputs; sealed-v1 is frozen \
         (a change is a new algorithm version)"
    );
}

/// An independent transcription (Python's hashlib and big integers, summing round lengths
/// its own way) agrees with every row. Needs `python3`; fails, never skips, without it.
#[test]
fn python_transcription_agrees_with_the_vectors() {
    let mut child = Command::new("python3")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/sealed_v1.py"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 is required (CI and `make setup` install it)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(&std::fs::read(VECTORS).unwrap())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "tests/sealed_v1.py disagrees: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let checked: usize = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    assert!(checked > 900, "only {checked} rows checked");
}

/// A small, fixed generator for roots (tests only).
struct SplitMix(u64);
impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn key(&mut self) -> Key {
        let mut k = [0u8; 32];
        for chunk in k.chunks_exact_mut(8) {
            chunk.copy_from_slice(&self.next().to_le_bytes());
        }
        Key(k)
    }
}

/// The first `count` keys of the chain from `root` (rounds `1..=count`), in round order, by
/// hashing down from `k_count` (derived from the root like the origin does).
fn first_keys(root: &Key, rounds: u64, count: usize) -> Vec<Key> {
    let mut keys = Vec::with_capacity(count);
    let mut k = sealed::key_of_round(root, rounds, count as u64).unwrap();
    for _ in 0..count {
        keys.push(k);
        k = sealed::hash(&k);
    }
    keys.reverse();
    keys
}

fn game(tick_ms: u32, break_every: u32, root: &Key) -> SealedParams {
    let commitment = sealed::commitment(root, chain_rounds(tick_ms));
    SealedParams::new(1_700_000_000_000, tick_ms, break_every, commitment).unwrap()
}

#[test]
fn chain_verification_rejects_tampering() {
    let root = SplitMix(1).key();
    let params = game(60_000, 5, &root);
    let c = *params.commitment();
    let keys = first_keys(&root, params.rounds(), 10);
    assert_eq!(verify_chain(&c, &keys), Ok(()));
    // A flipped bit in any key: that round fails (the next one would too).
    for round in [1usize, 5, 10] {
        let mut tampered = keys.clone();
        tampered[round - 1].0[31] ^= 1;
        assert_eq!(
            verify_chain(&c, &tampered),
            Err(ChainError::Mismatch {
                round: round as u64
            })
        );
    }
    // Two rounds swapped.
    let mut swapped = keys.clone();
    swapped.swap(3, 4);
    assert_eq!(
        verify_chain(&c, &swapped),
        Err(ChainError::Mismatch { round: 4 })
    );
    // A round skipped.
    let mut skipped = keys.clone();
    skipped.remove(2);
    assert_eq!(
        verify_chain(&c, &skipped),
        Err(ChainError::Mismatch { round: 3 })
    );
    // Another game's commitment, and another root's keys.
    let other = game(60_000, 5, &SplitMix(2).key());
    assert_eq!(
        verify_chain(other.commitment(), &keys),
        Err(ChainError::Mismatch { round: 1 })
    );
    // The latest key alone, at its round only.
    assert!(sealed::verify_latest(&c, 10, &keys[9]));
    assert!(!sealed::verify_latest(&c, 9, &keys[9]));
    assert!(!sealed::verify_latest(other.commitment(), 10, &keys[9]));
}

/// A finished game's public record: every key up to the one covering the end, the breaks and
/// the final tick, as an honest origin would publish it.
struct Record {
    params: SealedParams,
    root: Key,
    keys: Vec<Key>,
    breaks: Vec<u64>,
    final_tick: Option<Tick>,
}

fn finished_game(seed: u64, tick_ms: u32, break_every: u32, ended_after_ms: i64) -> Record {
    let root = SplitMix(seed).key();
    let params = game(tick_ms, break_every, &root);
    let end = params.start_at_ms() + ended_after_ms;
    let params = params.with_end(Some(end));
    let all = first_keys(&root, params.rounds(), 400);
    assert!(params.breaks(&all).last().unwrap() > ended_after_ms as u64 / u64::from(tick_ms));
    let final_tick = match sealed::state_at(&params, &all, end).state {
        State::Ended(tick) => tick,
        other => panic!("{other:?}"),
    };
    let last_step = final_tick.map(|t| t.step);
    let breaks: Vec<u64> = params
        .breaks(&all)
        .take_while(|&b| last_step.is_some_and(|s| b <= s))
        .collect();
    // Keys up to the round containing the end (the next one after the last break).
    let keys = all[..breaks.len() + 1].to_vec();
    Record {
        params,
        root,
        keys,
        breaks,
        final_tick,
    }
}

impl Record {
    fn verify(&self, root: Option<&Key>) -> Result<(), VerifyError> {
        verify_game(&GameRecord {
            params: &self.params,
            root,
            keys: &self.keys,
            breaks: &self.breaks,
            final_tick: self.final_tick,
        })
    }
}

#[test]
fn whole_game_verification_accepts_the_honest_record_and_nothing_else() {
    let r = finished_game(7, 100, 50, 600_000); // ten minutes of 100 ms ticks: ~120 rounds
    assert!(r.breaks.len() > 50, "{}", r.breaks.len());
    assert_eq!(r.verify(None), Ok(()));
    assert_eq!(r.verify(Some(&r.root)), Ok(()));

    let mut bad_root = r.root;
    bad_root.0[0] ^= 0x80;
    assert_eq!(
        r.verify(Some(&bad_root)),
        Err(VerifyError::Chain(ChainError::Root))
    );

    let mut altered = r.keys.clone();
    altered[17].0[5] ^= 4;
    let record = Record {
        keys: altered,
        ..finished_game(7, 100, 50, 600_000)
    };
    assert_eq!(
        record.verify(None),
        Err(VerifyError::Chain(ChainError::Mismatch { round: 18 }))
    );

    let mut moved = r.breaks.clone();
    moved[10] += 1;
    let record = Record {
        breaks: moved,
        ..finished_game(7, 100, 50, 600_000)
    };
    assert_eq!(
        record.verify(None),
        Err(VerifyError::Break {
            index: 10,
            expected: Some(r.breaks[10])
        })
    );

    let mut missing = r.breaks.clone();
    missing.pop();
    let record = Record {
        breaks: missing,
        ..finished_game(7, 100, 50, 600_000)
    };
    assert!(matches!(
        record.verify(None),
        Err(VerifyError::Break { .. })
    ));

    let mut extra = r.breaks.clone();
    extra.push(r.final_tick.unwrap().step + 1);
    let record = Record {
        breaks: extra,
        ..finished_game(7, 100, 50, 600_000)
    };
    assert!(matches!(
        record.verify(None),
        Err(VerifyError::Break { expected: None, .. })
    ));

    let mut tick = r.final_tick.unwrap();
    tick.value += 1;
    let record = Record {
        final_tick: Some(tick),
        ..finished_game(7, 100, 50, 600_000)
    };
    assert!(matches!(
        record.verify(None),
        Err(VerifyError::FinalTick { .. })
    ));

    // Without the key of the round the game ended in, its last step is unproven.
    let mut short = finished_game(7, 100, 50, 600_000);
    short.keys.pop();
    assert_eq!(short.verify(None), Err(VerifyError::Unsettled));

    let mut running = finished_game(7, 100, 50, 600_000);
    running.params = running.params.clone().with_end(None);
    assert_eq!(running.verify(None), Err(VerifyError::NotEnded));
}

#[test]
fn a_game_ended_in_the_countdown_verifies_with_no_keys() {
    let root = SplitMix(3).key();
    let params = game(100, 50, &root);
    let params = params.clone().with_end(Some(params.start_at_ms() - 5));
    let record = GameRecord {
        params: &params,
        root: Some(&root),
        keys: &[],
        breaks: &[],
        final_tick: None,
    };
    assert_eq!(verify_game(&record), Ok(()));
}

/// Round lengths of many rounds of one long chain (the real source of keys).
fn lengths(params: &SealedParams, rounds: usize, seed: u64) -> Vec<u64> {
    let mut k = SplitMix(seed).key();
    (0..rounds)
        .map(|_| {
            k = sealed::hash(&k);
            params.round_length(&k)
        })
        .collect()
}

#[test]
fn round_lengths_have_the_specified_mean_and_shape() {
    const ROUNDS: usize = 100_000;
    for (tick_ms, break_every) in [
        (100u32, 50u32),
        (100, 20),
        (60_000, 2),
        (1_000, 7),
        (1, 5_000),
    ] {
        let params = SealedParams::new(0, tick_ms, break_every, Key::default()).unwrap();
        let m = params.min_round_steps();
        let ls = lengths(
            &params,
            ROUNDS,
            u64::from(tick_ms) * 31 + u64::from(break_every),
        );
        assert!(ls.iter().all(|&l| l >= m), "a round shorter than {m}");
        // Mean: E[L] = break_every, Var[L] = (n - 1) n with n = break_every - m + 1.
        let n = f64::from(break_every) - m as f64 + 1.0;
        let sd = ((n - 1.0) * n).sqrt();
        let mean = ls.iter().sum::<u64>() as f64 / ROUNDS as f64;
        let tolerance = 4.5 * sd / (ROUNDS as f64).sqrt();
        assert!(
            (mean - f64::from(break_every)).abs() <= tolerance,
            "tick {tick_ms} breakEvery {break_every}: mean {mean} (±{tolerance})"
        );
        // Shape: P(L - m >= g) = q^g at a few quantiles, each within 4.5 binomial sigmas.
        let q = (n - 1.0) / n;
        for fraction in [0.9f64, 0.5, 0.1, 0.01] {
            let g = fraction.ln() / q.ln();
            let g = g.round() as u64;
            let expected = q.powf(g as f64);
            let observed = ls.iter().filter(|&&l| l - m >= g).count() as f64 / ROUNDS as f64;
            let sigma = (expected * (1.0 - expected) / ROUNDS as f64).sqrt();
            assert!(
                (observed - expected).abs() <= 4.5 * sigma + 1e-9,
                "tick {tick_ms} breakEvery {break_every}: P(G >= {g}) = {observed}, want {expected}"
            );
        }
    }
}

/// Everything public before round `r` breaks is the commitment and keys `k_1 .. k_(r-1)`, so
/// their lengths and bytes. Over 100,000 rounds, no feature of them correlates with round `r`'s
/// length, and a predictor that learns the mean length per value of such features (on one half
/// of the rounds) does no better on the other half than the overall mean.
#[test]
fn nothing_public_before_a_break_predicts_it() {
    const ROUNDS: usize = 100_000;
    let params = SealedParams::new(0, 100, 50, Key::default()).unwrap();
    let mut keys = Vec::with_capacity(ROUNDS);
    let mut k = SplitMix(2024).key();
    for _ in 0..ROUNDS {
        k = sealed::hash(&k);
        keys.push(k);
    }
    // Chain order: keys[i + 1] hashes to keys[i], so keys[i] is public before keys[i + 1].
    keys.reverse();
    let ls: Vec<f64> = keys.iter().map(|k| params.round_length(k) as f64).collect();
    let features: [(&str, Feature<'_>); 4] = [
        ("previous length", Box::new(|i| ls[i - 1])),
        (
            "sum of the two previous lengths",
            Box::new(|i| ls[i - 1] + ls[i - 2]),
        ),
        (
            "previous key's first byte",
            Box::new(|i| f64::from(keys[i - 1].0[0])),
        ),
        (
            "previous key's last 8 bytes",
            Box::new(|i| u64::from_be_bytes(keys[i - 1].0[24..].try_into().unwrap()) as f64),
        ),
    ];
    let targets: Vec<f64> = (2..ROUNDS).map(|i| ls[i]).collect();
    let bound = 4.5 / (targets.len() as f64).sqrt();
    for (name, feature) in &features {
        let xs: Vec<f64> = (2..ROUNDS).map(feature).collect();
        let r = correlation(&xs, &targets);
        assert!(r.abs() < bound, "{name}: correlation {r} (bound {bound})");
    }
    // A learned predictor: mean next length per bucket of the previous length (capped at 200)
    // and of the previous key's first byte, fitted on the first half, scored on the second.
    let half = targets.len() / 2;
    let overall = targets[..half].iter().sum::<f64>() / half as f64;
    let baseline = mse(&targets[half..], |_| overall);
    for (name, bucket) in [
        (
            "previous length",
            Box::new(|i: usize| (ls[i - 1] as usize).min(200)) as Box<dyn Fn(usize) -> usize>,
        ),
        (
            "previous key's first byte",
            Box::new(|i: usize| usize::from(keys[i - 1].0[0])),
        ),
    ] {
        let mut sums = vec![(0.0f64, 0usize); 256];
        for (j, &t) in targets[..half].iter().enumerate() {
            let b = bucket(j + 2);
            sums[b].0 += t;
            sums[b].1 += 1;
        }
        let learned = mse(&targets[half..], |j| {
            let (sum, n) = sums[bucket(half + j + 2)];
            if n == 0 { overall } else { sum / n as f64 }
        });
        // Fitting noise makes a learned predictor slightly worse, never meaningfully better.
        assert!(
            learned >= baseline * 0.995,
            "{name}: predictor MSE {learned} vs baseline {baseline}"
        );
    }
}

/// A number computed from what is public before round `i` breaks.
type Feature<'a> = Box<dyn Fn(usize) -> f64 + 'a>;

fn mse(targets: &[f64], predict: impl Fn(usize) -> f64) -> f64 {
    targets
        .iter()
        .enumerate()
        .map(|(j, &t)| (t - predict(j)).powi(2))
        .sum::<f64>()
        / targets.len() as f64
}

fn correlation(xs: &[f64], ys: &[f64]) -> f64 {
    let n = xs.len() as f64;
    let (mx, my) = (xs.iter().sum::<f64>() / n, ys.iter().sum::<f64>() / n);
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (x, y) in xs.iter().zip(ys) {
        sxy += (x - mx) * (y - my);
        sxx += (x - mx) * (x - mx);
        syy += (y - my) * (y - my);
    }
    sxy / (sxx * syy).sqrt()
}
