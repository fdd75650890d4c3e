//! The golden vectors pin the engine's outputs: every port (wasm, JavaScript) is checked
//! against the same file, and the file itself must be what the generator produces now.

use serde_json::Value;
use shared_engine::{
    Algorithm, Params, interval_v0_interval, interval_v0_tick, lcg32, mix32_v1, tick_at,
};

fn golden() -> Value {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/vectors/golden.json"))
        .expect("vectors/golden.json is checked in");
    serde_json::from_str(&text).expect("golden.json is valid JSON")
}

fn u64_field(row: &Value, name: &str) -> u64 {
    row[name]
        .as_u64()
        .unwrap_or_else(|| panic!("{name} in {row}"))
}

#[test]
fn hashes_match_golden_vectors() {
    let golden = golden();
    let rows = golden["hashes"].as_array().expect("hashes array");
    assert!(rows.len() >= 30, "too few hash vectors");
    for row in rows {
        let seed = u64_field(row, "seed") as u32;
        let step = u64_field(row, "step");
        assert_eq!(
            u64::from(mix32_v1(seed, step)),
            u64_field(row, "mix32v1"),
            "{row}"
        );
        assert_eq!(
            u64::from(lcg32(seed, step)),
            u64_field(row, "lcg32"),
            "{row}"
        );
    }
}

#[test]
fn ticks_match_golden_vectors() {
    let golden = golden();
    let rows = golden["ticks"].as_array().expect("ticks array");
    let mut breaks = 0;
    for row in rows {
        let algorithm =
            Algorithm::parse(row["algorithm"].as_str().expect("algorithm")).expect("known");
        let params = Params::new(
            u64_field(row, "seed") as u32,
            0,
            u64_field(row, "tickMs") as u32,
            u64_field(row, "breakEvery") as u32,
            algorithm,
        )
        .expect("valid params");
        let tick = tick_at(&params, u64_field(row, "step"));
        if algorithm == Algorithm::IntervalV0 {
            // The 64-bit-seed entry point agrees with the engine's u32 one.
            assert_eq!(
                interval_v0_tick(u64::from(params.seed()), tick.step),
                tick,
                "{row}"
            );
        }
        assert_eq!(tick.value, u64_field(row, "value"), "{row}");
        assert_eq!(tick.round, u64_field(row, "round"), "{row}");
        assert_eq!(
            tick.broken,
            row["broken"].as_bool().expect("broken"),
            "{row}"
        );
        breaks += usize::from(tick.broken);
    }
    // Vectors that never break would not pin the break decision down.
    assert!(breaks >= 20, "only {breaks} breaking rows");
    for algorithm in Algorithm::ALL {
        assert!(
            rows.iter().any(|r| r["algorithm"] == algorithm.as_str()),
            "no {algorithm} rows"
        );
    }
}

#[test]
fn interval_v0_intervals_match_golden_vectors() {
    let golden = golden();
    let rows = golden["intervalV0"].as_array().expect("intervalV0 array");
    assert!(rows.len() >= 50, "too few interval vectors");
    let mut negative_seeds = 0;
    for row in rows {
        let seed: i64 = row["seed"]
            .as_str()
            .expect("seed string")
            .parse()
            .expect("int64");
        let round: u64 = row["round"]
            .as_str()
            .expect("round string")
            .parse()
            .expect("u64");
        let interval = u64_field(row, "interval");
        assert!((100..=300).contains(&interval), "{row}");
        assert_eq!(interval_v0_interval(seed as u64, round), interval, "{row}");
        negative_seeds += usize::from(seed < 0);
    }
    assert!(negative_seeds > 0, "no negative int64 seeds");
}

#[test]
fn golden_file_is_what_the_generator_writes() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_gen-vectors"))
        .output()
        .expect("run gen-vectors");
    assert!(output.status.success());
    let checked_in =
        std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/vectors/golden.json")).unwrap();
    assert!(
        output.stdout == checked_in,
        "vectors/golden.json is stale or the engine changed its outputs; if the change is \
         intended (a new algorithm version, never an edit of an old one), regenerate it"
    );
}
