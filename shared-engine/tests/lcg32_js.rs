//! `lcg32` is bit-exact with an independent JavaScript transcription of the architecture
//! document's pseudo-code, run by node (which CI installs).

use shared_engine::{Algorithm, is_break};

/// The document's functions, transcribed as written (float `%`, `Math.pow`, `>>> 0`).
const DOCUMENT_JS: &str = r#"
function deterministicRNG(seed, step) {
  const a = 1664525;
  const c = 1013904223;
  const m = Math.pow(2, 32);
  const combined = (seed ^ step) >>> 0;
  return Math.abs((a * combined + c) % m);
}
function shouldBreak(seed, step, breakProbability) {
  const rngValue = deterministicRNG(seed, step);
  return rngValue % breakProbability === 0;
}
const [seeds, steps, odds] = JSON.parse(process.argv[1]);
const out = [];
for (const seed of seeds) for (const p of odds) {
  let bits = "";
  for (let step = 0; step < steps; step++) bits += shouldBreak(seed, step, p) ? "1" : "0";
  out.push(bits);
}
process.stdout.write(out.join("\n"));
"#;

#[test]
fn lcg32_matches_the_documents_javascript() {
    let seeds = [
        0u32,
        1,
        2,
        987_654_321,
        2_147_483_647,
        2_147_483_648,
        u32::MAX,
    ];
    let odds = [2u32, 7, 50, 1000];
    let steps = 5_000u64;
    let args = format!("[{seeds:?},{steps},{odds:?}]");
    let output = std::process::Command::new("node")
        .args(["-e", DOCUMENT_JS, &args])
        .output()
        .expect("node must be installed to cross-check lcg32 (CI installs it)");
    assert!(
        output.status.success(),
        "node failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let js = String::from_utf8(output.stdout).unwrap();
    let mut lines = js.lines();
    let mut breaks = 0;
    for seed in seeds {
        for p in odds {
            let expected: String = (0..steps)
                .map(|step| {
                    if is_break(Algorithm::Lcg32, seed, step, p) {
                        '1'
                    } else {
                        '0'
                    }
                })
                .collect();
            let line = lines.next().expect("one line per (seed, odds)");
            assert_eq!(line, expected, "seed {seed} breakProbability {p}");
            breaks += line.matches('1').count();
        }
    }
    assert!(
        breaks > 1_000,
        "the comparison must include breaks, saw {breaks}"
    );
}
