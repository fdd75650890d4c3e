//! `interval-v0` is bit-exact with an independent transcription of its definition in Python
//! (`tests/interval_v0.py`), which simulates games step by step, while the engine jumps round
//! by round. Needs `python3` (CI installs it); without it these tests fail, they never skip.

use std::io::Write as _;
use std::process::{Command, Stdio};

use serde_json::{Value, json};
use shared_engine::{
    Algorithm, Counter, Params, Tick, interval_v0_interval, interval_v0_tick, tick_at,
};

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interval_v0.py");

/// Sends `request` to the Python transcription and returns its answer.
fn python(request: &Value) -> Value {
    let mut child = Command::new("python3")
        .arg(SCRIPT)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "python3 is required to cross-check interval-v0 against tests/interval_v0.py, \
                 and could not be started ({e}); install Python 3 (CI and `make setup` do)"
            )
        });
    child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(request.to_string().as_bytes())
        .expect("write the request to python3");
    let output = child.wait_with_output().expect("wait for python3");
    assert!(
        output.status.success(),
        "tests/interval_v0.py failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("python3 answers JSON")
}

/// A small deterministic generator (splitmix64) for the sampled seeds and steps.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// Seeds as another implementation stores them (`int64`): the engine's `u32` range, its edges,
/// negative seeds and the extremes, plus a few drawn at random.
fn seeds() -> Vec<i64> {
    let mut seeds = vec![
        0,
        1,
        2,
        42,
        987_654_321,
        2_147_483_648,
        4_294_967_295,
        0x5EED_CAFE,
        4_294_967_296,
        4_294_967_297,
        -1,
        -2,
        -42,
        -4_294_967_296,
        i64::MIN,
        i64::MIN + 1,
        i64::MAX,
    ];
    let mut rng = SplitMix(0xC0FF_EE00);
    seeds.extend((0..5).map(|_| rng.next() as i64));
    seeds
}

/// The tick at `step` from the engine, through every entry point that applies to the seed.
fn engine_tick(seed: i64, step: u64) -> Tick {
    let tick = interval_v0_tick(seed as u64, step);
    if let Ok(seed32) = u32::try_from(seed) {
        let params = Params::new(seed32, 0, 100, 50, Algorithm::IntervalV0).unwrap();
        assert_eq!(tick_at(&params, step), tick, "seed {seed} step {step}");
        assert_eq!(
            Counter::at_step(params, step).current(),
            Some(tick),
            "seed {seed} step {step}"
        );
    }
    tick
}

fn python_tick(row: &Value, step: u64) -> Tick {
    Tick {
        step,
        value: row[0].as_u64().expect("value"),
        round: row[1].as_u64().expect("round"),
        broken: row[2].as_bool().expect("broken"),
    }
}

