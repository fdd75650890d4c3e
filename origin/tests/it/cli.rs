//! The built `origin` binary's command line: `--help`, `--version`, `check-config` on a good
//! and a bad environment, and unknown arguments. Nothing here starts a server or needs
//! Cassandra: each command must answer and exit on its own.

use std::process::{Command, Output};

use origin::config::VARIABLES;

/// The binary with an environment holding only `vars` (no inherited settings) and `args`.
fn origin(args: &[&str], vars: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_origin"));
    command.args(args).env_clear();
    for (name, value) in vars {
        command.env(name, value);
    }
    let output = command.output().expect("run the origin binary");
    assert!(
        output.status.code().is_some(),
        "{args:?} ended by a signal: {output:?}"
    );
    output
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).expect("UTF-8 output")
}

#[test]
fn help_lists_every_variable_and_exits_0() {
    for flag in ["--help", "-h"] {
        let output = origin(&[flag], &[]);
        assert_eq!(output.status.code(), Some(0), "{flag}: {output:?}");
        let stdout = text(&output.stdout);
        assert!(stdout.contains("Usage: origin"), "{stdout}");
        for name in VARIABLES {
            assert!(
                stdout.contains(&format!("  {name} (default: ")),
                "{flag}: {name} missing from the help"
            );
        }
    }
}

#[test]
fn version_prints_the_version() {
    let output = origin(&["--version"], &[]);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    assert_eq!(
        text(&output.stdout),
        format!("origin {}\n", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn check_config_accepts_a_good_environment_without_starting() {
    let output = origin(
        &["check-config"],
        &[
            ("REGION", "us"),
            ("CASSANDRA_KEYSPACE", "cli_check"),
            // Nothing listens here: check-config must not connect anywhere.
            ("CASSANDRA_HOSTS", "127.0.0.1:1"),
            (
                "OWNER_TOKEN_SECRET",
                "an-owner-token-secret-of-at-least-32-bytes",
            ),
            ("NATS_URL", "nats://127.0.0.1:1"),
        ],
    );
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let stdout = text(&output.stdout);
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    for part in [
        "configuration ok",
        "region us",
        "keyspace cli_check",
        "events on",
        "exit-notices off",
    ] {
        assert!(stdout.contains(part), "{part:?} not in {stdout}");
    }
    assert!(!stdout.contains("an-owner-token-secret"), "{stdout}");
}

#[test]
fn check_config_names_a_bad_variable_and_exits_2() {
    // A short secret is fatal in development too.
    let secret = "too-short-secret";
    let output = origin(&["check-config"], &[("OWNER_TOKEN_SECRET", secret)]);
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let stderr = text(&output.stderr);
    assert!(stderr.contains("invalid OWNER_TOKEN_SECRET"), "{stderr}");
    assert!(!stderr.contains(secret), "the secret was printed: {stderr}");
    assert!(output.stdout.is_empty());

    let output = origin(&["check-config"], &[("PORT", "eighty")]);
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    assert!(text(&output.stderr).contains("invalid PORT"), "{output:?}");
}

#[test]
fn unknown_arguments_exit_2_with_the_usage() {
    for args in [&["--bogus"][..], &["serve"], &["check-config", "--now"]] {
        let output = origin(args, &[]);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {output:?}");
        assert!(
            text(&output.stderr).contains("Usage: origin"),
            "{args:?}: {output:?}"
        );
        assert!(output.stdout.is_empty(), "{args:?}");
    }
}
