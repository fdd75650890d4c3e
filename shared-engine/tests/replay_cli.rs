//! The `replay` binary: one JSON object per step, equal to the engine's ticks; bad arguments
//! exit with code 2 and say what is wrong.

use std::process::Command;

use shared_engine::{Algorithm, Params, tick_at};

fn replay(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_replay"))
        .args(args)
        .output()
        .expect("run replay")
}

#[test]
fn prints_the_engines_ticks() {
    for (algorithm, name) in [
        (Algorithm::Mix32V1, "mix32-v1"),
        (Algorithm::Lcg32, "lcg32"),
        (Algorithm::IntervalV0, "interval-v0"),
    ] {
        let output = replay(&[
            "--seed",
            "987654321",
            "--tick-ms",
            "100",
            "--algorithm",
            name,
            "--break-every",
            "7",
            "--from",
            "990",
            "--to",
            "1400",
        ]);
        assert!(output.status.success());
        let params = Params::new(987_654_321, 0, 100, 7, algorithm).unwrap();
        let lines: Vec<String> = String::from_utf8(output.stdout)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect();
        assert_eq!(lines.len(), 411);
        for (i, line) in lines.iter().enumerate() {
            let tick = tick_at(&params, 990 + i as u64);
            let expected = format!(
                r#"{{"step":{},"value":{},"round":{},"broken":{}}}"#,
                tick.step, tick.value, tick.round, tick.broken
            );
            assert_eq!(line, &expected);
        }
        assert!(
            lines.iter().any(|l| l.ends_with("true}")),
            "411 steps must break (1-in-7 odds, or interval-v0 rounds of at most 301 steps)"
        );
    }
}

#[test]
fn bad_arguments_exit_2_with_a_message() {
    for (args, needle) in [
        (
            vec![
                "--seed",
                "x",
                "--tick-ms",
                "100",
                "--from",
                "0",
                "--to",
                "3",
            ],
            "--seed",
        ),
        (
            vec![
                "--seed",
                "4294967296",
                "--tick-ms",
                "100",
                "--from",
                "0",
                "--to",
                "3",
            ],
            "--seed",
        ),
        (
            vec!["--seed", "1", "--tick-ms", "0", "--from", "0", "--to", "3"],
            "--tick-ms",
        ),
        (
            vec![
                "--seed",
                "1",
                "--tick-ms",
                "100",
                "--break-every",
                "1",
                "--from",
                "0",
                "--to",
                "3",
            ],
            "--break-every",
        ),
        (
            vec![
                "--seed",
                "1",
                "--tick-ms",
                "100",
                "--from",
                "5",
                "--to",
                "3",
            ],
            "--from",
        ),
        (
            vec![
                "--seed",
                "1",
                "--tick-ms",
                "100",
                "--algorithm",
                "md5",
                "--from",
                "0",
                "--to",
                "3",
            ],
            "--algorithm",
        ),
        (
            vec!["--seed", "1", "--tick-ms", "100", "--to", "3"],
            "--from",
        ),
        (vec!["--bogus"], "--bogus"),
    ] {
        let output = replay(&args);
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains(needle) && stderr.contains("usage:"),
            "{args:?}: {stderr}"
        );
        assert!(output.stdout.is_empty());
    }
}