#[test]
fn matches_the_python_transcription() {
    let mut rng = SplitMix(0x1D_7E4A);
    let mut tick_queries = Vec::new();
    for seed in seeds() {
        let mut steps = vec![0u64, 1, 99, 100, 101, 299, 300, 301, 302];
        // Around the engine's first three breaks (the Python side finds its own).
        let mut at = 0;
        for round in 0..3 {
            at += interval_v0_interval(seed as u64, round) + u64::from(round > 0);
            steps.extend([at - 1, at, at + 1]);
        }
        steps.extend((0..8).map(|_| rng.next() % 200_000));
        tick_queries.extend(steps.into_iter().map(|step| (seed, step)));
    }
    let interval_queries: Vec<(i64, u64)> = seeds()
        .into_iter()
        .flat_map(|seed| {
            (0..40u64)
                .chain([1_000, u64::from(u32::MAX), 1 << 32, 1 << 63, u64::MAX])
                .map(move |round| (seed, round))
        })
        .collect();
    let break_count = 60;
    let request = json!({
        "ticks": tick_queries,
        "intervals": interval_queries,
        "breaks": seeds().into_iter().map(|seed| (seed, break_count)).collect::<Vec<_>>(),
    });
    let answer = python(&request);

    let ticks = answer["ticks"].as_array().expect("ticks");
    assert_eq!(ticks.len(), tick_queries.len());
    let mut broken = 0;
    for (&(seed, step), row) in tick_queries.iter().zip(ticks) {
        let tick = engine_tick(seed, step);
        assert_eq!(tick, python_tick(row, step), "seed {seed} step {step}");
        broken += usize::from(tick.broken);
    }
    assert!(
        tick_queries.len() >= 300 && broken >= 3 * seeds().len(),
        "{} pairs, {broken} breaks: the comparison must cover breaks",
        tick_queries.len()
    );

    let intervals = answer["intervals"].as_array().expect("intervals");
    assert_eq!(intervals.len(), interval_queries.len());
    for (&(seed, round), expected) in interval_queries.iter().zip(intervals) {
        assert_eq!(
            Some(interval_v0_interval(seed as u64, round)),
            expected.as_u64(),
            "seed {seed} round {round}"
        );
    }

    let breaks = answer["breaks"].as_array().expect("breaks");
    for (seed, steps) in seeds().into_iter().zip(breaks) {
        let steps: Vec<u64> = steps
            .as_array()
            .expect("break steps")
            .iter()
            .map(|s| s.as_u64().expect("step"))
            .collect();
        assert_eq!(steps.len(), break_count);
        for (round, &at) in (1u64..).zip(&steps) {
            let expected = Tick {
                step: at,
                value: 0,
                round,
                broken: true,
            };
            assert_eq!(engine_tick(seed, at), expected, "seed {seed} break {round}");
            assert!(
                !engine_tick(seed, at - 1).broken,
                "seed {seed} step {}",
                at - 1
            );
        }
        if let Ok(seed32) = u32::try_from(seed) {
            // A counter stepped one by one sees exactly these breaks.
            let params = Params::new(seed32, 0, 1, 2, Algorithm::IntervalV0).unwrap();
            let mut counter = Counter::new(params);
            let seen: Vec<u64> = (0..=*steps.last().unwrap())
                .map(|_| counter.advance())
                .filter(|tick| tick.broken)
                .map(|tick| tick.step)
                .collect();
            assert_eq!(seen, steps, "seed {seed}");
        }
    }
}

/// Every `interval-v0` row of the golden vectors (up to step 10^7), recomputed by the Python
/// transcription: the file does not only agree with the engine that wrote it.
#[test]
fn golden_vectors_match_the_python_transcription() {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/vectors/golden.json"))
        .expect("vectors/golden.json");
    let golden: Value = serde_json::from_str(&text).expect("golden JSON");
    let rows: Vec<&Value> = golden["ticks"]
        .as_array()
        .expect("ticks")
        .iter()
        .filter(|row| row["algorithm"] == "interval-v0")
        .collect();
    assert!(rows.len() >= 100, "only {} interval-v0 rows", rows.len());
    let mut seeds: Vec<u64> = rows.iter().map(|r| r["seed"].as_u64().unwrap()).collect();
    seeds.sort_unstable();
    seeds.dedup();
    // One python3 per seed, all at once: each simulates up to 10^7 steps.
    let answers: Vec<(Vec<&Value>, Value)> = std::thread::scope(|scope| {
        let handles: Vec<_> = seeds
            .iter()
            .map(|&seed| {
                let mine: Vec<&Value> = rows
                    .iter()
                    .copied()
                    .filter(|r| r["seed"].as_u64() == Some(seed))
                    .collect();
                let queries: Vec<(u64, u64)> = mine
                    .iter()
                    .map(|r| (seed, r["step"].as_u64().unwrap()))
                    .collect();
                scope.spawn(move || (mine, python(&json!({ "ticks": queries }))))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut checked = 0;
    for (mine, answer) in answers {
        for (row, ticked) in mine.iter().zip(answer["ticks"].as_array().expect("ticks")) {
            let step = row["step"].as_u64().unwrap();
            let golden_tick = Tick {
                step,
                value: row["value"].as_u64().unwrap(),
                round: row["round"].as_u64().unwrap(),
                broken: row["broken"].as_bool().unwrap(),
            };
            assert_eq!(python_tick(ticked, step), golden_tick, "{row}");
            checked += 1;
        }
    }
    assert_eq!(checked, rows.len());
}
